use clive_cas::tree::Tree;

/// Trees (`cas::tree`): what a peer or a damaged store hands `Tree::decode`.
///
/// Properties: decoding never panics; a tree that decodes is canonical (its
/// encoding is exactly the input), and building it from its own entries
/// gives the same tree.
pub fn tree(data: &[u8]) {
    let Ok(tree) = Tree::decode(data) else {
        return;
    };
    assert!(Tree::looks_like_tree(data));
    assert_eq!(
        tree.encode(),
        data,
        "a decoded tree re-encodes to other bytes"
    );
    assert_eq!(Tree::decode(&tree.encode()).as_ref(), Ok(&tree));
    assert_eq!(Tree::new(tree.entries().to_vec()).as_ref(), Ok(&tree));
    assert_eq!(tree.hash(), clive_cas::Hash::new(data));
}
