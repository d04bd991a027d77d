//! Running a pipeline (`job run`): its steps in dependency order, the steps
//! of one level at once (each dispatched by its own `on`), each an ordinary
//! job memoized by its own id, so a step whose inputs did not change is a
//! memo hit (early cutoff). Every line a step prints is prefixed by its
//! name; the first step that fails stops what has not started yet.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use clive_cas::Hash;
use clive_trust::Signer;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::{JobRun, JobsHandle, Output, Stream};
use crate::{
    NodeError,
    jobs::{
        JobError,
        pipeline::{Pipeline, Step},
        platform::Target,
    },
};

/// The longest line of a step's output held at once, in bytes.
const MAX_LINE: u64 = 64 * 1024;
/// Bytes buffered between a step and the prefixing of its lines.
pub(super) const STEP_PIPE: usize = 64 * 1024;

/// One step as `job run` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRun {
    /// The step's name.
    pub step: String,
    /// How its job ended (whether it ran or was a memo hit).
    pub run: JobRun,
}

/// A pipeline as `job run` reports it: the plan, then each step that ran
/// or was a memo hit, and the step that failed, if one did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineRun {
    /// The steps in dependency levels (each level's steps ran at once).
    pub plan: Vec<Vec<String>>,
    /// Each step that ended, in plan order.
    pub steps: Vec<StepRun>,
    /// The step that failed, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<FailedStep>,
}

/// The step that stopped a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedStep {
    /// The step.
    pub step: String,
    /// Its exit code, when it ran and exited non-zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why, when it could not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl FailedStep {
    /// Step `step` ran and exited with `code`.
    pub(super) fn exited(step: String, code: i32) -> FailedStep {
        FailedStep {
            step,
            exit_code: Some(code),
            reason: None,
        }
    }

    /// Step `step` could not run, for `why`.
    pub(super) fn refused(step: String, why: &NodeError) -> FailedStep {
        FailedStep {
            step,
            exit_code: None,
            reason: Some(why.to_string()),
        }
    }
}

