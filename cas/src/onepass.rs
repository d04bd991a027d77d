//! Adding a large file in one pass over the store.
//!
//! iroh-blobs' own import copies a file into the store, then reads the copy
//! again to hash it on one core. Here the file is read twice instead, and
//! written once:
//!
//! 1. **Hash.** Every core reads [`UNIT`]s of the file into its own buffer
//!    and computes the chaining value of each 16 KiB block (iroh-blobs'
//!    chunk group) while the bytes are still in its cache. The values are
//!    kept in memory up to [`CVS_IN_MEMORY`] blocks and spill to an
//!    unlinked file in the store's `temp/` beyond, so memory stays bounded
//!    for any size. From the block values the hash tree is folded
//!    (one compression per parent: milliseconds for a GiB), which gives the
//!    root hash.
//! 2. **Store.** Holding a temp tag for that hash, the file is handed to
//!    the store through `import_bao`: the parents of the hash tree
//!    (computed again from the block values) and the data in [`PIECE`]
//!    leaves, each parent sent before the leaf that ends its range, so the
//!    store has the whole outboard before the last leaf completes the blob.
//!    Each leaf is hashed again and checked against the first pass before
//!    it is sent: a file changed between the passes fails the add, and the
//!    store never holds a byte that does not match the hash. That runs on
//!    the feeding thread alone, and the other core is left to the store,
//!    whose writes into the page cache are the larger part of this pass.
//!
//! The store trusts what `import_bao` hands it (it checks no hash), which
//! is why the second pass checks every leaf. A process killed mid-add
//! leaves a partial blob holding only verified ranges; the next add of the
//! same file completes it, and gc removes it otherwise.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    os::unix::fs::FileExt,
    path::Path,
};

use bao_tree::{
    BaoTree, TreeNode,
    io::{BaoContentItem, Leaf, Parent},
};
use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};
use bytes::{Bytes, BytesMut};
use iroh_blobs::store::IROH_BLOCK_SIZE;

/// Bytes per block of the hash tree: iroh-blobs' chunk group of 16 KiB.
pub(crate) const BLOCK: usize = 16 * 1024;
/// Bytes one core reads and hashes at a time in the first pass (64 blocks).
const UNIT: usize = 1 << 20;
/// Units read and hashed in one round of the first pass, shared among the
/// cores.
const UNITS_PER_ROUND: usize = 16;
/// Bytes per leaf handed to the store in the second pass.
const PIECE: usize = 2 << 20;
/// Items the store's import channel holds: room for a few leaves, each
/// with the parents whose ranges it ends (128 for a full leaf). The feed
/// reserves room for a whole leaf and its parents at once, so it wakes once
/// a leaf, not once a parent. Measured on a 1 GiB add (2026-12-03): 32
/// items took 2.8-3.2 s, 512 took 1.9-2.5 s, both sending item by item.
pub(crate) const ITEMS_IN_FLIGHT: usize = 512;
/// Leaves sent whose buffers are kept for leaves to come (the store lets
/// go of a leaf once it has written it).
const LEAVES_KEPT: usize = 8;
/// Block chaining values kept in memory (8 MiB: files up to 4 GiB); a
/// larger file's spill to a file.
#[cfg(not(test))]
const CVS_IN_MEMORY: usize = 256 * 1024;
/// Small in the unit tests, so that files of a few MiB spill.
#[cfg(test)]
const CVS_IN_MEMORY: usize = 100;
/// Bytes of spilled chaining values read back at a time.
const CV_READ: usize = 64 * 1024;

/// Why a one-pass add stopped.
#[derive(Debug)]
pub(crate) enum OnePassError {
    /// Reading the file (or the spill file) failed.
    Read(io::Error),
    /// The file no longer holds what the first pass hashed.
    Changed,
    /// The store stopped taking the import.
    Store(String),
}

impl From<io::Error> for OnePassError {
    fn from(e: io::Error) -> Self {
        OnePassError::Read(e)
    }
}

/// What the first pass found: the file's size, its BLAKE3 hash, and the
/// chaining value of each of its blocks.
pub(crate) struct Hashed {
    /// Bytes the first pass read.
    pub size: u64,
    /// BLAKE3 of those bytes.
    pub hash: blake3::Hash,
    cvs: BlockValues,
}

