//! The sync protocol, ALPN `clive/sync/1`: the summary of heads a catch-up
//! starts with, and the results of jobs a peer may take from here.
//!
//! Format version 1, in the exchange format of [`crate::net::wire`] (one
//! request and one reply per stream, JSON tagged by `type`, at most
//! [`wire::MAX_MESSAGE`] bytes, unknown fields refused). Every request
//! needs `fetch`:
//!
//! | request  | reply                                            |
//! |----------|--------------------------------------------------|
//! | `heads`  | `unchanged`, `heads`, `not_allowed` or `refused` |
//! | `result` | `result`, `not_allowed` or `refused`             |
//!
//! `not_allowed` says the caller holds no `fetch` here (this node does not
//! sync with it); `refused`, that the request did not decode or asked for
//! what is not here.
//!
//! `heads` carries `since`, the digest of the callee's heads the caller
//! last got and completed a catch-up with (its watermark, empty if none),
//! and `digest`, the caller's own heads as the callee would see them.
//! The callee's heads, for a caller, are: each zone it holds with verified
//! metadata (zone id, timestamp version, BLAKE3 of the timestamp file),
//! and the jobs with a result here that the caller may take: those it
//! submitted here and, when the caller is one of this node's own devices
//! (it holds every capability here and is a device of a zone this node
//! publishes in, `net::devices`), the jobs this node
//! ran for itself, so that a job run offline on a laptop has its result on
//! the desk machine too. Their digest
//! is the BLAKE3 of that list's JSON, sorted. When it equals `since`, the
//! answer is `unchanged` (one message each way, ~200 bytes); otherwise
//! `heads` lists them all (at most [`MAX_ZONES`] zones and
//! [`MAX_RESULTS`] results). A caller's `digest` that differs from the
//! callee's watermark for the caller tells the callee it has news to pull.
//! `result` asks for the signed result of one of those jobs; for a job the
//! callee ran for itself the answer carries its document too (`doc`, its
//! canonical JSON, at most [`MAX_DOC_IN_ANSWER`] as a JSON string), which
//! a device taking in a job it never saw needs to record it.

use std::sync::{Arc, Weak};

use clive_naming::{Zones, source::ZoneLocal, state::Db};
use clive_trust::{Capability, PublicIdentity};
use iroh::{
    EndpointId,
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
};
use serde::{Deserialize, Serialize};

use super::{SyncState, table};
use crate::{
    jobs::{document::JobId, executor::Executor, records::Side, result::SignedResult},
    net::{devices, shared::Shared, wire},
};

/// The ALPN of the sync protocol, with its version.
pub const SYNC_ALPN: &[u8] = b"clive/sync/1";

/// Most zones one `heads` lists.
pub const MAX_ZONES: usize = 256;
/// Most job results one `heads` lists.
pub const MAX_RESULTS: usize = 256;

/// What a peer asks on the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SyncAsk {
    /// The callee's heads, unless their digest is `since`.
    Heads {
        /// The digest of the callee's heads the caller has (empty: none).
        since: String,
        /// The caller's own heads digest, for the callee.
        digest: String,
    },
    /// The signed result of a job listed in the callee's heads.
    Result {
        /// The job id (64 hex).
        job: String,
    },
}

/// What a peer answers on the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SyncAnswer {
    /// Nothing new since `since`.
    Unchanged {
        /// The digest, as it stands.
        digest: String,
    },
    /// The callee's heads.
    Heads {
        /// Their digest.
        digest: String,
        /// Its zones.
        zones: Vec<ZoneHead>,
        /// Jobs with a result here the caller may take (job ids).
        results: Vec<String>,
    },
    /// A job's signed result.
    Result {
        /// The result.
        result: SignedResult,
        /// The job document's canonical JSON, for a job this node ran for
        /// itself (the caller, its own device, has no record of it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        doc: Option<String>,
    },
    /// The caller holds no `fetch` here: this node does not sync with it.
    NotAllowed {
        /// Why, for the caller's user.
        reason: String,
    },
    /// The request was refused (it did not decode, or asked for what is
    /// not here).
    Refused {
        /// Why, for the caller's user.
        reason: String,
    },
}

