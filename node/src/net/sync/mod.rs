//! The sync protocol's side on the network (ALPN `clive/sync/1`): its
//! wire format ([`proto`]), the tables it reads and writes ([`table`]: the
//! follow set and per-peer watermarks), and sync's live state
//! ([`SyncState`]), which the node holds. The `sync` handle, the catch-up
//! and the service (`crate::sync`) build on these; this module imports none
//! of them.

pub mod complete;
pub mod proto;
pub mod table;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use clive_cas::Progress;
use iroh::{EndpointId, endpoint::Connection};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::shared::lock;

/// One catch-up with one peer, as `sync now --json` reports it. Messages
/// and bytes count what the sync protocol sent and received (each message
/// counted at its encoded length); the naming client's and the fetches'
/// traffic is counted apart (`zones_synced`, `bytes_fetched`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// The peer (endpoint id).
    pub peer: String,
    /// True when the peer's heads had not changed since the watermark.
    pub unchanged: bool,
    /// Messages this node sent.
    pub messages_sent: u64,
    /// Messages it received.
    pub messages_received: u64,
    /// Bytes of those messages sent.
    pub bytes_sent: u64,
    /// Bytes of those messages received.
    pub bytes_received: u64,
    /// Zones the naming client ran for (by local name).
    pub zones_synced: Vec<String>,
    /// Results of jobs this node submitted, taken in.
    pub results_fetched: u64,
    /// Objects fetched for the follow set (a result's objects are fetched
    /// as `job` fetches them, and counted in `results_fetched` alone).
    pub objects_fetched: u64,
    /// Their payload bytes received.
    pub bytes_fetched: u64,
    /// Objects of the follow set still missing afterwards.
    pub missing: u64,
    /// What failed (the next catch-up tries again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Where a catch-up with a peer stands.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerState {
    /// A catch-up runs now.
    pub(crate) running: bool,
    /// A catch-up is due (a new connection, news) and has not completed.
    pub(crate) due: bool,
    /// Objects (and bytes) still to fetch, while fetching.
    pub(crate) behind: (u64, u64),
    /// The last catch-up completed.
    pub(crate) settled: bool,
    /// The peer refused the last heads exchange: it does not sync with
    /// this node, and waiting for it would never end.
    pub(crate) refused: bool,
    /// The connection (its stable id) the last catch-up began on: one
    /// made since is not caught up with yet.
    pub(crate) on_conn: Option<usize>,
    pub(crate) exchanges: u64,
    pub(crate) bytes_fetched: u64,
    pub(crate) error: Option<String>,
    pub(crate) last: Option<Exchange>,
}

/// Sync's live state on one node: each peer's catch-up, the connections
/// of the sync protocol, and who has news.
#[derive(Debug, Default)]
pub struct SyncState {
    pub(crate) peers: Mutex<HashMap<EndpointId, PeerState>>,
    pub(crate) conns: Mutex<HashMap<EndpointId, Connection>>,
    pub(crate) runs: Mutex<HashMap<EndpointId, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) news: Mutex<HashSet<EndpointId>>,
    pub(crate) wake: Notify,
    /// Held while the follow set is filled: one fill at a time, so two never
    /// fetch the same object at once.
    pub(crate) filling: tokio::sync::Mutex<()>,
    /// Calls under way that will fill what they bring (`sync follow`):
    /// the service's own fill on a zone event waits for them, so the
    /// bytes are fetched, and shown, by the call that asked for them.
    pub(crate) calls_filling: std::sync::atomic::AtomicUsize,
    /// Rung when the last call that was filling ends.
    pub(crate) calls_done: Notify,
    /// Payload bytes every fill fetched since the node opened.
    pub(crate) fetched: std::sync::atomic::AtomicU64,
    /// The progress of the fill under way, which a caller waiting for
    /// `filling` watches meanwhile.
    pub(crate) fill_progress: Arc<FillProgress>,
    /// Followed objects known to be here completely.
    pub(crate) complete: complete::Complete,
    /// Rung when a synced folder is added or removed.
    pub(crate) folders_changed: Notify,
    /// The index of each synced folder, as last read or written (its
    /// table in `state.redb` is the copy that outlives the process).
    pub(crate) folder_indexes: Mutex<HashMap<String, Arc<crate::stamps::Index>>>,
    /// Each synced folder as its last full scan listed it, and the version
    /// it held then, for a rescan that only stamps what is listed.
    pub(crate) folder_listings:
        Mutex<HashMap<String, (clive_cas::Hash, Arc<crate::stamps::Listing>)>>,
    /// Held by the sync of a folder under way (the command's or the
    /// watcher's), so two never scan, merge or publish it at once.
    pub(crate) folder_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The progress of the fill under way, shown to every caller watching it:
/// the one that runs it and those waiting to run their own, which would
/// otherwise see nothing while it fetches what they asked for. Only the
/// fill sets the total ([`FillProgress::set_fill_total`]); the fetches
/// it runs only advance it (a tree's fetch sets its own total, which is
/// not the fill's).
#[derive(Default)]
pub(crate) struct FillProgress {
    inner: Mutex<FillInner>,
}

