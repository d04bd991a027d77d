//! What a pipeline watch looks at: the inputs of a pipeline that can move
//! (its `ZONE/NAME`s and its paths), what they hold now, and the file
//! system events under its paths ([`FsWatch`], on `notify`).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use clive_cas::{Hash, NoProgress};
use notify::{EventKind, RecursiveMode, Watcher};

use crate::{
    Node, NodeError,
    jobs::{JobError, jobfile::InputSource, pipeline::Pipeline},
    object::ObjectRef,
};

/// How long the file system must be quiet after an event before the
/// watch looks: an editor's save or a `cp -r` is one change, not many.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// The inputs of a pipeline that can move under it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Inputs {
    /// `ZONE/NAME` inputs, as the steps spell them.
    pub names: BTreeSet<String>,
    /// Path inputs (files or directories), as the steps give them.
    pub paths: BTreeSet<PathBuf>,
}

/// What an input held when the watch last looked: its hash, or why it
/// has none (a name that does not resolve, a path that is gone).
pub(super) type Held = Result<Hash, String>;

impl Inputs {
    /// The names and paths the steps of `pipeline` read. An input is a
    /// name when it reads as one (`name:ZONE/NAME`, or `ZONE/NAME` of a
    /// zone this node has), as the job document keeps it beside its hash.
    pub fn of(node: &Node, pipeline: &Pipeline) -> Inputs {
        let mut inputs = Inputs::default();
        for step in pipeline.steps().values() {
            for source in step.job().inputs.values() {
                match source {
                    InputSource::Path(path) => {
                        inputs.paths.insert(path.clone());
                    }
                    InputSource::Object(object) => {
                        if zone_of(node, object).is_some() {
                            inputs.names.insert(object.clone());
                        }
                    }
                }
            }
        }
        inputs
    }

    /// The zones the names are in.
    pub fn zones(&self, node: &Node) -> BTreeSet<String> {
        self.names.iter().filter_map(|n| zone_of(node, n)).collect()
    }
}

/// The zone a name input is in, if the input is a name.
fn zone_of(node: &Node, object: &str) -> Option<String> {
    let word = match ObjectRef::parse(object) {
        ObjectRef::Pin(_) => return None,
        ObjectRef::Name(rest) => rest,
        ObjectRef::Either(word) => word,
    };
    let (zone, _) = word.split_once('/')?;
    if clive_cas::parse_hash(zone).is_ok() {
        return None;
    }
    node.names()
        .zones()
        .record(zone)
        .is_ok()
        .then(|| zone.to_owned())
}

/// What each name resolves to now.
pub(super) async fn resolve(node: &Node, names: &BTreeSet<String>) -> BTreeMap<String, Held> {
    let mut out = BTreeMap::new();
    for name in names {
        let held = node.resolve_object(name).await.map_err(|e| e.to_string());
        out.insert(name.clone(), held);
    }
    out
}

/// Fetches what the names resolve to from the connected peers when this
/// node lacks it (a name another node publishes moves to content only
/// that node has); returns a line for each that could not be fetched.
pub(super) async fn fetch_missing(node: &Node, held: &BTreeMap<String, Held>) -> Vec<String> {
    let mut failed = Vec::new();
    for (name, held) in held {
        let Ok(hash) = held else { continue };
        if node.cas().has(*hash).await.unwrap_or(false) {
            continue;
        }
        if let Err(e) = node.store().get(hash, None, Arc::new(NoProgress)).await {
            failed.push(format!("fetching {name} ({}): {e}", hash.to_hex()));
        }
    }
    failed
}

/// What each path holds now (added to the store as a run adds its path
/// inputs: a path unchanged since it was last added is not read again).
pub(super) async fn hash(
    node: &Node,
    paths: impl IntoIterator<Item = &PathBuf>,
) -> BTreeMap<PathBuf, Held> {
    let mut out = BTreeMap::new();
    for path in paths {
        let held = node
            .store()
            .add_input(path)
            .await
            .map_err(|e| e.to_string());
        out.insert(path.clone(), held);
    }
    out
}

/// A short form of what an input held, for `moved:` lines.
pub(super) fn shown(held: Option<&Held>) -> String {
    match held {
        Some(Ok(hash)) => format!("{}..", &hash.to_hex()[..8]),
        Some(Err(_)) | None => "(none)".to_owned(),
    }
}

/// At most this many paths wait for a watch to look at them; past it
/// the watch takes every root as touched.
const PENDING_MAX: usize = 4096;

/// The file system events under a watch's paths, debounced. Each root
/// (a path input, or the pipeline file) is watched itself (recursively
/// when a directory) and through its parent directory, so a root that is
/// deleted and made again, or replaced by a rename (as editors save), is
/// seen and watched again.
pub(super) struct FsWatch {
    watcher: notify::RecommendedWatcher,
    /// What the events reported and nobody took yet (kept here, not in
    /// [`FsWatch::next`], so a `next` dropped midway loses none of it).
    pending: Arc<Pending>,
    roots: BTreeSet<PathBuf>,
    /// What is being watched, and how.
    watched: BTreeMap<PathBuf, RecursiveMode>,
}

/// The events not taken yet, shared with `notify`'s callback.
#[derive(Default)]
struct Pending {
    state: std::sync::Mutex<PendingState>,
    /// Woken on each event.
    woken: tokio::sync::Notify,
}

