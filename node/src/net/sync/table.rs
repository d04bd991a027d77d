//! What sync keeps in `state.redb`.
//!
//! Tables (format version 1, created by their first write; each record
//! carries its `version`, and one of another version is refused, not
//! misread):
//! - `sync.follows.v1`: `ZONE` or `ZONE/PREFIX` (UTF-8) -> JSON
//!   [`FollowRecord`]: the follow set.
//! - `sync.peers.v1`: endpoint id (32 bytes) -> JSON [`PeerRecord`]: the
//!   per-peer watermark, the heads digest last received from that peer by
//!   a catch-up that then completed.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::error::StateError;
use crate::error::SyncError;

const FOLLOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("sync.follows.v1");
const PEERS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("sync.peers.v1");

/// The format version of both tables' records.
pub const RECORD_VERSION: u32 = 1;

/// One entry of the follow set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The zone, by its local name.
    pub zone: String,
    /// Only the names under this prefix; empty for every name.
    #[serde(default)]
    pub prefix: String,
    /// When it was followed (seconds since the Unix epoch).
    pub added: u64,
}

impl FollowRecord {
    /// The entry's key, as `sync follow` spells it: `ZONE` or `ZONE/PREFIX`.
    pub fn key(&self) -> String {
        entry_key(&self.zone, &self.prefix)
    }

    /// Whether the entry reaches `name` of its zone.
    pub fn covers(&self, name: &str) -> bool {
        self.prefix.is_empty()
            || name == self.prefix
            || name
                .strip_prefix(self.prefix.as_str())
                .is_some_and(|rest| self.prefix.ends_with('/') || rest.starts_with('/'))
    }
}

/// `ZONE` or `ZONE/PREFIX`.
pub fn entry_key(zone: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        zone.to_owned()
    } else {
        format!("{zone}/{prefix}")
    }
}

/// What this node remembers of one peer's heads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The digest of the peer's heads that the last completed catch-up got
    /// (64 hex digits).
    pub watermark: String,
    /// When that catch-up completed.
    pub at: u64,
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, SyncError> {
    serde_json::from_slice(bytes).map_err(|e| SyncError::State(StateError::Record(e)))
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, SyncError> {
    serde_json::to_vec(value).map_err(|e| SyncError::State(StateError::Encode(e)))
}

pub(crate) fn st(e: impl Into<StateError>) -> SyncError {
    SyncError::State(e.into())
}

pub(crate) fn check_version(version: u32) -> Result<(), SyncError> {
    if version == RECORD_VERSION {
        Ok(())
    } else {
        Err(SyncError::RecordVersion { version })
    }
}

/// Every record of `table`, in key order, each decoded and its format
/// version (`version` reads it) checked.
pub(crate) fn all_records<T: for<'de> Deserialize<'de>>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    version: impl Fn(&T) -> u32,
) -> Result<Vec<T>, SyncError> {
    let tx = db.begin_read().map_err(st)?;
    let table = match tx.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(st(e)),
    };
    let mut out = Vec::new();
    for row in table.iter().map_err(st)? {
        let (_, v) = row.map_err(st)?;
        let record: T = decode(v.value())?;
        check_version(version(&record))?;
        out.push(record);
    }
    Ok(out)
}

/// The follow set, ordered by key.
pub fn follows(db: &Database) -> Result<Vec<FollowRecord>, SyncError> {
    all_records(db, FOLLOWS, |r: &FollowRecord| r.version)
}

/// Adds `record` to the follow set (replacing one of the same key);
/// forgets every watermark, so the next catch-up with each peer looks at
/// everything again.
pub fn put_follow(db: &Database, record: &FollowRecord) -> Result<(), SyncError> {
    let tx = db.begin_write().map_err(st)?;
    {
        let mut table = tx.open_table(FOLLOWS).map_err(st)?;
        table
            .insert(record.key().as_str(), encode(record)?.as_slice())
            .map_err(st)?;
        clear_watermarks(&tx)?;
    }
    tx.commit().map_err(st)?;
    Ok(())
}

/// Removes the entry `key` from the follow set; returns it.
pub fn remove_follow(db: &Database, key: &str) -> Result<Option<FollowRecord>, SyncError> {
    let tx = db.begin_write().map_err(st)?;
    let old = {
        let mut table = tx.open_table(FOLLOWS).map_err(st)?;
        match table.remove(key).map_err(st)? {
            Some(v) => Some(decode::<FollowRecord>(v.value())?),
            None => None,
        }
    };
    tx.commit().map_err(st)?;
    Ok(old)
}

fn clear_watermarks(tx: &redb::WriteTransaction) -> Result<(), SyncError> {
    let mut peers = tx.open_table(PEERS).map_err(st)?;
    peers.retain(|_, _| false).map_err(st)?;
    Ok(())
}

/// The watermark of `peer`, if a catch-up with it completed.
pub fn watermark(db: &Database, peer: &[u8; 32]) -> Result<Option<PeerRecord>, SyncError> {
    let tx = db.begin_read().map_err(st)?;
    let table = match tx.open_table(PEERS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(st(e)),
    };
    match table.get(peer).map_err(st)? {
        Some(v) => {
            let record: PeerRecord = decode(v.value())?;
            // A record of another version is as good as none: look again.
            Ok((record.version == RECORD_VERSION).then_some(record))
        }
        None => Ok(None),
    }
}

/// Records `peer`'s watermark once a catch-up with it completed.
pub fn set_watermark(db: &Database, peer: &[u8; 32], record: &PeerRecord) -> Result<(), SyncError> {
    let tx = db.begin_write().map_err(st)?;
    {
        let mut table = tx.open_table(PEERS).map_err(st)?;
        table.insert(peer, encode(record)?.as_slice()).map_err(st)?;
    }
    tx.commit().map_err(st)?;
    Ok(())
}

/// Forgets every watermark (the follow set changed, or zones did here).
pub fn forget_watermarks(db: &Database) -> Result<(), SyncError> {
    let tx = db.begin_write().map_err(st)?;
    clear_watermarks(&tx)?;
    tx.commit().map_err(st)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_their_names_only() {
        let r = |prefix: &str| FollowRecord {
            version: 1,
            zone: "z".into(),
            prefix: prefix.into(),
            added: 0,
        };
        assert!(r("").covers("anything"));
        assert!(r("rel").covers("rel"));
        assert!(r("rel").covers("rel/1.0"));
        assert!(!r("rel").covers("release"));
        assert!(r("rel/").covers("rel/1.0"));
        assert_eq!(r("rel").key(), "z/rel");
        assert_eq!(r("").key(), "z");
    }

    #[test]
    fn damaged_or_unknown_records_are_errors() {
        assert!(decode::<FollowRecord>(b"\xff").is_err());
        let extra = br#"{"version":1,"zone":"z","added":0,"more":1}"#;
        assert!(decode::<FollowRecord>(extra).is_err());
        assert!(check_version(2).is_err());
    }
}
