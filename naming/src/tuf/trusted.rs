//! Port of python-tuf's `TrustedMetadataSet`: the verified metadata of one
//! client session and the checks of the TUF client workflow.
//!
//! Metadata must be loaded in order root → timestamp → snapshot → targets →
//! delegated targets. Timestamp and snapshot may be loaded as
//! *intermediate* metadata (expired, or a snapshot whose version does not
//! match the timestamp): they then only serve as rollback references for a
//! newer version, and the update call still returns an error. Time is
//! passed in (`now`, unix seconds) so callers control it.

use std::collections::BTreeMap;

use super::error::{Result, TufError};
use super::metadata::{Delegator, Metadata, Root, Signed, Snapshot, Targets, Timestamp};

/// A verified document: its decoded form and the exact bytes it came from.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// The decoded document (signatures included).
    pub metadata: Metadata<T>,
    /// The bytes as received, to persist verbatim.
    pub raw: Vec<u8>,
}

impl<T> Verified<T> {
    /// The signed content.
    pub fn signed(&self) -> &T {
        &self.metadata.signed
    }
}

/// A delegated (or top-level) targets role and who verified it.
#[derive(Debug, Clone)]
pub struct VerifiedTargets {
    /// The verified document.
    pub verified: Verified<Targets>,
    /// Name of the delegator whose keys verified it (`root` for `targets`).
    pub delegator: String,
}

/// The trusted metadata of one session.
#[derive(Debug, Clone)]
pub struct TrustedMetadataSet {
    now: u64,
    root: Verified<Root>,
    timestamp: Option<Verified<Timestamp>>,
    snapshot: Option<Verified<Snapshot>>,
    targets: BTreeMap<String, VerifiedTargets>,
}

fn load<T: Signed>(data: &[u8]) -> Result<Metadata<T>> {
    Metadata::<T>::from_bytes(data)
}

impl TrustedMetadataSet {
    /// Start from trusted root bytes, verified only by themselves (expiry is
    /// checked later, for the final root).
    pub fn new(root_data: &[u8], now: u64) -> Result<Self> {
        let md = load::<Root>(root_data)?;
        md.signed.verify_delegate("root", &md)?;
        Ok(TrustedMetadataSet {
            now,
            root: Verified {
                metadata: md,
                raw: root_data.to_vec(),
            },
            timestamp: None,
            snapshot: None,
            targets: BTreeMap::new(),
        })
    }

    /// The reference time, unix seconds.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The trusted root.
    pub fn root(&self) -> &Verified<Root> {
        &self.root
    }

    /// The trusted (possibly intermediate) timestamp.
    pub fn timestamp(&self) -> Option<&Verified<Timestamp>> {
        self.timestamp.as_ref()
    }

    /// The trusted (possibly intermediate) snapshot.
    pub fn snapshot(&self) -> Option<&Verified<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// A trusted targets role (`targets` or a delegated role).
    pub fn targets(&self, role: &str) -> Option<&VerifiedTargets> {
        self.targets.get(role)
    }

    /// Verify and load the next root (version must be trusted + 1, signed by
    /// a threshold of both the trusted and the new root). An expired root is
    /// accepted here: expiry applies to the final root only.
    pub fn update_root(&mut self, data: &[u8]) -> Result<&Root> {
        if self.timestamp.is_some() {
            return Err(TufError::Order("cannot update root after timestamp"));
        }
        let md = load::<Root>(data)?;
        let payload = md.signed_bytes()?;
        self.root
            .signed()
            .verify_delegate_bytes("root", &payload, &md.signatures)?;
        let expected = self.root.signed().version + 1;
        if md.signed.version != expected {
            return Err(TufError::BadVersion {
                role: "root".into(),
                expected: expected.to_string(),
                got: md.signed.version,
            });
        }
        md.signed
            .verify_delegate_bytes("root", &payload, &md.signatures)?;
        self.root = Verified {
            metadata: md,
            raw: data.to_vec(),
        };
        Ok(self.root.signed())
    }

    /// Verify and load a timestamp. An expired timestamp is still loaded (to
    /// serve as rollback reference) but an error is returned. A timestamp
    /// with the same version as the trusted one is not loaded and
    /// [`TufError::EqualVersion`] is returned.
    pub fn update_timestamp(&mut self, data: &[u8]) -> Result<&Timestamp> {
        if self.snapshot.is_some() {
            return Err(TufError::Order("cannot update timestamp after snapshot"));
        }
        let root = self.root.signed();
        root.check_not_expired("root", self.now)?;
        let md = load::<Timestamp>(data)?;
        root.verify_delegate("timestamp", &md)?;
        if let Some(trusted) = &self.timestamp {
            let old = trusted.signed();
            if md.signed.version < old.version {
                return Err(TufError::BadVersion {
                    role: "timestamp".into(),
                    expected: format!(">= {}", old.version),
                    got: md.signed.version,
                });
            }
            if md.signed.version == old.version {
                return Err(TufError::EqualVersion {
                    role: "timestamp".into(),
                    version: old.version,
                });
            }
            if md.signed.snapshot_meta.version < old.snapshot_meta.version {
                return Err(TufError::BadVersion {
                    role: "snapshot (in timestamp meta)".into(),
                    expected: format!(">= {}", old.snapshot_meta.version),
                    got: md.signed.snapshot_meta.version,
                });
            }
        }
        self.timestamp = Some(Verified {
            metadata: md,
            raw: data.to_vec(),
        });
        self.check_final_timestamp()?;
        self.timestamp_signed()
    }

    fn timestamp_signed(&self) -> Result<&Timestamp> {
        self.timestamp
            .as_ref()
            .map(Verified::signed)
            .ok_or(TufError::Order("timestamp is not loaded"))
    }

