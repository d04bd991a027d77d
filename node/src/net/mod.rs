//! The node on the network: endpoint, protocols, transfers and
//! announcements. It knows nothing of the node's handles (`store`,
//! `trust`, `peers`, `names`): those call into it, never the reverse; it
//! takes what it needs from the node as `Parts`.
//!
//! - [`endpoint`]: the iroh QUIC endpoint, keyed by the node's SSH key;
//!   relays and discovery off unless configured.
//! - [`serve`]: the router, one ALPN per protocol (blobs, `clive/peer/2`,
//!   `clive/zones/1`, gossip), the peer protocol's handler, and the trust
//!   check on every blob request.
//! - [`wire`]: the peer protocol (hello, join, check, push offers) and the
//!   request/reply exchange format every protocol of ours uses.
//! - `zones`: the zones protocol, and following zone announcements.
//! - [`fetch`]: verified, resumable, pipelined fetching of blobs and trees.
//! - [`keeper`]: connections to known peers, re-established with backoff.
//! - [`liveness`]: noticing connections to a peer that died, and closing them.
//! - [`announce`]: signed address, revocation and zone announcements over
//!   gossip; what they say reaches the rest as typed `Announcement`s.
//! - [`ticket`], [`state`]: invite tickets, and peers and invites on disk.

pub(crate) mod announce;
pub(crate) mod endpoint;
pub(crate) mod fetch;
pub(crate) mod keeper;
pub(crate) mod liveness;
pub(crate) mod serve;
pub mod state;
pub mod ticket;
pub mod wire;
pub(crate) mod zones;

/// The announcement format's decoder and encoder, public for the fuzz
/// targets in `fuzz/` (the rest of [`announce`] stays inside the crate).
pub use announce::{
    Body as AnnouncementBody, open as open_announcement, seal as seal_announcement,
};

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clive_cas::{Exported, Hash, ObjectKind, Store};
use clive_trust::{
    Capability, Caps, CertBody, KeySigner, NodeKey, PublicIdentity,
    clock::{Clock, format_time},
};
use iroh::{Endpoint, EndpointId, endpoint::Connection, protocol::Router};
use serde::{Deserialize, Serialize};

use crate::{
    NetError, NodeError,
    service::Running,
    trust::state::{CertInfo, NodeTrust},
};

/// How to bring the node onto the network.
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Listen addresses; empty means the configured ones (`[net] bind`,
    /// default `0.0.0.0:4919`).
    pub bind: Vec<SocketAddr>,
    /// A relay server URL; `None` means the configured one, if any.
    pub relay: Option<String>,
    /// The passphrase of an encrypted key (else `CLIVE_PASSPHRASE`).
    pub passphrase: Option<String>,
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

/// An invite: the ticket to hand to the joiner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The ticket `clive-node join` takes.
    pub ticket: String,
    /// Capabilities the joiner will hold.
    pub caps: String,
    /// When the ticket stops working (RFC 3339).
    pub expires: String,
    /// How many joins it admits.
    pub uses: u32,
}

/// The result of `join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// The inviter, now a peer.
    pub peer: PeerInfo,
    /// The certificate the inviter issued to this node.
    pub cert: CertInfo,
}

/// The result of `get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetched {
    /// The object.
    #[serde(with = "clive_cas::hash::serde_hex")]
    pub hash: Hash,
    /// Blob or tree.
    pub kind: ObjectKind,
    /// Bytes of content it holds (a tree: all its files).
    pub size: u64,
    /// Objects (blobs and trees) it consists of.
    pub objects: u64,
    /// Payload bytes received over the network for this fetch.
    pub bytes_received: u64,
    /// The peer it came from (endpoint id); empty when it was all here
    /// already.
    pub from: String,
    /// Where it was exported, with `-o`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exported: Option<Exported>,
}

/// The result of `push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pushed {
    /// The object.
    #[serde(with = "clive_cas::hash::serde_hex")]
    pub hash: Hash,
    /// The peer it went to (endpoint id).
    pub to: String,
    /// Payload bytes sent.
    pub bytes_sent: u64,
}

/// How long a join's certificate is valid unless the invite says otherwise.
pub const DEFAULT_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The network layer's place in a [`Node`]: empty until the node goes online.
#[derive(Debug, Default)]
pub(crate) struct NetSlot {
    net: Mutex<Option<Arc<Net>>>,
    in_flight: Arc<InFlight>,
}

/// Objects being fetched right now, which gc must keep.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashMap<Hash, usize>>);

