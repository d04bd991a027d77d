//! The node API as requests and replies.
//!
//! Every command of the command-line tool is a [`Request`]; [`handle`] runs
//! it against a [`Node`] and answers with a [`Reply`]. The same handler
//! serves the tool in-process (no daemon) and the daemon's control socket
//! ([`crate::control`]), so both give the same results and the same errors.
//!
//! A request travels inside a [`Call`], which says where it was made (the
//! client's working directory, against which relative paths are resolved,
//! and its ssh-agent). What a call streams goes through a [`CallContext`]:
//! progress of long work, the standard output of `cat`, the standard input
//! of `add -`, the passphrase of the node's key, and whether a daemon
//! serves it.
//!
//! Adding a command: a [`Request`] variant, its arm in [`handle`], a
//! [`Reply`] variant if none fits, and, when it reads standard input or
//! shows progress, an arm in [`Request::reads_stdin`] or
//! [`Request::progress_label`]. Both transports carry it unchanged.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use clive_cas::{Exported, FsckReport, GcReport, NoProgress, Pin, Progress};
use clive_trust::PublicIdentity;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::{
    AddResult, CertInfo, Fetched, IdentityInfo, Imported, Invite, Joined, ListEntry, Node,
    NodeError, PassphraseSource, PeerInfo, Pushed, RootInfo, SignWith, Status, Verdict,
    trust::clock_parse_duration,
};

/// A request and where it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The client's working directory: relative paths in the request are
    /// relative to it.
    pub cwd: PathBuf,
    /// The client's `SSH_AUTH_SOCK`, for signing with `--agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_auth_sock: Option<PathBuf>,
    /// What to do.
    pub request: Request,
}

impl Call {
    /// A call made from this process: its working directory and ssh-agent.
    pub fn here(request: Request) -> Result<Call, ApiError> {
        let cwd = std::env::current_dir().map_err(|cause| ApiError::Node {
            cause: NodeError::io("reading the working directory", cause),
        })?;
        let ssh_auth_sock = std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        Ok(Call {
            cwd,
            ssh_auth_sock,
            request,
        })
    }
}

