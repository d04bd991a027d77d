//! `clive-node`: the command-line client of the node API.
//!
//! Parses arguments, opens the node (in-process), calls the API and prints
//! the result as text or, with `--json`, as JSON. No logic lives here.

mod args;
mod output;
mod passphrase;
mod progress;

use std::{path::Path, process::ExitCode, sync::Arc};

use anyhow::{Context, Result};
use clap::Parser;
use clive_node::{
    Home, InitOptions, Node, SignWith, trust::clock_parse_duration as parse_duration,
};

use crate::{
    args::{Cli, Command, PinAction, RootsAction, TrustAction},
    output::Out,
    passphrase::EnvOrTerminal,
    progress::Bar,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let home = Home::resolve(cli.home.as_deref())?;
    let out = Out::new(cli.json);
    if let Command::Init { ssh_key, comment } = cli.command {
        let options = InitOptions { ssh_key, comment };
        let done = Node::init(&home, options, &EnvOrTerminal).await?;
        out.initialized(&done)?;
        return Ok(ExitCode::SUCCESS);
    }
    let node = Node::open(&home).await?;
    let result = dispatch(&node, cli.command, &out).await;
    let closed = node.close().await;
    let code = result?;
    closed?;
    Ok(code)
}

async fn dispatch(node: &Node, command: Command, out: &Out) -> Result<ExitCode> {
    match command {
        Command::Init { .. } => unreachable!("handled before the node is opened"),
        Command::Id => out.identity(&node.identity())?,
        Command::Add { paths, pin } => {
            if pin.is_some() && paths.len() > 1 {
                anyhow::bail!("--pin names one object: add one path at a time with --pin");
            }
            let mut results = Vec::with_capacity(paths.len());
            for path in &paths {
                let bar = Arc::new(Bar::new("adding", out.is_json()));
                let added = if path == Path::new("-") {
                    node.add_reader(tokio::io::stdin(), pin.as_deref(), bar)
                        .await
                        .context("adding standard input")?
                } else {
                    node.add_path(path, pin.as_deref(), bar)
                        .await
                        .with_context(|| format!("adding {}", path.display()))?
                };
                out.added(&added)?;
                results.push(added);
            }
            out.added_all(&results)?;
        }
        Command::Cat { object } => {
            let mut stdout = tokio::io::stdout();
            node.cat(&object, &mut stdout).await?;
        }
        Command::Ls { object } => out.listing(&node.ls(&object).await?)?,
        Command::Export {
            object,
            dest,
            force,
        } => {
            let bar = Arc::new(Bar::new("exporting", out.is_json()));
            let exported = node
                .export(&object, &dest, force, bar)
                .await
                .with_context(|| format!("exporting {object} to {}", dest.display()))?;
            out.exported(&exported)?;
        }
        Command::Pin { action } => match action {
            PinAction::Add { name, object } => out.pinned(&node.pin_add(&name, &object).await?)?,
            PinAction::Rm { name } => out.unpinned(&node.pin_rm(&name).await?)?,
            PinAction::Ls => out.pins(&node.pins().await?)?,
        },
        Command::Gc { dry_run } => out.gc(&node.gc(dry_run).await?)?,
        Command::Trust { action } => return trust(node, action, out).await,
        Command::Fsck => {
            let bar = Arc::new(Bar::new("checking", out.is_json()));
            let report = node.fsck(bar).await?;
            out.fsck(&report)?;
            if !report.is_clean() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn trust(node: &Node, action: TrustAction, out: &Out) -> Result<ExitCode> {
    let sign = |agent| SignWith {
        agent,
        passphrase: &EnvOrTerminal,
    };
    match action {
        TrustAction::Grant {
            key,
            cap,
            expires,
            delegate,
            out: file,
            agent,
        } => {
            let expires = parse_duration(&expires).map_err(anyhow::Error::msg)?;
            let cert = node
                .trust_grant(&key, &cap, expires, delegate, file.as_deref(), sign(agent))
                .await?;
            out.cert(&cert)?;
        }
        TrustAction::Import { file } => out.imported(&node.trust_import(&file).await?)?,
        TrustAction::Ls => out.certs(&node.trust_list().await?)?,
        TrustAction::Show { cert } => out.cert(&node.trust_show(&cert).await?)?,
        TrustAction::Verify { peer, cap } => {
            let verdict = node.trust_verify(&peer, &cap).await?;
            out.verdict(&verdict)?;
            if !verdict.allowed {
                return Ok(ExitCode::FAILURE);
            }
        }
        TrustAction::Revoke {
            cert,
            out: file,
            agent,
        } => out.cert(
            &node
                .trust_revoke(&cert, file.as_deref(), sign(agent))
                .await?,
        )?,
        TrustAction::Roots { action } => match action {
            RootsAction::Add { key, name } => {
                out.roots(&[node.trust_roots_add(&key, &name).await?])?
            }
            RootsAction::Rm { key } => out.roots(&[node.trust_roots_rm(&key).await?])?,
            RootsAction::Ls => out.roots(&node.trust_roots().await?)?,
        },
    }
    Ok(ExitCode::SUCCESS)
}
