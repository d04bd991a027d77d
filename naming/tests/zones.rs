//! Zones end to end in one process: a publisher signs, a follower verifies
//! what it is handed through the TUF client workflow, both on real redb
//! files.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::sync::Arc;

use clive_naming::{Content, NamingError, Zones, zones::zone_name};
use clive_trust::{KeySigner, PublicIdentity, SecretKey};

const NOW: u64 = 1_900_000_000;

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

#[test]
fn publish_follow_resolve_history_and_override() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = zones(&dir, "a");
    let follower = zones(&dir, "b");
    let me = signer(1);
    let created = publisher.create("release", &[], 1, &me, NOW).unwrap();
    assert!(created.committed);
    publisher
        .publish("release", "myapp", Some(&content(1)), &me, NOW + 1)
        .unwrap();
    let got = publisher
        .resolve("release", "myapp", false, NOW + 2)
        .unwrap();
    assert_eq!(got.hash, content(1).blake3);
    assert!(!got.overridden && !got.stale);

    // The follower trusts the first root, then takes the publisher's files.
    let files = publisher.files("release").unwrap();
    let root = files.files.get("1.root.json").unwrap();
    let root_md = clive_naming::tuf::Metadata::<clive_naming::tuf::Root>::from_bytes(root).unwrap();
    assert_eq!(zone_name(&root_md.signed).as_deref(), Some("release"));
    follower.follow("release", root, None, None, NOW).unwrap();
    follower.update("release", files, "test", NOW + 3).unwrap();
    assert_eq!(
        follower
            .resolve("release", "myapp", false, NOW + 3)
            .unwrap()
            .hash,
        content(1).blake3
    );

    // A second version, then unpublish: history shows all three changes.
    publisher
        .publish("release", "myapp", Some(&content(2)), &me, NOW + 10)
        .unwrap();
    publisher
        .publish("release", "myapp", None, &me, NOW + 20)
        .unwrap();
    follower
        .update_from("release", all_files(&publisher), "test", NOW + 21)
        .unwrap();
    let history = follower.history("release", "myapp").unwrap();
    let events: Vec<&str> = history.iter().map(|c| c.event.as_str()).collect();
    assert_eq!(events, ["published", "changed", "unpublished"]);
    assert!(history.iter().all(|c| c.verified));
    assert_eq!(history[0].signers, [me_fingerprint(&me)]);
    assert!(matches!(
        follower.resolve("release", "myapp", false, NOW + 22),
        Err(NamingError::UnknownName { .. })
    ));

    // Overrides: local only, marked, logged.
    follower
        .set_override("release", "myapp", &content(9).blake3, "blob", NOW + 30)
        .unwrap();
    let o = follower
        .resolve("release", "myapp", false, NOW + 31)
        .unwrap();
    assert!(o.overridden);
    assert_eq!(o.hash, content(9).blake3);
    assert!(
        follower
            .clear_override("release", "myapp", NOW + 32)
            .unwrap()
    );
    let events: Vec<String> = follower
        .history("release", "myapp")
        .unwrap()
        .into_iter()
        .map(|c| c.event)
        .collect();
    assert_eq!(events[3..], ["override", "override cleared"]);

    // Past expiry: refused, unless offline, which marks it stale.
    publisher
        .publish("release", "app2", Some(&content(3)), &me, NOW + 40)
        .unwrap();
    follower
        .update(
            "release",
            publisher.files("release").unwrap(),
            "test",
            NOW + 41,
        )
        .unwrap();
    let later = NOW + 2 * 86_400;
    assert!(matches!(
        follower.resolve("release", "app2", false, later),
        Err(NamingError::Expired { .. })
    ));
    let stale = follower.resolve("release", "app2", true, later).unwrap();
    assert!(stale.stale);
    assert_eq!(stale.hash, content(3).blake3);
}

/// `follower` trusts `publisher`'s first root and takes its current files.
fn follow_from(follower: &Zones, publisher: &Zones) {
    let files = publisher.files("release").unwrap();
    let root = files.files.get("1.root.json").unwrap();
    follower.follow("release", root, None, None, NOW).unwrap();
    follower.update_from("release", files, "test", NOW).unwrap();
}

