//! Zones this node publishes or follows: creating and signing them, taking
//! new metadata through the TUF client workflow, resolving names, history,
//! overrides, and the files peers and mirrors are given.

use std::collections::BTreeMap;
use std::sync::Arc;

use clive_trust::{PublicIdentity, Signer, clock::format_time};
use redb::{Database, ReadOnlyDatabase};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::sign::{check_can_sign, key_label, sign, tuf_key};
use crate::source::{Bundle, ZoneLocal, content_address, kind_of};
use crate::state::{
    self, Accepted, CURRENT, EVIDENCE, Evidence, LOG, LogEntry, NAMES, NameEntry, OVERRIDES,
    Override, RECEIPTS, VERSIONS, Verified, ZONES, ZoneRecord,
};
use crate::tuf::{
    self, Delegator, MetaFile, Metadata, Root, Signed, Snapshot, Targets, Timestamp, TufError,
    updater::{Config, Updater},
};
use crate::{NamingError, bins, name};

/// How long each role's metadata is valid when this node signs it.
pub mod lifetime {
    /// Root: a year.
    pub const ROOT: u64 = 365 * 86_400;
    /// Targets: 90 days.
    pub const TARGETS: u64 = 90 * 86_400;
    /// Snapshot: 7 days.
    pub const SNAPSHOT: u64 = 7 * 86_400;
    /// Timestamp: 1 day.
    pub const TIMESTAMP: u64 = 86_400;
}

/// How many versions of each targets role (the current one included) a
/// zone's files carry for peers and mirrors.
pub const RECENT_VERSIONS: usize = 8;

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

/// The field of a root naming the zone it belongs to (kept across rotations).
pub const ZONE_FIELD: &str = "x-clive-zone";

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

/// One change in a name's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `published`, `changed`, `unpublished`, `override`, `override cleared`
    /// or `equivocation`.
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

/// The zones of a node.
#[derive(Debug, Clone)]
pub struct Zones {
    db: state::Db,
}

fn tuf_err(zone: &str) -> impl Fn(TufError) -> NamingError + '_ {
    move |cause| NamingError::Tuf {
        zone: zone.to_owned(),
        cause,
    }
}

fn parse<T: Signed>(zone: &str, bytes: &[u8]) -> Result<Metadata<T>, NamingError> {
    Metadata::<T>::from_bytes(bytes).map_err(tuf_err(zone))
}

fn to_bytes<T: Signed>(zone: &str, m: &Metadata<T>) -> Result<Vec<u8>, NamingError> {
    m.to_bytes().map_err(tuf_err(zone))
}

/// The path a repository serves a role's version under.
fn versioned(role: &str, version: u64) -> String {
    format!("{version}.{}.json", encode_role(role))
}

/// A role name as a file name (as python-tuf quotes it).
pub fn encode_role(role: &str) -> String {
    tuf::updater::quote(role)
}

