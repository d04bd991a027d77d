//! The jobs requests: `exec`, and `job submit|ls|status|logs|attach|cancel|result`.

use std::{path::PathBuf, sync::Arc};

use clive_trust::Signer;
use serde::{Deserialize, Serialize};

use super::call::{ApiError, CallContext, Client, duration};
use crate::{
    Node, NodeError,
    dispatch::{JobInfo, JobRun, PipelineCheck, PipelineRun, Stream, WatchEnded},
    jobs::{
        JobError,
        jobfile::JobSpec,
        pipeline::Pipeline,
        platform::Target,
        result::{JobResult, SignedResult},
        sandbox::SandboxLevel,
        watches::{WATCH_VERSION, WatchError, WatchInfo, WatchSpec, new_id},
    },
};

/// The largest `JOB.toml` read.
const MAX_JOB_FILE: u64 = 1024 * 1024;

/// `clive-node exec`: one job from the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct ExecArgs {
    /// Where it runs: a peer's KEY, requirements (`os=macos,arch=aarch64,feature=gpu`:
    /// the least loaded connected peer that runs jobs for this node and meets them),
    /// or `local` [default: local]
    #[arg(long, value_name = "PEER|REQUIREMENTS|local")]
    #[serde(default)]
    pub on: Option<String>,
    /// An input, MOUNT=PATH|HASH|ZONE/NAME: staged read-only at MOUNT in the job
    /// directory (paths are added, names resolved now). Repeatable.
    #[arg(long = "input", short = 'i', value_name = "MOUNT=SOURCE")]
    #[serde(default)]
    pub inputs: Vec<String>,
    /// An output, relative to the working directory, stored by hash. Repeatable.
    #[arg(long = "output", value_name = "PATH")]
    #[serde(default)]
    pub outputs: Vec<String>,
    /// An environment variable, K=V: the job gets exactly these (and a default
    /// PATH, and TMPDIR=. (its working directory), unless given). Repeatable.
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    #[serde(default)]
    pub env: Vec<String>,
    /// The working directory, relative to the job directory [default: the job directory]
    #[arg(long, value_name = "DIR", default_value = "")]
    #[serde(default)]
    pub workdir: String,
    /// Kill the job after this long (30s, 10m, 2h).
    #[arg(long, default_value = "10m")]
    pub timeout: String,
    /// The lowest sandbox level the job may run at: none, landlock, isolated.
    #[arg(long, value_name = "LEVEL")]
    #[serde(default)]
    pub sandbox: Option<String>,
    /// Run it even when a memoized result exists.
    #[arg(long)]
    #[serde(default)]
    pub no_cache: bool,
    /// Write the outputs into DIR once it ends.
    #[arg(short = 'o', value_name = "DIR")]
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "ARGV")]
    pub argv: Vec<String>,
}

