//! Reading a synced folder into the store: a walk that honours
//! `.cliveignore` (gitignore syntax), a stat of every entry against the
//! folder's index (path -> size, modification and change times, inode,
//! mode -> hash, as git's index), and hashing only what changed.
//!
//! A file still being written is not taken torn or half-written: one whose
//! modification or change time is younger than [`SETTLE`], or whose stamp
//! moved while it was read, is left for a later scan (its last settled
//! version, if any, stands in for it meanwhile, and the scan says it is
//! `unsettled`). The node's own temporary files (`.clive-tmp-*`, written by
//! writeback) and the node's home, if it lies inside the folder, are never
//! read.

use std::{
    collections::BTreeMap,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use clive_cas::{Entry, EntryKind, Hash, ImportGuard, Store, Tree};

use super::{
    merge::{Flat, Leaf},
    walk::Found,
};
use crate::{NodeError, SyncError};

/// The prefix of writeback's temporary files.
pub const TEMP_PREFIX: &str = ".clive-tmp-";
/// The ignore file, in gitignore syntax.
pub const IGNORE_FILE: &str = ".cliveignore";
/// Most entries a folder may hold.
pub const MAX_ENTRIES: usize = 1_000_000;

pub use crate::stamps::{Index, Indexed, SETTLE, Stamp};

/// One scan of a folder.
pub struct Scan {
    /// The folder as it stands (settled files only).
    pub flat: Flat,
    /// The index after this scan.
    pub index: Arc<Index>,
    /// Files still being written, left for a later scan.
    pub unsettled: Vec<String>,
    /// When the youngest of them will have been quiet for [`SETTLE`].
    pub settles_in: Option<Duration>,
    /// Files read and hashed by this scan.
    pub hashed: u64,
    /// Keeps what this scan stored until it is published.
    pub guard: Option<ImportGuard>,
}

fn io(dir: &Path, e: impl std::fmt::Display) -> NodeError {
    SyncError::Folder {
        dir: dir.to_owned(),
        reason: e.to_string(),
    }
    .into()
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn exec_kind(stamp: &Stamp) -> EntryKind {
    if stamp.mode & 0o111 != 0 {
        EntryKind::Exec
    } else {
        EntryKind::File
    }
}

/// Scans `dir` against `index`: stats everything, hashes (and stores)
/// only files whose stamp changed and that have settled.
pub async fn scan(
    store: &Store,
    dir: &Path,
    index: &Arc<Index>,
    skip: &[PathBuf],
) -> Result<Scan, NodeError> {
    let (d, s) = (dir.to_owned(), skip.to_vec());
    let found = tokio::task::spawn_blocking(move || super::walk::walk(&d, &s))
        .await
        .map_err(|e| io(dir, e))?
        .map_err(|e| io(dir, e))?;
    let now = now_nanos();
    // The folder's leaves, and how many of them are the index's entries
    // as they were: when that is all of the index and nothing was read,
    // the index stands as it is.
    let mut leaves: Vec<(String, Leaf)> = Vec::with_capacity(found.len());
    let mut kept = 0usize;
    let mut unsettled = Vec::new();
    let mut settles_in = None;
    let mut to_read: Vec<(String, Stamp)> = Vec::new();
    let mut dirs = Vec::new();
    for f in found {
        match f {
            Found::File { rel, stamp } => match index.get(&rel) {
                Some(old) if old.stamp == stamp => {
                    leaves.push((rel, leaf_of(old)));
                    kept += 1;
                }
                old if !stamp.settled(now) => {
                    if let Some(old) = old {
                        leaves.push((rel.clone(), leaf_of(old)));
                        kept += 1;
                    }
                    unsettled.push(rel);
                    let left = stamp.settles_in(now);
                    settles_in = Some(settles_in.map_or(left, |s: Duration| s.max(left)));
                }
                _ => to_read.push((rel, stamp)),
            },
            Found::Symlink { rel, target } => {
                let leaf = Leaf {
                    kind: EntryKind::Symlink,
                    hash: Hash::new(&target),
                    size: target.len() as u64,
                };
                leaves.push((rel, leaf));
            }
            Found::Dir { rel } => dirs.push(rel),
        }
    }
    let mut guard = None;
    let hashed = to_read.len() as u64;
    let mut read = Vec::new();
    if !to_read.is_empty() {
        let paths = to_read.iter().map(|(rel, _)| dir.join(rel)).collect();
        let (added, g) = match store.add_files(paths).await {
            Ok(done) => done,
            // A file that vanished or cannot be read mid-scan: the next
            // scan (the watcher fires again) sees the folder as it is then.
            Err(e) => return Err(io(dir, e)),
        };
        guard = Some(g);
        for ((rel, before), (hash, size)) in to_read.into_iter().zip(added) {
            let after = std::fs::symlink_metadata(dir.join(&rel)).map(|md| Stamp::of(&md));
            if after.as_ref().ok() != Some(&before) || size != before.size {
                if let Some(old) = index.get(&rel) {
                    leaves.push((rel.clone(), leaf_of(old)));
                    kept += 1;
                }
                unsettled.push(rel);
                settles_in = Some(SETTLE);
                continue;
            }
            let indexed = Indexed {
                stamp: before,
                kind: exec_kind(&before),
                hash,
            };
            leaves.push((rel.clone(), leaf_of(&indexed)));
            read.push((rel, indexed));
        }
    }
    let next = if read.is_empty() && kept == index.len() {
        index.clone()
    } else {
        let mut next: Index = leaves
            .iter()
            .filter(|(_, l)| l.kind != EntryKind::Symlink)
            .filter_map(|(rel, _)| index.get(rel).map(|old| (rel.clone(), *old)))
            .collect();
        next.extend(read);
        Arc::new(next)
    };
    let mut flat: Flat = leaves.into_iter().collect();
    // Directories with nothing below them stand for themselves; one that
    // only held an unsettled file is not empty.
    for rel in dirs {
        let prefix = format!("{rel}/");
        let has_child = flat
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix))
            || unsettled.iter().any(|u| u.starts_with(&prefix));
        if !has_child {
            flat.insert(rel, empty_dir());
        }
    }
    Ok(Scan {
        flat,
        index: next,
        unsettled,
        settles_in,
        hashed,
        guard,
    })
}

