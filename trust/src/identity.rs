//! The node identity: an OpenSSH ed25519 key pair.
//!
//! A node's key lives in an ordinary OpenSSH private key file, the kind
//! `ssh-keygen -t ed25519` writes, optionally protected by a passphrase.
//! [`NodeKey`] reads and writes such files; [`PublicIdentity`] is the public
//! half, shown to people as an OpenSSH public key line, a `SHA256:`
//! fingerprint, or an endpoint id (64 hex digits).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand::TryRngCore;
use ssh_key::private::{Ed25519Keypair, Ed25519PrivateKey, KeypairData};
use ssh_key::public::{Ed25519PublicKey, KeyData};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};
use zeroize::{Zeroize, Zeroizing};

use crate::bounded::ReadError;

/// Key files larger than this are certainly not OpenSSH ed25519 keys.
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// Public key files larger than this are not one OpenSSH public key line.
pub const MAX_PUBLIC_KEY_FILE_LEN: u64 = 16 * 1024;

/// How many characters of a rejected public key input an error repeats.
const MAX_ECHOED_INPUT: usize = 80;

/// Anything that can go wrong with a node's key.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The key file does not exist.
    #[error(
        "{path}: no such key file (`clive-node init` creates a node with a new key, \
         `clive-node init --ssh-key FILE` imports an OpenSSH ed25519 key)"
    )]
    Missing {
        /// The key file.
        path: PathBuf,
    },
    /// The private key file can be read by others than its owner; like
    /// OpenSSH, it is not used.
    #[error(
        "UNPROTECTED PRIVATE KEY FILE: permissions {mode:04o} for {path} are too open: \
         a private key must not be accessible by others, so it is ignored; \
         fix it with `chmod 600 {}`",
        shell_quote(path)
    )]
    Unprotected {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file to be written already exists; it is never overwritten.
    #[error("{path} already exists: refusing to overwrite it")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file is not an OpenSSH private key, or is damaged.
    #[error("{path}: not a usable OpenSSH private key: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds a key of another type than ed25519.
    #[error(
        "{path}: {algorithm} keys are not supported: clive-node needs an ed25519 key \
         (ssh-keygen -t ed25519)"
    )]
    NotEd25519 {
        /// The key file.
        path: PathBuf,
        /// The key type as ssh names it, e.g. `ssh-rsa`.
        algorithm: String,
    },
    /// The passphrase does not decrypt the key file.
    #[error("{path}: wrong passphrase")]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// The key file is encrypted and no passphrase was given.
    #[error(
        "{path} is passphrase-protected: enter the passphrase on a terminal or set \
         CLIVE_PASSPHRASE"
    )]
    PassphraseRequired {
        /// The key file.
        path: PathBuf,
    },
    /// A file could not be read, or is far too large.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A file system operation failed.
    #[error("{context}: {cause}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        cause: io::Error,
    },
    /// A string given as a public key is not an ed25519 public key.
    #[error("{input:?} is not a node's public key: {reason}")]
    BadPublicKey {
        /// The input (shortened if long; withheld if it is private key material).
        input: String,
        /// What is wrong with it and what is expected.
        reason: String,
    },
}

