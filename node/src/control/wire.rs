//! Frames of the control protocol (see [`crate::control`] for the protocol).
//!
//! ```text
//! frame   = length:u32 (big endian) kind:u8 payload
//! length  = 1 + payload length, never 0, at most MAX_FRAME
//! ```
//!
//! A reader checks `length` against [`MAX_FRAME`] before reading the
//! payload, and grows its buffer only as bytes actually arrive, so a peer
//! announcing a large frame and sending nothing costs nothing.

use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame, kind byte included: 16 MiB.
pub const MAX_FRAME: u32 = 16 * 1024 * 1024;

/// Data frames carry at most this many bytes each.
pub const DATA_CHUNK: usize = 64 * 1024;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// JSON [`super::protocol::Hello`]: the first frame each way.
    Hello = 1,
    /// JSON [`crate::api::Call`], client to daemon.
    Request = 2,
    /// Raw bytes: the client's standard input (`add -`) or the call's
    /// standard output (`cat`).
    Data = 3,
    /// Empty: the end of the client's standard input.
    End = 4,
    /// 17 bytes: flags:u8 (bit 0: total known), total:u64, done:u64, big endian.
    Progress = 5,
    /// Part of a JSON [`crate::api::Reply`] that continues in the next frame.
    ReplyPart = 6,
    /// The (last part of the) JSON [`crate::api::Reply`]: the call succeeded.
    Reply = 7,
    /// JSON [`super::protocol::ErrorMessage`]: the call failed, or the peer broke the protocol.
    Error = 8,
    /// Raw bytes: the call's standard error (a job's, as `exec` streams it).
    ErrData = 9,
    /// Empty, client to daemon: cancel the call (Ctrl-C on `exec`); the
    /// call still answers, saying what the cancel did.
    Cancel = 10,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::Request,
            3 => Kind::Data,
            4 => Kind::End,
            5 => Kind::Progress,
            6 => Kind::ReplyPart,
            7 => Kind::Reply,
            8 => Kind::Error,
            9 => Kind::ErrData,
            10 => Kind::Cancel,
            _ => return None,
        })
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What it holds.
    pub kind: Kind,
    /// The bytes after the kind.
    pub payload: Vec<u8>,
}

/// A frame that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed.
    #[error("{cause}")]
    Io {
        /// The underlying error.
        cause: std::io::Error,
    },
    /// The connection ended in the middle of a frame.
    #[error("the connection ended in the middle of a frame")]
    Truncated,
    /// A frame with a zero length.
    #[error("empty frame (length 0)")]
    Empty,
    /// A frame longer than [`MAX_FRAME`].
    #[error("frame of {len} bytes exceeds the limit of {MAX_FRAME} bytes")]
    TooLarge {
        /// The announced length.
        len: u32,
    },
    /// An unknown kind byte.
    #[error("unknown frame kind {kind}")]
    UnknownKind {
        /// The byte.
        kind: u8,
    },
    /// A payload that does not decode.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was expected.
        what: &'static str,
        /// Why it does not decode.
        reason: String,
    },
    /// No frame came in time.
    #[error("nothing received within {secs} s")]
    Timeout {
        /// How long was waited.
        secs: u64,
    },
    /// A frame of a kind that is not allowed here.
    #[error("unexpected {got:?} frame (expected {expected})")]
    Unexpected {
        /// What was allowed.
        expected: &'static str,
        /// What came.
        got: Kind,
    },
}

impl From<std::io::Error> for WireError {
    fn from(cause: std::io::Error) -> Self {
        if cause.kind() == std::io::ErrorKind::UnexpectedEof {
            WireError::Truncated
        } else {
            WireError::Io { cause }
        }
    }
}

/// Reads one frame; `None` when the connection ends cleanly between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, WireError> {
    let mut header = [0u8; 5];
    let mut got = 0;
    while got < header.len() {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(WireError::Truncated)
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if len == 0 {
        return Err(WireError::Empty);
    }
    if len > MAX_FRAME {
        return Err(WireError::TooLarge { len });
    }
    let kind = Kind::from_byte(header[4]).ok_or(WireError::UnknownKind { kind: header[4] })?;
    let want = u64::from(len - 1);
    let mut payload = Vec::new();
    r.take(want).read_to_end(&mut payload).await?;
    if payload.len() as u64 != want {
        return Err(WireError::Truncated);
    }
    Ok(Some(Frame { kind, payload }))
}

