//! Runs one staged job under its sandbox level, through the supervisor
//! ([`crate::jobs::supervisor`], which owns the process tree), and streams
//! its output into log files.
//!
//! The executor side of the supervisor protocol: it starts the helper with
//! the control socket as stdin and the job's stdout and stderr pipes, sends
//! the spec, reads both pipes into the log files (each kept up to
//! `log_limit` bytes; the rest is read and dropped, and the outcome says
//! `logs_truncated`), publishes the bytes written so far on the `logs`
//! watch after every write, sends the kill byte on timeout or cancel, and
//! reads the supervisor's report once the tree is gone. Dropping the future
//! closes the control socket, which makes the supervisor kill the tree.

use std::{
    collections::BTreeMap,
    io,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    process::{Child, ExitStatus, Stdio},
    time::{Duration, SystemTime},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{UnixStream, unix::pipe},
    sync::watch,
};

use crate::jobs::{
    result::Exit,
    sandbox::{self, SandboxLevel},
    supervisor::{self, KILL, PROTOCOL_VERSION, Report},
};

/// How long the pipes may stay open after the supervisor reported (only a
/// descriptor passed out of the tree could hold them).
const PIPE_GRACE: Duration = Duration::from_secs(5);
/// The largest report read from the supervisor.
const MAX_REPORT: usize = 64 * 1024;

/// One job to run: where, what, under which level and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// The clive-node binary (it runs the supervisor: see [`supervisor`]).
    pub helper: PathBuf,
    /// The job directory, staged (inputs read-only).
    pub root: PathBuf,
    /// The job's current directory: absolute, inside `root`, existing.
    pub workdir: PathBuf,
    /// The command; `argv[0]` is looked up in `env`'s `PATH`.
    pub argv: Vec<String>,
    /// Exactly this environment (nothing is inherited).
    pub env: BTreeMap<String, String>,
    /// The sandbox level: one of [`sandbox::available`], or the run is refused.
    pub level: SandboxLevel,
    /// The tree is killed this long after the start.
    pub timeout: Duration,
    /// The stdout log file (outside `root`): created or emptied, then
    /// appended to as the job prints.
    pub stdout: PathBuf,
    /// The stderr log file, like `stdout`.
    pub stderr: PathBuf,
    /// Bytes kept per stream; the rest is read and dropped.
    pub log_limit: u64,
}

/// Bytes written to each log file so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogLen {
    /// Bytes in the stdout log.
    pub stdout: u64,
    /// Bytes in the stderr log.
    pub stderr: u64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The main process's exit code or signal (SIGKILL after a timeout or cancel).
    pub exit: Exit,
    /// The tree was killed because the timeout passed while the job ran.
    pub timed_out: bool,
    /// The tree was killed because `cancel` turned true while the job ran.
    pub cancelled: bool,
    /// When the supervisor was started.
    pub started: SystemTime,
    /// When every process of the job was gone.
    pub ended: SystemTime,
    /// User plus system CPU time of every process of the job.
    pub cpu: Duration,
    /// The largest resident set of any single process of the job.
    pub peak_memory_bytes: u64,
    /// Bytes written to the log files.
    pub logs: LogLen,
    /// A stream printed more than `log_limit` (the rest was dropped).
    pub logs_truncated: bool,
}

/// Why a job could not be run (a job that ran, however it ended, is an
/// [`RunOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The machine cannot give this level (never downgraded).
    #[error("sandbox level {level} is not available here (available: {available})")]
    Unavailable {
        /// The level asked for.
        level: SandboxLevel,
        /// What this machine gives, comma-separated.
        available: String,
    },
    /// The workdir is not an existing directory inside the job directory.
    #[error("workdir {0} is not a directory inside the job directory")]
    Workdir(PathBuf),
    /// The job has no command.
    #[error("the job has no argv")]
    EmptyArgv,
    /// The supervisor could not be started.
    #[error("starting the job supervisor {helper}: {source}")]
    Spawn {
        /// The helper binary.
        helper: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A log file could not be created or written.
    #[error("writing the log {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The control socket or a pipe failed.
    #[error("talking to the job supervisor: {0}")]
    Control(io::Error),
    /// The sandbox (or the job's directory, or stdin) could not be set up:
    /// nothing ran.
    #[error("setting up the {level} sandbox: {message}")]
    Sandbox {
        /// The level.
        level: SandboxLevel,
        /// The supervisor's message.
        message: String,
    },
    /// The supervisor ended without a usable report.
    #[error("the job supervisor {0}")]
    Supervisor(String),
    /// Processes of the job were still alive after the bounded kill loop.
    #[error("{0} processes of the job survived the kill")]
    Survivors(u32),
}

