//! Names of zones made by other TUF tools (python-tuf, go-tuf,
//! tuf-on-ci): their targets list `sha256` (or `sha512`) but no BLAKE3, so
//! a name resolves only once its bytes were downloaded, verified against
//! the signed length and hashes, and stored. What that download found is
//! kept here, one row per name:
//!
//! - `naming.mirrored.v1` (format version 1): zone NUL name -> JSON
//!   [`Mirrored`]: the BLAKE3 of the verified bytes, with the length and
//!   hashes it was verified against. A row answers only while the zone's
//!   current target entry for that name still lists the same length and
//!   hashes; a changed target is downloaded again.

use serde::{Deserialize, Serialize};

use crate::source::content_address;
use crate::state::{self, NameEntry, Row, state_err};
use crate::tuf::{self, metadata::digest_hex};
use crate::{NamingError, name};

use super::Zones;

pub(crate) const MIRRORED: redb::TableDefinition<'static, &'static str, &'static [u8]> =
    redb::TableDefinition::new("naming.mirrored.v1");

/// Hash algorithms a downloaded target is matched on; a target must list at
/// least one of them.
const MATCHED: [&str; 2] = ["sha256", "sha512"];

/// What the verified bytes of a plain TUF target are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mirrored {
    /// BLAKE3 of the bytes (hex): what the name resolves to.
    pub blake3: String,
    /// SHA-256 of the bytes (hex).
    pub sha256: String,
    /// SHA-512 of the bytes (hex), when the target lists it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha512: Option<String>,
    /// Their length.
    pub length: u64,
}

impl Row for Mirrored {
    fn to_row(&self) -> Result<Vec<u8>, NamingError> {
        serde_json::to_vec(self).map_err(state_err)
    }
    fn from_row(bytes: &[u8]) -> Result<Self, NamingError> {
        serde_json::from_slice(bytes).map_err(|e| state_err(format!("damaged record: {e}")))
    }
}

impl Mirrored {
    /// The hashes of `data`, after checking it against `file`'s signed
    /// length and every hash `file` lists (an algorithm this node does not
    /// know is a mismatch); `file` must list `sha256` or `sha512`.
    pub fn verify(file: &tuf::TargetFile, data: &[u8]) -> Result<Mirrored, tuf::TufError> {
        if !MATCHED.iter().any(|a| file.hashes.contains_key(*a)) {
            return Err(tuf::TufError::LengthOrHashMismatch {
                what: file.path.clone(),
                reason: "lists neither sha256 nor sha512".into(),
            });
        }
        file.verify_length_and_hashes(data)?;
        Ok(Mirrored {
            blake3: blake3::hash(data).to_hex().to_string(),
            sha256: digest_hex("sha256", data).unwrap_or_default(),
            sha512: file
                .hashes
                .contains_key("sha512")
                .then(|| digest_hex("sha512", data).unwrap_or_default()),
            length: data.len() as u64,
        })
    }

    /// Whether these are the bytes `file` signs: same length, and the
    /// same value for every matched algorithm `file` lists.
    pub fn matches(&self, file: &tuf::TargetFile) -> bool {
        self.length == file.length
            && MATCHED.iter().any(|a| file.hashes.contains_key(*a))
            && file.hashes.iter().all(|(algo, want)| match algo.as_str() {
                "sha256" => want.eq_ignore_ascii_case(&self.sha256),
                "sha512" => self
                    .sha512
                    .as_ref()
                    .is_some_and(|h| want.eq_ignore_ascii_case(h)),
                // Other algorithms were checked when the bytes were.
                _ => true,
            })
    }
}

/// A target of a zone that has no BLAKE3 in its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainTarget {
    /// The name (target path).
    pub name: String,
    /// Its signed entry.
    pub file: tuf::TargetFile,
    /// What a download of its current bytes found, when one did.
    pub mirrored: Option<Mirrored>,
}

impl Zones {
    /// The zone's targets without a BLAKE3 in their metadata whose name
    /// starts with `prefix` (every one for `""`), each with its download
    /// when that still matches the signed entry.
    pub fn plain_targets(&self, zone: &str, prefix: &str) -> Result<Vec<PlainTarget>, NamingError> {
        let mut out = Vec::new();
        for (name, file) in self.targets(zone)? {
            if !name.starts_with(prefix) || content_address(&file).is_some() {
                continue;
            }
            let mirrored = self.mirrored_row(zone, &name)?.filter(|m| m.matches(&file));
            out.push(PlainTarget {
                name,
                file,
                mirrored,
            });
        }
        Ok(out)
    }

    fn mirrored_row(&self, zone: &str, name: &str) -> Result<Option<Mirrored>, NamingError> {
        state::get(&self.db, MIRRORED, &state::key(&[zone, name]))
    }

