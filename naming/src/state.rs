//! What naming keeps in the node's `state.redb`.
//!
//! Tables (format version 1, created by their first write). Keys join their
//! parts with NUL, which no zone, role or name may contain; versions are
//! written as 20 decimal digits so that keys sort by version.
//! - `naming.zones.v1`: zone -> JSON [`ZoneRecord`]
//! - `naming.current.v1`: zone NUL role -> the trusted metadata file of that
//!   role (what a TUF client keeps in its metadata directory)
//! - `naming.versions.v1`: zone NUL role NUL version -> [`Accepted`]: every
//!   version ever accepted, kept for history and for peers; u64 BE time
//!   accepted, u64 BE root version, then the file's bytes as received
//! - `naming.names.v1`: zone NUL name -> JSON [`NameEntry`]: each name and
//!   the role TUF resolution reads it from (top-level `targets`, or the
//!   first delegation matching it), for resolving without parsing metadata
//! - `naming.overrides.v1`: zone NUL name -> JSON [`Override`]
//! - `naming.log.v1`: zone NUL name NUL sequence -> JSON [`LogEntry`]: local
//!   events (overrides set and cleared)
//! - `naming.evidence.v1`: zone NUL role NUL version -> JSON [`Evidence`]
//!   (an equivocation); zone NUL role NUL version NUL hash -> JSON
//!   [`Evidence`] of kind `fork` (two devices' documents, merged)
//! - `naming.receipts.v1`: time (20 digits) NUL receipt -> JSON list of
//!   [`crate::Published`]: what a publish named by its client's receipt
//!   committed, in the publish's own transaction (the newest
//!   [`crate::zones::RECEIPTS_KEPT`] are kept)
//! - `naming.mirrored.v1`: zone NUL name -> JSON [`crate::zones::Mirrored`]:
//!   the downloaded bytes of a target made by another TUF tool (see
//!   `zones/mirrored.rs`)

use std::sync::Arc;

use redb::{
    Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::NamingError;

type Table = TableDefinition<'static, &'static str, &'static [u8]>;

pub(crate) const ZONES: Table = TableDefinition::new("naming.zones.v1");
pub(crate) const CURRENT: Table = TableDefinition::new("naming.current.v1");
pub(crate) const VERSIONS: Table = TableDefinition::new("naming.versions.v1");
pub(crate) const NAMES: Table = TableDefinition::new("naming.names.v1");
pub(crate) const OVERRIDES: Table = TableDefinition::new("naming.overrides.v1");
pub(crate) const LOG: Table = TableDefinition::new("naming.log.v1");
pub(crate) const EVIDENCE: Table = TableDefinition::new("naming.evidence.v1");
pub(crate) const RECEIPTS: Table = TableDefinition::new("naming.receipts.v1");

/// A zone this node publishes or follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneRecord {
    /// The zone's network id: announcements and peers name the zone by it.
    pub id: String,
    /// Whether this node created the zone. Whether it publishes there now
    /// is judged by the root's keys ([`crate::zones::ZoneInfo::publisher`]).
    pub publisher: bool,
    /// The node that publishes it (endpoint id, hex), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// A static HTTP mirror of its TUF repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// When this node started following or publishing it.
    pub since: u64,
    /// The last successful update: how the current metadata was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
}

/// How a zone's current metadata was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// When.
    pub at: u64,
    /// Version of the trusted root.
    pub root: u64,
    /// Version of the timestamp.
    pub timestamp: u64,
    /// Version of the snapshot.
    pub snapshot: u64,
    /// Version of the top-level targets.
    pub targets: u64,
    /// The earliest expiry among root, timestamp, snapshot and targets.
    pub expires: u64,
    /// Which of those roles expires first.
    pub expires_role: String,
}

/// One accepted version of a role's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// When it was accepted.
    pub at: u64,
    /// The root version in force when it was accepted.
    pub root: u64,
    /// The file, as it was received.
    pub bytes: Vec<u8>,
}

/// A name of a zone's top-level targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameEntry {
    /// Its BLAKE3 hash (hex).
    pub hash: String,
    /// `blob` or `tree`.
    pub kind: String,
    /// Its length.
    pub length: u64,
    /// The version of the role it was read from.
    pub version: u64,
    /// The role that signed it (`targets`, a bin, or a delegated prefix).
    #[serde(default = "top_level")]
    pub role: String,
}

