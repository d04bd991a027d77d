//! Certificates: an issuer key grants a subject key capabilities.
//!
//! # Body, format version 1
//!
//! A canonical text document, every line ending in `\n`, fields in this
//! order and nothing else:
//!
//! ```text
//! clive-cert v1
//! issuer ssh-ed25519 AAAA...          the issuer's public key, no comment
//! subject ssh-ed25519 AAAA...         the subject's public key, no comment
//! capabilities exec,fetch,push        a non-empty subset of attest,exec,fetch,push,
//!                                     sorted, no repeats
//! delegate 2                          how many further links may follow (0..=7)
//! valid-from 2026-11-22T05:20:00Z     RFC 3339, UTC, to the second
//! valid-until 2026-12-22T05:20:00Z    after valid-from
//! nonce 0123456789abcdef0123456789abcdef   16 random bytes, hex
//! ```
//!
//! The body is signed with SSHSIG under the namespace `clive-cert`, so
//! `ssh-keygen -Y verify -n clive-cert` checks it. A certificate's encoding
//! is the body followed by the armored signature; its id is the BLAKE3 hash
//! of that encoding, which is also its address as an object. Decoding accepts
//! only the canonical form, so one certificate has exactly one id.

use std::fmt;

use crate::{
    PublicIdentity,
    clock::{Timestamp, format_time, parse_time},
    sshsig::{Signer, SshSignature, verify},
};

/// The SSHSIG namespace of certificate signatures.
pub const CERT_NAMESPACE: &str = "clive-cert";
/// First line of every certificate body.
pub const CERT_HEADER: &str = "clive-cert v1";
/// Largest encoded certificate accepted, in bytes.
pub const MAX_CERT_LEN: usize = 8 * 1024;
/// Longest chain of certificates, and so the largest delegation depth + 1.
pub const MAX_CHAIN_LEN: usize = 8;
const SIG_BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";

/// One thing a certificate can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Results this key signs are trusted here: a job result it signed is
    /// a memo hit as if this node had run the job.
    Attest,
    /// Run jobs.
    Exec,
    /// Read objects.
    Fetch,
    /// Write objects and metadata.
    Push,
}

impl Capability {
    /// Every capability, in canonical order.
    pub const ALL: [Capability; 4] = [
        Capability::Attest,
        Capability::Exec,
        Capability::Fetch,
        Capability::Push,
    ];

    /// The capability's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Attest => "attest",
            Capability::Exec => "exec",
            Capability::Fetch => "fetch",
            Capability::Push => "push",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Capability::Exec => 1,
            Capability::Fetch => 2,
            Capability::Push => 4,
            Capability::Attest => 8,
        }
    }
}

impl std::str::FromStr for Capability {
    type Err = CertError;

    fn from_str(s: &str) -> Result<Self, CertError> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| CertError::UnknownCapability(s.chars().take(40).collect()))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A set of capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Caps(u8);

impl Caps {
    /// The set of the given capabilities.
    pub fn of(caps: &[Capability]) -> Self {
        Caps(caps.iter().fold(0, |acc, c| acc | c.bit()))
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & cap.bit() != 0
    }

    /// Whether every capability of `self` is also in `other`.
    pub fn is_subset_of(self, other: Caps) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The capabilities, in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }

    /// Parses `fetch,push,exec,attest` (any order, no repeats, at least one).
    pub fn parse(s: &str) -> Result<Self, CertError> {
        let mut caps = Caps::default();
        for word in s.split(',').map(str::trim) {
            let cap: Capability = word.parse()?;
            if caps.contains(cap) {
                return Err(CertError::Malformed(format!("capability {cap} repeated")));
            }
            caps.0 |= cap.bit();
        }
        if caps.is_empty() {
            return Err(CertError::Malformed("no capabilities".into()));
        }
        Ok(caps)
    }
}

impl fmt::Display for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Capability::as_str).collect();
        f.pad(&names.join(","))
    }
}

