//! Writing a merge into a synced folder: only the paths that changed, each
//! atomically (a temporary file beside it, then `renameat`), modes and
//! symlinks kept.
//!
//! Every path is reached from the folder's own directory descriptor one
//! component at a time with `openat(O_NOFOLLOW | O_DIRECTORY)`, so a
//! symlink (or a file) where a directory should be stops that step: nothing
//! is ever written outside the folder, whatever the version or the folder
//! holds. Right before a path is replaced or removed, its stamp is compared
//! with the index: a file changed since it was scanned is left as it is and
//! the incoming one is written beside it as a conflict copy.

use std::{
    ffi::CString,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::Path,
};

use clive_cas::{EntryKind, Store};
use tokio::io::AsyncWriteExt;

use super::{
    merge::{Flat, Leaf, Step},
    scan::{Index, Indexed, Stamp, TEMP_PREFIX},
};

/// What one writeback did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Paths written (including conflict copies).
    pub written: u64,
    /// Paths removed.
    pub removed: u64,
    /// Conflict copies written: (the path, its copy).
    pub conflicts: Vec<(String, String)>,
    /// Steps left out, and why (a symlink or file in the way, a file that
    /// changed meanwhile, an I/O error).
    pub skipped: Vec<String>,
    /// The files written, as the index knows them: what is on disk is what
    /// was written, however recently.
    pub indexed: Vec<(String, Indexed)>,
}

fn cstr(name: &str) -> std::io::Result<CString> {
    CString::new(name).map_err(|_| std::io::Error::other("a name holds NUL"))
}

fn open_dir_at(parent: &OwnedFd, name: &str) -> std::io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: a valid descriptor and a NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            parent.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_root(dir: &Path) -> std::io::Result<OwnedFd> {
    let file = std::fs::File::open(dir)?;
    if !file.metadata()?.is_dir() {
        return Err(std::io::Error::other("not a directory"));
    }
    Ok(OwnedFd::from(file))
}

