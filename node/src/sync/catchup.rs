//! One catch-up with one peer, and filling the follow set.
//!
//! A catch-up: `heads` with the peer's watermark (one message each way;
//! `unchanged` ends it unless the follow set is to be filled anyway); for
//! each zone this node holds whose head differs at the peer and is not
//! older, the naming client (`net::zones::sync_from`); the results the
//! peer lists that this node lacks (of jobs submitted to it, and of jobs
//! one of this node's own devices ran for itself);
//! then fetching what the follow set lacks, from the peer first and then
//! every other connected one. The watermark is recorded only when all of
//! it completed. Bounded: at most [`MAX_CATCH_UP`] in time, and every list
//! it walks is bounded by the protocol's limits.

use std::{collections::HashSet, sync::Arc, time::Duration};

use clive_cas::{Hash, Progress};
use clive_naming::Zones;
use clive_trust::PublicIdentity;
use iroh::{EndpointId, endpoint::Connection};

use crate::{
    Node, NodeError, SyncError,
    jobs::{
        JobError,
        document::{JobDoc, JobId},
        records::{JobRecord, JobState, RECORD_VERSION, Side},
        result::SignedResult,
    },
    net::{
        devices, fetch, keeper, lock,
        shared::Shared,
        sync::{
            Exchange,
            proto::{self, SyncAnswer, SyncAsk},
            table::{self, FollowRecord, PeerRecord},
        },
        wire, zones as net_zones,
    },
};

/// The longest one catch-up may run; one cut off continues on the next.
pub const MAX_CATCH_UP: Duration = Duration::from_secs(3600);

/// The content hashes (and listed lengths) of the names `follows` reach.
pub(crate) fn targets(zones: &Zones, follows: &[FollowRecord]) -> Vec<(Hash, u64)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for follow in follows {
        for (name, file) in zones.targets(&follow.zone).unwrap_or_default() {
            if !follow.covers(&name) {
                continue;
            }
            let Some(hash) = clive_naming::source::content_address(&file)
                .and_then(|h| clive_cas::parse_hash(&h).ok())
            else {
                continue;
            };
            if seen.insert(hash) {
                out.push((hash, file.length));
            }
        }
    }
    out
}

/// What filling the follow set did.
#[derive(Debug, Default)]
pub(crate) struct Filled {
    pub objects: u64,
    pub bytes: u64,
    /// Names whose content is still not all here.
    pub missing: u64,
    pub errors: Vec<String>,
}

/// Fetches what `follows` reach and is not all here, from `providers`
/// in order (every known peer, connected first, when empty). Reports the
/// objects and bytes still to fetch to `behind` as it goes.
pub(crate) async fn fill(
    node: &Node,
    shared: &Arc<Shared>,
    follows: &[FollowRecord],
    providers: Vec<EndpointId>,
    progress: Arc<dyn Progress>,
) -> Filled {
    fill_reporting(node, shared, follows, providers, progress, &|_, _| {}).await
}

async fn fill_reporting(
    node: &Node,
    shared: &Arc<Shared>,
    follows: &[FollowRecord],
    providers: Vec<EndpointId>,
    progress: Arc<dyn Progress>,
    behind: &(dyn Fn(u64, u64) + Sync),
) -> Filled {
    let state = node.sync_state();
    let _one = match state.filling.try_lock() {
        Ok(one) => one,
        Err(_) => {
            // Another fill runs (the daemon's own, or another call's):
            // its progress is shown meanwhile, as it may be fetching
            // what this one is for.
            state.fill_progress.watch(progress.clone());
            state.filling.lock().await
        }
    };
    let _shown = state.fill_progress.begin(progress);
    let shown: Arc<dyn Progress> = state.fill_progress.clone();
    fill_locked(node, shared, follows, providers, &shown, behind).await
}

