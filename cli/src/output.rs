//! Printing results: text for people, `--json` for scripts.

use std::io::Write;

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

    pub(crate) fn print_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, value)?;
        writeln!(stdout)?;
        Ok(())
    }

    pub(crate) fn text(&self, text: std::fmt::Arguments<'_>) -> Result<()> {
        if !self.json {
            let mut stdout = std::io::stdout().lock();
            stdout.write_fmt(text)?;
            stdout.flush()?;
        }
        Ok(())
    }

    /// After `init`.
    pub fn initialized(&self, done: &Initialized) -> Result<()> {
        if self.json {
            return self.print_json(done);
        }
        let how = if done.imported { "imported" } else { "new" };
        self.text(format_args!(
            "initialized {} with a {how} key\n",
            done.home.display()
        ))?;
        self.identity(&done.identity)
    }

    /// The node's identity: public key line, `ssh-keygen -lf` line, endpoint id.
    pub fn identity(&self, id: &IdentityInfo) -> Result<()> {
        if self.json {
            return self.print_json(id);
        }
        self.text(format_args!(
            "{}\n{}\n{}\n",
            id.public_key, id.fingerprint_line, id.endpoint_id
        ))
    }

    /// One added path, as `b3sum` prints it: `HASH  PATH`.
    pub fn added(&self, added: &AddResult) -> Result<()> {
        self.text(format_args!("{}  {}\n", added.added.hash, added.source))?;
        // Standard output stays in b3sum's format; this is a note.
        if let (false, Some(pin), Some(old)) = (self.json, &added.pin, &added.replaced) {
            eprintln!("pin {pin} replaced: it was {old}");
        }
        Ok(())
    }

    /// All added paths (JSON only; text was printed as each finished).
    pub fn added_all(&self, all: &[AddResult]) -> Result<()> {
        if self.json {
            self.print_json(all)?;
        }
        Ok(())
    }

    /// A tree listing.
    pub fn listing(&self, entries: &[ListEntry]) -> Result<()> {
        if self.json {
            return self.print_json(entries);
        }
        let mut stdout = std::io::stdout().lock();
        for e in entries {
            let name = match (&e.target, e.kind) {
                (Some(target), _) => format!("{} -> {target}", e.name),
                (None, clive_node::cas::EntryKind::Tree) => format!("{}/", e.name),
                (None, _) => e.name.clone(),
            };
            writeln!(stdout, "{:<7} {:>12} {} {}", e.kind, e.size, e.hash, name)?;
        }
        Ok(())
    }

    /// After `export`.
    pub fn exported(&self, e: &Exported) -> Result<()> {
        if self.json {
            return self.print_json(e);
        }
        self.text(format_args!(
            "exported {} {} to {} ({} objects, {})\n",
            e.kind,
            e.hash,
            e.path.display(),
            e.objects,
            HumanBytes(e.bytes)
        ))
    }

    /// After `pin add`.
    pub fn pinned(&self, pin: &Pin) -> Result<()> {
        if self.json {
            return self.print_json(pin);
        }
        let replaced = match &pin.replaced {
            Some(old) => format!(" (replacing {old})"),
            None => String::new(),
        };
        self.text(format_args!(
            "pinned {} -> {} {}{replaced}\n",
            pin.name, pin.kind, pin.hash
        ))
    }

    /// After `pin rm`.
    pub fn unpinned(&self, pin: &Pin) -> Result<()> {
        if self.json {
            return self.print_json(pin);
        }
        self.text(format_args!("unpinned {} (was {})\n", pin.name, pin.hash))
    }

    /// `pin ls`.
    pub fn pins(&self, pins: &[Pin]) -> Result<()> {
        if self.json {
            return self.print_json(pins);
        }
        let mut stdout = std::io::stdout().lock();
        for p in pins {
            writeln!(stdout, "{}  {:<4}  {}", p.hash, p.kind, p.name)?;
        }
        Ok(())
    }

    /// After `gc`.
    pub fn gc(&self, report: &GcReport) -> Result<()> {
        if self.json {
            return self.print_json(report);
        }
        let verb = if report.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let orphans = match report.orphan_files {
            0 => String::new(),
            n => format!(" and {n} orphaned temporary files"),
        };
        if let Some(why) = &report.held_back {
            self.text(format_args!("{why}\n"))?;
        }
        self.text(format_args!(
            "{verb} {} objects{orphans}, freeing {}; kept {} reachable from pins\n",
            report.removed,
            HumanBytes(report.freed_bytes),
            report.kept
        ))
    }

    /// After `fsck`.
    pub fn fsck(&self, report: &FsckReport) -> Result<()> {
        if self.json {
            return self.print_json(report);
        }
        let mut stdout = std::io::stdout().lock();
        let reached = |d: &clive_node::cas::Damage| match d.reached_by.as_slice() {
            [] => String::new(),
            paths => format!(" (reached by {})", paths.join(", ")),
        };
        for hash in &report.repaired {
            writeln!(stdout, "repaired {hash}: fetched again from a peer")?;
        }
        for d in &report.unrepaired {
            writeln!(
                stdout,
                "could not repair {}: {}{}",
                d.hash,
                d.problem,
                reached(d)
            )?;
        }
        for d in &report.damaged {
            writeln!(stdout, "damaged {}: {}{}", d.hash, d.problem, reached(d))?;
        }
        for d in &report.missing {
            writeln!(stdout, "missing {}: {}", d.hash, d.problem)?;
        }
        let partial = match report.partial {
            0 => String::new(),
            n => format!(", {n} partial (interrupted transfers)"),
        };
        let verdict = if report.is_clean() {
            "no damage".to_owned()
        } else {
            format!(
                "{} damaged, {} missing (`clive-node fsck --repair` fetches them again from peers)",
                report.damaged.len(),
                report.missing.len()
            )
        };
        writeln!(
            stdout,
            "checked {} objects ({}){partial}: {verdict}",
            report.objects,
            HumanBytes(report.bytes)
        )?;
        Ok(())
    }
}

