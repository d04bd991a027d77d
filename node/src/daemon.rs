//! The daemon (`clive-node start`): owns the home, runs the node on the
//! network, and serves the control socket until `stop`, SIGTERM or SIGINT.
//!
//! Start: open the home (a second daemon is told which process holds it),
//! unlock the node's key once if it is encrypted (the passphrase stays in
//! memory, zeroed on exit, for signing later), bring the node onto the
//! network, bind `HOME/control.sock` (mode 0600, replacing a stale one),
//! then report ready. Stop: stop accepting, remove the socket, cancel the
//! calls still running (bounded), leave the network, close the store,
//! release the home, and only then close the connection of the `stop`
//! call, which is how its client knows the daemon is gone.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use clive_trust::{Clock, NodeKey};
use tokio::{
    net::unix::OwnedWriteHalf,
    signal::unix::{SignalKind, signal},
    sync::{Semaphore, mpsc, watch},
    task::JoinSet,
};
use zeroize::Zeroizing;

use crate::{
    Home, IdentityInfo, NetOptions, Node, NodeError, PassphraseSource,
    api::{ApiError, DaemonInfo},
    control::server::{self, Shared},
    service::Running,
};

/// Connections served at once; more are told to come back later.
const MAX_CLIENTS: usize = 256;

/// How long calls still running may take to wind down at stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the daemon reports once it serves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ready {
    /// The node.
    pub identity: IdentityInfo,
    /// The daemon's process id.
    pub pid: u32,
    /// Its control socket.
    pub control_socket: PathBuf,
    /// Where the node listens on the network.
    pub addrs: Vec<String>,
}

/// The passphrase of the node's key, held for the daemon's lifetime and
/// zeroed when dropped.
pub struct HeldPassphrase(Option<Zeroizing<String>>);

impl std::fmt::Debug for HeldPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = if self.0.is_some() { "held" } else { "none" };
        f.debug_tuple("HeldPassphrase").field(&held).finish()
    }
}

impl HeldPassphrase {
    /// Asks `source` once for the passphrase of the node's key, if that key
    /// is encrypted, and checks it. Without one, signing will fail later
    /// saying so (unless it goes through an ssh-agent).
    pub fn unlock(home: &Home, source: &dyn PassphraseSource) -> Result<Self, NodeError> {
        let key_path = home.key_path();
        if !key_path.exists() {
            return Ok(HeldPassphrase(None));
        }
        let key = NodeKey::read(&key_path)?;
        if !key.is_encrypted() {
            return Ok(HeldPassphrase(None));
        }
        match source.passphrase(&key_path).map(Zeroizing::new) {
            Some(pass) => {
                key.unlock(Some(pass.as_str()))?;
                Ok(HeldPassphrase(Some(pass)))
            }
            None => {
                tracing::warn!(
                    "{} is encrypted and no passphrase was given: signing will need --agent",
                    key_path.display()
                );
                Ok(HeldPassphrase(None))
            }
        }
    }
}

impl PassphraseSource for HeldPassphrase {
    fn passphrase(&self, _key_path: &Path) -> Option<String> {
        self.0.as_ref().map(|pass| pass.as_str().to_owned())
    }
}

/// How often the daemon looks for zone metadata to re-sign before it expires.
const RESIGN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// How often the daemon trims the job cache when results were put.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// One background service of the daemon: its name, and how it starts on
/// a node that is online. [`Running::stop`] stops it.
struct Service {
    name: &'static str,
    start: fn(&Arc<Node>) -> Result<Running, NodeError>,
}

/// The daemon's background services, started in this order once the node
/// is online, and stopped in the reverse order, each awaited, before it
/// leaves the network. A new concern that runs in the background (jobs,
/// sync) adds its service here.
const SERVICES: &[Service] = &[
    Service {
        name: "keepers",
        start: |node| online(node)?.start_keepers(),
    },
    Service {
        name: "liveness",
        start: |node| Ok(online(node)?.start_liveness()),
    },
    Service {
        name: "announcer",
        start: |node| Ok(online(node)?.start_announcer()),
    },
    Service {
        name: "zone follower",
        start: |node| {
            Ok(crate::net::zones::follow_announcements(
                &online(node)?.shared,
            ))
        },
    },
    Service {
        name: "re-signer",
        start: start_resigner,
    },
    Service {
        name: "executor",
        start: start_executor,
    },
    Service {
        name: "watches",
        start: crate::dispatch::start_watches,
    },
    Service {
        name: "cache trimmer",
        start: start_cache_trimmer,
    },
    Service {
        name: "sync",
        start: crate::sync::service::start,
    },
    Service {
        name: "folders",
        start: crate::sync::folder::service::start,
    },
];

/// Keeps the memo's cache within its bound when results are put by work
/// no command waits for (peers' jobs, detached watches): every
/// [`TRIM_EVERY`], a trim if a result was put since the last one (it never
/// waits for the store; a busy store puts it off to the next tick).
fn start_cache_trimmer(node: &Arc<Node>) -> Result<Running, NodeError> {
    let node = node.clone();
    Ok(Running::task(
        "cache trimmer",
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TRIM_EVERY);
            loop {
                tick.tick().await;
                node.store().trim_cache_logged().await;
            }
        }),
    ))
}

/// The executor runs jobs as they come (its tasks start with each job);
/// stopping it kills the jobs under way, whose records then say
/// interrupted, and waits until each has recorded its end.
fn start_executor(node: &Arc<Node>) -> Result<Running, NodeError> {
    let executor = node.executor().clone();
    Ok(Running::stopped_by("executor", move || {
        vec![n0_future::task::AbortOnDropHandle::new(tokio::spawn(
            async move { executor.stop_all().await },
        ))]
    }))
}

