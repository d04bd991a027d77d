//! The peer requests: invites and joins, the peer table, and moving objects
//! between nodes (`get`, `push`).

use std::{path::PathBuf, sync::Arc};

use clive_cas::{Hash, NoProgress};
use serde::{Deserialize, Serialize};

use super::call::{ApiError, CallContext, Client, duration};
use crate::{
    Fetched, Invite, Joined, NetError, Node, NodeError, PeerInfo, Pushed,
    object::{OBJECT_HELP, OBJECT_LONG_HELP, ObjectRef},
};

/// The device zone `invite --device` pairs into unless `--zone` says.
pub const DEVICE_ZONE: &str = "devices";

/// The peer commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "peer_op", rename_all = "snake_case")]
pub enum PeerRequest {
    /// Print a ticket that lets a new node join this one with the given capabilities.
    #[command(display_order = 13)]
    Invite {
        /// Capabilities the joiner will hold: fetch, push, exec, attest, comma-separated.
        #[arg(long = "cap", default_value = "fetch", value_name = "CAPS")]
        caps: String,
        /// How long the ticket works (1h, 7d, ...).
        #[arg(long, default_value = "1h")]
        expires: String,
        /// How many nodes may join with it.
        #[arg(long, default_value_t = 1, value_name = "N")]
        uses: u32,
        /// Pair one of your own devices: every capability both ways, and
        /// both follow and publish into the device zone.
        #[arg(long, conflicts_with = "caps")]
        #[serde(default)]
        device: bool,
        /// The device zone (created here when missing) [default: devices].
        #[arg(long, requires = "device", value_name = "ZONE")]
        #[serde(default)]
        zone: Option<String>,
    },
    /// Join the node that printed TICKET with `clive-node invite`.
    #[command(display_order = 14)]
    Join {
        /// The ticket.
        ticket: String,
    },
    /// Known peers.
    #[command(subcommand, display_order = 15)]
    Peers(PeersRequest),
    /// Fetch a blob or a whole tree from a peer into the store.
    #[command(display_order = 16)]
    Get {
        /// What to fetch.
        #[arg(help = OBJECT_HELP, long_help = OBJECT_LONG_HELP)]
        object: String,
        /// The peer's KEY [default: any connected peer]
        #[arg(long, value_name = "PEER")]
        #[serde(default)]
        from: Option<String>,
        /// Also write it to DEST, which must not exist unless --force.
        #[arg(short = 'o', value_name = "DEST")]
        #[serde(default)]
        out: Option<PathBuf>,
        /// Replace DEST if it exists.
        #[arg(long, requires = "out")]
        #[serde(default)]
        force: bool,
        /// Pin it under NAME once it is all here.
        #[arg(long, value_name = "NAME")]
        #[serde(default)]
        pin: Option<String>,
    },
    /// Send a blob or a whole tree to a peer.
    #[command(display_order = 18)]
    Push {
        /// What to send.
        #[arg(help = OBJECT_HELP, long_help = OBJECT_LONG_HELP)]
        object: String,
        /// The peer's KEY.
        #[arg(long, value_name = "PEER")]
        to: String,
    },
}

/// Peers subcommands.
#[doc = concat!("KEY is ", super::call::key_help!(), ".")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "peers_op", rename_all = "snake_case")]
pub enum PeersRequest {
    /// List known peers and whether each is connected.
    Ls,
    /// Record a peer and the addresses it is reachable at.
    Add {
        /// The peer's key.
        #[arg(value_name = "KEY")]
        peer: String,
        /// Its addresses (IP:PORT).
        #[arg(required = true, value_name = "ADDR")]
        addrs: Vec<String>,
    },
    /// Forget a peer.
    Rm {
        /// The peer's key.
        #[arg(value_name = "KEY")]
        peer: String,
    },
}

/// The answers to [`PeerRequest`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum PeerReply {
    /// `invite`.
    Invite(Invite),
    /// `join`.
    Joined(Box<Joined>),
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
}

impl PeerRequest {
    /// The label of the call's progress bar.
    pub(crate) fn progress_label(&self) -> &'static str {
        match self {
            PeerRequest::Get { .. } => "fetching",
            PeerRequest::Push { .. } => "pushing",
            _ => "",
        }
    }
}

/// Runs one peer request.
pub(crate) async fn handle(
    node: &Node,
    request: PeerRequest,
    client: &Client<'_>,
    ctx: &mut dyn CallContext,
) -> Result<PeerReply, ApiError> {
    Ok(match request {
        PeerRequest::Invite {
            caps,
            expires,
            uses,
            device,
            zone,
        } => {
            let device_zone = device.then(|| zone.unwrap_or_else(|| DEVICE_ZONE.to_owned()));
            PeerReply::Invite(
                node.peers()
                    .invite_with(&caps, duration(&expires)?, uses, device_zone.as_deref())
                    .await?,
            )
        }
        PeerRequest::Join { ticket } => {
            PeerReply::Joined(Box::new(node.peers().join(&ticket).await?))
        }
        PeerRequest::Peers(PeersRequest::Ls) => PeerReply::Peers(node.peers().list().await?),
        PeerRequest::Peers(PeersRequest::Add { peer, addrs }) => {
            PeerReply::PeerAdded(node.peers().add(&client.key(peer), &addrs).await?)
        }
        PeerRequest::Peers(PeersRequest::Rm { peer }) => {
            PeerReply::PeerRemoved(node.peers().rm(&client.key(peer)).await?)
        }
        PeerRequest::Get {
            object,
            from,
            out,
            force,
            pin,
        } => {
            let from = from.map(|k| client.key(k));
            // Refused before fetching, not after.
            if let Some(dest) = &out {
                node.home().check_destination(&client.path(dest))?;
            }
            let hash = get_target(node, &object).await?;
            let mut fetched = node
                .store()
                .get_and_pin(&hash, from.as_deref(), pin.as_deref(), ctx.progress())
                .await?;
            if let Some(dest) = out {
                fetched.exported = Some(
                    node.store()
                        .export(&hash, &client.path(&dest), force, Arc::new(NoProgress))
                        .await?,
                );
            }
            PeerReply::Fetched(fetched)
        }
        PeerRequest::Push { object, to } => {
            let hash = node.resolve_object(&object).await?;
            PeerReply::Pushed(
                node.store()
                    .push(&hash, &client.key(to), ctx.progress())
                    .await?,
            )
        }
    })
}

/// What `get` fetches: the hash an OBJECT names. A bare word that names
/// nothing here is refused as not a hash (it is no pin either, and `get`
/// fetches by hash).
async fn get_target(node: &Node, object: &str) -> Result<Hash, ApiError> {
    let bare = matches!(ObjectRef::parse(object), ObjectRef::Either(w) if !w.contains('/'));
    if bare
        && clive_cas::parse_hash(object).is_err()
        && node
            .store()
            .cas()
            .pinned(object)
            .map_err(NodeError::from)?
            .is_none()
    {
        return Err(NodeError::from(NetError::NotAHash(object.to_owned())).into());
    }
    Ok(node.resolve_object(object).await?)
}
