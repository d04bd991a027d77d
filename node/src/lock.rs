//! One process owns a home at a time.
//!
//! The owner holds an exclusive `flock` on `HOME/lock`, which the kernel
//! releases when the process ends however it ends (even SIGKILL), and writes
//! its process id there so that others can say who holds it.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, Write},
    path::PathBuf,
};

use crate::{Home, NodeError};

/// Exclusive ownership of a home, released on drop.
#[derive(Debug)]
pub struct HomeLock {
    _file: File,
}

impl HomeLock {
    /// Takes the home, or says which process holds it.
    pub fn acquire(home: &Home) -> Result<Self, NodeError> {
        let path = home.lock_path();
        let io = |e| NodeError::io(format!("opening {}", path.display()), e);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // A process id: a few digits, whatever else the file holds.
                let mut text = String::new();
                let _ = Read::take(&file, 64).read_to_string(&mut text);
                let pid = text.trim().parse::<u32>().ok();
                return Err(NodeError::HomeInUse {
                    home: home.root().to_owned(),
                    pid,
                    command: pid.and_then(command_of),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(HomeLock { _file: file })
    }
}

/// The command line of a process, for messages.
fn command_of(pid: u32) -> Option<String> {
    let raw = clive_trust::read_bounded(&PathBuf::from(format!("/proc/{pid}/cmdline")), 64 * 1024)
        .ok()?;
    let words: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}