    /// Records that `name`'s current target in `zone` is the bytes
    /// `mirrored` describes; refused unless the zone's current entry for
    /// it lists that length and those hashes.
    pub fn record_mirrored(
        &self,
        zone: &str,
        name: &str,
        mirrored: &Mirrored,
    ) -> Result<(), NamingError> {
        name::check_path(name)?;
        let file = self
            .targets(zone)?
            .into_iter()
            .find_map(|(n, f)| (n == name).then_some(f))
            .ok_or_else(|| NamingError::UnknownName {
                zone: zone.to_owned(),
                name: name.to_owned(),
            })?;
        if !mirrored.matches(&file) {
            return Err(NamingError::Invalid(format!(
                "{zone}/{name}: the downloaded bytes are not those its metadata signs"
            )));
        }
        state::write(&self.db, |tx| {
            state::put(tx, MIRRORED, &state::key(&[zone, name]), mirrored)
        })
    }

    /// The names of `zone` whose download matches their current target,
    /// with what it found (what this node tells peers following the zone
    /// through it).
    pub fn mirrored(&self, zone: &str) -> Result<Vec<(String, Mirrored)>, NamingError> {
        Ok(self
            .plain_targets(zone, "")?
            .into_iter()
            .filter_map(|t| Some((t.name, t.mirrored?)))
            .collect())
    }

    /// The names index row of a plain target of `zone`, from its
    /// download; [`NamingError::NotDownloaded`] when it has none yet,
    /// `None` when `name` is no plain target.
    pub(crate) fn resolve_mirrored(
        &self,
        zone: &str,
        name: &str,
    ) -> Result<Option<NameEntry>, NamingError> {
        let Some(target) = self
            .plain_targets(zone, name)?
            .into_iter()
            .find(|t| t.name == name)
        else {
            return Ok(None);
        };
        match target.mirrored {
            Some(m) => Ok(Some(NameEntry {
                hash: m.blake3,
                kind: "blob".to_owned(),
                length: m.length,
                version: 0,
                role: "targets".to_owned(),
            })),
            None => Err(NamingError::NotDownloaded {
                zone: zone.to_owned(),
                name: name.to_owned(),
            }),
        }
    }

    /// The BLAKE3 hashes of every zone's downloaded plain targets (gc
    /// keeps them, as it keeps what names point at).
    pub(crate) fn mirrored_hashes(&self) -> Result<Vec<String>, NamingError> {
        Ok(state::scan::<Mirrored>(&self.db, MIRRORED, "")?
            .into_iter()
            .map(|(_, m)| m.blake3)
            .collect())
    }
}

/// The path below a repository's `targets/` URL that serves `file`: under
/// consistent snapshots (`consistent_snapshot` in the root) prefixed with
/// its hash as `DIR/HASH.BASE` (sha256 if listed, else sha512), as the TUF
/// specification and python-tuf's client ask for it; else its own path.
pub fn target_url_path(file: &tuf::TargetFile, consistent_snapshot: bool) -> String {
    match file.prefix_hash().filter(|_| consistent_snapshot) {
        Some(hash) => match file.path.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/{hash}.{base}"),
            None => format!("{hash}.{}", file.path),
        },
        None => file.path.clone(),
    }
}

impl Zones {
    /// Whether the zone's trusted root asks for hash-prefixed target
    /// names (see [`target_url_path`]).
    pub fn consistent_snapshot(&self, zone: &str) -> Result<bool, NamingError> {
        Ok(self
            .current::<tuf::Root>(zone, "root")?
            .signed
            .consistent_snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(data: &[u8], algorithms: &[&str]) -> tuf::TargetFile {
        tuf::TargetFile::from_data("dir/t.bin", data, algorithms).unwrap()
    }

    #[test]
    fn verified_bytes_match_their_target_and_no_other() {
        let file = target(b"hello", &["sha256"]);
        let m = Mirrored::verify(&file, b"hello").unwrap();
        assert_eq!(m.blake3, blake3::hash(b"hello").to_hex().to_string());
        assert!(m.matches(&file));
        // Other bytes of the same length, and a truncated copy, are refused.
        assert!(Mirrored::verify(&file, b"hellp").is_err());
        assert!(Mirrored::verify(&file, b"hell").is_err());
        // A changed target no longer matches what was downloaded.
        assert!(!m.matches(&target(b"world", &["sha256"])));
        // sha512 listed: checked, and kept for matching.
        let both = target(b"hello", &["sha256", "sha512"]);
        let m2 = Mirrored::verify(&both, b"hello").unwrap();
        assert!(m2.matches(&both) && !m.matches(&both));
        // Neither sha256 nor sha512: nothing to match a download on later.
        assert!(Mirrored::verify(&target(b"hello", &["sha384"]), b"hello").is_err());
    }

    #[test]
    fn consistent_snapshots_prefix_the_base_name() {
        let file = target(b"x", &["sha256"]);
        let sha = file.hashes["sha256"].clone();
        assert_eq!(target_url_path(&file, true), format!("dir/{sha}.t.bin"));
        assert_eq!(target_url_path(&file, false), "dir/t.bin");
    }
}