/// Reads `file` to its end and hashes it on every core. A file of one
/// block or less (it shrank since it was looked at) is returned as bytes.
///
/// Each core reads a [`UNIT`] of its own into a buffer of its own and
/// hashes it there, [`UNITS_PER_ROUND`] units a round: the bytes are hashed
/// while they are still in that core's cache, and no core waits for
/// another's read.
pub(crate) fn hash_file(
    file: &File,
    temp_dir: &Path,
    advance: &dyn Fn(u64),
) -> Result<Result<Hashed, Vec<u8>>, OnePassError> {
    let mut cvs = BlockValues::new(temp_dir);
    let mut offset = 0u64;
    let mut ended = false;
    while !ended {
        let mut units: Vec<io::Result<(usize, Vec<ChainingValue>)>> =
            (0..UNITS_PER_ROUND).map(|_| Ok((0, Vec::new()))).collect();
        rayon_core::scope(|s| {
            for (i, unit) in units.iter_mut().enumerate() {
                let at = offset + (i * UNIT) as u64;
                s.spawn(move |_| *unit = hash_unit(file, at));
            }
        });
        let mut read = 0u64;
        for unit in units {
            let (len, values) = unit?;
            // A unit after the end holding bytes: the file grew while
            // this round read it.
            if ended && len > 0 {
                return Err(OnePassError::Changed);
            }
            cvs.extend(&values)?;
            read += len as u64;
            ended |= len < UNIT;
        }
        advance(read);
        offset += read;
    }
    if offset <= BLOCK as u64 {
        let mut bytes = vec![0u8; BLOCK];
        let len = read_full(file, 0, &mut bytes)?;
        bytes.truncate(len);
        return Ok(Err(bytes));
    }
    cvs.finish()?;
    let blocks = cvs.len;
    let mut values = cvs.reader()?;
    let hash = fold_tree(offset, blocks, &mut || values.next(), &mut |_, _| Ok(()))?;
    Ok(Ok(Hashed {
        size: offset,
        hash,
        cvs,
    }))
}

thread_local! {
    /// Each hashing thread's buffer for [`hash_unit`], kept between adds.
    static UNIT_BUFFER: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// Reads up to a [`UNIT`] of `file` from `at` and returns the bytes read and
/// the chaining value of each of their blocks.
fn hash_unit(file: &File, at: u64) -> io::Result<(usize, Vec<ChainingValue>)> {
    UNIT_BUFFER.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        if buffer.is_empty() {
            *buffer = page_aligned_zeroed(UNIT);
        }
        let len = read_full(file, at, &mut buffer)?;
        Ok((len, block_values(&buffer[..len], at)))
    })
}

/// Bytes of a page: buffers the kernel copies file data into or out of
/// start on one.
const PAGE: usize = 4096;

/// `len` zeroed bytes starting on a page boundary. A buffer from the
/// allocator starts 16 bytes into a page, and the kernel's copies between
/// the page cache and such a buffer ran about 3x slower on this project's
/// AMD machine (1 GiB in 0.77-0.83 s against 0.22-0.33 s aligned).
fn page_aligned_zeroed(len: usize) -> BytesMut {
    let mut buffer = BytesMut::zeroed(len + PAGE);
    let skip = buffer.as_ptr().align_offset(PAGE).min(PAGE);
    // The head is dropped here, so the rest is the buffer's only owner and
    // `Bytes::try_into_mut` can hand it back later.
    drop(buffer.split_to(skip));
    buffer.truncate(len);
    buffer
}

/// Sends `hashed`'s file to the store: every parent of its hash tree and
/// its data in leaves of [`PIECE`] bytes, each leaf checked against the
/// first pass first. `send` hands the store one leaf with the parents that
/// go before it, in the order given.
///
/// The tree is folded again from the block values as the leaves go: each
/// parent waits for the leaf its range ends in, so the store has the whole
/// outboard before the last leaf completes the blob.
pub(crate) fn feed_store(
    file: &File,
    hashed: &Hashed,
    send: &mut dyn FnMut(Vec<BaoContentItem>) -> Result<(), OnePassError>,
    advance: &dyn Fn(u64),
) -> Result<(), OnePassError> {
    let mut leaves = Leaves {
        file,
        hashed,
        expected: hashed.cvs.reader()?,
        sent: std::collections::VecDeque::new(),
        offset: 0,
        parents: Vec::new(),
        parents_sent: 0,
        send,
        advance,
    };
    let mut values = hashed.cvs.reader()?;
    fold_tree(
        hashed.size,
        hashed.cvs.len,
        &mut || values.next(),
        &mut |parent, end| {
            while end > leaves.end_block() {
                leaves.send_next()?;
            }
            leaves.parents.push(parent);
            Ok(())
        },
    )?;
    while leaves.offset < hashed.size {
        leaves.send_next()?;
    }
    Ok(())
}

