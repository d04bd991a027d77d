//! Pairing one's own devices with real daemons on 127.0.0.1: `invite
//! --device` on one, `join` on the other. Both hold every capability on the
//! other, both list the device zone and publish into it, a name the joiner
//! publishes while the inviter is stopped reaches the inviter once it
//! starts, and a device whose home was wiped pairs again the same way.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use clive_tests::{TestNode, eventually, write_pseudo_random};

fn id(node: &TestNode, field: &str) -> String {
    node.json(["id"])[field].as_str().unwrap().to_owned()
}

fn pair(inviter: &TestNode, joiner: &TestNode) -> String {
    let out = inviter.ok(["invite", "--device", "--expires", "10m"]);
    let ticket = out.lines().last().unwrap().trim().to_owned();
    assert!(ticket.starts_with("clive1"), "{out}");
    assert!(out.contains("zone devices"), "{out}");
    joiner.ok(["join", &ticket])
}

fn holds_every_cap(node: &TestNode, peer: &TestNode) {
    let key = id(peer, "endpoint_id");
    for cap in ["fetch", "push", "exec", "attest"] {
        let out = node
            .cmd(["trust", "verify", "--peer", &key, "--cap", cap])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cap} of the other device is not granted:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn lists_devices_zone(node: &TestNode) -> bool {
    node.json(["name", "zone", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .any(|z| z["zone"] == "devices" || z["name"] == "devices")
}

fn resolves_to(node: &TestNode, name: &str, hash: &str) -> bool {
    node.cmd(["name", "resolve", name])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == hash)
}

#[test]
fn own_devices_pair_grant_everything_and_share_a_zone() {
    let server = TestNode::loopback();
    let laptop = TestNode::loopback();
    let ds = server.start_daemon();
    let dl = laptop.start_daemon();

    let joined = pair(&server, &laptop);
    assert!(joined.contains("following device zone devices"), "{joined}");
    holds_every_cap(&server, &laptop);
    holds_every_cap(&laptop, &server);
    let peers = server.ok(["peers", "ls"]);
    assert!(peers.contains(&id(&laptop, "endpoint_id")), "{peers}");
    assert!(lists_devices_zone(&server));
    assert!(lists_devices_zone(&laptop));

    // Both publish into the device zone.
    let from_server = server.scratch("from-server.txt");
    write_pseudo_random(&from_server, 3_000, 1);
    server.ok([
        "name",
        "publish",
        "devices/server.txt",
        from_server.to_str().unwrap(),
    ]);
    let h1 = server
        .ok(["name", "resolve", "devices/server.txt"])
        .trim()
        .to_owned();
    let from_laptop = laptop.scratch("from-laptop.txt");
    write_pseudo_random(&from_laptop, 3_000, 2);
    laptop.ok([
        "name",
        "publish",
        "devices/laptop.txt",
        from_laptop.to_str().unwrap(),
    ]);
    let h2 = laptop
        .ok(["name", "resolve", "devices/laptop.txt"])
        .trim()
        .to_owned();
    eventually("the laptop sees the server's name", || {
        resolves_to(&laptop, "devices/server.txt", &h1)
    });
    eventually("the server sees the laptop's name", || {
        resolves_to(&server, "devices/laptop.txt", &h2)
    });

    // The laptop publishes while the server is stopped; the server gets it
    // once it runs again, with nothing but starting it.
    server.stop(ds);
    let offline = laptop.scratch("offline.txt");
    write_pseudo_random(&offline, 5_000, 3);
    laptop.ok([
        "name",
        "publish",
        "devices/offline.txt",
        offline.to_str().unwrap(),
    ]);
    let h3 = laptop
        .ok(["name", "resolve", "devices/offline.txt"])
        .trim()
        .to_owned();
    let _ds = server.start_daemon();
    eventually("the server gets what the laptop published offline", || {
        resolves_to(&server, "devices/offline.txt", &h3)
    });

    // The laptop is wiped (new home, new key) and paired again.
    laptop.stop(dl);
    let fresh = TestNode::loopback();
    let _df = fresh.start_daemon();
    let joined = pair(&server, &fresh);
    assert!(joined.contains("following device zone devices"), "{joined}");
    holds_every_cap(&server, &fresh);
    holds_every_cap(&fresh, &server);
    eventually("the re-paired device resolves what was published", || {
        resolves_to(&fresh, "devices/offline.txt", &h3)
            && resolves_to(&fresh, "devices/server.txt", &h1)
    });
    let again = fresh.scratch("again.txt");
    write_pseudo_random(&again, 1_000, 4);
    fresh.ok([
        "name",
        "publish",
        "devices/again.txt",
        again.to_str().unwrap(),
    ]);
}
