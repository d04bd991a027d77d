//! The command line: the tool's own commands (`init`, `start`, `status`)
//! and, flattened among them, every request of the node API, which is
//! parsed straight into the [`Request`] that is sent.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand};
use clive_node::Request;

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

/// The commands: the tool's own, and the node API's.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node home with a new ed25519 key, or an imported one.
    #[command(display_order = 0)]
    Init {
        /// Import this OpenSSH ed25519 private key (kept as is, encrypted or not).
        #[arg(long, value_name = "PATH")]
        ssh_key: Option<PathBuf>,
        /// Comment of a generated key [default: clive-node@HOSTNAME]
        #[arg(long)]
        comment: Option<String>,
    },
    /// Run the node in the foreground: on the network, serving other
    /// commands through HOME/control.sock, until `stop`, SIGTERM or SIGINT.
    ///
    /// Logs go to standard error (RUST_LOG, default info).
    #[command(display_order = 10)]
    Start {
        /// Listen on ADDR (repeatable; port 0 picks one) [default: `[net] bind` in config.toml]
        #[arg(long, value_name = "ADDR")]
        bind: Vec<SocketAddr>,
        /// Use this relay server [default: `[net] relay` in config.toml, else none]
        #[arg(long, value_name = "URL")]
        relay: Option<String>,
    },
    /// Show whether a daemon runs, the node's addresses, peers, store and uptime.
    #[command(display_order = 12)]
    Status {
        /// Wait up to DURATION (10s, 1m) for a daemon to answer, then show its status.
        #[arg(long, value_name = "DURATION")]
        wait: Option<String>,
    },
    /// A request of the node API.
    #[command(flatten)]
    Node(Request),
}