/// The `job` commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "job_op", rename_all = "snake_case")]
pub enum JobRequest {
    /// Run the job JOB.toml describes, streaming its output, to its end.
    Submit {
        /// The job file.
        file: PathBuf,
        /// Where it runs (overrides the file's `on`).
        #[arg(long, value_name = "PEER|REQUIREMENTS|local")]
        #[serde(default)]
        on: Option<String>,
        /// Run it even when a memoized result exists.
        #[arg(long)]
        #[serde(default)]
        no_cache: bool,
        /// Write the outputs into DIR once it ends.
        #[arg(short = 'o', value_name = "DIR")]
        #[serde(default)]
        out: Option<PathBuf>,
    },
    /// Run a pipeline: its steps in dependency order (independent ones at
    /// once), each a job memoized by its own id, each line prefixed by its
    /// step's name.
    Run {
        /// The pipeline file.
        file: PathBuf,
        /// Run only this step and what it needs.
        #[arg(long, value_name = "NAME")]
        #[serde(default)]
        step: Option<String>,
        /// Where every step runs (overrides each step's `on`).
        #[arg(long, value_name = "PEER|REQUIREMENTS|local")]
        #[serde(default)]
        on: Option<String>,
        /// Run every step even when a memoized result exists.
        #[arg(long)]
        #[serde(default)]
        no_cache: bool,
        /// Write each step's outputs into DIR/STEP.
        #[arg(short = 'o', value_name = "DIR")]
        #[serde(default)]
        out: Option<PathBuf>,
        /// Check reproducibility: run every step again, ignoring the memo,
        /// and report each step whose outputs differ from the memoized ones
        /// (exit 1 when one does), keeping the memo as it is.
        #[arg(long, conflicts_with_all = ["no_cache", "out", "watch"])]
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        check: bool,
        /// Stay up after the first run, and run again whenever an input
        /// moves: a ZONE/NAME whose hash changes (announced, refreshed or
        /// published here), a path whose contents change on disk, or the
        /// pipeline file itself; prints what moved and which steps ran.
        /// Ctrl-C stops it.
        #[arg(long)]
        #[serde(default)]
        watch: bool,
        /// With --watch: run the watch inside the daemon and return at once
        /// with its id (its lines go to the daemon's log; it is resumed when
        /// the daemon restarts, until `job unwatch ID`). Needs a running daemon.
        #[arg(long, requires = "watch")]
        #[serde(default)]
        detach: bool,
    },
    /// The pipeline watches live on this node (`job run --watch`), attached
    /// or detached.
    Watches,
    /// Stop a pipeline watch (a detached one for good).
    Unwatch {
        /// The watch id (or a unique prefix of it).
        id: String,
    },
    /// Jobs this node runs or sent, newest first.
    Ls,
    /// One job's state.
    Status {
        /// The job id (or a unique prefix of at least 4 hex digits).
        id: String,
    },
    /// A job's output so far (standard output and error).
    Logs {
        /// The job id (or a unique prefix).
        id: String,
    },
    /// Follow a job again: its output from the given offsets, live, then its result.
    Attach {
        /// The job id (or a unique prefix).
        id: String,
        /// Standard output bytes already seen (printing starts after them).
        #[arg(long, default_value_t = 0, value_name = "BYTES")]
        #[serde(default)]
        stdout_from: u64,
        /// Standard error bytes already seen.
        #[arg(long, default_value_t = 0, value_name = "BYTES")]
        #[serde(default)]
        stderr_from: u64,
        /// Write the outputs into DIR once it ends.
        #[arg(short = 'o', value_name = "DIR")]
        #[serde(default)]
        out: Option<PathBuf>,
    },
    /// Kill a job's whole process tree, here or on the peer running it.
    Cancel {
        /// The job id (or a unique prefix).
        id: String,
    },
    /// A job's signed result (`-o FILE` writes FILE and FILE.sig, which
    /// `ssh-keygen -Y verify -n clive-result` checks).
    Result {
        /// The job id (or a unique prefix).
        id: String,
        /// Write the result to FILE and its signature to FILE.sig.
        #[arg(short = 'o', value_name = "FILE")]
        #[serde(default)]
        out: Option<PathBuf>,
    },
}

/// The answers of the jobs commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum JobReply {
    /// `exec`, `job submit`, `job attach`: how the job ended.
    Ran(JobRun),
    /// `job run`: the plan and each step's end.
    Pipeline(PipelineRun),
    /// `job run --check`: the plan and each step's verdict.
    Checked(PipelineCheck),
    /// `job run --watch`, once stopped: its id and how many runs it made.
    Watched(WatchEnded),
    /// `job run --watch --detach`: the watch now running in the daemon.
    Detached(WatchInfo),
    /// `job watches`.
    Watches(Vec<WatchInfo>),
    /// `job unwatch`: the watch stopped.
    Unwatched(WatchInfo),
    /// `job ls`.
    Jobs(Vec<JobInfo>),
    /// `job status`.
    Status(JobInfo),
    /// `job logs`: the output went to the call's streams.
    Logged,
    /// `job cancel`.
    Cancelled {
        /// The job.
        id: String,
    },
    /// `job result`.
    Result(ResultInfo),
}