/// Every command of the node API.
///
/// KEY arguments (`key`, `peer`, `from`, `to`) are an OpenSSH public key
/// line, a file holding one, an endpoint id, or the `SHA256:` fingerprint of
/// a known key; CERT arguments are a certificate id or a file written with
/// `-o`. OBJECT arguments are a hash or a pin name, optionally followed by a
/// path inside that tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The node's identity.
    Id,
    /// Add a file or directory.
    Add {
        /// The path, as the user gave it.
        path: PathBuf,
        /// Pin it under this name.
        #[serde(default)]
        pin: Option<String>,
    },
    /// Add the client's standard input as one blob.
    AddStdin {
        /// Pin it under this name.
        #[serde(default)]
        pin: Option<String>,
    },
    /// Write a blob to the client's standard output.
    Cat {
        /// OBJECT.
        object: String,
        /// The client's standard output is a terminal: a tree is refused
        /// (its encoding is binary), pointing to `ls`.
        #[serde(default)]
        terminal: bool,
    },
    /// List a tree.
    Ls {
        /// OBJECT.
        object: String,
    },
    /// Write an object to a path.
    Export {
        /// OBJECT.
        object: String,
        /// Where.
        dest: PathBuf,
        /// Replace `dest` if it exists.
        #[serde(default)]
        force: bool,
    },
    /// Pin an object.
    PinAdd {
        /// The pin's name.
        name: String,
        /// OBJECT.
        object: String,
    },
    /// Remove a pin.
    PinRm {
        /// The pin's name.
        name: String,
    },
    /// Every pin.
    PinLs,
    /// Remove what no pin reaches.
    Gc {
        /// Only report.
        #[serde(default)]
        dry_run: bool,
    },
    /// Re-verify the store.
    Fsck {
        /// Fetch damaged or missing objects again from peers.
        #[serde(default)]
        repair: bool,
    },
    /// Issue a certificate.
    TrustGrant {
        /// The subject's KEY.
        key: String,
        /// Capabilities, comma-separated.
        caps: String,
        /// Validity (`30d`, `12h`).
        expires: String,
        /// Further links the subject may delegate.
        delegate: u8,
        /// Also write the body and its signature here.
        #[serde(default)]
        out: Option<PathBuf>,
        /// Sign with the client's ssh-agent.
        #[serde(default)]
        agent: bool,
    },
    /// Import a certificate or a revocation.
    TrustImport {
        /// The file.
        file: PathBuf,
    },
    /// Every certificate.
    TrustLs,
    /// One certificate.
    TrustShow {
        /// CERT.
        cert: String,
    },
    /// Whether a peer holds a capability.
    TrustVerify {
        /// The peer's KEY.
        peer: String,
        /// The capability.
        cap: String,
    },
    /// Revoke a certificate.
    TrustRevoke {
        /// CERT.
        cert: String,
        /// Also write the revocation here.
        #[serde(default)]
        out: Option<PathBuf>,
        /// Sign with the client's ssh-agent.
        #[serde(default)]
        agent: bool,
    },
    /// Trust a key as a root.
    TrustRootsAdd {
        /// KEY.
        key: String,
        /// Its principal name.
        name: String,
    },
    /// Stop trusting a root.
    TrustRootsRm {
        /// KEY.
        key: String,
    },
    /// The trust roots.
    TrustRootsLs,
    /// The node's status.
    Status,
    /// Stop the daemon.
    Stop,
    /// Create an invite.
    Invite {
        /// Capabilities the joiner will hold.
        caps: String,
        /// How long the ticket works (`1h`).
        expires: String,
        /// How many joins it admits.
        uses: u32,
    },
    /// Join the node that issued a ticket.
    Join {
        /// The ticket.
        ticket: String,
    },
    /// Every known peer.
    PeersLs,
    /// Record a peer.
    PeerAdd {
        /// The peer's KEY.
        peer: String,
        /// Its addresses.
        addrs: Vec<String>,
    },
    /// Forget a peer.
    PeerRm {
        /// The peer's KEY.
        peer: String,
    },
    /// Fetch an object from a peer.
    Get {
        /// The object's hash.
        hash: String,
        /// The peer's KEY; any connected peer when `None`.
        #[serde(default)]
        from: Option<String>,
        /// Export it here afterwards.
        #[serde(default)]
        out: Option<PathBuf>,
        /// Replace `out` if it exists.
        #[serde(default)]
        force: bool,
        /// Pin it under this name once it is all here.
        #[serde(default)]
        pin: Option<String>,
    },
    /// Send an object to a peer.
    Push {
        /// OBJECT.
        object: String,
        /// The peer's KEY.
        to: String,
    },
    /// Signed names.
    Name(NameRequest),
}

