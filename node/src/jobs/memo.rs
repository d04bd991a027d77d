//! The memo: signed job results by job id, and which of them may be reused.
//!
//! # Table `job_results` in `state.redb` (format version 1)
//!
//! Job id (32 bytes) -> a version byte (1) followed by the JSON of a
//! [`SignedResult`] (`{"result":"...","signature":"..."}`). The table is
//! created by its first write. One result is kept per job: the latest one
//! put, except that a run that did not complete (timed out or cancelled)
//! never replaces one that did. Only results whose signature verifies are
//! put.
//!
//! A stored result is a memo hit only when the run completed (whatever
//! its exit status) and this node signed it, or a chain from this node's
//! roots grants its signer `attest`; any other result is kept (for `job
//! result`) but never reused. gc keeps the
//! objects every stored result references ([`Memo::objects`]).
//!
//! # Table `jobs.memo_used.v1` (the cache's recency)
//!
//! Job id (32 bytes) -> when its result was last used: put, or returned
//! as a memo hit ([`Memo::touch`], one small write per hit, not synced), in
//! microseconds since the Unix epoch (a `u64`). A result without a row
//! (written before this table existed) was used at 0: longest ago.
//!
//! # Table `jobs.memo_evicted.v1`
//!
//! Job id (32 bytes) -> the 96 bytes of the outputs, stdout and stderr
//! hashes of the result the cache last evicted for that job
//! ([`Memo::evict`]). A job record (`records`) that holds a result with
//! exactly those objects no longer keeps them from gc: the memo entry went,
//! and its objects with it. The row stays when the job is run again.
//!
//! The cache itself (which entries go, least recently used first, once
//! their objects pass `[jobs] cache`) is `crate::jobs::cache`.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use clive_cas::Hash;
use clive_trust::PublicIdentity;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{
    document::JobId,
    result::{JobResult, MAX_RESULT_LEN, MAX_SIGNATURE_LEN, ResultError, SignedResult},
};

const RESULTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("job_results");
const USED: TableDefinition<&[u8; 32], u64> = TableDefinition::new("jobs.memo_used.v1");
const EVICTED: TableDefinition<&[u8; 32], &[u8; 96]> = TableDefinition::new("jobs.memo_evicted.v1");
/// The version byte that starts every record.
const RECORD_VERSION: u8 = 1;
/// A record larger than this is damaged (a result's JSON string may
/// escape every byte as `\uXXXX`).
const MAX_RECORD_LEN: usize = 1 + 6 * MAX_RESULT_LEN + 2 * MAX_SIGNATURE_LEN + 64;

/// Which keys hold `attest` on this node (the node's trust state answers
/// it; see `crate::authority`): whose results are memo hits here.
pub trait Attestations: Send + Sync {
    /// Whether `key` holds `attest` here now.
    fn attested(&self, key: &PublicIdentity) -> bool;
}

/// The memo of signed job results, in `state.redb`.
#[derive(Debug, Clone)]
pub struct Memo {
    db: Arc<Database>,
    /// Set by each [`Memo::put`] of this handle (and its clones), taken by
    /// [`Memo::take_put`]: whether the cache may have grown.
    put_since: Arc<AtomicBool>,
    /// The cache's size in bytes when it was last measured, for a `status`
    /// asked while a collection or an import holds the store.
    measured: Arc<std::sync::Mutex<Option<u64>>>,
}

/// One entry of the memo, as the cache sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoEntry {
    /// The job.
    pub id: JobId,
    /// The objects its result references: outputs, stdout, stderr.
    pub objects: [Hash; 3],
    /// When it was last used (put or hit), microseconds since the Unix epoch.
    pub last_used: u64,
}

