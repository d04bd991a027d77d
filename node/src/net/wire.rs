//! The peer protocol, ALPN `clive/peer/2`, and the exchange format every
//! request/reply protocol of the node uses (the zones protocol,
//! `clive/zones/1` in `zones.rs`, too).
//!
//! Format version 2 (version 1 also carried the zone requests, which now
//! have a protocol of their own; a node of version 1 and one of version 2
//! do not connect on this ALPN, rather than misread each other). Each exchange is one QUIC bidirectional stream: the
//! caller writes one request and finishes its side, the callee answers with
//! one reply and finishes, within [`CALL_TIMEOUT`]. Both are JSON objects
//! tagged by `type`, at most [`MAX_MESSAGE`] bytes; a longer message is
//! refused before it is buffered, and unknown fields are refused.
//!
//! | request      | reply                  | needs                         |
//! |--------------|------------------------|-------------------------------|
//! | `hello`      | `hello`                | a known peer, or any capability |
//! | `join`       | `joined` or `refused`  | a valid invite secret         |
//! | `check`      | `verdict`              | nothing: says what the caller holds |
//! | `push_offer` | `pushed` or `refused`  | `push`                        |
//!
//! A `join` with a device invite (ticket version 2, see `ticket.rs`) also
//! carries `device_cert`, the joiner's certificate for the inviter (every
//! capability), and its `joined` carries `device_zone`, the device zone's
//! ticket; both fields are left out otherwise, so a plain join is what it
//! was.
//!
//! Blobs travel on iroh-blobs' own ALPN; this protocol only carries the
//! small messages around them.

use std::{net::SocketAddr, time::Duration};

use iroh::endpoint::{Connection, RecvStream, SendStream};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{NetError, NodeError, error::ExchangeError};

/// The ALPN of the peer protocol, with its version.
pub const PEER_ALPN: &[u8] = b"clive/peer/2";

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
        /// Joining as one's own device (`invite --device`): the certificate
        /// the joiner issues the inviter, granting it every capability.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_cert: Option<String>,
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
        /// For an own device: the ticket of the device zone, which now
        /// lists the joiner's key too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_zone: Option<String>,
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
    /// The request was refused.
    Refused {
        /// Why, for the caller's user.
        reason: String,
    },
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
pub async fn call<Req: Serialize, Rep: DeserializeOwned>(
    conn: &Connection,
    request: &Req,
    timeout: Option<Duration>,
) -> Result<Rep, NodeError> {
    let peer = conn.remote_id();
    let fail = |what: ExchangeError| {
        NodeError::from(NetError::Exchange {
            peer: peer.fmt_short().to_string(),
            what,
        })
    };
    let exchange = async {
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| fail(ExchangeError::Open(e)))?;
        send.write_all(&encode(request)?)
            .await
            .map_err(|e| fail(ExchangeError::Send(e)))?;
        send.finish().map_err(|e| fail(ExchangeError::Finish(e)))?;
        let bytes = recv
            .read_to_end(MAX_MESSAGE)
            .await
            .map_err(|e| fail(ExchangeError::Read(e)))?;
        decode::<Rep>(&bytes).map_err(|e| fail(ExchangeError::Malformed(e)))
    };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| fail(ExchangeError::Timeout(limit.as_secs())))?,
        None => exchange.await,
    }
}

/// Answers one exchange on a stream a peer opened: reads its request
/// (bounded in size and time), answers it with `respond`, or with
/// `refused` when it does not decode, and sends the reply.
pub async fn answer<Req, Rep, Fut>(
    mut send: SendStream,
    mut recv: RecvStream,
    respond: impl FnOnce(Req) -> Fut,
    refused: impl FnOnce(String) -> Rep,
) -> Result<(), String>
where
    Req: DeserializeOwned,
    Rep: Serialize,
    Fut: Future<Output = Option<Rep>>,
{
    let bytes = tokio::time::timeout(CALL_TIMEOUT, recv.read_to_end(MAX_MESSAGE))
        .await
        .map_err(|_| "request timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let reply = match decode::<Req>(&bytes) {
        Ok(request) => match respond(request).await {
            Some(reply) => reply,
            // The node is going offline.
            None => return Ok(()),
        },
        Err(e) => refused(e),
    };
    let bytes = encode(&reply).map_err(|e| e.to_string())?;
    send.write_all(&bytes).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    // Let the reply reach the peer before the stream is dropped.
    send.stopped().await.ok();
    Ok(())
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
