//! What every signing path shares: new targets versions waiting for the
//! snapshot that lists them, and new snapshot and timestamp versions over
//! them.

use std::collections::BTreeMap;

use clive_trust::{Signer, clock::format_time};
use serde_json::json;

use crate::NamingError;
use crate::sign::{check_can_sign, sign};
use crate::source::{Bundle, ZoneLocal};
use crate::tuf::{self, MetaFile, Metadata, Root, Snapshot, Targets, Timestamp};

use super::files::versioned;
use super::{Content, Zones, clocks, lifetime, parse, to_bytes};

impl Zones {
    /// Signs new snapshot and timestamp versions over `targets` and
    /// `delegated` ([`Zones::sign_snapshot_and_timestamp`]) and takes them,
    /// as files signed by this node, through the TUF client, which keeps
    /// them: what every change this node signs ends in.
    pub(super) fn sign_as_this_node(
        &self,
        zone: &str,
        root: &Root,
        targets: Option<Metadata<Targets>>,
        delegated: Vec<(String, Vec<u8>, u64)>,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<crate::state::Verified, NamingError> {
        let bundle =
            self.sign_snapshot_and_timestamp(zone, root, targets, delegated, signer, now)?;
        self.update(zone, bundle, "this node", now)
    }

    /// Signs new snapshot and timestamp versions over `targets` (when given)
    /// and the current delegated roles, plus `extra` files.
    pub(super) fn sign_snapshot_and_timestamp(
        &self,
        zone: &str,
        root: &Root,
        targets: Option<Metadata<Targets>>,
        delegated: Vec<(String, Vec<u8>, u64)>,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<Bundle, NamingError> {
        check_can_sign(root, "snapshot", signer)?;
        check_can_sign(root, "timestamp", signer)?;
        let mut bundle = Bundle::default();
        let old_snapshot = self.current::<Snapshot>(zone, "snapshot").ok();
        let old_timestamp = self.current::<Timestamp>(zone, "timestamp").ok();
        let mut snapshot = match &old_snapshot {
            Some(s) => {
                let mut s = s.signed.clone();
                s.version += 1;
                s.expires = now + lifetime::SNAPSHOT;
                s
            }
            None => Snapshot::new(now + lifetime::SNAPSHOT),
        };
        if let Some(targets) = targets {
            snapshot
                .meta
                .insert("targets.json".into(), MetaFile::new(targets.signed.version));
            bundle.files.insert(
                versioned("targets", targets.signed.version),
                to_bytes(zone, &targets)?,
            );
        }
        for (role, bytes, version) in delegated {
            snapshot
                .meta
                .insert(format!("{role}.json"), MetaFile::new(version));
            bundle.files.insert(versioned(&role, version), bytes);
        }
        let mut snapshot = Metadata::new(snapshot);
        sign(&mut snapshot, signer)?;
        let mut timestamp = Timestamp::new(now + lifetime::TIMESTAMP);
        timestamp.version = old_timestamp.map_or(1, |t| t.signed.version + 1);
        timestamp.snapshot_meta = MetaFile::new(snapshot.signed.version);
        let mut timestamp = Metadata::new(timestamp);
        sign(&mut timestamp, signer)?;
        bundle.files.insert(
            versioned("snapshot", snapshot.signed.version),
            to_bytes(zone, &snapshot)?,
        );
        bundle
            .files
            .insert("timestamp.json".into(), to_bytes(zone, &timestamp)?);
        Ok(bundle)
    }

    /// The trusted document of targets-type `role`, or an empty one at
    /// version 0 (a role not signed yet).
    pub(super) fn current_or_empty(
        &self,
        zone: &str,
        role: &str,
        now: u64,
    ) -> Result<Targets, NamingError> {
        Ok(match ZoneLocal::current(&self.db, zone, role)? {
            Some(bytes) => parse::<Targets>(zone, &bytes)?.signed,
            None => {
                let mut t = Targets::new(now + lifetime::TARGETS);
                t.version = 0;
                t
            }
        })
    }
}

/// Sets `name` in `targets` to `content`, or removes it (leaving a
/// tombstone), as published by `device` ([`super::clocks`]: each entry
/// carries its device and version vector).
pub(super) fn set_target(
    targets: &mut Targets,
    zone: &str,
    name: &str,
    content: Option<&Content>,
    device: &str,
    now: u64,
) -> Result<(), NamingError> {
    match content {
        Some(c) => {
            let mut hashes = BTreeMap::new();
            hashes.insert("sha256".to_owned(), c.sha256.clone());
            let mut unrecognized = serde_json::Map::new();
            unrecognized.insert(
                "custom".into(),
                json!({ "blake3": c.blake3, "kind": c.kind, "published": format_time(now) }),
            );
            let file = tuf::TargetFile {
                path: name.to_owned(),
                length: c.length,
                hashes,
                unrecognized,
            };
            clocks::record_publish(targets, name, file, device);
            Ok(())
        }
        None if clocks::record_unpublish(targets, name, device, now) => Ok(()),
        None => Err(NamingError::UnknownName {
            zone: zone.to_owned(),
            name: name.to_owned(),
        }),
    }
}

/// New versions of targets roles, signed, waiting for the snapshot that
/// will list them.
#[derive(Default)]
pub(super) struct TargetsBatch {
    pub(super) top: Option<Metadata<Targets>>,
    pub(super) delegated: Vec<(String, Vec<u8>, u64)>,
}

impl TargetsBatch {
    /// Signs the next version of `role` (`doc` with its version bumped and
    /// fresh expiry); returns that version.
    pub(super) fn sign_next(
        &mut self,
        zone: &str,
        role: String,
        mut doc: Targets,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<u64, NamingError> {
        doc.version += 1;
        doc.expires = now + lifetime::TARGETS;
        let version = doc.version;
        let mut md = Metadata::new(doc);
        sign(&mut md, signer)?;
        if role == "targets" {
            self.top = Some(md);
        } else {
            self.delegated.push((role, to_bytes(zone, &md)?, version));
        }
        Ok(version)
    }
}
