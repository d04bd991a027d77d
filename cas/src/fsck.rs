//! Checking the store: every object re-hashed, every pin's closure present.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::{Hash, Progress, Result, Store, reach::Reach, store::Stored};

/// Read size while re-hashing.
const CHUNK: usize = 1024 * 1024;

/// What is wrong with one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damage {
    /// The object.
    #[serde(with = "crate::hash::serde_hex")]
    pub hash: Hash,
    /// What was found.
    pub problem: String,
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
}

impl FsckReport {
    /// True when nothing is damaged or missing.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty() && self.missing.is_empty()
    }
}

impl Store {
    /// Re-verifies every stored object against its hash and checks that
    /// everything pinned is present and well formed.
    /// `extra` are roots other parts of the node keep besides the pins.
    pub async fn fsck(&self, progress: Arc<dyn Progress>, extra: &[Hash]) -> Result<FsckReport> {
        let mut report = FsckReport::default();
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
            match self.rehash(hash, progress.as_ref()).await {
                Ok((actual, len)) if actual == hash && len == size => {}
                Ok((actual, len)) => report.damaged.push(Damage {
                    hash,
                    problem: format!("content hashes to {actual} ({len} bytes, expected {size})"),
                }),
                Err(e) => report.damaged.push(Damage {
                    hash,
                    problem: format!("unreadable: {e}"),
                }),
            }
        }
        self.check_pins(&mut report, extra).await?;
        Ok(report)
    }

    async fn rehash(&self, hash: Hash, progress: &dyn Progress) -> std::io::Result<(Hash, u64)> {
        let mut reader = self.blobs.blobs().reader(hash);
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; CHUNK];
        let mut len = 0u64;
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
            progress.advance(n as u64);
        }
        Ok((Hash::from_bytes(*hasher.finalize().as_bytes()), len))
    }

    async fn check_pins(&self, report: &mut FsckReport, extra: &[Hash]) -> Result<()> {
        for reached in self.walk_pins(extra).await? {
            let problem = match reached.reach {
                Reach::Present => continue,
                Reach::Missing => format!("missing, needed by {}", reached.path),
                Reach::BadTree(e) => format!("{}: {e}", reached.path),
            };
            report.missing.push(Damage {
                hash: reached.hash,
                problem,
            });
        }
        Ok(())
    }
}
