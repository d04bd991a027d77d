//! The three-way merge of a folder, path by path: what this device has
//! (`local`), what arrived (`remote`), and the version both came from
//! (`base`). A path changed on one side takes that side; changed on both
//! to different things keeps the local one and writes the remote one
//! beside it as a conflict copy; a deletion against an edit keeps the edit.
//! Nothing this device changed is ever overwritten or removed.

use std::collections::{BTreeMap, BTreeSet};

use clive_cas::{EntryKind, Hash};

/// What one path of a folder holds: a file (plain or executable), a
/// symlink, or an empty directory (directories with anything in them are
/// implied by their contents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// File, executable file, symlink, or (empty) directory.
    pub kind: EntryKind,
    /// Its content address (an empty directory: the empty tree's).
    pub hash: Hash,
    /// Bytes of content.
    pub size: u64,
}

/// A folder as a flat map: relative path (`/`-separated) -> what it holds.
pub type Flat = BTreeMap<String, Leaf>;

/// One change to make to the folder on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write `leaf` at `path` (replacing what the base had there).
    Write { path: String, leaf: Leaf },
    /// Remove `path` (it is as the base had it, and remote removed it).
    Remove { path: String, was: Leaf },
    /// Both sides changed `path`: write the remote `leaf` beside it, at
    /// `copy`.
    Conflict {
        path: String,
        copy: String,
        leaf: Leaf,
    },
}

/// The name a conflict copy of `path` gets: `NAME.sync-conflict-DEVICE-DATE.EXT`
/// (the extension kept last, so the copy opens like the original).
pub fn conflict_name(path: &str, device: &str, date: &str) -> String {
    let (dir, file) = match path.rsplit_once('/') {
        Some((d, f)) => (Some(d), f),
        None => (None, path),
    };
    let (stem, ext) = match file.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, Some(e)),
        _ => (file, None),
    };
    let device: String = device
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut name = format!("{stem}.sync-conflict-{device}-{date}");
    if let Some(ext) = ext {
        name.push('.');
        name.push_str(ext);
    }
    match dir {
        Some(d) => format!("{d}/{name}"),
        None => name,
    }
}

/// Whether `path` is a conflict copy (never itself given a conflict copy).
pub fn is_conflict_copy(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|f| f.contains(".sync-conflict-"))
}

/// The steps that bring `local` to the merge of `local` and `remote` over
/// `base`; conflict copies are named after `device` (the other one) and
/// `date`.
pub fn merge(base: &Flat, local: &Flat, remote: &Flat, device: &str, date: &str) -> Vec<Step> {
    let paths: BTreeSet<&String> = base
        .keys()
        .chain(local.keys())
        .chain(remote.keys())
        .collect();
    let mut steps = Vec::new();
    for path in paths {
        let (b, l, r) = (base.get(path), local.get(path), remote.get(path));
        if l == r || r == b {
            continue;
        }
        if l == b {
            match r {
                Some(leaf) => {
                    if blocked_by_a_file(base, local, remote, path) {
                        continue;
                    }
                    steps.push(Step::Write {
                        path: path.clone(),
                        leaf: *leaf,
                    });
                }
                None => {
                    if let Some(was) = l {
                        steps.push(Step::Remove {
                            path: path.clone(),
                            was: *was,
                        });
                    }
                }
            }
            continue;
        }
        // Both changed it, differently.
        match (l, r) {
            // Removed here, edited there: the edit is kept.
            (None, Some(leaf)) => {
                if !blocked_by_a_file(base, local, remote, path) {
                    steps.push(Step::Write {
                        path: path.clone(),
                        leaf: *leaf,
                    });
                }
            }
            // Edited here, removed there: the edit stays.
            (Some(_), None) => {}
            (Some(_), Some(leaf)) => {
                if is_conflict_copy(path) {
                    continue;
                }
                let copy = conflict_name(path, device, date);
                if local.contains_key(&copy) || remote.contains_key(&copy) {
                    continue;
                }
                steps.push(Step::Conflict {
                    path: path.clone(),
                    copy,
                    leaf: *leaf,
                });
            }
            (None, None) => {}
        }
    }
    steps
}

