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
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use clive_cas::{Entry, EntryKind, Hash, ImportGuard, Store, Tree};

use super::merge::{Flat, Leaf};
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
    pub index: std::sync::Arc<Index>,
    /// Files still being written, left for a later scan.
    pub unsettled: Vec<String>,
    /// When the youngest of them will have been quiet for [`SETTLE`].
    pub settles_in: Option<std::time::Duration>,
    /// Files read and hashed by this scan.
    pub hashed: u64,
    /// Keeps what this scan stored until it is published.
    pub guard: Option<ImportGuard>,
}

/// An entry the walk found.
enum Found {
    File { rel: String, stamp: Stamp },
    Symlink { rel: String, target: Vec<u8> },
    Dir { rel: String },
}

fn io(dir: &Path, e: impl std::fmt::Display) -> NodeError {
    SyncError::Folder {
        dir: dir.to_owned(),
        reason: e.to_string(),
    }
    .into()
}

/// Walks `dir` (never following symlinks), minus what `.cliveignore` files
/// exclude, the node's temporary files and `skip` (the node's home).
///
/// Each directory is listed once and each entry is `lstat`ed relative to
/// its directory's descriptor (`DirEntry::metadata`), so an unchanged
/// folder costs one `getdents` per directory and one `statx` per entry.
fn walk(dir: &Path, skip: &[PathBuf]) -> Result<Vec<Found>, NodeError> {
    let mut walker = Walker {
        root: dir,
        skip,
        rules: Vec::new(),
        out: Vec::new(),
    };
    walker.dir(dir, "")?;
    Ok(walker.out)
}

/// One walk's state: the `.cliveignore` rules of the directories it is
/// in, innermost last.
struct Walker<'a> {
    root: &'a Path,
    skip: &'a [PathBuf],
    rules: Vec<ignore::gitignore::Gitignore>,
    out: Vec<Found>,
}

