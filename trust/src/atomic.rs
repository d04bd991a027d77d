//! Replacing a file's contents all at once.
//!
//! The bytes go to a new temporary file beside the target, which is synced
//! and renamed over it, and then the directory is synced: a reader sees the
//! old file or the new one, never part of either, and once the call
//! returns the new one survives a crash.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

/// How many temporary names are tried before giving up (each taken by an
/// earlier write of this process that died half-way, say).
const TEMP_NAMES: u32 = 1000;

/// Writes `data` to `path`, replacing what was there, atomically and
/// durably (see the module documentation). On failure `path` is as it was
/// and the temporary file is gone.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.file().write_all(data)?;
    file.commit()
}

/// A replacement of a file's contents written piece by piece (streamed
/// there, say), then put in place at once by [`AtomicFile::commit`], as
/// [`write_atomic`] does. Dropped without a commit, it removes its
/// temporary file and leaves the target as it was.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    dir: PathBuf,
    file: File,
    committed: bool,
}

impl AtomicFile {
    /// A new temporary file beside `path`, to be written to and committed.
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} does not name a file", path.display()),
            )
        })?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = name.to_string_lossy();
        let mut n = 0;
        loop {
            let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    return Ok(AtomicFile {
                        target: path.to_owned(),
                        temp,
                        dir: dir.to_owned(),
                        file,
                        committed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < TEMP_NAMES => n += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The temporary file, to write the new contents to.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Syncs what was written and renames it over the target, then syncs
    /// the directory. On failure the target is as it was and the temporary
    /// file is gone.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        sync_dir(&self.dir)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened to sync them here; the rename is as durable
/// as the platform makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"old").unwrap();
        // A directory where the file should go: the rename fails.
        let blocked = dir.path().join("d");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inside"), b"x").unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert!(write_atomic(&dir.path().join("missing/f"), b"new").is_err());
        assert!(write_atomic(Path::new("/"), b"new").is_err());
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["d", "f"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }

    #[test]
    fn a_streamed_replacement_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"old").unwrap();
        let mut file = AtomicFile::create(&path).unwrap();
        file.file().write_all(b"new, ").unwrap();
        file.file().write_all(b"in pieces").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        file.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new, in pieces");
        let abandoned = AtomicFile::create(&path).unwrap();
        drop(abandoned);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"new, in pieces");
    }
}
