//! The bounded cache of memoized results (`[jobs] cache`, default 10 GiB).
//!
//! The cache is the objects the memo's entries reach (each result's
//! outputs tree and what it holds, its stdout and its stderr) that nothing
//! else keeps: objects reachable from a pin, a name, a trust object, a
//! transfer, the inputs or result of a job under way, or a job record whose
//! result is not the memo's are never evicted and do not count. Nor does
//! an entry the cache never evicts: one of a job under way, or one whose
//! outputs tree is kept for another reason (pinned, named: its memo entry
//! stays with it, logs included). Its size is the bytes of the objects
//! left, each counted once however many entries share it.
//!
//! Past the bound, entries go least recently used first (used = put, or
//! returned as a memo hit; see `memo`), until the cache fits. An entry
//! goes with its objects: the memo entry is removed and the objects only
//! it reached are removed from the store, so no entry points at a missing
//! object. Besides the entries above, the most recently used entry is
//! never evicted, so the command that just put or hit it can still read its
//! outputs, even when it alone passes the bound.
//!
//! When eviction runs (`crate::store`): at `gc`, before the sweep, which
//! then removes what the evicted entries alone reached (so gc is the one
//! place that frees space on demand, and `gc --dry-run` shows what would
//! go); and after each `exec` or `job` command that put a result on this
//! node, so the cache stays bounded without a gc, which would also remove
//! unpinned objects the user added. A result a peer's job puts on a daemon
//! is counted at the next such command or gc.

use std::collections::{HashMap, HashSet};

use clive_cas::Hash;
use serde::{Deserialize, Serialize};

use super::document::JobId;

/// One memo entry as the cache weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The job.
    pub id: JobId,
    /// When it was last used (microseconds since the Unix epoch).
    pub last_used: u64,
    /// Its result's outputs tree.
    pub outputs: Hash,
    /// Every stored object it reaches, with its size in bytes.
    pub objects: Vec<(Hash, u64)>,
    /// A job under way references it: never evicted.
    pub protected: bool,
}

/// What the cache decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The entries to evict, least recently used first.
    pub evict: Vec<JobId>,
    /// The cache's size before, in bytes.
    pub bytes_before: u64,
    /// Its size once they are evicted.
    pub bytes_after: u64,
    /// The objects only the evicted entries reached (nothing else keeps
    /// them): what evicting them frees.
    pub freed: Vec<Hash>,
}

/// Which entries to evict so that the objects they reach, less those in
/// `kept` (kept for another reason), fit in `bound` bytes: least recently
/// used first (ties by job id); never a protected entry, one whose outputs
/// are in `kept` (nor what such entries reach), or the most recently used
/// one.
pub fn plan(entries: &[CacheEntry], kept: &HashSet<Hash>, bound: u64) -> Plan {
    let stays = |e: &CacheEntry| e.protected || kept.contains(&e.outputs);
    let mut kept = kept.clone();
    kept.extend(
        entries
            .iter()
            .filter(|e| stays(e))
            .flat_map(|e| e.objects.iter().map(|(h, _)| *h)),
    );
    let entries: Vec<&CacheEntry> = entries.iter().filter(|e| !stays(e)).collect();
    // Each counted object: its size and how many entries reach it.
    let mut counted: HashMap<Hash, (u64, usize)> = HashMap::new();
    let own = |e: &CacheEntry| -> Vec<(Hash, u64)> {
        let mut v: Vec<(Hash, u64)> = e
            .objects
            .iter()
            .copied()
            .filter(|(h, _)| !kept.contains(h))
            .collect();
        v.sort();
        v.dedup_by_key(|(h, _)| *h);
        v
    };
    for e in &entries {
        for (hash, size) in own(e) {
            counted.entry(hash).or_insert((size, 0)).1 += 1;
        }
    }
    let bytes_before: u64 = counted.values().map(|(size, _)| size).sum();
    let mut size = bytes_before;
    let mut order = entries;
    order.sort_by_key(|e| (e.last_used, e.id));
    // The most recently used entry stays.
    order.pop();
    let mut plan = Plan::default();
    for e in order {
        if size <= bound {
            break;
        }
        for (hash, _) in own(e) {
            if let Some((bytes, n)) = counted.get_mut(&hash) {
                *n -= 1;
                if *n == 0 {
                    size -= *bytes;
                    plan.freed.push(hash);
                }
            }
        }
        plan.evict.push(e.id);
    }
    plan.freed.sort();
    plan.bytes_before = bytes_before;
    plan.bytes_after = size;
    plan
}

