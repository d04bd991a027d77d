//! Merging a peer's metadata for a zone this node is a device of: what two
//! devices published apart becomes one state, the same on every node.
//!
//! The peer's files are verified on their own first, by a scratch client
//! from this node's trusted root. Then, per targets role this node signs,
//! names merge by their clocks ([`super::clocks`]); per role, the result
//! is one side's document as it is when its content is that side's and its
//! version is above the other's (or both sides hold the same content),
//! else a new document of version max(ours, theirs) + 1 whose expiry is
//! the later of the two sides'. Nothing in a new document depends on this
//! node or on now, so two devices merging at once sign identical `signed`
//! bytes. Snapshot and timestamp follow by the same rule over the chosen
//! versions. The result goes through the ordinary client workflow, in one
//! transaction, and the peer's documents that lost are kept as forks.

use std::collections::{BTreeMap, BTreeSet};

use clive_trust::Signer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::NamingError;
use crate::sign::{check_can_sign, check_can_sign_delegated, sign};
use crate::source::{Bundle, ZoneLocal};
use crate::state::Verified;
use crate::tuf::{
    MetaFile, Metadata, Root, Signed, Snapshot, Targets, Timestamp,
    updater::{Config, Updater},
};

use super::clocks::{self, Conflict};
use super::files::versioned;
use super::update::{ScratchLocal, load_delegations, older_targets};
use super::{Zones, parse, to_bytes, tuf_err};

/// What [`Zones::merge_from`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merged {
    /// The zone.
    pub zone: String,
    /// Whether this node signed new documents (the two sides differed and
    /// neither held all of the other's changes).
    pub signed: bool,
    /// The conflicts recorded in the zone's entries now.
    pub conflicts: Vec<Conflict>,
    /// The verified versions now.
    pub verified: Verified,
}

/// One side's document of a role: parsed, and as its file.
struct Doc<T> {
    md: Metadata<T>,
    bytes: Vec<u8>,
}

impl<T: Signed> Doc<T> {
    fn parse(zone: &str, bytes: &[u8]) -> Result<Self, NamingError> {
        Ok(Doc {
            md: parse::<T>(zone, bytes)?,
            bytes: bytes.to_vec(),
        })
    }

    fn version(&self) -> u64 {
        self.md.signed.version()
    }
}

/// The signed content of a document, leaving out its version and expiry.
fn content<T: Signed>(t: &T) -> Value {
    let mut v = t.to_value();
    if let Some(m) = v.as_object_mut() {
        m.remove("version");
        m.remove("expires");
    }
    v
}

/// The BLAKE3 of a document's signed content: what breaks ties.
fn signed_hash<T: Signed>(d: &Doc<T>) -> blake3::Hash {
    blake3::hash(content(&d.md.signed).to_string().as_bytes())
}

/// What a role's merge chose.
enum Chosen<T> {
    /// Our document, as it is.
    Ours,
    /// Theirs, as it is.
    Theirs,
    /// A new document, to sign.
    New(T),
}

/// The side whose document the merged content starts from: the higher
/// version, then the lower hash of its signed content (the same on both
/// sides of a merge).
fn base<'a, T: Signed>(ours: Option<&'a Doc<T>>, theirs: Option<&'a Doc<T>>) -> Option<&'a Doc<T>> {
    match (ours, theirs) {
        (Some(o), Some(t)) => {
            let ko = (std::cmp::Reverse(o.version()), signed_hash(o).to_hex());
            let kt = (std::cmp::Reverse(t.version()), signed_hash(t).to_hex());
            Some(if ko <= kt { o } else { t })
        }
        (o, t) => o.or(t),
    }
}

/// Chooses between our document, theirs and `merged` (see the module
/// docs); `stamp` sets a new document's version and expiry.
fn choose<T: Signed>(
    ours: Option<&Doc<T>>,
    theirs: Option<&Doc<T>>,
    mut merged: T,
    stamp: impl FnOnce(&mut T, u64, u64),
) -> Chosen<T> {
    let c = content(&merged);
    let same = |d: Option<&Doc<T>>| d.is_some_and(|d| content(&d.md.signed) == c);
    let version = |d: Option<&Doc<T>>| d.map_or(0, Doc::version);
    let (vo, vt) = (version(ours), version(theirs));
    let (so, st) = (same(ours), same(theirs));
    if so && (st || vo > vt || theirs.is_none()) && vo >= vt {
        return Chosen::Ours;
    }
    if st && (vt > vo || ours.is_none()) {
        return Chosen::Theirs;
    }
    let expires = |d: Option<&Doc<T>>| d.map_or(0, |d| d.md.signed.expires());
    stamp(
        &mut merged,
        vo.max(vt) + 1,
        expires(ours).max(expires(theirs)),
    );
    Chosen::New(merged)
}

/// The peer's verified state: the newest root and each role's file.
struct Peer {
    root: Root,
    roles: BTreeMap<String, Vec<u8>>,
}