impl IdentityError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        IdentityError::Io {
            context: context.into(),
            cause: source,
        }
    }

    fn malformed(path: &Path, reason: impl Into<String>) -> Self {
        IdentityError::Malformed {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A node's key: a parsed OpenSSH ed25519 private key file, possibly still
/// encrypted with a passphrase.
///
/// The public half is always available ([`NodeKey::public`]); the secret
/// half needs [`NodeKey::unlock`].
pub struct NodeKey {
    /// Where the key was read from or written to (used in error messages).
    path: PathBuf,
    /// The file's exact bytes (wiped on drop: they may hold the secret).
    bytes: Zeroizing<Vec<u8>>,
    /// The parsed key.
    key: PrivateKey,
    /// The public half.
    public: PublicIdentity,
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("path", &self.path)
            .field("encrypted", &self.is_encrypted())
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl NodeKey {
    /// Generates a new ed25519 key with the comment and writes it,
    /// unencrypted, in OpenSSH format to `path` with mode 0600.
    ///
    /// Never overwrites: if `path` exists the error is
    /// [`IdentityError::AlreadyExists`]. No `.pub` file is written.
    pub fn generate(path: &Path, comment: &str) -> Result<NodeKey, IdentityError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.try_fill_bytes(&mut *seed).map_err(|e| {
            IdentityError::io("cannot get random bytes for a new key", io::Error::other(e))
        })?;
        let keypair = Ed25519Keypair::from_seed(&seed);
        let key = PrivateKey::new(KeypairData::Ed25519(keypair), comment).map_err(|e| {
            IdentityError::io(
                format!("cannot make a key for {}", path.display()),
                io::Error::other(e),
            )
        })?;
        let text = key.to_openssh(LineEnding::LF).map_err(|e| {
            IdentityError::io(
                format!("cannot encode the key for {}", path.display()),
                io::Error::other(e),
            )
        })?;
        let bytes = Zeroizing::new(text.as_bytes().to_vec());
        write_new_private_file(path, &bytes)?;
        Self::from_bytes(path, bytes)
    }

    /// Reads an OpenSSH private key file.
    ///
    /// Needs no passphrase: the public key of an encrypted file is readable
    /// without it. Errors: [`IdentityError::Missing`] if the file does not
    /// exist, [`IdentityError::Malformed`] if it is not an OpenSSH private
    /// key, [`IdentityError::NotEd25519`] for RSA, ECDSA and other key types,
    /// [`IdentityError::Unprotected`] if others than its owner may read it.
    pub fn read(path: &Path) -> Result<NodeKey, IdentityError> {
        // Room for the largest key file and the byte that proves it larger,
        // so the secret is never copied by a growing buffer.
        let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN as usize + 1));
        crate::bounded::read_bounded_into(path, MAX_KEY_FILE_LEN, &mut bytes).map_err(
            |e| match e {
                ReadError::NotFound { path } => IdentityError::Missing { path },
                ReadError::IsDirectory { .. } => {
                    IdentityError::malformed(path, "it is a directory")
                }
                ReadError::TooLarge { .. } | ReadError::NotText { .. } => {
                    IdentityError::malformed(path, "the file is far too large to be a key file")
                }
                ReadError::Io { cause, .. } => {
                    IdentityError::io(format!("cannot read key file {}", path.display()), cause)
                }
            },
        )?;
        let key = Self::from_bytes(path, bytes)?;
        // What is not a key is reported as such; a key others can read is
        // refused, as ssh refuses it.
        check_private_mode(path)?;
        Ok(key)
    }

    /// Parses the contents of a key file; `path` is for error messages.
    fn from_bytes(path: &Path, bytes: Zeroizing<Vec<u8>>) -> Result<NodeKey, IdentityError> {
        let key = parse_private(path, &bytes)?;
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(IdentityError::NotEd25519 {
                path: path.to_owned(),
                algorithm: key.algorithm().as_str().to_owned(),
            });
        }
        let KeyData::Ed25519(public) = key.public_key().key_data() else {
            return Err(IdentityError::malformed(
                path,
                "its public key is not an ed25519 key",
            ));
        };
        // The comment of an encrypted key is inside the encrypted part.
        let comment = (!key.is_encrypted()).then(|| key.comment().to_owned());
        let public = PublicIdentity {
            key: public.0,
            comment,
        };
        Ok(NodeKey {
            path: path.to_owned(),
            bytes,
            key,
            public,
        })
    }

    /// The file the key was read from or written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the key file is protected by a passphrase.
    pub fn is_encrypted(&self) -> bool {
        self.key.is_encrypted()
    }

    /// Returns the secret key, decrypting the file with the passphrase if it
    /// is encrypted (the passphrase is ignored otherwise).
    ///
    /// Errors: [`IdentityError::PassphraseRequired`] when the file is
    /// encrypted and `passphrase` is `None`, [`IdentityError::WrongPassphrase`]
    /// when the passphrase does not decrypt it.
    pub fn unlock(&self, passphrase: Option<&str>) -> Result<SecretKey, IdentityError> {
        let decrypted;
        let key = if self.key.is_encrypted() {
            let Some(passphrase) = passphrase else {
                return Err(IdentityError::PassphraseRequired {
                    path: self.path.clone(),
                });
            };
            decrypted = self.key.decrypt(passphrase).map_err(|e| match e {
                // A wrong passphrase yields garbage: mismatched check
                // integers or a failed authentication tag.
                ssh_key::Error::Crypto => IdentityError::WrongPassphrase {
                    path: self.path.clone(),
                },
                other => {
                    IdentityError::malformed(&self.path, format!("cannot decrypt it: {other}"))
                }
            })?;
            &decrypted
        } else {
            &self.key
        };
        match key.key_data() {
            KeypairData::Ed25519(keypair) if keypair.public.0 == self.public.key => Ok(SecretKey {
                seed: keypair.private.to_bytes(),
            }),
            KeypairData::Ed25519(_) => Err(IdentityError::malformed(
                &self.path,
                "its private key does not match its public key",
            )),
            _ => Err(IdentityError::malformed(
                &self.path,
                "it holds no ed25519 private key",
            )),
        }
    }

    /// Copies the key file's exact bytes (keeping any encryption) to `dest`,
    /// created with mode 0600.
    ///
    /// Never overwrites: if `dest` exists the error is
    /// [`IdentityError::AlreadyExists`].
    pub fn write_copy(&self, dest: &Path) -> Result<(), IdentityError> {
        write_new_private_file(dest, &self.bytes)
    }

    /// The public half of the key, with its comment when readable.
    ///
    /// The comment of an encrypted key file is encrypted too, so for one the
    /// comment is unknown ([`PublicIdentity::comment`] is `None`).
    pub fn public(&self) -> PublicIdentity {
        self.public.clone()
    }

    /// `KEY.pub`, beside the key file.
    fn pub_path(&self) -> PathBuf {
        with_suffix(&self.path, ".pub")
    }

    /// The public half as `ssh-keygen -l` shows it: from `KEY.pub` when that
    /// file exists and holds this same key (it carries the comment an
    /// encrypted key file hides), else from the key file itself.
    pub fn public_as_shown(&self) -> PublicIdentity {
        crate::bounded::read_bounded_to_string(&self.pub_path(), MAX_PUBLIC_KEY_FILE_LEN)
            .ok()
            .and_then(|text| PublicIdentity::parse(&text).ok())
            .filter(|found| found.key == self.public.key)
            .unwrap_or_else(|| self.public.clone())
    }

    /// Writes `identity`'s public key line to `KEY.pub` beside the key file
    /// (mode 0644, replacing an older one), as ssh-keygen does.
    pub fn write_public_file(&self, identity: &PublicIdentity) -> Result<(), IdentityError> {
        let pub_path = self.pub_path();
        std::fs::write(&pub_path, format!("{}\n", identity.openssh_line())).map_err(|source| {
            IdentityError::Io {
                context: format!("writing {}", pub_path.display()),
                cause: source,
            }
        })
    }
}

