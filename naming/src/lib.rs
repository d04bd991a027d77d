//! Signed human names for content hashes, following the TUF 1.0
//! specification: metadata, signing, the client workflow, history and local
//! overrides.

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
