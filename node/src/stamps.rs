//! Stamps of files, as a synced folder's index keeps them (path -> what
//! `lstat` said of the file when it was read -> its hash, as git's index):
//! equal stamps mean equal bytes. Its own module because the node's sync
//! state (`net::sync`) holds each folder's index in memory, and the folder
//! code (`sync::folder`) reads and writes it.
//!
//! A [`Listing`] is the folder as its last full scan found it: the stamp
//! of every directory and of every entry in it. A directory's
//! modification time moves whenever an entry is added to it, removed or
//! renamed, so a folder whose directories and entries all stamp as listed
//! holds what it held then, and a rescan checks it with one `lstat` per
//! entry and no directory listing (git's untracked cache, for a whole
//! folder).

use std::{
    collections::HashMap,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::fs::{MetadataExt, OpenOptionsExt},
    },
    path::Path,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
};

use clive_cas::{EntryKind, Hash};
use serde::{Deserialize, Serialize};

/// How old a file's last change must be for it to be read.
pub const SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// What `lstat` says of an entry: equal stamps mean equal bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch (an `i64` holds
    /// them until 2262; the index's JSON records read the same).
    pub mtime: i64,
    /// Change time, nanoseconds since the epoch.
    pub ctime: i64,
    /// Inode number.
    pub ino: u64,
    /// Mode bits (type and permissions).
    pub mode: u32,
}

impl Stamp {
    /// The stamp of what `md` describes.
    pub fn of(md: &std::fs::Metadata) -> Self {
        Stamp {
            size: md.size(),
            mtime: nanos(md.mtime(), md.mtime_nsec()),
            ctime: nanos(md.ctime(), md.ctime_nsec()),
            ino: md.ino(),
            mode: md.mode(),
        }
    }

    /// The stamp of what `st` (from `fstatat`) describes.
    pub fn of_stat(st: &libc::stat) -> Self {
        Stamp {
            size: st.st_size as u64,
            mtime: nanos(st.st_mtime, st.st_mtime_nsec),
            ctime: nanos(st.st_ctime, st.st_ctime_nsec),
            ino: st.st_ino,
            mode: st.st_mode,
        }
    }

    /// Whether it describes the same bytes as `other` (the mode aside).
    pub fn same_content(&self, other: &Stamp) -> bool {
        (self.ino, self.size, self.mtime, self.ctime)
            == (other.ino, other.size, other.mtime, other.ctime)
    }

    /// Whether its last change is at least [`SETTLE`] older than `now`
    /// (nanoseconds since the epoch).
    pub fn settled(&self, now: i64) -> bool {
        self.settles_in(now).is_zero()
    }

    /// How long from `now` until its last change is [`SETTLE`] old.
    pub fn settles_in(&self, now: i64) -> std::time::Duration {
        let settle = SETTLE.as_nanos() as i64;
        let age = now.saturating_sub(self.mtime.max(self.ctime));
        let left = settle.saturating_sub(age).clamp(0, settle);
        std::time::Duration::from_nanos(left as u64)
    }
}

/// Seconds and nanoseconds since the epoch as nanoseconds (saturating).
pub fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// One path of the index: its stamp when it was read, and what it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indexed {
    /// Its stamp.
    pub stamp: Stamp,
    /// File or executable file.
    pub kind: EntryKind,
    /// Its content address.
    #[serde(with = "clive_cas::hash::serde_hex")]
    pub hash: Hash,
}

/// A folder's index: relative path -> [`Indexed`].
pub type Index = HashMap<String, Indexed>;

/// A folder as its last full scan found it (see the module's doc).
#[derive(Debug, Default)]
pub struct Listing {
    dirs: Vec<ListedDir>,
    /// Every file's and symlink's name, each NUL-terminated, back to back.
    names: Vec<u8>,
    /// Per entry, grouped by directory: where its name starts in `names`,
    /// and its stamp.
    entries: Vec<(u32, Stamp)>,
}

#[derive(Debug)]
struct ListedDir {
    /// Relative to the folder (`""` for the folder itself).
    rel: String,
    stamp: Stamp,
    /// Its entries, in `Listing::entries`.
    first: u32,
    end: u32,
}

/// Most threads a check of a [`Listing`] uses.
const MAX_CHECK_THREADS: usize = 4;

