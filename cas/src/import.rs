//! Adding files, directories and streams to the store.
//!
//! A directory is scanned first (without following symlinks), then its files
//! are imported concurrently, then its trees are written bottom-up. Every
//! object stays protected from garbage collection until the import is
//! finished and pinned.

use std::{
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
};

use bytes::Bytes;
use iroh_blobs::{
    HashAndFormat,
    api::TempTag,
    api::blobs::{AddProgressItem, BlobStatus, ImportBaoHandle},
};
use n0_future::StreamExt;
use serde::{Deserialize, Serialize};
use std::io::Read;

use tokio::io::AsyncReadExt;

use crate::{
    CasError, Hash, ObjectKind, Progress, Result, Store,
    concurrency::for_each_bounded,
    onepass,
    orphans::Running,
    roots::RootsHold,
    tree::{self, Entry, EntryKind, Tree},
};

/// Files at most this large are read into memory and stored from there.
const SMALL_FILE: u64 = 16 * 1024;
/// Read beyond [`SMALL_FILE`] to tell a small file from a large one.
const HEAD_SLACK: u64 = 4096;
/// Files imported at the same time.
const PARALLEL_FILES: usize = 32;
/// Read size for streams.
const STREAM_CHUNK: usize = 1024 * 1024;
/// Files at least this large (by what `stat` said when they were opened)
/// are added in one pass, hashed on every core ([`crate::onepass`]);
/// smaller ones are streamed to the store's own import, many at once.
const ONE_PASS: u64 = 8 << 20;

/// The result of adding one path or stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Added {
    /// The content address of what was added.
    #[serde(with = "crate::hash::serde_hex")]
    pub hash: Hash,
    /// Blob or tree.
    pub kind: ObjectKind,
    /// Bytes of content (for a tree, of everything below it).
    pub size: u64,
    /// Files, symlinks and directories stored (1 for a blob).
    pub objects: u64,
}

/// Objects protected from garbage collection while an import is unpinned:
/// their temporary tags, and a [`RootsHold`] taken before the import's
/// first write, so no collection runs until the guard drops (see
/// [`crate::roots`]). Drop it once what was imported is pinned or
/// otherwise made a root.
#[must_use = "dropping the guard lets gc remove the imported objects unless they were pinned"]
#[derive(Debug)]
pub struct ImportGuard {
    _tags: Vec<TempTag>,
    _hold: RootsHold,
}

enum Scanned {
    File { path: PathBuf, exec: bool },
    Symlink { target: Vec<u8> },
    Dir { children: Vec<(String, Scanned)> },
}

impl Store {
    /// Adds a file or a directory (recursively; symlinks inside are stored as
    /// symlinks, a symlink given as `path` itself is followed). Files are
    /// read to their end, whatever their size said. If it fails, nothing it
    /// wrote stays in the store, except the verified part of a large file
    /// added in one pass: a partial blob, unprotected, that the next add of
    /// the same file completes and the next gc removes.
    pub async fn add_path(
        &self,
        path: &Path,
        progress: Arc<dyn Progress>,
    ) -> Result<(Added, ImportGuard)> {
        let hold = self.hold_roots().await;
        let running = self.imports.start();
        let result = self.add_path_unregistered(path, hold, progress).await;
        self.finish_import(running, result)
    }

    /// Ends a registered import: when it failed, removes what it left behind.
    fn finish_import<T>(&self, running: Running, result: Result<T>) -> Result<T> {
        drop(running);
        if result.is_err() {
            self.clean_after_failed_import();
        }
        result
    }

