//! Trees known to be stored here completely (every object they reach), so
//! a walk of a new version of a tree skips the lookups of what it shares
//! with versions walked before: one changed file in a folder of 10,000
//! costs the lookups of its own directory, not of every file.
//!
//! A claim holds while the store has removed nothing since the walk that
//! made it began ([`crate::Store::removals`]): objects are only added in
//! between, and a complete tree stays complete. Claims live in memory.

use std::{collections::HashSet, sync::Mutex};

use crate::Hash;

/// Most trees remembered; past it, all are forgotten (and found again).
pub const MAX_TREES: usize = 1 << 20;

/// The claims, all made under one removals count.
#[derive(Debug, Default)]
pub(crate) struct CompleteTrees {
    state: Mutex<Claims>,
}

#[derive(Debug, Default)]
struct Claims {
    removals: u64,
    trees: HashSet<Hash>,
}

impl CompleteTrees {
    fn claims(&self) -> std::sync::MutexGuard<'_, Claims> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `tree` is known complete, the store's removals count being
    /// `removals` now.
    pub(crate) fn knows(&self, removals: u64, tree: &Hash) -> bool {
        let claims = self.claims();
        claims.removals == removals && claims.trees.contains(tree)
    }

    /// Records `trees` as complete, found by a walk that began when the
    /// removals count was `began`; `now` is the count at its end.
    pub(crate) fn claim(&self, began: u64, now: u64, trees: impl IntoIterator<Item = Hash>) {
        if began != now {
            return;
        }
        let mut claims = self.claims();
        if claims.removals != now {
            claims.removals = now;
            claims.trees.clear();
        }
        for tree in trees {
            if claims.trees.len() >= MAX_TREES {
                claims.trees.clear();
            }
            claims.trees.insert(tree);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_holds_until_something_is_removed() {
        let known = CompleteTrees::default();
        let (a, b) = (Hash::new(b"a"), Hash::new(b"b"));
        known.claim(3, 3, [a]);
        assert!(known.knows(3, &a));
        assert!(!known.knows(3, &b));
        assert!(!known.knows(4, &a), "a removal since voids the claim");
        known.claim(3, 4, [b]);
        assert!(
            !known.knows(4, &b),
            "a walk a removal overlapped claims nothing"
        );
        known.claim(4, 4, [b]);
        assert!(known.knows(4, &b) && !known.knows(4, &a));
    }
}
