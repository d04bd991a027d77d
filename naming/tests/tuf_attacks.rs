//! The client workflow against attacks, with real signed metadata (ed25519
//! keys) served from memory or over loopback HTTP. Each test fails if the
//! protection it names is removed.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use clive_naming::tuf::http::HttpRemote;
use clive_naming::tuf::metadata::{
    DelegatedRole, Delegations, MetaFile, Metadata, Root, Signed, Snapshot, TargetFile, Targets,
    Timestamp,
};
use clive_naming::tuf::updater::{
    Config, DirStore, LocalMetadata, Remote, RemoteError, Updater, quote,
};
use clive_naming::tuf::{Key, TufError};
use ed25519_dalek::{Signer, SigningKey};

const NOW: u64 = 1_800_000_000;
const LATER: u64 = NOW + 30 * 86_400;

/// Files a repository serves, and the requests it saw.
#[derive(Default)]
struct Served {
    metadata: BTreeMap<String, Vec<u8>>,
    targets: BTreeMap<String, Vec<u8>>,
    requests: Vec<String>,
}

/// An in-memory [`Remote`].
#[derive(Clone, Default)]
struct Mem(Arc<Mutex<Served>>);

impl Mem {
    fn get(map: &BTreeMap<String, Vec<u8>>, name: &str, max: u64) -> Result<Vec<u8>, RemoteError> {
        let data = map.get(name).ok_or(RemoteError::NotFound)?;
        if data.len() as u64 > max {
            return Err(RemoteError::TooLarge { limit: max });
        }
        Ok(data.clone())
    }
}

impl Remote for Mem {
    fn fetch_metadata(&mut self, name: &str, max: u64) -> Result<Vec<u8>, RemoteError> {
        let mut s = self.0.lock().unwrap();
        s.requests.push(name.to_string());
        Self::get(&s.metadata, name, max)
    }

    fn fetch_target(&mut self, path: &str, max: u64) -> Result<Vec<u8>, RemoteError> {
        let mut s = self.0.lock().unwrap();
        s.requests.push(format!("targets/{path}"));
        Self::get(&s.targets, path, max)
    }
}

fn key_of(sk: &SigningKey) -> Key {
    Key::ed25519(sk.verifying_key().as_bytes())
}

fn sign<T: Signed>(signed: &T, keys: &[&SigningKey]) -> Vec<u8> {
    let mut md = Metadata::new(signed.clone());
    let payload = md.signed_bytes().unwrap();
    for k in keys {
        md.add_signature(&key_of(k).id(), &hex::encode(k.sign(&payload).to_bytes()));
    }
    md.to_bytes().unwrap()
}

/// A small repository with consistent snapshots and one ed25519 key per
/// top-level role (plus keys for delegated roles).
struct Repo {
    mem: Mem,
    signers: BTreeMap<String, Vec<SigningKey>>,
    root: Root,
    timestamp: Timestamp,
    snapshot: Snapshot,
    targets: BTreeMap<String, Targets>,
    initial_root: Vec<u8>,
}

impl Repo {
    fn new() -> Repo {
        let mut root = Root::new(LATER);
        let mut signers = BTreeMap::new();
        for (i, role) in ["root", "timestamp", "snapshot", "targets"]
            .iter()
            .enumerate()
        {
            let sk = SigningKey::from_bytes(&[i as u8 + 1; 32]);
            root.add_key(key_of(&sk), role).unwrap();
            signers.insert(role.to_string(), vec![sk]);
        }
        let mut targets = BTreeMap::new();
        targets.insert("targets".to_string(), Targets::new(LATER));
        let mut repo = Repo {
            mem: Mem::default(),
            signers,
            root,
            timestamp: Timestamp::new(LATER),
            snapshot: Snapshot::new(LATER),
            targets,
            initial_root: vec![],
        };
        repo.publish_root();
        repo.initial_root = repo.file("1.root.json");
        repo.publish_targets("targets");
        repo.publish_snapshot();
        repo.publish_timestamp();
        repo
    }

