//! The node's trust state and the trust commands of the node API.
//!
//! Roots live in `HOME/allowed_signers` (OpenSSH format; the node's own key
//! is always a root too). Certificates and revocations live in `state.redb`
//! (tables `trust.certs.v1` and `trust.revocations.v1`, keyed by the BLAKE3
//! hash of their encoding) and, as objects, in the store, where gc keeps them.

use std::{path::Path, sync::Arc, time::Duration};

use clive_cas::Hash;
use clive_trust::{
    Authorizer, Capability, Caps, CertBody, CertError, CertId, Certificate, ChainError, Clock,
    NodeKey, PublicIdentity, Revocation, RootsFile, SystemClock, TrustSet,
    agent::AgentSigner,
    cert::id_hex,
    clock::format_time,
    identity::with_suffix,
    sshsig::{KeySigner, Signer},
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{Node, NodeError, PassphraseSource};

const CERTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("trust.certs.v1");
const REVOCATIONS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("trust.revocations.v1");

/// A certificate as the node API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// BLAKE3 of the encoding, 64 hex digits.
    pub id: String,
    /// `held` (granted to this node), `issued` (by this node) or `other`.
    pub relation: String,
    /// The issuer's public key line.
    pub issuer: String,
    /// The issuer's fingerprint.
    pub issuer_fingerprint: String,
    /// The subject's public key line.
    pub subject: String,
    /// The subject's fingerprint.
    pub subject_fingerprint: String,
    /// `exec,fetch,push` or a subset.
    pub capabilities: String,
    /// Further links allowed.
    pub delegate: u8,
    /// Start of validity (RFC 3339).
    pub valid_from: String,
    /// End of validity (RFC 3339).
    pub valid_until: String,
    /// Who revoked it, if anyone did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

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

/// The node's trust state.
#[derive(Debug)]
pub struct NodeTrust {
    db: Arc<Database>,
    roots_path: std::path::PathBuf,
    own: PublicIdentity,
    authorizer: Arc<Authorizer>,
}

/// A row of a trust table: the hash of an encoding, and the encoding.
type Row = ([u8; 32], Vec<u8>);

/// Every row of a table; none before its first write (tables are created by
/// the first write, so opening a node writes nothing).
fn read_table(
    db: &Database,
    table: TableDefinition<&[u8; 32], &[u8]>,
) -> Result<Vec<Row>, NodeError> {
    let tx = db.begin_read().map_err(state_err)?;
    let table = match tx.open_table(table) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(state_err(e)),
    };
    let mut rows = Vec::new();
    for item in table.iter().map_err(state_err)? {
        let (k, v) = item.map_err(state_err)?;
        rows.push((*k.value(), v.value().to_vec()));
    }
    Ok(rows)
}

fn state_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::State {
        path: "state.redb".into(),
        reason: e.to_string(),
    }
}

