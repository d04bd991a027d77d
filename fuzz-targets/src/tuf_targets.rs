use clive_naming::tuf::Targets;

/// TUF targets metadata (`naming::tuf::metadata`): what a zone's peers and
/// mirrors hand `Metadata::<Targets>::from_bytes`.
///
/// Properties (see `src/tuf.rs`): never panics; a document that decodes
/// serves as bytes that decode to the same document; looking up which
/// delegated roles are responsible for a path (the document's own target
/// paths, and the input read as a path) never panics, and a hash bin
/// chosen for a path is one of the delegation's bins.
pub fn tuf_targets(data: &[u8]) {
    let Some(doc) = crate::tuf::check::<Targets>(data) else {
        return;
    };
    let Some(delegations) = &doc.signed.delegations else {
        return;
    };
    let input = String::from_utf8_lossy(data);
    let paths = doc.signed.targets.keys().map(String::as_str);
    for path in paths.chain([input.as_ref(), "a/b.txt"]) {
        let roles = delegations.roles_for_target(path);
        if let Some(bins) = &delegations.succinct_roles {
            assert_eq!(roles.len(), 1);
            assert!(
                bins.is_delegated_role(&roles[0].0),
                "{roles:?} is not a bin"
            );
        }
    }
}
