//! TUF root metadata (`naming::tuf::metadata`): what a zone's peers and
//! mirrors hand `Metadata::<Root>::from_bytes`.
//!
//! Properties (see `src/tuf.rs`): never panics; a document that decodes
//! serves as bytes that decode to the same document.
#![no_main]

use clive_naming::tuf::Root;
use libfuzzer_sys::fuzz_target;

#[path = "../src/tuf.rs"]
mod tuf;

fuzz_target!(|data: &[u8]| drop(tuf::check::<Root>(data)));
