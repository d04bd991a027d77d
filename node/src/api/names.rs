//! The `name` requests: zones and the names signed in them.

use std::path::PathBuf;

use clive_naming::Zones;
use clive_trust::PublicIdentity;
use serde::{Deserialize, Serialize};

use super::call::{ApiError, CallContext, Client};
use crate::{Node, NodeError};

/// Name subcommands. A NAME is `ZONE/PATH` (`release/myapp`); TARGET is a
/// path (added to the store) or the hash of a stored object;
#[doc = concat!("KEY is ", super::call::key_help!(), ".")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "name_op", rename_all = "snake_case")]
pub enum NameRequest {
    /// Zones this node publishes or follows.
    #[command(subcommand)]
    Zone(ZoneRequest),
    /// Publish NAME as the content at PATH (added to the store) or HASH, signed.
    ///
    /// More NAME TARGET pairs (same zone) go into the same signed version.
    Publish {
        /// ZONE/PATH.
        name: String,
        /// A file or directory, or the hash of an object in the store.
        target: String,
        /// Further NAME TARGET pairs.
        #[arg(value_name = "NAME TARGET")]
        #[serde(default)]
        more: Vec<String>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        #[serde(default)]
        agent: bool,
        /// What the client names this publish by, to ask afterwards
        /// whether it was committed ([`NameRequest::Receipt`]).
        #[arg(skip)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<String>,
    },
    /// Remove NAME from its zone, signed.
    Unpublish {
        /// ZONE/PATH.
        name: String,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        #[serde(default)]
        agent: bool,
        /// As for [`NameRequest::Publish`].
        #[arg(skip)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<String>,
    },
    /// What the publish named `receipt` committed: every name it published
    /// (`NameReply::NamesPublished`), none when it was not committed. Asked by
    /// the control client, never typed.
    #[command(skip)]
    Receipt {
        /// The publish's receipt.
        receipt: String,
    },
    /// Delegate the names of ZONE under PREFIX to KEY (a delegated targets role).
    Delegate {
        /// The zone.
        zone: String,
        /// The path prefix delegated (`beta/`).
        prefix: String,
        /// The delegate's KEY.
        #[arg(long, value_name = "KEY")]
        to: String,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        #[serde(default)]
        agent: bool,
    },
    /// Replace the keys of a role (root, targets, snapshot, timestamp) with a new root version.
    ///
    /// The new root must be signed by a threshold of the old and of the new
    /// root keys. When this node's signature is not enough, the root is
    /// written to FILE for co-signers (`name root sign`), then installed
    /// with `name root commit`.
    Rotate {
        /// The zone.
        zone: String,
        /// The role whose keys change.
        role: String,
        /// The role's new keys (repeatable).
        #[arg(long = "key", value_name = "KEY", required = true)]
        keys: Vec<String>,
        /// How many of the keys must sign [default: the current threshold]
        #[arg(long, value_name = "N")]
        #[serde(default)]
        threshold: Option<u32>,
        /// Where to write the new root when co-signatures are needed.
        #[arg(short = 'o', value_name = "FILE")]
        #[serde(default)]
        out: Option<PathBuf>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        #[serde(default)]
        agent: bool,
    },
    /// Root metadata signed by several people.
    #[command(subcommand)]
    Root(RootRequest),
    /// Follow a zone from a ticket (`name zone create` prints one) or a trusted ROOT.json.
    Follow {
        /// A zone ticket, or a root.json file to trust.
        source: String,
        /// Also fetch the zone's metadata from this static HTTP mirror.
        #[arg(long, value_name = "URL")]
        #[serde(default)]
        mirror: Option<String>,
        /// Call the zone this here [default: the zone's own name]
        #[arg(long = "as", value_name = "ZONE")]
        #[serde(default)]
        alias: Option<String>,
    },
    /// Fetch new metadata for a zone now: from its mirror, else from the peer it was followed from.
    Refresh {
        /// The zone.
        zone: String,
    },
    /// Print the hash NAME resolves to, and how it was verified.
    Resolve {
        /// ZONE/PATH.
        name: String,
        /// Past expiry, answer with the last verified value, marked stale.
        #[arg(long)]
        #[serde(default)]
        offline: bool,
    },
    /// Every change of NAME: version, time and signer, verified from stored metadata.
    History {
        /// ZONE/PATH.
        name: String,
    },
    /// Write ZONE as a plain TUF repository (metadata/ and targets/) any web server can serve.
    Export {
        /// The zone.
        zone: String,
        /// The directory (created if missing).
        dir: PathBuf,
    },
    /// Map NAME to a hash on this node only (never signed or propagated).
    Override {
        /// ZONE/PATH.
        name: String,
        /// A file or directory, or a hash.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        #[serde(default)]
        target: Option<String>,
        /// Remove the override.
        #[arg(long)]
        #[serde(default)]
        clear: bool,
    },
}

