//! How the peer replies print.

use std::io::{self, Write};

use anyhow::Result;
use clive_node::{Fetched, Invite, Joined, PeerInfo, PeerReply, Pushed};
use indicatif::HumanBytes;
use serde::Serialize;

use super::{Out, Render, list, short};

/// Prints a [`PeerReply`].
pub(super) fn reply(out: &Out, reply: &PeerReply) -> Result<()> {
    match reply {
        PeerReply::Invite(x) => out.show(x),
        PeerReply::Joined(x) => out.show(x.as_ref()),
        PeerReply::Peers(x) => out.show(x),
        PeerReply::PeerAdded(x) => out.show(&PeerChanged("added", x)),
        PeerReply::PeerRemoved(x) => out.show(&PeerChanged("removed", x)),
        PeerReply::Fetched(x) => out.show(x),
        PeerReply::Pushed(x) => out.show(x),
    }
}

/// `invite`: an explanation, then the ticket alone on the last line.
impl Render for Invite {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let joins = if self.uses == 1 { "join" } else { "joins" };
        writeln!(
            out,
            "invite: {} for {} {joins}, valid until {}",
            self.caps, self.uses, self.expires
        )?;
        if let Some(zone) = &self.device_zone {
            writeln!(
                out,
                "your own device: it grants this node everything too, and both publish in zone {zone}"
            )?;
        }
        write!(
            out,
            "on the new node, run `clive-node join` with this ticket:\n{}\n",
            self.ticket
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
        )?;
        if let Some(g) = &self.granted {
            writeln!(
                out,
                "granted it certificate {}: {} until {}",
                short(&g.id),
                g.capabilities,
                g.valid_until
            )?;
        }
        if let Some(zone) = &self.device_zone {
            writeln!(out, "following device zone {zone}")?;
        }
        Ok(())
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
            let from = if f.from_peers.len() > 1 {
                let each: Vec<String> = f
                    .from_peers
                    .iter()
                    .map(|p| format!("{} {}", short(&p.peer), HumanBytes(p.bytes)))
                    .collect();
                format!("{} peers ({})", f.from_peers.len(), each.join(", "))
            } else {
                f.from.clone()
            };
            writeln!(
                out,
                "fetched {} {} from {from} ({} objects, {}; {} received)",
                f.kind,
                f.hash,
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
pub(super) fn peer_line(p: &PeerInfo) -> String {
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
