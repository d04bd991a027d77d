//! Zones over the network: the zones protocol (ALPN `clive/zones/1`),
//! serving a zone's metadata files to peers, fetching them from a peer and
//! running the TUF client workflow on them, and announcing new versions to
//! followers (and following the announcements of others).
//!
//! Metadata files travel as objects: a peer lists them (`index`, which
//! needs `fetch`), the follower fetches the objects it lacks like any
//! other, verified by hash, then verifies their signatures with the naming
//! client before anything is trusted.
//!
//! Format version 1, in the exchange format of [`wire`] (one request and
//! one reply per stream, JSON tagged by `type`, at most
//! [`wire::MAX_MESSAGE`] bytes, unknown fields refused):
//!
//! | request  | reply                  | needs   |
//! |----------|------------------------|---------|
//! | `index`  | `files` or `refused`   | `fetch` |
//! | `submit` | `accepted` or `refused`| `push`  |
//! | `mirrored` | `mirrored` or `refused` | `fetch` |
//!
//! `mirrored` (added in version 1, answered `refused` by older nodes as
//! an unknown request) lists what this node found downloading the targets
//! of a zone made by another TUF tool (no BLAKE3 in its metadata), in name
//! order after `after`, as many as fit a message (`more` says whether
//! others follow). The asker fetches the bytes by BLAKE3 and checks them
//! against the length and hashes its own verified metadata signs before it
//! records anything (see `names/mirror.rs`).
//!
//! A peer's answers are bounded before anything is trusted: at most
//! [`MAX_FILES`] files of an index are taken, none over [`MAX_FILE`]
//! bytes (checked against the listed size, then against the stored
//! object), and every file is verified by the naming client.

use std::sync::Arc;

use clive_cas::{Hash, NoProgress};
use clive_naming::{Zones, source::Bundle, state::Verified};
use clive_trust::Capability;
use iroh::EndpointId;

use iroh::{
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
};
use serde::{Deserialize, Serialize};

use super::{announce, fetch, keeper, shared::Shared, wire};
use crate::service::Running;
use crate::{NamesError, NodeError};

/// The ALPN of the zones protocol, with its version.
pub const ZONES_ALPN: &[u8] = b"clive/zones/1";

/// What a peer asks about zones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ZoneRequest {
    /// The current metadata files of a zone, by its id: answered with
    /// [`ZoneReply::Files`] to holders of `fetch`.
    Index {
        /// The zone's id.
        zone: String,
    },
    /// "Here is a new version of a delegated role of your zone, signed by
    /// its delegate: fetch it from me." Answered with
    /// [`ZoneReply::Accepted`] to holders of `push`.
    Submit {
        /// The zone's id.
        zone: String,
        /// The delegated role.
        role: String,
        /// The object holding its metadata (BLAKE3, hex).
        hash: String,
    },
    /// The downloaded targets of a zone made by another TUF tool, by its
    /// id, names after `after`: answered with [`ZoneReply::Mirrored`] to
    /// holders of `fetch`.
    Mirrored {
        /// The zone's id.
        zone: String,
        /// Only names after this one (the last of the previous reply).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
}

/// What a peer answers about zones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ZoneReply {
    /// A zone's metadata files: the path a repository serves each under,
    /// and the object holding it (fetched like any object).
    Files {
        /// The files.
        files: Vec<ZoneFile>,
    },
    /// The submitted role is in the zone's new snapshot and timestamp.
    Accepted {
        /// The new timestamp version.
        timestamp: u64,
    },
    /// Downloaded targets: each name with the BLAKE3, length and hashes
    /// of the bytes this node verified for it.
    Mirrored {
        /// The names, in order.
        targets: Vec<MirroredTarget>,
        /// Whether names after the last one follow.
        more: bool,
    },
    /// The request was refused.
    Refused {
        /// Why, for the caller's user.
        reason: String,
    },
}

/// One metadata file of a zone, as a peer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneFile {
    /// `2.root.json`, `timestamp.json`, `7.targets.json`, ...
    pub path: String,
    /// The object holding it (BLAKE3, hex).
    pub hash: String,
    /// Its size.
    pub size: u64,
}

