//! `clive-node`: the command-line client of the node API.
//!
//! Parses arguments into [`Request`]s (clap parses the request itself: see
//! `args.rs`), sends them to the daemon's control
//! socket when a daemon runs or to the home opened in-process when none
//! does (the same handler answers either way), and prints each [`Reply`]
//! as text or, with `--json`, as JSON. No logic lives here.

mod args;
mod context;
mod output;
mod passphrase;
mod progress;

// A dev-dependency of tests/usage.rs; the unit tests link it too.
#[cfg(test)]
use tempfile as _;

use std::{io::IsTerminal, process::ExitCode, sync::Arc};

use anyhow::Result;
use clap::Parser;
use clive_node::{
    Call, Connection, ControlClient, Home, InitOptions, NetOptions, Node, Reply, Request,
    StoreReply,
    clive_trust::{SystemClock, clock::parse_duration},
    daemon,
};

use crate::{
    args::{Cli, Command},
    context::LocalContext,
    output::Out,
    passphrase::EnvOrTerminal,
};

fn main() -> ExitCode {
    // The job supervisor must start before anything else (single-threaded).
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(clive_node::jobs::supervisor::ARG.as_ref()) {
        clive_node::jobs::supervisor::main(args);
    }
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
    let lookup = matches!(&cli.command, Command::Node(request) if request.read_only());
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
            out.show(&done)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Start { bind, relay } => {
            let net = NetOptions {
                bind,
                relay,
                ..NetOptions::default()
            };
            daemon::run(&home, Arc::new(SystemClock), net, &EnvOrTerminal, |ready| {
                if let Err(e) = out.show(ready) {
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
        Command::Status { wait: None } => vec![Request::Status],
        Command::Node(request) => {
            let terminal = std::io::stdout().is_terminal();
            request.from_client(terminal).into_calls()?
        }
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
        let doing = request.doing();
        let mut ctx = LocalContext::new(request.progress_label(), out.is_json());
        let stopping = if request.is_watch() {
            "stopping the watch"
        } else {
            "cancelling the job"
        };
        let _interrupt = request
            .cancellable()
            .then(|| cancel_on_ctrl_c(ctx.canceller(), stopping));
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
        if let Some(job_code) = reply.exit_code() {
            code = ExitCode::from(job_code.clamp(0, 255) as u8);
        }
        out.reply(&reply)?;
        if let Reply::Store(StoreReply::Added(results)) = reply {
            added.extend(results);
        }
    }
    if !added.is_empty() {
        out.added_all(&added)?;
    }
    Ok(code)
}

/// Ctrl-C asks the call to cancel (the job's whole process tree is
/// killed, here or on its executor, and the call then ends saying so); a
/// second Ctrl-C leaves at once. Stops listening when dropped.
fn cancel_on_ctrl_c(cancel: tokio::sync::watch::Sender<bool>, doing: &'static str) -> Listening {
    Listening(tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!("clive-node: {doing} (Ctrl-C again to leave at once)");
        cancel.send_replace(true);
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    }))
}

/// A Ctrl-C listener, stopped when dropped.
struct Listening(tokio::task::JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}
