//! The sync requests: the follow set (`sync follow|unfollow|ls`),
//! catch-ups now (`sync now`), and where each peer stands (`sync status`).

use serde::{Deserialize, Serialize};

use super::call::{ApiError, CallContext, Client, duration};
use crate::{
    Node,
    sync::{
        FollowInfo, Followed, SyncReport, SyncStatus, Unfollowed,
        folder::{FolderInfo, FolderSynced},
    },
};

/// The `sync` commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "sync_op", rename_all = "snake_case")]
pub enum SyncRequest {
    /// Keep a zone's metadata and the bytes of its names (or of the names
    /// under PREFIX) here, so they resolve and export offline.
    Follow {
        /// ZONE[/PREFIX] of a zone this node knows, or a zone ticket or
        /// root.json file (followed first, as `name follow` does).
        #[arg(value_name = "ZONE[/PREFIX]")]
        entry: String,
    },
    /// Remove ZONE[/PREFIX] from the follow set (gc may then take its bytes).
    Unfollow {
        /// The entry, as `sync ls` shows it.
        #[arg(value_name = "ZONE[/PREFIX]")]
        entry: String,
    },
    /// The follow set: each entry, its names, and how much of it is here.
    Ls,
    /// Catch up now with every connected peer, or with one.
    Now {
        /// Only this peer's KEY.
        #[arg(long, value_name = "PEER")]
        #[serde(default)]
        peer: Option<String>,
    },
    /// Synced folders: `sync folder DIR ZONE/NAME` ties DIR to a name both
    /// ways; `sync folder ls`, `sync folder rm DIR`.
    Folder {
        /// What to do (none: tie DIR to ZONE/NAME).
        #[command(subcommand)]
        #[serde(default)]
        action: Option<FolderOp>,
        /// The directory.
        #[arg(value_name = "DIR")]
        #[serde(default)]
        dir: Option<std::path::PathBuf>,
        /// The name, in a zone this node publishes in (its device zone).
        #[arg(value_name = "ZONE/NAME")]
        #[serde(default)]
        name: Option<String>,
    },
    /// Where each peer stands: in sync, exchanging, or behind; conflicts.
    Status {
        /// Wait up to DURATION (default 60s) until every connected peer is
        /// in sync; exit 1 if it runs out first.
        #[arg(
            long,
            value_name = "DURATION",
            num_args = 0..=1,
            default_missing_value = "60s"
        )]
        #[serde(default)]
        wait: Option<String>,
    },
}

/// `sync folder ls|rm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "folder_op", rename_all = "snake_case")]
pub enum FolderOp {
    /// The synced folders.
    Ls,
    /// Stop syncing DIR (its files stay).
    Rm {
        /// The directory.
        #[arg(value_name = "DIR")]
        dir: std::path::PathBuf,
    },
}

/// The answers to [`SyncRequest`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum SyncReply {
    /// `sync follow`.
    Followed(Box<Followed>),
    /// `sync unfollow`.
    Unfollowed(Unfollowed),
    /// `sync ls`.
    Follows(Vec<FollowInfo>),
    /// `sync now`.
    Report(SyncReport),
    /// `sync status`.
    Status(SyncStatus),
    /// `sync folder DIR ZONE/NAME`.
    FolderSynced(FolderSynced),
    /// `sync folder ls`.
    Folders(Vec<FolderInfo>),
    /// `sync folder rm`.
    FolderRemoved(FolderInfo),
}

impl SyncReply {
    /// False when `sync status --wait` ran out before every connected peer
    /// was in sync.
    pub fn succeeded(&self) -> bool {
        !matches!(self, SyncReply::Status(status) if status.timed_out)
    }
}

impl SyncRequest {
    /// The label of the call's progress bar.
    pub fn progress_label(&self) -> &'static str {
        match self {
            SyncRequest::Follow { .. } | SyncRequest::Now { .. } => "syncing",
            SyncRequest::Status { wait: Some(_) } => "syncing",
            _ => "",
        }
    }
}

/// Runs a sync request.
pub(super) async fn handle(
    node: &Node,
    request: SyncRequest,
    client: &Client<'_>,
    ctx: &mut dyn CallContext,
) -> Result<SyncReply, ApiError> {
    let sync = node.sync();
    Ok(match request {
        SyncRequest::Follow { entry } => SyncReply::Followed(Box::new(
            sync.follow(&entry, client.cwd(), ctx.progress()).await?,
        )),
        SyncRequest::Unfollow { entry } => SyncReply::Unfollowed(sync.unfollow(&entry)?),
        SyncRequest::Ls => SyncReply::Follows(sync.ls().await?),
        SyncRequest::Now { peer } => {
            let peer = peer.map(|p| client.key(p));
            SyncReply::Report(sync.now(peer.as_deref(), ctx.progress()).await?)
        }
        SyncRequest::Folder { action, dir, name } => match (action, dir, name) {
            (Some(FolderOp::Ls), _, _) => SyncReply::Folders(sync.folder_ls()?),
            (Some(FolderOp::Rm { dir }), _, _) => {
                SyncReply::FolderRemoved(sync.folder_rm(&dir, client.cwd())?)
            }
            (None, Some(dir), Some(name)) => {
                let signer = node
                    .trust()
                    .signer(client.sign_with(false, ctx.passphrase()))?;
                SyncReply::FolderSynced(
                    sync.folder_add(&dir, &name, client.cwd(), signer.as_ref())
                        .await?,
                )
            }
            _ => {
                return Err(ApiError::Invalid {
                    reason: "give DIR and ZONE/NAME: `sync folder DIR ZONE/NAME`, or use \
                             `sync folder ls` or `sync folder rm DIR`"
                        .into(),
                });
            }
        },
        SyncRequest::Status { wait } => {
            let wait = wait.as_deref().map(duration).transpose()?;
            SyncReply::Status(sync.status(wait, ctx.progress()).await?)
        }
    })
}
