//! Pipelines: named steps, each an ordinary job, where a step may read
//! another step's outputs. A pipeline is checked whole before anything
//! runs ([`Pipeline::parse`]); it runs in dependency levels
//! ([`Pipeline::order`]), each step turned into its job once the steps it
//! reads have finished ([`Step::spec`]). Each step is memoized by its own
//! job id, so a step whose inputs did not change is a memo hit.
//!
//! # Format version 1
//!
//! ```toml
//! version = 1                               # required; only 1 exists
//!
//! [step.titles]                             # a step named titles
//! argv = ["sh", "-c", "head -qn1 pages/* > titles.txt"]
//! inputs = { pages = "./pages" }            # relative to this file's directory
//! outputs = ["titles.txt"]
//!
//! [step.sidebar]
//! argv = ["sh", "-c", "sed 's/^/- /' t/titles.txt > sidebar.html"]
//! inputs = { t = "step:titles" }            # the outputs tree of step titles
//! outputs = ["sidebar.html"]
//! sandbox = "landlock"
//! on = "os=linux"
//!
//! [step.site]
//! argv = ["sh", "-c", "mkdir site && cat pages/* side.html > site/index.html"]
//! inputs = { pages = "./pages", "side.html" = "step:sidebar/sidebar.html" }
//! outputs = ["site"]
//! ```
//!
//! A step is a table `[step.NAME]`; NAME is 1 to [`MAX_STEP_NAME_LEN`]
//! characters of `A-Z`, `a-z`, `0-9`, `_`, `.`, `-`, and neither `.` nor
//! `..`. A step's table holds exactly the keys of a `JOB.toml` (`argv`,
//! `inputs`, `env`, `workdir`, `outputs`, `timeout`, `sandbox`, `on`,
//! `limits`, and an optional `version = 1`), read by the same parser and
//! with the same meaning (see [`super::jobfile`]), so a `JOB.toml` pasted
//! under `[step.NAME]` is a step. Paths are relative to the pipeline
//! file's directory. An input may also read another step:
//!
//! - `step:NAME`: the whole outputs tree of step NAME (every output it
//!   declares, each at its path relative to NAME's workdir); NAME must
//!   declare at least one output.
//! - `step:NAME/PATH`: one path of that tree; PATH must be one of NAME's
//!   declared outputs or lie inside one (an output that is a directory).
//!
//! Refused before anything runs, each naming the step: a file over
//! [`MAX_PIPELINE_LEN`] bytes, a version other than 1, unknown keys
//! anywhere, no steps or more than [`MAX_STEPS`], a bad step name, a step
//! that is not a valid job (everything `JOB.toml` and a job document
//! refuse: empty argv, bad paths, an input mounted inside another, ...),
//! a `step:` input naming a step that does not exist or a path that step
//! does not declare, and steps that read each other in a cycle.

mod file;
mod plan;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::Path,
};

use clive_cas::Hash;
use serde::{Deserialize, Serialize};

pub use plan::{Plan, PlanInput, PlanStep};

use super::{
    document::DocError,
    jobfile::{InputSource, JobFileError, JobSpec},
};

/// The pipeline format version this code reads.
pub const PIPELINE_VERSION: u32 = 1;
/// Largest pipeline file accepted, in bytes.
pub const MAX_PIPELINE_LEN: usize = 1024 * 1024;
/// Most steps in one pipeline.
pub const MAX_STEPS: usize = 1024;
/// Longest step name, in characters.
pub const MAX_STEP_NAME_LEN: usize = 64;
/// How an input names another step's outputs: `step:NAME[/PATH]`.
pub const STEP_PREFIX: &str = "step:";
/// How [`Step::spec`] spells a path inside a step's outputs tree as an
/// OBJECT: `pin:HASH/PATH`, which the OBJECT resolver reads as a hash and a
/// path inside it, never as a signed name (`crate::object::PIN_PREFIX`).
const TREE_PATH_PREFIX: &str = "pin:";

/// A checked pipeline: its steps, acyclic, every `step:` input pointing at
/// an output its step declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    steps: BTreeMap<String, Step>,
    /// The steps in dependency levels (see [`Pipeline::order`]).
    order: Vec<Vec<String>>,
}

/// One step: a job, some of whose inputs are other steps' outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    name: String,
    /// The job without its `step:` inputs.
    job: JobSpec,
    /// Mount -> the step output staged there.
    reads: BTreeMap<String, StepRef>,
}

