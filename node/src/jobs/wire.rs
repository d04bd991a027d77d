//! The jobs protocol, ALPN `clive/jobs/1`: what a requester and an
//! executor say to each other.
//!
//! Each exchange is one QUIC bidirectional stream. The requester sends one
//! request (JSON, at most [`MAX_MESSAGE`] bytes) and finishes its side; the
//! executor answers with frames until it finishes its own:
//!
//! ```text
//! frame   = kind:u8 length:u32 (big endian, at most MAX_MESSAGE) payload
//! kind 1  JSON JobEvent
//! kind 2  the job's standard output, the next bytes from where the last ended
//! kind 3  the job's standard error, likewise
//! ```
//!
//! Requests are JSON tagged by `op`; events are JSON tagged by `event`
//! ([`JobEvent`]):
//!
//! - `describe`: answered by one `offer` event, the executor's [`Offer`]
//!   (platform, sandbox levels, load, and whether it runs jobs for this
//!   requester). Any admitted peer may ask.
//! - `submit {doc, no_cache}`: run the job document `doc` (its canonical
//!   JSON text). The executor checks `exec`, the sandbox level and the
//!   platform, answers `accepted {id, memo_hit}` (or `refused {reason}`),
//!   pulls the inputs from the requester (which granted exactly their
//!   closure), then streams as `attach` does from offset 0. With `check:
//!   true` (`job run --check`) the job runs again whatever the memo holds,
//!   and the executor keeps its result neither in its memo nor in its
//!   record of the job; an executor that predates the field refuses it.
//! - `attach {id, stdout_from, stderr_from}`: the output from those byte
//!   offsets, live until the job ends, then `done {result}` (the signed
//!   result; the executor lets the requester fetch its objects) or
//!   `failed {reason}`.
//! - `cancel {id}`: kills the job's process tree; answers `cancelled` or
//!   `refused`.
//!
//! A requester that goes away does not cancel anything: the job runs on
//! and its result waits for an `attach`. Version 1; an executor that does
//! not speak a request's version refuses the connection's ALPN.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{platform::Platform, result::SignedResult};

/// The ALPN of the jobs protocol, with its version.
pub const JOBS_ALPN: &[u8] = b"clive/jobs/1";

/// The largest request or frame payload.
pub const MAX_MESSAGE: usize = 1024 * 1024;

/// Output bytes per frame.
pub const LOG_CHUNK: usize = 64 * 1024;

/// A request of the jobs protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobsRequest {
    /// What the executor offers.
    Describe,
    /// Run a job.
    Submit {
        /// The job document's canonical JSON.
        doc: String,
        /// Run even when a memoized result exists.
        no_cache: bool,
        /// A reproducibility check: run it again and keep the result
        /// neither in the executor's memo nor in its record of the job
        /// (absent when false, so a plain submit reads as before).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        check: bool,
    },
    /// The output from these offsets, then the result.
    Attach {
        /// The job id (64 hex).
        id: String,
        /// Standard output bytes the requester has already.
        stdout_from: u64,
        /// Standard error bytes the requester has already.
        stderr_from: u64,
    },
    /// Kill the job.
    Cancel {
        /// The job id.
        id: String,
    },
}

/// What an executor offers, as `describe` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Its platform and sandbox levels.
    pub platform: Platform,
    /// Jobs running now.
    pub running: u32,
    /// Jobs waiting for a slot.
    pub queued: u32,
    /// Jobs it runs at once.
    pub slots: u32,
    /// Whether it runs jobs for the asking node (it holds `exec` there and
    /// the executor is enabled).
    pub runs_for_you: bool,
    /// The lowest level it runs the asking node's jobs at.
    pub min_sandbox: super::sandbox::SandboxLevel,
}

impl Offer {
    /// Load per core, what dispatch compares.
    pub fn load(&self) -> f64 {
        f64::from(self.running + self.queued) / f64::from(self.platform.cores.max(1))
    }
}

/// One event of a submit or attach stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JobEvent {
    /// An answer to `describe`.
    Offer(Offer),
    /// The job is taken (queued, running or already done).
    Accepted {
        /// Its id.
        id: String,
        /// Whether it is a memo hit: the result follows at once.
        memo_hit: bool,
    },
    /// The job ended; its signed result.
    Done {
        /// The result.
        result: SignedResult,
    },
    /// The job could not run, or ended without a result (interrupted).
    Failed {
        /// Why.
        reason: String,
    },
    /// The request was refused.
    Refused {
        /// Why.
        reason: String,
    },
    /// The job was told to stop.
    Cancelled,
}

