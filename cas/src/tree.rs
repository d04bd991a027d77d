//! Trees: the canonical, versioned encoding of a directory.
//!
//! # Format, version 1
//!
//! All integers are little-endian.
//!
//! ```text
//! magic    b"clive-tree"          10 bytes
//! version  0x01                    1 byte
//! count    u32                     number of entries, at most MAX_ENTRIES
//! entries  count times:
//!   kind     u8                    0 file, 1 exec, 2 symlink, 3 tree
//!   name_len u16                   1..=MAX_NAME_LEN
//!   name     name_len bytes        UTF-8, one path component
//!   size     u64                   see below, at most MAX_SIZE
//!   hash     32 bytes              BLAKE3 of the blob or of the tree's encoding
//! ```
//!
//! Entries are sorted by the bytes of their name, strictly (no duplicates).
//! A name is never empty, `.` or `..`, and never contains `/` or NUL.
//! `size` is the length of the blob for `file` and `exec`, the length of the
//! link target for `symlink` (the target is stored as a blob), and the total
//! size of everything below for `tree`.
//!
//! The hash of a tree is BLAKE3 of this encoding, so a tree is stored as a
//! blob like any other object. The encoding of a tree is canonical: one
//! directory has exactly one encoding, so equal directories have equal hashes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Hash;

/// The bytes every encoded tree starts with.
pub const MAGIC: &[u8; 10] = b"clive-tree";
/// The tree format version this code reads and writes.
pub const VERSION: u8 = 1;
/// Most entries one tree may hold.
pub const MAX_ENTRIES: u32 = 1 << 20;
/// Longest name, in bytes (the common file system limit).
pub const MAX_NAME_LEN: usize = 255;
/// Largest size an entry may claim (64 PiB): anything above is corrupt.
pub const MAX_SIZE: u64 = 1 << 56;
/// Longest symlink target, in bytes (Linux `PATH_MAX`).
pub const MAX_SYMLINK_TARGET: u64 = 4096;
/// Largest encoded tree, in bytes; readers refuse bigger objects as trees.
pub const MAX_ENCODED_LEN: u64 =
    (HEADER_LEN + 4) as u64 + MAX_ENTRIES as u64 * (MIN_ENTRY_LEN + MAX_NAME_LEN) as u64;

const HEADER_LEN: usize = MAGIC.len() + 1;
/// An entry without its name.
const MIN_ENTRY_LEN: usize = 1 + 2 + 8 + 32;

/// What an entry of a tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A regular file with the executable bit set.
    Exec,
    /// A symbolic link; its hash is that of the target path's bytes.
    Symlink,
    /// A directory; its hash is that of its tree encoding.
    Tree,
}

impl EntryKind {
    fn code(self) -> u8 {
        match self {
            EntryKind::File => 0,
            EntryKind::Exec => 1,
            EntryKind::Symlink => 2,
            EntryKind::Tree => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => EntryKind::File,
            1 => EntryKind::Exec,
            2 => EntryKind::Symlink,
            3 => EntryKind::Tree,
            _ => return None,
        })
    }

    /// The lowercase name used in listings and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Exec => "exec",
            EntryKind::Symlink => "symlink",
            EntryKind::Tree => "tree",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One named entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// A single path component.
    pub name: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// The content address of the entry.
    #[serde(with = "crate::hash::serde_hex")]
    pub hash: Hash,
    /// Bytes of content (see the module documentation).
    pub size: u64,
}

/// A directory: entries sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    entries: Vec<Entry>,
}