/// An input that reads another step's outputs: `step:NAME[/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StepRef {
    /// The step read.
    pub step: String,
    /// A path inside its outputs tree; the whole tree when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl fmt::Display for StepRef {
    /// `step:NAME` or `step:NAME/PATH`, as a pipeline file spells it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            None => write!(f, "{STEP_PREFIX}{}", self.step),
            Some(path) => write!(f, "{STEP_PREFIX}{}/{path}", self.step),
        }
    }
}

/// Why a pipeline is refused, or a step cannot be made into its job.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The file could not be read (missing, a directory, not UTF-8, ...).
    #[error(transparent)]
    Read(clive_trust::ReadError),
    /// Larger than [`MAX_PIPELINE_LEN`].
    #[error("pipeline file is over {MAX_PIPELINE_LEN} bytes: refused")]
    TooLarge,
    /// Not TOML, a key of the wrong type, or an unknown key outside the steps.
    #[error("pipeline file: {0}")]
    Toml(String),
    /// A version other than 1.
    #[error("pipeline file version {0} is not supported (only version {PIPELINE_VERSION})")]
    Version(i64),
    /// No `[step.NAME]` at all.
    #[error("pipeline file has no steps (add a [step.NAME] table)")]
    NoSteps,
    /// More than [`MAX_STEPS`] steps.
    #[error("pipeline file has {0} steps, more than the {MAX_STEPS} allowed")]
    TooManySteps(usize),
    /// A step name that is not 1 to 64 of the allowed characters.
    #[error(
        "step name {0:?} is not 1 to {MAX_STEP_NAME_LEN} of A-Z, a-z, 0-9, '_', '.', '-' \
         (nor . or ..)"
    )]
    BadStepName(String),
    /// A step's table has a key of the wrong type or an unknown key.
    #[error("step {step}: {message}")]
    StepToml {
        /// The step.
        step: String,
        /// What the TOML decoder says.
        message: String,
    },
    /// A step that `JOB.toml`'s rules refuse.
    #[error("step {step}: {error}")]
    Step {
        /// The step.
        step: String,
        /// Why.
        error: JobFileError,
    },
    /// A step that is not a valid job document.
    #[error("step {step}: {error}")]
    StepDoc {
        /// The step.
        step: String,
        /// Why.
        error: DocError,
    },
    /// A `step:` input that does not parse.
    #[error("step {step} input {mount} = {value:?}: {reason}")]
    BadStepInput {
        /// The step.
        step: String,
        /// The input's mount.
        mount: String,
        /// The source as written (shortened).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `step:` input naming a step the pipeline does not have.
    #[error("step {step} input {mount} reads step:{needs}, but there is no step {needs}")]
    UnknownStep {
        /// The step.
        step: String,
        /// The input's mount.
        mount: String,
        /// The step it names.
        needs: String,
    },
    /// A `step:` input reading a step that declares no outputs.
    #[error("step {step} input {mount} reads step:{needs}, which declares no outputs")]
    NoOutputs {
        /// The step.
        step: String,
        /// The input's mount.
        mount: String,
        /// The step it reads.
        needs: String,
    },
    /// A `step:NAME/PATH` input where NAME declares no output at or above PATH.
    #[error(
        "step {step} input {mount} reads {path:?} of step {needs}, which does not declare it \
         (its outputs: {})",
        listed(declared)
    )]
    UndeclaredOutput {
        /// The step.
        step: String,
        /// The input's mount.
        mount: String,
        /// The step it reads.
        needs: String,
        /// The path it reads.
        path: String,
        /// What `needs` declares.
        declared: Vec<String>,
    },
    /// Steps that read each other in a circle.
    #[error(
        "steps form a cycle: {} (each reads the outputs of the one before)",
        .0.join(" -> ")
    )]
    Cycle(
        /// The steps, each reading the one before it; the first is repeated
        /// at the end.
        Vec<String>,
    ),
    /// [`Pipeline::only`] was asked for a step the pipeline does not have.
    #[error("the pipeline has no step {step:?} (its steps: {})", listed(known))]
    NoSuchStep {
        /// The step asked for (shortened).
        step: String,
        /// The pipeline's steps.
        known: Vec<String>,
    },
    /// [`Step::spec`] was called before a step it reads had finished.
    #[error("step {step} reads step {needs}, which has not finished")]
    NotFinished {
        /// The step.
        step: String,
        /// The step it reads.
        needs: String,
    },
}

impl Pipeline {
    /// Parses and checks a pipeline file (see the module documentation);
    /// paths are relative to `base`, the file's directory.
    pub fn parse(text: &str, base: &Path) -> Result<Pipeline, PipelineError> {
        let steps = file::parse(text, base)?;
        let order = plan::levels(&steps)?;
        Ok(Pipeline { steps, order })
    }