impl Walker<'_> {
    fn dir(&mut self, abs: &Path, rel: &str) -> Result<(), NodeError> {
        let listing = match std::fs::read_dir(abs) {
            Ok(l) => l,
            // Gone between listing its parent and reading it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !rel.is_empty() => {
                return Ok(());
            }
            Err(e) => return Err(io(self.root, format!("{}: {e}", abs.display()))),
        };
        let mut entries = Vec::new();
        for entry in listing {
            match entry {
                Ok(e) => entries.push(e),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(self.root, format!("{}: {e}", abs.display()))),
            }
        }
        let ruled = entries.iter().any(|e| e.file_name() == IGNORE_FILE) && self.push_rules(abs);
        let walked = self.entries(abs, rel, entries);
        if ruled {
            self.rules.pop();
        }
        walked
    }

    fn entries(
        &mut self,
        abs: &Path,
        rel: &str,
        entries: Vec<std::fs::DirEntry>,
    ) -> Result<(), NodeError> {
        for entry in entries {
            let name = entry.file_name();
            if name.as_bytes().starts_with(TEMP_PREFIX.as_bytes()) {
                continue;
            }
            let md = match entry.metadata() {
                Ok(md) => md,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(self.root, format!("{}: {e}", entry.path().display()))),
            };
            let kind = md.file_type();
            let path = abs.join(&name);
            if self.ignored(&path, kind.is_dir()) || self.skip.iter().any(|s| s == &path) {
                continue;
            }
            let Ok(name) = clive_cas::tree::validate_name(name.as_bytes()) else {
                tracing::debug!("folder {}: skipped {:?} (not a valid name)", self.root.display(), path);
                continue;
            };
            let rel = if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            };
            if kind.is_dir() {
                self.out.push(Found::Dir { rel: rel.clone() });
                self.dir(&path, &rel)?;
            } else if kind.is_symlink() {
                match std::fs::read_link(&path) {
                    Ok(target) => self.out.push(Found::Symlink {
                        rel,
                        target: target.as_os_str().as_bytes().to_vec(),
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(self.root, format!("{rel}: {e}"))),
                }
            } else if kind.is_file() {
                self.out.push(Found::File {
                    rel,
                    stamp: Stamp::of(&md),
                });
            }
            if self.out.len() > MAX_ENTRIES {
                return Err(io(self.root, format!("more than {MAX_ENTRIES} entries")));
            }
        }
        Ok(())
    }

    /// Reads `abs`'s `.cliveignore`; false when it cannot be used (then
    /// it is logged and the directory is walked as if it had none).
    fn push_rules(&mut self, abs: &Path) -> bool {
        let mut builder = ignore::gitignore::GitignoreBuilder::new(abs);
        if let Some(e) = builder.add(abs.join(IGNORE_FILE)) {
            tracing::warn!("folder {}: {e}", self.root.display());
        }
        match builder.build() {
            Ok(rules) => {
                self.rules.push(rules);
                true
            }
            Err(e) => {
                tracing::warn!("folder {}: {e}", self.root.display());
                false
            }
        }
    }

    /// Whether the innermost `.cliveignore` with an opinion on `path`
    /// excludes it (as git: a deeper file overrides a shallower one).
    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        for rules in self.rules.iter().rev() {
            match rules.matched(path, is_dir) {
                ignore::Match::None => continue,
                ignore::Match::Ignore(_) => return true,
                ignore::Match::Whitelist(_) => return false,
            }
        }
        false
    }
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
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
    index: &Index,
    skip: &[PathBuf],
) -> Result<Scan, NodeError> {
    let (d, s) = (dir.to_owned(), skip.to_vec());
    let found = tokio::task::spawn_blocking(move || walk(&d, &s))
        .await
        .map_err(|e| io(dir, e))??;
    let now = now_nanos();
    let mut flat = Flat::new();
    let mut next = Index::new();
    let mut unsettled = Vec::new();
    let mut settles_in = None;
    let mut to_read: Vec<(String, Stamp)> = Vec::new();
    let mut dirs = Vec::new();
    for f in found {
        match f {
            Found::File { rel, stamp } => match index.get(&rel) {
                Some(old) if old.stamp == stamp => {
                    flat.insert(rel.clone(), leaf_of(old));
                    next.insert(rel, *old);
                }
                _ if !stamp.settled(now) => {
                    keep_old(index, &rel, &mut flat, &mut next);
                    unsettled.push(rel);
                    let left = stamp.settles_in(now);
                    settles_in = Some(settles_in.map_or(left, |s: std::time::Duration| s.max(left)));
                }
                _ => to_read.push((rel, stamp)),
            },
            Found::Symlink { rel, target } => {
                let hash = Hash::new(&target);
                flat.insert(
                    rel,
                    Leaf {
                        kind: EntryKind::Symlink,
                        hash,
                        size: target.len() as u64,
                    },
                );
            }
            Found::Dir { rel } => dirs.push(rel),
        }
    }
    let mut guard = None;
    let hashed = to_read.len() as u64;
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
                keep_old(index, &rel, &mut flat, &mut next);
                unsettled.push(rel);
                settles_in = Some(SETTLE);
                continue;
            }
            let indexed = Indexed {
                stamp: before,
                kind: exec_kind(&before),
                hash,
            };
            flat.insert(rel.clone(), leaf_of(&indexed));
            next.insert(rel, indexed);
        }
    }
    // Directories with nothing below them stand for themselves.
    for rel in dirs {
        let prefix = format!("{rel}/");
        let has_child = flat
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix));
        if !has_child {
            flat.insert(rel, empty_dir());
        }
    }
    // A directory that only held an unsettled file is not empty.
    let covered: Vec<String> = flat
        .iter()
        .filter(|(p, l)| {
            l.kind == EntryKind::Tree && unsettled.iter().any(|u| u.starts_with(&format!("{p}/")))
        })
        .map(|(p, _)| p.clone())
        .collect();
    for p in covered {
        flat.remove(&p);
    }
    Ok(Scan {
        flat,
        index: next.into(),
        unsettled,
        settles_in,
        hashed,
        guard,
    })
}

fn keep_old(index: &Index, rel: &str, flat: &mut Flat, next: &mut Index) {
    if let Some(old) = index.get(rel) {
        flat.insert(rel.to_owned(), leaf_of(old));
        next.insert(rel.to_owned(), *old);
    }
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
