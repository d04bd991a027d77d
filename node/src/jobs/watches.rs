//! The registry of the pipeline watches live on a node (`job run --watch`,
//! listed by `job watches`, stopped by `job unwatch`), and the table of
//! detached ones, which the daemon resumes when it starts. What a watch
//! does is `dispatch::watch`'s; this module only keeps track of them.
//!
//! A live watch holds a [`WatchGuard`]: dropping it (the watch ended, was
//! stopped, or its caller left) takes the watch out of the registry.
//!
//! # Table `jobs.watches.v1` (in `state.redb`)
//!
//! One row per detached watch (`job run --watch --detach`), written when
//! it is created and removed by `job unwatch`; a daemon that stops keeps
//! the rows, and the next daemon on the home resumes each. Key: the watch
//! id (16 lowercase hex digits, as UTF-8); value: the JSON of a
//! [`WatchSpec`] (`version` 1, unknown fields refused):
//!
//! ```json
//! {"version":1,"file":"/home/u/site/site.toml","step":null,"on":null,
//!  "no_cache":false,"out":null,"created":"2026-12-01T18:00:00Z"}
//! ```

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use n0_future::task::AbortOnDropHandle;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The detached watches, by id.
const WATCHES: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs.watches.v1");

/// Version of [`WatchSpec`]'s JSON in `jobs.watches.v1`.
pub const WATCH_VERSION: u32 = 1;

/// Hex digits of a watch id.
pub const WATCH_ID_LEN: usize = 16;

/// What a watch runs: the pipeline file and the `job run` flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSpec {
    /// [`WATCH_VERSION`].
    pub version: u32,
    /// The pipeline file, absolute.
    pub file: PathBuf,
    /// `--step`: only this step and what it needs.
    #[serde(default)]
    pub step: Option<String>,
    /// `--on`: where every step runs.
    #[serde(default)]
    pub on: Option<String>,
    /// `--no-cache`.
    #[serde(default)]
    pub no_cache: bool,
    /// `-o DIR`, absolute.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// When the watch was made (RFC 3339, UTC).
    pub created: String,
}

/// One live watch as `job watches` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchInfo {
    /// The watch id.
    pub id: String,
    /// The pipeline file.
    pub file: PathBuf,
    /// Whether it runs inside the daemon (`--detach`) rather than for an
    /// attached client.
    pub detached: bool,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// Pipeline runs so far (the first included).
    pub runs: u64,
    /// What started its last run (`start`, `moved: ...`, `changed: ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
}

/// Why the registry could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// No live watch has that id.
    #[error("no watch {0} is live here (see `clive-node job watches`)")]
    NotFound(String),
    /// The prefix starts more than one watch id.
    #[error("`{0}` starts more than one watch id: give more of it")]
    Ambiguous(String),
    /// The table of detached watches failed.
    #[error("the watches table of state.redb: {0}")]
    Db(String),
    /// A row of the table that does not decode (written by a newer version?).
    #[error("a detached watch that does not decode: {0}")]
    Malformed(String),
    /// Detaching needs the daemon's watch service.
    #[error(
        "`job run --watch --detach` runs the watch inside the daemon, and no daemon runs \
         on this home: start one with `clive-node start`"
    )]
    NoDaemon,
}

fn db_err(e: impl std::fmt::Display) -> WatchError {
    WatchError::Db(e.to_string())
}

/// A row of `jobs.watches.v1`: the watch id, and what it runs or why its
/// row does not decode.
pub type Persisted = (String, Result<WatchSpec, WatchError>);

/// Starts a detached watch's task, given its guard (the daemon's watch
/// service installs one: [`Watches::set_spawner`]).
pub type Spawner =
    Arc<dyn Fn(WatchGuard, WatchSpec) -> AbortOnDropHandle<()> + Send + Sync + 'static>;

struct Live {
    info: WatchInfo,
    stop: watch::Sender<bool>,
    /// The task of a detached watch.
    task: Option<AbortOnDropHandle<()>>,
}

/// The live watches of a node, and its table of detached ones.
pub struct Watches {
    db: Arc<Database>,
    live: Mutex<BTreeMap<String, Live>>,
    spawner: Mutex<Option<Spawner>>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches")
            .field("live", &lock(&self.live).keys().collect::<Vec<_>>())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh watch id: [`WATCH_ID_LEN`] random hex digits.
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; WATCH_ID_LEN / 2]>())
}

impl Watches {
    /// The registry of a node whose state is `db` (nothing is live yet).
    pub fn open(db: Arc<Database>) -> Watches {
        Watches {
            db,
            live: Mutex::new(BTreeMap::new()),
            spawner: Mutex::new(None),
        }
    }

