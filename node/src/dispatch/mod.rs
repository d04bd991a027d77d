//! The jobs handle (`node.jobs()`): builds job documents (adding input
//! paths, resolving `ZONE/NAME`s), runs them here or dispatches them to a
//! peer (`--on`), streams their output, fetches their outputs, and
//! re-attaches, cancels and lists them.
//!
//! The engine (documents, executor, sandbox, the jobs protocol) is
//! [`crate::jobs`]; this module is what ties it to the node: its store,
//! names, trust and network.
//!
//! A job sent to a peer is recorded on this side (`jobs.sent.v1`) with a
//! copy of its output as it arrives (`HOME/jobs/sent/ID/{stdout,stderr}`),
//! so `job attach` resumes the network stream from the bytes this node
//! has, and prints from wherever its caller stopped.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use clive_cas::{Hash, NoProgress};
use clive_trust::{PublicIdentity, Signer};
use iroh::EndpointId;
use serde::{Deserialize, Serialize};
use tokio::{io::AsyncWriteExt, sync::watch};

mod check;
mod copy;
mod detached;
mod names;
mod pipeline;
mod sent;
mod summary;
mod watch_inputs;
mod watching;

pub use self::check::{NOT_REPRODUCIBLE, OutputDiff, PipelineCheck, StepCheck, Verdict};
use self::copy::LogCopy;
pub use self::detached::start_watches;
pub use self::names::Resolved;
pub use self::pipeline::{FailedStep, PipelineRun, StepRun};
pub use self::summary::ending;
pub use self::watch_inputs::DEBOUNCE;
pub use self::watching::{REFRESH_EVERY, WatchEnded};
use crate::{
    Node, NodeError,
    jobs::{
        JobError,
        document::{Input, JobDoc, JobId},
        executor::Taken,
        follow::Follow,
        jobfile::{InputSource, JobSpec},
        platform::Target,
        records::{JobRecord, JobState, Requester, Side},
        result::{JobResult, SignedResult},
        wire::{Frame, JobEvent, JobsRequest},
    },
    net::jobs::{self as remote},
};

/// The jobs of a node.
pub struct JobsHandle<'a> {
    node: &'a Node,
}

impl Node {
    /// The jobs of this node: run, dispatch, attach, list.
    pub fn jobs(&self) -> JobsHandle<'_> {
        JobsHandle { node: self }
    }
}

/// A job document whose inputs are kept from gc until the job is recorded
/// ([`JobsHandle::document`], then [`JobsHandle::run`]).
pub struct Prepared {
    /// The document.
    pub doc: JobDoc,
    roots: clive_cas::RootsHold,
}

/// How a job ended, as `exec`, `job submit` and `job attach` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRun {
    /// The job id.
    pub id: JobId,
    /// Where it ran: `local`, or the executor's key.
    pub executor: String,
    /// Whether a memoized result answered it (nothing ran).
    pub memo_hit: bool,
    /// The result.
    pub result: JobResult,
    /// Where its outputs were written (`-o DIR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<PathBuf>,
}

impl JobRun {
    /// The exit code the tool reports: the job's (128+N for signal N), 124
    /// for a timeout, 130 when cancelled.
    pub fn exit_code(&self) -> i32 {
        if self.result.timed_out {
            124
        } else if self.result.cancelled {
            130
        } else {
            self.result.exit_code()
        }
    }
}

/// Whether a result has nothing to replay: both its logs are empty.
fn is_quiet(result: &JobResult) -> bool {
    result.stdout == Hash::EMPTY && result.stderr == Hash::EMPTY
}

/// The `PATH` a job gets when its command line gives none.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// The `TMPDIR` a job gets when its command line gives none: its working
/// directory, the one place every sandbox level lets it write (a relative
/// path, since where the job directory lies is the executor's business).
pub const DEFAULT_TMPDIR: &str = ".";

/// Adds [`DEFAULT_PATH`] and [`DEFAULT_TMPDIR`] to the environment of a
/// job (`exec` or `JOB.toml`) that sets no `PATH` or `TMPDIR`: the job
/// document's environment is all a job gets, so the defaults are written
/// into it here, where the job is made.
pub fn add_default_env(env: &mut std::collections::BTreeMap<String, String>) {
    for (key, value) in [("PATH", DEFAULT_PATH), ("TMPDIR", DEFAULT_TMPDIR)] {
        env.entry(key.to_owned())
            .or_insert_with(|| value.to_owned());
    }
}

