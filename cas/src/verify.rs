//! Verified reads: every byte of a stored object that is handed out has been
//! checked against the object's hash first.
//!
//! A blob is read as its BLAKE3 tree (bao) encoding, the data with the
//! outboard's parent hashes, and decoded with bao-tree's [`ResponseDecoder`],
//! which checks each 16 KiB chunk group against the root hash before it is
//! yielded. Damage (a flipped byte, a truncated or missing data file, a
//! damaged outboard) is a [`CasError::Damaged`] naming the object; the bytes
//! before it were verified, the damaged group and everything after it are
//! never handed out.
//!
//! Everything that reads object content goes through here: `cat`, export,
//! trees, symlink targets, and the checks a serving node makes before it
//! answers a peer.

use std::{collections::VecDeque, pin::Pin};

use bao_tree::{
    BaoTree, ChunkNum, ChunkRanges,
    io::{
        BaoContentItem, DecodeError, EncodeError,
        fsm::{ResponseDecoder, ResponseDecoderNext},
    },
};
use bytes::Bytes;
use iroh_blobs::store::IROH_BLOCK_SIZE;
use n0_future::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::{CasError, Hash, Result, Store};

type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// The bao encoding of a blob as iroh-blobs exports it, read as a byte stream.
struct Encoded {
    items: ByteStream,
    buffered: VecDeque<Bytes>,
}

impl Encoded {
    /// Moves the next item of the export into the buffer; false at its end.
    async fn fill(&mut self) -> std::io::Result<bool> {
        match self.items.next().await {
            Some(item) => {
                self.buffered.push_back(item?);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn take(&mut self, len: usize) -> std::io::Result<Bytes> {
        while self.buffered.is_empty() {
            if !self.fill().await? {
                return Ok(Bytes::new());
            }
        }
        let front = self.buffered.front_mut().expect("filled above");
        if front.len() <= len {
            return Ok(self.buffered.pop_front().expect("filled above"));
        }
        Ok(front.split_to(len))
    }
}

impl iroh_io::AsyncStreamReader for Encoded {
    async fn read_bytes(&mut self, len: usize) -> std::io::Result<Bytes> {
        // Items are exactly what the decoder asks for (8-byte size, 64-byte
        // parents, whole chunk groups), so this rarely copies.
        let first = self.take(len).await?;
        if first.len() == len || first.is_empty() {
            return Ok(first);
        }
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&first);
        while out.len() < len {
            let next = self.take(len - out.len()).await?;
            if next.is_empty() {
                break;
            }
            out.extend_from_slice(&next);
        }
        Ok(out.into())
    }

    async fn read<const L: usize>(&mut self) -> std::io::Result<[u8; L]> {
        let bytes = self.read_bytes(L).await?;
        bytes
            .as_ref()
            .try_into()
            .map_err(|_| std::io::ErrorKind::UnexpectedEof.into())
    }
}

/// A verified read of (part of) one stored blob: yields its bytes in order,
/// one checked chunk group at a time.
pub struct VerifiedRead {
    hash: Hash,
    size: u64,
    delivered: u64,
    decoder: Option<ResponseDecoder<Encoded>>,
}

impl std::fmt::Debug for VerifiedRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedRead")
            .field("hash", &self.hash)
            .field("size", &self.size)
            .field("delivered", &self.delivered)
            .finish()
    }
}

impl VerifiedRead {
    /// The size of the whole blob.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next verified piece and its offset in the blob; `None` once every
    /// requested byte was handed out.
    pub async fn next(&mut self) -> Result<Option<(u64, Bytes)>> {
        loop {
            let Some(decoder) = self.decoder.take() else {
                return Ok(None);
            };
            match decoder.next().await {
                ResponseDecoderNext::More((decoder, Ok(BaoContentItem::Leaf(leaf)))) => {
                    self.decoder = Some(decoder);
                    self.delivered += leaf.data.len() as u64;
                    return Ok(Some((leaf.offset, leaf.data)));
                }
                ResponseDecoderNext::More((decoder, Ok(BaoContentItem::Parent(_)))) => {
                    self.decoder = Some(decoder);
                }
                ResponseDecoderNext::More((_, Err(e))) => {
                    return Err(damaged(self.hash, decode_problem(e)));
                }
                // The decoder ends only after every requested chunk group
                // was read and checked.
                ResponseDecoderNext::Done(_) => return Ok(None),
            }
        }
    }
}

fn damaged(hash: Hash, problem: String) -> CasError {
    CasError::Damaged { hash, problem }
}

fn decode_problem(e: DecodeError) -> String {
    match e {
        DecodeError::LeafHashMismatch(chunk) => {
            format!(
                "the bytes at offset {} do not match its hash",
                chunk.to_bytes()
            )
        }
        DecodeError::ParentHashMismatch(node) => format!(
            "its hash tree does not match near offset {}",
            node.mid().to_bytes()
        ),
        DecodeError::LeafNotFound(chunk) => {
            format!("its data ends before offset {}", chunk.to_bytes())
        }
        DecodeError::ParentNotFound(node) => {
            format!("its hash tree ends before offset {}", node.mid().to_bytes())
        }
        DecodeError::Io(e) => io_problem(&e),
    }
}