/// Zone subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "zone_op", rename_all = "snake_case")]
pub enum ZoneRequest {
    /// Create a zone signed by this node, and print the ticket followers use.
    Create {
        /// The zone's name.
        zone: String,
        /// Further root keys (repeatable): co-signers of root changes.
        #[arg(long = "key", value_name = "KEY")]
        #[serde(default)]
        keys: Vec<String>,
        /// How many root keys must sign a root.
        #[arg(long, default_value_t = 1, value_name = "N")]
        threshold: u32,
        /// Another device of the zone (repeatable): its key signs every
        /// role alone, so it publishes offline; what devices publish apart
        /// is merged when they meet.
        #[arg(long = "device", value_name = "KEY")]
        #[serde(default)]
        devices: Vec<String>,
        /// Where to write the first root when co-signatures are needed.
        #[arg(short = 'o', value_name = "FILE")]
        #[serde(default)]
        out: Option<PathBuf>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        #[serde(default)]
        agent: bool,
    },
    /// Make KEY a device of the zone: it signs every role alone (a new root).
    AddDevice {
        /// The zone.
        zone: String,
        /// The device's key: OpenSSH public key, SHA256: fingerprint or endpoint id.
        key: String,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        #[serde(default)]
        agent: bool,
    },
    /// List zones: versions, expiry, and whether this node publishes them.
    Ls,
    /// Show one zone: its roles, keys, versions, evidence and ticket.
    Show {
        /// The zone.
        zone: String,
    },
}

/// Root subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "root_op", rename_all = "snake_case")]
pub enum RootRequest {
    /// Add this node's signature (or the signature of an ssh key file) to a root file.
    Sign {
        /// The root.json file, rewritten in place.
        file: PathBuf,
        /// Sign with this OpenSSH ed25519 private key instead of the node's.
        #[arg(long, value_name = "PATH")]
        #[serde(default)]
        key: Option<PathBuf>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long, conflicts_with = "key")]
        #[serde(default)]
        agent: bool,
    },
    /// Install a root file once enough keys have signed it, and publish it.
    Commit {
        /// The zone.
        zone: String,
        /// The signed root.json.
        file: PathBuf,
    },
}

/// The answers to [`NameRequest`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum NameReply {
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

impl NameRequest {
    /// Whether the request only reads the zones in `state.redb`: whether
    /// [`read_only_reply`] answers it (see [`super::Request::read_only`]).
    pub(crate) fn read_only(&self) -> bool {
        lookup(self).is_some()
    }

    /// The receipt of a publish.
    pub(crate) fn receipt(&self) -> Option<&str> {
        match self {
            NameRequest::Publish { receipt, .. } | NameRequest::Unpublish { receipt, .. } => {
                receipt.as_deref()
            }
            _ => None,
        }
    }

    /// The label of the call's progress bar.
    pub(crate) fn progress_label(&self) -> &'static str {
        match self {
            NameRequest::Publish { .. } => "adding",
            _ => "",
        }
    }
}

/// A lookup's answer, given the zones, the node's key (when known) and now.
type Lookup<'r> =
    Box<dyn FnOnce(&Zones, Option<&PublicIdentity>, u64) -> Result<NameReply, NodeError> + 'r>;

/// The one list of the requests answered from the zones alone, each with
/// its answer; `None` for every other request.
fn lookup(request: &NameRequest) -> Option<Lookup<'_>> {
    fn split(name: &str) -> Result<(&str, &str), NodeError> {
        clive_naming::name::split(name).map_err(NodeError::from)
    }
    Some(match request {
        NameRequest::Resolve { name, offline } => Box::new(move |zones, _, now| {
            let (zone, path) = split(name)?;
            zones
                .resolve(zone, path, *offline, now)
                .map(NameReply::Resolved)
                .map_err(NodeError::from)
        }),
        NameRequest::History { name } => Box::new(move |zones, _, _| {
            let (zone, path) = split(name)?;
            zones
                .history(zone, path)
                .map(NameReply::NameHistory)
                .map_err(NodeError::from)
        }),
        NameRequest::Zone(ZoneRequest::Ls) => Box::new(|zones, me, _| {
            zones
                .list(me)
                .map(NameReply::Zones)
                .map_err(NodeError::from)
        }),
        NameRequest::Receipt { receipt } => {
            Box::new(move |zones, _, _| receipt_reply(zones, receipt))
        }
        // Named one by one, so that a new request does not compile until
        // it is said here whether it is a lookup.
        NameRequest::Zone(
            ZoneRequest::Create { .. } | ZoneRequest::Show { .. } | ZoneRequest::AddDevice { .. },
        )
        | NameRequest::Publish { .. }
        | NameRequest::Unpublish { .. }
        | NameRequest::Delegate { .. }
        | NameRequest::Rotate { .. }
        | NameRequest::Root(_)
        | NameRequest::Follow { .. }
        | NameRequest::Refresh { .. }
        | NameRequest::Export { .. }
        | NameRequest::Override { .. } => return None,
    })
}

