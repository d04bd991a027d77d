//! How `name` replies print: one line a result, plainly (see [`Render`]).

use std::io::{self, Write};

use anyhow::Result;
use clive_node::clive_trust::clock::format_time as when;
use clive_node::{
    NameReply,
    clive_naming::{Change, Published, Resolution, RoleInfo, ZoneInfo},
    names::{Overridden, Refreshed, RootSigned, ZoneChanged, ZoneExported, ZoneShown},
};

use super::{Out, Render};

/// Prints a [`NameReply`].
pub(super) fn reply(out: &Out, reply: &NameReply) -> Result<()> {
    match reply {
        NameReply::ZoneChanged(x) => out.show(x),
        NameReply::Zones(x) => out.show(x),
        NameReply::Zone(x) => out.show(x),
        NameReply::NamePublished(x) => out.show(x),
        NameReply::NamesPublished(x) => out.show(x),
        NameReply::Delegated(x) => out.show(x),
        NameReply::RootSigned(x) => out.show(x),
        NameReply::Refreshed(x) => out.show(x),
        NameReply::Resolved(x) => out.show(x),
        NameReply::NameHistory(x) => out.show(x),
        NameReply::ZoneExported(x) => out.show(x),
        NameReply::Overridden(x) => out.show(x),
    }
}

impl Render for ZoneChanged {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let z = self;
        let r = &z.change.root;
        if z.change.committed {
            writeln!(
                out,
                "zone {}: root version {} in force, signed by {} of {} needed",
                z.change.zone,
                r.version,
                r.signed_by.len(),
                r.threshold
            )?;
        } else {
            write!(
                out,
                "zone {}: root version {} needs {} signature(s), has {}; co-signers run \
                 `clive-node name root sign {}`, then `clive-node name root commit {} FILE`\n\
                 missing: {}\n",
                z.change.zone,
                r.version,
                r.threshold,
                r.signed_by.len(),
                z.file
                    .as_ref()
                    .map_or(String::new(), |f| f.display().to_string()),
                z.change.zone,
                r.missing.join(", ")
            )?;
        }
        if let Some(ticket) = &z.ticket {
            writeln!(out, "follow it with: clive-node name follow {ticket}")?;
        }
        Ok(())
    }
}

/// `name zone ls`: one line a zone.
impl Render for Vec<ZoneInfo> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for z in self {
            zone_line(out, z)?;
        }
        Ok(())
    }
}

impl Render for ZoneShown {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        zone_line(out, &self.info)?;
        for role in &self.info.roles {
            let paths = if role.paths.is_empty() {
                String::new()
            } else {
                format!(" paths {}", role.paths.join(","))
            };
            writeln!(
                out,
                "  {:<10} {} of {}{paths}",
                role.role,
                role.threshold,
                role.keys.join(" ")
            )?;
        }
        for (role, version) in &self.info.equivocations {
            writeln!(
                out,
                "  EQUIVOCATION: two different signed {role} version {version} documents \
                 (kept as evidence)"
            )?;
        }
        for f in &self.info.merged_forks {
            writeln!(
                out,
                "  merged fork: {} version {} signed apart by {} and by {} (both kept)",
                f.role,
                f.version,
                f.trusted_by.join(","),
                f.other_by.join(",")
            )?;
        }
        for c in &self.info.conflicts {
            let value = |h: &Option<String>| h.clone().unwrap_or_else(|| "unpublished".into());
            writeln!(
                out,
                "  conflict: {} = {} (device {}, {}) over {} (device {}, {}); publish it again to settle",
                c.name,
                value(&c.winner),
                c.winner_device,
                when(c.winner_published),
                value(&c.loser),
                c.loser_device,
                when(c.loser_published)
            )?;
        }
        writeln!(out, "  ticket: {}", self.ticket)
    }
}

/// `name publish` of one name, `name unpublish`.
impl Render for Published {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let p = self;
        match &p.hash {
            Some(hash) => writeln!(
                out,
                "published {}/{} = {} {} ({} v{}, timestamp v{})",
                p.zone,
                p.name,
                p.kind.as_deref().unwrap_or("blob"),
                hash,
                p.role,
                p.version,
                p.timestamp
            ),
            None => writeln!(
                out,
                "unpublished {}/{} ({} v{}, timestamp v{})",
                p.zone, p.name, p.role, p.version, p.timestamp
            ),
        }
    }
}

/// `name publish` of several names.
impl Render for Vec<Published> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let Some(first) = self.first() else {
            return Ok(());
        };
        let roles: std::collections::BTreeSet<String> = self
            .iter()
            .map(|p| format!("{} v{}", p.role, p.version))
            .collect();
        writeln!(
            out,
            "published {} names in zone {} ({}, timestamp v{})",
            self.len(),
            first.zone,
            roles.into_iter().collect::<Vec<_>>().join(", "),
            first.timestamp
        )
    }
}

