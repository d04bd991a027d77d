//! The store: blobs in an iroh-blobs file store, pins in the node's redb.
//!
//! # Layout on disk
//!
//! ```text
//! DIR/blobs.db     iroh-blobs metadata (redb); small blobs live inline here
//! DIR/data/        large blobs (`HASH.data`) and their BLAKE3 outboards
//! DIR/temp/        imports in progress; left-overs of a killed process are
//!                  removed when the store is next opened, of a failed
//!                  import at once
//! ```
//!
//! Pins live in the `pins` table of the node's `state.redb` (see [`crate::pins`]).
//! One process owns a store at a time; the caller guarantees it (the node's
//! home lock), which is what makes removing left-over temp files safe.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use bytes::Bytes;
use iroh_blobs::{
    api::blobs::BlobStatus,
    store::fs::{
        FsStore,
        options::{BatchOptions, InlineOptions, Options, PathOptions},
    },
};
use redb::Database;
use serde::{Deserialize, Serialize};

use crate::{
    CasError, Hash, Result,
    gc::GcTrigger,
    orphans::ImportClock,
    roots::{GcLock, RootsHold, RootsLock},
    tree::{self, Tree},
};

/// What an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// Plain bytes.
    Blob,
    /// A directory (see [`crate::tree`]).
    Tree,
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            ObjectKind::Blob => "blob",
            ObjectKind::Tree => "tree",
        })
    }
}

/// How much of an object the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// All of it: this many bytes.
    Complete(u64),
    /// Part of it (an interrupted transfer): this many bytes so far.
    Partial(u64),
}

impl Stored {
    /// Bytes held.
    pub fn bytes(self) -> u64 {
        match self {
            Stored::Complete(n) | Stored::Partial(n) => n,
        }
    }
}