/// The `name` commands. NAME is `ZONE/PATH`; TARGET is a path (added to the
/// store) or the hash of a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name_op", rename_all = "snake_case")]
pub enum NameRequest {
    /// Create a zone.
    ZoneCreate {
        /// The zone.
        zone: String,
        /// Further root KEYs.
        #[serde(default)]
        keys: Vec<String>,
        /// Root threshold.
        threshold: u32,
        /// Where a root awaiting co-signers goes.
        #[serde(default)]
        out: Option<PathBuf>,
        /// Sign with the client's ssh-agent.
        #[serde(default)]
        agent: bool,
    },
    /// Every zone.
    ZoneLs,
    /// One zone and its ticket.
    ZoneShow {
        /// The zone.
        zone: String,
    },
    /// Publish NAME as TARGET (and further NAME TARGET pairs, in one version).
    Publish {
        /// NAME.
        name: String,
        /// TARGET.
        target: String,
        /// Further NAME, TARGET, NAME, TARGET...
        #[serde(default)]
        more: Vec<String>,
        /// Sign with the client's ssh-agent.
        #[serde(default)]
        agent: bool,
        /// What the client names this publish by, to ask afterwards
        /// whether it was committed ([`NameRequest::Receipt`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<String>,
    },
    /// Remove NAME.
    Unpublish {
        /// NAME.
        name: String,
        /// Sign with the client's ssh-agent.
        #[serde(default)]
        agent: bool,
        /// As for [`NameRequest::Publish`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<String>,
    },
    /// What the publish named `receipt` committed: every name it published
    /// (`Reply::NamesPublished`), none when it was not committed.
    Receipt {
        /// The publish's receipt.
        receipt: String,
    },
    /// Delegate a prefix.
    Delegate {
        /// The zone.
        zone: String,
        /// The prefix.
        prefix: String,
        /// The delegate's KEY.
        to: String,
        /// Sign with the client's ssh-agent.
        #[serde(default)]
        agent: bool,
    },
    /// New keys for a role.
    Rotate {
        /// The zone.
        zone: String,
        /// The role.
        role: String,
        /// Its new KEYs.
        keys: Vec<String>,
        /// Its new threshold.
        #[serde(default)]
        threshold: Option<u32>,
        /// Where a root awaiting co-signers goes.
        #[serde(default)]
        out: Option<PathBuf>,
        /// Sign with the client's ssh-agent.
        #[serde(default)]
        agent: bool,
    },
    /// Co-sign a root file.
    RootSign {
        /// The file.
        file: PathBuf,
        /// An OpenSSH private key to sign with instead of the node's.
        #[serde(default)]
        key: Option<PathBuf>,
        /// Sign with the client's ssh-agent.
        #[serde(default)]
        agent: bool,
    },
    /// Install a co-signed root file.
    RootCommit {
        /// The zone.
        zone: String,
        /// The file.
        file: PathBuf,
    },
    /// Follow a zone.
    Follow {
        /// A zone ticket or a root.json path.
        source: String,
        /// A static HTTP mirror.
        #[serde(default)]
        mirror: Option<String>,
        /// The zone's name here.
        #[serde(default)]
        alias: Option<String>,
    },
    /// Fetch new metadata now.
    Refresh {
        /// The zone.
        zone: String,
    },
    /// Resolve NAME.
    Resolve {
        /// NAME.
        name: String,
        /// Accept expired metadata, marked stale.
        #[serde(default)]
        offline: bool,
    },
    /// The history of NAME.
    History {
        /// NAME.
        name: String,
    },
    /// Write a zone as a TUF repository.
    Export {
        /// The zone.
        zone: String,
        /// The directory.
        dir: PathBuf,
    },
    /// Override NAME on this node, or clear the override (`target: None`).
    Override {
        /// NAME.
        name: String,
        /// TARGET; `None` clears.
        #[serde(default)]
        target: Option<String>,
    },
}

impl Request {
    /// Whether the request only reads the node's state (`state.redb`): with
    /// no daemon, it is answered without opening the blob store.
    pub fn reads_state_only(&self) -> bool {
        matches!(
            self,
            Request::Name(
                NameRequest::Resolve { .. }
                    | NameRequest::History { .. }
                    | NameRequest::ZoneLs
                    | NameRequest::Receipt { .. }
            )
        )
    }

    /// The receipt of a publish, when the request is one that carries it.
    pub fn receipt(&self) -> Option<&str> {
        match self {
            Request::Name(
                NameRequest::Publish { receipt, .. } | NameRequest::Unpublish { receipt, .. },
            ) => receipt.as_deref(),
            _ => None,
        }
    }

    /// Whether the call streams the client's standard input to the handler.
    pub fn reads_stdin(&self) -> bool {
        matches!(self, Request::AddStdin { .. })
    }

    /// The label of the call's progress bar (empty when it shows none).
    pub fn progress_label(&self) -> &'static str {
        match self {
            Request::Add { .. } | Request::AddStdin { .. } => "adding",
            Request::Export { .. } => "exporting",
            Request::Fsck { .. } => "checking",
            Request::Get { .. } => "fetching",
            Request::Push { .. } => "pushing",
            Request::Name(NameRequest::Publish { .. }) => "adding",
            _ => "",
        }
    }
}

/// The daemon serving a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// Its process id.
    pub pid: u32,
    /// Its control socket.
    pub control_socket: PathBuf,
}

/// What `status` reports: the node's status, and the daemon if one runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The node.
    #[serde(flatten)]
    pub status: Status,
    /// The daemon, when one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon: Option<DaemonInfo>,
}