impl Zones {
    /// The zones kept in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Zones {
            db: state::Db::Rw(db),
        }
    }

    /// The zones kept in `db`, for reading only: whatever would write fails.
    pub fn read_only(db: Arc<ReadOnlyDatabase>) -> Self {
        Zones {
            db: state::Db::Ro(db),
        }
    }

    /// The record of `zone`: its id, origin, mirror and last verification.
    pub fn record(&self, zone: &str) -> Result<ZoneRecord, NamingError> {
        name::check_zone(zone)?;
        state::get(&self.db, ZONES, zone)?.ok_or_else(|| NamingError::UnknownZone {
            zone: zone.to_owned(),
        })
    }

    fn current<T: Signed>(&self, zone: &str, role: &str) -> Result<Metadata<T>, NamingError> {
        let bytes = ZoneLocal::current(&self.db, zone, role)?.ok_or_else(|| {
            NamingError::Invalid(format!("zone {zone} has no trusted {role} metadata yet"))
        })?;
        parse(zone, &bytes)
    }

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
        let equivocations = state::scan::<Evidence>(&self.db, EVIDENCE, &state::key(&[zone, ""]))?
            .into_iter()
            .filter_map(|(k, _)| {
                let (role, version) = k.split_once('\0')?;
                Some((role.to_owned(), version.parse().ok()?))
            })
            .collect();
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
        })
    }

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
        name::check_zone(zone)?;
        if state::get::<ZoneRecord>(&self.db, ZONES, zone)?.is_some() {
            return Err(NamingError::ZoneExists(zone.to_owned()));
        }
        let me = tuf_key(&signer.public());
        let mut root = Root::new(now + lifetime::ROOT);
        for role in ["root", "targets", "snapshot", "timestamp"] {
            root.add_key(me.clone(), role).map_err(tuf_err(zone))?;
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
        // bin, not a targets document listing every name of the zone.
        let me = tuf_key(&signer.public());
        let mut targets = Targets::new(now + lifetime::TARGETS);
        targets.delegations = Some(tuf::Delegations {
            keys: [(me.id(), me.clone())].into_iter().collect(),
            roles: Some(bins::roles(&me.id())),
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
        let bundle = self.sign_snapshot_and_timestamp(
            zone,
            &root.signed,
            Some(targets),
            delegated,
            signer,
            now,
        )?;
        self.update(zone, bundle, "this node", now)?;
        Ok(())
    }

    /// Signs new snapshot and timestamp versions over `targets` (when given)
    /// and the current delegated roles, plus `extra` files.
    fn sign_snapshot_and_timestamp(
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
                set_target(&mut doc, zone, name, content.as_ref(), now)?;
            }
            let version = batch.sign_next(zone, role.clone(), doc, signer, now)?;
            versions.insert(role, version);
        }
        let bundle = self.sign_snapshot_and_timestamp(
            zone,
            &root.signed,
            batch.top,
            batch.delegated,
            signer,
            now,
        )?;
        let verified = self.update(zone, bundle, "this node", now)?;
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

    /// The trusted document of targets-type `role`, or an empty one at
    /// version 0 (a role not signed yet).
    fn current_or_empty(&self, zone: &str, role: &str, now: u64) -> Result<Targets, NamingError> {
        Ok(match ZoneLocal::current(&self.db, zone, role)? {
            Some(bytes) => parse::<Targets>(zone, &bytes)?.signed,
            None => {
                let mut t = Targets::new(now + lifetime::TARGETS);
                t.version = 0;
                t
            }
        })
    }

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
        set_target(&mut targets, zone, name, content, now)?;
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
        let bundle = self.sign_snapshot_and_timestamp(
            zone,
            &root.signed,
            Some(targets),
            Vec::new(),
            signer,
            now,
        )?;
        self.update(zone, bundle, "this node", now)?;
        Ok(RoleInfo {
            role: role_name,
            keys: vec![key.fingerprint()],
            threshold: 1,
            paths: vec![pattern],
        })
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

    /// Follows a zone from a trusted root (as given out of band: a ticket
    /// pinned its hash, or the user handed over the file).
    pub fn follow(
        &self,
        zone: &str,
        root_bytes: &[u8],
        origin: Option<String>,
        mirror: Option<String>,
        now: u64,
    ) -> Result<ZoneRecord, NamingError> {
        name::check_zone(zone)?;
        if state::get::<ZoneRecord>(&self.db, ZONES, zone)?.is_some() {
            return Err(NamingError::ZoneExists(zone.to_owned()));
        }
        let root = parse::<Root>(zone, root_bytes)?;
        root.signed
            .verify_delegate("root", &root)
            .map_err(tuf_err(zone))?;
        let id = zone_id(&root.signed)
            .unwrap_or_else(|| blake3::hash(root_bytes).to_hex()[..32].to_owned());
        let record = ZoneRecord {
            id,
            publisher: false,
            origin,
            mirror,
            since: now,
            verified: None,
        };
        self.start_zone(zone, &record, root_bytes, root.signed.version, now)?;
        Ok(record)
    }

    /// Records a new zone and its trusted first root, in one transaction.
    fn start_zone(
        &self,
        zone: &str,
        record: &ZoneRecord,
        root_bytes: &[u8],
        version: u64,
        now: u64,
    ) -> Result<(), NamingError> {
        let accepted = Accepted {
            at: now,
            root: version,
            bytes: root_bytes.to_vec(),
        };
        state::write(&self.db, |tx| {
            state::put(tx, ZONES, zone, record)?;
            state::put_raw(tx, CURRENT, &state::key(&[zone, "root"]), root_bytes)?;
            state::put(
                tx,
                VERSIONS,
                &state::version_key(zone, "root", version),
                &accepted,
            )
        })
    }

    /// Runs the TUF client workflow for `zone` against `remote` (a peer's
    /// files, a mirror, or files this node just signed). What verifies is
    /// kept, in one transaction: the zone's state moves from one consistent
    /// version to the next or not at all (a process killed at any instant
    /// leaves one or the other). When the workflow fails, nothing changes
    /// but the new roots it accepted and the evidence of equivocation it saw.
    pub fn update<R: tuf::updater::Remote>(
        &self,
        zone: &str,
        remote: R,
        source: &str,
        now: u64,
    ) -> Result<Verified, NamingError> {
        self.keeping_on_failure(zone, now, |z, kept| {
            z.update_in(zone, remote, source, now, kept)
        })
    }

    /// The files [`Zones::update`] would take from `remote` (a mirror, say),
    /// fetched while no transaction is open, so that the update itself then
    /// runs over files in hand and holds the state for no network round
    /// trip. The workflow runs once over a scratch copy of the zone's state
    /// to learn which files it needs; the error is its failure, if any.
    pub fn fetch<R: tuf::updater::Remote>(
        &self,
        zone: &str,
        remote: R,
        now: u64,
    ) -> (Bundle, Result<(), NamingError>) {
        let mut scratch = ScratchLocal::default();
        match state::scan_raw(&self.db, CURRENT, &state::key(&[zone, ""])) {
            Ok(rows) => scratch.roles.extend(rows),
            Err(e) => return (Bundle::default(), Err(e)),
        }
        let recording = Recording {
            inner: remote,
            files: Bundle::default(),
        };
        let mut updater = match Updater::new(recording, scratch, Config::default(), now) {
            Ok(u) => u,
            Err(e) => return (Bundle::default(), Err(tuf_err(zone)(e))),
        };
        let refreshed = updater.refresh().map_err(tuf_err(zone));
        if refreshed.is_ok() {
            load_delegations(&mut updater, zone, |_, _| false);
        }
        (updater.into_remote().files, refreshed)
    }

    /// Runs `f` in one transaction; when it fails, keeps what `f` put in
    /// [`Kept`] (in a transaction of its own, unless inside one already,
    /// whose caller then fails as a whole).
    fn keeping_on_failure<R>(
        &self,
        zone: &str,
        now: u64,
        f: impl FnOnce(&Zones, &mut Kept) -> Result<R, NamingError>,
    ) -> Result<R, NamingError> {
        let mut kept = Kept::default();
        let out = self.transaction(|z| f(z, &mut kept));
        if out.is_err() && !self.db.in_transaction() && !kept.is_empty() {
            let keeping = self.transaction(|z| z.keep(zone, &kept, now));
            if let Err(e) = keeping {
                tracing::warn!(zone, "keeping accepted roots and evidence: {e}");
            }
        }
        out
    }

    /// Runs `f` over one write transaction of the node's state: it sees its
    /// own writes, and all of them are kept or none. Inside a transaction
    /// already, `f` joins it.
    pub fn transaction<R>(
        &self,
        f: impl FnOnce(&Zones) -> Result<R, NamingError>,
    ) -> Result<R, NamingError> {
        self.db.transaction(|db| f(&Zones { db: db.clone() }))
    }

    /// Stores the roots and evidence of a failed update.
    fn keep(&self, zone: &str, kept: &Kept, now: u64) -> Result<(), NamingError> {
        let mut local = ZoneLocal {
            db: &self.db,
            zone,
            now,
            source: "",
            stored: Vec::new(),
            roots: Vec::new(),
            evidence: Vec::new(),
        };
        for root in &kept.roots {
            local.write("root", root)?;
        }
        for (key, evidence) in &kept.evidence {
            state::write(&self.db, |tx| state::put(tx, EVIDENCE, key, evidence))?;
        }
        Ok(())
    }

    /// [`Zones::update`] within the transaction in progress.
    fn update_in<R: tuf::updater::Remote>(
        &self,
        zone: &str,
        remote: R,
        source: &str,
        now: u64,
        kept: &mut Kept,
    ) -> Result<Verified, NamingError> {
        let mut record = self.record(zone)?;
        let local = ZoneLocal {
            db: &self.db,
            zone,
            now,
            source,
            stored: Vec::new(),
            roots: Vec::new(),
            evidence: Vec::new(),
        };
        let mut updater =
            Updater::new(remote, local, Config::default(), now).map_err(tuf_err(zone))?;
        if let Err(e) = updater.refresh() {
            kept.roots.clone_from(&updater.store().roots);
            kept.evidence.clone_from(&updater.store().evidence);
            return Err(tuf_err(zone)(e));
        }
        // Delegated roles verified before need no new look unless their
        // delegator (the top-level targets) changed or the snapshot lists a
        // new version of them.
        let top_changed = updater.store().stored.iter().any(|r| r == "targets");
        let db = self.db.clone();
        let unchanged = |role: &str, listed: u64| {
            !top_changed
                && ZoneLocal::current(&db, zone, role)
                    .ok()
                    .flatten()
                    .and_then(|b| crate::source::role_version(role, &b).ok())
                    == Some(listed)
        };
        load_delegations(&mut updater, zone, unchanged);
        drop(updater);
        let verified = self.verified(zone, now)?;
        record.verified = Some(verified.clone());
        state::write(&self.db, |tx| state::put(tx, ZONES, zone, &record))?;
        Ok(verified)
    }

    /// [`Zones::update`] from files in hand, then keeps the older targets
    /// versions among them that this node never saw (a follower that was
    /// away), once their signatures verify, so that history shows every
    /// change.
    pub fn update_from(
        &self,
        zone: &str,
        bundle: Bundle,
        source: &str,
        now: u64,
    ) -> Result<Verified, NamingError> {
        // Older versions of targets roles among the files: `V.ROLE.json`.
        let older: Vec<(String, u64, Vec<u8>)> = bundle
            .files
            .iter()
            .filter_map(|(path, bytes)| {
                let (version, rest) = path.split_once('.')?;
                let role = percent_encoding::percent_decode_str(rest.strip_suffix(".json")?)
                    .decode_utf8()
                    .ok()?
                    .into_owned();
                let skip = ["root", "timestamp", "snapshot"].contains(&role.as_str());
                (!skip).then(|| Some((role, version.parse().ok()?, bytes.clone())))?
            })
            .collect();
        self.keeping_on_failure(zone, now, |z, kept| {
            let verified = z.update_in(zone, bundle, source, now, kept)?;
            z.keep_older(zone, older, &verified, now)?;
            Ok(verified)
        })
    }

    /// Keeps `older` versions of targets roles (role, version, file) this
    /// node never saw, once their signatures verify.
    fn keep_older(
        &self,
        zone: &str,
        older: Vec<(String, u64, Vec<u8>)>,
        verified: &Verified,
        now: u64,
    ) -> Result<(), NamingError> {
        let roots: Vec<(String, Accepted)> =
            state::scan(&self.db, VERSIONS, &state::key(&[zone, "root", ""]))?;
        let top = self.current::<Targets>(zone, "targets")?;
        for (role, version, bytes) in older {
            let row = state::version_key(zone, &role, version);
            let current = match ZoneLocal::current(&self.db, zone, &role)? {
                Some(b) => crate::source::role_version(&role, &b)?,
                None => continue,
            };
            if version >= current || state::get_raw(&self.db, VERSIONS, &row)?.is_some() {
                continue;
            }
            let Ok(doc) = parse::<Targets>(zone, &bytes) else {
                continue;
            };
            if doc.signed.version != version {
                continue;
            }
            let by = if role == "targets" {
                roots.iter().rev().find_map(|(_, a)| {
                    let root = parse::<Root>(zone, &a.bytes).ok()?;
                    root.signed.verify_delegate("targets", &doc).ok()?;
                    Some(root.signed.version)
                })
            } else {
                top.signed
                    .as_delegator("targets")
                    .verify_delegate(&role, &doc)
                    .ok()
                    .map(|_| verified.root)
            };
            if let Some(root) = by {
                let accepted = Accepted {
                    at: now,
                    root,
                    bytes,
                };
                state::write(&self.db, |tx| state::put(tx, VERSIONS, &row, &accepted))?;
            }
        }
        Ok(())
    }

    fn verified(&self, zone: &str, now: u64) -> Result<Verified, NamingError> {
        let root = self.current::<Root>(zone, "root")?;
        let timestamp = self.current::<Timestamp>(zone, "timestamp")?;
        let snapshot = self.current::<Snapshot>(zone, "snapshot")?;
        let targets = self.current::<Targets>(zone, "targets")?;
        let expiries = [
            ("root", root.signed.expires),
            ("timestamp", timestamp.signed.expires),
            ("snapshot", snapshot.signed.expires),
            ("targets", targets.signed.expires),
        ];
        let (expires_role, expires) = expiries
            .iter()
            .min_by_key(|(_, e)| *e)
            .map_or(("timestamp", 0), |(r, e)| (*r, *e));
        Ok(Verified {
            at: now,
            root: root.signed.version,
            timestamp: timestamp.signed.version,
            snapshot: snapshot.signed.version,
            targets: targets.signed.version,
            expires,
            expires_role: expires_role.to_owned(),
        })
    }

    /// The files of a zone's current state, by the path a repository
    /// serves them under: every root version, the timestamp, and the
    /// current snapshot, targets and delegated roles.
    pub fn files(&self, zone: &str) -> Result<Bundle, NamingError> {
        self.record(zone)?;
        let mut bundle = Bundle::default();
        let roots: Vec<(String, Accepted)> =
            state::scan(&self.db, VERSIONS, &state::key(&[zone, "root", ""]))?;
        for (version, accepted) in roots {
            let version: u64 = version.parse().map_err(state::state_err)?;
            bundle
                .files
                .insert(versioned("root", version), accepted.bytes);
        }
        let currents: Vec<(String, Vec<u8>)> = {
            let prefix = state::key(&[zone, ""]);
            state::scan_raw(&self.db, CURRENT, &prefix)?
        };
        for (role, bytes) in currents {
            match role.as_str() {
                "root" => {}
                "timestamp" => {
                    bundle.files.insert("timestamp.json".into(), bytes);
                }
                _ => {
                    let version = crate::source::role_version(&role, &bytes)?;
                    bundle
                        .files
                        .insert(versioned(&role, version), bytes.clone());
                    // Unversioned names too, for repositories without
                    // consistent snapshots and for plain mirrors.
                    bundle
                        .files
                        .insert(format!("{}.json", encode_role(&role)), bytes);
                }
            }
        }
        if let Ok(latest) = self.current::<Root>(zone, "root") {
            bundle
                .files
                .insert("root.json".into(), to_bytes(zone, &latest)?);
        }
        Ok(bundle)
    }

    /// The versions before the current one of each targets role of
    /// `zone` (up to [`RECENT_VERSIONS`] in all, each), so that a follower
    /// that was away sees each change in its history.
    pub fn older_files(&self, zone: &str) -> Result<Bundle, NamingError> {
        let mut bundle = Bundle::default();
        let currents = state::scan_raw(&self.db, CURRENT, &state::key(&[zone, ""]))?;
        for (role, _) in currents {
            if ["root", "timestamp", "snapshot"].contains(&role.as_str()) {
                continue;
            }
            let recent: Vec<(String, Accepted)> = state::last_versions(
                &self.db,
                VERSIONS,
                &state::key(&[zone, &role]),
                RECENT_VERSIONS,
            )?;
            for (version, accepted) in recent.into_iter().skip(1) {
                let version: u64 = version.parse().map_err(state::state_err)?;
                bundle
                    .files
                    .insert(versioned(&role, version), accepted.bytes);
            }
        }
        Ok(bundle)
    }

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
                None => self.resolve_delegated(zone, name, now, stale)?,
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
        let evidence: Vec<(String, Evidence)> =
            state::scan(&self.db, EVIDENCE, &state::key(&[zone, ""]))?;
        for (key, e) in evidence {
            let (role, version) = key.split_once('\0').unwrap_or((key.as_str(), "0"));
            changes.push(Change {
                event: "equivocation".to_owned(),
                role: Some(role.to_owned()),
                version: version.parse().ok(),
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

    /// Maps `zone/name` to `hash` on this node only.
    pub fn set_override(
        &self,
        zone: &str,
        name: &str,
        hash: &str,
        kind: &str,
        now: u64,
    ) -> Result<Override, NamingError> {
        name::check_path(name)?;
        self.record(zone)?;
        let o = Override {
            hash: hash.to_owned(),
            kind: kind.to_owned(),
            at: now,
        };
        let log = LogEntry {
            at: now,
            event: "override".into(),
            hash: Some(hash.to_owned()),
        };
        self.log_and(zone, name, log, |tx, row| {
            state::put(tx, OVERRIDES, row, &o)
        })?;
        Ok(o)
    }

    /// Removes the override of `zone/name`; whether there was one.
    pub fn clear_override(&self, zone: &str, name: &str, now: u64) -> Result<bool, NamingError> {
        name::check_path(name)?;
        self.record(zone)?;
        let log = LogEntry {
            at: now,
            event: "override cleared".into(),
            hash: None,
        };
        self.log_and(zone, name, log, |tx, row| state::remove(tx, OVERRIDES, row))
    }

    fn log_and<R>(
        &self,
        zone: &str,
        name: &str,
        log: LogEntry,
        change: impl FnOnce(&redb::WriteTransaction, &str) -> Result<R, NamingError>,
    ) -> Result<R, NamingError> {
        self.transaction(|z| {
            let seq = state::scan::<LogEntry>(&z.db, LOG, &state::key(&[zone, name, ""]))?.len();
            let row = state::key(&[zone, name]);
            let log_row = state::key(&[zone, name, &format!("{seq:020}")]);
            state::write(&z.db, |tx| {
                let out = change(tx, &row)?;
                state::put(tx, LOG, &log_row, &log)?;
                Ok(out)
            })
        })
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
        Ok(out)
    }

    /// Zones whose timestamp or snapshot this node signs and that expire
    /// within a third of their lifetime: they are re-signed by
    /// [`Zones::resign`].
    pub fn due_for_resigning(
        &self,
        me: &PublicIdentity,
        now: u64,
    ) -> Result<Vec<String>, NamingError> {
        let id = tuf_key(me).id();
        let mut due = Vec::new();
        for (zone, _) in state::scan::<ZoneRecord>(&self.db, ZONES, "")? {
            let Ok(root) = self.current::<Root>(&zone, "root") else {
                continue;
            };
            let holds = |role: &str| {
                root.signed
                    .roles
                    .get(role)
                    .is_some_and(|r| r.keyids.contains(&id))
            };
            if !(holds("timestamp") && holds("snapshot")) {
                continue;
            }
            let ts = self.current::<Timestamp>(&zone, "timestamp").ok();
            let snap = self.current::<Snapshot>(&zone, "snapshot").ok();
            if ts.is_none_or(|t| soon(t.signed.expires, lifetime::TIMESTAMP, now))
                || snap.is_none_or(|s| soon(s.signed.expires, lifetime::SNAPSHOT, now))
                || !self.targets_due(&zone, me, now)?.is_empty()
            {
                due.push(zone);
            }
        }
        Ok(due)
    }

    /// The targets roles of `zone` that `me` signs and that expire within
    /// a third of their lifetime.
    fn targets_due(
        &self,
        zone: &str,
        me: &PublicIdentity,
        now: u64,
    ) -> Result<Vec<String>, NamingError> {
        let id = tuf_key(me).id();
        let Ok(root) = self.current::<Root>(zone, "root") else {
            return Ok(Vec::new());
        };
        let top = self.current::<Targets>(zone, "targets")?;
        let mut due = Vec::new();
        let holds_top = root
            .signed
            .roles
            .get("targets")
            .is_some_and(|r| r.keyids.contains(&id));
        if holds_top && soon(top.signed.expires, lifetime::TARGETS, now) {
            due.push("targets".to_owned());
        }
        let delegated = top
            .signed
            .delegations
            .as_ref()
            .and_then(|d| d.roles.clone())
            .unwrap_or_default();
        for role in delegated.iter().filter(|r| r.keyids.contains(&id)) {
            if let Some(bytes) = ZoneLocal::current(&self.db, zone, &role.name)? {
                let doc = parse::<Targets>(zone, &bytes)?;
                if soon(doc.signed.expires, lifetime::TARGETS, now) {
                    due.push(role.name.clone());
                }
            }
        }
        Ok(due)
    }

    /// Signs new versions, with fresh expiry, of the snapshot and timestamp
    /// of `zone`, and of the targets roles `signer` signs that are due.
    pub fn resign(&self, zone: &str, signer: &dyn Signer, now: u64) -> Result<(), NamingError> {
        self.transaction(|z| z.resign_in(zone, signer, now))
    }

    /// [`Zones::resign`] within the transaction in progress.
    fn resign_in(&self, zone: &str, signer: &dyn Signer, now: u64) -> Result<(), NamingError> {
        let root = self.current::<Root>(zone, "root")?;
        let mut batch = TargetsBatch::default();
        for role in self.targets_due(zone, &signer.public(), now)? {
            let doc = self.current::<Targets>(zone, &role)?.signed;
            batch.sign_next(zone, role, doc, signer, now)?;
        }
        let bundle = self.sign_snapshot_and_timestamp(
            zone,
            &root.signed,
            batch.top,
            batch.delegated,
            signer,
            now,
        )?;
        self.update(zone, bundle, "this node", now)?;
        Ok(())
    }
}

/// Loads every delegated role the snapshot lists, depth first from the
/// top-level targets, so that the zone's state (and what it serves to
/// peers) holds them, not only what lookups happened to need. A role that
/// does not verify is left out and reported; lookups under it then fail.
fn load_delegations<R: tuf::updater::Remote, S: tuf::updater::LocalMetadata>(
    updater: &mut Updater<R, S>,
    zone: &str,
    unchanged: impl Fn(&str, u64) -> bool,
) {
    let listed = |u: &Updater<R, S>, role: &str| {
        u.trusted().snapshot().and_then(|s| {
            s.signed()
                .meta
                .get(&format!("{role}.json"))
                .map(|m| m.version)
        })
    };
    let mut stack = vec!["targets".to_owned()];
    let mut visited = 0;
    while let Some(parent) = stack.pop() {
        visited += 1;
        if visited > updater.config().max_delegations {
            break;
        }
        let children: Vec<String> = updater
            .trusted()
            .targets(&parent)
            .and_then(|t| t.verified.signed().delegations.clone())
            .and_then(|d| d.roles)
            .map(|roles| roles.into_iter().map(|r| r.name).collect())
            .unwrap_or_default();
        for role in children {
            let Some(version) = listed(updater, &role) else {
                continue;
            };
            if unchanged(&role, version) {
                continue;
            }
            match updater.load_delegated(&role, &parent) {
                Ok(_) => stack.push(role),
                Err(e) => tracing::warn!(zone, role, "delegated metadata left out: {e}"),
            }
        }
    }
}

/// Sets `name` in `targets` to `content`, or removes it.
fn set_target(
    targets: &mut Targets,
    zone: &str,
    name: &str,
    content: Option<&Content>,
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
            targets.targets.insert(
                name.to_owned(),
                tuf::TargetFile {
                    path: name.to_owned(),
                    length: c.length,
                    hashes,
                    unrecognized,
                },
            );
            Ok(())
        }
        None => match targets.targets.remove(name) {
            Some(_) => Ok(()),
            None => Err(NamingError::UnknownName {
                zone: zone.to_owned(),
                name: name.to_owned(),
            }),
        },
    }
}

/// New versions of targets roles, signed, waiting for the snapshot that
/// will list them.
#[derive(Default)]
struct TargetsBatch {
    top: Option<Metadata<Targets>>,
    delegated: Vec<(String, Vec<u8>, u64)>,
}

impl TargetsBatch {
    /// Signs the next version of `role` (`doc` with its version bumped and
    /// fresh expiry); returns that version.
    fn sign_next(
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

/// Whether metadata expiring at `expires`, valid for `life`, has less than
/// a third of it left at `now`.
fn soon(expires: u64, life: u64, now: u64) -> bool {
    expires.saturating_sub(now) < life / 3
}

/// A root's signatures by its own keys.
fn root_status(keys_of: &Root, root: &Metadata<Root>, threshold_of: &Root) -> RootStatus {
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

/// What a failed update keeps: the roots it accepted (each verified by
/// the one before it, as a TUF client keeps them) and evidence of
/// equivocation (row key, evidence).
#[derive(Debug, Default)]
struct Kept {
    roots: Vec<Vec<u8>>,
    evidence: Vec<(String, Evidence)>,
}

impl Kept {
    fn is_empty(&self) -> bool {
        self.roots.is_empty() && self.evidence.is_empty()
    }
}

/// A remote that keeps a copy of every metadata file it serves.
struct Recording<R> {
    inner: R,
    files: Bundle,
}

impl<R: tuf::updater::Remote> tuf::updater::Remote for Recording<R> {
    fn fetch_metadata(
        &mut self,
        name: &str,
        max_length: u64,
    ) -> Result<Vec<u8>, tuf::updater::RemoteError> {
        let bytes = self.inner.fetch_metadata(name, max_length)?;
        self.files.files.insert(name.to_owned(), bytes.clone());
        Ok(bytes)
    }

    fn fetch_target(
        &mut self,
        path: &str,
        max_length: u64,
    ) -> Result<Vec<u8>, tuf::updater::RemoteError> {
        self.inner.fetch_target(path, max_length)
    }
}

/// A throwaway local store seeded with a zone's stored files, for lookups
/// that re-run the workflow without touching the zone's state.
#[derive(Debug, Default)]
struct ScratchLocal {
    roles: BTreeMap<String, Vec<u8>>,
}

impl ScratchLocal {
    fn seeded(mut self, files: &Bundle) -> Self {
        if let Some(root) = files.files.get("root.json") {
            self.roles.insert("root".into(), root.clone());
        }
        self
    }
}

impl tuf::updater::LocalMetadata for ScratchLocal {
    fn load(&self, role: &str) -> std::io::Result<Option<Vec<u8>>> {
        Ok(self.roles.get(role).cloned())
    }

    fn store(&mut self, role: &str, data: &[u8]) -> std::io::Result<()> {
        self.roles.insert(role.to_owned(), data.to_vec());
        Ok(())
    }
}
