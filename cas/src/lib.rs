//! clive-cas: content-addressed objects for clive-node.
//!
//! An object is a **blob** (bytes) or a **tree** (a directory, see [`tree`]);
//! its address is the BLAKE3 hash of its bytes. The [`Store`] keeps objects
//! in an iroh-blobs file store, imports and exports files and directories,
//! keeps named [`pins`], collects garbage ([`gc`]) and checks itself
//! ([`fsck`]).

pub(crate) mod complete;
mod concurrency;
pub mod error;
pub mod export;
pub mod fsck;
pub mod gc;
pub mod hash;
pub mod import;
mod onepass;
mod orphans;
pub mod pins;
pub mod progress;
mod reach;
pub mod roots;
pub mod store;
pub mod tree;
pub mod verify;

pub use error::{CasError, Result};
pub use export::Exported;
pub use fsck::{Damage, FsckReport};
pub use gc::GcReport;
pub use hash::{Hash, parse_hash};
pub use import::{Added, ImportGuard};
pub use pins::Pin;
pub use progress::{NoProgress, Progress};
pub use reach::Root;
pub use roots::{GcLock, RootsHold};
pub use store::{ObjectKind, Store, Stored};
pub use tree::{Entry, EntryKind, Tree, TreeError};
pub use verify::VerifiedRead;
