//! Zones over the network: serving a zone's metadata files to peers,
//! fetching them from a peer and running the TUF client workflow on them,
//! and announcing new versions to followers.
//!
//! Metadata files travel as objects: a peer lists them (`zone_index`, which
//! needs `fetch`), the follower fetches the objects it lacks like any
//! other, verified by hash, then verifies their signatures with the naming
//! client before anything is trusted.

use std::sync::Arc;

use clive_cas::{Hash, NoProgress};
use clive_naming::{Zones, source::Bundle, state::Verified};
use clive_trust::{Capability, PublicIdentity};
use iroh::EndpointId;

use super::{Shared, announce, fetch, keeper, wire};
use crate::{NamesError, NodeError};

/// Largest metadata file fetched from a peer.
pub const MAX_FILE: u64 = 16 * 1024 * 1024;
/// Most files one zone index lists (older targets versions are left out).
pub const MAX_FILES: usize = 256;

/// Answers `zone_index`: the zone's files, put into the store so the peer
/// can fetch them.
pub async fn index(shared: &Shared, peer: EndpointId, zone_id: &str) -> wire::PeerReply {
    let refused = |reason: String| wire::PeerReply::Refused { reason };
    if let Err(e) = shared.trust.authorizer().check(
        &PublicIdentity::from_bytes(*peer.as_bytes()),
        Capability::Fetch,
    ) {
        return refused(format!("you do not hold fetch here: {e}"));
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
            Ok((hash, _guard)) => out.push(wire::ZoneFile {
                path,
                hash: hash.to_string(),
                size,
            }),
            Err(e) => return refused(format!("could not store its metadata: {e}")),
        }
    }
    wire::PeerReply::ZoneFiles { files: out }
}

/// The version a versioned file name starts with (unversioned: highest).
fn version_of(path: &str) -> u64 {
    path.split('.')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Fetches `zone`'s files from `peer` and takes them through the client
/// workflow.
pub async fn sync_from(
    shared: &Arc<Shared>,
    zone: &str,
    zone_id: &str,
    peer: EndpointId,
) -> Result<Verified, NodeError> {
    let bundle = fetch_files(shared, zone_id, peer).await?;
    let zones = Zones::new(shared.db.clone());
    let source = format!("peer {}", peer.fmt_short());
    let zone = zone.to_owned();
    let clock = shared.clock.clone();
    tokio::task::spawn_blocking(move || {
        zones
            .update_from(&zone, bundle, &source, clock.now())
            .map_err(NodeError::from)
    })
    .await
    .map_err(NamesError::Verifying)?
}

/// The metadata files `peer` lists for the zone `zone_id`, fetched.
pub async fn fetch_files(
    shared: &Arc<Shared>,
    zone_id: &str,
    peer: EndpointId,
) -> Result<Bundle, NodeError> {
    // A connection the peer dialled carries no requests to it: dial.
    let conn = keeper::connect(shared, peer).await?;
    let request = wire::PeerRequest::ZoneIndex {
        zone: zone_id.to_owned(),
    };
    let files = match wire::call(&conn, &request, Some(wire::CALL_TIMEOUT)).await? {
        wire::PeerReply::ZoneFiles { files } => files,
        wire::PeerReply::Refused { reason } => {
            return Err(NamesError::ListRefused {
                peer: peer.fmt_short().to_string(),
                reason,
            }
            .into());
        }
        other => {
            return Err(NamesError::OutOfTurn {
                peer: peer.fmt_short().to_string(),
                reply: format!("{other:?}"),
            }
            .into());
        }
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
    let request = wire::PeerRequest::ZoneSubmit {
        zone: zone_id.to_owned(),
        role: role.to_owned(),
        hash: hash.to_string(),
    };
    let reply = match keeper::connect(shared, origin).await {
        Ok(conn) => wire::call(&conn, &request, Some(wire::CALL_TIMEOUT)).await,
        Err(e) => Err(e),
    };
    fetch::ungrant(shared, origin, vec![hash]);
    match reply? {
        wire::PeerReply::ZoneAccepted { timestamp } => Ok(timestamp),
        wire::PeerReply::Refused { reason } => Err(NamesError::SubmitRefused {
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

/// Answers `zone_submit`: fetches the delegate's metadata from it and
/// takes it into the zone when it verifies.
pub async fn accept_submission(
    shared: &Arc<Shared>,
    peer: EndpointId,
    zone_id: &str,
    role: &str,
    hash: &str,
) -> wire::PeerReply {
    let refused = |reason: String| wire::PeerReply::Refused { reason };
    if let Err(e) = shared.trust.authorizer().check(
        &PublicIdentity::from_bytes(*peer.as_bytes()),
        Capability::Push,
    ) {
        return refused(format!("you do not hold push here: {e}"));
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
        zones.accept_delegated(&z, &r, &bytes, &held.signer, held.clock.now())
    })
    .await;
    match accepted {
        Ok(Ok(timestamp)) => {
            tracing::info!(zone, role, "took a delegate's new metadata");
            announce(shared, zone_id.to_owned(), timestamp);
            wire::PeerReply::ZoneAccepted { timestamp }
        }
        Ok(Err(e)) => refused(e.to_string()),
        Err(e) => refused(e.to_string()),
    }
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
    if record
        .verified
        .as_ref()
        .is_some_and(|v| v.timestamp >= version)
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