    /// Reads (at most [`MAX_PIPELINE_LEN`] bytes) and parses the pipeline
    /// file at `path`; its paths are relative to the file's directory.
    pub fn load(path: &Path) -> Result<Pipeline, PipelineError> {
        let text = clive_trust::read_bounded_to_string(path, MAX_PIPELINE_LEN as u64).map_err(
            |e| match e {
                clive_trust::ReadError::TooLarge { .. } => PipelineError::TooLarge,
                e => PipelineError::Read(e),
            },
        )?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Pipeline::parse(&text, base)
    }

    /// The steps, by name.
    pub fn steps(&self) -> &BTreeMap<String, Step> {
        &self.steps
    }

    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.get(name)
    }

    /// The steps in dependency levels: every step of a level reads only
    /// steps of earlier levels, so a level's steps can run in parallel once
    /// the levels before it have finished. A step is in the level after the
    /// last of the steps it reads (steps that read none are in the first);
    /// names are sorted within a level.
    pub fn order(&self) -> Vec<Vec<String>> {
        self.order.clone()
    }

    /// The pipeline of `step` and every step it needs, directly or not
    /// (what `job run --step NAME` runs).
    pub fn only(&self, step: &str) -> Result<Pipeline, PipelineError> {
        if !self.steps.contains_key(step) {
            return Err(PipelineError::NoSuchStep {
                step: super::document::shown(step),
                known: self.steps.keys().cloned().collect(),
            });
        }
        let mut keep = BTreeSet::from([step]);
        let mut todo = vec![step];
        while let Some(name) = todo.pop() {
            for needs in self.steps[name].needs() {
                if keep.insert(needs) {
                    todo.push(needs);
                }
            }
        }
        // The levels of a step are set by the steps it needs, all of which
        // are kept: filtering the levels leaves each step where it was.
        let order = self
            .order
            .iter()
            .map(|level| {
                level
                    .iter()
                    .filter(|s| keep.contains(s.as_str()))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .filter(|level| !level.is_empty())
            .collect();
        let steps = keep
            .into_iter()
            .map(|name| (name.to_owned(), self.steps[name].clone()))
            .collect();
        Ok(Pipeline { steps, order })
    }

    /// Every OBJECT (hash, pin, `ZONE/NAME`) the steps read, each once:
    /// what a run resolves once for all its steps.
    pub fn objects(&self) -> BTreeSet<&str> {
        self.steps
            .values()
            .flat_map(|step| step.job.inputs.values())
            .filter_map(|source| match source {
                InputSource::Object(object) => Some(object.as_str()),
                InputSource::Path(_) => None,
            })
            .collect()
    }

    /// What the pipeline will run, for people and `--json`.
    pub fn plan(&self) -> Plan {
        plan::plan(self)
    }
}

impl Serialize for Pipeline {
    /// As its [`Plan`].
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.plan().serialize(serializer)
    }
}

impl Step {
    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The step's job without its `step:` inputs (its other inputs, argv,
    /// `on`, sandbox, ...).
    pub fn job(&self) -> &JobSpec {
        &self.job
    }

    /// Mount -> the other step's output staged there.
    pub fn reads(&self) -> &BTreeMap<String, StepRef> {
        &self.reads
    }

    /// The steps this one reads, sorted, each once.
    pub fn needs(&self) -> BTreeSet<&str> {
        self.reads.values().map(|r| r.step.as_str()).collect()
    }

    /// The step's job, given the outputs tree of each finished step it
    /// reads (`upstream`: step name -> outputs tree; more is fine): a
    /// `step:NAME` input becomes the object `HASH` of NAME's tree, a
    /// `step:NAME/PATH` input the object `pin:HASH/PATH`, the path inside
    /// that tree as the OBJECT resolver reads it. Looks nothing up.
    pub fn spec(&self, upstream: &BTreeMap<String, Hash>) -> Result<JobSpec, PipelineError> {
        let mut spec = self.job.clone();
        for (mount, read) in &self.reads {
            let tree = upstream
                .get(&read.step)
                .ok_or_else(|| PipelineError::NotFinished {
                    step: self.name.clone(),
                    needs: read.step.clone(),
                })?;
            let object = match &read.path {
                None => tree.to_hex().to_string(),
                Some(path) => format!("{TREE_PATH_PREFIX}{}/{path}", tree.to_hex()),
            };
            spec.inputs
                .insert(mount.clone(), InputSource::Object(object));
        }
        Ok(spec)
    }
}

/// The first few of `items`, for an error message.
fn listed(items: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = items
        .iter()
        .take(SHOWN)
        .map(|i| super::document::shown(i))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(", … ({} in all)", items.len()));
    }
    text
}

#[cfg(test)]
mod tests;