/// What a certificate says, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertBody {
    /// Who grants.
    pub issuer: PublicIdentity,
    /// Who is granted.
    pub subject: PublicIdentity,
    /// What is granted.
    pub caps: Caps,
    /// How many further links may follow this one.
    pub delegate: u8,
    /// Start of validity.
    pub valid_from: Timestamp,
    /// End of validity.
    pub valid_until: Timestamp,
    /// Makes every certificate unique.
    pub nonce: [u8; 16],
}

/// Why a certificate is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Larger than any certificate.
    #[error("certificate is {0} bytes, more than the {MAX_CERT_LEN} allowed")]
    TooLarge(usize),
    /// Not a well-formed, canonical certificate.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// A capability name that does not exist.
    #[error("unknown capability {0:?} (known: attest, exec, fetch, push)")]
    UnknownCapability(String),
    /// The signature is missing.
    #[error("the certificate has no signature (expected it inline or in FILE.sig)")]
    Unsigned,
    /// The signature does not verify.
    #[error("certificate signature: {0}")]
    Signature(String),
}

fn key_line(key: &PublicIdentity) -> String {
    PublicIdentity::from_bytes(key.bytes()).openssh_line()
}

impl CertBody {
    /// The canonical body text.
    pub fn encode(&self) -> String {
        format!(
            "{CERT_HEADER}\nissuer {}\nsubject {}\ncapabilities {}\ndelegate {}\n\
             valid-from {}\nvalid-until {}\nnonce {}\n",
            key_line(&self.issuer),
            key_line(&self.subject),
            self.caps,
            self.delegate,
            format_time(self.valid_from),
            format_time(self.valid_until),
            hex::encode(self.nonce),
        )
    }

    /// Parses a canonical body; anything else is refused.
    pub fn decode(text: &[u8]) -> Result<Self, CertError> {
        if text.len() > MAX_CERT_LEN {
            return Err(CertError::TooLarge(text.len()));
        }
        let text =
            std::str::from_utf8(text).map_err(|_| CertError::Malformed("not UTF-8 text".into()))?;
        let mut lines = text.split_inclusive('\n');
        let mut field = |name: &'static str| -> Result<&str, CertError> {
            let line = lines
                .next()
                .ok_or_else(|| CertError::Malformed(format!("missing line {name:?}")))?;
            let line = line
                .strip_suffix('\n')
                .ok_or_else(|| CertError::Malformed(format!("line {name:?} is not terminated")))?;
            if name == CERT_HEADER {
                return if line == CERT_HEADER {
                    Ok("")
                } else {
                    Err(CertError::Malformed(format!(
                        "expected {CERT_HEADER:?}, found {:?}",
                        line.chars().take(40).collect::<String>()
                    )))
                };
            }
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .ok_or_else(|| CertError::Malformed(format!("expected the {name:?} line")))
        };
        field(CERT_HEADER)?;
        let key = |s: &str, what: &str| {
            PublicIdentity::parse(s).map_err(|e| CertError::Malformed(format!("{what}: {e}")))
        };
        let issuer = key(field("issuer")?, "issuer")?;
        let subject = key(field("subject")?, "subject")?;
        let caps = Caps::parse(field("capabilities")?)?;
        let delegate: u8 = field("delegate")?
            .parse()
            .map_err(|_| CertError::Malformed("delegate is not a small number".into()))?;
        if usize::from(delegate) >= MAX_CHAIN_LEN {
            return Err(CertError::Malformed(format!(
                "delegate {delegate} exceeds the chain limit of {MAX_CHAIN_LEN} links"
            )));
        }
        let time = |s: &str, what: &str| {
            parse_time(s).ok_or_else(|| {
                CertError::Malformed(format!(
                    "{what} is not a UTC RFC 3339 time like 2026-01-02T03:04:05Z"
                ))
            })
        };
        let valid_from = time(field("valid-from")?, "valid-from")?;
        let valid_until = time(field("valid-until")?, "valid-until")?;
        if valid_until <= valid_from {
            return Err(CertError::Malformed(
                "valid-until is not after valid-from".into(),
            ));
        }
        let mut nonce = [0u8; 16];
        hex::decode_to_slice(field("nonce")?, &mut nonce)
            .map_err(|_| CertError::Malformed("nonce is not 32 hex digits".into()))?;
        let body = CertBody {
            issuer,
            subject,
            caps,
            delegate,
            valid_from,
            valid_until,
            nonce,
        };
        if body.encode() != text {
            return Err(CertError::Malformed("not in canonical form".into()));
        }
        Ok(body)
    }

    /// Signs the body, producing a certificate.
    pub fn sign(self, signer: &dyn Signer) -> Result<Certificate, CertError> {
        if signer.public().bytes() != self.issuer.bytes() {
            return Err(CertError::Signature(
                "the signing key is not the certificate's issuer".into(),
            ));
        }
        let text = self.encode();
        let sig = signer
            .sign(CERT_NAMESPACE, text.as_bytes())
            .map_err(|e| CertError::Signature(e.to_string()))?;
        Ok(Certificate::assemble(self, &text, sig))
    }
}

