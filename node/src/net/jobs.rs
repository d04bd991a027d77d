//! The jobs protocol on the network, ALPN `clive/jobs/1` (its format is
//! [`crate::jobs::wire`]): the executor's side, which answers `describe`,
//! takes `submit`s from peers that hold `exec` here (pulling their inputs
//! from them), streams output and results, and cancels; and the
//! requester's side, one stream per request to an executor.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use clive_cas::NoProgress;
use clive_trust::{Capability, PublicIdentity};
use iroh::{
    EndpointId,
    endpoint::{Connection, RecvStream, SendStream},
    protocol::{AcceptError, ProtocolHandler},
};

use super::{
    fetch, keeper,
    shared::{InFlightGuard, Shared},
};
use crate::jobs::{
    JobError,
    document::{JobDoc, JobId},
    executor::{Executor, Taken, result_objects},
    follow::Follow,
    records::{Requester, Side},
    wire::{
        Frame, JOBS_ALPN, JobEvent, JobsRequest, MAX_MESSAGE, Offer, decode_request, read_frame,
        write_frame,
    },
};

/// How long a peer may take to send its request.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The protocol handler of `clive/jobs/1`.
#[derive(Debug, Clone)]
pub struct JobsProtocol {
    executor: Arc<Executor>,
    shared: Weak<Shared>,
}

impl JobsProtocol {
    /// Serves `executor` on the network layer `shared`.
    pub(crate) fn new(executor: Arc<Executor>, shared: Weak<Shared>) -> JobsProtocol {
        JobsProtocol { executor, shared }
    }
}

impl ProtocolHandler for JobsProtocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let peer = conn.remote_id();
        match self.shared.upgrade() {
            Some(shared) if shared.admits(&peer) => {}
            _ => {
                conn.close(1u32.into(), b"not admitted");
                return Ok(());
            }
        }
        while let Ok((send, recv)) = conn.accept_bi().await {
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.answer(peer, send, recv).await {
                    tracing::debug!(peer = %peer.fmt_short(), "jobs stream: {e}");
                }
            });
        }
        Ok(())
    }
}

impl JobsProtocol {
    async fn answer(
        &self,
        peer: EndpointId,
        mut send: SendStream,
        recv: RecvStream,
    ) -> Result<(), String> {
        let answered = self.respond(peer, &mut send, recv).await;
        send.finish().map_err(|e| e.to_string())?;
        // Let the last frames reach the peer before the stream is dropped.
        send.stopped().await.ok();
        answered
    }

