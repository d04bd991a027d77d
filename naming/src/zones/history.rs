//! A name's history: its signed changes re-verified from the stored
//! metadata, local overrides and equivocations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sign::key_label;
use crate::source::content_address;
use crate::state::{self, Accepted, Evidence, LOG, LogEntry, VERSIONS};
use crate::tuf::{Delegator, Metadata, Root, Targets};
use crate::{NamingError, name};

use super::{Zones, parse};

/// One change in a name's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `published`, `changed`, `unpublished`, `override`, `override cleared`,
    /// `equivocation`, `fork` (the value a device's document gave the
    /// name when it lost a merge, kept, validly signed) or `conflict` (the
    /// value a merge's winner records it beat).
    pub event: String,
    /// The role and its version (signed changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The version of that role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// When (the publisher's time for signed changes, this node's for local ones).
    pub at: u64,
    /// The hash it maps to afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Who signed it (SSH fingerprints); empty for local events.
    pub signers: Vec<String>,
    /// Whether its signatures verified again from the stored metadata.
    pub verified: bool,
}

impl Zones {
    /// Every change of `zone/name`: signed changes re-verified from the
    /// stored metadata, local overrides, and equivocations in the zone.
    pub fn history(&self, zone: &str, name: &str) -> Result<Vec<Change>, NamingError> {
        name::check_path(name)?;
        self.record(zone)?;
        let roots: BTreeMap<u64, Metadata<Root>> =
            state::scan::<Accepted>(&self.db, VERSIONS, &state::key(&[zone, "root", ""]))?
                .into_iter()
                .filter_map(|(v, a)| Some((v.parse().ok()?, parse::<Root>(zone, &a.bytes).ok()?)))
                .collect();
        // The top-level targets, and the delegated role the name falls under.
        let current = self.current::<Targets>(zone, "targets")?;
        let mut roles = vec!["targets".to_owned()];
        if let Some(d) = current.signed.delegations.as_ref()
            && let Some(delegated) = d.roles.as_ref()
        {
            roles.extend(
                delegated
                    .iter()
                    .filter(|r| r.is_delegated_path(name))
                    .map(|r| r.name.clone()),
            );
        }
        let mut changes = Vec::new();
        for role in &roles {
            self.role_history(zone, name, role, &roots, &current.signed, &mut changes)?;
        }
        let log: Vec<(String, LogEntry)> =
            state::scan(&self.db, LOG, &state::key(&[zone, name, ""]))?;
        for (_, entry) in log {
            changes.push(Change {
                event: entry.event,
                role: None,
                version: None,
                at: entry.at,
                hash: entry.hash,
                signers: Vec::new(),
                verified: false,
            });
        }
        for (role, version, e) in self.evidence(zone)? {
            if e.kind == state::FORK {
                // A device's document that lost a merge: its value of the
                // name, when it differs from the trusted one's.
                if roles.contains(&role)
                    && let Some(change) = fork_change(zone, name, &role, version, &e)
                {
                    changes.push(change);
                }
                continue;
            }
            changes.push(Change {
                event: "equivocation".to_owned(),
                role: Some(role),
                version: Some(version),
                at: e.at,
                hash: None,
                signers: Vec::new(),
                verified: true,
            });
        }
        changes.sort_by_key(|c| c.at);
        Ok(changes)
    }