    async fn add_path_unregistered(
        &self,
        path: &Path,
        hold: RootsHold,
        progress: Arc<dyn Progress>,
    ) -> Result<(Added, ImportGuard)> {
        let path = std::path::absolute(path)
            .map_err(|e| CasError::io(format!("resolving {}", path.display()), e))?;
        let root = path.clone();
        let (scanned, total) = tokio::task::spawn_blocking(move || scan_root(&root))
            .await
            .map_err(|e| CasError::io("scanning", std::io::Error::other(e)))??;
        progress.set_total(total);
        let mut files = Vec::new();
        collect_files(&scanned, &mut files);
        let imported = self.import_files(files, progress).await?;
        let mut tags = Vec::new();
        let mut writes = Vec::new();
        let mut objects = 0;
        let entry = build(
            &scanned,
            &mut imported.into_iter(),
            &mut tags,
            &mut writes,
            &mut objects,
        )?;
        // Symlink targets and trees, children before parents.
        for (hash, bytes) in writes {
            let tag = self.store_bytes(bytes).await?;
            debug_assert_eq!(tag.hash(), hash);
            tags.push(tag);
        }
        let guard = ImportGuard {
            _tags: tags,
            _hold: hold,
        };
        let kind = match entry.kind {
            EntryKind::Tree => ObjectKind::Tree,
            _ => ObjectKind::Blob,
        };
        Ok((
            Added {
                hash: entry.hash,
                kind,
                size: entry.size,
                objects,
            },
            guard,
        ))
    }

    /// Adds everything `reader` yields as one blob. If it fails, nothing it
    /// wrote stays in the store.
    pub async fn add_reader<R: tokio::io::AsyncRead + Unpin>(
        &self,
        reader: R,
        progress: Arc<dyn Progress>,
    ) -> Result<(Added, ImportGuard)> {
        let hold = self.hold_roots().await;
        let running = self.imports.start();
        let result = self.add_reader_unregistered(reader, hold, progress).await;
        self.finish_import(running, result)
    }

