//! What every network task shares: the endpoint, the node's parts the
//! network layer uses, open connections, and the state of the keepers,
//! the announcer and the liveness watch. It imports none of the modules
//! that use it: the tasks of `keeper.rs`, `liveness.rs` and `gossip.rs`
//! take a `Shared`, while the state they keep here is plain data.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use clive_cas::{Hash, Store};
use clive_trust::{Capability, Clock, KeySigner, PublicIdentity, clock::format_time};
use iroh::{
    Endpoint, EndpointId,
    endpoint::{AfterHandshakeOutcome, Connection, EndpointHooks, WeakConnectionHandle},
};
use n0_future::task::AbortOnDropHandle;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::{announce, state};
use crate::{
    NodeError,
    authority::{NodeTrust, Refusal},
};

/// Most certificates presented in one hello.
pub const MAX_PRESENTED_CERTS: usize = 16;
/// How long a connection may receive nothing before it counts as dead.
pub const SILENT_LIMIT: Duration = Duration::from_secs(5);

/// Locks a mutex, recovering the data if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Objects being fetched right now, which gc must keep.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashMap<Hash, usize>>);

impl InFlight {
    /// The objects in flight now.
    pub(crate) fn roots(&self) -> Vec<Hash> {
        lock(&self.0).keys().copied().collect()
    }

    /// Keeps `hash` (and what it reaches) until the guard drops, and holds
    /// off garbage collection of `store` meanwhile (waiting for one that
    /// runs): what the fetch writes stays until it is pinned.
    pub(crate) async fn hold(
        self: &Arc<Self>,
        store: &clive_cas::Store,
        hash: Hash,
    ) -> InFlightGuard {
        let roots = store.hold_roots().await;
        *lock(&self.0).entry(hash).or_default() += 1;
        InFlightGuard {
            set: self.clone(),
            hash,
            _roots: roots,
        }
    }
}

/// Holds one object in flight.
#[derive(Debug)]
pub(crate) struct InFlightGuard {
    set: Arc<InFlight>,
    hash: Hash,
    _roots: clive_cas::RootsHold,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut map = lock(&self.set.0);
        if let Some(n) = map.get_mut(&self.hash) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.hash);
            }
        }
    }
}

/// What every network task needs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub endpoint: Endpoint,
    pub lookup: iroh::address_lookup::MemoryLookup,
    pub store: Store,
    pub trust: Arc<NodeTrust>,
    pub db: Arc<redb::Database>,
    pub identity: PublicIdentity,
    /// The node's clock: expiry of invites, announcements, certificates.
    pub clock: Arc<dyn Clock>,
    pub signer: Arc<KeySigner>,
    pub started: Instant,
    pub in_flight: Arc<InFlight>,
    /// Open peer-protocol connections, either direction.
    pub conns: Mutex<HashMap<EndpointId, Connection>>,
    /// Open blob connections this node dialled, reused between fetches.
    pub blob_conns: tokio::sync::Mutex<HashMap<EndpointId, Connection>>,
    /// Objects a peer may fetch because this node offered to push them.
    pub push_grants: Mutex<HashMap<EndpointId, Vec<(Hash, Instant)>>>,
    pub keepers: Keepers,
    pub announcer: Arc<announce::Announcer>,
    /// Verified announcements, for the concerns that act on them.
    pub announcements: tokio::sync::broadcast::Sender<announce::Announcement>,
    /// The node's zone events: told whenever zone metadata is stored here.
    pub zone_events: crate::events::ZoneEvents,
    /// Every connection of the endpoint, watched for silence.
    pub registry: Registry,
}

impl Shared {
    /// The peers with a peer-protocol connection open now.
    pub fn conns_snapshot(&self) -> Vec<EndpointId> {
        lock(&self.conns).keys().copied().collect()
    }

    /// Whether a peer-protocol connection to `id` is open.
    pub fn is_connected(&self, id: &EndpointId) -> bool {
        lock(&self.conns)
            .get(id)
            .is_some_and(|c| c.close_reason().is_none())
    }

    /// Keeps `conn` as the peer's connection once it said hello. A new
    /// connection supersedes any older one: a peer that restarted comes back
    /// on a new connection while the old one still looks open here until it
    /// times out, so the cached blob connection, of the same age, is
    /// forgotten too and the next fetch dials afresh.
    pub async fn keep_conn(&self, conn: &Connection) {
        let peer = conn.remote_id();
        let old = lock(&self.conns).insert(peer, conn.clone());
        if old.is_some_and(|old| old.stable_id() != conn.stable_id()) {
            self.forget_blob_conn(&peer).await;
        }
    }

    /// Forgets the cached blob connection to `peer` (a peer that came back
    /// on a new connection, say), so the next fetch dials afresh.
    pub async fn forget_blob_conn(&self, peer: &EndpointId) {
        self.blob_conns.lock().await.remove(peer);
    }

    /// The addresses this node listens on.
    pub fn own_addrs(&self) -> Vec<SocketAddr> {
        self.endpoint.addr().ip_addrs().copied().collect()
    }

    /// Tells the endpoint where `id` can be reached.
    pub fn learn_addrs(&self, id: EndpointId, addrs: &[SocketAddr]) {
        if addrs.is_empty() {
            return;
        }
        let addr =
            iroh::EndpointAddr::from_parts(id, addrs.iter().map(|a| iroh::TransportAddr::Ip(*a)));
        self.lookup.add_endpoint_info(addr);
    }

    /// Whether `peer` may use this node at all: a known peer, or one a chain
    /// grants anything.
    pub fn admits(&self, peer: &EndpointId) -> bool {
        let key = peer.as_bytes();
        matches!(state::peer(&self.db, key), Ok(Some(_)))
            || [Capability::Fetch, Capability::Push, Capability::Exec]
                .into_iter()
                .any(|cap| self.trust.holds(key, cap))
    }