/// A content-addressed store of blobs and trees, with pins.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) blobs: FsStore,
    pub(crate) db: Arc<Database>,
    pub(crate) gc: GcTrigger,
    pub(crate) imports: Arc<ImportClock>,
    pub(crate) roots: RootsLock,
    /// Counts the sweeps that removed objects: see [`Store::removals`].
    pub(crate) removals: Arc<std::sync::atomic::AtomicU64>,
    complete: Arc<crate::complete::CompleteTrees>,
    /// One large file is added at a time: each one hashes on every core
    /// (see [`crate::onepass`]).
    pub(crate) one_pass: Arc<tokio::sync::Semaphore>,
    dir: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the blob store in `dir`, with pins in `db`.
    ///
    /// The caller must own `dir` exclusively: left-over temp files of an
    /// interrupted import are removed here.
    pub async fn open(dir: &Path, db: Arc<Database>) -> Result<Store> {
        let paths = PathOptions::new(dir);
        remove_leftover_temp_files(&paths.temp_path)?;
        for d in [&paths.data_path, &paths.temp_path] {
            std::fs::create_dir_all(d)
                .map_err(|e| CasError::io(format!("creating {}", d.display()), e))?;
        }
        let gc = GcTrigger::new();
        let options = Options {
            path: paths,
            // Every blob is a file of its own: iroh-blobs opens blobs.db
            // with redb's default cache (up to 1 GiB, not settable through
            // its API), which blobs inlined there fill; 100,000 files of
            // 1 KiB made the daemon 188 MB larger.
            inline: InlineOptions::NO_INLINE,
            batch: BatchOptions::default(),
            gc: Some(gc.config()),
        };
        let blobs = FsStore::load_with_opts(dir.join("blobs.db"), options)
            .await
            .map_err(|e| CasError::Blobs(format!("opening {}: {e}", dir.display())))?;
        Ok(Store {
            blobs,
            db,
            gc,
            imports: Arc::default(),
            roots: RootsLock::default(),
            removals: Arc::default(),
            complete: Arc::default(),
            one_pass: Arc::new(tokio::sync::Semaphore::new(1)),
            dir: dir.to_owned(),
        })
    }

    /// The directory this store keeps its files in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Holds off garbage collection (see [`crate::roots`]) until the hold
    /// drops: taken by anything that writes objects and then makes them
    /// roots, before its first write. Waits while a collection runs.
    pub async fn hold_roots(&self) -> RootsHold {
        self.roots.hold().await
    }

    /// Waits until no writer of roots runs and holds them off (see
    /// [`crate::roots`]); [`Store::gc`] runs under it, and so must the
    /// computation of the roots it is given.
    pub async fn lock_for_gc(&self) -> GcLock {
        self.roots.collect().await
    }

    /// Like [`Store::lock_for_gc`], but only if no writer of roots or
    /// collection runs now: for work that may as well be done later.
    pub fn try_lock_for_gc(&self) -> Option<GcLock> {
        self.roots.try_collect()
    }

    /// How many times objects were removed from this store (by [`Store::gc`]
    /// or [`Store::remove_objects`]) since it opened: what a caller found
    /// complete under one value is still complete while it stays the same
    /// (objects are only ever added in between).
    pub fn removals(&self) -> u64 {
        self.removals.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether `tree` was found stored here completely (it and everything
    /// it reaches) by a walk no removal has overlapped since: such a walk
    /// need not look below it.
    pub fn known_complete(&self, tree: &Hash) -> bool {
        self.complete.knows(self.removals(), tree)
    }

    /// Records `trees` as stored here completely, found by a walk that
    /// began when [`Store::removals`] was `began` (nothing is recorded if
    /// anything was removed since).
    pub fn claim_complete(&self, began: u64, trees: impl IntoIterator<Item = Hash>) {
        self.complete.claim(began, self.removals(), trees);
    }

    /// The underlying iroh-blobs store, for serving and fetching over the network.
    pub fn blobs(&self) -> &FsStore {
        &self.blobs
    }

    /// Flushes everything to disk and stops the store's background tasks.
    pub async fn shutdown(&self) -> Result<()> {
        self.blobs.sync_db().await?;
        self.blobs.shutdown().await?;
        Ok(())
    }

    /// Makes every completed import durable.
    pub async fn sync(&self) -> Result<()> {
        self.blobs.sync_db().await?;
        Ok(())
    }

    /// The size of a completely stored object, or why it cannot be read.
    pub async fn size(&self, hash: Hash) -> Result<u64> {
        match self.blobs.blobs().status(hash).await? {
            BlobStatus::Complete { size } => Ok(size),
            BlobStatus::Partial { .. } => Err(CasError::Partial(hash)),
            BlobStatus::NotFound => Err(CasError::NotFound(hash)),
        }
    }

    /// Whether the object is stored completely.
    pub async fn has(&self, hash: Hash) -> Result<bool> {
        Ok(self.blobs.blobs().has(hash).await?)
    }

    /// Reads a whole object into memory, verified; for trees and small blobs only.
    pub async fn read_bytes(&self, hash: Hash) -> Result<Bytes> {
        self.read_verified_bytes(hash, tree::MAX_ENCODED_LEN).await
    }

    /// Tells a tree from a blob: a tree is an object that starts with the
    /// tree header and fits the tree size limit.
    pub async fn kind(&self, hash: Hash) -> Result<ObjectKind> {
        let size = self.size(hash).await?;
        if size > tree::MAX_ENCODED_LEN || size < tree::MAGIC.len() as u64 {
            return Ok(ObjectKind::Blob);
        }
        let head = self.read_verified_head(hash).await?;
        Ok(if Tree::looks_like_tree(&head) {
            ObjectKind::Tree
        } else {
            ObjectKind::Blob
        })
    }

    /// Reads and validates the tree `hash`.
    pub async fn read_tree(&self, hash: Hash) -> Result<Tree> {
        let size = self.size(hash).await?;
        if size > tree::MAX_ENCODED_LEN {
            return Err(CasError::NotATree(hash));
        }
        let bytes = self
            .read_verified_bytes(hash, tree::MAX_ENCODED_LEN)
            .await?;
        Tree::decode(&bytes).map_err(|e| match e {
            tree::TreeError::NotATree => CasError::NotATree(hash),
            cause => CasError::BadTree { hash, cause },
        })
    }

    /// Streams the bytes of a blob to `out`, each chunk group verified
    /// against the hash before it is written.
    pub async fn write_blob_to<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        hash: Hash,
        out: &mut W,
    ) -> Result<u64> {
        self.write_verified_to(hash, out).await
    }

    /// Every object in the store, complete or partial, with its size.
    pub async fn inventory(&self) -> Result<Vec<(Hash, Stored)>> {
        let hashes = self.blobs.blobs().list().hashes().await?;
        let mut out = Vec::with_capacity(hashes.len());
        for hash in hashes {
            let stored = match self.blobs.blobs().status(hash).await? {
                BlobStatus::Complete { size } => Stored::Complete(size),
                BlobStatus::Partial { size } => Stored::Partial(size.unwrap_or(0)),
                BlobStatus::NotFound => continue,
            };
            out.push((hash, stored));
        }
        Ok(out)
    }

    /// Every object stored completely, with its size.
    pub async fn list(&self) -> Result<Vec<(Hash, u64)>> {
        Ok(self
            .inventory()
            .await?
            .into_iter()
            .filter_map(|(hash, stored)| match stored {
                Stored::Complete(size) => Some((hash, size)),
                Stored::Partial(_) => None,
            })
            .collect())
    }
}

fn remove_leftover_temp_files(temp: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(temp) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CasError::io(format!("reading {}", temp.display()), e)),
    };
    let mut removed = 0usize;
    for entry in entries {
        let path = entry
            .map_err(|e| CasError::io(format!("reading {}", temp.display()), e))?
            .path();
        std::fs::remove_file(&path)
            .map_err(|e| CasError::io(format!("removing {}", path.display()), e))?;
        removed += 1;
    }
    if removed > 0 {
        tracing::info!(removed, "removed temp files left by an interrupted import");
    }
    Ok(())
}
