//! The reproducibility check (`job run --check`): each step of a pipeline
//! runs again, whatever the memo holds, and its outputs are compared with
//! the memoized ones; neither the memo nor the job records keep the fresh
//! result ([`crate::jobs::executor::Executor::submit_check`]; on a peer,
//! the jobs protocol's `submit` with `check`).
//!
//! A step is checked against the inputs its memo entry had: the steps
//! after it read the memoized outputs, not the fresh ones. A step without
//! a memoized result runs as `job run` would run it (and is memoized).
//!
//! Nothing keeps a check's fresh result or its objects once the check
//! ends; gc waits while a step is checked, so they are there to compare.
//!
//! What a step's memoized result is: the result this node's memo keeps
//! for the step's job id (whoever ran it: this node, or the executor a
//! remote step went to, whose result the requester keeps on receipt),
//! when it verifies, is for that job, completed, and its outputs are in
//! the store.

use std::{collections::BTreeMap, sync::Arc};

use clive_cas::Hash;
use clive_trust::Signer;
use serde::{Deserialize, Serialize};

use super::{
    FailedStep, JobRun, JobsHandle, Output, Prepared, Stream,
    names::Resolved,
    pipeline::{STEP_PIPE, prefix_lines},
};
use crate::{
    NodeError,
    jobs::{
        JobError,
        document::JobId,
        executor::Taken,
        pipeline::{Pipeline, Step},
        platform::Target,
        records::Requester,
        result::JobResult,
    },
};

/// What the check found for one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Ran again with the same outputs (and exit status) as memoized.
    Reproducible,
    /// Ran again with other outputs, or another exit status.
    NotReproducible,
    /// Nothing memoized to compare with: it ran as `job run` runs it (or
    /// was a memo hit on its executor), and that result is memoized now.
    NoMemo,
}

/// One output path whose object differs between the memoized result and
/// the check's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDiff {
    /// The output path, as the step declares it.
    pub path: String,
    /// Its object in the memoized result (hex), absent when it was not made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memoized: Option<String>,
    /// Its object in the check's run (hex), absent when it was not made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<String>,
}

/// One step as `job run --check` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCheck {
    /// The step's name.
    pub step: String,
    /// What the check found.
    pub verdict: Verdict,
    /// The step's job.
    pub id: JobId,
    /// The memoized result's outputs tree (hex), if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memoized_outputs: Option<String>,
    /// The memoized result's exit code, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memoized_exit_code: Option<i32>,
    /// The run the check made (or, with no memo, the ordinary run).
    pub run: JobRun,
    /// The output paths that differ, for a step not reproducible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differs: Vec<OutputDiff>,
}

/// A pipeline as `job run --check` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineCheck {
    /// The steps in dependency levels.
    pub plan: Vec<Vec<String>>,
    /// Each step checked, in plan order.
    pub steps: Vec<StepCheck>,
    /// The steps found not reproducible, in plan order.
    pub not_reproducible: Vec<String>,
    /// The step that could not be checked, and why; the steps after it
    /// were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<FailedStep>,
}

impl PipelineCheck {
    /// The exit code `job run --check` reports: 0 when every step is
    /// reproducible (or had nothing to compare), [`NOT_REPRODUCIBLE`] when
    /// some is not, and as `job run` when a step failed.
    pub fn exit_code(&self) -> i32 {
        match &self.failed {
            Some(failed) => failed.exit_code.filter(|c| *c != 0).unwrap_or(1),
            None if self.not_reproducible.is_empty() => 0,
            None => NOT_REPRODUCIBLE,
        }
    }
}

/// The exit code of `job run --check` when some step is not reproducible.
pub const NOT_REPRODUCIBLE: i32 = 1;

/// How a step's check ended: its report, and the outputs the steps after
/// it read (the memoized ones when there are).
type Checked = Result<(StepCheck, Hash), NodeError>;

