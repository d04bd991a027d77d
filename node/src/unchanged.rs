//! Paths added before and unchanged since, known by their file system
//! stamps: a job's path inputs (and a pipeline's, on every run) are not
//! read and hashed again when nothing about them changed.
//!
//! A path's stamp is the BLAKE3 of what `lstat` says of it and of
//! everything under it, walked in name order without following symlinks
//! (the path itself is followed, as `add` follows it): each entry's
//! relative name, type, mode, device, inode, size, modification and change
//! times, and a symlink's target. The change time moves with every write,
//! `chmod`, rename into place and `touch`, and cannot be set back by a
//! user, so an equal stamp means equal bytes, except for a write in the
//! same clock tick as the stamp was taken (git's "racy" entries): a stamp
//! is only remembered when every entry's change time is at least
//! [`SETTLED`] older than the moment it was taken. Anything but files,
//! directories and symlinks is not stamped (the add that follows says
//! what is wrong with it).
//!
//! The index lives in memory, for the life of the node (the daemon's),
//! and holds at most [`MAX_PATHS`] paths (the oldest are forgotten).

use std::{
    collections::{HashMap, VecDeque},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, SystemTime},
};

use clive_cas::Hash;

/// How much older than its stamp a change must be for the stamp to be
/// remembered.
pub const SETTLED: Duration = Duration::from_secs(1);
/// Most paths remembered.
pub const MAX_PATHS: usize = 4096;
/// Most entries a directory may hold to be stamped (a larger one is read).
pub const MAX_ENTRIES: usize = 100_000;

/// What a path looked like when it was added, and what it was added as.
#[derive(Debug, Default)]
pub struct Unchanged {
    inner: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    by_path: HashMap<PathBuf, (blake3::Hash, Hash)>,
    order: VecDeque<PathBuf>,
}

/// A path's stamp, taken now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    digest: blake3::Hash,
    /// Whether every change it covers is older than [`SETTLED`].
    settled: bool,
}

impl Unchanged {
    /// The hash `path` was added as, if its stamp is `stamp` now.
    pub fn get(&self, path: &Path, stamp: &Stamp) -> Option<Hash> {
        let index = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match index.by_path.get(path) {
            Some((digest, hash)) if *digest == stamp.digest => Some(*hash),
            _ => None,
        }
    }

    /// Remembers that `path`, stamped `stamp` before it was read, was
    /// added as `hash`; a stamp not yet settled is not remembered.
    pub fn put(&self, path: &Path, stamp: &Stamp, hash: Hash) {
        if !stamp.settled {
            return;
        }
        let mut index = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if index
            .by_path
            .insert(path.to_owned(), (stamp.digest, hash))
            .is_none()
        {
            index.order.push_back(path.to_owned());
        }
        while index.order.len() > MAX_PATHS {
            if let Some(old) = index.order.pop_front() {
                index.by_path.remove(&old);
            }
        }
    }
}

/// Stamps `path` (absolute): None when it cannot be stamped (it is missing,
/// unreadable, of another kind, or too large a directory), which leaves
/// the add to read it and say what is wrong.
pub fn stamp(path: &Path) -> Option<Stamp> {
    let now = SystemTime::now();
    let meta = std::fs::metadata(path).ok()?;
    let mut hasher = blake3::Hasher::new();
    let mut newest = 0i64;
    let mut entries = 0usize;
    entry(&mut hasher, &mut newest, b"", &meta, None);
    if meta.is_dir() {
        walk(path, b"", &mut hasher, &mut newest, &mut entries)?;
    } else if !meta.is_file() {
        return None;
    }
    let settled = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|n| i64::try_from(n.saturating_sub(SETTLED).as_nanos()).ok())
        .is_some_and(|limit| newest < limit);
    Some(Stamp {
        digest: hasher.finalize(),
        settled,
    })
}

fn walk(
    dir: &Path,
    rel: &[u8],
    hasher: &mut blake3::Hasher,
    newest: &mut i64,
    entries: &mut usize,
) -> Option<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .ok()?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .ok()?;
    names.sort();
    for name in names {
        *entries += 1;
        if *entries > MAX_ENTRIES {
            return None;
        }
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        let mut child = rel.to_vec();
        child.push(b'/');
        child.extend_from_slice(name.as_bytes());
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&path).ok()?;
            entry(
                hasher,
                newest,
                &child,
                &meta,
                Some(target.as_os_str().as_bytes()),
            );
        } else if ft.is_dir() {
            entry(hasher, newest, &child, &meta, None);
            walk(&path, &child, hasher, newest, entries)?;
        } else if ft.is_file() {
            entry(hasher, newest, &child, &meta, None);
        } else {
            return None;
        }
    }
    Some(())
}

fn entry(
    hasher: &mut blake3::Hasher,
    newest: &mut i64,
    rel: &[u8],
    meta: &std::fs::Metadata,
    target: Option<&[u8]>,
) {
    let ctime = meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec();
    let mtime = meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec();
    *newest = (*newest).max(ctime).max(mtime);
    hasher.update(&(rel.len() as u64).to_le_bytes());
    hasher.update(rel);
    for n in [
        u64::from(meta.mode()),
        meta.dev(),
        meta.ino(),
        meta.size(),
        mtime as u64,
        ctime as u64,
    ] {
        hasher.update(&n.to_le_bytes());
    }
    if let Some(target) = target {
        hasher.update(&(target.len() as u64).to_le_bytes());
        hasher.update(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_change_is_not_settled_and_every_change_moves_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, "one").unwrap();
        let first = stamp(dir.path()).unwrap();
        assert!(!first.settled, "just written");
        assert_eq!(stamp(dir.path()).unwrap(), first, "nothing changed");
        std::fs::write(&file, "two").unwrap();
        let edited = stamp(dir.path()).unwrap();
        assert_ne!(edited.digest, first.digest);
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let chmodded = stamp(dir.path()).unwrap();
        assert_ne!(chmodded.digest, edited.digest);
        std::os::unix::fs::symlink("a", dir.path().join("l")).unwrap();
        assert_ne!(stamp(dir.path()).unwrap().digest, chmodded.digest);
    }

    #[test]
    fn only_settled_stamps_are_remembered_and_only_equal_ones_answer() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, "one").unwrap();
        let index = Unchanged::default();
        let fresh = stamp(&file).unwrap();
        index.put(&file, &fresh, Hash::EMPTY);
        assert_eq!(index.get(&file, &fresh), None, "not settled");
        let settled = Stamp {
            settled: true,
            ..fresh.clone()
        };
        index.put(&file, &settled, Hash::EMPTY);
        assert_eq!(index.get(&file, &fresh), Some(Hash::EMPTY));
        std::fs::write(&file, "two").unwrap();
        assert_eq!(index.get(&file, &stamp(&file).unwrap()), None);
    }

    #[test]
    fn fifos_are_not_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(stamp(&fifo).is_none());
        assert!(stamp(dir.path()).is_none());
    }
}
