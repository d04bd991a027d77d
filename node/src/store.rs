//! The store handle ([`Node::store`]): adding, reading, listing, exporting
//! and pinning objects, fetching them from peers and pushing them to
//! peers, gc and fsck.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::Arc,
};

use clive_cas::{
    Added, EntryKind, Exported, FsckReport, GcReport, Hash, NoProgress, ObjectKind, Pin, Progress,
    Root, Store,
};
use serde::{Deserialize, Serialize};

use crate::{
    Node, NodeError,
    jobs::{
        JobError,
        cache::{self, CacheEntry, CacheReport},
        document::JobId,
        memo::{MemoEntry, MemoError},
    },
    net::{Fetched, Pushed, endpoint_id, fetch},
};

/// One entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// The entry's name.
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Bytes of content.
    pub size: u64,
    /// Its content address.
    #[serde(with = "clive_cas::hash::serde_hex")]
    pub hash: Hash,
    /// For a symlink, where it points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What was added, and where from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddResult {
    /// The path added, or `-` for standard input.
    pub source: String,
    /// The pin created, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// What that pin pointed at before, when it replaced another object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// The object.
    #[serde(flatten)]
    pub added: Added,
}

/// The store commands of a node: `node.store()`.
#[derive(Debug, Clone, Copy)]
pub struct StoreHandle<'a> {
    node: &'a Node,
}

impl Node {
    /// The store commands: objects, pins, gc, fsck, transfers.
    pub fn store(&self) -> StoreHandle<'_> {
        StoreHandle { node: self }
    }
}