impl InFlight {
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

impl Drop for NetSlot {
    /// A node dropped without `close` still leaves the network: its tasks
    /// stop now and the endpoint closes in the background.
    fn drop(&mut self) {
        let Some(net) = lock(&self.net).take() else {
            return;
        };
        net.shared.keepers.stop_all();
        lock(&net.tasks).clear();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                net.router.shutdown().await.ok();
                net.shared.endpoint.close().await;
            });
        }
    }
}

impl NetSlot {
    /// Roots of transfers under way.
    pub(crate) fn in_flight(&self) -> Vec<Hash> {
        lock(&self.in_flight.0).keys().copied().collect()
    }

    /// What transfers under way hold, for a transfer to add itself to.
    pub(crate) fn in_flight_set(&self) -> &Arc<InFlight> {
        &self.in_flight
    }

    /// The network layer, when the node is online.
    pub(crate) fn get(&self) -> Option<Arc<Net>> {
        lock(&self.net).clone()
    }
}

/// Locks a mutex, recovering the data if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A node on the network.
#[derive(Debug)]
pub(crate) struct Net {
    pub(crate) shared: Arc<Shared>,
    router: Router,
    tasks: Mutex<Vec<n0_future::task::AbortOnDropHandle<()>>>,
}

impl Net {
    /// Keeps a connection to every known peer, re-established with
    /// backoff, until stopped (the daemon's `keepers` service).
    pub(crate) fn start_keepers(&self) -> Result<Running, NodeError> {
        keeper::start_all(&self.shared)?;
        let shared = Arc::downgrade(&self.shared);
        Ok(Running::stopped_by("keepers", move || {
            if let Some(shared) = shared.upgrade() {
                shared.keepers.stop_all();
            }
        }))
    }

    /// Joins the announcement topic and answers announcements until
    /// stopped (the daemon's `announcer` service).
    pub(crate) fn start_announcer(&self) -> Running {
        Running::task("announcer", announce::spawn(&self.shared))
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
    pub signer: KeySigner,
    pub started: Instant,
    pub in_flight: Arc<InFlight>,
    /// Open peer-protocol connections, either direction.
    pub conns: Mutex<HashMap<EndpointId, Connection>>,
    /// Open blob connections this node dialled, reused between fetches.
    pub blob_conns: tokio::sync::Mutex<HashMap<EndpointId, Connection>>,
    /// Objects a peer may fetch because this node offered to push them.
    pub push_grants: Mutex<HashMap<EndpointId, Vec<(Hash, Instant)>>>,
    pub keepers: keeper::Keepers,
    pub announcer: Arc<announce::Announcer>,
    /// Verified announcements, for the concerns that act on them.
    pub announcements: tokio::sync::broadcast::Sender<announce::Announcement>,
    /// Every connection of the endpoint, watched for silence.
    pub registry: liveness::Registry,
}

impl Shared {
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
            fetch::forget_blob_conn(self, &peer).await;
        }
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
        let auth = self.trust.authorizer();
        let key = peer.as_bytes();
        matches!(state::peer(&self.db, key), Ok(Some(_)))
            || [Capability::Fetch, Capability::Push, Capability::Exec]
                .into_iter()
                .any(|cap| auth.allows(key, cap))
    }

    /// Whether `peer` holds `cap` here now; when not, the refusal to send
    /// it. Every request that needs a capability asks this (blob requests,
    /// which are answered by verdict, ask [`Authorizer::allows`]).
    ///
    /// [`Authorizer::allows`]: clive_trust::Authorizer::allows
    pub fn require(&self, peer: &EndpointId, cap: Capability) -> Result<(), String> {
        self.trust
            .authorizer()
            .check(&PublicIdentity::from_bytes(*peer.as_bytes()), cap)
            .map(|_| ())
            .map_err(|e| format!("you do not hold {cap} here: {e}"))
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
                .take(keeper::MAX_PRESENTED_CERTS)
                .collect()
        })
    }

    /// The peer's info as shown to users.
    pub fn peer_info(&self, id: &[u8; 32], record: &state::PeerRecord) -> PeerInfo {
        let connected = EndpointId::from_bytes(id)
            .map(|e| self.is_connected(&e))
            .unwrap_or(false);
        peer_info(id, record, connected)
    }
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

/// Whether the network layer runs long-lived tasks (daemon) or only what
/// one command needs (in-process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `clive-node start`.
    Daemon,
    /// One command, in-process.
    Command,
}

