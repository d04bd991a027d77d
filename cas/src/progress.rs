//! Progress reporting for long operations (import, export, fsck).

/// Receives progress of a long operation, in bytes of content.
///
/// The command-line tool draws a bar from it; the default does nothing.
pub trait Progress: Send + Sync {
    /// The total amount of work, once known.
    fn set_total(&self, _bytes: u64) {}
    /// `bytes` more of the work are done.
    fn advance(&self, _bytes: u64) {}
}

/// Progress that is not shown.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
