//! Staging a job directory: each input exported from the store (verified
//! reads) at its mount path, made read-only, and the workdir created.
//!
//! Mounts are relative paths of plain components (no `..`, `.`, empty or
//! absolute parts), so nothing is written outside the job directory; no
//! mount may be inside another, and the workdir may not be inside a mount
//! (it would be read-only). Directories on the way to a mount are created
//! as real directories. Symlinks inside an input are exported as symlinks,
//! never followed. Read-only means the mode bits (files 0444, or 0555 when
//! executable; directories 0555): a job whose user ignores them (root) can
//! still change its own copies, which only that job sees.
//!
//! Inputs are taken as `(mount, hash)` pairs, so this module does not
//! depend on the job document's types.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use clive_cas::{Hash, NoProgress, Store};

/// Why a job directory could not be staged or removed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A mount (or the workdir) is not a relative path of plain components.
    #[error("`{0}` is not a relative path of plain components")]
    BadPath(String),
    /// One input is mounted inside another.
    #[error("input `{inner}` is mounted inside input `{outer}`")]
    Overlap {
        /// The outer mount.
        outer: String,
        /// The mount inside it.
        inner: String,
    },
    /// The workdir is inside an input (read-only) mount.
    #[error("the workdir `{workdir}` is inside input `{mount}`")]
    WorkdirInInput {
        /// The workdir.
        workdir: String,
        /// The mount.
        mount: String,
    },
    /// A file system step failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not export an input.
    #[error(transparent)]
    Store(#[from] clive_cas::CasError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StageError + '_ {
    move |source| StageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The plain components of `path`; `""` is none.
fn components(path: &str) -> Result<Vec<&str>, StageError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let bad = || StageError::BadPath(path.to_owned());
    if path.contains('\0') || path.contains('\\') {
        return Err(bad());
    }
    path.split('/')
        .map(|p| match Path::new(p).components().next() {
            Some(Component::Normal(_)) if !p.is_empty() && p != "." => Ok(p),
            _ => Err(bad()),
        })
        .collect()
}

/// Creates `root/parts...` as real directories (refusing a symlink on the way).
fn make_dirs(root: &Path, parts: &[&str]) -> Result<PathBuf, StageError> {
    let mut at = root.to_owned();
    for part in parts {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(StageError::Io {
                    path: at,
                    source: std::io::Error::other("in the way (not a directory)"),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(io(&at))?;
            }
            Err(e) => return Err(io(&at)(e)),
        }
    }
    Ok(at)
}

/// Makes everything below `path` read-only, never following a symlink.
fn read_only(path: &Path) -> Result<(), StageError> {
    let meta = std::fs::symlink_metadata(path).map_err(io(path))?;
    let mode = if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io(path))? {
            read_only(&entry.map_err(io(path))?.path())?;
        }
        0o555
    } else if meta.is_file() {
        if meta.permissions().mode() & 0o111 != 0 {
            0o555
        } else {
            0o444
        }
    } else {
        return Ok(());
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))
}

/// Exports each input into `root/MOUNT` from the store (verified reads) and
/// makes it read-only (files 0444 or 0555, dirs 0555); creates `root` and
/// the workdir (relative to `root`, `""` for `root` itself). Refuses a mount
/// that would leave root, a mount inside another, and a workdir inside a
/// mount (symlinks in the staged tree are kept as symlinks, never followed).
/// Returns the workdir's absolute path.
pub async fn stage<I, S>(
    store: &Store,
    root: &Path,
    inputs: I,
    workdir: &str,
) -> Result<PathBuf, StageError>
where
    I: IntoIterator<Item = (S, Hash)>,
    S: AsRef<str>,
{
    let inputs: Vec<(String, Hash)> = inputs
        .into_iter()
        .map(|(m, h)| (m.as_ref().to_owned(), h))
        .collect();
    let work = components(workdir)?;
    let mut mounts = Vec::with_capacity(inputs.len());
    for (mount, hash) in &inputs {
        let parts = components(mount)?;
        if parts.is_empty() {
            return Err(StageError::BadPath(mount.clone()));
        }
        if work.starts_with(&parts) {
            return Err(StageError::WorkdirInInput {
                workdir: workdir.to_owned(),
                mount: mount.clone(),
            });
        }
        mounts.push((mount.as_str(), parts, *hash));
    }
    for (a, pa, _) in &mounts {
        for (b, pb, _) in &mounts {
            if a != b && pb.starts_with(pa) {
                return Err(StageError::Overlap {
                    outer: (*a).to_owned(),
                    inner: (*b).to_owned(),
                });
            }
        }
    }
    std::fs::create_dir_all(root).map_err(io(root))?;
    for (_, parts, hash) in &mounts {
        let Some((_, parents)) = parts.split_last() else {
            continue;
        };
        make_dirs(root, parents)?;
        let dest = parts.iter().fold(root.to_owned(), |p, c| p.join(c));
        store
            .export(*hash, &dest, false, Arc::new(NoProgress))
            .await?;
        read_only(&dest)?;
    }
    make_dirs(root, &work)
}

/// Makes every directory below `path` writable again (never following a
/// symlink), so it can be removed.
fn writable(path: &Path) -> Result<(), StageError> {
    let meta = std::fs::symlink_metadata(path).map_err(io(path))?;
    if meta.is_dir() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io(path))?;
        for entry in std::fs::read_dir(path).map_err(io(path))? {
            writable(&entry.map_err(io(path))?.path())?;
        }
    }
    Ok(())
}

/// Removes a job directory, read-only parts included (a missing one is fine).
pub fn remove(root: &Path) -> Result<(), StageError> {
    match std::fs::symlink_metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(root)(e)),
        Ok(_) => {}
    }
    writable(root)?;
    std::fs::remove_dir_all(root).map_err(io(root))
}

#[cfg(test)]
mod tests {
    use super::components;

    #[test]
    fn plain_components_only() {
        assert_eq!(components("").unwrap(), Vec::<&str>::new());
        assert_eq!(components("src/lib").unwrap(), ["src", "lib"]);
        for bad in ["/abs", "a/../b", "..", "./a", "a//b", "a/", "a\\b", "a\0b"] {
            assert!(components(bad).is_err(), "{bad:?}");
        }
    }
}
