//! One blob from several peers at once.
//!
//! The first request goes to one provider and asks for the blob's first
//! piece and its last chunk: that proves the blob's size (and completes a
//! blob smaller than a piece, in the round trip a plain fetch would take).
//! Whatever is still missing then is cut into pieces of [`PIECE_BYTES`],
//! handed out to every provider, [`PER_PEER`] in flight each: a provider
//! takes its next piece when one is done, so a faster peer takes more of
//! them, in proportion to its throughput.
//!
//! iroh-blobs checks every 16 KiB group of a piece against the hash as it
//! arrives and stores only what matches. A piece whose provider fails
//! (sends wrong bytes, vanishes, does not have it) goes back to the queue
//! and that provider is given no more. Once the queue is empty, an idle
//! provider takes a copy of the piece in flight longest; whichever copy
//! finishes first wins and the other is cancelled, so a slow peer cannot
//! hold back the end.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use clive_cas::{Hash, Progress};
use iroh::EndpointId;
use iroh_blobs::protocol::{ChunkRanges, ChunkRangesExt, GetRequest};
use tokio::task::{AbortHandle, Id, JoinSet};

use super::{Failure, Shared, blob_conn, drive, explain, stored};
use crate::NodeError;

/// A blob at least this large is spread over every provider.
pub const SPREAD_MIN: u64 = 16 << 20;
/// Bytes in one piece handed to one provider (a whole number of 16 KiB
/// groups, so no group is fetched twice).
pub const PIECE_BYTES: u64 = 4 << 20;
/// Pieces in flight at once from one provider: one arriving while the next
/// request is on its way.
const PER_PEER: usize = 2;

/// What a spread fetch received, and from whom.
#[derive(Debug, Default)]
pub(super) struct Spread {
    /// Payload bytes from each provider that sent any, in the order of the
    /// providers.
    pub from: Vec<(EndpointId, u64)>,
    /// Providers given no more pieces, and why.
    pub dropped: Vec<(EndpointId, Failure)>,
}

/// Fetches as much of blob `hash` as `providers` (two or more) serve,
/// spreading it over them once it proves to be [`SPREAD_MIN`] or more. The
/// blob may still be incomplete afterwards, when every provider failed:
/// the caller then tries them in turn, with [`Spread::dropped`] to skip.
pub(super) async fn fetch(
    shared: &Arc<Shared>,
    hash: Hash,
    providers: &[EndpointId],
    progress: Arc<dyn Progress>,
) -> Result<Spread, NodeError> {
    let store = &shared.store;
    let counters: Vec<Arc<AtomicU64>> = providers.iter().map(|_| Arc::default()).collect();
    let mut spread = Spread::default();
    let mut alive = vec![true; providers.len()];
    if stored(store, hash).await?.validated_size().is_none() {
        let head = ChunkRanges::chunks(0..PIECE_BYTES / 1024) | ChunkRanges::last_chunk();
        for (i, peer) in providers.iter().enumerate() {
            let counted = Counted::new(progress.clone(), counters[i].clone());
            match piece(shared, hash, *peer, head.clone(), counted).await {
                Ok(()) => break,
                Err(failure) => {
                    alive[i] = false;
                    spread.dropped.push((*peer, failure));
                }
            }
        }
    }
    let after_head = stored(store, hash).await?;
    if let Some(size) = after_head.validated_size()
        && size >= SPREAD_MIN
    {
        let pieces = split(&(ChunkRanges::all() - &after_head.ranges), size);
        progress.set_total(size);
        let mut run = Run {
            shared,
            hash,
            providers,
            alive,
            in_flight: vec![0; providers.len()],
            queue: (0..pieces.len()).collect(),
            pieces,
            runners: HashMap::new(),
            tasks: JoinSet::new(),
            meta: HashMap::new(),
            progress,
            counters: counters.clone(),
        };
        run.drive(&mut spread.dropped).await;
    }
    spread.from = providers
        .iter()
        .zip(&counters)
        .map(|(peer, n)| (*peer, n.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect();
    Ok(spread)
}

/// The pieces being fetched and who fetches them.
struct Run<'a> {
    shared: &'a Arc<Shared>,
    hash: Hash,
    providers: &'a [EndpointId],
    /// Providers still given pieces.
    alive: Vec<bool>,
    /// Pieces each provider has in flight.
    in_flight: Vec<usize>,
    /// Pieces no one fetches, by index into `pieces`.
    queue: VecDeque<usize>,
    pieces: Vec<ChunkRanges>,
    /// For each piece in flight: who fetches it, since when, and its task.
    runners: HashMap<usize, Vec<Runner>>,
    tasks: JoinSet<Result<(), Failure>>,
    /// Each task's provider and piece.
    meta: HashMap<Id, (usize, usize)>,
    progress: Arc<dyn Progress>,
    counters: Vec<Arc<AtomicU64>>,
}

/// One provider fetching one piece.
struct Runner {
    peer: usize,
    since: Instant,
    task: AbortHandle,
}

impl Run<'_> {
    /// Hands out pieces until all are here or no provider is left.
    async fn drive(&mut self, dropped: &mut Vec<(EndpointId, Failure)>) {
        loop {
            self.hand_out();
            let Some(done) = self.tasks.join_next_with_id().await else {
                return;
            };
            let (id, result) = match done {
                Ok((id, result)) => (id, result),
                Err(e) if e.is_cancelled() => continue,
                Err(e) => (
                    e.id(),
                    Err(Failure::Other(format!("a fetch task failed: {e}"))),
                ),
            };
            let Some((peer, piece)) = self.meta.remove(&id) else {
                continue;
            };
            let Some(runners) = self.runners.get_mut(&piece) else {
                // A copy that lost the race, finished before its cancel.
                continue;
            };
            runners.retain(|r| r.task.id() != id);
            self.in_flight[peer] -= 1;
            match result {
                Ok(()) => {
                    for loser in self.runners.remove(&piece).unwrap_or_default() {
                        loser.task.abort();
                        self.in_flight[loser.peer] -= 1;
                    }
                }
                Err(failure) => {
                    tracing::info!(
                        peer = %self.providers[peer].fmt_short(),
                        "no more pieces of {} from this peer: {}", self.hash, failure.text()
                    );
                    // A peer with two pieces that fail is reported once.
                    if std::mem::replace(&mut self.alive[peer], false) {
                        dropped.push((self.providers[peer], failure));
                    }
                    if self.runners.get(&piece).is_some_and(|r| r.is_empty()) {
                        self.runners.remove(&piece);
                        self.queue.push_front(piece);
                    }
                }
            }
        }
    }

    /// Gives every live provider with room a piece: the next in the queue,
    /// or once it is empty a copy of the piece in flight longest that it
    /// does not fetch already.
    fn hand_out(&mut self) {
        for peer in 0..self.providers.len() {
            while self.alive[peer] && self.in_flight[peer] < PER_PEER {
                let Some(piece) = self.queue.pop_front().or_else(|| self.laggard(peer)) else {
                    break;
                };
                self.start(peer, piece);
            }
        }
    }

    /// The piece in flight that `peer` does not fetch already with the
    /// fewest copies, the longest in flight among those: two slow peers
    /// copying each other's piece cannot keep a fast one from both.
    fn laggard(&self, peer: usize) -> Option<usize> {
        self.runners
            .iter()
            .filter(|(_, r)| !r.is_empty() && r.iter().all(|runner| runner.peer != peer))
            .min_by_key(|(_, r)| (r.len(), r.iter().map(|runner| runner.since).min()))
            .map(|(piece, _)| *piece)
    }

    fn start(&mut self, peer: usize, piece: usize) {
        let shared = self.shared.clone();
        let (hash, provider) = (self.hash, self.providers[peer]);
        let ranges = self.pieces[piece].clone();
        let counted = Counted::new(self.progress.clone(), self.counters[peer].clone());
        let task = self
            .tasks
            .spawn(async move { self::piece(&shared, hash, provider, ranges, counted).await });
        self.meta.insert(task.id(), (peer, piece));
        self.in_flight[peer] += 1;
        self.runners.entry(piece).or_default().push(Runner {
            peer,
            since: Instant::now(),
            task,
        });
    }
}