/// The second pass's leaves: where it is, and the parents waiting for the
/// next leaf.
struct Leaves<'a, 's> {
    file: &'a File,
    hashed: &'a Hashed,
    /// The first pass's block values, to check each leaf against.
    expected: ValueReader<'a>,
    /// Leaves sent whose buffers may come back ([`leaf_buffer`]).
    sent: std::collections::VecDeque<Bytes>,
    /// Where the next leaf starts.
    offset: u64,
    /// Parents whose ranges end in the next leaf.
    parents: Vec<Parent>,
    parents_sent: u64,
    send: &'s mut dyn FnMut(Vec<BaoContentItem>) -> Result<(), OnePassError>,
    advance: &'s dyn Fn(u64),
}

impl Leaves<'_, '_> {
    fn len(&self) -> usize {
        (self.hashed.size - self.offset).min(PIECE as u64) as usize
    }

    /// The block the next leaf ends at.
    fn end_block(&self) -> u64 {
        (self.offset + self.len() as u64).div_ceil(BLOCK as u64)
    }

    /// Reads the next leaf, checks it against the first pass and sends it
    /// after the parents waiting for it.
    fn send_next(&mut self) -> Result<(), OnePassError> {
        let (offset, len) = (self.offset, self.len());
        if len == 0 {
            return Err(OnePassError::Store(
                "the hash tree goes past the file's end".into(),
            ));
        }
        let mut data = leaf_buffer(&mut self.sent, len);
        if read_full(self.file, offset, &mut data)? != len {
            return Err(OnePassError::Changed);
        }
        for value in block_values(&data, offset) {
            if self.expected.next()? != value {
                return Err(OnePassError::Changed);
            }
        }
        let parents = self.parents.len() as u64;
        // The last leaf completes the blob, and the store takes nothing
        // after it: every parent must be there before it (a tree of n
        // blocks has n - 1).
        if offset + len as u64 == self.hashed.size
            && self.parents_sent + parents + 1 != self.hashed.cvs.len
        {
            return Err(OnePassError::Store(format!(
                "{} of the hash tree's {} parents were computed",
                self.parents_sent + parents,
                self.hashed.cvs.len - 1
            )));
        }
        let data = data.freeze();
        self.sent.push_back(data.clone());
        let mut items: Vec<BaoContentItem> = self.parents.drain(..).map(Into::into).collect();
        items.push(Leaf { offset, data }.into());
        (self.send)(items)?;
        self.parents_sent += parents;
        (self.advance)(len as u64);
        self.offset += len as u64;
        Ok(())
    }
}

/// A buffer of `len` bytes for the next leaf: the oldest of the leaves
/// `sent` when the store has let go of it (and [`LEAVES_KEPT`] were sent),
/// or a new one, page-aligned ([`page_aligned_zeroed`]). A new 2 MiB buffer
/// per leaf cost a fresh mapping, zeroed, for every leaf.
fn leaf_buffer(sent: &mut std::collections::VecDeque<Bytes>, len: usize) -> BytesMut {
    if sent.len() >= LEAVES_KEPT
        && let Some(Ok(mut buffer)) = sent.pop_front().map(Bytes::try_into_mut)
    {
        buffer.resize(len, 0);
        return buffer;
    }
    page_aligned_zeroed(len)
}

