//! SSH signatures: the format `ssh-keygen -Y sign` writes and
//! `ssh-keygen -Y verify` checks (OpenSSH's PROTOCOL.sshsig).
//!
//! Only ed25519 keys are supported. Signatures made here hash the message
//! with SHA-512, as ssh-keygen does; signatures using SHA-256 (allowed by
//! the format) are verified too. Verification is strict ed25519
//! verification: it rejects non-canonical and small-order encodings that a
//! lax verifier would accept.
//!
//! A signature is made by a [`Signer`]: a [`KeySigner`] holding the secret
//! key, or an [`AgentSigner`](crate::agent::AgentSigner) asking a running
//! ssh-agent.

use std::fmt;

use ssh_encoding::base64::{Base64, Encoding};
use ssh_encoding::{Decode, Encode};
use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::{Algorithm, HashAlg, PrivateKey, Signature, SshSig};
use zeroize::Zeroizing;

use crate::identity::{IdentityError, NodeKey, PublicIdentity, SecretKey};

/// Armored signatures longer than this are rejected unread: an ed25519 SSH
/// signature is a few hundred bytes.
pub const MAX_ARMORED_LEN: usize = 16 * 1024;

/// The first line of an armored SSH signature.
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
/// The last line of an armored SSH signature.
const END: &str = "-----END SSH SIGNATURE-----";
/// The width of the base64 lines ssh-keygen writes.
const LINE_WIDTH: usize = 70;
/// The start of an SSHSIG blob.
const MAGIC: &[u8] = b"SSHSIG";
/// How many characters of an untrusted string (a namespace, a key type) an
/// error message repeats.
const MAX_ECHOED: usize = 80;

/// Why a signature could not be made, read or accepted.
#[derive(Debug, thiserror::Error)]
pub enum SigError {
    /// The signature was made for another purpose (namespace) than the one
    /// being checked.
    #[error(
        "the signature is for namespace {found:?}, not {expected:?}: it was made for \
         another purpose and is not valid here"
    )]
    WrongNamespace {
        /// The namespace the verifier asked for.
        expected: String,
        /// The namespace in the signature (shortened if long).
        found: String,
    },
    /// The signature was made by another key than the expected one.
    #[error("the signature was made by key {found}, not by the expected key {expected}")]
    WrongSigner {
        /// The `SHA256:` fingerprint of the expected key.
        expected: String,
        /// The `SHA256:` fingerprint of the key that made the signature.
        found: String,
    },
    /// The signature does not match the message: the message was changed
    /// after signing, or the signature is forged or damaged.
    #[error(
        "the signature does not match the message: the message was changed after \
         signing, or the signature is damaged or forged"
    )]
    BadSignature,
    /// The signature was made with a key type other than ed25519.
    #[error(
        "{algorithm} signatures are not supported: only ed25519 keys (ssh-ed25519, \
         made with ssh-keygen -t ed25519) are accepted"
    )]
    UnsupportedKey {
        /// The key type as ssh names it, e.g. `ssh-rsa`.
        algorithm: String,
    },
    /// The input is not a readable SSH signature.
    #[error("not a usable SSH signature: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// Signing was asked for with an empty namespace.
    #[error("cannot sign: the namespace is empty (SSH signatures need one, e.g. \"file\")")]
    EmptyNamespace,
    /// A [`KeySigner`] was built from a secret key and a public key that do
    /// not belong together.
    #[error("the secret key (public key {secret}) does not belong to the public key {public}")]
    KeyMismatch {
        /// The `SHA256:` fingerprint of the given public key.
        public: String,
        /// The `SHA256:` fingerprint of the secret key's own public key.
        secret: String,
    },
    /// The ssh-agent does not hold the key asked to sign.
    #[error(
        "the ssh-agent at {socket} does not hold the key {fingerprint}: add it with \
         ssh-add KEYFILE"
    )]
    NotInAgent {
        /// The agent's socket.
        socket: String,
        /// The `SHA256:` fingerprint of the key.
        fingerprint: String,
    },
    /// The ssh-agent cannot be reached, refused, or answered nonsense; the
    /// message says which.
    #[error("{0}")]
    Agent(String),
}

impl SigError {
    fn malformed(reason: impl Into<String>) -> Self {
        SigError::Malformed {
            reason: reason.into(),
        }
    }
}

