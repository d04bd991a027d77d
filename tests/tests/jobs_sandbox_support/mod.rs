//! Helpers shared by the `jobs_sandbox*` test targets: a job directory with
//! its log files, and running a job through the real supervisor.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use clive_node::jobs::{
    process::{LogLen, ProcessError, RunOutcome, RunSpec, run},
    sandbox::{self, SandboxLevel},
};
use clive_tests::clive_bin;
use tokio::sync::watch;

/// The `PATH` every test job gets.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A job directory (`root`) with its log files beside it.
pub struct Job {
    /// The temporary directory holding `root` and the logs.
    pub dir: tempfile::TempDir,
}

impl Job {
    /// A fresh temporary directory with an empty `root`.
    pub fn new() -> Job {
        let job = Job {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        std::fs::create_dir(job.root()).unwrap();
        job
    }

    /// The job directory.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A path outside the job directory.
    pub fn outside(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A run of `argv` in `root` at `level`, with [`PATH`] only.
    pub fn spec(&self, level: SandboxLevel, argv: &[&str]) -> RunSpec {
        RunSpec {
            helper: clive_bin(),
            root: self.root(),
            workdir: self.root(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::from([("PATH".to_owned(), PATH.to_owned())]),
            level,
            timeout: Duration::from_secs(600),
            stdout: self.outside("stdout"),
            stderr: self.outside("stderr"),
            log_limit: 1 << 20,
        }
    }

    /// What the job printed on stdout.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.outside("stdout")).unwrap()
    }

    /// What the job printed on stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.outside("stderr")).unwrap()
    }
}

/// `sh -c script`.
pub fn sh(script: &str) -> Vec<&str> {
    vec!["sh", "-c", script]
}

/// Runs the job, never cancelled.
pub async fn run_job(spec: RunSpec) -> Result<RunOutcome, ProcessError> {
    let (logs, _) = watch::channel(LogLen::default());
    let (_cancel, cancelled) = watch::channel(false);
    run(spec, logs, cancelled).await
}

/// Runs the job, which must run (however it ends).
pub async fn ok(spec: RunSpec) -> RunOutcome {
    run_job(spec).await.expect("the job runs")
}

/// Whether this machine gives `level` (it must, unless
/// `CLIVE_TEST_ALLOW_NO_SANDBOX` is set).
pub fn has(level: SandboxLevel) -> bool {
    let yes = sandbox::available().contains(&level);
    assert!(
        yes || std::env::var_os("CLIVE_TEST_ALLOW_NO_SANDBOX").is_some(),
        "this machine should give {level}: {:?}",
        sandbox::available()
    );
    yes
}
