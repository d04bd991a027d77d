//! What this node remembers of jobs, in `state.redb`: the jobs it runs
//! (`jobs.run.v1`) and the jobs it sent to a peer (`jobs.sent.v1`), each
//! keyed by the 32 bytes of the job id, the value a JSON [`JobRecord`].
//!
//! A record is written before anything of the job happens (so a job is
//! never silently lost) and at each change of state. When a node opens, a
//! job it was running (or had queued) when it stopped is marked
//! `interrupted`: its process tree died with the executor.

use std::sync::Arc;

use clive_cas::Hash;
use clive_trust::PublicIdentity;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{document::JobId, result::SignedResult};

const RUN: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("jobs.run.v1");
const SENT: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("jobs.sent.v1");
/// Objects a peer sent this node as a job's input: key the peer's 32 key
/// bytes then the object's 32 hash bytes, value empty.
/// The record each reproducibility check under way replaced (side byte,
/// then id; the prior record's JSON, empty for none): what a node that
/// stopped mid-check puts back when it opens.
const CHECKS: TableDefinition<&[u8; 33], &[u8]> = TableDefinition::new("jobs.checks.v1");
const SUPPLIED: TableDefinition<&[u8; 64], ()> = TableDefinition::new("jobs.supplied.v1");

/// Who asked for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// This node.
    Local,
    /// A peer, by key.
    Peer(PublicIdentity),
}

/// Version of [`JobRecord`]'s JSON.
pub const RECORD_VERSION: u32 = 1;

/// Which table: jobs run here, or sent to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// This node is the executor.
    Run,
    /// This node sent the job to a peer.
    Sent,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its inputs or a slot.
    Queued,
    /// Its process runs.
    Running,
    /// It ended and has a signed result (whatever its exit status).
    Done,
    /// It could not run (the reason says why).
    Failed,
    /// It was cancelled before it had a result.
    Cancelled,
    /// The executor stopped while the job was queued or running.
    Interrupted,
}

impl JobState {
    /// Whether the job is still under way.
    pub fn is_live(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }

    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
        }
    }
}

/// One job as this node remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// The job id.
    pub id: JobId,
    /// The job document's canonical JSON.
    pub doc: String,
    /// The other side: the requester's key (run here; empty for this
    /// node's own jobs) or the executor's key (sent).
    pub peer: String,
    /// Where it stands.
    pub state: JobState,
    /// When it was submitted (RFC 3339).
    pub submitted: String,
    /// Why it failed, was cancelled or interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its signed result, once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<SignedResult>,
    /// Whether the result was a memo hit (nothing ran).
    #[serde(default)]
    pub memo_hit: bool,
    /// Objects the job reads, kept by gc while it is live.
    #[serde(default)]
    pub inputs: Vec<Hash>,
    /// A job one of this node's own devices (the record's `peer`) ran for
    /// itself, whose result sync took in (kept on the `sent` side).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub device: bool,
    /// The result is on record and its objects (outputs, stdout, stderr)
    /// are still being fetched: a sync cut off meanwhile takes it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outputs_pending: bool,
}

/// A record table that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// redb failed.
    #[error("the jobs table of state.redb: {0}")]
    Db(String),
    /// A record that does not decode (written by a newer version?).
    #[error("a job record that does not decode: {0}")]
    Malformed(String),
}

fn db_err(e: impl std::fmt::Display) -> RecordError {
    RecordError::Db(e.to_string())
}

/// The job records of one node.
#[derive(Debug, Clone)]
pub struct Records {
    db: Arc<Database>,
}

fn table(side: Side) -> TableDefinition<'static, &'static [u8; 32], &'static [u8]> {
    match side {
        Side::Run => RUN,
        Side::Sent => SENT,
    }
}

impl Records {
    /// The records in `db`.
    pub fn new(db: Arc<Database>) -> Records {
        Records { db }
    }

    /// Writes `record` unless one of its id is there; whether it wrote.
    pub fn put_new(&self, side: Side, record: &JobRecord) -> Result<bool, RecordError> {
        let bytes =
            serde_json::to_vec(record).map_err(|e| RecordError::Malformed(e.to_string()))?;
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(table(side)).map_err(db_err)?;
            if t.get(record.id.0.as_bytes()).map_err(db_err)?.is_some() {
                return Ok(false);
            }
            t.insert(record.id.0.as_bytes(), bytes.as_slice())
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(true)
    }

