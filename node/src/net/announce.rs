//! Announcements between peers over iroh-gossip: a node's new addresses,
//! and revocations, so they reach peers this node is not connected to.
//! This module has the format, the sending side ([`Announcer`]) and the
//! typed events; `gossip.rs` runs the topic.
//!
//! Format version 1. A gossip message is the JSON object
//! `{"body": TEXT, "sig": HEX}`, where TEXT is the JSON of [`Signed`] and
//! HEX the ed25519 signature of `clive-announce-v1\n` + TEXT by the
//! `origin` key. Messages are at most [`MAX_MESSAGE`] bytes. A node sends
//! at most one announcement per [`MIN_INTERVAL`] and accepts at most
//! [`PER_ORIGIN_PER_MINUTE`] from each origin; the rest are dropped.
//! Only peers this node admits (known peers, or holders of a capability)
//! may join its side of the topic. What an announcement says beyond
//! addresses and revocations reaches the rest of the node as a typed
//! [`Announcement`] event.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clive_trust::{CertId, clock::Clock};
use iroh::{EndpointId, PublicKey, Signature};
use iroh_gossip::{Gossip, api::GossipSender};
use serde::{Deserialize, Serialize};

/// The topic every node announces on.
pub const TOPIC: &str = "clive/announce/v1";
/// The largest announcement, in bytes.
pub const MAX_MESSAGE: usize = 4096;
/// Least time between two announcements this node sends.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Most announcements accepted from one origin per minute.
pub const PER_ORIGIN_PER_MINUTE: u32 = 30;
const DOMAIN: &[u8] = b"clive-announce-v1\n";
/// Announcements older or newer than this are ignored.
const MAX_SKEW: u64 = 600;

/// What is announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Body {
    /// The origin listens at these addresses.
    Addrs {
        /// The addresses.
        addrs: Vec<SocketAddr>,
    },
    /// A signed revocation (its canonical encoding).
    Revocation {
        /// The revocation.
        revocation: String,
    },
    /// The origin has timestamp `version` of the zone with id `zone`.
    Zone {
        /// The zone's id.
        zone: String,
        /// Its timestamp version.
        version: u64,
    },
}

/// What a verified announcement tells the concerns of this node that
/// subscribe to it ([`Shared::announcements`]): zones (`zones.rs`), and
/// later jobs and sync. Addresses and revocations are the network layer's
/// own and are acted on here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// The known peer `origin` has timestamp `version` of the zone with id
    /// `zone`.
    Zone {
        /// Who announced it.
        origin: EndpointId,
        /// The zone's id.
        zone: String,
        /// Its timestamp version.
        version: u64,
    },
}

/// How many announcements wait for a slow subscriber before the oldest
/// are dropped (it is told how many it missed).
pub const EVENT_BACKLOG: usize = 256;

/// The signed part of an announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    /// Who announces (endpoint id).
    pub origin: String,
    /// When (seconds since the Unix epoch).
    pub at: u64,
    /// What.
    pub body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    body: String,
    sig: String,
}

/// Signs and encodes an announcement made at `now`.
pub fn seal(key: &iroh::SecretKey, body: Body, now: u64) -> Option<Vec<u8>> {
    let signed = Signed {
        origin: key.public().to_string(),
        at: now,
        body,
    };
    let text = serde_json::to_string(&signed).ok()?;
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(text.as_bytes());
    let sig = key.sign(&msg);
    let bytes = serde_json::to_vec(&Envelope {
        body: text,
        sig: hex::encode(sig.to_bytes()),
    })
    .ok()?;
    (bytes.len() <= MAX_MESSAGE).then_some(bytes)
}

/// Decodes an announcement and checks its signature and age.
pub fn open(bytes: &[u8], now: u64) -> Result<(EndpointId, Body), String> {
    if bytes.len() > MAX_MESSAGE {
        return Err("announcement too large".into());
    }
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let signed: Signed = serde_json::from_str(&env.body).map_err(|e| e.to_string())?;
    let origin: PublicKey = signed.origin.parse().map_err(|_| "bad origin key")?;
    let mut sig = [0u8; 64];
    hex::decode_to_slice(&env.sig, &mut sig).map_err(|_| "bad signature encoding")?;
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(env.body.as_bytes());
    origin
        .verify(&msg, &Signature::from_bytes(&sig))
        .map_err(|_| "signature does not verify")?;
    if signed.at.abs_diff(now) > MAX_SKEW {
        return Err("announcement too old or from the future".into());
    }
    Ok((origin, signed.body))
}

/// The node's side of the announcement topic.
#[derive(Debug)]
pub struct Announcer {
    pub(super) gossip: Gossip,
    pub(super) sender: tokio::sync::Mutex<Option<(GossipSender, Instant)>>,
    pub(super) seen: Mutex<HashSet<CertId>>,
    clock: Arc<dyn Clock>,
}

impl Announcer {
    /// A gossip instance on `endpoint`; announcements are dated by `clock`.
    pub fn new(endpoint: &iroh::Endpoint, clock: Arc<dyn Clock>) -> Self {
        Announcer {
            gossip: Gossip::builder()
                .max_message_size(MAX_MESSAGE)
                .spawn(endpoint.clone()),
            sender: Default::default(),
            seen: Default::default(),
            clock,
        }
    }

    /// The gossip protocol, for the router.
    pub fn gossip(&self) -> &Gossip {
        &self.gossip
    }

    /// Adds `peer` to this node's neighbours on the topic (once
    /// subscribed), in the background: the caller never waits on gossip.
    pub fn join_peer(self: &Arc<Self>, peer: EndpointId) {
        let this = self.clone();
        tokio::spawn(async move {
            let join = async {
                let tx = this.sender.lock().await.as_ref().map(|(tx, _)| tx.clone());
                if let Some(tx) = tx {
                    tx.join_peers(vec![peer]).await
                } else {
                    Ok(())
                }
            };
            match tokio::time::timeout(Duration::from_secs(10), join).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("joining {} on the topic: {e}", peer.fmt_short()),
                Err(_) => tracing::debug!("joining {} on the topic timed out", peer.fmt_short()),
            }
        });
    }

    /// Broadcasts `body`, no sooner than [`MIN_INTERVAL`] after the last.
    pub(crate) async fn send(&self, key: &iroh::SecretKey, body: Body) {
        let Some(bytes) = seal(key, body, self.clock.now()) else {
            return;
        };
        // Reserve the next slot, then wait for it without holding the lock.
        let (tx, at) = {
            let mut sender = self.sender.lock().await;
            let Some((tx, last)) = sender.as_mut() else {
                return;
            };
            let at = (*last + MIN_INTERVAL).max(Instant::now());
            *last = at;
            (tx.clone(), at)
        };
        tokio::time::sleep_until(at.into()).await;
        if let Err(e) = tx.broadcast(bytes.into()).await {
            tracing::debug!("announcing: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_announcements_open_and_forgeries_do_not() {
        let key = iroh::SecretKey::from_bytes(&[5; 32]);
        let body = Body::Addrs {
            addrs: vec!["127.0.0.1:1".parse().unwrap()],
        };
        let now = 1_700_000_000;
        let bytes = seal(&key, body.clone(), now).unwrap();
        assert_eq!(open(&bytes, now).unwrap(), (key.public(), body));
        let tampered = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("127.0.0.1:1", "127.0.0.1:2");
        assert!(open(tampered.as_bytes(), now).is_err());
        assert!(open(&bytes, now + 3600).is_err());
        assert!(open(b"junk", now).is_err());
        assert!(open(&vec![b'{'; MAX_MESSAGE + 1], now).is_err());
    }
}