/// Fetches what is still missing of `ranges` of blob `hash` from `peer`.
async fn piece(
    shared: &Arc<Shared>,
    hash: Hash,
    peer: EndpointId,
    ranges: ChunkRanges,
    progress: Counted,
) -> Result<(), Failure> {
    let store = &shared.store;
    let wanted = ranges - &stored(store, hash).await?.ranges;
    if wanted.is_empty() {
        return Ok(());
    }
    let conn = blob_conn(shared, peer).await?;
    let stream = store
        .blobs()
        .remote()
        .execute_get(conn, GetRequest::blob_ranges(hash, wanted))
        .stream();
    match drive(store, stream, &progress).await {
        Ok(_) => Ok(()),
        Err(e) => Err(explain(shared, peer, e).await),
    }
}

/// Cuts `missing` (of a blob of `size` bytes) into pieces of at most
/// [`PIECE_BYTES`], each on whole 16 KiB groups.
fn split(missing: &ChunkRanges, size: u64) -> Vec<ChunkRanges> {
    let step = PIECE_BYTES / 1024;
    let end = size.div_ceil(1024).max(1);
    (0..end)
        .step_by(step as usize)
        .map(|start| ChunkRanges::chunks(start..(start + step).min(end)) & missing)
        .filter(|piece| !piece.is_empty())
        .collect()
}

/// Progress of a part of a larger fetch, which knows its own total.
pub(super) struct NoTotal(pub Arc<dyn Progress>);

impl Progress for NoTotal {
    fn advance(&self, bytes: u64) {
        self.0.advance(bytes);
    }
}

/// Progress that also counts the bytes of one provider.
struct Counted {
    inner: Arc<dyn Progress>,
    bytes: Arc<AtomicU64>,
}

impl Counted {
    fn new(inner: Arc<dyn Progress>, bytes: Arc<AtomicU64>) -> Counted {
        Counted { inner, bytes }
    }
}

impl Progress for Counted {
    fn set_total(&self, bytes: u64) {
        self.inner.set_total(bytes);
    }

    fn advance(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.inner.advance(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_what_is_missing_on_whole_groups() {
        let size = 10 * PIECE_BYTES + 5000;
        let all = split(&ChunkRanges::all(), size);
        assert_eq!(all.len(), 11);
        assert_eq!(all[0], ChunkRanges::chunks(0..4096));
        assert_eq!(all[10], ChunkRanges::chunks(40960..size.div_ceil(1024)));
        let have = ChunkRanges::chunks(0..6000);
        let rest = split(&(ChunkRanges::all() - &have), size);
        assert_eq!(rest.len(), 10);
        assert_eq!(rest[0], ChunkRanges::chunks(6000..8192));
    }
}
