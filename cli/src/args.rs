//! The command line: every command and flag.

use std::{net::SocketAddr, path::PathBuf};

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
    /// Certificates, delegation chains, revocations and trust roots.
    Trust {
        /// What to do.
        #[command(subcommand)]
        action: TrustAction,
    },
    /// Run the node in the foreground: on the network, serving other
    /// commands through HOME/control.sock, until `stop`, SIGTERM or SIGINT.
    ///
    /// Logs go to standard error (RUST_LOG, default info).
    Start {
        /// Listen on ADDR (repeatable; port 0 picks one) [default: `[net] bind` in config.toml]
        #[arg(long, value_name = "ADDR")]
        bind: Vec<SocketAddr>,
        /// Use this relay server [default: `[net] relay` in config.toml, else none]
        #[arg(long, value_name = "URL")]
        relay: Option<String>,
    },
    /// Stop the running daemon, and wait until it is gone.
    Stop,
    /// Show whether a daemon runs, the node's addresses, peers, store and uptime.
    Status {
        /// Wait up to DURATION (10s, 1m) for a daemon to answer, then show its status.
        #[arg(long, value_name = "DURATION")]
        wait: Option<String>,
    },
    /// Print a ticket that lets a new node join this one with the given capabilities.
    Invite {
        /// Capabilities the joiner will hold: fetch, push, exec, comma-separated.
        #[arg(long, default_value = "fetch", value_name = "CAPS")]
        cap: String,
        /// How long the ticket works (1h, 7d, ...).
        #[arg(long, default_value = "1h")]
        expires: String,
        /// How many nodes may join with it.
        #[arg(long, default_value_t = 1, value_name = "N")]
        uses: u32,
    },
    /// Join the node that printed TICKET with `clive-node invite`.
    Join {
        /// The ticket.
        ticket: String,
    },
    /// Known peers.
    Peers {
        /// What to do with peers.
        #[command(subcommand)]
        action: PeersAction,
    },
    /// Fetch a blob or a whole tree from a peer into the store.
    Get {
        /// The object's hash.
        hash: String,
        /// The peer's KEY [default: any connected peer]
        #[arg(long, value_name = "PEER")]
        from: Option<String>,
        /// Also write it to DEST, which must not exist unless --force.
        #[arg(short = 'o', value_name = "DEST")]
        out: Option<PathBuf>,
        /// Replace DEST if it exists.
        #[arg(long, requires = "out")]
        force: bool,
    },
    /// Send a blob or a whole tree to a peer.
    Push {
        /// A hash or a pin name, optionally with a path inside it (PIN/dir/file).
        object: String,
        /// The peer's KEY.
        #[arg(long, value_name = "PEER")]
        to: String,
    },
}

/// Peers subcommands. KEY is an OpenSSH public key line, a file holding one,
/// an endpoint id, or the SHA256: fingerprint of a known key.
#[derive(Debug, Subcommand)]
pub enum PeersAction {
    /// List known peers and whether each is connected.
    Ls,
    /// Record a peer and the addresses it is reachable at.
    Add {
        /// The peer's key.
        key: String,
        /// Its addresses (IP:PORT).
        #[arg(required = true, value_name = "ADDR")]
        addrs: Vec<String>,
    },
    /// Forget a peer.
    Rm {
        /// The peer's key.
        key: String,
    },
}

/// Trust subcommands. KEY is an OpenSSH public key line, a file holding one,
/// an endpoint id, or the SHA256: fingerprint of a known key. CERT is a
/// certificate id or the file it was written to with -o.
#[derive(Debug, Subcommand)]
pub enum TrustAction {
    /// Issue a certificate granting KEY capabilities.
    Grant {
        /// The subject.
        key: String,
        /// Capabilities: fetch, push, exec, comma-separated.
        #[arg(long, value_name = "CAPS")]
        cap: String,
        /// How long it is valid (30d, 12h, ...).
        #[arg(long, default_value = "30d")]
        expires: String,
        /// How many further links the subject may delegate (0-7).
        #[arg(long, default_value_t = 0, value_name = "N")]
        delegate: u8,
        /// Also write the body to NAME and its armored signature to NAME.sig.
        #[arg(short = 'o', value_name = "NAME")]
        out: Option<PathBuf>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        agent: bool,
    },
    /// Import a certificate (FILE and FILE.sig, or one file) or a revocation.
    Import {
        /// The file.
        file: PathBuf,
    },
    /// List certificates held, issued and known.
    Ls,
    /// Show one certificate.
    Show {
        /// The certificate.
        cert: String,
    },
    /// Check whether a peer holds a capability, and print the chain or the failing link.
    Verify {
        /// The peer's KEY.
        #[arg(long)]
        peer: String,
        /// The capability: fetch, push or exec.
        #[arg(long)]
        cap: String,
    },
    /// Revoke a certificate with a signed revocation.
    Revoke {
        /// The certificate.
        cert: String,
        /// Also write the signed revocation to FILE, for `trust import` elsewhere.
        #[arg(short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        agent: bool,
    },
    /// Manage the trusted roots (an OpenSSH allowed_signers file).
    Roots {
        /// What to do with roots.
        #[command(subcommand)]
        action: RootsAction,
    },
}

/// Roots subcommands.
#[derive(Debug, Subcommand)]
pub enum RootsAction {
    /// Trust KEY as a root.
    Add {
        /// The key.
        key: String,
        /// The principal name written in allowed_signers.
        #[arg(long, default_value = "root")]
        name: String,
    },
    /// Stop trusting KEY as a root.
    Rm {
        /// The key.
        key: String,
    },
    /// List the roots.
    Ls,
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
