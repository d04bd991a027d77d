//! Printing results: text for people, `--json` for scripts.
//!
//! Every reply prints through [`Render`]: its text form is the trait's one
//! method, its JSON form is its serde form, printed by [`Out::show`] for
//! all of them. [`Out::reply`] matches every [`Reply`] variant without a
//! catch-all, so a reply that cannot be printed does not compile. The
//! renderings of the `name` replies are in `name_output.rs`.

use std::io::{self, Write};

use anyhow::Result;
use clive_node::{
    AddResult, CertInfo, Fetched, IdentityInfo, Imported, Initialized, Invite, Joined, ListEntry,
    PeerInfo, Pushed, Reply, RootInfo, Verdict,
    api::{DaemonInfo, StatusReport},
    cas::{Exported, FsckReport, GcReport, Pin},
    daemon::Ready,
};
use indicatif::HumanBytes;
use serde::Serialize;

/// How a result prints as text; as JSON it is its serde form.
pub trait Render: Serialize {
    /// Writes the text form to `out` (standard output). Notes that must
    /// not mix with what scripts read go to standard error.
    fn text(&self, out: &mut dyn Write) -> io::Result<()>;
}

/// Where results go, and in which form.
pub struct Out {
    json: bool,
}

impl Out {
    /// Text, or JSON when `json`.
    pub fn new(json: bool) -> Self {
        Out { json }
    }

