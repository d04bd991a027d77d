//! The node API as requests and replies.
//!
//! Every command of the command-line tool is a [`Request`]: the very value
//! clap parses from the command line (each request derives both
//! `clap::Subcommand` and serde) is what travels over the control socket.
//! [`handle`] runs it against a [`Node`] and answers with a [`Reply`]. The
//! same handler serves the tool in-process (no daemon) and the daemon's
//! control socket ([`crate::control`]), so both give the same results and
//! the same errors.
//!
//! Requests are grouped by concern, one enum and its handler per file:
//! [`store`] (add, cat, ls, export, pins, gc, fsck), [`trust`]
//! (certificates, roots), [`peers`] (invites, the peer table, get, push),
//! [`names`] (zones and signed names), [`jobs`] (`exec` and the `job`
//! commands) and [`sync`] (the follow set, catch-ups). Arguments naming an object are
//! OBJECTs ([`crate::object`]).
//!
//! A request travels inside a [`Call`], which says where it was made (the
//! client's working directory, against which relative paths are resolved,
//! and its ssh-agent). What a call streams goes through a [`CallContext`]:
//! progress of long work, the standard output of `cat`, the standard input
//! of `add -`, the passphrase of the node's key, and whether a daemon
//! serves it.
//!
//! Each concern's file holds its request enum, its reply enum
//! ([`StoreReply`], [`TrustReply`], [`PeerReply`], [`NameReply`],
//! [`JobReply`]; the
//! top-level commands answer with a [`NodeReply`]) and its handler;
//! [`Reply`] wraps the concern's reply. What every handler takes and may
//! fail with ([`CallContext`], the client, [`ApiError`]) lives in
//! `call.rs`, so no concern reaches back into this file.
//!
//! Adding a command touches three places: its request (a variant, with its
//! clap attributes and doc comment, which are its help, in its concern's
//! request enum, and, when no reply of that concern fits, a variant of the
//! concern's reply enum beside it); its arm in that concern's handler (a
//! lookup answered from the state alone: its answer in
//! [`names::read_only_reply`]'s list instead); and
//! its rendering, an arm in the tool's `output/<concern>.rs` (an exhaustive
//! match there, so a reply with no rendering does not compile) with a
//! `Render` implementation when it carries a new type. The wire round-trip
//! test (`api/tests.rs`) also takes one line naming the new variant and its
//! example: it does not compile until the variant is there. Both
//! transports carry it unchanged.

mod call;
pub mod jobs;
pub mod names;
pub mod peers;
pub mod store;
pub mod sync;
pub mod trust;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use self::call::{Client, key_help};
pub use self::{
    call::{ApiError, CallContext, CallOutput, DaemonInfo, error_chain},
    jobs::{ExecArgs, JobReply, JobRequest, ResultInfo},
    names::{NameReply, NameRequest, RootRequest, ZoneRequest},
    peers::{PeerReply, PeerRequest, PeersRequest},
    store::{PinRequest, StoreReply, StoreRequest},
    sync::{SyncReply, SyncRequest},
    trust::{RootsRequest, TrustReply, TrustRequest},
};
use crate::{IdentityInfo, Node, NodeError, Status};

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

