//! `config.toml`: the node's settings.
//!
//! Format version 1. Unknown keys are refused so that a typo never goes
//! unnoticed. The defaults need no file at all; `init` writes a commented one.

use std::path::Path;

use serde::{Deserialize, Serialize};

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
