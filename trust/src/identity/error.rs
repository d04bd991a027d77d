//! [`IdentityError`]: anything that can go wrong with a node's key, its key
//! file or a public key given as text.

use std::io;
use std::path::{Path, PathBuf};

use crate::bounded::ReadError;

/// Anything that can go wrong with a node's key.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The key file does not exist.
    #[error(
        "{path}: no such key file (`clive-node init` creates a node with a new key, \
         `clive-node init --ssh-key FILE` imports an OpenSSH ed25519 key)"
    )]
    Missing {
        /// The key file.
        path: PathBuf,
    },
    /// The private key file can be read by others than its owner; like
    /// OpenSSH, it is not used.
    #[error(
        "UNPROTECTED PRIVATE KEY FILE: permissions {mode:04o} for {path} are too open: \
         a private key must not be accessible by others, so it is ignored; \
         fix it with `chmod 600 {}`",
        shell_quote(path)
    )]
    Unprotected {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file to be written already exists; it is never overwritten.
    #[error("{path} already exists: refusing to overwrite it")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file is not an OpenSSH private key, or is damaged.
    #[error("{path}: not a usable OpenSSH private key: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds a key of another type than ed25519.
    #[error(
        "{path}: {algorithm} keys are not supported: clive-node needs an ed25519 key \
         (ssh-keygen -t ed25519)"
    )]
    NotEd25519 {
        /// The key file.
        path: PathBuf,
        /// The key type as ssh names it, e.g. `ssh-rsa`.
        algorithm: String,
    },
    /// The passphrase does not decrypt the key file.
    #[error("{path}: wrong passphrase")]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// The key file is encrypted and no passphrase was given.
    #[error(
        "{path} is passphrase-protected: enter the passphrase on a terminal or set \
         CLIVE_PASSPHRASE"
    )]
    PassphraseRequired {
        /// The key file.
        path: PathBuf,
    },
    /// A file could not be read, or is far too large.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A file system operation failed.
    #[error("{context}: {cause}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        cause: io::Error,
    },
    /// A string given as a public key is not an ed25519 public key.
    #[error("{input:?} is not a node's public key: {reason}")]
    BadPublicKey {
        /// The input (shortened if long; withheld if it is private key material).
        input: String,
        /// What is wrong with it and what is expected.
        reason: String,
    },
}

impl IdentityError {
    pub(super) fn io(context: impl Into<String>, source: io::Error) -> Self {
        IdentityError::Io {
            context: context.into(),
            cause: source,
        }
    }

    pub(super) fn malformed(path: &Path, reason: impl Into<String>) -> Self {
        IdentityError::Malformed {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// `path` as one shell word, for a command the user can paste.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
