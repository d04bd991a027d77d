//! Benchmarks of the trust layer against the targets of the issue:
//!
//! - verifying a 4-link chain never seen before: at most 300 µs
//!   (`chain/decode_and_verify_4_links`: decoding the four encoded
//!   certificates, each SSHSIG signature checked, then
//!   `TrustSet::verify_chain`; `chain/find_chain_4_links`: search and
//!   verification in a trust set that already holds the four certificates);
//! - checking a peer's capability on the request path when nothing changed
//!   (cached verdict): at most 5 µs (`chain/allows_cached`).
//!
//! Run with `cargo bench -p clive-trust --bench chain`.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{hint::black_box, sync::Arc, time::Duration};

use clive_trust::{
    Authorizer, Capability, Caps, CertBody, Certificate, ManualClock, PublicIdentity, SecretKey,
    TrustSet,
    sshsig::{KeySigner, Signer},
};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

/// The fixed "now" of every measurement.
const NOW: u64 = 1_800_000_000;
/// One day, in seconds.
const DAY: u64 = 86_400;
/// Number of links in the measured chain.
const LINKS: u8 = 4;

/// A signer for the key derived from the seed `[n; 32]`.
fn signer(n: u8) -> KeySigner {
    let secret = SecretKey::from_seed([n; 32]);
    let public = PublicIdentity::from_bytes(secret.public_bytes());
    KeySigner::new(secret, public).expect("a signer from a seed")
}

/// root -> k1 -> ... -> k(n), each link granting every capability and
/// allowing the rest of the chain.
fn chain_of(n: u8) -> (TrustSet, Vec<Certificate>, Vec<KeySigner>) {
    let keys: Vec<KeySigner> = (0..=n).map(signer).collect();
    let certs: Vec<Certificate> = (0..usize::from(n))
        .map(|i| {
            let (issuer, subject) = (&keys[i], &keys[i + 1]);
            CertBody {
                issuer: issuer.public(),
                subject: subject.public(),
                caps: Caps::of(&Capability::ALL),
                delegate: n - 1 - i as u8,
                valid_from: NOW - DAY,
                valid_until: NOW + 30 * DAY,
                nonce: [issuer.public().bytes()[0] ^ subject.public().bytes()[0]; 16],
            }
            .sign(issuer)
            .expect("signing a certificate")
        })
        .collect();
    let set = TrustSet::with_roots([keys[0].public().bytes()]);
    (set, certs, keys)
}

/// Verifying a 4-link chain never seen before, with and without decoding.
fn verify_fresh(c: &mut Criterion) {
    let (set, certs, keys) = chain_of(LINKS);
    let peer = keys[usize::from(LINKS)].public();
    let encodings: Vec<Vec<u8>> = certs.iter().map(Certificate::encode).collect();

    let mut group = c.benchmark_group("chain");
    group.bench_function("decode_and_verify_4_links", |b| {
        b.iter_batched(
            || encodings.clone(),
            |encodings| {
                let links: Vec<Certificate> = encodings
                    .iter()
                    .map(|bytes| Certificate::decode(bytes).expect("a valid certificate"))
                    .collect();
                set.verify_chain(&links, &peer, Capability::Fetch, NOW)
                    .expect("a valid chain")
            },
            BatchSize::SmallInput,
        );
    });

    let mut holding = set.clone();
    for cert in &certs {
        holding.add_cert(cert.clone());
    }
    group.bench_function("find_chain_4_links", |b| {
        b.iter(|| {
            holding
                .find_chain(black_box(&peer), Capability::Fetch, NOW)
                .expect("a valid chain")
        });
    });
    group.finish();
}

/// The request-path check once the verdict is cached.
fn allows_cached(c: &mut Criterion) {
    let (mut set, certs, keys) = chain_of(LINKS);
    for cert in certs {
        set.add_cert(cert);
    }
    let peer = keys[usize::from(LINKS)].public().bytes();
    let auth = Authorizer::new(set, Arc::new(ManualClock::new(NOW)));
    assert!(auth.allows(&peer, Capability::Fetch), "warm-up call");

    let mut group = c.benchmark_group("chain");
    group.bench_function("allows_cached", |b| {
        b.iter(|| auth.allows(black_box(&peer), Capability::Fetch));
    });
    group.finish();
}

/// Short runs: the whole benchmark takes well under a minute once built.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = verify_fresh, allows_cached
}
criterion_main!(benches);