async fn fill_locked(
    node: &Node,
    shared: &Arc<Shared>,
    follows: &[FollowRecord],
    providers: Vec<EndpointId>,
    progress: &Arc<dyn Progress>,
    behind: &(dyn Fn(u64, u64) + Sync),
) -> Filled {
    let zones = Zones::new(node.db().clone());
    let mut filled = Filled::default();
    let mut missing = Vec::new();
    let complete = &node.sync_state().complete;
    for (hash, length) in targets(&zones, follows) {
        match complete.here(node.cas(), hash).await {
            Ok(Some(_)) => {}
            Ok(None) => missing.push((hash, length)),
            Err(e) => filled.errors.push(e.to_string()),
        }
    }
    let (mut left, mut left_bytes) = (
        missing.len() as u64,
        missing.iter().map(|(_, l)| *l).sum::<u64>(),
    );
    node.sync_state().fill_progress.set_fill_total(left_bytes);
    behind(left, left_bytes);
    for (hash, length) in missing {
        let removals = node.cas().removals();
        match fetch::get(shared, hash, providers.clone(), progress.clone()).await {
            Ok(fetched) => {
                complete.claim(removals, hash, fetched.size);
                filled.objects += fetched.objects;
                filled.bytes += fetched.bytes_received;
                node.sync_state()
                    .fetched
                    .fetch_add(fetched.bytes_received, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => {
                filled.missing += 1;
                filled.errors.push(crate::error::error_chain(&e));
            }
        }
        left -= 1;
        left_bytes = left_bytes.saturating_sub(length);
        behind(left, left_bytes);
    }
    filled
}

/// A sync-protocol connection to `peer`: the one kept open, else a new
/// one (saying hello on the peer protocol first when no connection to it
/// is open, counted in `exchange`).
async fn connection(
    node: &Node,
    shared: &Arc<Shared>,
    peer: EndpointId,
    exchange: &mut Exchange,
) -> Result<Connection, NodeError> {
    let state = node.sync_state();
    if let Some(conn) = lock(&state.conns).get(&peer)
        && conn.close_reason().is_none()
    {
        return Ok(conn.clone());
    }
    if !shared.is_connected(&peer) {
        keeper::connect(shared, peer).await?;
        exchange.messages_sent += 1;
        exchange.messages_received += 1;
    }
    let conn = keeper::dial(shared, peer, proto::SYNC_ALPN).await?;
    lock(&state.conns).insert(peer, conn.clone());
    Ok(conn)
}

/// One request and its reply, counted.
async fn call(
    conn: &Connection,
    ask: &SyncAsk,
    exchange: &mut Exchange,
) -> Result<SyncAnswer, NodeError> {
    exchange.messages_sent += 1;
    exchange.bytes_sent += wire::encode(ask)?.len() as u64;
    let answer: SyncAnswer = wire::call(conn, ask, Some(wire::CALL_TIMEOUT)).await?;
    exchange.messages_received += 1;
    // The peer's encoding of the reply is serde_json's too: the same length.
    exchange.bytes_received += wire::encode(&answer).map_or(0, |b| b.len() as u64);
    Ok(answer)
}

/// Runs one catch-up with `peer` (one at a time per peer), bounded by
/// [`MAX_CATCH_UP`]; with `fill_anyway`, the follow set is filled even
/// when the peer's heads are unchanged.
pub(crate) async fn run(
    node: &Node,
    shared: &Arc<Shared>,
    peer: EndpointId,
    fill_anyway: bool,
    progress: Arc<dyn Progress>,
) -> Result<Exchange, NodeError> {
    let state = node.sync_state();
    let run_lock = state.run_lock(peer);
    let _one = run_lock.lock().await;
    let on_conn = lock(&shared.conns).get(&peer).map(|c| c.stable_id());
    state.update(peer, |s| {
        s.running = true;
        s.due = false;
        s.on_conn = on_conn;
    });
    let outcome = tokio::time::timeout(
        MAX_CATCH_UP,
        catch_up(node, shared, peer, fill_anyway, progress),
    )
    .await
    .unwrap_or_else(|_| {
        Err(SyncError::TooLong {
            peer: peer.fmt_short().to_string(),
            secs: MAX_CATCH_UP.as_secs(),
        }
        .into())
    });
    let now_on = lock(&shared.conns).get(&peer).map(|c| c.stable_id());
    state.update(peer, |s| {
        s.running = false;
        s.behind = (0, 0);
        // A catch-up that dialled the peer itself began on no connection.
        s.on_conn = s.on_conn.or(now_on);
        s.exchanges += 1;
        match &outcome {
            Ok(exchange) => {
                s.refused = false;
                s.bytes_fetched += exchange.bytes_fetched;
                s.settled = exchange.complete();
                s.error = exchange.errors.first().cloned();
                s.last = Some(exchange.clone());
            }
            Err(e) => {
                s.settled = false;
                s.refused = matches!(e, NodeError::Sync(SyncError::Refused { .. }));
                s.error = Some(crate::error::error_chain(e));
            }
        }
    });
    if outcome.is_err() {
        // A connection that failed is dialled afresh next time.
        lock(&state.conns).remove(&peer);
    }
    outcome
}

async fn catch_up(
    node: &Node,
    shared: &Arc<Shared>,
    peer: EndpointId,
    fill_anyway: bool,
    progress: Arc<dyn Progress>,
) -> Result<Exchange, NodeError> {
    let mut exchange = Exchange {
        peer: peer.to_string(),
        ..Exchange::default()
    };
    let conn = connection(node, shared, peer, &mut exchange).await?;
    let since = table::watermark(node.db(), peer.as_bytes())?
        .map(|r| r.watermark)
        .unwrap_or_default();
    let own = proto::heads_for(shared, node.executor(), &peer).digest();
    let ask = SyncAsk::Heads { since, digest: own };
    let short = || peer.fmt_short().to_string();
    let (digest, zones, results) = match call(&conn, &ask, &mut exchange).await? {
        SyncAnswer::Unchanged { digest } => {
            exchange.unchanged = true;
            (digest, Vec::new(), Vec::new())
        }
        SyncAnswer::Heads {
            digest,
            zones,
            results,
        } => (digest, zones, results),
        SyncAnswer::NotAllowed { reason } => {
            return Err(SyncError::Refused {
                peer: short(),
                reason,
            }
            .into());
        }
        SyncAnswer::Refused { reason } => {
            return Err(SyncError::Peer {
                peer: short(),
                reason: format!("refused the heads exchange: {reason}"),
            }
            .into());
        }
        other => {
            return Err(SyncError::Peer {
                peer: short(),
                reason: format!("answered heads out of turn: {other:?}"),
            }
            .into());
        }
    };
    if exchange.unchanged && !fill_anyway {
        return Ok(exchange);
    }
    sync_zones(node, shared, peer, &zones, &mut exchange).await;
    take_results(node, shared, peer, &conn, &results, &mut exchange).await;
    let follows = table::follows(node.db())?;
    download_plain_targets(node, &follows, &mut exchange).await;
    let mut providers = vec![peer];
    providers.extend(shared.conns_snapshot().into_iter().filter(|p| *p != peer));
    let state = node.sync_state();
    let behind = |objects, bytes| state.update(peer, |s| s.behind = (objects, bytes));
    let filled = fill_reporting(node, shared, &follows, providers, progress, &behind).await;
    exchange.objects_fetched += filled.objects;
    exchange.bytes_fetched += filled.bytes;
    exchange.missing = filled.missing;
    exchange.errors.extend(filled.errors);
    if exchange.complete() && !exchange.unchanged {
        table::set_watermark(
            node.db(),
            peer.as_bytes(),
            &PeerRecord {
                version: table::RECORD_VERSION,
                watermark: digest,
                at: node.now(),
            },
        )?;
    }
    Ok(exchange)
}

/// Downloads the followed targets of zones made by other TUF tools (no
/// BLAKE3 in their metadata) that are not here yet, from their mirror or
/// the peer they are followed through (`names/mirror.rs`). A target
/// refused (its bytes are not what the metadata signs) is logged, not
/// counted against the catch-up: it is tried again the next time.
async fn download_plain_targets(node: &Node, follows: &[FollowRecord], exchange: &mut Exchange) {
    for record in follows {
        match node
            .names()
            .download_mirror_targets(&record.zone, &record.prefix)
            .await
        {
            Ok(d) => {
                exchange.objects_fetched += d.downloaded;
                exchange.bytes_fetched += d.bytes;
                for f in &d.failed {
                    tracing::warn!(zone = d.zone, name = f.name, "not downloaded: {}", f.error);
                }
            }
            Err(e) => tracing::warn!(zone = record.zone, "downloading its targets: {e}"),
        }
    }
}

/// Runs the naming client for each zone held here whose head at `peer`
/// differs and is not older than this node's.
async fn sync_zones(
    node: &Node,
    shared: &Arc<Shared>,
    peer: EndpointId,
    heads: &[proto::ZoneHead],
    exchange: &mut Exchange,
) {
    let ours: std::collections::HashMap<String, proto::ZoneHead> = proto::zone_heads(node.db())
        .into_iter()
        .map(|h| (h.zone.clone(), h))
        .collect();
    let zones = Zones::new(node.db().clone());
    for head in heads.iter().take(proto::MAX_ZONES) {
        let behind = match ours.get(&head.zone) {
            Some(mine) => {
                head.timestamp > mine.timestamp
                    || (head.timestamp == mine.timestamp && head.hash != mine.hash)
            }
            // A zone known here whose metadata never verified.
            None => true,
        };
        if !behind {
            continue;
        }
        let Ok(Some((zone, _))) = zones.by_id(&head.zone) else {
            continue;
        };
        match net_zones::sync_from(shared, &zone, &head.zone, peer).await {
            Ok(_) => exchange.zones_synced.push(zone),
            Err(e) => exchange
                .errors
                .push(format!("zone {zone}: {}", crate::error::error_chain(&e))),
        }
    }
}

/// Takes in the results `peer` lists that this node lacks: of jobs this
/// node submitted to it and, from one of its own devices, of jobs the
/// device ran for itself (recorded here as sent to it, so that `job ls`
/// shows them and gc keeps their outputs).
async fn take_results(
    node: &Node,
    shared: &Arc<Shared>,
    peer: EndpointId,
    conn: &Connection,
    results: &[String],
    exchange: &mut Exchange,
) {
    let wanted = match wanted_results(node, shared, peer, results) {
        Ok(wanted) => wanted,
        Err(e) => {
            exchange.errors.push(e.to_string());
            return;
        }
    };
    for (id, new) in wanted {
        let ask = SyncAsk::Result {
            job: id.to_string(),
        };
        let taken = match call(conn, &ask, exchange).await {
            Ok(SyncAnswer::Result { result, doc }) => {
                take_result(node, shared, peer, id, new, doc.as_deref(), result).await
            }
            Ok(other) => Err(SyncError::Peer {
                peer: peer.fmt_short().to_string(),
                reason: format!("answered the result of job {id} with {other:?}"),
            }
            .into()),
            Err(e) => Err(e),
        };
        match taken {
            Ok(()) => exchange.results_fetched += 1,
            Err(e) => exchange.errors.push(format!(
                "result of job {id}: {}",
                crate::error::error_chain(&e)
            )),
        }
    }
}

/// The jobs of `available` (listed by `peer`) whose result to take, each
/// with whether this node has no record of it yet (a device's own job).
fn wanted_results(
    node: &Node,
    shared: &Arc<Shared>,
    peer: EndpointId,
    available: &[String],
) -> Result<Vec<(JobId, bool)>, NodeError> {
    let records = node.executor().records();
    let mut wanted = Vec::new();
    let device = devices::is_own_device(shared, &peer);
    for id in available.iter().take(proto::MAX_RESULTS) {
        let Ok(id) = id.parse::<JobId>() else {
            continue;
        };
        let sent = records.get(Side::Sent, &id).map_err(JobError::from)?;
        match sent {
            Some(r) if !proto::is_key(&r.peer, &peer) => {}
            // A result on record whose objects all arrived is not taken
            // again, even when the memo's cache evicted them since.
            Some(r) if r.result.is_none() || r.outputs_pending => wanted.push((id, false)),
            Some(_) => {}
            None if device
                && records
                    .get(Side::Run, &id)
                    .map_err(JobError::from)?
                    .is_none() =>
            {
                wanted.push((id, true));
            }
            None => {}
        }
    }
    Ok(wanted)
}

/// Checks and keeps the result of job `id` from `peer`, recording the job
/// first when it is `new` here (a device's own job: its document must be
/// the job's, and the result signed by the device for it, before anything
/// is recorded; a record left by a failed take is removed).
async fn take_result(
    node: &Node,
    shared: &Arc<Shared>,
    peer: EndpointId,
    id: JobId,
    new: bool,
    doc: Option<&str>,
    signed: SignedResult,
) -> Result<(), NodeError> {
    let records = node.executor().records();
    if new {
        let bad = |reason: String| SyncError::Peer {
            peer: peer.fmt_short().to_string(),
            reason,
        };
        let doc =
            doc.ok_or_else(|| bad(format!("sent the result of job {id} without its document")))?;
        let decoded = JobDoc::decode(doc.as_bytes()).map_err(JobError::from)?;
        if decoded.id() != id {
            return Err(bad(format!("sent a document that is not job {id}")).into());
        }
        let (result, signer) = signed.verify().map_err(JobError::from)?;
        if &signer.bytes() != peer.as_bytes() || result.job != id {
            return Err(bad(format!(
                "sent a result of job {id} not signed by itself for it"
            ))
            .into());
        }
        let record = JobRecord {
            version: RECORD_VERSION,
            id,
            doc: String::from_utf8_lossy(&decoded.encode()).into_owned(),
            peer: PublicIdentity::from_bytes(*peer.as_bytes()).openssh_line(),
            state: JobState::Done,
            // When the device ran it.
            submitted: result.started,
            reason: None,
            result: None,
            memo_hit: false,
            inputs: Vec::new(),
            device: true,
            outputs_pending: false,
        };
        if !records
            .put_new(Side::Sent, &record)
            .map_err(JobError::from)?
        {
            // Taken meanwhile (another device, or a submit of the same job).
            return Ok(());
        }
    }
    let taken = node
        .jobs()
        .received(shared, peer, id, signed, false, false)
        .await
        .map(drop);
    if taken.is_err() && new {
        records.remove(Side::Sent, &id).map_err(JobError::from)?;
    }
    taken
}