/// Every command of the node API, as the command line spells it.
///
#[doc = concat!("KEY arguments (`key`, `peer`, `from`, `to`) are ", key_help!(), ";")]
/// CERT arguments are a certificate id or a file written with `-o`; OBJECT
/// arguments are described by [`crate::object::OBJECT_HELP`].
///
/// The `display_order` of each command keeps `clive-node --help` in the
/// order it has always listed them, the tool's own commands (`init`,
/// `start`, `status`) among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Show the node's public key, fingerprint and endpoint id.
    #[command(display_order = 1)]
    Id,
    /// The store: add, cat, ls, export, pins, gc, fsck.
    #[command(flatten)]
    Store(StoreRequest),
    /// Certificates, delegation chains, revocations and trust roots.
    #[command(subcommand, display_order = 9)]
    Trust(TrustRequest),
    /// Stop the running daemon, and wait until it is gone.
    #[command(display_order = 11)]
    Stop,
    /// The node's status. The tool parses `status` itself (it may wait for
    /// a daemon first), so this variant has no command line of its own.
    #[command(skip)]
    Status,
    /// Peers: invites, joins, the peer table, get and push.
    #[command(flatten)]
    Peers(PeerRequest),
    /// Signed names for hashes (TUF zones): publish, follow, resolve, history.
    #[command(subcommand, display_order = 17)]
    Name(NameRequest),
    /// Run a command as a job: inputs pinned by hash, here or on a trusted
    /// peer (`--on`), sandboxed, its output streamed, its result signed and
    /// memoized. Exits with the job's exit code (128+N for signal N, 124 for
    /// a timeout, 130 when cancelled).
    #[command(display_order = 18)]
    Exec(ExecArgs),
    /// Jobs: submit a JOB.toml, list, status, logs, attach, cancel, result.
    #[command(subcommand, display_order = 19)]
    Job(JobRequest),
    /// Sync: the follow set, catch-ups with peers, and where each stands.
    #[command(subcommand, display_order = 20)]
    Sync(SyncRequest),
}

impl Request {
    /// Whether the request only reads the node's state (`state.redb`):
    /// with no daemon, it is answered from that file opened read-only,
    /// without opening the node (and the tool runs it on a single thread).
    /// The one place this is decided: [`crate::Connection::open_for`] and
    /// the tool both ask here.
    pub fn read_only(&self) -> bool {
        match self {
            Request::Name(request) => request.read_only(),
            _ => false,
        }
    }

    /// The calls that carry this request: one each, except `add` of
    /// several paths, which is one call per path (so each prints as it
    /// finishes, and an error names its path).
    pub fn into_calls(self) -> Result<Vec<Request>, ApiError> {
        match self {
            Request::Store(request) => Ok(request
                .into_calls()?
                .into_iter()
                .map(Request::Store)
                .collect()),
            request => Ok(vec![request]),
        }
    }

    /// Fills in what the client knows and the command line does not say:
    /// whether its standard output is a `terminal` (`cat` refuses to
    /// write a tree there), and a fresh receipt for each publish (to learn
    /// afterwards whether a publish whose connection broke was committed).
    pub fn from_client(mut self, terminal: bool) -> Request {
        match &mut self {
            Request::Store(StoreRequest::Cat { terminal: t, .. }) => *t = terminal,
            Request::Name(
                NameRequest::Publish { receipt, .. } | NameRequest::Unpublish { receipt, .. },
            ) => *receipt = Some(clive_naming::zones::new_receipt()),
            _ => {}
        }
        self
    }

    /// The receipt of a publish, when the request is one that carries it.
    pub fn receipt(&self) -> Option<&str> {
        match self {
            Request::Name(request) => request.receipt(),
            _ => None,
        }
    }

    /// Whether Ctrl-C cancels the call (a job it runs) rather than
    /// leaving at once.
    pub fn cancellable(&self) -> bool {
        matches!(
            self,
            Request::Exec(_)
                | Request::Job(
                    JobRequest::Submit { .. } | JobRequest::Attach { .. } | JobRequest::Run { .. }
                )
        )
    }

    /// Whether the call is a pipeline watch that stays attached (`job run
    /// --watch` without `--detach`): cancelling it stops the watch.
    pub fn is_watch(&self) -> bool {
        matches!(
            self,
            Request::Job(JobRequest::Run {
                watch: true,
                detach: false,
                ..
            })
        )
    }

    /// Whether the call streams the client's standard input to the handler.
    pub fn reads_stdin(&self) -> bool {
        match self {
            Request::Store(request) => request.reads_stdin(),
            _ => false,
        }
    }

    /// The label of the call's progress bar (empty when it shows none).
    pub fn progress_label(&self) -> &'static str {
        match self {
            Request::Store(request) => request.progress_label(),
            Request::Peers(request) => request.progress_label(),
            Request::Name(request) => request.progress_label(),
            Request::Sync(request) => request.progress_label(),
            Request::Id
            | Request::Trust(_)
            | Request::Stop
            | Request::Status
            | Request::Exec(_)
            | Request::Job(_) => "",
        }
    }

    /// What an error of the request happened while doing, for its message
    /// (`adding PATH: ...`); `None` when the error says enough.
    pub fn doing(&self) -> Option<String> {
        match self {
            Request::Store(request) => request.doing(),
            _ => None,
        }
    }
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

