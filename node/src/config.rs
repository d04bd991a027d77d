//! `config.toml`: the node's settings.
//!
//! Format version 1. Unknown keys are refused so that a typo never goes
//! unnoticed. The defaults need no file at all; `init` writes a commented one.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::jobs::platform::JobsConfig;
use crate::{NodeError, error::ConfigError};

/// The configuration file `init` writes.
pub const DEFAULT_CONFIG: &str = "\
# clive-node configuration (format version 1).
# Every setting is optional; the defaults are shown commented out.

# version = 1

# [net]
# Where the node listens when `clive-node start` runs (`--bind` overrides).
# Port 0 picks a free port at each start. Commands run without a daemon
# listen on these addresses with port 0, only for as long as they run.
# bind = [\"0.0.0.0:4919\"]
# A relay server for peers behind NAT; none is used unless set here.
# relay = \"https://relay.example.org\"

# [jobs]
# Whether this node runs jobs for the peers it granted `exec`.
# enabled = true
# How many jobs run at once (default: the number of cores).
# slots = 4
# What this node advertises to its peers and matches `--on os=..,arch=..`
# against; the real ones unless set (os: linux, macos, ...; arch: x86_64,
# aarch64, ...). Features are free-form words jobs can require (`feature=gpu`).
# os = \"linux\"
# arch = \"x86_64\"
# features = [\"gpu\"]
# The least sandbox a job from another node runs under: none, landlock or
# isolated (default: the strongest this machine can give). A job asking for
# more than this machine can give is refused, never downgraded.
# min_sandbox = \"landlock\"
# The bound of the memo's cache: past it, the outputs of memoized job
# results are evicted least recently used (with their memo entries), after
# each `exec` or `job` command and at `gc`. Outputs that are pinned, named
# or read by a job under way are never evicted. Sizes: a number of bytes,
# or \"512 KiB\", \"64M\", \"10 GiB\", \"1T\" (B, K/KiB, M/MiB, G/GiB, T/TiB).
# cache = \"10 GiB\"
";

/// The node's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version of the file; only 1 exists.
    #[serde(default = "default_version")]
    pub version: u32,
    /// Network settings.
    #[serde(default)]
    pub net: NetConfig,
    /// Job settings.
    #[serde(default)]
    pub jobs: JobsConfig,
}

/// The `[net]` section: how the node takes part in the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// Socket addresses to listen on; empty means `0.0.0.0:4919`.
    #[serde(default)]
    pub bind: Vec<std::net::SocketAddr>,
    /// A relay server URL; relays are off when unset.
    #[serde(default)]
    pub relay: Option<String>,
}

/// A configuration file larger than this is not one.
const MAX_CONFIG_LEN: u64 = 1 << 20;

fn default_version() -> u32 {
    1
}

impl Config {
    /// Reads `path`; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Self, NodeError> {
        let text = match clive_trust::read_bounded_to_string(path, MAX_CONFIG_LEN) {
            Ok(text) => text,
            Err(clive_trust::ReadError::NotFound { .. }) => String::new(),
            Err(e) => return Err(e.into()),
        };
        let config: Config = toml::from_str(&text).map_err(|e| NodeError::Config {
            path: path.to_owned(),
            cause: ConfigError::Toml(e),
        })?;
        if config.version != 1 {
            return Err(NodeError::Config {
                path: path.to_owned(),
                cause: ConfigError::Version(config.version),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::sandbox::SandboxLevel;

    fn load(text: &str) -> Result<Config, NodeError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    #[test]
    fn the_default_file_is_the_defaults_and_jobs_run_by_default() {
        let config = load(DEFAULT_CONFIG).unwrap();
        assert_eq!(config.version, 1);
        assert_eq!(config.net, NetConfig::default());
        assert_eq!(config.jobs, JobsConfig::default());
        assert!(config.jobs.enabled);
        assert_eq!(config.jobs.min_sandbox, None);
        assert_eq!(load("").unwrap(), config);
    }

    #[test]
    fn every_commented_jobs_setting_parses() {
        // Uncomment the `[jobs]` section of the default file, setting by setting.
        let section = DEFAULT_CONFIG
            .split("# [jobs]")
            .nth(1)
            .expect("the default file documents [jobs]");
        let mut text = String::from("[jobs]\n");
        for line in section.lines() {
            if let Some(setting) = line.strip_prefix("# ").filter(|l| l.contains(" = ")) {
                text.push_str(setting);
                text.push('\n');
            }
        }
        let jobs = load(&text).unwrap().jobs;
        assert_eq!(
            jobs,
            JobsConfig {
                enabled: true,
                slots: Some(4),
                os: Some("linux".into()),
                arch: Some("x86_64".into()),
                features: vec!["gpu".into()],
                min_sandbox: Some(SandboxLevel::Landlock),
                cache: 10 << 30,
            }
        );
        let off = load("[jobs]\nenabled = false\nmin_sandbox = \"none\"").unwrap();
        assert!(!off.jobs.enabled);
        assert_eq!(off.jobs.min_sandbox, Some(SandboxLevel::None));
        assert_eq!(off.jobs.cache, crate::jobs::platform::DEFAULT_CACHE);
    }

    #[test]
    fn the_cache_bound_reads_sizes_and_bytes() {
        for (text, bytes) in [
            ("cache = \"64 KiB\"", 64 << 10),
            ("cache = \"3M\"", 3 << 20),
            ("cache = \"1T\"", 1 << 40),
            ("cache = 1000", 1000),
            ("cache = \"0\"", 0),
        ] {
            let jobs = load(&format!("[jobs]\n{text}")).unwrap().jobs;
            assert_eq!(jobs.cache, bytes, "{text}");
        }
        for text in [
            "cache = \"ten\"",
            "cache = \"5 PB\"",
            "cache = -1",
            "cache = true",
        ] {
            let err = load(&format!("[jobs]\n{text}")).unwrap_err().to_string();
            assert!(err.contains("cache"), "{text}: {err}");
        }
    }

    #[test]
    fn unknown_jobs_settings_and_levels_are_refused() {
        for (text, message) in [
            ("[jobs]\nslot = 2", "unknown field `slot`"),
            ("[jobs]\nmin_sandbox = \"jail\"", "unknown variant `jail`"),
            ("[jobs]\nslots = -1", "slots"),
            ("[jobs]\nslots = 0", "slots must be at least 1"),
            (
                "[jobs]\nos = \"mac os\"",
                "platform value \"mac os\" is not 1 to 64",
            ),
            (
                "[jobs]\nfeatures = [\"gpu\", \"\"]",
                "platform feature \"\"",
            ),
        ] {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains(message), "{text:?}: {err}");
        }
    }
}
