//! Revocations: signed statements that a certificate no longer holds.
//!
//! # Body, format version 1
//!
//! ```text
//! clive-revocation v1
//! certificate 64 hex digits        the id of the revoked certificate
//! revoker ssh-ed25519 AAAA...      who revokes: the certificate's issuer or a trust root
//! revoked-at 2026-11-22T05:20:00Z
//! ```
//!
//! Signed with SSHSIG under the namespace `clive-revocation`; encoded, like a
//! certificate, as the body followed by the armored signature.

use crate::{
    PublicIdentity,
    cert::{CertError, CertId, MAX_CERT_LEN, split_signed},
    clock::{Timestamp, format_time, parse_time},
    sshsig::{Signer, SshSignature, verify},
};

/// The SSHSIG namespace of revocation signatures.
pub const REVOCATION_NAMESPACE: &str = "clive-revocation";
const HEADER: &str = "clive-revocation v1";

/// A signed revocation of one certificate.
#[derive(Debug, Clone)]
pub struct Revocation {
    /// The revoked certificate.
    pub certificate: CertId,
    /// Who revoked it.
    pub revoker: PublicIdentity,
    /// When.
    pub revoked_at: Timestamp,
    sig: SshSignature,
}

fn body_text(certificate: &CertId, revoker: &PublicIdentity, at: Timestamp) -> String {
    format!(
        "{HEADER}\ncertificate {}\nrevoker {}\nrevoked-at {}\n",
        hex::encode(certificate),
        PublicIdentity::from_bytes(revoker.bytes()).openssh_line(),
        format_time(at)
    )
}

impl Revocation {
    /// Revokes `certificate`, signed by `signer`.
    pub fn sign(
        certificate: CertId,
        at: Timestamp,
        signer: &dyn Signer,
    ) -> Result<Revocation, CertError> {
        let revoker = signer.public();
        let body = body_text(&certificate, &revoker, at);
        let sig = signer
            .sign(REVOCATION_NAMESPACE, body.as_bytes())
            .map_err(|e| CertError::Signature(e.to_string()))?;
        Ok(Revocation {
            certificate,
            revoker,
            revoked_at: at,
            sig,
        })
    }

    /// The canonical encoding: body, then armored signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = body_text(&self.certificate, &self.revoker, self.revoked_at).into_bytes();
        out.extend_from_slice(self.sig.to_armored().as_bytes());
        out
    }

    /// Decodes and checks a revocation's signature.
    pub fn decode(bytes: &[u8]) -> Result<Revocation, CertError> {
        if bytes.len() > MAX_CERT_LEN {
            return Err(CertError::TooLarge(bytes.len()));
        }
        let (body, armored) = split_signed(bytes)?;
        let bad = |what: &str| CertError::Malformed(format!("revocation: {what}"));
        let mut lines = body.lines();
        if lines.next() != Some(HEADER) {
            return Err(bad("missing the clive-revocation v1 header"));
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or_else(|| bad(&format!("expected the {name:?} line")))
        };
        let mut certificate = [0u8; 32];
        hex::decode_to_slice(field("certificate")?, &mut certificate)
            .map_err(|_| bad("certificate is not 64 hex digits"))?;
        let revoker = PublicIdentity::parse(field("revoker")?).map_err(|e| bad(&e.to_string()))?;
        let revoked_at =
            parse_time(field("revoked-at")?).ok_or_else(|| bad("bad revoked-at time"))?;
        if body != body_text(&certificate, &revoker, revoked_at) {
            return Err(bad("not in canonical form"));
        }
        let sig = SshSignature::parse(armored).map_err(|e| CertError::Signature(e.to_string()))?;
        verify(&sig, &revoker, REVOCATION_NAMESPACE, body.as_bytes())
            .map_err(|e| CertError::Signature(e.to_string()))?;
        let revocation = Revocation {
            certificate,
            revoker,
            revoked_at,
            sig,
        };
        if revocation.encode() != bytes {
            return Err(bad("not in canonical form"));
        }
        Ok(revocation)
    }
}
