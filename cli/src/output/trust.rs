//! How the trust replies print.

use std::io::{self, Write};

use anyhow::Result;
use clive_node::{CertInfo, Imported, RootInfo, TrustReply, Verdict};

use super::{Out, Render, short};

/// Prints a [`TrustReply`].
pub(super) fn reply(out: &Out, reply: &TrustReply) -> Result<()> {
    match reply {
        TrustReply::Cert(x) => out.show(x),
        TrustReply::Imported(x) => out.show(x),
        TrustReply::Certs(x) => out.show(x),
        TrustReply::Verdict(x) => out.show(x),
        TrustReply::Roots(x) => out.show(x),
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
