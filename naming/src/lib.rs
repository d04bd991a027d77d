//! Signed human names for content hashes, following the TUF 1.0
//! specification: metadata, signing, the client workflow, history and local
//! overrides.
//!
//! - [`tuf`]: the TUF core (metadata, keys, the client workflow ported from
//!   python-tuf's ngclient, HTTP remote).
//! - [`zones`]: zones this node publishes or follows, over `state.redb`
//!   ([`state`]), fed through [`source`].
//! - [`sign`]: signing metadata with SSH ed25519 keys.
//! - [`name`]: zone and name syntax.

pub mod bins;
pub mod error;
pub mod name;
pub mod sign;
pub mod source;
pub mod state;
pub mod tuf;
pub mod zones;

pub use error::NamingError;
pub use zones::{
    Change, Content, Published, Resolution, RoleInfo, RootChange, RootStatus, ZoneInfo, Zones,
};

// A dev-dependency of the tests under tests/; the unit tests link it too.
#[cfg(test)]
use tempfile as _;
