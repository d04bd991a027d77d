//! Sync across a real network cut: a server and a laptop daemon in two
//! network namespaces joined by a veth pair that the test creates (rate
//! limited with `tc tbf`, so that the sync takes long enough to be cut), the
//! link taken down in the middle of the sync and brought back up: the sync
//! completes by itself.
//!
//! Runs wherever namespaces can be created; as root (CI) it must run.

// This target links every dependency of its package, used here or not.
#![allow(unused_crate_dependencies)]

use std::time::Duration;

use clive_tests::{TestNode, dir_bytes, eventually, netns::Link, write_pseudo_random};

const SIZE: u64 = 48 << 20;

#[test]
fn a_sync_cut_by_a_link_going_down_completes_once_it_comes_back() {
    let Some(link) = Link::create() else { return };
    // 40 Mbit/s: the 48 MiB sync takes about ten seconds.
    link.limit("40mbit");
    let server = TestNode::new();
    let laptop = TestNode::new();
    let _server_daemon = link.start_daemon(&server, 0);
    let _laptop_daemon = link.start_daemon(&laptop, 1);
    clive_tests::admit(&server, &laptop, "fetch");
    clive_tests::admit(&laptop, &server, "fetch");

    let created = server.json(["name", "zone", "create", "rel"]);
    let ticket = created["ticket"].as_str().unwrap().to_owned();
    let big = server.scratch("release.bin");
    write_pseudo_random(&big, SIZE, 3);
    server.ok([
        "name".as_ref(),
        "publish".as_ref(),
        "rel/big".as_ref(),
        big.as_os_str(),
    ]);
    let hash = server.ok(["name", "resolve", "rel/big"]).trim().to_owned();

    // The follow starts the sync; it may return before the bytes are here
    // (the link goes down under it): the daemon carries on.
    let before = dir_bytes(&laptop.home());
    let mut follow = laptop.cmd(["sync", "follow", &ticket]).spawn().unwrap();
    eventually("the sync is under way", || {
        dir_bytes(&laptop.home()) > before + (4 << 20)
    });
    link.down();
    // Down until the laptop has given up the connection (its liveness check
    // closes a connection whose peer stopped answering), so that the sync
    // must start again over a new one, on its own.
    let mut lost = false;
    for _ in 0..900 {
        let peers = laptop.json(["peers", "ls"]);
        if peers
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["connected"] != true)
        {
            lost = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        lost,
        "the laptop still counts the server as connected after 90 s of no link"
    );
    let during = dir_bytes(&laptop.home()) - before;
    link.up();
    let _ = follow.wait();

    let out = laptop.scratch("big.out");
    for _ in 0..900 {
        let _ = std::fs::remove_file(&out);
        let got = laptop
            .cmd(["export".as_ref(), hash.as_ref(), out.as_os_str()])
            .output()
            .unwrap();
        if got.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        std::fs::read(&out).expect("the sync completed after the link came back"),
        std::fs::read(&big).unwrap()
    );
    assert!(
        during < SIZE * 3 / 4,
        "the link was cut in the middle of the sync ({during} of {SIZE} bytes were here)"
    );
    let status = laptop.json(["sync", "status", "--wait", "60s"]);
    assert_eq!(status["in_sync"], true, "{status}");
}
