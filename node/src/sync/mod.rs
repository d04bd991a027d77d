//! Sync: what a node keeps in sync with its peers (its follow set), the
//! catch-up it runs with each peer, and what it tells of it.
//!
//! - [`table`]: the follow set (`sync.follows.v1`) and per-peer
//!   watermarks (`sync.peers.v1`) in `state.redb`.
//! - [`proto`]: the sync protocol, ALPN `clive/sync/1`: the summary of
//!   heads, and results of jobs a peer submitted.
//! - `catchup`: one catch-up with one peer: heads against the watermark,
//!   the naming client for the zones whose heads differ, results of jobs
//!   this node submitted there, then fetching what the follow set lacks.
//! - `service`: the daemon's `sync` service, which runs a catch-up on every
//!   (re)connection, when a peer says it has news, every
//!   [`service::RECHECK`], and fills the follow set when followed metadata
//!   changes.
//!
//! - [`folder`]: synced folders, a directory tied to a name both ways.
//!
//! A followed zone keeps its metadata (`name follow` does that) and the
//! bytes of every name, or of the names under a prefix, so `name resolve`
//! and `export` work offline; gc keeps what the follow set reaches
//! ([`roots`]). Everything is idempotent: what a catch-up fetched stays
//! (completed chunks are never fetched again), and the watermark is
//! recorded only once a catch-up completed, so one cut off by a lost
//! network or a killed process runs again in full and continues.

pub(crate) mod catchup;
pub mod folder;
pub(crate) mod service;
pub use crate::net::sync::{Exchange, SyncState, proto, table};

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::Arc,
    time::Duration,
};

use clive_cas::{Hash, Progress};
use clive_naming::Zones;
use clive_trust::PublicIdentity;
use iroh::EndpointId;
use serde::{Deserialize, Serialize};

use crate::{Node, NodeError, names::Refreshed, net::lock};
pub use proto::SYNC_ALPN;
use table::FollowRecord;

pub use crate::error::SyncError;

/// One entry of the follow set, as `sync ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowInfo {
    /// `ZONE` or `ZONE/PREFIX`.
    pub entry: String,
    /// The zone.
    pub zone: String,
    /// The prefix (empty: every name).
    pub prefix: String,
    /// Names it reaches.
    pub names: u64,
    /// Names whose content is all here.
    pub present: u64,
    /// Names whose content is not (yet) all here.
    pub missing: u64,
    /// Bytes of content here.
    pub bytes: u64,
}

/// The result of `sync follow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Followed {
    /// The entry, as it stands after fetching.
    pub follow: FollowInfo,
    /// The zone, when `sync follow` followed it first (from a ticket or
    /// root.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_followed: Option<Refreshed>,
    /// Objects fetched now.
    pub objects_fetched: u64,
    /// Payload bytes received now.
    pub bytes_fetched: u64,
    /// Why some content could not be fetched now (the daemon keeps trying).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// The result of `sync unfollow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unfollowed {
    /// `ZONE` or `ZONE/PREFIX`.
    pub entry: String,
}

impl Exchange {
    /// Whether the catch-up completed: nothing failed, nothing missing.
    pub fn complete(&self) -> bool {
        self.errors.is_empty() && self.missing == 0
    }
}

/// The result of `sync now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// One catch-up per peer.
    pub exchanges: Vec<Exchange>,
}

/// One peer, as `sync status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSync {
    /// The peer (endpoint id).
    pub peer: String,
    /// Its `SHA256:` fingerprint.
    pub fingerprint: String,
    /// Whether a connection to it is open.
    pub connected: bool,
    /// `in sync`, `exchanging`, `behind by N objects, B bytes`, `not
    /// syncing (it refused)` for a peer that refused the heads exchange
    /// (this node holds no `fetch` there; `error` says), or, for a peer
    /// not connected, `not connected`.
    pub state: String,
    /// Objects of the follow set it still has to provide.
    pub behind_objects: u64,
    /// Their bytes.
    pub behind_bytes: u64,
    /// Catch-ups run with it since the daemon started.
    pub exchanges: u64,
    /// Payload bytes fetched in those.
    pub bytes_fetched: u64,
    /// Why the last catch-up did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The last catch-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Exchange>,
}

