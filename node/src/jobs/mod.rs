//! Jobs: pinned, sandboxed, memoized work, run here or on a trusted peer.
//!
//! A job is a canonical document ([`document`]) whose id is its BLAKE3;
//! written by hand as `JOB.toml` ([`jobfile`]). Executors advertise a
//! [`platform`]; a job runs in a fresh directory with its inputs staged
//! read-only ([`stage`]), under a [`sandbox`] level, supervised by a
//! helper process that owns the whole process tree ([`supervisor`],
//! [`process`]); its outputs are collected without following symlinks out
//! ([`collect`]) and its [`result`] is signed and memoized ([`memo`]), in a
//! cache bounded by `[jobs] cache` ([`cache`]). A [`pipeline`] is a file of
//! named steps, each a job, some reading others' outputs.

pub mod cache;
pub mod collect;
pub mod document;
mod error;
pub mod executor;
pub mod follow;
pub mod jobfile;
pub mod memo;
pub mod pipeline;
pub mod platform;
pub mod process;
pub mod records;
pub mod result;
pub mod sandbox;
pub mod size;
pub mod stage;
pub mod supervisor;
pub mod watches;
pub mod wire;

pub use error::JobError;
