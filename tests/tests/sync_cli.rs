//! Sync across `clive-node start` processes on loopback: a follow set that
//! resolves and exports offline, catch-up on reconnection with no command,
//! a catch-up with nothing new costing one small message each way, gc and
//! the follow set, a job's result reaching the node that submitted it, and
//! a 200 MiB sync interrupted by SIGKILL of either side.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::path::Path;

use clive_tests::{
    Daemon, TestNode, admit, assert_same_tree, check_success, dir_bytes, eventually,
    write_pseudo_random,
};

fn b3(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn make_tree(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{:02}", i % 16));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("f{i:04}")),
            format!("{i}\n").repeat(i % 7 + 1),
        )
        .unwrap();
    }
}

/// What `name resolve` prints, if it succeeds.
fn resolves_to(node: &TestNode, name: &str) -> Option<String> {
    let out = node.cmd(["name", "resolve", name]).output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A server and a laptop that trust each other (`fetch` both ways), both
/// running, and a zone `rel` on the server; returns its ticket.
struct Pair {
    server: TestNode,
    laptop: TestNode,
    server_daemon: Option<Daemon>,
    laptop_daemon: Option<Daemon>,
    ticket: String,
}

impl Pair {
    fn new() -> Pair {
        Pair::with("", "fetch")
    }

    /// With `jobs` appended to the server's `[jobs]` settings, and the
    /// laptop holding `caps` on the server.
    fn with(jobs: &str, caps: &str) -> Pair {
        let (server, laptop) = (TestNode::loopback(), TestNode::loopback());
        if !jobs.is_empty() {
            let config = server.home().join("config.toml");
            let mut text = std::fs::read_to_string(&config).unwrap();
            text.push_str("\n[jobs]\n");
            text.push_str(jobs);
            std::fs::write(&config, text).unwrap();
        }
        let server_daemon = server.start_daemon();
        let laptop_daemon = laptop.start_daemon();
        admit(&server, &laptop, caps);
        admit(&laptop, &server, "fetch");
        let created = server.json(["name", "zone", "create", "rel"]);
        let ticket = created["ticket"].as_str().unwrap().to_owned();
        Pair {
            server,
            laptop,
            server_daemon: Some(server_daemon),
            laptop_daemon: Some(laptop_daemon),
            ticket,
        }
    }

    fn publish(&self, name: &str, path: &Path) {
        self.server.ok([
            "name".as_ref(),
            "publish".as_ref(),
            format!("rel/{name}").as_ref(),
            path.as_os_str(),
        ]);
    }

    fn stop_server(&mut self) {
        let d = self.server_daemon.take().unwrap();
        self.server.stop(d);
    }

    fn stop_laptop(&mut self) {
        let d = self.laptop_daemon.take().unwrap();
        self.laptop.stop(d);
    }

    /// Waits until the laptop has a connection to the server open.
    fn laptop_connected(&self) {
        eventually("the laptop connects to the server", || {
            let peers = self.laptop.json(["peers", "ls"]);
            peers
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["connected"] == true)
        });
    }
}

#[test]
fn a_followed_zone_resolves_and_exports_offline() {
    let mut pair = Pair::new();
    let app = pair.server.scratch("app.bin");
    write_pseudo_random(&app, 300_000, 1);
    let tree = pair.server.scratch("tree");
    make_tree(&tree, 300);
    pair.publish("app", &app);
    pair.publish("tree", &tree);

    let followed = pair.laptop.json(["sync", "follow", &pair.ticket]);
    assert_eq!(followed["zone_followed"]["zone"], "rel", "{followed}");
    assert_eq!(followed["follow"]["entry"], "rel", "{followed}");
    assert_eq!(followed["follow"]["names"], 2, "{followed}");
    assert_eq!(followed["follow"]["missing"], 0, "{followed}");
    let ls = pair.laptop.json(["sync", "ls"]);
    assert_eq!(ls[0]["present"], 2, "{ls}");
    assert!(ls[0]["bytes"].as_u64().unwrap() > 300_000, "{ls}");

    // The server goes away, then the laptop's daemon too: all is here.
    pair.stop_server();
    pair.stop_laptop();
    let app_bytes = std::fs::read(&app).unwrap();
    assert_eq!(resolves_to(&pair.laptop, "rel/app"), Some(b3(&app_bytes)));
    let out = pair.laptop.scratch("out-tree");
    pair.laptop
        .ok(["export".as_ref(), "rel/tree".as_ref(), out.as_os_str()]);
    assert_same_tree(&tree, &out);
    let out_app = pair.laptop.scratch("out-app");
    pair.laptop
        .ok(["export".as_ref(), "rel/app".as_ref(), out_app.as_os_str()]);
    assert_eq!(std::fs::read(&out_app).unwrap(), app_bytes);
}

