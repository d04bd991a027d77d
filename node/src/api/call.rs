//! What every concern's handler takes and may fail with: the [`Client`]
//! a call came from, the [`CallContext`] it streams through (and the
//! [`DaemonInfo`] of a daemon serving it), [`ApiError`], and the argument
//! helpers the request enums share (`key_help!`, [`duration`]).
//!
//! The concerns' files and the dispatcher in `mod.rs` all take these from
//! here, so no concern reaches back into its parent; [`super::Call`] itself
//! stays beside the [`super::Request`] it carries.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use clive_cas::Progress;
use clive_trust::PublicIdentity;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{NodeError, PassphraseSource, SignWith, object::ObjectError};

/// What a KEY argument may be: the one wording of it, which every request
/// enum's documentation uses (`#[doc = concat!(.., key_help!(), ..)]`), as
/// [`crate::object::OBJECT_HELP`] is the one wording of OBJECT.
macro_rules! key_help {
    () => {
        "an OpenSSH public key line, a file holding one, an endpoint id, or the `SHA256:` \
         fingerprint of a known key"
    };
}
pub(crate) use key_help;

/// The daemon serving a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// Its process id.
    pub pid: u32,
    /// Its control socket.
    pub control_socket: PathBuf,
}

/// What a call may fail with, in-process or over the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The node refused or failed.
    #[error("{}", error_chain(cause))]
    Node {
        /// The node's error.
        cause: NodeError,
    },
    /// The daemon refused or failed; its whole message.
    #[error("{message}")]
    Remote {
        /// The message, causes included.
        message: String,
    },
    /// An argument that does not parse.
    #[error("{reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// An OBJECT argument that names nothing unambiguously (it reads both
    /// as a pin and as a zone's name, or names a target that is no hash).
    #[error("{cause}")]
    Object {
        /// Why.
        cause: ObjectError,
    },
    /// `stop` (or another daemon-only command) when no daemon runs.
    #[error("no daemon is running on {home} (nothing listens on {socket})")]
    NoDaemon {
        /// The home.
        home: PathBuf,
        /// Its control socket.
        socket: PathBuf,
    },
    /// Writing the call's standard output failed.
    #[error("writing standard output: {cause}")]
    Output {
        /// The underlying error.
        cause: std::io::Error,
    },
    /// Reading the client's standard input failed.
    #[error("reading standard input: {cause}")]
    Input {
        /// The underlying error.
        cause: std::io::Error,
    },
    /// The control socket failed or its peer broke the protocol.
    #[error("control socket {path}: {reason}")]
    Control {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl From<NodeError> for ApiError {
    fn from(cause: NodeError) -> Self {
        ApiError::Node { cause }
    }
}

impl From<ObjectError> for ApiError {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::Node(cause) => ApiError::Node { cause },
            cause => ApiError::Object { cause },
        }
    }
}

pub use crate::error::error_chain;

/// The two streams a call writes to (the jobs handle writes a job's
/// output to the same pair).
pub use crate::dispatch::Output as CallOutput;

/// What a call streams, and what it runs within.
pub trait CallContext: Send {
    /// Where the call reports the progress of long work.
    fn progress(&self) -> Arc<dyn Progress>;
    /// Where the call writes: `cat`'s standard output, and a job's standard
    /// output and error as `exec` streams them.
    fn output(&mut self) -> CallOutput<'_>;
    /// Where `cat` writes: the standard output of [`CallContext::output`].
    fn stdout(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        self.output().stdout
    }
    /// Turns `true` once the client asked to cancel the call (Ctrl-C on
    /// `exec`); calls that cannot be cancelled never look.
    fn cancel_requested(&self) -> tokio::sync::watch::Receiver<bool>;
    /// Where `add -` reads; empty after the first call.
    fn take_stdin(&mut self) -> Box<dyn AsyncRead + Unpin + Send>;
    /// The passphrase of the node's key, for signing.
    fn passphrase(&self) -> &(dyn PassphraseSource + Sync);
    /// The daemon serving the call; `None` in-process.
    fn daemon(&self) -> Option<DaemonInfo>;
}

/// Where a call was made, as its handler sees it: arguments naming files
/// are resolved against the client's directory, and signing uses the
/// client's ssh-agent.
pub(crate) struct Client<'a> {
    cwd: &'a Path,
    ssh_auth_sock: Option<&'a Path>,
}

impl<'a> Client<'a> {
    /// The client a call came from: its working directory and ssh-agent.
    pub(super) fn new(cwd: &'a Path, ssh_auth_sock: Option<&'a Path>) -> Client<'a> {
        Client { cwd, ssh_auth_sock }
    }

    /// The client's working directory.
    pub(crate) fn cwd(&self) -> &Path {
        self.cwd
    }

    /// A path argument, relative to the client's directory.
    pub(crate) fn path(&self, p: &Path) -> PathBuf {
        self.cwd.join(p)
    }

    /// A KEY or CERT argument: a file relative to the client's directory
    /// becomes its full path; anything else is kept.
    pub(crate) fn key(&self, arg: String) -> String {
        file_arg(self.cwd, arg)
    }

    /// How to sign: with the client's ssh-agent when `agent`, else with the
    /// node's key unlocked by `passphrase` (the call's).
    pub(crate) fn sign_with<'c>(
        &'c self,
        agent: bool,
        passphrase: &'c (dyn PassphraseSource + Sync),
    ) -> SignWith<'c> {
        SignWith {
            agent,
            agent_socket: self.ssh_auth_sock,
            passphrase,
        }
    }
}

/// Resolves a KEY or CERT argument that names a file relative to `cwd`;
/// anything else (key lines, endpoint ids, fingerprints, ids) is kept.
pub(super) fn file_arg(cwd: &Path, arg: String) -> String {
    if arg.starts_with("SHA256:")
        || Path::new(&arg).is_absolute()
        || PublicIdentity::parse(&arg).is_ok()
    {
        return arg;
    }
    let joined = cwd.join(&arg);
    match joined.to_str() {
        Some(path) if joined.is_file() => path.to_owned(),
        _ => arg,
    }
}

/// A DURATION argument (`30d`, `12h`).
pub(crate) fn duration(text: &str) -> Result<std::time::Duration, ApiError> {
    clive_trust::clock::parse_duration(text).map_err(|reason| ApiError::Invalid { reason })
}
