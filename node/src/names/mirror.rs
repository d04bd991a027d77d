//! The bytes of zones made by other TUF tools (python-tuf, go-tuf,
//! tuf-on-ci): their targets carry `sha256` (or `sha512`) but no BLAKE3,
//! so a name resolves only once this node has downloaded its bytes,
//! verified them against the signed length and every listed hash, stored
//! them, and recorded the BLAKE3 ([`clive_naming::zones::Mirrored`]).
//!
//! The bytes come from the zone's HTTP mirror (`targets/` below it,
//! hash-prefixed names under consistent snapshots) or, for a zone followed
//! through a peer, from that peer: it lists what it downloaded (the zones
//! protocol's `mirrored` request), this node fetches each object by its
//! BLAKE3 and checks it against the length and hashes of its own verified
//! metadata before recording anything. Nothing that fails a check is
//! stored or recorded. `sync follow` calls this for every followed zone.

use std::sync::Arc;

use clive_cas::{Hash, NoProgress};
use clive_naming::tuf::{TargetFile, http::HttpRemote, updater::Remote};
use clive_naming::zones::{Mirrored, PlainTarget, target_url_path};
use iroh::EndpointId;
use serde::{Deserialize, Serialize};

use super::NamesHandle;
use crate::net::{fetch, zones as net_zones};
use crate::{NamesError, NodeError};

/// What [`NamesHandle::download_mirror_targets`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downloaded {
    /// The zone.
    pub zone: String,
    /// Where the bytes came from: the mirror's URL, or `peer ID`;
    /// empty when nothing needed them.
    pub source: String,
    /// Targets without BLAKE3 in the metadata (under the prefix).
    pub targets: u64,
    /// Of those, downloaded, verified and recorded now.
    pub downloaded: u64,
    /// Bytes of those.
    pub bytes: u64,
    /// Of those, already downloaded before (unchanged since).
    pub already: u64,
    /// Targets refused or not obtained, with why; nothing was stored or
    /// recorded for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<NotDownloaded>,
}

/// A target [`NamesHandle::download_mirror_targets`] could not get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotDownloaded {
    /// The name.
    pub name: String,
    /// Why.
    pub error: String,
}

