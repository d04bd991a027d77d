//! Port of python-tuf's `ngclient.Updater`: the TUF client workflow over a
//! [`Remote`] (where metadata and targets come from) and a [`LocalMetadata`]
//! store (where trusted metadata is kept between sessions).
//!
//! The sequence of requests and of stored files is the one python-tuf
//! produces: root rotations (`N.root.json`, at most
//! [`Config::max_root_rotations`]), `timestamp.json`, snapshot and targets
//! (versioned names under consistent snapshots), then delegated targets on
//! demand during a preorder depth-first search bounded by
//! [`Config::max_delegations`].
//!
//! One deliberate difference: a delegated role already loaded in this
//! session is re-verified against the delegator through which a later lookup
//! reaches it (python-tuf trusts the cached copy whichever path led to it).

use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::error::{Result, TufError};
use super::metadata::{Metadata, Signed, Snapshot, TargetFile, Targets, Timestamp};
use super::trusted::TrustedMetadataSet;

/// Characters Python's `urllib.parse.quote(s, safe="")` leaves alone.
const QUOTE_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// `urllib.parse.quote(s, "")`: the encoding of role names in URLs and file
/// names, and of target paths in target file names.
pub fn quote(s: &str) -> String {
    utf8_percent_encode(s, QUOTE_SAFE).to_string()
}

/// Why a [`Remote`] could not deliver a file.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The file does not exist (HTTP 403 or 404).
    #[error("not found")]
    NotFound,
    /// The remote has more than the allowed number of bytes.
    #[error("more than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// Anything else (connection, timeout, other status).
    #[error("{0}")]
    Other(String),
}

/// Where metadata and targets are fetched from.
///
/// Implementations must stop reading once more than `max_length` bytes have
/// arrived (returning [`RemoteError::TooLarge`]) and never allocate more
/// than `max_length + 1` bytes for the body.
pub trait Remote {
    /// Fetch a metadata file by name relative to the metadata base
    /// (`timestamp.json`, `3.root.json`, `2.role%2Fname.json`; role names are
    /// already percent-encoded).
    fn fetch_metadata(&mut self, name: &str, max_length: u64) -> Result<Vec<u8>, RemoteError>;

    /// Fetch a target file by path relative to the targets base (hash
    /// prefixed under consistent snapshots; not percent-encoded).
    fn fetch_target(&mut self, path: &str, max_length: u64) -> Result<Vec<u8>, RemoteError>;
}

/// Where trusted metadata is kept between sessions, by role name.
pub trait LocalMetadata {
    /// The stored bytes of `role`, or `None` if there are none.
    fn load(&self, role: &str) -> std::io::Result<Option<Vec<u8>>>;

    /// Replace the stored bytes of `role` (atomically, if possible).
    fn store(&mut self, role: &str, data: &[u8]) -> std::io::Result<()>;

    /// Called when the repository serves, for `role`, a validly signed
    /// document with the same `version` as the trusted one but different
    /// signed content. The workflow keeps the trusted document; this hook
    /// lets the caller keep the evidence. Default: ignore.
    fn equivocation(&mut self, role: &str, version: u64, trusted: &[u8], other: &[u8]) {
        let _ = (role, version, trusted, other);
    }
}

/// A [`LocalMetadata`] keeping `<quoted role>.json` files (non-versioned
/// names) in one directory, written via a temporary file and a rename.
#[derive(Debug, Clone)]
pub struct DirStore {
    dir: PathBuf,
    max_length: u64,
}

impl DirStore {
    /// Store files in `dir` (which must exist); reads are limited to 64 MiB.
    pub fn new(dir: impl Into<PathBuf>) -> DirStore {
        DirStore {
            dir: dir.into(),
            max_length: super::metadata::MAX_METADATA_BYTES as u64,
        }
    }

    /// The file holding `role`.
    pub fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", quote(role)))
    }
}

impl LocalMetadata for DirStore {
    fn load(&self, role: &str) -> std::io::Result<Option<Vec<u8>>> {
        Ok(clive_trust::bounded::read_bounded_if_exists(
            &self.path(role),
            self.max_length,
        )?)
    }

    fn store(&mut self, role: &str, data: &[u8]) -> std::io::Result<()> {
        clive_trust::write_atomic(&self.path(role), data)
    }
}

