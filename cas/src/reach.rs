//! Walking everything the pins reach: what gc keeps and fsck checks.
//!
//! The walk never stops at damage: an object that cannot be read is
//! recorded as such and the walk goes on with the rest.

use std::collections::HashSet;

use crate::{CasError, Hash, ObjectKind, Result, Store, tree::EntryKind};

/// A root that something other than a pin keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// The object.
    pub hash: Hash,
    /// What keeps it, as fsck shows it (`node object HASH`).
    pub why: String,
    /// Whether it (and what it reaches) must be stored here; fsck reports
    /// it missing only then. gc keeps it either way.
    pub required: bool,
}

/// What the walk found at one object.
pub(crate) enum Reach {
    /// Stored (and, for a tree, decoded).
    Present,
    /// Not stored.
    Missing,
    /// Stored, but its bytes cannot be read or do not match its hash; when
    /// `maybe_tree`, what lies below it (if anything) is unknown.
    Damaged { cause: CasError, maybe_tree: bool },
    /// A tree that does not decode.
    BadTree(CasError),
}

/// One object reached, with the path that reached it (`pin "name"/dir/file`).
pub(crate) struct Reached {
    pub hash: Hash,
    pub path: String,
    pub reach: Reach,
    /// Reached from a root that must be stored.
    pub required: bool,
}

impl Store {
    /// Every object reachable from the pins and from `extra` roots (objects
    /// other parts of the node keep, each with what keeps it), each once.
    pub(crate) async fn walk_pins(&self, extra: &[Root]) -> Result<Vec<Reached>> {
        let mut stack: Vec<(Hash, Option<EntryKind>, String, bool)> = self
            .pins()
            .await?
            .into_iter()
            .map(|p| (p.hash, None, format!("pin {:?}", p.name), true))
            .collect();
        // Required roots first, so that what they reach counts as required.
        let (required, optional): (Vec<&Root>, Vec<&Root>) = extra.iter().partition(|r| r.required);
        stack.extend(
            required
                .into_iter()
                .chain(optional)
                .map(|r| (r.hash, None, r.why.clone(), r.required)),
        );
        // Depth first, in the order given.
        stack.reverse();
        self.walk(stack).await
    }

    /// Every object stored here that the pins or `extra` reach (what gc
    /// keeps of them), each once.
    pub async fn reachable(&self, extra: &[Root]) -> Result<HashSet<Hash>> {
        Ok(self
            .walk_pins(extra)
            .await?
            .into_iter()
            .filter(|r| matches!(r.reach, Reach::Present))
            .map(|r| r.hash)
            .collect())
    }

    /// Every object stored here that `hash` reaches (itself included), each
    /// once, with its size in bytes.
    pub async fn closure_sizes(&self, hash: Hash) -> Result<Vec<(Hash, u64)>> {
        let reached = self
            .walk(vec![(hash, None, hash.to_string(), false)])
            .await?;
        let mut out = Vec::with_capacity(reached.len());
        for r in reached {
            if matches!(r.reach, Reach::Present) {
                out.push((r.hash, self.size(r.hash).await?));
            }
        }
        Ok(out)
    }

    /// What the object `hash` reaches that is not stored completely here,
    /// each with the path to it from `hash` (`HASH/dir/file`): nothing when
    /// its whole closure is here.
    pub async fn missing_below(&self, hash: Hash) -> Result<Vec<(Hash, String)>> {
        let reached = self
            .walk(vec![(hash, None, hash.to_string(), true)])
            .await?;
        Ok(reached
            .into_iter()
            .filter(|r| !matches!(r.reach, Reach::Present))
            .map(|r| (r.hash, r.path))
            .collect())
    }

    async fn walk(
        &self,
        mut stack: Vec<(Hash, Option<EntryKind>, String, bool)>,
    ) -> Result<Vec<Reached>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        while let Some((hash, kind, path, required)) = stack.pop() {
            if !seen.insert(hash) {
                continue;
            }
            let reach = if !self.has(hash).await? {
                Reach::Missing
            } else {
                match self.is_tree(hash, kind).await {
                    Err(cause) => Reach::Damaged {
                        cause,
                        maybe_tree: kind.is_none_or(|k| k == EntryKind::Tree),
                    },
                    Ok(false) => Reach::Present,
                    Ok(true) => match self.read_tree(hash).await {
                        Ok(tree) => {
                            stack.extend(tree.entries().iter().rev().map(|e| {
                                let path = format!("{path}/{}", e.name);
                                (e.hash, Some(e.kind), path, required)
                            }));
                            Reach::Present
                        }
                        Err(cause @ CasError::Damaged { .. }) => Reach::Damaged {
                            cause,
                            maybe_tree: true,
                        },
                        Err(e) => Reach::BadTree(e),
                    },
                }
            };
            out.push(Reached {
                hash,
                path,
                reach,
                required,
            });
        }
        Ok(out)
    }

    /// Whether to read `hash` as a tree: the entry's kind says so, and a root
    /// (a pin, no entry) is a tree when it looks like one.
    async fn is_tree(&self, hash: Hash, kind: Option<EntryKind>) -> Result<bool> {
        Ok(match kind {
            Some(kind) => kind == EntryKind::Tree,
            None => self.kind(hash).await? == ObjectKind::Tree,
        })
    }
}
