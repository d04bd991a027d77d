//! `JOB.toml`: a job as a person writes it, what `job submit` reads (and
//! what pipeline steps reuse). It becomes a [`JobDoc`] once its inputs are
//! added or resolved ([`JobSpec::doc`]).
//!
//! # Format version 1
//!
//! ```toml
//! version = 1                      # optional; only 1 exists
//! argv = ["make", "test"]          # required, non-empty
//! workdir = "src"                  # relative to the job directory; default "" (it)
//! outputs = ["app", "out/log"]     # relative to workdir
//! timeout = "10m"                  # default 1h (DEFAULT_TIMEOUT), at most 7 days
//! sandbox = "landlock"             # the least level: none (default), landlock, isolated
//! on = "os=macos,arch=aarch64"     # local | PEER | requirements (see `platform`)
//!
//! [inputs]                         # MOUNT = SOURCE
//! src = "./src"                    # a path: starts with ./ ../ or /; relative to this file's directory
//! lib = "<64 hex>"                 # an object already stored
//! tools = "zone/tools"             # a ZONE/NAME, resolved at submission
//!
//! [env]                            # exactly the job's environment (submission adds
//! CC = "cc"                        # a default PATH and TMPDIR=. unless given)
//!
//! [limits]
//! output = "1 GiB"                 # bytes of outputs at most (default 4 GiB)
//! log = "64 MiB"                   # bytes kept per stream (default 64 MiB)
//! ```
//!
//! Sizes are an integer number of bytes, or a number and a unit: `B`,
//! `KiB`, `MiB`, `GiB`, `TiB` (also spelled `K`, `M`, `G`, `T`); units
//! are powers of 1024. Unknown keys are refused, so a typo never goes
//! unnoticed.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use super::{
    document::{
        DocError, Input, JOB_VERSION, JobDoc, Limits, MAX_JOB_LEN, MAX_TIMEOUT_MS, check_path,
        shown,
    },
    platform::{PlatformError, Requirements, Target},
    sandbox::SandboxLevel,
};

/// The timeout of a job that gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// A job as `JOB.toml` (or `exec`'s flags) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// Mount path -> where the input comes from.
    pub inputs: BTreeMap<String, InputSource>,
    /// Exactly the job's environment.
    pub env: BTreeMap<String, String>,
    /// Where the command runs, relative to the job directory.
    pub workdir: String,
    /// Paths collected after the run, relative to the workdir.
    pub outputs: Vec<String>,
    /// How long it may run.
    pub timeout: Duration,
    /// The least sandbox level it needs, if it says.
    pub sandbox: Option<SandboxLevel>,
    /// Where it runs, if it says.
    pub on: Option<Target>,
    /// Size limits.
    pub limits: Limits,
}

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// A file or directory, added at submission: absolute (joined to the base).
    Path(PathBuf),
    /// A hash or `ZONE/NAME`, resolved at submission.
    Object(String),
}

