//! The trust handle ([`Node::trust`]): certificates, roots and
//! revocations, as the `trust` commands see them.

use std::{path::Path, time::Duration};

use clive_trust::{
    Capability, Caps, CertBody, CertId, Certificate, NodeKey, PublicIdentity, Revocation,
    RootsFile,
    agent::AgentSigner,
    cert::id_hex,
    clock::format_time,
    identity::with_suffix,
    sshsig::{KeySigner, Signer},
};
use serde::{Deserialize, Serialize};

pub use crate::authority::{CertInfo, NodeTrust, read_cert_file};
use crate::authority::{file_err, read_bounded};
use crate::{Node, NodeError, PassphraseSource, TrustError};

/// The answer to `trust verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The peer asked about.
    pub peer: String,
    /// The capability asked about.
    pub capability: String,
    /// Whether the peer holds it now.
    pub allowed: bool,
    /// The chain, root first, when allowed.
    pub chain: Vec<CertInfo>,
    /// Why not, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A revocation as the node API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationInfo {
    /// The revoked certificate's id.
    pub certificate: String,
    /// The revoker's fingerprint.
    pub revoker: String,
    /// When (RFC 3339).
    pub revoked_at: String,
    /// Whether this node knows the certificate it names.
    pub certificate_known: bool,
}

/// What `trust import` took in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Imported {
    /// A certificate.
    Certificate(CertInfo),
    /// A revocation.
    Revocation(RevocationInfo),
}

/// A trust root as the node API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootInfo {
    /// The principal name (`self` for the node's own key).
    pub name: String,
    /// The public key line.
    pub key: String,
    /// Its fingerprint.
    pub fingerprint: String,
}

/// How `grant` and `revoke` sign.
#[derive(Clone, Copy)]
pub struct SignWith<'a> {
    /// Sign through the ssh-agent at `agent_socket`.
    pub agent: bool,
    /// The ssh-agent socket: the `SSH_AUTH_SOCK` of whoever asked (which,
    /// through a daemon, is not the daemon's own); `None` when it has none.
    pub agent_socket: Option<&'a Path>,
    /// Where the passphrase of an encrypted key comes from.
    pub passphrase: &'a (dyn PassphraseSource + Sync),
}

/// The trust commands of a node: `node.trust()`.
#[derive(Debug, Clone, Copy)]
pub struct TrustHandle<'a> {
    node: &'a Node,
}

impl Node {
    /// The trust commands: certificates, roots, revocations.
    pub fn trust(&self) -> TrustHandle<'_> {
        TrustHandle { node: self }
    }
}

