//! Two validly signed documents for one role and version: told apart as a
//! fork (signed by two different authorized keys of the zone, as two
//! devices publishing apart make) or an equivocation (one key signed both),
//! and kept either way in the evidence table (`naming.evidence.v1`).

use serde::{Deserialize, Serialize};

use crate::sign::key_label;
use crate::state::{self, Db, EQUIVOCATION, EVIDENCE, Evidence, FORK, VERSIONS};
use crate::tuf::{
    Delegator, Metadata, Root, Signed, Snapshot, Targets, Timestamp, metadata::peek_version,
};
use crate::{NamingError, bins};

use super::{Zones, clocks, parse};

/// A fork between two authorized keys of a zone that was merged: reported
/// apart from equivocations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedFork {
    /// The role.
    pub role: String,
    /// Its version both documents carry.
    pub version: u64,
    /// Who signed the document trusted here (SSH fingerprints).
    pub trusted_by: Vec<String>,
    /// Who signed the other one.
    pub other_by: Vec<String>,
}

/// The key ids (and labels) whose valid signatures `bytes`, a document of
/// `role`, carries under the zone's current root and top-level targets.
fn valid_signers(db: &Db, zone: &str, role: &str, bytes: &[u8]) -> Vec<(String, String)> {
    let Some(root) = super::ZoneLocal::current(db, zone, "root")
        .ok()
        .flatten()
        .and_then(|b| Metadata::<Root>::from_bytes(&b).ok())
    else {
        return Vec::new();
    };
    let label = |ids: Vec<String>, keys: &dyn Fn(&str) -> Option<crate::tuf::Key>| {
        ids.into_iter()
            .map(|id| {
                let l = key_label(keys(&id).as_ref(), &id);
                (id, l)
            })
            .collect::<Vec<_>>()
    };
    let by_root = |ids: Option<Vec<String>>| {
        label(ids.unwrap_or_default(), &|id| {
            root.signed.keys.get(id).cloned()
        })
    };
    fn ids<T: Signed>(root: &Root, role: &str, bytes: &[u8]) -> Option<Vec<String>> {
        let md = Metadata::<T>::from_bytes(bytes).ok()?;
        root.verify_delegate(role, &md).ok()
    }
    match role {
        "root" => by_root(ids::<Root>(&root.signed, role, bytes)),
        "timestamp" => by_root(ids::<Timestamp>(&root.signed, role, bytes)),
        "snapshot" => by_root(ids::<Snapshot>(&root.signed, role, bytes)),
        "targets" => by_root(ids::<Targets>(&root.signed, role, bytes)),
        _ => {
            let Some(top) = super::ZoneLocal::current(db, zone, "targets")
                .ok()
                .flatten()
                .and_then(|b| Metadata::<Targets>::from_bytes(&b).ok())
            else {
                return Vec::new();
            };
            let delegator = top.signed.as_delegator("targets");
            let found = Metadata::<Targets>::from_bytes(bytes)
                .ok()
                .and_then(|md| delegator.verify_delegate(role, &md).ok());
            label(found.unwrap_or_default(), &|id| delegator.key(id).cloned())
        }
    }
}

/// The evidence row of two documents for `role` `version`, told apart:
/// a fork when no key signed both, else an equivocation.
#[allow(clippy::too_many_arguments)]
pub(crate) fn classify(
    db: &Db,
    zone: &str,
    role: &str,
    version: u64,
    trusted: &[u8],
    other: &[u8],
    source: &str,
    now: u64,
) -> (String, Evidence) {
    let a = valid_signers(db, zone, role, trusted);
    let b = valid_signers(db, zone, role, other);
    let shared = a.iter().any(|(id, _)| b.iter().any(|(j, _)| j == id));
    let fork = !a.is_empty() && !b.is_empty() && !shared;
    let mut key = state::version_key(zone, role, version);
    if fork {
        key = state::key(&[&key, &blake3::hash(other).to_hex()[..16]]);
    }
    let evidence = Evidence {
        at: now,
        trusted: trusted.to_vec(),
        other: other.to_vec(),
        source: source.to_owned(),
        kind: if fork { FORK } else { EQUIVOCATION }.to_owned(),
        trusted_by: if fork {
            a.into_iter().map(|x| x.1).collect()
        } else {
            Vec::new()
        },
        other_by: if fork {
            b.into_iter().map(|x| x.1).collect()
        } else {
            Vec::new()
        },
    };
    (key, evidence)
}

/// Whether two metadata files differ in their signed content.
fn signed_differs(a: &[u8], b: &[u8]) -> bool {
    let value = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|v| v.get("signed").cloned())
    };
    value(a) != value(b)
}