    fn keys(&self, role: &str) -> Vec<&SigningKey> {
        self.signers[role].iter().collect()
    }

    fn file(&self, name: &str) -> Vec<u8> {
        self.mem.0.lock().unwrap().metadata[name].clone()
    }

    fn serve(&self, name: &str, data: Vec<u8>) {
        self.mem
            .0
            .lock()
            .unwrap()
            .metadata
            .insert(name.to_string(), data);
    }

    fn requests(&self) -> Vec<String> {
        std::mem::take(&mut self.mem.0.lock().unwrap().requests)
    }

    fn publish_root(&mut self) {
        let bytes = sign(&self.root, &self.keys("root"));
        self.serve(&format!("{}.root.json", self.root.version), bytes);
    }

    fn publish_targets(&mut self, role: &str) {
        let t = &self.targets[role];
        let signer = if role == "targets" { "targets" } else { role };
        let bytes = sign(t, &self.keys(signer));
        let v = t.version;
        self.serve(&format!("{v}.{}.json", quote(role)), bytes);
        self.snapshot
            .meta
            .insert(format!("{role}.json"), MetaFile::new(v));
    }

    fn publish_snapshot(&mut self) {
        let bytes = sign(&self.snapshot, &self.keys("snapshot"));
        self.serve(&format!("{}.snapshot.json", self.snapshot.version), bytes);
        self.timestamp.snapshot_meta = MetaFile::new(self.snapshot.version);
    }

    fn publish_timestamp(&mut self) {
        let bytes = sign(&self.timestamp, &self.keys("timestamp"));
        self.serve("timestamp.json", bytes);
    }

    /// New versions of `roles` (targets roles), snapshot and timestamp.
    fn release(&mut self, roles: &[&str]) {
        for role in roles {
            self.targets.get_mut(*role).unwrap().version += 1;
            self.publish_targets(role);
        }
        self.snapshot.version += 1;
        self.publish_snapshot();
        self.timestamp.version += 1;
        self.publish_timestamp();
    }

    fn add_target(&mut self, role: &str, path: &str, data: &[u8]) {
        let tf = TargetFile::from_data(path, data, &["sha256"]).unwrap();
        let hash = tf.hashes["sha256"].clone();
        let served = match path.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/{hash}.{base}"),
            None => format!("{hash}.{path}"),
        };
        self.mem
            .0
            .lock()
            .unwrap()
            .targets
            .insert(served, data.to_vec());
        self.targets
            .get_mut(role)
            .unwrap()
            .targets
            .insert(path.to_string(), tf);
    }

    fn delegate(&mut self, parent: &str, name: &str, paths: &[&str], seed: u8) {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let key = key_of(&sk);
        let t = self.targets.get_mut(parent).unwrap();
        let d = t.delegations.get_or_insert_with(|| Delegations {
            keys: BTreeMap::new(),
            roles: Some(vec![]),
            succinct_roles: None,
            unrecognized: Default::default(),
        });
        d.keys.insert(key.id(), key.clone());
        d.roles.as_mut().unwrap().push(DelegatedRole {
            name: name.into(),
            keyids: vec![key.id()],
            threshold: 1,
            terminating: false,
            paths: Some(paths.iter().map(|p| p.to_string()).collect()),
            path_hash_prefixes: None,
            unrecognized: Default::default(),
        });
        self.signers.insert(name.to_string(), vec![sk]);
        self.targets.insert(name.to_string(), Targets::new(LATER));
        self.publish_targets(name);
    }

    fn client(&self, dir: &tempfile::TempDir, now: u64) -> Updater<Mem, DirStore> {
        let root_path = dir.path().join("root.json");
        if !root_path.exists() {
            std::fs::write(&root_path, &self.initial_root).unwrap();
        }
        Updater::new(
            self.mem.clone(),
            DirStore::new(dir.path()),
            Config::default(),
            now,
        )
        .unwrap()
        .with_target_dir(dir.path().join("t"))
    }
}