/// Reads from `offset` until `buf` is full or the file ends; returns the
/// bytes read.
fn read_full(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The chaining value of each block of `data`, which starts at byte
/// `offset` of the file (a multiple of [`BLOCK`]).
fn block_values(data: &[u8], offset: u64) -> Vec<ChainingValue> {
    data.chunks(BLOCK)
        .enumerate()
        .map(|(i, block)| {
            let mut hasher = blake3::Hasher::new();
            hasher.set_input_offset(offset + (i * BLOCK) as u64);
            hasher.update(block);
            hasher.finalize_non_root()
        })
        .collect()
}

/// Largest power of two below `len` (at least 2): the blocks in the left
/// subtree of a BLAKE3 tree over `len` blocks.
fn left_blocks(len: u64) -> u64 {
    1 << (63 - (len - 1).leading_zeros())
}

/// The level bao-tree gives the node of a subtree of `len` blocks (at
/// least 2). Its nodes count in 1 KiB chunks: the node over two blocks
/// (16 chunks each) is at level 4, and each level above doubles it.
fn level_of(len: u64) -> u32 {
    u32::from(IROH_BLOCK_SIZE.chunk_log()) + left_blocks(len).trailing_zeros()
}

/// Folds the hash tree of a file of `size` bytes in `blocks` blocks (at
/// least 2) from their chaining values, taken in order from `next`, and
/// returns its root hash. Each parent is handed to `emit` in post-order,
/// with the block its range ends at.
fn fold_tree(
    size: u64,
    blocks: u64,
    next: &mut dyn FnMut() -> Result<ChainingValue, OnePassError>,
    emit: &mut dyn FnMut(Parent, u64) -> Result<(), OnePassError>,
) -> Result<blake3::Hash, OnePassError> {
    let tree = BaoTree::new(size, IROH_BLOCK_SIZE);
    let root = tree
        .pre_order_nodes_iter()
        .next()
        .filter(|root| blocks >= 2 && root.level() == level_of(blocks))
        .ok_or_else(|| OnePassError::Store(format!("no hash tree of {blocks} blocks")))?;
    let half = left_blocks(blocks);
    let left = child(0, half, root.left_child(), next, emit)?;
    let right = child(half, blocks - half, root.right_child(), next, emit)?;
    emit(parent(root, &left, &right), blocks)?;
    Ok(merge_subtrees_root(&left, &right, Mode::Hash))
}

/// The chaining value of the subtree of `len` blocks from block `start`,
/// whose node is `raw` or one of its left descendants (bao-tree numbers
/// nodes as if the tree were complete).
fn child(
    start: u64,
    len: u64,
    raw: Option<TreeNode>,
    next: &mut dyn FnMut() -> Result<ChainingValue, OnePassError>,
    emit: &mut dyn FnMut(Parent, u64) -> Result<(), OnePassError>,
) -> Result<ChainingValue, OnePassError> {
    if len == 1 {
        return next();
    }
    let bad = || OnePassError::Store(format!("no tree node for {len} blocks at {start}"));
    let mut node = raw.ok_or_else(bad)?;
    while node.level() > level_of(len) {
        node = node.left_child().ok_or_else(bad)?;
    }
    let half = left_blocks(len);
    let left = child(start, half, node.left_child(), next, emit)?;
    let right = child(start + half, len - half, node.right_child(), next, emit)?;
    emit(parent(node, &left, &right), start + len)?;
    Ok(merge_subtrees_non_root(&left, &right, Mode::Hash))
}

fn parent(node: TreeNode, left: &ChainingValue, right: &ChainingValue) -> Parent {
    Parent {
        node,
        pair: (blake3::Hash::from(*left), blake3::Hash::from(*right)),
    }
}

/// The chaining value of every block of a file, in order: in memory, or
/// beyond [`CVS_IN_MEMORY`] in an unlinked file (gone with the process).
struct BlockValues {
    len: u64,
    memory: Vec<ChainingValue>,
    spill: Option<BufWriter<File>>,
    temp_dir: std::path::PathBuf,
}

impl BlockValues {
    fn new(temp_dir: &Path) -> Self {
        BlockValues {
            len: 0,
            memory: Vec::new(),
            spill: None,
            temp_dir: temp_dir.to_owned(),
        }
    }

    fn extend(&mut self, values: &[ChainingValue]) -> io::Result<()> {
        self.len += values.len() as u64;
        if self.spill.is_none() && self.memory.len() + values.len() > CVS_IN_MEMORY {
            let mut spill = BufWriter::new(unlinked_file(&self.temp_dir)?);
            for value in self.memory.drain(..) {
                spill.write_all(&value)?;
            }
            self.memory = Vec::new();
            self.spill = Some(spill);
        }
        match &mut self.spill {
            Some(spill) => values.iter().try_for_each(|v| spill.write_all(v)),
            None => {
                self.memory.extend_from_slice(values);
                Ok(())
            }
        }
    }

    /// Writes out what the spill file's buffer holds: before [`Self::reader`].
    fn finish(&mut self) -> io::Result<()> {
        match &mut self.spill {
            Some(spill) => spill.flush(),
            None => Ok(()),
        }
    }

    /// Reads the values back from the first; any number of readers at once
    /// (after [`Self::finish`]).
    fn reader(&self) -> io::Result<ValueReader<'_>> {
        Ok(match &self.spill {
            None => ValueReader::Memory(self.memory.iter()),
            Some(spill) => ValueReader::File {
                file: spill.get_ref(),
                at: 0,
                buf: Vec::new(),
                pos: 0,
            },
        })
    }
}

