//! Stamps of files, as a synced folder's index keeps them (path -> what
//! `lstat` said of the file when it was read -> its hash, as git's index):
//! equal stamps mean equal bytes. Its own module because the node's sync
//! state (`net::sync`) holds each folder's index in memory, and the folder
//! code (`sync::folder`) reads and writes it.

use std::{collections::HashMap, os::unix::fs::MetadataExt};

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