/// A signed result as `job result` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultInfo {
    /// The result.
    pub result: JobResult,
    /// Exactly the signed bytes (canonical JSON).
    pub document: String,
    /// The armored SSHSIG signature (namespace `clive-result`).
    pub signature: String,
    /// Where `-o` wrote the result (and `.sig` beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<PathBuf>,
}

impl JobReply {
    /// The exit code the tool ends with: the job's (128+N for a signal),
    /// 124 for a timeout, 130 for a cancel.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            JobReply::Ran(run) => Some(run.exit_code()),
            JobReply::Pipeline(run) => Some(match &run.failed {
                None => 0,
                Some(failed) => failed.exit_code.filter(|c| *c != 0).unwrap_or(1),
            }),
            JobReply::Checked(check) => Some(check.exit_code()),
            _ => None,
        }
    }
}

impl ExecArgs {
    /// The job this command line describes; relative paths are relative to `client`.
    fn spec(&self, client: &Client<'_>) -> Result<JobSpec, ApiError> {
        let invalid = |reason: String| ApiError::Invalid { reason };
        let mut inputs = std::collections::BTreeMap::new();
        for arg in &self.inputs {
            let (mount, source) =
                JobSpec::parse_input(arg, client.cwd()).map_err(|e| invalid(e.to_string()))?;
            if inputs.insert(mount.clone(), source).is_some() {
                return Err(invalid(format!("--input {mount} is given twice")));
            }
        }
        let mut env = std::collections::BTreeMap::new();
        for kv in &self.env {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(invalid(format!("--env {kv}: expected K=V")));
            };
            env.insert(k.to_owned(), v.to_owned());
        }
        let sandbox = match &self.sandbox {
            Some(level) => Some(
                level
                    .parse::<SandboxLevel>()
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            None => None,
        };
        let on = match &self.on {
            Some(on) => Some(on.parse::<Target>().map_err(|e| invalid(e.to_string()))?),
            None => None,
        };
        let mut outputs = self.outputs.clone();
        outputs.sort();
        outputs.dedup();
        Ok(JobSpec {
            argv: self.argv.clone(),
            inputs,
            env,
            workdir: self.workdir.clone(),
            outputs,
            timeout: duration(&self.timeout)?,
            sandbox,
            on,
            limits: Default::default(),
        })
    }
}

/// Runs a jobs request.
pub(crate) async fn exec(
    node: &Node,
    args: ExecArgs,
    client: &Client<'_>,
    ctx: &mut dyn CallContext,
) -> Result<JobReply, ApiError> {
    let spec = args.spec(client)?;
    let out = args.out.as_ref().map(|o| client.path(o));
    run_spec(node, spec, args.no_cache, out, client, ctx).await
}

async fn run_spec(
    node: &Node,
    spec: JobSpec,
    no_cache: bool,
    out: Option<PathBuf>,
    client: &Client<'_>,
    ctx: &mut dyn CallContext,
) -> Result<JobReply, ApiError> {
    let prepared = node.jobs().document(&spec).await?;
    let local = matches!(spec.on, None | Some(Target::Local));
    let signer: Option<Arc<dyn Signer>> = if local {
        Some(Arc::from(
            node.trust()
                .signer(client.sign_with(false, ctx.passphrase()))?,
        ))
    } else {
        None
    };
    let cancel = ctx.cancel_requested();
    let stream = Stream {
        out: ctx.output(),
        cancel,
    };
    let run = node
        .jobs()
        .run(
            prepared,
            spec.on.as_ref(),
            no_cache,
            signer,
            out.as_deref(),
            stream,
        )
        .await?;
    Ok(JobReply::Ran(run))
}

