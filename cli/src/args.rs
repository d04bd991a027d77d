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
    Fsck {
        /// Fetch damaged or missing objects again from peers that have them.
        #[arg(long)]
        repair: bool,
    },
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
        /// Pin it under NAME once it is all here.
        #[arg(long, value_name = "NAME")]
        pin: Option<String>,
    },
    /// Signed names for hashes (TUF zones): publish, follow, resolve, history.
    Name {
        /// What to do with names.
        #[command(subcommand)]
        action: NameAction,
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

/// Name subcommands. A NAME is `ZONE/PATH` (`release/myapp`); KEY is an
/// OpenSSH public key line, a file holding one, an endpoint id, or the
/// SHA256: fingerprint of a known key.
#[derive(Debug, Subcommand)]
pub enum NameAction {
    /// Zones this node publishes or follows.
    Zone {
        /// What to do with zones.
        #[command(subcommand)]
        action: ZoneAction,
    },
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
        more: Vec<String>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        agent: bool,
    },
    /// Remove NAME from its zone, signed.
    Unpublish {
        /// ZONE/PATH.
        name: String,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        agent: bool,
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
        threshold: Option<u32>,
        /// Where to write the new root when co-signatures are needed.
        #[arg(short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        agent: bool,
    },
    /// Root metadata signed by several people.
    Root {
        /// What to do with a root file.
        #[command(subcommand)]
        action: RootAction,
    },
    /// Follow a zone from a ticket (`name zone create` prints one) or a trusted ROOT.json.
    Follow {
        /// A zone ticket, or a root.json file to trust.
        source: String,
        /// Also fetch the zone's metadata from this static HTTP mirror.
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
        /// Call the zone this here [default: the zone's own name]
        #[arg(long = "as", value_name = "ZONE")]
        alias: Option<String>,
    },
    /// Fetch new metadata for a zone now, from its peers and mirror.
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
        target: Option<String>,
        /// Remove the override.
        #[arg(long)]
        clear: bool,
    },
}

/// Zone subcommands.
#[derive(Debug, Subcommand)]
pub enum ZoneAction {
    /// Create a zone signed by this node, and print the ticket followers use.
    Create {
        /// The zone's name.
        zone: String,
        /// Further root keys (repeatable): co-signers of root changes.
        #[arg(long = "key", value_name = "KEY")]
        keys: Vec<String>,
        /// How many root keys must sign a root.
        #[arg(long, default_value_t = 1, value_name = "N")]
        threshold: u32,
        /// Where to write the first root when co-signatures are needed.
        #[arg(short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
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
#[derive(Debug, Subcommand)]
pub enum RootAction {
    /// Add this node's signature (or the signature of an ssh key file) to a root file.
    Sign {
        /// The root.json file, rewritten in place.
        file: PathBuf,
        /// Sign with this OpenSSH ed25519 private key instead of the node's.
        #[arg(long, value_name = "PATH")]
        key: Option<PathBuf>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long, conflicts_with = "key")]
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