/// The result of `sync status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// Every known peer.
    pub peers: Vec<PeerSync>,
    /// Names in conflict.
    pub conflicts: Vec<clive_naming::zones::Conflict>,
    /// Conflict copies in synced folders (`NAME.sync-conflict-DEVICE-DATE.EXT`),
    /// until someone removes them.
    #[serde(default)]
    pub folder_conflicts: Vec<String>,
    /// Payload bytes fetched for the follow set since the node opened
    /// (by `sync follow`, catch-ups and zone events alike).
    pub bytes_fetched: u64,
    /// Whether every connected peer is in sync (peers that refused to
    /// sync with this node aside).
    pub in_sync: bool,
    /// With `--wait`: it ran out before every connected peer was in sync.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

/// How long `sync status --wait` waits when no DURATION is given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// The `sync` commands: the follow set, catch-ups, status.
#[derive(Debug, Clone, Copy)]
pub struct SyncHandle<'a> {
    node: &'a Node,
}

impl Node {
    /// The `sync` commands: the follow set, catch-ups with peers, status.
    pub fn sync(&self) -> SyncHandle<'_> {
        SyncHandle { node: self }
    }
}

impl SyncHandle<'_> {
    /// The conflicts recorded in every zone this node knows, until someone
    /// publishes those names again.
    fn conflicts(&self) -> Result<Vec<clive_naming::zones::Conflict>, NodeError> {
        let zones = self.zones();
        let mut out = Vec::new();
        for zone in zones.list(None)? {
            out.extend(zones.conflicts(&zone.zone)?);
        }
        Ok(out)
    }

    fn zones(&self) -> Zones {
        Zones::new(self.node.db().clone())
    }

    /// The follow set.
    pub fn follows(&self) -> Result<Vec<FollowRecord>, NodeError> {
        Ok(table::follows(self.node.db())?)
    }

    /// Adds `ZONE[/PREFIX]` to the follow set, `ZONE` a zone this node
    /// knows; a zone ticket or a root.json file (relative to `cwd`) is
    /// followed first, as `name follow` does. Then fetches what the entry
    /// reaches from the peers (what cannot be fetched now is said, and the
    /// daemon keeps trying).
    pub async fn follow(
        &self,
        arg: &str,
        cwd: &Path,
        progress: Arc<dyn Progress>,
    ) -> Result<Followed, NodeError> {
        let arg = arg.trim();
        let _filling = self.node.sync_state().call_filling();
        let ticket = arg.starts_with(crate::net::ticket::ZONE_PREFIX);
        let (zone, prefix, zone_followed) = if ticket || cwd.join(arg).is_file() {
            let refreshed = self.node.names().follow(arg, cwd, None, None).await?;
            (refreshed.zone.clone(), String::new(), Some(refreshed))
        } else {
            let (zone, prefix) = arg.split_once('/').unwrap_or((arg, ""));
            (zone.to_owned(), prefix.trim_matches('/').to_owned(), None)
        };
        clive_naming::name::check_zone(&zone)?;
        if !prefix.is_empty() {
            clive_naming::name::check_path(&prefix)?;
        }
        if self.zones().show(&zone, None).is_err() {
            return Err(SyncError::UnknownZone { zone }.into());
        }
        let record = FollowRecord {
            version: table::RECORD_VERSION,
            zone,
            prefix,
            added: self.node.now(),
        };
        table::put_follow(self.node.db(), &record)?;
        // A zone made by another TUF tool: its targets' bytes first.
        let downloaded = self
            .node
            .names()
            .download_mirror_targets(&record.zone, &record.prefix)
            .await;
        let mut followed = Followed {
            follow: self.info(&record).await?,
            zone_followed,
            objects_fetched: 0,
            bytes_fetched: 0,
            errors: Vec::new(),
        };
        match downloaded {
            Ok(d) => {
                followed.objects_fetched += d.downloaded;
                followed.bytes_fetched += d.bytes;
                followed.errors.extend(
                    d.failed
                        .iter()
                        .map(|f| format!("{}/{}: {}", d.zone, f.name, f.error)),
                );
            }
            Err(e) => followed.errors.push(format!(
                "zone {}: {}",
                record.zone,
                crate::error::error_chain(&e)
            )),
        }
        if followed.follow.missing > 0 {
            match self.node.online().await {
                Ok(net) => {
                    let filled = catchup::fill(
                        self.node,
                        &net.shared,
                        std::slice::from_ref(&record),
                        Vec::new(),
                        progress,
                    )
                    .await;
                    followed.objects_fetched = filled.objects;
                    followed.bytes_fetched = filled.bytes;
                    followed.errors = filled.errors;
                }
                Err(e) => followed.errors.push(e.to_string()),
            }
            followed.follow = self.info(&record).await?;
        }
        // Every connected peer is to be looked at again.
        if let Some(net) = self.node.net.get() {
            for peer in net.shared.conns_snapshot() {
                self.node.sync_state().peer_has_news(peer);
            }
        }
        Ok(followed)
    }

    /// Removes `ZONE[/PREFIX]` from the follow set: what only it kept is
    /// left to gc. The zone itself stays followed (`name follow`).
    pub fn unfollow(&self, entry: &str) -> Result<Unfollowed, NodeError> {
        let entry = entry.trim().trim_end_matches('/');
        match table::remove_follow(self.node.db(), entry)? {
            Some(record) => Ok(Unfollowed {
                entry: record.key(),
            }),
            None => Err(SyncError::NotFollowed {
                entry: entry.to_owned(),
            }
            .into()),
        }
    }

    /// Every entry of the follow set, with what of it is here.
    pub async fn ls(&self) -> Result<Vec<FollowInfo>, NodeError> {
        let mut out = Vec::new();
        for record in self.follows()? {
            out.push(self.info(&record).await?);
        }
        Ok(out)
    }

    async fn info(&self, record: &FollowRecord) -> Result<FollowInfo, NodeError> {
        let targets = catchup::targets(&self.zones(), std::slice::from_ref(record));
        let (mut present, mut bytes) = (0, 0);
        let complete = &self.node.sync_state().complete;
        for (hash, _) in &targets {
            if let Some(size) = complete.here(self.node.cas(), *hash).await? {
                present += 1;
                bytes += size;
            }
        }
        let names = targets.len() as u64;
        Ok(FollowInfo {
            entry: record.key(),
            zone: record.zone.clone(),
            prefix: record.prefix.clone(),
            names,
            present,
            missing: names - present,
            bytes,
        })
    }

    /// Runs a catch-up now with `peer` (KEY), or with every connected peer
    /// (every known one when none is connected).
    pub async fn now(
        &self,
        peer: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<SyncReport, NodeError> {
        let net = self.node.online().await?;
        let shared = &net.shared;
        let peers = match peer {
            Some(key) => {
                let key = self.node.trust().resolve_key(key)?;
                vec![crate::net::endpoint_id(&key.bytes())?]
            }
            None => {
                let connected = shared.conns_snapshot();
                if connected.is_empty() {
                    crate::net::state::peers(&shared.db)?
                        .into_iter()
                        .filter_map(|(id, _)| EndpointId::from_bytes(&id).ok())
                        .collect()
                } else {
                    connected
                }
            }
        };
        let mut exchanges = Vec::new();
        for id in peers {
            let exchange = catchup::run(self.node, shared, id, true, progress.clone()).await;
            match exchange {
                Ok(exchange) => exchanges.push(exchange),
                Err(e) if peer.is_some() => return Err(e),
                Err(e) => exchanges.push(Exchange {
                    peer: id.to_string(),
                    errors: vec![crate::error::error_chain(&e)],
                    ..Exchange::default()
                }),
            }
        }
        Ok(SyncReport { exchanges })
    }

    /// Where each peer stands; with `wait`, once every connected peer is in
    /// sync or `wait` has passed (then `timed_out`). On a terminal,
    /// `progress` shows the bytes still to fetch going down.
    pub async fn status(
        &self,
        wait: Option<Duration>,
        progress: Arc<dyn Progress>,
    ) -> Result<SyncStatus, NodeError> {
        let Some(wait) = wait else {
            return self.status_now();
        };
        let deadline = tokio::time::Instant::now() + wait;
        let mut total = 0u64;
        let mut shown = 0u64;
        loop {
            let mut status = self.status_now()?;
            let behind: u64 = status.peers.iter().map(|p| p.behind_bytes).sum();
            if behind > total.saturating_sub(shown) {
                total = shown + behind;
                progress.set_total(total);
            }
            let done = total.saturating_sub(behind);
            if done > shown {
                progress.advance(done - shown);
                shown = done;
            }
            if status.in_sync {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                status.timed_out = true;
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn status_now(&self) -> Result<SyncStatus, NodeError> {
        let net = self.node.net.get();
        let connected: HashMap<EndpointId, usize> = net
            .as_ref()
            .map(|n| {
                lock(&n.shared.conns)
                    .iter()
                    .filter(|(_, c)| c.close_reason().is_none())
                    .map(|(id, c)| (*id, c.stable_id()))
                    .collect()
            })
            .unwrap_or_default();
        let states = lock(&self.node.sync_state().peers).clone();
        let mut peers = Vec::new();
        let mut in_sync = true;
        for (id, _) in crate::net::state::peers(self.node.db())? {
            let Ok(endpoint) = EndpointId::from_bytes(&id) else {
                continue;
            };
            let conn = connected.get(&endpoint).copied();
            let is_connected = conn.is_some();
            let state = states.get(&endpoint).cloned().unwrap_or_default();
            let settled = state.settled && !state.due && !state.running && state.on_conn == conn;
            let refused = state.refused && !state.due && !state.running && state.on_conn == conn;
            let text = if !is_connected && !state.running {
                "not connected".to_owned()
            } else if refused {
                "not syncing (it refused)".to_owned()
            } else if state.behind.0 > 0 {
                format!(
                    "behind by {} objects, {} bytes",
                    state.behind.0, state.behind.1
                )
            } else if settled {
                "in sync".to_owned()
            } else {
                "exchanging".to_owned()
            };
            if is_connected && !settled && !refused {
                in_sync = false;
            }
            let public = PublicIdentity::from_bytes(id);
            peers.push(PeerSync {
                peer: public.endpoint_id(),
                fingerprint: public.fingerprint(),
                connected: is_connected,
                state: text,
                behind_objects: state.behind.0,
                behind_bytes: state.behind.1,
                exchanges: state.exchanges,
                bytes_fetched: state.bytes_fetched,
                error: state.error,
                last: state.last,
            });
        }
        Ok(SyncStatus {
            peers,
            conflicts: self.conflicts()?,
            folder_conflicts: self.folder_conflicts(),
            bytes_fetched: self
                .node
                .sync_state()
                .fetched
                .load(std::sync::atomic::Ordering::Relaxed),
            in_sync,
            timed_out: false,
        })
    }
}

/// What the follow set keeps from gc, and what it does not: of the hashes
/// zones' names point at, those of zones this node neither publishes in
/// nor follows with `sync follow` (names outside a followed prefix
/// included) are no roots. Returns the hashes to leave out of the names'
/// roots (unless another kept name points at them too).
pub(crate) fn unkept_names(node: &Node) -> Result<HashSet<String>, NodeError> {
    let zones = Zones::new(node.db().clone());
    let follows = table::follows(node.db())?;
    let mut kept = HashSet::new();
    let mut unkept = HashSet::new();
    for info in zones.list(Some(node.public()))? {
        let entries: Vec<&FollowRecord> = follows.iter().filter(|f| f.zone == info.zone).collect();
        for (name, file) in zones.targets(&info.zone).unwrap_or_default() {
            let Some(hash) = clive_naming::source::content_address(&file) else {
                continue;
            };
            if info.publisher || entries.iter().any(|f| f.covers(&name)) {
                kept.insert(hash);
            } else {
                unkept.insert(hash);
            }
        }
    }
    Ok(unkept.difference(&kept).cloned().collect())
}

/// The hashes the follow set reaches, for gc's list of roots.
pub(crate) fn follow_roots(node: &Node) -> Result<Vec<Hash>, NodeError> {
    let follows = table::follows(node.db())?;
    let zones = Zones::new(node.db().clone());
    Ok(catchup::targets(&zones, &follows)
        .into_iter()
        .map(|(h, _)| h)
        .collect())
}