/// The answer to each [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum Reply {
    /// `id`.
    Identity(IdentityInfo),
    /// `add`.
    Added(AddResult),
    /// `cat`: the bytes went to standard output.
    Written {
        /// How many.
        bytes: u64,
    },
    /// `ls`.
    Listing(Vec<ListEntry>),
    /// `export`.
    Exported(Exported),
    /// `pin add`.
    Pinned(Pin),
    /// `pin rm`.
    Unpinned(Pin),
    /// `pin ls`.
    Pins(Vec<Pin>),
    /// `gc`.
    Gc(GcReport),
    /// `fsck`.
    Fsck(FsckReport),
    /// `trust grant`, `trust show`, `trust revoke`.
    Cert(CertInfo),
    /// `trust import`.
    Imported(Imported),
    /// `trust ls`.
    Certs(Vec<CertInfo>),
    /// `trust verify`.
    Verdict(Verdict),
    /// `trust roots add|rm|ls`.
    Roots(Vec<RootInfo>),
    /// `status`.
    Status(StatusReport),
    /// `stop`: the daemon stops once this is sent.
    Stopping(DaemonInfo),
    /// `invite`.
    Invite(Invite),
    /// `join`.
    Joined(Joined),
    /// `peers ls`.
    Peers(Vec<PeerInfo>),
    /// `peers add`.
    PeerAdded(PeerInfo),
    /// `peers rm`.
    PeerRemoved(PeerInfo),
    /// `get`.
    Fetched(Fetched),
    /// `push`.
    Pushed(Pushed),
    /// `name zone create`, `name rotate`, `name root commit`.
    ZoneChanged(crate::names::ZoneChanged),
    /// `name zone ls`.
    Zones(Vec<clive_naming::ZoneInfo>),
    /// `name zone show`.
    Zone(crate::names::ZoneShown),
    /// `name publish`, `name unpublish`.
    NamePublished(clive_naming::Published),
    /// `name publish` of several names at once.
    NamesPublished(Vec<clive_naming::Published>),
    /// `name delegate`.
    Delegated(clive_naming::RoleInfo),
    /// `name root sign`.
    RootSigned(crate::names::RootSigned),
    /// `name follow`, `name refresh`.
    Refreshed(crate::names::Refreshed),
    /// `name resolve`.
    Resolved(clive_naming::Resolution),
    /// `name history`.
    NameHistory(Vec<clive_naming::Change>),
    /// `name export`.
    ZoneExported(crate::names::ZoneExported),
    /// `name override`.
    Overridden(crate::names::Overridden),
}

impl Reply {
    /// False when the command worked but its answer is "no": `fsck` found
    /// damage, or `trust verify` refused. The tool exits 1 then.
    pub fn succeeded(&self) -> bool {
        match self {
            Reply::Fsck(report) => report.is_clean(),
            Reply::Verdict(verdict) => verdict.allowed,
            _ => true,
        }
    }
}

