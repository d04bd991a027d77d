//! Separate `clive-node start` processes on loopback, driven through the CLI:
//! invite and join, a 1,000-file tree, push, a restart and reconnection,
//! revocation, refusals, and a fetch that resumes after SIGKILL.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{os::unix::fs::MetadataExt, path::Path, process::Stdio, time::Duration};

use clive_tests::{TestNode, admit, assert_same_tree, eventually, write_pseudo_random};

fn endpoint_id(node: &TestNode) -> String {
    node.json(["id"])["endpoint_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn peer_connected(node: &TestNode, peer: &str) -> bool {
    node.json(["status"])["peers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["endpoint_id"] == peer && p["connected"] == true)
}

fn make_tree(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{:02}", i % 25));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("f{i:04}")),
            format!("{i}\n").repeat(i % 9 + 1),
        )
        .unwrap();
    }
}

#[test]
fn daemons_join_fetch_push_restart_and_revoke() {
    let (a, b, c) = (
        TestNode::loopback(),
        TestNode::loopback(),
        TestNode::loopback(),
    );
    let a_daemon = a.start_daemon();
    let b_daemon = b.start_daemon();
    let _c_daemon = c.start_daemon();
    let a_id = endpoint_id(&a);
    let b_id = endpoint_id(&b);
    admit(&a, &b, "fetch,push");
    admit(&a, &c, "fetch");

    // A tree of 1,000 files from A to B, written out with -o.
    let src = a.scratch("src");
    make_tree(&src, 1000);
    let hash = a.json(["add", src.to_str().unwrap(), "--pin", "src"])[0]["hash"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("add --json printed no hash"));
    let out = b.scratch("out");
    let got = b.json(["get", &hash, "--from", &a_id, "-o", out.to_str().unwrap()]);
    assert_eq!(got["objects"], 1000 + 25 + 1);
    assert_same_tree(&src, &out);

    // B pushes to A; C (fetch only) cannot.
    let note = b.scratch("note");
    std::fs::write(&note, "from B\n").unwrap();
    let note_hash = b.json(["add", note.to_str().unwrap()])[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    b.ok(["push", &note_hash, "--to", &a_id]);
    assert_eq!(a.ok(["cat", &note_hash]), "from B\n");
    c.ok(["add", note.to_str().unwrap()]);
    let err = c.fails(["push", &note_hash, "--to", &a_id]);
    assert!(err.contains("refused the push"), "{err}");

    // B restarts; A and B reconnect on their own.
    eventually("A sees B connected", || peer_connected(&a, &b_id));
    b.stop(b_daemon);
    let b_daemon = b.start_daemon();
    eventually("B reconnects to A after a restart", || {
        peer_connected(&b, &a_id) && peer_connected(&a, &b_id)
    });

    // A revokes B's certificate: B's next fetch is refused.
    let certs = a.json(["trust", "ls"]);
    let b_cert = certs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject_fingerprint"] == b.json(["id"])["fingerprint"])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    a.ok(["trust", "revoke", &b_cert]);
    let later = a.scratch("later");
    std::fs::write(&later, "after\n").unwrap();
    let later_hash = a.json(["add", later.to_str().unwrap(), "--pin", "later"])[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = b.fails(["get", &later_hash, "--from", &a_id]);
    assert!(err.contains("refused") && err.contains("revoked"), "{err}");
    b.stop(b_daemon);
    a.stop(a_daemon);
}

#[test]
fn a_stranger_is_refused_fetch_and_push_with_the_reason() {
    let (a, stranger) = (TestNode::loopback(), TestNode::loopback());
    let _a_daemon = a.start_daemon();
    let a_id = endpoint_id(&a);
    let addr = a.json(["status"])["addrs"][0].as_str().unwrap().to_owned();
    let file = a.scratch("f");
    std::fs::write(&file, "x").unwrap();
    stranger.ok(["peers", "add", &a_id, &addr]);
    stranger.ok(["add", file.to_str().unwrap(), "--pin", "f"]);
    let other = a.scratch("g");
    std::fs::write(&other, "only on A").unwrap();
    let other_hash = a.json(["add", other.to_str().unwrap(), "--pin", "g"])[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = stranger.fails(["get", &other_hash, "--from", &a_id]);
    assert!(err.contains("refused"), "{err}");
    let err = stranger.fails(["push", "f", "--to", &a_id]);
    assert!(err.contains("refused"), "{err}");
}

/// What a fetch killed at any instant may lose of what it had verified.
const KILL_LOSS_BOUND: u64 = 16 << 20;

fn add_big(node: &TestNode, size: u64, seed: u64) -> (std::path::PathBuf, String) {
    let file = node.scratch(&format!("big-{seed}"));
    write_pseudo_random(&file, size, seed);
    let hash = node.json([
        "add",
        file.to_str().unwrap(),
        "--pin",
        &format!("big-{seed}"),
    ])[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    (file, hash)
}

/// Waits (bounded) until `node`'s partial copy of `hash` holds `at` bytes,
/// then calls `kill`; returns the bytes it held then. Panics if the fetch
/// `child` ends first.
fn when_partial_reaches(
    node: &TestNode,
    hash: &str,
    at: u64,
    child: &mut std::process::Child,
    kill: impl FnOnce(),
) -> u64 {
    let partial = node.home().join("blobs/data").join(format!("{hash}.data"));
    for _ in 0..60_000 {
        let len = stored_bytes(&partial);
        if len >= at {
            kill();
            return len;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the fetch ended ({status}) before it reached {at} bytes (had {len})");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("the fetch never reached {at} bytes");
}

#[test]
fn a_fetch_killed_at_several_points_resumes_without_starting_over() {
    let a = TestNode::loopback();
    let _a_daemon = a.start_daemon();
    let a_id = endpoint_id(&a);
    let size: u64 = 200 << 20;
    let (file, hash) = add_big(&a, size, 11);
    for percent in [10, 50, 90] {
        let b = TestNode::loopback();
        admit(&a, &b, "fetch");
        let mut get = b
            .cmd(["get", &hash, "--from", &a_id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = get.id() as i32;
        let killed_at = when_partial_reaches(&b, &hash, size * percent / 100, &mut get, || {
            // SAFETY: kill(2) on our own child, not reaped yet.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        });
        get.wait().unwrap();
        assert!(killed_at < size, "the fetch finished before it was killed");
        let again = b.json(["get", &hash, "--from", &a_id]);
        let received = again["bytes_received"].as_u64().unwrap();
        assert!(
            received <= size - killed_at + KILL_LOSS_BOUND,
            "killed at {killed_at} bytes ({percent}%), the second fetch moved {received} of \
             {size}: more than {} MiB of what was verified was lost",
            KILL_LOSS_BOUND >> 20
        );
        let copy = b.scratch("copy");
        b.ok(["export", &hash, copy.to_str().unwrap()]);
        assert!(std::fs::read(&copy).unwrap() == std::fs::read(&file).unwrap());
    }
}

/// Bytes actually written to a file (its blocks, not its length, which a
/// sparse file overstates).
fn stored_bytes(path: &Path) -> u64 {
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0)
}

#[test]
fn a_peer_killed_and_restarted_is_fetched_from_at_once() {
    let (a, b) = (TestNode::loopback(), TestNode::loopback());
    let _a_daemon = a.start_daemon();
    let b_daemon = b.start_daemon();
    let b_id = endpoint_id(&b);
    admit(&b, &a, "fetch");
    let first = b.scratch("first");
    std::fs::write(&first, "before the kill\n").unwrap();
    let first_hash = b.json(["add", first.to_str().unwrap(), "--pin", "first"])[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = b.scratch("second");
    std::fs::write(&second, "after the restart\n").unwrap();
    let second_hash = b.json(["add", second.to_str().unwrap(), "--pin", "second"])[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    // A fetches from B, so it holds connections to B.
    a.ok(["get", &first_hash, "--from", &b_id]);
    eventually("A sees B connected", || peer_connected(&a, &b_id));

    // B dies without a word and comes back (at another port) at once.
    drop(b_daemon); // SIGKILL
    let _b_daemon = b.start_daemon();
    eventually("B says hello to A again", || {
        peer_connected(&b, &endpoint_id(&a))
    });
    let got = a.json(["get", &second_hash, "--from", &b_id]);
    assert_eq!(got["from"], b_id.as_str());
    assert_eq!(a.ok(["cat", &second_hash]), "after the restart\n");
    assert!(peer_connected(&a, &b_id));
}

#[test]
fn a_connection_lost_mid_transfer_is_reported_as_lost_and_the_fetch_resumes() {
    let (a, b) = (TestNode::loopback(), TestNode::loopback());
    let a_daemon = a.start_daemon();
    let a_id = endpoint_id(&a);
    admit(&a, &b, "fetch");
    let size: u64 = 200 << 20;
    let (file, hash) = add_big(&a, size, 12);
    let mut get = b
        .cmd(["get", &hash, "--from", &a_id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut a_daemon = Some(a_daemon);
    let killed_at = when_partial_reaches(&b, &hash, size / 3, &mut get, || {
        drop(a_daemon.take()); // SIGKILL of the serving daemon
    });
    let out = get.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the fetch succeeded without its peer"
    );
    assert!(err.contains("lost"), "{err}");
    assert!(!err.contains("does not match"), "{err}");

    // A comes back (at another port, which B is told): the fetch resumes.
    let _a_daemon = a.start_daemon();
    let addr = a.json(["status"])["addrs"][0].as_str().unwrap().to_owned();
    b.ok(["peers", "add", &a_id, &addr]);
    let again = b.json(["get", &hash, "--from", &a_id]);
    let received = again["bytes_received"].as_u64().unwrap();
    assert!(
        received <= size - killed_at + KILL_LOSS_BOUND,
        "lost the connection at {killed_at} bytes, the second fetch moved {received} of {size}"
    );
    let copy = b.scratch("copy");
    b.ok(["export", &hash, copy.to_str().unwrap()]);
    assert!(std::fs::read(&copy).unwrap() == std::fs::read(&file).unwrap());
}

#[test]
fn get_pins_what_it_fetched_and_needs_no_peer_for_what_is_here() {
    let (a, b) = (TestNode::loopback(), TestNode::loopback());
    let _a_daemon = a.start_daemon();
    let a_id = endpoint_id(&a);
    admit(&a, &b, "fetch");
    let src = a.scratch("src");
    make_tree(&src, 30);
    let hash = a.json(["add", src.to_str().unwrap(), "--pin", "src"])[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = b.json(["get", &hash, "--from", &a_id, "--pin", "fetched"]);
    assert_eq!(got["objects"], 30 + 25 + 1);
    let pins = b.json(["pin", "ls"]);
    assert!(
        pins.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fetched" && p["hash"] == hash.as_str()),
        "{pins}"
    );
    // gc keeps what the pin holds.
    b.ok(["gc"]);
    let out = b.scratch("out");
    b.ok(["export", "fetched", out.to_str().unwrap()]);
    assert_same_tree(&src, &out);

    // A node with no peer at all: what is here needs none.
    let lone = TestNode::loopback();
    let note = lone.scratch("note");
    std::fs::write(&note, "here\n").unwrap();
    let note_hash = lone.json(["add", note.to_str().unwrap()])[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let here = lone.json(["get", &note_hash, "--pin", "note"]);
    assert_eq!(here["bytes_received"], 0);
    assert_eq!(lone.ok(["cat", "note"]), "here\n");
    let tree = lone.json(["add", src.to_str().unwrap()])[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let here = lone.json(["get", &tree]);
    assert_eq!(here["bytes_received"], 0);
    assert_eq!(here["objects"], 30 + 25 + 1);
    // What is not here still needs a peer.
    let err = lone.fails(["get", &"ab".repeat(32)]);
    assert!(err.contains("no peer to fetch from"), "{err}");
}
