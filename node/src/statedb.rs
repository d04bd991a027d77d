//! Opening the redb databases of a home (`state.redb`, and the blob
//! store's `blobs.db`) so that damage is an error naming the file and the
//! way out, never a panic, and a lost state is never silently started over.
//!
//! redb trusts the pages of a cleanly closed file: garbage in one of them is
//! found only when a read walks into it, where it may panic. So each file is
//! verified as it opens ([`redb::Database::check_integrity`], which checks
//! every page's checksum without trusting its contents); a file redb can
//! roll back to its last intact commit is repaired, one it cannot is refused.

use std::{cell::Cell, panic::AssertUnwindSafe, path::Path, sync::Once};

use crate::{
    Home, NodeError,
    error::{Damage, StateError},
};

/// Opens `HOME/state.redb`, creating it only for a home whose store holds
/// nothing yet: a state that is missing or empty beside a store that is not
/// was lost, and starting over would lose every pin (and let `gc` remove
/// everything), so it is refused.
pub(crate) fn open_state(home: &Home) -> Result<redb::Database, NodeError> {
    let path = home.state_path();
    let len = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(NodeError::io(format!("reading {}", path.display()), e)),
    };
    if len == 0 && store_has_data(&home.blobs_dir())? {
        let what = if path.exists() {
            "is empty"
        } else {
            "is missing"
        };
        return Err(NodeError::StateLost {
            state: path,
            what,
            store: home.blobs_dir(),
        });
    }
    open_checked(&path, state_recovery(home), true, || {
        redb::Database::builder()
            .set_cache_size(STATE_CACHE)
            .create(&path)
    })
}

/// The page cache of `state.redb`. redb's own default (1 GiB) is kept
/// whole once filled, so a large write (the index of a folder of 100,000
/// files, some 20 MB of pages) would stay in the daemon's memory for good;
/// at 32 MiB it still made a quarter of the daemon's peak while such a
/// folder was first read (`bench/folders.sh`: 131 MiB, 108 MiB at 8 MiB).
/// The state's lookups are point reads and short ranges, which 8 MiB holds.
const STATE_CACHE: usize = 8 * 1024 * 1024;

/// Opens `HOME/state.redb` read-only (for lookups that need nothing else);
/// damage that makes redb fail is [`NodeError::Damaged`]. Unlike
/// [`open_state`], this cannot verify the whole file first, so the reads
/// themselves go through [`read_state`].
pub(crate) fn open_state_read_only(home: &Home) -> Result<redb::ReadOnlyDatabase, NodeError> {
    let path = home.state_path();
    match quietly(|| redb::ReadOnlyDatabase::open(&path)) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(NodeError::State {
            path,
            cause: StateError::Database(e),
        }),
        Err(panic) => Err(NodeError::Damaged {
            cause: Damage::Panicked(panic),
            recovery: state_recovery(home),
            path,
        }),
    }
}

/// Runs `read` on a state opened with [`open_state_read_only`]; redb
/// failing on a damaged page is [`NodeError::Damaged`], not a panic.
pub(crate) fn read_state<T>(
    home: &Home,
    read: impl FnOnce() -> Result<T, NodeError>,
) -> Result<T, NodeError> {
    quietly(read).unwrap_or_else(|panic| {
        Err(NodeError::Damaged {
            path: home.state_path(),
            cause: Damage::Panicked(panic),
            recovery: state_recovery(home),
        })
    })
}

/// How to recover from a damaged `state.redb`.
fn state_recovery(home: &Home) -> String {
    format!(
        "stop any daemon and restore it from a backup; without one, move it and the store \
         aside (mv {0} {0}.damaged; mv {1} {1}.old): the node then starts empty, without \
         its pins, certificates and names",
        home.state_path().display(),
        home.blobs_dir().display()
    )
}

/// Opens the blob store's database `HOME/blobs/blobs.db` (when it exists)
/// once before the store does, so damage that redb trips over while
/// opening it is an error naming it, not a panic. Its pages are not all
/// verified here: a store written before small blobs were kept as files
/// holds them inline (134 MiB for 10,000 files of 4 KiB), and reading it
/// whole made every command of such a node 15 times slower (`cat` of a
/// small blob: 7 ms to 100 ms). Damage
/// past what opening reads is found where the bytes are read: every read of
/// a stored object is verified against its hash (`cat`, `export`, `fsck`).
pub(crate) fn check_blob_db(home: &Home) -> Result<(), NodeError> {
    let store = home.blobs_dir();
    let path = store.join("blobs.db");
    if !path.exists() {
        return Ok(());
    }
    let recovery = format!(
        "stop any daemon and restore the store from a backup; without one, move it aside \
         (mv {0} {0}.damaged): the pins stay, `clive-node fsck` lists the objects they \
         miss and `clive-node get` fetches them again from peers",
        store.display()
    );
    open_checked(&path, recovery, false, || redb::Database::open(&path)).map(drop)
}

/// Whether the blob store directory holds anything (a store was opened
/// there: its database, data or temporary files).
fn store_has_data(dir: &Path) -> Result<bool, NodeError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(NodeError::io(format!("reading {}", dir.display()), e)),
    }
}

/// Opens a database with `open` and, when `verify`, checks every page;
/// damage, and a panic of redb on damage it does not expect, become
/// [`NodeError::Damaged`].
///
/// redb trusts a cleanly closed file's allocator state, so a garbage page
/// can make opening it panic before [`redb::Database::check_integrity`]
/// gets to look; that panic is caught here (and kept off standard error)
/// as the last resort.
fn open_checked(
    path: &Path,
    recovery: String,
    verify: bool,
    open: impl FnOnce() -> Result<redb::Database, redb::DatabaseError>,
) -> Result<redb::Database, NodeError> {
    let damaged = |cause: Damage| NodeError::Damaged {
        path: path.to_owned(),
        cause,
        recovery: recovery.clone(),
    };
    let checked = quietly(|| {
        let mut db = open()?;
        let clean = !verify || db.check_integrity()?;
        Ok::<_, redb::DatabaseError>((db, clean))
    });
    match checked {
        Ok(Ok((db, true))) => Ok(db),
        Ok(Ok((db, false))) => {
            tracing::warn!(
                "{} was damaged; redb repaired it by going back to its last intact commit",
                path.display()
            );
            Ok(db)
        }
        Ok(Err(e @ redb::DatabaseError::DatabaseAlreadyOpen)) => Err(NodeError::State {
            path: path.to_owned(),
            cause: StateError::Database(e),
        }),
        Ok(Err(e)) => Err(damaged(Damage::Refused(e))),
        Err(panic) => Err(damaged(Damage::Panicked(panic))),
    }
}

thread_local! {
    /// Set while this thread runs [`quietly`]: its panics are not printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic into `Err` with its message, without the
/// panic hook printing it (only this thread's panics, only meanwhile).
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "it panicked".to_owned())
    })
}