fn leaf_of(i: &Indexed) -> Leaf {
    Leaf {
        kind: i.kind,
        hash: i.hash,
        size: i.stamp.size,
    }
}

/// The leaf an empty directory is.
pub fn empty_dir() -> Leaf {
    Leaf {
        kind: EntryKind::Tree,
        hash: Tree::default().hash(),
        size: 0,
    }
}

/// A directory being built from a flat map.
#[derive(Default)]
struct Dir {
    files: Vec<(String, Leaf)>,
    dirs: BTreeMap<String, Dir>,
}

/// The trees a flat folder is, bottom-up: the root's hash and every tree
/// encoding to store.
pub fn trees(flat: &Flat) -> Result<(Hash, Vec<Bytes>), NodeError> {
    let mut root = Dir::default();
    for (path, leaf) in flat {
        let mut at = &mut root;
        let mut parts: Vec<&str> = path.split('/').collect();
        let Some(last) = parts.pop() else { continue };
        for p in parts {
            at = at.dirs.entry(p.to_owned()).or_default();
        }
        if leaf.kind == EntryKind::Tree {
            at.dirs.entry(last.to_owned()).or_default();
        } else {
            at.files.push((last.to_owned(), *leaf));
        }
    }
    let mut encodings = Vec::new();
    let (hash, _) = encode(&root, &mut encodings)?;
    Ok((hash, encodings))
}

fn encode(dir: &Dir, out: &mut Vec<Bytes>) -> Result<(Hash, u64), NodeError> {
    let mut entries = Vec::with_capacity(dir.files.len() + dir.dirs.len());
    for (name, leaf) in &dir.files {
        entries.push(Entry {
            name: name.clone(),
            kind: leaf.kind,
            hash: leaf.hash,
            size: leaf.size,
        });
    }
    for (name, sub) in &dir.dirs {
        let (hash, size) = encode(sub, out)?;
        entries.push(Entry {
            name: name.clone(),
            kind: EntryKind::Tree,
            hash,
            size,
        });
    }
    let tree = Tree::new(entries).map_err(|e| SyncError::Folder {
        dir: PathBuf::new(),
        reason: e.to_string(),
    })?;
    let size = tree.total_size();
    let bytes = Bytes::from(tree.encode());
    let hash = Hash::new(&bytes);
    out.push(bytes);
    Ok((hash, size))
}

/// The symlink targets of `flat` as bytes to store (their hashes are the
/// leaves'), read back from `dir`.
pub fn symlink_targets(dir: &Path, flat: &Flat) -> Vec<Bytes> {
    flat.iter()
        .filter(|(_, l)| l.kind == EntryKind::Symlink)
        .filter_map(|(p, _)| std::fs::read_link(dir.join(p)).ok())
        .map(|t| Bytes::copy_from_slice(t.as_os_str().as_bytes()))
        .collect()
}

/// A stored tree as a flat map (an empty subtree is an empty-directory
/// leaf). Every tree it reaches must be stored here.
pub async fn flatten(store: &Store, root: Hash) -> Result<Flat, NodeError> {
    let mut flat = Flat::new();
    let mut stack = vec![(String::new(), root)];
    while let Some((prefix, hash)) = stack.pop() {
        let tree = store.read_tree(hash).await?;
        if tree.entries().is_empty() && !prefix.is_empty() {
            flat.insert(prefix, empty_dir());
            continue;
        }
        for e in tree.entries() {
            let path = if prefix.is_empty() {
                e.name.clone()
            } else {
                format!("{prefix}/{}", e.name)
            };
            if e.kind == EntryKind::Tree {
                stack.push((path, e.hash));
            } else {
                flat.insert(
                    path,
                    Leaf {
                        kind: e.kind,
                        hash: e.hash,
                        size: e.size,
                    },
                );
            }
        }
        if flat.len() > MAX_ENTRIES {
            return Err(SyncError::Folder {
                dir: PathBuf::new(),
                reason: format!("version {root} holds more than {MAX_ENTRIES} entries"),
            }
            .into());
        }
    }
    Ok(flat)
}