/// The answer to each [`Request`]: the reply of the request's concern.
///
/// Each concern's reply enum lives beside its request enum
/// ([`StoreReply`] in `store.rs`, ...); the top-level commands (`id`,
/// `status`, `stop`) answer with a [`NodeReply`]. On the control socket a
/// reply is externally tagged by its concern, the concern's reply inside:
/// `{"store":{"reply":"written","value":{"bytes":3}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// `id`, `status`, `stop`.
    Node(NodeReply),
    /// The store's commands.
    Store(StoreReply),
    /// The trust commands.
    Trust(TrustReply),
    /// The peer commands.
    Peers(PeerReply),
    /// The `name` commands.
    Name(NameReply),
    /// `exec` and the `job` commands.
    Job(JobReply),
    /// The `sync` commands.
    Sync(SyncReply),
}

/// The answers to the top-level commands of [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum NodeReply {
    /// `id`.
    Identity(IdentityInfo),
    /// `status`.
    Status(StatusReport),
    /// `stop`: the daemon stops once this is sent.
    Stopping(DaemonInfo),
}

impl Reply {
    /// False when the command worked but its answer is "no": `fsck` found
    /// damage, or `trust verify` refused. The tool exits 1 then.
    pub fn succeeded(&self) -> bool {
        match self {
            Reply::Store(StoreReply::Fsck(report)) => report.is_clean(),
            Reply::Trust(TrustReply::Verdict(verdict)) => verdict.allowed,
            Reply::Sync(reply) => reply.succeeded(),
            _ => true,
        }
    }

    /// The exit code the tool ends with when the reply decides it (a job's).
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Reply::Job(reply) => reply.exit_code(),
            _ => None,
        }
    }
}

/// Runs one call against `node`.
pub async fn handle(node: &Node, call: Call, ctx: &mut dyn CallContext) -> Result<Reply, ApiError> {
    let Call {
        cwd,
        ssh_auth_sock,
        request,
    } = call;
    let client = Client::new(&cwd, ssh_auth_sock.as_deref());
    match request {
        Request::Id => Ok(Reply::Node(NodeReply::Identity(node.identity()))),
        Request::Store(request) => Ok(Reply::Store(
            store::handle(node, request, &client, ctx).await?,
        )),
        Request::Trust(request) => Ok(Reply::Trust(
            trust::handle(node, request, &client, ctx).await?,
        )),
        Request::Status => {
            let mut status = node.status().await?;
            let daemon = ctx.daemon();
            // A daemon answering is a daemon running.
            status.running |= daemon.is_some();
            Ok(Reply::Node(NodeReply::Status(StatusReport {
                status,
                daemon,
            })))
        }
        Request::Stop => match ctx.daemon() {
            Some(daemon) => Ok(Reply::Node(NodeReply::Stopping(daemon))),
            None => Err(ApiError::NoDaemon {
                home: node.home().root().to_owned(),
                socket: node.home().control_path(),
            }),
        },
        Request::Peers(request) => Ok(Reply::Peers(
            peers::handle(node, request, &client, ctx).await?,
        )),
        Request::Name(request) => Ok(Reply::Name(
            names::handle(node, request, &client, ctx).await?,
        )),
        Request::Exec(args) => {
            let reply = jobs::exec(node, args, &client, ctx).await;
            node.store().trim_cache_logged().await;
            Ok(Reply::Job(reply?))
        }
        Request::Job(request) => {
            let reply = jobs::handle(node, request, &client, ctx).await;
            node.store().trim_cache_logged().await;
            Ok(Reply::Job(reply?))
        }
        Request::Sync(request) => Ok(Reply::Sync(
            sync::handle(node, request, &client, ctx).await?,
        )),
    }
}

#[cfg(test)]
mod tests;
