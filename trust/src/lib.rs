//! clive-trust: keys, identity, certificates, delegation chains and revocation for clive-node.
//!
//! A node is identified by an OpenSSH ed25519 key pair ([`identity`]): the
//! private key lives in an ordinary OpenSSH key file (optionally
//! passphrase-protected, see [`NodeKey`]) and the public key
//! ([`PublicIdentity`]) is shown as an OpenSSH public key line, an
//! ssh-keygen style `SHA256:` fingerprint, or an endpoint id (64 hex digits).

pub mod agent;
pub mod atomic;
pub mod bounded;
pub mod cert;
pub mod chain;
pub mod clock;
pub mod identity;
pub mod revocation;
pub mod roots;
pub mod sshsig;

pub use agent::{AgentSigner, list_identities};
pub use atomic::{AtomicFile, write_atomic};
pub use bounded::{ReadError, read_bounded, read_bounded_to_string};
pub use cert::{Capability, Caps, CertBody, CertError, CertId, Certificate};
pub use chain::{Authorizer, Chain, ChainError, LinkError, TrustSet};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use identity::{IdentityError, NodeKey, PublicIdentity, SecretKey};
pub use revocation::Revocation;
pub use roots::{Root, RootsError, RootsFile};
pub use sshsig::{KeySigner, SigError, Signer, SshSignature};

// A dev-dependency of benches/chain.rs; the unit tests link it too.
#[cfg(test)]
use criterion as _;