/// The directory holding `path` (created as needed, never through a
/// symlink), and the last component.
fn parent_of<'p>(
    root: &OwnedFd,
    path: &'p str,
    create: bool,
) -> std::io::Result<(OwnedFd, &'p str)> {
    let mut parts: Vec<&str> = path.split('/').collect();
    let last = parts
        .pop()
        .ok_or_else(|| std::io::Error::other("empty path"))?;
    let mut at = root.try_clone()?;
    for part in parts {
        at = match open_dir_at(&at, part) {
            Ok(fd) => fd,
            Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => {
                let c = cstr(part)?;
                // SAFETY: as above.
                if unsafe { libc::mkdirat(at.as_raw_fd(), c.as_ptr(), 0o755) } < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::AlreadyExists {
                        return Err(e);
                    }
                }
                open_dir_at(&at, part)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok((at, last))
}

/// `lstat` of `name` in `dir`, or `None` when it does not exist.
fn stat_at(dir: &OwnedFd, name: &str) -> std::io::Result<Option<libc::stat>> {
    match crate::stamps::lstat_at(dir, &cstr(name)?) {
        Ok(st) => Ok(Some(st)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether what is at `name` now is what the index says of `path` (or,
/// with no index entry, nothing, or an empty directory when `leaf` is one).
fn unchanged(dir: &OwnedFd, name: &str, path: &str, index: &Index, was: Option<&Leaf>) -> bool {
    let Ok(now) = stat_at(dir, name) else {
        return false;
    };
    match (now, index.get(path)) {
        // Removed here since the scan: writing there overwrites nothing.
        (None, _) => true,
        (Some(st), Some(old)) => Stamp::of_stat(&st).same_content(&old.stamp),
        (Some(st), None) => {
            // Symlinks and empty directories are not indexed: they are
            // what the merge saw when they are of the same kind.
            let kind = st.st_mode & libc::S_IFMT;
            match was.map(|l| l.kind) {
                Some(EntryKind::Symlink) => kind == libc::S_IFLNK,
                Some(EntryKind::Tree) => kind == libc::S_IFDIR,
                _ => false,
            }
        }
    }
}

fn temp_name() -> String {
    format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>())
}

/// Writes `leaf` as a temporary entry in `dir` and returns its name.
async fn write_temp(store: &Store, dir: &OwnedFd, leaf: &Leaf) -> std::io::Result<String> {
    let tmp = temp_name();
    let c = cstr(&tmp)?;
    match leaf.kind {
        EntryKind::File | EntryKind::Exec => {
            let mode = if leaf.kind == EntryKind::Exec {
                0o755
            } else {
                0o644
            };
            // SAFETY: valid descriptor and name; O_EXCL never follows a symlink.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    c.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    mode as libc::c_uint,
                )
            };
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: just opened, owned here.
            let file = unsafe { std::fs::File::from_raw_fd(fd) };
            let mut out = tokio::fs::File::from_std(file);
            let written = async {
                store
                    .write_blob_to(leaf.hash, &mut out)
                    .await
                    .map_err(std::io::Error::other)?;
                out.flush().await?;
                let file = out.into_std().await;
                // The umask may have taken bits away.
                // SAFETY: a valid descriptor.
                if unsafe { libc::fchmod(file.as_raw_fd(), mode) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok::<_, std::io::Error>(())
            }
            .await;
            if let Err(e) = written {
                unlink_at(dir, &tmp, false).ok();
                return Err(e);
            }
        }
        EntryKind::Symlink => {
            let target = store
                .read_bytes(leaf.hash)
                .await
                .map_err(std::io::Error::other)?;
            let target = CString::new(target.to_vec())
                .map_err(|_| std::io::Error::other("a symlink target holds NUL"))?;
            // SAFETY: valid strings and descriptor.
            if unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), c.as_ptr()) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        EntryKind::Tree => {
            // SAFETY: as above.
            if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(tmp)
}

fn rename_at(dir: &OwnedFd, from: &str, to: &str) -> std::io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: valid descriptor and names.
    if unsafe { libc::renameat(dir.as_raw_fd(), f.as_ptr(), dir.as_raw_fd(), t.as_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn unlink_at(dir: &OwnedFd, name: &str, is_dir: bool) -> std::io::Result<()> {
    let c = cstr(name)?;
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: valid descriptor and name.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Puts `leaf` at `name` in `dir`, replacing what is there (an empty
/// directory is removed first; a non-empty one is never replaced).
async fn put(
    store: &Store,
    dir: &OwnedFd,
    name: &str,
    leaf: &Leaf,
) -> std::io::Result<Option<Stamp>> {
    let existing = stat_at(dir, name)?;
    if let Some(st) = existing
        && st.st_mode & libc::S_IFMT == libc::S_IFDIR
    {
        if leaf.kind == EntryKind::Tree {
            return Ok(None);
        }
        unlink_at(dir, name, true)?;
    }
    let tmp = write_temp(store, dir, leaf).await?;
    if let Err(e) = rename_at(dir, &tmp, name) {
        unlink_at(dir, &tmp, leaf.kind == EntryKind::Tree).ok();
        return Err(e);
    }
    if !matches!(leaf.kind, EntryKind::File | EntryKind::Exec) {
        return Ok(None);
    }
    Ok(stat_at(dir, name)?.map(|st| Stamp::of_stat(&st)))
}

fn remember(applied: &mut Applied, path: &str, leaf: &Leaf, stamp: Option<Stamp>) {
    if let Some(stamp) = stamp {
        applied.indexed.push((
            path.to_owned(),
            Indexed {
                stamp,
                kind: leaf.kind,
                hash: leaf.hash,
            },
        ));
    }
}

/// Applies `steps` (from [`super::merge::merge`] against `local`, scanned
/// with `index`) to `dir`; `remote` is the version being written, so that
/// directories it no longer has are removed once empty.
pub async fn apply(
    store: &Store,
    dir: &Path,
    steps: &[Step],
    local: &Flat,
    index: &Index,
    remote: &Flat,
) -> Applied {
    let mut applied = Applied::default();
    let root = match open_root(dir) {
        Ok(fd) => fd,
        Err(e) => {
            applied.skipped.push(format!("{}: {e}", dir.display()));
            return applied;
        }
    };
    let mut emptied = Vec::new();
    for step in steps {
        let result = match step {
            Step::Write { path, leaf } => {
                write_step(store, &root, path, leaf, local, index, &mut applied).await
            }
            Step::Remove { path, was } => match parent_of(&root, path, false) {
                Ok((parent, name)) => {
                    if unchanged(&parent, name, path, index, Some(was)) {
                        match unlink_at(&parent, name, was.kind == EntryKind::Tree) {
                            Ok(()) => {
                                applied.removed += 1;
                                emptied.push(path.clone());
                                Ok(())
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                            Err(e) => Err(e),
                        }
                    } else {
                        applied
                            .skipped
                            .push(format!("{path}: changed here since the scan; kept"));
                        Ok(())
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            },
            Step::Conflict { path, copy, leaf } => match parent_of(&root, copy, true) {
                Ok((parent, name)) => match stat_at(&parent, name) {
                    Ok(None) => match put(store, &parent, name, leaf).await {
                        Ok(stamp) => {
                            remember(&mut applied, copy, leaf, stamp);
                            applied.written += 1;
                            applied.conflicts.push((path.clone(), copy.clone()));
                            Ok(())
                        }
                        Err(e) => Err(e),
                    },
                    Ok(Some(_)) => Ok(()),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            let path = match step {
                Step::Write { path, .. }
                | Step::Remove { path, .. }
                | Step::Conflict { path, .. } => path,
            };
            applied.skipped.push(format!("{path}: {e}"));
        }
    }
    prune_empty_dirs(&root, &emptied, remote);
    applied
}

async fn write_step(
    store: &Store,
    root: &OwnedFd,
    path: &str,
    leaf: &Leaf,
    local: &Flat,
    index: &Index,
    applied: &mut Applied,
) -> std::io::Result<()> {
    let (parent, name) = parent_of(root, path, true)?;
    if unchanged(&parent, name, path, index, local.get(path)) {
        let stamp = put(store, &parent, name, leaf).await?;
        remember(applied, path, leaf, stamp);
        applied.written += 1;
        return Ok(());
    }
    // Changed since the scan: it stays, the incoming one goes beside it.
    let copy = super::merge::conflict_name(name, "incoming", &super::date_now());
    if stat_at(&parent, &copy)?.is_none() {
        let stamp = put(store, &parent, &copy, leaf).await?;
        let full = match path.rsplit_once('/') {
            Some((d, _)) => format!("{d}/{copy}"),
            None => copy.clone(),
        };
        remember(applied, &full, leaf, stamp);
        applied.written += 1;
        applied.conflicts.push((path.to_owned(), full));
    }
    Ok(())
}

/// Removes the directories above `removed` paths that are empty now and
/// that `remote` does not have.
fn prune_empty_dirs(root: &OwnedFd, removed: &[String], remote: &Flat) {
    for path in removed {
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            let prefix = format!("{parent}/");
            let kept = remote.contains_key(parent)
                || remote
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(p, _)| p.starts_with(&prefix));
            if kept {
                break;
            }
            let Ok((dir, name)) = parent_of(root, parent, false) else {
                break;
            };
            // Fails (and stops) when it is not empty.
            if unlink_at(&dir, name, true).is_err() {
                break;
            }
            at = parent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{os::unix::fs::PermissionsExt, sync::Arc};

    /// A store holding `bytes` (its hash, kept until the guard drops) and
    /// an empty folder, in a temporary directory.
    async fn setup(
        bytes: &'static [u8],
    ) -> (
        tempfile::TempDir,
        Store,
        clive_cas::Hash,
        clive_cas::ImportGuard,
        std::path::PathBuf,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let db = redb::Database::create(tmp.path().join("state.redb")).unwrap();
        let store = Store::open(&tmp.path().join("blobs"), Arc::new(db))
            .await
            .unwrap();
        let (hash, guard) = store.put_bytes(bytes).await.unwrap();
        let folder = tmp.path().join("folder");
        std::fs::create_dir_all(&folder).unwrap();
        (tmp, store, hash, guard, folder)
    }

    fn file(hash: clive_cas::Hash, size: u64, kind: EntryKind) -> Leaf {
        Leaf { kind, hash, size }
    }

    #[tokio::test]
    async fn nothing_is_written_through_a_symlink_out_of_the_folder() {
        let (tmp, store, hash, _guard, folder) = setup(b"pwned\n").await;
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, folder.join("esc")).unwrap();
        std::fs::write(folder.join("plain"), "a file\n").unwrap();
        let leaf = file(hash, 6, EntryKind::Exec);
        let steps = vec![
            Step::Write {
                path: "esc/pwned".into(),
                leaf,
            },
            Step::Conflict {
                path: "esc/other".into(),
                copy: "esc/other.sync-conflict-d-T".into(),
                leaf,
            },
            Step::Write {
                path: "plain/under".into(),
                leaf,
            },
            Step::Write {
                path: "deep/new/ok".into(),
                leaf,
            },
        ];
        let applied = apply(
            &store,
            &folder,
            &steps,
            &Flat::new(),
            &Index::new(),
            &Flat::new(),
        )
        .await;
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "{applied:?}"
        );
        assert_eq!(applied.skipped.len(), 3, "{applied:?}");
        assert_eq!(
            std::fs::read_to_string(folder.join("plain")).unwrap(),
            "a file\n"
        );
        let ok = folder.join("deep/new/ok");
        assert_eq!(std::fs::read_to_string(&ok).unwrap(), "pwned\n");
        assert_eq!(
            std::fs::metadata(&ok).unwrap().permissions().mode() & 0o777,
            0o755
        );
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(folder.join("deep/new"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(left.len(), 1);
        store.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn a_file_changed_since_the_scan_is_kept_and_the_incoming_one_goes_beside_it() {
        let (_tmp, store, hash, _guard, folder) = setup(b"incoming\n").await;
        // Written after the scan that saw nothing there.
        std::fs::write(folder.join("notes.txt"), "typed just now\n").unwrap();
        let steps = vec![Step::Write {
            path: "notes.txt".into(),
            leaf: file(hash, 9, EntryKind::File),
        }];
        let applied = apply(
            &store,
            &folder,
            &steps,
            &Flat::new(),
            &Index::new(),
            &Flat::new(),
        )
        .await;
        assert_eq!(
            std::fs::read_to_string(folder.join("notes.txt")).unwrap(),
            "typed just now\n"
        );
        assert_eq!(applied.conflicts.len(), 1, "{applied:?}");
        let copy = folder.join(&applied.conflicts[0].1);
        assert_eq!(std::fs::read_to_string(copy).unwrap(), "incoming\n");
        store.shutdown().await.unwrap();
    }
}