/// A signed certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    body: CertBody,
    sig: SshSignature,
    /// The canonical encoding and its hash, computed once.
    encoded: std::sync::Arc<[u8]>,
    id: CertId,
}

/// The id of a certificate: BLAKE3 of its encoding.
pub type CertId = [u8; 32];

impl Certificate {
    /// What it says.
    pub fn body(&self) -> &CertBody {
        &self.body
    }

    /// The armored signature, as `ssh-keygen -Y sign` writes it.
    pub fn signature_armored(&self) -> String {
        self.sig.to_armored()
    }

    fn assemble(body: CertBody, text: &str, sig: SshSignature) -> Self {
        let mut encoded = text.as_bytes().to_vec();
        encoded.extend_from_slice(sig.to_armored().as_bytes());
        let id = *blake3::hash(&encoded).as_bytes();
        Certificate {
            body,
            sig,
            encoded: encoded.into(),
            id,
        }
    }

    /// The canonical encoding: body, then armored signature.
    pub fn encode(&self) -> Vec<u8> {
        self.encoded.to_vec()
    }

    /// The certificate's id.
    pub fn id(&self) -> CertId {
        self.id
    }

    /// Decodes an encoding (body then armored signature) and checks that the
    /// issuer signed it. Only canonical encodings are accepted.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertError> {
        if bytes.len() > MAX_CERT_LEN {
            return Err(CertError::TooLarge(bytes.len()));
        }
        let (body, sig) = split_signed(bytes)?;
        let cert = Self::from_parts(body.as_bytes(), sig)?;
        if *cert.encoded != *bytes {
            return Err(CertError::Malformed("not in canonical form".into()));
        }
        Ok(cert)
    }

    /// Builds a certificate from a body and a separate armored signature
    /// (`NAME` and `NAME.sig`), checking the signature.
    pub fn from_parts(body: &[u8], armored_sig: &str) -> Result<Self, CertError> {
        let decoded = CertBody::decode(body)?;
        // `decode` accepts only the canonical text, so `body` is exactly it.
        let text =
            std::str::from_utf8(body).map_err(|_| CertError::Malformed("not UTF-8 text".into()))?;
        let sig =
            SshSignature::parse(armored_sig).map_err(|e| CertError::Signature(e.to_string()))?;
        verify(&sig, &decoded.issuer, CERT_NAMESPACE, body)
            .map_err(|e| CertError::Signature(e.to_string()))?;
        Ok(Certificate::assemble(decoded, text, sig))
    }
}

/// Splits a signed document into its body and its armored signature.
pub(crate) fn split_signed(bytes: &[u8]) -> Result<(&str, &str), CertError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| CertError::Malformed("not UTF-8 text".into()))?;
    let at = text.find(SIG_BEGIN).ok_or(CertError::Unsigned)?;
    Ok((&text[..at], &text[at..]))
}

/// Hex of a certificate id, for display.
pub fn id_hex(id: &CertId) -> String {
    hex::encode(id)
}