impl TrustHandle<'_> {
    /// The trust state itself (roots, certificates, the authorizer).
    pub fn state(&self) -> &NodeTrust {
        self.node.trust_state()
    }

    /// Resolves KEY: a public key line, a file holding one, an endpoint id,
    /// or the `SHA256:` fingerprint of a known key.
    pub fn resolve_key(&self, key: &str) -> Result<PublicIdentity, NodeError> {
        self.state().resolve_key(key)
    }

    /// Resolves CERT: a certificate id, or a file written with `-o`.
    pub fn resolve_cert(&self, cert: &str) -> Result<(CertId, Certificate), NodeError> {
        self.state().resolve_cert(cert)
    }

    /// The signer for `grant` and `revoke`.
    pub(crate) fn signer(&self, with: SignWith<'_>) -> Result<Box<dyn Signer>, NodeError> {
        let key_path = self.node.home().key_path();
        if with.agent || !key_path.exists() {
            let socket = with.agent_socket.filter(|s| !s.as_os_str().is_empty());
            let socket = match socket {
                Some(socket) => socket,
                None if with.agent => {
                    return Err(TrustError::NoAgent.into());
                }
                None => return Err(NodeError::KeyMissing { path: key_path }),
            };
            return Ok(Box::new(AgentSigner::new(
                socket,
                self.node.public().clone(),
            )));
        }
        let key = NodeKey::read(&key_path)?;
        let pass = if key.is_encrypted() {
            with.passphrase.passphrase(&key_path)
        } else {
            None
        };
        Ok(Box::new(KeySigner::from_key(&key, pass.as_deref())?))
    }

    /// Issues a certificate granting `caps` to `subject`.
    pub async fn grant(
        &self,
        subject: &str,
        caps: &str,
        expires: Duration,
        delegate: u8,
        out: Option<&Path>,
        with: SignWith<'_>,
    ) -> Result<CertInfo, NodeError> {
        let subject = self.state().resolve_key(subject)?;
        let caps = Caps::parse(caps)?;
        let now = self.node.now();
        // A delegated grant cannot outlive what this node itself holds.
        let own = self.node.public().bytes();
        let held_until = self.state().authorizer().with_set(|set| {
            set.certs()
                .map(|(_, c)| c.body())
                .filter(|b| {
                    b.subject.bytes() == own && caps.is_subset_of(b.caps) && b.delegate > delegate
                })
                .map(|b| b.valid_until)
                .max()
        });
        let mut valid_until = now.saturating_add(expires.as_secs().max(1));
        if let Some(limit) = held_until {
            valid_until = valid_until.min(limit);
        }
        let mut nonce = [0u8; 16];
        rand::fill(&mut nonce);
        let body = CertBody {
            issuer: PublicIdentity::from_bytes(self.node.public().bytes()),
            subject,
            caps,
            delegate,
            valid_from: now,
            valid_until,
            nonce,
        };
        let text = body.encode();
        let cert = body.sign(self.signer(with)?.as_ref())?;
        if let Some(out) = out {
            self.node.home().check_destination(out)?;
            let sig_path = with_suffix(out, ".sig");
            std::fs::write(out, &text)
                .map_err(|e| NodeError::io(format!("writing {}", out.display()), e))?;
            std::fs::write(&sig_path, cert.signature_armored())
                .map_err(|e| NodeError::io(format!("writing {}", sig_path.display()), e))?;
        }
        self.state().keep_cert(self.node.store().cas(), cert).await
    }

    /// Imports a certificate (with its `.sig`) or a revocation.
    pub async fn import(&self, file: &Path) -> Result<Imported, NodeError> {
        let bytes = read_bounded(file)?;
        if bytes.starts_with(b"clive-revocation") {
            let r = Revocation::decode(&bytes).map_err(|cause| file_err(file, cause))?;
            let info = RevocationInfo {
                certificate: id_hex(&r.certificate),
                revoker: r.revoker.fingerprint(),
                revoked_at: format_time(r.revoked_at),
                certificate_known: self
                    .state()
                    .authorizer()
                    .with_set(|set| set.cert(&r.certificate).is_some()),
            };
            let (_, guard) = self.node.store().cas().put_bytes(r.encode()).await?;
            self.state().add_revocation(r)?;
            drop(guard);
            return Ok(Imported::Revocation(info));
        }
        let cert = read_cert_file(file)?;
        Ok(Imported::Certificate(
            self.state()
                .keep_cert(self.node.store().cas(), cert)
                .await?,
        ))
    }

    /// Every certificate this node keeps.
    pub async fn list(&self) -> Result<Vec<CertInfo>, NodeError> {
        let trust = self.state();
        let mut all = trust.authorizer().with_set(|set| {
            set.certs()
                .map(|(id, c)| trust.info(set, id, c))
                .collect::<Vec<_>>()
        });
        all.sort_by(|a, b| {
            (&a.relation, &a.valid_from, &a.id).cmp(&(&b.relation, &b.valid_from, &b.id))
        });
        Ok(all)
    }

    /// One certificate.
    pub async fn show(&self, cert: &str) -> Result<CertInfo, NodeError> {
        let (id, c) = self.state().resolve_cert(cert)?;
        Ok(self
            .state()
            .authorizer()
            .with_set(|set| self.state().info(set, &id, &c)))
    }

    /// Whether `peer` holds `cap` now, with the chain or the failing link.
    pub async fn verify(&self, peer: &str, cap: &str) -> Result<Verdict, NodeError> {
        let key = self.state().resolve_key(peer)?;
        let cap: Capability = cap.parse()?;
        let trust = self.state();
        let result = trust.check(&key, cap);
        Ok(match result {
            Ok(chain) => Verdict {
                peer: key.fingerprint(),
                capability: cap.to_string(),
                allowed: true,
                chain: trust.authorizer().with_set(|set| {
                    chain
                        .links
                        .iter()
                        .map(|c| trust.info(set, &c.id(), c))
                        .collect()
                }),
                reason: None,
            },
            Err(refusal) => Verdict {
                peer: key.fingerprint(),
                capability: cap.to_string(),
                allowed: false,
                chain: vec![],
                reason: Some(refusal.cause.to_string()),
            },
        })
    }

    /// Revokes a certificate with a signed revocation.
    /// With `out`, also writes the revocation there, for other nodes to import.
    pub async fn revoke(
        &self,
        cert: &str,
        out: Option<&Path>,
        with: SignWith<'_>,
    ) -> Result<CertInfo, NodeError> {
        let (id, c) = self.state().resolve_cert(cert)?;
        // Keep the certificate too, so the revocation has something to name.
        self.state().add_cert(c)?;
        let r = Revocation::sign(id, self.node.now(), self.signer(with)?.as_ref())?;
        if let Some(out) = out {
            self.node.home().check_destination(out)?;
            std::fs::write(out, r.encode())
                .map_err(|e| NodeError::io(format!("writing {}", out.display()), e))?;
        }
        let (_, guard) = self.node.store().cas().put_bytes(r.encode()).await?;
        self.state().add_revocation(r)?;
        drop(guard);
        self.show(&id_hex(&id)).await
    }

    /// The trust roots: this node's key, then the roots file.
    pub async fn roots(&self) -> Result<Vec<RootInfo>, NodeError> {
        let mut out = vec![RootInfo {
            name: "self".into(),
            key: PublicIdentity::from_bytes(self.node.public().bytes()).openssh_line(),
            fingerprint: self.node.public().fingerprint(),
        }];
        let file = RootsFile::load(&self.node.home().roots_path())?;
        out.extend(file.roots()?.into_iter().map(|r| RootInfo {
            name: r.principal,
            key: PublicIdentity::from_bytes(r.key.bytes()).openssh_line(),
            fingerprint: r.key.fingerprint(),
        }));
        Ok(out)
    }

    /// Trusts `key` as a root under `name`.
    pub async fn roots_add(&self, key: &str, name: &str) -> Result<RootInfo, NodeError> {
        let key = self.state().resolve_key(key)?;
        let path = self.node.home().roots_path();
        let mut file = RootsFile::load(&path)?;
        file.add(name, &key)?;
        file.save()?;
        self.state()
            .authorizer()
            .update(|set| set.add_root(key.bytes()));
        Ok(RootInfo {
            name: name.to_owned(),
            key: PublicIdentity::from_bytes(key.bytes()).openssh_line(),
            fingerprint: key.fingerprint(),
        })
    }

    /// Stops trusting `key` as a root.
    pub async fn roots_rm(&self, key: &str) -> Result<RootInfo, NodeError> {
        let key = self.state().resolve_key(key)?;
        let path = self.node.home().roots_path();
        let mut file = RootsFile::load(&path)?;
        file.remove(&key)?;
        file.save()?;
        if key.bytes() != self.node.public().bytes() {
            self.state()
                .authorizer()
                .update(|set| set.remove_root(&key.bytes()));
        }
        Ok(RootInfo {
            name: String::new(),
            key: PublicIdentity::from_bytes(key.bytes()).openssh_line(),
            fingerprint: key.fingerprint(),
        })
    }
}
