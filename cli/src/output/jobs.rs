//! How the jobs replies print. A job's own output has gone to standard
//! output and error as it ran, so what `exec`, `job submit` and `job
//! attach` add (how it ended) goes to standard error in text form; with
//! `--json` the whole run prints on standard output.

use std::io::{self, Write};

use anyhow::Result;
use clive_node::{
    api::{JobReply, ResultInfo},
    dispatch::{self, JobInfo, JobRun, PipelineCheck, PipelineRun, Verdict, WatchEnded},
    jobs::watches::WatchInfo,
};

use super::{Out, Render, short};

/// Prints a [`JobReply`].
pub(super) fn reply(out: &Out, reply: &JobReply) -> Result<()> {
    match reply {
        JobReply::Ran(run) if out.is_json() => out.show(run),
        JobReply::Ran(run) => {
            let mut stderr = io::stderr().lock();
            run.text(&mut stderr)?;
            Ok(())
        }
        JobReply::Pipeline(run) if out.is_json() => out.show(run),
        JobReply::Pipeline(run) => {
            let mut stderr = io::stderr().lock();
            run.text(&mut stderr)?;
            Ok(())
        }
        JobReply::Checked(check) if out.is_json() => out.show(check),
        JobReply::Checked(check) => {
            let mut stderr = io::stderr().lock();
            check.text(&mut stderr)?;
            Ok(())
        }
        JobReply::Watched(x) if out.is_json() => out.show(x),
        JobReply::Watched(x) => {
            let mut stderr = io::stderr().lock();
            x.text(&mut stderr)?;
            Ok(())
        }
        JobReply::Detached(x) => out.show(&Detached(x)),
        JobReply::Watches(x) => out.show(x),
        JobReply::Unwatched(x) => out.show(&Unwatched(x)),
        JobReply::Jobs(x) => out.show(x),
        JobReply::Status(x) => out.show(x),
        JobReply::Logged => Ok(()),
        JobReply::Cancelled { id } => out.show(&Cancelled(id)),
        JobReply::Result(x) => out.show(x),
    }
}

/// `exec`: one line on standard error, e.g.
/// `job 3f2a9c0d41b7e8aa on local: exit 0 (memo hit)`.
impl Render for JobRun {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let id = self.id.to_string();
        let on = if self.executor == "local" {
            "local".to_owned()
        } else {
            clive_node::clive_trust::PublicIdentity::parse(&self.executor)
                .map(|k| k.fingerprint())
                .unwrap_or_else(|_| self.executor.clone())
        };
        let mut notes = Vec::new();
        if self.memo_hit {
            notes.push("memo hit".to_owned());
        }
        if !self.result.missing_outputs.is_empty() {
            notes.push(format!(
                "missing outputs: {}",
                self.result.missing_outputs.join(" ")
            ));
        }
        if self.result.logs_truncated {
            notes.push("logs truncated".to_owned());
        }
        if let Some(dir) = &self.written {
            notes.push(format!("outputs in {}", dir.display()));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        let code = self.exit_code();
        let status = if code == 0 {
            dispatch::ending(&self.result)
        } else {
            format!("{} (exit code {code})", dispatch::ending(&self.result))
        };
        writeln!(out, "job {} on {on}: {status}{notes}", short(&id))
    }
}

/// `job run`: a line per step (ran, or memo hit), then the failed step.
impl Render for PipelineRun {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for line in self.summary_lines() {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

/// `job run --watch`, once stopped (its lines went to standard error as
/// it ran; this says it ended).
impl Render for WatchEnded {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let s = if self.runs == 1 { "" } else { "s" };
        writeln!(out, "watch {} ended after {} run{s}", self.id, self.runs)
    }
}

/// `job run --watch --detach`: the watch's id, and how to stop it.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Detached<'a>(&'a WatchInfo);

impl Render for Detached<'_> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.0.id)?;
        // The id alone on standard output, for scripts; the note beside it.
        writeln!(
            io::stderr(),
            "watch {} runs in the daemon (its output goes to the daemon's log); \
             `clive-node job unwatch {}` stops it",
            self.0.id,
            short(&self.0.id)
        )
    }
}

/// `job unwatch`.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Unwatched<'a>(&'a WatchInfo);

impl Render for Unwatched<'_> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let s = if self.0.runs == 1 { "" } else { "s" };
        writeln!(
            out,
            "stopped watch {} of {} after {} run{s}",
            self.0.id,
            self.0.file.display(),
            self.0.runs
        )
    }
}