fn stored_version<T: Signed>(dir: &tempfile::TempDir, role: &str) -> Option<u64> {
    let data = std::fs::read(dir.path().join(format!("{}.json", quote(role)))).ok()?;
    Some(Metadata::<T>::from_bytes(&data).unwrap().signed.version())
}

fn setup() -> (Repo, tempfile::TempDir) {
    let repo = Repo::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("t")).unwrap();
    (repo, dir)
}

#[test]
fn baseline_refresh_download_and_cache() {
    let (mut repo, dir) = setup();
    repo.add_target("targets", "app/v1.tar", b"release one");
    repo.release(&["targets"]);
    let mut c = repo.client(&dir, NOW);
    c.refresh().unwrap();
    assert_eq!(
        repo.requests(),
        [
            "2.root.json",
            "timestamp.json",
            "2.snapshot.json",
            "2.targets.json"
        ]
    );
    let info = c.get_targetinfo("app/v1.tar").unwrap().unwrap();
    assert!(c.find_cached_target(&info, None).is_none());
    let path = c.download_target(&info, None).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"release one");
    assert!(path.ends_with("app%2Fv1.tar"));
    assert_eq!(c.find_cached_target(&info, None), Some(path));
    assert!(c.get_targetinfo("app/none").unwrap().is_none());
    for role in ["root", "timestamp", "snapshot", "targets"] {
        assert!(dir.path().join(format!("{role}.json")).exists());
    }
    // A second session with nothing new only fetches root and timestamp.
    repo.requests();
    let mut c = repo.client(&dir, NOW);
    c.refresh().unwrap();
    assert_eq!(repo.requests(), ["2.root.json", "timestamp.json"]);
}

#[test]
fn rollback_of_timestamp_is_refused() {
    let (mut repo, dir) = setup();
    let old = repo.file("timestamp.json");
    repo.release(&["targets"]);
    repo.client(&dir, NOW).refresh().unwrap();
    repo.serve("timestamp.json", old);
    let err = repo.client(&dir, NOW).refresh().unwrap_err();
    assert!(
        matches!(err, TufError::BadVersion { ref role, got: 1, .. } if role == "timestamp"),
        "{err}"
    );
    assert_eq!(stored_version::<Timestamp>(&dir, "timestamp"), Some(2));
}

#[test]
fn rollback_of_snapshot_version_in_timestamp_is_refused() {
    let (mut repo, dir) = setup();
    repo.release(&["targets"]);
    repo.client(&dir, NOW).refresh().unwrap();
    // New timestamp pointing back at snapshot version 1.
    repo.timestamp.version += 1;
    repo.timestamp.snapshot_meta = MetaFile::new(1);
    repo.publish_timestamp();
    let err = repo.client(&dir, NOW).refresh().unwrap_err();
    assert!(matches!(err, TufError::BadVersion { got: 1, .. }), "{err}");
    assert_eq!(stored_version::<Timestamp>(&dir, "timestamp"), Some(2));
}

#[test]
fn rollback_of_targets_version_in_snapshot_is_refused() {
    let (mut repo, dir) = setup();
    repo.release(&["targets"]);
    repo.client(&dir, NOW).refresh().unwrap();
    // New snapshot listing targets version 1 (trusted snapshot says 2).
    repo.snapshot
        .meta
        .insert("targets.json".into(), MetaFile::new(1));
    repo.snapshot.version += 1;
    repo.publish_snapshot();
    repo.timestamp.version += 1;
    repo.publish_timestamp();
    let err = repo.client(&dir, NOW).refresh().unwrap_err();
    assert!(matches!(err, TufError::BadVersion { got: 1, .. }), "{err}");
    assert_eq!(stored_version::<Snapshot>(&dir, "snapshot"), Some(2));
}

