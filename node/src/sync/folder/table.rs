//! What synced folders keep in `state.redb`.
//!
//! Tables (format version 1, created by their first write):
//! - `sync.folders.v1`: the folder's absolute path (UTF-8) -> JSON
//!   [`FolderRecord`].
//! - `sync.folder_index.v1`: `DIR` NUL `RELATIVE/PATH` -> JSON
//!   [`Indexed`]: the folder's index (stamp -> hash of every file read).

use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

use super::scan::{Index, Indexed};
use crate::SyncError;
use crate::net::sync::table::{RECORD_VERSION, all_records, decode, encode, st};

const FOLDERS: TableDefinition<&str, &[u8]> = TableDefinition::new("sync.folders.v1");
const INDEX: TableDefinition<&str, &[u8]> = TableDefinition::new("sync.folder_index.v1");

/// One synced folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The directory (absolute).
    pub dir: String,
    /// The zone it publishes into.
    pub zone: String,
    /// The name in that zone.
    pub name: String,
    /// When it was set up (seconds since the Unix epoch).
    pub added: u64,
    /// The version (tree hash) the directory held at its last sync: what
    /// this device last published from it or wrote into it.
    #[serde(default)]
    pub written: Option<String>,
    /// The versions this device published from the folder or took into
    /// it, oldest first (at most [`KEPT_VERSIONS`]), each with the version
    /// vector of its entry: the bases a merge picks from.
    #[serde(default)]
    pub versions: Vec<SeenVersion>,
}

/// Most versions a folder's record remembers.
pub const KEPT_VERSIONS: usize = 64;

/// A version of a folder this device had, with its entry's version vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeenVersion {
    /// The tree hash.
    pub hash: String,
    /// The version vector of the name's entry when this device had it.
    pub clock: clive_naming::zones::Clock,
}

impl FolderRecord {
    /// `ZONE/NAME`.
    pub fn target(&self) -> String {
        format!("{}/{}", self.zone, self.name)
    }

    /// Records that the folder now holds `hash` (published or taken), with
    /// the clock of its entry.
    pub fn now_holds(&mut self, hash: String, clock: clive_naming::zones::Clock) {
        self.written = Some(hash.clone());
        self.versions.push(SeenVersion { hash, clock });
        if self.versions.len() > KEPT_VERSIONS {
            self.versions.remove(0);
        }
    }

    /// The base for merging in a version whose entry has `clock`: the
    /// latest version this device had that the incoming one descends from,
    /// other than `loser` (the one a naming merge put aside, whose changes
    /// the incoming one does not hold).
    pub fn base_for(
        &self,
        clock: &clive_naming::zones::Clock,
        loser: Option<&str>,
    ) -> Option<String> {
        use clive_naming::zones::{Relation, compare};
        self.versions
            .iter()
            .rev()
            .filter(|v| Some(v.hash.as_str()) != loser)
            .find(|v| matches!(compare(&v.clock, clock), Relation::Before | Relation::Equal))
            .map(|v| v.hash.clone())
    }
}

/// Every synced folder, by directory.
pub fn folders(db: &Database) -> Result<Vec<FolderRecord>, SyncError> {
    all_records(db, FOLDERS, |r: &FolderRecord| r.version)
}

/// Adds or replaces `record`.
pub fn put_folder(db: &Database, record: &FolderRecord) -> Result<(), SyncError> {
    let tx = db.begin_write().map_err(st)?;
    {
        let mut table = tx.open_table(FOLDERS).map_err(st)?;
        table
            .insert(record.dir.as_str(), encode(record)?.as_slice())
            .map_err(st)?;
    }
    tx.commit().map_err(st)?;
    Ok(())
}

/// Removes the folder `dir` and its index; returns its record.
pub fn remove_folder(db: &Database, dir: &str) -> Result<Option<FolderRecord>, SyncError> {
    let tx = db.begin_write().map_err(st)?;
    let old = {
        let mut table = tx.open_table(FOLDERS).map_err(st)?;
        match table.remove(dir).map_err(st)? {
            Some(v) => Some(decode::<FolderRecord>(v.value())?),
            None => None,
        }
    };
    {
        let mut index = tx.open_table(INDEX).map_err(st)?;
        let (from, to) = bounds(dir);
        index
            .retain_in(from.as_str()..to.as_str(), |_, _| false)
            .map_err(st)?;
    }
    tx.commit().map_err(st)?;
    Ok(old)
}

fn bounds(dir: &str) -> (String, String) {
    (format!("{dir}\0"), format!("{dir}\u{1}"))
}

/// The index of the folder `dir`.
pub fn index(db: &Database, dir: &str) -> Result<Index, SyncError> {
    let tx = db.begin_read().map_err(st)?;
    let table = match tx.open_table(INDEX) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Index::new()),
        Err(e) => return Err(st(e)),
    };
    let (from, to) = bounds(dir);
    let mut out = Index::new();
    for row in table.range(from.as_str()..to.as_str()).map_err(st)? {
        let (k, v) = row.map_err(st)?;
        let Some((_, rel)) = k.value().split_once('\0') else {
            continue;
        };
        out.insert(rel.to_owned(), decode::<Indexed>(v.value())?);
    }
    Ok(out)
}

/// Most index records one transaction of [`update_index`] writes.
const INDEX_BATCH: usize = 8192;

/// Writes the changes from `old` to `new` of the folder `dir`'s index, in
/// transactions of at most [`INDEX_BATCH`] records: one transaction for
/// a folder of 100,000 files would hold some 16 MB of dirty pages until
/// it commits. The index is a cache of what was read, so a crash between
/// two of them is harmless: a record written describes its file, and one
/// not yet written is the old one, whose stamp makes the file read again
/// (or whose path is gone, which the next scan drops).
pub fn update_index(db: &Database, dir: &str, old: &Index, new: &Index) -> Result<(), SyncError> {
    let changed: Vec<_> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .collect();
    let gone: Vec<_> = old.keys().filter(|k| !new.contains_key(*k)).collect();
    for batch in changed.chunks(INDEX_BATCH) {
        let tx = db.begin_write().map_err(st)?;
        {
            let mut table = tx.open_table(INDEX).map_err(st)?;
            for (rel, indexed) in batch {
                let key = format!("{dir}\0{rel}");
                table
                    .insert(key.as_str(), encode(*indexed)?.as_slice())
                    .map_err(st)?;
            }
        }
        tx.commit().map_err(st)?;
    }
    for batch in gone.chunks(INDEX_BATCH) {
        let tx = db.begin_write().map_err(st)?;
        {
            let mut table = tx.open_table(INDEX).map_err(st)?;
            for rel in batch {
                let key = format!("{dir}\0{rel}");
                table.remove(key.as_str()).map_err(st)?;
            }
        }
        tx.commit().map_err(st)?;
    }
    Ok(())
}

/// The format version of both tables' records.
pub const VERSION: u32 = RECORD_VERSION;
