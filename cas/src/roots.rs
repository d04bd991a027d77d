//! The roots lock: keeps a garbage collection from running while objects
//! that are about to become roots (pinned, named, kept by the node) are
//! being written.
//!
//! A collection computes what is live, then iroh-blobs' collector sweeps
//! everything else that no temporary tag protects at that moment. An object
//! written before the live set was computed, made a root after it, and
//! whose temporary protection ended before the sweep would be removed
//! although a root reaches it. So every writer of future roots holds the
//! lock shared ([`RootsHold`]) from its first write until the root exists
//! and its protection drops, and a collection holds it exclusively
//! ([`GcLock`]) from computing its live set until its sweep has finished.
//!
//! Writers never wait for a collection that is only waiting: the lock
//! prefers them, so an operation that holds a [`RootsHold`] may take
//! another (an add inside a publish, a fetch inside a pin) without
//! deadlocking behind a waiting collection. A collection therefore waits
//! until no import, fetch or pin runs; each of those is bounded (a fetch by
//! its timeouts, an import by its source). Nothing waits for a collection
//! while holding a [`RootsHold`].

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct State {
    holders: usize,
    collecting: bool,
}

/// The lock itself; cloned with the store.
#[derive(Debug, Default, Clone)]
pub(crate) struct RootsLock(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    changed: Notify,
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Held (shared) by an operation writing objects that will become roots:
/// no garbage collection runs until every such hold is dropped.
#[must_use = "the hold protects nothing once dropped"]
#[derive(Debug)]
pub struct RootsHold(Arc<Inner>);

/// Held by a garbage collection from computing its live set until its sweep
/// has finished: no writer of roots runs meanwhile.
#[must_use = "the lock protects nothing once dropped"]
#[derive(Debug)]
pub struct GcLock(Arc<Inner>);

impl RootsLock {
    /// Waits until no collection runs, then holds the lock shared.
    pub(crate) async fn hold(&self) -> RootsHold {
        self.wait_for(|s| {
            if s.collecting {
                return false;
            }
            s.holders += 1;
            true
        })
        .await;
        RootsHold(self.0.clone())
    }

    /// Waits until neither a writer nor another collection runs, then holds
    /// the lock exclusively.
    pub(crate) async fn collect(&self) -> GcLock {
        self.wait_for(|s| {
            if s.collecting || s.holders > 0 {
                return false;
            }
            s.collecting = true;
            true
        })
        .await;
        GcLock(self.0.clone())
    }

    /// Holds the lock exclusively if neither a writer nor another
    /// collection runs now; never waits.
    pub(crate) fn try_collect(&self) -> Option<GcLock> {
        let mut s = self.0.state();
        if s.collecting || s.holders > 0 {
            return None;
        }
        s.collecting = true;
        Some(GcLock(self.0.clone()))
    }

    async fn wait_for(&self, mut take: impl FnMut(&mut State) -> bool) {
        loop {
            let mut changed = std::pin::pin!(self.0.changed.notified());
            // Registered before looking, so a release in between wakes us.
            changed.as_mut().enable();
            if take(&mut self.0.state()) {
                return;
            }
            changed.await;
        }
    }
}

impl Drop for RootsHold {
    fn drop(&mut self) {
        let last = {
            let mut s = self.0.state();
            s.holders -= 1;
            s.holders == 0
        };
        if last {
            self.0.changed.notify_waiters();
        }
    }
}

impl Drop for GcLock {
    fn drop(&mut self) {
        self.0.state().collecting = false;
        self.0.changed.notify_waiters();
    }
}
