//! The executor: takes jobs (this node's own, or a peer's that holds
//! `exec` here), queues them for a slot, runs each in a fresh directory
//! under its sandbox level, stores its logs and outputs, signs and
//! memoizes its result, and lets any number of followers stream its output
//! from any byte offset while it runs and after. A reproducibility check
//! ([`Executor::submit_check`]) runs a job the same way but memoizes
//! nothing and leaves the job's record as it found it.
//!
//! Layout under `HOME/jobs/run/ID/`: `root/` (the job directory; inputs
//! staged read-only), `stdout`, `stderr` (the logs as they grow). The
//! directory is removed once the result is stored; the logs live on as
//! objects.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use clive_cas::{Hash, NoProgress, Store};
use clive_trust::{Clock, PublicIdentity, Signer, clock::format_time};
use tokio::sync::{Semaphore, watch};

use super::{
    JobError, collect,
    document::{JobDoc, JobId},
    follow::{Ending, Follow, Live},
    memo::{Attestations, Memo},
    platform::{JobsConfig, Platform},
    process::{self, LogLen, RunSpec},
    records::{JobRecord, JobState, RECORD_VERSION, Records, Requester, Side},
    result::{JobResult, SignedResult},
    sandbox::{self, SandboxLevel},
    stage,
    wire::Offer,
};

/// Jobs queued or running here at once; more are refused.
pub const MAX_LIVE: usize = 256;
/// Jobs of one peer queued or running here at once.
pub const MAX_LIVE_PER_PEER: usize = 64;
/// Jobs pulling their inputs from their requesters at once.
pub const MAX_PULLS: usize = 4;
/// The most output a peer's job may keep here, per stream of its log and
/// for its outputs: what the executor gives, whatever the job asks.
pub const PEER_LOG_LIMIT: u64 = 64 << 20;
/// See [`PEER_LOG_LIMIT`].
pub const PEER_OUTPUT_LIMIT: u64 = 4 << 30;

/// How long closing the node waits for the jobs it stops.
pub const STOP_WAIT: Duration = Duration::from_secs(10);

/// What [`Executor::submit`] did with a job.
#[derive(Debug)]
pub enum Taken {
    /// A memoized result answers it; nothing runs.
    Memo(SignedResult),
    /// It is queued or running (maybe already, for an earlier submit).
    Live,
}