/// Why the memo cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum MemoError {
    /// The state database failed.
    #[error("job results in state.redb: {0}")]
    State(#[from] redb::Error),
    /// A stored record that does not decode.
    #[error("the stored result of job {id} is damaged: {reason}")]
    Damaged {
        /// The job.
        id: JobId,
        /// What is wrong with it.
        reason: String,
    },
    /// A result that does not verify, refused by [`Memo::put`].
    #[error("{0}")]
    Result(#[from] ResultError),
}

impl Memo {
    /// The memo kept in `db` (`state.redb`).
    pub fn new(db: Arc<Database>) -> Memo {
        Memo {
            db,
            put_since: Arc::default(),
            measured: Arc::default(),
        }
    }

    /// Whether a result was put through this handle since the last call
    /// (and resets it): the cache may need trimming.
    pub fn take_put(&self) -> bool {
        self.put_since.swap(false, Ordering::Relaxed)
    }

    /// Marks the cache as possibly grown again: its trim was put off.
    pub fn mark_put(&self) {
        self.put_since.store(true, Ordering::Relaxed);
    }

    /// Records the cache's size, as a trim or a measurement found it.
    pub fn set_measured(&self, bytes: u64) {
        *self.measured.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
    }

    /// The cache's size at its last measurement, if there was one.
    pub fn measured(&self) -> Option<u64> {
        *self.measured.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `signed` as the result of its job, after verifying it;
    /// replaces what was kept for that job, unless this run did not
    /// complete and the kept one did.
    pub fn put(&self, signed: &SignedResult) -> Result<(), MemoError> {
        let (result, _) = signed.verify()?;
        let record = encode_record(signed);
        let tx = self.db.begin_write().map_err(redb::Error::from)?;
        {
            let mut table = tx.open_table(RESULTS).map_err(redb::Error::from)?;
            let key = result.job.0.as_bytes();
            let keep_old = !result.completed()
                && table
                    .get(key)
                    .map_err(redb::Error::from)?
                    .and_then(|old| decode_record(old.value()).ok())
                    .and_then(|old| JobResult::decode(&old.result).ok())
                    .is_some_and(|old| old.completed());
            if keep_old {
                return Ok(());
            }
            table
                .insert(key, record.as_slice())
                .map_err(redb::Error::from)?;
            let mut used = tx.open_table(USED).map_err(redb::Error::from)?;
            used.insert(key, now_micros()).map_err(redb::Error::from)?;
        }
        tx.commit().map_err(redb::Error::from)?;
        self.put_since.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Records that the result of `id` was used now (a memo hit): one
    /// small write, so the cache evicts it after those used longer ago.
    /// Not synced to disk (a pipeline of memo hits makes one per step): it
    /// is made durable by the next synced write to `state.redb`, or when
    /// the database closes; a crash before then loses only recency, which
    /// makes those results look used longer ago.
    pub fn touch(&self, id: &JobId) -> Result<(), MemoError> {
        let mut tx = self.db.begin_write().map_err(redb::Error::from)?;
        tx.set_durability(redb::Durability::None)
            .map_err(redb::Error::from)?;
        {
            let mut used = tx.open_table(USED).map_err(redb::Error::from)?;
            used.insert(id.0.as_bytes(), now_micros())
                .map_err(redb::Error::from)?;
        }
        tx.commit().map_err(redb::Error::from)?;
        Ok(())
    }

    /// Every entry whose record decodes, with when it was last used; a
    /// damaged record is skipped (and logged), as for gc.
    pub fn entries(&self) -> Result<Vec<MemoEntry>, MemoError> {
        let tx = self.db.begin_read().map_err(redb::Error::from)?;
        let table = match tx.open_table(RESULTS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(redb::Error::from(e).into()),
        };
        let used = match tx.open_table(USED) {
            Ok(used) => Some(used),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(redb::Error::from(e).into()),
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(redb::Error::from)? {
            let (key, value) = row.map_err(redb::Error::from)?;
            let id = JobId(Hash::from_bytes(*key.value()));
            let decoded = decode_record(value.value())
                .and_then(|s| JobResult::decode(&s.result).map_err(|e| e.to_string()));
            let result = match decoded {
                Ok(result) => result,
                Err(reason) => {
                    tracing::warn!("{}", MemoError::Damaged { id, reason });
                    continue;
                }
            };
            let last_used = match &used {
                Some(used) => used
                    .get(key.value())
                    .map_err(redb::Error::from)?
                    .map_or(0, |v| v.value()),
                None => 0,
            };
            out.push(MemoEntry {
                id,
                objects: [result.outputs, result.stdout, result.stderr],
                last_used,
            });
        }
        Ok(out)
    }

    /// Evicts each entry of `entries` from the memo, in one transaction:
    /// its record and recency go, and its objects are remembered as
    /// evicted for its job (see the module docs). An entry whose record
    /// changed since it was read (the job ran again) is left alone.
    /// Returns those evicted.
    pub fn evict(&self, entries: &[MemoEntry]) -> Result<Vec<JobId>, MemoError> {
        let tx = self.db.begin_write().map_err(redb::Error::from)?;
        let mut gone = Vec::new();
        {
            let mut table = tx.open_table(RESULTS).map_err(redb::Error::from)?;
            let mut used = tx.open_table(USED).map_err(redb::Error::from)?;
            let mut evicted = tx.open_table(EVICTED).map_err(redb::Error::from)?;
            for entry in entries {
                let key = entry.id.0.as_bytes();
                let current = table
                    .get(key)
                    .map_err(redb::Error::from)?
                    .and_then(|v| decode_record(v.value()).ok())
                    .and_then(|s| JobResult::decode(&s.result).ok())
                    .map(|r| [r.outputs, r.stdout, r.stderr]);
                if current != Some(entry.objects) {
                    continue;
                }
                table.remove(key).map_err(redb::Error::from)?;
                used.remove(key).map_err(redb::Error::from)?;
                evicted
                    .insert(key, &objects_bytes(&entry.objects))
                    .map_err(redb::Error::from)?;
                gone.push(entry.id);
            }
        }
        tx.commit().map_err(redb::Error::from)?;
        Ok(gone)
    }

    /// For each job the cache evicted a result of, that result's objects.
    pub fn evicted(&self) -> Result<HashMap<JobId, [Hash; 3]>, MemoError> {
        let tx = self.db.begin_read().map_err(redb::Error::from)?;
        let table = match tx.open_table(EVICTED) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(HashMap::new()),
            Err(e) => return Err(redb::Error::from(e).into()),
        };
        let mut out = HashMap::new();
        for row in table.iter().map_err(redb::Error::from)? {
            let (key, value) = row.map_err(redb::Error::from)?;
            let bytes = value.value();
            let hash = |i: usize| {
                let mut h = [0u8; 32];
                h.copy_from_slice(&bytes[32 * i..32 * (i + 1)]);
                Hash::from_bytes(h)
            };
            out.insert(
                JobId(Hash::from_bytes(*key.value())),
                [hash(0), hash(1), hash(2)],
            );
        }
        Ok(out)
    }

    /// The result kept for `id`, whoever signed it (not verified again).
    pub fn get(&self, id: &JobId) -> Result<Option<SignedResult>, MemoError> {
        let tx = self.db.begin_read().map_err(redb::Error::from)?;
        let table = match tx.open_table(RESULTS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(redb::Error::from(e).into()),
        };
        let Some(value) = table.get(id.0.as_bytes()).map_err(redb::Error::from)? else {
            return Ok(None);
        };
        decode_record(value.value())
            .map(Some)
            .map_err(|reason| MemoError::Damaged { id: *id, reason })
    }

    /// A memo hit: a result for `id` signed by `me`, or by a key `trust`
    /// says holds `attest` here. Else None.
    ///
    /// A run that timed out or was cancelled is no hit; nor is a kept
    /// result that no longer verifies, or is for another job (logged).
    pub fn hit(
        &self,
        id: &JobId,
        me: &PublicIdentity,
        trust: &dyn Attestations,
    ) -> Result<Option<(JobResult, SignedResult)>, MemoError> {
        let signed = match self.get(id) {
            Ok(Some(signed)) => signed,
            Ok(None) => return Ok(None),
            Err(e @ MemoError::Damaged { .. }) => {
                tracing::warn!("not reusing a result: {e}");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let (result, signer) = match signed.verify() {
            Ok(verified) => verified,
            Err(e) => {
                tracing::warn!("not reusing the stored result of job {id}: {e}");
                return Ok(None);
            }
        };
        if result.job != *id {
            tracing::warn!(
                "not reusing the stored result of job {id}: it is for job {}",
                result.job
            );
            return Ok(None);
        }
        if !result.completed() {
            return Ok(None);
        }
        let trusted = signer.bytes() == me.bytes() || trust.attested(&signer);
        Ok(trusted.then_some((result, signed)))
    }

    /// Every object a stored result references (outputs, stdout, stderr): gc keeps them.
    /// A damaged record is skipped (and logged).
    pub fn objects(&self) -> Result<Vec<Hash>, MemoError> {
        Ok(self.referenced()?)
    }

    /// [`Memo::objects`], failing only as the database does (for gc's roots).
    pub(crate) fn referenced(&self) -> Result<Vec<Hash>, redb::Error> {
        let tx = self.db.begin_read()?;
        let table = match tx.open_table(RESULTS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in table.iter()? {
            let (key, value) = row?;
            let decoded = decode_record(value.value())
                .and_then(|s| JobResult::decode(&s.result).map_err(|e| e.to_string()));
            match decoded {
                Ok(r) => out.extend([r.outputs, r.stdout, r.stderr]),
                Err(reason) => {
                    let id = JobId(Hash::from_bytes(*key.value()));
                    tracing::warn!("{}", MemoError::Damaged { id, reason });
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// Now, in microseconds since the Unix epoch (0 before it).
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn objects_bytes(objects: &[Hash; 3]) -> [u8; 96] {
    let mut out = [0u8; 96];
    for (i, hash) in objects.iter().enumerate() {
        out[32 * i..32 * (i + 1)].copy_from_slice(hash.as_bytes());
    }
    out
}

fn encode_record(signed: &SignedResult) -> Vec<u8> {
    let mut record = vec![RECORD_VERSION];
    // A verified result is UTF-8 text, so it always serializes.
    record.extend(serde_json::to_vec(signed).expect("a verified result serializes"));
    record
}

/// Decodes a record of the `job_results` table as stored (public for the
/// fuzz targets); a clear error when it is damaged.
pub fn decode_record(bytes: &[u8]) -> Result<SignedResult, String> {
    if bytes.len() > MAX_RECORD_LEN {
        return Err(format!("{} bytes, more than any record", bytes.len()));
    }
    match bytes.split_first() {
        Some((&RECORD_VERSION, json)) => serde_json::from_slice(json).map_err(|e| e.to_string()),
        Some((v, _)) => Err(format!(
            "record version {v} is not supported (only {RECORD_VERSION})"
        )),
        None => Err("empty record".into()),
    }
}

#[cfg(test)]
#[path = "memo_tests.rs"]
mod tests;
