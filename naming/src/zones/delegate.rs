//! Delegated roles: delegating a prefix to another key, signing a delegated
//! role on the delegate, and taking it in on the zone's publisher.

use std::collections::BTreeMap;

use clive_trust::{PublicIdentity, Signer};

use crate::sign::{check_can_sign, sign, tuf_key};
use crate::source::ZoneLocal;
use crate::tuf::{self, Delegator, Metadata, Root, Targets};
use crate::{NamingError, bins, name};

use super::signing::set_target;
use super::{Content, Published, RoleInfo, Zones, lifetime, parse, to_bytes, tuf_err};

impl Zones {
    /// The delegated role of `zone` that `name` falls under and that
    /// `signer` holds a key of, if any (first match, in delegation order).
    pub fn delegation_for(
        &self,
        zone: &str,
        name: &str,
        signer: &PublicIdentity,
    ) -> Result<Option<String>, NamingError> {
        let targets = self.current::<Targets>(zone, "targets")?;
        let id = tuf_key(signer).id();
        Ok(targets
            .signed
            .delegations
            .as_ref()
            .and_then(|d| d.roles.as_ref())
            .and_then(|roles| {
                roles
                    .iter()
                    .find(|r| r.is_delegated_path(name) && r.keyids.contains(&id))
            })
            .map(|r| r.name.clone()))
    }

    /// On a delegate: signs the next version of delegated `role` with `name`
    /// set to `content` (or removed). Nothing is stored here: the zone's
    /// publisher takes it ([`Zones::accept_delegated`]) and it comes back
    /// with the zone's next snapshot.
    pub fn sign_delegated(
        &self,
        zone: &str,
        role: &str,
        name: &str,
        content: Option<&Content>,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<(Published, Vec<u8>), NamingError> {
        let parent = self.current::<Targets>(zone, "targets")?;
        crate::sign::check_can_sign_delegated(&parent.signed, role, signer)?;
        let mut targets = self.current_or_empty(zone, role, now)?;
        let device = super::clocks::device_id(&signer.public());
        set_target(&mut targets, zone, name, content, &device, now)?;
        targets.version += 1;
        targets.expires = now + lifetime::TARGETS;
        let version = targets.version;
        let mut md = Metadata::new(targets);
        sign(&mut md, signer)?;
        Ok((
            Published {
                zone: zone.to_owned(),
                name: name.to_owned(),
                hash: content.map(|c| c.blake3.clone()),
                kind: content.map(|c| c.kind.clone()),
                role: role.to_owned(),
                version,
                targets: parent.signed.version,
                timestamp: 0,
            },
            to_bytes(zone, &md)?,
        ))
    }

    /// On the zone's publisher: takes a delegate's new version of `role`
    /// when its delegation's keys signed it, its version moves forward and
    /// every name in it lies within the delegated paths; then signs new
    /// snapshot and timestamp versions listing it.
    pub fn accept_delegated(
        &self,
        zone: &str,
        role: &str,
        bytes: &[u8],
        signer: &dyn Signer,
        now: u64,
    ) -> Result<u64, NamingError> {
        self.transaction(|z| z.accept_delegated_in(zone, role, bytes, signer, now))
    }

    /// [`Zones::accept_delegated`] within the transaction in progress.
    fn accept_delegated_in(
        &self,
        zone: &str,
        role: &str,
        bytes: &[u8],
        signer: &dyn Signer,
        now: u64,
    ) -> Result<u64, NamingError> {
        let root = self.current::<Root>(zone, "root")?;
        let parent = self.current::<Targets>(zone, "targets")?;
        let md = parse::<Targets>(zone, bytes)?;
        parent
            .signed
            .as_delegator("targets")
            .verify_delegate(role, &md)
            .map_err(tuf_err(zone))?;
        let delegation = parent
            .signed
            .delegations
            .as_ref()
            .and_then(|d| d.roles.as_ref())
            .and_then(|roles| roles.iter().find(|r| r.name == role))
            .ok_or_else(|| NamingError::Invalid(format!("zone {zone} delegates no role {role}")))?;
        if let Some(outside) = md
            .signed
            .targets
            .keys()
            .find(|n| !delegation.is_delegated_path(n))
        {
            return Err(NamingError::Invalid(format!(
                "{role} lists {outside:?}, outside the paths it is delegated ({})",
                delegation.paths.clone().unwrap_or_default().join(", ")
            )));
        }
        if let Some(old) = ZoneLocal::current(&self.db, zone, role)? {
            let old = parse::<Targets>(zone, &old)?;
            if md.signed.version <= old.signed.version {
                return Err(NamingError::Invalid(format!(
                    "{role} version {} does not move forward from {}",
                    md.signed.version, old.signed.version
                )));
            }
        }
        let version = md.signed.version;
        let bundle = self.sign_snapshot_and_timestamp(
            zone,
            &root.signed,
            None,
            vec![(role.to_owned(), bytes.to_vec(), version)],
            signer,
            now,
        )?;
        let verified = self.update(zone, bundle, "a delegate", now)?;
        Ok(verified.timestamp)
    }

    /// Delegates the names under `prefix` to `key` (a terminating delegated
    /// targets role, named after the prefix).
    pub fn delegate(
        &self,
        zone: &str,
        prefix: &str,
        key: &PublicIdentity,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<RoleInfo, NamingError> {
        self.transaction(|z| z.delegate_in(zone, prefix, key, signer, now))
    }

    /// [`Zones::delegate`] within the transaction in progress.
    fn delegate_in(
        &self,
        zone: &str,
        prefix: &str,
        key: &PublicIdentity,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<RoleInfo, NamingError> {
        let role_name = prefix.trim_end_matches('/').replace('/', "-");
        if bins::is_bin(&role_name) {
            return Err(NamingError::Invalid(format!(
                "{role_name} is the name of one of the zone's hashed bins: delegate another prefix"
            )));
        }
        name::check_path(prefix.trim_end_matches('/'))?;
        let root = self.current::<Root>(zone, "root")?;
        check_can_sign(&root.signed, "targets", signer)?;
        let mut targets = self.current::<Targets>(zone, "targets")?.signed;
        let delegate = tuf_key(key);
        let pattern = format!("{}/*", prefix.trim_end_matches('/'));
        let delegations = targets.delegations.get_or_insert_with(|| tuf::Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            unrecognized: serde_json::Map::new(),
        });
        let roles = delegations.roles.get_or_insert_with(Vec::new);
        roles.retain(|r| r.name != role_name);
        // Before the bins: TUF reads delegations in order, first match wins.
        let at = roles
            .iter()
            .position(|r| bins::is_bin(&r.name))
            .unwrap_or(roles.len());
        roles.insert(
            at,
            tuf::DelegatedRole {
                name: role_name.clone(),
                keyids: vec![delegate.id()],
                threshold: 1,
                terminating: true,
                paths: Some(vec![pattern.clone()]),
                path_hash_prefixes: None,
                unrecognized: serde_json::Map::new(),
            },
        );
        delegations.keys.insert(delegate.id(), delegate);
        targets.version += 1;
        targets.expires = now + lifetime::TARGETS;
        let mut targets = Metadata::new(targets);
        sign(&mut targets, signer)?;
        self.sign_as_this_node(zone, &root.signed, Some(targets), Vec::new(), signer, now)?;
        Ok(RoleInfo {
            role: role_name,
            keys: vec![key.fingerprint()],
            threshold: 1,
            paths: vec![pattern],
        })
    }
}
