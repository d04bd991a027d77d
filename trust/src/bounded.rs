//! Reading a file named by a path, bounded by what is read.
//!
//! A size from `stat` says nothing about what a read returns (`/dev/zero`,
//! files in `/proc`, a file growing as it is read), so every read of a path
//! given by a user or found in a home stops one byte past its limit and
//! refuses the file if it got that far.

use std::{
    io::{self, Read},
    path::{Path, PathBuf},
};

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file does not exist.
    #[error("{path}: no such file")]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The path names a directory.
    #[error("{path} is a directory, not a file")]
    IsDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// The file holds more than the limit.
    #[error(
        "{path} is larger than {limit} bytes, more than such a file can hold: refusing to read it"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{path} is not UTF-8 text")]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// Opening or reading failed.
    #[error("reading {path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
}

impl ReadError {
    /// The file the read was of.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::NotFound { path }
            | ReadError::IsDirectory { path }
            | ReadError::TooLarge { path, .. }
            | ReadError::NotText { path }
            | ReadError::Io { path, .. } => path,
        }
    }
}

impl From<ReadError> for io::Error {
    /// For callers whose errors are [`io::Error`]s: the cause of a failed
    /// read as it was, else the refusal with its message.
    fn from(e: ReadError) -> io::Error {
        let kind = match e {
            ReadError::Io { cause, .. } => return cause,
            ReadError::NotFound { .. } => io::ErrorKind::NotFound,
            ReadError::IsDirectory { .. } => io::ErrorKind::IsADirectory,
            ReadError::TooLarge { .. } => io::ErrorKind::FileTooLarge,
            ReadError::NotText { .. } => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e.to_string())
    }
}

/// Reads all of `path`, refusing it once it yields more than `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    read_bounded_into(path, limit, &mut buf)?;
    Ok(buf)
}

/// [`read_bounded`], with `None` when `path` does not exist.
pub fn read_bounded_if_exists(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, ReadError> {
    match read_bounded(path, limit) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(ReadError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads all of `path` as UTF-8 text, refusing it once it yields more than
/// `limit` bytes.
pub fn read_bounded_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_bounded(path, limit)?).map_err(|_| ReadError::NotText {
        path: path.to_owned(),
    })
}

/// Appends all of `path` to `buf` (which the caller may have made to wipe
/// itself, for secrets), refusing it once it yields more than `limit` bytes.
pub fn read_bounded_into(path: &Path, limit: u64, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    let io = |cause: io::Error| match cause.kind() {
        io::ErrorKind::NotFound => ReadError::NotFound {
            path: path.to_owned(),
        },
        io::ErrorKind::IsADirectory => ReadError::IsDirectory {
            path: path.to_owned(),
        },
        _ => ReadError::Io {
            path: path.to_owned(),
            cause,
        },
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // Whether it is a directory, not how long it is: reading one fails
    // anyway, but the message is clearer.
    if file.metadata().map_err(io)?.is_dir() {
        return Err(ReadError::IsDirectory {
            path: path.to_owned(),
        });
    }
    let start = buf.len();
    file.take(limit.saturating_add(1))
        .read_to_end(buf)
        .map_err(io)?;
    if (buf.len() - start) as u64 > limit {
        buf.truncate(start);
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_one_byte_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_bounded(&path, 5).unwrap(), b"12345");
        assert!(matches!(
            read_bounded(&path, 4),
            Err(ReadError::TooLarge { limit: 4, .. })
        ));
        assert!(matches!(
            read_bounded(&dir.path().join("nope"), 4),
            Err(ReadError::NotFound { .. })
        ));
        assert!(matches!(
            read_bounded(dir.path(), 4),
            Err(ReadError::IsDirectory { .. })
        ));
    }

    #[test]
    fn a_missing_file_is_none_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(read_bounded_if_exists(&path, 4).unwrap().is_none());
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_bounded_if_exists(&path, 5).unwrap().unwrap(), b"12345");
        let refused = read_bounded_if_exists(&path, 4).unwrap_err();
        assert!(matches!(refused, ReadError::TooLarge { limit: 4, .. }));
        let as_io = io::Error::from(refused);
        assert_eq!(as_io.kind(), io::ErrorKind::FileTooLarge);
        assert!(as_io.to_string().contains("larger than 4 bytes"), "{as_io}");
    }

    #[test]
    fn an_endless_file_is_refused_after_the_limit() {
        let err = read_bounded(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { limit: 1024, .. }),
            "{err}"
        );
    }
}