/// One job as `job ls` and `job status` list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job id.
    pub id: JobId,
    /// `run` (this node executes it) or `sent` (a peer does).
    pub side: Side,
    /// A job one of this node's own devices (`peer`) ran for itself, whose
    /// result sync took in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub device: bool,
    /// The other node: the requester (run; empty for this node's own) or
    /// the executor (sent).
    pub peer: String,
    /// Where it stands.
    pub state: JobState,
    /// When it was submitted.
    pub submitted: String,
    /// The command.
    pub argv: Vec<String>,
    /// Its exit status, once it has a result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it failed, was cancelled or interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where a job's output goes: the caller's standard output and error
/// (what a call of the node API writes to: `api::CallOutput`).
pub struct Output<'o> {
    /// The standard output.
    pub stdout: &'o mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    /// The standard error.
    pub stderr: &'o mut (dyn tokio::io::AsyncWrite + Unpin + Send),
}

/// Where a job's output goes as it streams, and how its caller cancels it.
pub struct Stream<'o> {
    /// The caller's standard output and error.
    pub out: Output<'o>,
    /// Turns `true` when the caller asks to cancel.
    pub cancel: watch::Receiver<bool>,
}

impl JobsHandle<'_> {
    /// The job document of `spec`: paths are added to the store, OBJECTs
    /// (hashes, pins, `ZONE/NAME`s) resolved, the name kept beside the hash.
    /// Its inputs are kept from gc until [`JobsHandle::run`] has recorded
    /// the job (whose record then keeps them).
    pub async fn document(&self, spec: &JobSpec) -> Result<Prepared, NodeError> {
        self.document_with(spec, &Resolved::default()).await
    }

    /// [`JobsHandle::document`], where an OBJECT that `resolved` holds
    /// (a pipeline's, resolved once for its run) is taken from there.
    pub async fn document_with(
        &self,
        spec: &JobSpec,
        resolved: &Resolved,
    ) -> Result<Prepared, NodeError> {
        let roots = self.node.cas().hold_roots().await;
        let mut inputs = BTreeMap::new();
        for (mount, source) in &spec.inputs {
            let input = match source {
                InputSource::Path(path) => Input {
                    hash: self.node.store().add_input(path).await?,
                    name: None,
                },
                InputSource::Object(object) => {
                    let inputs_error =
                        |e: &dyn std::fmt::Display| JobError::Inputs(format!("{object}: {e}"));
                    let hash = match resolved.get(object) {
                        Some(Ok(hash)) => *hash,
                        Some(Err(e)) => return Err(inputs_error(e).into()),
                        None => self
                            .node
                            .resolve_object(object)
                            .await
                            .map_err(|e| inputs_error(&e))?,
                    };
                    // The name a hash was resolved from, kept beside it: a
                    // signed name only (a pin or a path inside a hash names
                    // nothing a reader could follow, and would change the
                    // job's id when bytes it does not read change).
                    let name = matches!(
                        crate::object::ObjectRef::parse(object),
                        crate::object::ObjectRef::Name(_) | crate::object::ObjectRef::Either(_)
                    )
                    .then(|| object.clone())
                    .filter(|o| {
                        o.contains('/')
                            && clive_cas::parse_hash(o.split('/').next().unwrap_or("")).is_err()
                    });
                    Input { hash, name }
                }
            };
            inputs.insert(mount.clone(), input);
        }
        let mut spec = spec.clone();
        add_default_env(&mut spec.env);
        let doc = spec.doc(inputs).map_err(JobError::from)?;
        Ok(Prepared { doc, roots })
    }

    /// Runs `doc` where `target` says (here when `None`), streaming its
    /// output, to its end; the outputs are fetched (and written to
    /// `out_dir`).
    pub async fn run(
        &self,
        prepared: Prepared,
        target: Option<&Target>,
        no_cache: bool,
        signer: Option<Arc<dyn Signer>>,
        out_dir: Option<&Path>,
        stream: Stream<'_>,
    ) -> Result<JobRun, NodeError> {
        if let Some(dir) = out_dir {
            self.node.home().check_destination(dir)?;
        }
        let Prepared { doc, roots } = prepared;
        let id = doc.id();
        let executor = self.node.executor();
        if !no_cache && let Some(signed) = executor.memo_hit(&id).await.map_err(NodeError::from)? {
            let (result, _) = signed.verify().map_err(JobError::from)?;
            let run = if is_quiet(&result) {
                self.memo_run(id, result)
            } else {
                let follow = executor
                    .follow_result(signed, 0, 0)
                    .map_err(NodeError::from)?;
                let run = self.follow_local(id, follow, stream).await?;
                self.memo_run(id, run.result)
            };
            return self.finish(run, out_dir).await;
        }
        let run = match target.unwrap_or(&Target::Local) {
            Target::Local => {
                let signer = signer.ok_or_else(|| {
                    JobError::Refused("a local job needs this node's key to sign its result".into())
                })?;
                let taken = executor
                    .submit(doc, Requester::Local, no_cache, signer)
                    .await?;
                drop(roots);
                let follow = match taken {
                    Taken::Memo(signed) => executor.follow_result(signed, 0, 0)?,
                    Taken::Live => executor.follow(&id, 0, 0),
                };
                self.follow_local(id, follow, stream).await?
            }
            target => {
                let net = self.node.online().await?;
                let peer = self.choose(&net.shared, &doc, target).await?;
                self.send(&net.shared, peer, doc, roots, no_cache, false, stream)
                    .await?
            }
        };
        self.finish(run, out_dir).await
    }

    /// The memo's answer for `prepared` when it has one with nothing to
    /// replay (both logs empty), its outputs written to `out_dir` when
    /// asked; None when the job must run or its logs be followed.
    pub(crate) async fn quiet_memo_hit(
        &self,
        prepared: &Prepared,
        out_dir: Option<&Path>,
    ) -> Result<Option<JobRun>, NodeError> {
        let id = prepared.doc.id();
        let Some(signed) = self.node.executor().memo_hit(&id).await? else {
            return Ok(None);
        };
        let (result, _) = signed.verify().map_err(JobError::from)?;
        if !is_quiet(&result) {
            return Ok(None);
        }
        if let Some(dir) = out_dir {
            self.node.home().check_destination(dir)?;
        }
        let run = self.memo_run(id, result);
        self.finish(run, out_dir).await.map(Some)
    }

    /// How a memo hit for job `id` with `result` is reported.
    fn memo_run(&self, id: JobId, result: JobResult) -> JobRun {
        let executor = if result.executor != crate::jobs::result::executor_line(self.node.public())
        {
            result.executor.clone()
        } else {
            "local".into()
        };
        JobRun {
            id,
            executor,
            memo_hit: true,
            result,
            written: None,
        }
    }

    /// Writes the outputs out when asked.
    async fn finish(&self, mut run: JobRun, out_dir: Option<&Path>) -> Result<JobRun, NodeError> {
        if let Some(dir) = out_dir {
            self.node
                .store()
                .export(&run.result.outputs, dir, false, Arc::new(NoProgress))
                .await?;
            run.written = Some(dir.to_owned());
        }
        Ok(run)
    }

    /// Streams a job of this node's executor to its end.
    async fn follow_local(
        &self,
        id: JobId,
        mut follow: Follow,
        mut stream: Stream<'_>,
    ) -> Result<JobRun, NodeError> {
        let executor = self.node.executor().clone();
        let _watch = on_cancel(stream.cancel.clone(), async move {
            executor.cancel(&id);
        });
        loop {
            let frame = follow.next().await?;
            match frame {
                Some(Frame::Event(JobEvent::Done { result })) => {
                    let (result, _) = result.verify().map_err(JobError::from)?;
                    return Ok(JobRun {
                        id,
                        executor: "local".into(),
                        memo_hit: false,
                        result,
                        written: None,
                    });
                }
                Some(Frame::Event(JobEvent::Failed { reason })) => {
                    return Err(JobError::Refused(reason).into());
                }
                Some(frame) => write_frame_out(&mut stream.out, &frame).await?,
                None => {
                    return Err(JobError::Refused("the job ended without a result".into()).into());
                }
            }
        }
    }

    /// Re-attaches to `id`: prints its output from these offsets, live
    /// until it ends, then its result (fetching its outputs).
    pub async fn attach(
        &self,
        id: &JobId,
        print_from: [u64; 2],
        out_dir: Option<&Path>,
        mut stream: Stream<'_>,
    ) -> Result<JobRun, NodeError> {
        let executor = self.node.executor();
        let records = executor.records();
        if let Some(sent) = records.get(Side::Sent, id).map_err(JobError::from)? {
            let peer = executor_of(&sent)?;
            // What this node has already, printed first from the caller's offsets.
            let have = LogCopy::lengths(&self.sent_dir(id)).await;
            for (stream_no, from) in print_from.iter().enumerate() {
                if *from < have[stream_no] {
                    let bytes = LogCopy::read(&self.sent_dir(id), stream_no, *from).await?;
                    let frame = Frame::output(stream_no, bytes);
                    write_frame_out(&mut stream.out, &frame).await?;
                }
            }
            let printed = [print_from[0].max(have[0]), print_from[1].max(have[1])];
            let net = self.node.online().await?;
            let request = JobsRequest::Attach {
                id: id.to_string(),
                stdout_from: have[0],
                stderr_from: have[1],
            };
            let remote = remote::open(&net.shared, peer, &request).await?;
            let run = self
                .relay(&net.shared, &sent, remote, printed, false, stream)
                .await?;
            return self.finish(run, out_dir).await;
        }
        if records
            .get(Side::Run, id)
            .map_err(JobError::from)?
            .is_none()
        {
            return Err(JobError::NotFound(id.to_string()).into());
        }
        executor.refuse_check(id).map_err(NodeError::from)?;
        let follow = executor.follow(id, print_from[0], print_from[1]);
        let run = self.follow_local(*id, follow, stream).await?;
        self.finish(run, out_dir).await
    }

    /// Writes the output of `id` so far (standard output, then standard
    /// error) without waiting for more.
    pub async fn logs(&self, id: &JobId, mut out: Output<'_>) -> Result<(), NodeError> {
        let executor = self.node.executor();
        let records = executor.records();
        let logs: [Vec<u8>; 2] = if records
            .get(Side::Sent, id)
            .map_err(JobError::from)?
            .is_some()
        {
            let dir = self.sent_dir(id);
            [
                LogCopy::read(&dir, 0, 0).await?,
                LogCopy::read(&dir, 1, 0).await?,
            ]
        } else if records
            .get(Side::Run, id)
            .map_err(JobError::from)?
            .is_some()
        {
            executor.logs_so_far(id).await?
        } else {
            return Err(JobError::NotFound(id.to_string()).into());
        };
        let [stdout, stderr] = logs;
        write_frame_out(&mut out, &Frame::Stdout(stdout)).await?;
        write_frame_out(&mut out, &Frame::Stderr(stderr)).await
    }

    /// Cancels `id`, here or on the peer it was sent to.
    pub async fn cancel(&self, id: &JobId) -> Result<(), NodeError> {
        let executor = self.node.executor();
        if executor.cancel(id) {
            return Ok(());
        }
        let Some(sent) = executor
            .records()
            .get(Side::Sent, id)
            .map_err(JobError::from)?
        else {
            return Err(JobError::NotFound(id.to_string()).into());
        };
        let peer = executor_of(&sent)?;
        let net = self.node.online().await?;
        Ok(remote::cancel(&net.shared, peer, id).await?)
    }

    /// Every job this node runs or sent, newest first.
    pub fn list(&self) -> Result<Vec<JobInfo>, NodeError> {
        let records = self.node.executor().records();
        let mut out = Vec::new();
        for side in [Side::Run, Side::Sent] {
            for record in records.all(side).map_err(JobError::from)? {
                out.push(info(side, record));
            }
        }
        out.sort_by(|a, b| b.submitted.cmp(&a.submitted));
        Ok(out)
    }

    /// One job: the record of a job run here, else of one sent.
    pub fn status(&self, id: &JobId) -> Result<JobInfo, NodeError> {
        let records = self.node.executor().records();
        for side in [Side::Run, Side::Sent] {
            if let Some(record) = records.get(side, id).map_err(JobError::from)? {
                return Ok(info(side, record));
            }
        }
        Err(JobError::NotFound(id.to_string()).into())
    }

    /// The signed result of `id`.
    pub fn result(&self, id: &JobId) -> Result<SignedResult, NodeError> {
        let executor = self.node.executor();
        for side in [Side::Run, Side::Sent] {
            if let Some(record) = executor.records().get(side, id).map_err(JobError::from)? {
                if let Some(result) = record.result {
                    return Ok(result);
                }
                return Err(JobError::Refused(format!(
                    "job {id} has no result: it is {}{}",
                    record.state.as_str(),
                    record.reason.map(|r| format!(" ({r})")).unwrap_or_default()
                ))
                .into());
            }
        }
        if let Some(signed) = executor.memo().get(id).map_err(JobError::from)? {
            return Ok(signed);
        }
        Err(JobError::NotFound(id.to_string()).into())
    }

    /// Resolves a job id argument: 64 hex, or a unique prefix of a known job.
    pub fn resolve_id(&self, arg: &str) -> Result<JobId, NodeError> {
        if let Ok(id) = arg.parse::<JobId>() {
            return Ok(id);
        }
        let arg = arg.to_ascii_lowercase();
        let mut found: Vec<JobId> = self
            .list()?
            .into_iter()
            .map(|j| j.id)
            .filter(|id| id.to_string().starts_with(&arg))
            .collect();
        found.sort();
        found.dedup();
        match found.as_slice() {
            [id] if arg.len() >= 4 => Ok(*id),
            [] => Err(JobError::NotFound(arg).into()),
            _ => Err(JobError::Refused(format!(
                "`{arg}` is not one job id: give at least 4 hex digits that start one job only"
            ))
            .into()),
        }
    }

    /// Where this node keeps its copy of a sent job's output.
    fn sent_dir(&self, id: &JobId) -> PathBuf {
        self.node
            .home()
            .root()
            .join("jobs")
            .join("sent")
            .join(id.to_string())
    }
}

