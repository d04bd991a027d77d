//! Job documents: what a job is, canonical and versioned; its id is the
//! BLAKE3 hash of its canonical bytes.
//!
//! # Format version 1
//!
//! Canonical JSON: one object, keys sorted by byte, no white space, strings
//! escaped as `serde_json` writes them (`"`, `\` and control characters),
//! integers only. [`JobDoc::encode`] writes exactly this, and the job id is
//! BLAKE3 of exactly those bytes. [`JobDoc::decode`] accepts any key order
//! (the id is of the re-encoding), but nothing else:
//!
//! ```text
//! {"argv":["make","test"],                 the command; non-empty
//!  "env":{"PATH":"/usr/bin:/bin"},          exactly the job's environment
//!  "inputs":{"src":{"hash":"<64 hex>",      mount path -> blob or tree
//!                   "name":"zone/tools"}},  (name: the ZONE/NAME it was resolved from, optional)
//!  "limits":{"log_bytes":67108864,          bytes kept of each of stdout and stderr
//!            "output_bytes":4294967296},    bytes of outputs at most, together
//!  "outputs":["out/app"],                   relative to workdir, sorted, no repeats
//!  "platform":{"os":"macos"},               requirements (see `platform`)
//!  "sandbox":"landlock",                    the least level it needs: none, landlock, isolated
//!  "timeout_ms":600000,                     1 ms to 7 days
//!  "version":1,
//!  "workdir":"src"}                         relative to the job directory; "" = it
//! ```
//!
//! Every field is required except an input's `name` and the platform's
//! (see `platform`); unknown fields and versions other than 1 are refused,
//! as is a document over [`MAX_JOB_LEN`] bytes, and everything
//! [`JobDoc::validate`] refuses.
//!
//! Paths (input mounts, `workdir`, outputs) are relative and normal: `/`
//! between non-empty components, none of them `.` or `..`, no backslash,
//! no NUL, at most [`MAX_PATH_LEN`] bytes. Inputs are staged read-only, so
//! no mount may lie inside another, the workdir may not lie inside (or be)
//! a mount, and no output may lie inside a mount.

use std::{collections::BTreeMap, fmt, str::FromStr};

use clive_cas::Hash;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    platform::{PlatformError, Requirements},
    sandbox::SandboxLevel,
};

/// The format version this code writes and reads.
pub const JOB_VERSION: u32 = 1;
/// Largest encoded job document accepted, in bytes.
pub const MAX_JOB_LEN: usize = 256 * 1024;
/// Most argv entries.
pub const MAX_ARGS: usize = 4096;
/// Longest argv entry, environment key or value, in bytes (Linux's own
/// limit on one argument).
pub const MAX_ARG_LEN: usize = 128 * 1024;
/// Most environment variables.
pub const MAX_ENV: usize = 4096;
/// Most inputs.
pub const MAX_INPUTS: usize = 4096;
/// Most outputs.
pub const MAX_OUTPUTS: usize = 4096;
/// Longest path (mount, workdir, output), in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Longest component of a path, in bytes.
pub const MAX_COMPONENT_LEN: usize = 255;
/// Longest `ZONE/NAME` an input keeps beside its hash, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest timeout: 7 days, in milliseconds.
pub const MAX_TIMEOUT_MS: u64 = 7 * 24 * 3600 * 1000;

/// A job: what to run, on what, with what, under which limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDoc {
    /// Format version: [`JOB_VERSION`].
    pub version: u32,
    /// The command and its arguments; non-empty, bounded, no NUL.
    pub argv: Vec<String>,
    /// Exactly the job's environment; keys have no `=` or NUL.
    pub env: BTreeMap<String, String>,
    /// Mount path (relative, normalised) -> the object staged there.
    pub inputs: BTreeMap<String, Input>,
    /// Where the command runs, relative to the job directory; "" = the job directory.
    pub workdir: String,
    /// Platform requirements.
    pub platform: Requirements,
    /// How long it may run, in milliseconds (> 0, at most [`MAX_TIMEOUT_MS`]).
    pub timeout_ms: u64,
    /// Paths collected after the run, relative to the workdir; sorted, no repeats.
    pub outputs: Vec<String>,
    /// Size limits.
    pub limits: Limits,
    /// The least sandbox level the job needs.
    pub sandbox: SandboxLevel,
}