/// What a call may fail with, in-process or over the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The node refused or failed.
    #[error("{}", error_chain(cause))]
    Node {
        /// The node's error.
        cause: NodeError,
    },
    /// The daemon refused or failed; its whole message.
    #[error("{message}")]
    Remote {
        /// The message, causes included.
        message: String,
    },
    /// An argument that does not parse.
    #[error("{reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// `stop` (or another daemon-only command) when no daemon runs.
    #[error("no daemon is running on {home} (nothing listens on {socket})")]
    NoDaemon {
        /// The home.
        home: PathBuf,
        /// Its control socket.
        socket: PathBuf,
    },
    /// Writing the call's standard output failed.
    #[error("writing standard output: {cause}")]
    Output {
        /// The underlying error.
        cause: std::io::Error,
    },
    /// Reading the client's standard input failed.
    #[error("reading standard input: {cause}")]
    Input {
        /// The underlying error.
        cause: std::io::Error,
    },
    /// The control socket failed or its peer broke the protocol.
    #[error("control socket {path}: {reason}")]
    Control {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl From<NodeError> for ApiError {
    fn from(cause: NodeError) -> Self {
        ApiError::Node { cause }
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

/// What a call streams, and what it runs within.
pub trait CallContext: Send {
    /// Where the call reports the progress of long work.
    fn progress(&self) -> Arc<dyn Progress>;
    /// Where `cat` writes.
    fn stdout(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send);
    /// Where `add -` reads; empty after the first call.
    fn take_stdin(&mut self) -> Box<dyn AsyncRead + Unpin + Send>;
    /// The passphrase of the node's key, for signing.
    fn passphrase(&self) -> &(dyn PassphraseSource + Sync);
    /// The daemon serving the call; `None` in-process.
    fn daemon(&self) -> Option<DaemonInfo>;
}

/// Resolves a KEY or CERT argument that names a file relative to `cwd`;
/// anything else (key lines, endpoint ids, fingerprints, ids) is kept.
fn file_arg(cwd: &Path, arg: String) -> String {
    if arg.starts_with("SHA256:")
        || Path::new(&arg).is_absolute()
        || PublicIdentity::parse(&arg).is_ok()
    {
        return arg;
    }
    let joined = cwd.join(&arg);
    match joined.to_str() {
        Some(path) if joined.is_file() => path.to_owned(),
        _ => arg,
    }
}

fn duration(text: &str) -> Result<std::time::Duration, ApiError> {
    clock_parse_duration(text).map_err(|reason| ApiError::Invalid { reason })
}

/// Runs one call against `node`.
pub async fn handle(node: &Node, call: Call, ctx: &mut dyn CallContext) -> Result<Reply, ApiError> {
    let Call {
        cwd,
        ssh_auth_sock,
        request,
    } = call;
    let key = |arg: String| file_arg(&cwd, arg);
    let path = |p: &Path| cwd.join(p);
    Ok(match request {
        Request::Id => Reply::Identity(node.identity()),
        Request::Add { path: given, pin } => {
            let mut added = node
                .store()
                .add_path(&path(&given), pin.as_deref(), ctx.progress())
                .await?;
            added.source = given.display().to_string();
            Reply::Added(added)
        }
        Request::AddStdin { pin } => {
            let stdin = ctx.take_stdin();
            Reply::Added(
                node.store()
                    .add_reader(stdin, pin.as_deref(), ctx.progress())
                    .await?,
            )
        }
        Request::Cat { object, terminal } => {
            if terminal {
                node.store().refuse_tree_to_terminal(&object).await?;
            }
            let mut out = ctx.stdout();
            let bytes = node.store().cat(&object, &mut out).await?;
            out.flush()
                .await
                .map_err(|cause| ApiError::Output { cause })?;
            Reply::Written { bytes }
        }
        Request::Ls { object } => Reply::Listing(node.store().ls(&object).await?),
        Request::Export {
            object,
            dest,
            force,
        } => Reply::Exported(
            node.store()
                .export(&object, &path(&dest), force, ctx.progress())
                .await?,
        ),
        Request::PinAdd { name, object } => {
            Reply::Pinned(node.store().pin_add(&name, &object).await?)
        }
        Request::PinRm { name } => Reply::Unpinned(node.store().pin_rm(&name).await?),
        Request::PinLs => Reply::Pins(node.store().pins().await?),
        Request::Gc { dry_run } => Reply::Gc(node.store().gc(dry_run).await?),
        Request::Fsck { repair } => Reply::Fsck(node.store().fsck(repair, ctx.progress()).await?),
        Request::TrustGrant {
            key: subject,
            caps,
            expires,
            delegate,
            out,
            agent,
        } => {
            let expires = duration(&expires)?;
            let out = out.map(|p| path(&p));
            let with = SignWith {
                agent,
                agent_socket: ssh_auth_sock.as_deref(),
                passphrase: ctx.passphrase(),
            };
            Reply::Cert(
                node.trust()
                    .grant(
                        &key(subject),
                        &caps,
                        expires,
                        delegate,
                        out.as_deref(),
                        with,
                    )
                    .await?,
            )
        }
        Request::TrustImport { file } => Reply::Imported(node.trust().import(&path(&file)).await?),
        Request::TrustLs => Reply::Certs(node.trust().list().await?),
        Request::TrustShow { cert } => Reply::Cert(node.trust().show(&key(cert)).await?),
        Request::TrustVerify { peer, cap } => {
            Reply::Verdict(node.trust().verify(&key(peer), &cap).await?)
        }
        Request::TrustRevoke { cert, out, agent } => {
            let out = out.map(|p| path(&p));
            let with = SignWith {
                agent,
                agent_socket: ssh_auth_sock.as_deref(),
                passphrase: ctx.passphrase(),
            };
            Reply::Cert(
                node.trust()
                    .revoke(&key(cert), out.as_deref(), with)
                    .await?,
            )
        }
        Request::TrustRootsAdd { key: root, name } => {
            Reply::Roots(vec![node.trust().roots_add(&key(root), &name).await?])
        }
        Request::TrustRootsRm { key: root } => {
            Reply::Roots(vec![node.trust().roots_rm(&key(root)).await?])
        }
        Request::TrustRootsLs => Reply::Roots(node.trust().roots().await?),
        Request::Status => {
            let mut status = node.status().await?;
            let daemon = ctx.daemon();
            // A daemon answering is a daemon running.
            status.running |= daemon.is_some();
            Reply::Status(StatusReport { status, daemon })
        }
        Request::Stop => match ctx.daemon() {
            Some(daemon) => Reply::Stopping(daemon),
            None => {
                return Err(ApiError::NoDaemon {
                    home: node.home().root().to_owned(),
                    socket: node.home().control_path(),
                });
            }
        },
        Request::Invite {
            caps,
            expires,
            uses,
        } => Reply::Invite(
            node.peers()
                .invite(&caps, duration(&expires)?, uses)
                .await?,
        ),
        Request::Join { ticket } => Reply::Joined(node.peers().join(&ticket).await?),
        Request::PeersLs => Reply::Peers(node.peers().list().await?),
        Request::PeerAdd { peer, addrs } => {
            Reply::PeerAdded(node.peers().add(&key(peer), &addrs).await?)
        }
        Request::PeerRm { peer } => Reply::PeerRemoved(node.peers().rm(&key(peer)).await?),
        Request::Get {
            hash,
            from,
            out,
            force,
            pin,
        } => {
            let from = from.map(key);
            // Refused before fetching, not after.
            if let Some(dest) = &out {
                node.home().check_destination(&path(dest))?;
            }
            let mut fetched = node
                .store()
                .get_and_pin(&hash, from.as_deref(), pin.as_deref(), ctx.progress())
                .await?;
            if let Some(dest) = out {
                let object = fetched.hash.to_string();
                fetched.exported = Some(
                    node.store()
                        .export(&object, &path(&dest), force, Arc::new(NoProgress))
                        .await?,
                );
            }
            Reply::Fetched(fetched)
        }
        Request::Push { object, to } => {
            Reply::Pushed(node.store().push(&object, &key(to), ctx.progress()).await?)
        }
        Request::Name(request) => {
            let passphrase = ctx.passphrase();
            let agent_socket = ssh_auth_sock.as_deref();
            let with = |agent| SignWith {
                agent,
                agent_socket,
                passphrase,
            };
            name(node, request, &cwd, with).await?
        }
    })
}

/// Runs one `name` request.
async fn name<'a>(
    node: &Node,
    request: NameRequest,
    cwd: &Path,
    with: impl Fn(bool) -> SignWith<'a>,
) -> Result<Reply, ApiError> {
    if let Some(read) = crate::names::read_request(
        &node.names().zones(),
        Some(node.public()),
        &request,
        node.now(),
    ) {
        return Ok(read?);
    }
    let key = |arg: String| file_arg(cwd, arg);
    let path = |p: &Path| cwd.join(p);
    Ok(match request {
        NameRequest::Resolve { .. }
        | NameRequest::History { .. }
        | NameRequest::ZoneLs
        | NameRequest::Receipt { .. } => {
            unreachable!("answered by read_request")
        }
        NameRequest::ZoneCreate {
            zone,
            keys,
            threshold,
            out,
            agent,
        } => {
            let keys: Vec<String> = keys.into_iter().map(key).collect();
            let out = out.map(|p| path(&p));
            Reply::ZoneChanged(
                node.names()
                    .zone_create(&zone, &keys, threshold, out.as_deref(), with(agent))
                    .await?,
            )
        }
        NameRequest::ZoneShow { zone } => Reply::Zone(node.names().zone_show(&zone).await?),
        NameRequest::Publish {
            name,
            target,
            more,
            agent,
            receipt,
        } if more.is_empty() => Reply::NamePublished(
            node.names()
                .publish(&name, Some((&target, cwd)), with(agent), receipt.as_deref())
                .await?,
        ),
        NameRequest::Publish {
            name,
            target,
            more,
            agent,
            receipt,
        } => {
            if more.len() % 2 != 0 {
                return Err(ApiError::Invalid {
                    reason: "give NAME TARGET pairs: the last NAME has no TARGET".into(),
                });
            }
            let mut pairs = vec![(name, target)];
            pairs.extend(more.chunks(2).map(|p| (p[0].clone(), p[1].clone())));
            Reply::NamesPublished(
                node.names()
                    .publish_many(&pairs, cwd, with(agent), receipt.as_deref())
                    .await?,
            )
        }
        NameRequest::Unpublish {
            name,
            agent,
            receipt,
        } => Reply::NamePublished(
            node.names()
                .publish(&name, None, with(agent), receipt.as_deref())
                .await?,
        ),
        NameRequest::Delegate {
            zone,
            prefix,
            to,
            agent,
        } => Reply::Delegated(
            node.names()
                .delegate(&zone, &prefix, &key(to), with(agent))
                .await?,
        ),
        NameRequest::Rotate {
            zone,
            role,
            keys,
            threshold,
            out,
            agent,
        } => {
            let keys: Vec<String> = keys.into_iter().map(key).collect();
            let out = out.map(|p| path(&p));
            Reply::ZoneChanged(
                node.names()
                    .rotate(&zone, &role, &keys, threshold, out.as_deref(), with(agent))
                    .await?,
            )
        }
        NameRequest::RootSign {
            file,
            key: signing_key,
            agent,
        } => {
            let signing_key = signing_key.map(|p| path(&p));
            Reply::RootSigned(
                node.names()
                    .root_sign(&path(&file), signing_key.as_deref(), with(agent))
                    .await?,
            )
        }
        NameRequest::RootCommit { zone, file } => Reply::ZoneChanged(
            node.names()
                .root_commit(&zone, &path(&file), with(false))
                .await?,
        ),
        NameRequest::Follow {
            source,
            mirror,
            alias,
        } => Reply::Refreshed(
            node.names()
                .follow(&source, cwd, mirror.as_deref(), alias.as_deref())
                .await?,
        ),
        NameRequest::Refresh { zone } => Reply::Refreshed(node.names().refresh(&zone).await?),
        NameRequest::Export { zone, dir } => {
            Reply::ZoneExported(node.names().export(&zone, &path(&dir)).await?)
        }
        NameRequest::Override { name, target } => Reply::Overridden(
            node.names()
                .override_name(&name, target.as_deref().map(|t| (t, cwd)))
                .await?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip_as_json() {
        let call = Call {
            cwd: "/tmp".into(),
            ssh_auth_sock: None,
            request: Request::Get {
                hash: "ab".into(),
                from: Some("SHA256:x".into()),
                out: Some("out".into()),
                force: false,
                pin: None,
            },
        };
        let json = serde_json::to_string(&call).unwrap();
        assert_eq!(serde_json::from_str::<Call>(&json).unwrap(), call);
        for request in [Request::Id, Request::PinLs, Request::Stop] {
            let json = serde_json::to_string(&request).unwrap();
            assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), request);
        }
        let reply = Reply::Written { bytes: 3 };
        let json = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<Reply>(&json).unwrap(), reply);
    }

    #[test]
    fn hostile_requests_are_errors() {
        for text in [
            "",
            "{}",
            r#"{"op":"nope"}"#,
            r#"{"op":"cat"}"#,
            r#"{"op":"trust_grant","key":1}"#,
            &"[".repeat(100_000),
        ] {
            assert!(serde_json::from_str::<Request>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn file_args_resolve_against_the_client_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bob.pub"), "x").unwrap();
        let resolved = file_arg(dir.path(), "bob.pub".into());
        assert_eq!(Path::new(&resolved), dir.path().join("bob.pub"));
        for kept in ["SHA256:abc", "missing.pub", &"ab".repeat(32)] {
            assert_eq!(file_arg(dir.path(), kept.into()), kept);
        }
    }
}
