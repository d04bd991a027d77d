//! The walk of a synced folder: every entry below it, never following a
//! symlink, minus what `.cliveignore` files exclude (gitignore syntax, a
//! deeper file overriding a shallower one, as git), the node's temporary
//! files and the paths it is told to skip (the node's home).
//!
//! Each directory is listed once and each entry is `lstat`ed relative to
//! its directory's descriptor (`DirEntry::metadata`): an unchanged folder
//! costs one `getdents` per directory and one `statx` per entry. That is
//! kernel time, so directories are spread over one thread per core.

use std::{
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use super::scan::{IGNORE_FILE, MAX_ENTRIES, Stamp, TEMP_PREFIX};

/// An entry the walk found, by its path relative to the folder
/// (`/`-separated, each component a valid tree name).
pub enum Found {
    /// A regular file and its stamp.
    File {
        /// Its path.
        rel: String,
        /// What `lstat` said of it.
        stamp: Stamp,
    },
    /// A symlink and its target.
    Symlink {
        /// Its path.
        rel: String,
        /// Where it points, as stored.
        target: Vec<u8>,
        /// What `lstat` said of it.
        stamp: Stamp,
    },
    /// A directory, stamped before it was listed.
    Dir {
        /// Its path.
        rel: String,
        /// What `lstat` said of it.
        stamp: Stamp,
    },
    /// The folder itself, stamped before it was listed.
    Root {
        /// What `lstat` said of it.
        stamp: Stamp,
    },
    /// A `.cliveignore` whose rules the walk read (whether or not it is
    /// itself ignored): a change to it changes what the folder holds.
    Rules {
        /// Its path.
        rel: String,
        /// What `lstat` said of it.
        stamp: Stamp,
    },
}

/// Most threads a walk uses.
const MAX_THREADS: usize = 4;

/// Walks `root`; an error names the path that could not be read.
pub fn walk(root: &Path, skip: &[PathBuf]) -> Result<Vec<Found>, String> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS);
    let shared = Shared {
        root,
        skip,
        queue: Mutex::new(Queue {
            jobs: vec![Job {
                abs: root.to_owned(),
                rel: String::new(),
                rules: None,
            }],
            busy: 0,
            failed: None,
        }),
        ready: Condvar::new(),
        found: AtomicUsize::new(0),
    };
    let mut out = match std::fs::symlink_metadata(root) {
        Ok(md) => vec![Found::Root {
            stamp: Stamp::of(&md),
        }],
        Err(e) => return Err(format!("{}: {e}", root.display())),
    };
    std::thread::scope(|s| {
        let workers: Vec<_> = (1..threads).map(|_| s.spawn(|| shared.work())).collect();
        out.extend(shared.work());
        for w in workers {
            match w.join() {
                Ok(found) => out.extend(found),
                Err(_) => shared.fail("a walker thread panicked".into()),
            }
        }
    });
    match shared.queue.into_inner().map(|q| q.failed) {
        Ok(None) => Ok(out),
        Ok(Some(e)) => Err(e),
        Err(_) => Err("a walker thread panicked".into()),
    }
}

/// The `.cliveignore` rules in force in a directory: its own, then its
/// parents'.
struct Rules {
    rules: ignore::gitignore::Gitignore,
    parent: Option<Arc<Rules>>,
}

/// A directory to list.
struct Job {
    abs: PathBuf,
    rel: String,
    rules: Option<Arc<Rules>>,
}

struct Queue {
    jobs: Vec<Job>,
    /// Workers listing a directory now (they may add jobs).
    busy: usize,
    failed: Option<String>,
}

struct Shared<'a> {
    root: &'a Path,
    skip: &'a [PathBuf],
    queue: Mutex<Queue>,
    ready: Condvar,
    found: AtomicUsize,
}

