//! Zones of several devices: adding a device's key to a zone, so that it
//! publishes there alone, offline (threshold 1 for every role, and for
//! every hashed bin).

use clive_trust::{PublicIdentity, Signer};

use crate::sign::{check_can_sign, sign, tuf_key};
use crate::tuf::{Delegator, Metadata, Root, Targets};
use crate::{NamingError, bins};

use super::files::versioned;
use super::roots::root_status;
use super::{RootChange, Zones, lifetime, to_bytes, tuf_err};

/// The top-level roles a device holds a key of.
const DEVICE_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

impl Zones {
    /// Makes `key` a device of `zone`: a new root version (signed by this
    /// node, which must meet the root threshold alone) with `key` in root,
    /// targets, snapshot and timestamp, and a new top-level targets with
    /// `key` in the delegation to every hashed bin. Followers take it
    /// through the ordinary root rotation chain.
    pub fn add_device(
        &self,
        zone: &str,
        key: &PublicIdentity,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<RootChange, NamingError> {
        self.transaction(|z| z.add_device_in(zone, key, signer, now))
    }

    fn add_device_in(
        &self,
        zone: &str,
        key: &PublicIdentity,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<RootChange, NamingError> {
        self.record(zone)?;
        let old = self.current::<Root>(zone, "root")?;
        for role in DEVICE_ROLES {
            check_can_sign(&old.signed, role, signer)?;
        }
        let device = tuf_key(key);
        let id = device.id();
        let top = self.current::<Targets>(zone, "targets")?;
        let in_root = DEVICE_ROLES.iter().all(|role| {
            old.signed
                .roles
                .get(*role)
                .is_some_and(|r| r.keyids.contains(&id))
        });
        let in_bins = bin_roles(&top.signed).all(|r| r.keyids.contains(&id));
        if in_root && in_bins {
            return Err(NamingError::Invalid(format!(
                "{} is a device of zone {zone} already",
                key.fingerprint()
            )));
        }
        let mut root = old.signed.clone();
        root.version += 1;
        root.expires = now + lifetime::ROOT;
        for role in DEVICE_ROLES {
            root.add_key(device.clone(), role).map_err(tuf_err(zone))?;
        }
        let mut root = Metadata::new(root);
        sign(&mut root, signer)?;
        if old.signed.verify_delegate("root", &root).is_err()
            || root.signed.verify_delegate("root", &root).is_err()
        {
            return Err(NamingError::CannotSign(format!(
                "zone {zone}'s root needs more signatures than this node's; add the device \
                 with `clive-node name rotate` for each role and the co-signers' signatures"
            )));
        }
        let mut targets = top.signed.clone();
        targets.version += 1;
        targets.expires = now + lifetime::TARGETS;
        if let Some(d) = targets.delegations.as_mut() {
            d.keys.insert(id.clone(), device.clone());
            for r in d.roles.iter_mut().flatten() {
                if bins::is_bin(&r.name) && !r.keyids.contains(&id) {
                    r.keyids.push(id.clone());
                }
            }
        }
        let mut targets = Metadata::new(targets);
        sign(&mut targets, signer)?;
        let version = root.signed.version;
        let mut bundle = self.sign_snapshot_and_timestamp(
            zone,
            &root.signed,
            Some(targets),
            Vec::new(),
            signer,
            now,
        )?;
        bundle
            .files
            .insert(versioned("root", version), to_bytes(zone, &root)?);
        self.update(zone, bundle, "this node", now)?;
        Ok(RootChange {
            zone: zone.to_owned(),
            root: root_status(&root.signed, &root, &root.signed),
            committed: true,
            file: None,
        })
    }
}

/// The hashed bins `top` delegates to.
fn bin_roles(top: &Targets) -> impl Iterator<Item = &crate::tuf::DelegatedRole> {
    top.delegations
        .iter()
        .flat_map(|d| d.roles.iter().flatten())
        .filter(|r| bins::is_bin(&r.name))
}
