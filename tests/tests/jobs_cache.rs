//! The bounded job cache (`[jobs] cache`) through the binary, in real homes:
//! results past the bound are evicted least recently used with their
//! outputs, fsck stays clean, an evicted job runs again, pinned outputs
//! stay and do not count, a memo hit refreshes recency, and `gc` and
//! `status` report the cache.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{path::Path, process::Output};

use clive_tests::TestNode;

/// Bytes each job writes as its output.
const OUTPUT: u64 = 40 << 10;

/// A node whose cache holds 100 KiB: two outputs of [`OUTPUT`], not three.
fn node() -> TestNode {
    let node = TestNode::new();
    std::fs::write(
        node.home().join("config.toml"),
        "[net]\nbind = [\"127.0.0.1:0\"]\n\n[jobs]\ncache = \"100 KiB\"\n",
    )
    .unwrap();
    node
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs job `name` (no sandbox): it appends its name to `ran` (outside
/// the store) and writes [`OUTPUT`] random bytes to `out`.
fn exec(node: &TestNode, ran: &Path, name: &str) -> Output {
    let script = format!(
        "echo {name} >> {}; head -c {OUTPUT} /dev/urandom > out",
        ran.display()
    );
    let got = node
        .cmd([
            "exec",
            "--sandbox",
            "none",
            "--output",
            "out",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    assert!(got.status.success(), "{}", text(&got.stderr));
    got
}

/// Runs job `name`, which must run (not be a memo hit); returns its
/// outputs tree.
fn ran(node: &TestNode, ran: &Path, name: &str) -> String {
    let got = exec(node, ran, name);
    let said = text(&got.stderr);
    assert!(!said.contains("memo hit"), "{name} ran: {said}");
    // `job ID on local: ...`, the id shortened.
    let id = said
        .lines()
        .find_map(|l| l.strip_prefix("job ")?.split_once(" on ").map(|(id, _)| id))
        .unwrap_or_else(|| panic!("no job line for {name}: {said}"));
    let result = node.json(["job", "result", id]);
    result["result"]["outputs"].as_str().unwrap().to_owned()
}

/// How many times each job ran, from the file outside the store.
fn runs(ran: &Path, name: &str) -> usize {
    std::fs::read_to_string(ran)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == name)
        .count()
}

fn stored(node: &TestNode, hash: &str) -> bool {
    node.cmd(["ls", hash]).output().unwrap().status.success()
}

#[test]
fn past_the_bound_the_least_recently_used_go_and_run_again() {
    let node = node();
    let log = node.scratch("ran");
    let a = ran(&node, &log, "a");
    let b = ran(&node, &log, "b");
    assert!(stored(&node, &a) && stored(&node, &b));
    let status = node.json(["status"]);
    assert_eq!(status["cache_bound"], 100 << 10);
    let size = status["cache_bytes"].as_u64().unwrap();
    assert!(
        (2 * OUTPUT..3 * OUTPUT).contains(&size),
        "two outputs and their logs: {size}"
    );
    assert!(node.ok(["status"]).contains("job cache"), "status says it");

    // A memo hit makes `a` the most recently used: `c` pushes `b` out.
    let hit = exec(&node, &log, "a");
    assert!(
        text(&hit.stderr).contains("memo hit"),
        "{}",
        text(&hit.stderr)
    );
    assert_eq!(runs(&log, "a"), 1);
    let c = ran(&node, &log, "c");
    assert!(!stored(&node, &b), "b, used longest ago, was evicted");
    assert!(stored(&node, &a) && stored(&node, &c), "a and c stay");
    node.ok(["fsck"]);

    // `b` runs again rather than answering with outputs that are gone, and
    // puts the cache past its bound once more: `a` goes now.
    let b_again = ran(&node, &log, "b");
    assert_eq!(runs(&log, "b"), 2, "b ran again");
    assert!(stored(&node, &b_again));
    assert!(!stored(&node, &a), "a was the least recently used");
    assert_eq!(runs(&log, "a"), 1);
    let again = exec(&node, &log, "a");
    assert!(!text(&again.stderr).contains("memo hit"));
    assert_eq!(runs(&log, "a"), 2, "a ran again");
    node.ok(["fsck"]);

    // gc reports the cache in its text and its JSON (the old fields stay).
    let gc = node.json(["gc"]);
    assert_eq!(gc["cache"]["bound"], 100 << 10);
    assert_eq!(gc["cache"]["entries"], 2);
    let bytes = gc["cache"]["bytes"].as_u64().unwrap();
    assert!(bytes <= 100 << 10, "{gc}");
    assert!(gc["removed"].is_u64() && gc["kept"].is_u64(), "{gc}");
    let text = node.ok(["gc"]);
    assert!(text.starts_with("removed "), "{text}");
    assert!(text.contains("job cache: "), "{text}");
    node.ok(["fsck"]);
}

#[test]
fn a_pinned_output_is_never_evicted_and_does_not_count() {
    let node = node();
    let log = node.scratch("ran");
    let kept = ran(&node, &log, "kept");
    node.ok(["pin", "add", "keep", &kept]);
    let before = node.json(["status"])["cache_bytes"].as_u64().unwrap();
    assert!(
        before < OUTPUT,
        "the pinned output is not the cache's: {before}"
    );
    let mut others = Vec::new();
    for name in ["d", "e", "f", "g"] {
        others.push(ran(&node, &log, name));
    }
    assert!(stored(&node, &kept), "pinned: never evicted");
    // Two of the four others fit beside it; the pinned one takes no room.
    let left = others.iter().filter(|o| stored(&node, o)).count();
    assert_eq!(
        left, 2,
        "the bound holds two outputs besides the pinned one"
    );
    assert!(stored(&node, &others[3]));
    node.ok(["fsck"]);
    // Its memo entry stays too: the same job is a hit.
    let hit = exec(&node, &log, "kept");
    assert!(
        text(&hit.stderr).contains("memo hit"),
        "{}",
        text(&hit.stderr)
    );
    assert_eq!(runs(&log, "kept"), 1);
}

#[test]
fn gc_evicts_past_a_bound_lowered_since_and_dry_run_only_says_so() {
    let node = node();
    let log = node.scratch("ran");
    let a = ran(&node, &log, "a");
    let b = ran(&node, &log, "b");
    // The bound shrinks to one output: gc evicts the older one.
    std::fs::write(
        node.home().join("config.toml"),
        "[net]\nbind = [\"127.0.0.1:0\"]\n\n[jobs]\ncache = \"50K\"\n",
    )
    .unwrap();
    let dry = node.json(["gc", "--dry-run"]);
    assert_eq!(
        dry["cache"]["evicted"].as_array().unwrap().len(),
        1,
        "{dry}"
    );
    assert!(dry["cache"]["evicted_bytes"].as_u64().unwrap() >= OUTPUT);
    assert!(stored(&node, &a), "a dry run evicts nothing");
    let gc = node.json(["gc"]);
    assert_eq!(gc["cache"]["evicted"].as_array().unwrap().len(), 1, "{gc}");
    assert!(gc["freed_bytes"].as_u64().unwrap() >= OUTPUT, "{gc}");
    assert!(!stored(&node, &a) && stored(&node, &b));
    node.ok(["fsck"]);
    let status = node.json(["status"]);
    assert_eq!(status["cache_bound"], 50 << 10);
    assert!(status["cache_bytes"].as_u64().unwrap() <= 50 << 10);
}

/// The trim after a job never waits for the store: while an `add -`
/// holds it (its standard input still open), a job through the daemon
/// ends and `status` answers; the trim happens at the next job instead.
#[test]
fn a_long_add_holds_up_neither_jobs_nor_status() {
    use std::io::Write;
    let node = node();
    let mut daemon = node.start_daemon();
    let log = node.scratch("ran");
    let mut adding = node
        .cmd(["add", "-", "--pin", "slow"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = adding.stdin.take().unwrap();
    pipe.write_all(b"first part").unwrap();
    pipe.flush().unwrap();
    for name in ["a", "b", "c"] {
        ran(&node, &log, name);
    }
    let status = node.json(["status"]);
    assert_eq!(status["cache_bound"], 100 << 10);
    drop(pipe);
    let added = adding.wait_with_output().unwrap();
    assert!(added.status.success(), "{}", text(&added.stderr));
    // The trim put off while the add ran happens with the next job.
    ran(&node, &log, "d");
    let size = node.json(["status"])["cache_bytes"].as_u64().unwrap();
    assert!(size <= 100 << 10, "the cache holds {size} bytes");
    node.ok(["stop"]);
    assert!(
        daemon
            .wait_exit(std::time::Duration::from_secs(60))
            .success()
    );
}

/// Results put by work no command of this node waits for (a peer's jobs)
/// are trimmed too: the daemon's cache trimmer keeps the executor's cache
/// within its bound.
#[test]
fn a_peers_jobs_are_kept_within_the_executors_bound() {
    let friend = node();
    let config = friend.home().join("config.toml");
    let mut settings = std::fs::read_to_string(&config).unwrap();
    settings.push_str("min_sandbox = \"none\"\n");
    std::fs::write(&config, settings).unwrap();
    let laptop = TestNode::loopback();
    let fd = friend.start_daemon();
    let ld = laptop.start_daemon();
    clive_tests::admit(&friend, &laptop, "exec");
    let friend_key = friend.json(["id"])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    for name in ["a", "b", "c", "d"] {
        let script = format!("echo {name}; head -c {OUTPUT} /dev/urandom > out");
        let got = laptop
            .cmd([
                "exec",
                "--on",
                &friend_key,
                "--sandbox",
                "none",
                "--output",
                "out",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .output()
            .unwrap();
        assert!(got.status.success(), "{}", text(&got.stderr));
    }
    clive_tests::eventually("the friend's cache back within its bound", || {
        friend.json(["status"])["cache_bytes"]
            .as_u64()
            .is_some_and(|b| b <= 100 << 10)
    });
    friend.ok(["fsck"]);
    friend.stop(fd);
    laptop.stop(ld);
}
