//! Following a zone and taking its new metadata through the TUF client
//! workflow, in one transaction, keeping what a failed update must keep.

use std::collections::BTreeMap;

use crate::source::{Bundle, ZoneLocal};
use crate::state::{
    self, Accepted, CURRENT, EVIDENCE, Evidence, VERSIONS, Verified, ZONES, ZoneRecord,
};
use crate::tuf::{
    self, Delegator, Root, Snapshot, Targets, Timestamp,
    updater::{Config, Updater},
};
use crate::{NamingError, name};

use super::{Zones, parse, tuf_err, zone_id};

impl Zones {
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
    pub(super) fn start_zone(
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
        let older = older_targets(&bundle);
        self.keeping_on_failure(zone, now, |z, kept| {
            let verified = z.update_in(zone, bundle, source, now, kept)?;
            z.keep_older(zone, older, &verified, source, now)?;
            Ok(verified)
        })
    }

    /// Keeps `older` versions of targets roles (role, version, file) this
    /// node never saw, once their signatures verify; one that differs from
    /// the version this node accepted is kept as a fork (two devices) or
    /// evidence of equivocation.
    pub(super) fn keep_older(
        &self,
        zone: &str,
        older: Vec<(String, u64, Vec<u8>)>,
        verified: &Verified,
        source: &str,
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
            if state::get_raw(&self.db, VERSIONS, &row)?.is_some() {
                self.keep_if_fork(zone, &role, &bytes, source, now)?;
                continue;
            }
            if version >= current {
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
}

/// Loads every delegated role the snapshot lists, depth first from the
/// top-level targets, so that the zone's state (and what it serves to
/// peers) holds them, not only what lookups happened to need. A role that
/// does not verify is left out and reported; lookups under it then fail.
pub(super) fn load_delegations<R: tuf::updater::Remote, S: tuf::updater::LocalMetadata>(
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
pub(super) struct ScratchLocal {
    roles: BTreeMap<String, Vec<u8>>,
}

impl ScratchLocal {
    /// The files stored so far, by role.
    pub(super) fn roles(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.roles
    }

    /// Seeded with one role's file (the trusted root, say).
    pub(super) fn with(mut self, role: &str, bytes: Vec<u8>) -> Self {
        self.roles.insert(role.to_owned(), bytes);
        self
    }

    pub(super) fn seeded(mut self, files: &Bundle) -> Self {
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

/// The versioned files of targets roles among `bundle` (`V.ROLE.json`):
/// role, version, file.
pub(super) fn older_targets(bundle: &Bundle) -> Vec<(String, u64, Vec<u8>)> {
    bundle
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
        .collect()
}
