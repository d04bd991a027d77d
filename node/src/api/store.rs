//! The store's requests: add, cat, ls, export, pins, gc, fsck.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use clive_cas::{Exported, FsckReport, Pin};

use super::call::{ApiError, CallContext, Client};
use crate::{
    AddResult, ListEntry, Node, NodeError,
    object::{OBJECT_HELP, OBJECT_LONG_HELP},
};

/// The store's commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "store_op", rename_all = "snake_case")]
pub enum StoreRequest {
    /// Add files or directories (`-` reads standard input) and print their hashes.
    ///
    /// Content that no pin reaches is removed by the next `gc`.
    #[command(display_order = 2)]
    Add {
        /// Files, directories, or `-` for standard input.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Pin what was added under this name.
        #[arg(long, value_name = "NAME")]
        #[serde(default)]
        pin: Option<String>,
    },
    /// Write the bytes of a blob to standard output.
    #[command(display_order = 3)]
    Cat {
        /// The blob.
        #[arg(help = OBJECT_HELP, long_help = OBJECT_LONG_HELP)]
        object: String,
        /// The client's standard output is a terminal: a tree is refused
        /// (its encoding is binary), pointing to `ls`.
        #[arg(skip)]
        #[serde(default)]
        terminal: bool,
    },
    /// List a tree: kind, size, hash and name of each entry.
    #[command(display_order = 4)]
    Ls {
        /// The tree.
        #[arg(help = OBJECT_HELP, long_help = OBJECT_LONG_HELP)]
        object: String,
    },
    /// Write a blob or a tree to DEST.
    #[command(display_order = 5)]
    Export {
        /// What to write.
        #[arg(help = OBJECT_HELP, long_help = OBJECT_LONG_HELP)]
        object: String,
        /// Where to write it; must not exist unless --force.
        dest: PathBuf,
        /// Replace DEST if it exists (only once the export is complete).
        #[arg(long)]
        #[serde(default)]
        force: bool,
    },
    /// Manage pins: named roots that gc keeps.
    #[command(subcommand, display_order = 6)]
    Pin(PinRequest),
    /// Remove every object no pin reaches, and report what was freed.
    #[command(display_order = 7)]
    Gc {
        /// Report what would be removed, remove nothing.
        #[arg(long)]
        #[serde(default)]
        dry_run: bool,
    },
    /// Re-verify every stored object against its hash and report damage.
    #[command(display_order = 8)]
    Fsck {
        /// Fetch damaged or missing objects again from peers that have them.
        #[arg(long)]
        #[serde(default)]
        repair: bool,
    },
}

/// Pin subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "pin_op", rename_all = "snake_case")]
pub enum PinRequest {
    /// Pin an object under a name (replacing a pin of that name).
    Add {
        /// The pin's name.
        name: String,
        /// What to pin.
        #[arg(help = OBJECT_HELP, long_help = OBJECT_LONG_HELP)]
        object: String,
    },
    /// Remove a pin.
    Rm {
        /// The pin's name.
        name: String,
    },
    /// List pins.
    Ls,
}

/// The answers to [`StoreRequest`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum StoreReply {
    /// `add`: each path added, in order.
    Added(Vec<AddResult>),
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
    Gc(crate::GcOutcome),
    /// `fsck`.
    Fsck(FsckReport),
}

impl StoreRequest {
    /// One `add` per path (see [`super::Request::into_calls`]).
    pub(crate) fn into_calls(self) -> Result<Vec<StoreRequest>, ApiError> {
        match self {
            StoreRequest::Add { paths, pin } => {
                if pin.is_some() && paths.len() > 1 {
                    return Err(one_pin());
                }
                Ok(paths
                    .into_iter()
                    .map(|path| StoreRequest::Add {
                        paths: vec![path],
                        pin: pin.clone(),
                    })
                    .collect())
            }
            request => Ok(vec![request]),
        }
    }

    /// Whether the call reads the client's standard input (`add -`).
    pub(crate) fn reads_stdin(&self) -> bool {
        matches!(self, StoreRequest::Add { paths, .. } if paths.iter().any(|p| is_stdin(p)))
    }