/// A zone's current files and the versions before them, as a peer serves
/// them.
fn all_files(zones: &Zones) -> clive_naming::source::Bundle {
    let mut files = zones.files("release").unwrap();
    files
        .files
        .extend(zones.older_files("release").unwrap().files);
    files
}

fn me_fingerprint(s: &KeySigner) -> String {
    use clive_trust::Signer;
    s.public().fingerprint()
}

#[test]
fn strangers_cannot_publish_and_forged_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = zones(&dir, "a");
    let follower = zones(&dir, "b");
    let me = signer(1);
    let mallory = signer(2);
    publisher.create("release", &[], 1, &me, NOW).unwrap();
    follow_from(&follower, &publisher);
    // Mallory signs a zone of her own with the same name: the follower,
    // pinned to the real root, refuses her timestamp.
    let fake = zones(&dir, "m");
    fake.create("release", &[], 1, &mallory, NOW).unwrap();
    fake.publish("release", "myapp", Some(&content(6)), &mallory, NOW + 1)
        .unwrap();
    let mut forged = fake.files("release").unwrap();
    forged.files.retain(|k, _| !k.contains("root"));
    assert!(
        follower
            .update("release", forged, "mallory", NOW + 2)
            .is_err()
    );
    assert!(matches!(
        follower.resolve("release", "myapp", false, NOW + 2),
        Err(NamingError::UnknownName { .. })
    ));
    assert!(matches!(
        publisher.publish("release", "x", Some(&content(1)), &mallory, NOW),
        Err(NamingError::CannotSign(_))
    ));
}

#[test]
fn equivocation_is_kept_as_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let a = zones(&dir, "a");
    let me = signer(1);
    a.create("release", &[], 1, &me, NOW).unwrap();
    let before = a.files("release").unwrap();
    // Another copy of the same zone state signs a different timestamp with
    // the same version: both validly signed.
    let b = zones(&dir, "b");
    b.follow(
        "release",
        before.files.get("1.root.json").unwrap(),
        None,
        None,
        NOW,
    )
    .unwrap();
    b.update("release", before.clone(), "test", NOW).unwrap();
    a.resign("release", &me, NOW + 100).unwrap();
    b.resign("release", &me, NOW + 200).unwrap();
    let c = zones(&dir, "c");
    c.follow(
        "release",
        before.files.get("1.root.json").unwrap(),
        None,
        None,
        NOW,
    )
    .unwrap();
    c.update("release", a.files("release").unwrap(), "a", NOW + 300)
        .unwrap();
    c.update("release", b.files("release").unwrap(), "b", NOW + 301)
        .unwrap();
    let info = c.show("release", None).unwrap();
    assert_eq!(info.equivocations, [("timestamp".to_owned(), 2)]);
    // What `status` lists, and what `name history` shows for any name.
    assert_eq!(c.list(None).unwrap()[0].equivocations, info.equivocations);
    let history = c.history("release", "anything").unwrap();
    assert!(
        history.iter().any(|h| h.event == "equivocation"),
        "{history:?}"
    );
    // The first document stays trusted.
    assert_eq!(info.verified.unwrap().timestamp, 2);
}

#[test]
fn key_rotation_with_cosigners() {
    let dir = tempfile::tempdir().unwrap();
    let a = zones(&dir, "a");
    let (me, bob, carol) = (signer(1), signer(2), signer(3));
    use clive_trust::Signer;
    // Root threshold 2 of {me, bob}: creating needs bob's signature.
    let change = a.create("release", &[bob.public()], 2, &me, NOW).unwrap();
    assert!(!change.committed);
    let file = change.file.unwrap();
    let (file, status) = Zones::root_sign(&file, &bob).unwrap();
    assert_eq!(status.signed_by.len(), 2);
    assert!(a.root_commit("release", &file, &me, NOW).unwrap().committed);
    // Rotate the targets key to carol: needs bob again.
    let change = a
        .rotate("release", "targets", &[carol.public()], None, &me, NOW + 1)
        .unwrap();
    assert!(!change.committed);
    assert!(
        a.root_commit("release", change.file.as_ref().unwrap(), &me, NOW + 1)
            .is_err()
    );
    let (file, _) = Zones::root_sign(change.file.as_ref().unwrap(), &bob).unwrap();
    a.root_commit("release", &file, &me, NOW + 2).unwrap();
    assert!(matches!(
        a.publish("release", "x", Some(&content(1)), &me, NOW + 3),
        Err(NamingError::CannotSign(_))
    ));
}

