//! This node's copy of a sent job's output (`HOME/jobs/sent/ID/{stdout,stderr}`),
//! kept as it arrives: what `job logs` prints and where `job attach`
//! resumes the executor's stream from.

use std::path::Path;

use tokio::io::AsyncWriteExt;

use crate::NodeError;

/// This node's copy of a sent job's output.
pub(super) struct LogCopy {
    /// None for a copy that only counts ([`LogCopy::scratch`]).
    files: Option<[tokio::fs::File; 2]>,
    len: [u64; 2],
}

const LOG_NAMES: [&str; 2] = ["stdout", "stderr"];

impl LogCopy {
    /// Opens (creating) the copy in `dir`, to append to.
    pub(super) async fn open(dir: &Path) -> Result<LogCopy, NodeError> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| NodeError::io(format!("creating {}", dir.display()), e))?;
        let mut files = Vec::new();
        let mut len = [0u64; 2];
        for (i, name) in LOG_NAMES.iter().enumerate() {
            let path = dir.join(name);
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .await
                .map_err(|e| NodeError::io(format!("opening {}", path.display()), e))?;
            len[i] = file
                .metadata()
                .await
                .map_err(|e| NodeError::io(format!("reading {}", path.display()), e))?
                .len();
            files.push(file);
        }
        let [a, b]: [tokio::fs::File; 2] = files
            .try_into()
            .map_err(|_| NodeError::io("opening a job's logs", std::io::ErrorKind::Other.into()))?;
        Ok(LogCopy {
            files: Some([a, b]),
            len,
        })
    }

    /// A copy that keeps nothing and only counts what it is given: for a
    /// reproducibility check, whose output is not the job's.
    pub(super) fn scratch() -> LogCopy {
        LogCopy {
            files: None,
            len: [0; 2],
        }
    }

    /// Appends `bytes` to one stream's copy; its new length.
    pub(super) async fn append(&mut self, stream: usize, bytes: &[u8]) -> Result<u64, NodeError> {
        if let Some(files) = &mut self.files {
            files[stream]
                .write_all(bytes)
                .await
                .map_err(|e| NodeError::io("keeping a job's output", e))?;
        }
        self.len[stream] += bytes.len() as u64;
        Ok(self.len[stream])
    }

    /// The length of each stream's copy in `dir` (0 when there is none).
    pub(super) async fn lengths(dir: &Path) -> [u64; 2] {
        let mut len = [0u64; 2];
        for (i, name) in LOG_NAMES.iter().enumerate() {
            len[i] = tokio::fs::metadata(dir.join(name))
                .await
                .map(|m| m.len())
                .unwrap_or(0);
        }
        len
    }

    /// One stream's copy in `dir` from byte `from`.
    pub(super) async fn read(dir: &Path, stream: usize, from: u64) -> Result<Vec<u8>, NodeError> {
        let path = dir.join(LOG_NAMES[stream]);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| NodeError::io(format!("reading {}", path.display()), e))?;
        Ok(bytes.get(from as usize..).unwrap_or_default().to_vec())
    }
}
