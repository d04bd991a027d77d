//! The daemon's `folders` service: one worker per synced folder. A worker
//! watches its directory (`notify`) and syncs it once events have been
//! quiet for [`DEBOUNCE`]; it also syncs when its zone's metadata changed
//! here (a zone event) and the name moved, again once files still being
//! written have been quiet for [`super::scan::SETTLE`], and every
//! [`RESCAN`] in case the watcher missed something. A version not all here
//! yet is fetched from the connected peers, and merged in as soon as it is.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
    time::Duration,
};

use clive_cas::NoProgress;
use n0_future::task::AbortOnDropHandle;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::Notify;

use super::{current, sync_once, table};
use crate::{Node, NodeError, service::Running};

/// Quiet time after the last file event before a folder is read.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// How often a folder is read even without events.
pub const RESCAN: Duration = Duration::from_secs(60);
/// How often a worker looks whether its name moved.
const CHECK: Duration = Duration::from_millis(500);

/// Starts the `folders` service on an online node.
pub(crate) fn start(node: &Arc<Node>) -> Result<Running, NodeError> {
    let weak = Arc::downgrade(node);
    let changed = node.sync_state().clone();
    Ok(Running::task(
        "folders",
        tokio::spawn(async move {
            let mut workers: HashMap<String, (String, AbortOnDropHandle<()>)> = HashMap::new();
            loop {
                let Some(node) = weak.upgrade() else { return };
                let folders = table::folders(node.db()).unwrap_or_default();
                workers.retain(|dir, (target, _)| {
                    folders
                        .iter()
                        .any(|f| &f.dir == dir && &f.target() == target)
                });
                for f in folders {
                    workers.entry(f.dir.clone()).or_insert_with(|| {
                        let task = tokio::spawn(work(weak.clone(), f.dir.clone()));
                        (f.target(), AbortOnDropHandle::new(task))
                    });
                }
                drop(node);
                tokio::select! {
                    _ = changed.folders_changed.notified() => {}
                    _ = tokio::time::sleep(RESCAN) => {}
                }
            }
        }),
    ))
}

async fn work(node: Weak<Node>, dir: String) {
    let bell = Arc::new(Notify::new());
    let ring = bell.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, EventKind::Access(_))
        {
            ring.notify_one();
        }
    });
    let _watcher = match watcher {
        Ok(mut w) => match w.watch(std::path::Path::new(&dir), RecursiveMode::Recursive) {
            Ok(()) => Some(w),
            Err(e) => {
                tracing::warn!(folder = %dir, "watching it: {e}; it is read every {} s", RESCAN.as_secs());
                None
            }
        },
        Err(e) => {
            tracing::warn!(folder = %dir, "watching it: {e}");
            None
        }
    };
    let mut events = match node.upgrade() {
        Some(n) => n.zone_events().subscribe(),
        None => return,
    };
    // The first sync runs at once: the daemon may have been down.
    let mut due = true;
    let mut last_full = tokio::time::Instant::now();
    loop {
        if due {
            due = false;
            let Some(n) = node.upgrade() else { return };
            let Some(record) = table::folders(n.db())
                .ok()
                .and_then(|all| all.into_iter().find(|f| f.dir == dir))
            else {
                return;
            };
            last_full = tokio::time::Instant::now();
            let again = run(&n, record).await;
            drop(n);
            if again == Some(Duration::ZERO) {
                due = true;
                continue;
            }
            if let Some(after) = again {
                let bell = bell.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    bell.notify_one();
                });
            }
        }
        tokio::select! {
            _ = bell.notified() => {
                // Until the events stop.
                loop {
                    tokio::select! {
                        _ = bell.notified() => {}
                        _ = tokio::time::sleep(DEBOUNCE) => break,
                    }
                }
                due = true;
            }
            event = events.recv() => {
                if let Some(n) = node.upgrade() {
                    due |= match event {
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => moved(&n, &dir),
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    };
                }
            }
            _ = tokio::time::sleep(CHECK) => {
                if let Some(n) = node.upgrade() {
                    due |= moved(&n, &dir) || last_full.elapsed() >= RESCAN;
                }
            }
        }
    }
}

/// Whether the folder's name holds another version than the folder.
fn moved(node: &Node, dir: &str) -> bool {
    table::folders(node.db())
        .ok()
        .and_then(|all| all.into_iter().find(|f| f.dir == dir))
        .is_some_and(|r| current(node, &r).is_some_and(|h| Some(h.to_string()) != r.written))
}

/// One sync; returns when to run again (files still being written, a
/// version still being fetched).
async fn run(node: &Arc<Node>, record: table::FolderRecord) -> Option<Duration> {
    let net = node.net.get()?;
    let signer = net.shared.signer.clone();
    let dir = record.dir.clone();
    match sync_once(node, record.clone(), &*signer).await {
        Ok(done) => {
            if done.waiting
                && let Some(hash) = current(node, &record)
            {
                let shared = net.shared.clone();
                if let Err(e) = crate::net::fetch::get(
                    &shared,
                    hash,
                    shared.conns_snapshot(),
                    Arc::new(NoProgress),
                )
                .await
                {
                    tracing::info!(folder = %dir, "fetching version {hash}: {e}");
                    return Some(Duration::from_secs(2));
                }
                return Some(Duration::ZERO);
            }
            for skipped in &done.skipped {
                tracing::warn!(folder = %dir, "left out: {skipped}");
            }
            (!done.unsettled.is_empty()).then(|| {
                // A little past the moment, so the file is settled then.
                Duration::from_millis(done.settles_in_ms.unwrap_or(0) + 5)
            })
        }
        Err(e) => {
            tracing::warn!(folder = %dir, "sync: {e}");
            Some(Duration::from_secs(5))
        }
    }
}
