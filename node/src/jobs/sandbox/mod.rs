//! Sandbox levels and what this machine can give.
//!
//! Levels, ordered `none < landlock < isolated`:
//!
//! - `none`: a fresh job directory, exactly the job's environment, stdin
//!   `/dev/null`, its own session; the whole process tree is killed at the end.
//! - `landlock` (Linux): `none`, plus a Landlock ruleset: writes only inside
//!   the job directory, reads only it and the read-only system paths a C
//!   toolchain needs ([`linux::READ_ONLY`], [`linux::PROC_READ_ONLY`]), TCP
//!   bind/connect denied where the kernel's ABI has network rules (ABI >= 4),
//!   signals and abstract unix sockets scoped to the job where it has scopes
//!   (ABI >= 6); and a seccomp filter refusing new unix sockets (the node's
//!   control socket is one). On macOS the same level is a generated
//!   `sandbox-exec` profile ([`macos::profile`]).
//! - `isolated` (Linux): `landlock`, plus new user, mount, PID and network
//!   namespaces: no network at all (the new network namespace has only a
//!   loopback that is down), a fresh `/proc` showing only the job's processes,
//!   a private writable `/tmp` (a tmpfs of [`linux::TMP_SIZE`]).
//!
//! What the job sees, at every level: its job directory at the very path the
//! executor staged it (under `isolated`, bound back at that path when the
//! private `/tmp` would hide it), its workdir as the current directory,
//! exactly the document's environment. Temporary files: under `none` the
//! machine's `/tmp`; under `isolated` the private `/tmp`; under `landlock`
//! `/tmp` is not writable, so a job that needs temporary files (a C
//! compiler does) points `TMPDIR` into its job directory itself, e.g.
//! `sh -c 'mkdir -p tmp && TMPDIR=$PWD/tmp exec make'`: the executor's path
//! is not known when the document (and its id) is made.
//!
//! A level this machine cannot give is not in [`available`], and
//! [`crate::jobs::process::run`] refuses it: never a silent downgrade.

#[cfg(target_os = "linux")]
pub mod linux;
pub mod macos;

use std::{fmt, str::FromStr, sync::OnceLock};

use serde::{Deserialize, Serialize};

/// Sandbox levels, ordered: none < landlock < isolated.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum SandboxLevel {
    /// A fresh directory and exactly the job's environment; no confinement.
    #[default]
    None,
    /// Writes only in the job directory, reads only it and system paths, no TCP.
    Landlock,
    /// Landlock, plus user, mount, PID and network namespaces.
    Isolated,
}

impl SandboxLevel {
    /// Every level, weakest first.
    pub const ALL: [SandboxLevel; 3] = [
        SandboxLevel::None,
        SandboxLevel::Landlock,
        SandboxLevel::Isolated,
    ];

    /// The level's name as documents, flags and configuration spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxLevel::None => "none",
            SandboxLevel::Landlock => "landlock",
            SandboxLevel::Isolated => "isolated",
        }
    }
}

impl fmt::Display for SandboxLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sandbox level name that is none of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sandbox level `{0}`: expected none, landlock or isolated")]
pub struct UnknownLevel(pub String);

impl FromStr for SandboxLevel {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SandboxLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == s)
            .ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

/// The levels this machine can give, weakest first, probed once (cached).
///
/// Linux: `none`; `landlock` when the kernel has Landlock (any ABI: file
/// rules; TCP rules only where ABI >= 4); `isolated` when Landlock is there
/// and a user, mount, PID and network namespace with a fresh `/proc` can be
/// made (probed by doing it in a forked child). macOS: `none` and `landlock`
/// (the `sandbox-exec` profile). Elsewhere: `none`.
pub fn available() -> &'static [SandboxLevel] {
    static LEVELS: OnceLock<Vec<SandboxLevel>> = OnceLock::new();
    LEVELS.get_or_init(probe)
}

/// The strongest level in [`available`].
pub fn strongest() -> SandboxLevel {
    available().last().copied().unwrap_or(SandboxLevel::None)
}

#[cfg(target_os = "linux")]
fn probe() -> Vec<SandboxLevel> {
    let mut levels = vec![SandboxLevel::None];
    if linux::landlock_abi().is_some() {
        levels.push(SandboxLevel::Landlock);
        if linux::namespaces_work() {
            levels.push(SandboxLevel::Isolated);
        }
    }
    levels
}

#[cfg(target_os = "macos")]
fn probe() -> Vec<SandboxLevel> {
    vec![SandboxLevel::None, SandboxLevel::Landlock]
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn probe() -> Vec<SandboxLevel> {
    vec![SandboxLevel::None]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_print_and_order() {
        for level in SandboxLevel::ALL {
            assert_eq!(level.as_str().parse::<SandboxLevel>(), Ok(level));
            assert_eq!(level.to_string(), level.as_str());
            assert_eq!(
                serde_json::to_string(&level).unwrap(),
                format!("\"{}\"", level.as_str())
            );
        }
        assert!(SandboxLevel::None < SandboxLevel::Landlock);
        assert!(SandboxLevel::Landlock < SandboxLevel::Isolated);
        let err = "jail".parse::<SandboxLevel>().unwrap_err().to_string();
        assert!(err.contains("none, landlock or isolated"), "{err}");
    }

    #[test]
    fn available_starts_with_none_and_ascends() {
        let levels = available();
        assert_eq!(levels.first(), Some(&SandboxLevel::None));
        assert!(levels.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(strongest(), *levels.last().unwrap());
    }
}