/// The node's executor.
pub struct Executor {
    records: Records,
    memo: Memo,
    store: Store,
    trust: Arc<dyn Attestations>,
    me: PublicIdentity,
    clock: Arc<dyn Clock>,
    platform: Platform,
    enabled: bool,
    min_sandbox: SandboxLevel,
    slots: u32,
    permits: Arc<Semaphore>,
    dir: PathBuf,
    helper: PathBuf,
    live: Mutex<HashMap<JobId, Arc<Live>>>,
    queued: AtomicU32,
    running: AtomicU32,
    stopping: std::sync::atomic::AtomicBool,
    pulls: Semaphore,
    cache_bound: u64,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("platform", &self.platform)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

/// The refusal of an ordinary run (or attach) of `id` while a check of it runs.
fn check_running(id: &JobId) -> JobError {
    JobError::Refused(format!(
        "a reproducibility check of job {id} is running here; run it again when it ends"
    ))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the executor is made of.
pub struct ExecutorParts {
    /// The state database.
    pub db: Arc<redb::Database>,
    /// The store.
    pub store: Store,
    /// The node's trust, for `attest`.
    pub trust: Arc<dyn Attestations>,
    /// The node's key.
    pub me: PublicIdentity,
    /// The node's clock.
    pub clock: Arc<dyn Clock>,
    /// `[jobs]` of `config.toml`.
    pub config: JobsConfig,
    /// `HOME/jobs`.
    pub dir: PathBuf,
}

impl Executor {
    /// The executor of a node that just opened: jobs it had queued or
    /// running when it stopped are marked interrupted first.
    pub fn open(parts: ExecutorParts) -> Result<Arc<Executor>, JobError> {
        let records = Records::new(parts.db.clone());
        let restored = records.restore_checks()?;
        if restored > 0 {
            tracing::warn!("{restored} reproducibility check(s) were cut short by the last stop");
        }
        let interrupted = records.mark_interrupted()?;
        if interrupted > 0 {
            tracing::warn!("{interrupted} job(s) were interrupted by the last stop");
        }
        let levels = sandbox::available().to_vec();
        let platform = Platform::local(&parts.config, levels);
        let slots = parts.config.slots.unwrap_or(platform.cores).max(1);
        let min_sandbox = parts.config.min_sandbox.unwrap_or_else(sandbox::strongest);
        let helper = std::env::var_os("CLIVE_JOB_HELPER")
            .map(PathBuf::from)
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("clive-node"));
        Ok(Arc::new(Executor {
            records,
            memo: Memo::new(parts.db.clone()),
            store: parts.store,
            trust: parts.trust,
            me: parts.me,
            clock: parts.clock,
            platform,
            enabled: parts.config.enabled,
            min_sandbox,
            slots,
            permits: Arc::new(Semaphore::new(slots as usize)),
            dir: parts.dir,
            helper,
            live: Mutex::new(HashMap::new()),
            queued: AtomicU32::new(0),
            running: AtomicU32::new(0),
            stopping: std::sync::atomic::AtomicBool::new(false),
            pulls: Semaphore::new(MAX_PULLS),
            cache_bound: parts.config.cache,
        }))
    }

    /// The job records.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// The memo.
    pub fn memo(&self) -> &Memo {
        &self.memo
    }

    /// The bound of the memo's cache, in bytes (`[jobs] cache`).
    pub fn cache_bound(&self) -> u64 {
        self.cache_bound
    }

    /// What this executor offers `requester`.
    pub fn offer(&self, requester: &Requester, runs_for_them: bool) -> Offer {
        Offer {
            platform: self.platform.clone(),
            running: self.running.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            slots: self.slots,
            runs_for_you: self.enabled && runs_for_them,
            min_sandbox: self.level_floor(requester),
        }
    }

    /// The lowest level a job of `requester` runs at here.
    fn level_floor(&self, requester: &Requester) -> SandboxLevel {
        match requester {
            Requester::Local => SandboxLevel::None,
            Requester::Peer(_) => self.min_sandbox,
        }
    }

    /// The level `doc` runs at for `requester`, or why it cannot run here.
    pub fn admit(&self, doc: &JobDoc, requester: &Requester) -> Result<SandboxLevel, JobError> {
        if !self.enabled && *requester != Requester::Local {
            return Err(JobError::Refused(
                "this node does not run jobs for peers ([jobs] enabled = false)".into(),
            ));
        }
        if let Requester::Peer(_) = requester
            && (doc.limits.log_bytes > PEER_LOG_LIMIT
                || doc.limits.output_bytes > PEER_OUTPUT_LIMIT)
        {
            return Err(JobError::Refused(format!(
                "the job asks to keep {} bytes of log per stream and {} of outputs; this \
                 executor keeps at most {PEER_LOG_LIMIT} and {PEER_OUTPUT_LIMIT} for a peer's job",
                doc.limits.log_bytes, doc.limits.output_bytes
            )));
        }
        let level = doc.sandbox.max(self.level_floor(requester));
        if !self.platform.sandbox.contains(&level) {
            let given: Vec<&str> = self.platform.sandbox.iter().map(|l| l.as_str()).collect();
            return Err(JobError::Refused(format!(
                "the job needs sandbox level {level}; this executor gives {}",
                given.join(", ")
            )));
        }
        let unmet = doc.platform.unmet(&self.platform);
        if !unmet.is_empty() {
            return Err(JobError::Refused(format!(
                "this executor ({}/{}) does not meet {}",
                self.platform.os,
                self.platform.arch,
                unmet.join(",")
            )));
        }
        Ok(level)
    }

    /// A memo hit for `id`: a result signed here or by a key granted
    /// `attest`, whose objects are all in the store. A hit counts as a use
    /// of the result for the cache.
    pub async fn memo_hit(&self, id: &JobId) -> Result<Option<SignedResult>, JobError> {
        let Some((result, signed)) = self.memo.hit(id, &self.me, self.trust.as_ref())? else {
            return Ok(None);
        };
        // The empty blob is never missing: an empty log needs no lookup.
        let wanted = [result.outputs, result.stdout, result.stderr];
        let stored = n0_future::join_all(
            wanted
                .iter()
                .filter(|h| **h != Hash::EMPTY)
                .map(|hash| self.store.has(*hash)),
        )
        .await;
        for has in stored {
            if !has.map_err(JobError::Store)? {
                return Ok(None);
            }
        }
        if let Err(e) = self.memo.touch(id) {
            tracing::warn!("recording the use of the result of job {id}: {e}");
        }
        Ok(Some(signed))
    }

    /// Takes a job whose inputs are in the store: a memo hit answers at
    /// once (unless `no_cache`); a job already under way is joined;
    /// otherwise it is recorded (which keeps its inputs from gc), waits for
    /// a slot and runs.
    pub async fn submit(
        self: &Arc<Self>,
        doc: JobDoc,
        requester: Requester,
        no_cache: bool,
        signer: Arc<dyn Signer>,
    ) -> Result<Taken, JobError> {
        self.take(doc, requester, no_cache, false, signer).await
    }

    /// Takes a job for a reproducibility check (`job run --check`): it
    /// runs again whatever the memo holds, and its result goes to its
    /// followers only: the memo keeps what it had for the job, and the
    /// job's record is put back as it was before the check (or removed,
    /// when there was none), so nothing keeps the fresh result or its
    /// objects (gc and the cache may take them). Refused while the job is
    /// under way here already.
    pub async fn submit_check(
        self: &Arc<Self>,
        doc: JobDoc,
        requester: Requester,
        signer: Arc<dyn Signer>,
    ) -> Result<Taken, JobError> {
        self.take(doc, requester, true, true, signer).await
    }

    /// [`Executor::submit`], or with `check` [`Executor::submit_check`].
    async fn take(
        self: &Arc<Self>,
        doc: JobDoc,
        requester: Requester,
        no_cache: bool,
        check: bool,
        signer: Arc<dyn Signer>,
    ) -> Result<Taken, JobError> {
        let level = self.admit(&doc, &requester)?;
        let id = doc.id();
        if !no_cache && let Some(signed) = self.memo_hit(&id).await? {
            // A peer is answered only with what this node signed: it
            // checks the result against this executor's key.
            let own = signed
                .verify()
                .is_ok_and(|(_, signer)| signer.bytes() == self.me.bytes());
            if requester == Requester::Local || own {
                return Ok(Taken::Memo(signed));
            }
        }
        let run_dir = self.dir.join("run").join(id.to_string());
        let (logs_tx, logs_rx) = watch::channel(LogLen::default());
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let live = Arc::new(Live {
            logs: logs_rx,
            cancel: cancel_tx,
            ending: watch::Sender::new(None),
            stdout: run_dir.join("stdout"),
            stderr: run_dir.join("stderr"),
            requester: requester.clone(),
            check,
        });
        {
            let mut map = lock(&self.live);
            if let Some(under_way) = map.get(&id) {
                if check {
                    return Err(JobError::Refused(format!(
                        "job {id} is under way here; check it once it has ended"
                    )));
                }
                if under_way.check {
                    return Err(check_running(&id));
                }
                return Ok(Taken::Live);
            }
            self.check_queue(&map, &requester)?;
            map.insert(id, live.clone());
        }
        // What an earlier run of this job left (a crash) is not this run's;
        // the entry above keeps a second submit of it out meanwhile.
        let prepared = if run_dir.exists() {
            stage::remove(&run_dir).map_err(JobError::from)
        } else {
            Ok(())
        }
        .and_then(|()| {
            std::fs::create_dir_all(&run_dir)
                .map_err(|e| JobError::io(format!("creating {}", run_dir.display()), e))
        });
        if let Err(e) = prepared {
            lock(&self.live).remove(&id);
            return Err(e);
        }
        // What a check puts back once it ends.
        let restore = if check {
            match self.records.get(Side::Run, &id) {
                Ok(prior) => Some(prior),
                Err(e) => {
                    lock(&self.live).remove(&id);
                    return Err(e.into());
                }
            }
        } else {
            None
        };
        let record = JobRecord {
            version: RECORD_VERSION,
            id,
            doc: String::from_utf8_lossy(&doc.encode()).into_owned(),
            peer: match &requester {
                Requester::Local => String::new(),
                Requester::Peer(key) => key.openssh_line(),
            },
            state: JobState::Queued,
            submitted: format_time(self.clock.now()),
            reason: None,
            result: None,
            memo_hit: false,
            inputs: doc.inputs.values().map(|i| i.hash).collect(),
            device: false,
            outputs_pending: false,
        };
        let written = match &restore {
            Some(prior) => self.records.put_check(Side::Run, &record, prior.as_ref()),
            None => self.records.put(Side::Run, &record),
        };
        if let Err(e) = written {
            lock(&self.live).remove(&id);
            return Err(e.into());
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        tokio::spawn(async move {
            let run = Run {
                id,
                doc,
                level,
                signer,
                logs: logs_tx,
                cancel: cancel_rx,
                run_dir: run_dir.clone(),
                check,
            };
            // The job runs in a task of its own, so that even a panic in it
            // ends the job here: recorded, and its followers told.
            let inner = this.clone();
            let ending = match tokio::spawn(async move { inner.execute(run).await }).await {
                Ok(Ok(signed)) => Ending::Done(signed),
                Ok(Err(e)) => Ending::Failed(e.to_string()),
                Err(e) => Ending::Failed(format!("the executor failed running it: {e}")),
            };
            this.finish(id, &live, ending, restore);
            if let Err(e) = stage::remove(&run_dir) {
                tracing::warn!("removing {}: {e}", run_dir.display());
            }
        });
        Ok(Taken::Live)
    }

    /// A turn to fetch a peer's inputs: at most [`MAX_PULLS`] jobs fetch
    /// theirs at once.
    pub async fn pull_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.pulls.acquire().await.ok()
    }

    /// Refuses following `id` as an ordinary run when what is under way
    /// is a reproducibility check of it, whose result is not the job's.
    pub fn refuse_check(&self, id: &JobId) -> Result<(), JobError> {
        match lock(&self.live).get(id) {
            Some(live) if live.check => Err(check_running(id)),
            _ => Ok(()),
        }
    }

    /// Asks the job `id` to stop; whether it was under way here.
    pub fn cancel(&self, id: &JobId) -> bool {
        match lock(&self.live).get(id) {
            Some(live) => {
                live.cancel.send_replace(true);
                true
            }
            None => false,
        }
    }

    /// The output of `id` from these offsets, then how it ended.
    pub fn follow(&self, id: &JobId, stdout_from: u64, stderr_from: u64) -> Follow {
        let live = lock(&self.live).get(id).cloned();
        Follow::new(
            *id,
            live,
            None,
            [stdout_from, stderr_from],
            self.store.clone(),
            self.records.clone(),
        )
    }

    /// The output of a result already known (a memo hit), from these
    /// offsets, then the result.
    pub fn follow_result(
        &self,
        signed: SignedResult,
        stdout_from: u64,
        stderr_from: u64,
    ) -> Result<Follow, JobError> {
        let id = signed.verify()?.0.job;
        Ok(Follow::new(
            id,
            None,
            Some(signed),
            [stdout_from, stderr_from],
            self.store.clone(),
            self.records.clone(),
        ))
    }

    /// The output of `id` so far: from its log files while it runs, from
    /// its result's objects after.
    pub async fn logs_so_far(&self, id: &JobId) -> Result<[Vec<u8>; 2], JobError> {
        let live = lock(&self.live).get(id).cloned();
        if let Some(live) = live {
            let lens = *live.logs.borrow();
            let mut out = [Vec::new(), Vec::new()];
            for (i, (path, len)) in [(&live.stdout, lens.stdout), (&live.stderr, lens.stderr)]
                .into_iter()
                .enumerate()
            {
                let mut at = 0;
                while at < len {
                    let chunk = super::follow::read_range(path, at, len).await?;
                    if chunk.is_empty() {
                        break;
                    }
                    at += chunk.len() as u64;
                    out[i].extend_from_slice(&chunk);
                }
            }
            return Ok(out);
        }
        let Some(JobRecord {
            result: Some(signed),
            ..
        }) = self.records.get(Side::Run, id)?
        else {
            return Ok([Vec::new(), Vec::new()]);
        };
        let (result, _) = signed.verify()?;
        let read = |hash| self.store.read_bytes(hash);
        let stdout = read(result.stdout).await.map_err(JobError::Store)?;
        let stderr = read(result.stderr).await.map_err(JobError::Store)?;
        Ok([stdout.to_vec(), stderr.to_vec()])
    }

    /// Stops every job under way (the node is closing): their process
    /// trees are killed and their records say interrupted. Waits (at most
    /// [`STOP_WAIT`]) until each has recorded its end.
    pub async fn stop_all(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        for live in lock(&self.live).values() {
            live.cancel.send_replace(true);
        }
        let until = tokio::time::Instant::now() + STOP_WAIT;
        while !lock(&self.live).is_empty() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Records how job `id` ended (or, for a check, puts back the record
    /// `restore` holds), tells its followers, and lets it go.
    fn finish(&self, id: JobId, live: &Live, ending: Ending, restore: Option<Option<JobRecord>>) {
        let cancel_asked = *live.cancel.borrow();
        let (state, reason, result) = match &ending {
            Ending::Done(signed) => (JobState::Done, None, Some(signed.clone())),
            Ending::Failed(reason) => (JobState::Failed, Some(reason.clone()), None),
        };
        let (state, reason) = if self.stopping.load(Ordering::Relaxed) && cancel_asked {
            (
                JobState::Interrupted,
                Some("interrupted: the executor stopped while the job ran".to_owned()),
            )
        } else if cancel_asked {
            (JobState::Cancelled, reason)
        } else {
            (state, reason)
        };
        let recorded = match &restore {
            Some(prior) => self.records.restore(Side::Run, &id, prior.as_ref()),
            None => self
                .records
                .update(Side::Run, &id, |r| {
                    r.state = state;
                    r.reason = reason;
                    r.result = result;
                })
                .map(drop),
        };
        if let Err(e) = recorded {
            tracing::error!("recording the end of job {id}: {e}");
        }
        live.ending.send_replace(Some(ending));
        lock(&self.live).remove(&id);
    }

    /// Refuses a job of `requester` when the queue is full.
    fn check_queue(
        &self,
        live: &HashMap<JobId, Arc<Live>>,
        requester: &Requester,
    ) -> Result<(), JobError> {
        if live.len() >= MAX_LIVE {
            return Err(JobError::Refused(format!(
                "this executor has {MAX_LIVE} jobs queued or running; try again later"
            )));
        }
        if let Requester::Peer(_) = requester {
            let theirs = live.values().filter(|l| l.requester == *requester).count();
            if theirs >= MAX_LIVE_PER_PEER {
                return Err(JobError::Refused(format!(
                    "you have {MAX_LIVE_PER_PEER} jobs queued or running here; wait for some to end"
                )));
            }
        }
        Ok(())
    }

    async fn execute(&self, run: Run) -> Result<SignedResult, JobError> {
        let Run {
            id,
            doc,
            level,
            signer,
            logs,
            cancel,
            run_dir,
            check,
        } = run;
        let queued = Counted(&self.queued);
        let cancelled = || JobError::Refused("cancelled before it started".into());
        let mut asked = cancel.clone();
        let waiting = self.permits.clone().acquire_owned();
        let _slot = tokio::select! {
            slot = waiting => slot.map_err(|_| stopping())?,
            _ = asked.wait_for(|c| *c) => return Err(cancelled()),
        };
        drop(queued);
        if *cancel.borrow() {
            return Err(cancelled());
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        let _running = Counted(&self.running);
        self.records
            .update(Side::Run, &id, |r| r.state = JobState::Running)?;
        let root = run_dir.join("root");
        std::fs::create_dir_all(&root)
            .map_err(|e| JobError::io(format!("creating {}", root.display()), e))?;
        let mounts = doc.inputs.iter().map(|(mount, input)| (mount, input.hash));
        let workdir = stage::stage(&self.store, &root, mounts, &doc.workdir).await?;
        let spec = RunSpec {
            helper: self.helper.clone(),
            root: root.clone(),
            workdir: workdir.clone(),
            argv: doc.argv.clone(),
            env: doc.env.clone(),
            level,
            timeout: Duration::from_millis(doc.timeout_ms),
            stdout: run_dir.join("stdout"),
            stderr: run_dir.join("stderr"),
            log_limit: doc.limits.log_bytes,
        };
        let outcome = process::run(spec, logs, cancel).await?;
        let collected = collect::collect(
            &self.store,
            &root,
            &workdir,
            &doc.outputs,
            doc.limits.output_bytes,
        )
        .await?;
        let (stdout, _g1) = self
            .store
            .add_path(&run_dir.join("stdout"), Arc::new(NoProgress))
            .await
            .map_err(JobError::Store)?;
        let (stderr, _g2) = self
            .store
            .add_path(&run_dir.join("stderr"), Arc::new(NoProgress))
            .await
            .map_err(JobError::Store)?;
        let result = JobResult {
            version: super::result::RESULT_VERSION,
            job: id,
            executor: super::result::executor_line(&self.me),
            platform: self.platform.clone(),
            sandbox: level,
            exit: outcome.exit,
            timed_out: outcome.timed_out,
            cancelled: outcome.cancelled,
            outputs: collected.tree,
            missing_outputs: collected.missing.clone(),
            stdout: stdout.hash,
            stderr: stderr.hash,
            stdout_bytes: outcome.logs.stdout,
            stderr_bytes: outcome.logs.stderr,
            logs_truncated: outcome.logs_truncated,
            started: format_time(unix_secs(outcome.started)),
            ended: format_time(unix_secs(outcome.ended)),
            cpu_ms: outcome.cpu.as_millis() as u64,
            peak_memory_bytes: outcome.peak_memory_bytes,
        };
        let signed = SignedResult::sign(&result, signer.as_ref())?;
        // The memo and the record reference the objects before the import
        // guards let gc see them. (A run that timed out or was cancelled
        // is kept, never a memo hit.) A check's result is kept by neither.
        if !check {
            self.memo.put(&signed)?;
            self.records
                .update(Side::Run, &id, |r| r.result = Some(signed.clone()))?;
        }
        drop(collected);
        Ok(signed)
    }
}

/// Seconds since the Unix epoch.
fn unix_secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The error of a job whose executor stops before it runs.
fn stopping() -> JobError {
    JobError::Refused("the executor is stopping".into())
}

/// Decrements a counter when dropped.
struct Counted<'a>(&'a AtomicU32);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One job's run, as the spawned task holds it.
struct Run {
    id: JobId,
    doc: JobDoc,
    level: SandboxLevel,
    signer: Arc<dyn Signer>,
    logs: watch::Sender<LogLen>,
    cancel: watch::Receiver<bool>,
    run_dir: PathBuf,
    /// A reproducibility check: neither memoized nor recorded.
    check: bool,
}

/// The hashes a signed result references.
pub fn result_objects(signed: &SignedResult) -> Result<Vec<Hash>, JobError> {
    let (result, _) = signed.verify()?;
    Ok(vec![result.outputs, result.stdout, result.stderr])
}
