//! Synced folders: a directory tied to a name both ways (`sync folder DIR
//! ZONE/NAME`). The daemon watches the directory and publishes a new
//! version of the name when files change; a version another device
//! published is written in, merged with what changed here.
//!
//! - [`walk`]: every entry of the directory, minus what is ignored.
//! - [`scan`]: the directory into the store, through the folder's index.
//! - [`merge`]: the three-way merge, path by path, and conflict copies.
//! - [`writeback`]: a merge onto disk, atomically, never outside the folder.
//! - [`table`]: the folders and their indexes in `state.redb`.
//! - `service`: the daemon's watcher and the loop that runs [`sync_once`].
//!
//! The base of a merge is the latest version this device had (published or
//! took) that the incoming one descends from, by their entries' version
//! vectors; when the naming merge put one of this device's versions aside
//! as the loser of a conflict, that one is not a base (the incoming one
//! does not hold its changes), so the base is the version before it.

pub mod merge;
pub mod scan;
pub(crate) mod service;
pub mod table;
pub mod walk;
pub mod writeback;

use std::path::{Path, PathBuf};

use clive_cas::{Hash, ImportGuard};
use clive_naming::Zones;
use serde::{Deserialize, Serialize};

use crate::{Node, NodeError, SyncError};
use merge::Flat;
use table::FolderRecord;

/// A synced folder, as `sync folder ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderInfo {
    /// The directory.
    pub dir: PathBuf,
    /// `ZONE/NAME` it is tied to.
    pub name: String,
    /// The version (tree hash) it held at its last sync.
    pub version: Option<String>,
    /// Files it holds (as of its last scan).
    pub files: u64,
    /// Conflict copies in it, until the user removes them.
    pub conflicts: Vec<String>,
}

/// What one sync of a folder did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderSynced {
    /// The folder.
    pub dir: PathBuf,
    /// A new version this device published, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// A version from elsewhere that was written in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took: Option<String>,
    /// Files read and hashed.
    pub hashed: u64,
    /// How long the scan took (a check of the folder as last listed, and
    /// when something changed, its index read, the walk and stat of every
    /// entry, hashing what changed), microseconds.
    pub scan_us: u64,
    /// Paths written and removed.
    pub written: u64,
    /// Paths removed.
    pub removed: u64,
    /// Conflict copies written now.
    pub conflicts: Vec<String>,
    /// Files still being written, read again later.
    pub unsettled: Vec<String>,
    /// When they will have been quiet long enough to be read, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settles_in_ms: Option<u64>,
    /// Steps left out, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// The incoming version is not all here yet (it is being fetched).
    pub waiting: bool,
}

/// Now, as conflict copies name it: `YYYYMMDD-HHMMSS` (UTC).
pub fn date_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = clive_trust::clock::format_time(secs);
    // RFC 3339 (`2026-12-02T03:15:00Z`) without its punctuation.
    text.chars()
        .filter(char::is_ascii_digit)
        .enumerate()
        .flat_map(|(i, c)| (i == 8).then_some('-').into_iter().chain([c]))
        .collect()
}

fn parse(hash: Option<&str>) -> Option<Hash> {
    hash.and_then(|h| clive_cas::parse_hash(h).ok())
}

/// The folder's name's current value here, if it is published.
fn current(node: &Node, record: &FolderRecord) -> Option<Hash> {
    let zones = Zones::new(node.db().clone());
    let resolved = zones
        .resolve(&record.zone, &record.name, true, node.now())
        .ok()?;
    clive_cas::parse_hash(&resolved.hash).ok()
}

async fn flatten_or_empty(node: &Node, hash: Option<Hash>) -> Flat {
    match hash {
        Some(h) => scan::flatten(node.cas(), h).await.unwrap_or_default(),
        None => Flat::new(),
    }
}

/// Whether `hash` and everything it reaches is stored here.
async fn complete(node: &Node, hash: Hash) -> bool {
    matches!(crate::net::fetch::here(node.cas(), hash).await, Ok(Some(_)))
}

/// The folder's index: the copy in memory, else the table's.
fn load_index(node: &Node, dir: &str) -> Result<std::sync::Arc<scan::Index>, NodeError> {
    let state = node.sync_state();
    if let Some(index) = crate::net::lock(&state.folder_indexes).get(dir) {
        return Ok(index.clone());
    }
    let index = std::sync::Arc::new(table::index(node.db(), dir)?);
    crate::net::lock(&state.folder_indexes).insert(dir.to_owned(), index.clone());
    Ok(index)
}

