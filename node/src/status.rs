//! What `status` reports: the node, its network, peers, store, the memo's
//! cache and zones.

use serde::{Deserialize, Serialize};

use crate::{IdentityInfo, Node, NodeError, PeerInfo};

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
    /// Equivocations seen in followed zones: `ZONE ROLE vVERSION`.
    #[serde(default)]
    pub equivocations: Vec<String>,
    /// Bytes the memo's cache holds (what eviction could free; see
    /// `crate::jobs::cache`), as last measured: None when a collection or
    /// an import held the store and it was never measured before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_bytes: Option<u64>,
    /// The cache's bound, `[jobs] cache`.
    #[serde(default)]
    pub cache_bound: u64,
}

impl Node {
    /// The node's status; `running` is false when it is not on the network.
    pub async fn status(&self) -> Result<Status, NodeError> {
        let net = self.net.get();
        let inventory = self.cas().inventory().await?;
        let store_bytes = inventory.iter().map(|(_, s)| s.bytes()).sum();
        let cache = self.store().cache_size().await?;
        Ok(Status {
            identity: self.identity(),
            running: net.is_some(),
            addrs: net
                .as_ref()
                .map(|n| {
                    n.shared
                        .own_addrs()
                        .iter()
                        .map(ToString::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            uptime_secs: net
                .as_ref()
                .map_or(0, |n| n.shared.started.elapsed().as_secs()),
            peers: self.peers().list().await?,
            store_objects: inventory.len() as u64,
            store_bytes,
            equivocations: self
                .names()
                .zones()
                .list(Some(self.public()))
                .unwrap_or_default()
                .into_iter()
                .flat_map(|z| {
                    z.equivocations
                        .into_iter()
                        .map(move |(role, v)| format!("{} {role} v{v}", z.zone))
                })
                .collect(),
            cache_bytes: cache,
            cache_bound: self.executor().cache_bound(),
        })
    }
}
