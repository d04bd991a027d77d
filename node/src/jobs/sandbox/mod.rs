//! Sandbox levels and what this machine can give.

#[cfg(target_os = "linux")]
pub mod linux;
pub mod macos;

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Sandbox levels, ordered: none < landlock < isolated.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum SandboxLevel {
    /// A fresh directory and a cleared environment, nothing more.
    #[default]
    None,
    /// Also Landlock rules: writes only in the job directory, reads only it
    /// and read-only system paths, TCP denied where the kernel's ABI has it.
    Landlock,
    /// Also new user, mount, PID and network namespaces.
    Isolated,
}

impl SandboxLevel {
    /// Every level, weakest first.
    pub const ALL: [SandboxLevel; 3] = [
        SandboxLevel::None,
        SandboxLevel::Landlock,
        SandboxLevel::Isolated,
    ];

    /// The level's name, as documents and the command line spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxLevel::None => "none",
            SandboxLevel::Landlock => "landlock",
            SandboxLevel::Isolated => "isolated",
        }
    }
}

/// A sandbox level name that is none of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sandbox level {0:?} (known: none, landlock, isolated)")]
pub struct UnknownSandboxLevel(pub String);

impl FromStr for SandboxLevel {
    type Err = UnknownSandboxLevel;

    fn from_str(s: &str) -> Result<Self, UnknownSandboxLevel> {
        SandboxLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownSandboxLevel(s.chars().take(40).collect()))
    }
}

impl fmt::Display for SandboxLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}