    /// Whether `peer` holds `cap` here now; when not, the refusal to send
    /// it ([`NodeTrust::check`]).
    pub fn require(&self, peer: &EndpointId, cap: Capability) -> Result<(), Refusal> {
        self.trust
            .check(&PublicIdentity::from_bytes(*peer.as_bytes()), cap)
            .map(drop)
    }

    /// Records that `id` was heard from at `addrs`.
    pub fn saw_peer(&self, id: &EndpointId, addrs: &[SocketAddr]) -> Result<(), NodeError> {
        let now = self.clock.now();
        let known = state::peer(&self.db, id.as_bytes())?;
        if let Some(old) = known {
            let addrs = if addrs.is_empty() {
                old.addrs.clone()
            } else {
                addrs.to_vec()
            };
            state::update_peer(&self.db, id.as_bytes(), |_| state::PeerRecord {
                addrs,
                added: old.added,
                last_seen: Some(now),
            })?;
        }
        Ok(())
    }

    /// Records a peer (new or known) at `addrs`.
    pub fn add_peer(
        &self,
        id: &EndpointId,
        addrs: &[SocketAddr],
    ) -> Result<state::PeerRecord, NodeError> {
        let now = self.clock.now();
        let record = state::update_peer(&self.db, id.as_bytes(), |old| state::PeerRecord {
            addrs: if addrs.is_empty() {
                old.as_ref().map(|o| o.addrs.clone()).unwrap_or_default()
            } else {
                addrs.to_vec()
            },
            added: old.as_ref().map_or(now, |o| o.added),
            last_seen: old.and_then(|o| o.last_seen),
        })?;
        self.learn_addrs(*id, &record.addrs);
        Ok(record)
    }

    /// Certificates this node holds as subject, to present to peers.
    pub fn own_certs(&self) -> Vec<String> {
        let own = self.identity.bytes();
        self.trust.authorizer().with_set(|set| {
            set.certs()
                .filter(|(_, c)| c.body().subject.bytes() == own)
                .filter_map(|(_, c)| String::from_utf8(c.encode()).ok())
                .take(MAX_PRESENTED_CERTS)
                .collect()
        })
    }
}

/// A running keeper, and the bell that wakes it early.
type Keeper = (AbortOnDropHandle<()>, Arc<Notify>);

/// The keeper tasks, one per peer (run by `keeper.rs`).
#[derive(Debug, Default)]
pub struct Keepers {
    enabled: AtomicBool,
    tasks: Mutex<HashMap<EndpointId, Keeper>>,
}

impl Keepers {
    /// Whether keepers may run (the daemon's `keepers` service runs).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// Lets keepers run.
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }

    /// Wakes the running keeper of `id`, or else keeps the one `spawn`
    /// starts, with the bell that wakes it.
    pub fn wake_or_start(
        &self,
        id: EndpointId,
        spawn: impl FnOnce(Arc<Notify>) -> tokio::task::JoinHandle<()>,
    ) {
        let mut tasks = lock(&self.tasks);
        if let Some((task, wake)) = tasks.get(&id)
            && !task.is_finished()
        {
            wake.notify_one();
            return;
        }
        let wake = Arc::new(Notify::new());
        let task = spawn(wake.clone());
        tasks.insert(id, (AbortOnDropHandle::new(task), wake));
    }

    /// Stops the keeper of `id`.
    pub fn stop(&self, id: &EndpointId) {
        lock(&self.tasks).remove(id);
    }

    /// Stops every keeper and starts no more; returns their tasks, aborted,
    /// for the caller to await: a keeper in the middle of a dial holds the
    /// shared state (and with it `state.redb`) until its task has ended.
    pub fn stop_all(&self) -> Vec<AbortOnDropHandle<()>> {
        self.enabled.store(false, Ordering::SeqCst);
        let tasks: Vec<_> = lock(&self.tasks)
            .drain()
            .map(|(_, (task, _))| task)
            .collect();
        for task in &tasks {
            task.abort();
        }
        tasks
    }
}

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
    pub fn sweep(&self) -> Vec<EndpointId> {
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
    pub fn close_all(&self, peer: &EndpointId) -> usize {
        let watched = lock(&self.0).remove(peer).unwrap_or_default();
        let mut closed = 0;
        for conn in watched.iter().filter_map(|w| w.conn.upgrade()) {
            conn.close(0u32.into(), b"unresponsive");
            closed += 1;
        }
        closed
    }
}

/// One peer, as `peers ls` and `status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The peer's endpoint id (64 hex digits).
    pub endpoint_id: String,
    /// Its `SHA256:` fingerprint.
    pub fingerprint: String,
    /// Addresses it was last reachable at.
    pub addrs: Vec<String>,
    /// Whether a connection to it is open now.
    pub connected: bool,
    /// When it was last heard from (RFC 3339), if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

/// A peer's record as users see it.
pub(crate) fn peer_info(id: &[u8; 32], record: &state::PeerRecord, connected: bool) -> PeerInfo {
    let public = PublicIdentity::from_bytes(*id);
    PeerInfo {
        endpoint_id: public.endpoint_id(),
        fingerprint: public.fingerprint(),
        addrs: record.addrs.iter().map(ToString::to_string).collect(),
        connected,
        last_seen: record.last_seen.map(format_time),
    }
}

/// How long a join's certificate is valid unless the invite says otherwise.
pub const DEFAULT_CERT_VALIDITY: std::time::Duration =
    std::time::Duration::from_secs(365 * 24 * 3600);
