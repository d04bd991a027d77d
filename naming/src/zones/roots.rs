//! A zone's roots: creating a zone, rotating keys, co-signing a root file and
//! committing it, and what a root says about its zone.

use clive_trust::{PublicIdentity, Signer};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::sign::{check_can_sign, key_label, sign, tuf_key};
use crate::state::{self, ZONES, ZoneRecord};
use crate::tuf::{self, Delegator, Metadata, Root, Targets};
use crate::{NamingError, bins, name};

use super::files::versioned;
use super::{Zones, lifetime, parse, to_bytes, tuf_err};

/// The field of a root naming the zone it belongs to (kept across rotations).
pub const ZONE_FIELD: &str = "x-clive-zone";

/// A root file and its signatures, for co-signers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootStatus {
    /// The root's version.
    pub version: u64,
    /// Valid signatures by its own root keys (fingerprints).
    pub signed_by: Vec<String>,
    /// How many of its root keys must sign.
    pub threshold: u64,
    /// Root keys that have not signed yet.
    pub missing: Vec<String>,
}

/// What creating a zone or rotating keys did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootChange {
    /// The zone.
    pub zone: String,
    /// The root and its signatures.
    pub root: RootStatus,
    /// Whether it is in force (else it awaits co-signers).
    pub committed: bool,
    /// The root file, while it awaits co-signers.
    #[serde(skip)]
    pub file: Option<Vec<u8>>,
}