/// Writes what changed from `old` to `new` in the folder's index, and
/// keeps `new` in memory.
fn save_index(
    node: &Node,
    dir: &str,
    old: &scan::Index,
    new: std::sync::Arc<scan::Index>,
) -> Result<(), NodeError> {
    table::update_index(node.db(), dir, old, &new)?;
    crate::net::lock(&node.sync_state().folder_indexes).insert(dir.to_owned(), new);
    Ok(())
}

/// Scans the folder, updating its index.
async fn scan_folder(node: &Node, record: &FolderRecord) -> Result<scan::Scan, NodeError> {
    let dir = Path::new(&record.dir);
    let index = load_index(node, &record.dir)?;
    let skip = vec![
        std::fs::canonicalize(node.home().root()).unwrap_or_else(|_| node.home().root().to_owned()),
    ];
    let scanned = scan::scan(node.cas(), dir, &index, &skip).await?;
    if index != scanned.index {
        save_index(node, &record.dir, &index, scanned.index.clone())?;
    }
    Ok(scanned)
}

/// Stores `trees` (the encodings of `flat`'s trees) and the symlink
/// targets of `flat`, until the guard drops.
async fn store_trees(
    node: &Node,
    dir: &Path,
    flat: &Flat,
    mut trees: Vec<bytes::Bytes>,
) -> Result<ImportGuard, NodeError> {
    trees.extend(scan::symlink_targets(dir, flat));
    let (_, guard) = node.cas().put_many(trees).await?;
    Ok(guard)
}

/// One sync of a folder: scan it; when the name moved elsewhere, merge
/// that version in; publish what the folder holds when it differs from
/// the name. `signer` signs the publish. One sync of a folder runs at a
/// time, on its record as the table holds it then.
pub(crate) async fn sync_once(
    node: &Node,
    record: FolderRecord,
    signer: &dyn clive_trust::Signer,
) -> Result<FolderSynced, NodeError> {
    let one = node.sync_state().folder_lock(&record.dir);
    let _one = one.lock().await;
    let dir = PathBuf::from(&record.dir);
    let Some(record) = table::folders(node.db())?
        .into_iter()
        .find(|f| f.dir == record.dir)
    else {
        return Err(crate::SyncError::NoFolder { dir }.into());
    };
    let synced = sync_locked(node, record, signer).await;
    // What reading or writing files allocated is freed by now, on
    // whichever threads allocated it (an unchanged scan reuses its own).
    if synced.as_ref().is_ok_and(|s| s.hashed > 0 || s.written > 0) {
        crate::memory::release_freed();
    }
    synced
}

