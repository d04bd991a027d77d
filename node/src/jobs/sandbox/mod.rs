//! Sandbox levels and what this machine can give.
//!
//! Levels, ordered `none < landlock < isolated`:
//!
//! - `none`: a fresh job directory, exactly the job's environment, stdin
//!   `/dev/null`, its own session; the whole process tree is killed at the
//!   end. No confinement: the job can do what the executor's user can,
//!   including signalling its supervisor (see "Killing the tree" below).
//! - `landlock` (Linux, Landlock ABI >= [`MIN_LANDLOCK_ABI`]): `none`, plus a
//!   Landlock ruleset: writes only inside the job directory, reads only it
//!   and the read-only system paths a C toolchain needs ([`linux::READ_ONLY`],
//!   [`linux::PROC_READ_ONLY`]), TCP bind and connect denied, signals and
//!   abstract unix sockets scoped to the job (it cannot signal or reach any
//!   process outside its own tree, its supervisor included); and a seccomp
//!   filter refusing new unix sockets (the node's control socket is one). A
//!   kernel with an older ABI lacks some of that (TCP rules came with ABI 4,
//!   scopes with ABI 6), so there the level is not offered at all rather than
//!   given in part. On macOS the same level is a generated `sandbox-exec`
//!   profile ([`macos::profile`]).
//! - `isolated` (Linux): `landlock`, plus new user, mount, PID and network
//!   namespaces: no network at all (the new network namespace has only a
//!   loopback that is down), a fresh `/proc` showing only the job's processes,
//!   a private writable `/tmp` (a tmpfs of [`linux::TMP_SIZE`]).
//!
//! What the job sees, at every level: its job directory at the very path the
//! executor staged it (under `isolated`, bound back at that path when the
//! private `/tmp` would hide it), its workdir as the current directory,
//! exactly the document's environment. Temporary files: the CLI puts
//! `TMPDIR=.` (the job's working directory, inside the job directory) in
//! every job's environment unless the job gives its own, which works at
//! every level; without a `TMPDIR`, a job under `none` uses the machine's
//! `/tmp`, under `isolated` the private `/tmp`, and under `landlock` has no
//! writable `/tmp` (a job document made without the CLI sets `TMPDIR`
//! itself, to a path relative to its workdir: the executor's path is not
//! known when the document, and its id, is made).
//!
//! # Killing the tree
//!
//! The supervisor ([`crate::jobs::supervisor`]) is a child subreaper: every
//! orphan of the job, double-forked or in a new session, is reparented to
//! it. To kill the tree it first freezes it (SIGSTOP to every descendant and
//! to each of their process groups, listing again until a listing finds
//! nothing new), then SIGKILLs everything it stopped, and repeats until no
//! descendant is left (bounded in rounds and time; what is left is reported
//! as survivors, an error). What holds if the supervisor itself dies:
//!
//! - `isolated`: nothing survives, however it dies: the namespace init (its
//!   child) has `PR_SET_PDEATHSIG` SIGKILL, and the kernel kills every
//!   process of a PID namespace when its init dies.
//! - `landlock`: the job cannot kill its supervisor: Landlock's signal scope
//!   refuses signals to processes outside the job's domain (`kill(getppid())`
//!   fails, `kill(-1)` reaches only the job's own processes), its ptrace
//!   restriction refuses tracing them, and their `/proc` files are not
//!   reachable. If something outside the job kills the supervisor (the
//!   machine's owner, the OOM killer), the job's main process dies with it
//!   (`PR_SET_PDEATHSIG`), but processes that left it (double-forked) do not.
//! - `none`: the job can signal its supervisor like any process of the user;
//!   a job that kills it leaves what it double-forked running. `none` is for
//!   trusted jobs only (by default a job from another node runs at the
//!   executor's strongest level).
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

/// The oldest Landlock ABI that gives everything `landlock` promises: file
/// rules (ABI 1, with `Refer` from 2, `Truncate` from 3 and device ioctls
/// from 5), TCP bind and connect rules (4), signal and abstract unix socket
/// scoping (6).
pub const MIN_LANDLOCK_ABI: i32 = 6;

/// The levels this machine can give, weakest first, probed once (cached).
///
/// Linux: [`linux_levels`] of the kernel's Landlock ABI and of whether a
/// user, mount, PID and network namespace with a fresh `/proc` can be made
/// (probed by doing it in a forked child, only when Landlock is enough).
/// macOS: `none` and `landlock` (the `sandbox-exec` profile). Elsewhere:
/// `none`.
pub fn available() -> &'static [SandboxLevel] {
    static LEVELS: OnceLock<Vec<SandboxLevel>> = OnceLock::new();
    LEVELS.get_or_init(probe)
}

/// The strongest level in [`available`].
pub fn strongest() -> SandboxLevel {
    available().last().copied().unwrap_or(SandboxLevel::None)
}

/// Whether a kernel with this Landlock ABI (`None`: no Landlock, or it is
/// disabled) gives all that `landlock` promises: ABI >= [`MIN_LANDLOCK_ABI`].
pub fn landlock_suffices(abi: Option<i32>) -> bool {
    abi.is_some_and(|abi| abi >= MIN_LANDLOCK_ABI)
}

/// The levels a Linux machine gives, weakest first: `none` always;
/// `landlock` when [`landlock_suffices`] for `abi`; `isolated` when, on top
/// of that, `namespaces` (new user, mount, PID and network namespaces work).
pub fn linux_levels(abi: Option<i32>, namespaces: bool) -> Vec<SandboxLevel> {
    let mut levels = vec![SandboxLevel::None];
    if landlock_suffices(abi) {
        levels.push(SandboxLevel::Landlock);
        if namespaces {
            levels.push(SandboxLevel::Isolated);
        }
    }
    levels
}

#[cfg(target_os = "linux")]
fn probe() -> Vec<SandboxLevel> {
    let abi = linux::landlock_abi();
    linux_levels(abi, landlock_suffices(abi) && linux::namespaces_work())
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

    #[test]
    fn linux_levels_need_landlock_abi_6() {
        use SandboxLevel as L;
        for abi in [None, Some(-1), Some(0), Some(1), Some(3), Some(4), Some(5)] {
            assert!(!landlock_suffices(abi), "{abi:?}");
            assert_eq!(linux_levels(abi, false), [L::None], "{abi:?}");
            assert_eq!(linux_levels(abi, true), [L::None], "{abi:?}: no isolated");
        }
        for abi in [6, 7, 9, i32::MAX] {
            assert!(landlock_suffices(Some(abi)), "{abi}");
            assert_eq!(
                linux_levels(Some(abi), false),
                [L::None, L::Landlock],
                "{abi}"
            );
            assert_eq!(
                linux_levels(Some(abi), true),
                [L::None, L::Landlock, L::Isolated],
                "{abi}"
            );
        }
    }
}
