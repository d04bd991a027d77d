//! Progress bars on a terminal, nothing elsewhere.

use std::io::IsTerminal;

use clive_node::cas::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Work below this size finishes too fast to deserve a bar.
const MIN_BAR_BYTES: u64 = 32 * 1024 * 1024;

/// A byte progress bar on standard error, shown only on a terminal and only
/// for large work.
pub struct Bar {
    bar: ProgressBar,
    enabled: bool,
}

impl Bar {
    /// A bar labelled `verb` (for example "adding").
    pub fn new(verb: &'static str, quiet: bool) -> Self {
        let bar = ProgressBar::hidden();
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(verb);
        Bar {
            bar,
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }
}

impl Progress for Bar {
    fn set_total(&self, bytes: u64) {
        self.bar.set_length(bytes);
        if self.enabled && bytes >= MIN_BAR_BYTES {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
