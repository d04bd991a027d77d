//! How a pipeline run is told in words: a line per step (ran, or memo
//! hit) and the failed step, as `job run` prints them and as a watch
//! prints them after each of its runs.

use super::{PipelineRun, pipeline::FailedStep};
use crate::jobs::result::{Exit, JobResult};

/// How a job ended, in words: `exit 0`, `killed by signal 9`, `timed
/// out`, `cancelled`.
pub fn ending(result: &JobResult) -> String {
    if result.timed_out {
        return "timed out".into();
    }
    if result.cancelled {
        return "cancelled".into();
    }
    match result.exit {
        Exit::Code(code) => format!("exit {code}"),
        Exit::Signal(signal) => format!("killed by signal {signal}"),
    }
}

/// The first 16 hex digits of an id, as the tool shows ids.
fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

impl PipelineRun {
    /// A line per step that ended (`step sidebar: memo hit, exit 0 (job
    /// 3f2a9c0d41b7e8aa)`), then the failed step's, if one failed.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for step in &self.steps {
            let how = if step.run.memo_hit { "memo hit" } else { "ran" };
            lines.push(format!(
                "step {}: {how}, {} (job {})",
                step.step,
                ending(&step.run.result),
                short(&step.run.id.to_string())
            ));
        }
        if let Some(failed) = &self.failed {
            lines.push(failed_line(failed));
        }
        lines
    }
}

fn failed_line(failed: &FailedStep) -> String {
    match (&failed.exit_code, &failed.reason) {
        (_, Some(reason)) => format!("step {} failed: {reason}", failed.step),
        (Some(code), None) => format!("step {} failed with exit code {code}", failed.step),
        (None, None) => format!("step {} failed", failed.step),
    }
}