fn top_level() -> String {
    "targets".to_owned()
}

/// A local override of a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// The BLAKE3 hash (hex) the name maps to on this node.
    pub hash: String,
    /// `blob` or `tree`.
    pub kind: String,
    /// When it was set.
    pub at: u64,
}

/// A local event in a name's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When.
    pub at: u64,
    /// What: `override` or `clear`.
    pub event: String,
    /// The hash overridden to, for `override`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// Two different, validly signed documents for one role and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// When the second one was seen.
    pub at: u64,
    /// The document that was trusted.
    #[serde(with = "hex_bytes")]
    pub trusted: Vec<u8>,
    /// The other one.
    #[serde(with = "hex_bytes")]
    pub other: Vec<u8>,
    /// Where the other one came from.
    pub source: String,
    /// `equivocation` (one key signed both: refused, reported), or `fork`:
    /// the two were signed by different authorized keys of the zone (two
    /// devices publishing apart), merged rather than refused. Fork rows are
    /// keyed zone NUL role NUL version NUL the first 16 hex digits of the
    /// BLAKE3 of the other document, so each fork of a version is kept.
    #[serde(default = "equivocation", skip_serializing_if = "is_equivocation")]
    pub kind: String,
    /// The keys (SSH fingerprints) whose valid signatures the trusted
    /// document carries (forks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_by: Vec<String>,
    /// The keys whose valid signatures the other document carries (forks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_by: Vec<String>,
}

/// The kind of an [`Evidence`] row of one key signing two documents.
pub const EQUIVOCATION: &str = "equivocation";
/// The kind of an [`Evidence`] row of two devices' documents.
pub const FORK: &str = "fork";

fn equivocation() -> String {
    EQUIVOCATION.to_owned()
}

fn is_equivocation(kind: &str) -> bool {
    kind == EQUIVOCATION
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// The node's `state.redb`, opened for writing (a node) or only for
/// reading (a lookup while no daemon runs, which then writes nothing), or
/// one write transaction in progress on it.
#[derive(Clone)]
pub enum Db {
    /// Read and write.
    Rw(Arc<Database>),
    /// Read only: every write fails.
    Ro(Arc<ReadOnlyDatabase>),
    /// Inside [`Db::transaction`]: reads see its writes, writes join it, and
    /// nothing of it is kept unless all of it commits.
    Tx(Arc<WriteTransaction>),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Db::Rw(_) => "Db::Rw",
            Db::Ro(_) => "Db::Ro",
            Db::Tx(_) => "Db::Tx",
        })
    }
}

impl Db {
    /// Runs `f` over one write transaction and commits it when `f`
    /// succeeds; when `f` fails nothing it wrote is kept. Inside a
    /// transaction already, `f` joins it.
    pub fn transaction<R>(
        &self,
        f: impl FnOnce(&Db) -> Result<R, NamingError>,
    ) -> Result<R, NamingError> {
        let db = match self {
            Db::Tx(_) => return f(self),
            Db::Ro(_) => return Err(state_err("opened read-only")),
            Db::Rw(db) => db,
        };
        let tx = Arc::new(db.begin_write().map_err(state_err)?);
        let inner = Db::Tx(tx.clone());
        let out = f(&inner);
        drop(inner);
        let tx = Arc::try_unwrap(tx)
            .map_err(|_| state_err("a write transaction was still in use at its end"))?;
        match out {
            Ok(out) => {
                tx.commit().map_err(state_err)?;
                Ok(out)
            }
            Err(e) => {
                tx.abort().map_err(state_err)?;
                Err(e)
            }
        }
    }

    /// Whether this is a transaction in progress.
    pub fn in_transaction(&self) -> bool {
        matches!(self, Db::Tx(_))
    }
}

type Bytes = &'static [u8];

/// One table opened for reading: from a read transaction, or from the
/// write transaction in progress.
enum Opened<'a> {
    Read(redb::ReadOnlyTable<&'static str, Bytes>),
    Write(redb::Table<'a, &'static str, Bytes>),
}

