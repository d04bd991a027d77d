//! Errors of the node API.

use std::path::PathBuf;

use clive_cas::{CasError, Hash};
use clive_trust::{CertError, IdentityError, RootsError};

/// Anything the node API can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No home was given and the platform has no data directory.
    #[error("cannot find the user's data directory: set CLIVE_HOME or pass --home")]
    NoDataDir,
    /// The home has no node yet.
    #[error("no node at {home}: run `clive-node init` first")]
    NotInitialized {
        /// The home.
        home: PathBuf,
    },
    /// `init` on a home that already has a node.
    #[error("{home} already holds a node (its key is {key}); choose another --home")]
    AlreadyInitialized {
        /// The home.
        home: PathBuf,
        /// Its key file.
        key: PathBuf,
    },
    /// Another process owns the home.
    #[error("{home} is in use by {}; stop it or use another --home", describe(*pid, command))]
    HomeInUse {
        /// The home.
        home: PathBuf,
        /// The owning process, if it could be read.
        pid: Option<u32>,
        /// Its command line, if known.
        command: Option<String>,
    },
    /// A path to write to or to add that overlaps the node's home.
    #[error(
        "refusing to {doing} {path}: it {relation} ({home}), which holds the node's key, \
         store and state; choose a path outside it"
    )]
    OverlapsHome {
        /// What was to be done with the path.
        doing: &'static str,
        /// The path, as given.
        path: PathBuf,
        /// How it overlaps the home.
        relation: &'static str,
        /// The home.
        home: PathBuf,
    },
    /// `config.toml` is invalid.
    #[error("{path}: {cause}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        cause: ConfigError,
    },
    /// A string that names neither a hash nor a pin.
    #[error("{0:?} is neither a hash (64 hex digits) nor the name of a pin")]
    UnknownObject(String),
    /// `cat` of a tree to a terminal.
    #[error(
        "{object} is a tree, whose encoding is binary: list it with `clive-node ls {object}` \
         or write it out with `clive-node export {object} DIR`"
    )]
    TreeToTerminal {
        /// OBJECT, as given.
        object: String,
    },
    /// A path inside a tree that names nothing.
    #[error("{tree} has no entry {name:?}")]
    NoSuchPath {
        /// The tree walked so far.
        tree: String,
        /// The missing name.
        name: String,
    },
    /// A KEY argument that names no key.
    #[error("{0}")]
    UnknownKey(KeyError),
    /// A CERT argument that names no certificate.
    #[error("no certificate {0} is known here (give its id or the file written with -o)")]
    UnknownCert(String),
    /// Certificates, chains, roots, signatures.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The home has the node's public key but not its private key file,
    /// and no ssh-agent was given to sign with.
    #[error(
        "{path}: no such key file: this home holds only the node's public key; \
         sign with the key in an ssh-agent (set SSH_AUTH_SOCK), or put the private key \
         back at {path} (mode 0600)"
    )]
    KeyMissing {
        /// The key file.
        path: PathBuf,
    },
    /// The node's key.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// A file given by path could not be read, or is far too large.
    #[error(transparent)]
    Read(#[from] clive_trust::ReadError),
    /// The store.
    #[error(transparent)]
    Cas(#[from] CasError),
    /// A database of the home (`state.redb`, `blobs/blobs.db`) is damaged
    /// beyond what redb can repair.
    #[error("{path} is damaged ({cause}): {recovery}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What redb found.
        cause: Damage,
        /// How to recover.
        recovery: String,
    },
    /// `state.redb` is missing or empty while the store holds objects.
    #[error(
        "{state} {what}, but the store {store} holds objects: refusing to start over, which \
         would lose every pin (and let gc remove everything); stop any daemon and restore \
         {state} from a backup, or, to start over without the pins, move the store aside \
         (mv {store} {store}.old)"
    )]
    StateLost {
        /// The state file.
        state: PathBuf,
        /// "is missing" or "is empty".
        what: &'static str,
        /// The store directory.
        store: PathBuf,
    },
    /// The state database.
    #[error("state database {path}: {cause}")]
    State {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        cause: StateError,
    },
    /// The network: endpoint, peers, transfers.
    #[error(transparent)]
    Net(#[from] NetError),
    /// Signed names, as clive-naming refuses them: zones, metadata,
    /// resolution. Shown as its message alone, as the message already
    /// says what its cause is.
    #[error("{0}")]
    Naming(clive_naming::NamingError),
    /// Signed names, as the node refuses them: tickets, sources, peers.
    #[error(transparent)]
    Names(#[from] NamesError),
    /// Jobs: documents, the executor, dispatch.
    #[error(transparent)]
    Job(#[from] crate::jobs::JobError),
    /// Sync failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A file system operation.
    #[error("{context}: {cause}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        cause: std::io::Error,
    },
}

impl From<clive_naming::NamingError> for NodeError {
    fn from(e: clive_naming::NamingError) -> Self {
        NodeError::Naming(e)
    }
}

// The kinds below carry their causes as plain fields, not as `source`s:
// each message already says its cause, and the API prints a chain of
// sources after the message, which would say it twice.

/// What the trust layer refuses.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A certificate, capability or revocation that does not parse or
    /// does not sign.
    #[error("{0}")]
    Cert(CertError),
    /// The allowed_signers file.
    #[error("{0}")]
    Roots(RootsError),
    /// A certificate or revocation file that does not decode.
    #[error("{}: {cause}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        cause: CertError,
    },
    /// A certificate's `.sig` file that is not text.
    #[error("{}.sig is not text", path.display())]
    SigNotText {
        /// The certificate file.
        path: PathBuf,
    },
    /// `--agent` with no agent.
    #[error("no ssh-agent: SSH_AUTH_SOCK is not set")]
    NoAgent,
    /// An invite with no capability.
    #[error("an invite must grant at least one capability")]
    EmptyInvite,
}