#[test]
fn expired_timestamp_is_a_freeze() {
    let (mut repo, dir) = setup();
    repo.timestamp.expires = NOW - 1;
    repo.release(&["targets"]);
    let err = repo.client(&dir, NOW).refresh().unwrap_err();
    assert!(
        matches!(err, TufError::Expired { ref role, .. } if role == "timestamp"),
        "{err}"
    );
    // The expired timestamp is not persisted and no snapshot is fetched.
    assert_eq!(stored_version::<Timestamp>(&dir, "timestamp"), None);
    assert!(!repo.requests().iter().any(|r| r.contains("snapshot")));
}

#[test]
fn snapshot_not_matching_timestamp_is_refused() {
    let (mut repo, dir) = setup();
    // Timestamp says snapshot 2, but 2.snapshot.json holds version 1's
    // (validly signed) content: mix and match.
    let v1 = repo.file("1.snapshot.json");
    repo.release(&["targets"]);
    repo.serve("2.snapshot.json", v1.clone());
    let err = repo.client(&dir, NOW).refresh().unwrap_err();
    assert!(
        matches!(err, TufError::BadVersion { ref role, got: 1, .. } if role == "snapshot"),
        "{err}"
    );

    // With hashes in timestamp meta, other bytes fail the hash check.
    repo.timestamp.version += 1;
    let genuine = {
        repo.snapshot.version = 2;
        sign(&repo.snapshot, &repo.keys("snapshot"))
    };
    repo.timestamp.snapshot_meta = MetaFile::from_data(2, &genuine, &["sha256"]).unwrap();
    repo.publish_timestamp();
    repo.serve("2.snapshot.json", v1);
    let err = repo.client(&dir, NOW).refresh().unwrap_err();
    assert!(
        matches!(err, TufError::LengthOrHashMismatch { .. }),
        "{err}"
    );
    repo.serve("2.snapshot.json", genuine);
    repo.client(&dir, NOW).refresh().unwrap();
}

#[test]
fn targets_not_matching_snapshot_is_refused() {
    let (mut repo, dir) = setup();
    let v1 = repo.file("1.targets.json");
    repo.release(&["targets"]);
    repo.serve("2.targets.json", v1);
    let err = repo.client(&dir, NOW).refresh().unwrap_err();
    assert!(
        matches!(err, TufError::BadVersion { ref role, got: 1, .. } if role == "targets"),
        "{err}"
    );
    assert_eq!(stored_version::<Targets>(&dir, "targets"), None);
}

#[test]
fn target_with_wrong_hash_is_not_stored() {
    let (mut repo, dir) = setup();
    repo.add_target("targets", "file.bin", b"good bytes");
    repo.release(&["targets"]);
    let hash = repo.targets["targets"].targets["file.bin"].hashes["sha256"].clone();
    repo.mem
        .0
        .lock()
        .unwrap()
        .targets
        .insert(format!("{hash}.file.bin"), b"evil bytes".to_vec());
    let mut c = repo.client(&dir, NOW);
    let info = c.get_targetinfo("file.bin").unwrap().unwrap();
    let err = c.download_target(&info, None).unwrap_err();
    assert!(
        matches!(err, TufError::LengthOrHashMismatch { .. }),
        "{err}"
    );
    assert!(!dir.path().join("t").join("file.bin").exists());
}

#[test]
fn oversized_timestamp_is_refused() {
    let (mut repo, dir) = setup();
    repo.timestamp
        .unrecognized
        .insert("padding".into(), "x".repeat(20_000).into());
    repo.release(&["targets"]);
    let err = repo.client(&dir, NOW).refresh().unwrap_err();
    assert!(
        matches!(err, TufError::TooLarge { limit: 16_384, .. }),
        "{err}"
    );
}