/// What the network layer takes from the node it runs for.
pub(crate) struct Parts<'a> {
    /// The node's private key file.
    pub key_path: std::path::PathBuf,
    /// `[net]` of the node's settings.
    pub config: &'a crate::config::NetConfig,
    pub store: Store,
    pub trust: Arc<NodeTrust>,
    pub db: Arc<redb::Database>,
    pub identity: PublicIdentity,
    pub clock: Arc<dyn Clock>,
}

impl NetSlot {
    /// Brings the node onto the network: binds the endpoint, serves peers,
    /// reconnects to known peers and, in a daemon, joins the announcement
    /// topic and keeps connections to known peers. Already online: the
    /// network layer that runs.
    pub(crate) async fn bring_online(
        &self,
        parts: Parts<'_>,
        options: NetOptions,
        mode: Mode,
    ) -> Result<Arc<Net>, NodeError> {
        if let Some(net) = self.get() {
            return Ok(net);
        }
        let key_path = parts.key_path;
        if !key_path.exists() {
            return Err(NetError::NoPrivateKey { path: key_path }.into());
        }
        let key = NodeKey::read(&key_path)?;
        let passphrase = options
            .passphrase
            .clone()
            .or_else(|| std::env::var("CLIVE_PASSPHRASE").ok());
        let secret = key.unlock(if key.is_encrypted() {
            passphrase.as_deref()
        } else {
            None
        })?;
        let config = parts.config;
        let bind = if options.bind.is_empty() {
            config.bind.clone()
        } else {
            options.bind.clone()
        };
        let relay = options.relay.clone().or_else(|| config.relay.clone());
        let lookup = iroh::address_lookup::MemoryLookup::new();
        let ephemeral = mode == Mode::Command;
        let registry = liveness::Registry::default();
        let endpoint = endpoint::bind(
            &secret,
            &bind,
            ephemeral,
            relay.as_deref(),
            lookup.clone(),
            registry.clone(),
        )
        .await?;
        let signer = KeySigner::new(secret, PublicIdentity::from_bytes(parts.identity.bytes()))
            .map_err(NetError::KeyCannotSign)?;
        let shared = Arc::new(Shared {
            endpoint: endpoint.clone(),
            lookup,
            store: parts.store,
            trust: parts.trust,
            db: parts.db,
            identity: parts.identity.clone(),
            clock: parts.clock.clone(),
            signer,
            started: Instant::now(),
            in_flight: self.in_flight.clone(),
            conns: Default::default(),
            blob_conns: Default::default(),
            push_grants: Default::default(),
            keepers: Default::default(),
            announcer: Arc::new(announce::Announcer::new(&endpoint, parts.clock.clone())),
            announcements: tokio::sync::broadcast::channel(announce::EVENT_BACKLOG).0,
            registry,
        });
        for (id, record) in state::peers(&shared.db)? {
            if let Ok(id) = EndpointId::from_bytes(&id) {
                shared.learn_addrs(id, &record.addrs);
            }
        }
        let router = serve::router(&shared);
        let tasks = vec![
            liveness::spawn(&shared),
            zones::follow_announcements(&shared),
        ];
        let net = Arc::new(Net {
            shared,
            router,
            tasks: Mutex::new(tasks),
        });
        *lock(&self.net) = Some(net.clone());
        tracing::info!(
            endpoint_id = %net.shared.endpoint.id(),
            addrs = ?net.shared.own_addrs(),
            "online"
        );
        Ok(net)
    }

    /// Leaves the network: closes connections and the endpoint.
    pub(crate) async fn stop(&self) {
        let net = lock(&self.net).take();
        if let Some(net) = net {
            net.shared.keepers.stop_all();
            lock(&net.tasks).clear();
            if let Err(e) = net.router.shutdown().await {
                tracing::warn!("shutting down the endpoint: {e}");
            }
            net.shared.endpoint.close().await;
        }
    }
}

/// An iroh endpoint id from 32 key bytes.
pub(crate) fn endpoint_id(bytes: &[u8; 32]) -> Result<EndpointId, NodeError> {
    EndpointId::from_bytes(bytes).map_err(|_| NetError::InvalidKey.into())
}

/// The body of a certificate issued for a join.
pub(crate) fn join_cert_body(
    issuer: &PublicIdentity,
    subject: [u8; 32],
    caps: Caps,
    valid_secs: u64,
    now: u64,
) -> CertBody {
    let mut nonce = [0u8; 16];
    rand::fill(&mut nonce);
    CertBody {
        issuer: PublicIdentity::from_bytes(issuer.bytes()),
        subject: PublicIdentity::from_bytes(subject),
        caps,
        delegate: 0,
        valid_from: now,
        valid_until: now.saturating_add(valid_secs),
        nonce,
    }
}