/// One pass over [`BlockValues`].
enum ValueReader<'a> {
    Memory(std::slice::Iter<'a, ChainingValue>),
    File {
        file: &'a File,
        at: u64,
        buf: Vec<u8>,
        pos: usize,
    },
}

impl ValueReader<'_> {
    fn next(&mut self) -> Result<ChainingValue, OnePassError> {
        let short = || OnePassError::Store("fewer block hashes than blocks".into());
        match self {
            ValueReader::Memory(values) => values.next().copied().ok_or_else(short),
            ValueReader::File { file, at, buf, pos } => {
                if *pos == buf.len() {
                    buf.resize(CV_READ, 0);
                    let n = read_full(file, *at, buf)?;
                    buf.truncate(n - n % 32);
                    *at += buf.len() as u64;
                    *pos = 0;
                }
                let value: ChainingValue = buf
                    .get(*pos..*pos + 32)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(short)?;
                *pos += 32;
                Ok(value)
            }
        }
    }
}

/// A new file in `dir`, already unlinked.
fn unlinked_file(dir: &Path) -> io::Result<File> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!(
        "onepass-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bao_tree::io::outboard::PreOrderMemOutboard;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed)
            .collect()
    }

    /// The outboard the items for `bytes` describe, laid out as the store
    /// lays it out, and the root hash.
    fn outboard_of(bytes: &[u8]) -> (Vec<u8>, blake3::Hash) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        let file = File::open(&path).unwrap();
        let hashed = hash_file(&file, dir.path(), &|_| {}).unwrap().unwrap();
        let tree = BaoTree::new(hashed.size, IROH_BLOCK_SIZE);
        let mut outboard = vec![0u8; tree.outboard_size() as usize];
        let mut data = vec![0u8; bytes.len()];
        let mut last_parent_after_last_leaf = false;
        let mut seen_last_leaf = false;
        feed_store(
            &file,
            &hashed,
            &mut |items| {
                for item in items {
                    match item {
                        BaoContentItem::Parent(p) => {
                            last_parent_after_last_leaf |= seen_last_leaf;
                            let at = tree.pre_order_offset(p.node).unwrap() as usize * 64;
                            outboard[at..at + 32].copy_from_slice(p.pair.0.as_bytes());
                            outboard[at + 32..at + 64].copy_from_slice(p.pair.1.as_bytes());
                        }
                        BaoContentItem::Leaf(l) => {
                            let at = l.offset as usize;
                            data[at..at + l.data.len()].copy_from_slice(&l.data);
                            seen_last_leaf = at + l.data.len() == bytes.len();
                        }
                    }
                }
                Ok(())
            },
            &|_| {},
        )
        .unwrap();
        assert!(
            !last_parent_after_last_leaf,
            "a parent came after the last leaf"
        );
        assert!(data == bytes);
        (outboard, hashed.hash)
    }

    #[test]
    fn the_outboard_and_hash_match_bao_tree_for_every_shape_of_tree() {
        for len in [
            BLOCK + 1,
            2 * BLOCK,
            3 * BLOCK - 7,
            5 * BLOCK,
            6 * BLOCK,
            7 * BLOCK + 1,
            64 * BLOCK,
            PIECE + BLOCK + 3,
            UNIT,
            UNIT + 1,
            UNITS_PER_ROUND * UNIT,
            UNITS_PER_ROUND * UNIT + BLOCK + 1,
            2 * UNITS_PER_ROUND * UNIT + 5 * BLOCK + 11,
        ] {
            let bytes = data(len, len as u8);
            let (outboard, hash) = outboard_of(&bytes);
            let expected = PreOrderMemOutboard::create(&bytes, IROH_BLOCK_SIZE);
            assert_eq!(hash, blake3::hash(&bytes), "hash of {len} bytes");
            assert_eq!(hash, expected.root, "root of {len} bytes");
            assert!(outboard == expected.data, "outboard of {len} bytes");
        }
    }

    #[test]
    fn leaf_buffers_start_on_a_page_and_are_reused_once_the_store_lets_go() {
        let mut sent = std::collections::VecDeque::new();
        let mut pointers = Vec::new();
        for _ in 0..LEAVES_KEPT {
            let buffer = leaf_buffer(&mut sent, PIECE);
            assert_eq!(buffer.as_ptr() as usize % PAGE, 0);
            assert_eq!(buffer.len(), PIECE);
            pointers.push(buffer.as_ptr());
            sent.push_back(buffer.freeze());
        }
        let last = leaf_buffer(&mut sent, PIECE - BLOCK);
        assert_eq!(last.as_ptr(), pointers[0], "the oldest buffer comes back");
        assert_eq!(last.len(), PIECE - BLOCK);
        sent.push_back(last.freeze());
        // One the store still holds is not taken.
        let held = sent.front().cloned();
        let fresh = leaf_buffer(&mut sent, PIECE);
        assert_ne!(fresh.as_ptr(), pointers[1]);
        assert_eq!(fresh.as_ptr() as usize % PAGE, 0);
        drop(held);
    }

    #[test]
    fn a_file_of_one_block_or_less_comes_back_as_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        for len in [0, 1, BLOCK] {
            let bytes = data(len, 3);
            std::fs::write(&path, &bytes).unwrap();
            let file = File::open(&path).unwrap();
            let back = hash_file(&file, dir.path(), &|_| {}).unwrap();
            assert!(back.is_err_and(|b| b == bytes), "{len} bytes");
        }
    }

    #[test]
    fn block_values_spill_to_a_file_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut values = BlockValues::new(dir.path());
        let all: Vec<ChainingValue> = (0..CVS_IN_MEMORY + 5000)
            .map(|i| {
                let mut v = [0u8; 32];
                v[..8].copy_from_slice(&(i as u64).to_le_bytes());
                v
            })
            .collect();
        for part in all.chunks(7) {
            values.extend(part).unwrap();
        }
        values.finish().unwrap();
        assert!(values.spill.is_some() && values.memory.is_empty());
        // The spill file is unlinked: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let (mut a, mut b) = (values.reader().unwrap(), values.reader().unwrap());
        for v in &all {
            assert_eq!(a.next().unwrap(), *v);
            assert_eq!(b.next().unwrap(), *v);
        }
        assert!(a.next().is_err());
    }

    #[test]
    fn a_file_changed_between_the_passes_is_refused_before_its_leaf_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes = data(3 * PIECE, 9);
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        let hashed = hash_file(&file, dir.path(), &|_| {}).unwrap().unwrap();
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        writer
            .write_all_at(b"changed", (PIECE + 100) as u64)
            .unwrap();
        let mut leaves = Vec::new();
        let result = feed_store(
            &file,
            &hashed,
            &mut |items| {
                for item in items {
                    if let BaoContentItem::Leaf(l) = item {
                        leaves.push(l.offset);
                    }
                }
                Ok(())
            },
            &|_| {},
        );
        assert!(matches!(result, Err(OnePassError::Changed)), "{result:?}");
        assert_eq!(leaves, vec![0], "only the unchanged first leaf was sent");
    }

    #[test]
    fn the_last_leaf_is_never_sent_without_the_whole_hash_tree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes = data(PIECE + 3 * BLOCK, 4);
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        let mut hashed = hash_file(&file, dir.path(), &|_| {}).unwrap().unwrap();
        // Lose the last block's value: folding the tree fails at its end.
        assert!(hashed.cvs.spill.is_some(), "the test file spills");
        let mut values = hashed.cvs.reader().unwrap();
        let real: Vec<ChainingValue> = (1..hashed.cvs.len)
            .map(|_| values.next().unwrap())
            .collect();
        drop(values);
        hashed.cvs.spill = None;
        hashed.cvs.memory = real;
        let mut last_leaf_sent = false;
        let result = feed_store(
            &file,
            &hashed,
            &mut |items| {
                for item in items {
                    if let BaoContentItem::Leaf(l) = item {
                        last_leaf_sent |= l.offset + l.data.len() as u64 == hashed.size;
                    }
                }
                Ok(())
            },
            &|_| {},
        );
        assert!(result.is_err());
        assert!(!last_leaf_sent, "the blob was completed without its tree");
    }
}