    /// Enters a live watch; it stays listed until the guard drops.
    pub fn register(
        self: &Arc<Self>,
        id: String,
        file: PathBuf,
        detached: bool,
        started: String,
    ) -> WatchGuard {
        let (stop, stopped) = watch::channel(false);
        let info = WatchInfo {
            id: id.clone(),
            file,
            detached,
            started,
            runs: 0,
            last_event: None,
        };
        lock(&self.live).insert(
            id.clone(),
            Live {
                info,
                stop: stop.clone(),
                task: None,
            },
        );
        WatchGuard {
            watches: self.clone(),
            id,
            stop,
            stopped,
        }
    }

    /// The live watches, oldest first.
    pub fn list(&self) -> Vec<WatchInfo> {
        // A watch asked to stop is not listed, though its last run may
        // still be ending: `job unwatch` then `job watches` shows it gone.
        let mut all: Vec<WatchInfo> = lock(&self.live)
            .values()
            .filter(|l| !*l.stop.borrow())
            .map(|l| l.info.clone())
            .collect();
        all.sort_by(|a, b| a.started.cmp(&b.started).then(a.id.cmp(&b.id)));
        all
    }

    /// The live watch `arg` names: its id, or a unique prefix of one.
    pub fn resolve(&self, arg: &str) -> Result<String, WatchError> {
        let arg = arg.trim().to_ascii_lowercase();
        let live = lock(&self.live);
        let found: Vec<&String> = live.keys().filter(|id| id.starts_with(&arg)).collect();
        match found.as_slice() {
            [id] if !arg.is_empty() => Ok((*id).clone()),
            [] => Err(WatchError::NotFound(arg)),
            _ => Err(WatchError::Ambiguous(arg)),
        }
    }

    /// Stops the live watch `id` (it ends once it notices, taking
    /// everything it tracked with it) and forgets it for good if it is
    /// detached; returns it as it was.
    pub fn stop(&self, id: &str) -> Result<WatchInfo, WatchError> {
        let info = {
            let live = lock(&self.live);
            let entry = live
                .get(id)
                .ok_or_else(|| WatchError::NotFound(id.to_owned()))?;
            entry.stop.send_replace(true);
            entry.info.clone()
        };
        if info.detached {
            self.forget(id)?;
        }
        Ok(info)
    }

    /// Keeps `task` as the task of the detached watch `id`: aborted when
    /// the watch leaves the registry or the daemon stops.
    pub fn set_task(&self, id: &str, task: AbortOnDropHandle<()>) {
        if let Some(live) = lock(&self.live).get_mut(id) {
            live.task = Some(task);
        }
    }

    /// Installs (or, with `None`, removes) what starts detached watches.
    pub fn set_spawner(&self, spawner: Option<Spawner>) {
        *lock(&self.spawner) = spawner;
    }

    /// What starts detached watches, while the daemon's service runs.
    pub fn spawner(&self) -> Result<Spawner, WatchError> {
        lock(&self.spawner).clone().ok_or(WatchError::NoDaemon)
    }

    /// The tasks of every detached watch, taken out to be stopped (the
    /// daemon is stopping; their rows stay, to be resumed).
    pub fn take_detached(&self) -> Vec<AbortOnDropHandle<()>> {
        let mut live = lock(&self.live);
        let ids: Vec<String> = live
            .iter()
            .filter(|(_, l)| l.info.detached)
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| live.remove(&id).and_then(|l| l.task))
            .collect()
    }

    /// Writes the row of a detached watch.
    pub fn persist(&self, id: &str, spec: &WatchSpec) -> Result<(), WatchError> {
        let bytes = serde_json::to_vec(spec).map_err(|e| WatchError::Malformed(e.to_string()))?;
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(WATCHES).map_err(db_err)?;
            t.insert(id, bytes.as_slice()).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Removes the row of a detached watch, if there is one.
    pub fn forget(&self, id: &str) -> Result<(), WatchError> {
        let tx = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = tx.open_table(WATCHES).map_err(db_err)?;
            t.remove(id).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Removes the row `id` of a detached watch that is not live (one the
    /// daemon could not resume: its row does not decode, say, as the
    /// daemon's log says when it starts); returns it as `job watches`
    /// would list it, its last event saying why it was not running.
    pub fn forget_stored(&self, id: &str) -> Result<WatchInfo, WatchError> {
        let id = id.trim().to_ascii_lowercase();
        let (_, spec) = self
            .persisted()?
            .into_iter()
            .find(|(row, _)| *row == id)
            .ok_or_else(|| WatchError::NotFound(id.clone()))?;
        self.forget(&id)?;
        let (file, started, why) = match spec {
            Ok(spec) => (spec.file, spec.created, "not running".to_owned()),
            Err(e) => (PathBuf::new(), String::new(), format!("not running: {e}")),
        };
        Ok(WatchInfo {
            id,
            file,
            detached: true,
            started,
            runs: 0,
            last_event: Some(why),
        })
    }

    /// Every detached watch of the table: its id and what it runs, or why
    /// its row does not decode.
    pub fn persisted(&self) -> Result<Vec<Persisted>, WatchError> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let t = match tx.open_table(WATCHES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db_err(e)),
        };
        let mut out = Vec::new();
        for entry in t.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let spec = serde_json::from_slice::<WatchSpec>(v.value())
                .map_err(|e| WatchError::Malformed(e.to_string()))
                .and_then(|s| {
                    if s.version == WATCH_VERSION {
                        Ok(s)
                    } else {
                        Err(WatchError::Malformed(format!(
                            "version {} (this build reads {WATCH_VERSION})",
                            s.version
                        )))
                    }
                });
            out.push((k.value().to_owned(), spec));
        }
        Ok(out)
    }
}

