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

pub use crate::stamps::{Index, Indexed, Listing, SETTLE, Stamp};

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
    /// The folder as this scan listed it, when every directory in it had
    /// settled and no file was left unsettled.
    pub listing: Option<Listing>,
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
    let began = now_nanos();
    let (found, listing) = tokio::task::spawn_blocking(move || {
        super::walk::walk(&d, &s).map(|found| {
            let listing = listing_of(&found, began);
            (found, listing)
        })
    })
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
            Found::Symlink { rel, target, .. } => {
                let leaf = Leaf {
                    kind: EntryKind::Symlink,
                    hash: Hash::new(&target),
                    size: target.len() as u64,
                };
                leaves.push((rel, leaf));
            }
            Found::Dir { rel, .. } => dirs.push(rel),
            Found::Root { .. } | Found::Rules { .. } => {}
        }
    }
    let mut guard = None;
    let hashed = to_read.len() as u64;
    // The next index is this one, copied only once something changes.
    let mut next = index.clone();
    if !to_read.is_empty() {
        let paths = to_read.iter().map(|(rel, _)| dir.join(rel)).collect();
        let (added, g) = match store.add_files(paths).await {
            Ok(done) => done,
            // A file that vanished or cannot be read mid-scan: the next
            // scan (the watcher fires again) sees the folder as it is then.
            Err(e) => return Err(io(dir, e)),
        };
        guard = Some(g);
        Arc::make_mut(&mut next).reserve(to_read.len());
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
            Arc::make_mut(&mut next).insert(rel, indexed);
        }
        // What reading allocated is freed by now: give it back before the
        // folder's maps are built.
        crate::memory::release_freed();
    }
    // Each path the index kept is a distinct one of its paths: unless all
    // of them were kept, some are gone (or are symlinks now).
    if kept != index.len() {
        let present: std::collections::HashSet<&str> = leaves
            .iter()
            .filter(|(_, l)| l.kind != EntryKind::Symlink)
            .map(|(rel, _)| rel.as_str())
            .collect();
        Arc::make_mut(&mut next).retain(|rel, _| present.contains(rel.as_str()));
    }
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
    let listing = listing.filter(|_| unsettled.is_empty());
    Ok(Scan {
        flat,
        index: next,
        unsettled,
        settles_in,
        hashed,
        guard,
        listing,
    })
}

/// The listing of what the walk found (see [`Listing::new`]).
fn listing_of(found: &[Found], began: i64) -> Option<Listing> {
    let dirs = found.iter().filter_map(|f| match f {
        Found::Root { stamp } => Some(("", *stamp)),
        Found::Dir { rel, stamp } => Some((rel.as_str(), *stamp)),
        _ => None,
    });
    let entries = found.iter().filter_map(|f| match f {
        Found::File { rel, stamp }
        | Found::Symlink { rel, stamp, .. }
        | Found::Rules { rel, stamp } => Some((rel.as_str(), *stamp)),
        _ => None,
    });
    Listing::new(dirs, entries, began)
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

/// A directory being built from a flat map, borrowing its names.
#[derive(Default)]
struct Dir<'a> {
    files: Vec<(&'a str, &'a Leaf)>,
    dirs: BTreeMap<&'a str, Dir<'a>>,
}

/// The trees a flat folder is, bottom-up: the root's hash and every tree
/// encoding to store.
pub fn trees(flat: &Flat) -> Result<(Hash, Vec<Bytes>), NodeError> {
    let mut root = Dir::default();
    for (path, leaf) in flat {
        let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
        let mut at = &mut root;
        for p in parent.split('/').filter(|p| !p.is_empty()) {
            at = at.dirs.entry(p).or_default();
        }
        if leaf.kind == EntryKind::Tree {
            at.dirs.entry(last).or_default();
        } else {
            at.files.push((last, leaf));
        }
    }
    let mut encodings = Vec::new();
    let (hash, _) = encode(root, &mut encodings)?;
    Ok((hash, encodings))
}

