//! A zone of two devices across three `clive-node start` processes on
//! loopback: each device publishes while the other is stopped; a name
//! changed on both apart and a name unpublished on one and changed on the
//! other get the same winners on all three nodes, both values stay in
//! `name history`, the conflicts are listed, and stock python-tuf,
//! refreshing one metadata directory from exported copies before and after
//! the merge, moves forward without error.

// This target links every dependency of its package, used here or not.
#![allow(unused_crate_dependencies)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use clive_tests::{TestNode, admit, check_success, eventually};
use serde_json::Value;

fn b3(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn resolved(node: &TestNode, name: &str) -> Option<String> {
    let out = node
        .cmd(["--json", "name", "resolve", name])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["hash"].as_str().map(str::to_owned)
}

fn publish(node: &TestNode, name: &str, text: &str) {
    let file = node.scratch(&format!("{}.txt", b3(text.as_bytes())));
    std::fs::write(&file, text).unwrap();
    node.ok(["name", "publish", name, file.to_str().unwrap()]);
}

fn timestamp(node: &TestNode) -> u64 {
    node.json(["name", "zone", "show", "me"])["verified"]["timestamp"]
        .as_u64()
        .unwrap()
}

/// The venv's python (`$CLIVE_TEST_PYVENV`, default `TARGET_DIR/pyvenv`).
fn python() -> PathBuf {
    let venv = match std::env::var_os("CLIVE_TEST_PYVENV") {
        Some(v) => PathBuf::from(v),
        None => std::env::current_exe()
            .unwrap()
            .ancestors()
            .nth(3)
            .unwrap()
            .join("pyvenv"),
    };
    venv.join("bin").join("python")
}

/// `python3 -m http.server` on 127.0.0.1 serving `dir`; killed on drop.
struct Server(Child, String);

impl Server {
    fn start(dir: &Path) -> Server {
        let mut child = Command::new(python())
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .arg("--directory")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("http.server did not start");
        let port: u16 = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Server(child, format!("http://127.0.0.1:{port}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Exports zone `me` from `node` and has stock python-tuf refresh the
/// persistent metadata directory `client` from it; returns its report.
fn python_refresh(node: &TestNode, label: &str, client: &Path, names: &[&str]) -> Value {
    let mirror = node.scratch(&format!("mirror-{label}"));
    node.ok(["name", "export", "me", mirror.to_str().unwrap()]);
    let server = Server::start(&mirror);
    let root = mirror.join("metadata").join("1.root.json");
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/tuf_refresh.py"))
        .arg(client)
        .arg(&root)
        .arg(&server.1)
        .args(names)
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .expect("run python-tuf");
    check_success(&out);
    serde_json::from_slice(&out.stdout).expect("tuf_refresh.py prints JSON")
}

/// The winner the rule picks: the later publish, then the lower hash
/// (an unpublish's hash is empty).
fn check_rule(c: &Value) {
    let (wp, lp) = (
        c["winner_published"].as_u64().unwrap(),
        c["loser_published"].as_u64().unwrap(),
    );
    let hash = |v: &Value| v.as_str().unwrap_or("").to_owned();
    assert!(
        wp > lp || (wp == lp && hash(&c["winner"]) < hash(&c["loser"])),
        "{c}"
    );
}

#[test]
fn two_devices_publish_apart_and_every_node_ends_with_the_same_winners() {
    let (a, b, c) = (
        TestNode::loopback(),
        TestNode::loopback(),
        TestNode::loopback(),
    );
    let a_daemon = a.start_daemon();
    let b_daemon = b.start_daemon();
    let _c_daemon = c.start_daemon();
    admit(&a, &b, "fetch,push,exec,attest");
    admit(&b, &a, "fetch,push,exec,attest");
    admit(&a, &c, "fetch");
    admit(&b, &c, "fetch");
    let b_key = b.json(["id"])["fingerprint"].as_str().unwrap().to_owned();
    let created = a.json(["name", "zone", "create", "me", "--device", &b_key]);
    let ticket = created["ticket"].as_str().unwrap().to_owned();
    publish(&a, "me/shared", "shared 0\n");
    publish(&a, "me/third", "third 0\n");
    b.ok(["name", "follow", &ticket]);
    c.ok(["name", "follow", &ticket]);
    let shown = b.json(["name", "zone", "show", "me"]);
    assert_eq!(shown["publisher"], true, "b is a device: {shown}");

    // A python-tuf client that follows the zone from the start.
    let client = c.scratch("py-metadata");
    let first = python_refresh(&a, "0", &client, &["shared"]);

    // Apart: A publishes and unpublishes while B is stopped ...
    b.stop(b_daemon);
    publish(&a, "me/from-a", "a apart\n");
    publish(&a, "me/shared", "shared by a\n");
    a.ok(["name", "unpublish", "me/third"]);
    let before = python_refresh(&a, "a", &client, &["shared", "third"]);
    assert!(
        before["versions"]["timestamp"].as_u64() > first["versions"]["timestamp"].as_u64(),
        "{first} {before}"
    );
    // ... and B while A is stopped.
    a.stop(a_daemon);
    let b_daemon = b.start_daemon();
    publish(&b, "me/from-b", "b apart\n");
    publish(&b, "me/shared", "shared by b\n");
    publish(&b, "me/third", "third by b\n");
    let _a_daemon = a.start_daemon();
    let _ = &b_daemon;

    // B refreshes from A (the zone's origin): the two merge, and the
    // merged versions reach A and C by the announcement.
    let mut agreed = None;
    eventually("all three nodes agree", || {
        let _ = b.cmd(["name", "refresh", "me"]).output();
        let names = ["me/from-a", "me/from-b", "me/shared", "me/third"];
        let of = |n: &TestNode| names.map(|x| resolved(n, x));
        let (ra, rb, rc) = (of(&a), of(&b), of(&c));
        let done = ra == rb && rb == rc && ra[0].is_some() && ra[1].is_some();
        if done {
            agreed = Some(ra);
        }
        done
    });
    let agreed = agreed.unwrap();
    assert_eq!(agreed[0], Some(b3(b"a apart\n")));
    assert_eq!(agreed[1], Some(b3(b"b apart\n")));
    let ts = timestamp(&a);
    assert_eq!(timestamp(&b), ts);
    assert_eq!(timestamp(&c), ts);

    // The conflicts, the same on every node, each won by the rule.
    let conflicts = |n: &TestNode| n.json(["name", "zone", "show", "me"])["conflicts"].clone();
    let listed = conflicts(&a);
    assert_eq!(listed, conflicts(&b));
    assert_eq!(listed, conflicts(&c));
    let listed = listed.as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = listed.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["shared", "third"], "{listed:?}");
    for c in &listed {
        check_rule(c);
    }
    let shared: Vec<String> = [&listed[0]["winner"], &listed[0]["loser"]]
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(agreed[2].as_deref(), Some(shared[0].as_str()));
    let mut pair = shared.clone();
    pair.sort();
    let mut want = vec![b3(b"shared by a\n"), b3(b"shared by b\n")];
    want.sort();
    assert_eq!(pair, want);
    // third: unpublished on A, changed on B.
    let third = &listed[1];
    let values = [third["winner"].clone(), third["loser"].clone()];
    assert!(values.contains(&Value::Null), "{third}");
    assert!(
        values.contains(&Value::String(b3(b"third by b\n"))),
        "{third}"
    );
    assert_eq!(agreed[3], third["winner"].as_str().map(str::to_owned));

    // Both values of `shared` in every node's history.
    for (label, n) in [("a", &a), ("b", &b), ("c", &c)] {
        let history = n.json(["name", "history", "me/shared"]);
        let hashes: Vec<&str> = history
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["hash"].as_str())
            .collect();
        for h in &shared {
            assert!(
                hashes.contains(&h.as_str()),
                "{label}: {h} not in {history}"
            );
        }
    }
    // The fork between the devices' keys is reported as a merged fork.
    let shown = a.json(["name", "zone", "show", "me"]);
    assert_eq!(shown["equivocations"], serde_json::json!([]), "{shown}");
    assert!(
        !shown["merged_forks"].as_array().unwrap().is_empty(),
        "{shown}"
    );

    // Stock python-tuf, from the same metadata directory, moves forward.
    // (A exports: it is given B's bytes first, as the follow set would.)
    for text in ["b apart\n", "shared by b\n", "third by b\n"] {
        let file = a.scratch(&format!("from-b-{}.txt", b3(text.as_bytes())));
        std::fs::write(&file, text).unwrap();
        a.ok(["add", file.to_str().unwrap()]);
    }
    let after = python_refresh(&a, "merged", &client, &["shared", "third"]);
    assert!(
        after["versions"]["timestamp"].as_u64() > before["versions"]["timestamp"].as_u64(),
        "{before} {after}"
    );
    assert_eq!(after["versions"]["timestamp"].as_u64(), Some(ts));
    assert_eq!(
        after["targets"]["shared"]["blake3"].as_str(),
        Some(shared[0].as_str())
    );

    // Publishing the name again settles its conflict.
    publish(&a, "me/shared", "shared settled\n");
    let names: Vec<String> = a.json(["name", "zone", "show", "me"])["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["third"]);
}
