//! Materialising a blob or a tree on disk.
//!
//! Everything is written into a fresh staging directory beside the
//! destination and renamed into place only when complete, so a failed export
//! leaves nothing half-written and never touches an existing destination.
//! The whole tree is read and validated before the first byte is written.
//! Inside the staging directory every name is a validated single component
//! and every file is created with `O_CREAT | O_EXCL` (which never follows a
//! symlink), so nothing is ever written outside the destination, whatever
//! symlinks the tree holds.

use std::{
    io::Write,
    os::unix::{
        ffi::OsStrExt,
        fs::{DirBuilderExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
    sync::Arc,
};

use bao_tree::{ChunkNum, ChunkRanges};
use iroh_blobs::store::fs::options::PathOptions;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::{
    CasError, Hash, ObjectKind, Progress, Result, Store, concurrency::for_each_bounded,
    tree::EntryKind,
};

/// Batches of small files in flight at the same time.
const PARALLEL_BATCHES: usize = 8;
/// Small files read, then written in one blocking call.
const SMALL_BATCH: usize = 64;
/// Large files exported at the same time.
const PARALLEL_LARGE: usize = 4;
/// Blobs at most this large are written from memory.
const SMALL_BLOB: u64 = 1024 * 1024;
/// Bytes of a large file collected before each write.
const WRITE_BUFFER: usize = 1024 * 1024;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    /// The object exported.
    #[serde(with = "crate::hash::serde_hex")]
    pub hash: Hash,
    /// Blob or tree.
    pub kind: ObjectKind,
    /// Where it was written.
    pub path: PathBuf,
    /// Files, symlinks and directories written.
    pub objects: u64,
    /// Bytes of content written.
    pub bytes: u64,
}

struct FileJob {
    path: PathBuf,
    hash: Hash,
    size: u64,
    exec: bool,
}

impl FileJob {
    /// Fails unless the blob holds `stored` bytes, the size its tree entry
    /// gives.
    fn check_size(&self, stored: u64) -> Result<()> {
        if stored == self.size {
            return Ok(());
        }
        Err(CasError::Damaged {
            hash: self.hash,
            problem: format!("it has {stored} bytes, its tree entry says {}", self.size),
        })
    }
}

#[derive(Default)]
struct Plan {
    /// Directories, parents first, relative to the staging root.
    dirs: Vec<PathBuf>,
    files: Vec<(PathBuf, Hash, u64, bool)>,
    symlinks: Vec<(PathBuf, Hash)>,
    bytes: u64,
}

impl Store {
    /// Writes the object `hash` to `dest`. Refuses an existing `dest` unless
    /// `force`, in which case `dest` is replaced once the export is complete.
    pub async fn export(
        &self,
        hash: Hash,
        dest: &Path,
        force: bool,
        progress: Arc<dyn Progress>,
    ) -> Result<Exported> {
        let kind = self.kind(hash).await?;
        let plan = match kind {
            ObjectKind::Tree => self.plan_tree(hash).await?,
            ObjectKind::Blob => Plan {
                files: vec![(PathBuf::new(), hash, self.size(hash).await?, false)],
                bytes: self.size(hash).await?,
                ..Plan::default()
            },
        };
        let exists = dest.symlink_metadata().is_ok();
        if exists && !force {
            return Err(CasError::DestinationExists(dest.to_owned()));
        }
        let dest = std::path::absolute(dest)
            .map_err(|e| CasError::io(format!("resolving {}", dest.display()), e))?;
        let (parent, name) = match (dest.parent(), dest.file_name()) {
            (Some(parent), Some(name)) => (parent.to_owned(), name.to_string_lossy().into_owned()),
            _ => {
                return Err(CasError::io(
                    format!("exporting to {}", dest.display()),
                    std::io::Error::other("the destination must name a file or directory"),
                ));
            }
        };
        let staging = parent.join(format!(".{name}.clive-export-{}", unique_suffix()));
        progress.set_total(plan.bytes);
        let objects = (plan.dirs.len() + plan.files.len() + plan.symlinks.len()) as u64
            + u64::from(kind == ObjectKind::Tree);
        let written = self.write_plan(&staging, kind, &plan, progress).await;
        if let Err(e) = written {
            remove_any(&staging);
            return Err(e);
        }
        if let Err(e) = replace(&staging, &dest, exists) {
            remove_any(&staging);
            return Err(e);
        }
        Ok(Exported {
            hash,
            kind,
            path: dest,
            objects,
            bytes: plan.bytes,
        })
    }

    /// Reads and validates every tree below `root` before anything is written.
    async fn plan_tree(&self, root: Hash) -> Result<Plan> {
        let mut plan = Plan::default();
        let mut stack = vec![(root, PathBuf::new())];
        while let Some((hash, rel)) = stack.pop() {
            let tree = self.read_tree(hash).await?;
            for e in tree.entries() {
                let path = rel.join(&e.name);
                match e.kind {
                    EntryKind::Tree => {
                        plan.dirs.push(path.clone());
                        stack.push((e.hash, path));
                    }
                    EntryKind::File | EntryKind::Exec => {
                        plan.bytes += e.size;
                        plan.files
                            .push((path, e.hash, e.size, e.kind == EntryKind::Exec));
                    }
                    EntryKind::Symlink => plan.symlinks.push((path, e.hash)),
                }
            }
        }
        Ok(plan)
    }

    async fn write_plan(
        &self,
        staging: &Path,
        kind: ObjectKind,
        plan: &Plan,
        progress: Arc<dyn Progress>,
    ) -> Result<()> {
        if kind == ObjectKind::Tree {
            create_dir(staging)?;
            for dir in &plan.dirs {
                create_dir(&staging.join(dir))?;
            }
            for (rel, hash) in &plan.symlinks {
                let target = self.read_bytes(*hash).await?;
                let path = staging.join(rel);
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path)
                    .map_err(|e| CasError::io(format!("creating symlink {}", path.display()), e))?;
            }
        }
        let (small, large): (Vec<FileJob>, Vec<FileJob>) = plan
            .files
            .iter()
            .map(|(rel, hash, size, exec)| FileJob {
                path: if rel.as_os_str().is_empty() {
                    staging.to_owned()
                } else {
                    staging.join(rel)
                },
                hash: *hash,
                size: *size,
                exec: *exec,
            })
            .partition(|job| job.size <= SMALL_BLOB);
        let mut batches = Vec::new();
        let mut small = small.into_iter().peekable();
        while small.peek().is_some() {
            batches.push(small.by_ref().take(SMALL_BATCH).collect::<Vec<_>>());
        }
        let store = self.clone();
        let batch_progress = progress.clone();
        for_each_bounded(batches, PARALLEL_BATCHES, move |batch| {
            let store = store.clone();
            let progress = batch_progress.clone();
            async move { store.write_small_files(batch, progress.as_ref()).await }
        })
        .await?;
        let store = self.clone();
        for_each_bounded(large, PARALLEL_LARGE, move |job| {
            let store = store.clone();
            let progress = progress.clone();
            async move { store.write_large_file(job, progress).await }
        })
        .await?;
        Ok(())
    }

    /// Reads a batch of small blobs, then writes them in one blocking call.
    async fn write_small_files(&self, batch: Vec<FileJob>, progress: &dyn Progress) -> Result<()> {
        let mut contents = Vec::with_capacity(batch.len());
        for job in batch {
            let bytes = self.read_verified_bytes(job.hash, SMALL_BLOB).await?;
            job.check_size(bytes.len() as u64)?;
            contents.push((job, bytes));
        }
        let bytes: u64 = contents.iter().map(|(job, _)| job.size).sum();
        tokio::task::spawn_blocking(move || {
            for (job, data) in contents {
                create_file(&job.path, job.exec)
                    .and_then(|mut file| file.write_all(&data))
                    .map_err(|e| CasError::io(format!("writing {}", job.path.display()), e))?;
            }
            Ok::<_, CasError>(())
        })
        .await
        .map_err(|e| CasError::io("writing files", std::io::Error::other(e)))??;
        progress.advance(bytes);
        Ok(())
    }

    /// Writes a large blob into a new file. The kernel copies it from the
    /// store's data file ([`copy_in_kernel`]: shared extents where the file
    /// system allows, never a copy through this process) while a verified
    /// read of the same blob checks every chunk group against the hash; a
    /// mismatch fails the export. Where the kernel cannot copy between the
    /// two files (its first piece tells), the verified read is written out
    /// instead.
    async fn write_large_file(&self, job: FileJob, progress: Arc<dyn Progress>) -> Result<()> {
        let context = format!("writing {}", job.path.display());
        let io = |e| CasError::io(context.clone(), e);
        job.check_size(self.size(job.hash).await?)?;
        // Created here so that nothing at the path is followed or reused.
        let file = Arc::new(create_file(&job.path, job.exec).map_err(io)?);
        let source = Arc::new(PathOptions::new(self.dir()).data_path(&job.hash));
        let copy = |from: u64, to: u64| {
            let (source, file) = (source.clone(), file.clone());
            tokio::task::spawn_blocking(move || copy_in_kernel(&source, &file, from, to))
        };
        let first = job.size.min(WRITE_BUFFER as u64);
        match copy(0, first)
            .await
            .map_err(|e| io(std::io::Error::other(e)))?
        {
            Ok(()) => {}
            Err(e) if e.raw_os_error().is_some_and(kernel_cannot_copy) => {
                return self
                    .stream_large_file(job.hash, &file, progress.as_ref(), &context)
                    .await;
            }
            Err(e) => return Err(io(e)),
        }
        let rest = copy(first, job.size);
        let store = self.clone();
        let hash = job.hash;
        let verified = for_each_bounded(verify_parts(job.size), parallelism(), move |ranges| {
            let (store, progress) = (store.clone(), progress.clone());
            async move {
                let mut read = store.read_verified_ranges(hash, ranges).await?;
                while let Some((_, piece)) = read.next().await? {
                    progress.advance(piece.len() as u64);
                }
                Ok(())
            }
        })
        .await;
        // The copy ends before the export does, whatever the check found:
        // nothing keeps writing into a file about to be removed.
        let copied = rest.await.map_err(|e| io(std::io::Error::other(e)))?;
        verified?;
        copied.map_err(io)
    }

    /// Writes blob `hash` into `file` from a verified read.
    async fn stream_large_file(
        &self,
        hash: Hash,
        file: &std::fs::File,
        progress: &dyn Progress,
        context: &str,
    ) -> Result<()> {
        let io = |e| CasError::io(context, e);
        let mut read = self.read_verified(hash).await?;
        let file = file.try_clone().map_err(io)?;
        let mut out =
            tokio::io::BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file));
        while let Some((_, piece)) = read.next().await? {
            out.write_all(&piece).await.map_err(io)?;
            progress.advance(piece.len() as u64);
        }
        out.flush().await.map_err(io)
    }
}

