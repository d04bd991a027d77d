//! Trust roots, kept in an OpenSSH `allowed_signers` file, so the same file
//! works with `ssh-keygen -Y verify -f FILE`.
//!
//! Each line is `PRINCIPALS [OPTIONS] KEYTYPE BASE64 [COMMENT]` (see
//! ssh-keygen(1), "ALLOWED SIGNERS"). Lines this node adds look like
//! `alice namespaces="clive-cert,clive-revocation" ssh-ed25519 AAAA...`.
//! Lines with other key types and comments are kept as they are.

use std::path::{Path, PathBuf};

use crate::PublicIdentity;

/// The namespaces this node's root lines allow.
pub const ROOT_NAMESPACES: &str = "clive-cert,clive-revocation";
/// Largest roots file read.
const MAX_ROOTS_FILE: u64 = 1 << 20;

/// One trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// The principals column (a name for people).
    pub principal: String,
    /// The key.
    pub key: PublicIdentity,
}

/// Why the roots file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    /// Reading or writing the file.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        cause: std::io::Error,
    },
    /// A malformed line.
    #[error("{path}:{line}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A principal name that cannot be written.
    #[error("invalid root name {0:?}: use letters, digits, and . _ @ - only")]
    BadName(String),
    /// `roots rm` of a key that is not a root.
    #[error("{0} is not a trust root")]
    NotARoot(String),
}

/// The roots file: its lines, with the ed25519 roots parsed out.
#[derive(Debug, Clone)]
pub struct RootsFile {
    path: PathBuf,
    lines: Vec<String>,
}

impl RootsFile {
    /// Reads `path`; a missing file has no roots.
    pub fn load(path: &Path) -> Result<Self, RootsError> {
        let io = |cause| RootsError::Io {
            path: path.to_owned(),
            cause,
        };
        let text = match crate::bounded::read_bounded_to_string(path, MAX_ROOTS_FILE) {
            Ok(text) => text,
            Err(crate::ReadError::NotFound { .. }) => String::new(),
            Err(crate::ReadError::Io { cause, .. }) => return Err(io(cause)),
            Err(e) => {
                let reason = match e {
                    crate::ReadError::IsDirectory { .. } => "a directory, not a file",
                    crate::ReadError::NotText { .. } => "not UTF-8 text",
                    _ => "larger than 1 MiB",
                };
                return Err(RootsError::Malformed {
                    path: path.to_owned(),
                    line: 0,
                    reason: reason.into(),
                });
            }
        };
        let file = RootsFile {
            path: path.to_owned(),
            lines: text.lines().map(str::to_owned).collect(),
        };
        file.roots()?;
        Ok(file)
    }

    /// The ed25519 roots, in file order.
    pub fn roots(&self) -> Result<Vec<Root>, RootsError> {
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            let parsed = parse_line(line).map_err(|reason| RootsError::Malformed {
                path: self.path.clone(),
                line: i + 1,
                reason,
            })?;
            if let Some(root) = parsed {
                out.push(root);
            }
        }
        Ok(out)
    }

    /// Adds `key` under `name` (replacing an earlier line for the same key).
    pub fn add(&mut self, name: &str, key: &PublicIdentity) -> Result<(), RootsError> {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
        if !ok {
            return Err(RootsError::BadName(name.to_owned()));
        }
        self.remove_key(key);
        let key_line = PublicIdentity::from_bytes(key.bytes()).openssh_line();
        self.lines.push(format!(
            "{name} namespaces=\"{ROOT_NAMESPACES}\" {key_line}"
        ));
        Ok(())
    }

    /// Removes every line for `key`; errors if there was none.
    pub fn remove(&mut self, key: &PublicIdentity) -> Result<(), RootsError> {
        if self.remove_key(key) {
            Ok(())
        } else {
            Err(RootsError::NotARoot(key.fingerprint()))
        }
    }

    fn remove_key(&mut self, key: &PublicIdentity) -> bool {
        let before = self.lines.len();
        self.lines.retain(
            |line| !matches!(parse_line(line), Ok(Some(root)) if root.key.bytes() == key.bytes()),
        );
        self.lines.len() != before
    }

    /// Writes the file atomically ([`crate::atomic`]).
    pub fn save(&self) -> Result<(), RootsError> {
        let io = |cause| RootsError::Io {
            path: self.path.clone(),
            cause,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut text = self.lines.join("\n");
        text.push('\n');
        crate::atomic::write_atomic(&self.path, text.as_bytes()).map_err(io)
    }
}

/// Parses one line: `Ok(None)` for blank lines, comments and other key types.
fn parse_line(line: &str) -> Result<Option<Root>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let words = split_words(line)?;
    let Some(principal) = words.first() else {
        return Ok(None);
    };
    // The key type is the first word after the principals that names one.
    let Some(at) = words
        .iter()
        .skip(1)
        .position(|w| w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-"))
        .map(|p| p + 1)
    else {
        return Err("no public key on the line".into());
    };
    if words[at] != "ssh-ed25519" {
        return Ok(None);
    }
    let key_text = words[at..].join(" ");
    let key = PublicIdentity::parse(&key_text).map_err(|e| e.to_string())?;
    Ok(Some(Root {
        principal: principal.clone(),
        key,
    }))
}

/// Splits on spaces, keeping double-quoted option values together.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if !word.is_empty() {
        words.push(word);
    }
    Ok(words)
}