/// One zone's head.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneHead {
    /// The zone's id.
    pub zone: String,
    /// Its timestamp version.
    pub timestamp: u64,
    /// BLAKE3 of its timestamp file (hex).
    pub hash: String,
}

/// A node's heads as one peer sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heads {
    /// Its zones, by id.
    pub zones: Vec<ZoneHead>,
    /// Results the peer may take, by job id.
    pub results: Vec<String>,
}

impl Heads {
    /// The digest of these heads (64 hex digits).
    pub fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        blake3::hash(&bytes).to_hex().to_string()
    }
}

/// The heads of every zone held in `db` with verified metadata, by id.
pub fn zone_heads(db: &Arc<redb::Database>) -> Vec<ZoneHead> {
    let zones = Zones::new(db.clone());
    let raw = Db::Rw(db.clone());
    let mut heads: Vec<ZoneHead> = zones
        .list(None)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|info| {
            let version = info.verified.as_ref()?.timestamp;
            let bytes = ZoneLocal::current(&raw, &info.zone, "timestamp").ok()??;
            Some(ZoneHead {
                zone: info.id,
                timestamp: version,
                hash: blake3::hash(&bytes).to_hex().to_string(),
            })
        })
        .collect();
    heads.sort();
    heads.dedup_by(|a, b| a.zone == b.zone);
    heads.truncate(MAX_ZONES);
    heads
}

/// The jobs with a result here that `peer` may take: those it submitted
/// and, for one of this node's own devices, those this node ran for itself.
pub fn results_for(executor: &Executor, peer: &EndpointId, device: bool) -> Vec<String> {
    let mut out: Vec<(String, String)> = executor
        .records()
        .all(Side::Run)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.result.is_some() && may_take(&r.peer, peer, device))
        .filter(|r| !r.peer.is_empty() || fits_an_answer(&r.doc))
        .map(|r| (r.submitted.clone(), r.id.to_string()))
        .collect();
    // The newest first, when there are more than a reply holds.
    out.sort_by(|a, b| b.cmp(a));
    let mut ids: Vec<String> = out
        .into_iter()
        .take(MAX_RESULTS)
        .map(|(_, id)| id)
        .collect();
    ids.sort();
    ids
}

/// Most bytes of a job document (as a JSON string) a `result` answer
/// carries: with the signed result it stays within [`wire::MAX_MESSAGE`].
/// A device's job with a larger document stays on the device that ran it.
pub const MAX_DOC_IN_ANSWER: usize = 40 * 1024;

fn fits_an_answer(doc: &str) -> bool {
    serde_json::to_string(doc).is_ok_and(|quoted| quoted.len() <= MAX_DOC_IN_ANSWER)
}

/// Whether `peer` may take the result of a job run here for `requester`
/// (its key as records keep it; empty for this node's own jobs).
fn may_take(requester: &str, peer: &EndpointId, device: bool) -> bool {
    if requester.is_empty() {
        device
    } else {
        is_key(requester, peer)
    }
}

/// Whether `key` (an OpenSSH line, as job records keep it) is `peer`'s.
pub fn is_key(key: &str, peer: &EndpointId) -> bool {
    PublicIdentity::parse(key).is_ok_and(|k| &k.bytes() == peer.as_bytes())
}

/// This node's heads as `peer` sees them.
pub(crate) fn heads_for(shared: &Shared, executor: &Executor, peer: &EndpointId) -> Heads {
    Heads {
        zones: zone_heads(&shared.db),
        results: results_for(executor, peer, devices::is_own_device(shared, peer)),
    }
}

fn refused(reason: String) -> SyncAnswer {
    SyncAnswer::Refused { reason }
}

/// The sync protocol's handler.
#[derive(Debug, Clone)]
pub struct SyncProtocol {
    shared: Weak<Shared>,
    executor: Arc<Executor>,
    state: Arc<SyncState>,
}