/// Parses an OpenSSH private key file's bytes, explaining what else the file
/// is when it is not one.
fn parse_private(path: &Path, bytes: &[u8]) -> Result<PrivateKey, IdentityError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(IdentityError::malformed(
            path,
            "it is not a text file (an OpenSSH key starts with \
             -----BEGIN OPENSSH PRIVATE KEY-----)",
        ));
    };
    let text = text.trim();
    let not_ed25519 = |algorithm: &str| IdentityError::NotEd25519 {
        path: path.to_owned(),
        algorithm: algorithm.to_owned(),
    };
    if text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
        return PrivateKey::from_openssh(text).map_err(|e| match e {
            ssh_key::Error::AlgorithmUnsupported { algorithm } => not_ed25519(algorithm.as_str()),
            // ssh-key cannot decode every key type (and fails on some P-521
            // keys); name the type from the file's unencrypted header.
            e => match openssh_key_algorithm(text) {
                Some(algorithm) if algorithm != Algorithm::Ed25519.as_str() => {
                    not_ed25519(&algorithm)
                }
                _ => IdentityError::malformed(path, format!("the file is damaged ({e})")),
            },
        });
    }
    // Legacy PEM files, e.g. from `ssh-keygen -m PEM` or openssl.
    if text.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        return Err(not_ed25519("ssh-rsa"));
    }
    if text.starts_with("-----BEGIN EC PRIVATE KEY-----") {
        return Err(not_ed25519("ecdsa"));
    }
    if text.starts_with("-----BEGIN DSA PRIVATE KEY-----") {
        return Err(not_ed25519("ssh-dss"));
    }
    let reason = if text.is_empty() {
        "the file is empty".to_owned()
    } else if text.starts_with("-----BEGIN PRIVATE KEY-----")
        || text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    {
        "it is a PKCS#8 key, not in OpenSSH format; make one with ssh-keygen -t ed25519".to_owned()
    } else if text.starts_with("PuTTY-User-Key-File") {
        "it is a PuTTY key; export it with puttygen as an OpenSSH key".to_owned()
    } else if text.starts_with("---- BEGIN SSH2 PUBLIC KEY ----")
        || ssh_key::PublicKey::from_openssh(text).is_ok()
    {
        "it is a public key; give the private key file (the one without .pub)".to_owned()
    } else {
        "it does not start with -----BEGIN OPENSSH PRIVATE KEY-----".to_owned()
    };
    Err(IdentityError::malformed(path, reason))
}

