//! Delegation chains and the question the node asks on every request:
//! "does peer P hold capability C now?".
//!
//! A chain is valid when its first issuer is a trust root, each link's
//! subject is the next link's issuer, each link only narrows its parent
//! (capabilities a subset, validity inside, delegation depth decreasing and
//! the parent allowing delegation at all), no link is expired, not yet valid
//! or revoked, no key appears twice, and there are at most
//! [`MAX_CHAIN_LEN`] links.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, RwLock, mpsc},
};

use crate::{
    PublicIdentity,
    cert::{Capability, CertId, Certificate, MAX_CHAIN_LEN, id_hex},
    clock::{Clock, Timestamp, format_time},
    revocation::Revocation,
};

/// A raw ed25519 public key, the identity of a node in chains.
pub type KeyBytes = [u8; 32];

/// Why one link of a chain fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The first issuer is not trusted here.
    #[error("its issuer {0} is not a trust root")]
    UntrustedIssuer(String),
    /// The link does not continue from the previous one.
    #[error("its issuer is not the previous link's subject")]
    Broken,
    /// It grants what its parent does not have.
    #[error("it grants {granted} but its parent only grants {parent}")]
    WidensCapabilities {
        /// What the link grants.
        granted: String,
        /// What its parent grants.
        parent: String,
    },
    /// Its validity reaches outside its parent's.
    #[error(
        "its validity {from}..{until} is not inside its parent's {parent_from}..{parent_until}"
    )]
    OutlivesParent {
        /// Its start.
        from: String,
        /// Its end.
        until: String,
        /// The parent's start.
        parent_from: String,
        /// The parent's end.
        parent_until: String,
    },
    /// Its parent may not delegate this far.
    #[error("delegation depth exceeded: its parent allows {parent} more links, it claims {depth}")]
    DepthExceeded {
        /// The parent's remaining depth.
        parent: u8,
        /// The link's claimed depth.
        depth: u8,
    },
    /// Its validity has ended.
    #[error("expired at {0}")]
    Expired(String),
    /// Its validity has not started.
    #[error("not valid before {0}")]
    NotYetValid(String),
    /// It, or this link as an ancestor, was revoked.
    #[error("revoked by {by} at {at}")]
    Revoked {
        /// Fingerprint of the revoker.
        by: String,
        /// When.
        at: String,
    },
    /// A key appears twice.
    #[error("its subject {0} already appears earlier in the chain (a cycle)")]
    Cycle(String),
}

/// Why a peer does not hold a capability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No certificate names the peer at all.
    #[error("no certificate grants anything to {0}")]
    NoCertificate(String),
    /// Certificates exist but none leads back to a trust root.
    #[error(
        "no chain of certificates from a trust root reaches {peer}: its certificates lead back to {ends}, not a trust root"
    )]
    NoChain {
        /// The peer.
        peer: String,
        /// Fingerprints of the issuers where the search ended.
        ends: String,
    },
    /// The chain is longer than allowed.
    #[error("the chain has {0} links, more than the {MAX_CHAIN_LEN} allowed")]
    TooLong(usize),
    /// A valid chain that does not grant the capability.
    #[error("the chain grants {granted}, not {wanted}")]
    MissingCapability {
        /// What it grants.
        granted: String,
        /// What was asked for.
        wanted: Capability,
    },
    /// The chain does not end at the peer.
    #[error("the chain ends at {found}, not at the peer {peer}")]
    WrongSubject {
        /// The last subject.
        found: String,
        /// The peer asked about.
        peer: String,
    },
    /// One link fails.
    #[error("link {index} ({id}) fails: {reason}")]
    Link {
        /// Position in the chain, from 1.
        index: usize,
        /// The certificate's id, shortened.
        id: String,
        /// Why.
        reason: Box<LinkError>,
    },
}

/// A chain that was found valid.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The links, root first.
    pub links: Vec<Certificate>,
    /// When the chain stops being valid.
    pub valid_until: Timestamp,
}