impl NodeTrust {
    /// Loads roots, certificates and revocations.
    pub fn open(
        db: Arc<Database>,
        roots_path: &Path,
        own: PublicIdentity,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, NodeError> {
        let mut set = TrustSet::with_roots([own.bytes()]);
        for root in RootsFile::load(roots_path)
            .map_err(trust_err)?
            .roots()
            .map_err(trust_err)?
        {
            set.add_root(root.key.bytes());
        }
        for (_, bytes) in read_table(&db, CERTS)? {
            match Certificate::decode(&bytes) {
                Ok(cert) => {
                    set.add_cert(cert);
                }
                Err(e) => tracing::warn!("skipping a stored certificate: {e}"),
            }
        }
        for (_, bytes) in read_table(&db, REVOCATIONS)? {
            match Revocation::decode(&bytes) {
                Ok(r) => set.add_revocation(r),
                Err(e) => tracing::warn!("skipping a stored revocation: {e}"),
            }
        }
        Ok(NodeTrust {
            db,
            roots_path: roots_path.to_owned(),
            own,
            authorizer: Arc::new(Authorizer::new(set, clock)),
        })
    }

    /// The authorizer the network layer asks on every request.
    pub fn authorizer(&self) -> &Arc<Authorizer> {
        &self.authorizer
    }

    fn put(
        &self,
        table: TableDefinition<&[u8; 32], &[u8]>,
        bytes: &[u8],
    ) -> Result<[u8; 32], NodeError> {
        let key = *blake3::hash(bytes).as_bytes();
        let tx = self.db.begin_write().map_err(state_err)?;
        tx.open_table(table)
            .map_err(state_err)?
            .insert(&key, bytes)
            .map_err(state_err)?;
        tx.commit().map_err(state_err)?;
        Ok(key)
    }

    /// Keeps a (checked) certificate.
    pub fn add_cert(&self, cert: Certificate) -> Result<CertId, NodeError> {
        self.put(CERTS, &cert.encode())?;
        let mut id = [0u8; 32];
        self.authorizer.update(|set| id = set.add_cert(cert));
        Ok(id)
    }

    /// Keeps a (checked) revocation and applies it at once.
    pub fn add_revocation(&self, revocation: Revocation) -> Result<(), NodeError> {
        self.put(REVOCATIONS, &revocation.encode())?;
        self.authorizer.revoke(revocation);
        Ok(())
    }

    /// Hashes of every certificate and revocation, which gc must keep.
    pub fn object_hashes(&self) -> Result<Vec<Hash>, NodeError> {
        let mut out = Vec::new();
        for table in [CERTS, REVOCATIONS] {
            out.extend(
                read_table(&self.db, table)?
                    .into_iter()
                    .map(|(key, _)| Hash::from_bytes(key)),
            );
        }
        Ok(out)
    }

    pub(crate) fn info(&self, set: &TrustSet, id: &CertId, cert: &Certificate) -> CertInfo {
        let b = cert.body();
        let relation = if b.subject.bytes() == self.own.bytes() {
            "held"
        } else if b.issuer.bytes() == self.own.bytes() {
            "issued"
        } else {
            "other"
        };
        CertInfo {
            id: id_hex(id),
            relation: relation.into(),
            issuer: PublicIdentity::from_bytes(b.issuer.bytes()).openssh_line(),
            issuer_fingerprint: b.issuer.fingerprint(),
            subject: PublicIdentity::from_bytes(b.subject.bytes()).openssh_line(),
            subject_fingerprint: b.subject.fingerprint(),
            capabilities: b.caps.to_string(),
            delegate: b.delegate,
            valid_from: format_time(b.valid_from),
            valid_until: format_time(b.valid_until),
            revoked_by: set.revocation_of(id, cert).map(|r| r.revoker.fingerprint()),
        }
    }

    /// Every known key: own, roots, issuers and subjects of certificates.
    fn known_keys(&self) -> Vec<PublicIdentity> {
        let mut keys = vec![self.own.clone()];
        if let Ok(file) = RootsFile::load(&self.roots_path) {
            keys.extend(file.roots().unwrap_or_default().into_iter().map(|r| r.key));
        }
        self.authorizer.with_set(|set| {
            for (_, cert) in set.certs() {
                keys.push(cert.body().issuer.clone());
                keys.push(cert.body().subject.clone());
            }
        });
        keys
    }

    /// Resolves KEY: a public key line, a file holding one, an endpoint id,
    /// or the `SHA256:` fingerprint of a known key.
    pub fn resolve_key(&self, key: &str) -> Result<PublicIdentity, NodeError> {
        if let Ok(k) = PublicIdentity::parse(key) {
            return Ok(k);
        }
        if key.starts_with("SHA256:") {
            return self
                .known_keys()
                .into_iter()
                .find(|k| k.fingerprint() == key)
                .ok_or_else(|| {
                    NodeError::UnknownKey(format!("no known key has the fingerprint {key}"))
                });
        }
        let path = Path::new(key);
        if path.is_file() {
            return PublicIdentity::read_file(path).map_err(|e| match e {
                clive_trust::IdentityError::Read(e) => NodeError::Read(e),
                e => NodeError::UnknownKey(format!("{}: {e}", path.display())),
            });
        }
        Err(NodeError::UnknownKey(format!(
            "{key:?} is not a public key line, a file holding one, an endpoint id, or the fingerprint of a known key"
        )))
    }

    /// Resolves CERT: a certificate id, or a file written with `-o`.
    pub fn resolve_cert(&self, cert: &str) -> Result<(CertId, Certificate), NodeError> {
        let mut id = [0u8; 32];
        if cert.len() == 64 && hex::decode_to_slice(cert, &mut id).is_ok() {
            return self
                .authorizer
                .with_set(|set| set.cert(&id).cloned())
                .map(|c| (id, c))
                .ok_or_else(|| NodeError::UnknownCert(cert.to_owned()));
        }
        let cert = read_cert_file(Path::new(cert))?;
        Ok((cert.id(), cert))
    }
}

/// Parses a duration such as `30d` or `12h`.
pub fn clock_parse_duration(s: &str) -> Result<Duration, String> {
    clive_trust::clock::parse_duration(s)
}

fn trust_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Trust(e.to_string())
}

