//! How `name` replies print: one line a result, plainly, unless `--json`.

use anyhow::Result;
use clive_node::clive_trust::clock::format_time as when;
use clive_node::{
    Reply,
    clive_naming::{Change, Resolution, ZoneInfo},
};

use crate::output::Out;

impl Out {
    /// Prints a `name` reply; false when `reply` is not one.
    pub fn name_reply(&self, reply: &Reply) -> Result<bool> {
        if self.is_json() {
            return match reply {
                Reply::ZoneChanged(x) => self.print_json(x),
                Reply::Zones(x) => self.print_json(x),
                Reply::Zone(x) => self.print_json(x),
                Reply::NamePublished(x) => self.print_json(x),
                Reply::NamesPublished(x) => self.print_json(x),
                Reply::Delegated(x) => self.print_json(x),
                Reply::RootSigned(x) => self.print_json(x),
                Reply::Refreshed(x) => self.print_json(x),
                Reply::Resolved(x) => self.print_json(x),
                Reply::NameHistory(x) => self.print_json(x),
                Reply::ZoneExported(x) => self.print_json(x),
                Reply::Overridden(x) => self.print_json(x),
                _ => return Ok(false),
            }
            .map(|()| true);
        }
        match reply {
            Reply::ZoneChanged(z) => {
                let r = &z.change.root;
                if z.change.committed {
                    self.text(format_args!(
                        "zone {}: root version {} in force, signed by {} of {} needed\n",
                        z.change.zone,
                        r.version,
                        r.signed_by.len(),
                        r.threshold
                    ))?;
                } else {
                    self.text(format_args!(
                        "zone {}: root version {} needs {} signature(s), has {}; co-signers run \
                         `clive-node name root sign {}`, then `clive-node name root commit {} FILE`\n\
                         missing: {}\n",
                        z.change.zone,
                        r.version,
                        r.threshold,
                        r.signed_by.len(),
                        z.file.as_ref().map_or(String::new(), |f| f.display().to_string()),
                        z.change.zone,
                        r.missing.join(", ")
                    ))?;
                }
                if let Some(ticket) = &z.ticket {
                    self.text(format_args!("follow it with: clive-node name follow {ticket}\n"))?;
                }
            }
            Reply::Zones(zones) => {
                for z in zones {
                    self.zone_line(z)?;
                }
            }
            Reply::Zone(z) => {
                self.zone_line(&z.info)?;
                for role in &z.info.roles {
                    let paths = if role.paths.is_empty() {
                        String::new()
                    } else {
                        format!(" paths {}", role.paths.join(","))
                    };
                    self.text(format_args!(
                        "  {:<10} {} of {}{paths}\n",
                        role.role,
                        role.threshold,
                        role.keys.join(" ")
                    ))?;
                }
                for (role, version) in &z.info.equivocations {
                    self.text(format_args!(
                        "  EQUIVOCATION: two different signed {role} version {version} documents \
                         (kept as evidence)\n"
                    ))?;
                }
                self.text(format_args!("  ticket: {}\n", z.ticket))?;
            }
            Reply::NamePublished(p) => match &p.hash {
                Some(hash) => self.text(format_args!(
                    "published {}/{} = {} {} ({} v{}, timestamp v{})\n",
                    p.zone,
                    p.name,
                    p.kind.as_deref().unwrap_or("blob"),
                    hash,
                    p.role,
                    p.version,
                    p.timestamp
                ))?,
                None => self.text(format_args!(
                    "unpublished {}/{} ({} v{}, timestamp v{})\n",
                    p.zone, p.name, p.role, p.version, p.timestamp
                ))?,
            },
            Reply::NamesPublished(all) => {
                if let Some(first) = all.first() {
                    let roles: std::collections::BTreeSet<String> = all
                        .iter()
                        .map(|p| format!("{} v{}", p.role, p.version))
                        .collect();
                    self.text(format_args!(
                        "published {} names in zone {} ({}, timestamp v{})\n",
                        all.len(),
                        first.zone,
                        roles.into_iter().collect::<Vec<_>>().join(", "),
                        first.timestamp
                    ))?;
                }
            }
            Reply::Delegated(role) => self.text(format_args!(
                "delegated {} to {} as role {}\n",
                role.paths.join(","),
                role.keys.join(" "),
                role.role
            ))?,
            Reply::RootSigned(s) => self.text(format_args!(
                "{}: root version {} signed by {} of {} needed{}\n",
                s.file.display(),
                s.status.version,
                s.status.signed_by.len(),
                s.status.threshold,
                if s.status.missing.is_empty() {
                    String::new()
                } else {
                    format!("; not yet: {}", s.status.missing.join(", "))
                }
            ))?,
            Reply::Refreshed(r) => match (&r.verified, &r.error) {
                (Some(v), _) => self.text(format_args!(
                    "zone {}: verified from {}: root v{}, timestamp v{}, snapshot v{}, targets v{}, \
                     valid until {} ({})\n",
                    r.zone,
                    r.source,
                    v.root,
                    v.timestamp,
                    v.snapshot,
                    v.targets,
                    when(v.expires),
                    v.expires_role
                ))?,
                (None, Some(e)) => self.text(format_args!(
                    "zone {}: following, but not updated from {}: {e}\n",
                    r.zone, r.source
                ))?,
                (None, None) => self.text(format_args!("zone {}: following\n", r.zone))?,
            },
            Reply::Resolved(r) => self.resolved(r)?,
            Reply::NameHistory(changes) => {
                for c in changes {
                    self.change(c)?;
                }
            }
            Reply::ZoneExported(e) => self.text(format_args!(
                "wrote a TUF repository to {}: {} metadata files, {} targets\n",
                e.dir.display(),
                e.metadata,
                e.targets
            ))?,
            Reply::Overridden(o) => match &o.hash {
                Some(h) => self.text(format_args!(
                    "{}/{} is overridden on this node: {h} (not signed, not propagated)\n",
                    o.zone, o.name
                ))?,
                None => self.text(format_args!(
                    "{}/{}: override cleared\n",
                    o.zone, o.name
                ))?,
            },
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn zone_line(&self, z: &ZoneInfo) -> Result<()> {
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
        self.text(format_args!(
            "{} {} {} names, {state}{evidence}\n",
            z.zone,
            if z.publisher { "publisher" } else { "follower" },
            z.names
        ))
    }

    fn resolved(&self, r: &Resolution) -> Result<()> {
        self.text(format_args!("{}\n", r.hash))?;
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
        // The hash alone on standard output, so `$(clive-node name resolve
        // ...)` is the hash; how it was verified on standard error.
        eprintln!("{}/{}: {how}{expiry}", r.zone, r.name);
        Ok(())
    }

    fn change(&self, c: &Change) -> Result<()> {
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
        self.text(format_args!(
            "{} {:<16} {:<14} {}{by}{check}\n",
            when(c.at),
            c.event,
            what,
            c.hash.as_deref().unwrap_or("-")
        ))
    }
}