#[derive(Default)]
struct PendingState {
    paths: BTreeSet<PathBuf>,
    /// More than [`PENDING_MAX`] paths came: anything may have changed.
    overflow: bool,
    /// When the last event came (none pending when `None`).
    last: Option<std::time::Instant>,
}

impl Pending {
    fn state(&self) -> std::sync::MutexGuard<'_, PendingState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, paths: Vec<PathBuf>) {
        let mut state = self.state();
        for path in paths {
            if state.overflow || state.paths.len() >= PENDING_MAX {
                state.overflow = true;
                state.paths.clear();
                break;
            }
            state.paths.insert(path);
        }
        state.last = Some(std::time::Instant::now());
        drop(state);
        self.woken.notify_one();
    }
}

impl FsWatch {
    /// A watcher with no roots yet.
    pub fn new() -> Result<FsWatch, NodeError> {
        let pending = Arc::new(Pending::default());
        let sink = pending.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            match event {
                // Reads (the watch's own hashing among them) change nothing.
                Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
                Ok(event) => sink.add(event.paths),
                Err(e) => tracing::debug!("file system events: {e}"),
            }
        })
        .map_err(|e| JobError::Refused(format!("watching the file system: {e}")))?;
        Ok(FsWatch {
            watcher,
            pending,
            roots: BTreeSet::new(),
            watched: BTreeMap::new(),
        })
    }

    /// Watches exactly `roots` (and their parent directories) from now on.
    pub fn set_roots(&mut self, roots: BTreeSet<PathBuf>) {
        self.roots = roots;
        let wanted = self.wanted();
        let gone: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(path, mode)| wanted.get(*path) != Some(mode))
            .map(|(path, _)| path.clone())
            .collect();
        for path in gone {
            let _ = self.watcher.unwatch(&path);
            self.watched.remove(&path);
        }
        self.add_missing();
    }

    fn wanted(&self) -> BTreeMap<PathBuf, RecursiveMode> {
        let mut wanted = BTreeMap::new();
        for root in &self.roots {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                wanted
                    .entry(parent.to_owned())
                    .or_insert(RecursiveMode::NonRecursive);
            }
        }
        for root in &self.roots {
            let mode = if root.is_dir() {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            let entry = wanted.entry(root.clone()).or_insert(mode);
            if mode == RecursiveMode::Recursive {
                *entry = mode;
            }
        }
        wanted
    }

    /// Watches what is wanted and not watched yet (a root that exists
    /// again, say).
    fn add_missing(&mut self) {
        for (path, mode) in self.wanted() {
            if self.watched.contains_key(&path) {
                continue;
            }
            match self.watcher.watch(&path, mode) {
                Ok(()) => {
                    self.watched.insert(path, mode);
                }
                Err(e) => tracing::debug!("watching {}: {e}", path.display()),
            }
        }
    }

    /// Watches `root` again: it was made anew or replaced.
    fn rewatch(&mut self, root: &Path) {
        if self.watched.remove(root).is_some() {
            let _ = self.watcher.unwatch(root);
        }
    }

    /// The roots something happened under, once the file system has been
    /// quiet for [`DEBOUNCE`] (every root when too many events came).
    ///
    /// Cancel-safe: what came before a `next` is dropped stays pending
    /// (in the watcher, with its debounce deadline) for the next call.
    pub async fn next(&mut self) -> BTreeSet<PathBuf> {
        loop {
            let due = self.pending.state().last.map(|last| last + DEBOUNCE);
            match due {
                None => self.pending.woken.notified().await,
                Some(due) if std::time::Instant::now() < due => {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await
                }
                Some(_) => break,
            }
        }
        let (paths, overflow) = {
            let mut state = self.pending.state();
            state.last = None;
            (
                std::mem::take(&mut state.paths),
                std::mem::take(&mut state.overflow),
            )
        };
        let mut touched = BTreeSet::new();
        if overflow {
            touched = self.roots.clone();
            for root in &touched {
                self.rewatch(root);
            }
        } else {
            self.touch(paths, &mut touched);
        }
        self.add_missing();
        touched
    }

    /// Notes the roots `paths` lie under; a root itself touched is watched
    /// again (its inode may be new).
    fn touch(&mut self, paths: BTreeSet<PathBuf>, touched: &mut BTreeSet<PathBuf>) {
        for path in paths {
            let roots: Vec<PathBuf> = self
                .roots
                .iter()
                .filter(|root| path.starts_with(root))
                .cloned()
                .collect();
            for root in roots {
                if path == root {
                    self.rewatch(&root);
                }
                touched.insert(root);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeSet, time::Duration};

    use super::FsWatch;

    /// A `next` dropped while it debounces (as the watch's `select!` drops
    /// it when a zone event comes) loses none of the events it saw.
    #[tokio::test]
    async fn events_survive_a_dropped_next() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("input.txt");
        std::fs::write(&file, "one").expect("writing the input");
        let mut fs = FsWatch::new().expect("a watcher");
        fs.set_roots(BTreeSet::from([file.clone()]));
        std::fs::write(&file, "two").expect("writing the input");
        // Dropped every 10 ms, for longer than the debounce: the event
        // comes in while some `next` is waiting, and that one is dropped.
        let mut touched = None;
        for _ in 0..40 {
            tokio::select! {
                got = fs.next() => {
                    touched = Some(got);
                    break;
                }
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
        let touched = match touched {
            Some(touched) => touched,
            None => tokio::time::timeout(Duration::from_secs(30), fs.next())
                .await
                .expect("the event was lost with a dropped `next`"),
        };
        assert_eq!(touched, BTreeSet::from([file]));
    }
}
