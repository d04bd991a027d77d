//! The protocol's name, version, limits and handshake messages: what the
//! client and the server both speak. The protocol itself is
//! described in [`crate::control`].

use serde::{Deserialize, Serialize};

/// The protocol's name, in every HELLO.
pub const PROTOCOL: &str = "clive-control";

/// The protocol version this build speaks.
pub const VERSION: u32 = 4;

/// The largest reply, all its frames together: 256 MiB.
pub const MAX_REPLY: usize = 256 * 1024 * 1024;

/// The first frame each way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`PROTOCOL`].
    pub protocol: String,
    /// The version the sender speaks.
    pub version: u32,
    /// The daemon's process id (absent from the client's hello).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl Hello {
    /// A hello of this build.
    pub fn new(pid: Option<u32>) -> Self {
        Hello {
            protocol: PROTOCOL.to_owned(),
            version: VERSION,
            pid,
        }
    }
}

/// The payload of an ERROR frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// The error and its causes.
    pub message: String,
}
