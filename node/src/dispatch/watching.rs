//! Pipeline watches (`job run PIPELINE.toml --watch`): the pipeline runs
//! once, then again each time something it reads moves, until the watch
//! is stopped.
//!
//! What moves a pipeline:
//!
//! - a `ZONE/NAME` input whose hash changes. The watch hears every store
//!   of zone metadata on this node ([`crate::events::ZoneEvents`]: after
//!   an announcement's sync, a `name refresh`, a local publish or
//!   override) and resolves its names of that zone again; it also
//!   refreshes its zones every [`REFRESH_EVERY`], so a missed
//!   announcement is caught. A new version of the zone that leaves the
//!   name's target as it was moves nothing.
//! - a path input whose contents change on disk, seen through `notify`
//!   (recursively, debounced by [`super::watch_inputs::DEBOUNCE`]) and
//!   hashed again: a touch or a save of the same bytes moves nothing.
//! - the pipeline file itself, once it parses to a different pipeline
//!   (one that does not parse is reported and the old one kept).
//!
//! Each run is an ordinary `job run` ([`JobsHandle::run_pipeline`]),
//! so a step whose inputs did not change is a memo hit. Before a rerun
//! the watch prints what moved (`moved: release/tool 1a2b3c4d.. ->
//! 5e6f7a8b..`, `changed: ./pages`), after it a line per step (ran or
//! memo hit) and `watch ID: run N done (R ran, M memo hits)`; these go
//! to standard error, the steps' own output to standard output.
//!
//! A watch is entered in the node's registry ([`crate::jobs::watches`])
//! for as long as it runs. It stops when its caller cancels (Ctrl-C, the
//! control protocol's CANCEL) or leaves, or on `job unwatch`; then its
//! zone subscription, its `notify` watcher and its registry entry are
//! dropped with it, and nothing of it keeps running. A detached watch
//! (`--detach`) runs inside the daemon instead, its lines in the daemon's
//! log (`super::detached`).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use clive_trust::Signer;
use tokio::{io::AsyncWriteExt, sync::broadcast::error::RecvError};

use super::{
    JobsHandle, Output, Stream,
    watch_inputs::{self, FsWatch, Held, Inputs},
};
use crate::{
    NodeError,
    error::error_chain,
    jobs::{
        pipeline::Pipeline,
        platform::Target,
        watches::{WatchGuard, WatchSpec},
    },
};

/// How often a watch refreshes the zones of its names, in case an
/// announcement was missed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);

/// How a watch ended, as `job run --watch` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatchEnded {
    /// The watch id.
    pub id: String,
    /// Pipeline runs it made.
    pub runs: u64,
}

/// A pipeline as a watch runs it.
struct Loaded {
    pipeline: Pipeline,
    on: Option<Target>,
    inputs: Inputs,
    zones: BTreeSet<String>,
}

/// What the inputs held when the last run started.
#[derive(Default)]
struct Seen {
    names: BTreeMap<String, Held>,
    paths: BTreeMap<PathBuf, Held>,
}