impl SyncProtocol {
    /// The handler of the node whose network is `shared`.
    pub(crate) fn new(
        shared: Weak<Shared>,
        executor: Arc<Executor>,
        state: Arc<SyncState>,
    ) -> Self {
        SyncProtocol {
            shared,
            executor,
            state,
        }
    }

    fn answer(&self, peer: EndpointId, ask: SyncAsk) -> Option<SyncAnswer> {
        let shared = self.shared.upgrade()?;
        if let Err(why) = shared.require(&peer, Capability::Fetch) {
            return Some(SyncAnswer::NotAllowed {
                reason: why.to_string(),
            });
        }
        Some(match ask {
            SyncAsk::Heads { since, digest } => {
                let known = table::watermark(&shared.db, peer.as_bytes())
                    .ok()
                    .flatten()
                    .map(|r| r.watermark);
                if known.as_deref() != Some(digest.as_str()) {
                    self.state.peer_has_news(peer);
                }
                let heads = heads_for(&shared, &self.executor, &peer);
                let digest = heads.digest();
                if digest == since {
                    SyncAnswer::Unchanged { digest }
                } else {
                    SyncAnswer::Heads {
                        digest,
                        zones: heads.zones,
                        results: heads.results,
                    }
                }
            }
            SyncAsk::Result { job } => {
                self.result(&peer, &job, devices::is_own_device(&shared, &peer))
            }
        })
    }

    fn result(&self, peer: &EndpointId, job: &str, device: bool) -> SyncAnswer {
        let Ok(id) = job.parse::<JobId>() else {
            return refused("not a job id".into());
        };
        match self.executor.records().get(Side::Run, &id) {
            Ok(Some(record))
                if may_take(&record.peer, peer, device)
                    && (!record.peer.is_empty() || fits_an_answer(&record.doc)) =>
            {
                match record.result {
                    Some(result) => SyncAnswer::Result {
                        result,
                        doc: record.peer.is_empty().then_some(record.doc),
                    },
                    None => refused(format!("job {id} has no result yet")),
                }
            }
            Ok(_) => refused(format!("no job {id} here has a result for you")),
            Err(e) => refused(e.to_string()),
        }
    }
}

impl ProtocolHandler for SyncProtocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        while let Ok((send, recv)) = conn.accept_bi().await {
            let this = self.clone();
            let peer = conn.remote_id();
            tokio::spawn(async move {
                let reply = move |ask| async move { this.answer(peer, ask) };
                if let Err(e) = wire::answer(send, recv, reply, refused).await {
                    tracing::debug!(peer = %peer.fmt_short(), "sync stream: {e}");
                }
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let ask = SyncAsk::Heads {
            since: String::new(),
            digest: "d".into(),
        };
        let bytes = wire::encode(&ask).unwrap();
        assert_eq!(wire::decode::<SyncAsk>(&bytes).unwrap(), ask);
        assert!(wire::decode::<SyncAsk>(b"{\"type\":\"nope\"}").is_err());
        assert!(wire::decode::<SyncAsk>(b"\xff").is_err());
        let extra = br#"{"type":"heads","since":"","digest":"","more":1}"#;
        assert!(wire::decode::<SyncAsk>(extra).is_err());
        let head = br#"{"type":"heads","digest":"d","zones":[{"zone":"z","timestamp":1,"hash":"h","x":2}],"results":[]}"#;
        assert!(wire::decode::<SyncAnswer>(head).is_err());
    }

    #[test]
    fn the_digest_changes_with_any_head() {
        let a = Heads {
            zones: vec![ZoneHead {
                zone: "z".into(),
                timestamp: 1,
                hash: "h".into(),
            }],
            results: vec![],
        };
        let mut b = a.clone();
        b.zones[0].timestamp = 2;
        assert_ne!(a.digest(), b.digest());
        let mut c = a.clone();
        c.results.push("j".into());
        assert_ne!(a.digest(), c.digest());
        assert_eq!(a.digest(), a.clone().digest());
    }
}
