//! The order steps run in, the cycle that forbids one, and the plan as
//! `--json` shows it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{PIPELINE_VERSION, Pipeline, PipelineError, Step};
use crate::jobs::{document::Limits, jobfile::InputSource, sandbox::SandboxLevel};

/// The steps in dependency levels (see [`Pipeline::order`]), or the cycle
/// that leaves some without one. Every `step:` input names a step of
/// `steps` (checked before).
pub(super) fn levels(steps: &BTreeMap<String, Step>) -> Result<Vec<Vec<String>>, PipelineError> {
    let needs: BTreeMap<&str, BTreeSet<&str>> = steps
        .iter()
        .map(|(name, step)| (name.as_str(), step.needs()))
        .collect();
    let mut placed = BTreeSet::new();
    let mut levels = Vec::new();
    // Level n holds the steps whose needs were all placed before it: those
    // whose longest chain of needs has n steps.
    loop {
        let level: Vec<&str> = needs
            .iter()
            .filter(|(name, needs)| !placed.contains(*name) && needs.is_subset(&placed))
            .map(|(name, _)| *name)
            .collect();
        if level.is_empty() {
            break;
        }
        placed.extend(level.iter().copied());
        levels.push(level.into_iter().map(str::to_owned).collect());
    }
    if placed.len() == needs.len() {
        return Ok(levels);
    }
    Err(PipelineError::Cycle(cycle(&needs, &placed)))
}

/// A cycle among the steps not `placed`: each of them needs at least one
/// other step not placed, so following those needs from any of them
/// comes back round. Given in the order the outputs flow (each step reads
/// the one before), starting at its least name, which is repeated at the end.
fn cycle(needs: &BTreeMap<&str, BTreeSet<&str>>, placed: &BTreeSet<&str>) -> Vec<String> {
    let unplaced = |name: &&str| !placed.contains(name);
    let mut path: Vec<&str> = Vec::new();
    let mut at = needs.keys().copied().find(unplaced);
    while let Some(name) = at {
        if let Some(start) = path.iter().position(|p| *p == name) {
            let mut ring: Vec<&str> = path[start..].to_vec();
            // `path` follows the needs; the outputs flow the other way.
            ring.reverse();
            let least = (0..ring.len()).min_by_key(|i| ring[*i]).unwrap_or(0);
            ring.rotate_left(least);
            let first = ring[0];
            ring.push(first);
            return ring.into_iter().map(str::to_owned).collect();
        }
        path.push(name);
        at = needs
            .get(name)
            .and_then(|n| n.iter().copied().find(unplaced));
    }
    // Not reached: every unplaced step needs an unplaced step. Name what
    // is left rather than nothing.
    needs
        .keys()
        .copied()
        .filter(unplaced)
        .map(str::to_owned)
        .collect()
}

/// What a pipeline will run: its steps and their order, as `job run
/// --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The pipeline format version: [`PIPELINE_VERSION`].
    pub version: u32,
    /// The steps in dependency levels ([`Pipeline::order`]).
    pub order: Vec<Vec<String>>,
    /// Each step, by name.
    pub steps: BTreeMap<String, PlanStep>,
}

/// One step of a [`Plan`]: its job as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// Mount -> where the input comes from.
    pub inputs: BTreeMap<String, PlanInput>,
    /// Exactly the job's environment.
    pub env: BTreeMap<String, String>,
    /// Where the command runs, relative to the job directory.
    pub workdir: String,
    /// Paths collected after the run, relative to the workdir.
    pub outputs: Vec<String>,
    /// How long it may run, in milliseconds.
    pub timeout_ms: u64,
    /// The least sandbox level it needs, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxLevel>,
    /// Where it runs, as `on` spells it, if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
    /// Size limits.
    pub limits: Limits,
    /// The steps it reads, sorted.
    pub needs: Vec<String>,
}

/// Where an input of a [`PlanStep`] comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PlanInput {
    /// A file or directory, added when the step runs.
    Path(String),
    /// A hash, pin or `ZONE/NAME`, resolved when the pipeline runs.
    Object(String),
    /// Another step's outputs tree, or a path inside it.
    Step {
        /// The step.
        step: String,
        /// The path inside its outputs tree; all of it when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
}

pub(super) fn plan(pipeline: &Pipeline) -> Plan {
    let steps = pipeline
        .steps
        .iter()
        .map(|(name, step)| (name.clone(), plan_step(step)))
        .collect();
    Plan {
        version: PIPELINE_VERSION,
        order: pipeline.order.clone(),
        steps,
    }
}

fn plan_step(step: &Step) -> PlanStep {
    let job = &step.job;
    let mut inputs: BTreeMap<String, PlanInput> = job
        .inputs
        .iter()
        .map(|(mount, source)| {
            let input = match source {
                InputSource::Path(path) => PlanInput::Path(path.display().to_string()),
                InputSource::Object(object) => PlanInput::Object(object.clone()),
            };
            (mount.clone(), input)
        })
        .collect();
    inputs.extend(step.reads.iter().map(|(mount, read)| {
        let input = PlanInput::Step {
            step: read.step.clone(),
            path: read.path.clone(),
        };
        (mount.clone(), input)
    }));
    PlanStep {
        argv: job.argv.clone(),
        inputs,
        env: job.env.clone(),
        workdir: job.workdir.clone(),
        outputs: job.outputs.clone(),
        timeout_ms: u64::try_from(job.timeout.as_millis()).unwrap_or(u64::MAX),
        sandbox: job.sandbox,
        on: job.on.as_ref().map(ToString::to_string),
        limits: job.limits,
        needs: step.needs().into_iter().map(str::to_owned).collect(),
    }
}
