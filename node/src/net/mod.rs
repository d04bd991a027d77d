//! The node on the network: endpoint, peers, invites, object transfer and
//! announcements.
//!
//! SKELETON: the types and `Node` methods below are the interface the
//! control API and the CLI build on; the bodies are being written.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use clive_cas::{Exported, Hash, ObjectKind, Progress};
use serde::{Deserialize, Serialize};

use crate::{CertInfo, IdentityInfo, Node, NodeError};

/// How to bring the node onto the network.
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Listen addresses; empty means the configured ones (`[net] bind`).
    pub bind: Vec<SocketAddr>,
    /// A relay server URL; `None` means the configured one, if any.
    pub relay: Option<String>,
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

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The node's identity.
    pub identity: IdentityInfo,
    /// Whether the node is on the network (a daemon runs).
    pub running: bool,
    /// Addresses it listens on.
    pub addrs: Vec<String>,
    /// Seconds since the node came onto the network.
    pub uptime_secs: u64,
    /// Every known peer.
    pub peers: Vec<PeerInfo>,
    /// Objects in the store.
    pub store_objects: u64,
    /// Bytes of content in the store.
    pub store_bytes: u64,
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
    /// The peer it came from (endpoint id).
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

fn not_yet() -> NodeError {
    NodeError::Net("the network layer is not built yet".into())
}

impl Node {
    /// Brings the node onto the network: binds the endpoint, serves peers,
    /// reconnects to known peers. Called by the daemon (`start`); the
    /// in-process commands that need the network start it on demand.
    pub async fn start_net(&self, options: NetOptions) -> Result<(), NodeError> {
        let _ = options;
        Ok(())
    }

    /// Leaves the network: closes connections and the endpoint.
    pub async fn stop_net(&self) {}

    /// The node's status; `running` is false when it is not on the network.
    pub async fn status(&self) -> Result<Status, NodeError> {
        Ok(Status {
            identity: self.identity(),
            running: false,
            addrs: vec![],
            uptime_secs: 0,
            peers: vec![],
            store_objects: 0,
            store_bytes: 0,
        })
    }

    /// Creates an invite granting `caps` to whoever joins with its ticket.
    pub async fn invite(
        &self,
        caps: &str,
        expires: Duration,
        uses: u32,
    ) -> Result<Invite, NodeError> {
        let _ = (caps, expires, uses);
        Err(not_yet())
    }

    /// Joins the node that issued `ticket`.
    pub async fn join(&self, ticket: &str) -> Result<Joined, NodeError> {
        let _ = ticket;
        Err(not_yet())
    }

    /// Every known peer.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        Err(not_yet())
    }

    /// Records a peer by KEY (endpoint id, key line, fingerprint) and address.
    pub async fn peer_add(&self, peer: &str, addrs: &[String]) -> Result<PeerInfo, NodeError> {
        let _ = (peer, addrs);
        Err(not_yet())
    }

    /// Forgets a peer.
    pub async fn peer_rm(&self, peer: &str) -> Result<PeerInfo, NodeError> {
        let _ = peer;
        Err(not_yet())
    }

    /// Fetches a blob or a whole tree from `from`, or from any connected
    /// peer, into the store. Resumes what an earlier fetch left partial.
    pub async fn get(
        &self,
        hash: &str,
        from: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<Fetched, NodeError> {
        let _ = (hash, from, progress);
        Err(not_yet())
    }

    /// Sends an object (and everything a tree holds) to peer `to`.
    pub async fn push(
        &self,
        object: &str,
        to: &str,
        progress: Arc<dyn Progress>,
    ) -> Result<Pushed, NodeError> {
        let _ = (object, to, progress);
        Err(not_yet())
    }
}
