//! How the store's replies print.

use std::io::{self, Write};

use anyhow::Result;
use clive_node::{
    AddResult, GcOutcome, ListEntry, StoreReply,
    cas::{Exported, FsckReport, Pin},
};
use indicatif::HumanBytes;
use serde::Serialize;

use super::{Out, Render};

/// Prints a [`StoreReply`].
pub(super) fn reply(out: &Out, reply: &StoreReply) -> Result<()> {
    match reply {
        // Its JSON is printed once all paths are added (`Out::added_all`).
        StoreReply::Added(x) => out.show_text(x),
        // The bytes went to standard output already.
        StoreReply::Written { .. } => Ok(()),
        StoreReply::Listing(x) => out.show(x),
        StoreReply::Exported(x) => out.show(x),
        StoreReply::Pinned(x) => out.show(x),
        StoreReply::Unpinned(x) => out.show(&Unpinned(x)),
        StoreReply::Pins(x) => out.show(x),
        StoreReply::Gc(x) => out.show(x),
        StoreReply::Fsck(x) => out.show(x),
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

impl Render for GcOutcome {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let gc = &self.gc;
        let verb = if gc.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let orphans = match gc.orphan_files {
            0 => String::new(),
            n => format!(" and {n} orphaned temporary files"),
        };
        if let Some(why) = &gc.held_back {
            writeln!(out, "{why}")?;
        }
        writeln!(
            out,
            "{verb} {} objects{orphans}, freeing {}; kept {} reachable from pins",
            gc.removed,
            HumanBytes(gc.freed_bytes),
            gc.kept
        )?;
        let cache = &self.cache;
        if !cache.evicted.is_empty() {
            let evicting = if gc.dry_run { "would evict" } else { "evicted" };
            writeln!(
                out,
                "job cache: {evicting} {} results used longest ago, freeing {}",
                cache.evicted.len(),
                HumanBytes(cache.evicted_bytes)
            )?;
        }
        writeln!(
            out,
            "job cache: {} in {} results, bound {}",
            HumanBytes(cache.bytes),
            cache.entries,
            HumanBytes(cache.bound)
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
