//! Resolving names from the verified metadata on this node (no network), and
//! the hashes a zone's names point at.

use std::collections::BTreeMap;

use clive_trust::clock::format_time;
use serde::{Deserialize, Serialize};

use crate::source::{content_address, kind_of};
use crate::state::{self, CURRENT, NAMES, NameEntry, OVERRIDES, Override, Verified};
use crate::tuf::{
    self, Targets,
    updater::{Config, Updater},
};
use crate::{NamingError, name};

use super::update::ScratchLocal;
use super::{Zones, parse, tuf_err};

/// What a name resolves to, and how that was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The zone.
    pub zone: String,
    /// The name.
    pub name: String,
    /// The hash to use.
    pub hash: String,
    /// `blob` or `tree`.
    pub kind: String,
    /// Set by a local override on this node, not by the zone's signers.
    pub overridden: bool,
    /// What the zone itself says, when overridden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_hash: Option<String>,
    /// Past its expiry: the last verified value (only with `--offline`).
    pub stale: bool,
    /// When the verified metadata expires (or expired).
    pub expires: u64,
    /// Which role expires first.
    pub expires_role: String,
    /// Versions of root, timestamp, snapshot and targets that verified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
    /// The role whose signed entry it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// That role's version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl Zones {
    /// Every name of the zone's current metadata, with its target entry:
    /// the top-level targets and every delegated role stored here.
    pub fn targets(&self, zone: &str) -> Result<Vec<(String, tuf::TargetFile)>, NamingError> {
        let mut out = BTreeMap::new();
        let currents = state::scan_raw(&self.db, CURRENT, &state::key(&[zone, ""]))?;
        for (role, bytes) in currents {
            if ["root", "timestamp", "snapshot"].contains(&role.as_str()) {
                continue;
            }
            let doc = parse::<Targets>(zone, &bytes)?;
            for (name, file) in doc.signed.targets {
                out.entry(name).or_insert(file);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// What `zone/name` resolves to, from verified metadata on this node;
    /// no network. Past expiry it fails unless `offline`, which answers with
    /// the last verified value marked stale.
    pub fn resolve(
        &self,
        zone: &str,
        name: &str,
        offline: bool,
        now: u64,
    ) -> Result<Resolution, NamingError> {
        name::check_path(name)?;
        let record = self.record(zone)?;
        let row = state::key(&[zone, name]);
        let local: Option<Override> = state::get(&self.db, OVERRIDES, &row)?;
        let verified = record.verified.clone();
        let (expires, expires_role) = verified.as_ref().map_or((0, "timestamp".to_owned()), |v| {
            (v.expires, v.expires_role.clone())
        });
        let stale = verified.is_none() || now >= expires;
        let signed: Option<NameEntry> = if verified.is_some() {
            match state::get(&self.db, NAMES, &row)? {
                Some(entry) => Some(entry),
                None => match self.resolve_delegated(zone, name, now, stale)? {
                    Some(entry) => Some(entry),
                    // A target made by another TUF tool: its download.
                    None => self.resolve_mirrored(zone, name)?,
                },
            }
        } else {
            None
        };
        if let Some(o) = local {
            return Ok(Resolution {
                zone: zone.to_owned(),
                name: name.to_owned(),
                hash: o.hash,
                kind: o.kind,
                overridden: true,
                signed_hash: signed.map(|e| e.hash),
                stale: false,
                expires,
                expires_role,
                verified,
                role: None,
                version: None,
            });
        }
        let Some(entry) = signed else {
            if verified.is_none() {
                return Err(NamingError::Invalid(format!(
                    "zone {zone} has no verified metadata yet: `clive-node name refresh {zone}` \
                     fetches it from its peers or mirror"
                )));
            }
            return Err(NamingError::UnknownName {
                zone: zone.to_owned(),
                name: name.to_owned(),
            });
        };
        if stale && !offline {
            return Err(NamingError::Expired {
                zone: zone.to_owned(),
                role: expires_role,
                expired: format_time(expires),
            });
        }
        Ok(Resolution {
            zone: zone.to_owned(),
            name: name.to_owned(),
            hash: entry.hash,
            kind: entry.kind,
            overridden: false,
            signed_hash: None,
            stale,
            expires,
            expires_role,
            verified,
            role: Some(entry.role),
            version: (entry.version > 0).then_some(entry.version),
        })
    }

    /// Looks `name` up through the zone's delegations, running the client
    /// workflow over the stored files (no network).
    fn resolve_delegated(
        &self,
        zone: &str,
        name: &str,
        now: u64,
        stale: bool,
    ) -> Result<Option<NameEntry>, NamingError> {
        let targets = self.current::<Targets>(zone, "targets")?;
        if targets.signed.delegations.is_none() {
            return Ok(None);
        }
        let files = self.files(zone)?;
        // Evaluate just before the earliest expiry when stale, so an
        // offline answer is still checked for everything but the clock.
        let at = if stale {
            self.record(zone)?
                .verified
                .map_or(now, |v| v.expires.saturating_sub(1))
        } else {
            now
        };
        let scratch = ScratchLocal::default();
        let files_root = files.clone();
        let mut updater = Updater::new(files, scratch.seeded(&files_root), Config::default(), at)
            .map_err(tuf_err(zone))?;
        let Some(file) = updater.get_targetinfo(name).map_err(tuf_err(zone))? else {
            return Ok(None);
        };
        Ok(content_address(&file).map(|hash| NameEntry {
            hash,
            kind: kind_of(&file).to_owned(),
            length: file.length,
            version: 0,
            role: "delegated".to_owned(),
        }))
    }

    /// Hashes every zone's current names point at (gc keeps what is here).
    pub fn referenced(&self) -> Result<Vec<String>, NamingError> {
        let mut out: Vec<String> = state::scan::<NameEntry>(&self.db, NAMES, "")?
            .into_iter()
            .map(|(_, e)| e.hash)
            .collect();
        out.extend(
            state::scan::<Override>(&self.db, OVERRIDES, "")?
                .into_iter()
                .map(|(_, o)| o.hash),
        );
        out.extend(self.mirrored_hashes()?);
        Ok(out)
    }
}