/// Why a `JOB.toml` or an `--input` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobFileError {
    /// Larger than any job file.
    #[error("job file is {0} bytes, more than the {MAX_JOB_LEN} allowed")]
    TooLarge(usize),
    /// Not TOML, a key of the wrong type, or an unknown key.
    #[error("job file: {0}")]
    Toml(String),
    /// A version other than 1.
    #[error("job file version {0} is not supported (only version {JOB_VERSION})")]
    Version(i64),
    /// `argv` is empty.
    #[error("job file argv is empty: there is no command to run")]
    EmptyArgv,
    /// A path (mount, workdir, output) that is not relative and normal.
    #[error("{0}")]
    Path(DocError),
    /// A source that is neither clearly a path nor an object.
    #[error("input {mount} = {value:?}: {value} is a path here; write \"./{value}\" to add it")]
    AmbiguousSource {
        /// The mount.
        mount: String,
        /// The source as written.
        value: String,
    },
    /// An empty source.
    #[error("input {mount} has an empty source (expected a path, a hash or ZONE/NAME)")]
    EmptySource {
        /// The mount.
        mount: String,
    },
    /// `--input` without `=`.
    #[error("--input {0:?} is not MOUNT=PATH|HASH|ZONE/NAME")]
    InputArg(String),
    /// A timeout that does not parse or is out of range.
    #[error("timeout {value:?}: {reason}")]
    Timeout {
        /// As written.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A size that does not parse.
    #[error("{what} {value:?} is not a size (like 1 GiB, 512 MiB or a number of bytes)")]
    Size {
        /// Which limit.
        what: &'static str,
        /// As written (shortened).
        value: String,
    },
    /// A sandbox level that does not exist.
    #[error("{0}")]
    Sandbox(String),
    /// `on` that does not parse.
    #[error("on: {0}")]
    On(#[from] PlatformError),
}

/// A job as a TOML table: every key of `JOB.toml`, before any is checked.
/// A pipeline step is the same table, so the two share this one parser
/// ([`JobTable::spec`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobTable {
    #[serde(default)]
    version: Option<i64>,
    argv: Vec<String>,
    /// Mount -> source as written; a pipeline takes its `step:` sources out
    /// before [`JobTable::spec`] reads the rest.
    #[serde(default)]
    pub(crate) inputs: BTreeMap<String, String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    workdir: String,
    #[serde(default)]
    outputs: Vec<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    sandbox: Option<String>,
    #[serde(default)]
    on: Option<String>,
    #[serde(default)]
    limits: RawLimits,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default)]
    output: Option<toml::Value>,
    #[serde(default)]
    log: Option<toml::Value>,
}

impl JobTable {
    /// The job the table describes, checked as `JOB.toml` is; input paths
    /// are relative to `base`.
    pub(crate) fn spec(self, base: &Path) -> Result<JobSpec, JobFileError> {
        if let Some(v) = self.version.filter(|v| *v != i64::from(JOB_VERSION)) {
            return Err(JobFileError::Version(v));
        }
        let mut inputs = BTreeMap::new();
        for (mount, value) in self.inputs {
            let source = source_in_file(&mount, &value, base)?;
            inputs.insert(mount, source);
        }
        let defaults = Limits::default();
        let spec = JobSpec {
            argv: self.argv,
            inputs,
            env: self.env,
            workdir: self.workdir,
            outputs: self.outputs,
            timeout: match self.timeout {
                Some(t) => parse_timeout(&t)?,
                None => DEFAULT_TIMEOUT,
            },
            sandbox: self
                .sandbox
                .map(|s| s.parse::<SandboxLevel>())
                .transpose()
                .map_err(|e| JobFileError::Sandbox(e.to_string()))?,
            on: self.on.map(|s| s.parse::<Target>()).transpose()?,
            limits: Limits {
                output_bytes: size_value("limits.output", self.limits.output)?
                    .unwrap_or(defaults.output_bytes),
                log_bytes: size_value("limits.log", self.limits.log)?.unwrap_or(defaults.log_bytes),
            },
        };
        spec.check()?;
        Ok(spec)
    }
}

impl JobSpec {
    /// Parses `JOB.toml`; paths are relative to `base`, the file's directory.
    pub fn parse(text: &str, base: &Path) -> Result<JobSpec, JobFileError> {
        if text.len() > MAX_JOB_LEN {
            return Err(JobFileError::TooLarge(text.len()));
        }
        let table: JobTable =
            toml::from_str(text).map_err(|e| JobFileError::Toml(e.to_string()))?;
        table.spec(base)
    }

    /// `MOUNT=PATH|HASH|ZONE/NAME` as `exec --input` spells it: a path when it exists
    /// relative to `cwd` or starts with `./`, `/`, `../`; otherwise an object.
    pub fn parse_input(arg: &str, cwd: &Path) -> Result<(String, InputSource), JobFileError> {
        let (mount, value) = arg
            .split_once('=')
            .ok_or_else(|| JobFileError::InputArg(shown(arg)))?;
        check_path("input mount", mount).map_err(JobFileError::Path)?;
        if value.is_empty() {
            return Err(JobFileError::EmptySource {
                mount: shown(mount),
            });
        }
        let source = if is_path_spelling(value) || cwd.join(value).symlink_metadata().is_ok() {
            InputSource::Path(cwd.join(value))
        } else {
            InputSource::Object(value.to_owned())
        };
        Ok((mount.to_owned(), source))
    }