/// Opens `table` for reading; `None` when it does not exist yet.
fn open(db: &Db, table: Table) -> Result<Option<Opened<'_>>, NamingError> {
    let tx = match db {
        Db::Tx(tx) => {
            return Ok(Some(Opened::Write(
                tx.open_table(table).map_err(state_err)?,
            )));
        }
        Db::Rw(db) => db.begin_read(),
        Db::Ro(db) => db.begin_read(),
    }
    .map_err(state_err)?;
    match tx.open_table(table) {
        Ok(t) => Ok(Some(Opened::Read(t))),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(state_err(e)),
    }
}

impl Opened<'_> {
    fn get(&self, k: &str) -> Result<Option<Vec<u8>>, NamingError> {
        let got = match self {
            Opened::Read(t) => t.get(k),
            Opened::Write(t) => t.get(k),
        }
        .map_err(state_err)?;
        Ok(got.map(|v| v.value().to_vec()))
    }

    fn range<'r>(
        &self,
        range: impl std::ops::RangeBounds<&'r str> + 'r,
    ) -> Result<redb::Range<'_, &'static str, Bytes>, NamingError> {
        match self {
            Opened::Read(t) => t.range(range),
            Opened::Write(t) => t.range(range),
        }
        .map_err(state_err)
    }
}

/// The key of a row: its parts joined by NUL.
pub(crate) fn key(parts: &[&str]) -> String {
    parts.join("\0")
}

/// The key of one version of a role.
pub(crate) fn version_key(zone: &str, role: &str, version: u64) -> String {
    key(&[zone, role, &format!("{version:020}")])
}

pub(crate) fn state_err(e: impl std::fmt::Display) -> NamingError {
    NamingError::State(e.to_string())
}

/// How a table's values are encoded: what reads a record back from
/// `state.redb` (public for the fuzz targets in `fuzz/`).
pub trait Row: Sized {
    /// The value's bytes.
    fn to_row(&self) -> Result<Vec<u8>, NamingError>;
    /// The value, from its bytes; a clear error when they are damaged.
    fn from_row(bytes: &[u8]) -> Result<Self, NamingError>;
}

macro_rules! json_rows {
    ($($t:ty),*) => {$(
        impl Row for $t {
            fn to_row(&self) -> Result<Vec<u8>, NamingError> {
                serde_json::to_vec(self).map_err(state_err)
            }
            fn from_row(bytes: &[u8]) -> Result<Self, NamingError> {
                serde_json::from_slice(bytes)
                    .map_err(|e| state_err(format!("damaged record: {e}")))
            }
        }
    )*};
}

json_rows!(ZoneRecord, NameEntry, Override, LogEntry, Evidence);

impl Row for Accepted {
    fn to_row(&self) -> Result<Vec<u8>, NamingError> {
        let mut out = Vec::with_capacity(16 + self.bytes.len());
        out.extend_from_slice(&self.at.to_be_bytes());
        out.extend_from_slice(&self.root.to_be_bytes());
        out.extend_from_slice(&self.bytes);
        Ok(out)
    }

    fn from_row(bytes: &[u8]) -> Result<Self, NamingError> {
        let damaged = || state_err("damaged version record: shorter than its header");
        let (at, rest) = bytes.split_first_chunk::<8>().ok_or_else(damaged)?;
        let (root, rest) = rest.split_first_chunk::<8>().ok_or_else(damaged)?;
        Ok(Accepted {
            at: u64::from_be_bytes(*at),
            root: u64::from_be_bytes(*root),
            bytes: rest.to_vec(),
        })
    }
}

fn decode<T: Row>(bytes: &[u8]) -> Result<T, NamingError> {
    T::from_row(bytes)
}

/// Reads one raw row; `None` when it or its table does not exist.
pub(crate) fn get_raw(db: &Db, table: Table, k: &str) -> Result<Option<Vec<u8>>, NamingError> {
    match open(db, table)? {
        Some(t) => t.get(k),
        None => Ok(None),
    }
}

/// Reads one JSON row.
pub(crate) fn get<T: Row>(db: &Db, table: Table, k: &str) -> Result<Option<T>, NamingError> {
    get_raw(db, table, k)?.map(|b| decode(&b)).transpose()
}

/// Every raw row whose key starts with `prefix`, in key order, with the
/// prefix cut off the key.
pub(crate) fn scan_raw(
    db: &Db,
    table: Table,
    prefix: &str,
) -> Result<Vec<(String, Vec<u8>)>, NamingError> {
    let Some(t) = open(db, table)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for row in t.range(prefix..)? {
        let (k, v) = row.map_err(state_err)?;
        let Some(rest) = k.value().strip_prefix(prefix) else {
            break;
        };
        out.push((rest.to_owned(), v.value().to_vec()));
    }
    Ok(out)
}