#[test]
fn the_laptop_catches_up_on_its_own_and_nothing_new_costs_one_small_message() {
    let mut pair = Pair::new();
    let v1 = pair.server.scratch("v1.txt");
    std::fs::write(&v1, "release 1\n").unwrap();
    pair.publish("app", &v1);
    pair.laptop.ok(["sync", "follow", &pair.ticket]);
    pair.stop_laptop();

    // While the laptop is away, the server publishes a new name.
    let new = pair.server.scratch("new.bin");
    write_pseudo_random(&new, 2_000_000, 2);
    pair.publish("new", &new);
    let new_bytes = std::fs::read(&new).unwrap();

    // Started again, the laptop converges with no command.
    pair.laptop_daemon = Some(pair.laptop.start_daemon());
    pair.laptop_connected();
    let status = pair.laptop.json(["sync", "status", "--wait", "120s"]);
    assert_eq!(status["in_sync"], true, "{status}");
    assert_eq!(status["peers"][0]["state"], "in sync", "{status}");
    assert_eq!(resolves_to(&pair.laptop, "rel/new"), Some(b3(&new_bytes)));
    let ls = pair.laptop.json(["sync", "ls"]);
    assert_eq!(ls[0]["names"], 2, "{ls}");
    assert_eq!(ls[0]["missing"], 0, "{ls}");

    // Nothing new: one message each way, well under 1 KiB.
    let now = pair.laptop.json(["sync", "now"]);
    let exchange = &now["exchanges"][0];
    assert_eq!(exchange["unchanged"], true, "{now}");
    for field in ["messages_sent", "messages_received"] {
        let n = exchange[field].as_u64().unwrap();
        assert!((1..=2).contains(&n), "{field}: {now}");
    }
    for field in ["bytes_sent", "bytes_received"] {
        let n = exchange[field].as_u64().unwrap();
        assert!(n > 0 && n <= 1024, "{field}: {now}");
    }
    assert_eq!(exchange["bytes_fetched"], 0, "{now}");

    // The content is the laptop's own: the server gone, it still exports.
    pair.stop_server();
    let out = pair.laptop.scratch("out-new");
    pair.laptop
        .ok(["export".as_ref(), "rel/new".as_ref(), out.as_os_str()]);
    assert_eq!(std::fs::read(&out).unwrap(), new_bytes);
}

#[test]
fn a_sync_on_a_terminal_shows_a_progress_bar_and_in_a_pipe_none() {
    let pair = Pair::new();
    let big = pair.server.scratch("big.bin");
    write_pseudo_random(&big, 48 << 20, 9);
    pair.publish("big", &big);

    let out = pair.laptop.on_terminal(&["sync", "follow", &pair.ticket]);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("syncing") && shown.contains("MiB/48.00 MiB"),
        "no progress bar on the terminal: {shown}"
    );

    // Into a pipe: the same work, no bar.
    pair.laptop.ok(["sync", "unfollow", "rel"]);
    pair.laptop.ok(["gc"]);
    let piped = pair.laptop.cmd(["sync", "follow", "rel"]).output().unwrap();
    check_success(&piped);
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(
        !stderr.contains("MiB/48.00 MiB"),
        "a bar in a pipe: {stderr}"
    );
    assert!(
        std::fs::read(&big).is_ok_and(|b| resolves_to(&pair.laptop, "rel/big") == Some(b3(&b)))
    );
}

#[test]
fn a_peer_holding_every_capability_without_pairing_gets_no_local_job_results() {
    // Every capability both ways, granted by ordinary invites: no device
    // zone is shared, so neither is the other's own device.
    let (server, laptop) = (TestNode::loopback(), TestNode::loopback());
    let server_daemon = server.start_daemon();
    let laptop_daemon = laptop.start_daemon();
    let all = "fetch,push,exec,attest";
    admit(&server, &laptop, all);
    admit(&laptop, &server, all);
    let built = laptop.json([
        "exec",
        "--output",
        "p.txt",
        "--",
        "sh",
        "-c",
        "echo private > p.txt",
    ]);
    let id = built["id"].as_str().unwrap().to_owned();
    assert_eq!(
        built["executor"], "local",
        "the laptop ran it itself: {built}"
    );

    let now = server.json(["sync", "now"]);
    assert_eq!(now["exchanges"][0]["results_fetched"], 0, "{now}");
    let listed = server.json(["job", "ls"]);
    assert!(
        !listed
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id.as_str()),
        "the server took a job the laptop ran for itself: {listed}"
    );
    let refused = server.fails(["job", "result", &id]);
    assert!(
        refused.contains(&id[..8]) || refused.contains("no job"),
        "{refused}"
    );
    server.stop(server_daemon);
    laptop.stop(laptop_daemon);
}