    async fn add_reader_unregistered<R: tokio::io::AsyncRead + Unpin>(
        &self,
        mut reader: R,
        hold: RootsHold,
        progress: Arc<dyn Progress>,
    ) -> Result<(Added, ImportGuard)> {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let failed = ReadFailure::default();
        let feed = {
            let failed = failed.clone();
            async move {
                loop {
                    let mut buf = Vec::with_capacity(STREAM_CHUNK);
                    let read = (&mut reader)
                        .take(STREAM_CHUNK as u64)
                        .read_to_end(&mut buf)
                        .await;
                    match read {
                        Ok(0) => break,
                        Ok(_) => {
                            if tx.send(Ok(buf.into())).await.is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(failed.record(e))).await;
                            break;
                        }
                    }
                }
            }
        };
        let import = self.import_stream(rx, &failed, "reading standard input", progress.as_ref());
        let ((), imported) = tokio::join!(feed, import);
        let (tag, size) = imported?;
        Ok((
            Added {
                hash: tag.hash(),
                kind: ObjectKind::Blob,
                size,
                objects: 1,
            },
            ImportGuard {
                _tags: vec![tag],
                _hold: hold,
            },
        ))
    }

    /// Stores what `chunks` yields as one blob, reporting progress; `failed`
    /// tells a read error of the source (reported as `reading`) from a
    /// failure to write the store.
    async fn import_stream(
        &self,
        chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
        failed: &ReadFailure,
        reading: &str,
        progress: &dyn Progress,
    ) -> Result<(TempTag, u64)> {
        let add = self
            .blobs
            .blobs()
            .add_stream(tokio_stream_from(chunks))
            .await;
        let mut events = add.stream().await;
        let (mut size, mut copied, mut hashed, mut reported) = (0u64, 0u64, 0u64, 0u64);
        while let Some(event) = events.next().await {
            match event {
                AddProgressItem::Size(n) => size = n,
                AddProgressItem::CopyProgress(n) => copied = n,
                AddProgressItem::CopyDone => copied = size,
                AddProgressItem::OutboardProgress(n) => hashed = n,
                AddProgressItem::Done(tag) => {
                    progress.advance(size.saturating_sub(reported));
                    return Ok((tag, size));
                }
                AddProgressItem::Error(e) => {
                    return Err(match failed.take() {
                        Some(read) => CasError::io(reading, read),
                        None => self.write_error(e),
                    });
                }
            }
            // Copying and hashing are each half of the work.
            let done = (copied + hashed) / 2;
            if done > reported {
                progress.advance(done - reported);
                reported = done;
            }
        }
        Err(match failed.take() {
            Some(read) => CasError::io(reading, read),
            None => CasError::Blobs("an import ended without a result".into()),
        })
    }

    /// Stores bytes held in memory as one blob.
    async fn store_bytes(&self, bytes: Bytes) -> Result<TempTag> {
        let mut events = self.blobs.blobs().add_bytes(bytes).stream().await;
        while let Some(event) = events.next().await {
            match event {
                AddProgressItem::Done(tag) => return Ok(tag),
                AddProgressItem::Error(e) => return Err(self.write_error(e)),
                _ => {}
            }
        }
        Err(CasError::Blobs("an import ended without a result".into()))
    }

    fn write_error(&self, cause: std::io::Error) -> CasError {
        CasError::StoreWrite {
            dir: self.dir().to_owned(),
            cause,
        }
    }

    /// Stores a tree's encoding and returns its hash.
    pub async fn put_tree(&self, tree: &Tree) -> Result<(Hash, ImportGuard)> {
        self.put_bytes(tree.encode()).await
    }

    /// Stores bytes as a blob and returns their hash. The blob is durable
    /// when this returns, so a record in another database (a certificate
    /// or revocation row, a zone's metadata) may name it at once: a process
    /// killed right after that commit still finds the object.
    pub async fn put_bytes(&self, bytes: impl Into<Bytes>) -> Result<(Hash, ImportGuard)> {
        let hold = self.hold_roots().await;
        let running = self.imports.start();
        let result = self.store_bytes(bytes.into()).await;
        let tag = self.finish_import(running, result)?;
        self.sync().await?;
        Ok((
            tag.hash(),
            ImportGuard {
                _tags: vec![tag],
                _hold: hold,
            },
        ))
    }

    /// Adds each of `files` as one blob (read to its end, concurrently),
    /// returning each one's hash and size in order: for a caller that
    /// builds its own trees (a synced folder). If any fails, nothing it
    /// wrote stays in the store.
    pub async fn add_files(&self, files: Vec<PathBuf>) -> Result<(Vec<(Hash, u64)>, ImportGuard)> {
        let hold = self.hold_roots().await;
        let running = self.imports.start();
        let result = self.import_files(files, Arc::new(crate::NoProgress)).await;
        let imported = self.finish_import(running, result)?;
        let added = imported
            .iter()
            .map(|(tag, size)| (tag.hash(), *size))
            .collect();
        Ok((
            added,
            ImportGuard {
                _tags: imported.into_iter().map(|(tag, _)| tag).collect(),
                _hold: hold,
            },
        ))
    }

    /// Stores several small objects held in memory (tree encodings,
    /// symlink targets) and makes them durable together.
    pub async fn put_many(&self, objects: Vec<Bytes>) -> Result<(Vec<Hash>, ImportGuard)> {
        let hold = self.hold_roots().await;
        let running = self.imports.start();
        let mut tags = Vec::with_capacity(objects.len());
        let mut failed = None;
        for bytes in objects {
            match self.store_bytes(bytes).await {
                Ok(tag) => tags.push(tag),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        self.finish_import(running, failed.map_or(Ok(()), Err))?;
        self.sync().await?;
        Ok((
            tags.iter().map(TempTag::hash).collect(),
            ImportGuard {
                _tags: tags,
                _hold: hold,
            },
        ))
    }

    async fn import_files(
        &self,
        files: Vec<PathBuf>,
        progress: Arc<dyn Progress>,
    ) -> Result<Vec<(TempTag, u64)>> {
        let store = self.clone();
        for_each_bounded(files, PARALLEL_FILES, move |path| {
            let store = store.clone();
            let progress = progress.clone();
            async move { store.import_file(&path, progress).await }
        })
        .await
    }

    /// Imports one file, read to its end: what its size says decides
    /// nothing, so a file that grows or whose size the kernel misreports
    /// (`/proc`) is stored as read, in bounded memory.
    async fn import_file(
        &self,
        path: &Path,
        progress: Arc<dyn Progress>,
    ) -> Result<(TempTag, u64)> {
        let context = format!("reading {}", path.display());
        let owned = path.to_owned();
        let opened = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(&owned)?;
            let mut head = Vec::new();
            // A whole block past the limit: some files (/proc) refuse reads
            // of odd sizes.
            (&mut file)
                .take(SMALL_FILE + HEAD_SLACK)
                .read_to_end(&mut head)?;
            Ok::<_, std::io::Error>((file, head))
        })
        .await
        .map_err(|e| CasError::io(&context, std::io::Error::other(e)))?;
        let (file, head) = opened.map_err(|e| CasError::io(&context, e))?;
        if head.len() as u64 <= SMALL_FILE {
            let size = head.len() as u64;
            let tag = self.store_bytes(head.into()).await?;
            progress.advance(size);
            return Ok((tag, size));
        }
        if file.metadata().is_ok_and(|m| m.len() >= ONE_PASS) {
            return self.import_in_one_pass(file, &context, progress).await;
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let failed = ReadFailure::default();
        let reader = {
            let failed = failed.clone();
            tokio::task::spawn_blocking(move || feed_file(file, head, &tx, &failed))
        };
        let imported = self
            .import_stream(rx, &failed, &context, progress.as_ref())
            .await;
        // The reader stops once the import stops taking chunks.
        reader
            .await
            .map_err(|e| CasError::io(&context, std::io::Error::other(e)))?;
        imported
    }
}

