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
//! - [`shared`]: what every network task shares; it imports none of them.
//! - `zones`: the zones protocol, and following zone announcements.
//! - [`fetch`]: verified, resumable, pipelined fetching of blobs and trees.
//! - [`keeper`]: connections to known peers, re-established with backoff.
//! - [`liveness`]: noticing connections to a peer that died, and closing them.
//! - [`announce`]: the signed announcement format (addresses, revocations,
//!   zones), the sending side, and the typed `Announcement` events.
//! - [`gossip`]: the announcement topic: joining it, and acting on what
//!   arrives.
//!
//! Children import `shared` and each other, never this module: it only
//! brings the network up and down. What runs in the background (keepers,
//! liveness, the announcer, the zone follower) is started by the daemon's
//! list of services (`daemon.rs`), not here.
//! - [`ticket`], [`state`]: invite tickets, and peers and invites on disk.

pub(crate) mod announce;
pub mod devices;
pub(crate) mod endpoint;
pub(crate) mod fetch;
pub(crate) mod gossip;
pub(crate) mod jobs;
pub(crate) mod keeper;
pub(crate) mod liveness;
pub(crate) mod serve;
pub(crate) mod shared;
pub mod state;
pub mod sync;
pub mod ticket;
pub mod wire;
pub(crate) mod zones;

pub use fetch::{Fetched, FromPeer, Pushed};
pub use shared::{DEFAULT_CERT_VALIDITY, PeerInfo};
pub(crate) use shared::{InFlight, lock, peer_info};

/// The announcement format's decoder and encoder, public for the fuzz
/// targets in `fuzz/` (the rest of [`announce`] stays inside the crate).
pub use announce::{
    Body as AnnouncementBody, open as open_announcement, seal as seal_announcement,
};

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use clive_cas::{Hash, Store};
use clive_trust::{Clock, KeySigner, NodeKey, PublicIdentity};
use iroh::{EndpointId, protocol::Router};
use serde::{Deserialize, Serialize};

use crate::{
    NetError, NodeError,
    authority::{CertInfo, NodeTrust},
    service::Running,
};
use shared::Shared;

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
    /// For an invite of one's own device: the device zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_zone: Option<String>,
}

/// The result of `join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// The inviter, now a peer.
    pub peer: PeerInfo,
    /// The certificate the inviter issued to this node.
    pub cert: CertInfo,
    /// Paired as one's own device: the certificate this node issued the
    /// inviter (every capability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted: Option<CertInfo>,
    /// Paired as one's own device: the device zone both follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_zone: Option<String>,
}

/// The network layer's place in a [`Node`]: empty until the node goes online.
#[derive(Debug, Default)]
pub(crate) struct NetSlot {
    net: Mutex<Option<Arc<Net>>>,
    in_flight: Arc<InFlight>,
}

impl Drop for NetSlot {
    /// A node dropped without `close` still leaves the network: its tasks
    /// stop now and the endpoint closes in the background.
    fn drop(&mut self) {
        let Some(net) = lock(&self.net).take() else {
            return;
        };
        // Aborted; they end on their own once polled.
        drop(net.shared.keepers.stop_all());
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
        self.in_flight.roots()
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

/// A node on the network.
#[derive(Debug)]
pub(crate) struct Net {
    pub(crate) shared: Arc<Shared>,
    router: Router,
}

impl Net {
    /// Keeps a connection to every known peer, re-established with
    /// backoff, until stopped (the daemon's `keepers` service).
    pub(crate) fn start_keepers(&self) -> Result<Running, NodeError> {
        keeper::start_all(&self.shared)?;
        let shared = Arc::downgrade(&self.shared);
        Ok(Running::stopped_by("keepers", move || {
            shared
                .upgrade()
                .map(|shared| shared.keepers.stop_all())
                .unwrap_or_default()
        }))
    }

    /// Joins the announcement topic and answers announcements until
    /// stopped (the daemon's `announcer` service).
    pub(crate) fn start_announcer(&self) -> Running {
        Running::task("announcer", gossip::spawn(&self.shared))
    }

    /// Watches every connection and closes those to a peer gone silent,
    /// until stopped (the daemon's `liveness` service).
    pub(crate) fn start_liveness(&self) -> Running {
        Running::task("liveness", liveness::spawn(&self.shared))
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
    /// Where zone metadata stored by the network layer is told.
    pub zone_events: crate::events::ZoneEvents,
    /// Protocols of other concerns served beside the network's own (the
    /// jobs protocol), each made once the network layer exists.
    pub protocols: Vec<(&'static [u8], ProtocolFactory)>,
}

/// Makes the handler of a protocol served on the node's endpoint.
pub(crate) type ProtocolFactory =
    Box<dyn FnOnce(&Arc<Shared>) -> Box<dyn iroh::protocol::DynProtocolHandler> + Send>;

impl NetSlot {
    /// Brings the node onto the network: binds the endpoint and serves
    /// peers (the daemon's services then do the rest in the background).
    /// Already online: the network layer that runs.
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
        let registry = shared::Registry::default();
        let endpoint = endpoint::bind(
            &secret,
            &bind,
            ephemeral,
            relay.as_deref(),
            lookup.clone(),
            registry.clone(),
        )
        .await?;
        let signer = Arc::new(
            KeySigner::new(secret, PublicIdentity::from_bytes(parts.identity.bytes()))
                .map_err(NetError::KeyCannotSign)?,
        );
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
            zone_events: parts.zone_events,
            registry,
        });
        for (id, record) in state::peers(&shared.db)? {
            if let Ok(id) = EndpointId::from_bytes(&id) {
                shared.learn_addrs(id, &record.addrs);
            }
        }
        let extra = parts
            .protocols
            .into_iter()
            .map(|(alpn, make)| (alpn, make(&shared)))
            .collect();
        let router = serve::router(&shared, extra);
        let net = Arc::new(Net { shared, router });
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
            for task in net.shared.keepers.stop_all() {
                // Cancelled is the expected end.
                let _ = task.await;
            }
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
