//! Where the client workflow reads metadata from, and where it keeps what it
//! trusts, for zones kept in `state.redb`.
//!
//! - [`Bundle`]: files already in hand (received from a peer, or just signed
//!   by this node), served to the workflow as a repository would serve them.
//! - [`ZoneLocal`]: a zone's trusted metadata in `state.redb`. Every document
//!   the workflow accepts is also kept as a version (history), the names
//!   index follows `targets`, and equivocations are kept as evidence.

use std::collections::BTreeMap;

use crate::state::{self, Accepted, CURRENT, Db, EVIDENCE, Evidence, NAMES, NameEntry, VERSIONS};
use crate::tuf::{self, Metadata, Root, Targets, TufError, updater::RemoteError};
use crate::{NamingError, bins};

/// Metadata files in hand, by the path a repository serves them under
/// (`2.root.json`, `timestamp.json`, `7.targets.json`).
#[derive(Debug, Default, Clone)]
pub struct Bundle {
    /// The files.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl tuf::updater::Remote for Bundle {
    fn fetch_metadata(&mut self, name: &str, max_length: u64) -> Result<Vec<u8>, RemoteError> {
        match self.files.get(name) {
            None => Err(RemoteError::NotFound),
            Some(bytes) if bytes.len() as u64 > max_length => {
                Err(RemoteError::TooLarge { limit: max_length })
            }
            Some(bytes) => Ok(bytes.clone()),
        }
    }

    /// Targets travel as objects, never inside a bundle.
    fn fetch_target(&mut self, _path: &str, _max_length: u64) -> Result<Vec<u8>, RemoteError> {
        Err(RemoteError::NotFound)
    }
}

/// A zone's trusted metadata in `state.redb`, as the client workflow's local
/// store.
pub struct ZoneLocal<'a> {
    /// The database.
    pub db: &'a Db,
    /// The zone.
    pub zone: &'a str,
    /// Now, seconds since the Unix epoch.
    pub now: u64,
    /// Where new documents came from, for evidence.
    pub source: &'a str,
    /// Documents stored by this run, by role.
    pub stored: Vec<String>,
    /// Root documents stored by this run, in order.
    pub roots: Vec<Vec<u8>>,
    /// Equivocation evidence kept by this run: row key, evidence.
    pub evidence: Vec<(String, Evidence)>,
}

impl ZoneLocal<'_> {
    /// The trusted document of `role`, as stored.
    pub fn current(db: &Db, zone: &str, role: &str) -> Result<Option<Vec<u8>>, NamingError> {
        state::get_raw(db, CURRENT, &state::key(&[zone, role]))
    }

    fn root_version(&self) -> u64 {
        Self::current(self.db, self.zone, "root")
            .ok()
            .flatten()
            .and_then(|b| Metadata::<Root>::from_bytes(&b).ok())
            .map_or(0, |m| m.signed.version)
    }

    /// Stores a verified document of `role`: as the current one, as an
    /// accepted version, and in the names index.
    pub(crate) fn write(&mut self, role: &str, data: &[u8]) -> Result<(), NamingError> {
        // A targets role is parsed once, for its version and its names.
        let doc = match role {
            "root" | "timestamp" | "snapshot" => None,
            _ => Some(Metadata::<Targets>::from_bytes(data).map_err(|c| self.tuf_err(c))?),
        };
        let version = match &doc {
            Some(doc) => doc.signed.version,
            None => role_version(role, data)?,
        };
        let root = if role == "root" {
            version
        } else {
            self.root_version()
        };
        let index = match (role, doc) {
            (_, None) => Index::Keep,
            ("targets", Some(top)) => Index::Rebuild(self.all_names(&top.signed)?),
            (_, Some(doc)) => self.role_names(role, &doc.signed)?,
        };
        let zone = self.zone;
        let accepted = Accepted {
            at: self.now,
            root,
            bytes: data.to_vec(),
        };
        state::write(self.db, |tx| {
            state::put_raw(tx, CURRENT, &state::key(&[zone, role]), data)?;
            state::put(
                tx,
                VERSIONS,
                &state::version_key(zone, role, version),
                &accepted,
            )?;
            match &index {
                Index::Keep => {}
                Index::Rebuild(names) => {
                    state::remove_prefix(tx, NAMES, &state::key(&[zone, ""]))?;
                    for (name, entry) in names {
                        state::put(tx, NAMES, &state::key(&[zone, name]), entry)?;
                    }
                }
                Index::Change { remove, put } => {
                    for name in remove {
                        state::remove(tx, NAMES, &state::key(&[zone, name]))?;
                    }
                    for (name, entry) in put {
                        state::put(tx, NAMES, &state::key(&[zone, name]), entry)?;
                    }
                }
            }
            Ok(())
        })?;
        self.stored.push(role.to_owned());
        if role == "root" {
            self.roots.push(data.to_vec());
        }
        Ok(())
    }

    /// The whole names index after a new top-level `targets` (its
    /// delegations may route names elsewhere now): its own names, then
    /// each stored delegated role's names that resolution routes to it.
    fn all_names(&self, top: &Targets) -> Result<Vec<(String, NameEntry)>, NamingError> {
        let mut names = name_entries(top, "targets");
        let delegated = top
            .delegations
            .as_ref()
            .and_then(|d| d.roles.clone())
            .unwrap_or_default();
        for role in delegated {
            let Some(bytes) = Self::current(self.db, self.zone, &role.name)? else {
                continue;
            };
            let Ok(doc) = Metadata::<Targets>::from_bytes(&bytes) else {
                continue;
            };
            names.extend(
                name_entries(&doc.signed, &role.name)
                    .into_iter()
                    .filter(|(n, _)| {
                        !top.targets.contains_key(n)
                            && bins::route(top, n).is_some_and(|r| r.name == role.name)
                    }),
            );
        }
        Ok(names)
    }

    /// The index rows a new version of delegated `role` changes.
    fn role_names(&self, role: &str, new: &Targets) -> Result<Index, NamingError> {
        let Some(top) = Self::current(self.db, self.zone, "targets")? else {
            return Ok(Index::Keep);
        };
        let top = Metadata::<Targets>::from_bytes(&top).map_err(|c| self.tuf_err(c))?;
        let old = match Self::current(self.db, self.zone, role)? {
            Some(bytes) => Metadata::<Targets>::from_bytes(&bytes)
                .map(|m| m.signed.targets)
                .unwrap_or_default(),
            None => Default::default(),
        };
        let routed_here = |name: &str| {
            !top.signed.targets.contains_key(name)
                && bins::route(&top.signed, name).is_some_and(|r| r.name == role)
        };
        let remove = old
            .keys()
            .filter(|n| !new.targets.contains_key(*n) && routed_here(n))
            .cloned()
            .collect();
        let put = name_entries(new, role)
            .into_iter()
            .filter(|(n, _)| routed_here(n) && old.get(n) != new.targets.get(n))
            .collect();
        Ok(Index::Change { remove, put })
    }

    fn tuf_err(&self, cause: TufError) -> NamingError {
        NamingError::Tuf {
            zone: self.zone.to_owned(),
            cause,
        }
    }
}