fn fp(key: &PublicIdentity) -> String {
    key.fingerprint()
}

fn short(id: &CertId) -> String {
    id_hex(id)[..16].to_owned()
}

/// Everything a verdict depends on.
#[derive(Debug, Clone, Default)]
pub struct TrustSet {
    roots: HashSet<KeyBytes>,
    certs: HashMap<CertId, Certificate>,
    by_subject: HashMap<KeyBytes, Vec<CertId>>,
    revocations: HashMap<CertId, Vec<Revocation>>,
}

impl TrustSet {
    /// An empty set with these roots.
    pub fn with_roots(roots: impl IntoIterator<Item = KeyBytes>) -> Self {
        TrustSet {
            roots: roots.into_iter().collect(),
            ..TrustSet::default()
        }
    }

    /// Trusts `key` as a root.
    pub fn add_root(&mut self, key: KeyBytes) {
        self.roots.insert(key);
    }

    /// Stops trusting `key` as a root.
    pub fn remove_root(&mut self, key: &KeyBytes) {
        self.roots.remove(key);
    }

    /// Whether `key` is a root.
    pub fn is_root(&self, key: &KeyBytes) -> bool {
        self.roots.contains(key)
    }

    /// Adds a (signature-checked) certificate.
    pub fn add_cert(&mut self, cert: Certificate) -> CertId {
        let id = cert.id();
        if !self.certs.contains_key(&id) {
            self.by_subject
                .entry(cert.body().subject.bytes())
                .or_default()
                .push(id);
            self.certs.insert(id, cert);
        }
        id
    }

    /// Adds a (signature-checked) revocation.
    pub fn add_revocation(&mut self, revocation: Revocation) {
        let list = self.revocations.entry(revocation.certificate).or_default();
        if !list
            .iter()
            .any(|r| r.revoker.bytes() == revocation.revoker.bytes())
        {
            list.push(revocation);
        }
    }

    /// A certificate by id.
    pub fn cert(&self, id: &CertId) -> Option<&Certificate> {
        self.certs.get(id)
    }

    /// Every certificate.
    pub fn certs(&self) -> impl Iterator<Item = (&CertId, &Certificate)> {
        self.certs.iter()
    }

    /// The revocation that applies to `cert`: one signed by its issuer or by a root.
    pub fn revocation_of(&self, id: &CertId, cert: &Certificate) -> Option<&Revocation> {
        self.revocations.get(id)?.iter().find(|r| {
            r.revoker.bytes() == cert.body().issuer.bytes()
                || self.roots.contains(&r.revoker.bytes())
        })
    }