/// Whether writing at `path` would need a directory where a file,
/// symlink or other non-directory stays: some proper prefix of `path` is
/// one locally that this merge does not remove (it changed here, or the
/// remote side keeps it too). Such a write is left out; the local entry
/// stays.
fn blocked_by_a_file(base: &Flat, local: &Flat, remote: &Flat, path: &str) -> bool {
    let mut at = 0;
    while let Some(i) = path[at..].find('/') {
        let prefix = &path[..at + i];
        if let Some(leaf) = local.get(prefix)
            && leaf.kind != EntryKind::Tree
            && (base.get(prefix) != Some(leaf) || remote.contains_key(prefix))
        {
            return true;
        }
        at += i + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(byte: u8) -> Leaf {
        Leaf {
            kind: EntryKind::File,
            hash: Hash::from_bytes([byte; 32]),
            size: 1,
        }
    }

    fn flat(entries: &[(&str, u8)]) -> Flat {
        entries
            .iter()
            .map(|(p, b)| ((*p).to_owned(), leaf(*b)))
            .collect()
    }

    #[test]
    fn a_change_on_one_side_takes_that_side() {
        let base = flat(&[("a", 1), ("b", 2), ("gone", 3)]);
        let local = flat(&[("a", 9), ("b", 2), ("gone", 3)]);
        let remote = flat(&[("a", 1), ("b", 8), ("new", 4)]);
        let steps = merge(&base, &local, &remote, "desk", "D");
        assert_eq!(
            steps,
            vec![
                Step::Write {
                    path: "b".into(),
                    leaf: leaf(8)
                },
                Step::Remove {
                    path: "gone".into(),
                    was: leaf(3)
                },
                Step::Write {
                    path: "new".into(),
                    leaf: leaf(4)
                },
            ]
        );
    }

    #[test]
    fn both_changed_keeps_local_and_writes_a_conflict_copy() {
        let base = flat(&[("notes/todo.txt", 1)]);
        let local = flat(&[("notes/todo.txt", 2)]);
        let remote = flat(&[("notes/todo.txt", 3)]);
        let steps = merge(&base, &local, &remote, "desk", "20261202-031500");
        assert_eq!(
            steps,
            vec![Step::Conflict {
                path: "notes/todo.txt".into(),
                copy: "notes/todo.sync-conflict-desk-20261202-031500.txt".into(),
                leaf: leaf(3)
            }]
        );
        // The same edit on both sides is no conflict.
        assert!(merge(&base, &local, &local, "desk", "D").is_empty());
    }

    #[test]
    fn an_edit_beats_a_deletion_either_way() {
        let base = flat(&[("a", 1), ("b", 1)]);
        let local = flat(&[("a", 2)]);
        let remote = flat(&[("b", 3)]);
        let steps = merge(&base, &local, &remote, "desk", "D");
        assert_eq!(
            steps,
            vec![Step::Write {
                path: "b".into(),
                leaf: leaf(3)
            }]
        );
    }

    #[test]
    fn nothing_is_written_through_a_local_file() {
        let base = Flat::new();
        let local = flat(&[("x", 1)]);
        let remote = flat(&[("x/y", 2)]);
        assert!(merge(&base, &local, &remote, "desk", "D").is_empty());
        // A file the remote side turned into a directory is removed first.
        let base = flat(&[("x", 1)]);
        assert_eq!(
            merge(&base, &local, &remote, "desk", "D"),
            vec![
                Step::Remove {
                    path: "x".into(),
                    was: leaf(1)
                },
                Step::Write {
                    path: "x/y".into(),
                    leaf: leaf(2)
                }
            ]
        );
    }

    #[test]
    fn conflict_names_keep_the_extension() {
        assert_eq!(
            conflict_name("a.tar.gz", "d", "T"),
            "a.tar.sync-conflict-d-T.gz"
        );
        assert_eq!(
            conflict_name("Makefile", "d", "T"),
            "Makefile.sync-conflict-d-T"
        );
        assert_eq!(
            conflict_name(".bashrc", "d", "T"),
            ".bashrc.sync-conflict-d-T"
        );
        assert_eq!(
            conflict_name("x/y.md", "my desk", "T"),
            "x/y.sync-conflict-my_desk-T.md"
        );
        assert!(is_conflict_copy("x/y.sync-conflict-d-T.md"));
    }
}