impl From<CertError> for TrustError {
    fn from(e: CertError) -> Self {
        TrustError::Cert(e)
    }
}

impl From<RootsError> for TrustError {
    fn from(e: RootsError) -> Self {
        TrustError::Roots(e)
    }
}

impl From<CertError> for NodeError {
    fn from(e: CertError) -> Self {
        NodeError::Trust(TrustError::Cert(e))
    }
}

impl From<RootsError> for NodeError {
    fn from(e: RootsError) -> Self {
        NodeError::Trust(TrustError::Roots(e))
    }
}

/// What the network layer refuses or fails at: the endpoint, peers,
/// invites, transfers.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The peer and invite tables of `state.redb`.
    #[error("node state: {0}")]
    State(StateError),
    /// Dialling a peer failed.
    #[error(
        "cannot reach peer {peer}: {cause} (is it running? `clive-node peers add` records a new \
         address)"
    )]
    Unreachable {
        /// The peer (short id).
        peer: String,
        /// Why.
        cause: iroh::endpoint::ConnectError,
    },
    /// Dialling a peer timed out.
    #[error("cannot reach peer {peer}: no answer within {secs}s (is it running?)")]
    NoAnswer {
        /// The peer (short id).
        peer: String,
        /// The time allowed.
        secs: u64,
    },
    /// A peer refused a request.
    #[error("peer {peer} refused {what}: {reason}")]
    Refused {
        /// The peer (short id).
        peer: String,
        /// What it refused (`the connection`, `the push`).
        what: &'static str,
        /// The peer's reason.
        reason: String,
    },
    /// A peer answered with a reply of another request.
    #[error("peer {peer} answered {what} out of turn: {reply}")]
    OutOfTurn {
        /// The peer (short id).
        peer: String,
        /// The request (`hello`, `the push`).
        what: &'static str,
        /// The reply, as debug text.
        reply: String,
    },
    /// A peer-protocol exchange failed.
    #[error("peer {peer}: {what}")]
    Exchange {
        /// The peer (short id).
        peer: String,
        /// What failed.
        what: ExchangeError,
    },
    /// A peer message that cannot be encoded.
    #[error("encoding a peer message: {0}")]
    Encode(serde_json::Error),
    /// A peer message over the limit.
    #[error("a peer message of {len} bytes is over the {limit}-byte limit")]
    MessageTooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The endpoint cannot be set up or bound.
    #[error("{0}")]
    Endpoint(EndpointError),
    /// Going online with only a public key.
    #[error(
        "going online needs the private key in {}: this home holds only a public key \
         (the QUIC handshake signs with the key in-process, which an ssh-agent cannot do)",
        path.display()
    )]
    NoPrivateKey {
        /// The key file.
        path: PathBuf,
    },
    /// The node's key does not sign.
    #[error("the node key cannot sign: {0}")]
    KeyCannotSign(clive_trust::SigError),
    /// 32 bytes that are no ed25519 public key.
    #[error("not a valid ed25519 public key")]
    InvalidKey,
    /// A fetch with nobody to ask.
    #[error(
        "no peer to fetch from: join a node (`clive-node join TICKET`), add one \
         (`clive-node peers add`), or name one with --from"
    )]
    NoProvider,
    /// Every provider failed.
    #[error("could not fetch {hash}: {}", failures.join("; "))]
    FetchFailed {
        /// The object.
        hash: Hash,
        /// What went wrong with each provider, in the order they were
        /// asked: the peer, what happened and what to do about it, as
        /// the user reads it.
        failures: Vec<String>,
    },
    /// The local blob store could not be read.
    #[error("reading the local store: {0}")]
    LocalStore(Box<dyn std::error::Error + Send + Sync>),
    /// A push of something not all here.
    #[error("cannot push {root}: {hash} is not (completely) stored here")]
    NotStored {
        /// What was to be pushed.
        root: Hash,
        /// What of it is missing.
        hash: Hash,
    },
    /// `fsck --repair` could not go online.
    #[error("cannot go online to fetch it: {0}")]
    Offline(std::sync::Arc<NodeError>),
    /// A service of the daemon started while the node is not online.
    #[error("the node is not online")]
    NotOnline,
    /// `invite --uses 0`.
    #[error("--uses must be at least 1")]
    NoUses,
    /// `invite` with no daemon.
    #[error("an invite needs the node online to answer the joiner: run `clive-node start` first")]
    InviteOffline,
    /// A ticket that does not read.
    #[error("{0}")]
    Ticket(TicketError),
    /// A ticket past its expiry, by this node's clock.
    #[error("this ticket expired {0}; ask for a new invite")]
    TicketExpired(String),
    /// A ticket this node issued.
    #[error("this ticket was issued by this node itself")]
    OwnTicket,
    /// A ticket naming no valid key.
    #[error("the ticket names an invalid key")]
    TicketKey,
    /// The inviter's certificate does not decode.
    #[error("the inviter sent a bad certificate: {0}")]
    BadJoinCert(CertError),
    /// The inviter refused the join.
    #[error("the inviter refused: {0}")]
    JoinRefused(String),
    /// The inviter answered with a reply of another request (a
    /// `net::wire::PeerReply`, which this module cannot name without
    /// importing the network layer that imports it).
    #[error("the inviter answered out of turn: {0:?}")]
    JoinOutOfTurn(Box<dyn std::fmt::Debug + Send + Sync>),
    /// The inviter's certificate is not for this node, or not from it.
    #[error("the inviter's certificate does not grant this node anything from the inviter")]
    JoinCertMismatch,
    /// An address that does not parse.
    #[error("{0:?} is not an address (expected IP:PORT)")]
    BadAddr(String),
    /// `peers rm` of a stranger.
    #[error("{0} is not a peer of this node")]
    NotAPeer(String),
    /// `get` of something that is no hash.
    #[error("{0:?} is not a hash (64 hex digits)")]
    NotAHash(String),
}

