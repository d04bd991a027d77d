//! Which followed objects are known to be here completely, so that a
//! catch-up with nothing new does not walk every tree the follow set
//! reaches again (10,000 files are ~200 ms of store lookups).
//!
//! A claim holds while the store has removed nothing since it was made
//! ([`Store::removals`]): objects are only added in between, and a
//! complete object stays complete. Claims live in memory only; a daemon
//! that starts walks each tree once.

use std::collections::HashMap;

use clive_cas::{Hash, Store};

use crate::{
    NodeError,
    net::{fetch, shared::lock},
};

/// Most claims kept; past it, they are all dropped (and made again).
pub const MAX_CLAIMS: usize = 1 << 20;

/// Objects known to be complete here, each with the store's removals
/// count when that was found, and its size.
#[derive(Debug, Default)]
pub struct Complete {
    known: std::sync::Mutex<HashMap<Hash, (u64, u64)>>,
}

impl Complete {
    /// The size of `hash` when it (and all a tree reaches) is here, from a
    /// claim that still holds, else from a walk of the store.
    pub async fn here(&self, store: &Store, hash: Hash) -> Result<Option<u64>, NodeError> {
        let removals = store.removals();
        if let Some(&(at, size)) = lock(&self.known).get(&hash)
            && at == removals
        {
            return Ok(Some(size));
        }
        let found = fetch::here(store, hash).await?;
        if let Some(found) = &found {
            self.claim(removals, hash, found.size);
        }
        Ok(found.map(|f| f.size))
    }

    /// `hash` (`size` bytes) was found complete when the store's removals
    /// count was `removals` (read before the fetch that completed it).
    pub fn claim(&self, removals: u64, hash: Hash, size: u64) {
        let mut known = lock(&self.known);
        if known.len() >= MAX_CLAIMS {
            known.clear();
        }
        known.insert(hash, (removals, size));
    }
}