    /// Whether output is JSON (and progress bars stay quiet).
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value`: its text, or its JSON.
    pub fn show<T: Render + ?Sized>(&self, value: &T) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(&mut stdout, value)?;
            writeln!(stdout)?;
        } else {
            value.text(&mut stdout)?;
        }
        stdout.flush()?;
        Ok(())
    }

    /// Prints `value` as text only: its JSON is printed elsewhere (`add`
    /// prints the JSON of all its paths at once).
    fn show_text<T: Render + ?Sized>(&self, value: &T) -> Result<()> {
        if self.json {
            return Ok(());
        }
        self.show(value)
    }

    /// Any reply, as the command that asked for it prints it.
    pub fn reply(&self, reply: &Reply) -> Result<()> {
        match reply {
            Reply::Identity(x) => self.show(x),
            Reply::Added(x) => self.show_text(x),
            // The bytes went to standard output already.
            Reply::Written { .. } => Ok(()),
            Reply::Listing(x) => self.show(x),
            Reply::Exported(x) => self.show(x),
            Reply::Pinned(x) => self.show(x),
            Reply::Unpinned(x) => self.show(&Unpinned(x)),
            Reply::Pins(x) => self.show(x),
            Reply::Gc(x) => self.show(x),
            Reply::Fsck(x) => self.show(x),
            Reply::Cert(x) => self.show(x),
            Reply::Imported(x) => self.show(x),
            Reply::Certs(x) => self.show(x),
            Reply::Verdict(x) => self.show(x),
            Reply::Roots(x) => self.show(x),
            Reply::Status(x) => self.show(x),
            Reply::Stopping(x) => self.show(x),
            Reply::Invite(x) => self.show(x),
            Reply::Joined(x) => self.show(x),
            Reply::Peers(x) => self.show(x),
            Reply::PeerAdded(x) => self.show(&PeerChanged("added", x)),
            Reply::PeerRemoved(x) => self.show(&PeerChanged("removed", x)),
            Reply::Fetched(x) => self.show(x),
            Reply::Pushed(x) => self.show(x),
            Reply::ZoneChanged(x) => self.show(x),
            Reply::Zones(x) => self.show(x),
            Reply::Zone(x) => self.show(x),
            Reply::NamePublished(x) => self.show(x),
            Reply::NamesPublished(x) => self.show(x),
            Reply::Delegated(x) => self.show(x),
            Reply::RootSigned(x) => self.show(x),
            Reply::Refreshed(x) => self.show(x),
            Reply::Resolved(x) => self.show(x),
            Reply::NameHistory(x) => self.show(x),
            Reply::ZoneExported(x) => self.show(x),
            Reply::Overridden(x) => self.show(x),
        }
    }

    /// All added paths (JSON only; text was printed as each finished).
    pub fn added_all(&self, all: &[AddResult]) -> Result<()> {
        if self.json {
            self.show(all)?;
        }
        Ok(())
    }
}

impl Render for Initialized {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let how = if self.imported { "imported" } else { "new" };
        writeln!(out, "initialized {} with a {how} key", self.home.display())?;
        self.identity.text(out)
    }
}

/// The node's identity: public key line, `ssh-keygen -lf` line, endpoint id.
impl Render for IdentityInfo {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        write!(
            out,
            "{}\n{}\n{}\n",
            self.public_key, self.fingerprint_line, self.endpoint_id
        )
    }
}

/// Each added path, as `b3sum` prints it: `HASH  PATH`.
impl Render for [AddResult] {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for added in self {
            writeln!(out, "{}  {}", added.added.hash, added.source)?;
            // Standard output stays in b3sum's format; this is a note.
            if let (Some(pin), Some(old)) = (&added.pin, &added.replaced) {
                eprintln!("pin {pin} replaced: it was {old}");
            }
        }
        Ok(())
    }
}

impl Render for Vec<AddResult> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        self.as_slice().text(out)
    }
}

/// A tree listing.
impl Render for Vec<ListEntry> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for e in self {
            let name = match (&e.target, e.kind) {
                (Some(target), _) => format!("{} -> {target}", e.name),
                (None, clive_node::cas::EntryKind::Tree) => format!("{}/", e.name),
                (None, _) => e.name.clone(),
            };
            writeln!(out, "{:<7} {:>12} {} {}", e.kind, e.size, e.hash, name)?;
        }
        Ok(())
    }
}

impl Render for Exported {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "exported {} {} to {} ({} objects, {})",
            self.kind,
            self.hash,
            self.path.display(),
            self.objects,
            HumanBytes(self.bytes)
        )
    }
}

/// After `pin add`.
impl Render for Pin {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let replaced = match &self.replaced {
            Some(old) => format!(" (replacing {old})"),
            None => String::new(),
        };
        writeln!(
            out,
            "pinned {} -> {} {}{replaced}",
            self.name, self.kind, self.hash
        )
    }
}

/// After `pin rm`: the pin removed.
#[derive(Serialize)]
#[serde(transparent)]
struct Unpinned<'a>(&'a Pin);

impl Render for Unpinned<'_> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "unpinned {} (was {})", self.0.name, self.0.hash)
    }
}

/// `pin ls`.
impl Render for Vec<Pin> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for p in self {
            writeln!(out, "{}  {:<4}  {}", p.hash, p.kind, p.name)?;
        }
        Ok(())
    }
}

impl Render for GcReport {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let orphans = match self.orphan_files {
            0 => String::new(),
            n => format!(" and {n} orphaned temporary files"),
        };
        if let Some(why) = &self.held_back {
            writeln!(out, "{why}")?;
        }
        writeln!(
            out,
            "{verb} {} objects{orphans}, freeing {}; kept {} reachable from pins",
            self.removed,
            HumanBytes(self.freed_bytes),
            self.kept
        )
    }
}

impl Render for FsckReport {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let reached = |d: &clive_node::cas::Damage| match d.reached_by.as_slice() {
            [] => String::new(),
            paths => format!(" (reached by {})", paths.join(", ")),
        };
        for hash in &self.repaired {
            writeln!(out, "repaired {hash}: fetched again from a peer")?;
        }
        for d in &self.unrepaired {
            writeln!(
                out,
                "could not repair {}: {}{}",
                d.hash,
                d.problem,
                reached(d)
            )?;
        }
        for d in &self.damaged {
            writeln!(out, "damaged {}: {}{}", d.hash, d.problem, reached(d))?;
        }
        for d in &self.missing {
            writeln!(out, "missing {}: {}", d.hash, d.problem)?;
        }
        let partial = match self.partial {
            0 => String::new(),
            n => format!(", {n} partial (interrupted transfers)"),
        };
        let verdict = if self.is_clean() {
            "no damage".to_owned()
        } else {
            format!(
                "{} damaged, {} missing (`clive-node fsck --repair` fetches them again from peers)",
                self.damaged.len(),
                self.missing.len()
            )
        };
        writeln!(
            out,
            "checked {} objects ({}){partial}: {verdict}",
            self.objects,
            HumanBytes(self.bytes)
        )
    }
}

/// One certificate.
impl Render for CertInfo {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let c = self;
        let revoked = match &c.revoked_by {
            Some(by) => format!("\nrevoked      by {by}"),
            None => String::new(),
        };
        write!(
            out,
            "certificate  {}\nrelation     {}\nissuer       {}\nsubject      {}\n\
             capabilities {}\ndelegate     {}\nvalid        {} .. {}{revoked}\n",
            c.id,
            c.relation,
            c.issuer_fingerprint,
            c.subject_fingerprint,
            c.capabilities,
            c.delegate,
            c.valid_from,
            c.valid_until
        )
    }
}

/// What `trust import` took in.
impl Render for Imported {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Imported::Certificate(c) => c.text(out),
            Imported::Revocation(r) => {
                let unknown = if r.certificate_known {
                    ""
                } else {
                    " (a certificate this node does not have yet)"
                };
                write!(
                    out,
                    "revocation of {}{unknown}\nrevoked by {} at {}\n",
                    r.certificate, r.revoker, r.revoked_at
                )
            }
        }
    }
}

/// A list of certificates, one line each.
impl Render for Vec<CertInfo> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for c in self {
            let state = if c.revoked_by.is_some() {
                " REVOKED"
            } else {
                ""
            };
            writeln!(
                out,
                "{}  {:<6} {} -> {}  {} delegate {} until {}{state}",
                short(&c.id),
                c.relation,
                c.issuer_fingerprint,
                c.subject_fingerprint,
                c.capabilities,
                c.delegate,
                c.valid_until
            )?;
        }
        Ok(())
    }
}

/// The outcome of `trust verify`.
impl Render for Verdict {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for (i, c) in self.chain.iter().enumerate() {
            writeln!(
                out,
                "link {}: {} grants {} {} (delegate {}, until {}) [{}]",
                i + 1,
                c.issuer_fingerprint,
                c.subject_fingerprint,
                c.capabilities,
                c.delegate,
                c.valid_until,
                short(&c.id)
            )?;
        }
        match &self.reason {
            None => writeln!(out, "allowed: {} holds {}", self.peer, self.capability),
            Some(reason) => writeln!(
                out,
                "refused: {} does not hold {}: {reason}",
                self.peer, self.capability
            ),
        }
    }
}

/// Trust roots.
impl Render for Vec<RootInfo> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for r in self {
            writeln!(out, "{}  {}  {}", r.fingerprint, r.name, r.key)?;
        }
        Ok(())
    }
}

/// Once the daemon serves.
impl Render for Ready {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let addrs = match self.addrs.len() {
            0 => String::new(),
            _ => format!(", listening on {}", self.addrs.join(" ")),
        };
        writeln!(
            out,
            "clive-node running: endpoint id {}, control socket {}, process {}{addrs}",
            self.identity.endpoint_id,
            self.control_socket.display(),
            self.pid
        )
    }
}

impl Render for StatusReport {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let s = &self.status;
        match &self.daemon {
            Some(d) => writeln!(
                out,
                "status     running (process {}, control socket {})",
                d.pid,
                d.control_socket.display()
            )?,
            None if s.running => writeln!(out, "status     running")?,
            None => writeln!(out, "status     not running")?,
        }
        writeln!(out, "endpoint   {}", s.identity.endpoint_id)?;
        writeln!(out, "key        {}", s.identity.fingerprint)?;
        if s.running {
            writeln!(out, "addresses  {}", list(&s.addrs))?;
            writeln!(
                out,
                "uptime     {}",
                humantime::format_duration(std::time::Duration::from_secs(s.uptime_secs))
            )?;
        }
        writeln!(
            out,
            "store      {} objects, {}",
            s.store_objects,
            HumanBytes(s.store_bytes)
        )?;
        for e in &s.equivocations {
            writeln!(
                out,
                "EQUIVOCATION {e}: two different signed documents (see `name zone show`)"
            )?;
        }
        let connected = s.peers.iter().filter(|p| p.connected).count();
        writeln!(
            out,
            "peers      {} known, {connected} connected",
            s.peers.len()
        )?;
        for p in &s.peers {
            writeln!(out, "  {}", peer_line(p))?;
        }
        Ok(())
    }
}

/// After `stop`.
impl Render for DaemonInfo {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "stopped clive-node (process {})", self.pid)
    }
}

/// `invite`: an explanation, then the ticket alone on the last line.
impl Render for Invite {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let joins = if self.uses == 1 { "join" } else { "joins" };
        write!(
            out,
            "invite: {} for {} {joins}, valid until {}\n\
             on the new node, run `clive-node join` with this ticket:\n{}\n",
            self.caps, self.uses, self.expires, self.ticket
        )
    }
}

impl Render for Joined {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let c = &self.cert;
        write!(
            out,
            "joined {} ({})\nholding certificate {}: {} until {}\n",
            self.peer.fingerprint,
            self.peer.endpoint_id,
            short(&c.id),
            c.capabilities,
            c.valid_until
        )
    }
}

/// `peers ls`: one line each.
impl Render for Vec<PeerInfo> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for p in self {
            writeln!(out, "{}", peer_line(p))?;
        }
        Ok(())
    }
}

/// After `peers add` (`"added"`) or `peers rm` (`"removed"`); its JSON is
/// the peer's.
struct PeerChanged<'a>(&'static str, &'a PeerInfo);

impl Serialize for PeerChanged<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.1.serialize(s)
    }
}

impl Render for PeerChanged<'_> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let PeerChanged(verb, peer) = self;
        let at = match peer.addrs.len() {
            0 => String::new(),
            _ => format!(" at {}", peer.addrs.join(" ")),
        };
        writeln!(
            out,
            "{verb} peer {} ({}){at}",
            peer.fingerprint, peer.endpoint_id
        )
    }
}

/// After `get`.
impl Render for Fetched {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let f = self;
        if f.from.is_empty() {
            writeln!(
                out,
                "{} {} is here already ({} objects, {}; nothing received)",
                f.kind,
                f.hash,
                f.objects,
                HumanBytes(f.size)
            )?;
        } else {
            writeln!(
                out,
                "fetched {} {} from {} ({} objects, {}; {} received)",
                f.kind,
                f.hash,
                f.from,
                f.objects,
                HumanBytes(f.size),
                HumanBytes(f.bytes_received)
            )?;
        }
        match &f.exported {
            Some(e) => e.text(out),
            None => Ok(()),
        }
    }
}

/// After `push`.
impl Render for Pushed {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "pushed {} to {} ({} sent)",
            self.hash,
            self.to,
            HumanBytes(self.bytes_sent)
        )
    }
}

/// A peer on one line: endpoint id, whether connected, fingerprint, addresses.
fn peer_line(p: &PeerInfo) -> String {
    let state = if p.connected { "connected" } else { "offline" };
    let seen = match (&p.last_seen, p.connected) {
        (Some(when), false) => format!(" (last seen {when})"),
        _ => String::new(),
    };
    format!(
        "{}  {state:<9}  {}  {}{seen}",
        p.endpoint_id,
        p.fingerprint,
        list(&p.addrs)
    )
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(" ")
    }
}

/// The first 16 characters of an id.
fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

/// True when the error is a closed standard output (`clive-node cat | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.to_string().contains("Broken pipe")
    })
}

/// Prints an error on standard error as one JSON object, for `--json`:
/// `{"error": MESSAGE}`, the message with its causes.
pub fn print_error_json(message: &str) {
    let value = serde_json::json!({ "error": message });
    eprintln!("{value}");
}