/// What the node refuses about signed names (clive-naming's own refusals
/// are [`NodeError::Naming`]).
#[derive(Debug, thiserror::Error)]
pub enum NamesError {
    /// Verifying fetched metadata did not finish.
    #[error("verifying metadata: {0}")]
    Verifying(tokio::task::JoinError),
    /// Fetching from a mirror did not finish.
    #[error("{0}")]
    Task(tokio::task::JoinError),
    /// A peer refused to list a zone.
    #[error("peer {peer} refused to list the zone: {reason}")]
    ListRefused {
        /// The peer (short id).
        peer: String,
        /// Its reason.
        reason: String,
    },
    /// A peer answered with a reply of another request.
    #[error("peer {peer} answered out of turn: {reply}")]
    OutOfTurn {
        /// The peer (short id).
        peer: String,
        /// The reply, as debug text.
        reply: String,
    },
    /// A metadata object over the limit.
    #[error("metadata object {hash} is over {limit} bytes")]
    TooLarge {
        /// The object.
        hash: Hash,
        /// The limit.
        limit: u64,
    },
    /// The zone's publisher refused a delegate's metadata.
    #[error("the zone's publisher {publisher} refused the new {role}: {reason}")]
    SubmitRefused {
        /// The publisher (short id).
        publisher: String,
        /// The delegated role.
        role: String,
        /// Its reason.
        reason: String,
    },
    /// A zone with no root file.
    #[error("zone {0} has no root")]
    NoRoot(String),
    /// A zone with no clive-node id.
    #[error("zone {0} has no clive-node id")]
    NoId(String),
    /// A publish target that is neither a path nor a stored object.
    #[error("{0:?} is neither a file or directory nor an object in the store")]
    NoTarget(String),
    /// A publish that committed nothing.
    #[error("nothing was published")]
    NothingPublished,
    /// A publish of names of several zones.
    #[error("{name} is not in zone {zone}: publish one zone at a time")]
    OneZone {
        /// The name outside the zone.
        name: String,
        /// The zone of the first name.
        zone: String,
    },
    /// A delegated publish for a zone whose publisher is unknown.
    #[error(
        "zone {0}: this node does not know which node publishes it; follow it                      with a ticket"
    )]
    NoOrigin(String),
    /// A root file that does not parse.
    #[error("{}: {cause}", path.display())]
    BadRoot {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        cause: clive_naming::tuf::TufError,
    },
    /// Metadata that does not parse.
    #[error("{0}")]
    Metadata(clive_naming::tuf::TufError),
    /// A root that names no zone, and no `--as`.
    #[error("this root does not name its zone: give one with --as ZONE")]
    Unnamed,
    /// A zone ticket that does not read.
    #[error("{0}")]
    Ticket(TicketError),
    /// A zone ticket whose root the publisher no longer serves.
    #[error(
        "the publisher no longer serves the root this ticket names; ask for a new \
         ticket (`clive-node name zone show ZONE`)"
    )]
    StaleTicket,
    /// A zone ticket whose root is of another zone.
    #[error("the ticket's root belongs to another zone")]
    OtherZone,
    /// `name refresh` with nowhere to refresh from.
    #[error("zone {0} has no mirror and no publishing peer to refresh from")]
    NoSource(String),
    /// A downloaded target that is not what its zone's metadata signs.
    #[error("{0}")]
    BadTarget(String),
    /// `name override --clear` of a name with no override.
    #[error("{0} has no override here")]
    NoOverride(String),
}

