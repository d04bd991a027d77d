//! Signing TUF metadata with a node's SSH ed25519 key (as a TUF `ed25519`
//! key), by key file or ssh-agent.

use clive_trust::{PublicIdentity, Signer};

use crate::NamingError;
use crate::tuf::{Key, Metadata, Root, Signed, Targets};

/// The TUF key of an SSH ed25519 identity.
pub fn tuf_key(identity: &PublicIdentity) -> Key {
    Key::ed25519(&identity.bytes())
}

/// Signs `metadata` with `signer`, replacing an earlier signature by the
/// same key.
pub fn sign<T: Signed>(metadata: &mut Metadata<T>, signer: &dyn Signer) -> Result<(), NamingError> {
    let bytes = metadata
        .signed_bytes()
        .map_err(|cause| NamingError::Invalid(cause.to_string()))?;
    let sig = signer.sign_raw(&bytes)?;
    metadata.add_signature(&tuf_key(&signer.public()).id(), &hex::encode(sig));
    Ok(())
}

/// Checks that `signer` holds one of the keys of top-level `role` in `root`.
pub fn check_can_sign(root: &Root, role: &str, signer: &dyn Signer) -> Result<(), NamingError> {
    let id = tuf_key(&signer.public()).id();
    let holds = root.roles.get(role).is_some_and(|r| r.keyids.contains(&id));
    if holds {
        Ok(())
    } else {
        Err(NamingError::CannotSign(format!(
            "this node's key {} is not a {role} key of the zone; only a holder of one can \
             change it (see `clive-node name zone show`)",
            signer.public().fingerprint()
        )))
    }
}

/// Checks that `signer` holds a key of the delegated role `role` in `parent`.
pub fn check_can_sign_delegated(
    parent: &Targets,
    role: &str,
    signer: &dyn Signer,
) -> Result<(), NamingError> {
    let id = tuf_key(&signer.public()).id();
    let holds = parent
        .delegations
        .as_ref()
        .and_then(|d| d.roles.as_ref())
        .and_then(|roles| roles.iter().find(|r| r.name == role))
        .is_some_and(|r| r.keyids.contains(&id));
    if holds {
        Ok(())
    } else {
        Err(NamingError::CannotSign(format!(
            "this node's key {} is not a key of the delegated role {role}",
            signer.public().fingerprint()
        )))
    }
}

/// The SSH fingerprint of a TUF key, when it is ed25519; else its key id.
pub fn key_label(key: Option<&Key>, keyid: &str) -> String {
    match key.and_then(Key::ed25519_public) {
        Some(bytes) => PublicIdentity::from_bytes(bytes).fingerprint(),
        None => format!("keyid {}", &keyid[..keyid.len().min(16)]),
    }
}
