//! Asking for a key's passphrase: `CLIVE_PASSPHRASE` if set, else a prompt
//! on the terminal, else nothing (and the node says what is needed).

use std::{io::IsTerminal, path::Path};

use clive_node::PassphraseSource;

/// Environment variable holding the passphrase for non-interactive use.
pub const PASSPHRASE_ENV: &str = "CLIVE_PASSPHRASE";

/// Passphrases from the environment or the terminal.
pub struct EnvOrTerminal;

impl PassphraseSource for EnvOrTerminal {
    fn passphrase(&self, key_path: &Path) -> Option<String> {
        if let Ok(pass) = std::env::var(PASSPHRASE_ENV) {
            return Some(pass);
        }
        if !std::io::stdin().is_terminal() {
            return None;
        }
        rpassword::prompt_password(format!("Passphrase for {}: ", key_path.display())).ok()
    }
}