impl NamesHandle<'_> {
    /// Downloads the targets of `zone` under `prefix` (every one for `""`)
    /// that its metadata lists without a BLAKE3 and this node has not got
    /// yet (or whose signed hashes changed since): from its mirror, else
    /// from the peer it is followed through. Each is verified by its TUF
    /// length and hashes before it is stored; then the name resolves to
    /// the BLAKE3 of its bytes. A zone whose targets all carry a BLAKE3
    /// needs nothing and returns at once.
    pub async fn download_mirror_targets(
        &self,
        zone: &str,
        prefix: &str,
    ) -> Result<Downloaded, NodeError> {
        let zones = self.zones();
        let info = zones.show(zone, None)?;
        let plain = zones.plain_targets(zone, prefix)?;
        let mut out = Downloaded {
            zone: zone.to_owned(),
            targets: plain.len() as u64,
            ..Downloaded::default()
        };
        let (done, pending): (Vec<PlainTarget>, Vec<PlainTarget>) =
            plain.into_iter().partition(|t| t.mirrored.is_some());
        out.already = done.len() as u64;
        if pending.is_empty() {
            return Ok(out);
        }
        if let Some(mirror) = info.mirror {
            out.source = mirror.clone();
            let consistent = zones.consistent_snapshot(zone)?;
            self.download_from_mirror(zone, &mirror, consistent, pending, &mut out)
                .await?;
            return Ok(out);
        }
        let peer = super::origin_peer(zone, info.origin.as_deref())?;
        out.source = format!("peer {}", peer.fmt_short());
        self.download_from_peer(zone, &info.id, peer, pending, &mut out)
            .await?;
        Ok(out)
    }

    async fn download_from_mirror(
        &self,
        zone: &str,
        mirror: &str,
        consistent: bool,
        pending: Vec<PlainTarget>,
        out: &mut Downloaded,
    ) -> Result<(), NodeError> {
        let base = mirror.trim_end_matches('/');
        let remote = Arc::new(std::sync::Mutex::new(HttpRemote::new(
            &format!("{base}/metadata"),
            Some(&format!("{base}/targets")),
        )));
        for target in pending {
            let remote = remote.clone();
            let file = target.file.clone();
            // Read at most the signed length, whatever the server says.
            let fetched = tokio::task::spawn_blocking(move || {
                let path = target_url_path(&file, consistent);
                let mut remote = remote
                    .lock()
                    .map_err(|_| "the HTTP client failed".to_owned())?;
                let data = remote
                    .fetch_target(&path, file.length)
                    .map_err(|e| format!("fetching {path}: {e}"))?;
                let mirrored = Mirrored::verify(&file, &data).map_err(|e| e.to_string())?;
                Ok::<_, String>((data, mirrored))
            })
            .await
            .map_err(NamesError::Task)?;
            match fetched {
                Ok((data, mirrored)) => {
                    let stored = self
                        .store_verified(zone, &target.name, data, &mirrored)
                        .await;
                    self.count(out, &target, &mirrored, stored);
                }
                Err(error) => out.failed.push(NotDownloaded {
                    name: target.name,
                    error,
                }),
            }
        }
        Ok(())
    }

    /// Stores bytes already verified as `mirrored`, and records them.
    async fn store_verified(
        &self,
        zone: &str,
        name: &str,
        data: Vec<u8>,
        mirrored: &Mirrored,
    ) -> Result<(), NodeError> {
        // Unreferenced until recorded: held against gc until then.
        let _hold = self.node.store().cas().hold_roots().await;
        let (hash, _guard) = self.node.store().cas().put_bytes(data).await?;
        if hash.to_string() != mirrored.blake3 {
            return Err(NamesError::BadTarget(format!(
                "{zone}/{name}: the store hashed it as {hash}, not {}",
                mirrored.blake3
            ))
            .into());
        }
        self.zones().record_mirrored(zone, name, mirrored)?;
        Ok(())
    }

    async fn download_from_peer(
        &self,
        zone: &str,
        zone_id: &str,
        peer: EndpointId,
        pending: Vec<PlainTarget>,
        out: &mut Downloaded,
    ) -> Result<(), NodeError> {
        let net = self.node.online().await?;
        let listed = net_zones::list_mirrored(&net.shared, zone_id, peer).await?;
        let listed: std::collections::BTreeMap<String, Mirrored> =
            listed.into_iter().map(|t| (t.name, t.mirrored)).collect();
        for target in pending {
            let Some(theirs) = listed.get(&target.name).filter(|m| m.matches(&target.file)) else {
                out.failed.push(NotDownloaded {
                    name: target.name,
                    error: format!("peer {} has not downloaded it", peer.fmt_short()),
                });
                continue;
            };
            let got = self
                .fetch_checked(&net.shared, peer, theirs, &target.file)
                .await;
            match got {
                Ok(mirrored) => {
                    let recorded = self
                        .zones()
                        .record_mirrored(zone, &target.name, &mirrored)
                        .map_err(NodeError::from);
                    self.count(out, &target, &mirrored, recorded);
                }
                Err(e) => out.failed.push(NotDownloaded {
                    name: target.name,
                    error: e.to_string(),
                }),
            }
        }
        Ok(())
    }

    /// Fetches the object a peer says holds `file`'s bytes (verified by
    /// BLAKE3 on arrival), then checks those bytes against `file`'s signed
    /// length and hashes; an object that fails is not kept.
    async fn fetch_checked(
        &self,
        shared: &Arc<crate::net::shared::Shared>,
        peer: EndpointId,
        theirs: &Mirrored,
        file: &TargetFile,
    ) -> Result<Mirrored, NodeError> {
        let hash: Hash = clive_cas::parse_hash(&theirs.blake3)
            .map_err(|_| NamesError::BadTarget(format!("{}: not a hash", theirs.blake3)))?;
        fetch::get(shared, hash, vec![peer], Arc::new(NoProgress)).await?;
        // An object that is not the target stays unreferenced, for gc.
        let store = self.node.store();
        let data = store.cas().read_verified_bytes(hash, file.length).await?;
        Mirrored::verify(file, &data)
            .map_err(|e| NamesError::BadTarget(format!("{}: {e}", file.path)).into())
    }

    fn count(
        &self,
        out: &mut Downloaded,
        target: &PlainTarget,
        mirrored: &Mirrored,
        stored: Result<(), NodeError>,
    ) {
        match stored {
            Ok(()) => {
                out.downloaded += 1;
                out.bytes += mirrored.length;
            }
            Err(e) => out.failed.push(NotDownloaded {
                name: target.name.clone(),
                error: e.to_string(),
            }),
        }
    }
}