/// One downloaded target, as a peer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirroredTarget {
    /// The name (target path).
    pub name: String,
    /// What its bytes are.
    #[serde(flatten)]
    pub mirrored: clive_naming::zones::Mirrored,
}

fn refused(reason: String) -> ZoneReply {
    ZoneReply::Refused { reason }
}

/// The zones protocol's handler.
#[derive(Debug, Clone)]
pub struct ZonesProtocol(pub std::sync::Weak<Shared>);

impl ProtocolHandler for ZonesProtocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        while let Ok((send, recv)) = conn.accept_bi().await {
            let shared = self.0.clone();
            let peer = conn.remote_id();
            tokio::spawn(async move {
                let weak = &shared;
                let reply = move |request| async move {
                    let shared = weak.upgrade()?;
                    Some(match request {
                        ZoneRequest::Index { zone } => index(&shared, peer, &zone).await,
                        ZoneRequest::Submit { zone, role, hash } => {
                            accept_submission(&shared, peer, &zone, &role, &hash).await
                        }
                        ZoneRequest::Mirrored { zone, after } => {
                            mirrored(&shared, peer, &zone, after.as_deref())
                        }
                    })
                };
                if let Err(e) = wire::answer(send, recv, reply, refused).await {
                    tracing::debug!(peer = %peer.fmt_short(), "zones stream: {e}");
                }
            });
        }
        Ok(())
    }
}

/// Follows the zone announcements the announcer hears, until stopped (the
/// daemon's `zone follower` service): the zones concern subscribes to the
/// network's typed events itself.
pub fn follow_announcements(shared: &Arc<Shared>) -> Running {
    let mut events = shared.announcements.subscribe();
    let shared = Arc::downgrade(shared);
    Running::task(
        "zone follower",
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(announce::Announcement::Zone {
                        origin,
                        zone,
                        version,
                    }) => {
                        let Some(shared) = shared.upgrade() else {
                            return;
                        };
                        announced(&shared, origin, &zone, version);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!("missed {n} announcements");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }),
    )
}

/// Largest metadata file fetched from a peer.
pub const MAX_FILE: u64 = 16 * 1024 * 1024;
/// Most files one zone index lists (older targets versions are left out).
pub const MAX_FILES: usize = 256;

/// Answers `index`: the zone's files, put into the store so the peer
/// can fetch them.
pub async fn index(shared: &Shared, peer: EndpointId, zone_id: &str) -> ZoneReply {
    if let Err(why) = shared.require(&peer, Capability::Fetch) {
        return refused(why.to_string());
    }
    let zones = Zones::new(shared.db.clone());
    let (current, older) = match zones.by_id(zone_id) {
        Ok(Some((zone, _))) => match (zones.files(&zone), zones.older_files(&zone)) {
            (Ok(current), Ok(older)) => (current, older),
            (Err(e), _) | (_, Err(e)) => return refused(e.to_string()),
        },
        Ok(None) => return refused(format!("this node has no zone {zone_id}")),
        Err(e) => return refused(e.to_string()),
    };
    // Every current file, then older versions, newest first, so a long
    // history is cut at its old end.
    let mut older: Vec<(String, Vec<u8>)> = older.files.into_iter().collect();
    older.sort_by_key(|(path, _)| std::cmp::Reverse(version_of(path)));
    let files: Vec<(String, Vec<u8>)> = current.files.into_iter().chain(older).collect();
    let mut out = Vec::new();
    for (path, bytes) in files.into_iter().take(MAX_FILES) {
        let size = bytes.len() as u64;
        match shared.store.put_bytes(bytes).await {
            Ok((hash, _guard)) => out.push(ZoneFile {
                path,
                hash: hash.to_string(),
                size,
            }),
            Err(e) => return refused(format!("could not store its metadata: {e}")),
        }
    }
    ZoneReply::Files { files: out }
}

/// Room left in a `mirrored` reply for what is not a target.
const MIRRORED_ROOM: usize = wire::MAX_MESSAGE - 1024;