fn online(node: &Node) -> Result<Arc<crate::net::Net>, NodeError> {
    node.net
        .get()
        .ok_or(NodeError::Net(crate::NetError::NotOnline))
}

/// Re-signs zone metadata before it expires, every [`RESIGN_EVERY`].
fn start_resigner(node: &Arc<Node>) -> Result<Running, NodeError> {
    let node = node.clone();
    Ok(Running::task(
        "re-signer",
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RESIGN_EVERY);
            loop {
                tick.tick().await;
                node.names().resign_due().await;
            }
        }),
    ))
}

/// The daemon's background services while they run.
#[derive(Debug)]
pub struct Services(Vec<Running>);

impl Services {
    /// Starts every service of the list (`SERVICES`) on `node`, which must be
    /// online ([`Node::start_net`]); if one fails to start, stops those
    /// started and says which failed.
    pub async fn start(node: &Arc<Node>) -> Result<Services, NodeError> {
        let mut running = Services(Vec::with_capacity(SERVICES.len()));
        for service in SERVICES {
            match (service.start)(node) {
                Ok(r) => {
                    tracing::debug!(service = service.name, "started");
                    running.0.push(r);
                }
                Err(e) => {
                    tracing::warn!(service = service.name, "could not start: {e}");
                    running.stop().await;
                    return Err(e);
                }
            }
        }
        Ok(running)
    }

    /// Stops every service, last started first, each awaited.
    pub async fn stop(mut self) {
        while let Some(service) = self.0.pop() {
            let name = service.name();
            service.stop().await;
            tracing::debug!(service = name, "stopped");
        }
    }
}

/// Runs the daemon on `home` until it is stopped. `ready` is called once
/// the control socket accepts calls; `clock` is the node's.
pub async fn run(
    home: &Home,
    clock: Arc<dyn Clock>,
    net: NetOptions,
    passphrase: &dyn PassphraseSource,
    ready: impl FnOnce(&Ready),
) -> Result<(), ApiError> {
    let node = Arc::new(Node::open(home, clock).await?);
    let served = serve(&node, home, net, passphrase, ready).await;
    node.stop_net().await;
    let closed = close(node).await;
    tracing::info!("stopped");
    // Holding the `stop` connection until now tells its client we are gone.
    let held = served?;
    drop(held);
    closed
}

/// Everything between opening the home and closing it; returns the
/// connection of the `stop` call, if one stopped the daemon.
async fn serve(
    node: &Arc<Node>,
    home: &Home,
    net: NetOptions,
    passphrase: &dyn PassphraseSource,
    ready: impl FnOnce(&Ready),
) -> Result<Option<OwnedWriteHalf>, ApiError> {
    let held = HeldPassphrase::unlock(home, passphrase)?;
    let mut net = net;
    if net.passphrase.is_none() {
        net.passphrase = held.0.as_ref().map(|pass| pass.as_str().to_owned());
    }
    let signal_error = |e| NodeError::io("installing signal handlers", e);
    let mut term = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_error)?;
    node.start_net(net).await?;
    let services = Services::start(node).await?;
    let path = home.control_path();
    let (listener, ino) = server::bind(&path)?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (stop_tx, mut stop_rx) = mpsc::unbounded_channel();
    let daemon = DaemonInfo {
        pid: std::process::id(),
        control_socket: path.clone(),
    };
    let shared = Arc::new(Shared {
        node: node.clone(),
        daemon: daemon.clone(),
        passphrase: Arc::new(held),
        shutdown: shutdown_rx,
        stop: stop_tx,
    });
    let status = node.status().await;
    let addrs = status.map(|s| s.addrs).unwrap_or_default();
    tracing::info!(
        endpoint_id = %node.identity().endpoint_id,
        control_socket = %path.display(),
        addrs = ?addrs,
        "running"
    );
    ready(&Ready {
        identity: node.identity(),
        pid: daemon.pid,
        control_socket: path.clone(),
        addrs,
    });

    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut conns = JoinSet::new();
    let stopped_by = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let shared = shared.clone();
                        conns.spawn(async move {
                            server::serve_connection(stream, shared).await;
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        conns.spawn(server::refuse(stream, "too many control clients; try again"));
                    }
                },
                Err(e) => {
                    // Out of file descriptors, say: do not spin.
                    tracing::warn!("accepting a control client: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            held = stop_rx.recv() => {
                tracing::info!("stopping: asked by a control client");
                break held;
            }
            _ = term.recv() => {
                tracing::info!("stopping: SIGTERM");
                break None;
            }
            _ = int.recv() => {
                tracing::info!("stopping: SIGINT");
                break None;
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    };
    drop(listener);
    server::unlink(&path, ino);
    let _ = shutdown_tx.send(true);
    drop(shared);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("calls still running after {DRAIN_TIMEOUT:?}: aborting them");
        conns.shutdown().await;
    }
    services.stop().await;
    Ok(stopped_by)
}

/// Closes the node once no call holds it any more.
async fn close(node: Arc<Node>) -> Result<(), ApiError> {
    let mut node = node;
    // Cancelled calls release the node as their tasks are dropped.
    for _ in 0..200 {
        match Arc::try_unwrap(node) {
            Ok(node) => return Ok(node.close().await?),
            Err(shared) => node = shared,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::warn!("the node is still in use at stop; flushing the store anyway");
    node.store()
        .cas()
        .shutdown()
        .await
        .map_err(NodeError::from)?;
    Ok(())
}