impl JobsHandle<'_> {
    /// Runs `spec`'s pipeline, then again whenever one of its inputs
    /// moves (see the module documentation), until `guard` is stopped;
    /// returns how many runs it made. Step output goes to `out`'s
    /// standard output, the watch's own lines to its standard error.
    pub async fn watch(
        &self,
        spec: &WatchSpec,
        signer: Arc<dyn Signer>,
        guard: &WatchGuard,
        mut out: Output<'_>,
    ) -> Result<u64, NodeError> {
        let id = guard.id().to_owned();
        let mut stop = guard.stopped();
        let mut zone_events = self.node.zone_events().subscribe();
        // False once the zone events' sender is gone: nothing more comes.
        let mut zones_open = true;
        let mut fs = FsWatch::new()?;
        let base = spec.file.parent().map(Path::to_owned).unwrap_or_default();
        let mut loaded = match self.load(spec) {
            Ok(loaded) => Some(loaded),
            Err(message) => {
                say(&mut out, &message).await?;
                None
            }
        };
        fs.set_roots(roots(spec, loaded.as_ref()));
        let what = loaded
            .as_ref()
            .map(|l| {
                format!(
                    "{} name{}, {} path{}",
                    l.inputs.names.len(),
                    plural(l.inputs.names.len()),
                    l.inputs.paths.len(),
                    plural(l.inputs.paths.len())
                )
            })
            .unwrap_or_else(|| "waiting for the file to parse".into());
        say(
            &mut out,
            &format!("watch {id}: watching {} ({what})", spec.file.display()),
        )
        .await?;
        let mut refresh =
            tokio::time::interval_at(tokio::time::Instant::now() + REFRESH_EVERY, REFRESH_EVERY);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = Seen::default();
        let mut trigger: Option<Vec<String>> = Some(Vec::new());
        let mut runs = 0u64;
        loop {
            if let Some(current) = &loaded
                && let Some(why) = trigger.take()
            {
                // What the run reads, looked at just before it starts.
                seen.names = watch_inputs::resolve(self.node, &current.inputs.names).await;
                seen.paths = watch_inputs::hash(self.node, &current.inputs.paths).await;
                for line in &why {
                    say(&mut out, line).await?;
                }
                for line in watch_inputs::fetch_missing(self.node, &seen.names).await {
                    say(&mut out, &line).await?;
                }
                runs += 1;
                guard.ran(why.first().map_or("start", String::as_str));
                tracing::debug!(watch = %id, run = runs, "running the pipeline");
                let stream = Stream {
                    out: Output {
                        stdout: &mut *out.stdout,
                        stderr: &mut *out.stderr,
                    },
                    cancel: stop.clone(),
                };
                let ran = self
                    .run_pipeline(
                        &current.pipeline,
                        current.on.as_ref(),
                        spec.no_cache,
                        Some(signer.clone()),
                        spec.out.as_deref(),
                        stream,
                    )
                    .await;
                // As the API does after each `exec` and `job` command.
                self.node.store().trim_cache_logged().await;
                match ran {
                    Ok(run) => {
                        for line in run.summary_lines() {
                            say(&mut out, &line).await?;
                        }
                        let hits = run.steps.iter().filter(|s| s.run.memo_hit).count();
                        let ran = run.steps.len() - hits;
                        say(
                            &mut out,
                            &format!(
                                "watch {id}: run {runs} done ({ran} ran, {hits} memo hit{})",
                                plural(hits)
                            ),
                        )
                        .await?;
                    }
                    Err(e) => {
                        let e = error_chain(&e);
                        say(&mut out, &format!("watch {id}: run {runs} failed: {e}")).await?;
                    }
                }
            }
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
                event = zone_events.recv(), if zones_open => {
                    let zone = match event {
                        Ok(event) => Some(event.zone),
                        // Some were missed: any zone may have moved.
                        Err(RecvError::Lagged(_)) => None,
                        Err(RecvError::Closed) => {
                            zones_open = false;
                            continue;
                        }
                    };
                    let Some(current) = &loaded else { continue };
                    if zone.as_ref().is_none_or(|z| current.zones.contains(z)) {
                        tracing::debug!(watch = %id, ?zone, "zone stored: resolving the names again");
                        let moved = self.names_moved(current, &seen).await;
                        if !moved.is_empty() {
                            trigger.get_or_insert_with(Vec::new).extend(moved);
                        }
                    }
                }
                touched = fs.next() => {
                    let mut why = Vec::new();
                    if touched.contains(&spec.file) {
                        match self.load(spec) {
                            Ok(new) => {
                                if loaded.as_ref().is_none_or(|old| old.pipeline != new.pipeline) {
                                    why.push(format!("changed: {}", shown_path(&base, &spec.file)));
                                    loaded = Some(new);
                                    fs.set_roots(roots(spec, loaded.as_ref()));
                                }
                            }
                            Err(message) => say(&mut out, &message).await?,
                        }
                    }
                    if let Some(current) = &loaded {
                        let paths: Vec<&PathBuf> = current
                            .inputs
                            .paths
                            .iter()
                            .filter(|p| touched.contains(*p))
                            .collect();
                        let now = watch_inputs::hash(self.node, paths).await;
                        for (path, held) in now {
                            if seen.paths.get(&path) != Some(&held) {
                                why.push(format!("changed: {}", shown_path(&base, &path)));
                            }
                        }
                    }
                    if !why.is_empty() {
                        trigger.get_or_insert_with(Vec::new).extend(why);
                    }
                }
                _ = refresh.tick() => {
                    let zones = loaded.as_ref().map(|l| l.zones.clone()).unwrap_or_default();
                    for zone in zones {
                        // A move it finds comes back as a zone event.
                        if let Err(e) = self.node.names().refresh(&zone).await {
                            tracing::debug!(watch = %id, zone, "refreshing: {e}");
                        }
                    }
                }
            }
        }
        say(
            &mut out,
            &format!(
                "watch {id}: stopped after {runs} run{}",
                plural(runs as usize)
            ),
        )
        .await?;
        Ok(runs)
    }

    /// Reads and checks the watch's pipeline file (a message saying why
    /// it cannot be run, otherwise).
    fn load(&self, spec: &WatchSpec) -> Result<Loaded, String> {
        let failed =
            |e: &dyn std::error::Error| format!("{}: {}", spec.file.display(), error_chain(e));
        let mut pipeline = Pipeline::load(&spec.file).map_err(|e| failed(&e))?;
        if let Some(step) = &spec.step {
            pipeline = pipeline.only(step).map_err(|e| failed(&e))?;
        }
        let on = match &spec.on {
            Some(on) => Some(on.parse::<Target>().map_err(|e| failed(&e))?),
            None => None,
        };
        let inputs = Inputs::of(self.node, &pipeline);
        let zones = inputs.zones(self.node);
        Ok(Loaded {
            pipeline,
            on,
            inputs,
            zones,
        })
    }

    /// A `moved:` line for each name that resolves to something else than
    /// when the last run started.
    async fn names_moved(&self, current: &Loaded, seen: &Seen) -> Vec<String> {
        let now = watch_inputs::resolve(self.node, &current.inputs.names).await;
        now.iter()
            .filter(|(name, held)| seen.names.get(*name) != Some(held))
            .map(|(name, held)| {
                format!(
                    "moved: {name} {} -> {}",
                    watch_inputs::shown(seen.names.get(name)),
                    watch_inputs::shown(Some(held))
                )
            })
            .collect()
    }
}

/// The paths a watch follows on disk: the pipeline file and its path inputs.
fn roots(spec: &WatchSpec, loaded: Option<&Loaded>) -> BTreeSet<PathBuf> {
    let mut roots = BTreeSet::from([spec.file.clone()]);
    if let Some(loaded) = loaded {
        roots.extend(loaded.inputs.paths.iter().cloned());
    }
    roots
}

/// `path` as the pipeline file would spell it: `./pages` for a path
/// beside it, the whole path otherwise.
fn shown_path(base: &Path, path: &Path) -> String {
    match path.strip_prefix(base) {
        Ok(rel) if !rel.as_os_str().is_empty() => format!("./{}", rel.display()),
        _ => path.display().to_string(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Writes one of the watch's own lines to standard error.
async fn say(out: &mut Output<'_>, line: &str) -> Result<(), NodeError> {
    let write = async {
        out.stderr.write_all(format!("{line}\n").as_bytes()).await?;
        out.stderr.flush().await
    };
    write
        .await
        .map_err(|e| NodeError::io("writing the watch's output", e))
}
