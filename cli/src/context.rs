//! What a call streams on this side: the terminal's progress bar, this
//! process's standard output and input, and passphrase prompts.
//!
//! In-process the handler uses it directly; with a daemon the control
//! client feeds it what the daemon sends (and reads standard input from it).

use std::sync::Arc;

use clive_node::{CallContext, PassphraseSource, api::DaemonInfo, cas::Progress};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{passphrase::EnvOrTerminal, progress::Bar};

/// The context of one call made from this process.
pub struct LocalContext {
    bar: Arc<Bar>,
    stdout: tokio::io::Stdout,
    stdin_taken: bool,
}

impl LocalContext {
    /// A context whose progress bar is labelled `verb`.
    pub fn new(verb: &'static str, quiet: bool) -> Self {
        LocalContext {
            bar: Arc::new(Bar::new(verb, quiet)),
            stdout: tokio::io::stdout(),
            stdin_taken: false,
        }
    }
}

impl CallContext for LocalContext {
    fn progress(&self) -> Arc<dyn Progress> {
        self.bar.clone()
    }

    fn stdout(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        &mut self.stdout
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