#[test]
fn a_peer_that_refuses_to_sync_does_not_hold_up_status_wait() {
    // The laptop joins the server (it holds `fetch` there) but grants the
    // server nothing: the server's catch-ups with it are refused.
    let (server, laptop) = (TestNode::loopback(), TestNode::loopback());
    let server_daemon = server.start_daemon();
    let laptop_daemon = laptop.start_daemon();
    admit(&server, &laptop, "fetch");
    laptop.ok(["sync", "now"]);

    let status = server.json(["sync", "status", "--wait", "60s"]);
    assert_eq!(status["in_sync"], true, "{status}");
    assert!(status.get("timed_out").is_none(), "{status}");
    let peer = &status["peers"][0];
    assert_eq!(peer["connected"], true, "{status}");
    assert_eq!(peer["state"], "not syncing (it refused)", "{status}");
    assert!(
        peer["error"].as_str().is_some_and(|e| e.contains("fetch")),
        "the reason names the missing capability: {status}"
    );
    // The laptop's own side is in sync with the server.
    let mine = laptop.json(["sync", "status", "--wait", "60s"]);
    assert_eq!(mine["peers"][0]["state"], "in sync", "{mine}");
    server.stop(server_daemon);
    laptop.stop(laptop_daemon);
}

#[test]
fn gc_keeps_what_the_follow_set_reaches_and_unfollow_lets_it_go() {
    let mut pair = Pair::new();
    let app = pair.server.scratch("app.bin");
    write_pseudo_random(&app, 200_000, 3);
    pair.publish("app", &app);
    let hash = b3(&std::fs::read(&app).unwrap());
    pair.laptop.ok(["sync", "follow", &pair.ticket]);
    pair.stop_server();

    pair.laptop.ok(["gc"]);
    let kept = pair.laptop.cmd(["cat", &hash]).output().unwrap();
    assert!(kept.status.success(), "gc took what the follow set keeps");
    assert_eq!(kept.stdout, std::fs::read(&app).unwrap());
    let ls = pair.laptop.json(["sync", "ls"]);
    assert_eq!(ls[0]["missing"], 0, "{ls}");

    let unfollowed = pair.laptop.json(["sync", "unfollow", "rel"]);
    assert_eq!(unfollowed["entry"], "rel", "{unfollowed}");
    assert_eq!(pair.laptop.json(["sync", "ls"]), serde_json::json!([]));
    pair.laptop.ok(["gc"]);
    let out = pair.laptop.cmd(["cat", &hash]).output().unwrap();
    assert!(
        !out.status.success(),
        "gc kept what only the follow set kept"
    );
    // The zone itself is still followed: its name still resolves.
    assert_eq!(resolves_to(&pair.laptop, "rel/app"), Some(hash));
    let refused = pair.laptop.fails(["sync", "unfollow", "rel"]);
    assert!(refused.contains("not in the follow set"), "{refused}");

    // Followed again with its server away: the daemon knew the content
    // complete before the gc, and must not say so now.
    let again = pair.laptop.json(["sync", "follow", "rel"]);
    assert_eq!(again["follow"]["missing"], 1, "{again}");
    assert_eq!(pair.laptop.json(["sync", "ls"])[0]["present"], 0);
}

