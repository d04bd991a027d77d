//! Collecting a finished job's outputs into the store, without following any
//! symlink out of the job directory.
//!
//! Each output is a path relative to the workdir (plain components only:
//! no `..`, `.`, empty or absolute parts). Every component from the job
//! directory down to the output's parent must be a real directory (a
//! symlink anywhere on the way is refused: the job could have pointed it
//! anywhere); the output itself may be a file, a directory (stored whole,
//! symlinks inside stored as symlinks, never followed) or a symlink (stored
//! as a symlink). The outputs form one tree, each at its own path (`a/b`
//! is `a/b` in the tree); an output inside another output is already part
//! of it and adds nothing. A missing output goes into
//! [`Collected::missing`]; more than the limit in total is an error, found
//! by measuring before anything is stored. The job's processes are all gone
//! when this runs, so nothing changes the directory underneath.

use std::{
    collections::BTreeMap,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use clive_cas::{Entry, EntryKind, Hash, ImportGuard, NoProgress, Store, Tree};

/// What a job's outputs became.
#[derive(Debug)]
pub struct Collected {
    /// The tree holding every output present, at its path.
    pub tree: Hash,
    /// Outputs the job did not make, as given.
    pub missing: Vec<String>,
    /// Bytes of content in `tree`.
    pub bytes: u64,
    /// Keeps the stored objects from gc until the caller has made `tree` a
    /// root (or no longer needs it).
    pub guard: Vec<ImportGuard>,
}

/// Why outputs could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The output path is not a plain relative path.
    #[error("output `{0}` is not a relative path of plain components")]
    BadPath(String),
    /// A component on the way to the output (or the workdir) is a symlink.
    #[error("output `{output}` goes through the symlink {link}: refused")]
    Symlink {
        /// The output as given.
        output: String,
        /// The symlink on its way.
        link: PathBuf,
    },
    /// A component on the way to the output is not a directory.
    #[error("output `{output}`: {path} is not a directory")]
    NotADirectory {
        /// The output as given.
        output: String,
        /// The component.
        path: PathBuf,
    },
    /// The workdir is not inside the job directory.
    #[error("the workdir {0} is not inside the job directory")]
    Workdir(PathBuf),
    /// The outputs hold more than the limit.
    #[error("the outputs hold more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// An output holds something that is not a file, directory or symlink.
    #[error("output `{output}`: {path} is not a file, directory or symlink")]
    Special {
        /// The output as given.
        output: String,
        /// The offending path.
        path: PathBuf,
    },
    /// Reading the job directory failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store refused.
    #[error(transparent)]
    Store(#[from] clive_cas::CasError),
}

/// The plain components of a relative path, or `None`.
fn plain(path: &str) -> Option<Vec<&str>> {
    if path.is_empty() || path.contains('\0') || path.contains('\\') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    parts
        .iter()
        .all(|p| matches!(Path::new(p).components().next(), Some(Component::Normal(_)) if !p.is_empty()))
        .then_some(parts)
}

/// Checks that every component of `rel` below `base` is a real directory.
fn real_dirs(base: &Path, rel: &[&str], output: &str) -> Result<PathBuf, CollectError> {
    let mut at = base.to_owned();
    for part in rel {
        at.push(part);
        let meta = std::fs::symlink_metadata(&at).map_err(|source| CollectError::Io {
            path: at.clone(),
            source,
        })?;
        if meta.file_type().is_symlink() {
            return Err(CollectError::Symlink {
                output: output.to_owned(),
                link: at,
            });
        }
        if !meta.is_dir() {
            return Err(CollectError::NotADirectory {
                output: output.to_owned(),
                path: at,
            });
        }
    }
    Ok(at)
}

/// Bytes below `path` as the store would count them (files' lengths, link
/// targets' lengths), never following a symlink; stops past `limit`.
fn measure(path: &Path, output: &str, total: &mut u64, limit: u64) -> Result<(), CollectError> {
    let io = |source| CollectError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    let ft = meta.file_type();
    if ft.is_file() {
        *total = total.saturating_add(meta.len());
    } else if ft.is_symlink() {
        *total =
            total.saturating_add(std::fs::read_link(path).map_err(io)?.as_os_str().len() as u64);
    } else if ft.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)? {
            let entry = entry.map_err(io)?;
            measure(&entry.path(), output, total, limit)?;
            if *total > limit {
                break;
            }
        }
    } else {
        return Err(CollectError::Special {
            output: output.to_owned(),
            path: path.to_owned(),
        });
    }
    if *total > limit {
        return Err(CollectError::TooLarge { limit });
    }
    Ok(())
}

/// A tree being assembled from outputs at nested paths.
#[derive(Default)]
struct Dir(BTreeMap<String, Node>);

enum Node {
    Leaf(Entry),
    Dir(Dir),
}

impl Dir {
    fn insert(&mut self, parts: &[&str], entry: Entry) {
        let Some((first, rest)) = parts.split_first() else {
            return;
        };
        if rest.is_empty() {
            self.0.insert((*first).to_owned(), Node::Leaf(entry));
            return;
        }
        let node = self
            .0
            .entry((*first).to_owned())
            .or_insert_with(|| Node::Dir(Dir::default()));
        if let Node::Dir(dir) = node {
            dir.insert(rest, entry);
        }
    }

