//! [`NodeKey`]: a node's OpenSSH private key file on disk: reading it
//! (refusing one others may read), generating and writing new ones with
//! mode 0600, unlocking an encrypted one, and its `KEY.pub` companion.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::TryRngCore;
use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, LineEnding, PrivateKey};
use zeroize::Zeroizing;

use super::error::IdentityError;
use super::key_format::parse_private;
use super::public::{MAX_PUBLIC_KEY_FILE_LEN, PublicIdentity};
use super::secret::SecretKey;
use crate::bounded::ReadError;

/// Key files larger than this are certainly not OpenSSH ed25519 keys.
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

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
            KeypairData::Ed25519(keypair) if keypair.public.0 == self.public.key => {
                Ok(SecretKey::from_seed(keypair.private.to_bytes()))
            }
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