/// Answers `mirrored`: the zone's downloaded targets after `after`, as
/// many as fit one message.
pub fn mirrored(
    shared: &Shared,
    peer: EndpointId,
    zone_id: &str,
    after: Option<&str>,
) -> ZoneReply {
    if let Err(why) = shared.require(&peer, Capability::Fetch) {
        return refused(why.to_string());
    }
    let zones = Zones::new(shared.db.clone());
    let all = match zones.by_id(zone_id) {
        Ok(Some((zone, _))) => match zones.mirrored(&zone) {
            Ok(all) => all,
            Err(e) => return refused(e.to_string()),
        },
        Ok(None) => return refused(format!("this node has no zone {zone_id}")),
        Err(e) => return refused(e.to_string()),
    };
    let mut targets = Vec::new();
    let mut used = 0;
    let mut more = false;
    for (name, m) in all {
        if after.is_some_and(|a| name.as_str() <= a) {
            continue;
        }
        let target = MirroredTarget { name, mirrored: m };
        let size = serde_json::to_vec(&target).map_or(MIRRORED_ROOM, |b| b.len() + 1);
        if used + size > MIRRORED_ROOM {
            more = true;
            break;
        }
        used += size;
        targets.push(target);
    }
    ZoneReply::Mirrored { targets, more }
}

/// Most `mirrored` requests one listing makes (each reply nearly fills a
/// message, so this bounds a listing well above any real zone).
const MAX_MIRRORED_PAGES: usize = 1024;

/// What `peer` found downloading the targets of the zone `zone_id` (see
/// [`mirrored`]), every page.
pub async fn list_mirrored(
    shared: &Arc<Shared>,
    zone_id: &str,
    peer: EndpointId,
) -> Result<Vec<MirroredTarget>, NodeError> {
    let conn = connect(shared, peer).await?;
    let mut out: Vec<MirroredTarget> = Vec::new();
    for _ in 0..MAX_MIRRORED_PAGES {
        let request = ZoneRequest::Mirrored {
            zone: zone_id.to_owned(),
            after: out.last().map(|t| t.name.clone()),
        };
        match wire::call(&conn, &request, Some(wire::CALL_TIMEOUT)).await? {
            ZoneReply::Mirrored { targets, more } => {
                let last = out.last().map(|t| t.name.clone());
                // Names only grow: a peer repeating itself ends the listing.
                let fresh = targets
                    .into_iter()
                    .filter(|t| last.as_ref().is_none_or(|l| t.name > *l));
                let before = out.len();
                out.extend(fresh);
                if !more || out.len() == before {
                    break;
                }
            }
            other => return Err(unanswered(peer, other)),
        }
    }
    Ok(out)
}

/// A connection to `peer` for zone requests: says hello on the peer
/// protocol first (presenting this node's certificates, as any request
/// does), then dials the zones protocol.
async fn connect(shared: &Arc<Shared>, peer: EndpointId) -> Result<Connection, NodeError> {
    keeper::connect(shared, peer).await?;
    keeper::dial(shared, peer, ZONES_ALPN).await
}