    async fn store(
        self,
        store: &Store,
        guards: &mut Vec<ImportGuard>,
    ) -> Result<Entry, CollectError> {
        let mut entries = Vec::with_capacity(self.0.len());
        for (name, node) in self.0 {
            let mut entry = match node {
                Node::Leaf(entry) => entry,
                Node::Dir(dir) => Box::pin(dir.store(store, guards)).await?,
            };
            entry.name = name;
            entries.push(entry);
        }
        let tree = Tree::new(entries).map_err(clive_cas::CasError::TreeBuild)?;
        let size = tree.total_size();
        let (hash, guard) = store.put_tree(&tree).await?;
        guards.push(guard);
        Ok(Entry {
            name: String::new(),
            kind: EntryKind::Tree,
            hash,
            size,
        })
    }
}

/// Adds the outputs (paths relative to workdir) into one tree (an output `a/b`
/// appears as a/b in the tree); never follows a symlink (an output or a parent
/// component that is a symlink is refused; a symlink output is stored as a
/// symlink); over `limit` total bytes is an error; a missing output goes into
/// `missing`.
pub async fn collect(
    store: &Store,
    root: &Path,
    workdir: &Path,
    outputs: &[String],
    limit: u64,
) -> Result<Collected, CollectError> {
    let below = workdir
        .strip_prefix(root)
        .map_err(|_| CollectError::Workdir(workdir.to_owned()))?;
    let below: Vec<String> = below
        .components()
        .map(|c| match c {
            Component::Normal(p) => Ok(p.to_string_lossy().into_owned()),
            _ => Err(CollectError::Workdir(workdir.to_owned())),
        })
        .collect::<Result<_, _>>()?;
    let mut paths: Vec<(String, Vec<&str>)> = Vec::new();
    for output in outputs {
        let parts = plain(output).ok_or_else(|| CollectError::BadPath(output.clone()))?;
        paths.push((output.clone(), parts));
    }
    // Shallowest first, so an output inside an earlier one is seen as covered.
    paths.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then_with(|| a.0.cmp(&b.0)));

    let below: Vec<&str> = below.iter().map(String::as_str).collect();
    let mut missing = Vec::new();
    let mut present: Vec<(String, Vec<&str>, PathBuf)> = Vec::new();
    let mut total = 0u64;
    for (output, parts) in &paths {
        if present
            .iter()
            .any(|(_, p, _)| parts.len() > p.len() && parts.starts_with(p))
        {
            continue;
        }
        let (name, parents) = parts
            .split_last()
            .ok_or_else(|| CollectError::BadPath(output.clone()))?;
        let on_the_way: Vec<&str> = below.iter().chain(parents.iter()).copied().collect();
        // A missing parent is a missing output; a symlink parent is refused.
        let parent = match real_dirs(root, &on_the_way, output) {
            Ok(parent) => parent,
            Err(CollectError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                missing.push(output.clone());
                continue;
            }
            Err(e) => return Err(e),
        };
        let path = parent.join(name);
        if std::fs::symlink_metadata(&path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            missing.push(output.clone());
            continue;
        }
        measure(&path, output, &mut total, limit)?;
        present.push((output.clone(), parts.clone(), path));
    }

    let mut guard = Vec::new();
    let mut top = Dir::default();
    let mut bytes = 0u64;
    for (output, parts, path) in present {
        let io = |source| CollectError::Io {
            path: path.clone(),
            source,
        };
        let meta = std::fs::symlink_metadata(&path).map_err(io)?;
        let entry = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).map_err(io)?;
            let target = target.as_os_str().as_bytes().to_vec();
            let size = target.len() as u64;
            let (hash, g) = store.put_bytes(target).await?;
            guard.push(g);
            Entry {
                name: String::new(),
                kind: EntryKind::Symlink,
                hash,
                size,
            }
        } else if meta.is_dir() || meta.is_file() {
            let (added, g) = store.add_path(&path, Arc::new(NoProgress)).await?;
            guard.push(g);
            let kind = if meta.is_dir() {
                EntryKind::Tree
            } else if meta.permissions().mode() & 0o111 != 0 {
                EntryKind::Exec
            } else {
                EntryKind::File
            };
            Entry {
                name: String::new(),
                kind,
                hash: added.hash,
                size: added.size,
            }
        } else {
            return Err(CollectError::Special { output, path });
        };
        bytes = bytes.saturating_add(entry.size);
        if bytes > limit {
            return Err(CollectError::TooLarge { limit });
        }
        top.insert(&parts, entry);
    }
    let tree = top.store(store, &mut guard).await?;
    missing.sort();
    Ok(Collected {
        tree: tree.hash,
        missing,
        bytes,
        guard,
    })
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn only_plain_relative_paths() {
        assert_eq!(plain("a/b"), Some(vec!["a", "b"]));
        assert_eq!(plain("out"), Some(vec!["out"]));
        for bad in [
            "", "/etc", "a/../b", "..", "./a", "a//b", "a/", "a/.", "a\\b", "a\0",
        ] {
            assert_eq!(plain(bad), None, "{bad:?}");
        }
    }
}
