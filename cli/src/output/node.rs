//! How the top-level replies print (`id`, `status`, `stop`), and what the
//! tool's own commands print (`init`, `start`).

use std::io::{self, Write};

use anyhow::Result;
use clive_node::{
    IdentityInfo, Initialized, NodeReply,
    api::{DaemonInfo, StatusReport},
    daemon::Ready,
};
use indicatif::HumanBytes;

use super::{Out, Render, list, peers::peer_line};

/// Prints a [`NodeReply`].
pub(super) fn reply(out: &Out, reply: &NodeReply) -> Result<()> {
    match reply {
        NodeReply::Identity(x) => out.show(x),
        NodeReply::Status(x) => out.show(x),
        NodeReply::Stopping(x) => out.show(x),
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
        writeln!(
            out,
            "job cache  {} of {}",
            s.cache_bytes.map_or_else(
                || "not measured yet".to_owned(),
                |b| HumanBytes(b).to_string()
            ),
            HumanBytes(s.cache_bound)
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
