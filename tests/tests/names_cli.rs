//! Signed names across three `clive-node start` processes on loopback:
//! publish on one, resolve on the others after the announcement, restart a
//! follower and resolve from its cache with the publisher gone; history,
//! overrides, a refused stranger, and co-signed key rotation.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use clive_tests::{TestNode, admit, eventually};

fn b3(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// What `name resolve` prints on standard output, if it succeeds.
fn resolves_to(node: &TestNode, name: &str) -> Option<String> {
    let out = node.cmd(["name", "resolve", name]).output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn publish_on_one_resolve_on_two_restart_and_resolve_from_cache() {
    let (a, b, c) = (
        TestNode::loopback(),
        TestNode::loopback(),
        TestNode::loopback(),
    );
    let a_daemon = a.start_daemon();
    let _b_daemon = b.start_daemon();
    let c_daemon = c.start_daemon();
    admit(&a, &b, "fetch");
    admit(&a, &c, "fetch");

    let created = a.json(["name", "zone", "create", "release"]);
    let ticket = created["ticket"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("clivezone1"), "{created}");
    let v1 = a.scratch("v1.txt");
    std::fs::write(&v1, "release 1\n").unwrap();
    a.ok(["name", "publish", "release/myapp", v1.to_str().unwrap()]);

    for follower in [&b, &c] {
        let followed = follower.json(["name", "follow", &ticket]);
        assert_eq!(followed["verified"]["timestamp"], 2, "{followed}");
        assert_eq!(
            resolves_to(follower, "release/myapp").as_deref(),
            Some(b3(b"release 1\n").as_str())
        );
    }

    // A new version reaches both followers through the announcement alone.
    let v2 = a.scratch("v2.txt");
    std::fs::write(&v2, "release 2\n").unwrap();
    a.ok(["name", "publish", "release/myapp", v2.to_str().unwrap()]);
    for follower in [&b, &c] {
        eventually("the follower sees release 2", || {
            resolves_to(follower, "release/myapp").as_deref() == Some(b3(b"release 2\n").as_str())
        });
    }
    let resolved = b.json(["name", "resolve", "release/myapp"]);
    assert_eq!(resolved["overridden"], false);
    assert_eq!(resolved["stale"], false);
    assert_eq!(resolved["verified"]["timestamp"], 3, "{resolved}");
    // Names live in hashed bins: the entry comes from one of them.
    assert!(
        resolved["role"].as_str().unwrap().starts_with("bin-"),
        "{resolved}"
    );

    // The follower's history: both versions, verified, signed by A.
    let a_fingerprint = a.json(["id"])["fingerprint"].as_str().unwrap().to_owned();
    let history = c.json(["name", "history", "release/myapp"]);
    let history = history.as_array().unwrap();
    let events: Vec<&str> = history
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["published", "changed"], "{history:?}");
    for h in history {
        assert_eq!(h["verified"], true);
        assert_eq!(h["signers"][0], a_fingerprint.as_str());
    }

    // C restarts with the publisher gone and resolves from its cache.
    a.stop(a_daemon);
    c.stop(c_daemon);
    // No daemon: the lookup opens the state read-only, and writes nothing.
    let state = c.home().join("state.redb");
    let before = std::fs::read(&state).unwrap();
    assert_eq!(
        resolves_to(&c, "release/myapp").as_deref(),
        Some(b3(b"release 2\n").as_str())
    );
    assert!(
        std::fs::read(&state).unwrap() == before,
        "a lookup wrote state"
    );
    let _c_daemon = c.start_daemon();
    assert_eq!(
        resolves_to(&c, "release/myapp").as_deref(),
        Some(b3(b"release 2\n").as_str())
    );

    // A local override: this node only, marked, in the history.
    let dev = c.scratch("dev.txt");
    std::fs::write(&dev, "dev build\n").unwrap();
    c.ok(["name", "override", "release/myapp", dev.to_str().unwrap()]);
    let o = c.json(["name", "resolve", "release/myapp"]);
    assert_eq!(o["overridden"], true);
    assert_eq!(o["hash"], b3(b"dev build\n"));
    assert_eq!(o["signed_hash"], b3(b"release 2\n"));
    assert_eq!(
        resolves_to(&b, "release/myapp").as_deref(),
        Some(b3(b"release 2\n").as_str())
    );
    c.ok(["name", "override", "release/myapp", "--clear"]);
    let events: Vec<String> = c
        .json(["name", "history", "release/myapp"])
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events[2..], ["override", "override cleared"]);

    // Only holders of the zone's keys publish.
    let refused = b.fails(["name", "publish", "release/myapp", v1.to_str().unwrap()]);
    assert!(refused.contains("is not a targets key"), "{refused}");
}

