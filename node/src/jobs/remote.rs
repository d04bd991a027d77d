//! The requester's side of the jobs protocol ([`super::wire`]): one stream
//! per request to an executor.

use std::{sync::Arc, time::Duration};

use iroh::{
    EndpointId,
    endpoint::{RecvStream, SendStream},
};

use super::{
    JobError,
    wire::{Frame, JOBS_ALPN, JobEvent, JobsRequest, Offer, read_frame},
};
use crate::net::{keeper, shared::Shared};

/// How long an executor may take to say what it offers.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// An executor's answer, frame by frame.
pub struct RemoteStream {
    _send: SendStream,
    recv: RecvStream,
    peer: EndpointId,
}

impl RemoteStream {
    /// The next frame; `None` once the executor finished its side.
    pub async fn next(&mut self) -> Result<Option<Frame>, JobError> {
        read_frame(&mut self.recv)
            .await
            .map_err(|e| self.failed(e.to_string()))
    }

    /// An error of this executor.
    pub fn failed(&self, reason: String) -> JobError {
        JobError::Executor {
            peer: self.peer.fmt_short().to_string(),
            reason,
        }
    }
}

/// Sends `request` to `peer` on a stream of its own (dialling the jobs
/// protocol, after the peer protocol's hello when not connected yet).
pub(crate) async fn open(
    shared: &Arc<Shared>,
    peer: EndpointId,
    request: &JobsRequest,
) -> Result<RemoteStream, JobError> {
    let failed = |reason: String| JobError::Executor {
        peer: peer.fmt_short().to_string(),
        reason,
    };
    if !shared.is_connected(&peer) {
        keeper::connect(shared, peer)
            .await
            .map_err(|e| failed(crate::api::error_chain(&e)))?;
    }
    let conn = keeper::dial(shared, peer, JOBS_ALPN)
        .await
        .map_err(|e| failed(crate::api::error_chain(&e)))?;
    let (mut send, recv) = conn.open_bi().await.map_err(|e| failed(e.to_string()))?;
    let bytes = serde_json::to_vec(request).map_err(|e| failed(e.to_string()))?;
    send.write_all(&bytes)
        .await
        .map_err(|e| failed(e.to_string()))?;
    send.finish().map_err(|e| failed(e.to_string()))?;
    Ok(RemoteStream {
        _send: send,
        recv,
        peer,
    })
}

/// Asks `peer` to kill the job `id` this node sent it, and waits for its answer.
pub(crate) async fn cancel(
    shared: &Arc<Shared>,
    peer: EndpointId,
    id: &super::document::JobId,
) -> Result<(), JobError> {
    let request = JobsRequest::Cancel { id: id.to_string() };
    let mut stream = open(shared, peer, &request).await?;
    match stream.next().await? {
        Some(Frame::Event(JobEvent::Cancelled)) => Ok(()),
        Some(Frame::Event(JobEvent::Refused { reason })) => Err(stream.failed(reason)),
        other => Err(stream.failed(format!("answered cancel with {other:?}"))),
    }
}

/// What `peer` offers this node, within [`DESCRIBE_TIMEOUT`].
pub(crate) async fn describe(shared: &Arc<Shared>, peer: EndpointId) -> Result<Offer, JobError> {
    let asked = async {
        let mut stream = open(shared, peer, &JobsRequest::Describe).await?;
        match stream.next().await? {
            Some(Frame::Event(JobEvent::Offer(offer))) => Ok(offer),
            Some(Frame::Event(JobEvent::Refused { reason })) => Err(stream.failed(reason)),
            other => Err(stream.failed(format!("answered describe with {other:?}"))),
        }
    };
    tokio::time::timeout(DESCRIBE_TIMEOUT, asked)
        .await
        .map_err(|_| JobError::Executor {
            peer: peer.fmt_short().to_string(),
            reason: format!("no answer within {} s", DESCRIBE_TIMEOUT.as_secs()),
        })?
}
