//! Detached pipeline watches (`job run --watch --detach`): watches that
//! run inside the daemon rather than for a client, their lines and their
//! steps' output in the daemon's log (`tracing`, target
//! `clive_node::watch`), their runs counted in `job watches`. Each is a
//! row of `jobs.watches.v1` ([`crate::jobs::watches`]) until `job
//! unwatch` removes it, so a daemon that restarts resumes it.
//!
//! The daemon's `watches` service ([`start_watches`]) resumes the rows when the
//! daemon starts and stops the watches (keeping their rows) when it stops.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use clive_trust::{Signer, clock::format_time};
use n0_future::task::AbortOnDropHandle;
use tokio::io::AsyncWrite;

use super::Output;
use crate::{
    Node, NodeError,
    jobs::{
        JobError,
        watches::{Spawner, WatchGuard, WatchInfo, WatchSpec, new_id},
    },
    service::Running,
};

/// Starts the daemon's `watches` service on `node`, which is online: from
/// now on `--detach` can start watches, and every row of
/// `jobs.watches.v1` is resumed.
pub fn start_watches(node: &Arc<Node>) -> Result<Running, NodeError> {
    let weak = Arc::downgrade(node);
    let spawner: Spawner = Arc::new(move |guard: WatchGuard, spec: WatchSpec| {
        let weak = weak.clone();
        AbortOnDropHandle::new(tokio::spawn(async move {
            // Holds the node only while the watch runs; the service's stop
            // aborts it before the node closes.
            if let Some(node) = weak.upgrade() {
                run(&node, guard, spec).await;
            }
        }))
    });
    let watches = node.watches().clone();
    watches.set_spawner(Some(spawner));
    for (id, spec) in watches.persisted().map_err(JobError::from)? {
        match spec {
            Ok(spec) => {
                tracing::info!(target: "clive_node::watch", watch = %id, file = %spec.file.display(), "resuming a detached watch");
                if let Err(e) = spawn(node, id.clone(), spec) {
                    tracing::warn!(target: "clive_node::watch", watch = %id, "could not resume: {e}");
                }
            }
            Err(e) => {
                tracing::warn!(target: "clive_node::watch", watch = %id, "not resumed: {e}")
            }
        }
    }
    Ok(Running::stopped_by("watches", move || {
        watches.set_spawner(None);
        let tasks = watches.take_detached();
        for task in &tasks {
            task.abort();
        }
        tasks
    }))
}

impl super::JobsHandle<'_> {
    /// Starts a new detached watch of `spec` (kept in `jobs.watches.v1`),
    /// inside the daemon: returns at once with it as `job watches` lists it.
    pub fn detach(&self, spec: WatchSpec) -> Result<WatchInfo, NodeError> {
        detach(self.node, spec)
    }
}

fn detach(node: &Node, spec: WatchSpec) -> Result<WatchInfo, NodeError> {
    // Refused before anything is written when no daemon runs the service.
    node.watches().spawner().map_err(JobError::from)?;
    let id = new_id();
    node.watches().persist(&id, &spec).map_err(JobError::from)?;
    spawn(node, id.clone(), spec)?;
    node.watches()
        .list()
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(|| JobError::Refused(format!("watch {id} ended as it started")).into())
}

/// Enters a detached watch in the registry and starts its task.
fn spawn(node: &Node, id: String, spec: WatchSpec) -> Result<(), NodeError> {
    let spawner = node.watches().spawner().map_err(JobError::from)?;
    let started = format_time(node.now());
    let guard = node
        .watches()
        .register(id.clone(), spec.file.clone(), true, started);
    let task = spawner(guard, spec);
    node.watches().set_task(&id, task);
    Ok(())
}

/// A detached watch, to its end: signed with the key the daemon unlocked
/// when it went online, its output in the log.
async fn run(node: &Node, guard: WatchGuard, spec: WatchSpec) {
    let id = guard.id().to_owned();
    let Some(net) = node.net.get() else {
        tracing::warn!(target: "clive_node::watch", watch = %id, "the node is not online: not run");
        return;
    };
    let signer: Arc<dyn Signer> = net.shared.signer.clone();
    let mut stdout = LogLines::new(&id, "stdout");
    let mut stderr = LogLines::new(&id, "stderr");
    let out = Output {
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    match node.jobs().watch(&spec, signer, &guard, out).await {
        Ok(runs) => tracing::info!(target: "clive_node::watch", watch = %id, runs, "ended"),
        Err(e) => tracing::warn!(target: "clive_node::watch", watch = %id, "ended: {e}"),
    }
    drop(guard);
}

/// Most bytes of one log line; longer lines are cut there.
const MAX_LINE: usize = 16 * 1024;

/// Writes what it is given to the daemon's log, a line at a time.
struct LogLines {
    watch: String,
    stream: &'static str,
    line: Vec<u8>,
}

impl LogLines {
    fn new(watch: &str, stream: &'static str) -> Self {
        LogLines {
            watch: watch.to_owned(),
            stream,
            line: Vec::new(),
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.line);
        tracing::info!(target: "clive_node::watch", watch = %self.watch, stream = self.stream, "{}", line.trim_end());
        self.line.clear();
    }
}

impl AsyncWrite for LogLines {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        for &b in buf {
            if b == b'\n' {
                this.emit();
            } else if this.line.len() < MAX_LINE {
                this.line.push(b);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.line.is_empty() {
            this.emit();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LogLines {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}
