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
    BlobFormat,
    api::TempTag,
    api::blobs::{AddPathOptions, AddProgressItem, ImportMode},
};
use n0_future::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::{
    CasError, Hash, ObjectKind, Progress, Result, Store,
    bounded::for_each_bounded,
    tree::{self, Entry, EntryKind, Tree},
};

/// Files at most this large are read into memory and stored inline.
const SMALL_FILE: u64 = 16 * 1024;
/// Files imported at the same time.
const PARALLEL_FILES: usize = 32;
/// Read size for streams.
const STREAM_CHUNK: usize = 1024 * 1024;

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

/// Objects protected from garbage collection while an import is unpinned.
#[must_use = "dropping the guard lets gc remove the imported objects unless they were pinned"]
#[derive(Debug, Default)]
pub struct ImportGuard {
    _tags: Vec<TempTag>,
}

enum Scanned {
    File { path: PathBuf, exec: bool },
    Symlink { target: Vec<u8> },
    Dir { children: Vec<(String, Scanned)> },
}

impl Store {
    /// Adds a file or a directory (recursively; symlinks inside are stored as
    /// symlinks, a symlink given as `path` itself is followed).
    pub async fn add_path(
        &self,
        path: &Path,
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
            let tag = self.blobs.blobs().add_bytes(bytes).temp_tag().await?;
            debug_assert_eq!(tag.hash(), hash);
            tags.push(tag);
        }
        let guard = ImportGuard { _tags: tags };
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

    /// Adds everything `reader` yields as one blob.
    pub async fn add_reader<R: tokio::io::AsyncRead + Unpin>(
        &self,
        mut reader: R,
        progress: Arc<dyn Progress>,
    ) -> Result<(Added, ImportGuard)> {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let stream = tokio_stream_from(rx);
        let add = self.blobs.blobs().add_stream(stream).await;
        let feed = async move {
            loop {
                let mut buf = Vec::with_capacity(STREAM_CHUNK);
                let read = (&mut reader)
                    .take(STREAM_CHUNK as u64)
                    .read_to_end(&mut buf)
                    .await;
                match read {
                    Ok(0) => break,
                    Ok(n) => {
                        progress.advance(n as u64);
                        if tx.send(Ok(buf.into())).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        break;
                    }
                }
            }
        };
        let ((), tag) = tokio::join!(feed, add.temp_tag());
        let tag = tag?;
        let hash = tag.hash();
        let size = self.size(hash).await?;
        Ok((
            Added {
                hash,
                kind: ObjectKind::Blob,
                size,
                objects: 1,
            },
            ImportGuard { _tags: vec![tag] },
        ))
    }

    /// Stores a tree's encoding and returns its hash.
    pub async fn put_tree(&self, tree: &Tree) -> Result<(Hash, ImportGuard)> {
        let tag = self
            .blobs
            .blobs()
            .add_bytes(tree.encode())
            .temp_tag()
            .await?;
        Ok((tag.hash(), ImportGuard { _tags: vec![tag] }))
    }

    /// Stores bytes as a blob and returns their hash.
    pub async fn put_bytes(&self, bytes: impl Into<Bytes>) -> Result<(Hash, ImportGuard)> {
        let tag = self
            .blobs
            .blobs()
            .add_bytes(bytes.into())
            .temp_tag()
            .await?;
        Ok((tag.hash(), ImportGuard { _tags: vec![tag] }))
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
            async move { store.import_file(&path, progress.as_ref()).await }
        })
        .await
    }

    async fn import_file(&self, path: &Path, progress: &dyn Progress) -> Result<(TempTag, u64)> {
        let context = || format!("reading {}", path.display());
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| CasError::io(context(), e))?;
        if meta.len() <= SMALL_FILE {
            let data = tokio::fs::read(path)
                .await
                .map_err(|e| CasError::io(context(), e))?;
            let size = data.len() as u64;
            let tag = self.blobs.blobs().add_bytes(data).temp_tag().await?;
            progress.advance(size);
            return Ok((tag, size));
        }
        let mut events = self
            .blobs
            .blobs()
            .add_path_with_opts(AddPathOptions {
                path: path.to_owned(),
                format: BlobFormat::Raw,
                mode: ImportMode::Copy,
            })
            .stream()
            .await;
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
                AddProgressItem::Error(e) => return Err(CasError::io(context(), e)),
            }
            let done = (copied + hashed) / 2;
            if done > reported {
                progress.advance(done - reported);
                reported = done;
            }
        }
        Err(CasError::Blobs(format!(
            "import of {} ended without a result",
            path.display()
        )))
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
