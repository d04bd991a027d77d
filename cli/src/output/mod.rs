//! Printing results: text for people, `--json` for scripts.
//!
//! Every reply prints through [`Render`]: its text form is the trait's one
//! method, its JSON form is its serde form, printed by [`Out::show`] for
//! all of them. Each concern's replies print in one file, beside the
//! renderings of what they carry: `node.rs` (`id`, `status`, `stop`, and
//! the tool's own `init` and `start`), `store.rs`, `trust.rs`, `peers.rs`,
//! `names.rs`, `jobs.rs` and `sync.rs`. Each has a `reply` function matching every variant of
//! its concern's reply enum without a catch-all, so a reply that cannot be
//! printed does not compile.

use std::io::{self, Write};

mod jobs;
mod names;
mod node;
mod peers;
mod store;
mod sync;
mod trust;

use anyhow::Result;
use clive_node::{AddResult, Reply};
use serde::Serialize;

/// How a result prints as text; as JSON it is its serde form.
pub trait Render: Serialize {
    /// Writes the text form to `out` (standard output). Notes that must
    /// not mix with what scripts read go to standard error.
    fn text(&self, out: &mut dyn Write) -> io::Result<()>;
}

/// Where results go, and in which form.
pub struct Out {
    json: bool,
}

impl Out {
    /// Text, or JSON when `json`.
    pub fn new(json: bool) -> Self {
        Out { json }
    }

    /// Whether output is JSON (and progress bars stay quiet).
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `value`: its text, or its JSON.
    pub fn show<T: Render + ?Sized>(&self, value: &T) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(&mut stdout, value)?;
            writeln!(stdout)?;
        } else {
            value.text(&mut stdout)?;
        }
        stdout.flush()?;
        Ok(())
    }

    /// Prints `value` as text only: its JSON is printed elsewhere (`add`
    /// prints the JSON of all its paths at once).
    fn show_text<T: Render + ?Sized>(&self, value: &T) -> Result<()> {
        if self.json {
            return Ok(());
        }
        self.show(value)
    }

    /// Any reply, as the command that asked for it prints it.
    pub fn reply(&self, reply: &Reply) -> Result<()> {
        match reply {
            Reply::Node(reply) => node::reply(self, reply),
            Reply::Store(reply) => store::reply(self, reply),
            Reply::Trust(reply) => trust::reply(self, reply),
            Reply::Peers(reply) => peers::reply(self, reply),
            Reply::Name(reply) => names::reply(self, reply),
            Reply::Job(reply) => jobs::reply(self, reply),
            Reply::Sync(reply) => sync::reply(self, reply),
        }
    }

    /// All added paths (JSON only; text was printed as each finished).
    pub fn added_all(&self, all: &[AddResult]) -> Result<()> {
        if self.json {
            self.show(all)?;
        }
        Ok(())
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(" ")
    }
}

/// The first 16 characters of an id.
fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

/// True when the error is a closed standard output (`clive-node cat | head`):
/// printing a reply failed, or a call's standard output did. A broken pipe
/// anywhere else (the control socket of a daemon that died) is an error
/// like any other, never a silent success.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let broken = |io: &std::io::Error| io.kind() == std::io::ErrorKind::BrokenPipe;
    let printing = e.chain().count() == 1 && e.downcast_ref::<std::io::Error>().is_some_and(broken);
    printing
        || e.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<clive_node::ApiError>(),
                Some(clive_node::ApiError::Output { cause }) if broken(cause)
            )
        })
}

/// Prints an error on standard error as one JSON object, for `--json`:
/// `{"error": MESSAGE}`, the message with its causes.
pub fn print_error_json(message: &str) {
    let value = serde_json::json!({ "error": message });
    eprintln!("{value}");
}

#[cfg(test)]
mod tests {
    use std::{io, path::PathBuf};

    use clive_node::ApiError;

    use super::is_broken_pipe;

    #[test]
    fn only_a_closed_standard_output_is_a_broken_pipe() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::new(pipe())));
        assert!(is_broken_pipe(
            &anyhow::Error::new(ApiError::Output { cause: pipe() }).context("exporting")
        ));
        // A daemon killed while a call was sent: an error, not success.
        let control = ApiError::Control {
            path: PathBuf::from("/home/control.sock"),
            reason: pipe().to_string(),
        };
        assert!(!is_broken_pipe(&anyhow::Error::new(control)));
        assert!(!is_broken_pipe(
            &anyhow::Error::new(pipe()).context("reading a key")
        ));
    }
}