/// Runs a `job` request.
pub(crate) async fn handle(
    node: &Node,
    request: JobRequest,
    client: &Client<'_>,
    ctx: &mut dyn CallContext,
) -> Result<JobReply, ApiError> {
    let jobs = node.jobs();
    Ok(match request {
        JobRequest::Submit {
            file,
            on,
            no_cache,
            out,
        } => {
            let path = client.path(&file);
            let text = clive_trust::read_bounded_to_string(&path, MAX_JOB_FILE)
                .map_err(NodeError::from)?;
            let base = path.parent().unwrap_or(client.cwd()).to_owned();
            let mut spec = JobSpec::parse(&text, &base)
                .map_err(|e| NodeError::from(JobError::from(e)))
                .map_err(|e| ApiError::Invalid {
                    reason: format!("{}: {}", path.display(), super::call::error_chain(&e)),
                })?;
            if let Some(on) = on {
                spec.on = Some(on.parse::<Target>().map_err(|e| ApiError::Invalid {
                    reason: e.to_string(),
                })?);
            }
            let out = out.as_ref().map(|o| client.path(o));
            return run_spec(node, spec, no_cache, out, client, ctx).await;
        }
        JobRequest::Run {
            file,
            step,
            on,
            no_cache,
            out,
            watch,
            detach,
            ..
        } if watch || detach => {
            let out = out.as_ref().map(|o| client.path(o));
            let spec = WatchSpec {
                version: WATCH_VERSION,
                file: client.path(&file),
                step,
                on,
                no_cache,
                out,
                created: clive_trust::clock::format_time(node.now()),
            };
            return watch_pipeline(node, spec, detach, client, ctx).await;
        }
        JobRequest::Run {
            file,
            step,
            on,
            no_cache,
            out,
            check,
            ..
        } => {
            let path = client.path(&file);
            let invalid = |e: &dyn std::error::Error| ApiError::Invalid {
                reason: format!("{}: {}", path.display(), super::call::error_chain(e)),
            };
            let mut pipeline = Pipeline::load(&path).map_err(|e| invalid(&e))?;
            if let Some(step) = step {
                pipeline = pipeline.only(&step).map_err(|e| invalid(&e))?;
            }
            let on = match on {
                Some(on) => Some(on.parse::<Target>().map_err(|e| ApiError::Invalid {
                    reason: e.to_string(),
                })?),
                None => None,
            };
            let signer: Arc<dyn Signer> = Arc::from(
                node.trust()
                    .signer(client.sign_with(false, ctx.passphrase()))?,
            );
            let out = out.as_ref().map(|o| client.path(o));
            let cancel = ctx.cancel_requested();
            let stream = Stream {
                out: ctx.output(),
                cancel,
            };
            if check {
                return Ok(JobReply::Checked(
                    jobs.check_pipeline(&pipeline, on.as_ref(), Some(signer), stream)
                        .await?,
                ));
            }
            JobReply::Pipeline(
                jobs.run_pipeline(
                    &pipeline,
                    on.as_ref(),
                    no_cache,
                    Some(signer),
                    out.as_deref(),
                    stream,
                )
                .await?,
            )
        }
        JobRequest::Watches => JobReply::Watches(node.watches().list()),
        JobRequest::Unwatch { id } => {
            let watches = node.watches();
            // A stored row no daemon runs (it could not be resumed) goes by its id.
            let stopped = match watches.resolve(&id) {
                Ok(id) => watches.stop(&id),
                Err(WatchError::NotFound(_)) => watches.forget_stored(&id),
                Err(e) => Err(e),
            };
            JobReply::Unwatched(stopped.map_err(|e| NodeError::from(JobError::from(e)))?)
        }
        JobRequest::Ls => JobReply::Jobs(jobs.list()?),
        JobRequest::Status { id } => JobReply::Status(jobs.status(&jobs.resolve_id(&id)?)?),
        JobRequest::Logs { id } => {
            let id = jobs.resolve_id(&id)?;
            jobs.logs(&id, ctx.output()).await?;
            JobReply::Logged
        }
        JobRequest::Attach {
            id,
            stdout_from,
            stderr_from,
            out,
        } => {
            let id = jobs.resolve_id(&id)?;
            let out = out.as_ref().map(|o| client.path(o));
            let cancel = ctx.cancel_requested();
            let stream = Stream {
                out: ctx.output(),
                cancel,
            };
            JobReply::Ran(
                jobs.attach(&id, [stdout_from, stderr_from], out.as_deref(), stream)
                    .await?,
            )
        }
        JobRequest::Cancel { id } => {
            let id = jobs.resolve_id(&id)?;
            jobs.cancel(&id).await?;
            JobReply::Cancelled { id: id.to_string() }
        }
        JobRequest::Result { id, out } => {
            let id = jobs.resolve_id(&id)?;
            let signed: SignedResult = jobs.result(&id)?;
            let (result, _) = signed
                .verify()
                .map_err(|e| NodeError::from(JobError::from(e)))?;
            let document = String::from_utf8_lossy(&signed.result).into_owned();
            let written = match out {
                Some(out) => {
                    let path = client.path(&out);
                    node.home().check_destination(&path)?;
                    let sig = PathBuf::from(format!("{}.sig", path.display()));
                    clive_trust::write_atomic(&path, document.as_bytes())
                        .map_err(|e| NodeError::io(format!("writing {}", path.display()), e))?;
                    clive_trust::write_atomic(&sig, signed.signature.as_bytes())
                        .map_err(|e| NodeError::io(format!("writing {}", sig.display()), e))?;
                    Some(path)
                }
                None => None,
            };
            JobReply::Result(ResultInfo {
                result,
                document,
                signature: signed.signature,
                written,
            })
        }
    })
}