/// Why bytes are not a valid tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// The bytes do not start with the tree magic.
    #[error("not a tree: missing the clive-tree header")]
    NotATree,
    /// A tree from a newer (or unknown) format version.
    #[error("unsupported tree format version {0} (this build reads version {VERSION})")]
    UnsupportedVersion(u8),
    /// The data ends before the structure it promises.
    #[error("truncated tree: {0}")]
    Truncated(&'static str),
    /// Bytes follow the last entry.
    #[error("{0} trailing bytes after the last entry")]
    TrailingBytes(usize),
    /// More entries than a tree may hold, or than the data can contain.
    #[error("tree claims {count} entries, more than {limit} allowed by its size and the format")]
    TooManyEntries {
        /// Entries the tree claims.
        count: u64,
        /// The bound it exceeds.
        limit: u64,
    },
    /// The encoded tree is larger than any valid tree.
    #[error("tree encoding of {0} bytes exceeds the limit of {MAX_ENCODED_LEN} bytes")]
    TooLarge(u64),
    /// An unknown entry kind code.
    #[error("entry {index}: unknown kind code {code}")]
    UnknownKind {
        /// Position of the entry.
        index: usize,
        /// The kind byte found.
        code: u8,
    },
    /// A name that is not a single valid path component.
    #[error("entry {index}: invalid name {name:?}: {reason}")]
    InvalidName {
        /// Position of the entry.
        index: usize,
        /// The name, lossily decoded for display.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Entries out of order.
    #[error("entry {index}: {name:?} is not sorted after {previous:?}")]
    Unsorted {
        /// Position of the entry.
        index: usize,
        /// Its name.
        name: String,
        /// The name before it.
        previous: String,
    },
    /// Two entries with the same name.
    #[error("entry {index}: duplicate name {name:?}")]
    Duplicate {
        /// Position of the entry.
        index: usize,
        /// The repeated name.
        name: String,
    },
    /// A size no real content has.
    #[error("entry {index} ({name:?}): absurd size {size}")]
    AbsurdSize {
        /// Position of the entry.
        index: usize,
        /// Its name.
        name: String,
        /// The size claimed.
        size: u64,
    },
}

/// Checks that `name` is a single path component a tree may hold.
pub fn validate_name(name: &[u8]) -> Result<&str, &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name == b"." || name == b".." {
        return Err("`.` and `..` are not entries");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("longer than 255 bytes");
    }
    if name.contains(&b'/') {
        return Err("contains `/`");
    }
    if name.contains(&0) {
        return Err("contains NUL");
    }
    std::str::from_utf8(name).map_err(|_| "not valid UTF-8")
}

impl Tree {
    /// Builds a tree from entries in any order, validating names and sizes.
    pub fn new(mut entries: Vec<Entry>) -> Result<Self, TreeError> {
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let tree = Tree { entries };
        tree.validate()?;
        Ok(tree)
    }

