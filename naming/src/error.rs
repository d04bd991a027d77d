//! What naming operations fail with.

use crate::tuf;

/// A naming operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NamingError {
    /// A zone, name or role that does not parse.
    #[error("{0}")]
    Invalid(String),
    /// No zone by that name here.
    #[error("no zone {zone:?} here (see `clive-node name zone ls`)")]
    UnknownZone {
        /// The zone.
        zone: String,
    },
    /// The zone has no such name.
    #[error("{zone}/{name} is not published in zone {zone}")]
    UnknownName {
        /// The zone.
        zone: String,
        /// The name.
        name: String,
    },
    /// A target of a zone made by another TUF tool (no BLAKE3 in its
    /// metadata) whose bytes were not downloaded yet.
    #[error(
        "{zone}/{name} is a plain TUF target not downloaded yet: run \
         `clive-node sync follow {zone}`"
    )]
    NotDownloaded {
        /// The zone.
        zone: String,
        /// The name.
        name: String,
    },
    /// A zone by that name exists already.
    #[error("a zone named {0:?} exists already")]
    ZoneExists(String),
    /// This node cannot sign for a role.
    #[error("{0}")]
    CannotSign(String),
    /// The zone's metadata expired and stale answers were not asked for.
    #[error(
        "zone {zone}: its {role} metadata expired {expired}; refresh it from a peer or \
         mirror, or use --offline to get the last verified value, marked stale"
    )]
    Expired {
        /// The zone.
        zone: String,
        /// Which role expired first.
        role: String,
        /// When.
        expired: String,
    },
    /// Metadata failed TUF verification.
    #[error("zone {zone}: {cause}")]
    Tuf {
        /// The zone.
        zone: String,
        /// Why.
        #[source]
        cause: tuf::TufError,
    },
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(#[from] clive_trust::SigError),
    /// Reading or writing a file.
    #[error("{what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        cause: std::io::Error,
    },
    /// The naming tables in `state.redb` failed.
    #[error("naming state: {0}")]
    State(String),
}

impl NamingError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, cause: std::io::Error) -> Self {
        NamingError::Io {
            what: what.into(),
            cause,
        }
    }
}