/// `job run --watch [--detach]`: checks the pipeline as `job run` does,
/// then watches it here until cancelled, or starts it in the daemon.
async fn watch_pipeline(
    node: &Node,
    spec: WatchSpec,
    detach: bool,
    client: &Client<'_>,
    ctx: &mut dyn CallContext,
) -> Result<JobReply, ApiError> {
    let invalid = |e: &dyn std::error::Error| ApiError::Invalid {
        reason: format!("{}: {}", spec.file.display(), super::call::error_chain(e)),
    };
    let pipeline = Pipeline::load(&spec.file).map_err(|e| invalid(&e))?;
    if let Some(step) = &spec.step {
        pipeline.only(step).map_err(|e| invalid(&e))?;
    }
    if let Some(on) = &spec.on {
        on.parse::<Target>().map_err(|e| ApiError::Invalid {
            reason: e.to_string(),
        })?;
    }
    if detach {
        if ctx.daemon().is_none() {
            return Err(NodeError::from(JobError::from(WatchError::NoDaemon)).into());
        }
        return Ok(JobReply::Detached(node.jobs().detach(spec)?));
    }
    let signer: Arc<dyn Signer> = Arc::from(
        node.trust()
            .signer(client.sign_with(false, ctx.passphrase()))?,
    );
    let guard = node.watches().register(
        new_id(),
        spec.file.clone(),
        false,
        clive_trust::clock::format_time(node.now()),
    );
    // The caller's cancel (Ctrl-C) stops the watch; a caller that leaves
    // drops this call, and the watch with it.
    let stop = guard.stopper();
    let mut cancel = ctx.cancel_requested();
    let _forward = n0_future::task::AbortOnDropHandle::new(tokio::spawn(async move {
        if cancel.wait_for(|asked| *asked).await.is_ok() {
            stop.send_replace(true);
        }
    }));
    let runs = node
        .jobs()
        .watch(&spec, signer, &guard, ctx.output())
        .await?;
    Ok(JobReply::Watched(WatchEnded {
        id: guard.id().to_owned(),
        runs,
    }))
}