#[test]
fn timestamps_are_resigned_before_they_expire() {
    use clive_trust::Signer;
    let dir = tempfile::tempdir().unwrap();
    let a = zones(&dir, "a");
    let me = signer(1);
    a.create("release", &[], 1, &me, NOW).unwrap();
    assert!(
        a.due_for_resigning(&me.public(), NOW + 3600)
            .unwrap()
            .is_empty()
    );
    // With less than a third of its day left, the timestamp is due.
    let later = NOW + 17 * 3600;
    assert_eq!(
        a.due_for_resigning(&me.public(), later).unwrap(),
        ["release"]
    );
    // A node that does not hold the timestamp key never re-signs.
    assert!(
        a.due_for_resigning(&signer(2).public(), later)
            .unwrap()
            .is_empty()
    );
    a.resign("release", &me, later).unwrap();
    let info = a.show("release", None).unwrap();
    let v = info.verified.unwrap();
    assert_eq!(v.timestamp, 2);
    assert!(v.expires > later + 20 * 3600, "{v:?}");
    assert!(
        a.due_for_resigning(&me.public(), later + 3600)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_delegate_cannot_sign_outside_its_paths() {
    use clive_trust::Signer;
    let dir = tempfile::tempdir().unwrap();
    let (owner, delegate) = (zones(&dir, "a"), zones(&dir, "b"));
    let (me, bob) = (signer(1), signer(2));
    owner.create("release", &[], 1, &me, NOW).unwrap();
    owner
        .delegate("release", "beta/", &bob.public(), &me, NOW)
        .unwrap();
    follow_from(&delegate, &owner);
    assert_eq!(
        delegate
            .delegation_for("release", "beta/x", &bob.public())
            .unwrap()
            .as_deref(),
        Some("beta")
    );
    assert_eq!(
        delegate
            .delegation_for("release", "x", &bob.public())
            .unwrap(),
        None
    );
    let (_, good) = delegate
        .sign_delegated("release", "beta", "beta/x", Some(&content(1)), &bob, NOW)
        .unwrap();
    // A delegated document naming a path outside beta/*, validly signed by
    // the delegate: refused by the publisher.
    let (_, bad) = delegate
        .sign_delegated("release", "beta", "stable/x", Some(&content(2)), &bob, NOW)
        .unwrap();
    let refused = owner.accept_delegated("release", "beta", &bad, &me, NOW + 1);
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("outside the paths")
    );
    // Mallory's signature is not the delegation's.
    let (_, forged) = delegate
        .sign_delegated("release", "beta", "beta/x", Some(&content(3)), &bob, NOW)
        .unwrap();
    let mut forged_md =
        clive_naming::tuf::Metadata::<clive_naming::tuf::Targets>::from_bytes(&forged).unwrap();
    forged_md.signatures.clear();
    clive_naming::sign::sign(&mut forged_md, &signer(3)).unwrap();
    assert!(
        owner
            .accept_delegated(
                "release",
                "beta",
                &forged_md.to_bytes().unwrap(),
                &me,
                NOW + 1
            )
            .is_err()
    );
    owner
        .accept_delegated("release", "beta", &good, &me, NOW + 2)
        .unwrap();
    assert_eq!(
        owner
            .resolve("release", "beta/x", false, NOW + 3)
            .unwrap()
            .hash,
        content(1).blake3
    );
    // The same version again does not move forward.
    assert!(
        owner
            .accept_delegated("release", "beta", &good, &me, NOW + 4)
            .is_err()
    );
}
