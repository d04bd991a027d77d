//! The node API: everything the command-line tool (and later the control
//! socket) asks of a node. Every result is a plain serialisable value, so the
//! same calls work in-process and remotely.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use clive_cas::{
    Added, EntryKind, Exported, FsckReport, GcReport, Hash, ObjectKind, Pin, Progress, Root, Store,
    parse_hash,
};
use clive_trust::{NodeKey, PublicIdentity, SystemClock};
use serde::{Deserialize, Serialize};

use crate::{Config, Home, HomeLock, NodeError, config::DEFAULT_CONFIG, trust::NodeTrust};

/// Supplies the passphrase of an encrypted key when one is needed.
pub trait PassphraseSource {
    /// The passphrase for the key at `key_path`, or `None` if there is none to give.
    fn passphrase(&self, key_path: &Path) -> Option<String>;
}

/// What `init` should do about the key.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Import this OpenSSH ed25519 private key instead of generating one.
    pub ssh_key: Option<PathBuf>,
    /// Comment of a generated key.
    pub comment: Option<String>,
}

/// How a node is shown: three names of the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityInfo {
    /// The OpenSSH public key line (`ssh-ed25519 AAAA... comment`).
    pub public_key: String,
    /// The `SHA256:` fingerprint.
    pub fingerprint: String,
    /// The fingerprint line exactly as `ssh-keygen -lf` prints it.
    pub fingerprint_line: String,
    /// The endpoint id: the public key as 64 hex digits.
    pub endpoint_id: String,
}

impl IdentityInfo {
    fn of(public: &PublicIdentity) -> Self {
        IdentityInfo {
            public_key: public.openssh_line(),
            fingerprint: public.fingerprint(),
            fingerprint_line: public.keygen_fingerprint_line(),
            endpoint_id: public.endpoint_id(),
        }
    }
}

/// The result of `init`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Initialized {
    /// The new home.
    pub home: PathBuf,
    /// True when an existing key was imported.
    pub imported: bool,
    /// The node's identity.
    pub identity: IdentityInfo,
}

/// One entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// The entry's name.
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Bytes of content.
    pub size: u64,
    /// Its content address.
    #[serde(with = "clive_cas::hash::serde_hex")]
    pub hash: Hash,
    /// For a symlink, where it points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What was added, and where from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddResult {
    /// The path added, or `-` for standard input.
    pub source: String,
    /// The pin created, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// What that pin pointed at before, when it replaced another object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// The object.
    #[serde(flatten)]
    pub added: Added,
}

/// A running node: owns its home until dropped or closed.
#[derive(Debug)]
pub struct Node {
    home: Home,
    identity: PublicIdentity,
    store: Store,
    trust: Arc<NodeTrust>,
    db: Arc<redb::Database>,
    config: Config,
    pub(crate) net: crate::net::NetSlot,
    _lock: HomeLock,
}