impl Store {
    /// Adds a large file in one pass (see [`crate::onepass`]): hashed on
    /// every core, then handed to the store with its hash tree under a
    /// temp tag taken first. Nothing is written when the blob is here
    /// already. `context` names the file in errors.
    async fn import_in_one_pass(
        &self,
        file: std::fs::File,
        context: &str,
        progress: Arc<dyn Progress>,
    ) -> Result<(TempTag, u64)> {
        let _one_at_a_time = self
            .one_pass
            .acquire()
            .await
            .map_err(|e| CasError::Blobs(e.to_string()))?;
        let file = Arc::new(file);
        let temp = iroh_blobs::store::fs::options::PathOptions::new(self.dir()).temp_path;
        let hashed = {
            let (file, progress) = (file.clone(), progress.clone());
            tokio::task::spawn_blocking(move || {
                onepass::hash_file(&file, &temp, &|n| progress.advance(n / 2))
            })
            .await
            .map_err(|e| CasError::io(context, std::io::Error::other(e)))?
            .map_err(|e| self.one_pass_error(context, e))?
        };
        let hashed = match hashed {
            Ok(hashed) => hashed,
            Err(bytes) => {
                let size = bytes.len() as u64;
                let tag = self.store_bytes(bytes.into()).await?;
                progress.advance(size);
                return Ok((tag, size));
            }
        };
        let (hash, size) = (Hash::from(hashed.hash), hashed.size);
        let tag = self
            .blobs
            .tags()
            .temp_tag(HashAndFormat::raw(hash))
            .await
            .map_err(|e| CasError::Blobs(format!("protecting an import: {e}")))?;
        let status = self
            .blobs
            .blobs()
            .status(hash)
            .await
            .map_err(|e| CasError::Blobs(e.to_string()))?;
        if matches!(status, BlobStatus::Complete { .. }) {
            progress.advance(size - size / 2);
            return Ok((tag, size));
        }
        // A blob the disk cannot hold fails before a byte is written: what
        // a failed import wrote stays (a partial blob) until the next gc.
        if let Some(free) = free_bytes(self.dir())
            && free < size + size / 256 + STORE_SLACK
        {
            return Err(self.write_error(std::io::Error::from_raw_os_error(libc::ENOSPC)));
        }
        let nonzero = std::num::NonZeroU64::new(size)
            .ok_or_else(|| CasError::Blobs("a one-pass import of nothing".into()))?;
        let ImportBaoHandle { tx, rx } = self
            .blobs
            .blobs()
            .import_bao(hash, nonzero, onepass::ITEMS_IN_FLIGHT)
            .await
            .map_err(|e| self.write_error(std::io::Error::other(e)))?;
        // The store in this process takes the import on a tokio channel;
        // with it, the feed waits for room for a whole leaf and its parents
        // at once instead of waking for every one of them.
        let tx = tokio::sync::mpsc::Sender::try_from(tx).map_err(|_| {
            self.write_error(std::io::Error::other(
                "the store's import channel is not in this process",
            ))
        })?;
        let runtime = tokio::runtime::Handle::current();
        let fed = tokio::task::spawn_blocking(move || {
            onepass::feed_store(
                &file,
                &hashed,
                &mut |items| {
                    let stopped =
                        |_| onepass::OnePassError::Store("the store stopped the import".into());
                    let mut items = items.into_iter();
                    while items.len() > 0 {
                        let room = items.len().min(onepass::ITEMS_IN_FLIGHT);
                        let permits = runtime.block_on(tx.reserve_many(room)).map_err(stopped)?;
                        for (permit, item) in permits.zip(items.by_ref()) {
                            permit.send(item);
                        }
                    }
                    Ok(())
                },
                &|n| progress.advance(n - n / 2),
            )
            // Dropping the sender ends the import.
        })
        .await
        .map_err(|e| CasError::io(context, std::io::Error::other(e)))?;
        // The store's own reason comes first: a store that stopped taking
        // the import (a full disk) closed the channel the feed wrote to.
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.write_error(std::io::Error::other(e))),
            Err(e) => return Err(self.write_error(std::io::Error::other(e))),
        }
        fed.map_err(|e| self.one_pass_error(context, e))?;
        Ok((tag, size))
    }

    fn one_pass_error(&self, context: &str, e: onepass::OnePassError) -> CasError {
        match e {
            onepass::OnePassError::Read(e) => CasError::io(context, e),
            onepass::OnePassError::Changed => CasError::ChangedWhileAdding(context.to_owned()),
            onepass::OnePassError::Store(e) => self.write_error(std::io::Error::other(e)),
        }
    }
}