    /// Checks an explicit chain (root first) for `peer` and `cap` at `now`.
    pub fn verify_chain(
        &self,
        links: &[Certificate],
        peer: &PublicIdentity,
        cap: Capability,
        now: Timestamp,
    ) -> Result<Chain, ChainError> {
        if links.len() > MAX_CHAIN_LEN {
            return Err(ChainError::TooLong(links.len()));
        }
        let Some(last) = links.last() else {
            return Err(ChainError::NoCertificate(fp(peer)));
        };
        let mut seen = HashSet::new();
        let mut valid_until = Timestamp::MAX;
        for (i, cert) in links.iter().enumerate() {
            let id = cert.id();
            let body = cert.body();
            let fail = |reason| ChainError::Link {
                index: i + 1,
                id: short(&id),
                reason: Box::new(reason),
            };
            match i.checked_sub(1).map(|p| links[p].body()) {
                None => {
                    if !self.roots.contains(&body.issuer.bytes()) {
                        return Err(fail(LinkError::UntrustedIssuer(fp(&body.issuer))));
                    }
                    seen.insert(body.issuer.bytes());
                }
                Some(parent) => {
                    if parent.subject.bytes() != body.issuer.bytes() {
                        return Err(fail(LinkError::Broken));
                    }
                    if !body.caps.is_subset_of(parent.caps) {
                        return Err(fail(LinkError::WidensCapabilities {
                            granted: body.caps.to_string(),
                            parent: parent.caps.to_string(),
                        }));
                    }
                    if body.valid_from < parent.valid_from || body.valid_until > parent.valid_until
                    {
                        return Err(fail(LinkError::OutlivesParent {
                            from: format_time(body.valid_from),
                            until: format_time(body.valid_until),
                            parent_from: format_time(parent.valid_from),
                            parent_until: format_time(parent.valid_until),
                        }));
                    }
                    if parent.delegate == 0 || body.delegate >= parent.delegate {
                        return Err(fail(LinkError::DepthExceeded {
                            parent: parent.delegate,
                            depth: body.delegate,
                        }));
                    }
                }
            }
            if !seen.insert(body.subject.bytes()) {
                return Err(fail(LinkError::Cycle(fp(&body.subject))));
            }
            if now >= body.valid_until {
                return Err(fail(LinkError::Expired(format_time(body.valid_until))));
            }
            if now < body.valid_from {
                return Err(fail(LinkError::NotYetValid(format_time(body.valid_from))));
            }
            if let Some(r) = self.revocation_of(&id, cert) {
                return Err(fail(LinkError::Revoked {
                    by: fp(&r.revoker),
                    at: format_time(r.revoked_at),
                }));
            }
            valid_until = valid_until.min(body.valid_until);
        }
        let body = last.body();
        if body.subject.bytes() != peer.bytes() {
            return Err(ChainError::WrongSubject {
                found: fp(&body.subject),
                peer: fp(peer),
            });
        }
        if !body.caps.contains(cap) {
            return Err(ChainError::MissingCapability {
                granted: body.caps.to_string(),
                wanted: cap,
            });
        }
        Ok(Chain {
            links: links.to_vec(),
            valid_until,
        })
    }

