//! Giving freed memory back to the system after a large piece of work.
//!
//! glibc's allocator keeps one arena per thread that allocated, and keeps
//! what is freed in each for reuse: after a folder of 100,000 files was
//! read on a walker's and a runtime's threads, the daemon's resident size
//! stays at its peak long after the work is done. `malloc_trim` hands the
//! free pages of every arena back (other allocators return them by
//! themselves; there this is nothing).

/// Returns the allocator's free pages to the system.
pub(crate) fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
