//! Checking the store: every object re-hashed, every pin's closure present.

use std::{collections::HashMap, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::{
    CasError, Hash, Progress, Result, Store,
    reach::{Reach, Reached, Root},
    store::Stored,
};

/// What is wrong with one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damage {
    /// The object.
    #[serde(with = "crate::hash::serde_hex")]
    pub hash: Hash,
    /// What was found.
    pub problem: String,
    /// What reaches the object: `pin "name"/dir/file`, a node object, a
    /// name; empty when nothing does (gc would remove it).
    #[serde(default)]
    pub reached_by: Vec<String>,
}

/// The result of a store check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsckReport {
    /// Objects stored completely and checked.
    pub objects: u64,
    /// Bytes re-hashed.
    pub bytes: u64,
    /// Objects only partly present (interrupted transfers; not damage).
    pub partial: u64,
    /// Objects whose bytes do not match their hash, or that cannot be read.
    pub damaged: Vec<Damage>,
    /// Objects a pin needs that are not stored, or trees that do not decode.
    pub missing: Vec<Damage>,
    /// With `--repair`: objects fetched again from a peer.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::gc::hashes_hex"
    )]
    pub repaired: Vec<Hash>,
    /// With `--repair`: objects that could not be repaired, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unrepaired: Vec<Damage>,
}

impl FsckReport {
    /// True when nothing is damaged or missing.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty() && self.missing.is_empty()
    }

    /// Every damaged or missing object, each once.
    pub fn broken(&self) -> Vec<Hash> {
        let mut out: Vec<Hash> = Vec::new();
        for d in self.damaged.iter().chain(&self.missing) {
            if !out.contains(&d.hash) {
                out.push(d.hash);
            }
        }
        out
    }
}

impl Store {
    /// Re-verifies every stored object against its hash and checks that
    /// everything pinned is present and well formed. `extra` are roots other
    /// parts of the node keep besides the pins.
    pub async fn fsck(&self, progress: Arc<dyn Progress>, extra: &[Root]) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        let reached = self.walk_pins(extra).await?;
        let mut reached_by: HashMap<Hash, Vec<String>> = HashMap::new();
        for r in &reached {
            reached_by.entry(r.hash).or_default().push(r.path.clone());
        }
        let mut complete = Vec::new();
        for (hash, stored) in self.inventory().await? {
            match stored {
                Stored::Complete(size) => complete.push((hash, size)),
                Stored::Partial(_) => report.partial += 1,
            }
        }
        progress.set_total(complete.iter().map(|(_, size)| size).sum());
        for (hash, size) in complete {
            report.objects += 1;
            report.bytes += size;
            if let Err(e) = self.rehash(hash, progress.as_ref()).await {
                let problem = match e {
                    CasError::Damaged { problem, .. } => problem,
                    other => other.to_string(),
                };
                report.damaged.push(Damage {
                    hash,
                    problem,
                    reached_by: reached_by.get(&hash).cloned().unwrap_or_default(),
                });
            }
        }
        check_reached(&mut report, reached, &reached_by);
        Ok(report)
    }

    /// Reads the whole object through the verified reader.
    async fn rehash(&self, hash: Hash, progress: &dyn Progress) -> Result<()> {
        let mut read = self.read_verified(hash).await?;
        while let Some((_, piece)) = read.next().await? {
            progress.advance(piece.len() as u64);
        }
        Ok(())
    }
}

/// Adds what the walk found missing or undecodable (damage is found by
/// re-hashing every object).
fn check_reached(
    report: &mut FsckReport,
    reached: Vec<Reached>,
    reached_by: &HashMap<Hash, Vec<String>>,
) {
    for r in reached {
        let problem = match r.reach {
            Reach::Present | Reach::Damaged { .. } => continue,
            Reach::Missing if !r.required => continue,
            Reach::Missing => format!("missing, needed by {}", r.path),
            Reach::BadTree(e) => format!("{}: {e}", r.path),
        };
        report.missing.push(Damage {
            hash: r.hash,
            problem,
            reached_by: reached_by.get(&r.hash).cloned().unwrap_or_default(),
        });
    }
}
