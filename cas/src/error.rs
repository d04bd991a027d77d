//! Errors of the content-addressed store.

use std::path::PathBuf;

use crate::{Hash, tree::TreeError};

/// Anything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum CasError {
    /// A file system operation failed.
    #[error("{context}: {cause}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// The blob store reported an error.
    #[error("blob store: {0}")]
    Blobs(String),
    /// The state database reported an error.
    #[error("state database: {0}")]
    Db(String),
    /// The object is not in this store.
    #[error("object {0} is not in this store")]
    NotFound(Hash),
    /// The object is present only in part (an interrupted transfer).
    #[error("object {0} is only partly stored")]
    Partial(Hash),
    /// Objects the object reaches are missing or only partly stored here.
    #[error(
        "object {hash} is not all here: {} of the objects it reaches {} missing or only \
         partly stored ({}); fetch it first with `clive-node get {hash}`",
        missing.len(),
        if missing.len() == 1 { "is" } else { "are" },
        describe_missing(missing)
    )]
    Incomplete {
        /// The object.
        hash: Hash,
        /// What is missing: each object with the path that reaches it.
        missing: Vec<(Hash, String)>,
    },
    /// A stored object whose bytes do not match its hash, or cannot be read.
    #[error(
        "object {hash} is damaged in this store: {problem}; run `clive-node fsck --repair` \
         to fetch a good copy from a peer"
    )]
    Damaged {
        /// The object.
        hash: Hash,
        /// What was found.
        problem: String,
    },
    /// An object too large to be read into memory here.
    #[error("object {hash} has {size} bytes, more than the {limit} read into memory here")]
    TooLarge {
        /// The object.
        hash: Hash,
        /// Its size.
        size: u64,
        /// The most accepted.
        limit: u64,
    },
    /// A file being added changed between the reads that hash it and
    /// store it: nothing that does not match its hash was stored.
    #[error("{0}: the file changed while it was being added; add it again once it is written")]
    ChangedWhileAdding(String),
    /// Writing to the store failed (a full disk, say): nothing was stored.
    #[error("writing to the store {dir}: {cause}; nothing was stored")]
    StoreWrite {
        /// The store's directory.
        dir: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// An object that should be a tree does not decode as one.
    #[error("object {hash} is not a valid tree: {cause}")]
    BadTree {
        /// The object.
        hash: Hash,
        /// Why it is invalid.
        cause: TreeError,
    },
    /// A directory that cannot be stored as a tree.
    #[error("cannot build tree: {0}")]
    TreeBuild(TreeError),
    /// `ls` of an object that is a blob.
    #[error("object {0} is a blob, not a tree")]
    NotATree(Hash),
    /// A file name that a tree cannot hold.
    #[error("cannot add {path}: {reason}")]
    BadName {
        /// The offending path.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A fifo, socket or device file.
    #[error(
        "cannot add {path}: {kind} files are not supported (only files, directories and symlinks)"
    )]
    UnsupportedFileType {
        /// The offending path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// Export would overwrite something.
    #[error("{0} already exists (use --force to replace it)")]
    DestinationExists(PathBuf),
    /// A pin name that is not usable.
    #[error("invalid pin name {name:?}: {reason}")]
    BadPinName {
        /// The name.
        name: String,
        /// Why it cannot be one.
        reason: &'static str,
    },
    /// No pin by that name.
    #[error("no pin named {0:?}")]
    PinNotFound(String),
    /// Garbage collection could not run.
    #[error("garbage collection failed: {0}")]
    Gc(String),
}

impl CasError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CasError::Io {
            context: context.into(),
            cause: source,
        }
    }
}

macro_rules! from_display {
    ($variant:ident: $($ty:ty),*) => {
        $(impl From<$ty> for CasError {
            fn from(e: $ty) -> Self {
                CasError::$variant(e.to_string())
            }
        })*
    };
}

from_display!(Blobs: iroh_blobs::api::Error, iroh_blobs::api::RequestError, irpc::Error, iroh_blobs::api::ExportBaoError);
from_display!(Db: redb::Error, redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// Result with a [`CasError`].
pub type Result<T, E = CasError> = std::result::Result<T, E>;

/// The first few of `missing`, as `PATH (HASH)`.
fn describe_missing(missing: &[(Hash, String)]) -> String {
    const SHOWN: usize = 3;
    let mut out: Vec<String> = missing
        .iter()
        .take(SHOWN)
        .map(|(hash, path)| format!("{path} ({hash})"))
        .collect();
    if missing.len() > SHOWN {
        out.push(format!("and {} more", missing.len() - SHOWN));
    }
    out.join(", ")
}
