//! The node home: where one node keeps its key, configuration and data.
//!
//! ```text
//! HOME/id_ed25519    the node's OpenSSH ed25519 private key (mode 0600)
//! HOME/id_ed25519.pub  its public key line, with the comment
//! HOME/allowed_signers  trust roots besides the node's own key (OpenSSH format)
//! HOME/config.toml   settings (see [`crate::config`])
//! HOME/lock          held (flock) by the one process that owns the home;
//!                    holds that process's id
//! HOME/state.redb    node state: pins, and later peers and certificates
//! HOME/blobs/        the blob store (see `clive_cas::store`)
//! HOME/control.sock  the running daemon's control socket (mode 0600)
//! ```

use std::path::{Path, PathBuf};

use crate::NodeError;

/// Environment variable naming the home directory.
pub const HOME_ENV: &str = "CLIVE_HOME";

/// The location of a node home and of the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// A home at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    /// The home to use: `explicit` (from `--home`), else `$CLIVE_HOME`, else
    /// `clive-node` under the user's data directory.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, NodeError> {
        if let Some(root) = explicit {
            return Ok(Home::new(root));
        }
        if let Some(root) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            return Ok(Home::new(root));
        }
        dirs::data_dir()
            .map(|d| Home::new(d.join("clive-node")))
            .ok_or(NodeError::NoDataDir)
    }

    /// The home directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The node's private key file.
    pub fn key_path(&self) -> PathBuf {
        self.root.join("id_ed25519")
    }

    /// The node's public key file (alone, when the private key stays in an agent).
    pub fn pub_key_path(&self) -> PathBuf {
        self.root.join("id_ed25519.pub")
    }

    /// The trust roots, in OpenSSH `allowed_signers` format.
    pub fn roots_path(&self) -> PathBuf {
        self.root.join("allowed_signers")
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// The lock file naming the owning process.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// The node state database.
    pub fn state_path(&self) -> PathBuf {
        self.root.join("state.redb")
    }

    /// The blob store directory.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// The control socket of the running daemon.
    pub fn control_path(&self) -> PathBuf {
        self.root.join("control.sock")
    }

    /// Whether `init` has run here.
    pub fn is_initialized(&self) -> bool {
        self.key_path().exists() || self.pub_key_path().exists()
    }
}