/// The version a versioned file name starts with (unversioned: highest).
fn version_of(path: &str) -> u64 {
    path.split('.')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Fetches `zone`'s files from `peer` and takes them through the client
/// workflow; on a device of the zone, merges them with this node's
/// ([`Zones::merge_from`]) and announces what the merge signed.
pub async fn sync_from(
    shared: &Arc<Shared>,
    zone: &str,
    zone_id: &str,
    peer: EndpointId,
) -> Result<Verified, NodeError> {
    let bundle = fetch_files(shared, zone_id, peer).await?;
    let theirs = bundle
        .files
        .get("timestamp.json")
        .and_then(|b| clive_naming::tuf::metadata::peek_version(b.as_slice()))
        .unwrap_or(0);
    let zones = Zones::new(shared.db.clone());
    let source = format!("peer {}", peer.fmt_short());
    let name = zone.to_owned();
    let held = shared.clone();
    let merged = tokio::task::spawn_blocking(move || {
        zones
            .merge_from(&name, bundle, &source, &*held.signer, held.clock.now())
            .map_err(NodeError::from)
    })
    .await
    .map_err(NamesError::Verifying)??;
    shared.zone_events.stored(zone);
    // What the merge signed, or a device's state ahead of the peer's, is
    // announced: the peer (and followers) then take it.
    if merged.signed || (merged.verified.timestamp > theirs && zones_device(shared, zone)) {
        announce(shared, zone_id.to_owned(), merged.verified.timestamp);
    }
    Ok(merged.verified)
}

/// Whether this node is a device of `zone`: it signs it.
fn zones_device(shared: &Shared, zone: &str) -> bool {
    Zones::new(shared.db.clone())
        .can_publish(zone, &clive_trust::Signer::public(&*shared.signer))
        .unwrap_or(false)
}

/// The metadata files `peer` lists for the zone `zone_id`, fetched.
pub async fn fetch_files(
    shared: &Arc<Shared>,
    zone_id: &str,
    peer: EndpointId,
) -> Result<Bundle, NodeError> {
    let conn = connect(shared, peer).await?;
    let request = ZoneRequest::Index {
        zone: zone_id.to_owned(),
    };
    let files = match wire::call(&conn, &request, Some(wire::CALL_TIMEOUT)).await? {
        ZoneReply::Files { files } => files,
        other => return Err(unanswered(peer, other)),
    };
    let mut bundle = Bundle::default();
    for file in files.into_iter().take(MAX_FILES) {
        if file.size > MAX_FILE {
            continue;
        }
        let Ok(hash) = clive_cas::parse_hash(&file.hash) else {
            continue;
        };
        let bytes = read_or_fetch(shared, hash, peer).await?;
        bundle.files.insert(file.path, bytes);
    }
    Ok(bundle)
}

async fn read_or_fetch(
    shared: &Arc<Shared>,
    hash: Hash,
    peer: EndpointId,
) -> Result<Vec<u8>, NodeError> {
    if !shared.store.has(hash).await.unwrap_or(false) {
        fetch::get(shared, hash, vec![peer], Arc::new(NoProgress)).await?;
    }
    if shared.store.size(hash).await? > MAX_FILE {
        return Err(NamesError::TooLarge {
            hash,
            limit: MAX_FILE,
        }
        .into());
    }
    Ok(shared.store.read_bytes(hash).await?.to_vec())
}

/// Hands a delegate's new version of `role` to the zone's publisher
/// `origin`, which fetches it from this node; returns the zone's new
/// timestamp version.
pub async fn submit(
    shared: &Arc<Shared>,
    zone_id: &str,
    role: &str,
    bytes: Vec<u8>,
    origin: EndpointId,
) -> Result<u64, NodeError> {
    let (hash, _guard) = shared.store.put_bytes(bytes).await?;
    fetch::grant(shared, origin, &[hash]);
    let request = ZoneRequest::Submit {
        zone: zone_id.to_owned(),
        role: role.to_owned(),
        hash: hash.to_string(),
    };
    let reply = match connect(shared, origin).await {
        Ok(conn) => wire::call(&conn, &request, Some(wire::CALL_TIMEOUT)).await,
        Err(e) => Err(e),
    };
    fetch::ungrant(shared, origin, vec![hash]);
    match reply? {
        ZoneReply::Accepted { timestamp } => Ok(timestamp),
        ZoneReply::Refused { reason } => Err(NamesError::SubmitRefused {
            publisher: origin.fmt_short().to_string(),
            role: role.to_owned(),
            reason,
        }
        .into()),
        other => Err(NamesError::OutOfTurn {
            peer: origin.fmt_short().to_string(),
            reply: format!("{other:?}"),
        }
        .into()),
    }
}

/// Answers `submit`: fetches the delegate's metadata from it and
/// takes it into the zone when it verifies.
pub async fn accept_submission(
    shared: &Arc<Shared>,
    peer: EndpointId,
    zone_id: &str,
    role: &str,
    hash: &str,
) -> ZoneReply {
    if let Err(why) = shared.require(&peer, Capability::Push) {
        return refused(why.to_string());
    }
    let Ok(hash) = clive_cas::parse_hash(hash) else {
        return refused("not a hash".into());
    };
    let zones = Zones::new(shared.db.clone());
    let zone = match zones.by_id(zone_id) {
        Ok(Some((zone, _))) => zone,
        Ok(None) => return refused(format!("this node has no zone {zone_id}")),
        Err(e) => return refused(e.to_string()),
    };
    let bytes = match read_or_fetch(shared, hash, peer).await {
        Ok(bytes) => bytes,
        Err(e) => return refused(e.to_string()),
    };
    let (z, r, held) = (zone.clone(), role.to_owned(), shared.clone());
    let accepted = tokio::task::spawn_blocking(move || {
        zones.accept_delegated(&z, &r, &bytes, &*held.signer, held.clock.now())
    })
    .await;
    match accepted {
        Ok(Ok(timestamp)) => {
            tracing::info!(zone, role, "took a delegate's new metadata");
            shared.zone_events.stored(&zone);
            announce(shared, zone_id.to_owned(), timestamp);
            ZoneReply::Accepted { timestamp }
        }
        Ok(Err(e)) => refused(e.to_string()),
        Err(e) => refused(e.to_string()),
    }
}

/// The ticket followers of `zone` use: `publisher` (this node) at
/// `addrs`, the zone's id and the hash of its current root.
pub fn zone_ticket(
    zones: &Zones,
    zone: &str,
    publisher: [u8; 32],
    addrs: Vec<std::net::SocketAddr>,
) -> Result<String, NodeError> {
    let info = zones.show(zone, None)?;
    let files = zones.files(zone)?;
    let root = files
        .files
        .get("root.json")
        .ok_or_else(|| NamesError::NoRoot(zone.to_owned()))?;
    let mut id = [0u8; 16];
    hex::decode_to_slice(&info.id, &mut id).map_err(|_| NamesError::NoId(zone.to_owned()))?;
    Ok(super::ticket::ZoneTicket {
        publisher,
        addrs,
        root: *blake3::hash(root).as_bytes(),
        id,
        zone: zone.to_owned(),
    }
    .encode())
}

/// Tells followers that `zone_id` has a new timestamp `version`.
pub fn announce(shared: &Arc<Shared>, zone_id: String, version: u64) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let key = shared.endpoint.secret_key().clone();
        shared
            .announcer
            .send(
                &key,
                announce::Body::Zone {
                    zone: zone_id,
                    version,
                },
            )
            .await;
    });
}