/// Bytes a one-pass import leaves free beyond the blob and its outboard
/// (the store's database grows too).
const STORE_SLACK: u64 = 4 << 20;

/// Bytes free to this user on the file system holding `dir`, if it says.
fn free_bytes(dir: &Path) -> Option<u64> {
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: a zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and an out-parameter.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The read error that ended a source, kept so that the failed import is
/// blamed on reading, not on the store.
#[derive(Debug, Default, Clone)]
struct ReadFailure(Arc<std::sync::Mutex<Option<std::io::Error>>>);

impl ReadFailure {
    /// Keeps `e`; returns what to hand the store so that it aborts the import.
    fn record(&self, e: std::io::Error) -> std::io::Error {
        let aborted = std::io::Error::new(e.kind(), e.to_string());
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        aborted
    }

    fn take(&self) -> Option<std::io::Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Sends `head`, then the rest of `file` to its end, in chunks of
/// [`STREAM_CHUNK`] bytes.
fn feed_file(
    mut file: std::fs::File,
    head: Vec<u8>,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    failed: &ReadFailure,
) {
    if tx.blocking_send(Ok(head.into())).is_err() {
        return;
    }
    loop {
        let mut buf = Vec::with_capacity(STREAM_CHUNK);
        match (&mut file).take(STREAM_CHUNK as u64).read_to_end(&mut buf) {
            Ok(0) => return,
            Ok(_) => {
                if tx.blocking_send(Ok(buf.into())).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(failed.record(e)));
                return;
            }
        }
    }
}

/// Computes the entry for `node`, tree encodings bottom-up: the encodings
/// and symlink targets to store are appended to `writes`, children first.
fn build(
    node: &Scanned,
    files: &mut impl Iterator<Item = (TempTag, u64)>,
    tags: &mut Vec<TempTag>,
    writes: &mut Vec<(Hash, Bytes)>,
    objects: &mut u64,
) -> Result<Entry> {
    *objects += 1;
    let (kind, hash, size) = match node {
        Scanned::File { exec, .. } => {
            let (tag, size) = files
                .next()
                .ok_or_else(|| CasError::Blobs("file import results out of step".into()))?;
            let hash = tag.hash();
            tags.push(tag);
            let kind = if *exec {
                EntryKind::Exec
            } else {
                EntryKind::File
            };
            (kind, hash, size)
        }
        Scanned::Symlink { target } => {
            let hash = Hash::new(target);
            writes.push((hash, Bytes::copy_from_slice(target)));
            (EntryKind::Symlink, hash, target.len() as u64)
        }
        Scanned::Dir { children } => {
            let mut entries = Vec::with_capacity(children.len());
            for (name, child) in children {
                let mut entry = build(child, files, tags, writes, objects)?;
                entry.name = name.clone();
                entries.push(entry);
            }
            let tree = Tree::new(entries).map_err(CasError::TreeBuild)?;
            let bytes = Bytes::from(tree.encode());
            let hash = Hash::new(&bytes);
            writes.push((hash, bytes));
            (EntryKind::Tree, hash, tree.total_size())
        }
    };
    Ok(Entry {
        name: String::new(),
        kind,
        hash,
        size,
    })
}

fn scan_root(path: &Path) -> Result<(Scanned, u64)> {
    // The path named on the command line is followed if it is a symlink.
    let meta = std::fs::metadata(path)
        .map_err(|e| CasError::io(format!("reading {}", path.display()), e))?;
    let mut total = 0;
    let node = scan(path, &meta, &mut total)?;
    Ok((node, total))
}

fn scan(path: &Path, meta: &std::fs::Metadata, total: &mut u64) -> Result<Scanned> {
    let ft = meta.file_type();
    if ft.is_file() {
        *total += meta.len();
        return Ok(Scanned::File {
            path: path.to_owned(),
            exec: meta.permissions().mode() & 0o111 != 0,
        });
    }
    if ft.is_symlink() {
        let target = std::fs::read_link(path)
            .map_err(|e| CasError::io(format!("reading link {}", path.display()), e))?;
        let target = target.as_os_str().as_bytes().to_vec();
        if target.len() as u64 > tree::MAX_SYMLINK_TARGET {
            return Err(CasError::BadName {
                path: path.to_owned(),
                reason: "symlink target longer than 4096 bytes",
            });
        }
        *total += target.len() as u64;
        return Ok(Scanned::Symlink { target });
    }
    if ft.is_dir() {
        let context = || format!("reading directory {}", path.display());
        let mut children = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| CasError::io(context(), e))? {
            let entry = entry.map_err(|e| CasError::io(context(), e))?;
            let child = entry.path();
            let name = entry.file_name();
            let name = tree::validate_name(name.as_bytes())
                .map_err(|reason| CasError::BadName {
                    path: child.clone(),
                    reason,
                })?
                .to_owned();
            let meta = entry
                .metadata()
                .map_err(|e| CasError::io(format!("reading {}", child.display()), e))?;
            children.push((name, scan(&child, &meta, total)?));
        }
        return Ok(Scanned::Dir { children });
    }
    use std::os::unix::fs::FileTypeExt;
    let kind = if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "special"
    };
    Err(CasError::UnsupportedFileType {
        path: path.to_owned(),
        kind,
    })
}

fn collect_files(node: &Scanned, out: &mut Vec<PathBuf>) {
    match node {
        Scanned::File { path, .. } => out.push(path.clone()),
        Scanned::Symlink { .. } => {}
        Scanned::Dir { children } => children.iter().for_each(|(_, c)| collect_files(c, out)),
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl n0_future::Stream<Item = std::io::Result<Bytes>> + Send + Sync + 'static {
    n0_future::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
