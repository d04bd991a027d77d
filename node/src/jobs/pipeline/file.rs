//! Reading a pipeline file into its steps, each checked on its own and
//! every `step:` input checked against the step it reads (cycles are
//! [`super::plan`]'s).

use std::{collections::BTreeMap, path::Path};

use clive_cas::Hash;
use serde::Deserialize;

use super::{
    MAX_PIPELINE_LEN, MAX_STEP_NAME_LEN, MAX_STEPS, PIPELINE_VERSION, PipelineError, STEP_PREFIX,
    Step, StepRef,
};
use crate::jobs::{
    document::{DocError, Input, check_path, shown},
    jobfile::{JobFileError, JobTable},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    version: i64,
    /// Decoded one by one, so that an error names its step.
    #[serde(default)]
    step: BTreeMap<String, toml::Value>,
}

/// The steps of a pipeline file, each a valid job whose `step:` inputs
/// name existing steps and outputs they declare.
pub(super) fn parse(text: &str, base: &Path) -> Result<BTreeMap<String, Step>, PipelineError> {
    if text.len() > MAX_PIPELINE_LEN {
        return Err(PipelineError::TooLarge);
    }
    let raw: RawPipeline = toml::from_str(text).map_err(|e| PipelineError::Toml(e.to_string()))?;
    if raw.version != i64::from(PIPELINE_VERSION) {
        return Err(PipelineError::Version(raw.version));
    }
    if raw.step.is_empty() {
        return Err(PipelineError::NoSteps);
    }
    if raw.step.len() > MAX_STEPS {
        return Err(PipelineError::TooManySteps(raw.step.len()));
    }
    let mut steps = BTreeMap::new();
    for (name, value) in raw.step {
        check_name(&name).map_err(|()| PipelineError::BadStepName(shown(&name)))?;
        let table: JobTable = value.try_into().map_err(|e| PipelineError::StepToml {
            step: name.clone(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let step = step(name.clone(), table, base)?;
        steps.insert(name, step);
    }
    check_reads(&steps)?;
    Ok(steps)
}

/// A step name: 1 to [`MAX_STEP_NAME_LEN`] of `A-Za-z0-9_.-`, not `.` or `..`.
fn check_name(name: &str) -> Result<(), ()> {
    let ok = (1..=MAX_STEP_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && name != "."
        && name != "..";
    if ok { Ok(()) } else { Err(()) }
}

/// One step from its table: the `step:` inputs taken out, the rest read as
/// `JOB.toml` is, and the whole checked as a job document would be.
fn step(name: String, mut table: JobTable, base: &Path) -> Result<Step, PipelineError> {
    let mut reads = BTreeMap::new();
    for (mount, value) in std::mem::take(&mut table.inputs) {
        let Some(text) = value.strip_prefix(STEP_PREFIX) else {
            table.inputs.insert(mount, value);
            continue;
        };
        check_path("input mount", &mount).map_err(|e| PipelineError::Step {
            step: name.clone(),
            error: JobFileError::Path(e),
        })?;
        let read = step_ref(text).map_err(|reason| PipelineError::BadStepInput {
            step: name.clone(),
            mount: shown(&mount),
            value: shown(&value),
            reason,
        })?;
        reads.insert(mount, read);
    }
    let job = table.spec(base).map_err(|error| PipelineError::Step {
        step: name.clone(),
        error,
    })?;
    // What only the document checks (mounts inside mounts, the workdir or
    // an output inside an input, the environment, ...), with every input
    // standing in for what it will be.
    let stand_in = Input {
        hash: Hash::new(b""),
        name: None,
    };
    let inputs = job
        .inputs
        .keys()
        .chain(reads.keys())
        .map(|mount| (mount.clone(), stand_in.clone()))
        .collect();
    job.doc(inputs).map_err(|error| PipelineError::StepDoc {
        step: name.clone(),
        error,
    })?;
    Ok(Step { name, job, reads })
}

/// `NAME` or `NAME/PATH` after `step:`.
fn step_ref(text: &str) -> Result<StepRef, String> {
    let (step, path) = match text.split_once('/') {
        Some((step, path)) => (step, Some(path)),
        None => (text, None),
    };
    if check_name(step).is_err() {
        return Err(format!(
            "{:?} is not a step name (expected step:NAME or step:NAME/PATH)",
            shown(step)
        ));
    }
    if let Some(path) = path {
        match check_path("path", path) {
            Ok(()) => {}
            Err(DocError::Path { path, problem, .. }) => {
                return Err(format!("the path {path:?} {problem}"));
            }
            Err(other) => return Err(other.to_string()),
        }
    }
    Ok(StepRef {
        step: step.to_owned(),
        path: path.map(str::to_owned),
    })
}

/// Every `step:` input names a step that exists and declares what it reads.
fn check_reads(steps: &BTreeMap<String, Step>) -> Result<(), PipelineError> {
    for (name, step) in steps {
        for (mount, read) in &step.reads {
            let Some(needs) = steps.get(&read.step) else {
                return Err(PipelineError::UnknownStep {
                    step: name.clone(),
                    mount: mount.clone(),
                    needs: read.step.clone(),
                });
            };
            let declared = &needs.job.outputs;
            if declared.is_empty() {
                return Err(PipelineError::NoOutputs {
                    step: name.clone(),
                    mount: mount.clone(),
                    needs: read.step.clone(),
                });
            }
            if let Some(path) = &read.path
                && !declared.iter().any(|output| within(path, output))
            {
                let mut declared = declared.clone();
                declared.sort();
                declared.dedup();
                return Err(PipelineError::UndeclaredOutput {
                    step: name.clone(),
                    mount: mount.clone(),
                    needs: read.step.clone(),
                    path: path.clone(),
                    declared,
                });
            }
        }
    }
    Ok(())
}

/// `path` is `output` or lies inside it.
fn within(path: &str, output: &str) -> bool {
    path.strip_prefix(output)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}
