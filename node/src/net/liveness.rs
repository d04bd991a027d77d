//! Noticing dead connections.
//!
//! A peer killed without a word leaves its connections looking open here
//! until QUIC gives up on them, and iroh keeps sending to the path it
//! selected for that peer, new handshakes included, while any of them
//! lives: a peer that restarted at another address cannot be dialled, and
//! `peers ls` says connected. Every path of a live connection is probed
//! every couple of seconds and the peer acknowledges, so a connection that
//! received nothing for [`SILENT_LIMIT`] is dead. Then every connection to
//! that peer is closed (the new ones of a restarted peer too, which it dials
//! again at once): with none left, iroh forgets the dead path and the next
//! dial tries every address it knows.
//!
//! Connections are registered by an endpoint hook, so those iroh-gossip
//! opens are watched as well.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use iroh::{
    EndpointId,
    endpoint::{AfterHandshakeOutcome, Connection, EndpointHooks, WeakConnectionHandle},
};
use n0_future::task::AbortOnDropHandle;

use super::{Shared, fetch, lock};

/// How long a connection may receive nothing before it counts as dead.
pub const SILENT_LIMIT: Duration = Duration::from_secs(5);
/// How often connections are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// One watched connection.
#[derive(Debug)]
struct Watched {
    conn: WeakConnectionHandle,
    received: u64,
    since: Instant,
}

/// Every connection of the endpoint, by peer.
#[derive(Debug, Clone, Default)]
pub struct Registry(Arc<Mutex<HashMap<EndpointId, Vec<Watched>>>>);

impl EndpointHooks for Registry {
    fn after_handshake<'a>(
        &'a self,
        conn: &'a Connection,
    ) -> impl Future<Output = AfterHandshakeOutcome> + Send + 'a {
        lock(&self.0)
            .entry(conn.remote_id())
            .or_default()
            .push(Watched {
                conn: conn.weak_handle(),
                received: conn.stats().udp_rx.datagrams,
                since: Instant::now(),
            });
        async { AfterHandshakeOutcome::accept() }
    }
}

impl Registry {
    /// Forgets closed connections; returns the peers one of whose
    /// connections received nothing for [`SILENT_LIMIT`].
    fn sweep(&self) -> Vec<EndpointId> {
        let now = Instant::now();
        let mut dead = Vec::new();
        let mut all = lock(&self.0);
        for (peer, watched) in all.iter_mut() {
            watched.retain_mut(|w| {
                let Some(conn) = w.conn.upgrade() else {
                    return false;
                };
                if conn.close_reason().is_some() {
                    return false;
                }
                let received = conn.stats().udp_rx.datagrams;
                if received != w.received {
                    w.received = received;
                    w.since = now;
                }
                true
            });
            if watched
                .iter()
                .any(|w| now.duration_since(w.since) >= SILENT_LIMIT)
            {
                dead.push(*peer);
            }
        }
        all.retain(|_, watched| !watched.is_empty());
        dead
    }

    /// Closes every connection to `peer`.
    fn close_all(&self, peer: &EndpointId) -> usize {
        let watched = lock(&self.0).remove(peer).unwrap_or_default();
        let mut closed = 0;
        for conn in watched.iter().filter_map(|w| w.conn.upgrade()) {
            conn.close(0u32.into(), b"unresponsive");
            closed += 1;
        }
        closed
    }
}

/// Watches every connection until the node goes offline.
pub fn spawn(shared: &Arc<Shared>) -> AbortOnDropHandle<()> {
    let shared = Arc::downgrade(shared);
    AbortOnDropHandle::new(tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            for peer in shared.registry.sweep() {
                let closed = shared.registry.close_all(&peer);
                tracing::info!(
                    peer = %peer.fmt_short(),
                    "peer silent for {}s: closed its {closed} connection(s)",
                    SILENT_LIMIT.as_secs()
                );
                fetch::forget_blob_conn(&shared, &peer).await;
                shared.keepers.start(&shared, peer);
            }
        }
    }))
}