impl StoreHandle<'_> {
    /// The content-addressed store itself.
    pub fn cas(&self) -> &Store {
        self.node.cas()
    }

    /// Adds a file or directory; pins it when `pin` is given.
    pub async fn add_path(
        &self,
        path: &Path,
        pin: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<AddResult, NodeError> {
        if let Some(name) = pin {
            clive_cas::pins::validate_pin_name(name)?;
        }
        self.node.home().check_source(path)?;
        let (added, guard) = self.node.cas().add_path(path, progress).await?;
        self.finish_add(path.display().to_string(), added, guard, pin)
            .await
    }

    /// Adds `path` as a job's input: when it is unchanged since an earlier
    /// add (the same stamp, see [`crate::unchanged`]) and that add's
    /// object is still here whole (the cache may have evicted blobs an
    /// output shared with it), answers its hash without reading the path.
    /// The caller holds the roots ([`clive_cas::Store::hold_roots`]).
    pub async fn add_input(&self, path: &Path) -> Result<Hash, NodeError> {
        self.node.home().check_source(path)?;
        let key = std::path::absolute(path)
            .map_err(|e| NodeError::io(format!("reading {}", path.display()), e))?;
        let stamp_of = |key: PathBuf| async move {
            tokio::task::spawn_blocking(move || crate::unchanged::stamp(&key))
                .await
                .ok()
                .flatten()
        };
        let before = stamp_of(key.clone()).await;
        if let Some(stamp) = &before
            && let Some(hash) = self.node.unchanged().get(&key, stamp)
            && self.node.cas().missing_below(hash).await?.is_empty()
        {
            return Ok(hash);
        }
        let added = self.add_path(path, None, Arc::new(NoProgress)).await?;
        let hash = added.added.hash;
        // Remembered only when the path did not change while it was read.
        if let Some(stamp) = before
            && stamp_of(key.clone()).await.as_ref() == Some(&stamp)
        {
            self.node.unchanged().put(&key, &stamp, hash);
        }
        Ok(hash)
    }

    /// Adds everything `reader` yields as one blob; pins it when `pin` is given.
    pub async fn add_reader<R: tokio::io::AsyncRead + Unpin>(
        &self,
        reader: R,
        pin: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<AddResult, NodeError> {
        if let Some(name) = pin {
            clive_cas::pins::validate_pin_name(name)?;
        }
        let (added, guard) = self.node.cas().add_reader(reader, progress).await?;
        self.finish_add("-".into(), added, guard, pin).await
    }

    async fn finish_add(
        &self,
        source: String,
        added: Added,
        guard: clive_cas::ImportGuard,
        pin: Option<&str>,
    ) -> Result<AddResult, NodeError> {
        // Durable before it is reported, and pinned before it is unprotected.
        self.node.cas().sync().await?;
        let mut replaced = None;
        if let Some(name) = pin {
            replaced = self.node.cas().pin(name, added.hash).await?.replaced;
        }
        drop(guard);
        Ok(AddResult {
            source,
            pin: pin.map(str::to_owned),
            replaced: replaced.map(|h| h.to_string()),
            added,
        })
    }

    /// Writes the bytes of a blob to `out`. An OBJECT argument names the
    /// hash through [`Node::resolve_object`], as for every method here.
    pub async fn cat<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        hash: &Hash,
        out: &mut W,
    ) -> Result<u64, NodeError> {
        Ok(self.node.cas().write_blob_to(*hash, out).await?)
    }

    /// Lists a tree.
    pub async fn ls(&self, hash: &Hash) -> Result<Vec<ListEntry>, NodeError> {
        let tree = self.node.cas().read_tree(*hash).await?;
        let mut out = Vec::with_capacity(tree.entries().len());
        for e in tree.entries() {
            let target = match e.kind {
                EntryKind::Symlink => Some(
                    self.node
                        .cas()
                        .read_bytes(e.hash)
                        .await
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_else(|_| "(target not stored)".into()),
                ),
                _ => None,
            };
            out.push(ListEntry {
                name: e.name.clone(),
                kind: e.kind,
                size: e.size,
                hash: e.hash,
                target,
            });
        }
        Ok(out)
    }

    /// Materialises an object at `dest`.
    pub async fn export(
        &self,
        hash: &Hash,
        dest: &Path,
        force: bool,
        progress: Arc<dyn Progress>,
    ) -> Result<Exported, NodeError> {
        self.node.home().check_destination(dest)?;
        Ok(self.node.cas().export(*hash, dest, force, progress).await?)
    }

    /// Pins an object under `name`; refuses one whose closure (what a tree
    /// reaches) is not all stored here.
    pub async fn pin_add(&self, name: &str, hash: &Hash) -> Result<Pin, NodeError> {
        let _hold = self.node.cas().hold_roots().await;
        let hash = *hash;
        let missing = self.node.cas().missing_below(hash).await?;
        if !missing.is_empty() {
            return Err(clive_cas::CasError::Incomplete { hash, missing }.into());
        }
        Ok(self.node.cas().pin(name, hash).await?)
    }

    /// Removes a pin; returns what it pinned.
    pub async fn pin_rm(&self, name: &str) -> Result<Pin, NodeError> {
        let hash = self.node.cas().unpin(name).await?;
        let kind = self.node.cas().kind(hash).await.unwrap_or(ObjectKind::Blob);
        Ok(Pin {
            name: name.to_owned(),
            hash,
            kind,
            replaced: None,
        })
    }

    /// Every pin.
    pub async fn pins(&self) -> Result<Vec<Pin>, NodeError> {
        Ok(self.node.cas().pins().await?)
    }

    /// Evicts what the memo's cache holds past its bound (see
    /// [`crate::jobs::cache`]), then removes what nothing pinned reaches,
    /// and orphaned files. Waits for running imports, fetches and pins to
    /// finish, and holds off new ones until it is done (see
    /// [`clive_cas::roots`]): what is live is computed under that lock.
    pub async fn gc(&self, dry_run: bool) -> Result<GcOutcome, NodeError> {
        let lock = self.node.cas().lock_for_gc().await;
        let how = if dry_run { Trim::DryRun } else { Trim::Evict };
        let Trimmed {
            report: cache,
            keep,
            ..
        } = self.trim_cache(how).await?;
        let gc = self.node.cas().gc(&lock, dry_run, &keep).await?;
        Ok(GcOutcome { gc, cache })
    }

    /// Evicts what the cache holds past its bound, if a result was put on
    /// this node since the last time: run after each `exec` and `job`
    /// command. Removes exactly the objects only the evicted entries
    /// reached (not what else nothing pins: that is for `gc`). Never
    /// waits: while an import, a fetch, a job's inputs or a collection
    /// hold the store, the trim is put off to the next command (or `gc`).
    pub async fn trim_cache_after_put(&self) -> Result<Option<CacheReport>, NodeError> {
        let memo = self.node.executor().memo();
        if !memo.take_put() {
            return Ok(None);
        }
        let Some(lock) = self.node.cas().try_lock_for_gc() else {
            memo.mark_put();
            return Ok(None);
        };
        let trimmed = self.trim_cache(Trim::Evict).await?;
        self.node
            .cas()
            .remove_objects_locked(&lock, &trimmed.freed)
            .await?;
        Ok(Some(trimmed.report))
    }

    /// [`Self::trim_cache_after_put`] after a command, a watch's run or
    /// the daemon's trimmer tick (work that may have put job results): an
    /// eviction is logged, and so is a
    /// failure (the command's own answer stands).
    pub async fn trim_cache_logged(&self) {
        match self.trim_cache_after_put().await {
            Ok(Some(report)) if !report.evicted.is_empty() => tracing::info!(
                evicted = report.evicted.len(),
                freed = report.evicted_bytes,
                "the job cache passed its bound"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("trimming the job cache: {e}"),
        }
    }

    /// The cache's size in bytes now, nothing evicted (for `status`); when
    /// an import, a fetch or a collection holds the store, its size when
    /// last measured (None if it never was), so `status` never waits.
    pub async fn cache_size(&self) -> Result<Option<u64>, NodeError> {
        match self.node.cas().try_lock_for_gc() {
            Some(_lock) => Ok(Some(self.trim_cache(Trim::Measure).await?.report.bytes)),
            None => Ok(self.node.executor().memo().measured()),
        }
    }

    /// Decides (and with [`Trim::Evict`] makes) the cache's evictions; the
    /// caller holds the gc lock.
    async fn trim_cache(&self, how: Trim) -> Result<Trimmed, NodeError> {
        let executor = self.node.executor();
        let memo = executor.memo();
        let job_err = |e: MemoError| NodeError::from(JobError::from(e));
        let entries = memo.entries().map_err(job_err)?;
        let other = self.other_roots(&entries)?;
        let live: HashSet<JobId> = executor
            .records()
            .live()
            .map_err(JobError::from)?
            .into_iter()
            .collect();
        let kept = self.node.cas().reachable(&other).await?;
        let mut weighed = Vec::with_capacity(entries.len());
        for e in &entries {
            let mut objects = Vec::new();
            for hash in e.objects {
                objects.extend(self.node.cas().closure_sizes(hash).await?);
            }
            weighed.push(CacheEntry {
                id: e.id,
                last_used: e.last_used,
                outputs: e.objects[0],
                objects,
                protected: live.contains(&e.id),
            });
        }
        let bound = executor.cache_bound();
        let limit = if how == Trim::Measure {
            u64::MAX
        } else {
            bound
        };
        let plan = cache::plan(&weighed, &kept, limit);
        let doomed: HashSet<JobId> = plan.evict.iter().copied().collect();
        let evicted = match how {
            Trim::Evict if !doomed.is_empty() => {
                let going: Vec<MemoEntry> = entries
                    .iter()
                    .filter(|e| doomed.contains(&e.id))
                    .cloned()
                    .collect();
                memo.evict(&going).map_err(job_err)?
            }
            _ => plan.evict.clone(),
        };
        let gone: HashSet<JobId> = evicted.iter().copied().collect();
        // What the entries left reach, outside what is kept anyway: the
        // cache's size, and what the evicted entries' objects do not free.
        let mut left: HashMap<Hash, u64> = HashMap::new();
        for e in weighed.iter().filter(|e| !gone.contains(&e.id)) {
            left.extend(e.objects.iter().copied().filter(|(h, _)| !kept.contains(h)));
        }
        let mut freed: HashMap<Hash, u64> = HashMap::new();
        for e in weighed.iter().filter(|e| gone.contains(&e.id)) {
            freed.extend(
                e.objects
                    .iter()
                    .copied()
                    .filter(|(h, _)| !kept.contains(h) && !left.contains_key(h)),
            );
        }
        let mut keep = other;
        keep.extend(memo_roots(entries.iter().filter(|e| !gone.contains(&e.id))));
        let mut freed_hashes: Vec<Hash> = freed.keys().copied().collect();
        freed_hashes.sort();
        let bytes = left.values().sum();
        if how != Trim::DryRun {
            memo.set_measured(bytes);
        }
        Ok(Trimmed {
            report: CacheReport {
                bound,
                bytes,
                entries: (entries.len() - gone.len()) as u64,
                evicted,
                evicted_bytes: freed.values().sum(),
            },
            keep,
            freed: freed_hashes,
        })
    }

    /// The roots other than pins, the one list gc keeps and fsck checks:
    /// trust objects (which must be stored), what names point at
    /// (of zones published here or in the follow set, and overrides; kept
    /// if stored), what the follow set reaches (kept if stored), a job result's
    /// outputs, stdout and stderr (kept if stored), the inputs of jobs
    /// under way (kept if stored), and transfers under way (kept if stored).
    fn roots(&self) -> Result<Vec<Root>, NodeError> {
        let entries = self
            .node
            .executor()
            .memo()
            .entries()
            .map_err(JobError::from)?;
        let mut keep = self.other_roots(&entries)?;
        keep.extend(memo_roots(entries.iter()));
        Ok(keep)
    }

    /// [`StoreHandle::roots`] but for the memo's `entries`: what the cache
    /// never evicts. A job record (not under way) whose result is the
    /// memo's entry for its job, or the one the cache evicted, is left to
    /// the cache.
    fn other_roots(&self, entries: &[MemoEntry]) -> Result<Vec<Root>, NodeError> {
        let mut keep: Vec<Root> = self
            .node
            .trust_state()
            .object_hashes()?
            .into_iter()
            .map(|hash| Root {
                hash,
                why: format!("node object {hash}"),
                required: true,
            })
            .collect();
        let named = clive_naming::Zones::new(self.node.db().clone()).referenced()?;
        let unkept = crate::sync::unkept_names(self.node)?;
        keep.extend(
            named
                .iter()
                .filter(|h| !unkept.contains(*h))
                .filter_map(|h| clive_cas::parse_hash(h).ok())
                .map(|hash| Root {
                    hash,
                    why: format!("a name pointing at {hash}"),
                    required: false,
                }),
        );
        let cached: HashMap<JobId, [Hash; 3]> = entries.iter().map(|e| (e.id, e.objects)).collect();
        let evicted = self
            .node
            .executor()
            .memo()
            .evicted()
            .map_err(JobError::from)?;
        keep.extend(
            self.node
                .executor()
                .records()
                .objects_except(|id, objects| {
                    cached.get(id) == Some(objects) || evicted.get(id) == Some(objects)
                })
                .map_err(JobError::from)?
                .into_iter()
                .map(|hash| Root {
                    hash,
                    why: format!("an input of a job under way {hash}"),
                    required: false,
                }),
        );
        keep.extend(
            crate::sync::follow_roots(self.node)?
                .into_iter()
                .map(|hash| Root {
                    hash,
                    why: format!("the follow set reaching {hash}"),
                    required: false,
                }),
        );
        keep.extend(self.node.net.in_flight().into_iter().map(|hash| Root {
            hash,
            why: format!("a transfer of {hash} under way"),
            required: false,
        }));
        Ok(keep)
    }

    /// Re-verifies the whole store; with `repair`, then fetches every
    /// damaged or missing object again from the peers that have it.
    pub async fn fsck(
        &self,
        repair: bool,
        progress: Arc<dyn Progress>,
    ) -> Result<FsckReport, NodeError> {
        let keep = self.roots()?;
        let report = self.node.cas().fsck(progress.clone(), &keep).await?;
        if !repair || report.is_clean() {
            return Ok(report);
        }
        crate::repair::repair(self.node, report, &keep, progress).await
    }

    /// Fetches a blob or a whole tree from `from`, or from the connected
    /// peers in turn, into the store. Resumes what an earlier fetch left
    /// partial; every byte is verified against the hash as it arrives. An
    /// object stored here completely already needs no peer: nothing is
    /// received and `from` is empty.
    pub async fn get(
        &self,
        hash: &Hash,
        from: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<Fetched, NodeError> {
        self.get_and_pin(hash, from, None, progress).await
    }

    /// [`StoreHandle::get`], and pins the object as `pin` once it is all here,
    /// before gc may take it.
    pub async fn get_and_pin(
        &self,
        hash: &Hash,
        from: Option<&str>,
        pin: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<Fetched, NodeError> {
        let hash = *hash;
        if let Some(name) = pin {
            clive_cas::pins::validate_pin_name(name)?;
        }
        let providers = match from {
            Some(peer) => vec![endpoint_id(&self.node.peers().resolve(peer)?)?],
            None => Vec::new(),
        };
        let _held = self
            .node
            .net
            .in_flight_set()
            .hold(self.node.cas(), hash)
            .await;
        let fetched = match fetch::here(self.node.cas(), hash).await? {
            Some(fetched) => fetched,
            None => {
                let net = self.node.online().await?;
                fetch::get(&net.shared, hash, providers, progress).await?
            }
        };
        self.node.cas().sync().await?;
        if let Some(name) = pin {
            self.node.cas().pin(name, hash).await?;
        }
        Ok(fetched)
    }

    /// Sends an object (and everything a tree holds) to peer `to`. The peer
    /// checks that this node holds `push`, then fetches it from this node.
    pub async fn push(
        &self,
        hash: &Hash,
        to: &str,
        progress: Arc<dyn Progress>,
    ) -> Result<Pushed, NodeError> {
        let hash = *hash;
        let peer = endpoint_id(&self.node.peers().resolve(to)?)?;
        let net = self.node.online().await?;
        // The receiver drives the transfer; this side learns the total at the end.
        let pushed = fetch::push(&net.shared, hash, peer).await?;
        progress.advance(pushed.bytes_sent);
        Ok(pushed)
    }
}

/// How [`StoreHandle::trim_cache`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trim {
    /// Evict what passes the bound.
    Evict,
    /// Say what would be evicted; change nothing.
    DryRun,
    /// Only measure the cache.
    Measure,
}

/// What [`StoreHandle::trim_cache`] decided.
struct Trimmed {
    report: CacheReport,
    /// The roots gc keeps, the evicted entries gone.
    keep: Vec<Root>,
    /// The objects only the evicted entries reached.
    freed: Vec<Hash>,
}

/// The roots the memo's `entries` keep: each result's outputs, stdout and
/// stderr (kept if stored).
fn memo_roots<'a>(entries: impl Iterator<Item = &'a MemoEntry>) -> Vec<Root> {
    let mut hashes: Vec<Hash> = entries.flat_map(|e| e.objects).collect();
    hashes.sort();
    hashes.dedup();
    hashes
        .into_iter()
        .map(|hash| Root {
            hash,
            why: format!("a job result's outputs {hash}"),
            required: false,
        })
        .collect()
}

/// What `gc` did: the store's collection, and the cache's eviction before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcOutcome {
    /// The collection (its fields are the top level of the JSON).
    #[serde(flatten)]
    pub gc: GcReport,
    /// The cache: its size and bound after eviction, and what was evicted.
    pub cache: CacheReport,
}