/// A live watch's place in the registry: listed until dropped.
pub struct WatchGuard {
    watches: Arc<Watches>,
    id: String,
    stop: watch::Sender<bool>,
    stopped: watch::Receiver<bool>,
}

impl std::fmt::Debug for WatchGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchGuard").field("id", &self.id).finish()
    }
}

impl WatchGuard {
    /// The watch id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Turns `true` once the watch is asked to stop.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stopped.clone()
    }

    /// Asks the watch to stop (its caller's Ctrl-C, say).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Counts a run, started by `event`.
    pub fn ran(&self, event: &str) {
        if let Some(live) = lock(&self.watches.live).get_mut(&self.id) {
            live.info.runs += 1;
            live.info.last_event = Some(event.to_owned());
        }
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        // The task handle (a detached watch's own task) is dropped outside
        // the lock; dropping it aborts that task, which is ending anyway.
        let removed = lock(&self.watches.live).remove(&self.id);
        drop(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (tempfile::TempDir, Arc<Watches>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("state.redb")).unwrap();
        (dir, Arc::new(Watches::open(Arc::new(db))))
    }

    #[test]
    fn a_watch_is_listed_until_its_guard_drops_and_prefixes_resolve() {
        let (_dir, watches) = registry();
        let a = watches.register("ab12".repeat(4), "/p/a.toml".into(), false, "1".into());
        let b = watches.register("ab34".repeat(4), "/p/b.toml".into(), true, "2".into());
        a.ran("start");
        let listed = watches.list();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].runs, 1);
        assert_eq!(listed[0].last_event.as_deref(), Some("start"));
        assert!(matches!(
            watches.resolve("ab"),
            Err(WatchError::Ambiguous(_))
        ));
        assert_eq!(watches.resolve("AB34").unwrap(), b.id());
        assert!(matches!(
            watches.resolve("ff"),
            Err(WatchError::NotFound(_))
        ));
        let stopped = b.stopped();
        watches.stop(b.id()).unwrap();
        assert!(*stopped.borrow());
        // Gone from the listing at once, while its guard still lives.
        assert!(watches.list().iter().all(|w| w.id != b.id()));
        drop(a);
        drop(b);
        assert!(watches.list().is_empty());
    }

    #[test]
    fn detached_rows_round_trip_and_unwatch_forgets_them() {
        let (_dir, watches) = registry();
        let spec = WatchSpec {
            version: WATCH_VERSION,
            file: "/p/site.toml".into(),
            step: Some("site".into()),
            on: None,
            no_cache: false,
            out: None,
            created: "2026-12-01T18:00:00Z".into(),
        };
        watches.persist("00ff", &spec).unwrap();
        let rows = watches.persisted().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1.as_ref().unwrap(), &spec);
        let guard = watches.register("00ff".into(), spec.file.clone(), true, "t".into());
        watches.stop(guard.id()).unwrap();
        assert!(watches.persisted().unwrap().is_empty());
    }

    #[test]
    fn a_row_that_does_not_decode_is_forgotten_by_id() {
        let (_dir, watches) = registry();
        let tx = watches.db.begin_write().unwrap();
        {
            let mut t = tx.open_table(WATCHES).unwrap();
            t.insert("0abc", b"{not json".as_slice()).unwrap();
        }
        tx.commit().unwrap();
        assert!(matches!(
            watches.resolve("0abc"),
            Err(WatchError::NotFound(_))
        ));
        let gone = watches.forget_stored("0abc").unwrap();
        assert_eq!(gone.id, "0abc");
        assert!(gone.last_event.unwrap().contains("does not decode"));
        assert!(watches.persisted().unwrap().is_empty());
        assert!(matches!(
            watches.forget_stored("0abc"),
            Err(WatchError::NotFound(_))
        ));
    }
}