async fn sync_locked(
    node: &Node,
    mut record: FolderRecord,
    signer: &dyn clive_trust::Signer,
) -> Result<FolderSynced, NodeError> {
    let dir = PathBuf::from(&record.dir);
    let mut out = FolderSynced {
        dir: dir.clone(),
        ..FolderSynced::default()
    };
    let zones = Zones::new(node.db().clone());
    let listed = current(node, &record);
    let started = std::time::Instant::now();
    if unchanged_since_listed(node, &record, listed).await {
        out.scan_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        return Ok(out);
    }
    let mut scanned = scan_folder(node, &record).await?;
    out.scan_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    out.hashed = scanned.hashed;
    let now = current(node, &record);
    if let Some(remote) = now
        && Some(remote.to_string()) != record.written
    {
        if !complete(node, remote).await {
            out.waiting = true;
            return Ok(out);
        }
        let clock = zones
            .name_clock(&record.zone, &record.name)?
            .unwrap_or_default();
        let lost = record.written.is_some() && clock.loser == record.written;
        let base = record.base_for(&clock.clock, clock.loser.as_deref());
        let base_hash = base.clone();
        let base = flatten_or_empty(node, parse(base.as_deref())).await;
        let remote_flat = scan::flatten(node.cas(), remote).await?;
        let device = if clock.device.is_empty() {
            "other".to_owned()
        } else {
            clock.device.clone()
        };
        let steps = merge::merge(&base, &scanned.flat, &remote_flat, &device, &date_now());
        tracing::info!(
            folder = %record.dir,
            "merging version {remote} (from {device}{}) over base {}: {} steps",
            if lost { ", which won over this device's" } else { "" },
            base_hash.as_deref().unwrap_or("none"),
            steps.len()
        );
        let applied = writeback::apply(
            node.cas(),
            &dir,
            &steps,
            &scanned.flat,
            &scanned.index,
            &remote_flat,
        )
        .await;
        // What was written is known: the rescan need not wait for it to
        // settle, nor read it again.
        if !applied.indexed.is_empty() {
            let mut index = (*scanned.index).clone();
            index.extend(applied.indexed.iter().cloned());
            save_index(node, &record.dir, &scanned.index, index.into())?;
        }
        out.took = Some(remote.to_string());
        out.written = applied.written;
        out.removed = applied.removed;
        out.conflicts = applied.conflicts.into_iter().map(|(_, c)| c).collect();
        out.skipped = applied.skipped;
        record.now_holds(remote.to_string(), clock.clock);
        table::put_folder(node.db(), &record)?;
        scanned = scan_folder(node, &record).await?;
        out.hashed += scanned.hashed;
    }
    out.unsettled = scanned.unsettled.clone();
    out.settles_in_ms = scanned
        .settles_in
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let (root, trees) = scan::trees(&scanned.flat)?;
    let listing = scanned.listing.take();
    if Some(root.to_string()) != record.written && now != Some(root) {
        let _stored = store_trees(node, &dir, &scanned.flat, trees).await?;
        let published = node
            .names()
            .publish_object(&record.target(), root, signer)
            .await?;
        tracing::info!(
            folder = %record.dir,
            "published {} as version {} of {}",
            root,
            published.version,
            record.target()
        );
        let clock = zones
            .name_clock(&record.zone, &record.name)?
            .map(|c| c.clock)
            .unwrap_or_default();
        record.now_holds(root.to_string(), clock);
        table::put_folder(node.db(), &record)?;
        out.published = Some(root.to_string());
    } else if record.written.is_none() {
        record.now_holds(root.to_string(), Default::default());
        table::put_folder(node.db(), &record)?;
    }
    let mut listings = crate::net::lock(&node.sync_state().folder_listings);
    match listing {
        Some(listing) if record.written == Some(root.to_string()) => {
            listings.insert(record.dir.clone(), (root, listing.into()));
        }
        _ => {
            listings.remove(&record.dir);
        }
    }
    Ok(out)
}

/// Whether the folder holds `now`, the version its name holds here,
/// unchanged since the scan that listed it: then there is nothing to read,
/// merge or publish.
async fn unchanged_since_listed(node: &Node, record: &FolderRecord, now: Option<Hash>) -> bool {
    let Some(now) = now else {
        return false;
    };
    if record.written != Some(now.to_string()) {
        return false;
    }
    let listing = crate::net::lock(&node.sync_state().folder_listings)
        .get(&record.dir)
        .filter(|(root, _)| *root == now)
        .map(|(_, listing)| listing.clone());
    let Some(listing) = listing else {
        return false;
    };
    let dir = PathBuf::from(&record.dir);
    tokio::task::spawn_blocking(move || listing.unchanged(&dir))
        .await
        .unwrap_or(false)
}

/// What `sync folder ls` shows of `record`.
fn info(node: &Node, record: &FolderRecord) -> Result<FolderInfo, NodeError> {
    let index = load_index(node, &record.dir)?;
    let mut conflicts: Vec<String> = index
        .keys()
        .filter(|p| merge::is_conflict_copy(p))
        .cloned()
        .collect();
    conflicts.sort();
    Ok(FolderInfo {
        dir: PathBuf::from(&record.dir),
        name: record.target(),
        version: record.written.clone(),
        files: index.len() as u64,
        conflicts,
    })
}

/// The directory a user named, as folders are keyed: absolute, symlinks
/// resolved.
fn folder_dir(dir: &Path, cwd: &Path) -> Result<PathBuf, NodeError> {
    let dir = cwd.join(dir);
    let real = std::fs::canonicalize(&dir).map_err(|e| SyncError::Folder {
        dir: dir.clone(),
        reason: e.to_string(),
    })?;
    if !real.is_dir() {
        return Err(SyncError::Folder {
            dir,
            reason: "not a directory".into(),
        }
        .into());
    }
    if real.to_str().is_none() {
        return Err(SyncError::Folder {
            dir,
            reason: "its path is not UTF-8".into(),
        }
        .into());
    }
    Ok(real)
}