/// A parsed SSH signature over an ed25519 key, as `ssh-keygen -Y sign`
/// writes it (`-----BEGIN SSH SIGNATURE-----`).
///
/// It names the signing key ([`SshSignature::signer`]) and the namespace
/// ([`SshSignature::namespace`]); whether it is valid for a message is
/// decided by [`verify`].
#[derive(Clone, PartialEq, Eq)]
pub struct SshSignature {
    /// The parsed signature.
    sig: SshSig,
    /// The ed25519 public key that made it.
    signer: [u8; 32],
    /// The raw ed25519 signature.
    signature: [u8; 64],
    /// Its SSHSIG encoding (the bytes inside the armor).
    encoded: Vec<u8>,
}

impl fmt::Debug for SshSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshSignature")
            .field("signer", &self.signer().fingerprint())
            .field("namespace", &self.sig.namespace())
            .field("hash", &self.sig.hash_alg().as_str())
            .finish_non_exhaustive()
    }
}

impl SshSignature {
    /// Parses an armored SSH signature (`-----BEGIN SSH SIGNATURE-----`
    /// ... `-----END SSH SIGNATURE-----`), such as `ssh-keygen -Y sign`
    /// writes to `FILE.sig`.
    ///
    /// Surrounding whitespace and any line width are accepted. Errors:
    /// [`SigError::UnsupportedKey`] for a signature by a key other than
    /// ed25519, [`SigError::Malformed`] for anything that is not a complete
    /// SSH signature (including inputs over [`MAX_ARMORED_LEN`] bytes).
    pub fn parse(armored: &str) -> Result<Self, SigError> {
        if armored.len() > MAX_ARMORED_LEN {
            return Err(SigError::malformed(format!(
                "the input is {} bytes, far more than an SSH signature (at most {} KiB)",
                armored.len(),
                MAX_ARMORED_LEN / 1024
            )));
        }
        let text = armored.trim();
        let Some(rest) = text.strip_prefix(BEGIN) else {
            let reason = if text.is_empty() {
                "the input is empty".to_owned()
            } else if text.starts_with("-----BEGIN PGP SIGNATURE-----") {
                "it is an OpenPGP signature, not an SSH signature (ssh-keygen -Y sign)".to_owned()
            } else {
                format!("it does not start with {BEGIN}")
            };
            return Err(SigError::malformed(reason));
        };
        let Some(end) = rest.find(END) else {
            return Err(SigError::malformed(format!(
                "it is truncated: the {END} line is missing"
            )));
        };
        if !rest[end + END.len()..].trim().is_empty() {
            return Err(SigError::malformed(format!("there is text after {END}")));
        }
        let body: String = rest[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if body.is_empty() {
            return Err(SigError::malformed(
                "there is nothing between the armor lines",
            ));
        }
        let bytes = Base64::decode_vec(&body).map_err(|_| {
            SigError::malformed("the base64 between the armor lines is damaged or truncated")
        })?;
        Self::from_blob(&bytes)
    }

    /// Decodes an SSHSIG blob (the bytes inside the armor).
    fn from_blob(bytes: &[u8]) -> Result<Self, SigError> {
        if !bytes.starts_with(MAGIC) {
            return Err(SigError::malformed(
                "the decoded data does not start with SSHSIG",
            ));
        }
        // Name the key type before ssh-key decodes the key: it cannot decode
        // every type, and other types are unsupported anyway.
        if let Some(algorithm) = blob_key_algorithm(bytes)
            && algorithm != Algorithm::Ed25519.as_str()
        {
            return Err(SigError::UnsupportedKey {
                algorithm: printable(&algorithm),
            });
        }
        let mut reader = bytes;
        let sig = SshSig::decode(&mut reader).map_err(|e| match e {
            ssh_key::Error::Version { number } => SigError::malformed(format!(
                "it is SSHSIG version {number}; only version {} is supported",
                SshSig::VERSION
            )),
            ssh_key::Error::Namespace => SigError::malformed("its namespace is empty"),
            e => SigError::malformed(format!("it is damaged or truncated ({e})")),
        })?;
        if !reader.is_empty() {
            return Err(SigError::malformed(format!(
                "{} unexpected bytes follow the signature",
                reader.len()
            )));
        }
        Self::from_sshsig(sig)
    }

    /// Wraps a decoded or freshly made signature, checking it is ed25519.
    fn from_sshsig(sig: SshSig) -> Result<Self, SigError> {
        let KeyData::Ed25519(public) = sig.public_key() else {
            return Err(SigError::UnsupportedKey {
                algorithm: printable(sig.public_key().algorithm().as_str()),
            });
        };
        let signer = public.0;
        if sig.algorithm() != Algorithm::Ed25519 {
            return Err(SigError::malformed(format!(
                "its key is ssh-ed25519 but its signature is {}",
                printable(sig.algorithm().as_str())
            )));
        }
        let signature: [u8; 64] = sig
            .signature_bytes()
            .try_into()
            .map_err(|_| SigError::malformed("its ed25519 signature is not 64 bytes long"))?;
        let mut encoded = Vec::new();
        sig.encode(&mut encoded)
            .map_err(|e| SigError::malformed(format!("it cannot be encoded ({e})")))?;
        Ok(SshSignature {
            sig,
            signer,
            signature,
            encoded,
        })
    }

    /// Builds the signature of `public` over the SSHSIG signed data for
    /// `namespace` (hashed with SHA-512) from the raw ed25519 signature.
    pub(crate) fn from_parts(
        public: [u8; 32],
        namespace: &str,
        signature: [u8; 64],
    ) -> Result<Self, SigError> {
        if namespace.is_empty() {
            return Err(SigError::EmptyNamespace);
        }
        let signature = Signature::new(Algorithm::Ed25519, signature.to_vec())
            .map_err(|e| SigError::malformed(format!("bad ed25519 signature ({e})")))?;
        let sig = SshSig::new(
            KeyData::Ed25519(Ed25519PublicKey(public)),
            namespace,
            HashAlg::Sha512,
            signature,
        )
        .map_err(|e| SigError::malformed(format!("cannot build the signature ({e})")))?;
        Self::from_sshsig(sig)
    }

    /// The armored signature, byte for byte as `ssh-keygen -Y sign` writes
    /// it: the `-----BEGIN SSH SIGNATURE-----` line, base64 in lines of 70
    /// characters, the `-----END SSH SIGNATURE-----` line, each ending in a
    /// newline.
    pub fn to_armored(&self) -> String {
        let body = Base64::encode_string(&self.encoded);
        let mut out = String::with_capacity(BEGIN.len() + END.len() + body.len() * 72 / 70 + 4);
        out.push_str(BEGIN);
        out.push('\n');
        // Base64 is ASCII, so every 70-byte chunk is whole characters.
        for line in body.as_bytes().chunks(LINE_WIDTH) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
        out
    }

    /// The key that made the signature (without comment).
    ///
    /// The signature claims this; only [`verify`] checks it.
    pub fn signer(&self) -> PublicIdentity {
        PublicIdentity::from_bytes(self.signer)
    }

    /// The namespace the signature was made for, e.g. `file` or `git`.
    pub fn namespace(&self) -> &str {
        self.sig.namespace()
    }
}

/// Checks that `sig` is `expected_signer`'s signature over `message` in
/// `namespace`, like `ssh-keygen -Y verify` with an allowed signers file
/// holding only that key.
///
/// Errors: [`SigError::WrongNamespace`] when the signature is for another
/// namespace, [`SigError::WrongSigner`] when another key made it,
/// [`SigError::BadSignature`] when it does not match the message (strict
/// ed25519 verification).
pub fn verify(
    sig: &SshSignature,
    expected_signer: &PublicIdentity,
    namespace: &str,
    message: &[u8],
) -> Result<(), SigError> {
    if sig.namespace() != namespace {
        return Err(SigError::WrongNamespace {
            expected: namespace.to_owned(),
            found: shorten(sig.namespace()),
        });
    }
    if sig.signer != expected_signer.bytes() {
        return Err(SigError::WrongSigner {
            expected: expected_signer.fingerprint(),
            found: sig.signer().fingerprint(),
        });
    }
    // As OpenSSH does, the signed data has an empty reserved field whatever
    // the signature carries.
    let signed = SshSig::signed_data(namespace, sig.sig.hash_alg(), message)
        .map_err(|e| SigError::malformed(format!("cannot compute the signed data ({e})")))?;
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(&sig.signer).map_err(|_| SigError::BadSignature)?;
    key.verify_strict(
        &signed,
        &ed25519_dalek::Signature::from_bytes(&sig.signature),
    )
    .map_err(|_| SigError::BadSignature)
}

/// Something that makes SSH signatures with one ed25519 key.
pub trait Signer: Send + Sync {
    /// The key whose signatures this makes.
    fn public(&self) -> PublicIdentity;