impl tuf::updater::LocalMetadata for ZoneLocal<'_> {
    fn load(&self, role: &str) -> std::io::Result<Option<Vec<u8>>> {
        Self::current(self.db, self.zone, role).map_err(std::io::Error::other)
    }

    fn store(&mut self, role: &str, data: &[u8]) -> std::io::Result<()> {
        self.write(role, data).map_err(std::io::Error::other)
    }

    fn equivocation(&mut self, role: &str, version: u64, trusted: &[u8], other: &[u8]) {
        // Two devices of the zone publishing apart fork it (kept, reported
        // as a fork, merged by a device); one key signing both equivocates.
        let (key, evidence) = crate::zones::classify(
            self.db,
            self.zone,
            role,
            version,
            trusted,
            other,
            self.source,
            self.now,
        );
        let kept = state::write(self.db, |tx| state::put(tx, EVIDENCE, &key, &evidence));
        self.evidence.push((key, evidence));
        if let Err(e) = kept {
            tracing::warn!(
                zone = self.zone,
                role,
                version,
                "keeping equivocation evidence: {e}"
            );
        }
    }
}

/// The version of a document of `role` (a top-level or delegated role).
pub fn role_version(role: &str, data: &[u8]) -> Result<u64, NamingError> {
    // A zone's stored documents were verified when they were taken: only
    // the version is read.
    tuf::metadata::peek_version(data)
        .ok_or_else(|| NamingError::Invalid(format!("{role} metadata has no version")))
}

/// What a new document does to the names index.
enum Index {
    /// Nothing (root, timestamp, snapshot).
    Keep,
    /// Replace the zone's whole index.
    Rebuild(Vec<(String, NameEntry)>),
    /// Remove and write these rows.
    Change {
        remove: Vec<String>,
        put: Vec<(String, NameEntry)>,
    },
}

/// The names index rows of a targets document of `role`.
pub fn name_entries(targets: &Targets, role: &str) -> Vec<(String, NameEntry)> {
    targets
        .targets
        .iter()
        .filter_map(|(name, file)| {
            Some((
                name.clone(),
                NameEntry {
                    hash: content_address(file)?,
                    kind: kind_of(file).to_owned(),
                    length: file.length,
                    version: targets.version,
                    role: role.to_owned(),
                },
            ))
        })
        .collect()
}

/// A target's BLAKE3 content address: `custom.blake3` (where clive-node
/// zones carry it, so stock TUF clients, which refuse hash algorithms they
/// do not know, can verify the `sha256` in `hashes`), else a `blake3` in
/// `hashes` (zones made by other tools that list it there).
pub fn content_address(file: &tuf::TargetFile) -> Option<String> {
    file.custom()
        .and_then(|c| c.get("blake3"))
        .and_then(|h| h.as_str())
        .or_else(|| file.hashes.get("blake3").map(String::as_str))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
}

/// `blob` or `tree`, as a target's `custom` says; `blob` when it says
/// nothing (a target made by another TUF tool is a file).
pub fn kind_of(file: &tuf::TargetFile) -> &str {
    match file
        .custom()
        .and_then(|c| c.get("kind"))
        .and_then(|k| k.as_str())
    {
        Some("tree") => "tree",
        _ => "blob",
    }
}
