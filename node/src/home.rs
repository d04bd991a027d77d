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

use std::path::{Component, Path, PathBuf};

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

    /// Refuses `dest` as a place to write files (`export`, `get -o`, job
    /// outputs, files written with `-o`) when it is the home, inside it or
    /// one of its parents: writing there, or replacing it with `--force`,
    /// would destroy the node's key, store or state.
    pub fn check_destination(&self, dest: &Path) -> Result<(), NodeError> {
        self.check_outside(dest, "write to")
    }

    /// Refuses `source` as something to add when it is the home, inside it
    /// or one of its parents: it would store the node's private key.
    pub fn check_source(&self, source: &Path) -> Result<(), NodeError> {
        self.check_outside(source, "add")
    }

    /// Refuses `path` when it and the home overlap, comparing the paths
    /// with symlinks and `..` resolved.
    fn check_outside(&self, path: &Path, doing: &'static str) -> Result<(), NodeError> {
        let io = |e| NodeError::io(format!("resolving {}", path.display()), e);
        let target = resolve(path).map_err(io)?;
        let home = resolve(&self.root)
            .map_err(|e| NodeError::io(format!("resolving the home {}", self.root.display()), e))?;
        let relation = if target == home {
            "is the node's home"
        } else if target.starts_with(&home) {
            "is inside the node's home"
        } else if home.starts_with(&target) {
            "contains the node's home"
        } else {
            return Ok(());
        };
        Err(NodeError::OverlapsHome {
            doing,
            path: path.to_owned(),
            relation,
            home: self.root.clone(),
        })
    }

    /// Whether `init` has run here.
    pub fn is_initialized(&self) -> bool {
        self.key_path().exists() || self.pub_key_path().exists()
    }
}

/// How many symlinks [`resolve`] follows before giving up (as Linux does).
const MAX_SYMLINKS: usize = 40;

/// `path` made absolute with every symlink and `..` resolved, also when its
/// last components do not exist yet (they are taken as written, since
/// creating them creates plain directories).
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let mut path = std::path::absolute(path)?;
    for _ in 0..MAX_SYMLINKS {
        let components: Vec<Component<'_>> = path.components().collect();
        // The longest prefix that exists, resolved by the file system.
        let mut found = None;
        for i in (1..=components.len()).rev() {
            let prefix: PathBuf = components[..i].iter().collect();
            if let Ok(real) = std::fs::canonicalize(&prefix) {
                found = Some((i, real));
                break;
            }
        }
        let (i, mut real) = found.unwrap_or((0, PathBuf::from("/")));
        let rest = &components[i..];
        // The first missing component may be a symlink whose target is
        // missing: what is written through it lands at the target.
        if let Some(first) = rest.first() {
            let link = real.join(first);
            if let Ok(target) = std::fs::read_link(&link) {
                let mut next = real.join(target);
                next.extend(&rest[1..]);
                path = std::path::absolute(next)?;
                continue;
            }
        }
        for c in rest {
            match c {
                Component::ParentDir => {
                    real.pop();
                }
                Component::Normal(name) => real.push(name),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        return Ok(real);
    }
    Err(std::io::Error::other(format!(
        "more than {MAX_SYMLINKS} levels of symbolic links"
    )))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn destinations_overlapping_the_home_are_refused_however_they_are_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let home = Home::new(root.join("home"));
        std::fs::create_dir_all(home.root().join("blobs")).unwrap();
        symlink(home.root(), root.join("link")).unwrap();
        symlink(home.root().join("new"), root.join("dangling")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        for refused in [
            home.root().to_owned(),
            home.root().join("blobs"),
            home.root().join("a/b/c"),
            root.clone(),
            PathBuf::from("/"),
            root.join("link"),
            root.join("link/x"),
            root.join("dangling"),
            root.join("dangling/deeper"),
            root.join("x/../home"),
            root.join("home/./blobs/.."),
            root.join("other/../../").join(root.file_name().unwrap()),
        ] {
            assert!(
                home.check_destination(&refused).is_err(),
                "{}",
                refused.display()
            );
        }
        for allowed in [
            root.join("out"),
            root.join("home2"),
            root.join("hom"),
            root.join("home/../out"),
            root.join("new/deeper"),
        ] {
            home.check_destination(&allowed)
                .unwrap_or_else(|e| panic!("{}: {e}", allowed.display()));
        }
        assert!(home.check_destination(&root.join("loop")).is_err());
    }
}
