//! TUF client implementing the tuf-conformance client CLI protocol
//! (`CLIENT-CLI.md` of theupdateframework/tuf-conformance):
//!
//! ```text
//! clive-tuf-client --metadata-dir DIR init TRUSTED_ROOT
//! clive-tuf-client --metadata-dir DIR --metadata-url URL refresh
//! clive-tuf-client --metadata-dir DIR --metadata-url URL --target-name PATH... \
//!     --target-base-url URL --target-dir DIR download
//! ```
//!
//! Exit code 0 on success, 1 on any failure; logs go to stderr.

// A second binary links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library.
#![allow(unused_crate_dependencies)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clive_naming::tuf::http::HttpRemote;
use clive_naming::tuf::updater::{Config, DirStore, Updater};
use clive_trust::write_atomic;

#[derive(Default, Debug)]
struct Args {
    metadata_dir: Option<PathBuf>,
    metadata_url: Option<String>,
    target_names: Vec<String>,
    target_base_url: Option<String>,
    target_dir: Option<PathBuf>,
    command: Option<String>,
    positional: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let value = |it: &mut dyn Iterator<Item = String>| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--metadata-dir" => args.metadata_dir = Some(value(&mut it)?.into()),
            "--metadata-url" => args.metadata_url = Some(value(&mut it)?),
            "--target-name" => args.target_names.push(value(&mut it)?),
            "--target-base-url" => args.target_base_url = Some(value(&mut it)?),
            "--target-dir" => args.target_dir = Some(value(&mut it)?.into()),
            "-v" | "--verbose" => {}
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if args.command.is_none() => args.command = Some(a),
            _ => args.positional.push(a),
        }
    }
    Ok(args)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn run(args: Args) -> Result<(), String> {
    let dir = args.metadata_dir.ok_or("--metadata-dir is required")?;
    match args.command.as_deref() {
        Some("init") => {
            let root = args.positional.first().ok_or("init needs TRUSTED_ROOT")?;
            // A root is a few KiB; refuse a file that keeps going.
            let data = clive_trust::read_bounded(std::path::Path::new(root), 16 << 20)
                .map_err(|e| e.to_string())?;
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            write_atomic(&dir.join("root.json"), &data)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            eprintln!("clive-tuf-client: initialized {}", dir.display());
            Ok(())
        }
        Some("refresh") => {
            let url = args.metadata_url.ok_or("--metadata-url is required")?;
            let remote = HttpRemote::new(&url, None);
            let mut updater = Updater::new(remote, DirStore::new(&dir), Config::default(), now())
                .map_err(|e| e.to_string())?;
            updater
                .refresh()
                .map_err(|e| format!("refresh failed: {e}"))?;
            eprintln!("clive-tuf-client: refreshed metadata in {}", dir.display());
            Ok(())
        }
        Some("download") => {
            let url = args.metadata_url.ok_or("--metadata-url is required")?;
            let target_base = args
                .target_base_url
                .ok_or("--target-base-url is required")?;
            let target_dir = args.target_dir.ok_or("--target-dir is required")?;
            if args.target_names.is_empty() {
                return Err("--target-name is required".into());
            }
            let remote = HttpRemote::new(&url, Some(&target_base));
            let mut updater = Updater::new(remote, DirStore::new(&dir), Config::default(), now())
                .map_err(|e| e.to_string())?
                .with_target_dir(target_dir);
            for name in &args.target_names {
                let info = updater
                    .get_targetinfo(name)
                    .map_err(|e| format!("{name}: lookup failed: {e}"))?
                    .ok_or_else(|| format!("{name}: not found in repository"))?;
                if let Some(path) = updater.find_cached_target(&info, None) {
                    eprintln!("clive-tuf-client: {name} is cached at {}", path.display());
                    continue;
                }
                let path = updater
                    .download_target(&info, None)
                    .map_err(|e| format!("{name}: download failed: {e}"))?;
                eprintln!("clive-tuf-client: downloaded {name} to {}", path.display());
            }
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other}")),
        None => Err("a command is required: init, refresh or download".into()),
    }
}

fn main() -> ExitCode {
    let result = parse_args().and_then(run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clive-tuf-client: error: {e}");
            ExitCode::FAILURE
        }
    }
}