    /// The entries, sorted by name.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Total content size: the sum of the entries' sizes.
    pub fn total_size(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| e.size)
            .fold(0, u64::saturating_add)
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let len = HEADER_LEN
            + 4
            + self
                .entries
                .iter()
                .map(|e| MIN_ENTRY_LEN + e.name.len())
                .sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            out.push(e.kind.code());
            out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            out.extend_from_slice(e.name.as_bytes());
            out.extend_from_slice(&e.size.to_le_bytes());
            out.extend_from_slice(e.hash.as_bytes());
        }
        out
    }

    /// The content address of this tree: BLAKE3 of its encoding.
    pub fn hash(&self) -> Hash {
        Hash::new(self.encode())
    }

    /// True when `bytes` start like a tree (it may still be invalid).
    pub fn looks_like_tree(bytes: &[u8]) -> bool {
        bytes.starts_with(MAGIC)
    }

    /// Decodes and validates an encoded tree. Never panics; allocates at most
    /// in proportion to `bytes.len()`.
    pub fn decode(bytes: &[u8]) -> Result<Self, TreeError> {
        if bytes.len() as u64 > MAX_ENCODED_LEN {
            return Err(TreeError::TooLarge(bytes.len() as u64));
        }
        if !bytes.starts_with(MAGIC) {
            return Err(if MAGIC.starts_with(bytes) && !bytes.is_empty() {
                TreeError::Truncated("header")
            } else {
                TreeError::NotATree
            });
        }
        let mut r = Reader {
            bytes,
            pos: MAGIC.len(),
        };
        let version = r.u8("version")?;
        if version != VERSION {
            return Err(TreeError::UnsupportedVersion(version));
        }
        let count = r.u32("entry count")?;
        let fit = (r.remaining() / MIN_ENTRY_LEN) as u64;
        if count > MAX_ENTRIES || u64::from(count) > fit {
            return Err(TreeError::TooManyEntries {
                count: count.into(),
                limit: fit.min(MAX_ENTRIES.into()),
            });
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(count as usize);
        for index in 0..count as usize {
            let code = r.u8("entry kind")?;
            let kind = EntryKind::from_code(code).ok_or(TreeError::UnknownKind { index, code })?;
            let name_len = r.u16("name length")? as usize;
            let raw = r.take(name_len, "name")?;
            let name = validate_name(raw).map_err(|reason| TreeError::InvalidName {
                index,
                name: String::from_utf8_lossy(raw).into_owned(),
                reason,
            })?;
            let size = r.u64("size")?;
            let hash: [u8; 32] = r
                .take(32, "hash")?
                .try_into()
                .map_err(|_| TreeError::Truncated("hash"))?;
            entries.push(Entry {
                name: name.to_owned(),
                kind,
                hash: Hash::from_bytes(hash),
                size,
            });
        }
        if r.remaining() != 0 {
            return Err(TreeError::TrailingBytes(r.remaining()));
        }
        let tree = Tree { entries };
        tree.validate()?;
        Ok(tree)
    }

    fn validate(&self) -> Result<(), TreeError> {
        if self.entries.len() as u64 > u64::from(MAX_ENTRIES) {
            return Err(TreeError::TooManyEntries {
                count: self.entries.len() as u64,
                limit: MAX_ENTRIES.into(),
            });
        }
        let mut total: u64 = 0;
        for (index, e) in self.entries.iter().enumerate() {
            validate_name(e.name.as_bytes()).map_err(|reason| TreeError::InvalidName {
                index,
                name: e.name.clone(),
                reason,
            })?;
            if let Some(prev) = index.checked_sub(1).map(|i| &self.entries[i]) {
                match prev.name.as_bytes().cmp(e.name.as_bytes()) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => {
                        return Err(TreeError::Duplicate {
                            index,
                            name: e.name.clone(),
                        });
                    }
                    std::cmp::Ordering::Greater => {
                        return Err(TreeError::Unsorted {
                            index,
                            name: e.name.clone(),
                            previous: prev.name.clone(),
                        });
                    }
                }
            }
            let limit = match e.kind {
                EntryKind::Symlink => MAX_SYMLINK_TARGET,
                _ => MAX_SIZE,
            };
            total = total.saturating_add(e.size);
            if e.size > limit || total > MAX_SIZE {
                return Err(TreeError::AbsurdSize {
                    index,
                    name: e.name.clone(),
                    size: e.size,
                });
            }
        }
        Ok(())
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TreeError> {
        if self.remaining() < n {
            return Err(TreeError::Truncated(what));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], TreeError> {
        self.take(N, what)?
            .try_into()
            .map_err(|_| TreeError::Truncated(what))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, TreeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, TreeError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, TreeError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, TreeError> {
        self.array(what).map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry(name: &str, kind: EntryKind) -> Entry {
        Entry {
            name: name.into(),
            kind,
            hash: Hash::new(name.as_bytes()),
            size: name.len() as u64,
        }
    }

    /// Encodes entries as given, bypassing validation, as a hostile peer would.
    fn raw(entries: &[(u8, &[u8], u64)]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(VERSION);
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (kind, name, size) in entries {
            out.push(*kind);
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name);
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&[7u8; 32]);
        }
        out
    }

    #[test]
    fn round_trip_and_canonical_order() {
        let tree = Tree::new(vec![
            entry("zeta", EntryKind::File),
            entry("alpha", EntryKind::Tree),
            entry("été", EntryKind::Exec),
            entry("link", EntryKind::Symlink),
        ])
        .unwrap();
        let names: Vec<_> = tree.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["alpha", "link", "zeta", "été"]);
        let bytes = tree.encode();
        assert_eq!(Tree::decode(&bytes).unwrap(), tree);
        assert_eq!(tree.hash(), Hash::new(&bytes));
    }

    #[test]
    fn empty_tree_round_trips() {
        let tree = Tree::new(vec![]).unwrap();
        assert_eq!(Tree::decode(&tree.encode()).unwrap(), tree);
    }

    #[test]
    fn rejects_bad_names() {
        let cases: [(&[u8], &str); 6] = [
            (b"..", "`.` and `..`"),
            (b".", "`.` and `..`"),
            (b"", "empty"),
            (b"a/b", "contains `/`"),
            (b"a\0b", "contains NUL"),
            (b"\xff\xfe", "UTF-8"),
        ];
        for (name, why) in cases {
            let err = Tree::decode(&raw(&[(0, name, 1)])).unwrap_err();
            assert!(
                matches!(err, TreeError::InvalidName { .. }) && err.to_string().contains(why),
                "{name:?}: {err}"
            );
        }
        let long = vec![b'x'; 256];
        let err = Tree::decode(&raw(&[(0, &long, 1)])).unwrap_err();
        assert!(err.to_string().contains("255"), "{err}");
    }

    #[test]
    fn rejects_unsorted_and_duplicates() {
        let err = Tree::decode(&raw(&[(0, b"b", 1), (0, b"a", 1)])).unwrap_err();
        assert!(matches!(err, TreeError::Unsorted { .. }), "{err}");
        let err = Tree::decode(&raw(&[(2, b"a", 1), (3, b"a", 1)])).unwrap_err();
        assert!(matches!(err, TreeError::Duplicate { .. }), "{err}");
        assert!(
            Tree::new(vec![
                entry("a", EntryKind::File),
                entry("a", EntryKind::Tree)
            ])
            .is_err()
        );
    }

    #[test]
    fn rejects_truncation_at_every_length() {
        let bytes = raw(&[(0, b"a", 1), (1, b"b", 2)]);
        assert_eq!(Tree::decode(&[]), Err(TreeError::NotATree));
        for len in 1..bytes.len() {
            let err = Tree::decode(&bytes[..len]).unwrap_err();
            assert!(
                matches!(
                    err,
                    TreeError::Truncated(_) | TreeError::TooManyEntries { .. }
                ),
                "len {len}: {err}"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(Tree::decode(&extra), Err(TreeError::TrailingBytes(1)));
    }

    #[test]
    fn rejects_absurd_sizes_and_counts() {
        let err = Tree::decode(&raw(&[(0, b"a", u64::MAX)])).unwrap_err();
        assert!(matches!(err, TreeError::AbsurdSize { .. }), "{err}");
        let err = Tree::decode(&raw(&[(2, b"a", 1 << 20)])).unwrap_err();
        assert!(matches!(err, TreeError::AbsurdSize { .. }), "{err}");
        let err = Tree::decode(&raw(&[(0, b"a", MAX_SIZE), (0, b"b", MAX_SIZE)])).unwrap_err();
        assert!(
            matches!(err, TreeError::AbsurdSize { index: 1, .. }),
            "{err}"
        );
        // A count of four billion entries in a 15-byte object.
        let mut bytes = MAGIC.to_vec();
        bytes.push(VERSION);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = Tree::decode(&bytes).unwrap_err();
        assert!(matches!(err, TreeError::TooManyEntries { .. }), "{err}");
    }

    #[test]
    fn rejects_unknown_kind_version_and_magic() {
        let err = Tree::decode(&raw(&[(9, b"a", 1)])).unwrap_err();
        assert_eq!(err, TreeError::UnknownKind { index: 0, code: 9 });
        let mut bytes = raw(&[]);
        bytes[MAGIC.len()] = 2;
        assert_eq!(Tree::decode(&bytes), Err(TreeError::UnsupportedVersion(2)));
        assert_eq!(
            Tree::decode(b"hello world, no tree"),
            Err(TreeError::NotATree)
        );
    }

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            "[^/\u{0}]{1,40}".prop_filter("not . or ..", |n| n != "." && n != ".."),
            prop_oneof![
                Just(EntryKind::File),
                Just(EntryKind::Exec),
                Just(EntryKind::Symlink),
                Just(EntryKind::Tree)
            ],
            any::<[u8; 32]>(),
            0u64..4096,
        )
            .prop_map(|(name, kind, hash, size)| Entry {
                name,
                kind,
                hash: Hash::from_bytes(hash),
                size,
            })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(entries in proptest::collection::vec(arb_entry(), 0..40)) {
            let mut seen = std::collections::HashSet::new();
            let entries: Vec<_> = entries.into_iter().filter(|e| seen.insert(e.name.clone())).collect();
            let tree = Tree::new(entries).unwrap();
            let bytes = tree.encode();
            prop_assert_eq!(Tree::decode(&bytes).unwrap(), tree.clone());
            prop_assert_eq!(Tree::decode(&bytes).unwrap().encode(), bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Tree::decode(&bytes);
        }

        #[test]
        fn arbitrary_bytes_after_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut bytes = MAGIC.to_vec();
            bytes.push(VERSION);
            bytes.extend_from_slice(&tail);
            if let Ok(tree) = Tree::decode(&bytes) {
                // Whatever decodes is canonical.
                prop_assert_eq!(tree.encode(), bytes);
            }
        }
    }
}
