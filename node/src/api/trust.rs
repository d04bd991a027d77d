//! The trust requests: certificates, revocations and trust roots.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::call::{ApiError, CallContext, Client, duration};
use crate::{CertInfo, Imported, Node, RootInfo, Verdict};

/// Trust subcommands. CERT is a certificate id or the file it was written
/// to with -o;
#[doc = concat!("KEY is ", super::call::key_help!(), ".")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "trust_op", rename_all = "snake_case")]
pub enum TrustRequest {
    /// Issue a certificate granting KEY capabilities.
    Grant {
        /// The subject.
        key: String,
        /// Capabilities: fetch, push, exec, attest, comma-separated.
        #[arg(long = "cap", value_name = "CAPS")]
        caps: String,
        /// How long it is valid (30d, 12h, ...).
        #[arg(long, default_value = "30d")]
        expires: String,
        /// How many further links the subject may delegate (0-7).
        #[arg(long, default_value_t = 0, value_name = "N")]
        delegate: u8,
        /// Also write the body to NAME and its armored signature to NAME.sig.
        #[arg(short = 'o', value_name = "NAME")]
        #[serde(default)]
        out: Option<PathBuf>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        #[serde(default)]
        agent: bool,
    },
    /// Import a certificate (FILE and FILE.sig, or one file) or a revocation.
    Import {
        /// The file.
        file: PathBuf,
    },
    /// List certificates held, issued and known.
    Ls,
    /// Show one certificate.
    Show {
        /// The certificate.
        cert: String,
    },
    /// Check whether a peer holds a capability, and print the chain or the failing link.
    Verify {
        /// The peer's KEY.
        #[arg(long)]
        peer: String,
        /// The capability: fetch, push, exec or attest.
        #[arg(long)]
        cap: String,
    },
    /// Revoke a certificate with a signed revocation.
    Revoke {
        /// The certificate.
        cert: String,
        /// Also write the signed revocation to FILE, for `trust import` elsewhere.
        #[arg(short = 'o', value_name = "FILE")]
        #[serde(default)]
        out: Option<PathBuf>,
        /// Sign with the key in the ssh-agent at SSH_AUTH_SOCK.
        #[arg(long)]
        #[serde(default)]
        agent: bool,
    },
    /// Manage the trusted roots (an OpenSSH allowed_signers file).
    #[command(subcommand)]
    Roots(RootsRequest),
}

/// Roots subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "roots_op", rename_all = "snake_case")]
pub enum RootsRequest {
    /// Trust KEY as a root.
    Add {
        /// The key.
        key: String,
        /// The principal name written in allowed_signers.
        #[arg(long, default_value = "root")]
        name: String,
    },
    /// Stop trusting KEY as a root.
    Rm {
        /// The key.
        key: String,
    },
    /// List the roots.
    Ls,
}

/// The answers to [`TrustRequest`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum TrustReply {
    /// `trust grant`, `trust show`, `trust revoke`.
    Cert(CertInfo),
    /// `trust import`.
    Imported(Imported),
    /// `trust ls`.
    Certs(Vec<CertInfo>),
    /// `trust verify`.
    Verdict(Verdict),
    /// `trust roots add|rm|ls`.
    Roots(Vec<RootInfo>),
}

/// Runs one trust request.
pub(crate) async fn handle(
    node: &Node,
    request: TrustRequest,
    client: &Client<'_>,
    ctx: &mut dyn CallContext,
) -> Result<TrustReply, ApiError> {
    Ok(match request {
        TrustRequest::Grant {
            key,
            caps,
            expires,
            delegate,
            out,
            agent,
        } => {
            let expires = duration(&expires)?;
            let out = out.map(|p| client.path(&p));
            let with = client.sign_with(agent, ctx.passphrase());
            TrustReply::Cert(
                node.trust()
                    .grant(
                        &client.key(key),
                        &caps,
                        expires,
                        delegate,
                        out.as_deref(),
                        with,
                    )
                    .await?,
            )
        }
        TrustRequest::Import { file } => {
            TrustReply::Imported(node.trust().import(&client.path(&file)).await?)
        }
        TrustRequest::Ls => TrustReply::Certs(node.trust().list().await?),
        TrustRequest::Show { cert } => {
            TrustReply::Cert(node.trust().show(&client.key(cert)).await?)
        }
        TrustRequest::Verify { peer, cap } => {
            TrustReply::Verdict(node.trust().verify(&client.key(peer), &cap).await?)
        }
        TrustRequest::Revoke { cert, out, agent } => {
            let out = out.map(|p| client.path(&p));
            let with = client.sign_with(agent, ctx.passphrase());
            TrustReply::Cert(
                node.trust()
                    .revoke(&client.key(cert), out.as_deref(), with)
                    .await?,
            )
        }
        TrustRequest::Roots(RootsRequest::Add { key, name }) => {
            TrustReply::Roots(vec![node.trust().roots_add(&client.key(key), &name).await?])
        }
        TrustRequest::Roots(RootsRequest::Rm { key }) => {
            TrustReply::Roots(vec![node.trust().roots_rm(&client.key(key)).await?])
        }
        TrustRequest::Roots(RootsRequest::Ls) => TrustReply::Roots(node.trust().roots().await?),
    })
}