    /// Signs `message` for `namespace` (hashed with SHA-512), as
    /// `ssh-keygen -Y sign -n NAMESPACE` would.
    fn sign(&self, namespace: &str, message: &[u8]) -> Result<SshSignature, SigError>;

    /// A plain ed25519 signature of `message` itself, for formats that sign
    /// their own canonical bytes (TUF metadata). Those bytes never begin
    /// like the data SSHSIG, SSH authentication or TLS sign, so a signature
    /// made here cannot be replayed in any of them.
    fn sign_raw(&self, message: &[u8]) -> Result<[u8; 64], SigError>;
}

/// A [`Signer`] holding the secret key in memory.
pub struct KeySigner {
    secret: SecretKey,
    public: PublicIdentity,
}

impl fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySigner")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl KeySigner {
    /// A signer for the secret key, `public` being its public half (its
    /// comment is kept).
    ///
    /// Errors: [`SigError::KeyMismatch`] when `public` is another key.
    pub fn new(secret: SecretKey, public: PublicIdentity) -> Result<Self, SigError> {
        let own = secret.public_bytes();
        if own != public.bytes() {
            return Err(SigError::KeyMismatch {
                public: public.fingerprint(),
                secret: PublicIdentity::from_bytes(own).fingerprint(),
            });
        }
        Ok(KeySigner { secret, public })
    }