/// A frame of the executor's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An event.
    Event(JobEvent),
    /// Standard output bytes.
    Stdout(Vec<u8>),
    /// Standard error bytes.
    Stderr(Vec<u8>),
}

impl Frame {
    /// Output bytes of stream `stream`: 0 standard output, else standard error.
    pub fn output(stream: usize, bytes: Vec<u8>) -> Frame {
        if stream == 0 {
            Frame::Stdout(bytes)
        } else {
            Frame::Stderr(bytes)
        }
    }
}

/// A frame or request that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JobsWireError {
    /// The stream failed.
    #[error("reading the jobs stream: {0}")]
    Io(#[from] std::io::Error),
    /// A frame over [`MAX_MESSAGE`].
    #[error("a jobs frame of {0} bytes (at most {MAX_MESSAGE})")]
    TooLarge(usize),
    /// An unknown kind byte.
    #[error("a jobs frame of unknown kind {0}")]
    UnknownKind(u8),
    /// JSON that does not decode.
    #[error("a malformed jobs message: {0}")]
    Malformed(String),
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    frame: &Frame,
) -> Result<(), JobsWireError> {
    let (kind, payload) = match frame {
        Frame::Event(event) => (
            1u8,
            serde_json::to_vec(event).map_err(|e| JobsWireError::Malformed(e.to_string()))?,
        ),
        Frame::Stdout(bytes) => (2, bytes.clone()),
        Frame::Stderr(bytes) => (3, bytes.clone()),
    };
    if payload.len() > MAX_MESSAGE {
        return Err(JobsWireError::TooLarge(payload.len()));
    }
    let mut head = [0u8; 5];
    head[0] = kind;
    head[1..].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    w.write_all(&head).await?;
    w.write_all(&payload).await?;
    Ok(())
}

/// Reads one frame; `None` at the end of the stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frame>, JobsWireError> {
    let mut head = [0u8; 5];
    // The end of the stream between frames is its end; within a frame's
    // header it is a cut.
    if r.read(&mut head[..1]).await? == 0 {
        return Ok(None);
    }
    r.read_exact(&mut head[1..]).await?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_MESSAGE {
        return Err(JobsWireError::TooLarge(len));
    }
    let mut payload = Vec::new();
    r.take(len as u64).read_to_end(&mut payload).await?;
    if payload.len() != len {
        return Err(JobsWireError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(Some(match head[0] {
        1 => Frame::Event(
            serde_json::from_slice(&payload)
                .map_err(|e| JobsWireError::Malformed(e.to_string()))?,
        ),
        2 => Frame::Stdout(payload),
        3 => Frame::Stderr(payload),
        kind => return Err(JobsWireError::UnknownKind(kind)),
    }))
}

/// Decodes a request read whole from a stream.
pub fn decode_request(bytes: &[u8]) -> Result<JobsRequest, JobsWireError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(JobsWireError::TooLarge(bytes.len()));
    }
    serde_json::from_slice(bytes).map_err(|e| JobsWireError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_garbage_is_an_error() {
        let mut buf = Vec::new();
        let frames = [
            Frame::Stdout(b"out".to_vec()),
            Frame::Stderr(b"err".to_vec()),
            Frame::Event(JobEvent::Cancelled),
        ];
        for f in &frames {
            write_frame(&mut buf, f).await.unwrap();
        }
        let mut r = &buf[..];
        for f in &frames {
            assert_eq!(read_frame(&mut r).await.unwrap().as_ref(), Some(f));
        }
        assert!(read_frame(&mut r).await.unwrap().is_none());
        let mut cut: &[u8] = &[2, 0, 0];
        assert!(matches!(
            read_frame(&mut cut).await,
            Err(JobsWireError::Io(_))
        ));
        let mut bad: &[u8] = &[9, 0, 0, 0, 0];
        assert!(matches!(
            read_frame(&mut bad).await,
            Err(JobsWireError::UnknownKind(9))
        ));
        let mut huge: &[u8] = &[1, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut huge).await,
            Err(JobsWireError::TooLarge(_))
        ));
        assert!(decode_request(br#"{"op":"submit","doc":"x","no_cache":false,"x":1}"#).is_err());
        assert!(decode_request(br#"{"op":"launch"}"#).is_err());
    }
}