impl Zones {
    /// Keeps `other`, a validly signed document of `role` from `source`,
    /// when this node accepted a different one for the same version: as a
    /// fork or an equivocation ([`classify`]). Whether it was kept.
    pub(super) fn keep_if_fork(
        &self,
        zone: &str,
        role: &str,
        other: &[u8],
        source: &str,
        now: u64,
    ) -> Result<bool, NamingError> {
        let Some(version) = peek_version(other) else {
            return Ok(false);
        };
        let row = state::version_key(zone, role, version);
        let Some(trusted) = state::get::<state::Accepted>(&self.db, VERSIONS, &row)? else {
            return Ok(false);
        };
        if !signed_differs(&trusted.bytes, other)
            || valid_signers(&self.db, zone, role, other).is_empty()
        {
            return Ok(false);
        }
        let (key, evidence) = classify(
            &self.db,
            zone,
            role,
            version,
            &trusted.bytes,
            other,
            source,
            now,
        );
        state::write(&self.db, |tx| state::put(tx, EVIDENCE, &key, &evidence))?;
        Ok(true)
    }

    /// The forks between authorized keys kept for `zone`.
    pub fn merged_forks(&self, zone: &str) -> Result<Vec<MergedFork>, NamingError> {
        Ok(self
            .evidence(zone)?
            .into_iter()
            .filter(|(_, _, e)| e.kind == FORK)
            .map(|(role, version, e)| MergedFork {
                role,
                version,
                trusted_by: e.trusted_by,
                other_by: e.other_by,
            })
            .collect())
    }

    /// Every evidence row of `zone`: role, version, evidence.
    pub(super) fn evidence(&self, zone: &str) -> Result<Vec<(String, u64, Evidence)>, NamingError> {
        Ok(
            state::scan::<Evidence>(&self.db, EVIDENCE, &state::key(&[zone, ""]))?
                .into_iter()
                .filter_map(|(k, e)| {
                    let mut parts = k.split('\0');
                    let role = parts.next()?.to_owned();
                    let version = parts.next()?.parse().ok()?;
                    Some((role, version, e))
                })
                .collect(),
        )
    }

    /// The conflicts recorded in the current entries (and tombstones) of
    /// `zone`: names two devices changed apart, with the winner every node
    /// took and the loser, until a publish of the name drops them.
    pub fn conflicts(&self, zone: &str) -> Result<Vec<clocks::Conflict>, NamingError> {
        self.record(zone)?;
        let mut out = Vec::new();
        let currents = state::scan_raw(&self.db, state::CURRENT, &state::key(&[zone, ""]))?;
        for (role, bytes) in currents {
            if role != "targets" && !bins::is_bin(&role) {
                continue;
            }
            if let Ok(doc) = parse::<Targets>(zone, &bytes) {
                out.extend(clocks::conflicts_in(zone, &doc.signed));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// What a zone's current targets say of one name's history: its version
/// vector, the device that made the current entry, and the loser of a
/// conflict recorded on it (a synced folder merges by these).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameClock {
    /// The entry's (or tombstone's) version vector.
    pub clock: clocks::Clock,
    /// The device id of the entry's publisher (empty when unknown).
    pub device: String,
    /// The hash a merge put aside for this entry, if it recorded a conflict.
    pub loser: Option<String>,
}

impl Zones {
    /// [`NameClock`] of `name` in `zone`, if its current targets (or one of
    /// their bins) hold the name or a tombstone of it.
    pub fn name_clock(&self, zone: &str, name: &str) -> Result<Option<NameClock>, NamingError> {
        self.record(zone)?;
        let currents = state::scan_raw(&self.db, state::CURRENT, &state::key(&[zone, ""]))?;
        for (role, bytes) in currents {
            if role != "targets" && !bins::is_bin(&role) {
                continue;
            }
            let Ok(doc) = parse::<Targets>(zone, &bytes) else {
                continue;
            };
            let doc = &doc.signed;
            let live = doc.targets.get(name);
            if live.is_none() && !clocks::tombstones(doc).contains_key(name) {
                continue;
            }
            let conflict = clocks::conflicts_in(zone, doc)
                .into_iter()
                .find(|c| c.name == name);
            let device = live
                .and_then(|f| f.custom())
                .and_then(|c| c.get("device"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            return Ok(Some(NameClock {
                clock: clocks::clock_of(doc, name),
                device,
                loser: conflict.and_then(|c| c.loser),
            }));
        }
        Ok(None)
    }
}
