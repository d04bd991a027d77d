//! Job results: what a run did, signed by the executor that ran it.
//!
//! # Format version 1
//!
//! Canonical JSON, as job documents are (see `document`): keys sorted, no
//! white space, integers only. A result is at most [`MAX_RESULT_LEN`]
//! bytes; unknown fields and versions other than 1 are refused.
//!
//! ```text
//! {"cancelled":false,                      cancelled by the requester
//!  "cpu_ms":1234,                          user + system CPU time of the job's processes
//!  "ended":"2026-12-01T14:20:31Z",         RFC 3339, UTC, to the second
//!  "executor":"ssh-ed25519 AAAA...",       the executor's public key line, no comment
//!  "exit":{"code":0},                      or {"signal":9}
//!  "job":"<64 hex>",                       the job id
//!  "logs_truncated":false,                 a stream went over the job's log limit
//!  "missing_outputs":["out/b"],            outputs the job did not make, sorted
//!  "outputs":"<64 hex>",                   the tree of the outputs made
//!  "peak_memory_bytes":1048576,
//!  "platform":{...},                       the executor's platform, as advertised
//!  "sandbox":"landlock",                   the level the job ran under
//!  "started":"2026-12-01T14:20:29Z",
//!  "stderr":"<64 hex>","stderr_bytes":0,   the blobs of the logs kept, and their sizes
//!  "stdout":"<64 hex>","stdout_bytes":12,
//!  "timed_out":false,
//!  "version":1}
//! ```
//!
//! # Signature
//!
//! The executor signs exactly the canonical bytes with SSHSIG under the
//! namespace [`RESULT_NAMESPACE`], so with the result in `result.json`
//! and the armored signature in `result.sig`,
//! `ssh-keygen -Y verify -f allowed_signers -I x -n clive-result -s result.sig < result.json`
//! checks it. [`SignedResult`] carries both; as JSON it is
//! `{"result":"<the canonical result, as a string>","signature":"-----BEGIN SSH SIGNATURE-----\n..."}`.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex, MutexGuard, PoisonError},
};

use clive_cas::Hash;
use clive_trust::{
    PublicIdentity, SigError, Signer, SshSignature, clock::parse_time, sshsig::verify,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    document::{DocError, JobId, MAX_OUTPUTS, canonical_json, check_path, shown, versioned},
    platform::{Platform, PlatformError},
    sandbox::SandboxLevel,
};

/// The SSHSIG namespace of result signatures.
pub const RESULT_NAMESPACE: &str = "clive-result";
/// The format version this code writes and reads.
pub const RESULT_VERSION: u32 = 1;
/// Largest encoded result accepted, in bytes.
pub const MAX_RESULT_LEN: usize = 256 * 1024;
/// Largest armored signature accepted, in bytes.
pub const MAX_SIGNATURE_LEN: usize = 8 * 1024;

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobResult {
    /// Format version: [`RESULT_VERSION`].
    pub version: u32,
    /// The job that ran.
    pub job: JobId,
    /// The executor's OpenSSH public key line, without comment ([`executor_line`]).
    pub executor: String,
    /// The executor's platform, as advertised.
    pub platform: Platform,
    /// The sandbox level the job ran under.
    pub sandbox: SandboxLevel,
    /// How the job's process ended.
    pub exit: Exit,
    /// Killed at its timeout.
    pub timed_out: bool,
    /// Killed because it was cancelled.
    pub cancelled: bool,
    /// The tree of the outputs that were made.
    #[serde(with = "clive_cas::hash::serde_hex")]
    pub outputs: Hash,
    /// Outputs the job did not make, sorted.
    pub missing_outputs: Vec<String>,
    /// The blob of the standard output kept.
    #[serde(with = "clive_cas::hash::serde_hex")]
    pub stdout: Hash,
    /// The blob of the standard error kept.
    #[serde(with = "clive_cas::hash::serde_hex")]
    pub stderr: Hash,
    /// Bytes of standard output kept.
    pub stdout_bytes: u64,
    /// Bytes of standard error kept.
    pub stderr_bytes: u64,
    /// A stream went over the job's log limit; the rest was dropped.
    pub logs_truncated: bool,
    /// When it started (RFC 3339, `clive_trust::clock::format_time`).
    pub started: String,
    /// When it ended.
    pub ended: String,
    /// CPU time of the job's processes, user and system, in milliseconds.
    pub cpu_ms: u64,
    /// The largest resident set of any of its processes, in bytes.
    pub peak_memory_bytes: u64,
}

