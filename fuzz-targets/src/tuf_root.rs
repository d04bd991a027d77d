use clive_naming::tuf::Root;

/// TUF root metadata (`naming::tuf::metadata`): what a zone's peers and
/// mirrors hand `Metadata::<Root>::from_bytes`.
///
/// Properties (see `src/tuf.rs`): never panics; a document that decodes
/// serves as bytes that decode to the same document.
pub fn tuf_root(data: &[u8]) {
    drop(crate::tuf::check::<Root>(data));
}