/// The key type named in the public key of an OpenSSH private key file
/// (`-----BEGIN OPENSSH PRIVATE KEY-----`), if the header is readable.
///
/// The header (see OpenSSH's PROTOCOL.key) is `"openssh-key-v1\0"`, string
/// cipher, string kdf, string kdf options, uint32 count, then the first
/// public key as a string whose first field is the key type.
fn openssh_key_algorithm(text: &str) -> Option<String> {
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect();
    let bytes = Zeroizing::new(base64_decode(&body)?);
    let mut rest = bytes.strip_prefix(b"openssh-key-v1\0")?;
    for _ in 0..3 {
        take_string(&mut rest)?;
    }
    rest = rest.get(4..)?;
    let mut public = take_string(&mut rest)?;
    let algorithm = take_string(&mut public)?;
    String::from_utf8(algorithm.to_vec()).ok()
}

/// Takes an SSH `string` (uint32 length, bytes) off the front of `data`.
fn take_string<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len_bytes: [u8; 4] = data.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).ok()?;
    let end = len.checked_add(4)?;
    let string = data.get(4..end)?;
    *data = data.get(end..)?;
    Some(string)
}

/// Decodes standard base64 (padding optional); `None` if it is not base64.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in text.bytes() {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Creates `path` (which must not exist) with mode 0600 and writes `bytes`
/// to it; removes it again if writing fails.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(IdentityError::AlreadyExists {
                path: path.to_owned(),
            });
        }
        Err(e) => {
            return Err(IdentityError::io(
                format!("cannot create key file {}", path.display()),
                e,
            ));
        }
    };
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        // Best effort: do not leave a truncated key behind.
        let _ = fs::remove_file(path);
        return Err(IdentityError::io(
            format!("cannot write key file {}", path.display()),
            e,
        ));
    }
    Ok(())
}

/// A node's ed25519 secret key: the 32-byte seed.
///
/// Wiped from memory on drop; its `Debug` output shows only the public key.
pub struct SecretKey {
    seed: [u8; 32],
}