/// One input: an object, and the name it was resolved from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The blob or tree staged at the mount.
    #[serde(with = "clive_cas::hash::serde_hex")]
    pub hash: Hash,
    /// The `ZONE/NAME` it was resolved from, kept for people (the hash is what counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Size limits of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Bytes of outputs at most, all together.
    pub output_bytes: u64,
    /// Bytes kept of each of stdout and stderr; the rest is dropped.
    pub log_bytes: u64,
}

impl Default for Limits {
    /// Outputs 4 GiB, logs 64 MiB per stream.
    fn default() -> Self {
        Limits {
            output_bytes: 4 << 30,
            log_bytes: 64 << 20,
        }
    }
}

/// The id of a job: BLAKE3 of its canonical encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(#[serde(with = "clive_cas::hash::serde_hex")] pub Hash);

impl fmt::Display for JobId {
    /// 64 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0.to_hex())
    }
}

impl FromStr for JobId {
    type Err = DocError;

    /// 64 hex digits.
    fn from_str(s: &str) -> Result<JobId, DocError> {
        clive_cas::parse_hash(s)
            .map(JobId)
            .map_err(|_| DocError::BadId(shown(s)))
    }
}

/// What is wrong with a path of a job document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    /// It is empty.
    #[error("is empty")]
    Empty,
    /// It starts with `/`.
    #[error("is absolute")]
    Absolute,
    /// A `..` component.
    #[error("has a '..' component")]
    DotDot,
    /// A `.` component.
    #[error("has a '.' component")]
    Dot,
    /// Two `/` in a row, or one at the end.
    #[error("has an empty component")]
    EmptyComponent,
    /// A NUL byte.
    #[error("contains a NUL byte")]
    Nul,
    /// A backslash.
    #[error("contains a backslash")]
    Backslash,
    /// Over [`MAX_PATH_LEN`] bytes, or a component over [`MAX_COMPONENT_LEN`].
    #[error("is too long")]
    TooLong,
}

/// Why a job document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// Larger than [`MAX_JOB_LEN`].
    #[error("job document is {len} bytes, more than the {MAX_JOB_LEN} allowed")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not JSON, a field missing or of the wrong type, or an unknown field.
    #[error("malformed job document: {0}")]
    Malformed(String),
    /// A version this code does not know.
    #[error("job document version {0} is not supported (only version {JOB_VERSION})")]
    UnknownVersion(u64),
    /// `argv` is empty.
    #[error("job document has an empty argv: there is no command to run")]
    EmptyArgv,
    /// A list or map with too many entries.
    #[error("job document has {count} {what}, more than the {max} allowed")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// How many it has.
        count: usize,
        /// How many are allowed.
        max: usize,
    },
    /// A string over its limit.
    #[error("job document {what} is {len} bytes, more than the {max} allowed")]
    TooLong {
        /// Which string.
        what: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A NUL byte in an argument or the environment.
    #[error("job document {what} contains a NUL byte")]
    Nul {
        /// Where.
        what: String,
    },
    /// An environment key that is empty or contains `=`.
    #[error("job document environment key {0:?} is empty or contains '='")]
    EnvKey(String),
    /// A path that is not relative and normal.
    #[error("job document {what} {path:?} {problem}")]
    Path {
        /// `input mount`, `workdir` or `output`.
        what: &'static str,
        /// The path (shortened).
        path: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// An input mounted inside another.
    #[error("job document input {inner:?} is mounted inside input {outer:?}")]
    NestedInputs {
        /// The enclosing mount.
        outer: String,
        /// The mount inside it.
        inner: String,
    },
    /// The workdir is (inside) a read-only input.
    #[error(
        "job document workdir {workdir:?} is inside input {input:?}, which is staged read-only"
    )]
    WorkdirInInput {
        /// The workdir.
        workdir: String,
        /// The input.
        input: String,
    },
    /// An output is (inside) a read-only input.
    #[error("job document output {output:?} is inside input {input:?}, which is staged read-only")]
    OutputInInput {
        /// The output, relative to the workdir.
        output: String,
        /// The input.
        input: String,
    },
    /// The outputs are not sorted, or one repeats.
    #[error("job document outputs are not sorted or repeat a path")]
    OutputsNotSorted,
    /// A `name` beside an input hash that is empty, too long or has control characters.
    #[error(
        "job document input {mount:?} has a name that is empty, over {MAX_NAME_LEN} bytes or has control characters"
    )]
    InputName {
        /// The mount.
        mount: String,
    },
    /// Zero or over [`MAX_TIMEOUT_MS`].
    #[error("job document timeout of {0} ms is not between 1 ms and 7 days")]
    Timeout(u64),
    /// Malformed platform requirements.
    #[error("job document platform: {0}")]
    Platform(#[from] PlatformError),
    /// Not a job id.
    #[error("{0:?} is not a job id: expected 64 hex digits")]
    BadId(String),
}

