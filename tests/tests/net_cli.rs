//! Separate `clive-node start` processes on loopback, driven through the CLI:
//! invite and join, a 1,000-file tree, push, a restart and reconnection,
//! revocation, refusals, and a fetch that resumes after SIGKILL.

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

#[test]
fn a_fetch_killed_halfway_resumes_without_starting_over() {
    let (a, b) = (TestNode::loopback(), TestNode::loopback());
    let _a_daemon = a.start_daemon();
    let a_id = endpoint_id(&a);
    admit(&a, &b, "fetch");
    let size: u64 = 200 << 20;
    let file = a.scratch("big");
    write_pseudo_random(&file, size, 11);
    let hash = a.json(["add", file.to_str().unwrap(), "--pin", "big"])[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let partial = b.home().join("blobs/data").join(format!("{hash}.data"));
    let mut get = b
        .cmd(["get", &hash, "--from", &a_id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut killed_at = 0;
    for _ in 0..6000 {
        let len = stored_bytes(&partial);
        if len >= size / 2 {
            get.kill().unwrap(); // SIGKILL
            killed_at = len;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    get.wait().unwrap();
    assert!(killed_at > 0, "the fetch never reached half way");
    assert!(
        killed_at < size,
        "the fetch finished before it could be killed"
    );
    let again = b.json(["get", &hash, "--from", &a_id]);
    let received = again["bytes_received"].as_u64().unwrap();
    assert!(
        received < size * 3 / 4,
        "killed at {killed_at} bytes, the second fetch moved {received} of {size}"
    );
    let copy = b.scratch("copy");
    b.ok(["export", &hash, copy.to_str().unwrap()]);
    assert!(std::fs::read(&copy).unwrap() == std::fs::read(&file).unwrap());
}

/// Bytes actually written to a file (its blocks, not its length, which a
/// sparse file overstates).
fn stored_bytes(path: &Path) -> u64 {
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0)
}
