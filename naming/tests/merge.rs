//! Two devices of one zone publishing apart, then merging: clocks,
//! conflicts, symmetry, versions, forks and equivocations, on real redb
//! files in one process.

// This target links every dependency of its package, used here or not.
#![allow(unused_crate_dependencies)]

use std::collections::BTreeMap;
use std::sync::Arc;

use clive_naming::{Content, Zones};
use clive_trust::{KeySigner, PublicIdentity, SecretKey, Signer};

const NOW: u64 = 1_900_000_000;
const Z: &str = "me";

fn signer(seed: u8) -> KeySigner {
    let secret = SecretKey::from_seed([seed; 32]);
    let public = PublicIdentity::from_bytes(secret.public_bytes());
    KeySigner::new(secret, public).unwrap()
}

fn zones(dir: &tempfile::TempDir, name: &str) -> Zones {
    let db = redb::Database::create(dir.path().join(format!("{name}.redb"))).unwrap();
    Zones::new(Arc::new(db))
}

fn content(n: u8) -> Content {
    Content {
        blake3: blake3::hash(&[n]).to_hex().to_string(),
        sha256: hex::encode([n; 32]),
        length: 1,
        kind: "blob".into(),
    }
}

struct Devices {
    a: Zones,
    b: Zones,
    ka: KeySigner,
    kb: KeySigner,
    _dir: tempfile::TempDir,
}

/// A zone of two devices; b follows it from a's first files.
fn devices() -> Devices {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (zones(&dir, "a"), zones(&dir, "b"));
    let (ka, kb) = (signer(1), signer(2));
    assert!(
        a.create_devices(Z, &[], 1, &[kb.public()], &ka, NOW)
            .unwrap()
            .committed
    );
    let files = a.files(Z).unwrap();
    b.follow(Z, &files.files["1.root.json"], None, None, NOW)
        .unwrap();
    b.update(Z, files, "a", NOW).unwrap();
    assert!(b.can_publish(Z, &kb.public()).unwrap());
    Devices {
        a,
        b,
        ka,
        kb,
        _dir: dir,
    }
}

fn hash(z: &Zones, name: &str) -> Option<String> {
    z.resolve(Z, name, true, NOW + 1000).ok().map(|r| r.hash)
}

/// The `signed` part of every file of a zone, by path.
fn signed_parts(z: &Zones) -> BTreeMap<String, serde_json::Value> {
    z.files(Z)
        .unwrap()
        .files
        .into_iter()
        .map(|(p, b)| {
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            (p, v["signed"].clone())
        })
        .collect()
}

fn timestamp(z: &Zones) -> u64 {
    z.show(Z, None).unwrap().verified.unwrap().timestamp
}

#[test]
fn a_dominating_clock_takes_that_side_both_ways() {
    let d = devices();
    d.a.publish(Z, "x", Some(&content(1)), &d.ka, NOW + 10)
        .unwrap();
    // b changed nothing: it takes a's documents as they are.
    let m =
        d.b.merge_from(Z, d.a.files(Z).unwrap(), "a", &d.kb, NOW + 11)
            .unwrap();
    assert!(!m.signed, "{m:?}");
    assert_eq!(hash(&d.b, "x"), Some(content(1).blake3));
    d.b.publish(Z, "x", Some(&content(2)), &d.kb, NOW + 12)
        .unwrap();
    let m =
        d.a.merge_from(Z, d.b.files(Z).unwrap(), "b", &d.ka, NOW + 13)
            .unwrap();
    assert!(!m.signed && m.conflicts.is_empty(), "{m:?}");
    assert_eq!(hash(&d.a, "x"), Some(content(2).blake3));
    assert_eq!(signed_parts(&d.a), signed_parts(&d.b));
    // A name changed on one side only keeps that side's value when the
    // other side changed something else.
    d.a.publish(Z, "y", Some(&content(3)), &d.ka, NOW + 14)
        .unwrap();
    d.b.publish(Z, "x", Some(&content(4)), &d.kb, NOW + 15)
        .unwrap();
    let m =
        d.a.merge_from(Z, d.b.files(Z).unwrap(), "b", &d.ka, NOW + 16)
            .unwrap();
    assert!(m.signed && m.conflicts.is_empty(), "{m:?}");
    assert_eq!(hash(&d.a, "x"), Some(content(4).blake3));
    assert_eq!(hash(&d.a, "y"), Some(content(3).blake3));
}