/// Serve `head` then endless data on one loopback connection; return the
/// URL and a handle yielding how many body bytes were written before the
/// client hung up.
fn endless_server(chunked: bool) -> (String, std::thread::JoinHandle<u64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = [0u8; 4096];
        let _ = s.read(&mut req);
        let head = if chunked {
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
        } else {
            "HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n".to_string()
        };
        if s.write_all(head.as_bytes()).is_err() {
            return 0;
        }
        let block = vec![b' '; 8192];
        let mut written = 0u64;
        loop {
            let ok = if chunked {
                s.write_all(format!("{:x}\r\n", block.len()).as_bytes())
                    .and_then(|()| s.write_all(&block))
                    .and_then(|()| s.write_all(b"\r\n"))
            } else {
                s.write_all(&block)
            };
            if ok.is_err() {
                return written;
            }
            written += block.len() as u64;
        }
    });
    (format!("http://{addr}/metadata/"), handle)
}

#[test]
fn endless_timestamp_over_http_stops_at_the_limit() {
    for chunked in [true, false] {
        let (url, server) = endless_server(chunked);
        let mut remote = HttpRemote::new(&url, None);
        let err = remote.fetch_metadata("timestamp.json", 16_384).unwrap_err();
        assert!(
            matches!(err, RemoteError::TooLarge { limit: 16_384 }),
            "{err}"
        );
        drop(remote);
        // The server stops once the client hangs up: the client did not
        // keep reading (kernel socket buffers bound what was written).
        let written = server.join().unwrap();
        assert!(written < 64 * 1024 * 1024, "{written}");
    }
}

#[test]
fn signatures_below_threshold_are_refused() {
    let (mut repo, dir) = setup();
    // Root v2: snapshot needs 2 of 2 keys.
    let second = SigningKey::from_bytes(&[42; 32]);
    repo.root.add_key(key_of(&second), "snapshot").unwrap();
    repo.root.roles.get_mut("snapshot").unwrap().threshold = 2;
    repo.root.version += 1;
    repo.publish_root();
    repo.release(&["targets"]); // signed by the first snapshot key only
    let err = repo.client(&dir, NOW).refresh().unwrap_err();
    assert!(
        matches!(err, TufError::Unsigned { ref role, signed: 1, threshold: 2, .. } if role == "snapshot"),
        "{err}"
    );
    assert_eq!(stored_version::<Root>(&dir, "root"), Some(2));
    assert_eq!(stored_version::<Snapshot>(&dir, "snapshot"), None);

    // A second signature that does not verify does not count either.
    let mut md = Metadata::<Snapshot>::from_bytes(&repo.file("2.snapshot.json")).unwrap();
    md.add_signature(&key_of(&second).id(), &hex::encode([0u8; 64]));
    repo.serve("2.snapshot.json", md.to_bytes().unwrap());
    assert!(matches!(
        repo.client(&dir, NOW).refresh().unwrap_err(),
        TufError::Unsigned { .. }
    ));

    // With both signatures it is accepted.
    repo.signers.get_mut("snapshot").unwrap().push(second);
    repo.snapshot.version = 2;
    repo.publish_snapshot();
    repo.client(&dir, NOW).refresh().unwrap();
    assert_eq!(stored_version::<Snapshot>(&dir, "snapshot"), Some(2));
}

#[test]
fn fast_forward_recovery_after_key_rotation() {
    let (mut repo, dir) = setup();
    for _ in 0..4 {
        repo.release(&["targets"]);
    }
    repo.client(&dir, NOW).refresh().unwrap();
    assert_eq!(stored_version::<Timestamp>(&dir, "timestamp"), Some(5));
    assert_eq!(stored_version::<Snapshot>(&dir, "snapshot"), Some(5));

    // Rotate timestamp and snapshot keys in root v2, restart their versions.
    for (role, seed) in [("timestamp", 50u8), ("snapshot", 51)] {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let r = repo.root.roles.get_mut(role).unwrap();
        r.keyids.clear();
        repo.root.add_key(key_of(&sk), role).unwrap();
        repo.signers.insert(role.into(), vec![sk]);
    }
    repo.root.version += 1;
    repo.publish_root();
    repo.snapshot.version = 1;
    repo.publish_snapshot();
    repo.timestamp.version = 1;
    repo.publish_timestamp();

    let mut c = repo.client(&dir, NOW);
    c.refresh().unwrap();
    assert_eq!(c.trusted().timestamp().unwrap().signed().version, 1);
    assert_eq!(stored_version::<Timestamp>(&dir, "timestamp"), Some(1));
    assert_eq!(stored_version::<Snapshot>(&dir, "snapshot"), Some(1));
}