impl Zones {
    /// Creates a zone whose every role is this node's key, with `extra` root
    /// keys and a root threshold. When this node's signature alone does not
    /// meet the threshold, nothing is stored: the root is returned for
    /// co-signers (`root_sign`), then [`Zones::root_commit`].
    pub fn create(
        &self,
        zone: &str,
        extra: &[PublicIdentity],
        threshold: u32,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<RootChange, NamingError> {
        self.create_devices(zone, extra, threshold, &[], signer, now)
    }

    /// [`Zones::create`] for a zone of several devices: each of `devices`
    /// (besides this node) is a key of root, targets, snapshot and
    /// timestamp, threshold 1, and of every hashed bin, so that each device
    /// publishes into the zone alone, offline. What they publish apart is
    /// merged when they meet ([`Zones::merge_from`]).
    pub fn create_devices(
        &self,
        zone: &str,
        extra: &[PublicIdentity],
        threshold: u32,
        devices: &[PublicIdentity],
        signer: &dyn Signer,
        now: u64,
    ) -> Result<RootChange, NamingError> {
        name::check_zone(zone)?;
        if state::get::<ZoneRecord>(&self.db, ZONES, zone)?.is_some() {
            return Err(NamingError::ZoneExists(zone.to_owned()));
        }
        let me = tuf_key(&signer.public());
        let mut root = Root::new(now + lifetime::ROOT);
        for role in ["root", "targets", "snapshot", "timestamp"] {
            root.add_key(me.clone(), role).map_err(tuf_err(zone))?;
        }
        for key in devices {
            for role in ["root", "targets", "snapshot", "timestamp"] {
                root.add_key(tuf_key(key), role).map_err(tuf_err(zone))?;
            }
        }
        for key in extra {
            root.add_key(tuf_key(key), "root").map_err(tuf_err(zone))?;
        }
        let keys = root.roles.get("root").map_or(1, |r| r.keyids.len());
        if threshold == 0 || threshold as usize > keys {
            return Err(NamingError::Invalid(format!(
                "--threshold {threshold}: the root has {keys} key(s); give 1 to {keys}"
            )));
        }
        if let Some(r) = root.roles.get_mut("root") {
            r.threshold = u64::from(threshold);
        }
        let mut id = [0u8; 16];
        rand::fill(&mut id);
        root.unrecognized.insert(
            ZONE_FIELD.into(),
            json!({ "name": zone, "id": hex::encode(id) }),
        );
        let mut root = Metadata::new(root);
        sign(&mut root, signer)?;
        let status = root_status(&root.signed, &root, &root.signed);
        if status.signed_by.len() as u64 >= status.threshold {
            self.install_first(zone, &to_bytes(zone, &root)?, signer, now)?;
            return Ok(RootChange {
                zone: zone.to_owned(),
                root: status,
                committed: true,
                file: None,
            });
        }
        Ok(RootChange {
            zone: zone.to_owned(),
            root: status,
            committed: false,
            file: Some(to_bytes(zone, &root)?),
        })
    }

    /// Installs a zone's first root, signed by enough of its keys, and signs
    /// empty targets, snapshot and timestamp.
    fn install_first(
        &self,
        zone: &str,
        root_bytes: &[u8],
        signer: &dyn Signer,
        now: u64,
    ) -> Result<(), NamingError> {
        self.transaction(|z| z.install_first_in(zone, root_bytes, signer, now))
    }

    fn install_first_in(
        &self,
        zone: &str,
        root_bytes: &[u8],
        signer: &dyn Signer,
        now: u64,
    ) -> Result<(), NamingError> {
        let root = parse::<Root>(zone, root_bytes)?;
        let id = zone_id(&root.signed).ok_or_else(|| {
            NamingError::Invalid(format!(
                "this root has no {ZONE_FIELD} field naming its zone"
            ))
        })?;
        for role in ["targets", "snapshot", "timestamp"] {
            check_can_sign(&root.signed, role, signer)?;
        }
        // Trust the root as given (after checking its own signatures), then
        // take the first versions of the other roles through the workflow.
        root.signed
            .verify_delegate("root", &root)
            .map_err(tuf_err(zone))?;
        let record = ZoneRecord {
            id,
            publisher: true,
            origin: None,
            mirror: None,
            since: now,
            verified: None,
        };
        self.start_zone(zone, &record, root_bytes, root.signed.version, now)?;
        // Names live in hashed bins, so that publishing one re-signs one
        // bin, not a targets document listing every name of the zone. Every
        // targets key (each device of the zone) signs the bins.
        let signers: Vec<String> = root
            .signed
            .roles
            .get("targets")
            .map(|r| r.keyids.clone())
            .unwrap_or_default();
        let mut targets = Targets::new(now + lifetime::TARGETS);
        targets.delegations = Some(tuf::Delegations {
            keys: signers
                .iter()
                .filter_map(|id| Some((id.clone(), root.signed.keys.get(id)?.clone())))
                .collect(),
            roles: Some(bins::roles_of(&signers)),
            succinct_roles: None,
            unrecognized: serde_json::Map::new(),
        });
        let mut targets = Metadata::new(targets);
        sign(&mut targets, signer)?;
        let mut delegated = Vec::new();
        for role in bins::names() {
            let mut bin = Metadata::new(Targets::new(now + lifetime::TARGETS));
            sign(&mut bin, signer)?;
            delegated.push((role, to_bytes(zone, &bin)?, 1));
        }
        self.sign_as_this_node(zone, &root.signed, Some(targets), delegated, signer, now)?;
        Ok(())
    }

    /// A new root version where `role` has exactly `keys` and `threshold`,
    /// signed by this node. Committed when it meets both the old and the new
    /// root threshold; else returned for co-signers.
    pub fn rotate(
        &self,
        zone: &str,
        role: &str,
        keys: &[PublicIdentity],
        threshold: Option<u32>,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<RootChange, NamingError> {
        if !["root", "targets", "snapshot", "timestamp"].contains(&role) {
            return Err(NamingError::Invalid(format!(
                "{role:?} is not a top-level role (root, targets, snapshot, timestamp)"
            )));
        }
        let old = self.current::<Root>(zone, "root")?;
        let mut root = old.signed.clone();
        root.version += 1;
        root.expires = now + lifetime::ROOT;
        let threshold = match threshold {
            Some(t) => u64::from(t),
            None => root.roles.get(role).map_or(1, |r| r.threshold),
        };
        if threshold == 0 || threshold as usize > keys.len() {
            return Err(NamingError::Invalid(format!(
                "threshold {threshold} with {} key(s): give 1 to {}",
                keys.len(),
                keys.len()
            )));
        }
        if let Some(r) = root.roles.get_mut(role) {
            r.keyids.clear();
            r.threshold = threshold;
        }
        for key in keys {
            root.add_key(tuf_key(key), role).map_err(tuf_err(zone))?;
        }
        let used: Vec<String> = root.roles.values().flat_map(|r| r.keyids.clone()).collect();
        root.keys.retain(|id, _| used.contains(id));
        let mut root = Metadata::new(root);
        sign(&mut root, signer)?;
        self.root_change(zone, root, signer, now)
    }

    fn root_change(
        &self,
        zone: &str,
        root: Metadata<Root>,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<RootChange, NamingError> {
        let old = self.current::<Root>(zone, "root")?;
        let status = root_status(&root.signed, &root, &root.signed);
        let old_ok = old.signed.verify_delegate("root", &root).is_ok();
        let new_ok = root.signed.verify_delegate("root", &root).is_ok();
        let bytes = to_bytes(zone, &root)?;
        if !(old_ok && new_ok) {
            return Ok(RootChange {
                zone: zone.to_owned(),
                root: root_status(&old.signed, &root, &root.signed),
                committed: false,
                file: Some(bytes),
            });
        }
        let mut bundle = self.files(zone)?;
        let version = root.signed.version;
        bundle.files.insert(versioned("root", version), bytes);
        // New keys for timestamp or snapshot: sign fresh versions with them
        // when this node holds them, so followers move on at once.
        if check_can_sign(&root.signed, "snapshot", signer).is_ok()
            && check_can_sign(&root.signed, "timestamp", signer).is_ok()
        {
            let more = self.sign_snapshot_and_timestamp(
                zone,
                &root.signed,
                None,
                Vec::new(),
                signer,
                now,
            )?;
            bundle.files.extend(more.files);
        }
        if let Err(e) = self.update(zone, bundle, "this node", now) {
            // The root is in force once stored; what fails after it (a role
            // whose new key holder has not signed yet) waits for that holder.
            let stored = self.current::<Root>(zone, "root")?.signed.version;
            if stored != version {
                return Err(e);
            }
            tracing::info!(
                zone,
                "root {version} in force; waiting for new key holders: {e}"
            );
        }
        Ok(RootChange {
            zone: zone.to_owned(),
            root: status,
            committed: true,
            file: None,
        })
    }

    /// Adds `signer`'s signature to a root file; reports its signatures.
    pub fn root_sign(
        bytes: &[u8],
        signer: &dyn Signer,
    ) -> Result<(Vec<u8>, RootStatus), NamingError> {
        let mut root = parse::<Root>("(file)", bytes)?;
        sign(&mut root, signer)?;
        let status = root_status(&root.signed, &root, &root.signed);
        Ok((to_bytes("(file)", &root)?, status))
    }

    /// Installs a root signed by co-signers: a zone's first root (creating
    /// the zone) or its next one.
    pub fn root_commit(
        &self,
        zone: &str,
        bytes: &[u8],
        signer: &dyn Signer,
        now: u64,
    ) -> Result<RootChange, NamingError> {
        let root = parse::<Root>(zone, bytes)?;
        if state::get::<ZoneRecord>(&self.db, ZONES, zone)?.is_none() {
            if root.signed.version != 1 {
                return Err(NamingError::UnknownZone {
                    zone: zone.to_owned(),
                });
            }
            root.signed
                .verify_delegate("root", &root)
                .map_err(tuf_err(zone))?;
            self.install_first(zone, bytes, signer, now)?;
            return Ok(RootChange {
                zone: zone.to_owned(),
                root: root_status(&root.signed, &root, &root.signed),
                committed: true,
                file: None,
            });
        }
        let change = self.root_change(zone, root, signer, now)?;
        if !change.committed {
            return Err(NamingError::CannotSign(format!(
                "root version {} has {} valid signature(s), {} needed, by the old and the new \
                 root keys; missing: {}",
                change.root.version,
                change.root.signed_by.len(),
                change.root.threshold,
                change.root.missing.join(", ")
            )));
        }
        Ok(change)
    }
}

/// A root's signatures by its own keys.
pub(super) fn root_status(
    keys_of: &Root,
    root: &Metadata<Root>,
    threshold_of: &Root,
) -> RootStatus {
    let payload = root.signed_bytes().unwrap_or_default();
    let valid = keys_of
        .valid_signers("root", &payload, &root.signatures)
        .unwrap_or_default();
    let all = keys_of
        .roles
        .get("root")
        .map(|r| r.keyids.clone())
        .unwrap_or_default();
    RootStatus {
        version: root.signed.version,
        signed_by: valid
            .iter()
            .map(|id| key_label(keys_of.keys.get(id), id))
            .collect(),
        threshold: threshold_of.roles.get("root").map_or(1, |r| r.threshold),
        missing: all
            .iter()
            .filter(|id| !valid.contains(id))
            .map(|id| key_label(keys_of.keys.get(id), id))
            .collect(),
    }
}

/// The zone id a clive-node root carries.
pub fn zone_id(root: &Root) -> Option<String> {
    root.unrecognized
        .get(ZONE_FIELD)?
        .get("id")?
        .as_str()
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// The zone name a clive-node root carries.
pub fn zone_name(root: &Root) -> Option<String> {
    root.unrecognized
        .get(ZONE_FIELD)?
        .get("name")?
        .as_str()
        .filter(|n| name::check_zone(n).is_ok())
        .map(str::to_owned)
}
