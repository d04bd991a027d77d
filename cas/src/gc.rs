//! Garbage collection: remove what no pin reaches.
//!
//! The sweep itself is iroh-blobs' collector, which also spares every object
//! an import or transfer in flight protects. It runs only when asked: the
//! store's protect callback waits for a [`GcTrigger`] request, hands the
//! collector our live set, and reports back when the next round begins.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use iroh_blobs::{
    api::blobs::BlobStatus,
    store::{GcConfig, ProtectOutcome},
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{
    CasError, GcLock, Hash, Result, Store,
    reach::{Reach, Root},
};

/// What a garbage collection removed (or, dry, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// True when nothing was removed because it was a dry run.
    pub dry_run: bool,
    /// Objects reachable from a pin, kept.
    pub kept: u64,
    /// Objects removed.
    pub removed: u64,
    /// Bytes those objects held.
    pub freed_bytes: u64,
    /// The removed objects.
    #[serde(with = "hashes_hex")]
    pub removed_hashes: Vec<Hash>,
    /// Orphaned files removed from the store's directories (left-overs of a
    /// failed or killed import); their bytes are in `freed_bytes`.
    #[serde(default)]
    pub orphan_files: u64,
    /// Bytes those orphaned files held.
    #[serde(default)]
    pub orphan_bytes: u64,
    /// Why no object was removed although some are unreachable (a damaged
    /// tree hides what it holds), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_back: Option<String>,
}

struct GcRequest {
    live: HashSet<Hash>,
    done: oneshot::Sender<()>,
}

struct GcState {
    requests: mpsc::Receiver<GcRequest>,
    running: Option<oneshot::Sender<()>>,
}

/// Starts collector rounds on request.
#[derive(Clone)]
pub(crate) struct GcTrigger {
    requests: mpsc::Sender<GcRequest>,
    state: Arc<Mutex<GcState>>,
}

impl std::fmt::Debug for GcTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcTrigger")
    }
}

impl GcTrigger {
    pub(crate) fn new() -> Self {
        let (tx, rx) = mpsc::channel(1);
        GcTrigger {
            requests: tx,
            state: Arc::new(Mutex::new(GcState {
                requests: rx,
                running: None,
            })),
        }
    }

    /// The collector configuration whose rounds this trigger starts.
    pub(crate) fn config(&self) -> GcConfig {
        let state = self.state.clone();
        GcConfig {
            interval: Duration::ZERO,
            add_protected: Some(Arc::new(move |live| {
                let state = state.clone();
                Box::pin(async move {
                    let mut state = state.lock().await;
                    // A new round starting means the previous one finished.
                    if let Some(done) = state.running.take() {
                        let _ = done.send(());
                    }
                    match state.requests.recv().await {
                        Some(req) => {
                            live.extend(req.live);
                            state.running = Some(req.done);
                            ProtectOutcome::Continue
                        }
                        // The store is gone: never start another round.
                        None => std::future::pending().await,
                    }
                })
            })),
        }
    }

    async fn run(&self, live: HashSet<Hash>) -> Result<()> {
        let (done, finished) = oneshot::channel();
        self.requests
            .send(GcRequest { live, done })
            .await
            .map_err(|_| CasError::Gc("the collector is not running".into()))?;
        finished
            .await
            .map_err(|_| CasError::Gc("the collector stopped; see the log".into()))
    }
}