#[test]
fn delegated_role_cannot_sign_outside_its_paths() {
    let (mut repo, dir) = setup();
    repo.delegate("targets", "team-a", &["a/*"], 60);
    repo.add_target("team-a", "a/ok.txt", b"fine");
    repo.add_target("team-a", "b/stolen.txt", b"not yours");
    repo.add_target("team-a", "a/deeper/x.txt", b"star does not cross /");
    repo.release(&["team-a", "targets"]);
    let mut c = repo.client(&dir, NOW);
    assert!(c.get_targetinfo("a/ok.txt").unwrap().is_some());
    assert!(c.get_targetinfo("b/stolen.txt").unwrap().is_none());
    assert!(c.get_targetinfo("a/deeper/x.txt").unwrap().is_none());
    assert!(dir.path().join("team-a.json").exists());
}

/// A [`DirStore`] that records equivocations.
struct Recording {
    inner: DirStore,
    seen: Arc<Mutex<Vec<(String, u64)>>>,
}

impl LocalMetadata for Recording {
    fn load(&self, role: &str) -> std::io::Result<Option<Vec<u8>>> {
        self.inner.load(role)
    }

    fn store(&mut self, role: &str, data: &[u8]) -> std::io::Result<()> {
        self.inner.store(role, data)
    }

    fn equivocation(&mut self, role: &str, version: u64, trusted: &[u8], other: &[u8]) {
        assert_ne!(trusted, other);
        self.seen.lock().unwrap().push((role.to_string(), version));
    }
}

#[test]
fn equal_version_with_other_content_is_reported_and_ignored() {
    let (mut repo, dir) = setup();
    repo.release(&["targets"]);
    repo.client(&dir, NOW).refresh().unwrap();
    let trusted = std::fs::read(dir.path().join("timestamp.json")).unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = || Recording {
        inner: DirStore::new(dir.path()),
        seen: seen.clone(),
    };
    // Same bytes again: nothing to report.
    Updater::new(repo.mem.clone(), store(), Config::default(), NOW)
        .unwrap()
        .refresh()
        .unwrap();
    assert!(seen.lock().unwrap().is_empty());

    // Same version, validly signed, different content.
    repo.timestamp.expires += 1;
    repo.publish_timestamp();
    Updater::new(repo.mem.clone(), store(), Config::default(), NOW)
        .unwrap()
        .refresh()
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [("timestamp".to_string(), 2)]);
    assert_eq!(
        std::fs::read(dir.path().join("timestamp.json")).unwrap(),
        trusted
    );
}

#[test]
fn root_rotation_is_bounded_by_max_root_rotations() {
    let (mut repo, dir) = setup();
    for _ in 0..5 {
        repo.root.version += 1;
        repo.publish_root();
    }
    let config = Config {
        max_root_rotations: 3,
        ..Config::default()
    };
    std::fs::write(dir.path().join("root.json"), &repo.initial_root).unwrap();
    let mut c = Updater::new(repo.mem.clone(), DirStore::new(dir.path()), config, NOW).unwrap();
    c.refresh().unwrap();
    assert_eq!(stored_version::<Root>(&dir, "root"), Some(4));
    let reqs = repo.requests();
    assert_eq!(&reqs[..3], ["2.root.json", "3.root.json", "4.root.json"]);
}