/// What an error reading the encoding says about the object: the store's
/// own export stops at bytes that do not match the outboard.
fn io_problem(e: &std::io::Error) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|c| c as _);
    while let Some(c) = cause {
        if let Some(encode) = c.downcast_ref::<EncodeError>() {
            return match encode {
                EncodeError::LeafHashMismatch(chunk) => {
                    format!(
                        "the bytes at offset {} do not match its hash",
                        chunk.to_bytes()
                    )
                }
                EncodeError::ParentHashMismatch(node) => format!(
                    "its hash tree does not match near offset {}",
                    node.mid().to_bytes()
                ),
                EncodeError::SizeMismatch => "its data file has the wrong size".to_owned(),
                other => format!("unreadable: {other}"),
            };
        }
        cause = c.source();
    }
    match e.kind() {
        std::io::ErrorKind::InvalidData => format!("its bytes do not match its hash ({e})"),
        _ => format!("unreadable: {e}"),
    }
}

impl Store {
    /// Starts a verified read of the whole blob `hash`.
    pub async fn read_verified(&self, hash: Hash) -> Result<VerifiedRead> {
        self.read_verified_ranges(hash, ChunkRanges::all()).await
    }

    /// Starts a verified read of the chunks `ranges` (1 KiB chunks) of the
    /// blob `hash`, which must be stored completely.
    pub async fn read_verified_ranges(
        &self,
        hash: Hash,
        ranges: ChunkRanges,
    ) -> Result<VerifiedRead> {
        let size = self.size(hash).await?;
        let items = self
            .blobs
            .blobs()
            .export_bao(hash, ranges.clone())
            .into_byte_stream()
            .map(|item| {
                item.map_err(|e| match e {
                    iroh_blobs::api::Error::Io(e) => e,
                })
            });
        let mut encoded = Encoded {
            items: Box::pin(items),
            buffered: VecDeque::new(),
        };
        let header: [u8; 8] = iroh_io::AsyncStreamReader::read(&mut encoded)
            .await
            .map_err(|e| damaged(hash, io_problem(&e)))?;
        let encoded_size = u64::from_le_bytes(header);
        if encoded_size != size {
            return Err(damaged(
                hash,
                format!("the store says {size} bytes, its data says {encoded_size}"),
            ));
        }
        let tree = BaoTree::new(size, IROH_BLOCK_SIZE);
        Ok(VerifiedRead {
            hash,
            size,
            delivered: 0,
            decoder: Some(ResponseDecoder::new(hash.into(), ranges, tree, encoded)),
        })
    }

    /// Checks the chunks `ranges` of a completely stored blob against its
    /// hash, reading them once; for a serving node before it answers.
    pub async fn verify_ranges(&self, hash: Hash, ranges: ChunkRanges) -> Result<()> {
        let mut read = self.read_verified_ranges(hash, ranges).await?;
        while read.next().await?.is_some() {}
        Ok(())
    }

    /// Reads a whole blob into memory, verified; at most `limit` bytes.
    pub async fn read_verified_bytes(&self, hash: Hash, limit: u64) -> Result<Bytes> {
        let size = self.size(hash).await?;
        if size > limit {
            return Err(CasError::TooLarge { hash, size, limit });
        }
        let mut read = self.read_verified(hash).await?;
        let Some((_, first)) = read.next().await? else {
            return Ok(Bytes::new());
        };
        if first.len() as u64 == size {
            return Ok(first);
        }
        let mut out = Vec::with_capacity(size as usize);
        out.extend_from_slice(&first);
        while let Some((_, piece)) = read.next().await? {
            out.extend_from_slice(&piece);
        }
        Ok(out.into())
    }

    /// The first verified bytes of a blob (its first chunk group).
    pub(crate) async fn read_verified_head(&self, hash: Hash) -> Result<Bytes> {
        let mut read = self
            .read_verified_ranges(hash, ChunkRanges::from(..ChunkNum(1)))
            .await?;
        Ok(read.next().await?.map(|(_, b)| b).unwrap_or_default())
    }

    /// Streams a blob to `out`, each chunk group verified before it is written.
    pub async fn write_verified_to<W: AsyncWrite + Unpin + ?Sized>(
        &self,
        hash: Hash,
        out: &mut W,
    ) -> Result<u64> {
        let mut read = self.read_verified(hash).await?;
        let mut written = 0u64;
        while let Some((_, piece)) = read.next().await? {
            out.write_all(&piece)
                .await
                .map_err(|e| CasError::io("writing output", e))?;
            written += piece.len() as u64;
        }
        out.flush()
            .await
            .map_err(|e| CasError::io("writing output", e))?;
        Ok(written)
    }
}
