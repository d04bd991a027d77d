//! The node's trust state (`NodeTrust`): roots, certificates and
//! revocations, and the authorizer every request from a peer is checked
//! against. Both the node (which opens it) and the network layer (which
//! asks it) use it; it uses neither.
//!
//! Roots live in `HOME/allowed_signers` (OpenSSH format; the node's own key
//! is always a root too). Certificates and revocations live in `state.redb`
//! (tables `trust.certs.v1` and `trust.revocations.v1`, keyed by the BLAKE3
//! hash of their encoding) and, as objects, in the store, where gc keeps them.

use std::{path::Path, sync::Arc};

use clive_cas::{Hash, Store};
use clive_trust::{
    Authorizer, Capability, CertError, CertId, Certificate, Chain, ChainError, Clock,
    PublicIdentity, Revocation, RootsFile, TrustSet, cert::id_hex, clock::format_time,
    identity::with_suffix,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{
    NodeError, TrustError,
    error::{KeyError, StateError},
};

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
    /// `attest,exec,fetch,push` or a subset.
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

/// The node's trust state.
#[derive(Debug)]
pub struct NodeTrust {
    db: Arc<Database>,
    roots_path: std::path::PathBuf,
    own: PublicIdentity,
    authorizer: Arc<Authorizer>,
}

/// Why a peer does not hold a capability here: the capability, and the
/// link of the best chain that failed. Shown to the peer as the refusal of
/// its request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("you do not hold {cap} here: {cause}")]
pub struct Refusal {
    /// The capability asked for.
    pub cap: Capability,
    /// Why no chain grants it.
    pub cause: ChainError,
}

/// A row of a trust table: the hash of an encoding, and the encoding.
type Row = ([u8; 32], Vec<u8>);

/// Every row of a table; none before its first write (tables are created by
/// the first write, so opening a node writes nothing).
fn read_table(
    db: &Database,
    table: TableDefinition<&[u8; 32], &[u8]>,
) -> Result<Vec<Row>, NodeError> {
    let tx = db.begin_read().map_err(StateError::from)?;
    let table = match tx.open_table(table) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(StateError::from(e).into()),
    };
    let mut rows = Vec::new();
    for item in table.iter().map_err(StateError::from)? {
        let (k, v) = item.map_err(StateError::from)?;
        rows.push((*k.value(), v.value().to_vec()));
    }
    Ok(rows)
}

impl crate::jobs::memo::Attestations for NodeTrust {
    fn attested(&self, key: &PublicIdentity) -> bool {
        self.holds(&key.bytes(), Capability::Attest)
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
        for root in RootsFile::load(roots_path)?.roots()? {
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

    /// The authorizer: the trust set, and who hears of revocations.
    pub fn authorizer(&self) -> &Arc<Authorizer> {
        &self.authorizer
    }

    /// The one capability check: the chain that grants `cap` to `peer` now,
    /// or the refusal to give it. Every request that needs a capability,
    /// and `trust verify`, asks this; the network layer's blob requests
    /// and admission ask [`NodeTrust::holds`], its cached answer.
    pub fn check(&self, peer: &PublicIdentity, cap: Capability) -> Result<Chain, Refusal> {
        self.authorizer
            .check(peer, cap)
            .map_err(|cause| Refusal { cap, cause })
    }

    /// Whether [`NodeTrust::check`] grants `cap` to the key `peer`, as the
    /// authorizer caches it until the chain expires (a refusal for a few
    /// seconds; any change of the trust set drops the cache): for every
    /// blob request, which must not walk chains each time.
    pub fn holds(&self, peer: &[u8; 32], cap: Capability) -> bool {
        self.authorizer.allows(peer, cap)
    }

    fn put(
        &self,
        table: TableDefinition<&[u8; 32], &[u8]>,
        bytes: &[u8],
    ) -> Result<[u8; 32], NodeError> {
        let key = *blake3::hash(bytes).as_bytes();
        let tx = self.db.begin_write().map_err(StateError::from)?;
        tx.open_table(table)
            .map_err(StateError::from)?
            .insert(&key, bytes)
            .map_err(StateError::from)?;
        tx.commit().map_err(StateError::from)?;
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
                    NodeError::UnknownKey(KeyError::UnknownFingerprint(key.to_owned()))
                });
        }
        let path = Path::new(key);
        if path.is_file() {
            return PublicIdentity::read_file(path).map_err(|e| match e {
                clive_trust::IdentityError::Read(e) => NodeError::Read(e),
                cause => NodeError::UnknownKey(KeyError::File {
                    path: path.to_owned(),
                    cause,
                }),
            });
        }
        Err(NodeError::UnknownKey(KeyError::NotAKey(key.to_owned())))
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

    /// Keeps a certificate: in the store (so it travels and gc keeps it)
    /// and in the trust set.
    pub async fn keep_cert(&self, store: &Store, cert: Certificate) -> Result<CertInfo, NodeError> {
        let (_, guard) = store.put_bytes(cert.encode()).await?;
        let id = self.add_cert(cert.clone())?;
        drop(guard);
        Ok(self.authorizer.with_set(|set| self.info(set, &id, &cert)))
    }
}

/// Reads a certificate, signature or revocation file, refusing it once it
/// yields more than a certificate can be.
pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>, NodeError> {
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
            let sig = String::from_utf8(sig).map_err(|_| TrustError::SigNotText {
                path: path.to_owned(),
            })?;
            Certificate::from_parts(&bytes, &sig).map_err(|cause| file_err(path, cause))
        }
        other => other.map_err(|cause| file_err(path, cause)),
    }
}

/// A certificate or revocation file that does not decode.
pub(crate) fn file_err(path: &Path, cause: CertError) -> NodeError {
    TrustError::File {
        path: path.to_owned(),
        cause,
    }
    .into()
}
