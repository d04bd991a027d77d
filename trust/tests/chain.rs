//! Certificates and delegation chains: every way a chain can be wrong is
//! refused with its own error.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use clive_trust::{
    Capability, Caps, CertBody, CertError, Certificate, ChainError, LinkError, ManualClock,
    PublicIdentity, Revocation, SecretKey, TrustSet,
    cert::MAX_CERT_LEN,
    sshsig::{KeySigner, Signer},
};
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn signer(n: u8) -> KeySigner {
    let secret = SecretKey::from_seed([n; 32]);
    let public = PublicIdentity::from_bytes(secret.public_bytes());
    KeySigner::new(secret, public).unwrap()
}

fn body(issuer: &KeySigner, subject: &KeySigner, caps: &[Capability], delegate: u8) -> CertBody {
    CertBody {
        issuer: issuer.public(),
        subject: subject.public(),
        caps: Caps::of(caps),
        delegate,
        valid_from: NOW - DAY,
        valid_until: NOW + 30 * DAY,
        nonce: [issuer.public().bytes()[0] ^ subject.public().bytes()[0]; 16],
    }
}

fn grant(
    issuer: &KeySigner,
    subject: &KeySigner,
    caps: &[Capability],
    delegate: u8,
) -> Certificate {
    body(issuer, subject, caps, delegate).sign(issuer).unwrap()
}

use Capability::{Exec, Fetch, Push};
const ALL: &[Capability] = &[Exec, Fetch, Push];

/// root -> k1 -> k2 -> ... -> k(n), each link allowing the rest.
fn chain_of(n: u8) -> (TrustSet, Vec<Certificate>, Vec<KeySigner>) {
    let keys: Vec<KeySigner> = (0..=n).map(signer).collect();
    let certs: Vec<Certificate> = (0..n as usize)
        .map(|i| grant(&keys[i], &keys[i + 1], ALL, n - 1 - i as u8))
        .collect();
    let set = TrustSet::with_roots([keys[0].public().bytes()]);
    (set, certs, keys)
}

fn link_error(e: ChainError) -> (usize, LinkError) {
    match e {
        ChainError::Link { index, reason, .. } => (index, *reason),
        other => panic!("expected a link error, got {other}"),
    }
}

#[test]
fn a_valid_four_link_chain_is_found_and_verified() {
    let (mut set, certs, keys) = chain_of(4);
    let peer = keys[4].public();
    set.verify_chain(&certs, &peer, Fetch, NOW).unwrap();
    for c in &certs {
        set.add_cert(c.clone());
    }
    let chain = set.find_chain(&peer, Exec, NOW).unwrap();
    assert_eq!(chain.links.len(), 4);
    // Encodings round-trip to the same certificate id.
    for c in &certs {
        let again = Certificate::decode(&c.encode()).unwrap();
        assert_eq!(again.id(), c.id());
    }
}

#[test]
fn tampered_body_wrong_namespace_and_other_signer_are_refused() {
    let (a, b, c) = (signer(1), signer(2), signer(3));
    let cert = grant(&a, &b, &[Fetch], 0);
    let text = cert.body().encode();
    let tampered = text.replace("capabilities fetch", "capabilities exec");
    let err = Certificate::from_parts(tampered.as_bytes(), &cert.signature_armored()).unwrap_err();
    assert!(
        matches!(&err, CertError::Signature(m) if m.contains("does not match")),
        "{err}"
    );

    let other_ns = a.sign("other", text.as_bytes()).unwrap();
    let err = Certificate::from_parts(text.as_bytes(), &other_ns.to_armored()).unwrap_err();
    assert!(
        matches!(&err, CertError::Signature(m) if m.contains("namespace")),
        "{err}"
    );

    let by_c = c.sign("clive-cert", text.as_bytes()).unwrap();
    let err = Certificate::from_parts(text.as_bytes(), &by_c.to_armored()).unwrap_err();
    assert!(
        matches!(&err, CertError::Signature(m) if m.contains("made by key")),
        "{err}"
    );
}