    async fn respond(
        &self,
        peer: EndpointId,
        send: &mut SendStream,
        mut recv: RecvStream,
    ) -> Result<(), String> {
        let bytes = tokio::time::timeout(REQUEST_TIMEOUT, recv.read_to_end(MAX_MESSAGE))
            .await
            .map_err(|_| "request timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let requester = Requester::Peer(PublicIdentity::from_bytes(*peer.as_bytes()));
        let request = match decode_request(&bytes) {
            Ok(request) => request,
            Err(e) => return refuse(send, e.to_string()).await,
        };
        if !matches!(request, JobsRequest::Describe)
            && let Err(why) = shared.require(&peer, Capability::Exec)
        {
            return refuse(send, why.to_string()).await;
        }
        match request {
            JobsRequest::Describe => {
                let runs = shared.require(&peer, Capability::Exec).is_ok();
                let offer = self.executor.offer(&requester, runs);
                event(send, JobEvent::Offer(offer)).await?;
            }
            JobsRequest::Submit {
                doc,
                no_cache,
                check,
            } => {
                let doc = match JobDoc::decode(doc.as_bytes()) {
                    Ok(doc) => doc,
                    Err(e) => return refuse(send, e.to_string()).await,
                };
                let id = doc.id();
                if let Err(e) = self.executor.admit(&doc, &requester) {
                    return refuse(send, e.to_string()).await;
                }
                let _inputs = match self.take_inputs(&shared, peer, &doc).await {
                    Ok(held) => held,
                    Err(why) => return refuse(send, why).await,
                };
                let signer = shared.signer.clone();
                let taken = if check {
                    self.executor.submit_check(doc, requester, signer).await
                } else {
                    self.executor.submit(doc, requester, no_cache, signer).await
                };
                match taken {
                    Err(e) => return refuse(send, e.to_string()).await,
                    Ok(Taken::Memo(signed)) => {
                        event(
                            send,
                            JobEvent::Accepted {
                                id: id.to_string(),
                                memo_hit: true,
                            },
                        )
                        .await?;
                        let follow = match self.executor.follow_result(signed, 0, 0) {
                            Ok(follow) => follow,
                            Err(e) => return refuse(send, e.to_string()).await,
                        };
                        self.stream(&shared, peer, follow, send).await?;
                    }
                    Ok(Taken::Live) => {
                        event(
                            send,
                            JobEvent::Accepted {
                                id: id.to_string(),
                                memo_hit: false,
                            },
                        )
                        .await?;
                        let follow = self.executor.follow(&id, 0, 0);
                        self.stream(&shared, peer, follow, send).await?;
                    }
                }
            }
            JobsRequest::Attach {
                id,
                stdout_from,
                stderr_from,
            } => {
                let id = match self.own_job(&requester, &id) {
                    Ok(id) => id,
                    Err(why) => return refuse(send, why).await,
                };
                if let Err(e) = self.executor.refuse_check(&id) {
                    return refuse(send, e.to_string()).await;
                }
                let follow = self.executor.follow(&id, stdout_from, stderr_from);
                self.stream(&shared, peer, follow, send).await?;
            }
            JobsRequest::Cancel { id } => {
                let id = match self.own_job(&requester, &id) {
                    Ok(id) => id,
                    Err(why) => return refuse(send, why).await,
                };
                if self.executor.cancel(&id) {
                    event(send, JobEvent::Cancelled).await?;
                } else {
                    return refuse(send, format!("job {id} is not running here")).await;
                }
            }
        }
        Ok(())
    }

    /// Makes a peer's inputs available here, held from gc until the job's
    /// record keeps them: each is fetched from the peer (which granted
    /// exactly their closure), so what a job reads is what its requester
    /// has. An input already here is taken only when the peer holds
    /// `fetch` here or sent it before: `exec` alone never reads another
    /// node's objects out of this store.
    async fn take_inputs(
        &self,
        shared: &Arc<Shared>,
        peer: EndpointId,
        doc: &JobDoc,
    ) -> Result<Vec<InFlightGuard>, String> {
        let reads_here = shared.require(&peer, Capability::Fetch).is_ok();
        let records = self.executor.records();
        let _pulling = self.executor.pull_slot().await;
        let mut held = Vec::new();
        for input in doc.inputs.values() {
            let hash = input.hash;
            held.push(shared.in_flight.hold(&shared.store, hash).await);
            let here = shared.store.has(hash).await.map_err(|e| e.to_string())?;
            if here {
                let sent = records
                    .supplied(peer.as_bytes(), &hash)
                    .map_err(|e| e.to_string())?;
                if reads_here || sent {
                    continue;
                }
                return Err(format!(
                    "input {hash}: this executor holds it from elsewhere, and you hold no fetch \
                     here; a job of yours reads only what you send it (or may fetch here)"
                ));
            }
            fetch::get(shared, hash, vec![peer], Arc::new(NoProgress))
                .await
                .map_err(|e| format!("fetching input {hash} from you: {e}"))?;
            records
                .record_supplied(peer.as_bytes(), &hash)
                .map_err(|e| e.to_string())?;
        }
        Ok(held)
    }

    /// The id of a job `requester` submitted here.
    fn own_job(&self, requester: &Requester, id: &str) -> Result<JobId, String> {
        let id: JobId = id
            .parse()
            .map_err(|e: crate::jobs::document::DocError| e.to_string())?;
        let Requester::Peer(key) = requester else {
            return Err("not a peer".into());
        };
        match self.executor.records().get(Side::Run, &id) {
            Ok(Some(record)) if record.peer == key.openssh_line() => Ok(id),
            Ok(_) => Err(format!("you submitted no job {id} here")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Streams `follow` to the peer; before its result, lets the peer
    /// fetch the result's objects.
    async fn stream(
        &self,
        shared: &Arc<Shared>,
        peer: EndpointId,
        mut follow: Follow,
        send: &mut SendStream,
    ) -> Result<(), String> {
        while let Some(frame) = follow.next().await.map_err(|e| e.to_string())? {
            if let Frame::Event(JobEvent::Done { result }) = &frame {
                let mut objects = Vec::new();
                for root in result_objects(result).map_err(|e| e.to_string())? {
                    objects.extend(
                        fetch::closure(shared, root)
                            .await
                            .map_err(|e| e.to_string())?,
                    );
                }
                fetch::grant(shared, peer, &objects);
            }
            write_frame(send, &frame).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

async fn event(send: &mut SendStream, event: JobEvent) -> Result<(), String> {
    write_frame(send, &Frame::Event(event))
        .await
        .map_err(|e| e.to_string())
}

async fn refuse(send: &mut SendStream, reason: String) -> Result<(), String> {
    event(send, JobEvent::Refused { reason }).await?;
    Ok(())
}

// The requester's side.

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
            .map_err(|e| failed(e.to_string()))?;
    }
    let conn = keeper::dial(shared, peer, JOBS_ALPN)
        .await
        .map_err(|e| failed(e.to_string()))?;
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
    id: &JobId,
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