#[derive(Default)]
struct FillInner {
    total: u64,
    done: u64,
    watchers: Vec<Watcher>,
}

/// One watcher, and the bytes it was shown before this fill (a caller that
/// watched another fill first, then runs its own): its bar goes on from
/// there, never past its total.
struct Watcher {
    progress: Arc<dyn Progress>,
    before: u64,
    shown: u64,
}

impl std::fmt::Debug for FillProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = lock(&self.inner);
        f.debug_struct("FillProgress")
            .field("total", &inner.total)
            .field("done", &inner.done)
            .field("watchers", &inner.watchers.len())
            .finish()
    }
}

fn same(a: &Arc<dyn Progress>, b: &Arc<dyn Progress>) -> bool {
    std::ptr::eq(Arc::as_ptr(a).cast::<()>(), Arc::as_ptr(b).cast::<()>())
}

impl FillProgress {
    /// A fill begins, shown to `own`; it ends when the returned guard
    /// drops (also when the fill is cancelled).
    pub(crate) fn begin(&self, own: Arc<dyn Progress>) -> FillShown<'_> {
        let mut inner = lock(&self.inner);
        let before = inner
            .watchers
            .iter()
            .find(|w| same(&w.progress, &own))
            .map_or(0, |w| w.shown);
        *inner = FillInner {
            watchers: vec![Watcher {
                progress: own,
                before,
                shown: before,
            }],
            ..FillInner::default()
        };
        FillShown(self)
    }

    /// `watcher` is shown the fill under way from where it stands.
    pub(crate) fn watch(&self, watcher: Arc<dyn Progress>) {
        let mut inner = lock(&self.inner);
        if inner.total > 0 {
            watcher.set_total(inner.total);
            watcher.advance(inner.done);
        }
        let shown = inner.done;
        inner.watchers.push(Watcher {
            progress: watcher,
            before: 0,
            shown,
        });
    }

    /// The bytes the fill under way is to fetch.
    pub(crate) fn set_fill_total(&self, bytes: u64) {
        let mut inner = lock(&self.inner);
        inner.total = bytes;
        for w in &inner.watchers {
            w.progress.set_total(w.before + bytes);
        }
    }
}

/// A fill under way; when it drops, no one watches any more.
pub(crate) struct FillShown<'p>(&'p FillProgress);

impl Drop for FillShown<'_> {
    fn drop(&mut self) {
        *lock(&self.0.inner) = FillInner::default();
    }
}

impl Progress for FillProgress {
    fn set_total(&self, _bytes: u64) {}

    fn advance(&self, bytes: u64) {
        let mut inner = lock(&self.inner);
        inner.done = inner.done.saturating_add(bytes);
        for w in &mut inner.watchers {
            w.progress.advance(bytes);
            w.shown = w.shown.saturating_add(bytes);
        }
    }
}

/// A call that will fill what it brings is under way (see
/// [`SyncState::calls_filling`]); when it drops, the service looks again.
pub(crate) struct CallFilling<'s>(&'s SyncState);

impl Drop for CallFilling<'_> {
    fn drop(&mut self) {
        let before = self
            .0
            .calls_filling
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        if before == 1 {
            self.0.calls_done.notify_waiters();
        }
        self.0.wake.notify_one();
    }
}

impl SyncState {
    /// A call that will fill what it brings begins; the service's own
    /// fill on a zone event waits until the returned guard drops.
    pub(crate) fn call_filling(&self) -> CallFilling<'_> {
        self.calls_filling
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        CallFilling(self)
    }

    /// Whether a call that will fill what it brings is under way.
    pub(crate) fn a_call_is_filling(&self) -> bool {
        self.calls_filling
            .load(std::sync::atomic::Ordering::Acquire)
            > 0
    }

    /// Returns once no call that will fill what it brings is under way.
    pub(crate) async fn calls_filled(&self) {
        loop {
            let done = self.calls_done.notified();
            if !self.a_call_is_filling() {
                return;
            }
            done.await;
        }
    }

    /// `peer` said its heads changed: the service runs a catch-up with it.
    pub(crate) fn peer_has_news(&self, peer: EndpointId) {
        lock(&self.news).insert(peer);
        self.mark_due(peer);
        self.wake.notify_one();
    }

    pub(crate) fn take_news(&self) -> Vec<EndpointId> {
        lock(&self.news).drain().collect()
    }

    pub(crate) fn mark_due(&self, peer: EndpointId) {
        lock(&self.peers).entry(peer).or_default().due = true;
    }

    pub(crate) fn update(&self, peer: EndpointId, f: impl FnOnce(&mut PeerState)) {
        f(lock(&self.peers).entry(peer).or_default());
    }

    /// The lock of the folder `dir`'s syncs.
    pub(crate) fn folder_lock(&self, dir: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.folder_locks)
            .entry(dir.to_owned())
            .or_default()
            .clone()
    }

    pub(crate) fn run_lock(&self, peer: EndpointId) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.runs).entry(peer).or_default().clone()
    }
}
