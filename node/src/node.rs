//! The node itself: its home, key, store, trust state, state database,
//! clock and network slot. What it does is reached through one handle per
//! concern, each defined in its own module: [`Node::store`] (`store.rs`),
//! [`Node::trust`] (`trust/`), [`Node::peers`] (`peers/`) and
//! [`Node::names`] (`names/`), [`Node::sync`] (`sync/`). Every result is a plain serialisable value,
//! so the same calls work in-process and remotely.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use clive_cas::Store;
use clive_trust::{Clock, NodeKey, PublicIdentity};
use serde::{Deserialize, Serialize};

use crate::{
    Config, Home, HomeLock, NodeError,
    authority::NodeTrust,
    config::DEFAULT_CONFIG,
    events::ZoneEvents,
    jobs::{
        executor::{Executor, ExecutorParts},
        watches::Watches,
        wire::JOBS_ALPN,
    },
    net::{Mode, Net, NetOptions, NetSlot, Parts, ProtocolFactory, jobs::JobsProtocol},
};

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

/// How long [`Node::close`] waits for cancelled network tasks to let go of
/// the state database.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A running node: owns its home until dropped or closed.
#[derive(Debug)]
pub struct Node {
    home: Home,
    identity: PublicIdentity,
    store: Store,
    trust: Arc<NodeTrust>,
    db: Arc<redb::Database>,
    config: Config,
    clock: Arc<dyn Clock>,
    pub(crate) net: NetSlot,
    executor: Arc<Executor>,
    unchanged: crate::unchanged::Unchanged,
    zone_events: ZoneEvents,
    watches: Arc<Watches>,
    sync: Arc<crate::net::sync::SyncState>,
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

    /// Opens an initialised home, taking ownership of it. Every expiry the
    /// node decides (certificates, invites, announcements, signed names) is
    /// by `clock`.
    pub async fn open(home: &Home, clock: Arc<dyn Clock>) -> Result<Node, NodeError> {
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
            clock.clone(),
        )?;
        let trust = Arc::new(trust);
        let executor = Executor::open(ExecutorParts {
            db: db.clone(),
            store: store.clone(),
            trust: trust.clone(),
            me: identity.clone(),
            clock: clock.clone(),
            config: config.jobs.clone(),
            dir: home.root().join("jobs"),
        })?;
        let watches = Arc::new(Watches::open(db.clone()));
        Ok(Node {
            home: home.clone(),
            identity,
            store,
            trust,
            db,
            config,
            clock,
            net: Default::default(),
            executor,
            unchanged: Default::default(),
            zone_events: ZoneEvents::default(),
            watches,
            sync: Default::default(),
            _lock: lock,
        })
    }

    /// Brings the node onto the network for good (the daemon's `start`):
    /// binds the endpoint on the configured port and serves peers. The
    /// daemon's background services (`daemon::Services`) then keep
    /// connections to known peers and join the announcement topic.
    /// In-process commands that need the network start a short-lived
    /// endpoint (on any port) on their own.
    pub async fn start_net(&self, options: NetOptions) -> Result<(), NodeError> {
        self.bring_online(options, Mode::Daemon).await.map(|_| ())
    }

    /// The network layer, started for this one command when no daemon has.
    pub(crate) async fn online(&self) -> Result<Arc<Net>, NodeError> {
        self.bring_online(NetOptions::default(), Mode::Command)
            .await
    }

    async fn bring_online(&self, options: NetOptions, mode: Mode) -> Result<Arc<Net>, NodeError> {
        let parts = Parts {
            key_path: self.home.key_path(),
            config: &self.config.net,
            store: self.store.clone(),
            trust: self.trust.clone(),
            db: self.db.clone(),
            identity: self.identity.clone(),
            clock: self.clock.clone(),
            zone_events: self.zone_events.clone(),
            protocols: vec![
                (JOBS_ALPN, self.jobs_protocol()),
                (crate::net::sync::proto::SYNC_ALPN, self.sync_protocol()),
            ],
        };
        self.net.bring_online(parts, options, mode).await
    }

    /// How the network layer serves this node's executor to peers.
    fn jobs_protocol(&self) -> ProtocolFactory {
        let executor = self.executor.clone();
        Box::new(move |shared| JobsProtocol::new(executor, Arc::downgrade(shared)).into())
    }

    /// How the network layer serves this node's sync protocol to peers.
    fn sync_protocol(&self) -> ProtocolFactory {
        let executor = self.executor.clone();
        let state = self.sync.clone();
        Box::new(move |shared| {
            crate::net::sync::proto::SyncProtocol::new(Arc::downgrade(shared), executor, state)
                .into()
        })
    }

    /// Sync's live state: each peer's catch-up (what `sync status` shows).
    pub fn sync_state(&self) -> &Arc<crate::net::sync::SyncState> {
        &self.sync
    }

    /// The paths added before, by their stamps (job inputs not read again).
    pub(crate) fn unchanged(&self) -> &crate::unchanged::Unchanged {
        &self.unchanged
    }

    /// The node's executor: the jobs it runs and the records of those it sent.
    pub fn executor(&self) -> &Arc<Executor> {
        &self.executor
    }

    /// The node's zone events: raised wherever zone metadata is stored,
    /// heard by pipeline watches.
    pub fn zone_events(&self) -> &ZoneEvents {
        &self.zone_events
    }

    /// The pipeline watches live on this node (`job watches`).
    pub fn watches(&self) -> &Arc<Watches> {
        &self.watches
    }

    /// Leaves the network: closes connections and the endpoint.
    pub async fn stop_net(&self) {
        self.net.stop().await;
    }

    /// Flushes and stops the store. The home is released when the node drops.
    pub async fn close(self) -> Result<(), NodeError> {
        self.executor.stop_all().await;
        self.stop_net().await;
        self.store.shutdown().await?;
        let db = self.db.clone();
        drop(self);
        // Tasks of the network that were cancelled (a connection being
        // served, a dial) drop their share of the state a moment later.
        // Once ours is the last, dropping it closes the file here, so the
        // home can be opened again as soon as this returns.
        let released = tokio::time::Instant::now() + CLOSE_GRACE;
        while Arc::strong_count(&db) > 1 && tokio::time::Instant::now() < released {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if Arc::strong_count(&db) > 1 {
            tracing::warn!("closing: state.redb is still held by a task of the network");
        }
        drop(db);
        Ok(())
    }

    /// The home this node owns.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The content-addressed store itself (what [`Node::store`] wraps).
    pub(crate) fn cas(&self) -> &Store {
        &self.store
    }

    /// The node's trust state (what [`Node::trust`] wraps).
    pub(crate) fn trust_state(&self) -> &NodeTrust {
        &self.trust
    }

    /// The node's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Now, by the node's clock (seconds since the Unix epoch).
    pub fn now(&self) -> u64 {
        self.clock.now()
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