/// `name delegate`.
impl Render for RoleInfo {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "delegated {} to {} as role {}",
            self.paths.join(","),
            self.keys.join(" "),
            self.role
        )
    }
}

impl Render for RootSigned {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let s = self;
        writeln!(
            out,
            "{}: root version {} signed by {} of {} needed{}",
            s.file.display(),
            s.status.version,
            s.status.signed_by.len(),
            s.status.threshold,
            if s.status.missing.is_empty() {
                String::new()
            } else {
                format!("; not yet: {}", s.status.missing.join(", "))
            }
        )
    }
}

/// `name follow`, `name refresh`.
impl Render for Refreshed {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = self;
        match (&r.verified, &r.error) {
            (Some(v), _) => writeln!(
                out,
                "zone {}: verified from {}: root v{}, timestamp v{}, snapshot v{}, targets v{}, \
                 valid until {} ({})",
                r.zone,
                r.source,
                v.root,
                v.timestamp,
                v.snapshot,
                v.targets,
                when(v.expires),
                v.expires_role
            ),
            (None, Some(e)) => writeln!(
                out,
                "zone {}: following, but not updated from {}: {e}",
                r.zone, r.source
            ),
            (None, None) => writeln!(out, "zone {}: following", r.zone),
        }
    }
}

/// `name resolve`: the hash alone on standard output, so `$(clive-node
/// name resolve ...)` is the hash; how it was verified on standard error.
impl Render for Resolution {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let r = self;
        writeln!(out, "{}", r.hash)?;
        let how = if r.overridden {
            format!(
                "OVERRIDDEN on this node (not signed){}",
                r.signed_hash
                    .as_ref()
                    .map_or(String::new(), |h| format!("; the zone says {h}"))
            )
        } else {
            let role = match (&r.role, r.version) {
                (Some(role), Some(v)) => format!("{role} v{v}; "),
                (Some(role), None) => format!("{role}; "),
                _ => String::new(),
            };
            match &r.verified {
                Some(v) => format!(
                    "{} {} verified by TUF: {role}root v{}, timestamp v{}, snapshot v{}, \
                     targets v{}",
                    r.kind, r.name, v.root, v.timestamp, v.snapshot, v.targets
                ),
                None => "verified".to_owned(),
            }
        };
        let expiry = if r.stale {
            format!("; STALE: expired {} ({})", when(r.expires), r.expires_role)
        } else {
            format!("; valid until {}", when(r.expires))
        };
        out.flush()?;
        eprintln!("{}/{}: {how}{expiry}", r.zone, r.name);
        Ok(())
    }
}

/// `name history`: one line a change.
impl Render for Vec<Change> {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for c in self {
            let what = match (&c.role, c.version) {
                (Some(role), Some(v)) => format!("{role} v{v}"),
                _ => "local".to_owned(),
            };
            let by = if c.signers.is_empty() {
                String::new()
            } else {
                format!(" signed by {}", c.signers.join(" "))
            };
            let check = match (c.verified, c.signers.is_empty()) {
                (true, false) => " (verified)",
                (false, false) => " (SIGNATURES DO NOT VERIFY)",
                _ => "",
            };
            writeln!(
                out,
                "{} {:<16} {:<14} {}{by}{check}",
                when(c.at),
                c.event,
                what,
                c.hash.as_deref().unwrap_or("-")
            )?;
        }
        Ok(())
    }
}

impl Render for ZoneExported {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "wrote a TUF repository to {}: {} metadata files, {} targets",
            self.dir.display(),
            self.metadata,
            self.targets
        )
    }
}

impl Render for Overridden {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        match &self.hash {
            Some(h) => writeln!(
                out,
                "{}/{} is overridden on this node: {h} (not signed, not propagated)",
                self.zone, self.name
            ),
            None => writeln!(out, "{}/{}: override cleared", self.zone, self.name),
        }
    }
}

fn zone_line(out: &mut dyn Write, z: &ZoneInfo) -> io::Result<()> {
    let state = match &z.verified {
        Some(v) => format!(
            "timestamp v{} targets v{}, valid until {}",
            v.timestamp,
            v.targets,
            when(v.expires)
        ),
        None => "not verified yet".to_owned(),
    };
    let evidence = if z.equivocations.is_empty() {
        String::new()
    } else {
        format!(", {} EQUIVOCATION(S)", z.equivocations.len())
    };
    writeln!(
        out,
        "{} {} {} names, {state}{evidence}",
        z.zone,
        if z.publisher { "publisher" } else { "follower" },
        z.names
    )
}