impl super::SyncHandle<'_> {
    /// Ties `dir` to `target` (`ZONE/NAME` in a zone this node publishes
    /// in), both ways: reads it, publishes it (or merges in the version
    /// the name already has), and keeps the name's bytes in the follow set.
    pub async fn folder_add(
        &self,
        dir: &Path,
        target: &str,
        cwd: &Path,
        signer: &dyn clive_trust::Signer,
    ) -> Result<FolderSynced, NodeError> {
        let real = folder_dir(dir, cwd)?;
        let (zone, name) = clive_naming::name::split(target)?;
        let zones = self.zones();
        if zones.show(zone, None).is_err() {
            return Err(SyncError::UnknownZone { zone: zone.into() }.into());
        }
        if !zones.can_publish(zone, self.node.public())? {
            return Err(SyncError::Folder {
                dir: real,
                reason: format!(
                    "this node cannot publish in zone {zone}: use a zone it publishes in, \
                     such as its device zone (`clive-node name zone ls`)"
                ),
            }
            .into());
        }
        let home = &std::fs::canonicalize(self.node.home().root())
            .unwrap_or_else(|_| self.node.home().root().to_owned());
        if real.starts_with(home) {
            return Err(SyncError::Folder {
                dir: real,
                reason: "it lies in this node's home".into(),
            }
            .into());
        }
        let text = real.to_str().unwrap_or_default().to_owned();
        for other in table::folders(self.node.db())? {
            let other_dir = Path::new(&other.dir);
            if other.dir != text && (other_dir.starts_with(&real) || real.starts_with(other_dir)) {
                return Err(SyncError::Folder {
                    dir: real,
                    reason: format!("it overlaps the synced folder {}", other.dir),
                }
                .into());
            }
        }
        let record = match table::folders(self.node.db())?
            .into_iter()
            .find(|f| f.dir == text)
        {
            Some(existing) if existing.target() == target => existing,
            _ => FolderRecord {
                version: table::VERSION,
                dir: text,
                zone: zone.to_owned(),
                name: name.to_owned(),
                added: self.node.now(),
                written: None,
                versions: Vec::new(),
            },
        };
        table::put_folder(self.node.db(), &record)?;
        let follow = super::table::FollowRecord {
            version: super::table::RECORD_VERSION,
            zone: zone.to_owned(),
            prefix: name.to_owned(),
            added: self.node.now(),
        };
        if !super::table::follows(self.node.db())?
            .iter()
            .any(|f| f.key() == follow.key())
        {
            super::table::put_follow(self.node.db(), &follow)?;
        }
        let synced = sync_once(self.node, record, signer).await?;
        self.node.sync_state().folders_changed.notify_one();
        Ok(synced)
    }

    /// The synced folders.
    pub fn folder_ls(&self) -> Result<Vec<FolderInfo>, NodeError> {
        table::folders(self.node.db())?
            .iter()
            .map(|r| info(self.node, r))
            .collect()
    }

    /// Stops syncing `dir`; its files stay as they are.
    pub fn folder_rm(&self, dir: &Path, cwd: &Path) -> Result<FolderInfo, NodeError> {
        let joined = cwd.join(dir);
        let key = std::fs::canonicalize(&joined).unwrap_or(joined.clone());
        let key = key.to_str().unwrap_or_default();
        let record = table::folders(self.node.db())?
            .into_iter()
            .find(|f| f.dir == key)
            .ok_or(SyncError::NoFolder { dir: joined })?;
        let shown = info(self.node, &record)?;
        table::remove_folder(self.node.db(), &record.dir)?;
        crate::net::lock(&self.node.sync_state().folder_indexes).remove(&record.dir);
        crate::net::lock(&self.node.sync_state().folder_listings).remove(&record.dir);
        crate::net::lock(&self.node.sync_state().folder_locks).remove(&record.dir);
        self.node.sync_state().folders_changed.notify_one();
        Ok(shown)
    }

    /// Conflict copies in every synced folder (for `sync status`).
    pub fn folder_conflicts(&self) -> Vec<String> {
        self.folder_ls()
            .unwrap_or_default()
            .into_iter()
            .flat_map(|f| {
                let dir = f.dir.clone();
                f.conflicts
                    .into_iter()
                    .map(move |c| dir.join(c).display().to_string())
            })
            .collect()
    }
}