    /// The label of the call's progress bar.
    pub(crate) fn progress_label(&self) -> &'static str {
        match self {
            StoreRequest::Add { .. } => "adding",
            StoreRequest::Export { .. } => "exporting",
            StoreRequest::Fsck { .. } => "checking",
            _ => "",
        }
    }

    /// What an error happened while doing.
    pub(crate) fn doing(&self) -> Option<String> {
        match self {
            StoreRequest::Add { paths, .. } => match paths.as_slice() {
                [path] if is_stdin(path) => Some("adding standard input".to_owned()),
                [path] => Some(format!("adding {}", path.display())),
                _ => None,
            },
            StoreRequest::Export { object, dest, .. } => {
                Some(format!("exporting {object} to {}", dest.display()))
            }
            _ => None,
        }
    }
}

/// `-` is standard input.
fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}

fn one_pin() -> ApiError {
    ApiError::Invalid {
        reason: "--pin names one object: add one path at a time with --pin".into(),
    }
}

/// Runs one store request.
pub(crate) async fn handle(
    node: &Node,
    request: StoreRequest,
    client: &Client<'_>,
    ctx: &mut dyn CallContext,
) -> Result<StoreReply, ApiError> {
    Ok(match request {
        StoreRequest::Add { paths, pin } => {
            if pin.is_some() && paths.len() > 1 {
                return Err(one_pin());
            }
            let mut all = Vec::with_capacity(paths.len());
            for given in paths {
                let added = if is_stdin(&given) {
                    let stdin = ctx.take_stdin();
                    node.store()
                        .add_reader(stdin, pin.as_deref(), ctx.progress())
                        .await?
                } else {
                    let mut added = node
                        .store()
                        .add_path(&client.path(&given), pin.as_deref(), ctx.progress())
                        .await?;
                    added.source = given.display().to_string();
                    added
                };
                all.push(added);
            }
            StoreReply::Added(all)
        }
        StoreRequest::Cat { object, terminal } => {
            let hash = node.resolve_object(&object).await?;
            if terminal
                && node
                    .store()
                    .cas()
                    .kind(hash)
                    .await
                    .map_err(NodeError::from)?
                    == clive_cas::ObjectKind::Tree
            {
                return Err(NodeError::TreeToTerminal { object }.into());
            }
            let mut out = ctx.stdout();
            let bytes = node
                .store()
                .cat(&hash, &mut out)
                .await
                .map_err(output_closed)?;
            out.flush()
                .await
                .map_err(|cause| ApiError::Output { cause })?;
            StoreReply::Written { bytes }
        }
        StoreRequest::Ls { object } => {
            let hash = node.resolve_object(&object).await?;
            StoreReply::Listing(node.store().ls(&hash).await?)
        }
        StoreRequest::Export {
            object,
            dest,
            force,
        } => {
            // The destination is refused before the object is looked up.
            let dest = client.path(&dest);
            node.home().check_destination(&dest)?;
            let hash = node.resolve_object(&object).await?;
            StoreReply::Exported(
                node.store()
                    .export(&hash, &dest, force, ctx.progress())
                    .await?,
            )
        }
        StoreRequest::Pin(PinRequest::Add { name, object }) => {
            let hash = node.resolve_object(&object).await?;
            StoreReply::Pinned(node.store().pin_add(&name, &hash).await?)
        }
        StoreRequest::Pin(PinRequest::Rm { name }) => {
            StoreReply::Unpinned(node.store().pin_rm(&name).await?)
        }
        StoreRequest::Pin(PinRequest::Ls) => StoreReply::Pins(node.store().pins().await?),
        StoreRequest::Gc { dry_run } => StoreReply::Gc(node.store().gc(dry_run).await?),
        StoreRequest::Fsck { repair } => {
            StoreReply::Fsck(node.store().fsck(repair, ctx.progress()).await?)
        }
    })
}

/// A `cat` whose standard output was closed (`cat | head`) is told apart
/// from a failure of the store: the tool exits quietly on the first only.
fn output_closed(e: NodeError) -> ApiError {
    match e {
        NodeError::Cas(clive_cas::CasError::Io { cause, .. })
            if cause.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ApiError::Output { cause }
        }
        e => e.into(),
    }
}
