//! The daemon's `sync` service: a catch-up with each peer on every
//! (re)connection, when the peer says it has news, and every [`RECHECK`]
//! while connected; and filling the follow set when followed metadata
//! changed here (a zone event). One worker task per peer runs its
//! catch-ups one at a time; a failed one is tried again after a bounded
//! backoff, at most [`MAX_RETRIES`] times in a row, and again on the next
//! connection or news.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
    time::Duration,
};

use clive_cas::NoProgress;
use iroh::EndpointId;
use n0_future::task::AbortOnDropHandle;
use tokio::sync::Notify;

use super::catchup;
use crate::{
    Node, NodeError, SyncError,
    net::{lock, sync::table},
    service::Running,
};

/// How often the service looks at the connections.
const TICK: Duration = Duration::from_millis(250);
/// How often a connected peer's heads are asked for again.
pub const RECHECK: Duration = Duration::from_secs(30);
/// Failed catch-ups in a row before a worker waits for the next trigger.
pub const MAX_RETRIES: u32 = 10;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A peer's worker, and the bell that starts its next catch-up.
struct Worker {
    _task: AbortOnDropHandle<()>,
    bell: Arc<Notify>,
    /// The connection it last saw (its stable id).
    conn: Option<usize>,
}

/// Starts the `sync` service on an online node.
pub(crate) fn start(node: &Arc<Node>) -> Result<Running, NodeError> {
    let net = node
        .net
        .get()
        .ok_or(NodeError::Net(crate::NetError::NotOnline))?;
    let weak = Arc::downgrade(node);
    let shared = Arc::downgrade(&net.shared);
    let state = node.sync_state().clone();
    Ok(Running::task(
        "sync",
        tokio::spawn(watch(weak, shared, state, node.zone_events().subscribe())),
    ))
}

async fn watch(
    node: Weak<Node>,
    shared: Weak<crate::net::shared::Shared>,
    state: Arc<super::SyncState>,
    mut events: tokio::sync::broadcast::Receiver<crate::events::ZoneStored>,
) {
    let mut workers: HashMap<EndpointId, Worker> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    let mut fill_due = false;
    let mut fill_task: Option<AbortOnDropHandle<()>> = None;
    loop {
        let (Some(n), Some(s)) = (node.upgrade(), shared.upgrade()) else {
            return;
        };
        let news = state.take_news();
        // Every open connection, by its stable id.
        let open: Vec<(EndpointId, usize)> = lock(&s.conns)
            .iter()
            .filter(|(_, c)| c.close_reason().is_none())
            .map(|(id, c)| (*id, c.stable_id()))
            .collect();
        for (peer, conn) in open {
            let worker = workers
                .entry(peer)
                .or_insert_with(|| spawn_worker(&node, &shared, peer));
            if worker.conn != Some(conn) {
                worker.conn = Some(conn);
                state.mark_due(peer);
                worker.bell.notify_one();
            }
        }
        for peer in news {
            let worker = workers
                .entry(peer)
                .or_insert_with(|| spawn_worker(&node, &shared, peer));
            worker.bell.notify_one();
        }
        if fill_due
            && !state.a_call_is_filling()
            && fill_task.as_ref().is_none_or(|t| t.is_finished())
        {
            fill_due = false;
            let (n2, s2) = (n.clone(), s.clone());
            fill_task = Some(AbortOnDropHandle::new(tokio::spawn(async move {
                let follows = table::follows(n2.db()).unwrap_or_default();
                let providers = s2.conns_snapshot();
                if !providers.is_empty() {
                    catchup::fill(&n2, &s2, &follows, providers, Arc::new(NoProgress)).await;
                }
            })));
        }
        drop((n, s));
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.wake.notified() => {}
            event = events.recv() => match event {
                Ok(stored) => {
                    if let Some(n) = node.upgrade() {
                        let follows = table::follows(n.db()).unwrap_or_default();
                        fill_due |= follows.iter().any(|f| f.zone == stored.zone);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => fill_due = true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

fn spawn_worker(
    node: &Weak<Node>,
    shared: &Weak<crate::net::shared::Shared>,
    peer: EndpointId,
) -> Worker {
    let bell = Arc::new(Notify::new());
    let task = tokio::spawn(work(node.clone(), shared.clone(), peer, bell.clone()));
    Worker {
        _task: AbortOnDropHandle::new(task),
        bell,
        conn: None,
    }
}

async fn work(
    node: Weak<Node>,
    shared: Weak<crate::net::shared::Shared>,
    peer: EndpointId,
    bell: Arc<Notify>,
) {
    let mut failures = 0u32;
    loop {
        let wait = if failures == 0 {
            RECHECK
        } else {
            FIRST_BACKOFF
                .saturating_mul(1 << failures.min(8))
                .min(MAX_BACKOFF)
        };
        let rang = tokio::select! {
            _ = bell.notified() => true,
            _ = tokio::time::sleep(wait) => false,
        };
        if rang {
            failures = 0;
        } else if failures >= MAX_RETRIES {
            continue;
        }
        let (Some(n), Some(s)) = (node.upgrade(), shared.upgrade()) else {
            return;
        };
        if !s.is_connected(&peer) && !rang {
            continue;
        }
        // A `sync follow` under way fetches, and shows, what it brings.
        n.sync_state().calls_filled().await;
        match catchup::run(&n, &s, peer, rang, Arc::new(NoProgress)).await {
            Ok(exchange) if exchange.complete() => failures = 0,
            Ok(exchange) => {
                failures += 1;
                tracing::info!(
                    peer = %peer.fmt_short(),
                    "catch-up incomplete: {}",
                    exchange.errors.join("; ")
                );
            }
            // A peer that does not sync with this node is not retried at
            // once: it is asked again at the next check (it may grant
            // `fetch` meanwhile), connection or news.
            Err(NodeError::Sync(SyncError::Refused { reason, .. })) => {
                tracing::debug!(peer = %peer.fmt_short(), "does not sync with this node: {reason}");
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                tracing::info!(peer = %peer.fmt_short(), "catch-up failed: {e}");
            }
        }
    }
}