    /// Finds a valid chain granting `cap` to `peer` at `now`, or explains why
    /// there is none (with the failure of the longest candidate chain).
    pub fn find_chain(
        &self,
        peer: &PublicIdentity,
        cap: Capability,
        now: Timestamp,
    ) -> Result<Chain, ChainError> {
        if !self.by_subject.contains_key(&peer.bytes()) {
            return Err(ChainError::NoCertificate(fp(peer)));
        }
        let mut candidates = Vec::new();
        let mut path = Vec::new();
        let mut ends = Vec::new();
        self.collect(peer.bytes(), &mut path, &mut candidates, &mut ends);
        let mut best: Option<ChainError> = None;
        for mut links in candidates {
            links.reverse();
            let certs: Vec<Certificate> = links
                .iter()
                .filter_map(|id| self.certs.get(id).cloned())
                .collect();
            match self.verify_chain(&certs, peer, cap, now) {
                Ok(chain) => return Ok(chain),
                Err(e) => {
                    // Prefer explaining a capability or link failure over the rest.
                    if best.is_none() || matches!(e, ChainError::MissingCapability { .. }) {
                        best = Some(e);
                    }
                }
            }
        }
        Err(best.unwrap_or_else(|| {
            ends.sort();
            ends.dedup();
            ChainError::NoChain {
                peer: fp(peer),
                ends: ends
                    .iter()
                    .map(|k| fp(&PublicIdentity::from_bytes(*k)))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        }))
    }

    /// Depth-first search backwards from `subject` to the roots; `path` holds
    /// certificate ids from the peer upwards.
    fn collect(
        &self,
        subject: KeyBytes,
        path: &mut Vec<CertId>,
        out: &mut Vec<Vec<CertId>>,
        ends: &mut Vec<KeyBytes>,
    ) {
        if path.len() >= MAX_CHAIN_LEN || out.len() >= 64 {
            return;
        }
        if !self.by_subject.contains_key(&subject) {
            ends.push(subject);
            return;
        }
        for id in self.by_subject.get(&subject).into_iter().flatten() {
            if path.contains(id) {
                continue;
            }
            let Some(cert) = self.certs.get(id) else {
                continue;
            };
            let issuer = cert.body().issuer.bytes();
            // Never walk through a key already on the path (no cycles).
            let on_path = path.iter().any(|p| {
                self.certs
                    .get(p)
                    .is_some_and(|c| c.body().subject.bytes() == issuer)
            });
            if on_path {
                continue;
            }
            path.push(*id);
            if self.roots.contains(&issuer) {
                out.push(path.clone());
            } else {
                self.collect(issuer, path, out, ends);
            }
            path.pop();
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Verdict {
    allowed: bool,
    until: Timestamp,
}

/// Answers "may peer P do C now?" on the request path, caching verdicts
/// until something they depend on changes or the chain expires.
#[derive(Debug)]
pub struct Authorizer {
    set: RwLock<TrustSet>,
    cache: Mutex<HashMap<(KeyBytes, Capability), Verdict>>,
    clock: Arc<dyn Clock>,
    watchers: Mutex<Vec<mpsc::Sender<CertId>>>,
}

/// How long a refusal is remembered when nothing changes, in seconds
/// (a certificate may become valid as time passes).
const DENIAL_TTL: Timestamp = 1;

impl Authorizer {
    /// An authorizer over `set`, telling time by `clock`.
    pub fn new(set: TrustSet, clock: Arc<dyn Clock>) -> Self {
        Authorizer {
            set: RwLock::new(set),
            cache: Mutex::new(HashMap::new()),
            clock,
            watchers: Mutex::new(Vec::new()),
        }
    }

    /// Whether `peer` holds `cap` now. Fast when nothing changed.
    pub fn allows(&self, peer: &KeyBytes, cap: Capability) -> bool {
        let now = self.clock.now();
        if let Ok(cache) = self.cache.lock()
            && let Some(v) = cache.get(&(*peer, cap))
            && now < v.until
        {
            return v.allowed;
        }
        let result = self.check(&PublicIdentity::from_bytes(*peer), cap);
        let verdict = match &result {
            Ok(chain) => Verdict {
                allowed: true,
                until: chain.valid_until,
            },
            Err(_) => Verdict {
                allowed: false,
                until: now.saturating_add(DENIAL_TTL),
            },
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert((*peer, cap), verdict);
        }
        verdict.allowed
    }

    /// The chain that grants `cap` to `peer` now, or why there is none.
    pub fn check(&self, peer: &PublicIdentity, cap: Capability) -> Result<Chain, ChainError> {
        let now = self.clock.now();
        match self.set.read() {
            Ok(set) => set.find_chain(peer, cap, now),
            Err(poisoned) => poisoned.into_inner().find_chain(peer, cap, now),
        }
    }

    /// Changes the trust set (roots, certificates); cached verdicts are dropped.
    pub fn update(&self, change: impl FnOnce(&mut TrustSet)) {
        match self.set.write() {
            Ok(mut set) => change(&mut set),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }

    /// Records a revocation, drops cached verdicts and tells the watchers.
    pub fn revoke(&self, revocation: Revocation) {
        let id = revocation.certificate;
        self.update(|set| set.add_revocation(revocation));
        if let Ok(mut watchers) = self.watchers.lock() {
            watchers.retain(|w| w.send(id).is_ok());
        }
    }

    /// A channel that receives the id of every certificate revoked from now on.
    pub fn subscribe(&self) -> mpsc::Receiver<CertId> {
        let (tx, rx) = mpsc::channel();
        if let Ok(mut watchers) = self.watchers.lock() {
            watchers.push(tx);
        }
        rx
    }

    /// Reads the trust set.
    pub fn with_set<R>(&self, read: impl FnOnce(&TrustSet) -> R) -> R {
        match self.set.read() {
            Ok(set) => read(&set),
            Err(poisoned) => read(&poisoned.into_inner()),
        }
    }
}
