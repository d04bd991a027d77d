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
    /// Modification time, nanoseconds since the epoch.
    pub mtime: i128,
    /// Change time, nanoseconds since the epoch.
    pub ctime: i128,
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
            mtime: i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec()),
            ctime: i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec()),
            ino: md.ino(),
            mode: md.mode(),
        }
    }

    /// Whether its last change is at least [`SETTLE`] older than `now`
    /// (nanoseconds since the epoch).
    pub fn settled(&self, now: i128) -> bool {
        self.settles_in(now).is_zero()
    }

    /// How long from `now` until its last change is [`SETTLE`] old.
    pub fn settles_in(&self, now: i128) -> std::time::Duration {
        let age = now - self.mtime.max(self.ctime);
        let left = (SETTLE.as_nanos() as i128 - age).clamp(0, SETTLE.as_nanos() as i128);
        std::time::Duration::from_nanos(left as u64)
    }
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
