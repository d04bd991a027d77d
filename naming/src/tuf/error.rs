//! The one error type of the TUF module.
//!
//! Variants name the role (or file) concerned and what was wrong with it, so
//! a message can be acted upon without reading the source.

use std::path::PathBuf;

/// Everything that can go wrong while parsing, verifying, fetching or storing
/// TUF metadata and targets.
#[derive(Debug, thiserror::Error)]
pub enum TufError {
    /// The bytes are not valid JSON, or exceed the size a decoder accepts.
    #[error("{role}: not valid metadata JSON: {reason}")]
    Json {
        /// Role (or document kind) being decoded.
        role: String,
        /// What the decoder reported.
        reason: String,
    },
    /// The JSON is well formed but a field is missing, has the wrong type or
    /// an invalid value.
    #[error("{role}: invalid metadata: {reason}")]
    Invalid {
        /// Role (or document kind) being decoded.
        role: String,
        /// Which field was wrong and how.
        reason: String,
    },
    /// The `_type` of the document is not the expected role type.
    #[error("expected metadata of type '{expected}', got '{got}'")]
    WrongType {
        /// The type the caller asked for.
        expected: String,
        /// The type found in the document.
        got: String,
    },
    /// Fewer valid signatures than the delegator's threshold.
    #[error("{role} was signed by {signed}/{threshold} keys of its delegator {delegator}")]
    Unsigned {
        /// The role whose signatures were checked.
        role: String,
        /// The role that delegates to it (root or a targets role).
        delegator: String,
        /// How many authorized keys signed validly.
        signed: usize,
        /// How many were required.
        threshold: u64,
    },
    /// The delegator does not delegate to this role at all.
    #[error("{delegator} does not delegate to role '{role}'")]
    NotDelegated {
        /// The role that was looked up.
        role: String,
        /// The role expected to delegate to it.
        delegator: String,
    },
    /// A version number is not the one expected (rollback, or a snapshot /
    /// targets version that does not match its meta entry).
    #[error("{role}: bad version: expected {expected}, got {got}")]
    BadVersion {
        /// The role concerned.
        role: String,
        /// What the workflow expected (for example `>= 3`).
        expected: String,
        /// The version found.
        got: u64,
    },
    /// The repository serves the same version as the trusted one: the new
    /// document is ignored (not an error for the workflow).
    #[error("{role}: new version {version} equals the trusted version")]
    EqualVersion {
        /// The role concerned.
        role: String,
        /// The version both documents carry.
        version: u64,
    },
    /// The metadata expired at `expires` (unix seconds), before `now`.
    #[error(
        "{role} metadata expired (expires {expires}, now {now}): the repository must publish a fresh version"
    )]
    Expired {
        /// The role concerned.
        role: String,
        /// Its expiry, unix seconds.
        expires: u64,
        /// The reference time used, unix seconds.
        now: u64,
    },
    /// Length or hashes of downloaded bytes do not match the trusted meta
    /// data (or a hash algorithm is not supported).
    #[error("{what}: length or hash mismatch: {reason}")]
    LengthOrHashMismatch {
        /// The file concerned (`snapshot.json`, a target path, ...).
        what: String,
        /// Observed versus expected values.
        reason: String,
    },
    /// A metadata file the workflow needs is missing from snapshot, or a new
    /// snapshot drops a file the trusted one listed.
    #[error("snapshot: {reason}")]
    SnapshotMeta {
        /// What is missing.
        reason: String,
    },
    /// An operation was attempted out of the order the workflow imposes
    /// (a bug in the caller, not in the repository).
    #[error("workflow order: {0}")]
    Order(&'static str),
    /// The remote does not have the file (HTTP 403 or 404).
    #[error("{url}: not found on the repository")]
    NotFound {
        /// What was requested.
        url: String,
    },
    /// The remote served more bytes than allowed.
    #[error("{url}: the repository served more than the limit of {limit} bytes")]
    TooLarge {
        /// What was requested.
        url: String,
        /// The maximum length allowed.
        limit: u64,
    },
    /// Any other download failure (connection, status, timeout).
    #[error("{url}: download failed: {reason}")]
    Download {
        /// What was requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Reading or writing local files failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The trusted local root could not be found.
    #[error("no trusted root metadata in the local store: initialize it with a trusted root.json")]
    NoTrustedRoot,
    /// A key could not be used (bad encoding, unsupported scheme, bad
    /// signature encoding) or a signature does not verify.
    #[error("key {keyid}: {reason}")]
    Key {
        /// The key id (or `-` when unknown).
        keyid: String,
        /// What was wrong.
        reason: String,
    },
    /// A caller-side configuration problem (missing target directory or URL).
    #[error("configuration: {0}")]
    Config(String),
}

impl TufError {
    pub(crate) fn invalid(role: &str, reason: impl Into<String>) -> Self {
        TufError::Invalid {
            role: role.to_string(),
            reason: reason.into(),
        }
    }
}

/// Result alias for the TUF module.
pub type Result<T, E = TufError> = std::result::Result<T, E>;