/// The executor a sent job's record names.
fn executor_of(sent: &JobRecord) -> Result<EndpointId, NodeError> {
    let key = PublicIdentity::parse(&sent.peer).map_err(|e| {
        JobError::Refused(format!(
            "the record of job {} names no executor: {e}",
            sent.id
        ))
    })?;
    crate::net::endpoint_id(&key.bytes())
}

/// The log limit of a recorded job's document (the most output it may send).
fn log_limit(record: &JobRecord) -> u64 {
    JobDoc::decode(record.doc.as_bytes())
        .map(|d| d.limits.log_bytes)
        .unwrap_or(0)
}

fn info(side: Side, record: JobRecord) -> JobInfo {
    let argv = JobDoc::decode(record.doc.as_bytes())
        .map(|d| d.argv)
        .unwrap_or_default();
    let exit_code = record
        .result
        .as_ref()
        .and_then(|s| s.verify().ok())
        .map(|(r, _)| r.exit_code());
    JobInfo {
        id: record.id,
        side,
        device: record.device,
        peer: record.peer,
        state: record.state,
        submitted: record.submitted,
        argv,
        exit_code,
        reason: record.reason,
    }
}

/// Runs `then` once `cancel` turns true, in a task of its own (so the
/// stream being read is never interrupted mid-frame); stopped when the
/// returned handle drops.
fn on_cancel(
    mut cancel: watch::Receiver<bool>,
    then: impl Future<Output = ()> + Send + 'static,
) -> n0_future::task::AbortOnDropHandle<()> {
    n0_future::task::AbortOnDropHandle::new(tokio::spawn(async move {
        if cancel.wait_for(|asked| *asked).await.is_ok() {
            then.await;
        }
    }))
}

/// Writes an output frame to the call's streams.
async fn write_frame_out(out: &mut Output<'_>, frame: &Frame) -> Result<(), NodeError> {
    let (w, bytes): (&mut (dyn tokio::io::AsyncWrite + Unpin + Send), &[u8]) = match frame {
        Frame::Stdout(b) => (&mut *out.stdout, b),
        Frame::Stderr(b) => (&mut *out.stderr, b),
        Frame::Event(_) => return Ok(()),
    };
    w.write_all(bytes)
        .await
        .map_err(|e| NodeError::io("writing a job's output", e))?;
    w.flush()
        .await
        .map_err(|e| NodeError::io("writing a job's output", e))
}