/// The last `n` rows (in key order) whose key is `prefix` followed by a
/// NUL and more, newest first: the latest versions of a role, for
/// `prefix` = zone NUL role.
pub(crate) fn last_versions<T: Row>(
    db: &Db,
    table: Table,
    prefix: &str,
    n: usize,
) -> Result<Vec<(String, T)>, NamingError> {
    let Some(t) = open(db, table)? else {
        return Ok(Vec::new());
    };
    let start = format!("{prefix}\0");
    let end = format!("{prefix}\u{1}");
    let mut out = Vec::new();
    for row in t.range(start.as_str()..end.as_str())?.rev().take(n) {
        let (k, v) = row.map_err(state_err)?;
        let rest = k.value().get(start.len()..).unwrap_or_default().to_owned();
        out.push((rest, decode(v.value())?));
    }
    Ok(out)
}

/// Every JSON row whose key starts with `prefix` (see [`scan_raw`]).
pub(crate) fn scan<T: Row>(
    db: &Db,
    table: Table,
    prefix: &str,
) -> Result<Vec<(String, T)>, NamingError> {
    scan_raw(db, table, prefix)?
        .into_iter()
        .map(|(k, v)| Ok((k, decode(&v)?)))
        .collect()
}

/// Writes rows in one transaction: `write` gets the open transaction
/// (the one in progress, inside [`Db::transaction`]).
pub(crate) fn write<R>(
    db: &Db,
    write: impl FnOnce(&WriteTransaction) -> Result<R, NamingError>,
) -> Result<R, NamingError> {
    let db = match db {
        Db::Tx(tx) => return write(tx),
        Db::Ro(_) => return Err(state_err("opened read-only")),
        Db::Rw(db) => db,
    };
    let tx = db.begin_write().map_err(state_err)?;
    let out = write(&tx)?;
    tx.commit().map_err(state_err)?;
    Ok(out)
}

/// Inserts one raw row within a transaction.
pub(crate) fn put_raw(
    tx: &WriteTransaction,
    table: Table,
    k: &str,
    v: &[u8],
) -> Result<(), NamingError> {
    tx.open_table(table)
        .map_err(state_err)?
        .insert(k, v)
        .map_err(state_err)?;
    Ok(())
}

/// Inserts one JSON row within a transaction.
pub(crate) fn put<T: Row>(
    tx: &WriteTransaction,
    table: Table,
    k: &str,
    v: &T,
) -> Result<(), NamingError> {
    put_raw(tx, table, k, &v.to_row()?)
}

/// Inserts one raw row within a transaction, then removes the first rows
/// (in key order) until the table holds at most `max`.
pub(crate) fn put_bounded(
    tx: &WriteTransaction,
    table: Table,
    k: &str,
    v: &[u8],
    max: u64,
) -> Result<(), NamingError> {
    let mut t = tx.open_table(table).map_err(state_err)?;
    t.insert(k, v).map_err(state_err)?;
    while t.len().map_err(state_err)? > max {
        if t.pop_first().map_err(state_err)?.is_none() {
            break;
        }
    }
    Ok(())
}

/// Removes one row within a transaction; whether it was there.
pub(crate) fn remove(tx: &WriteTransaction, table: Table, k: &str) -> Result<bool, NamingError> {
    let mut t = tx.open_table(table).map_err(state_err)?;
    let removed = t.remove(k).map_err(state_err)?.is_some();
    Ok(removed)
}

/// Removes every row whose key starts with `prefix`, within a transaction.
pub(crate) fn remove_prefix(
    tx: &WriteTransaction,
    table: Table,
    prefix: &str,
) -> Result<(), NamingError> {
    let mut t = tx.open_table(table).map_err(state_err)?;
    let mut keys = Vec::new();
    for row in t.range(prefix..).map_err(state_err)? {
        let (k, _) = row.map_err(state_err)?;
        let k = k.value().to_owned();
        if !k.starts_with(prefix) {
            break;
        }
        keys.push(k);
    }
    for k in keys {
        t.remove(k.as_str()).map_err(state_err)?;
    }
    Ok(())
}