impl JobDoc {
    /// The canonical bytes (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        canonical_json(self)
    }

    /// Decodes a document: bounded, known version, no unknown field, valid.
    pub fn decode(bytes: &[u8]) -> Result<JobDoc, DocError> {
        if bytes.len() > MAX_JOB_LEN {
            return Err(DocError::TooLarge { len: bytes.len() });
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| DocError::Malformed(e.to_string()))?;
        match versioned(&value) {
            Ok(v) if v == u64::from(JOB_VERSION) => {}
            Ok(v) => return Err(DocError::UnknownVersion(v)),
            Err(e) => return Err(DocError::Malformed(e)),
        }
        let doc: JobDoc =
            serde_json::from_value(value).map_err(|e| DocError::Malformed(e.to_string()))?;
        doc.validate()?;
        Ok(doc)
    }

    /// The job's id: BLAKE3 of [`JobDoc::encode`].
    pub fn id(&self) -> JobId {
        JobId(Hash::new(self.encode()))
    }

    /// Sorts and deduplicates the lists a valid document keeps sorted
    /// (outputs, required features, unknown requirements), for a document
    /// built by hand.
    pub fn normalize(&mut self) {
        self.outputs.sort();
        self.outputs.dedup();
        self.platform.features.sort();
        self.platform.features.dedup();
        self.platform.unknown.sort();
        self.platform.unknown.dedup();
    }

    /// Refuses: paths absolute, with `..`, `.` components, empty components, NUL, backslash;
    /// inputs mounted over each other (a and a/b) or at/above the workdir (the workdir
    /// would be inside a read-only input) or at ""; outputs escaping the workdir; outputs
    /// inside an input mount; empty argv; oversize counts. Each a DocError naming the thing.
    pub fn validate(&self) -> Result<(), DocError> {
        if self.version != JOB_VERSION {
            return Err(DocError::UnknownVersion(self.version.into()));
        }
        self.validate_argv_env()?;
        count("inputs", self.inputs.len(), MAX_INPUTS)?;
        for (mount, input) in &self.inputs {
            check_path("input mount", mount)?;
            if let Some(outer) = ancestors(mount).find(|a| self.inputs.contains_key(*a)) {
                return Err(DocError::NestedInputs {
                    outer: shown(outer),
                    inner: shown(mount),
                });
            }
            if let Some(name) = &input.name
                && (name.is_empty()
                    || name.len() > MAX_NAME_LEN
                    || name.chars().any(char::is_control))
            {
                return Err(DocError::InputName {
                    mount: shown(mount),
                });
            }
        }
        if !self.workdir.is_empty() {
            check_path("workdir", &self.workdir)?;
            if let Some(input) = self.mount_holding(&self.workdir) {
                return Err(DocError::WorkdirInInput {
                    workdir: shown(&self.workdir),
                    input: shown(input),
                });
            }
        }
        count("outputs", self.outputs.len(), MAX_OUTPUTS)?;
        for output in &self.outputs {
            check_path("output", output)?;
            let full = if self.workdir.is_empty() {
                output.clone()
            } else {
                format!("{}/{output}", self.workdir)
            };
            if let Some(input) = self.mount_holding(&full) {
                return Err(DocError::OutputInInput {
                    output: shown(output),
                    input: shown(input),
                });
            }
        }
        if !self.outputs.is_sorted_by(|a, b| a < b) {
            return Err(DocError::OutputsNotSorted);
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(DocError::Timeout(self.timeout_ms));
        }
        self.platform.validate()?;
        Ok(())
    }

    fn validate_argv_env(&self) -> Result<(), DocError> {
        if self.argv.is_empty() {
            return Err(DocError::EmptyArgv);
        }
        count("argv entries", self.argv.len(), MAX_ARGS)?;
        for (i, arg) in self.argv.iter().enumerate() {
            let what = || format!("argv[{i}]");
            string(what, arg)?;
        }
        count("environment variables", self.env.len(), MAX_ENV)?;
        for (key, value) in &self.env {
            if key.is_empty() || key.contains('=') {
                return Err(DocError::EnvKey(shown(key)));
            }
            string(|| format!("environment key {:?}", shown(key)), key)?;
            string(|| format!("environment variable {:?}", shown(key)), value)?;
        }
        Ok(())
    }

    /// The input mounted at `path` or at one of its ancestors.
    fn mount_holding<'a>(&'a self, path: &'a str) -> Option<&'a str> {
        std::iter::once(path)
            .chain(ancestors(path))
            .find(|p| self.inputs.contains_key(*p))
    }
}

