//! The names handle ([`Node::names`]): the `name` commands over
//! [`clive_naming::Zones`], with content from the store, signatures from
//! the node's key, and metadata to and from peers (through the zones
//! protocol, `net/zones.rs`) and mirrors. [`view`] answers the lookups
//! that need `state.redb` alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clive_cas::{Hash, NoProgress, ObjectKind};
use clive_naming::{
    Content, Published, RoleInfo, RootChange, RootStatus, ZoneInfo, Zones,
    state::Verified,
    tuf::{Metadata, Root},
    zones::{zone_id, zone_name},
};
use clive_trust::{KeySigner, NodeKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::net::{endpoint_id, ticket::ZoneTicket, zones as net_zones};
use crate::{NamesError, Node, NodeError, SignWith};

mod devices;
pub mod mirror;
pub mod view;
pub use view::StateView;

/// A zone created or re-keyed: the root change, and where a root awaiting
/// co-signers was written, or the ticket followers use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneChanged {
    /// What happened to the root.
    #[serde(flatten)]
    pub change: RootChange,
    /// The file holding a root that awaits co-signers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The ticket followers use (`name follow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

/// A zone and the ticket to follow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneShown {
    /// The zone.
    #[serde(flatten)]
    pub info: ZoneInfo,
    /// The ticket followers use.
    pub ticket: String,
}

/// What following or refreshing a zone did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refreshed {
    /// The zone.
    pub zone: String,
    /// The verified versions now, when the update worked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
    /// Where it came from.
    pub source: String,
    /// Why it could not be updated (the zone is still followed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `name export` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneExported {
    /// The repository directory.
    pub dir: PathBuf,
    /// Metadata files written.
    pub metadata: u64,
    /// Target files written.
    pub targets: u64,
}

/// What `name override` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overridden {
    /// The zone.
    pub zone: String,
    /// The name.
    pub name: String,
    /// The hash it maps to on this node; `None` once cleared.
    pub hash: Option<String>,
}

/// What a root file says after `name root sign`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootSigned {
    /// The file.
    pub file: PathBuf,
    /// Its signatures.
    #[serde(flatten)]
    pub status: RootStatus,
}

/// The `name` commands of a node: `node.names()`.
#[derive(Debug, Clone, Copy)]
pub struct NamesHandle<'a> {
    node: &'a Node,
}

impl Node {
    /// The `name` commands: zones, publishing, following, overrides.
    pub fn names(&self) -> NamesHandle<'_> {
        NamesHandle { node: self }
    }
}

