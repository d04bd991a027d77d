//! The property every TUF metadata target checks (see `tuf_*.rs`).

use clive_naming::tuf::{Metadata, Signed, canonical::to_canonical_bytes, metadata::peek_version};

/// Decodes `data` as metadata of type `T` and, when it decodes, checks that
/// it is what a repository would serve again: its served bytes decode to
/// the same document, its signed part has canonical bytes, and
/// `peek_version` does not read another version. Returns the document.
pub fn check<T: Signed + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<Metadata<T>> {
    let doc = Metadata::<T>::from_bytes(data).ok()?;
    let version = doc.signed.version();
    assert!(peek_version(data).is_none_or(|v| v == version));
    // Floating point numbers (which canonical JSON refuses) may come back a
    // unit in the last place apart; every other document must round-trip.
    if to_canonical_bytes(&doc.to_value()).is_err() {
        return Some(doc);
    }
    doc.signed_bytes()
        .expect("a document without floats has canonical bytes");
    let served = doc.to_bytes().expect("a decoded document serializes");
    let back = Metadata::<T>::from_bytes(&served).expect("a served document decodes");
    assert_eq!(back, doc);
    assert_eq!(back.to_bytes().ok(), Some(served));
    assert_eq!(
        peek_version(&doc.to_bytes().unwrap_or_default()),
        Some(version)
    );
    Some(doc)
}
