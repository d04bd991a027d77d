//! Following one job's output from given byte offsets: live from its log
//! files while it runs, from its result's objects once it has ended, then
//! its ending. What `exec` prints, `attach` resumes and the jobs protocol
//! streams.

use std::{path::PathBuf, sync::Arc};

use clive_cas::Store;
use tokio::{
    io::{AsyncReadExt, AsyncSeekExt},
    sync::watch,
};

use super::{
    JobError,
    document::JobId,
    process::LogLen,
    records::{JobRecord, Records, Requester, Side},
    result::SignedResult,
    wire::{Frame, JobEvent, LOG_CHUNK},
};

/// How a job ended, as followers learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It ran (or was cancelled or timed out while running): its result.
    Done(SignedResult),
    /// It could not run.
    Failed(String),
}

/// A job under way: its logs, and how to stop it.
#[derive(Debug)]
pub struct Live {
    pub(super) logs: watch::Receiver<LogLen>,
    pub(super) cancel: watch::Sender<bool>,
    pub(super) ending: watch::Sender<Option<Ending>>,
    pub(super) stdout: PathBuf,
    pub(super) stderr: PathBuf,
    pub(super) requester: Requester,
    /// Whether it is a reproducibility check (whose result is not memoized).
    pub(super) check: bool,
}

/// The output of one job from given offsets, live while it runs, then its
/// ending: what `exec` prints and `attach` resumes.
pub struct Follow {
    id: JobId,
    live: Option<Arc<Live>>,
    known: Option<SignedResult>,
    at: [u64; 2],
    done: bool,
    finished: Option<(Vec<u8>, Vec<u8>)>,
    store: Store,
    records: Records,
}

impl Follow {
    /// The output of job `id` from the offsets `at`: live from `live`
    /// while it runs, else from the result `known` or the job's record.
    pub(super) fn new(
        id: JobId,
        live: Option<Arc<Live>>,
        known: Option<SignedResult>,
        at: [u64; 2],
        store: Store,
        records: Records,
    ) -> Follow {
        Follow {
            id,
            live,
            known,
            at,
            done: false,
            finished: None,
            store,
            records,
        }
    }

    /// The next frame; `None` after the ending.
    pub async fn next(&mut self) -> Result<Option<Frame>, JobError> {
        if self.done {
            return Ok(None);
        }
        let Some(live) = self.live.clone() else {
            return self.next_finished().await;
        };
        let mut logs = live.logs.clone();
        let mut ending = live.ending.subscribe();
        loop {
            // Once the job has ended its logs are objects (and its run
            // directory goes): the rest comes from the store.
            let end = ending.borrow_and_update().clone();
            match end {
                Some(Ending::Done(result)) => {
                    self.live = None;
                    self.known = Some(result);
                    return self.next_finished().await;
                }
                Some(Ending::Failed(reason)) => {
                    self.done = true;
                    return Ok(Some(Frame::Event(JobEvent::Failed { reason })));
                }
                None => {}
            }
            let lens = *logs.borrow_and_update();
            for (stream, (path, len)) in [(&live.stdout, lens.stdout), (&live.stderr, lens.stderr)]
                .into_iter()
                .enumerate()
            {
                if len > self.at[stream] {
                    let bytes = read_range(path, self.at[stream], len).await?;
                    self.at[stream] += bytes.len() as u64;
                    return Ok(Some(Frame::output(stream, bytes)));
                }
            }
            tokio::select! {
                _ = logs.changed() => {}
                _ = ending.changed() => {}
            }
        }
    }

    /// A job that is no longer under way: its logs from the store, then
    /// its result (or why it has none).
    async fn next_finished(&mut self) -> Result<Option<Frame>, JobError> {
        let signed = match &self.known {
            Some(signed) => signed.clone(),
            None => {
                let record = self.records.get(Side::Run, &self.id)?;
                match record {
                    Some(JobRecord {
                        result: Some(signed),
                        ..
                    }) => signed,
                    Some(record) => {
                        self.done = true;
                        let reason = record
                            .reason
                            .unwrap_or_else(|| format!("the job is {}", record.state.as_str()));
                        return Ok(Some(Frame::Event(JobEvent::Failed { reason })));
                    }
                    None => {
                        self.done = true;
                        return Ok(Some(Frame::Event(JobEvent::Failed {
                            reason: format!("no job {} here", self.id),
                        })));
                    }
                }
            }
        };
        if self.finished.is_none() {
            let (result, _) = signed.verify()?;
            let out = self.log(result.stdout).await?;
            let err = self.log(result.stderr).await?;
            self.finished = Some((out, err));
        }
        let Some((out, err)) = &self.finished else {
            return Ok(None);
        };
        for (stream, bytes) in [out, err].into_iter().enumerate() {
            let at = (self.at[stream] as usize).min(bytes.len());
            if at < bytes.len() {
                let end = (at + LOG_CHUNK).min(bytes.len());
                self.at[stream] = end as u64;
                let chunk = bytes[at..end].to_vec();
                return Ok(Some(Frame::output(stream, chunk)));
            }
        }
        self.done = true;
        Ok(Some(Frame::Event(JobEvent::Done { result: signed })))
    }

    /// The bytes of a stored log; an empty one (most steps of a pipeline
    /// print nothing) is known by its hash and not read.
    async fn log(&self, hash: clive_cas::Hash) -> Result<Vec<u8>, JobError> {
        if hash == clive_cas::Hash::EMPTY {
            return Ok(Vec::new());
        }
        let bytes = self.store.read_bytes(hash).await.map_err(JobError::Store)?;
        Ok(bytes.to_vec())
    }
}

/// Bytes `from..to` of a log file (at most one chunk).
pub(super) async fn read_range(
    path: &std::path::Path,
    from: u64,
    to: u64,
) -> Result<Vec<u8>, JobError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| JobError::io(format!("opening {}", path.display()), e))?;
    file.seek(std::io::SeekFrom::Start(from))
        .await
        .map_err(|e| JobError::io(format!("reading {}", path.display()), e))?;
    let want = (to - from).min(LOG_CHUNK as u64);
    let mut buf = Vec::with_capacity(want as usize);
    (&mut file)
        .take(want)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| JobError::io(format!("reading {}", path.display()), e))?;
    Ok(buf)
}