impl JobsHandle<'_> {
    /// Runs `pipeline`: level after level, the steps of a level at once,
    /// each where its own `on` (or `on`, which overrides every step's)
    /// says; step outputs feed the steps that read them. With `out_dir`,
    /// each step's outputs are written to `out_dir/STEP`.
    pub async fn run_pipeline(
        &self,
        pipeline: &Pipeline,
        on: Option<&Target>,
        no_cache: bool,
        signer: Option<Arc<dyn Signer>>,
        out_dir: Option<&Path>,
        mut stream: Stream<'_>,
    ) -> Result<PipelineRun, NodeError> {
        if let Some(dir) = out_dir {
            self.node.home().check_destination(dir)?;
            std::fs::create_dir_all(dir)
                .map_err(|e| NodeError::io(format!("creating {}", dir.display()), e))?;
        }
        let plan = pipeline.order();
        let names = self.resolve_inputs(pipeline).await;
        let mut report = PipelineRun {
            plan: plan.clone(),
            steps: Vec::new(),
            failed: None,
        };
        let mut upstream: BTreeMap<String, Hash> = BTreeMap::new();
        for level in &plan {
            let steps: Vec<(&String, &Step)> = level
                .iter()
                .filter_map(|name| pipeline.step(name).map(|s| (name, s)))
                .collect();
            let ended = self
                .run_level(
                    &steps,
                    &upstream,
                    &names,
                    on,
                    no_cache,
                    &signer,
                    out_dir,
                    &mut stream,
                )
                .await?;
            for (name, ended) in ended {
                match ended {
                    Ok(run) if run.exit_code() == 0 => {
                        upstream.insert(name.clone(), run.result.outputs);
                        report.steps.push(StepRun { step: name, run });
                    }
                    Ok(run) => {
                        let code = run.exit_code();
                        report.steps.push(StepRun {
                            step: name.clone(),
                            run,
                        });
                        report.failed.get_or_insert(FailedStep::exited(name, code));
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

    /// Runs the steps of one level at once; each step's output lines are
    /// prefixed by its name as they come. Steps the memo answers with
    /// nothing to replay are answered first, without pipes.
    #[allow(clippy::too_many_arguments)]
    async fn run_level(
        &self,
        steps: &[(&String, &Step)],
        upstream: &BTreeMap<String, Hash>,
        names: &super::Resolved,
        on: Option<&Target>,
        no_cache: bool,
        signer: &Option<Arc<dyn Signer>>,
        out_dir: Option<&Path>,
        stream: &mut Stream<'_>,
    ) -> Result<Vec<(String, Result<JobRun, NodeError>)>, NodeError> {
        let prepared = n0_future::join_all(steps.iter().map(|(name, step)| async move {
            let dir = out_dir.map(|d| d.join(name.as_str()));
            let prepared = async {
                let mut spec = step.spec(upstream).map_err(JobError::from)?;
                if let Some(on) = on {
                    spec.on = Some(on.clone());
                }
                let doc = self.document_with(&spec, names).await?;
                if !no_cache && let Some(run) = self.quiet_memo_hit(&doc, dir.as_deref()).await? {
                    return Ok(Err(run));
                }
                Ok(Ok((spec.on, doc)))
            }
            .await;
            ((*name).clone(), dir, prepared)
        }))
        .await;
        let mut ended = Vec::new();
        let mut runs = Vec::new();
        let mut readers = Vec::new();
        for (name, dir, prepared) in prepared {
            let (target, prepared) = match prepared {
                Ok(Ok(to_run)) => to_run,
                Ok(Err(hit)) => {
                    ended.push((name, Ok(hit)));
                    continue;
                }
                Err(e) => {
                    ended.push((name, Err(e)));
                    continue;
                }
            };
            let (out_w, out_r) = tokio::io::duplex(STEP_PIPE);
            let (err_w, err_r) = tokio::io::duplex(STEP_PIPE);
            readers.push((name.clone(), out_r, err_r));
            let cancel = stream.cancel.clone();
            runs.push(async move {
                let mut out_w = out_w;
                let mut err_w = err_w;
                let ran = async {
                    let stream = Stream {
                        out: Output {
                            stdout: &mut out_w,
                            stderr: &mut err_w,
                        },
                        cancel,
                    };
                    self.run(
                        prepared,
                        target.as_ref(),
                        no_cache,
                        signer.clone(),
                        dir.as_deref(),
                        stream,
                    )
                    .await
                }
                .await;
                (name, ran)
            });
        }
        if !runs.is_empty() {
            let all = n0_future::join_all(runs);
            let out = &mut stream.out;
            let prefixing = prefix_lines(readers, out);
            let (ran, prefixed) = tokio::join!(all, prefixing);
            prefixed?;
            ended.extend(ran);
        }
        // In the level's order, as the plan lists them.
        ended.sort_by_key(|(name, _)| steps.iter().position(|(n, _)| *n == name));
        Ok(ended)
    }
}

/// Copies each step's output to `out`, a line at a time, each line
/// prefixed by the step's name, until every step's pipes are closed.
pub(super) async fn prefix_lines<R: AsyncRead + Unpin + Send + 'static>(
    readers: Vec<(String, R, R)>,
    out: &mut Output<'_>,
) -> Result<(), NodeError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Vec<u8>)>(64);
    let mut tasks = Vec::new();
    for (name, out_r, err_r) in readers {
        for (stream, reader) in [(0, out_r), (1, err_r)] {
            let tx = tx.clone();
            let name = name.clone();
            tasks.push(n0_future::task::AbortOnDropHandle::new(tokio::spawn(
                async move {
                    let mut lines = BufReader::new(reader);
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        // A longer line is cut into lines of MAX_LINE bytes.
                        let mut capped = (&mut lines).take(MAX_LINE);
                        match capped.read_until(b'\n', &mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {
                                if !line.ends_with(b"\n") {
                                    line.push(b'\n');
                                }
                                let mut prefixed = format!("{name} | ").into_bytes();
                                prefixed.extend_from_slice(&line);
                                if tx.send((stream, prefixed)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                },
            )));
        }
    }
    drop(tx);
    while let Some((stream, bytes)) = rx.recv().await {
        let w: &mut (dyn AsyncWrite + Unpin + Send) = if stream == 0 {
            &mut *out.stdout
        } else {
            &mut *out.stderr
        };
        w.write_all(&bytes)
            .await
            .map_err(|e| NodeError::io("writing a step's output", e))?;
        w.flush()
            .await
            .map_err(|e| NodeError::io("writing a step's output", e))?;
    }
    Ok(())
}
