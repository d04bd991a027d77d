//! The node identity: an OpenSSH ed25519 key pair.
//!
//! A node's key lives in an ordinary OpenSSH private key file, the kind
//! `ssh-keygen -t ed25519` writes, optionally protected by a passphrase.
//! [`NodeKey`] reads and writes such files; [`PublicIdentity`] is the public
//! half, shown to people as an OpenSSH public key line, a `SHA256:`
//! fingerprint, or an endpoint id (64 hex digits).
//!
//! By concern: [`NodeKey`] and the key file on disk (`key_file`), what the
//! bytes of a private key file hold (`key_format`), the unlocked
//! [`SecretKey`] (`secret`), [`PublicIdentity`] and its spellings
//! (`public`), the errors of all of them (`error`), and the base64 of
//! OpenSSH files (`base64`).

mod base64;
mod error;
mod key_file;
mod key_format;
mod public;
mod secret;

pub use error::IdentityError;
pub use key_file::{NodeKey, with_suffix};
pub use public::{MAX_PUBLIC_KEY_FILE_LEN, PublicIdentity};
pub use secret::SecretKey;