/// Writes one frame. Payloads longer than a frame allows are a bug of the
/// caller and are refused.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    kind: Kind,
    payload: &[u8],
) -> Result<(), WireError> {
    let len = u32::try_from(payload.len() + 1)
        .ok()
        .filter(|len| *len <= MAX_FRAME)
        .ok_or(WireError::TooLarge { len: u32::MAX })?;
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.push(kind as u8);
    frame.extend_from_slice(payload);
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Writes a value as JSON in one frame.
pub async fn write_json<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    kind: Kind,
    value: &T,
) -> Result<(), WireError> {
    let bytes = serde_json::to_vec(value).map_err(|e| WireError::Malformed {
        what: "message",
        reason: e.to_string(),
    })?;
    write_frame(w, kind, &bytes).await
}

/// Decodes a JSON payload.
pub fn decode_json<T: DeserializeOwned>(
    what: &'static str,
    payload: &[u8],
) -> Result<T, WireError> {
    serde_json::from_slice(payload).map_err(|e| WireError::Malformed {
        what,
        reason: e.to_string(),
    })
}

/// Progress as it travels: the total, once known, and the work done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// The total amount of work, once known.
    pub total: Option<u64>,
    /// The work done so far.
    pub done: u64,
}

impl ProgressSnapshot {
    /// The 17-byte payload of a progress frame.
    pub fn encode(&self) -> [u8; 17] {
        let mut out = [0u8; 17];
        out[0] = u8::from(self.total.is_some());
        out[1..9].copy_from_slice(&self.total.unwrap_or(0).to_be_bytes());
        out[9..17].copy_from_slice(&self.done.to_be_bytes());
        out
    }

    /// Decodes a progress payload.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let bad = |reason: &str| WireError::Malformed {
            what: "progress frame",
            reason: reason.to_owned(),
        };
        let bytes: &[u8; 17] = payload
            .try_into()
            .map_err(|_| bad("its payload must be 17 bytes"))?;
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(w)
        };
        let total = match bytes[0] {
            0 => None,
            1 => Some(word(1)),
            _ => return Err(bad("unknown flags")),
        };
        Ok(ProgressSnapshot {
            total,
            done: word(9),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> Result<Option<Frame>, WireError> {
        let mut r = bytes;
        read_frame(&mut r).await
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, Kind::Data, b"hello").await.unwrap();
        write_frame(&mut buf, Kind::End, b"").await.unwrap();
        let mut r = &buf[..];
        let a = read_frame(&mut r).await.unwrap().unwrap();
        assert_eq!((a.kind, &a.payload[..]), (Kind::Data, &b"hello"[..]));
        let b = read_frame(&mut r).await.unwrap().unwrap();
        assert_eq!((b.kind, b.payload.len()), (Kind::End, 0));
        assert!(read_frame(&mut r).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn malformed_frames_are_errors_not_panics() {
        assert!(matches!(read(&[0, 0]).await, Err(WireError::Truncated)));
        assert!(matches!(
            read(&[0, 0, 0, 0, 1]).await,
            Err(WireError::Empty)
        ));
        assert!(matches!(
            read(&[0xff, 0xff, 0xff, 0xff, 1]).await,
            Err(WireError::TooLarge { .. })
        ));
        assert!(matches!(
            read(&[0, 0, 0, 1, 99]).await,
            Err(WireError::UnknownKind { kind: 99 })
        ));
        // Announces 10 bytes, sends 3.
        assert!(matches!(
            read(&[0, 0, 0, 11, 3, 1, 2, 3]).await,
            Err(WireError::Truncated)
        ));
        // An HTTP request is a frame too large, not a crash.
        assert!(matches!(
            read(b"GET / HTTP/1.1\r\n\r\n").await,
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn progress_round_trips_and_rejects_bad_payloads() {
        for snap in [
            ProgressSnapshot::default(),
            ProgressSnapshot {
                total: Some(u64::MAX),
                done: 7,
            },
        ] {
            assert_eq!(ProgressSnapshot::decode(&snap.encode()).unwrap(), snap);
        }
        assert!(ProgressSnapshot::decode(&[0; 16]).is_err());
        let mut bad = [0u8; 17];
        bad[0] = 2;
        assert!(ProgressSnapshot::decode(&bad).is_err());
    }
}