impl Out {
    /// One certificate.
    pub fn cert(&self, c: &CertInfo) -> Result<()> {
        if self.json {
            return self.print_json(c);
        }
        let revoked = match &c.revoked_by {
            Some(by) => format!("\nrevoked      by {by}"),
            None => String::new(),
        };
        self.text(format_args!(
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
        ))
    }

    /// What `trust import` took in.
    pub fn imported(&self, imported: &Imported) -> Result<()> {
        match imported {
            _ if self.json => self.print_json(imported),
            Imported::Certificate(c) => self.cert(c),
            Imported::Revocation(r) => {
                let unknown = if r.certificate_known {
                    ""
                } else {
                    " (a certificate this node does not have yet)"
                };
                self.text(format_args!(
                    "revocation of {}{unknown}\nrevoked by {} at {}\n",
                    r.certificate, r.revoker, r.revoked_at
                ))
            }
        }
    }

    /// A list of certificates, one line each.
    pub fn certs(&self, certs: &[CertInfo]) -> Result<()> {
        if self.json {
            return self.print_json(certs);
        }
        let mut stdout = std::io::stdout().lock();
        for c in certs {
            let state = if c.revoked_by.is_some() {
                " REVOKED"
            } else {
                ""
            };
            writeln!(
                stdout,
                "{}  {:<6} {} -> {}  {} delegate {} until {}{state}",
                &c.id[..16],
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

    /// The outcome of `trust verify`.
    pub fn verdict(&self, v: &Verdict) -> Result<()> {
        if self.json {
            return self.print_json(v);
        }
        let mut stdout = std::io::stdout().lock();
        for (i, c) in v.chain.iter().enumerate() {
            writeln!(
                stdout,
                "link {}: {} grants {} {} (delegate {}, until {}) [{}]",
                i + 1,
                c.issuer_fingerprint,
                c.subject_fingerprint,
                c.capabilities,
                c.delegate,
                c.valid_until,
                &c.id[..16]
            )?;
        }
        match &v.reason {
            None => writeln!(stdout, "allowed: {} holds {}", v.peer, v.capability)?,
            Some(reason) => writeln!(
                stdout,
                "refused: {} does not hold {}: {reason}",
                v.peer, v.capability
            )?,
        }
        Ok(())
    }

    /// Trust roots.
    pub fn roots(&self, roots: &[RootInfo]) -> Result<()> {
        if self.json {
            return self.print_json(roots);
        }
        let mut stdout = std::io::stdout().lock();
        for r in roots {
            writeln!(stdout, "{}  {}  {}", r.fingerprint, r.name, r.key)?;
        }
        Ok(())
    }
}

impl Out {
    /// Any reply, as the command that asked for it prints it.
    pub fn reply(&self, reply: &Reply) -> Result<()> {
        match reply {
            Reply::Identity(id) => self.identity(id),
            Reply::Added(added) => self.added(added),
            Reply::Written { .. } => Ok(()),
            Reply::Listing(entries) => self.listing(entries),
            Reply::Exported(e) => self.exported(e),
            Reply::Pinned(pin) => self.pinned(pin),
            Reply::Unpinned(pin) => self.unpinned(pin),
            Reply::Pins(pins) => self.pins(pins),
            Reply::Gc(report) => self.gc(report),
            Reply::Fsck(report) => self.fsck(report),
            Reply::Cert(c) => self.cert(c),
            Reply::Imported(imported) => self.imported(imported),
            Reply::Certs(certs) => self.certs(certs),
            Reply::Verdict(v) => self.verdict(v),
            Reply::Roots(roots) => self.roots(roots),
            Reply::Status(status) => self.status(status),
            Reply::Stopping(daemon) => self.stopped(daemon),
            Reply::Invite(invite) => self.invite(invite),
            Reply::Joined(joined) => self.joined(joined),
            Reply::Peers(peers) => self.peers(peers),
            Reply::PeerAdded(peer) => self.peer_changed("added", peer),
            Reply::PeerRemoved(peer) => self.peer_changed("removed", peer),
            Reply::Fetched(fetched) => self.fetched(fetched),
            Reply::Pushed(pushed) => self.pushed(pushed),
            other => {
                self.name_reply(other)?;
                Ok(())
            }
        }
    }

    /// Once the daemon serves.
    pub fn ready(&self, ready: &Ready) -> Result<()> {
        if self.json {
            return self.print_json(ready);
        }
        let addrs = match ready.addrs.len() {
            0 => String::new(),
            _ => format!(", listening on {}", ready.addrs.join(" ")),
        };
        self.text(format_args!(
            "clive-node running: endpoint id {}, control socket {}, process {}{addrs}\n",
            ready.identity.endpoint_id,
            ready.control_socket.display(),
            ready.pid
        ))
    }

    /// `status`.
    pub fn status(&self, report: &StatusReport) -> Result<()> {
        if self.json {
            return self.print_json(report);
        }
        let s = &report.status;
        let mut stdout = std::io::stdout().lock();
        match &report.daemon {
            Some(d) => writeln!(
                stdout,
                "status     running (process {}, control socket {})",
                d.pid,
                d.control_socket.display()
            )?,
            None if s.running => writeln!(stdout, "status     running")?,
            None => writeln!(stdout, "status     not running")?,
        }
        writeln!(stdout, "endpoint   {}", s.identity.endpoint_id)?;
        writeln!(stdout, "key        {}", s.identity.fingerprint)?;
        if s.running {
            writeln!(stdout, "addresses  {}", list(&s.addrs))?;
            writeln!(
                stdout,
                "uptime     {}",
                humantime::format_duration(std::time::Duration::from_secs(s.uptime_secs))
            )?;
        }
        writeln!(
            stdout,
            "store      {} objects, {}",
            s.store_objects,
            HumanBytes(s.store_bytes)
        )?;
        for e in &s.equivocations {
            writeln!(
                stdout,
                "EQUIVOCATION {e}: two different signed documents (see `name zone show`)"
            )?;
        }
        let connected = s.peers.iter().filter(|p| p.connected).count();
        writeln!(
            stdout,
            "peers      {} known, {connected} connected",
            s.peers.len()
        )?;
        for p in &s.peers {
            writeln!(stdout, "  {}", peer_line(p))?;
        }
        Ok(())
    }

    /// After `stop`.
    pub fn stopped(&self, daemon: &DaemonInfo) -> Result<()> {
        if self.json {
            return self.print_json(daemon);
        }
        self.text(format_args!(
            "stopped clive-node (process {})\n",
            daemon.pid
        ))
    }

    /// `invite`: an explanation, then the ticket alone on the last line.
    pub fn invite(&self, invite: &Invite) -> Result<()> {
        if self.json {
            return self.print_json(invite);
        }
        let joins = if invite.uses == 1 { "join" } else { "joins" };
        self.text(format_args!(
            "invite: {} for {} {joins}, valid until {}\n\
             on the new node, run `clive-node join` with this ticket:\n{}\n",
            invite.caps, invite.uses, invite.expires, invite.ticket
        ))
    }

    /// After `join`.
    pub fn joined(&self, joined: &Joined) -> Result<()> {
        if self.json {
            return self.print_json(joined);
        }
        let c = &joined.cert;
        self.text(format_args!(
            "joined {} ({})\nholding certificate {}: {} until {}\n",
            joined.peer.fingerprint,
            joined.peer.endpoint_id,
            short(&c.id),
            c.capabilities,
            c.valid_until
        ))
    }

    /// `peers ls`: one line each.
    pub fn peers(&self, peers: &[PeerInfo]) -> Result<()> {
        if self.json {
            return self.print_json(peers);
        }
        let mut stdout = std::io::stdout().lock();
        for p in peers {
            writeln!(stdout, "{}", peer_line(p))?;
        }
        Ok(())
    }

    /// After `peers add` or `peers rm`.
    pub fn peer_changed(&self, verb: &str, peer: &PeerInfo) -> Result<()> {
        if self.json {
            return self.print_json(peer);
        }
        let at = match peer.addrs.len() {
            0 => String::new(),
            _ => format!(" at {}", peer.addrs.join(" ")),
        };
        self.text(format_args!(
            "{verb} peer {} ({}){at}\n",
            peer.fingerprint, peer.endpoint_id
        ))
    }

    /// After `get`.
    pub fn fetched(&self, f: &Fetched) -> Result<()> {
        if self.json {
            return self.print_json(f);
        }
        if f.from.is_empty() {
            self.text(format_args!(
                "{} {} is here already ({} objects, {}; nothing received)\n",
                f.kind,
                f.hash,
                f.objects,
                HumanBytes(f.size)
            ))?;
        } else {
            self.text(format_args!(
                "fetched {} {} from {} ({} objects, {}; {} received)\n",
                f.kind,
                f.hash,
                f.from,
                f.objects,
                HumanBytes(f.size),
                HumanBytes(f.bytes_received)
            ))?;
        }
        match &f.exported {
            Some(e) => self.exported(e),
            None => Ok(()),
        }
    }

    /// After `push`.
    pub fn pushed(&self, p: &Pushed) -> Result<()> {
        if self.json {
            return self.print_json(p);
        }
        self.text(format_args!(
            "pushed {} to {} ({} sent)\n",
            p.hash,
            p.to,
            HumanBytes(p.bytes_sent)
        ))
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