impl NamesHandle<'_> {
    /// The node's zones.
    pub fn zones(&self) -> Zones {
        Zones::new(self.node.db().clone())
    }

    fn now(&self) -> u64 {
        self.node.now()
    }

    fn resolve_keys(&self, keys: &[String]) -> Result<Vec<clive_trust::PublicIdentity>, NodeError> {
        keys.iter()
            .map(|k| self.node.trust().resolve_key(k))
            .collect()
    }

    /// Creates a zone signed by this node; `keys` are further root keys.
    /// A first root that needs co-signatures is written to `out`, or to
    /// `ZONE.1.root.json` in `dir` (the client's directory).
    pub async fn zone_create(
        &self,
        zone: &str,
        keys: &[String],
        threshold: u32,
        out: Option<&Path>,
        dir: &Path,
        with: SignWith<'_>,
    ) -> Result<ZoneChanged, NodeError> {
        self.zone_create_devices(zone, keys, threshold, &[], out, dir, with)
            .await
    }

    /// [`NamesHandle::zone_create`] for a zone of several devices: each of
    /// `devices` signs every role (and every hashed bin) alone, threshold 1.
    #[allow(clippy::too_many_arguments)]
    pub async fn zone_create_devices(
        &self,
        zone: &str,
        keys: &[String],
        threshold: u32,
        devices: &[String],
        out: Option<&Path>,
        dir: &Path,
        with: SignWith<'_>,
    ) -> Result<ZoneChanged, NodeError> {
        let extra = self.resolve_keys(keys)?;
        let devices = self.resolve_keys(devices)?;
        let signer = self.node.trust().signer(with)?;
        let change = self.zones().create_devices(
            zone,
            &extra,
            threshold,
            &devices,
            signer.as_ref(),
            self.now(),
        )?;
        self.root_changed(change, out, Some(dir), zone).await
    }

    /// Makes `key` (an OpenSSH public key, a `SHA256:` fingerprint or an
    /// endpoint id) a device of `zone` ([`Zones::add_device`]) and
    /// announces the new root.
    pub async fn add_device(
        &self,
        zone: &str,
        key: &str,
        with: SignWith<'_>,
    ) -> Result<ZoneChanged, NodeError> {
        let key = self.node.trust().resolve_key(key)?;
        let signer = self.node.trust().signer(with)?;
        let change = self
            .zones()
            .add_device(zone, &key, signer.as_ref(), self.now())?;
        self.root_changed(change, None, None, zone).await
    }

    /// Writes a root that awaits co-signers to `out`, or by default to
    /// `ZONE.VERSION.root.json` in `dir` (reported by that name, relative to
    /// `dir`, as the client sees it).
    async fn root_changed(
        &self,
        mut change: RootChange,
        out: Option<&Path>,
        dir: Option<&Path>,
        zone: &str,
    ) -> Result<ZoneChanged, NodeError> {
        let file = match change.file.take() {
            Some(bytes) => {
                let default = PathBuf::from(format!("{zone}.{}.root.json", change.root.version));
                let (path, shown) = match out {
                    Some(out) => (out.to_path_buf(), out.to_path_buf()),
                    None => (
                        dir.map_or_else(|| default.clone(), |d| d.join(&default)),
                        default,
                    ),
                };
                self.node.home().check_destination(&path)?;
                std::fs::write(&path, bytes)
                    .map_err(|e| NodeError::io(format!("writing {}", path.display()), e))?;
                Some(shown)
            }
            None => None,
        };
        let ticket = if change.committed {
            self.announce_zone(zone);
            Some(self.zone_ticket(zone)?)
        } else {
            None
        };
        Ok(ZoneChanged {
            change,
            file,
            ticket,
        })
    }

    /// The ticket followers of `zone` use: this node, its addresses, the
    /// zone's id and the hash of its current root.
    pub fn zone_ticket(&self, zone: &str) -> Result<String, NodeError> {
        let addrs = self
            .node
            .net
            .get()
            .map(|n| n.shared.own_addrs())
            .unwrap_or_default();
        net_zones::zone_ticket(&self.zones(), zone, self.node.public().bytes(), addrs)
    }

    /// One zone and its ticket.
    pub async fn zone_show(&self, zone: &str) -> Result<ZoneShown, NodeError> {
        let info = self.zones().show(zone, Some(self.node.public()))?;
        Ok(ZoneShown {
            ticket: self.zone_ticket(zone)?,
            info,
        })
    }

    /// What `target` is: an object in the store (by hash), else a path to
    /// add.
    async fn content(&self, target: &str, cwd: &Path) -> Result<Content, NodeError> {
        let hash = match clive_cas::parse_hash(target) {
            Ok(hash) if self.node.store().cas().has(hash).await.unwrap_or(false) => hash,
            _ => {
                let path = cwd.join(target);
                if !path.exists() {
                    return Err(NamesError::NoTarget(target.to_owned()).into());
                }
                self.node
                    .store()
                    .add_path(&path, None, Arc::new(NoProgress))
                    .await?
                    .added
                    .hash
            }
        };
        self.content_of(hash).await
    }

    async fn content_of(&self, hash: Hash) -> Result<Content, NodeError> {
        let kind = self.node.store().cas().kind(hash).await?;
        let length = self.node.store().cas().size(hash).await?;
        let mut sha = Sha256::new();
        let mut read = self.node.store().cas().read_verified(hash).await?;
        while let Some((_, piece)) = read.next().await? {
            sha.update(&piece);
        }
        Ok(Content {
            blake3: hash.to_string(),
            sha256: hex::encode(sha.finalize()),
            length,
            kind: match kind {
                ObjectKind::Tree => "tree",
                ObjectKind::Blob => "blob",
            }
            .to_owned(),
        })
    }

    /// Publishes `zone/name` as `target` (a path, added, or a hash), signed,
    /// and announces it. With a `receipt` (see
    /// [`clive_naming::zones::new_receipt`]), what it committed is recorded
    /// under it in the same transaction.
    pub async fn publish(
        &self,
        name: &str,
        target: Option<(&str, &Path)>,
        with: SignWith<'_>,
        receipt: Option<&str>,
    ) -> Result<Published, NodeError> {
        // What is added is unprotected until the name points at it.
        let _hold = self.node.store().cas().hold_roots().await;
        let (zone, path) = clive_naming::name::split(name)?;
        let content = match target {
            Some((target, cwd)) => Some(self.content(target, cwd).await?),
            None => None,
        };
        let signer = self.node.trust().signer(with)?;
        let zones = self.zones();
        if !zones.can_publish(zone, self.node.public())?
            && let Some(role) = zones.delegation_for(zone, path, self.node.public())?
        {
            let info = zones.show(zone, None)?;
            return self
                .publish_delegated(zone, &role, path, content.as_ref(), signer.as_ref(), &info)
                .await;
        }
        let changes = [(path.to_owned(), content)];
        let published = publish(&zones, zone, &changes, receipt, signer.as_ref(), self.now())?
            .pop()
            .ok_or(NamesError::NothingPublished)?;
        self.announce_zone(zone);
        Ok(published)
    }

    /// Publishes `zone/name` as the stored object `hash`, signed by
    /// `signer`, and announces it: a synced folder's new version.
    pub(crate) async fn publish_object(
        &self,
        name: &str,
        hash: Hash,
        signer: &dyn clive_trust::Signer,
    ) -> Result<Published, NodeError> {
        let (zone, path) = clive_naming::name::split(name)?;
        let content = self.content_of(hash).await?;
        let changes = [(path.to_owned(), Some(content))];
        let published = publish(&self.zones(), zone, &changes, None, signer, self.now())?
            .pop()
            .ok_or(NamesError::NothingPublished)?;
        self.announce_zone(zone);
        Ok(published)
    }

    /// Publishes several names of one zone (`(ZONE/PATH, TARGET)` pairs) in
    /// one signed version (with a `receipt`, as [`NamesHandle::publish`]).
    pub async fn publish_many(
        &self,
        pairs: &[(String, String)],
        cwd: &Path,
        with: SignWith<'_>,
        receipt: Option<&str>,
    ) -> Result<Vec<Published>, NodeError> {
        // What is added is unprotected until the name points at it.
        let _hold = self.node.store().cas().hold_roots().await;
        let mut zone_of_all: Option<String> = None;
        let mut changes = Vec::with_capacity(pairs.len());
        for (name, target) in pairs {
            let (zone, path) = clive_naming::name::split(name)?;
            match &zone_of_all {
                Some(z) if z != zone => {
                    return Err(NamesError::OneZone {
                        name: name.clone(),
                        zone: z.clone(),
                    }
                    .into());
                }
                _ => zone_of_all = Some(zone.to_owned()),
            }
            changes.push((path.to_owned(), Some(self.content(target, cwd).await?)));
        }
        let zone = zone_of_all.unwrap_or_default();
        let signer = self.node.trust().signer(with)?;
        let published = publish(
            &self.zones(),
            &zone,
            &changes,
            receipt,
            signer.as_ref(),
            self.now(),
        )?;
        self.announce_zone(&zone);
        Ok(published)
    }

    /// Publishes under a delegation this node holds: signs the delegated
    /// role, hands it to the zone's publisher (which needs `push` from this
    /// node), and takes the zone's new metadata back from it.
    async fn publish_delegated(
        &self,
        zone: &str,
        role: &str,
        path: &str,
        content: Option<&Content>,
        signer: &dyn clive_trust::Signer,
        info: &ZoneInfo,
    ) -> Result<Published, NodeError> {
        let zones = self.zones();
        let (mut published, bytes) =
            zones.sign_delegated(zone, role, path, content, signer, self.now())?;
        let origin = info
            .origin
            .as_deref()
            .and_then(|o| {
                let mut b = [0u8; 32];
                hex::decode_to_slice(o, &mut b).ok()?;
                endpoint_id(&b).ok()
            })
            .ok_or_else(|| NamesError::NoOrigin(zone.to_owned()))?;
        let net = self.node.online().await?;
        published.timestamp = net_zones::submit(&net.shared, &info.id, role, bytes, origin).await?;
        published.targets = net_zones::sync_from(&net.shared, zone, &info.id, origin)
            .await?
            .targets;
        Ok(published)
    }

    /// Tells this node's watches that `zone` was stored, and its
    /// followers (when online) about its current timestamp: every change
    /// this node signs goes through here.
    fn announce_zone(&self, zone: &str) {
        self.node.zone_events().stored(zone);
        let Some(net) = self.node.net.get() else {
            return;
        };
        let Ok(record) = self.zones().record(zone) else {
            return;
        };
        if let Some(v) = record.verified {
            net_zones::announce(&net.shared, record.id, v.timestamp);
        }
    }

    /// Delegates the names of `zone` under `prefix` to `to`.
    pub async fn delegate(
        &self,
        zone: &str,
        prefix: &str,
        to: &str,
        with: SignWith<'_>,
    ) -> Result<RoleInfo, NodeError> {
        let key = self.node.trust().resolve_key(to)?;
        let signer = self.node.trust().signer(with)?;
        let role = self
            .zones()
            .delegate(zone, prefix, &key, signer.as_ref(), self.now())?;
        self.announce_zone(zone);
        Ok(role)
    }

    /// Gives `role` of `zone` new keys, in a new root; one that needs
    /// co-signatures is written as for [`NamesHandle::zone_create`].
    #[allow(clippy::too_many_arguments)]
    pub async fn rotate(
        &self,
        zone: &str,
        role: &str,
        keys: &[String],
        threshold: Option<u32>,
        out: Option<&Path>,
        dir: &Path,
        with: SignWith<'_>,
    ) -> Result<ZoneChanged, NodeError> {
        let keys = self.resolve_keys(keys)?;
        let signer = self.node.trust().signer(with)?;
        let change =
            self.zones()
                .rotate(zone, role, &keys, threshold, signer.as_ref(), self.now())?;
        self.root_changed(change, out, Some(dir), zone).await
    }

    /// Adds a signature to a root file: this node's, or that of the
    /// OpenSSH key at `key` (an offline key, asked for its passphrase).
    pub async fn root_sign(
        &self,
        file: &Path,
        key: Option<&Path>,
        with: SignWith<'_>,
    ) -> Result<RootSigned, NodeError> {
        let bytes = read_limited(file)?;
        let signer: Box<dyn clive_trust::Signer> = match key {
            Some(path) => {
                let key = NodeKey::read(path)?;
                let pass = if key.is_encrypted() {
                    with.passphrase.passphrase(path)
                } else {
                    None
                };
                Box::new(KeySigner::from_key(&key, pass.as_deref())?)
            }
            None => self.node.trust().signer(with)?,
        };
        let (signed, status) = Zones::root_sign(&bytes, signer.as_ref())?;
        self.node.home().check_destination(file)?;
        write_file(file, &signed)?;
        Ok(RootSigned {
            file: file.to_owned(),
            status,
        })
    }

    /// Installs a co-signed root file for `zone`.
    pub async fn root_commit(
        &self,
        zone: &str,
        file: &Path,
        with: SignWith<'_>,
    ) -> Result<ZoneChanged, NodeError> {
        let bytes = read_limited(file)?;
        let signer = self.node.trust().signer(with)?;
        let change = self
            .zones()
            .root_commit(zone, &bytes, signer.as_ref(), self.now())?;
        // A committed root: nothing to write.
        self.root_changed(change, None, None, zone).await
    }

    /// Follows a zone from a zone ticket or a trusted root.json file.
    pub async fn follow(
        &self,
        source: &str,
        cwd: &Path,
        mirror: Option<&str>,
        alias: Option<&str>,
    ) -> Result<Refreshed, NodeError> {
        if source.trim().starts_with(crate::net::ticket::ZONE_PREFIX) {
            return self.follow_ticket(source, mirror, alias).await;
        }
        let path = cwd.join(source);
        let bytes = read_limited(&path)?;
        let root = Metadata::<Root>::from_bytes(&bytes).map_err(|cause| NamesError::BadRoot {
            path: path.clone(),
            cause,
        })?;
        let zone = match (alias, zone_name(&root.signed)) {
            (Some(a), _) => a.to_owned(),
            (None, Some(n)) => n,
            (None, None) => {
                return Err(NamesError::Unnamed.into());
            }
        };
        self.zones()
            .follow(&zone, &bytes, None, mirror.map(str::to_owned), self.now())?;
        Ok(self.refresh(&zone).await.unwrap_or_else(|e| Refreshed {
            zone: zone.clone(),
            verified: None,
            source: mirror.unwrap_or("nowhere yet").to_owned(),
            error: Some(e.to_string()),
        }))
    }

    async fn follow_ticket(
        &self,
        text: &str,
        mirror: Option<&str>,
        alias: Option<&str>,
    ) -> Result<Refreshed, NodeError> {
        let ticket = ZoneTicket::decode(text).map_err(NamesError::Ticket)?;
        let zone = alias.unwrap_or(&ticket.zone).to_owned();
        clive_naming::name::check_zone(&zone)?;
        let net = self.node.online().await?;
        let publisher = endpoint_id(&ticket.publisher)?;
        if !ticket.addrs.is_empty() {
            net.shared.add_peer(&publisher, &ticket.addrs)?;
        }
        let id = hex::encode(ticket.id);
        let bundle = net_zones::fetch_files(&net.shared, &id, publisher).await?;
        let mut root = bundle
            .files
            .values()
            .find(|b| *blake3::hash(b).as_bytes() == ticket.root)
            .cloned()
            .ok_or(NamesError::StaleTicket)?;
        let parsed = Metadata::<Root>::from_bytes(&root).map_err(NamesError::Metadata)?;
        match zone_id(&parsed.signed) {
            Some(own) if own == id => {}
            Some(_) => return Err(NamesError::OtherZone.into()),
            // A zone made by another TUF tool has no id in its root: the
            // node that followed it first named it by the hash of the root
            // it started from. Start from that root too (the client walks
            // the rotation chain from it), so both name the zone alike.
            None => {
                root = bundle
                    .files
                    .values()
                    .find(|b| blake3::hash(b).to_hex()[..32] == id)
                    .cloned()
                    .ok_or(NamesError::OtherZone)?;
            }
        }
        let zones = self.zones();
        zones.follow(
            &zone,
            &root,
            Some(hex::encode(ticket.publisher)),
            mirror.map(str::to_owned),
            self.now(),
        )?;
        let source = format!("peer {}", publisher.fmt_short());
        let verified = zones.update_from(&zone, bundle, &source, self.now());
        if verified.is_ok() {
            self.node.zone_events().stored(&zone);
        }
        Ok(Refreshed {
            zone,
            verified: verified.as_ref().ok().cloned(),
            source,
            error: verified.err().map(|e| e.to_string()),
        })
    }

    /// Fetches new metadata for `zone`: from its mirror when it has one,
    /// else from the node that published it (the zone's origin).
    pub async fn refresh(&self, zone: &str) -> Result<Refreshed, NodeError> {
        let zones = self.zones();
        let info = zones.show(zone, None)?;
        if let Some(mirror) = info.mirror.clone() {
            let z = zone.to_owned();
            let zones2 = zones.clone();
            let url = mirror.clone();
            let clock = self.node.clock().clone();
            let verified = tokio::task::spawn_blocking(move || {
                let base = url.trim_end_matches('/');
                let remote = clive_naming::tuf::http::HttpRemote::new(
                    &format!("{base}/metadata"),
                    Some(&format!("{base}/targets")),
                );
                // Fetched first, so the update holds the state only while
                // it verifies and stores.
                let (files, fetched) = zones2.fetch(&z, remote, clock.now());
                zones2
                    .update(&z, files, &url, clock.now())
                    .map_err(|e| fetched.err().unwrap_or(e))
            })
            .await
            .map_err(NamesError::Task)??;
            self.node.zone_events().stored(zone);
            return Ok(Refreshed {
                zone: zone.to_owned(),
                verified: Some(verified),
                source: mirror,
                error: None,
            });
        }
        let net = self.node.online().await?;
        let peer = origin_peer(zone, info.origin.as_deref())?;
        let verified = net_zones::sync_from(&net.shared, zone, &info.id, peer).await?;
        Ok(Refreshed {
            zone: zone.to_owned(),
            verified: Some(verified),
            source: format!("peer {}", peer.fmt_short()),
            error: None,
        })
    }

    /// Maps `zone/name` to `target` on this node only; `None` clears it.
    pub async fn override_name(
        &self,
        name: &str,
        target: Option<(&str, &Path)>,
    ) -> Result<Overridden, NodeError> {
        // What is added is unprotected until the name points at it.
        let _hold = self.node.store().cas().hold_roots().await;
        let (zone, path) = clive_naming::name::split(name)?;
        let zones = self.zones();
        let hash = match target {
            Some((target, cwd)) => {
                let content = self.content(target, cwd).await?;
                zones.set_override(zone, path, &content.blake3, &content.kind, self.now())?;
                Some(content.blake3)
            }
            None => {
                if !zones.clear_override(zone, path, self.now())? {
                    return Err(NamesError::NoOverride(name.to_owned()).into());
                }
                None
            }
        };
        self.node.zone_events().stored(zone);
        Ok(Overridden {
            zone: zone.to_owned(),
            name: path.to_owned(),
            hash,
        })
    }

    /// Writes `zone` as a plain TUF repository: `DIR/metadata` and
    /// `DIR/targets` (each target under each of its hashes, as clients
    /// using consistent snapshots ask for it, and under its plain name).
    pub async fn export(&self, zone: &str, dir: &Path) -> Result<ZoneExported, NodeError> {
        self.node.home().check_destination(dir)?;
        let zones = self.zones();
        let files = zones.files(zone)?;
        let meta = dir.join("metadata");
        let targets_dir = dir.join("targets");
        for d in [&meta, &targets_dir] {
            std::fs::create_dir_all(d)
                .map_err(|e| NodeError::io(format!("creating {}", d.display()), e))?;
        }
        for (path, bytes) in &files.files {
            write_file(&meta.join(path), bytes)?;
        }
        let mut targets = 0;
        // Targets made by other TUF tools: their downloaded bytes.
        let mirrored: std::collections::BTreeMap<String, String> = zones
            .mirrored(zone)?
            .into_iter()
            .map(|(name, m)| (name, m.blake3))
            .collect();
        for (name, file) in zones.targets(zone)? {
            let Some(hash) = clive_naming::source::content_address(&file)
                .or_else(|| mirrored.get(&name).cloned())
                .and_then(|h| clive_cas::parse_hash(&h).ok())
            else {
                continue;
            };
            let (parent, base) = match name.rsplit_once('/') {
                Some((p, b)) => (targets_dir.join(p), b.to_owned()),
                None => (targets_dir.clone(), name.clone()),
            };
            std::fs::create_dir_all(&parent)
                .map_err(|e| NodeError::io(format!("creating {}", parent.display()), e))?;
            let plain = parent.join(&base);
            let io_err = |e| NodeError::io(format!("writing {}", plain.display()), e);
            let mut atomic = clive_trust::AtomicFile::create(&plain).map_err(io_err)?;
            let mut out = tokio::fs::File::from_std(atomic.file().try_clone().map_err(io_err)?);
            self.node
                .store()
                .cas()
                .write_blob_to(hash, &mut out)
                .await?;
            tokio::io::AsyncWriteExt::flush(&mut out)
                .await
                .map_err(io_err)?;
            drop(out);
            atomic.commit().map_err(io_err)?;
            for digest in file.hashes.values() {
                let prefixed = parent.join(format!("{digest}.{base}"));
                std::fs::remove_file(&prefixed).ok();
                if std::fs::hard_link(&plain, &prefixed).is_err() {
                    std::fs::copy(&plain, &prefixed)
                        .map_err(|e| NodeError::io(format!("writing {}", prefixed.display()), e))?;
                }
            }
            targets += 1;
        }
        Ok(ZoneExported {
            dir: dir.to_owned(),
            metadata: files.files.len() as u64,
            targets,
        })
    }

    /// Re-signs the snapshot and timestamp of zones this node signs that
    /// would expire soon, and announces them. The daemon calls it every
    /// minute; it signs with the key unlocked when the node went online.
    pub async fn resign_due(&self) {
        let Some(net) = self.node.net.get() else {
            return;
        };
        let signer = &*net.shared.signer;
        let zones = self.zones();
        let Ok(due) = zones.due_for_resigning(self.node.public(), self.now()) else {
            return;
        };
        for zone in due {
            match zones.resign(&zone, signer, self.now()) {
                Ok(()) => {
                    tracing::info!(zone, "re-signed timestamp and snapshot");
                    self.announce_zone(&zone);
                }
                Err(e) => tracing::warn!(zone, "re-signing: {e}"),
            }
        }
    }
}