#[test]
fn concurrent_changes_pick_the_later_then_the_lower_hash_symmetrically() {
    let d = devices();
    // Apart: x on both (b later), y on both at the same time, z removed
    // on a (later) and changed on b.
    d.a.publish(Z, "z", Some(&content(9)), &d.ka, NOW + 1)
        .unwrap();
    d.b.merge_from(Z, d.a.files(Z).unwrap(), "a", &d.kb, NOW + 2)
        .unwrap();
    let before = (timestamp(&d.a), timestamp(&d.b));
    d.a.publish(Z, "x", Some(&content(1)), &d.ka, NOW + 10)
        .unwrap();
    d.b.publish(Z, "x", Some(&content(2)), &d.kb, NOW + 20)
        .unwrap();
    d.a.publish(Z, "y", Some(&content(3)), &d.ka, NOW + 30)
        .unwrap();
    d.b.publish(Z, "y", Some(&content(4)), &d.kb, NOW + 30)
        .unwrap();
    d.b.publish(Z, "z", Some(&content(5)), &d.kb, NOW + 35)
        .unwrap();
    d.a.publish(Z, "z", None, &d.ka, NOW + 40).unwrap();
    let (fa, fb) = (d.a.files(Z).unwrap(), d.b.files(Z).unwrap());
    let apart = (timestamp(&d.a), timestamp(&d.b));
    assert!(apart.0 > before.0 && apart.1 > before.1);
    // Both merge at once, each the other's pre-merge files.
    let ma = d.a.merge_from(Z, fb, "b", &d.ka, NOW + 50).unwrap();
    let mb = d.b.merge_from(Z, fa, "a", &d.kb, NOW + 60).unwrap();
    assert!(ma.signed && mb.signed);
    assert_eq!(signed_parts(&d.a), signed_parts(&d.b));
    assert!(timestamp(&d.a) > apart.0.max(apart.1));
    assert_eq!(hash(&d.a, "x"), Some(content(2).blake3));
    let lower = std::cmp::min(content(3).blake3, content(4).blake3);
    assert_eq!(hash(&d.a, "y"), Some(lower.clone()));
    assert_eq!(hash(&d.a, "z"), None);
    assert_eq!(hash(&d.b, "z"), None);
    let conflicts = d.a.conflicts(Z).unwrap();
    assert_eq!(conflicts, ma.conflicts);
    assert_eq!(conflicts, mb.conflicts);
    let names: Vec<&str> = conflicts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["x", "y", "z"]);
    assert_eq!(conflicts[0].loser, Some(content(1).blake3));
    assert_eq!(conflicts[2].winner, None);
    assert_eq!(conflicts[2].loser, Some(content(5).blake3));
    // Both values stay in history.
    for z in [&d.a, &d.b] {
        let h = z.history(Z, "x").unwrap();
        for c in [1, 2] {
            assert!(
                h.iter().any(|e| e.hash == Some(content(c).blake3)),
                "{c}: {h:?}"
            );
        }
    }
    // The fork between the two device keys is reported as such.
    let info = d.a.show(Z, None).unwrap();
    assert!(info.equivocations.is_empty(), "{info:?}");
    assert!(!info.merged_forks.is_empty(), "{info:?}");
    // A later publish of a name drops its conflict.
    d.b.publish(Z, "x", Some(&content(7)), &d.kb, NOW + 70)
        .unwrap();
    let names: Vec<String> =
        d.b.conflicts(Z)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
    assert_eq!(names, ["y", "z"]);
    // Merging again changes nothing more: versions settle.
    let m =
        d.a.merge_from(Z, d.b.files(Z).unwrap(), "b", &d.ka, NOW + 80)
            .unwrap();
    assert!(!m.signed);
    assert_eq!(signed_parts(&d.a), signed_parts(&d.b));
}

