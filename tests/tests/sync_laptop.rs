//! The laptop scenario of offline sync, with real daemons on 127.0.0.1: a
//! laptop and a server paired as one person's devices; the laptop stops;
//! the server publishes two releases (one a tree of 2,000 files) in a zone
//! the laptop follows; the laptop, offline, adds files, publishes a name in
//! the shared device zone and runs a job; the laptop starts again and both
//! converge with no other command; then, with no network at all, the laptop
//! exports the releases.

// This target links every dependency of its package, used here or not.
#![allow(unused_crate_dependencies)]

use std::path::Path;

use clive_tests::{TestNode, assert_same_tree, eventually, write_pseudo_random};

/// What `name resolve NAME` prints on `node`, if it resolves.
fn resolves_to(node: &TestNode, name: &str) -> Option<String> {
    let out = node.cmd(["name", "resolve", name]).output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether `node` holds the whole of `hash` (a blob or a tree).
fn holds(node: &TestNode, hash: &str, dir: &Path) -> bool {
    let _ = std::fs::remove_dir_all(dir);
    let out = node
        .cmd(["export".as_ref(), hash.as_ref(), dir.as_os_str()])
        .output()
        .unwrap();
    out.status.success()
}

fn make_tree(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{:02}", i % 40));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("page{i:04}.html")),
            format!("<p>{i}</p>\n"),
        )
        .unwrap();
    }
}

#[test]
fn a_laptop_that_worked_offline_converges_with_its_server_when_it_starts() {
    let server = TestNode::loopback();
    let laptop = TestNode::loopback();
    let server_daemon = server.start_daemon();
    let laptop_daemon = laptop.start_daemon();

    // Pairing: one command on each side.
    let invite = server.ok(["invite", "--device", "--expires", "10m"]);
    let ticket = invite.lines().last().unwrap().trim().to_owned();
    laptop.ok(["join", &ticket]);
    // The releases zone is the server's; the laptop keeps it in sync.
    let created = server.json(["name", "zone", "create", "rel"]);
    let rel_ticket = created["ticket"].as_str().unwrap().to_owned();
    laptop.ok(["sync", "follow", &rel_ticket]);
    eventually("the laptop follows the device zone", || {
        laptop
            .json(["sync", "ls"])
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["zone"] == "devices")
    });

    laptop.stop(laptop_daemon);

    // The server publishes two releases while the laptop is away.
    let app = server.scratch("app-1.0.bin");
    write_pseudo_random(&app, 3 << 20, 7);
    let site = server.scratch("site");
    make_tree(&site, 2000);
    server.ok([
        "name".as_ref(),
        "publish".as_ref(),
        "rel/app".as_ref(),
        app.as_os_str(),
    ]);
    server.ok([
        "name".as_ref(),
        "publish".as_ref(),
        "rel/site".as_ref(),
        site.as_os_str(),
    ]);
    let app_hash = resolves_to(&server, "rel/app").unwrap();
    let site_hash = resolves_to(&server, "rel/site").unwrap();

    // The laptop, offline (no daemon: each command runs in-process), adds
    // files, publishes a name in the device zone and runs a job.
    let notes = laptop.scratch("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "buy milk\n").unwrap();
    laptop.ok(["add".as_ref(), notes.as_os_str()]);
    laptop.ok([
        "name".as_ref(),
        "publish".as_ref(),
        "devices/notes".as_ref(),
        notes.as_os_str(),
    ]);
    let notes_hash = resolves_to(&laptop, "devices/notes").unwrap();
    let built = laptop.json([
        "exec",
        "--output",
        "log.txt",
        "--",
        "sh",
        "-c",
        "echo built offline > log.txt",
    ]);
    let job_output = built["result"]["outputs"]
        .as_str()
        .unwrap_or_else(|| panic!("exec printed no outputs hash: {built}"))
        .to_owned();

    // Starting the laptop is the only command: both sides converge.
    let laptop_daemon = laptop.start_daemon();
    let look = laptop.scratch("look");
    let look_server = server.scratch("look");
    eventually(
        "the laptop and the server agree on every followed name",
        || {
            resolves_to(&laptop, "rel/app").as_deref() == Some(app_hash.as_str())
                && resolves_to(&laptop, "rel/site").as_deref() == Some(site_hash.as_str())
                && resolves_to(&server, "devices/notes").as_deref() == Some(notes_hash.as_str())
        },
    );
    let status = laptop.json(["sync", "status", "--wait", "120s"]);
    assert_eq!(status["in_sync"], true, "{status}");
    assert!(
        holds(&laptop, &site_hash, &look),
        "the laptop lacks rel/site"
    );
    assert!(
        holds(&laptop, &app_hash, &look.with_extension("bin")),
        "the laptop lacks rel/app"
    );
    eventually("the server holds the laptop's notes", || {
        holds(&server, &notes_hash, &look_server)
    });
    // The job ran on the laptop: its result and outputs are on both.
    assert!(holds(&laptop, &job_output, &look.with_extension("job")));
    let job_id = built["id"]
        .as_str()
        .unwrap_or_else(|| panic!("exec printed no job id: {built}"))
        .to_owned();
    eventually("the server holds the result of the laptop's job", || {
        holds(&server, &job_output, &look_server.with_extension("job"))
    });
    let on_server = server.json(["job", "result", &job_id]);
    assert_eq!(
        on_server["result"]["outputs"].as_str(),
        Some(job_output.as_str()),
        "{on_server}"
    );
    let laptop_key = laptop.public_key();
    let laptop_key: Vec<&str> = laptop_key.split_whitespace().take(2).collect();
    assert_eq!(
        on_server["result"]["executor"].as_str(),
        Some(laptop_key.join(" ").as_str()),
        "the server's copy is the laptop's signed result: {on_server}"
    );
    let listed = server.json(["job", "ls"]);
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == job_id.as_str())
        .unwrap_or_else(|| panic!("the server's job ls lacks the laptop's job: {listed}"));
    assert_eq!(entry["state"], "done", "{listed}");
    assert_eq!(
        entry["device"], true,
        "listed as the laptop's own: {listed}"
    );

    server.stop(server_daemon);
    laptop.stop(laptop_daemon);

    // No network: the laptop exports the releases from what it kept.
    let out = laptop.scratch("site-export");
    laptop.ok(["export".as_ref(), "rel/site".as_ref(), out.as_os_str()]);
    assert_same_tree(&site, &out);
    let bin = laptop.scratch("app-export.bin");
    laptop.ok(["export".as_ref(), "rel/app".as_ref(), bin.as_os_str()]);
    assert_eq!(std::fs::read(&bin).unwrap(), std::fs::read(&app).unwrap());
}
