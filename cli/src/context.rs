//! What a call streams on this side: the terminal's progress bar, this
//! process's standard output and input, and passphrase prompts.
//!
//! In-process the handler uses it directly; with a daemon the control
//! client feeds it what the daemon sends (and reads standard input from it).

use std::sync::Arc;

use clive_node::{
    CallContext, PassphraseSource,
    api::{CallOutput, DaemonInfo},
    cas::Progress,
};
use tokio::io::AsyncRead;

use crate::{passphrase::EnvOrTerminal, progress::Bar};

/// The context of one call made from this process.
pub struct LocalContext {
    bar: Arc<Bar>,
    stdout: tokio::io::Stdout,
    stderr: tokio::io::Stderr,
    stdin_taken: bool,
    cancel: tokio::sync::watch::Sender<bool>,
}

impl LocalContext {
    /// A context whose progress bar is labelled `verb`.
    pub fn new(verb: &'static str, quiet: bool) -> Self {
        LocalContext {
            bar: Arc::new(Bar::new(verb, quiet)),
            stdout: tokio::io::stdout(),
            stderr: tokio::io::stderr(),
            stdin_taken: false,
            cancel: tokio::sync::watch::Sender::new(false),
        }
    }

    /// What asks the call to cancel (Ctrl-C on `exec`).
    pub fn canceller(&self) -> tokio::sync::watch::Sender<bool> {
        self.cancel.clone()
    }
}

impl CallContext for LocalContext {
    fn progress(&self) -> Arc<dyn Progress> {
        self.bar.clone()
    }

    fn output(&mut self) -> CallOutput<'_> {
        CallOutput {
            stdout: &mut self.stdout,
            stderr: &mut self.stderr,
        }
    }

    fn cancel_requested(&self) -> tokio::sync::watch::Receiver<bool> {
        self.cancel.subscribe()
    }

    fn take_stdin(&mut self) -> Box<dyn AsyncRead + Unpin + Send> {
        if std::mem::replace(&mut self.stdin_taken, true) {
            Box::new(tokio::io::empty())
        } else {
            Box::new(tokio::io::stdin())
        }
    }

    fn passphrase(&self) -> &(dyn PassphraseSource + Sync) {
        &EnvOrTerminal
    }

    fn daemon(&self) -> Option<DaemonInfo> {
        None
    }
}