/// Reads a certificate, signature or revocation file, refusing it once it
/// yields more than a certificate can be.
fn read_bounded(path: &Path) -> Result<Vec<u8>, NodeError> {
    Ok(clive_trust::read_bounded(
        path,
        clive_trust::cert::MAX_CERT_LEN as u64,
    )?)
}

/// Reads a certificate file: the encoding (signature inline), or a body
/// with its signature in `FILE.sig`.
pub fn read_cert_file(path: &Path) -> Result<Certificate, NodeError> {
    let read = read_bounded;
    let bytes = read(path)?;
    match Certificate::decode(&bytes) {
        Err(CertError::Unsigned) => {
            let sig = read(&with_suffix(path, ".sig"))?;
            let sig = String::from_utf8(sig)
                .map_err(|_| trust_err(format!("{}.sig is not text", path.display())))?;
            Certificate::from_parts(&bytes, &sig)
                .map_err(|e| trust_err(format!("{}: {e}", path.display())))
        }
        other => other.map_err(|e| trust_err(format!("{}: {e}", path.display()))),
    }
}

impl Node {
    /// The signer for `grant` and `revoke`.
    pub(crate) fn signer(&self, with: SignWith<'_>) -> Result<Box<dyn Signer>, NodeError> {
        let key_path = self.home().key_path();
        if with.agent || !key_path.exists() {
            let socket = with.agent_socket.filter(|s| !s.as_os_str().is_empty());
            let socket = match socket {
                Some(socket) => socket,
                None if with.agent => {
                    return Err(trust_err("no ssh-agent: SSH_AUTH_SOCK is not set"));
                }
                None => return Err(NodeError::KeyMissing { path: key_path }),
            };
            return Ok(Box::new(AgentSigner::new(socket, self.public().clone())));
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
    pub async fn trust_grant(
        &self,
        subject: &str,
        caps: &str,
        expires: Duration,
        delegate: u8,
        out: Option<&Path>,
        with: SignWith<'_>,
    ) -> Result<CertInfo, NodeError> {
        let subject = self.trust().resolve_key(subject)?;
        let caps = Caps::parse(caps).map_err(trust_err)?;
        let now = SystemClock.now();
        // A delegated grant cannot outlive what this node itself holds.
        let own = self.public().bytes();
        let held_until = self.trust().authorizer().with_set(|set| {
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
            issuer: PublicIdentity::from_bytes(self.public().bytes()),
            subject,
            caps,
            delegate,
            valid_from: now,
            valid_until,
            nonce,
        };
        let text = body.encode();
        let cert = body.sign(self.signer(with)?.as_ref()).map_err(trust_err)?;
        if let Some(out) = out {
            self.home().check_destination(out)?;
            let sig_path = with_suffix(out, ".sig");
            std::fs::write(out, &text)
                .map_err(|e| NodeError::io(format!("writing {}", out.display()), e))?;
            std::fs::write(&sig_path, cert.signature_armored())
                .map_err(|e| NodeError::io(format!("writing {}", sig_path.display()), e))?;
        }
        self.keep_cert(cert).await
    }

    async fn keep_cert(&self, cert: Certificate) -> Result<CertInfo, NodeError> {
        let (_, guard) = self.store().put_bytes(cert.encode()).await?;
        let id = self.trust().add_cert(cert.clone())?;
        drop(guard);
        Ok(self
            .trust()
            .authorizer()
            .with_set(|set| self.trust().info(set, &id, &cert)))
    }

    /// Imports a certificate (with its `.sig`) or a revocation.
    pub async fn trust_import(&self, file: &Path) -> Result<Imported, NodeError> {
        let bytes = read_bounded(file)?;
        if bytes.starts_with(b"clive-revocation") {
            let r = Revocation::decode(&bytes)
                .map_err(|e| trust_err(format!("{}: {e}", file.display())))?;
            let info = RevocationInfo {
                certificate: id_hex(&r.certificate),
                revoker: r.revoker.fingerprint(),
                revoked_at: format_time(r.revoked_at),
                certificate_known: self
                    .trust()
                    .authorizer()
                    .with_set(|set| set.cert(&r.certificate).is_some()),
            };
            let (_, guard) = self.store().put_bytes(r.encode()).await?;
            self.trust().add_revocation(r)?;
            drop(guard);
            return Ok(Imported::Revocation(info));
        }
        let cert = read_cert_file(file)?;
        Ok(Imported::Certificate(self.keep_cert(cert).await?))
    }

    /// Every certificate this node keeps.
    pub async fn trust_list(&self) -> Result<Vec<CertInfo>, NodeError> {
        let trust = self.trust();
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
    pub async fn trust_show(&self, cert: &str) -> Result<CertInfo, NodeError> {
        let (id, c) = self.trust().resolve_cert(cert)?;
        Ok(self
            .trust()
            .authorizer()
            .with_set(|set| self.trust().info(set, &id, &c)))
    }

    /// Whether `peer` holds `cap` now, with the chain or the failing link.
    pub async fn trust_verify(&self, peer: &str, cap: &str) -> Result<Verdict, NodeError> {
        let key = self.trust().resolve_key(peer)?;
        let cap: Capability = cap.parse().map_err(trust_err)?;
        let result: Result<_, ChainError> = self.trust().authorizer().check(&key, cap);
        let trust = self.trust();
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
            Err(e) => Verdict {
                peer: key.fingerprint(),
                capability: cap.to_string(),
                allowed: false,
                chain: vec![],
                reason: Some(e.to_string()),
            },
        })
    }

    /// Revokes a certificate with a signed revocation.
    /// With `out`, also writes the revocation there, for other nodes to import.
    pub async fn trust_revoke(
        &self,
        cert: &str,
        out: Option<&Path>,
        with: SignWith<'_>,
    ) -> Result<CertInfo, NodeError> {
        let (id, c) = self.trust().resolve_cert(cert)?;
        // Keep the certificate too, so the revocation has something to name.
        self.trust().add_cert(c)?;
        let r = Revocation::sign(id, SystemClock.now(), self.signer(with)?.as_ref())
            .map_err(trust_err)?;
        if let Some(out) = out {
            self.home().check_destination(out)?;
            std::fs::write(out, r.encode())
                .map_err(|e| NodeError::io(format!("writing {}", out.display()), e))?;
        }
        let (_, guard) = self.store().put_bytes(r.encode()).await?;
        self.trust().add_revocation(r)?;
        drop(guard);
        self.trust_show(&id_hex(&id)).await
    }

    /// The trust roots: this node's key, then the roots file.
    pub async fn trust_roots(&self) -> Result<Vec<RootInfo>, NodeError> {
        let mut out = vec![RootInfo {
            name: "self".into(),
            key: PublicIdentity::from_bytes(self.public().bytes()).openssh_line(),
            fingerprint: self.public().fingerprint(),
        }];
        let file = RootsFile::load(&self.home().roots_path()).map_err(trust_err)?;
        out.extend(
            file.roots()
                .map_err(trust_err)?
                .into_iter()
                .map(|r| RootInfo {
                    name: r.principal,
                    key: PublicIdentity::from_bytes(r.key.bytes()).openssh_line(),
                    fingerprint: r.key.fingerprint(),
                }),
        );
        Ok(out)
    }

    /// Trusts `key` as a root under `name`.
    pub async fn trust_roots_add(&self, key: &str, name: &str) -> Result<RootInfo, NodeError> {
        let key = self.trust().resolve_key(key)?;
        let path = self.home().roots_path();
        let mut file = RootsFile::load(&path).map_err(trust_err)?;
        file.add(name, &key).map_err(trust_err)?;
        file.save().map_err(trust_err)?;
        self.trust()
            .authorizer()
            .update(|set| set.add_root(key.bytes()));
        Ok(RootInfo {
            name: name.to_owned(),
            key: PublicIdentity::from_bytes(key.bytes()).openssh_line(),
            fingerprint: key.fingerprint(),
        })
    }

    /// Stops trusting `key` as a root.
    pub async fn trust_roots_rm(&self, key: &str) -> Result<RootInfo, NodeError> {
        let key = self.trust().resolve_key(key)?;
        let path = self.home().roots_path();
        let mut file = RootsFile::load(&path).map_err(trust_err)?;
        file.remove(&key).map_err(trust_err)?;
        file.save().map_err(trust_err)?;
        if key.bytes() != self.public().bytes() {
            self.trust()
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
