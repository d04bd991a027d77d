//! Jobs sent to a peer: choosing the executor (`--on`), sending the job
//! document, relaying the executor's stream (kept as this node's copy of
//! the output), and taking in its signed result.

use std::sync::Arc;

use clive_cas::NoProgress;
use clive_trust::{PublicIdentity, clock::format_time};
use iroh::EndpointId;

use super::{
    JobRun, JobsHandle, Stream, copy::LogCopy, executor_of, log_limit, on_cancel, write_frame_out,
};
use crate::{
    NodeError,
    jobs::{
        JobError,
        document::{JobDoc, JobId},
        platform::{Platform, Requirements, Target},
        records::{JobRecord, JobState, RECORD_VERSION, RecordError, Records, Side},
        result::SignedResult,
        wire::{Frame, JobEvent, JobsRequest},
    },
    net::{
        fetch,
        jobs::{self as remote, RemoteStream},
        shared::Shared,
    },
};

impl JobsHandle<'_> {
    /// The peer `target` picks for `doc`: a named peer, or the least
    /// loaded connected peer that runs jobs for this node and meets the
    /// job's platform and sandbox level.
    pub(super) async fn choose(
        &self,
        shared: &Arc<Shared>,
        doc: &JobDoc,
        target: &Target,
    ) -> Result<EndpointId, NodeError> {
        if let Target::Peer(key) = target {
            let key = self.node.trust().resolve_key(key)?;
            return crate::net::endpoint_id(&key.bytes());
        }
        // The connected peers (a daemon keeps every reachable one
        // connected); without any, every known peer, dialled now.
        let connected: Vec<EndpointId> = shared.conns_snapshot();
        let peers = if connected.is_empty() {
            crate::net::state::peers(&shared.db)
                .map_err(NodeError::from)?
                .into_iter()
                .filter_map(|(id, _)| EndpointId::from_bytes(&id).ok())
                .collect()
        } else {
            connected
        };
        let asked = futures_join_all(shared, peers).await;
        let mut offers = Vec::new();
        let mut seen = Vec::new();
        for (peer, offer) in asked {
            match offer {
                Ok(offer) => {
                    seen.push(format!(
                        "{} {}/{}{}",
                        peer.fmt_short(),
                        offer.platform.os,
                        offer.platform.arch,
                        if offer.runs_for_you {
                            ""
                        } else {
                            " (does not run jobs for this node)"
                        }
                    ));
                    if offer.runs_for_you {
                        offers.push((peer, offer));
                    }
                }
                Err(e) => seen.push(format!("{} ({e})", peer.fmt_short())),
            }
        }
        let fits = |o: &crate::jobs::wire::Offer| {
            doc.platform.unmet(&o.platform).is_empty()
                && o.platform.sandbox.contains(&doc.sandbox.max(o.min_sandbox))
        };
        if let Some((peer, _)) = offers
            .iter()
            .filter(|(_, o)| fits(o))
            .min_by(|(_, a), (_, b)| a.load().total_cmp(&b.load()))
        {
            return Ok(*peer);
        }
        let unmet = unmet_by_all(&doc.platform, offers.iter().map(|(_, o)| &o.platform));
        let what = if unmet.is_empty() {
            format!("sandbox level {}", doc.sandbox)
        } else {
            unmet.join(",")
        };
        let asked = if seen.is_empty() {
            "this node knows no peer: join one with `clive-node join`".to_owned()
        } else {
            format!("asked: {}", seen.join("; "))
        };
        Err(JobError::NoMatch(format!(
            "no peer that runs jobs for this node meets {what} ({asked})"
        ))
        .into())
    }

    /// Sends `doc` to `peer` and streams it to its end. A `check` (`job
    /// run --check`) runs it again and leaves the memo and the job's
    /// record, here and on the executor, as they were.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send(
        &self,
        shared: &Arc<Shared>,
        peer: EndpointId,
        doc: JobDoc,
        roots: clive_cas::RootsHold,
        no_cache: bool,
        check: bool,
        stream: Stream<'_>,
    ) -> Result<JobRun, NodeError> {
        let id = doc.id();
        let records = self.node.executor().records().clone();
        let prior = if check {
            Some(records.get(Side::Sent, &id).map_err(JobError::from)?)
        } else {
            None
        };
        let mut grants = Vec::new();
        for input in doc.inputs.values() {
            grants.extend(fetch::closure(shared, input.hash).await?);
        }
        fetch::grant(shared, peer, &grants);
        let record = JobRecord {
            version: RECORD_VERSION,
            id,
            doc: String::from_utf8_lossy(&doc.encode()).into_owned(),
            peer: PublicIdentity::from_bytes(*peer.as_bytes()).openssh_line(),
            state: JobState::Queued,
            submitted: format_time(self.node.now()),
            reason: None,
            result: None,
            memo_hit: false,
            inputs: doc.inputs.values().map(|i| i.hash).collect(),
            device: false,
            outputs_pending: false,
        };
        let Some(prior) = prior else {
            records.put(Side::Sent, &record).map_err(JobError::from)?;
            // The record keeps the inputs from gc now.
            drop(roots);
            let copy = self.sent_dir(&id);
            let _ = tokio::fs::remove_dir_all(&copy).await;
            let request = JobsRequest::Submit {
                doc: record.doc.clone(),
                no_cache,
                check: false,
            };
            let remote = remote::open(shared, peer, &request).await?;
            return self
                .relay(shared, &record, remote, [0, 0], false, stream)
                .await;
        };
        // A check keeps its inputs held itself (the record it wrote goes
        // back to what it was, even if this call is dropped), and leaves
        // the copy of the output alone.
        records
            .put_check(Side::Sent, &record, prior.as_ref())
            .map_err(JobError::from)?;
        let restore = Restore {
            records: records.clone(),
            id,
            prior,
            done: false,
        };
        let request = JobsRequest::Submit {
            doc: record.doc.clone(),
            no_cache: true,
            check: true,
        };
        let ran = match remote::open(shared, peer, &request).await {
            Ok(remote) => {
                self.relay(shared, &record, remote, [0, 0], true, stream)
                    .await
            }
            Err(e) => Err(e.into()),
        };
        restore.now().map_err(JobError::from)?;
        drop(roots);
        ran
    }

    /// Relays an executor's stream: output to the caller (from `print_from`)
    /// and to this node's copy (not for a `check`); then the result, whose
    /// objects it fetches.
    pub(super) async fn relay(
        &self,
        shared: &Arc<Shared>,
        sent: &JobRecord,
        mut remote: RemoteStream,
        print_from: [u64; 2],
        check: bool,
        mut stream: Stream<'_>,
    ) -> Result<JobRun, NodeError> {
        let (id, peer, log_limit) = (sent.id, executor_of(sent)?, log_limit(sent));
        let records = self.node.executor().records().clone();
        let mut copy = if check {
            LogCopy::scratch()
        } else {
            LogCopy::open(&self.sent_dir(&id)).await?
        };
        let mut printed = print_from;
        let mut memo_hit = false;
        let canceller = shared.clone();
        let _watch = on_cancel(stream.cancel.clone(), async move {
            tracing::info!(%id, "cancelling the job on its executor");
            if let Err(e) = remote::cancel(&canceller, peer, &id).await {
                tracing::warn!("cancelling job {id}: {e}");
            }
        });
        loop {
            let frame = remote.next().await?;
            match frame {
                Some(Frame::Event(JobEvent::Accepted { memo_hit: hit, .. })) => {
                    memo_hit = hit;
                    let _ = records.update(Side::Sent, &id, |r| {
                        r.state = JobState::Running;
                        r.memo_hit = hit;
                    });
                }
                Some(Frame::Event(JobEvent::Done { result })) => {
                    return self
                        .received(shared, peer, id, result, memo_hit, check)
                        .await;
                }
                Some(Frame::Event(JobEvent::Failed { reason } | JobEvent::Refused { reason })) => {
                    let _ = records.update(Side::Sent, &id, |r| {
                        r.state = JobState::Failed;
                        r.reason = Some(reason.clone());
                    });
                    return Err(remote.failed(reason).into());
                }
                Some(Frame::Event(other)) => {
                    return Err(remote.failed(format!("sent {other:?} during a job")).into());
                }
                Some(frame) => {
                    let stream_no = usize::from(matches!(frame, Frame::Stderr(_)));
                    let bytes = match &frame {
                        Frame::Stdout(b) | Frame::Stderr(b) => b,
                        Frame::Event(_) => continue,
                    };
                    let at = copy.append(stream_no, bytes).await?;
                    if at > log_limit {
                        return Err(remote
                            .failed(format!(
                                "sent more than the job's log limit of {log_limit} bytes"
                            ))
                            .into());
                    }
                    // Print only what lies past where the caller stopped.
                    let start = at.saturating_sub(bytes.len() as u64);
                    let skip = printed[stream_no].saturating_sub(start) as usize;
                    if skip < bytes.len() {
                        let part = &bytes[skip..];
                        let frame = Frame::output(stream_no, part.to_vec());
                        write_frame_out(&mut stream.out, &frame).await?;
                        printed[stream_no] = at;
                    }
                }
                None if check => {
                    return Err(remote
                        .failed("the connection ended before the check did".to_owned())
                        .into());
                }
                None => {
                    return Err(remote
                        .failed(format!(
                            "the connection ended before the job did; \
                             `clive-node job attach {id}` resumes it"
                        ))
                        .into());
                }
            }
        }
    }

    /// A result received from `peer`: checked (signed by that executor,
    /// for this job), its objects fetched, memoized and recorded; for a
    /// `check`, only its outputs are fetched (to compare), and nothing
    /// keeps them.
    pub(crate) async fn received(
        &self,
        shared: &Arc<Shared>,
        peer: EndpointId,
        id: JobId,
        signed: SignedResult,
        memo_hit: bool,
        check: bool,
    ) -> Result<JobRun, NodeError> {
        let (result, signer) = signed.verify().map_err(JobError::from)?;
        if &signer.bytes() != peer.as_bytes() || result.job != id {
            return Err(JobError::Executor {
                peer: peer.fmt_short().to_string(),
                reason: "sent a result not signed by itself for this job".into(),
            }
            .into());
        }
        if check {
            fetch::get(shared, result.outputs, vec![peer], Arc::new(NoProgress)).await?;
            return Ok(JobRun {
                id,
                executor: signer.openssh_line(),
                memo_hit,
                result,
                written: None,
            });
        }
        // Recorded first, so that gc keeps what is fetched next.
        let executor = self.node.executor();
        executor
            .records()
            .update(Side::Sent, &id, |r| {
                r.state = JobState::Done;
                r.result = Some(signed.clone());
                r.outputs_pending = true;
            })
            .map_err(JobError::from)?;
        for hash in [result.outputs, result.stdout, result.stderr] {
            fetch::get(shared, hash, vec![peer], Arc::new(NoProgress)).await?;
        }
        executor
            .records()
            .update(Side::Sent, &id, |r| r.outputs_pending = false)
            .map_err(JobError::from)?;
        // Kept as a result, a memo hit here only if its signer holds attest.
        executor.memo().put(&signed).map_err(JobError::from)?;
        Ok(JobRun {
            id,
            executor: signer.openssh_line(),
            memo_hit,
            result,
            written: None,
        })
    }
}

