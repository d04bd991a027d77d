//! The peer protocol, ALPN `clive/peer/1`.
//!
//! Format version 1. Each exchange is one QUIC bidirectional stream: the
//! caller writes one request and finishes its side, the callee answers with
//! one reply and finishes. Both are JSON objects tagged by `type`, at most
//! [`MAX_MESSAGE`] bytes; a longer message is refused before it is buffered.
//!
//! | request      | reply                  | needs                         |
//! |--------------|------------------------|-------------------------------|
//! | `hello`      | `hello`                | a known peer, or any capability |
//! | `join`       | `joined` or `refused`  | a valid invite secret         |
//! | `check`      | `verdict`              | nothing: says what the caller holds |
//! | `push_offer` | `pushed` or `refused`  | `push`                        |
//! | `zone_index` | `zone_files` or `refused` | `fetch`                    |
//! | `zone_submit`| `zone_accepted` or `refused` | `push`                  |
//!
//! Blobs travel on iroh-blobs' own ALPN; this protocol only carries the
//! small messages around them.

use std::{net::SocketAddr, time::Duration};

use iroh::endpoint::Connection;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{NetError, NodeError};

/// The ALPN of the peer protocol, with its version.
pub const PEER_ALPN: &[u8] = b"clive/peer/1";

/// The largest request or reply, in bytes.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// How long a small exchange may take before the caller gives up.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// What a peer asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerRequest {
    /// "I am here, at these addresses, holding these certificates."
    Hello {
        /// Where the caller listens.
        addrs: Vec<SocketAddr>,
        /// Certificates whose subject is the caller (their encodings).
        certs: Vec<String>,
    },
    /// Redeems an invite.
    Join {
        /// The invite's secret, 64 hex digits.
        secret: String,
    },
    /// "Would you serve me this capability, and if not, why?"
    Check {
        /// `fetch`, `push` or `exec`.
        cap: String,
    },
    /// "Take this object: fetch it from me."
    PushOffer {
        /// The object, 64 hex digits.
        hash: String,
    },
    /// The current metadata files of a zone, by its id: answered with
    /// [`PeerReply::ZoneFiles`] to holders of `fetch`.
    ZoneIndex {
        /// The zone's id.
        zone: String,
    },
    /// "Here is a new version of a delegated role of your zone, signed by
    /// its delegate: fetch it from me." Answered with
    /// [`PeerReply::ZoneAccepted`] to holders of `push`.
    ZoneSubmit {
        /// The zone's id.
        zone: String,
        /// The delegated role.
        role: String,
        /// The object holding its metadata (BLAKE3, hex).
        hash: String,
    },
}

/// What a peer answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PeerReply {
    /// The callee's own addresses.
    Hello {
        /// Where the callee listens.
        addrs: Vec<SocketAddr>,
    },
    /// The certificate the inviter issued to the joiner.
    Joined {
        /// Its encoding.
        cert: String,
    },
    /// The answer to `check`.
    Verdict {
        /// Whether the capability is held.
        allowed: bool,
        /// The chain, or why there is none.
        reason: String,
    },
    /// The pushed object is now stored by the callee.
    Pushed {
        /// Payload bytes the callee fetched.
        bytes_received: u64,
    },
    /// A zone's metadata files: the path a repository serves each under,
    /// and the object holding it (fetched like any object).
    ZoneFiles {
        /// The files.
        files: Vec<ZoneFile>,
    },
    /// The submitted role is in the zone's new snapshot and timestamp.
    ZoneAccepted {
        /// The new timestamp version.
        timestamp: u64,
    },
    /// The request was refused.
    Refused {
        /// Why, for the caller's user.
        reason: String,
    },
}

/// One metadata file of a zone, as a peer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneFile {
    /// `2.root.json`, `timestamp.json`, `7.targets.json`, ...
    pub path: String,
    /// The object holding it (BLAKE3, hex).
    pub hash: String,
    /// Its size.
    pub size: u64,
}

/// Encodes a message; messages built here are always within bounds.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, NodeError> {
    let bytes = serde_json::to_vec(msg).map_err(NetError::Encode)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(NetError::MessageTooLarge {
            len: bytes.len(),
            limit: MAX_MESSAGE,
        }
        .into());
    }
    Ok(bytes)
}

/// Decodes a message received from a peer.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    if bytes.len() > MAX_MESSAGE {
        return Err(format!("message over {MAX_MESSAGE} bytes"));
    }
    serde_json::from_slice(bytes).map_err(|e| format!("malformed message: {e}"))
}

/// Sends one request on a new stream and reads the reply, within `timeout`.
pub async fn call(
    conn: &Connection,
    request: &PeerRequest,
    timeout: Option<Duration>,
) -> Result<PeerReply, NodeError> {
    let peer = conn.remote_id();
    let fail = |what: String| {
        NodeError::from(NetError::Exchange {
            peer: peer.fmt_short().to_string(),
            what,
        })
    };
    let exchange = async {
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| fail(format!("opening a stream: {e}")))?;
        send.write_all(&encode(request)?)
            .await
            .map_err(|e| fail(format!("sending: {e}")))?;
        send.finish().map_err(|e| fail(format!("sending: {e}")))?;
        let bytes = recv
            .read_to_end(MAX_MESSAGE)
            .await
            .map_err(|e| fail(format!("reading the reply: {e}")))?;
        decode::<PeerReply>(&bytes).map_err(fail)
    };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| fail(format!("no reply within {}s", limit.as_secs())))?,
        None => exchange.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let req = PeerRequest::Hello {
            addrs: vec!["127.0.0.1:4000".parse().unwrap()],
            certs: vec!["c".into()],
        };
        let bytes = encode(&req).unwrap();
        assert_eq!(decode::<PeerRequest>(&bytes).unwrap(), req);
        assert!(decode::<PeerRequest>(b"{\"type\":\"nope\"}").is_err());
        assert!(decode::<PeerRequest>(b"\xff\x00").is_err());
        assert!(decode::<PeerRequest>(&vec![b' '; MAX_MESSAGE + 1]).is_err());
        let extra = br#"{"type":"check","cap":"fetch","more":1}"#;
        assert!(decode::<PeerRequest>(extra).is_err());
    }
}