/// The parts a large blob is verified in, one per core: whole 16 KiB
/// groups (16 chunks of 1 KiB) each.
fn verify_parts(size: u64) -> Vec<ChunkRanges> {
    let groups = size.div_ceil(16 << 10).max(1);
    let per_part = groups.div_ceil(parallelism() as u64).max(1);
    (0..groups)
        .step_by(usize::try_from(per_part).unwrap_or(usize::MAX))
        .map(|g| {
            let end = (g + per_part).min(groups);
            ChunkRanges::from(ChunkNum(g * 16)..ChunkNum(end * 16))
        })
        .collect()
}

fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Copies bytes `from..to` of `source` to the same offsets of `dest` inside
/// the kernel (`copy_file_range`); fails if `source` is shorter.
fn copy_in_kernel(source: &Path, dest: &std::fs::File, from: u64, to: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let source = std::fs::File::open(source)?;
    let offset = |at: u64| i64::try_from(at).map_err(std::io::Error::other);
    let (mut off_in, mut off_out) = (offset(from)?, offset(from)?);
    let mut left = to.saturating_sub(from);
    while left > 0 {
        let want = usize::try_from(left.min(1 << 30)).unwrap_or(1 << 30);
        // SAFETY: both descriptors stay open for the call, and the offsets
        // point to locals.
        let n = unsafe {
            libc::copy_file_range(
                source.as_raw_fd(),
                &mut off_in,
                dest.as_raw_fd(),
                &mut off_out,
                want,
                0,
            )
        };
        match u64::try_from(n) {
            Err(_) => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            // Some file systems copy nothing rather than refuse.
            Ok(0) if from == 0 && left == to => {
                return Err(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP));
            }
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the store's data file ends {left} bytes early"),
                ));
            }
            Ok(n) => left -= n,
        }
    }
    Ok(())
}