/// Publishes `changes` in one signed version, recorded under `receipt`
/// when given.
fn publish(
    zones: &Zones,
    zone: &str,
    changes: &[(String, Option<Content>)],
    receipt: Option<&str>,
    signer: &dyn clive_trust::Signer,
    now: u64,
) -> Result<Vec<Published>, NodeError> {
    Ok(match receipt {
        Some(r) => zones.publish_receipted(zone, changes, r, signer, now)?,
        None => zones.publish_many(zone, changes, signer, now)?,
    })
}

/// Reads a metadata file given by the user, refusing it once it yields
/// more than 16 MiB.
fn read_limited(path: &Path) -> Result<Vec<u8>, NodeError> {
    Ok(clive_trust::read_bounded(path, net_zones::MAX_FILE)?)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    clive_trust::write_atomic(path, bytes)
        .map_err(|e| NodeError::io(format!("writing {}", path.display()), e))
}

/// The peer a zone was followed from (`origin`, its endpoint id in hex),
/// to refresh it or fetch its targets from.
fn origin_peer(zone: &str, origin: Option<&str>) -> Result<iroh::EndpointId, NodeError> {
    let mut key = [0u8; 32];
    if origin.is_none_or(|o| hex::decode_to_slice(o, &mut key).is_err()) {
        return Err(NamesError::NoSource(zone.to_owned()).into());
    }
    endpoint_id(&key)
}