    /// Checks what can be checked before the inputs are known: a command,
    /// normal paths.
    fn check(&self) -> Result<(), JobFileError> {
        if self.argv.is_empty() {
            return Err(JobFileError::EmptyArgv);
        }
        if !self.workdir.is_empty() {
            check_path("workdir", &self.workdir).map_err(JobFileError::Path)?;
        }
        for output in &self.outputs {
            check_path("output", output).map_err(JobFileError::Path)?;
        }
        Ok(())
    }

    /// The job document, given its inputs as submission resolved them
    /// (`inputs` has the mounts of [`JobSpec::inputs`]); `platform` from
    /// `on` when it names requirements, `sandbox` none unless given,
    /// outputs sorted. The environment is exactly [`JobSpec::env`]: adding
    /// a default `PATH` is the caller's choice. Validated.
    pub fn doc(&self, inputs: BTreeMap<String, Input>) -> Result<JobDoc, DocError> {
        let mut doc = JobDoc {
            version: JOB_VERSION,
            argv: self.argv.clone(),
            env: self.env.clone(),
            inputs,
            workdir: self.workdir.clone(),
            platform: match &self.on {
                Some(Target::Platform(r)) => r.clone(),
                _ => Requirements::default(),
            },
            timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            outputs: self.outputs.clone(),
            limits: self.limits,
            sandbox: self.sandbox.unwrap_or_default(),
        };
        doc.normalize();
        doc.validate()?;
        Ok(doc)
    }
}

fn is_path_spelling(value: &str) -> bool {
    value == "."
        || value == ".."
        || value.starts_with("./")
        || value.starts_with("../")
        || value.starts_with('/')
}

fn source_in_file(mount: &str, value: &str, base: &Path) -> Result<InputSource, JobFileError> {
    check_path("input mount", mount).map_err(JobFileError::Path)?;
    if value.is_empty() {
        return Err(JobFileError::EmptySource {
            mount: shown(mount),
        });
    }
    if is_path_spelling(value) {
        return Ok(InputSource::Path(base.join(value)));
    }
    if clive_cas::parse_hash(value).is_err() && base.join(value).symlink_metadata().is_ok() {
        return Err(JobFileError::AmbiguousSource {
            mount: shown(mount),
            value: shown(value),
        });
    }
    Ok(InputSource::Object(value.to_owned()))
}

/// Parses a timeout such as `10m`, `1h 30m` or `90s`: more than zero, at most 7 days.
pub fn parse_timeout(s: &str) -> Result<Duration, JobFileError> {
    let err = |reason: String| JobFileError::Timeout {
        value: shown(s),
        reason,
    };
    let d = clive_trust::clock::parse_duration(s).map_err(err)?;
    if d.is_zero() || d.as_millis() > u128::from(MAX_TIMEOUT_MS) {
        return Err(err("it must be more than zero and at most 7 days".into()));
    }
    Ok(d)
}

/// Parses a size such as `1 GiB`, `512MiB`, `64K` or `1000` (bytes).
pub fn parse_size(what: &'static str, s: &str) -> Result<u64, JobFileError> {
    crate::jobs::size::parse_size(s).ok_or_else(|| JobFileError::Size {
        what,
        value: shown(s),
    })
}

fn size_value(what: &'static str, value: Option<toml::Value>) -> Result<Option<u64>, JobFileError> {
    match value {
        None => Ok(None),
        Some(toml::Value::String(s)) => parse_size(what, &s).map(Some),
        Some(toml::Value::Integer(n)) => {
            u64::try_from(n).map(Some).map_err(|_| JobFileError::Size {
                what,
                value: n.to_string(),
            })
        }
        Some(other) => Err(JobFileError::Size {
            what,
            value: shown(&other.to_string()),
        }),
    }
}

#[cfg(test)]
#[path = "jobfile_tests.rs"]
mod tests;
