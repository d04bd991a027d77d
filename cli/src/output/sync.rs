//! How the sync replies print.

use std::io::{self, Write};

use anyhow::Result;
use clive_node::{
    api::SyncReply,
    sync::{
        Exchange, FollowInfo, Followed, SyncReport, SyncStatus, Unfollowed,
        folder::{FolderInfo, FolderSynced},
    },
};
use indicatif::HumanBytes;

use super::{Out, Render, short};

/// Prints a [`SyncReply`].
pub(super) fn reply(out: &Out, reply: &SyncReply) -> Result<()> {
    match reply {
        SyncReply::Followed(x) => out.show(x.as_ref()),
        SyncReply::Unfollowed(x) => out.show(x),
        SyncReply::Follows(x) => out.show(x),
        SyncReply::Report(x) => out.show(x),
        SyncReply::Status(x) => out.show(x),
        SyncReply::FolderSynced(x) => out.show(x),
        SyncReply::Folders(x) => out.show(x),
        SyncReply::FolderRemoved(x) => out.show(x),
    }
}

impl Render for FolderSynced {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "folder {}", self.dir.display())?;
        if let Some(v) = &self.took {
            writeln!(
                out,
                "took version {} ({} written, {} removed)",
                short(v),
                self.written,
                self.removed
            )?;
        }
        if let Some(v) = &self.published {
            writeln!(
                out,
                "published version {} ({} files read)",
                short(v),
                self.hashed
            )?;
        }
        for c in &self.conflicts {
            writeln!(out, "conflict copy: {c}")?;
        }
        for u in &self.unsettled {
            writeln!(out, "still being written, read later: {u}")?;
        }
        for s in &self.skipped {
            writeln!(out, "left out: {s}")?;
        }
        if self.waiting {
            writeln!(out, "the name's current version is still being fetched")?;
        }
        Ok(())
    }
}

impl Render for FolderInfo {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "{} <-> {}: {} files, version {}{}",
            self.dir.display(),
            self.name,
            self.files,
            self.version.as_deref().map_or("none", short),
            if self.conflicts.is_empty() {
                String::new()
            } else {
                format!(", {} conflict copies", self.conflicts.len())
            }
        )
    }
}

fn follow_line(f: &FollowInfo) -> String {
    format!(
        "{}: {} names, {} here, {} missing, {}",
        f.entry,
        f.names,
        f.present,
        f.missing,
        HumanBytes(f.bytes)
    )
}

impl Render for Followed {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        if let Some(zone) = &self.zone_followed {
            writeln!(out, "followed zone {} from {}", zone.zone, zone.source)?;
        }
        writeln!(out, "following {}", follow_line(&self.follow))?;
        if self.bytes_fetched > 0 || self.objects_fetched > 0 {
            writeln!(
                out,
                "fetched {} objects, {}",
                self.objects_fetched,
                HumanBytes(self.bytes_fetched)
            )?;
        }
        for e in &self.errors {
            writeln!(out, "not fetched yet: {e}")?;
        }
        Ok(())
    }
}

impl Render for Unfollowed {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "no longer following {} (gc may take what only it kept)",
            self.entry
        )
    }
}

/// `sync ls`: one line each.
impl Render for Vec<FollowInfo> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.is_empty() {
            writeln!(out, "the follow set is empty")?;
        }
        for f in self {
            writeln!(out, "{}", follow_line(f))?;
        }
        Ok(())
    }
}

fn exchange_line(e: &Exchange) -> String {
    let what = if e.unchanged {
        "nothing new".to_owned()
    } else {
        let zones = if e.zones_synced.is_empty() {
            "no zone".to_owned()
        } else {
            e.zones_synced.join(" ")
        };
        format!(
            "zones updated: {zones}; {} results; fetched {} objects, {}",
            e.results_fetched,
            e.objects_fetched,
            HumanBytes(e.bytes_fetched)
        )
    };
    format!(
        "{}: {what} ({} messages, {} B sent; {} messages, {} B received)",
        short(&e.peer),
        e.messages_sent,
        e.bytes_sent,
        e.messages_received,
        e.bytes_received
    )
}

impl Render for SyncReport {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.exchanges.is_empty() {
            writeln!(out, "no peer to sync with")?;
        }
        for e in &self.exchanges {
            writeln!(out, "{}", exchange_line(e))?;
            if e.missing > 0 {
                writeln!(out, "  {} objects still missing", e.missing)?;
            }
            for err in &e.errors {
                writeln!(out, "  {err}")?;
            }
        }
        Ok(())
    }
}

impl Render for SyncStatus {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.peers.is_empty() {
            writeln!(out, "no peers")?;
        }
        for p in &self.peers {
            write!(out, "{} {}: {}", short(&p.peer), p.fingerprint, p.state)?;
            match &p.error {
                Some(e) => writeln!(out, " (last: {e})")?,
                None => writeln!(out)?,
            }
        }
        if self.conflicts.is_empty() {
            writeln!(out, "no conflicts")?;
        }
        for c in &self.conflicts {
            fn value(h: &Option<String>) -> &str {
                h.as_deref().map_or("unpublished", short)
            }
            writeln!(
                out,
                "conflict: {}/{}: kept {} (device {}), the other value {} (device {}) is in `name history`",
                c.zone,
                c.name,
                value(&c.winner),
                c.winner_device,
                value(&c.loser),
                c.loser_device
            )?;
        }
        for c in &self.folder_conflicts {
            writeln!(
                out,
                "conflict copy in a synced folder: {c} (remove it, or the original, to settle it)"
            )?;
        }
        if self.timed_out {
            writeln!(out, "not every connected peer is in sync yet")?;
        }
        Ok(())
    }
}

impl Render for Vec<FolderInfo> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        if self.is_empty() {
            writeln!(out, "no synced folders")?;
        }
        for f in self {
            f.text(out)?;
        }
        Ok(())
    }
}
