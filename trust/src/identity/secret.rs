//! [`SecretKey`]: the unlocked secret half of a node's key.

use std::fmt;

use ssh_key::private::Ed25519PrivateKey;
use ssh_key::public::Ed25519PublicKey;
use zeroize::Zeroize;

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