impl Store {
    /// Removes every object that neither a pin nor an `extra` root reaches,
    /// and orphaned files; with `dry_run`, only reports. Damaged objects are
    /// kept (`fsck --repair` fetches them again); while a damaged tree hides
    /// what it holds, no object is removed.
    ///
    /// Runs under `lock` (from [`Store::lock_for_gc`]), which the caller
    /// took before computing `extra`: no object can become a root between
    /// computing what is live and the end of the sweep.
    pub async fn gc(&self, _lock: &GcLock, dry_run: bool, extra: &[Root]) -> Result<GcReport> {
        let started = std::time::SystemTime::now();
        let reached = self.walk_pins(extra).await?;
        let hidden: Vec<String> = reached
            .iter()
            .filter_map(|r| match &r.reach {
                Reach::Damaged {
                    cause,
                    maybe_tree: true,
                } => Some(format!("{} ({}: {cause})", r.hash, r.path)),
                _ => None,
            })
            .collect();
        let live: HashSet<Hash> = reached.into_iter().map(|r| r.hash).collect();
        let mut candidates = HashMap::new();
        for (hash, stored) in self.inventory().await? {
            if !live.contains(&hash) {
                candidates.insert(hash, stored.bytes());
            }
        }
        let kept = live.len() as u64;
        let held_back = (!hidden.is_empty() && !candidates.is_empty()).then(|| {
            format!(
                "{} unreachable objects kept: damaged trees hide what they hold: {}; \
                 run `clive-node fsck --repair`",
                candidates.len(),
                hidden.join(", ")
            )
        });
        if held_back.is_some() {
            candidates.clear();
        }
        if !dry_run && !candidates.is_empty() {
            let _removing = Removing::start(&self.removals);
            self.gc.run(live).await?;
            let mut gone = HashMap::new();
            for (hash, size) in candidates {
                if matches!(self.blobs.blobs().status(hash).await?, BlobStatus::NotFound) {
                    gone.insert(hash, size);
                }
            }
            candidates = gone;
        }
        let orphans = self.sweep_orphans(started, dry_run).await?;
        let mut removed_hashes: Vec<Hash> = candidates.keys().copied().collect();
        removed_hashes.sort();
        Ok(GcReport {
            dry_run,
            kept,
            removed: removed_hashes.len() as u64,
            freed_bytes: candidates.values().sum::<u64>() + orphans.bytes,
            removed_hashes,
            orphan_files: orphans.files,
            orphan_bytes: orphans.bytes,
            held_back,
        })
    }

    /// Removes exactly `hashes` from the store (for a repair: the damaged
    /// copies), keeping everything else, whatever reaches it.
    pub async fn remove_objects(&self, hashes: &[Hash]) -> Result<()> {
        // What is live is everything stored now: nothing may be written
        // until the sweep is done.
        let lock = self.lock_for_gc().await;
        self.remove_objects_locked(&lock, hashes).await
    }

    /// [`Store::remove_objects`] under a `lock` the caller already holds
    /// (it decided what to remove under it).
    pub async fn remove_objects_locked(&self, _lock: &GcLock, hashes: &[Hash]) -> Result<()> {
        if hashes.is_empty() {
            return Ok(());
        }
        let doomed: HashSet<Hash> = hashes.iter().copied().collect();
        let live: HashSet<Hash> = self
            .inventory()
            .await?
            .into_iter()
            .map(|(h, _)| h)
            .filter(|h| !doomed.contains(h))
            .collect();
        let removing = Removing::start(&self.removals);
        self.gc.run(live).await?;
        drop(removing);
        for hash in hashes {
            if !matches!(
                self.blobs.blobs().status(*hash).await?,
                BlobStatus::NotFound
            ) {
                return Err(CasError::Gc(format!("{hash} could not be removed")));
            }
        }
        Ok(())
    }
}

/// A sweep that removes objects, counted in [`Store::removals`] when it
/// starts and again when it ends (also on an error): a check of what is
/// here that ran while it did is stale either way.
struct Removing<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> Removing<'a> {
    fn start(count: &'a std::sync::atomic::AtomicU64) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Removing(count)
    }
}

impl Drop for Removing<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

pub(crate) mod hashes_hex {
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser::SerializeSeq};

    use crate::{Hash, hash::parse_hash};

    pub fn serialize<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(hashes.len()))?;
        for h in hashes {
            seq.serialize_element(&h.to_hex())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| parse_hash(s).map_err(D::Error::custom))
            .collect()
    }
}