/// Each requirement of `wanted` that none of `platforms` meets.
fn unmet_by_all<'p>(
    wanted: &Requirements,
    platforms: impl Iterator<Item = &'p Platform>,
) -> Vec<String> {
    let mut unmet: Option<Vec<String>> = None;
    for p in platforms {
        let this = wanted.unmet(p);
        unmet = Some(match unmet {
            None => this,
            Some(before) => before.into_iter().filter(|r| this.contains(r)).collect(),
        });
    }
    unmet.unwrap_or_else(|| {
        let nothing = Platform {
            os: String::new(),
            arch: String::new(),
            cores: 0,
            features: Vec::new(),
            sandbox: Vec::new(),
        };
        wanted.unmet(&nothing)
    })
}

/// Asks every peer what it offers, all at once.
async fn futures_join_all(
    shared: &Arc<Shared>,
    peers: Vec<EndpointId>,
) -> Vec<(EndpointId, Result<crate::jobs::wire::Offer, JobError>)> {
    let mut set = tokio::task::JoinSet::new();
    for peer in peers {
        let shared = shared.clone();
        set.spawn(async move { (peer, remote::describe(&shared, peer).await) });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(answer) = joined {
            out.push(answer);
        }
    }
    out
}

/// Puts back the sent record a remote check replaced, when the check ends
/// or when its call is dropped (the caller left, the node is closing).
struct Restore {
    records: Records,
    id: JobId,
    prior: Option<JobRecord>,
    done: bool,
}

impl Restore {
    /// Puts it back now, saying whether that worked.
    fn now(mut self) -> Result<(), RecordError> {
        self.done = true;
        self.records
            .restore(Side::Sent, &self.id, self.prior.as_ref())
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Err(e) = self
            .records
            .restore(Side::Sent, &self.id, self.prior.as_ref())
        {
            tracing::warn!(
                "putting back the record of job {} after its check: {e}",
                self.id
            );
        }
    }
}
