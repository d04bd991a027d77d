//! TUF 1.0 core: metadata types, keys, canonical JSON and a client that ports
//! python-tuf's `ngclient` (trusted metadata set and updater workflow).
//!
//! - [`canonical`]: canonical JSON encoding.
//! - [`key`]: public keys, key ids, signature verification.
//! - [`metadata`]: typed metadata and the signed envelope.
//! - [`trusted`]: the set of verified metadata (client workflow checks).
//! - [`updater`]: the client workflow over a [`updater::Remote`] and a
//!   [`updater::LocalMetadata`] store.
//! - [`http`]: a [`updater::Remote`] over HTTP(S).

pub mod canonical;
pub mod error;
pub mod http;
pub mod key;
pub mod metadata;
pub mod trusted;
pub mod updater;

pub use error::{Result, TufError};
pub use key::Key;
pub use metadata::{
    DelegatedRole, Delegations, Delegator, MetaFile, Metadata, Role, Root, Signature, Signed,
    Snapshot, SuccinctRoles, TargetFile, Targets, Timestamp,
};
