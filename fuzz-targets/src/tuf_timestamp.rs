use clive_naming::tuf::Timestamp;

/// TUF timestamp metadata (`naming::tuf::metadata`): what a zone's peers and
/// mirrors hand `Metadata::<Timestamp>::from_bytes`.
///
/// Properties (see `src/tuf.rs`): never panics; a document that decodes
/// serves as bytes that decode to the same document.
pub fn tuf_timestamp(data: &[u8]) {
    drop(crate::tuf::check::<Timestamp>(data));
}