impl Listing {
    /// The listing of `dirs` (every directory by its relative path, the
    /// folder itself as `""`) and `entries` (every file and symlink, by its
    /// relative path), each with the stamp it had when the scan began to
    /// read it; `None` when an entry's directory is not among `dirs`, or
    /// a directory changed less than [`SETTLE`] before `began` (a change in
    /// the same clock tick would not move its time again), so that the
    /// next scan lists the folder again.
    pub fn new<'a>(
        dirs: impl IntoIterator<Item = (&'a str, Stamp)>,
        entries: impl IntoIterator<Item = (&'a str, Stamp)>,
        began: i64,
    ) -> Option<Listing> {
        let mut dirs: Vec<(&str, Stamp)> = dirs.into_iter().collect();
        if dirs.iter().any(|(_, stamp)| !stamp.settled(began)) {
            return None;
        }
        dirs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let at: HashMap<&str, usize> = dirs.iter().enumerate().map(|(i, d)| (d.0, i)).collect();
        let mut grouped = Vec::new();
        for (rel, stamp) in entries {
            let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
            grouped.push((*at.get(parent)?, name, stamp));
        }
        grouped.sort_unstable_by_key(|e| e.0);
        let mut listing = Listing {
            dirs: Vec::with_capacity(dirs.len()),
            names: Vec::new(),
            entries: Vec::with_capacity(grouped.len()),
        };
        let mut next = grouped.into_iter().peekable();
        for (i, (rel, stamp)) in dirs.into_iter().enumerate() {
            let first = u32::try_from(listing.entries.len()).ok()?;
            while let Some((_, name, stamp)) = next.next_if(|e| e.0 == i) {
                let start = u32::try_from(listing.names.len()).ok()?;
                listing.names.extend_from_slice(name.as_bytes());
                listing.names.push(0);
                listing.entries.push((start, stamp));
            }
            let end = u32::try_from(listing.entries.len()).ok()?;
            listing.dirs.push(ListedDir {
                rel: rel.to_owned(),
                stamp,
                first,
                end,
            });
        }
        Some(listing)
    }

    /// Entries (files and symlinks) listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it lists no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the folder at `root` still stamps as listed: every
    /// directory and every entry, `lstat`ed relative to its directory's
    /// descriptor, directories spread over one thread per core. Anything
    /// that cannot be opened or stamped counts as a change.
    pub fn unchanged(&self, root: &Path) -> bool {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_CHECK_THREADS)
            .min(self.dirs.len().max(1));
        let next = AtomicUsize::new(0);
        let changed = AtomicBool::new(false);
        let check = || {
            while !changed.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(dir) = self.dirs.get(i) else { break };
                if !self.dir_unchanged(root, dir) {
                    changed.store(true, Ordering::Relaxed);
                }
            }
        };
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(check);
            }
            check();
        });
        !changed.load(Ordering::Relaxed)
    }

    fn dir_unchanged(&self, root: &Path, dir: &ListedDir) -> bool {
        let path = if dir.rel.is_empty() {
            root.to_owned()
        } else {
            root.join(&dir.rel)
        };
        // `O_PATH`: the directory is not opened for reading, so a watcher
        // of the folder hears nothing of the check.
        let Ok(file) = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&path)
        else {
            return false;
        };
        let fd = OwnedFd::from(file);
        if lstat_at(&fd, c"")
            .ok()
            .map(|st| Stamp::of_stat(&st))
            .as_ref()
            != Some(&dir.stamp)
        {
            return false;
        }
        let entries = self
            .entries
            .get(dir.first as usize..dir.end as usize)
            .unwrap_or_default();
        entries.iter().all(|(start, stamp)| {
            let name = self.names.get(*start as usize..).unwrap_or_default();
            match std::ffi::CStr::from_bytes_until_nul(name) {
                Ok(name) => {
                    lstat_at(&fd, name)
                        .ok()
                        .map(|st| Stamp::of_stat(&st))
                        .as_ref()
                        == Some(stamp)
                }
                Err(_) => false,
            }
        })
    }
}

/// `lstat` of `name` relative to `dir` (of `dir` itself when `name` is
/// empty): the one place the folder code asks what is at a name.
pub(crate) fn lstat_at(dir: &OwnedFd, name: &std::ffi::CStr) -> std::io::Result<libc::stat> {
    let flags = if name.is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor, a NUL-terminated name and an out-parameter.
    let r = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, flags) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st)
}