impl JobsHandle<'_> {
    /// Checks `pipeline` (see the module documentation): level after
    /// level, the steps of a level at once, each where its own `on` (or
    /// `on`) says. A step that cannot run, or whose memoized result (or
    /// ordinary run, with no memo) failed, stops the check after its level.
    pub async fn check_pipeline(
        &self,
        pipeline: &Pipeline,
        on: Option<&Target>,
        signer: Option<Arc<dyn Signer>>,
        mut stream: Stream<'_>,
    ) -> Result<PipelineCheck, NodeError> {
        let plan = pipeline.order();
        let names = self.resolve_inputs(pipeline).await;
        let mut report = PipelineCheck {
            plan: plan.clone(),
            steps: Vec::new(),
            not_reproducible: Vec::new(),
            failed: None,
        };
        let mut upstream: BTreeMap<String, Hash> = BTreeMap::new();
        for level in &plan {
            let steps: Vec<(&String, &Step)> = level
                .iter()
                .filter_map(|name| pipeline.step(name).map(|s| (name, s)))
                .collect();
            let ended = self
                .check_level(&steps, &upstream, &names, on, &signer, &mut stream)
                .await?;
            for (name, ended) in ended {
                match ended {
                    Ok((check, outputs)) => {
                        let code = check.memoized_exit_code.unwrap_or(check.run.exit_code());
                        if check.verdict == Verdict::NotReproducible {
                            report.not_reproducible.push(name.clone());
                        }
                        report.steps.push(check);
                        if code == 0 {
                            upstream.insert(name, outputs);
                        } else {
                            report.failed.get_or_insert(FailedStep::exited(name, code));
                        }
                    }
                    Err(e) => {
                        report.failed.get_or_insert(FailedStep::refused(name, &e));
                    }
                }
            }
            if report.failed.is_some() {
                break;
            }
        }
        Ok(report)
    }

    /// Checks the steps of one level at once; each step's output lines are
    /// prefixed by its name as they come.
    async fn check_level(
        &self,
        steps: &[(&String, &Step)],
        upstream: &BTreeMap<String, Hash>,
        names: &Resolved,
        on: Option<&Target>,
        signer: &Option<Arc<dyn Signer>>,
        stream: &mut Stream<'_>,
    ) -> Result<Vec<(String, Checked)>, NodeError> {
        let mut checks = Vec::new();
        let mut readers = Vec::new();
        for (name, step) in steps {
            let (out_w, out_r) = tokio::io::duplex(STEP_PIPE);
            let (err_w, err_r) = tokio::io::duplex(STEP_PIPE);
            readers.push(((*name).clone(), out_r, err_r));
            let cancel = stream.cancel.clone();
            checks.push(async move {
                let mut out_w = out_w;
                let mut err_w = err_w;
                let checked = async {
                    let mut spec = step.spec(upstream).map_err(JobError::from)?;
                    if let Some(on) = on {
                        spec.on = Some(on.clone());
                    }
                    let target = spec.on.clone();
                    let prepared = self.document_with(&spec, names).await?;
                    let stream = Stream {
                        out: Output {
                            stdout: &mut out_w,
                            stderr: &mut err_w,
                        },
                        cancel,
                    };
                    self.check_step(name, prepared, target.as_ref(), signer.clone(), stream)
                        .await
                }
                .await;
                ((*name).clone(), checked)
            });
        }
        let all = n0_future::join_all(checks);
        let out = &mut stream.out;
        let prefixing = prefix_lines(readers, out);
        let (ended, prefixed) = tokio::join!(all, prefixing);
        prefixed?;
        Ok(ended)
    }

    /// Checks one step's job: runs it again and compares, or, with nothing
    /// memoized, runs it as `job run` does.
    async fn check_step(
        &self,
        name: &str,
        prepared: Prepared,
        target: Option<&Target>,
        signer: Option<Arc<dyn Signer>>,
        stream: Stream<'_>,
    ) -> Checked {
        let id = prepared.doc.id();
        let declared = prepared.doc.outputs.clone();
        let Some(memoized) = self.memoized(&id).await? else {
            let run = self
                .run(prepared, target, false, signer, None, stream)
                .await?;
            let outputs = run.result.outputs;
            let check = StepCheck {
                step: name.to_owned(),
                verdict: Verdict::NoMemo,
                id,
                memoized_outputs: None,
                memoized_exit_code: None,
                run,
                differs: Vec::new(),
            };
            return Ok((check, outputs));
        };
        // Nothing keeps the check's outputs: gc is held off until they
        // are compared (taken while `prepared` holds it, so at once).
        let _compared = self.node.cas().hold_roots().await;
        let run = self.run_check(prepared, target, signer, stream).await?;
        let differs = if run.result.outputs == memoized.outputs {
            Vec::new()
        } else {
            self.diff_outputs(&declared, memoized.outputs, run.result.outputs)
                .await?
        };
        let memoized_code = memoized.exit_code();
        let same = run.result.outputs == memoized.outputs && run.exit_code() == memoized_code;
        let check = StepCheck {
            step: name.to_owned(),
            verdict: if same {
                Verdict::Reproducible
            } else {
                Verdict::NotReproducible
            },
            id,
            memoized_outputs: Some(memoized.outputs.to_hex().to_string()),
            memoized_exit_code: Some(memoized_code),
            run,
            differs,
        };
        Ok((check, memoized.outputs))
    }

    /// The memoized result of `id` (see the module documentation).
    async fn memoized(&self, id: &JobId) -> Result<Option<JobResult>, NodeError> {
        let executor = self.node.executor();
        let Some(signed) = executor.memo().get(id).map_err(JobError::from)? else {
            return Ok(None);
        };
        let Ok((result, _)) = signed.verify() else {
            return Ok(None);
        };
        if result.job != *id || !result.completed() {
            return Ok(None);
        }
        if !self.node.cas().has(result.outputs).await? {
            return Ok(None);
        }
        Ok(Some(result))
    }

    /// Runs `prepared` again where `target` says, keeping its result out
    /// of the memo and the job records, here and on its executor.
    async fn run_check(
        &self,
        prepared: Prepared,
        target: Option<&Target>,
        signer: Option<Arc<dyn Signer>>,
        stream: Stream<'_>,
    ) -> Result<JobRun, NodeError> {
        let Prepared { doc, roots } = prepared;
        let id = doc.id();
        match target.unwrap_or(&Target::Local) {
            Target::Local => {
                let signer = signer.ok_or_else(|| {
                    JobError::Refused("a local job needs this node's key to sign its result".into())
                })?;
                let executor = self.node.executor();
                // The check's record goes when it ends: the hold keeps
                // the inputs till then.
                let follow = match executor.submit_check(doc, Requester::Local, signer).await? {
                    Taken::Memo(signed) => executor.follow_result(signed, 0, 0)?,
                    Taken::Live => executor.follow(&id, 0, 0),
                };
                let run = self.follow_local(id, follow, stream).await;
                drop(roots);
                run
            }
            target => {
                let net = self.node.online().await?;
                let peer = self.choose(&net.shared, &doc, target).await?;
                self.send(&net.shared, peer, doc, roots, true, true, stream)
                    .await
            }
        }
    }

    /// Each declared output whose object differs between the trees
    /// `memoized` and `checked`; the whole tree (path `.`) when the
    /// declared paths all agree (the trees differ elsewhere).
    async fn diff_outputs(
        &self,
        declared: &[String],
        memoized: Hash,
        checked: Hash,
    ) -> Result<Vec<OutputDiff>, NodeError> {
        let mut out = Vec::new();
        for path in declared {
            let old = self.lookup(memoized, path).await?;
            let new = self.lookup(checked, path).await?;
            if old != new {
                out.push(OutputDiff {
                    path: path.clone(),
                    memoized: old.map(|h| h.to_hex().to_string()),
                    checked: new.map(|h| h.to_hex().to_string()),
                });
            }
        }
        if out.is_empty() {
            out.push(OutputDiff {
                path: ".".into(),
                memoized: Some(memoized.to_hex().to_string()),
                checked: Some(checked.to_hex().to_string()),
            });
        }
        Ok(out)
    }

    /// The object at `path` inside the tree `root`, if there is one.
    async fn lookup(&self, root: Hash, path: &str) -> Result<Option<Hash>, NodeError> {
        let mut hash = root;
        for name in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            let tree = match self.node.cas().read_tree(hash).await {
                Ok(tree) => tree,
                Err(clive_cas::CasError::NotATree(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            match tree.entries().iter().find(|e| e.name == name) {
                Some(entry) => hash = entry.hash,
                None => return Ok(None),
            }
        }
        Ok(Some(hash))
    }
}