impl Node {
    /// Creates a node home: a key (generated, or imported and checked) and a
    /// default configuration.
    pub async fn init(
        home: &Home,
        options: InitOptions,
        passphrase: &dyn PassphraseSource,
    ) -> Result<Initialized, NodeError> {
        let key_path = home.key_path();
        if home.is_initialized() {
            return Err(NodeError::AlreadyInitialized {
                home: home.root().to_owned(),
                key: key_path,
            });
        }
        // A public key alone: the private key stays in an ssh-agent.
        if let Some(public) = options.ssh_key.as_deref().and_then(read_public_key_file) {
            create_private_dir(home.root())?;
            let lock = HomeLock::acquire(home)?;
            let pub_path = home.pub_key_path();
            std::fs::write(&pub_path, format!("{}\n", public.openssh_line()))
                .map_err(|e| NodeError::io(format!("writing {}", pub_path.display()), e))?;
            write_default_config(home)?;
            drop(lock);
            return Ok(Initialized {
                home: home.root().to_owned(),
                imported: true,
                identity: IdentityInfo::of(&public),
            });
        }
        // Read (and unlock) an imported key before creating anything.
        let imported = match &options.ssh_key {
            Some(path) => {
                let key = NodeKey::read(path)?;
                if key.is_encrypted() {
                    key.unlock(passphrase.passphrase(path).as_deref())?;
                }
                Some(key)
            }
            None => None,
        };
        create_private_dir(home.root())?;
        let lock = HomeLock::acquire(home)?;
        let (key, public) = match imported {
            Some(key) => {
                key.write_copy(&key_path)?;
                (NodeKey::read(&key_path)?, key.public_as_shown())
            }
            None => {
                let comment = options.comment.unwrap_or_else(default_comment);
                let key = NodeKey::generate(&key_path, &comment)?;
                let public = key.public();
                (key, public)
            }
        };
        key.write_public_file(&public)?;
        write_default_config(home)?;
        drop(lock);
        Ok(Initialized {
            home: home.root().to_owned(),
            imported: options.ssh_key.is_some(),
            identity: IdentityInfo::of(&public),
        })
    }

    /// Opens an initialised home, taking ownership of it.
    pub async fn open(home: &Home) -> Result<Node, NodeError> {
        if !home.is_initialized() {
            return Err(NodeError::NotInitialized {
                home: home.root().to_owned(),
            });
        }
        let lock = HomeLock::acquire(home)?;
        let config = Config::load(&home.config_path())?;
        let identity = read_identity(home)?;
        let db = Arc::new(crate::statedb::open_state(home)?);
        crate::statedb::check_blob_db(home)?;
        let store = Store::open(&home.blobs_dir(), db.clone()).await?;
        let trust = NodeTrust::open(
            db.clone(),
            &home.roots_path(),
            identity.clone(),
            Arc::new(SystemClock),
        )?;
        Ok(Node {
            home: home.clone(),
            identity,
            store,
            trust: Arc::new(trust),
            db,
            config,
            net: Default::default(),
            _lock: lock,
        })
    }

    /// Flushes and stops the store. The home is released when the node drops.
    pub async fn close(self) -> Result<(), NodeError> {
        self.stop_net().await;
        self.store.shutdown().await?;
        Ok(())
    }

    /// The home this node owns.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The store, for the network layer.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The node's trust state.
    pub fn trust(&self) -> &NodeTrust {
        &self.trust
    }

    /// The node's trust state, shared with the network layer.
    pub(crate) fn trust_shared(&self) -> Arc<NodeTrust> {
        self.trust.clone()
    }

    /// The node state database.
    pub(crate) fn db(&self) -> &Arc<redb::Database> {
        &self.db
    }

    /// The node's settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The node's public key.
    pub fn public(&self) -> &PublicIdentity {
        &self.identity
    }

    /// The node's identity.
    pub fn identity(&self) -> IdentityInfo {
        IdentityInfo::of(&self.identity)
    }

    /// Resolves an object name to a hash: a hash or a pin name, optionally
    /// followed by a path inside that tree (`myapp-1.0/bin/myapp`).
    pub async fn resolve(&self, object: &str) -> Result<Hash, NodeError> {
        let (root, path) = object.split_once('/').unwrap_or((object, ""));
        let mut hash = match parse_hash(root) {
            Ok(hash) => hash,
            Err(_) => self
                .store
                .pinned(root)?
                .ok_or_else(|| NodeError::UnknownObject(root.to_owned()))?,
        };
        let mut walked = root.to_owned();
        for name in path.split('/').filter(|c| !c.is_empty()) {
            let tree = self.store.read_tree(hash).await?;
            let entry = tree
                .entries()
                .iter()
                .find(|e| e.name == name)
                .ok_or_else(|| NodeError::NoSuchPath {
                    tree: walked.clone(),
                    name: name.to_owned(),
                })?;
            hash = entry.hash;
            walked = format!("{walked}/{name}");
        }
        Ok(hash)
    }