/// How a job's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// Why a result, or its signature, is refused.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// Larger than [`MAX_RESULT_LEN`] (or the signature than [`MAX_SIGNATURE_LEN`]).
    #[error("job result {what} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// `document` or `signature`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON, a field missing or of the wrong type, or an unknown field.
    #[error("malformed job result: {0}")]
    Malformed(String),
    /// A version this code does not know.
    #[error("job result version {0} is not supported (only version {RESULT_VERSION})")]
    UnknownVersion(u64),
    /// The executor is not a canonical public key line.
    #[error("job result executor {0:?} is not an ssh-ed25519 public key line without comment")]
    Executor(String),
    /// A time that is not RFC 3339 UTC to the second.
    #[error("job result {what} {value:?} is not a UTC RFC 3339 time like 2026-01-02T03:04:05Z")]
    Time {
        /// `started` or `ended`.
        what: &'static str,
        /// The value (shortened).
        value: String,
    },
    /// A signal number outside 1..=127.
    #[error("job result signal {0} is not between 1 and 127")]
    Signal(i32),
    /// A missing output that is no output path, or the list unsorted.
    #[error("job result missing outputs: {0}")]
    MissingOutputs(String),
    /// The platform is malformed.
    #[error("job result platform: {0}")]
    Platform(#[from] PlatformError),
    /// The signed bytes are not the canonical encoding of the result.
    #[error("job result is not in canonical form (it must be exactly what its encoding writes)")]
    NotCanonical,
    /// Signing failed.
    #[error("signing the job result: {0}")]
    Sign(SigError),
    /// The signing key is not the result's executor.
    #[error("the signing key {signer} is not the result's executor {executor}")]
    NotExecutor {
        /// The signing key's fingerprint.
        signer: String,
        /// The executor's fingerprint.
        executor: String,
    },
    /// The signature does not verify.
    #[error("job result signature: {0}")]
    Signature(SigError),
}

/// The executor line of a key: its OpenSSH public key line without comment.
pub fn executor_line(key: &PublicIdentity) -> String {
    PublicIdentity::from_bytes(key.bytes()).openssh_line()
}

impl JobResult {
    /// The canonical bytes (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        canonical_json(self)
    }

    /// Decodes a result: bounded, known version, no unknown field, valid
    /// (see [`JobResult::validate`]). Any key order is accepted here;
    /// [`SignedResult::verify`] accepts only the canonical bytes.
    pub fn decode(bytes: &[u8]) -> Result<JobResult, ResultError> {
        if bytes.len() > MAX_RESULT_LEN {
            return Err(ResultError::TooLarge {
                what: "document",
                len: bytes.len(),
                max: MAX_RESULT_LEN,
            });
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ResultError::Malformed(e.to_string()))?;
        match versioned(&value) {
            Ok(v) if v == u64::from(RESULT_VERSION) => {}
            Ok(v) => return Err(ResultError::UnknownVersion(v)),
            Err(e) => return Err(ResultError::Malformed(e)),
        }
        let result: JobResult =
            serde_json::from_value(value).map_err(|e| ResultError::Malformed(e.to_string()))?;
        result.validate()?;
        Ok(result)
    }

    /// Refuses: another version; an executor that is not a key line
    /// without comment; times not as `format_time` writes them; a signal outside 1..=127; missing outputs that
    /// are not relative normal paths, sorted, at most [`MAX_OUTPUTS`]; a
    /// malformed platform.
    pub fn validate(&self) -> Result<(), ResultError> {
        if self.version != RESULT_VERSION {
            return Err(ResultError::UnknownVersion(self.version.into()));
        }
        self.executor_key()?;
        let time = |what, value: &str| {
            parse_time(value).ok_or_else(|| ResultError::Time {
                what,
                value: shown(value),
            })
        };
        // Not ordered: the executor's clock may step back during a run.
        time("started", &self.started)?;
        time("ended", &self.ended)?;
        if let Exit::Signal(n) = self.exit
            && !(1..=127).contains(&n)
        {
            return Err(ResultError::Signal(n));
        }
        if self.missing_outputs.len() > MAX_OUTPUTS {
            return Err(ResultError::MissingOutputs(format!(
                "more than {MAX_OUTPUTS}"
            )));
        }
        for path in &self.missing_outputs {
            check_path("output", path)
                .map_err(|e: DocError| ResultError::MissingOutputs(e.to_string()))?;
        }
        if !self.missing_outputs.is_sorted_by(|a, b| a < b) {
            return Err(ResultError::MissingOutputs(
                "not sorted, or a path repeats".into(),
            ));
        }
        self.platform.validate()?;
        Ok(())
    }

    /// The executor's key.
    pub fn executor_key(&self) -> Result<PublicIdentity, ResultError> {
        let bad = || ResultError::Executor(shown(&self.executor));
        let key = PublicIdentity::parse(&self.executor).map_err(|_| bad())?;
        if executor_line(&key) != self.executor {
            return Err(bad());
        }
        Ok(key)
    }

    /// Whether the run completed: neither timed out nor cancelled (its
    /// exit status may still be a failure). Only such a result is reused.
    pub fn completed(&self) -> bool {
        !self.timed_out && !self.cancelled
    }

    /// The exit code a CLI reports: code, 128+signal
    pub fn exit_code(&self) -> i32 {
        match self.exit {
            Exit::Code(code) => code,
            Exit::Signal(n) => 128 + n,
        }
    }
}

