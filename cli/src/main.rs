//! `clive-node`: the command-line client of the node API.
//!
//! Parses arguments into [`Request`]s, sends them to the daemon's control
//! socket when a daemon runs or to the home opened in-process when none
//! does (the same handler answers either way), and prints each [`Reply`]
//! as text or, with `--json`, as JSON. No logic lives here.

mod args;
mod context;
mod name_output;
mod output;
mod passphrase;
mod progress;

// A dev-dependency of tests/usage.rs; the unit tests link it too.
#[cfg(test)]
use tempfile as _;

use std::{io::IsTerminal, path::Path, process::ExitCode, sync::Arc};

use anyhow::Result;
use clap::Parser;
use clive_node::{
    Call, Connection, ControlClient, Home, InitOptions, NameRequest, NetOptions, Node, Reply,
    Request, clive_naming::zones::new_receipt, clive_trust::SystemClock, daemon,
    trust::clock_parse_duration as parse_duration,
};

use crate::{
    args::{
        Cli, Command, NameAction, PeersAction, PinAction, RootAction, RootsAction, TrustAction,
        ZoneAction,
    },
    context::LocalContext,
    output::Out,
    passphrase::EnvOrTerminal,
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to standard output as usual.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) if std::env::args().any(|a| a == "--json") => {
            let text = e.to_string();
            output::print_error_json(text.trim_start_matches("error: ").trim_end());
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
        Err(e) => e.exit(),
    };
    let json = cli.json;
    // The daemon says what it does; a command only warns.
    let default_filter = match cli.command {
        Command::Start { .. } => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Lookups answered from the state alone need no worker threads.
    let lookup = matches!(
        &cli.command,
        Command::Name {
            action: NameAction::Resolve { .. } | NameAction::History { .. }
        }
    );
    let mut builder = if lookup {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let message = format!("cannot start the async runtime: {e}");
            if json {
                output::print_error_json(&message);
            } else {
                eprintln!("error: {message}");
            }
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if json => {
            output::print_error_json(&format!("{e:#}"));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let home = Home::resolve(cli.home.as_deref())?;
    let out = Out::new(cli.json);
    let requests = match cli.command {
        Command::Init { ssh_key, comment } => {
            let options = InitOptions { ssh_key, comment };
            let done = Node::init(&home, options, &EnvOrTerminal).await?;
            out.initialized(&done)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Start { bind, relay } => {
            let net = NetOptions {
                bind,
                relay,
                ..NetOptions::default()
            };
            daemon::run(&home, Arc::new(SystemClock), net, &EnvOrTerminal, |ready| {
                if let Err(e) = out.ready(ready) {
                    tracing::warn!("printing that the daemon is ready: {e:#}");
                }
            })
            .await?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Status { wait: Some(wait) } => {
            let wait = parse_duration(&wait).map_err(anyhow::Error::msg)?;
            let client = ControlClient::wait(&home, wait).await?;
            return call_all(Connection::Daemon(client), vec![Request::Status], &out).await;
        }
        command => requests(command)?,
    };
    call_all(
        Connection::open_for(&home, &requests, Arc::new(SystemClock)).await?,
        requests,
        &out,
    )
    .await
}

/// Runs the requests one after another, printing each reply; stops at the
/// first error.
async fn call_all(mut conn: Connection, requests: Vec<Request>, out: &Out) -> Result<ExitCode> {
    let result = call_each(&mut conn, requests, out).await;
    let closed = conn.close().await;
    let code = result?;
    closed?;
    Ok(code)
}

async fn call_each(conn: &mut Connection, requests: Vec<Request>, out: &Out) -> Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    let mut added = Vec::new();
    for request in requests {
        let doing = doing(&request);
        let mut ctx = LocalContext::new(request.progress_label(), out.is_json());
        let reply = match conn.call(Call::here(request)?, &mut ctx).await {
            Ok(reply) => reply,
            Err(e) => {
                let e = anyhow::Error::new(e);
                return Err(match doing {
                    Some(doing) => e.context(doing),
                    None => e,
                });
            }
        };
        drop(ctx);
        if !reply.succeeded() {
            code = ExitCode::FAILURE;
        }
        out.reply(&reply)?;
        if let Reply::Added(result) = reply {
            added.push(result);
        }
    }
    if !added.is_empty() {
        out.added_all(&added)?;
    }
    Ok(code)
}

/// What an error of `request` happened while doing, for its message.
fn doing(request: &Request) -> Option<String> {
    match request {
        Request::Add { path, .. } => Some(format!("adding {}", path.display())),
        Request::AddStdin { .. } => Some("adding standard input".to_owned()),
        Request::Export { object, dest, .. } => {
            Some(format!("exporting {object} to {}", dest.display()))
        }
        _ => None,
    }
}

/// The requests a command makes: one, or one per path for `add`.
fn requests(command: Command) -> Result<Vec<Request>> {
    let request = match command {
        Command::Init { .. } | Command::Start { .. } | Command::Status { wait: Some(_) } => {
            anyhow::bail!("this command does not go through the node API")
        }
        Command::Id => Request::Id,
        Command::Add { paths, pin } => {
            if pin.is_some() && paths.len() > 1 {
                anyhow::bail!("--pin names one object: add one path at a time with --pin");
            }
            let each = |path: std::path::PathBuf| {
                let pin = pin.clone();
                if path == Path::new("-") {
                    Request::AddStdin { pin }
                } else {
                    Request::Add { path, pin }
                }
            };
            return Ok(paths.into_iter().map(each).collect());
        }
        Command::Cat { object } => Request::Cat {
            object,
            terminal: std::io::stdout().is_terminal(),
        },
        Command::Ls { object } => Request::Ls { object },
        Command::Export {
            object,
            dest,
            force,
        } => Request::Export {
            object,
            dest,
            force,
        },
        Command::Pin { action } => match action {
            PinAction::Add { name, object } => Request::PinAdd { name, object },
            PinAction::Rm { name } => Request::PinRm { name },
            PinAction::Ls => Request::PinLs,
        },
        Command::Gc { dry_run } => Request::Gc { dry_run },
        Command::Fsck { repair } => Request::Fsck { repair },
        Command::Trust { action } => trust(action),
        Command::Stop => Request::Stop,
        Command::Status { wait: None } => Request::Status,
        Command::Invite { cap, expires, uses } => Request::Invite {
            caps: cap,
            expires,
            uses,
        },
        Command::Join { ticket } => Request::Join { ticket },
        Command::Peers { action } => match action {
            PeersAction::Ls => Request::PeersLs,
            PeersAction::Add { key, addrs } => Request::PeerAdd { peer: key, addrs },
            PeersAction::Rm { key } => Request::PeerRm { peer: key },
        },
        Command::Get {
            hash,
            from,
            out,
            force,
            pin,
        } => Request::Get {
            hash,
            from,
            out,
            force,
            pin,
        },
        Command::Push { object, to } => Request::Push { object, to },
        Command::Name { action } => Request::Name(name(action)),
    };
    Ok(vec![request])
}

fn trust(action: TrustAction) -> Request {
    match action {
        TrustAction::Grant {
            key,
            cap,
            expires,
            delegate,
            out,
            agent,
        } => Request::TrustGrant {
            key,
            caps: cap,
            expires,
            delegate,
            out,
            agent,
        },
        TrustAction::Import { file } => Request::TrustImport { file },
        TrustAction::Ls => Request::TrustLs,
        TrustAction::Show { cert } => Request::TrustShow { cert },
        TrustAction::Verify { peer, cap } => Request::TrustVerify { peer, cap },
        TrustAction::Revoke { cert, out, agent } => Request::TrustRevoke { cert, out, agent },
        TrustAction::Roots { action } => match action {
            RootsAction::Add { key, name } => Request::TrustRootsAdd { key, name },
            RootsAction::Rm { key } => Request::TrustRootsRm { key },
            RootsAction::Ls => Request::TrustRootsLs,
        },
    }
}

fn name(action: NameAction) -> NameRequest {
    match action {
        NameAction::Zone { action } => match action {
            ZoneAction::Create {
                zone,
                keys,
                threshold,
                out,
                agent,
            } => NameRequest::ZoneCreate {
                zone,
                keys,
                threshold,
                out,
                agent,
            },
            ZoneAction::Ls => NameRequest::ZoneLs,
            ZoneAction::Show { zone } => NameRequest::ZoneShow { zone },
        },
        NameAction::Publish {
            name,
            target,
            more,
            agent,
        } => NameRequest::Publish {
            name,
            target,
            more,
            agent,
            receipt: Some(new_receipt()),
        },
        NameAction::Unpublish { name, agent } => NameRequest::Unpublish {
            name,
            agent,
            receipt: Some(new_receipt()),
        },
        NameAction::Delegate {
            zone,
            prefix,
            to,
            agent,
        } => NameRequest::Delegate {
            zone,
            prefix,
            to,
            agent,
        },
        NameAction::Rotate {
            zone,
            role,
            keys,
            threshold,
            out,
            agent,
        } => NameRequest::Rotate {
            zone,
            role,
            keys,
            threshold,
            out,
            agent,
        },
        NameAction::Root { action } => match action {
            RootAction::Sign { file, key, agent } => NameRequest::RootSign { file, key, agent },
            RootAction::Commit { zone, file } => NameRequest::RootCommit { zone, file },
        },
        NameAction::Follow {
            source,
            mirror,
            alias,
        } => NameRequest::Follow {
            source,
            mirror,
            alias,
        },
        NameAction::Refresh { zone } => NameRequest::Refresh { zone },
        NameAction::Resolve { name, offline } => NameRequest::Resolve { name, offline },
        NameAction::History { name } => NameRequest::History { name },
        NameAction::Export { zone, dir } => NameRequest::Export { zone, dir },
        NameAction::Override {
            name,
            target,
            clear: _,
        } => NameRequest::Override { name, target },
    }
}