    /// Adds a file or directory; pins it when `pin` is given.
    pub async fn add_path(
        &self,
        path: &Path,
        pin: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<AddResult, NodeError> {
        if let Some(name) = pin {
            clive_cas::pins::validate_pin_name(name)?;
        }
        self.home.check_source(path)?;
        let (added, guard) = self.store.add_path(path, progress).await?;
        self.finish_add(path.display().to_string(), added, guard, pin)
            .await
    }

    /// Adds everything `reader` yields as one blob; pins it when `pin` is given.
    pub async fn add_reader<R: tokio::io::AsyncRead + Unpin>(
        &self,
        reader: R,
        pin: Option<&str>,
        progress: Arc<dyn Progress>,
    ) -> Result<AddResult, NodeError> {
        if let Some(name) = pin {
            clive_cas::pins::validate_pin_name(name)?;
        }
        let (added, guard) = self.store.add_reader(reader, progress).await?;
        self.finish_add("-".into(), added, guard, pin).await
    }

    async fn finish_add(
        &self,
        source: String,
        added: Added,
        guard: clive_cas::ImportGuard,
        pin: Option<&str>,
    ) -> Result<AddResult, NodeError> {
        // Durable before it is reported, and pinned before it is unprotected.
        self.store.sync().await?;
        let mut replaced = None;
        if let Some(name) = pin {
            replaced = self.store.pin(name, added.hash).await?.replaced;
        }
        drop(guard);
        Ok(AddResult {
            source,
            pin: pin.map(str::to_owned),
            replaced: replaced.map(|h| h.to_string()),
            added,
        })
    }

    /// Writes the bytes of an object to `out`.
    pub async fn cat<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        object: &str,
        out: &mut W,
    ) -> Result<u64, NodeError> {
        let hash = self.resolve(object).await?;
        Ok(self.store.write_blob_to(hash, out).await?)
    }

    /// Lists a tree.
    pub async fn ls(&self, object: &str) -> Result<Vec<ListEntry>, NodeError> {
        let hash = self.resolve(object).await?;
        let tree = self.store.read_tree(hash).await?;
        let mut out = Vec::with_capacity(tree.entries().len());
        for e in tree.entries() {
            let target = match e.kind {
                EntryKind::Symlink => Some(
                    self.store
                        .read_bytes(e.hash)
                        .await
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_else(|_| "(target not stored)".into()),
                ),
                _ => None,
            };
            out.push(ListEntry {
                name: e.name.clone(),
                kind: e.kind,
                size: e.size,
                hash: e.hash,
                target,
            });
        }
        Ok(out)
    }

    /// Whether an object is a blob or a tree.
    pub async fn kind(&self, object: &str) -> Result<ObjectKind, NodeError> {
        let hash = self.resolve(object).await?;
        Ok(self.store.kind(hash).await?)
    }

    /// Materialises an object at `dest`.
    pub async fn export(
        &self,
        object: &str,
        dest: &Path,
        force: bool,
        progress: Arc<dyn Progress>,
    ) -> Result<Exported, NodeError> {
        self.home.check_destination(dest)?;
        let hash = self.resolve(object).await?;
        Ok(self.store.export(hash, dest, force, progress).await?)
    }

    /// Pins an object under `name`; refuses one whose closure (what a tree
    /// reaches) is not all stored here.
    pub async fn pin_add(&self, name: &str, object: &str) -> Result<Pin, NodeError> {
        let _hold = self.store.hold_roots().await;
        let hash = self.resolve(object).await?;
        let missing = self.store.missing_below(hash).await?;
        if !missing.is_empty() {
            return Err(clive_cas::CasError::Incomplete { hash, missing }.into());
        }
        Ok(self.store.pin(name, hash).await?)
    }

