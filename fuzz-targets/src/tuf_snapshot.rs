use clive_naming::tuf::Snapshot;

/// TUF snapshot metadata (`naming::tuf::metadata`): what a zone's peers and
/// mirrors hand `Metadata::<Snapshot>::from_bytes`.
///
/// Properties (see `src/tuf.rs`): never panics; a document that decodes
/// serves as bytes that decode to the same document.
pub fn tuf_snapshot(data: &[u8]) {
    drop(crate::tuf::check::<Snapshot>(data));
}