/// Whether `copy_file_range` failed because it cannot copy between these
/// files at all (another file system, no support, a seccomp profile that
/// refuses the call), not because of an error.
fn kernel_cannot_copy(errno: i32) -> bool {
    matches!(
        errno,
        libc::EXDEV | libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL | libc::EPERM | libc::EBADF
    )
}

/// Creates a new file; `O_EXCL` never follows or reuses whatever is at the
/// path. The mode goes through the umask, as with `cp` and `git checkout`.
fn create_file(path: &Path, exec: bool) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if exec { 0o777 } else { 0o666 })
        .open(path)
}

fn create_dir(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|e| CasError::io(format!("creating directory {}", path.display()), e))
}

/// Moves the finished `staging` to `dest`, replacing what is there (if `exists`).
fn replace(staging: &Path, dest: &Path, exists: bool) -> Result<()> {
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to)
            .map_err(|e| CasError::io(format!("moving {} to {}", from.display(), to.display()), e))
    };
    if !exists {
        return rename(staging, dest);
    }
    let old = staging.with_extension("old");
    rename(dest, &old)?;
    if let Err(e) = rename(staging, dest) {
        // Put the original back: nothing is lost.
        let _ = std::fs::rename(&old, dest);
        return Err(e);
    }
    remove_any(&old);
    Ok(())
}

/// Removes a file or a directory tree, without following symlinks.
fn remove_any(path: &Path) {
    match path.symlink_metadata() {
        Ok(meta) if meta.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:08x}", std::process::id())
}