    /// A signer for a node's key file, decrypting it with the passphrase if
    /// it is encrypted (see [`NodeKey::unlock`]).
    pub fn from_key(key: &NodeKey, passphrase: Option<&str>) -> Result<Self, IdentityError> {
        let secret = key.unlock(passphrase)?;
        // `unlock` checks that the secret key matches the public key.
        Ok(KeySigner {
            secret,
            public: key.public(),
        })
    }
}

impl Signer for KeySigner {
    fn public(&self) -> PublicIdentity {
        self.public.clone()
    }

    fn sign(&self, namespace: &str, message: &[u8]) -> Result<SshSignature, SigError> {
        if namespace.is_empty() {
            return Err(SigError::EmptyNamespace);
        }
        let seed = Zeroizing::new(self.secret.to_bytes());
        let keypair = Ed25519Keypair::from_seed(&seed);
        let key = PrivateKey::new(KeypairData::Ed25519(keypair), "")
            .map_err(|e| SigError::malformed(format!("cannot use the secret key ({e})")))?;
        let sig = SshSig::sign(&key, namespace, HashAlg::Sha512, message)
            .map_err(|e| SigError::malformed(format!("cannot sign ({e})")))?;
        SshSignature::from_sshsig(sig)
    }

    fn sign_raw(&self, message: &[u8]) -> Result<[u8; 64], SigError> {
        let seed = Zeroizing::new(self.secret.to_bytes());
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        Ok(ed25519_dalek::Signer::sign(&key, message).to_bytes())
    }
}

/// The SSHSIG signed data for `message` in `namespace`, hashed with
/// SHA-512: what the ed25519 key signs.
pub(crate) fn signed_data(namespace: &str, message: &[u8]) -> Result<Vec<u8>, SigError> {
    if namespace.is_empty() {
        return Err(SigError::EmptyNamespace);
    }
    SshSig::signed_data(namespace, HashAlg::Sha512, message)
        .map_err(|e| SigError::malformed(format!("cannot compute the signed data ({e})")))
}

/// The key type named in an SSHSIG blob: `"SSHSIG"`, uint32 version, then
/// the public key as a string whose first field is the key type.
fn blob_key_algorithm(blob: &[u8]) -> Option<String> {
    let mut rest = blob.strip_prefix(MAGIC)?.get(4..)?;
    let mut public = take_string(&mut rest)?;
    let algorithm = take_string(&mut public)?;
    Some(String::from_utf8_lossy(algorithm).into_owned())
}

/// Takes an SSH `string` (uint32 length, bytes) off the front of `data`.
pub(crate) fn take_string<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len_bytes: [u8; 4] = data.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).ok()?;
    let end = len.checked_add(4)?;
    let string = data.get(4..end)?;
    *data = data.get(end..)?;
    Some(string)
}

/// `s` with control characters escaped, cut for an error message.
fn printable(s: &str) -> String {
    let escaped: String = s.chars().flat_map(char::escape_default).collect();
    shorten(&escaped)
}

/// `s`, cut to [`MAX_ECHOED`] characters for an error message.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHOED) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_owned(),
    }
}