#[test]
fn a_link_cannot_widen_outlive_or_overdelegate_its_parent() {
    let (r, a, b) = (signer(1), signer(2), signer(3));
    let set = TrustSet::with_roots([r.public().bytes()]);
    let parent = grant(&r, &a, &[Fetch], 1);

    let wider = grant(&a, &b, &[Fetch, Push], 0);
    let (i, e) = link_error(
        set.verify_chain(&[parent.clone(), wider], &b.public(), Fetch, NOW)
            .unwrap_err(),
    );
    assert_eq!(i, 2);
    assert!(matches!(e, LinkError::WidensCapabilities { .. }), "{e}");

    let mut longer = body(&a, &b, &[Fetch], 0);
    longer.valid_until = NOW + 365 * DAY;
    let longer = longer.sign(&a).unwrap();
    let (_, e) = link_error(
        set.verify_chain(&[parent.clone(), longer], &b.public(), Fetch, NOW)
            .unwrap_err(),
    );
    assert!(matches!(e, LinkError::OutlivesParent { .. }), "{e}");

    let no_delegation = grant(&r, &a, &[Fetch], 0);
    let child = grant(&a, &b, &[Fetch], 0);
    let (_, e) = link_error(
        set.verify_chain(&[no_delegation, child], &b.public(), Fetch, NOW)
            .unwrap_err(),
    );
    assert!(
        matches!(
            e,
            LinkError::DepthExceeded {
                parent: 0,
                depth: 0
            }
        ),
        "{e}"
    );

    let same_depth = grant(&a, &b, &[Fetch], 1);
    let (_, e) = link_error(
        set.verify_chain(&[parent, same_depth], &b.public(), Fetch, NOW)
            .unwrap_err(),
    );
    assert!(
        matches!(
            e,
            LinkError::DepthExceeded {
                parent: 1,
                depth: 1
            }
        ),
        "{e}"
    );
}

#[test]
fn expiry_follows_the_injected_clock() {
    let (r, a) = (signer(1), signer(2));
    let cert = grant(&r, &a, &[Fetch], 0);
    let clock = ManualClock::new(NOW);
    let mut set = TrustSet::with_roots([r.public().bytes()]);
    set.add_cert(cert);
    let auth = clive_trust::Authorizer::new(set, std::sync::Arc::new(clock.clone()));
    assert!(auth.allows(&a.public().bytes(), Fetch));
    clock.set(NOW + 31 * DAY);
    assert!(!auth.allows(&a.public().bytes(), Fetch));
    let (_, e) = link_error(auth.check(&a.public(), Fetch).unwrap_err());
    assert!(matches!(e, LinkError::Expired(_)), "{e}");
    clock.set(NOW - 2 * DAY);
    let (_, e) = link_error(auth.check(&a.public(), Fetch).unwrap_err());
    assert!(matches!(e, LinkError::NotYetValid(_)), "{e}");
}

#[test]
fn a_revoked_ancestor_breaks_the_chain_and_cached_verdicts() {
    let (mut set, certs, keys) = chain_of(3);
    for c in &certs {
        set.add_cert(c.clone());
    }
    let peer = keys[3].public();
    let auth = clive_trust::Authorizer::new(set, std::sync::Arc::new(ManualClock::new(NOW)));
    let revoked_ids = auth.subscribe();
    assert!(auth.allows(&peer.bytes(), Push));
    // The first link's issuer (the root) revokes it.
    let r = Revocation::sign(certs[0].id(), NOW, &keys[0]).unwrap();
    let r = Revocation::decode(&r.encode()).unwrap();
    auth.revoke(r);
    assert_eq!(revoked_ids.try_recv().unwrap(), certs[0].id());
    assert!(!auth.allows(&peer.bytes(), Push));
    let (i, e) = link_error(auth.check(&peer, Push).unwrap_err());
    assert_eq!(i, 1);
    assert!(matches!(e, LinkError::Revoked { .. }), "{e}");

    // A revocation by an unrelated key changes nothing.
    let (mut set, certs, keys) = chain_of(2);
    for c in &certs {
        set.add_cert(c.clone());
    }
    set.add_revocation(Revocation::sign(certs[0].id(), NOW, &signer(99)).unwrap());
    set.find_chain(&keys[2].public(), Fetch, NOW).unwrap();
}

#[test]
fn cycles_and_overlong_chains_are_refused() {
    let (r, a, b) = (signer(1), signer(2), signer(3));
    let set = TrustSet::with_roots([r.public().bytes()]);
    let cycle = [
        grant(&r, &a, ALL, 5),
        grant(&a, &b, ALL, 4),
        grant(&b, &a, ALL, 3),
    ];
    let (i, e) = link_error(
        set.verify_chain(&cycle, &a.public(), Fetch, NOW)
            .unwrap_err(),
    );
    assert_eq!(i, 3);
    assert!(matches!(e, LinkError::Cycle(_)), "{e}");

    let keys: Vec<KeySigner> = (0..=9).map(signer).collect();
    let nine: Vec<Certificate> = (0..9)
        .map(|i| grant(&keys[i], &keys[i + 1], ALL, 7))
        .collect();
    let set = TrustSet::with_roots([keys[0].public().bytes()]);
    let err = set
        .verify_chain(&nine, &keys[9].public(), Fetch, NOW)
        .unwrap_err();
    assert_eq!(err, ChainError::TooLong(9));
}