/// What `gc` and the trim after a command report of the cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheReport {
    /// The cache's bound (`[jobs] cache`), in bytes.
    pub bound: u64,
    /// Its size after eviction (before, on a dry run), in bytes.
    pub bytes: u64,
    /// Memo entries left (all, on a dry run).
    pub entries: u64,
    /// The jobs whose results were evicted (or would be, on a dry run),
    /// least recently used first.
    pub evicted: Vec<JobId>,
    /// The bytes their objects alone held: freed from the store.
    pub evicted_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(hashes: &[Hash]) -> HashSet<Hash> {
        hashes.iter().copied().collect()
    }

    fn h(n: u8) -> Hash {
        Hash::new([n])
    }

    fn entry(n: u8, last_used: u64, objects: &[(u8, u64)]) -> CacheEntry {
        CacheEntry {
            id: JobId(Hash::new([100 + n])),
            last_used,
            outputs: h(objects[0].0),
            objects: objects.iter().map(|&(o, s)| (h(o), s)).collect(),
            protected: false,
        }
    }

    #[test]
    fn under_the_bound_nothing_goes() {
        let entries = [entry(1, 10, &[(1, 40)]), entry(2, 20, &[(2, 40)])];
        let plan = plan(&entries, &HashSet::new(), 80);
        assert!(plan.evict.is_empty() && plan.freed.is_empty());
        assert_eq!((plan.bytes_before, plan.bytes_after), (80, 80));
    }

    #[test]
    fn the_least_recently_used_go_first_until_it_fits() {
        // Listed out of order: recency decides, not position.
        let entries = [
            entry(3, 30, &[(3, 40)]),
            entry(1, 10, &[(1, 40)]),
            entry(4, 40, &[(4, 40)]),
            entry(2, 20, &[(2, 40)]),
        ];
        let plan = plan(&entries, &HashSet::new(), 100);
        assert_eq!(plan.evict, [entries[1].id, entries[3].id]);
        assert_eq!(set(&plan.freed), set(&[h(1), h(2)]));
        assert_eq!((plan.bytes_before, plan.bytes_after), (160, 80));
    }

    #[test]
    fn kept_objects_do_not_count_and_entries_of_kept_outputs_stay() {
        // Entry 1's outputs are pinned: it and its log (shared with entry
        // 3) stay and do not count. Entry 2's log is pinned, its outputs
        // are not: they count, and go.
        let entries = [
            entry(1, 10, &[(1, 500), (5, 30)]),
            entry(2, 20, &[(2, 40), (6, 500)]),
            entry(3, 30, &[(3, 40), (5, 30)]),
            entry(4, 40, &[(4, 40)]),
        ];
        let kept: HashSet<Hash> = [h(1), h(6)].into();
        let plan = plan(&entries, &kept, 80);
        assert_eq!(plan.bytes_before, 120);
        assert_eq!(plan.evict, [entries[1].id]);
        assert_eq!(plan.freed, [h(2)]);
        assert_eq!(plan.bytes_after, 80);
    }

    #[test]
    fn a_shared_object_is_counted_once_and_freed_with_its_last_entry() {
        let entries = [
            entry(1, 10, &[(9, 100), (1, 10)]),
            entry(2, 20, &[(9, 100), (2, 10)]),
            entry(3, 30, &[(3, 10)]),
        ];
        assert_eq!(plan(&entries, &HashSet::new(), 1000).bytes_before, 130);
        let plan = plan(&entries, &HashSet::new(), 15);
        assert_eq!(plan.evict, [entries[0].id, entries[1].id]);
        assert_eq!(set(&plan.freed), set(&[h(1), h(2), h(9)]));
        assert_eq!(plan.bytes_after, 10);
    }

    #[test]
    fn protected_and_most_recent_entries_are_never_evicted() {
        let mut entries = [
            entry(1, 10, &[(1, 100)]),
            entry(2, 20, &[(2, 100)]),
            entry(3, 30, &[(3, 100)]),
        ];
        entries[0].protected = true;
        let plan = plan(&entries, &HashSet::new(), 0);
        // Entry 1 is under way (and does not count), entry 3 the newest:
        // only entry 2 goes.
        assert_eq!(plan.evict, [entries[1].id]);
        assert_eq!((plan.bytes_before, plan.bytes_after), (200, 100));
        let alone = [entry(1, 10, &[(1, 100)])];
        assert!(super::plan(&alone, &HashSet::new(), 0).evict.is_empty());
        assert_eq!(super::plan(&[], &HashSet::new(), 0), Plan::default());
    }

    #[test]
    fn ties_in_recency_go_by_job_id() {
        let entries = [
            entry(2, 10, &[(2, 10)]),
            entry(1, 10, &[(1, 10)]),
            entry(3, 10, &[(3, 10)]),
        ];
        let plan = plan(&entries, &HashSet::new(), 10);
        let mut ids = [entries[0].id, entries[1].id, entries[2].id];
        ids.sort();
        assert_eq!(plan.evict, ids[..2]);
    }
}