/// Encodes `dir` below its subdirectories, each freed once encoded.
fn encode(dir: Dir<'_>, out: &mut Vec<Bytes>) -> Result<(Hash, u64), NodeError> {
    let mut entries = Vec::with_capacity(dir.files.len() + dir.dirs.len());
    for (name, leaf) in dir.files {
        entries.push(Entry {
            name: name.to_owned(),
            kind: leaf.kind,
            hash: leaf.hash,
            size: leaf.size,
        });
    }
    for (name, sub) in dir.dirs {
        let (hash, size) = encode(sub, out)?;
        entries.push(Entry {
            name: name.to_owned(),
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

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt, path::Path};

    use super::*;

    /// A small folder: files, a subdirectory, a symlink, an empty
    /// directory and a `.cliveignore` that ignores itself.
    fn folder(root: &Path) {
        fs::create_dir_all(root.join("sub/deep")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::write(root.join("a.txt"), "a").unwrap();
        fs::write(root.join("sub/b.txt"), "b").unwrap();
        fs::write(root.join("sub/deep/c.txt"), "c").unwrap();
        fs::write(root.join(IGNORE_FILE), "*.log\n.cliveignore\n").unwrap();
        fs::write(root.join("kept.log"), "ignored").unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
    }

    fn listed(root: &Path) -> Option<Listing> {
        let found = super::super::walk::walk(root, &[]).unwrap();
        listing_of(&found, now_nanos())
    }

    #[test]
    fn a_listing_sees_every_kind_of_change_and_none_where_there_is_none() {
        type Change = fn(&Path);
        let changes: Vec<(&str, Change)> = vec![
            ("nothing", |_| {}),
            ("an edit of the same size", |r| {
                fs::write(r.join("sub/b.txt"), "B").unwrap()
            }),
            ("chmod +x", |r| {
                fs::set_permissions(r.join("a.txt"), fs::Permissions::from_mode(0o755)).unwrap()
            }),
            ("a new file at the top", |r| {
                fs::write(r.join("new"), "n").unwrap()
            }),
            ("a new file deep down", |r| {
                fs::write(r.join("sub/deep/new"), "n").unwrap()
            }),
            ("a rename", |r| {
                fs::rename(r.join("sub/b.txt"), r.join("sub/b2.txt")).unwrap()
            }),
            ("a removal", |r| {
                fs::remove_file(r.join("sub/deep/c.txt")).unwrap()
            }),
            ("a file in the empty directory", |r| {
                fs::write(r.join("empty/x"), "x").unwrap()
            }),
            ("an edit of an ignored .cliveignore", |r| {
                fs::write(r.join(IGNORE_FILE), "*.txt\n.cliveignore\n").unwrap()
            }),
            ("a symlink pointed elsewhere", |r| {
                fs::remove_file(r.join("link")).unwrap();
                std::os::unix::fs::symlink("sub", r.join("link")).unwrap();
            }),
            ("the folder replaced", |r| {
                let aside = r.with_extension("aside");
                fs::rename(r, &aside).unwrap();
                fs::create_dir(r).unwrap();
            }),
        ];
        let tmp = tempfile::tempdir().unwrap();
        let roots: Vec<_> = (0..changes.len())
            .map(|i| tmp.path().join(format!("f{i}")))
            .collect();
        for root in &roots {
            folder(root);
        }
        // Listed now, a folder just written is not trusted (its times could
        // move again within the same clock tick); once settled, it is.
        assert!(listed(&roots[0]).is_none());
        std::thread::sleep(SETTLE + Duration::from_millis(50));
        for ((what, change), root) in changes.iter().zip(&roots) {
            let listing = listed(root).expect("a settled folder is listed");
            assert_eq!(listing.len(), 5, "{what}: a.txt, link, .cliveignore, b, c");
            assert!(
                listing.unchanged(root),
                "{what}: unchanged before the change"
            );
            change(root);
            assert_eq!(listing.unchanged(root), *what == "nothing", "{what}");
        }
    }
}
