//! [`PublicIdentity`]: the public half of a node's key and its three
//! spellings (OpenSSH public key line, `SHA256:` fingerprint, endpoint id),
//! parsed from a line or a `.pub` file.

use std::path::Path;
use std::str::FromStr;

use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::{Algorithm, HashAlg};

use super::base64::base64_padded;
use super::error::IdentityError;

/// Public key files larger than this are not one OpenSSH public key line.
pub const MAX_PUBLIC_KEY_FILE_LEN: u64 = 16 * 1024;

/// How many characters of a rejected public key input an error repeats.
const MAX_ECHOED_INPUT: usize = 80;

/// The public half of a node's key: an ed25519 public key and, when known,
/// its comment.
///
/// Equality compares the comment too; compare [`PublicIdentity::bytes`] to
/// ask whether two identities are the same key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicIdentity {
    pub(super) key: [u8; 32],
    /// `None` when unknown (an encrypted key file, an endpoint id, a public
    /// key line without comment); `Some("")` for a key whose comment is empty.
    pub(super) comment: Option<String>,
}

impl PublicIdentity {
    /// The identity with this ed25519 public key and no comment.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        PublicIdentity { key, comment: None }
    }

    /// The 32-byte ed25519 public key.
    pub fn bytes(&self) -> [u8; 32] {
        self.key
    }

    /// The key's comment, `None` when unknown (see [`NodeKey::public`](super::NodeKey::public)).
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The key's SSH wire encoding: `string "ssh-ed25519", string key`.
    fn wire_blob(&self) -> Vec<u8> {
        let name = Algorithm::Ed25519.as_str().as_bytes();
        let mut blob = Vec::with_capacity(8 + name.len() + self.key.len());
        for field in [name, &self.key[..]] {
            // Both lengths are small constants (11 and 32).
            blob.extend_from_slice(&(field.len() as u32).to_be_bytes());
            blob.extend_from_slice(field);
        }
        blob
    }

    /// The OpenSSH public key line, `ssh-ed25519 AAAA... comment` (the
    /// comment omitted when empty or unknown), exactly as in a `.pub` file
    /// or printed by `ssh-keygen -y`, without the newline.
    pub fn openssh_line(&self) -> String {
        let mut line = format!(
            "{} {}",
            Algorithm::Ed25519.as_str(),
            base64_padded(&self.wire_blob())
        );
        if let Some(comment) = self.comment.as_deref().filter(|c| !c.is_empty()) {
            line.push(' ');
            line.push_str(comment);
        }
        line
    }

    /// The SHA-256 fingerprint as ssh-keygen shows it: `SHA256:` and base64
    /// without padding.
    pub fn fingerprint(&self) -> String {
        KeyData::Ed25519(Ed25519PublicKey(self.key))
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }

    /// The line `ssh-keygen -lf FILE` prints for this key, e.g.
    /// `256 SHA256:abc... comment (ED25519)`.
    ///
    /// Like ssh-keygen on a private key file without a `.pub` beside it:
    /// an unknown comment (an encrypted file) shows as `no comment`, an empty
    /// one as nothing (`SHA256:abc...  (ED25519)`, two spaces). On a `.pub`
    /// file ssh-keygen shows a missing comment as `no comment`, as does this
    /// for an identity parsed from a line without comment. (ssh-keygen
    /// prefers `KEY.pub` when it exists, and shows `KEY.pub`'s path in place
    /// of an empty comment in it.)
    pub fn keygen_fingerprint_line(&self) -> String {
        let comment = self.comment.as_deref().unwrap_or("no comment");
        format!("256 {} {comment} (ED25519)", self.fingerprint())
    }

    /// The endpoint id: the 32-byte public key as 64 lowercase hex digits.
    pub fn endpoint_id(&self) -> String {
        hex::encode(self.key)
    }

    /// Reads a public key file: its first line is an OpenSSH public key
    /// line (or an endpoint id); the read stops past
    /// [`MAX_PUBLIC_KEY_FILE_LEN`] bytes.
    pub fn read_file(path: &Path) -> Result<PublicIdentity, IdentityError> {
        let text = crate::bounded::read_bounded_to_string(path, MAX_PUBLIC_KEY_FILE_LEN)?;
        PublicIdentity::parse(text.lines().next().unwrap_or_default())
    }

    /// Parses an OpenSSH public key line (`ssh-ed25519 AAAA... [comment]`)
    /// or an endpoint id (64 hex digits).
    ///
    /// Other key types and anything else are [`IdentityError::BadPublicKey`].
    pub fn parse(s: &str) -> Result<PublicIdentity, IdentityError> {
        let text = s.trim();
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut key = [0u8; 32];
            if hex::decode_to_slice(text, &mut key).is_ok() {
                return Ok(PublicIdentity::from_bytes(key));
            }
        }
        if text.contains("PRIVATE KEY") {
            return Err(IdentityError::BadPublicKey {
                input: "(private key material, not shown)".to_owned(),
                reason: "this is a private key; give its public key (ssh-keygen -yf FILE) or \
                         the endpoint id"
                    .to_owned(),
            });
        }
        let bad = |reason: String| IdentityError::BadPublicKey {
            input: shorten(text),
            reason,
        };
        let unsupported = |algorithm: &str| {
            bad(format!(
                "{algorithm} keys are not supported: node keys are ed25519 (ssh-ed25519)"
            ))
        };
        match ssh_key::PublicKey::from_openssh(text) {
            Ok(key) => match key.key_data() {
                KeyData::Ed25519(public) => Ok(PublicIdentity {
                    key: public.0,
                    comment: Some(key.comment().to_owned()).filter(|c| !c.is_empty()),
                }),
                other => Err(unsupported(other.algorithm().as_str())),
            },
            Err(e) => {
                let first = text.split_whitespace().next().unwrap_or("");
                let looks_like_key_type = first.starts_with("ssh-")
                    || first.starts_with("ecdsa-")
                    || first.starts_with("sk-");
                if looks_like_key_type && first != Algorithm::Ed25519.as_str() {
                    Err(unsupported(first))
                } else if first == Algorithm::Ed25519.as_str() {
                    Err(bad(format!("the ssh-ed25519 key is damaged ({e})")))
                } else {
                    Err(bad(
                        "expected an OpenSSH public key line (ssh-ed25519 AAAA... \
                             [comment]) or an endpoint id (64 hex digits)"
                            .to_owned(),
                    ))
                }
            }
        }
    }
}

impl FromStr for PublicIdentity {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PublicIdentity::parse(s)
    }
}

/// `s`, cut to [`MAX_ECHOED_INPUT`] characters for an error message.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHOED_INPUT) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_owned(),
    }
}