#[test]
fn missing_capability_and_untrusted_issuer_are_explained() {
    let (r, a, stranger) = (signer(1), signer(2), signer(3));
    let mut set = TrustSet::with_roots([r.public().bytes()]);
    set.add_cert(grant(&r, &a, &[Fetch], 0));
    let err = set.find_chain(&a.public(), Exec, NOW).unwrap_err();
    assert!(
        matches!(err, ChainError::MissingCapability { wanted: Exec, .. }),
        "{err}"
    );
    let err = set.find_chain(&stranger.public(), Fetch, NOW).unwrap_err();
    assert!(matches!(err, ChainError::NoCertificate(_)), "{err}");
    let (i, e) = link_error(
        set.verify_chain(
            &[grant(&stranger, &a, &[Fetch], 0)],
            &a.public(),
            Fetch,
            NOW,
        )
        .unwrap_err(),
    );
    assert_eq!(i, 1);
    assert!(matches!(e, LinkError::UntrustedIssuer(_)), "{e}");
}

#[test]
fn attest_is_a_capability_like_the_others_and_leaves_older_encodings_alone() {
    use Capability::Attest;
    assert_eq!("attest".parse::<Capability>().unwrap(), Attest);
    assert_eq!(Attest.to_string(), "attest");
    let caps = Caps::parse("push,attest,exec").unwrap();
    assert!(caps.contains(Attest) && caps.contains(Exec) && !caps.contains(Fetch));
    // Sorted like every set: attest first.
    assert_eq!(caps.to_string(), "attest,exec,push");
    assert_eq!(
        Caps::of(&Capability::ALL).to_string(),
        "attest,exec,fetch,push"
    );
    let err = Caps::parse("attest,bogus").unwrap_err();
    assert!(
        err.to_string().contains("known: attest, exec, fetch, push"),
        "{err}"
    );
    assert!(Caps::parse("attest,attest").is_err());

    // A certificate granting attest round-trips through its text.
    let (a, b) = (signer(1), signer(2));
    let cert = grant(&a, &b, &[Attest, Fetch], 0);
    let text = cert.body().encode();
    assert!(text.contains("\ncapabilities attest,fetch\n"), "{text}");
    let again = Certificate::decode(&cert.encode()).unwrap();
    assert_eq!(again.id(), cert.id());
    assert!(again.body().caps.contains(Attest));

    // One without attest encodes exactly as before attest existed.
    let older = grant(&a, &b, ALL, 0).body().encode();
    assert!(
        older.contains("\ncapabilities exec,fetch,push\n"),
        "{older}"
    );

    // It is checked like the others: granted, held; not granted, refused;
    // and a link cannot add it.
    let mut set = TrustSet::with_roots([a.public().bytes()]);
    set.add_cert(cert);
    set.find_chain(&b.public(), Attest, NOW).unwrap();
    set.find_chain(&b.public(), Exec, NOW).unwrap_err();
    let c = signer(3);
    // (root -> k1 may delegate once, but grants exec,fetch,push only.)
    let (mut set, certs, keys) = chain_of(2);
    set.add_cert(certs[0].clone());
    set.add_cert(grant(&keys[1], &c, &[Attest], 0));
    assert!(set.find_chain(&c.public(), Attest, NOW).is_err());
}

#[test]
fn garbage_and_oversized_input_is_refused() {
    for garbage in [&b""[..], b"hello", b"clive-cert v1\n", &[0xff; 100]] {
        assert!(Certificate::decode(garbage).is_err());
        assert!(CertBody::decode(garbage).is_err());
    }
    let big = vec![b'a'; MAX_CERT_LEN + 1];
    assert_eq!(
        Certificate::decode(&big).unwrap_err(),
        CertError::TooLarge(MAX_CERT_LEN + 1)
    );
    let cert = grant(&signer(1), &signer(2), &[Fetch], 0);
    let mut spaced = cert.encode();
    spaced.insert(0, b'\n');
    assert!(Certificate::decode(&spaced).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn altering_any_byte_of_any_link_fails_verification(
        link in 0usize..4,
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (set, certs, keys) = chain_of(4);
        let mut bytes = certs[link].encode();
        let at = at.index(bytes.len());
        bytes[at] ^= flip;
        let outcome = Certificate::decode(&bytes).map(|altered| {
            let mut links = certs.clone();
            links[link] = altered;
            set.verify_chain(&links, &keys[4].public(), Fetch, NOW)
        });
        prop_assert!(!matches!(outcome, Ok(Ok(_))), "byte {} of link {} altered, still valid", at, link);
    }
}
