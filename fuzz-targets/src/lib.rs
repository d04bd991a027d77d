//! The fuzz targets' properties, one function per decoder of outside input.
//!
//! Each function takes one input and panics when a property it checks
//! fails (a decoder panicking, a decoded value that does not encode back,
//! ...); on any other input it returns. `fuzz/` (cargo fuzz) runs each
//! under libFuzzer, one target per function of the same name
//! (`scripts/fuzz`), and this crate's smoke test (`tests/smoke.rs`) runs
//! each on its seeds in `fuzz/seeds/TARGET/`, deterministic mutations of
//! them and the crash inputs kept in `fuzz/regressions/TARGET/`, as part of
//! the workspace's tests.

mod announcement;
mod canonical_json;
mod cert_body;
mod certificate;
mod control_frames;
mod job_documents;
mod naming_records;
mod net_records;
mod peer_wire;
mod revocation;
mod seal;
mod ticket;
mod tree;
mod tuf;
mod tuf_root;
mod tuf_snapshot;
mod tuf_targets;
mod tuf_timestamp;
mod zone_ticket;

pub use announcement::announcement;
pub use canonical_json::canonical_json;
pub use cert_body::cert_body;
pub use certificate::certificate;
pub use control_frames::control_frames;
pub use job_documents::job_documents;
pub use naming_records::naming_records;
pub use net_records::net_records;
pub use peer_wire::peer_wire;
pub use revocation::revocation;
pub use ticket::ticket;
pub use tree::tree;
pub use tuf_root::tuf_root;
pub use tuf_snapshot::tuf_snapshot;
pub use tuf_targets::tuf_targets;
pub use tuf_timestamp::tuf_timestamp;
pub use zone_ticket::zone_ticket;

/// A target's property: panics on an input that breaks it.
pub type Property = fn(&[u8]);

/// Every target: its name (of its `fuzz/fuzz_targets/NAME.rs` and of its
/// seeds' directory) and its function.
pub const TARGETS: &[(&str, Property)] = &[
    ("tree", tree),
    ("cert_body", cert_body),
    ("certificate", certificate),
    ("revocation", revocation),
    ("ticket", ticket),
    ("zone_ticket", zone_ticket),
    ("peer_wire", peer_wire),
    ("control_frames", control_frames),
    ("announcement", announcement),
    ("tuf_root", tuf_root),
    ("tuf_targets", tuf_targets),
    ("tuf_snapshot", tuf_snapshot),
    ("tuf_timestamp", tuf_timestamp),
    ("canonical_json", canonical_json),
    ("naming_records", naming_records),
    ("net_records", net_records),
    ("job_documents", job_documents),
];
