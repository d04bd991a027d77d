//! clive-trust: keys and identity for clive-node.
//!
//! A node is identified by an OpenSSH ed25519 key pair ([`identity`]): the
//! private key lives in an ordinary OpenSSH key file (optionally
//! passphrase-protected, see [`NodeKey`]) and the public key
//! ([`PublicIdentity`]) is shown as an OpenSSH public key line, an
//! ssh-keygen style `SHA256:` fingerprint, or an endpoint id (64 hex digits).

pub mod identity;

pub use identity::{IdentityError, NodeKey, PublicIdentity, SecretKey};
