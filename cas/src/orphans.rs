//! Files in the store's directories that no object owns: what a failed or
//! killed import leaves in `temp/` (iroh-blobs removes neither its copy nor
//! its outboard when writing fails), and data files in `data/` whose object
//! the store does not know (a process killed between moving an import into
//! place and recording it).
//!
//! A file may belong to an import still running. Every import through this
//! crate is registered while it runs ([`ImportClock`]). While none runs,
//! every temp file is an orphan (a new import waits until the sweep of
//! `temp/` is done); while some run, a file is an orphan only when it was
//! last written before the oldest of them started (with a margin for the
//! file system's coarse clock), so files of running imports are never
//! touched.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use iroh_blobs::{api::blobs::BlobStatus, store::fs::options::PathOptions};

use crate::{CasError, Hash, Result, Store, hash::parse_hash};

/// Files written this long before an import started may still be its own
/// (file times come from a coarse clock).
const CLOCK_MARGIN: Duration = Duration::from_secs(2);

/// The imports running now, by when each started.
#[derive(Debug, Default)]
pub(crate) struct ImportClock {
    running: Mutex<(u64, BTreeMap<u64, SystemTime>)>,
}

/// Registers one running import until dropped.
#[derive(Debug)]
pub(crate) struct Running {
    clock: Arc<ImportClock>,
    id: u64,
}

impl ImportClock {
    /// Registers an import starting now.
    pub(crate) fn start(self: &Arc<Self>) -> Running {
        let mut state = self.running.lock().unwrap_or_else(|e| e.into_inner());
        state.0 += 1;
        let id = state.0;
        state.1.insert(id, SystemTime::now());
        Running {
            clock: self.clone(),
            id,
        }
    }

    /// Runs `sweep` with the cutoff for temp files (files last written
    /// before it are orphans), while no import can start.
    fn with_temp_cutoff<T>(&self, sweep: impl FnOnce(SystemTime) -> T) -> T {
        let state = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let cutoff = match state.1.values().min() {
            None => SystemTime::now() + Duration::from_secs(365 * 24 * 3600),
            Some(oldest) => oldest.checked_sub(CLOCK_MARGIN).unwrap_or(*oldest),
        };
        sweep(cutoff)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut state = self.clock.running.lock().unwrap_or_else(|e| e.into_inner());
        state.1.remove(&self.id);
    }
}

/// What a sweep found.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Swept {
    pub files: u64,
    pub bytes: u64,
}

impl Store {
    /// Removes (unless `dry_run`) the orphaned files in the store's
    /// directories, and counts them; data files only if last written before
    /// `now`.
    pub(crate) async fn sweep_orphans(&self, now: SystemTime, dry_run: bool) -> Result<Swept> {
        let paths = PathOptions::new(self.dir());
        let mut swept = self.imports.with_temp_cutoff(|cutoff| {
            let mut swept = Swept::default();
            for (path, len) in old_files(&paths.temp_path, cutoff)? {
                remove(&path, len, dry_run, &mut swept)?;
            }
            Ok::<_, CasError>(swept)
        })?;
        let cutoff = now.checked_sub(CLOCK_MARGIN).unwrap_or(now);
        for (path, len) in old_files(&paths.data_path, cutoff)? {
            let Some(hash) = data_file_hash(&path) else {
                continue;
            };
            if matches!(self.blobs.blobs().status(hash).await?, BlobStatus::NotFound) {
                remove(&path, len, dry_run, &mut swept)?;
            }
        }
        if swept.files > 0 && !dry_run {
            tracing::info!(
                files = swept.files,
                bytes = swept.bytes,
                "removed orphaned files from the store"
            );
        }
        Ok(swept)
    }

    /// Removes what an import that just failed (and is no longer
    /// registered) left in `temp/`: all of it, unless an import that
    /// started earlier still runs; then the next gc or open removes it.
    pub(crate) fn clean_after_failed_import(&self) {
        let temp = PathOptions::new(self.dir()).temp_path;
        let cleaned = self.imports.with_temp_cutoff(|cutoff| {
            let mut swept = Swept::default();
            for (path, len) in old_files(&temp, cutoff)? {
                remove(&path, len, false, &mut swept)?;
            }
            Ok::<_, CasError>(swept)
        });
        match cleaned {
            Ok(swept) if swept.files > 0 => tracing::info!(
                files = swept.files,
                bytes = swept.bytes,
                "removed what a failed import left in the store"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("removing what a failed import left in the store: {e}"),
        }
    }
}

/// The hash a data-directory file (`HASH.data`, `HASH.obao4`, ...) belongs to.
fn data_file_hash(path: &Path) -> Option<Hash> {
    let name = path.file_name()?.to_str()?;
    let (stem, _) = name.split_once('.')?;
    parse_hash(stem).ok()
}

/// Regular files directly in `dir` last modified before `cutoff`, with sizes.
fn old_files(dir: &Path, cutoff: SystemTime) -> Result<Vec<(std::path::PathBuf, u64)>> {
    let context = || format!("reading {}", dir.display());
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CasError::io(context(), e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CasError::io(context(), e))?;
        let Ok(meta) = entry.metadata() else {
            // Gone meanwhile: an import finished or another sweep took it.
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().map_err(|e| CasError::io(context(), e))?;
        if modified < cutoff {
            out.push((entry.path(), meta.len()));
        }
    }
    Ok(out)
}

fn remove(path: &Path, len: u64, dry_run: bool, swept: &mut Swept) -> Result<()> {
    if !dry_run {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(CasError::io(format!("removing {}", path.display()), e)),
        }
    }
    swept.files += 1;
    swept.bytes += len;
    Ok(())
}