/// Why a table of `state.redb` could not be read or written: redb's
/// error, or a record that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Opening the database.
    #[error("{0}")]
    Database(redb::DatabaseError),
    /// Beginning a transaction.
    #[error("{0}")]
    Transaction(redb::TransactionError),
    /// Opening a table.
    #[error("{0}")]
    Table(redb::TableError),
    /// Reading or writing a table.
    #[error("{0}")]
    Storage(redb::StorageError),
    /// Committing.
    #[error("{0}")]
    Commit(redb::CommitError),
    /// A record that does not decode.
    #[error("damaged record: {0}")]
    Record(serde_json::Error),
    /// A record that does not encode.
    #[error("{0}")]
    Encode(serde_json::Error),
}

macro_rules! state_error_from {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for StateError {
            fn from(e: $ty) -> Self {
                StateError::$variant(e)
            }
        }
    )*};
}
state_error_from!(
    Database(redb::DatabaseError),
    Transaction(redb::TransactionError),
    Table(redb::TableError),
    Storage(redb::StorageError),
    Commit(redb::CommitError)
);

impl From<StateError> for NetError {
    fn from(e: StateError) -> Self {
        NetError::State(e)
    }
}

impl From<StateError> for NodeError {
    /// The node's own tables (trust's): `state.redb` in the home, shown by
    /// its name.
    fn from(cause: StateError) -> Self {
        NodeError::State {
            path: "state.redb".into(),
            cause,
        }
    }
}

/// What redb found wrong with a damaged database.
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    /// redb refused to open it.
    #[error("{0}")]
    Refused(redb::DatabaseError),
    /// redb panicked reading it (its message).
    #[error("redb cannot read it: {0}")]
    Panicked(String),
}

/// What is wrong with `config.toml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It is not TOML of the expected shape.
    #[error("{0}")]
    Toml(toml::de::Error),
    /// A format version this build does not read.
    #[error("version {0} is not supported (this build reads version 1)")]
    Version(u32),
}

/// Why a KEY argument names no key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A fingerprint of no key known here.
    #[error("no known key has the fingerprint {0}")]
    UnknownFingerprint(String),
    /// A file that holds no public key.
    #[error("{}: {cause}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why it holds none.
        cause: IdentityError,
    },
    /// Nothing a key can be read from.
    #[error(
        "{0:?} is not a public key line, a file holding one, an endpoint id, or the \
         fingerprint of a known key"
    )]
    NotAKey(String),
}