/// `job watches`: one line each.
impl Render for Vec<WatchInfo> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.is_empty() {
            return writeln!(out, "no watches");
        }
        for w in self {
            let how = if w.detached { "detached" } else { "attached" };
            let s = if w.runs == 1 { "" } else { "s" };
            let last = w
                .last_event
                .as_deref()
                .map(|e| format!("  last: {e}"))
                .unwrap_or_default();
            writeln!(
                out,
                "{}  {how:<8}  since {}  {} run{s}  {}{last}",
                w.id,
                w.started,
                w.runs,
                w.file.display()
            )?;
        }
        Ok(())
    }
}

/// `job run --check`: a line per step (reproducible, not, or nothing to
/// compare), a line per output that differs, then the steps not
/// reproducible and the failed step.
impl Render for PipelineCheck {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for step in &self.steps {
            let id = step.id.to_string();
            let job = short(&id);
            match step.verdict {
                Verdict::Reproducible => {
                    writeln!(out, "step {}: reproducible (job {job})", step.step)?
                }
                Verdict::NoMemo => {
                    let how = if step.run.memo_hit { "memo hit" } else { "ran" };
                    writeln!(
                        out,
                        "step {}: no memo to compare; {how}, {} (job {job})",
                        step.step,
                        dispatch::ending(&step.run.result)
                    )?
                }
                Verdict::NotReproducible => {
                    writeln!(out, "step {}: NOT reproducible (job {job})", step.step)?;
                    if let Some(code) = step.memoized_exit_code
                        && code != step.run.exit_code()
                    {
                        writeln!(
                            out,
                            "  exit code: memoized {code}, now {}",
                            step.run.exit_code()
                        )?;
                    }
                    for diff in &step.differs {
                        let shown =
                            |h: &Option<String>| h.clone().unwrap_or_else(|| "(not made)".into());
                        writeln!(
                            out,
                            "  {}: memoized {}, now {}",
                            diff.path,
                            shown(&diff.memoized),
                            shown(&diff.checked)
                        )?;
                    }
                }
            }
        }
        if !self.not_reproducible.is_empty() {
            writeln!(
                out,
                "not reproducible: {}",
                self.not_reproducible.join(", ")
            )?;
        }
        if let Some(failed) = &self.failed {
            match (&failed.exit_code, &failed.reason) {
                (_, Some(reason)) => writeln!(out, "step {} failed: {reason}", failed.step)?,
                (Some(code), None) => {
                    writeln!(out, "step {} failed with exit code {code}", failed.step)?
                }
                (None, None) => writeln!(out, "step {} failed", failed.step)?,
            }
        }
        Ok(())
    }
}

/// `job ls`: one line each.
impl Render for Vec<JobInfo> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.is_empty() {
            return writeln!(out, "no jobs");
        }
        for job in self {
            writeln!(out, "{}", job_line(job))?;
        }
        Ok(())
    }
}

fn job_line(job: &JobInfo) -> String {
    let id = job.id.to_string();
    let side = match job.side {
        clive_node::jobs::records::Side::Run => "ran here",
        clive_node::jobs::records::Side::Sent if job.device => "device",
        clive_node::jobs::records::Side::Sent => "sent",
    };
    let exit = job
        .exit_code
        .map(|c| format!(" exit {c}"))
        .unwrap_or_default();
    format!(
        "{}  {:<11} {side:<8} {}{exit}  {}",
        short(&id),
        job.state.as_str(),
        job.submitted,
        job.argv.join(" ")
    )
}

/// `job status`.
impl Render for JobInfo {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "job {}", self.id)?;
        writeln!(out, "state: {}", self.state.as_str())?;
        let who = match self.side {
            clive_node::jobs::records::Side::Run if self.peer.is_empty() => {
                "run here for this node".to_owned()
            }
            clive_node::jobs::records::Side::Run => format!("run here for {}", self.peer),
            clive_node::jobs::records::Side::Sent if self.device => {
                format!("run for itself by this node's own device {}", self.peer)
            }
            clive_node::jobs::records::Side::Sent => format!("sent to {}", self.peer),
        };
        writeln!(out, "where: {who}")?;
        writeln!(out, "submitted: {}", self.submitted)?;
        writeln!(out, "command: {}", self.argv.join(" "))?;
        if let Some(code) = self.exit_code {
            writeln!(out, "exit code: {code}")?;
        }
        if let Some(reason) = &self.reason {
            writeln!(out, "reason: {reason}")?;
        }
        Ok(())
    }
}

/// `job cancel`.
#[derive(serde::Serialize)]
struct Cancelled<'a>(&'a str);

impl Render for Cancelled<'_> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "cancelled job {}", self.0)
    }
}

/// `job result`: the signed document and its signature (or where `-o` wrote them).
impl Render for ResultInfo {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        match &self.written {
            Some(path) => writeln!(
                out,
                "wrote {} and {}.sig (check with `ssh-keygen -Y verify -n clive-result`)",
                path.display(),
                path.display()
            ),
            None => write!(out, "{}\n{}", self.document, self.signature),
        }
    }
}
