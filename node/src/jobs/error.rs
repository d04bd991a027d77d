//! What the jobs concern fails with.

use super::{
    collect::CollectError, document::DocError, jobfile::JobFileError, memo::MemoError,
    platform::PlatformError, process::ProcessError, records::RecordError, result::ResultError,
    stage::StageError,
};

/// A job that could not be submitted, run, followed or found.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The executor (or this node's policy) refuses the job.
    #[error("{0}")]
    Refused(String),
    /// No peer can take the job: what none of them meets.
    #[error("{0}")]
    NoMatch(String),
    /// No job of that id is known here.
    #[error("no job {0} is known here (see `clive-node job ls`)")]
    NotFound(String),
    /// The job's inputs could not be fetched from the requester.
    #[error("fetching the job's inputs: {0}")]
    Inputs(String),
    /// The executor failed or broke the protocol.
    #[error("the executor {peer}: {reason}")]
    Executor {
        /// The executor.
        peer: String,
        /// What happened.
        reason: String,
    },
    /// The job document.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// A `JOB.toml`, or an `--input`/`--on` argument.
    #[error(transparent)]
    JobFile(#[from] JobFileError),
    /// A pipeline file or one of its steps.
    #[error(transparent)]
    Pipeline(#[from] super::pipeline::PipelineError),
    /// A platform requirement.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// A result or its signature.
    #[error(transparent)]
    Result(#[from] ResultError),
    /// The memo table.
    #[error(transparent)]
    Memo(#[from] MemoError),
    /// The job records.
    #[error(transparent)]
    Records(#[from] RecordError),
    /// The pipeline watches.
    #[error(transparent)]
    Watch(#[from] super::watches::WatchError),
    /// Staging the inputs.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// Running the process tree.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// Collecting the outputs.
    #[error(transparent)]
    Collect(#[from] CollectError),
    /// The store.
    #[error("the store: {0}")]
    Store(clive_cas::CasError),
    /// A file of the executor.
    #[error("{context}: {cause}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        cause: std::io::Error,
    },
}

impl JobError {
    /// An I/O error while doing `context`.
    pub fn io(context: String, cause: std::io::Error) -> JobError {
        JobError::Io { context, cause }
    }
}