/// An announcement that `zone_id` has timestamp `version` at `origin`:
/// fetches and verifies it when this node follows the zone and is behind.
pub fn announced(shared: &Arc<Shared>, origin: EndpointId, zone_id: &str, version: u64) {
    let zones = Zones::new(shared.db.clone());
    let Ok(Some((zone, record))) = zones.by_id(zone_id) else {
        return;
    };
    // A device of the zone also takes a peer's version equal to its own:
    // two devices publishing apart reach the same version with different
    // content, which it merges.
    let device = zones_device(shared, &zone);
    if origin == shared.endpoint.id()
        || record
            .verified
            .as_ref()
            .is_some_and(|v| v.timestamp > version || (v.timestamp == version && !device))
    {
        return;
    }
    let shared = shared.clone();
    let zone_id = zone_id.to_owned();
    tokio::spawn(async move {
        match sync_from(&shared, &zone, &zone_id, origin).await {
            Ok(v) => tracing::info!(
                zone,
                timestamp = v.timestamp,
                "zone updated from an announcement"
            ),
            Err(e) => tracing::warn!(zone, "zone announced by {}: {e}", origin.fmt_short()),
        }
    });
}

/// The error for a reply that does not answer a listing: a refusal, or a
/// reply out of turn.
fn unanswered(peer: EndpointId, reply: ZoneReply) -> NodeError {
    match reply {
        ZoneReply::Refused { reason } => NamesError::ListRefused {
            peer: peer.fmt_short().to_string(),
            reason,
        },
        other => NamesError::OutOfTurn {
            peer: peer.fmt_short().to_string(),
            reply: format!("{other:?}"),
        },
    }
    .into()
}