/// Updater settings, with python-tuf's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Most root versions fetched in one refresh (256).
    pub max_root_rotations: u64,
    /// Most targets roles visited in one lookup (32).
    pub max_delegations: usize,
    /// Largest root metadata accepted (512000 bytes).
    pub root_max_length: u64,
    /// Largest timestamp metadata accepted (16384 bytes).
    pub timestamp_max_length: u64,
    /// Largest snapshot accepted when timestamp lists no length (2000000).
    pub snapshot_max_length: u64,
    /// Largest targets metadata accepted when snapshot lists no length
    /// (5000000).
    pub targets_max_length: u64,
    /// Under consistent snapshots, fetch targets as `<hash>.<name>` (true).
    pub prefix_targets_with_hash: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_root_rotations: 256,
            max_delegations: 32,
            root_max_length: 512_000,
            timestamp_max_length: 16_384,
            snapshot_max_length: 2_000_000,
            targets_max_length: 5_000_000,
            prefix_targets_with_hash: true,
        }
    }
}

/// The TUF client: refreshes top-level metadata, looks up and downloads
/// targets.
pub struct Updater<R, S> {
    remote: R,
    store: S,
    config: Config,
    trusted: TrustedMetadataSet,
    target_dir: Option<PathBuf>,
}

fn remote_err(name: &str, e: RemoteError) -> TufError {
    match e {
        RemoteError::NotFound => TufError::NotFound { url: name.into() },
        RemoteError::TooLarge { limit } => TufError::TooLarge {
            url: name.into(),
            limit,
        },
        RemoteError::Other(reason) => TufError::Download {
            url: name.into(),
            reason,
        },
    }
}

impl<R: Remote, S: LocalMetadata> Updater<R, S> {
    /// Load the trusted root from `store` (it must be there) and verify it
    /// by itself. `now` (unix seconds) is the reference time for expiry.
    pub fn new(remote: R, store: S, config: Config, now: u64) -> Result<Self> {
        let root = store
            .load("root")
            .map_err(|e| TufError::Io {
                path: PathBuf::from("root.json"),
                source: e,
            })?
            .ok_or(TufError::NoTrustedRoot)?;
        let trusted = TrustedMetadataSet::new(&root, now)?;
        Ok(Updater {
            remote,
            store,
            config,
            trusted,
            target_dir: None,
        })
    }