/// The proper ancestors of a relative path: `a/b/c` -> `a/b`, `a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.rmatch_indices('/').map(|(at, _)| &path[..at])
}

fn count(what: &'static str, count: usize, max: usize) -> Result<(), DocError> {
    if count > max {
        return Err(DocError::TooMany { what, count, max });
    }
    Ok(())
}

fn string(what: impl Fn() -> String, s: &str) -> Result<(), DocError> {
    if s.len() > MAX_ARG_LEN {
        return Err(DocError::TooLong {
            what: what(),
            len: s.len(),
            max: MAX_ARG_LEN,
        });
    }
    if s.contains('\0') {
        return Err(DocError::Nul { what: what() });
    }
    Ok(())
}

/// Checks that `path` is relative and normal (see the module documentation).
pub fn check_path(what: &'static str, path: &str) -> Result<(), DocError> {
    let problem = if path.is_empty() {
        Some(PathProblem::Empty)
    } else if path.len() > MAX_PATH_LEN {
        Some(PathProblem::TooLong)
    } else if path.contains('\0') {
        Some(PathProblem::Nul)
    } else if path.contains('\\') {
        Some(PathProblem::Backslash)
    } else if path.starts_with('/') {
        Some(PathProblem::Absolute)
    } else {
        path.split('/').find_map(|c| match c {
            "" => Some(PathProblem::EmptyComponent),
            "." => Some(PathProblem::Dot),
            ".." => Some(PathProblem::DotDot),
            c if c.len() > MAX_COMPONENT_LEN => Some(PathProblem::TooLong),
            _ => None,
        })
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(DocError::Path {
            what,
            path: shown(path),
            problem,
        }),
    }
}

/// At most 80 characters of outside input, for an error message.
pub(crate) fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// The `version` field of a decoded document, or why there is none.
pub(crate) fn versioned(value: &Value) -> Result<u64, String> {
    let Value::Object(map) = value else {
        return Err("expected a JSON object".into());
    };
    match map.get("version") {
        None => Err("missing field `version`".into()),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| "field `version` is not a non-negative integer".into()),
    }
}

/// Canonical JSON of `value`: keys sorted, no white space (see the module
/// documentation). Only for this module's and `result`'s own types, which
/// always serialize (string keys, no floats).
pub(crate) fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("job types always serialize to JSON");
    let mut out = Vec::new();
    write_canonical(&value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // serde_json writes a scalar one way only: compact, its own escapes.
    out.extend_from_slice(value.to_string().as_bytes());
}

#[cfg(test)]
#[path = "document_tests.rs"]
pub(crate) mod tests;
