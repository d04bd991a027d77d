//! Errors of the node API.

use std::path::PathBuf;

use clive_cas::CasError;
use clive_trust::IdentityError;

/// Anything the node API can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No home was given and the platform has no data directory.
    #[error("cannot find the user's data directory: set CLIVE_HOME or pass --home")]
    NoDataDir,
    /// The home has no node yet.
    #[error("no node at {home}: run `clive-node init` first")]
    NotInitialized {
        /// The home.
        home: PathBuf,
    },
    /// `init` on a home that already has a node.
    #[error("{home} already holds a node (its key is {key}); choose another --home")]
    AlreadyInitialized {
        /// The home.
        home: PathBuf,
        /// Its key file.
        key: PathBuf,
    },
    /// Another process owns the home.
    #[error("{home} is in use by {}; stop it or use another --home", describe(*pid, command))]
    HomeInUse {
        /// The home.
        home: PathBuf,
        /// The owning process, if it could be read.
        pid: Option<u32>,
        /// Its command line, if known.
        command: Option<String>,
    },
    /// A path to write to or to add that overlaps the node's home.
    #[error(
        "refusing to {doing} {path}: it {relation} ({home}), which holds the node's key, \
         store and state; choose a path outside it"
    )]
    OverlapsHome {
        /// What was to be done with the path.
        doing: &'static str,
        /// The path, as given.
        path: PathBuf,
        /// How it overlaps the home.
        relation: &'static str,
        /// The home.
        home: PathBuf,
    },
    /// `config.toml` is invalid.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A string that names neither a hash nor a pin.
    #[error("{0:?} is neither a hash (64 hex digits) nor the name of a pin")]
    UnknownObject(String),
    /// `cat` of a tree to a terminal.
    #[error(
        "{object} is a tree, whose encoding is binary: list it with `clive-node ls {object}` \
         or write it out with `clive-node export {object} DIR`"
    )]
    TreeToTerminal {
        /// OBJECT, as given.
        object: String,
    },
    /// A path inside a tree that names nothing.
    #[error("{tree} has no entry {name:?}")]
    NoSuchPath {
        /// The tree walked so far.
        tree: String,
        /// The missing name.
        name: String,
    },
    /// A KEY argument that names no key.
    #[error("{0}")]
    UnknownKey(String),
    /// A CERT argument that names no certificate.
    #[error("no certificate {0} is known here (give its id or the file written with -o)")]
    UnknownCert(String),
    /// Certificates, chains, roots, signatures.
    #[error("{0}")]
    Trust(String),
    /// The home has the node's public key but not its private key file,
    /// and no ssh-agent was given to sign with.
    #[error(
        "{path}: no such key file: this home holds only the node's public key; \
         sign with the key in an ssh-agent (set SSH_AUTH_SOCK), or put the private key \
         back at {path} (mode 0600)"
    )]
    KeyMissing {
        /// The key file.
        path: PathBuf,
    },
    /// The node's key.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A file given by path could not be read, or is far too large.
    #[error(transparent)]
    Read(#[from] clive_trust::ReadError),
    /// The store.
    #[error(transparent)]
    Cas(#[from] CasError),
    /// A database of the home (`state.redb`, `blobs/blobs.db`) is damaged
    /// beyond what redb can repair.
    #[error("{path} is damaged ({reason}): {recovery}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What redb found.
        reason: String,
        /// How to recover.
        recovery: String,
    },
    /// `state.redb` is missing or empty while the store holds objects.
    #[error(
        "{state} {what}, but the store {store} holds objects: refusing to start over, which \
         would lose every pin (and let gc remove everything); stop any daemon and restore \
         {state} from a backup, or, to start over without the pins, move the store aside \
         (mv {store} {store}.old)"
    )]
    StateLost {
        /// The state file.
        state: PathBuf,
        /// "is missing" or "is empty".
        what: &'static str,
        /// The store directory.
        store: PathBuf,
    },
    /// The state database.
    #[error("state database {path}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The network: endpoint, peers, transfers.
    #[error("{0}")]
    Net(String),
    /// Signed names: zones, metadata, resolution.
    #[error("{0}")]
    Naming(String),
    /// A file system operation.
    #[error("{context}: {cause}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        cause: std::io::Error,
    },
}

impl From<clive_naming::NamingError> for NodeError {
    fn from(e: clive_naming::NamingError) -> Self {
        NodeError::Naming(e.to_string())
    }
}

impl NodeError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        NodeError::Io {
            context: context.into(),
            cause: source,
        }
    }
}

fn describe(pid: Option<u32>, command: &Option<String>) -> String {
    match (pid, command) {
        (Some(pid), Some(cmd)) => format!("process {pid} ({cmd})"),
        (Some(pid), None) => format!("process {pid}"),
        _ => "another process".into(),
    }
}
