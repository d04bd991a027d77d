//! Listing and showing zones: who publishes in them, their roles' keys,
//! what has verified, and by which network id they are known.

use clive_trust::PublicIdentity;
use serde::{Deserialize, Serialize};

use crate::sign::{key_label, tuf_key};
use crate::state::{self, NAMES, NameEntry, Verified, ZONES, ZoneRecord};
use crate::tuf::{Root, Targets};
use crate::{NamingError, bins};

use super::Zones;

/// A zone, as `name zone ls|show` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneInfo {
    /// Its name here.
    pub zone: String,
    /// Its network id.
    pub id: String,
    /// Whether this node holds the keys to publish in it.
    pub publisher: bool,
    /// The node that published it to us.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Its HTTP mirror.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// Each top-level role: keys (fingerprints) and threshold.
    pub roles: Vec<RoleInfo>,
    /// The current verified versions and expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
    /// How many names its top-level targets holds.
    pub names: u64,
    /// Equivocations seen: (role, version).
    pub equivocations: Vec<(String, u64)>,
    /// Forks between two authorized keys (devices publishing apart), kept
    /// and merged: not equivocations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_forks: Vec<super::MergedFork>,
    /// Names two devices changed apart: the winner and the loser.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<super::Conflict>,
}

/// The keys of one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleInfo {
    /// `root`, `targets`, `snapshot`, `timestamp`, or a delegated role.
    pub role: String,
    /// Its keys, as SSH fingerprints.
    pub keys: Vec<String>,
    /// How many must sign.
    pub threshold: u64,
    /// The paths it is delegated (delegated roles only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl Zones {
    /// Every zone, by name; `me`, when given, is the key `publisher` is
    /// judged by.
    pub fn list(&self, me: Option<&PublicIdentity>) -> Result<Vec<ZoneInfo>, NamingError> {
        let zones: Vec<(String, ZoneRecord)> = state::scan(&self.db, ZONES, "")?;
        zones
            .into_iter()
            .map(|(zone, record)| self.info(&zone, record, me))
            .collect()
    }

    /// One zone.
    pub fn show(
        &self,
        zone: &str,
        signer_key: Option<&PublicIdentity>,
    ) -> Result<ZoneInfo, NamingError> {
        let record = self.record(zone)?;
        self.info(zone, record, signer_key)
    }

    /// Whether `me` holds the targets, snapshot and timestamp keys of
    /// `zone`: whether it publishes there.
    pub fn can_publish(&self, zone: &str, me: &PublicIdentity) -> Result<bool, NamingError> {
        let root = self.current::<Root>(zone, "root")?;
        let id = tuf_key(me).id();
        Ok(["targets", "snapshot", "timestamp"].iter().all(|role| {
            root.signed
                .roles
                .get(*role)
                .is_some_and(|r| r.keyids.contains(&id))
        }))
    }

    /// The zone whose network id is `id`.
    pub fn by_id(&self, id: &str) -> Result<Option<(String, ZoneRecord)>, NamingError> {
        let zones: Vec<(String, ZoneRecord)> = state::scan(&self.db, ZONES, "")?;
        Ok(zones.into_iter().find(|(_, r)| r.id == id))
    }

    fn info(
        &self,
        zone: &str,
        record: ZoneRecord,
        me: Option<&PublicIdentity>,
    ) -> Result<ZoneInfo, NamingError> {
        let mut roles = Vec::new();
        let mut publisher = record.publisher;
        if let Ok(root) = self.current::<Root>(zone, "root") {
            for (role, r) in &root.signed.roles {
                roles.push(RoleInfo {
                    role: role.clone(),
                    keys: r
                        .keyids
                        .iter()
                        .map(|id| key_label(root.signed.keys.get(id), id))
                        .collect(),
                    threshold: r.threshold,
                    paths: Vec::new(),
                });
            }
            if let Some(me) = me {
                let id = tuf_key(me).id();
                publisher = ["targets", "snapshot", "timestamp"].iter().all(|role| {
                    root.signed
                        .roles
                        .get(*role)
                        .is_some_and(|r| r.keyids.contains(&id))
                });
            }
        }
        if let Ok(targets) = self.current::<Targets>(zone, "targets")
            && let Some(roles_d) = targets.signed.delegations.as_ref()
            && let Some(delegated) = roles_d.roles.as_ref()
        {
            let bin_count = delegated.iter().filter(|r| bins::is_bin(&r.name)).count();
            for r in delegated {
                if bins::is_bin(&r.name) && r.name != format!("{}00", bins::PREFIX) {
                    continue;
                }
                let (role, paths) = if bins::is_bin(&r.name) {
                    (
                        format!("{}*", bins::PREFIX),
                        vec![format!("{bin_count} hashed bins")],
                    )
                } else {
                    (r.name.clone(), r.paths.clone().unwrap_or_default())
                };
                roles.push(RoleInfo {
                    role,
                    keys: r
                        .keyids
                        .iter()
                        .map(|id| key_label(roles_d.keys.get(id), id))
                        .collect(),
                    threshold: r.threshold,
                    paths,
                });
            }
        }
        let names =
            state::scan::<NameEntry>(&self.db, NAMES, &state::key(&[zone, ""]))?.len() as u64;
        let equivocations = self
            .evidence(zone)?
            .into_iter()
            .filter(|(_, _, e)| e.kind == state::EQUIVOCATION)
            .map(|(role, version, _)| (role, version))
            .collect();
        let merged_forks = self.merged_forks(zone)?;
        let conflicts = self.conflicts(zone)?;
        Ok(ZoneInfo {
            zone: zone.to_owned(),
            id: record.id,
            publisher,
            origin: record.origin,
            mirror: record.mirror,
            roles,
            verified: record.verified,
            names,
            equivocations,
            merged_forks,
            conflicts,
        })
    }
}