    /// The changes of `name` in the stored versions of `role`, each
    /// re-verified: top-level targets against the root in force when it was
    /// accepted, a delegated role against the current delegation.
    fn role_history(
        &self,
        zone: &str,
        name: &str,
        role: &str,
        roots: &BTreeMap<u64, Metadata<Root>>,
        parent: &Targets,
        changes: &mut Vec<Change>,
    ) -> Result<(), NamingError> {
        let versions: Vec<(String, Accepted)> =
            state::scan(&self.db, VERSIONS, &state::key(&[zone, role, ""]))?;
        let mut previous: Option<String> = None;
        let mut last_conflict: Option<Value> = None;
        for (version, accepted) in versions {
            let Ok(targets) = parse::<Targets>(zone, &accepted.bytes) else {
                continue;
            };
            let version: u64 = version.parse().unwrap_or(targets.signed.version);
            let checked = if role == "targets" {
                roots
                    .range(..=accepted.root)
                    .next_back()
                    .and_then(|(_, root)| {
                        let ids = root.signed.verify_delegate("targets", &targets).ok()?;
                        Some(
                            ids.iter()
                                .map(|id| key_label(root.signed.keys.get(id), id))
                                .collect(),
                        )
                    })
            } else {
                let delegator = parent.as_delegator("targets");
                delegator.verify_delegate(role, &targets).ok().map(|ids| {
                    ids.iter()
                        .map(|id| key_label(delegator.key(id), id))
                        .collect()
                })
            };
            let (verified, signers) = match checked {
                Some(signers) => (true, signers),
                None => (false, Vec::new()),
            };
            let entry = targets.signed.targets.get(name);
            let hash = entry.and_then(content_address);
            // A merge's loser, recorded in the winner's entry (or
            // tombstone): the value it replaced, kept in history.
            let removed = super::clocks::tombstones(&targets.signed);
            let lost = entry
                .and_then(|e| e.custom())
                .or_else(|| removed.get(name))
                .and_then(|c| c.get("conflict"))
                .cloned();
            if lost.is_some() && lost != last_conflict {
                let c = lost.clone().unwrap_or_default();
                changes.push(Change {
                    event: "conflict".to_owned(),
                    role: Some(role.to_owned()),
                    version: Some(version),
                    at: c
                        .get("published")
                        .and_then(Value::as_str)
                        .and_then(clive_trust::clock::parse_time)
                        .unwrap_or(accepted.at),
                    hash: c.get("blake3").and_then(Value::as_str).map(str::to_owned),
                    signers: signers.clone(),
                    verified,
                });
            }
            last_conflict = lost;
            let event = match (&previous, &hash) {
                (None, Some(_)) => "published",
                (Some(a), Some(b)) if a != b => "changed",
                (Some(_), None) => "unpublished",
                _ => {
                    previous = hash;
                    continue;
                }
            };
            let at = entry
                .and_then(|e| e.custom())
                .and_then(|c| c.get("published"))
                .and_then(Value::as_str)
                .and_then(clive_trust::clock::parse_time)
                .unwrap_or(accepted.at);
            changes.push(Change {
                event: event.to_owned(),
                role: Some(role.to_owned()),
                version: Some(version),
                at,
                hash: hash.clone(),
                signers,
                verified,
            });
            previous = hash;
        }
        Ok(())
    }
}

/// The `fork` change of `name` in a device's document that lost a merge,
/// when that document's value of it differs from the trusted one's.
fn fork_change(zone: &str, name: &str, role: &str, version: u64, e: &Evidence) -> Option<Change> {
    let other = parse::<Targets>(zone, &e.other).ok()?;
    let trusted = parse::<Targets>(zone, &e.trusted).ok()?;
    let entry = other.signed.targets.get(name);
    let hash = entry.and_then(content_address);
    let removed = super::clocks::tombstones(&other.signed);
    if hash == trusted.signed.targets.get(name).and_then(content_address)
        || (hash.is_none() && !removed.contains_key(name))
    {
        return None;
    }
    let at = entry
        .and_then(|f| f.custom())
        .or_else(|| removed.get(name))
        .and_then(|c| c.get("published"))
        .and_then(Value::as_str)
        .and_then(clive_trust::clock::parse_time)
        .unwrap_or(e.at);
    Some(Change {
        event: "fork".to_owned(),
        role: Some(role.to_owned()),
        version: Some(version),
        at,
        hash,
        signers: e.other_by.clone(),
        verified: true,
    })
}