impl Shared<'_> {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, why: String) {
        let mut q = self.queue();
        q.failed.get_or_insert(why);
        self.ready.notify_all();
    }

    /// Lists directories until none is left (or one failed); returns what
    /// this worker found.
    fn work(&self) -> Vec<Found> {
        let mut out = Vec::new();
        loop {
            let job = {
                let mut q = self.queue();
                loop {
                    if q.failed.is_some() {
                        return out;
                    }
                    if let Some(job) = q.jobs.pop() {
                        q.busy += 1;
                        break job;
                    }
                    if q.busy == 0 {
                        return out;
                    }
                    q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            let listed =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.list(job, &mut out)))
                    .unwrap_or_else(|_| Err("listing a directory panicked".into()));
            let mut q = self.queue();
            q.busy -= 1;
            match listed {
                Ok(more) => q.jobs.extend(more),
                Err(e) => {
                    q.failed.get_or_insert(e);
                }
            }
            self.ready.notify_all();
        }
    }

    /// Lists one directory into `out`; returns its subdirectories.
    fn list(&self, job: Job, out: &mut Vec<Found>) -> Result<Vec<Job>, String> {
        let Job { abs, rel, rules } = job;
        let listing = match std::fs::read_dir(&abs) {
            Ok(l) => l,
            // Gone between listing its parent and reading it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !rel.is_empty() => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(format!("{}: {e}", abs.display())),
        };
        let mut entries = Vec::new();
        for entry in listing {
            match entry {
                Ok(e) => {
                    let name = e.file_name();
                    if !name.as_bytes().starts_with(TEMP_PREFIX.as_bytes()) {
                        entries.push((e, name));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", abs.display())),
            }
        }
        let rules = if entries.iter().any(|(_, name)| name == IGNORE_FILE) {
            self.read_rules(&abs, rules)
        } else {
            rules
        };
        let skip_here = self.skip.iter().any(|s| s.parent() == Some(abs.as_path()));
        let join = |name: &str| {
            if rel.is_empty() {
                name.to_owned()
            } else {
                format!("{rel}/{name}")
            }
        };
        let mut dirs = Vec::new();
        for (entry, name) in entries {
            let md = match entry.metadata() {
                Ok(md) => md,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("{}: {e}", entry.path().display())),
            };
            let kind = md.file_type();
            if name == IGNORE_FILE {
                out.push(Found::Rules {
                    rel: join(IGNORE_FILE),
                    stamp: Stamp::of(&md),
                });
            }
            if (rules.is_some() || skip_here)
                && self.excluded(&abs.join(&name), kind.is_dir(), &rules)
            {
                continue;
            }
            let Ok(name) = clive_cas::tree::validate_name(name.as_bytes()) else {
                tracing::debug!(
                    "folder {}: skipped {:?} (not a valid name)",
                    self.root.display(),
                    entry.path()
                );
                continue;
            };
            let rel = join(name);
            if kind.is_dir() {
                out.push(Found::Dir {
                    rel: rel.clone(),
                    stamp: Stamp::of(&md),
                });
                dirs.push(Job {
                    abs: entry.path(),
                    rel,
                    rules: rules.clone(),
                });
            } else if kind.is_symlink() {
                match std::fs::read_link(entry.path()) {
                    Ok(target) => out.push(Found::Symlink {
                        rel,
                        target: target.as_os_str().as_bytes().to_vec(),
                        stamp: Stamp::of(&md),
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(format!("{rel}: {e}")),
                }
            } else if kind.is_file() {
                out.push(Found::File {
                    rel,
                    stamp: Stamp::of(&md),
                });
            } else {
                continue;
            }
            if self.found.fetch_add(1, Ordering::Relaxed) >= MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} entries"));
            }
        }
        Ok(dirs)
    }

    /// `abs`'s `.cliveignore` over `parent`; when it cannot be used, it is
    /// logged and the directory keeps its parent's rules.
    fn read_rules(&self, abs: &Path, parent: Option<Arc<Rules>>) -> Option<Arc<Rules>> {
        let mut builder = ignore::gitignore::GitignoreBuilder::new(abs);
        if let Some(e) = builder.add(abs.join(IGNORE_FILE)) {
            tracing::warn!("folder {}: {e}", self.root.display());
        }
        match builder.build() {
            Ok(rules) => Some(Arc::new(Rules { rules, parent })),
            Err(e) => {
                tracing::warn!("folder {}: {e}", self.root.display());
                parent
            }
        }
    }

    /// Whether `path` is skipped, or excluded by the innermost
    /// `.cliveignore` with an opinion on it.
    fn excluded(&self, path: &Path, is_dir: bool, rules: &Option<Arc<Rules>>) -> bool {
        if self.skip.iter().any(|s| s == path) {
            return true;
        }
        let mut at = rules.as_deref();
        while let Some(r) = at {
            match r.rules.matched(path, is_dir) {
                ignore::Match::None => at = r.parent.as_deref(),
                ignore::Match::Ignore(_) => return true,
                ignore::Match::Whitelist(_) => return false,
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rels(found: &[Found]) -> Vec<String> {
        let mut out: Vec<String> = found
            .iter()
            .map(|f| match f {
                Found::File { rel, .. } => rel.clone(),
                Found::Symlink { rel, .. } => format!("{rel}@"),
                Found::Dir { rel, .. } => format!("{rel}/"),
                Found::Root { .. } => "/".into(),
                Found::Rules { rel, .. } => format!("{rel}!"),
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_deeper_ignore_file_overrides_a_shallower_one_and_nothing_is_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join("home/blobs")).unwrap();
        std::fs::write(root.join(".cliveignore"), "*.log\n").unwrap();
        std::fs::write(root.join("a/.cliveignore"), "!keep.log\n").unwrap();
        for f in [
            "top.log",
            "a/keep.log",
            "a/drop.log",
            "a/b/x.txt",
            "home/blobs/o",
        ] {
            std::fs::write(root.join(f), f).unwrap();
        }
        std::fs::write(root.join(format!("{TEMP_PREFIX}1")), "tmp").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("a/out")).unwrap();
        let found = walk(root, &[root.join("home")]).unwrap();
        assert_eq!(
            rels(&found),
            [
                ".cliveignore",
                ".cliveignore!",
                "/",
                "a/",
                "a/.cliveignore",
                "a/.cliveignore!",
                "a/b/",
                "a/b/x.txt",
                "a/keep.log",
                "a/out@"
            ]
        );
    }
}