#[test]
fn a_follower_records_the_fork_and_moves_on_and_an_equivocation_stays_one() {
    let d = devices();
    let dir = tempfile::tempdir().unwrap();
    let c = zones(&dir, "c");
    let first = d.a.files(Z).unwrap();
    c.follow(Z, &first.files["1.root.json"], None, None, NOW)
        .unwrap();
    d.a.publish(Z, "x", Some(&content(1)), &d.ka, NOW + 10)
        .unwrap();
    d.b.publish(Z, "x", Some(&content(2)), &d.kb, NOW + 20)
        .unwrap();
    c.update_from(Z, d.a.files(Z).unwrap(), "a", NOW + 30)
        .unwrap();
    // c is no device: merge_from is update_from.
    let m = c
        .merge_from(Z, d.b.files(Z).unwrap(), "b", &signer(7), NOW + 31)
        .unwrap();
    assert!(!m.signed);
    let info = c.show(Z, None).unwrap();
    assert!(info.equivocations.is_empty(), "{info:?}");
    assert!(
        info.merged_forks.iter().any(|f| f.role == "timestamp"),
        "{info:?}"
    );
    assert_eq!(hash(&c, "x"), Some(content(1).blake3));
    d.a.merge_from(Z, d.b.files(Z).unwrap(), "b", &d.ka, NOW + 40)
        .unwrap();
    c.update_from(Z, d.a.files(Z).unwrap(), "a", NOW + 41)
        .unwrap();
    assert_eq!(hash(&c, "x"), Some(content(2).blake3));
    assert_eq!(timestamp(&c), timestamp(&d.a));

    // One key signing two different documents of one version: still an
    // equivocation, not a fork.
    let e = zones(&dir, "e");
    e.follow(Z, &first.files["1.root.json"], None, None, NOW)
        .unwrap();
    e.update_from(Z, d.a.files(Z).unwrap(), "a", NOW + 50)
        .unwrap();
    let copy = zones(&dir, "copy");
    copy.follow(Z, &first.files["1.root.json"], None, None, NOW)
        .unwrap();
    copy.update_from(Z, d.a.files(Z).unwrap(), "a", NOW + 50)
        .unwrap();
    d.a.resign(Z, &d.ka, NOW + 100).unwrap();
    copy.publish(Z, "q", Some(&content(8)), &d.ka, NOW + 200)
        .unwrap();
    e.update_from(Z, d.a.files(Z).unwrap(), "a", NOW + 300)
        .unwrap();
    e.update_from(Z, copy.files(Z).unwrap(), "copy", NOW + 301)
        .unwrap();
    let info = e.show(Z, None).unwrap();
    assert!(
        info.equivocations.iter().any(|(r, _)| r == "timestamp"),
        "{info:?}"
    );
    assert!(info.merged_forks.is_empty(), "{info:?}");
}

#[test]
fn add_device_lets_the_new_key_publish_and_followers_take_the_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (zones(&dir, "a"), zones(&dir, "b"));
    let (ka, kb) = (signer(1), signer(2));
    a.create(Z, &[], 1, &ka, NOW).unwrap();
    let first = a.files(Z).unwrap();
    b.follow(Z, &first.files["1.root.json"], None, None, NOW)
        .unwrap();
    b.update(Z, first, "a", NOW).unwrap();
    assert!(!b.can_publish(Z, &kb.public()).unwrap());
    let change = a.add_device(Z, &kb.public(), &ka, NOW + 1).unwrap();
    assert!(change.committed && change.root.version == 2);
    assert!(a.add_device(Z, &kb.public(), &ka, NOW + 2).is_err());
    b.update_from(Z, a.files(Z).unwrap(), "a", NOW + 3).unwrap();
    assert!(b.can_publish(Z, &kb.public()).unwrap());
    b.publish(Z, "n", Some(&content(1)), &kb, NOW + 4).unwrap();
    a.merge_from(Z, b.files(Z).unwrap(), "b", &ka, NOW + 5)
        .unwrap();
    assert_eq!(hash(&a, "n"), Some(content(1).blake3));
}