    /// Removes a pin; returns what it pinned.
    pub async fn pin_rm(&self, name: &str) -> Result<Pin, NodeError> {
        let hash = self.store.unpin(name).await?;
        let kind = self.store.kind(hash).await.unwrap_or(ObjectKind::Blob);
        Ok(Pin {
            name: name.to_owned(),
            hash,
            kind,
            replaced: None,
        })
    }

    /// Every pin.
    pub async fn pins(&self) -> Result<Vec<Pin>, NodeError> {
        Ok(self.store.pins().await?)
    }

    /// Removes what nothing pinned reaches, and orphaned files. Waits for
    /// running imports, fetches and pins to finish, and holds off new ones
    /// until it is done (see [`clive_cas::roots`]): what is live is computed
    /// under that lock.
    pub async fn gc(&self, dry_run: bool) -> Result<GcReport, NodeError> {
        let lock = self.store.lock_for_gc().await;
        let mut keep = self.kept_roots()?;
        keep.extend(self.net.in_flight().into_iter().map(|hash| Root {
            hash,
            why: format!("a transfer of {hash} under way"),
            required: false,
        }));
        Ok(self.store.gc(&lock, dry_run, &keep).await?)
    }

    /// Roots other than pins: trust objects (which must be stored) and what
    /// names point at (published, followed, overridden; kept if stored).
    fn kept_roots(&self) -> Result<Vec<Root>, NodeError> {
        let mut keep: Vec<Root> = self
            .trust
            .object_hashes()?
            .into_iter()
            .map(|hash| Root {
                hash,
                why: format!("node object {hash}"),
                required: true,
            })
            .collect();
        let named = self.zones().referenced()?;
        keep.extend(
            named
                .iter()
                .filter_map(|h| clive_cas::parse_hash(h).ok())
                .map(|hash| Root {
                    hash,
                    why: format!("a name pointing at {hash}"),
                    required: false,
                }),
        );
        Ok(keep)
    }

    /// Re-verifies the whole store; with `repair`, then fetches every
    /// damaged or missing object again from the peers that have it.
    pub async fn fsck(
        &self,
        repair: bool,
        progress: Arc<dyn Progress>,
    ) -> Result<FsckReport, NodeError> {
        let keep = self.kept_roots()?;
        let report = self.store.fsck(progress.clone(), &keep).await?;
        if !repair || report.is_clean() {
            return Ok(report);
        }
        crate::repair::repair(self, report, &keep, progress).await
    }
}

fn write_default_config(home: &Home) -> Result<(), NodeError> {
    let config = home.config_path();
    if !config.exists() {
        std::fs::write(&config, DEFAULT_CONFIG)
            .map_err(|e| NodeError::io(format!("writing {}", config.display()), e))?;
    }
    Ok(())
}

/// The public key in `path`, if the file is an OpenSSH public key (line).
pub(crate) fn read_public_key_file(path: &Path) -> Option<PublicIdentity> {
    PublicIdentity::read_file(path).ok()
}

/// The node's public identity: from its key file, or its `.pub` alone.
fn read_identity(home: &Home) -> Result<PublicIdentity, NodeError> {
    if home.key_path().exists() {
        return Ok(NodeKey::read(&home.key_path())?.public_as_shown());
    }
    read_public_key_file(&home.pub_key_path()).ok_or_else(|| {
        NodeError::Identity(clive_trust::IdentityError::Missing {
            path: home.key_path(),
        })
    })
}

/// Creates the home readable by its owner alone; one that exists already
/// (made by `mkdir` or `mktemp -d`) is made so too.
fn create_private_dir(path: &Path) -> Result<(), NodeError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| NodeError::io(format!("creating {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| NodeError::io(format!("making {} private (mode 0700)", path.display()), e))
}

fn default_comment() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, which is passed along.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let host = match std::str::from_utf8(&buf[..len]) {
        Ok(host) if rc == 0 && !host.is_empty() => host.to_owned(),
        _ => "localhost".to_owned(),
    };
    format!("clive-node@{host}")
}