#[test]
fn a_stranger_cannot_follow_and_bad_tickets_are_refused() {
    let (a, s) = (TestNode::loopback(), TestNode::loopback());
    let _a_daemon = a.start_daemon();
    let _s_daemon = s.start_daemon();
    let created = a.json(["name", "zone", "create", "release"]);
    let ticket = created["ticket"].as_str().unwrap();
    let refused = s.fails(["name", "follow", ticket]);
    assert!(
        refused.contains("refused") || refused.contains("does not know you"),
        "{refused}"
    );
    let damaged = format!("{}x", &ticket[..ticket.len() - 1]);
    let refused = s.fails(["name", "follow", &damaged]);
    assert!(refused.contains("damaged"), "{refused}");
    let refused = s.fails(["name", "resolve", "release/myapp"]);
    assert!(refused.contains("no zone"), "{refused}");
}

#[test]
fn key_rotation_needs_the_cosigner_and_followers_move_to_the_new_root() {
    let (a, b, c) = (
        TestNode::loopback(),
        TestNode::loopback(),
        TestNode::loopback(),
    );
    let _a_daemon = a.start_daemon();
    let _c_daemon = c.start_daemon();
    admit(&a, &c, "fetch");
    let b_key = b.home().join("id_ed25519.pub");
    let b_key = b_key.to_str().unwrap();

    // Root threshold 2 of {A, B}: B co-signs the first root offline.
    let out = a.scratch("release.1.root.json");
    let change = a.json([
        "name",
        "zone",
        "create",
        "release",
        "--key",
        b_key,
        "--threshold",
        "2",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(change["committed"], false, "{change}");
    let signed = b.json(["name", "root", "sign", out.to_str().unwrap()]);
    assert_eq!(signed["signed_by"].as_array().unwrap().len(), 2, "{signed}");
    let committed = a.json(["name", "root", "commit", "release", out.to_str().unwrap()]);
    let ticket = committed["ticket"].as_str().unwrap().to_owned();
    let f = a.scratch("f");
    std::fs::write(&f, "one\n").unwrap();
    a.ok(["name", "publish", "release/app", f.to_str().unwrap()]);
    c.ok(["name", "follow", &ticket]);

    // Rotating the timestamp key without B's signature is not committed.
    let next = a.scratch("release.2.root.json");
    let a_key = a.home().join("id_ed25519.pub");
    let rotate = a.json([
        "name",
        "rotate",
        "release",
        "timestamp",
        "--key",
        a_key.to_str().unwrap(),
        "-o",
        next.to_str().unwrap(),
    ]);
    assert_eq!(rotate["committed"], false, "{rotate}");
    let refused = a.fails(["name", "root", "commit", "release", next.to_str().unwrap()]);
    assert!(refused.contains("1 valid signature"), "{refused}");
    b.ok(["name", "root", "sign", next.to_str().unwrap()]);
    a.ok(["name", "root", "commit", "release", next.to_str().unwrap()]);
    c.ok(["name", "refresh", "release"]);
    let resolved = c.json(["name", "resolve", "release/app"]);
    assert_eq!(resolved["verified"]["root"], 2, "{resolved}");
    assert_eq!(resolved["hash"], b3(b"one\n"));
}

#[test]
fn a_delegate_publishes_under_its_prefix_only() {
    let (a, b, c) = (
        TestNode::loopback(),
        TestNode::loopback(),
        TestNode::loopback(),
    );
    let _a_daemon = a.start_daemon();
    let _b_daemon = b.start_daemon();
    let _c_daemon = c.start_daemon();
    admit(&a, &b, "fetch,push");
    admit(&a, &c, "fetch");
    let created = a.json(["name", "zone", "create", "release"]);
    let ticket = created["ticket"].as_str().unwrap().to_owned();
    let b_key = b.home().join("id_ed25519.pub");
    let role = a.json([
        "name",
        "delegate",
        "release",
        "beta/",
        "--to",
        b_key.to_str().unwrap(),
    ]);
    assert_eq!(role["paths"][0], "beta/*", "{role}");
    b.ok(["name", "follow", &ticket]);
    c.ok(["name", "follow", &ticket]);
    // Who publishes is judged by the root's keys, on each node.
    assert_eq!(a.json(["name", "zone", "ls"])[0]["publisher"], true);
    assert_eq!(b.json(["name", "zone", "ls"])[0]["publisher"], false);

    let tool = b.scratch("tool");
    std::fs::write(&tool, "beta tool\n").unwrap();
    let published = b.json([
        "name",
        "publish",
        "release/beta/tool",
        tool.to_str().unwrap(),
    ]);
    assert_eq!(published["hash"], b3(b"beta tool\n"), "{published}");
    // C, which only follows, sees it through the announcement; the
    // resolution walks the delegation.
    eventually("C resolves the delegated name", || {
        resolves_to(&c, "release/beta/tool").as_deref() == Some(b3(b"beta tool\n").as_str())
    });
    let history = c.json(["name", "history", "release/beta/tool"]);
    assert_eq!(history[0]["role"], "beta", "{history}");
    assert_eq!(history[0]["verified"], true, "{history}");
    let b_fingerprint = b.json(["id"])["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(history[0]["signers"][0], b_fingerprint.as_str());

    // Outside its prefix the delegate holds nothing.
    let refused = b.fails([
        "name",
        "publish",
        "release/stable/tool",
        tool.to_str().unwrap(),
    ]);
    assert!(refused.contains("is not a targets key"), "{refused}");
}

/// Killing publishes at varied instants: a daemon (`Killed::Daemon`) or the
/// CLI itself owning the home (`Killed::Cli`).
mod killed_publishes {
    use std::collections::BTreeMap;
    use std::process::{Child, Command, Output};
    use std::time::{Duration, Instant};

    use clive_tests::{Daemon, TestNode, check_success};

    use super::b3;

    /// How many publishes are killed.
    const KILLS: u32 = 28;
    /// Names, in several hashed bins, published one at a time or all at once.
    const NAMES: [&str; 6] = ["app0", "app1", "app2", "app3", "app4", "app5"];

    #[derive(Clone, Copy, PartialEq)]
    enum Killed {
        Daemon,
        Cli,
    }

    /// Starts `name publish` of each of `names` as new content for `round`;
    /// returns the process and the new values.
    fn start_publish(
        node: &TestNode,
        round: u32,
        names: &[&str],
    ) -> (Child, BTreeMap<String, String>) {
        let mut args = vec!["name".to_owned(), "publish".to_owned()];
        let mut new = BTreeMap::new();
        for name in names {
            let content = format!("round {round} of {name}\n");
            let path = node.scratch(&format!("{name}-{round}.txt"));
            std::fs::write(&path, &content).unwrap();
            args.push(format!("release/{name}"));
            args.push(path.to_str().unwrap().to_owned());
            new.insert((*name).to_owned(), b3(content.as_bytes()));
        }
        let child = node
            .cmd(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        (child, new)
    }

    /// What `name resolve` says: the hash, or the error.
    fn resolve(node: &TestNode, name: &str, offline: bool) -> Result<String, String> {
        let mut cmd: Command = node.cmd(["name", "resolve", &format!("release/{name}")]);
        if offline {
            cmd.arg("--offline");
        }
        let out = cmd.output().unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Checks every name resolves to its old value or the value the killed
    /// publish gave it (as the publish's exit said), that `fsck` is clean
    /// and each history ends at the value resolved; returns the values now.
    fn check(
        node: &TestNode,
        round: u32,
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
        publish: &Output,
    ) -> BTreeMap<String, String> {
        let stderr = String::from_utf8_lossy(&publish.stderr);
        let committed = publish.status.success();
        let not_committed = stderr.contains("nothing was published");
        let mut now = BTreeMap::new();
        for name in NAMES {
            let online = resolve(node, name, false);
            let offline = resolve(node, name, true);
            assert_eq!(
                online, offline,
                "round {round}: {name} online and --offline"
            );
            let was = old.get(name);
            let will = new.get(name);
            match &online {
                Ok(hash) => {
                    assert!(
                        Some(hash) == was || Some(hash) == will,
                        "round {round}: {name} resolves to {hash}, neither old {was:?} nor new \
                         {will:?}; the publish said: {stderr}"
                    );
                    if committed && will.is_some() {
                        assert_eq!(
                            Some(hash),
                            will,
                            "round {round}: {name}: exit 0, old value; the publish said: {}{stderr}",
                            String::from_utf8_lossy(&publish.stdout)
                        );
                    }
                    if not_committed {
                        assert_eq!(Some(hash), was, "round {round}: {name}: said not published");
                    }
                    now.insert(name.to_owned(), hash.clone());
                }
                Err(e) => {
                    assert!(
                        was.is_none() && e.contains("is not published in zone"),
                        "round {round}: {name} (old {was:?}, new {will:?}) does not resolve: \
                         {e}; the publish said: {stderr}"
                    );
                    assert!(
                        !(committed && will.is_some()),
                        "round {round}: {name}: exit 0, not published"
                    );
                }
            }
        }
        // All the names of one publish move together.
        let moved: Vec<bool> = new.iter().map(|(n, h)| now.get(n) == Some(h)).collect();
        assert!(
            moved.iter().all(|m| *m) || moved.iter().all(|m| !*m),
            "round {round}: half a publish: {moved:?}"
        );
        let fsck = node.cmd(["fsck"]).output().unwrap();
        check_success(&fsck);
        for (name, hash) in &now {
            let history = node.json(["name", "history", &format!("release/{name}")]);
            let history = history.as_array().unwrap();
            let last = history
                .last()
                .unwrap_or_else(|| panic!("round {round}: {name}: no history"));
            assert_eq!(
                last["hash"],
                hash.as_str(),
                "round {round}: {name}: {history:?}"
            );
            assert!(history.iter().all(|h| h["verified"] == true), "{history:?}");
        }
        now
    }

    fn run(killed: Killed) {
        let node = TestNode::loopback();
        let mut daemon: Option<Daemon> = (killed == Killed::Daemon).then(|| node.start_daemon());
        node.ok(["name", "zone", "create", "release"]);
        // How long a publish of every name takes here, end to end: the
        // kills sweep across it.
        let started = Instant::now();
        let (child, mut values) = start_publish(&node, 0, &NAMES);
        check_success(&child.wait_with_output().unwrap());
        let span = started.elapsed();
        let mut outcomes = [0u32; 2];
        let mut said_so = [0u32; 3];
        for round in 1..=KILLS {
            let names: Vec<&str> = if round % 2 == 0 {
                NAMES.to_vec()
            } else {
                vec![NAMES[round as usize % NAMES.len()]]
            };
            let (child, new) = start_publish(&node, round, &names);
            std::thread::sleep(
                span.mul_f64(f64::from(round) / f64::from(KILLS)) + Duration::from_millis(5),
            );
            match killed {
                Killed::Daemon => {
                    let mut d = daemon.take().unwrap();
                    d.signal(libc::SIGKILL);
                    d.wait_exit(Duration::from_secs(30));
                }
                Killed::Cli => {
                    // SAFETY: kill(2) on our own child, not reaped yet.
                    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                }
            }
            let publish = child.wait_with_output().unwrap();
            if killed == Killed::Daemon {
                daemon = Some(node.start_daemon());
            }
            let now = check(&node, round, &values, &new, &publish);
            outcomes[usize::from(new.iter().all(|(n, h)| now.get(n) == Some(h)))] += 1;
            let said = String::from_utf8_lossy(&publish.stderr);
            said_so[if publish.status.success() {
                0
            } else if said.contains("nothing was published") {
                1
            } else {
                2
            }] += 1;
            values = now;
        }
        eprintln!(
            "publishes: exit 0 {}, said nothing was published {}, other {}",
            said_so[0], said_so[1], said_so[2]
        );
        eprintln!(
            "publishes killed: {KILLS}; kept the old values {}, took the new {}",
            outcomes[0], outcomes[1]
        );
    }

    #[test]
    fn a_daemon_killed_during_publishes_leaves_each_name_old_or_new() {
        run(Killed::Daemon);
    }

    #[test]
    fn a_cli_killed_while_publishing_in_process_leaves_each_name_old_or_new() {
        run(Killed::Cli);
    }
}

#[test]
fn publish_and_resolve_name_the_role_and_its_version_alike() {
    let a = TestNode::new();
    a.ok(["name", "zone", "create", "release"]);
    let v1 = a.scratch("v1.txt");
    std::fs::write(&v1, "one\n").unwrap();
    a.ok(["name", "publish", "release/app", v1.to_str().unwrap()]);
    let v2 = a.scratch("v2.txt");
    std::fs::write(&v2, "two\n").unwrap();
    let published = a.json(["name", "publish", "release/app", v2.to_str().unwrap()]);
    let resolved = a.json(["name", "resolve", "release/app"]);
    assert!(
        published["role"].as_str().unwrap().starts_with("bin-"),
        "{published}"
    );
    assert_eq!(
        published["role"], resolved["role"],
        "{published} {resolved}"
    );
    assert_eq!(published["version"], 3, "{published}");
    assert_eq!(
        published["version"], resolved["version"],
        "{published} {resolved}"
    );
    // `targets` is the top-level targets version in both.
    assert_eq!(published["targets"], resolved["verified"]["targets"]);
    assert_eq!(published["timestamp"], resolved["verified"]["timestamp"]);
    // In words, both say "ROLE vN".
    let role = format!("{} v3", published["role"].as_str().unwrap());
    let said = a.ok(["name", "publish", "release/app", v1.to_str().unwrap()]);
    let role4 = format!("{} v4", published["role"].as_str().unwrap());
    assert!(said.contains(&format!("({role4}, timestamp v")), "{said}");
    let out = a.cmd(["name", "resolve", "release/app"]).output().unwrap();
    let how = String::from_utf8_lossy(&out.stderr);
    assert!(how.contains(&format!("{role4}; root v1")), "{how}");
    assert!(!how.contains(&role), "{how}");
}