/// A result and its signature, as stored and as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedResult {
    /// The result's canonical bytes (JSON text, so a string in JSON).
    #[serde(with = "text_bytes")]
    pub result: Vec<u8>,
    /// The armored SSHSIG signature of exactly those bytes.
    pub signature: String,
}

impl SignedResult {
    /// Signs `result` with `signer`, which must be its executor.
    pub fn sign(result: &JobResult, signer: &dyn Signer) -> Result<SignedResult, ResultError> {
        let executor = result.executor_key()?;
        if signer.public().bytes() != executor.bytes() {
            return Err(ResultError::NotExecutor {
                signer: signer.public().fingerprint(),
                executor: executor.fingerprint(),
            });
        }
        let bytes = result.encode();
        let sig = signer
            .sign(RESULT_NAMESPACE, &bytes)
            .map_err(ResultError::Sign)?;
        Ok(SignedResult {
            result: bytes,
            signature: sig.to_armored(),
        })
    }

    /// Decodes, checks the namespace, and that the signature is by `result.executor`.
    pub fn verify(&self) -> Result<(JobResult, PublicIdentity), ResultError> {
        let key = self.cache_key();
        if let Some(verified) = lock_verified().get(&key) {
            return Ok(verified.clone());
        }
        let verified = self.verify_uncached()?;
        let mut cache = lock_verified();
        if cache.len() >= VERIFIED_CACHE {
            cache.clear();
        }
        cache.insert(key, verified.clone());
        Ok(verified)
    }

    /// What [`VERIFIED`] keeps this result's verdict under: the BLAKE3 of
    /// its bytes' length, its bytes and its signature.
    fn cache_key(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&(self.result.len() as u64).to_le_bytes());
        hasher.update(&self.result);
        hasher.update(self.signature.as_bytes());
        *hasher.finalize().as_bytes()
    }

    /// [`SignedResult::verify`] itself, keeping nothing.
    fn verify_uncached(&self) -> Result<(JobResult, PublicIdentity), ResultError> {
        if self.signature.len() > MAX_SIGNATURE_LEN {
            return Err(ResultError::TooLarge {
                what: "signature",
                len: self.signature.len(),
                max: MAX_SIGNATURE_LEN,
            });
        }
        let result = JobResult::decode(&self.result)?;
        if result.encode() != self.result {
            return Err(ResultError::NotCanonical);
        }
        let executor = result.executor_key()?;
        let sig = SshSignature::parse(&self.signature).map_err(ResultError::Signature)?;
        verify(&sig, &executor, RESULT_NAMESPACE, &self.result).map_err(ResultError::Signature)?;
        Ok((result, executor))
    }
}

/// Most verdicts [`VERIFIED`] keeps; past it, it starts again empty.
const VERIFIED_CACHE: usize = 4096;

/// The verdicts kept: result (by [`SignedResult::cache_key`]) -> what
/// verifying it returned.
type Verdicts = HashMap<[u8; 32], (JobResult, PublicIdentity)>;

/// The results whose signature verified in this process, by
/// [`SignedResult::cache_key`]: a result read again is not verified again
/// (a memo hit reads its result four times: the memo's check, following
/// it, its logs, its end). Verifying is a function of those bytes alone, so
/// a verdict kept is the one verifying them again would give; only
/// successes are kept.
static VERIFIED: LazyLock<Mutex<Verdicts>> = LazyLock::new(Default::default);

fn lock_verified() -> MutexGuard<'static, Verdicts> {
    // A panic while holding it leaves a map that is still whole.
    VERIFIED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Serde adapter writing bytes that are UTF-8 text as a JSON string.
mod text_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| <S::Error as ser::Error>::custom("result bytes are not UTF-8"))?;
        s.serialize_str(text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d).map_err(D::Error::custom)?;
        Ok(text.into_bytes())
    }
}

#[cfg(test)]
#[path = "result_tests.rs"]
pub(crate) mod tests;