    /// Writes `record` (replacing the one of its id).
    pub fn put(&self, side: Side, record: &JobRecord) -> Result<(), RecordError> {
        let bytes =
            serde_json::to_vec(record).map_err(|e| RecordError::Malformed(e.to_string()))?;
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(table(side)).map_err(db_err)?;
            t.insert(record.id.0.as_bytes(), bytes.as_slice())
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Removes the record of `id`, if there is one.
    pub fn remove(&self, side: Side, id: &JobId) -> Result<(), RecordError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(table(side)).map_err(db_err)?;
            t.remove(id.0.as_bytes()).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Puts `record` back as the record of `id` (see [`Records::put`]), or
    /// removes the record of `id` when `record` is `None`: what a
    /// reproducibility check leaves (`Executor::submit_check`).
    pub fn restore(
        &self,
        side: Side,
        id: &JobId,
        record: Option<&JobRecord>,
    ) -> Result<(), RecordError> {
        let bytes = record
            .map(|r| serde_json::to_vec(r).map_err(|e| RecordError::Malformed(e.to_string())))
            .transpose()?;
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(table(side)).map_err(db_err)?;
            match &bytes {
                Some(bytes) => t.insert(id.0.as_bytes(), bytes.as_slice()),
                None => t.remove(id.0.as_bytes()),
            }
            .map_err(db_err)?;
            let mut checks = tx.open_table(CHECKS).map_err(db_err)?;
            checks.remove(&check_key(side, id)).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Writes `record`, the record of a reproducibility check, keeping
    /// `prior` (the record it replaces) until [`Records::restore`] puts it
    /// back, or [`Records::restore_checks`] does when the node next opens.
    pub fn put_check(
        &self,
        side: Side,
        record: &JobRecord,
        prior: Option<&JobRecord>,
    ) -> Result<(), RecordError> {
        let malformed = |e: serde_json::Error| RecordError::Malformed(e.to_string());
        let bytes = serde_json::to_vec(record).map_err(malformed)?;
        let prior = match prior {
            Some(prior) => serde_json::to_vec(prior).map_err(malformed)?,
            None => Vec::new(),
        };
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut checks = tx.open_table(CHECKS).map_err(db_err)?;
            let key = check_key(side, &record.id);
            // A check already kept a prior record for this id: that one stays.
            if checks.get(&key).map_err(db_err)?.is_none() {
                checks.insert(&key, prior.as_slice()).map_err(db_err)?;
            }
            let mut t = tx.open_table(table(side)).map_err(db_err)?;
            t.insert(record.id.0.as_bytes(), bytes.as_slice())
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Puts back the records that checks under way when the node stopped
    /// replaced: run when the node opens, before any job can start.
    pub fn restore_checks(&self) -> Result<usize, RecordError> {
        let pending: Vec<(Side, JobId, Option<JobRecord>)> = {
            let tx = self.db.begin_read().map_err(db_err)?;
            let t = match tx.open_table(CHECKS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
                Err(e) => return Err(db_err(e)),
            };
            let mut out = Vec::new();
            for entry in t.iter().map_err(db_err)? {
                let (k, v) = entry.map_err(db_err)?;
                let key = k.value();
                let side = if key[0] == 0 { Side::Run } else { Side::Sent };
                let mut id = [0u8; 32];
                id.copy_from_slice(&key[1..]);
                let prior = match v.value() {
                    [] => None,
                    bytes => Some(decode(bytes)?),
                };
                out.push((side, JobId(Hash::from_bytes(id)), prior));
            }
            out
        };
        for (side, id, prior) in &pending {
            self.restore(*side, id, prior.as_ref())?;
        }
        Ok(pending.len())
    }

    /// Changes the record of `id` with `change`, if there is one.
    pub fn update(
        &self,
        side: Side,
        id: &JobId,
        change: impl FnOnce(&mut JobRecord),
    ) -> Result<Option<JobRecord>, RecordError> {
        let Some(mut record) = self.get(side, id)? else {
            return Ok(None);
        };
        change(&mut record);
        self.put(side, &record)?;
        Ok(Some(record))
    }

    /// The record of `id`.
    pub fn get(&self, side: Side, id: &JobId) -> Result<Option<JobRecord>, RecordError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = match tx.open_table(table(side)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db_err(e)),
        };
        match t.get(id.0.as_bytes()).map_err(db_err)? {
            Some(v) => decode(v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Every record of `side`.
    pub fn all(&self, side: Side) -> Result<Vec<JobRecord>, RecordError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = match tx.open_table(table(side)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db_err(e)),
        };
        let mut out = Vec::new();
        for entry in t.iter().map_err(db_err)? {
            let (_, v) = entry.map_err(db_err)?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Marks every job this node was running or had queued as
    /// interrupted: run when the node opens, before any job can start.
    pub fn mark_interrupted(&self) -> Result<usize, RecordError> {
        let live: Vec<JobRecord> = self
            .all(Side::Run)?
            .into_iter()
            .filter(|r| r.state.is_live())
            .collect();
        for mut record in live.iter().cloned() {
            record.reason = Some(format!(
                "interrupted: the executor stopped while the job was {}",
                record.state.as_str()
            ));
            record.state = JobState::Interrupted;
            self.put(Side::Run, &record)?;
        }
        Ok(live.len())
    }

    /// Records that `peer` sent `hash` to this node as a job's input.
    pub fn record_supplied(&self, peer: &[u8; 32], hash: &Hash) -> Result<(), RecordError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(SUPPLIED).map_err(db_err)?;
            t.insert(&supplied_key(peer, hash), ()).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Whether `peer` sent `hash` to this node as a job's input.
    pub fn supplied(&self, peer: &[u8; 32], hash: &Hash) -> Result<bool, RecordError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = match tx.open_table(SUPPLIED) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
            Err(e) => return Err(db_err(e)),
        };
        Ok(t.get(&supplied_key(peer, hash)).map_err(db_err)?.is_some())
    }

    /// What gc keeps for jobs: the inputs of jobs under way, and what
    /// every result on record references (outputs, stdout, stderr), here
    /// or sent.
    pub fn objects(&self) -> Result<Vec<Hash>, RecordError> {
        self.objects_except(|_, _| false)
    }

    /// [`Records::objects`], but the result of a job no longer under way
    /// whose objects (outputs, stdout, stderr) `cached` claims for the
    /// memo's cache keeps nothing here: the cache decides when they go.
    pub fn objects_except(
        &self,
        cached: impl Fn(&JobId, &[Hash; 3]) -> bool,
    ) -> Result<Vec<Hash>, RecordError> {
        let mut out = Vec::new();
        for side in [Side::Run, Side::Sent] {
            for record in self.all(side)? {
                let live = record.state.is_live();
                if live {
                    out.extend(record.inputs);
                }
                if let Some((result, _)) = record.result.and_then(|s| s.verify().ok()) {
                    let objects = [result.outputs, result.stdout, result.stderr];
                    if live || !cached(&record.id, &objects) {
                        out.extend(objects);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The jobs under way (queued or running), here or sent.
    pub fn live(&self) -> Result<Vec<JobId>, RecordError> {
        let mut out = Vec::new();
        for side in [Side::Run, Side::Sent] {
            out.extend(
                self.all(side)?
                    .into_iter()
                    .filter(|r| r.state.is_live())
                    .map(|r| r.id),
            );
        }
        Ok(out)
    }
}

fn check_key(side: Side, id: &JobId) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[0] = u8::from(side == Side::Sent);
    key[1..].copy_from_slice(id.0.as_bytes());
    key
}

fn supplied_key(peer: &[u8; 32], hash: &Hash) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(peer);
    key[32..].copy_from_slice(hash.as_bytes());
    key
}

fn decode(bytes: &[u8]) -> Result<JobRecord, RecordError> {
    let record: JobRecord =
        serde_json::from_slice(bytes).map_err(|e| RecordError::Malformed(e.to_string()))?;
    if record.version != RECORD_VERSION {
        return Err(RecordError::Malformed(format!(
            "record version {} (this build reads {RECORD_VERSION})",
            record.version
        )));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: JobId, state: JobState) -> JobRecord {
        JobRecord {
            version: RECORD_VERSION,
            id,
            doc: "{}".into(),
            peer: String::new(),
            state,
            submitted: "2026-12-01T00:00:00Z".into(),
            reason: None,
            result: None,
            memo_hit: false,
            inputs: Vec::new(),
            device: false,
            outputs_pending: false,
        }
    }

    #[test]
    fn a_check_cut_short_is_undone_when_the_node_opens() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("state.redb")).unwrap());
        let records = Records::new(db);
        let (had, new) = (
            JobId(Hash::from_bytes([1; 32])),
            JobId(Hash::from_bytes([2; 32])),
        );
        let prior = record(had, JobState::Done);
        records.put(Side::Run, &prior).unwrap();
        records
            .put_check(Side::Run, &record(had, JobState::Running), Some(&prior))
            .unwrap();
        records
            .put_check(Side::Sent, &record(new, JobState::Queued), None)
            .unwrap();
        assert_eq!(records.live().unwrap().len(), 2);
        assert_eq!(records.restore_checks().unwrap(), 2);
        assert_eq!(records.get(Side::Run, &had).unwrap(), Some(prior));
        assert_eq!(records.get(Side::Sent, &new).unwrap(), None);
        assert!(records.live().unwrap().is_empty());
        // Once put back, nothing is put back again.
        assert_eq!(records.restore_checks().unwrap(), 0);
    }
}
