//! The command line: every command and flag.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A peer-to-peer, content-addressed node whose identity is an SSH key.
#[derive(Debug, Parser)]
#[command(name = "clive-node", version, about)]
pub struct Cli {
    /// The node's home directory [default: $CLIVE_HOME, else the user's data directory]
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node home with a new ed25519 key, or an imported one.
    Init {
        /// Import this OpenSSH ed25519 private key (kept as is, encrypted or not).
        #[arg(long, value_name = "PATH")]
        ssh_key: Option<PathBuf>,
        /// Comment of a generated key [default: clive-node@HOSTNAME]
        #[arg(long)]
        comment: Option<String>,
    },
    /// Show the node's public key, fingerprint and endpoint id.
    Id,
    /// Add files or directories (`-` reads standard input) and print their hashes.
    ///
    /// Content that no pin reaches is removed by the next `gc`.
    Add {
        /// Files, directories, or `-` for standard input.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Pin what was added under this name.
        #[arg(long, value_name = "NAME")]
        pin: Option<String>,
    },
    /// Write the bytes of a blob to standard output.
    Cat {
        /// A hash or a pin name, optionally with a path inside it (PIN/dir/file).
        object: String,
    },
    /// List a tree: kind, size, hash and name of each entry.
    Ls {
        /// A hash or a pin name, optionally with a path inside it (PIN/dir/file).
        object: String,
    },
    /// Write a blob or a tree to DEST.
    Export {
        /// A hash or a pin name, optionally with a path inside it (PIN/dir/file).
        object: String,
        /// Where to write it; must not exist unless --force.
        dest: PathBuf,
        /// Replace DEST if it exists (only once the export is complete).
        #[arg(long)]
        force: bool,
    },
    /// Manage pins: named roots that gc keeps.
    Pin {
        /// What to do with pins.
        #[command(subcommand)]
        action: PinAction,
    },
    /// Remove every object no pin reaches, and report what was freed.
    Gc {
        /// Report what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-verify every stored object against its hash and report damage.
    Fsck,
}

/// Pin subcommands.
#[derive(Debug, Subcommand)]
pub enum PinAction {
    /// Pin an object under a name (replacing a pin of that name).
    Add {
        /// The pin's name.
        name: String,
        /// A hash or another pin's name.
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