impl Zones {
    /// Takes a peer's metadata files for `zone`. When this node cannot sign
    /// the zone: [`Zones::update_from`]. When it is one of the zone's
    /// devices: verifies the peer's whole state on its own, merges it with
    /// this node's (module docs), signs what is new and takes the result
    /// through the client workflow, in one transaction.
    pub fn merge_from(
        &self,
        zone: &str,
        bundle: Bundle,
        source: &str,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<Merged, NamingError> {
        let root = self.current::<Root>(zone, "root")?;
        let device = ["targets", "snapshot", "timestamp"]
            .iter()
            .all(|role| check_can_sign(&root.signed, role, signer).is_ok());
        if !device {
            let verified = self.update_from(zone, bundle, source, now)?;
            return Ok(Merged {
                zone: zone.to_owned(),
                signed: false,
                conflicts: self.conflicts(zone)?,
                verified,
            });
        }
        let peer = self.verify_peer(zone, &bundle, now)?;
        self.transaction(|z| z.merge_in(zone, &bundle, peer, source, signer, now))
    }

    /// The peer's files verified by a scratch client from this node's
    /// trusted root: its timestamp, snapshot, targets and every delegated
    /// role the snapshot lists.
    fn verify_peer(&self, zone: &str, bundle: &Bundle, now: u64) -> Result<Peer, NamingError> {
        let ours = ZoneLocal::current(&self.db, zone, "root")?
            .ok_or_else(|| NamingError::Invalid(format!("zone {zone} has no trusted root")))?;
        let scratch = ScratchLocal::default().with("root", ours);
        let mut updater =
            Updater::new(bundle.clone(), scratch, Config::default(), now).map_err(tuf_err(zone))?;
        updater.refresh().map_err(tuf_err(zone))?;
        load_delegations(&mut updater, zone, |_, _| false);
        let root = updater.trusted().root().signed().clone();
        Ok(Peer {
            root,
            roles: updater.store().roles().clone(),
        })
    }

    fn merge_in(
        &self,
        zone: &str,
        bundle: &Bundle,
        peer: Peer,
        source: &str,
        signer: &dyn Signer,
        now: u64,
    ) -> Result<Merged, NamingError> {
        let ours_root = self.current::<Root>(zone, "root")?.signed;
        let root = if peer.root.version > ours_root.version {
            peer.root.clone()
        } else {
            ours_root
        };
        for role in ["targets", "snapshot", "timestamp"] {
            check_can_sign(&root, role, signer)?;
        }
        let ours_of = |role: &str| ZoneLocal::current(&self.db, zone, role);
        let theirs_of = |role: &str| peer.roles.get(role).cloned();
        let doc = |bytes: Option<Vec<u8>>| -> Result<Option<Doc<Targets>>, NamingError> {
            bytes.map(|b| Doc::parse(zone, &b)).transpose()
        };
        let mut files = Bundle::default();
        let mut signed = false;
        let mut chosen_versions: BTreeMap<String, u64> = BTreeMap::new();

        // Top-level targets first: its delegations decide who signs bins.
        let (o, t) = (doc(ours_of("targets")?)?, doc(theirs_of("targets"))?);
        let top =
            self.merge_targets(zone, &root, "targets", o.as_ref(), t.as_ref(), None, signer)?;
        let top_signed = top.md.signed.clone();
        signed |= top.new;
        chosen_versions.insert("targets".into(), top.md.signed.version);
        files
            .files
            .insert(versioned("targets", top.md.signed.version), top.bytes);

        // Every other role either snapshot lists.
        let (os, ts) = (
            ours_of("snapshot")?
                .map(|b| Doc::<Snapshot>::parse(zone, &b))
                .transpose()?,
            theirs_of("snapshot")
                .map(|b| Doc::<Snapshot>::parse(zone, &b))
                .transpose()?,
        );
        let mut roles = BTreeSet::new();
        for s in os.iter().chain(ts.iter()) {
            for name in s.md.signed.meta.keys() {
                if let Some(role) = name.strip_suffix(".json")
                    && role != "targets"
                {
                    roles.insert(role.to_owned());
                }
            }
        }
        for role in roles {
            let (o, t) = (doc(ours_of(&role)?)?, doc(theirs_of(&role))?);
            if o.is_none() && t.is_none() {
                continue;
            }
            let merged = self.merge_targets(
                zone,
                &root,
                &role,
                o.as_ref(),
                t.as_ref(),
                Some(&top_signed),
                signer,
            )?;
            signed |= merged.new;
            chosen_versions.insert(role.clone(), merged.md.signed.version);
            files
                .files
                .insert(versioned(&role, merged.md.signed.version), merged.bytes);
        }

        // Snapshot over the chosen versions, then timestamp over it.
        let Some(snap_base) = base(os.as_ref(), ts.as_ref()) else {
            return Err(NamingError::Invalid(format!("zone {zone} has no snapshot")));
        };
        let mut snapshot = snap_base.md.signed.clone();
        snapshot.meta = chosen_versions
            .iter()
            .map(|(role, v)| (format!("{role}.json"), MetaFile::new(*v)))
            .collect();
        let (snapshot_bytes, snapshot_version, new) = pick_signed(
            zone,
            choose(os.as_ref(), ts.as_ref(), snapshot, |s, v, e| {
                s.version = v;
                s.expires = e;
            }),
            os.as_ref(),
            ts.as_ref(),
            signer,
        )?;
        signed |= new;
        files
            .files
            .insert(versioned("snapshot", snapshot_version), snapshot_bytes);
        let (ot, tt) = (
            ours_of("timestamp")?
                .map(|b| Doc::<Timestamp>::parse(zone, &b))
                .transpose()?,
            theirs_of("timestamp")
                .map(|b| Doc::<Timestamp>::parse(zone, &b))
                .transpose()?,
        );
        let Some(ts_base) = base(ot.as_ref(), tt.as_ref()) else {
            return Err(NamingError::Invalid(format!(
                "zone {zone} has no timestamp"
            )));
        };
        let mut timestamp = ts_base.md.signed.clone();
        timestamp.snapshot_meta = MetaFile::new(snapshot_version);
        let (timestamp_bytes, _, new) = pick_signed(
            zone,
            choose(ot.as_ref(), tt.as_ref(), timestamp, |t, v, e| {
                t.version = v;
                t.expires = e;
            }),
            ot.as_ref(),
            tt.as_ref(),
            signer,
        )?;
        signed |= new;
        files.files.insert("timestamp.json".into(), timestamp_bytes);
        // The root chain as the peer has it.
        for (path, bytes) in &bundle.files {
            if path.ends_with(".root.json") || path == "root.json" {
                files.files.insert(path.clone(), bytes.clone());
            }
        }
        let from = if signed { "this node (merge)" } else { source };
        let verified = self.update(zone, files, from, now)?;
        // Keep what lost: the peer's documents for versions this node has
        // other documents of, and its older versions never seen here.
        for (role, bytes) in &peer.roles {
            if role != "root" {
                self.keep_if_fork(zone, role, bytes, source, now)?;
            }
        }
        self.keep_older(zone, older_targets(bundle), &verified, source, now)?;
        if signed {
            tracing::info!(zone, "merged a device's metadata from {source}");
        }
        Ok(Merged {
            zone: zone.to_owned(),
            signed,
            conflicts: self.conflicts(zone)?,
            verified,
        })
    }

    /// Merges one targets-type `role` (top-level when `top` is `None`):
    /// by names when this node signs it, else the higher version as it is.
    #[allow(clippy::too_many_arguments)]
    fn merge_targets(
        &self,
        zone: &str,
        root: &Root,
        role: &str,
        ours: Option<&Doc<Targets>>,
        theirs: Option<&Doc<Targets>>,
        top: Option<&Targets>,
        signer: &dyn Signer,
    ) -> Result<MergedDoc, NamingError> {
        let can_sign = match top {
            None => check_can_sign(root, "targets", signer).is_ok(),
            Some(top) => check_can_sign_delegated(top, role, signer).is_ok(),
        };
        let Some(b) = base(ours, theirs) else {
            return Err(NamingError::Invalid(format!(
                "zone {zone}: no {role} document"
            )));
        };
        if !can_sign {
            let keep = match (ours, theirs) {
                (Some(o), Some(t)) if t.version() > o.version() => t,
                (Some(o), _) => o,
                (None, Some(t)) => t,
                (None, None) => b,
            };
            return Ok(MergedDoc {
                md: keep.md.clone(),
                bytes: keep.bytes.clone(),
                new: false,
            });
        }
        let mut merged = b.md.signed.clone();
        let empty = Targets::new(0);
        clocks::merge_names(
            ours.map_or(&empty, |d| &d.md.signed),
            theirs.map_or(&empty, |d| &d.md.signed),
            &mut merged,
        );
        let chosen = choose(ours, theirs, merged, |t, v, e| {
            t.version = v;
            t.expires = e;
        });
        let (bytes, _, new) = pick_signed(zone, chosen, ours, theirs, signer)?;
        Ok(MergedDoc {
            md: parse::<Targets>(zone, &bytes)?,
            bytes,
            new,
        })
    }
}

/// A merged targets-type document and its file.
struct MergedDoc {
    md: Metadata<Targets>,
    bytes: Vec<u8>,
    new: bool,
}

/// The file of a choice (a new document signed by `signer`), its version,
/// and whether it is new.
fn pick_signed<T: Signed>(
    zone: &str,
    chosen: Chosen<T>,
    ours: Option<&Doc<T>>,
    theirs: Option<&Doc<T>>,
    signer: &dyn Signer,
) -> Result<(Vec<u8>, u64, bool), NamingError> {
    let side = |d: Option<&Doc<T>>| {
        d.map(|d| (d.bytes.clone(), d.version(), false))
            .ok_or_else(|| NamingError::Invalid(format!("zone {zone}: a side has no document")))
    };
    match chosen {
        Chosen::Ours => side(ours),
        Chosen::Theirs => side(theirs),
        Chosen::New(t) => {
            let version = t.version();
            let mut md = Metadata::new(t);
            sign(&mut md, signer)?;
            Ok((to_bytes(zone, &md)?, version, true))
        }
    }
}