    /// Directory where targets are cached and downloaded by default.
    pub fn with_target_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target_dir = Some(dir.into());
        self
    }

    /// The verified metadata of this session.
    pub fn trusted(&self) -> &TrustedMetadataSet {
        &self.trusted
    }

    /// The remote, given back.
    pub fn into_remote(self) -> R {
        self.remote
    }

    /// The local store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The remote.
    pub fn remote_mut(&mut self) -> &mut R {
        &mut self.remote
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Refresh top-level metadata: root (rotations), timestamp, snapshot,
    /// targets, with every check of the client workflow. Can succeed once
    /// per updater.
    pub fn refresh(&mut self) -> Result<()> {
        self.load_root()?;
        self.load_timestamp()?;
        self.load_snapshot()?;
        self.load_targets("targets", "root")?;
        Ok(())
    }

    fn download_metadata(
        &mut self,
        role: &str,
        max_length: u64,
        version: Option<u64>,
    ) -> Result<Vec<u8>> {
        let name = match version {
            Some(v) => format!("{v}.{}.json", quote(role)),
            None => format!("{}.json", quote(role)),
        };
        self.remote
            .fetch_metadata(&name, max_length)
            .map_err(|e| remote_err(&name, e))
    }

    fn load_local(&self, role: &str) -> Result<Vec<u8>> {
        match self.store.load(role) {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(TufError::Io {
                path: PathBuf::from(format!("{}.json", quote(role))),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
            Err(e) => Err(TufError::Io {
                path: PathBuf::from(format!("{}.json", quote(role))),
                source: e,
            }),
        }
    }

    fn persist(&mut self, role: &str, data: &[u8]) -> Result<()> {
        self.store.store(role, data).map_err(|e| TufError::Io {
            path: PathBuf::from(format!("{}.json", quote(role))),
            source: e,
        })
    }

    fn load_root(&mut self) -> Result<()> {
        let lower = self.trusted.root().signed().version + 1;
        let upper = lower.saturating_add(self.config.max_root_rotations);
        for next in lower..upper {
            let data = match self.download_metadata("root", self.config.root_max_length, Some(next))
            {
                Ok(d) => d,
                Err(TufError::NotFound { .. }) => break,
                Err(e) => return Err(e),
            };
            self.trusted.update_root(&data)?;
            self.persist("root", &data)?;
        }
        Ok(())
    }

    fn load_timestamp(&mut self) -> Result<()> {
        if let Ok(local) = self.load_local("timestamp") {
            // A local timestamp that is missing, invalid or expired only
            // stops being a rollback reference; keep going.
            let _ = self.trusted.update_timestamp(&local);
        }
        let data = self.download_metadata("timestamp", self.config.timestamp_max_length, None)?;
        match self.trusted.update_timestamp(&data) {
            Ok(_) => {}
            Err(TufError::EqualVersion { version, .. }) => {
                // Same version as trusted: keep the trusted one, but report
                // a different (validly signed) content.
                if let Some(trusted) = self.trusted.timestamp() {
                    let trusted_bytes = trusted.metadata.signed_bytes()?;
                    let other = Metadata::<Timestamp>::from_bytes(&data)?;
                    if other.signed_bytes()? != trusted_bytes {
                        let trusted_raw = trusted.raw.clone();
                        self.store
                            .equivocation("timestamp", version, &trusted_raw, &data);
                    }
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        self.persist("timestamp", &data)
    }

    fn load_snapshot(&mut self) -> Result<()> {
        let local = self.load_local("snapshot").ok();
        if let Some(local) = &local
            && self.trusted.update_snapshot(local, true).is_ok()
        {
            return Ok(());
        }
        // Local snapshot missing or not valid as final: fetch it.
        let intermediate = self.trusted.snapshot().map(|s| s.raw.clone());
        let ts = self
            .trusted
            .timestamp()
            .ok_or(TufError::Order("snapshot before timestamp"))?
            .signed();
        let length = ts
            .snapshot_meta
            .length
            .unwrap_or(self.config.snapshot_max_length);
        let version = self
            .trusted
            .root()
            .signed()
            .consistent_snapshot()
            .then_some(ts.snapshot_meta.version);
        let data = self.download_metadata("snapshot", length, version)?;
        self.trusted.update_snapshot(&data, false)?;
        if let Some(old) = intermediate {
            self.report_if_equivocation::<Snapshot>("snapshot", &old, &data)?;
        }
        self.persist("snapshot", &data)
    }

    /// `old` was verified earlier (an intermediate document); `new` was just
    /// accepted. Same version with different signed content is reported.
    fn report_if_equivocation<T: Signed>(
        &mut self,
        role: &str,
        old: &[u8],
        new: &[u8],
    ) -> Result<()> {
        let (Ok(a), Ok(b)) = (
            Metadata::<T>::from_bytes(old),
            Metadata::<T>::from_bytes(new),
        ) else {
            return Ok(());
        };
        if a.signed.version() == b.signed.version() && a.signed_bytes()? != b.signed_bytes()? {
            self.store.equivocation(role, a.signed.version(), old, new);
        }
        Ok(())
    }

    /// Loads delegated targets `role` (delegated by `parent`, already
    /// loaded) now rather than on the first lookup that needs it: from the
    /// local store when it is current, else from the remote.
    pub fn load_delegated(&mut self, role: &str, parent: &str) -> Result<Targets> {
        self.load_targets(role, parent)
    }

    fn load_targets(&mut self, role: &str, parent: &str) -> Result<Targets> {
        if self.trusted.targets(role).is_some() {
            return self.trusted.verify_loaded_targets(role, parent).cloned();
        }
        // A local copy of another version than the snapshot lists would be
        // verified only to be refused (and cannot be equivocation evidence):
        // skip it without parsing it, which matters for large roles.
        let listed = self
            .trusted
            .snapshot()
            .and_then(|s| s.signed().meta.get(&format!("{role}.json")))
            .map(|m| m.version);
        let local = self
            .load_local(role)
            .ok()
            .filter(|l| listed.is_none() || super::metadata::peek_version(l) == listed);
        if let Some(local) = &local
            && let Ok(t) = self.trusted.update_delegated_targets(local, role, parent)
        {
            return Ok(t.clone());
        }
        let snapshot = self
            .trusted
            .snapshot()
            .ok_or(TufError::Order("targets before snapshot"))?
            .signed();
        let meta =
            snapshot
                .meta
                .get(&format!("{role}.json"))
                .ok_or_else(|| TufError::SnapshotMeta {
                    reason: format!("role {role} was delegated but is not part of snapshot"),
                })?;
        let length = meta.length.unwrap_or(self.config.targets_max_length);
        let version = self
            .trusted
            .root()
            .signed()
            .consistent_snapshot()
            .then_some(meta.version);
        let data = self.download_metadata(role, length, version)?;
        let targets = self
            .trusted
            .update_delegated_targets(&data, role, parent)?
            .clone();
        // Only a local copy signed by the same delegator is evidence.
        if let Some(old) = local
            && let Ok(md) = Metadata::<Targets>::from_bytes(&old)
            && self
                .trusted
                .verify_with_delegator(&md, role, parent)
                .is_ok()
        {
            self.report_if_equivocation::<Targets>(role, &old, &data)?;
        }
        self.persist(role, &data)?;
        Ok(targets)
    }

    /// Information about `target_path`, found by a preorder depth-first
    /// search of the delegation graph (refreshing first if needed and
    /// fetching delegated metadata on demand). `None` if no role trusted
    /// for the path lists it.
    pub fn get_targetinfo(&mut self, target_path: &str) -> Result<Option<TargetFile>> {
        if self.trusted.targets("targets").is_none() {
            self.refresh()?;
        }
        self.preorder_depth_first_walk(target_path)
    }

    fn preorder_depth_first_walk(&mut self, target_path: &str) -> Result<Option<TargetFile>> {
        let mut to_visit: Vec<(String, String)> = vec![("targets".into(), "root".into())];
        let mut visited: std::collections::BTreeSet<String> = Default::default();
        while visited.len() <= self.config.max_delegations {
            let Some((role, parent)) = to_visit.pop() else {
                break;
            };
            if visited.contains(&role) {
                continue;
            }
            let targets = self.load_targets(&role, &parent)?;
            if let Some(t) = targets.targets.get(target_path) {
                return Ok(Some(t.clone()));
            }
            visited.insert(role.clone());
            if let Some(d) = &targets.delegations {
                let mut children = Vec::new();
                for (child, terminating) in d.roles_for_target(target_path) {
                    children.push((child, role.clone()));
                    if terminating {
                        to_visit.clear();
                        break;
                    }
                }
                children.reverse();
                to_visit.extend(children);
            }
        }
        Ok(None)
    }

    fn target_file_path(&self, info: &TargetFile) -> Result<PathBuf> {
        let dir = self.target_dir.as_ref().ok_or_else(|| {
            TufError::Config("a target directory must be set to cache targets".into())
        })?;
        Ok(dir.join(quote(&info.path)))
    }

    /// The local copy of the target, if it exists and matches `info`
    /// (`filepath` defaults to the quoted target path in the target dir).
    pub fn find_cached_target(
        &self,
        info: &TargetFile,
        filepath: Option<&Path>,
    ) -> Option<PathBuf> {
        let path = match filepath {
            Some(p) => p.to_path_buf(),
            None => self.target_file_path(info).ok()?,
        };
        let data = clive_trust::read_bounded(&path, info.length).ok()?;
        info.verify_length_and_hashes(&data).ok()?;
        Some(path)
    }

    /// Fetch the target's bytes and verify them against `info`.
    pub fn fetch_target(&mut self, info: &TargetFile) -> Result<Vec<u8>> {
        let mut path = info.path.clone();
        if self.trusted.root().signed().consistent_snapshot()
            && self.config.prefix_targets_with_hash
            && let Some(hash) = info.prefix_hash()
        {
            path = match info.path.rsplit_once('/') {
                Some((dir, base)) => format!("{dir}/{hash}.{base}"),
                None => format!("{hash}.{}", info.path),
            };
        }
        let data = self
            .remote
            .fetch_target(&path, info.length)
            .map_err(|e| remote_err(&path, e))?;
        info.verify_length_and_hashes(&data)?;
        Ok(data)
    }

    /// Download, verify and store the target (`filepath` defaults to the
    /// quoted target path in the target dir); returns where it was written.
    pub fn download_target(
        &mut self,
        info: &TargetFile,
        filepath: Option<&Path>,
    ) -> Result<PathBuf> {
        let path = match filepath {
            Some(p) => p.to_path_buf(),
            None => self.target_file_path(info)?,
        };
        let data = self.fetch_target(info)?;
        clive_trust::write_atomic(&path, &data).map_err(|e| TufError::Io {
            path: path.clone(),
            source: e,
        })?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_like_python() {
        assert_eq!(quote("a/b c?.json"), "a%2Fb%20c%3F.json");
        assert_eq!(quote("A-z_0.9~"), "A-z_0.9~");
        assert_eq!(quote("é"), "%C3%A9");
    }
}