    fn snapshot_signed(&self) -> Result<&Snapshot> {
        self.snapshot
            .as_ref()
            .map(Verified::signed)
            .ok_or(TufError::Order("snapshot is not loaded"))
    }

    fn check_final_timestamp(&self) -> Result<()> {
        let ts = self.timestamp_signed()?;
        ts.check_not_expired("timestamp", self.now)?;
        Ok(())
    }

    /// Verify and load a snapshot. `trusted` data (a copy verified in an
    /// earlier session) skips the length/hash check against timestamp meta.
    /// An expired snapshot or one whose version does not match timestamp
    /// meta is loaded as intermediate and an error is returned.
    pub fn update_snapshot(&mut self, data: &[u8], trusted: bool) -> Result<&Snapshot> {
        if self.timestamp.is_none() {
            return Err(TufError::Order("cannot update snapshot before timestamp"));
        }
        if self.targets.contains_key("targets") {
            return Err(TufError::Order("cannot update snapshot after targets"));
        }
        self.check_final_timestamp()?;
        let snapshot_meta = &self.timestamp_signed()?.snapshot_meta;
        if !trusted {
            snapshot_meta.verify_length_and_hashes("snapshot.json", data)?;
        }
        let md = load::<Snapshot>(data)?;
        self.root.signed().verify_delegate("snapshot", &md)?;
        if let Some(old) = &self.snapshot {
            for (name, info) in &old.signed().meta {
                let Some(new) = md.signed.meta.get(name) else {
                    return Err(TufError::SnapshotMeta {
                        reason: format!("new snapshot is missing info for '{name}'"),
                    });
                };
                if new.version < info.version {
                    return Err(TufError::BadVersion {
                        role: format!("{name} (in snapshot meta)"),
                        expected: format!(">= {}", info.version),
                        got: new.version,
                    });
                }
            }
        }
        self.snapshot = Some(Verified {
            metadata: md,
            raw: data.to_vec(),
        });
        self.check_final_snapshot()?;
        self.snapshot_signed()
    }

    fn check_final_snapshot(&self) -> Result<()> {
        let snap = self.snapshot_signed()?;
        snap.check_not_expired("snapshot", self.now)?;
        let expected = self.timestamp_signed()?.snapshot_meta.version;
        if snap.version != expected {
            return Err(TufError::BadVersion {
                role: "snapshot".into(),
                expected: expected.to_string(),
                got: snap.version,
            });
        }
        Ok(())
    }

    /// Verify and load the top-level targets.
    pub fn update_targets(&mut self, data: &[u8]) -> Result<&Targets> {
        self.update_delegated_targets(data, "targets", "root")
    }

    /// Verify `md` as `role_name` against the trusted `delegator_name`
    /// (`root` or a loaded targets role).
    pub fn verify_with_delegator(
        &self,
        md: &Metadata<Targets>,
        role_name: &str,
        delegator_name: &str,
    ) -> Result<()> {
        if delegator_name == "root" {
            self.root.signed().verify_delegate(role_name, md)?;
        } else {
            let delegator = self
                .targets
                .get(delegator_name)
                .ok_or(TufError::Order("cannot load targets before its delegator"))?;
            delegator
                .verified
                .signed()
                .as_delegator(delegator_name)
                .verify_delegate(role_name, md)?;
        }
        Ok(())
    }

    /// Verify and load targets metadata for `role_name`, delegated by the
    /// trusted `delegator_name` (`root` for top-level targets).
    pub fn update_delegated_targets(
        &mut self,
        data: &[u8],
        role_name: &str,
        delegator_name: &str,
    ) -> Result<&Targets> {
        if self.snapshot.is_none() {
            return Err(TufError::Order("cannot load targets before snapshot"));
        }
        self.check_final_snapshot()?;
        if delegator_name != "root" && !self.targets.contains_key(delegator_name) {
            return Err(TufError::Order("cannot load targets before its delegator"));
        }
        let meta_name = format!("{role_name}.json");
        let meta = self
            .snapshot_signed()?
            .meta
            .get(&meta_name)
            .ok_or_else(|| TufError::SnapshotMeta {
                reason: format!("snapshot does not contain information for '{role_name}'"),
            })?
            .clone();
        meta.verify_length_and_hashes(&meta_name, data)?;
        let md = load::<Targets>(data)?;
        self.verify_with_delegator(&md, role_name, delegator_name)?;
        if md.signed.version != meta.version {
            return Err(TufError::BadVersion {
                role: role_name.into(),
                expected: meta.version.to_string(),
                got: md.signed.version,
            });
        }
        md.signed.check_not_expired(role_name, self.now)?;
        self.targets.insert(
            role_name.to_string(),
            VerifiedTargets {
                verified: Verified {
                    metadata: md,
                    raw: data.to_vec(),
                },
                delegator: delegator_name.to_string(),
            },
        );
        self.targets_signed(role_name)
    }

    fn targets_signed(&self, role: &str) -> Result<&Targets> {
        self.targets
            .get(role)
            .map(|t| t.verified.signed())
            .ok_or(TufError::Order("targets role is not loaded"))
    }

    /// Re-verify an already loaded `role_name` against `delegator_name`
    /// (when a lookup reaches the role through another delegator than the
    /// one that first verified it, that delegator's keys must sign it too).
    pub fn verify_loaded_targets(&self, role_name: &str, delegator_name: &str) -> Result<&Targets> {
        let loaded = self
            .targets
            .get(role_name)
            .ok_or(TufError::Order("targets role is not loaded"))?;
        if loaded.delegator != delegator_name {
            self.verify_with_delegator(&loaded.verified.metadata, role_name, delegator_name)?;
        }
        Ok(loaded.verified.signed())
    }
}