/// Which step of a peer-protocol exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Opening the stream.
    #[error("opening a stream: {0}")]
    Open(iroh::endpoint::ConnectionError),
    /// Sending the request.
    #[error("sending: {0}")]
    Send(iroh::endpoint::WriteError),
    /// Finishing the request.
    #[error("sending: {0}")]
    Finish(iroh::endpoint::ClosedStream),
    /// Reading the reply.
    #[error("reading the reply: {0}")]
    Read(iroh::endpoint::ReadToEndError),
    /// A reply that does not decode (what is wrong with it).
    #[error("{0}")]
    Malformed(String),
    /// No reply in time.
    #[error("no reply within {0}s")]
    Timeout(u64),
}

/// Why the endpoint cannot be set up or bound.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The built-in default address does not parse.
    #[error("{0}")]
    DefaultBind(std::net::AddrParseError),
    /// An address iroh cannot listen on.
    #[error("cannot listen on {addr}: {cause}")]
    Address {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why not.
        cause: iroh::endpoint::InvalidSocketAddr,
    },
    /// A relay that is not a URL.
    #[error("relay {url:?} is not a URL: {cause}")]
    RelayUrl {
        /// The relay, as given.
        url: String,
        /// Why it does not parse.
        cause: iroh::RelayUrlParseError,
    },
    /// Binding the endpoint failed.
    #[error("cannot listen on {addrs}: {cause}")]
    Bind {
        /// The addresses, `, `-separated.
        addrs: String,
        /// Why.
        cause: iroh::endpoint::BindError,
    },
}

/// Why a ticket cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not a clive-node ticket at all.
    #[error("this is not a clive-node ticket (tickets start with {prefix:?})")]
    NotATicket {
        /// How an invite ticket starts.
        prefix: &'static str,
    },
    /// Damaged in copying.
    #[error("the ticket is damaged ({0}); copy it again, whole")]
    Damaged(&'static str),
}

impl From<TicketError> for NetError {
    fn from(e: TicketError) -> Self {
        NetError::Ticket(e)
    }
}

impl NodeError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        NodeError::Io {
            context: context.into(),
            cause: source,
        }
    }
}

fn describe(pid: Option<u32>, command: &Option<String>) -> String {
    match (pid, command) {
        (Some(pid), Some(cmd)) => format!("process {pid} ({cmd})"),
        (Some(pid), None) => format!("process {pid}"),
        _ => "another process".into(),
    }
}

/// An error and its causes, joined by `": "` (as `{:#}` of `anyhow` shows them).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// What sync may fail with.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The tables of `state.redb` could not be read or written.
    #[error("the sync tables of state.redb: {0}")]
    State(StateError),
    /// A record of a format version this node does not read.
    #[error("a sync record of format version {version} (this node reads version 1)")]
    RecordVersion {
        /// Its version.
        version: u32,
    },
    /// `sync follow` of a zone this node does not know.
    #[error(
        "this node knows no zone {zone}: follow it first with `clive-node name follow TICKET`, \
         or give `sync follow` its zone ticket or root.json"
    )]
    UnknownZone {
        /// The zone.
        zone: String,
    },
    /// `sync unfollow` of something not in the follow set.
    #[error("{entry} is not in the follow set (`clive-node sync ls` lists it)")]
    NotFollowed {
        /// `ZONE` or `ZONE/PREFIX`.
        entry: String,
    },
    /// A peer refused or broke the sync protocol.
    #[error("peer {peer}: {reason}")]
    Peer {
        /// The peer (short id).
        peer: String,
        /// What went wrong.
        reason: String,
    },
    /// A peer that does not sync with this node (it refused the heads
    /// exchange, most often because this node holds no `fetch` there).
    #[error("peer {peer} does not sync with this node: {reason}")]
    Refused {
        /// The peer (short id).
        peer: String,
        /// Its reason.
        reason: String,
    },
    /// A synced folder that cannot be read, written or set up.
    #[error("folder {}: {reason}", dir.display())]
    Folder {
        /// The folder.
        dir: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// `sync folder rm` of a directory that is not a synced folder.
    #[error("{} is not a synced folder (`clive-node sync folder ls` lists them)", dir.display())]
    NoFolder {
        /// The directory.
        dir: std::path::PathBuf,
    },
    /// A catch-up that took longer than its bound.
    #[error("the catch-up with {peer} took longer than {secs} s; it continues on the next")]
    TooLong {
        /// The peer (short id).
        peer: String,
        /// The bound.
        secs: u64,
    },
}