/// Answers a [read-only](super::Request::read_only) request from `zones`
/// alone (`me` is the node's key, when known; `now` decides what has
/// expired); `None` for any other request. Serves the node, the daemon and
/// the state opened read-only alike.
pub fn read_only_reply(
    zones: &Zones,
    me: Option<&PublicIdentity>,
    request: &NameRequest,
    now: u64,
) -> Option<Result<NameReply, NodeError>> {
    lookup(request).map(|answer| answer(zones, me, now))
}

/// What the publish recorded under `receipt` committed (nothing yet: empty).
pub fn receipt_reply(zones: &Zones, receipt: &str) -> Result<NameReply, NodeError> {
    zones
        .receipt(receipt)
        .map(|r| NameReply::NamesPublished(r.unwrap_or_default()))
        .map_err(NodeError::from)
}

/// Runs one `name` request.
pub(crate) async fn handle(
    node: &Node,
    request: NameRequest,
    client: &Client<'_>,
    ctx: &mut dyn CallContext,
) -> Result<NameReply, ApiError> {
    let cwd = client.cwd();
    let passphrase = ctx.passphrase();
    let with = |agent| client.sign_with(agent, passphrase);
    if request.read_only() {
        let zones = node.names().zones();
        return match read_only_reply(&zones, Some(node.public()), &request, node.now()) {
            Some(reply) => Ok(reply?),
            None => Err(not_handled(&request)),
        };
    }
    Ok(match request {
        NameRequest::Zone(ZoneRequest::Create {
            zone,
            keys,
            threshold,
            devices,
            out,
            agent,
        }) => {
            let keys: Vec<String> = keys.into_iter().map(|k| client.key(k)).collect();
            let devices: Vec<String> = devices.into_iter().map(|k| client.key(k)).collect();
            let out = out.map(|p| client.path(&p));
            NameReply::ZoneChanged(
                node.names()
                    .zone_create_devices(
                        &zone,
                        &keys,
                        threshold,
                        &devices,
                        out.as_deref(),
                        cwd,
                        with(agent),
                    )
                    .await?,
            )
        }
        NameRequest::Zone(ZoneRequest::AddDevice { zone, key, agent }) => NameReply::ZoneChanged(
            node.names()
                .add_device(&zone, &client.key(key), with(agent))
                .await?,
        ),
        NameRequest::Zone(ZoneRequest::Show { zone }) => {
            NameReply::Zone(node.names().zone_show(&zone).await?)
        }
        NameRequest::Publish {
            name,
            target,
            more,
            agent,
            receipt,
        } if more.is_empty() => NameReply::NamePublished(
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
            NameReply::NamesPublished(
                node.names()
                    .publish_many(&pairs, cwd, with(agent), receipt.as_deref())
                    .await?,
            )
        }
        NameRequest::Unpublish {
            name,
            agent,
            receipt,
        } => NameReply::NamePublished(
            node.names()
                .publish(&name, None, with(agent), receipt.as_deref())
                .await?,
        ),
        NameRequest::Delegate {
            zone,
            prefix,
            to,
            agent,
        } => NameReply::Delegated(
            node.names()
                .delegate(&zone, &prefix, &client.key(to), with(agent))
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
            let keys: Vec<String> = keys.into_iter().map(|k| client.key(k)).collect();
            let out = out.map(|p| client.path(&p));
            NameReply::ZoneChanged(
                node.names()
                    .rotate(
                        &zone,
                        &role,
                        &keys,
                        threshold,
                        out.as_deref(),
                        cwd,
                        with(agent),
                    )
                    .await?,
            )
        }
        NameRequest::Root(RootRequest::Sign { file, key, agent }) => {
            let key = key.map(|p| client.path(&p));
            NameReply::RootSigned(
                node.names()
                    .root_sign(&client.path(&file), key.as_deref(), with(agent))
                    .await?,
            )
        }
        NameRequest::Root(RootRequest::Commit { zone, file }) => NameReply::ZoneChanged(
            node.names()
                .root_commit(&zone, &client.path(&file), with(false))
                .await?,
        ),
        NameRequest::Follow {
            source,
            mirror,
            alias,
        } => NameReply::Refreshed(
            node.names()
                .follow(&source, cwd, mirror.as_deref(), alias.as_deref())
                .await?,
        ),
        NameRequest::Refresh { zone } => NameReply::Refreshed(node.names().refresh(&zone).await?),
        NameRequest::Export { zone, dir } => {
            NameReply::ZoneExported(node.names().export(&zone, &client.path(&dir)).await?)
        }
        NameRequest::Override {
            name,
            target,
            clear: _,
        } => NameReply::Overridden(
            node.names()
                .override_name(&name, target.as_deref().map(|t| (t, cwd)))
                .await?,
        ),
        // The lookups, answered above: `read_only_reply` is their one list.
        lookup => return Err(not_handled(&lookup)),
    })
}

/// The refusal of a request this handler has no answer for: a lookup that
/// `read_only_reply` did not answer, which cannot happen.
fn not_handled(request: &NameRequest) -> ApiError {
    ApiError::Invalid {
        reason: format!("{request:?} has no handler"),
    }
}
