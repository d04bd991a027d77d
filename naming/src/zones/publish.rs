//! Publishing names in a zone this node signs, and the receipts that tell a
//! client afterwards what a publish committed.

use std::collections::BTreeMap;

use clive_trust::Signer;
use serde::{Deserialize, Serialize};

use crate::sign::check_can_sign;
use crate::state::{self, RECEIPTS};
use crate::tuf::{Root, Targets};
use crate::{NamingError, bins, name};

use super::Zones;
use super::signing::{TargetsBatch, set_target};

/// How many publish receipts a node keeps, the newest.
pub const RECEIPTS_KEPT: u64 = 1024;

/// A new publish receipt: a client names its publish by it, so that it can
/// learn afterwards whether the publish was committed (when the daemon
/// doing it stopped before answering).
pub fn new_receipt() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

/// What a target is: its hashes, length and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// BLAKE3 (hex): the content address.
    pub blake3: String,
    /// SHA-256 (hex) of the same bytes, for stock TUF clients.
    pub sha256: String,
    /// Length of the bytes.
    pub length: u64,
    /// `blob` or `tree`.
    pub kind: String,
}

/// What `name publish` or `unpublish` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The zone.
    pub zone: String,
    /// The name.
    pub name: String,
    /// Its hash now (`None` when unpublished).
    pub hash: Option<String>,
    /// `blob` or `tree`.
    pub kind: Option<String>,
    /// The role whose signed entry it is: `targets`, one of the hashed
    /// bins, or a delegated role (as `name resolve` reports it).
    #[serde(default)]
    pub role: String,
    /// That role's new version.
    #[serde(default)]
    pub version: u64,
    /// The top-level targets version now.
    pub targets: u64,
    /// The new timestamp version.
    pub timestamp: u64,
}

impl Zones {
    /// Publishes `name` as `content` (or removes it, for `None`), signing new
    /// targets, snapshot and timestamp versions, and takes them through the
    /// client workflow like any follower would.
    pub fn publish(
        &self,
        zone: &str,
        name: &str,
        content: Option<&Content>,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<Published, NamingError> {
        let changes = [(name.to_owned(), content.cloned())];
        let mut published = self.publish_many(zone, &changes, signer, now)?;
        let first = published
            .pop()
            .ok_or_else(|| NamingError::Invalid("nothing to publish".into()))?;
        Ok(first)
    }

    /// Sets (or, for `None`, removes) every name of `changes` in one new
    /// targets version, then signs snapshot and timestamp once.
    pub fn publish_many(
        &self,
        zone: &str,
        changes: &[(String, Option<Content>)],
        signer: &dyn Signer,
        now: u64,
    ) -> Result<Vec<Published>, NamingError> {
        self.transaction(|z| z.publish_many_in(zone, changes, signer, now))
    }

    /// [`Zones::publish_many`], recording what it committed under
    /// `receipt` in the same transaction ([`Zones::receipt`] reads it).
    pub fn publish_receipted(
        &self,
        zone: &str,
        changes: &[(String, Option<Content>)],
        receipt: &str,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<Vec<Published>, NamingError> {
        check_receipt(receipt)?;
        self.transaction(|z| {
            let published = z.publish_many_in(zone, changes, signer, now)?;
            let row = state::key(&[&format!("{now:020}"), receipt]);
            let value = serde_json::to_vec(&published).map_err(state::state_err)?;
            state::write(&z.db, |tx| {
                state::put_bounded(tx, RECEIPTS, &row, &value, RECEIPTS_KEPT)
            })?;
            Ok(published)
        })
    }

    /// What the publish named `receipt` committed; `None` when no publish
    /// by that receipt was committed here (or it is among the oldest, no
    /// longer kept).
    pub fn receipt(&self, receipt: &str) -> Result<Option<Vec<Published>>, NamingError> {
        check_receipt(receipt)?;
        let suffix = format!("\0{receipt}");
        state::scan_raw(&self.db, RECEIPTS, "")?
            .into_iter()
            .find(|(k, _)| k.ends_with(&suffix))
            .map(|(_, v)| {
                serde_json::from_slice(&v)
                    .map_err(|e| state::state_err(format!("damaged receipt record: {e}")))
            })
            .transpose()
    }

    /// [`Zones::publish_many`] within the transaction in progress.
    fn publish_many_in(
        &self,
        zone: &str,
        changes: &[(String, Option<Content>)],
        signer: &dyn Signer,
        now: u64,
    ) -> Result<Vec<Published>, NamingError> {
        for (name, _) in changes {
            name::check_path(name)?;
        }
        self.record(zone)?;
        let root = self.current::<Root>(zone, "root")?;
        // The bins are the top-level targets' own: publishing takes its key.
        check_can_sign(&root.signed, "targets", signer)?;
        let top = self.current::<Targets>(zone, "targets")?;
        // Each name goes to the role TUF resolution would read it from:
        // the first delegation matching it (a hashed bin, or a prefix
        // delegated to someone), else the top-level targets.
        let mut by_role: BTreeMap<String, Vec<&(String, Option<Content>)>> = BTreeMap::new();
        for change in changes {
            let role = bins::route(&top.signed, &change.0).map_or("targets", |r| &r.name);
            by_role.entry(role.to_owned()).or_default().push(change);
        }
        let device = super::clocks::device_id(&signer.public());
        let mut batch = TargetsBatch::default();
        let mut versions = BTreeMap::new();
        for (role, changes) in by_role {
            let mut doc =
                if role == "targets" {
                    check_can_sign(&root.signed, "targets", signer)?;
                    top.signed.clone()
                } else {
                    crate::sign::check_can_sign_delegated(&top.signed, &role, signer).map_err(|_| {
                    NamingError::CannotSign(format!(
                        "{} is delegated to role {role}, whose key this node does not hold: \
                         its holder publishes it",
                        changes.first().map_or("", |c| c.0.as_str())
                    ))
                })?;
                    self.current_or_empty(zone, &role, now)?
                };
            for (name, content) in changes {
                set_target(&mut doc, zone, name, content.as_ref(), &device, now)?;
            }
            let version = batch.sign_next(zone, role.clone(), doc, signer, now)?;
            versions.insert(role, version);
        }
        let verified =
            self.sign_as_this_node(zone, &root.signed, batch.top, batch.delegated, signer, now)?;
        let role_of = |name: &str| bins::route(&top.signed, name).map_or("targets", |r| &r.name);
        let published = changes
            .iter()
            .map(|(name, content)| Published {
                zone: zone.to_owned(),
                name: name.clone(),
                hash: content.as_ref().map(|c| c.blake3.clone()),
                kind: content.as_ref().map(|c| c.kind.clone()),
                role: role_of(name).to_owned(),
                version: versions.get(role_of(name)).copied().unwrap_or(0),
                targets: verified.targets,
                timestamp: verified.timestamp,
            })
            .collect();
        Ok(published)
    }
}

/// Refuses a receipt that is not 32 hex digits (as [`new_receipt`] makes).
fn check_receipt(receipt: &str) -> Result<(), NamingError> {
    if receipt.len() == 32 && receipt.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(NamingError::Invalid(format!(
            "{receipt:?} is not a publish receipt (32 hex digits)"
        )))
    }
}