/// A log file filling up to its limit.
struct Sink {
    file: tokio::fs::File,
    path: PathBuf,
    kept: u64,
    limit: u64,
    truncated: bool,
}

impl Sink {
    async fn create(path: &Path, limit: u64) -> Result<Sink, ProcessError> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
            .map_err(|source| ProcessError::Log {
                path: path.to_owned(),
                source,
            })?;
        Ok(Sink {
            file,
            path: path.to_owned(),
            kept: 0,
            limit,
            truncated: false,
        })
    }

    /// Appends what fits; `true` when something was written.
    async fn write(&mut self, bytes: &[u8]) -> Result<bool, ProcessError> {
        let room = self.limit.saturating_sub(self.kept);
        let take = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
        if take < bytes.len() {
            self.truncated = true;
        }
        if take == 0 {
            return Ok(false);
        }
        let log = |source| ProcessError::Log {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&bytes[..take]).await.map_err(log)?;
        // Watchers read the file up to the published length: it must be there.
        self.file.flush().await.map_err(log)?;
        self.kept += take as u64;
        Ok(true)
    }
}

/// Reaps the supervisor even when the run is dropped.
struct Reaper(Option<Child>);

impl Reaper {
    async fn wait(mut self) -> io::Result<ExitStatus> {
        let Some(mut child) = self.0.take() else {
            return Err(io::Error::other("already reaped"));
        };
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .map_err(io::Error::other)?
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            // The control socket is closed by now: the supervisor is killing
            // the tree and will exit.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Timeout,
    Cancel,
}

fn pipe_of(fd: Option<impl Into<OwnedFd>>) -> Result<pipe::Receiver, ProcessError> {
    let fd = fd.ok_or_else(|| ProcessError::Control(io::Error::other("no pipe")))?;
    pipe::Receiver::from_owned_fd(fd.into()).map_err(ProcessError::Control)
}

/// Runs the job; `logs` is updated as bytes reach the log files (watchers
/// read the files up to that length: that is how output streams live and
/// how attach resumes at an offset); `cancel` flipping to true kills the
/// whole tree (like a timeout). Returns once every process of the job is
/// gone. A helper that fails to set up the sandbox is an error (never a
/// silent downgrade).
pub async fn run(
    spec: RunSpec,
    logs: watch::Sender<LogLen>,
    mut cancel: watch::Receiver<bool>,
) -> Result<RunOutcome, ProcessError> {
    let available = sandbox::available();
    if !available.contains(&spec.level) {
        return Err(ProcessError::Unavailable {
            level: spec.level,
            available: available
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if spec.argv.is_empty() {
        return Err(ProcessError::EmptyArgv);
    }
    if !spec.workdir.is_absolute()
        || !spec.workdir.starts_with(&spec.root)
        || spec
            .workdir
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        || !spec.workdir.is_dir()
    {
        return Err(ProcessError::Workdir(spec.workdir.clone()));
    }
    let frame = {
        let json = serde_json::to_vec(&supervisor::Spec {
            v: PROTOCOL_VERSION,
            root: spec.root.clone(),
            workdir: spec.workdir.clone(),
            argv: spec.argv.clone(),
            env: spec.env.clone(),
            level: spec.level,
        })
        .map_err(|e| ProcessError::Control(io::Error::other(e)))?;
        let len = u32::try_from(json.len())
            .ok()
            .filter(|&len| len <= supervisor::MAX_SPEC_LEN)
            .ok_or_else(|| ProcessError::Control(io::Error::other("the job is too large")))?;
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend_from_slice(&json);
        frame
    };
    let mut out = Sink::create(&spec.stdout, spec.log_limit).await?;
    let mut err = Sink::create(&spec.stderr, spec.log_limit).await?;

    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(ProcessError::Control)?;
    let started = SystemTime::now();
    let mut child = std::process::Command::new(&spec.helper)
        .arg(supervisor::ARG)
        .arg(PROTOCOL_VERSION.to_string())
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            helper: spec.helper.clone(),
            source,
        })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let reaper = Reaper(Some(child));
    let mut stdout = pipe_of(stdout)?;
    let mut stderr = pipe_of(stderr)?;
    ours.set_nonblocking(true).map_err(ProcessError::Control)?;
    let mut ctl = UnixStream::from_std(ours).map_err(ProcessError::Control)?;
    // A supervisor that died at once shows up as a missing report below.
    let _ = ctl.write_all(&frame).await;

    let mut reason = None;
    if *cancel.borrow_and_update() {
        reason = Some(Reason::Cancel);
        let _ = ctl.write_all(&[KILL]).await;
    }
    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let mut grace = Box::pin(tokio::time::sleep(Duration::MAX));
    let (mut out_open, mut err_open, mut ctl_open, mut cancel_live) = (true, true, true, true);
    let mut report = Vec::new();
    let (mut out_buf, mut err_buf, mut ctl_buf) =
        (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024], [0u8; 4096]);
    while out_open || err_open || ctl_open {
        tokio::select! {
            n = stdout.read(&mut out_buf), if out_open => match n {
                Ok(n) if n > 0 => {
                    if out.write(&out_buf[..n]).await? {
                        logs.send_modify(|l| l.stdout = out.kept);
                    }
                }
                _ => out_open = false,
            },
            n = stderr.read(&mut err_buf), if err_open => match n {
                Ok(n) if n > 0 => {
                    if err.write(&err_buf[..n]).await? {
                        logs.send_modify(|l| l.stderr = err.kept);
                    }
                }
                _ => err_open = false,
            },
            n = ctl.read(&mut ctl_buf), if ctl_open => match n {
                Ok(n) if n > 0 => {
                    if report.len() + n <= MAX_REPORT {
                        report.extend_from_slice(&ctl_buf[..n]);
                    }
                }
                _ => {
                    ctl_open = false;
                    grace.as_mut().reset(tokio::time::Instant::now() + PIPE_GRACE);
                }
            },
            () = &mut deadline, if reason.is_none() => {
                reason = Some(Reason::Timeout);
                let _ = ctl.write_all(&[KILL]).await;
            },
            changed = cancel.changed(), if reason.is_none() && cancel_live => match changed {
                Ok(()) => if *cancel.borrow_and_update() {
                    reason = Some(Reason::Cancel);
                    let _ = ctl.write_all(&[KILL]).await;
                },
                Err(_) => cancel_live = false,
            },
            () = &mut grace, if !ctl_open => break,
        }
    }
    drop(ctl);
    let status = reaper.wait().await.map_err(ProcessError::Control)?;
    let ended = SystemTime::now();
    let line = report.split(|&b| b == b'\n').next().unwrap_or_default();
    let report: Report = serde_json::from_slice(line)
        .map_err(|e| ProcessError::Supervisor(format!("ended ({status}) without a report: {e}")))?;
    if report.v != PROTOCOL_VERSION {
        return Err(ProcessError::Supervisor(format!(
            "reported protocol {}, not {PROTOCOL_VERSION}",
            report.v
        )));
    }
    if let Some(message) = report.error {
        return Err(ProcessError::Sandbox {
            level: spec.level,
            message,
        });
    }
    if report.survivors > 0 {
        return Err(ProcessError::Survivors(report.survivors));
    }
    let exit = match (report.code, report.signal) {
        (Some(code), None) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        _ => {
            return Err(ProcessError::Supervisor(
                "reported neither an exit code nor a signal".to_owned(),
            ));
        }
    };
    Ok(RunOutcome {
        exit,
        timed_out: report.killed && reason == Some(Reason::Timeout),
        cancelled: report.killed && reason == Some(Reason::Cancel),
        started,
        ended,
        cpu: Duration::from_micros(report.cpu_us),
        peak_memory_bytes: report.max_rss_bytes,
        logs: LogLen {
            stdout: out.kept,
            stderr: err.kept,
        },
        logs_truncated: out.truncated || err.truncated,
    })
}