#[test]
fn a_result_of_a_job_sent_before_the_laptop_went_away_arrives_by_itself() {
    let mut pair = Pair::with("min_sandbox = \"none\"\n", "fetch,exec");
    let server_key = pair.server.json(["id"])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut exec = pair
        .laptop
        .cmd([
            "exec",
            "--on",
            &server_key,
            "--sandbox",
            "none",
            "--",
            "sh",
            "-c",
            "sleep 2; echo finished on the server",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut id = None;
    eventually("the job runs on the server", || {
        id = pair.server.job_in("running");
        id.is_some()
    });
    let id = id.unwrap();
    // The laptop goes away while the job runs; the job ends on the server.
    pair.laptop_daemon.take().unwrap().signal(libc::SIGKILL);
    let _ = exec.wait();
    eventually("the job is done on the server", || {
        pair.server.job_in("done").as_deref() == Some(id.as_str())
    });
    let before = pair.laptop.json(["job", "status", &id]);
    assert_ne!(before["state"], "done", "{before}");

    // Started again, the laptop takes the result in with no command.
    pair.laptop_daemon = Some(pair.laptop.start_daemon());
    pair.laptop_connected();
    eventually("the laptop has the job's result", || {
        pair.laptop.json(["job", "status", &id])["state"] == "done"
    });
    let status = pair.laptop.json(["sync", "status", "--wait", "120s"]);
    assert_eq!(status["in_sync"], true, "{status}");

    // Its output is here: the server gone, it still reads.
    pair.stop_server();
    let result = pair.laptop.json(["job", "result", &id]);
    let stdout = result["result"]["stdout"]
        .as_str()
        .or_else(|| result["stdout"].as_str())
        .unwrap_or_else(|| panic!("no stdout in {result}"))
        .to_owned();
    let text = pair.laptop.ok(["cat", &stdout]);
    assert_eq!(text, "finished on the server\n");
}

const BIG: u64 = 200 << 20;

/// A pair where the server published `rel/big` (200 MiB) and the laptop
/// follows `rel`'s metadata; the laptop's `sync follow rel` runs in the
/// background, and this returns once about half of it is on the laptop.
fn half_way() -> (Pair, std::process::Child, String) {
    let pair = Pair::new();
    let big = pair.server.scratch("big.bin");
    write_pseudo_random(&big, BIG, 4);
    pair.publish("big", &big);
    let hash = resolves_to(&pair.server, "rel/big").unwrap();
    std::fs::remove_file(&big).unwrap();
    pair.laptop.ok(["name", "follow", &pair.ticket]);
    let blobs = pair.laptop.home().join("blobs");
    let before = dir_bytes(&blobs);
    let follow = pair
        .laptop
        .cmd(["sync", "follow", "rel", "--json"])
        .stdout(std::fs::File::create(pair.laptop.scratch("follow.out")).unwrap())
        .stderr(std::fs::File::create(pair.laptop.scratch("follow.err")).unwrap())
        .spawn()
        .unwrap();
    let mut seen = 0;
    for _ in 0..60_000 {
        seen = dir_bytes(&blobs).saturating_sub(before);
        if seen >= BIG / 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        (BIG / 2..BIG).contains(&seen),
        "caught the sync at {seen} bytes"
    );
    (pair, follow, hash)
}

/// Waits for the laptop to be in sync, and checks that `rel/big` is all
/// there and that the bytes fetched since the restart are well under the
/// total.
fn completes_with_less_than_the_total(pair: &Pair, hash: &str) {
    pair.laptop_connected();
    let status = pair.laptop.json(["sync", "status", "--wait", "600s"]);
    assert_eq!(status["in_sync"], true, "{status}");
    let fetched = status["bytes_fetched"].as_u64().unwrap();
    // The kill interrupted it (the caller checked): the rest came after.
    assert!(
        fetched > 0 && fetched < BIG * 3 / 5,
        "fetched {fetched} of {BIG} after the restart: {status}\nfollow: {}{}\nlaptop: {}",
        std::fs::read_to_string(pair.laptop.scratch("follow.out")).unwrap_or_default(),
        std::fs::read_to_string(pair.laptop.scratch("follow.err")).unwrap_or_default(),
        pair.laptop_daemon
            .as_ref()
            .map(|d| d.logs())
            .unwrap_or_default()
    );
    let ls = pair.laptop.json(["sync", "ls"]);
    assert_eq!(ls[0]["missing"], 0, "{ls}");
    let fsck = pair.laptop.json(["fsck"]);
    assert!(fsck["damaged"].as_array().unwrap().is_empty(), "{fsck}");
    assert!(fsck["missing"].as_array().unwrap().is_empty(), "{fsck}");
    let out = pair.laptop.scratch("big.out");
    pair.laptop
        .ok(["export".as_ref(), "rel/big".as_ref(), out.as_os_str()]);
    let mut hasher = blake3::Hasher::new();
    std::io::copy(&mut std::fs::File::open(&out).unwrap(), &mut hasher).unwrap();
    assert_eq!(hasher.finalize().to_hex().as_str(), hash);
}

#[test]
fn a_sync_killed_on_the_fetching_side_resumes_where_it_stopped() {
    let (mut pair, mut follow, hash) = half_way();
    pair.laptop_daemon.take().unwrap().signal(libc::SIGKILL);
    let _ = follow.wait();
    let ls = pair.laptop.json(["sync", "ls"]);
    assert_eq!(ls[0]["missing"], 1, "the kill came too late: {ls}");
    // Started again, the laptop continues on its own.
    pair.laptop_daemon = Some(pair.laptop.start_daemon());
    completes_with_less_than_the_total(&pair, &hash);
    // The transfer the kill cut off was looked at, and is not damage.
    let logs = pair.server_daemon.as_ref().unwrap().logs();
    assert!(!logs.contains("refused to serve"), "{logs}");
}

#[test]
fn a_sync_whose_serving_side_was_killed_completes_once_it_is_back() {
    let (mut pair, mut follow, hash) = half_way();
    pair.server_daemon.take().unwrap().signal(libc::SIGKILL);
    let _ = follow.wait();
    let ls = pair.laptop.json(["sync", "ls"]);
    assert_eq!(ls[0]["missing"], 1, "the kill came too late: {ls}");
    pair.server_daemon = Some(pair.server.start_daemon());
    completes_with_less_than_the_total(&pair, &hash);
}