impl SecretKey {
    /// A secret key from its 32-byte ed25519 seed (for keys that live
    /// outside key files, such as in tests and benchmarks).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey { seed }
    }

    /// The 32-byte ed25519 secret seed.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.seed
    }

    /// The 32-byte ed25519 public key of this secret key.
    pub fn public_bytes(&self) -> [u8; 32] {
        Ed25519PublicKey::from(&Ed25519PrivateKey::from_bytes(&self.seed)).0
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("public", &hex::encode(self.public_bytes()))
            .finish_non_exhaustive()
    }
}

/// The public half of a node's key: an ed25519 public key and, when known,
/// its comment.
///
/// Equality compares the comment too; compare [`PublicIdentity::bytes`] to
/// ask whether two identities are the same key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicIdentity {
    key: [u8; 32],
    /// `None` when unknown (an encrypted key file, an endpoint id, a public
    /// key line without comment); `Some("")` for a key whose comment is empty.
    comment: Option<String>,
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

    /// The key's comment, `None` when unknown (see [`NodeKey::public`]).
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

/// Standard base64 with padding, as in OpenSSH public key lines.
fn base64_padded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `path` with `suffix` appended to its file name (`id.pub`, `cert.sig`), as
/// OpenSSH names companion files.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut out = path.as_os_str().to_owned();
    out.push(suffix);
    PathBuf::from(out)
}

/// Refuses a key file its owner lets others read or write, as OpenSSH
/// does (only for files of this user: root may use another user's key).
fn check_private_mode(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::metadata(path) else {
        // Reading reports what is wrong.
        return Ok(());
    };
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let mode = meta.mode() & 0o7777;
    if meta.is_file() && meta.uid() == uid && mode & 0o077 != 0 {
        return Err(IdentityError::Unprotected {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// `path` as one shell word, for a command the user can paste.
fn shell_quote(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64_padded(&data);
            assert_eq!(text.len() % 4, 0);
            assert_eq!(base64_decode(&text).as_deref(), Some(&data[..]));
        }
        assert_eq!(base64_padded(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_padded(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64_decode("Zm9vYg").as_deref(), Some(&b"foob"[..]));
        assert_eq!(base64_decode("Zm9v!"), None);
    }

    /// Armours `bytes` as an OpenSSH private key file.
    fn armour(bytes: &[u8]) -> String {
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            base64_padded(bytes)
        )
    }

    /// An OpenSSH private key container whose private part is garbage.
    fn container(algorithm: &str) -> Vec<u8> {
        let mut public = Vec::new();
        for field in [algorithm.as_bytes(), &[7u8; 40][..]] {
            public.extend_from_slice(&(field.len() as u32).to_be_bytes());
            public.extend_from_slice(field);
        }
        let mut out = b"openssh-key-v1\0".to_vec();
        for field in [&b"none"[..], b"none", b""] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&(public.len() as u32).to_be_bytes());
        out.extend_from_slice(&public);
        out.extend_from_slice(&[0, 0, 0, 3, 1, 2]);
        out
    }

    #[test]
    fn undecodable_key_is_named_from_header() {
        let path = Path::new("/k");
        for algorithm in ["ecdsa-sha2-nistp521", "ssh-rsa", "x-unknown@example.com"] {
            let text = armour(&container(algorithm));
            assert_eq!(openssh_key_algorithm(&text).as_deref(), Some(algorithm));
            match parse_private(path, text.as_bytes()) {
                Err(IdentityError::NotEd25519 { algorithm: a, .. }) => assert_eq!(a, algorithm),
                other => panic!("{algorithm}: {other:?}"),
            }
        }
        // A damaged ed25519 key stays "damaged".
        let text = armour(&container("ssh-ed25519"));
        assert!(matches!(
            parse_private(path, text.as_bytes()),
            Err(IdentityError::Malformed { .. })
        ));
        // Truncated headers yield nothing, without panicking.
        let full = container("ssh-rsa");
        for len in 0..full.len() - 8 {
            let text = armour(&full[..len]);
            let _ = openssh_key_algorithm(&text);
            assert!(parse_private(path, text.as_bytes()).is_err());
        }
    }
}
