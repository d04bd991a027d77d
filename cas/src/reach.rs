//! Walking everything the pins reach: what gc keeps and fsck checks.

use std::collections::HashSet;

use crate::{CasError, Hash, ObjectKind, Result, Store, tree::EntryKind};

/// What the walk found at one object.
pub(crate) enum Reach {
    /// Stored (and, for a tree, decoded).
    Present,
    /// Not stored.
    Missing,
    /// A tree that does not decode.
    BadTree(CasError),
}

/// One object reached, with the path that reached it (`pin "name"/dir/file`).
pub(crate) struct Reached {
    pub hash: Hash,
    pub path: String,
    pub reach: Reach,
}

impl Store {
    /// Every object reachable from the pins and from `extra` roots (objects
    /// other parts of the node keep, such as certificates), each once.
    pub(crate) async fn walk_pins(&self, extra: &[Hash]) -> Result<Vec<Reached>> {
        let mut stack: Vec<(Hash, Option<EntryKind>, String)> = self
            .pins()
            .await?
            .into_iter()
            .map(|p| (p.hash, None, format!("pin {:?}", p.name)))
            .collect();
        stack.extend(extra.iter().map(|h| (*h, None, format!("node object {h}"))));
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        while let Some((hash, kind, path)) = stack.pop() {
            if !seen.insert(hash) {
                continue;
            }
            let reach = if !self.has(hash).await? {
                Reach::Missing
            } else if self.is_tree(hash, kind).await? {
                match self.read_tree(hash).await {
                    Ok(tree) => {
                        stack.extend(
                            tree.entries()
                                .iter()
                                .map(|e| (e.hash, Some(e.kind), format!("{path}/{}", e.name))),
                        );
                        Reach::Present
                    }
                    Err(e) => Reach::BadTree(e),
                }
            } else {
                Reach::Present
            };
            out.push(Reached { hash, path, reach });
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
