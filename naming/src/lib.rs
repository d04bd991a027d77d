//! Signed human names for content hashes, following the TUF 1.0
//! specification: metadata, signing, the client workflow, history and local
//! overrides.

pub mod tuf;
