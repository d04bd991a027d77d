//! The node's home kept safe, through the real `clive-node` binary: nothing
//! writes over it or adds it, damaged or lost state is refused with a way
//! out instead of a panic or a fresh start, reads of paths are bounded, and
//! the smaller things a new user trips over.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    io::{Seek, SeekFrom, Write},
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    process::Output,
};

use clive_tests::{TestNode, check_success};

fn first_word(text: &str) -> String {
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fails unless the command failed with exit code 1 and no panic.
fn refused(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a clean failure; stdout:\n{}\nstderr:\n{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A node holding one pinned tree; returns the node and the tree's hash.
fn node_with_tree() -> (TestNode, String) {
    let node = TestNode::new();
    let src = node.scratch("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha").unwrap();
    std::fs::write(src.join("sub/b.txt"), b"beta").unwrap();
    let hash = first_word(&node.ok([
        "add".as_ref(),
        "--pin".as_ref(),
        "t".as_ref(),
        src.as_os_str(),
    ]));
    (node, hash)
}

/// The home still works: the key, the pin and the bytes are all there.
fn assert_home_intact(node: &TestNode) {
    assert!(node.home().join("id_ed25519").is_file());
    assert!(node.home().join("state.redb").is_file());
    node.ok(["id"]);
    assert_eq!(node.ok(["cat", "t/a.txt"]), "alpha");
}

#[test]
fn export_and_get_refuse_the_home_its_inside_and_its_parents() {
    let (node, _) = node_with_tree();
    let home = node.home();
    let link = node.scratch("link-to-home");
    symlink(&home, &link).unwrap();
    let dangling = node.scratch("dangling");
    symlink(home.join("new-dir"), &dangling).unwrap();
    let dotdot = node.scratch("x/../home");
    let dests = [
        home.clone(),
        home.join("blobs"),
        home.join("not-yet/deeper"),
        node.root(),
        link.clone(),
        link.join("inside"),
        dangling.clone(),
        dotdot,
    ];
    for dest in &dests {
        let out = node
            .cmd([
                "export".as_ref(),
                "t".as_ref(),
                dest.as_os_str(),
                "--force".as_ref(),
            ])
            .output()
            .unwrap();
        let err = refused(&out);
        assert!(
            err.contains("refusing to write to"),
            "{}: {err}",
            dest.display()
        );
        assert!(err.contains("node's home"), "{err}");
        assert_home_intact(&node);
    }
    // Relative to the working directory, as the user typed it.
    let out = node
        .cmd(["export", "t", ".", "--force"])
        .current_dir(&home)
        .output()
        .unwrap();
    assert!(refused(&out).contains("refusing to write to"));
    assert!(!home.join("new-dir").exists());
    assert_home_intact(&node);

    // Through a daemon too, and `get -o`, before fetching anything.
    let daemon = node.start_daemon();
    for dest in [home.clone(), node.root()] {
        let out = node
            .cmd([
                "export".as_ref(),
                "t".as_ref(),
                dest.as_os_str(),
                "--force".as_ref(),
            ])
            .output()
            .unwrap();
        assert!(refused(&out).contains("refusing to write to"));
        let out = node
            .cmd([
                "get".as_ref(),
                "0000000000000000000000000000000000000000000000000000000000000000".as_ref(),
                "-o".as_ref(),
                dest.as_os_str(),
                "--force".as_ref(),
            ])
            .output()
            .unwrap();
        assert!(
            refused(&out).contains("refusing to write to"),
            "{}",
            stderr(&out)
        );
        assert_home_intact(&node);
    }
    // Files written with -o are refused there as well.
    let out = node
        .cmd([
            "trust".as_ref(),
            "grant".as_ref(),
            node.ok(["id"]).lines().next().unwrap().as_ref(),
            "--cap".as_ref(),
            "fetch".as_ref(),
            "-o".as_ref(),
            home.join("config.toml").as_os_str(),
        ])
        .output()
        .unwrap();
    assert!(refused(&out).contains("refusing to write to"));
    drop(daemon);
    assert_home_intact(&node);

    // Beside the home is fine.
    let beside = node.scratch("out");
    node.ok(["export".as_ref(), "t".as_ref(), beside.as_os_str()]);
    assert_eq!(std::fs::read(beside.join("a.txt")).unwrap(), b"alpha");
}

#[test]
fn add_refuses_the_home_and_what_contains_it() {
    let (node, _) = node_with_tree();
    let home = node.home();
    let link = node.scratch("link-to-home");
    symlink(&home, &link).unwrap();
    for path in [
        home.clone(),
        node.root(),
        home.join("id_ed25519"),
        link,
        home.join("../home/."),
    ] {
        let out = node
            .cmd(["add".as_ref(), path.as_os_str()])
            .output()
            .unwrap();
        let err = refused(&out);
        assert!(err.contains("refusing to add"), "{}: {err}", path.display());
    }
    let out = node.cmd(["add", "."]).current_dir(&home).output().unwrap();
    assert!(refused(&out).contains("refusing to add"));
    assert_eq!(node.ok(["pin", "ls"]).lines().count(), 1);
}

/// Overwrites 4 KiB in the middle of `path` with garbage.
fn damage_middle(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    assert!(len > 8192, "{} is only {len} bytes", path.display());
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(len / 2 - 2048)).unwrap();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    f.write_all(&garbage).unwrap();
    f.sync_all().unwrap();
}

/// A node whose state and blob database are well past their first pages.
fn node_with_history() -> TestNode {
    let (node, _) = node_with_tree();
    for i in 0..40 {
        let file = node.scratch(&format!("f{i}"));
        std::fs::write(&file, format!("file {i} ").repeat(300)).unwrap();
        node.ok([
            "add".as_ref(),
            "--pin".as_ref(),
            format!("p{i}").as_ref(),
            file.as_os_str(),
        ]);
    }
    node
}

#[test]
fn a_damaged_state_database_is_an_error_naming_it_not_a_panic() {
    let node = node_with_history();
    let state = node.home().join("state.redb");
    damage_middle(&state);
    each_refused_naming(
        &node,
        &[&["pin", "ls"], &["cat", "t/a.txt"], &["gc"], &["id"]],
        "state.redb",
    );

    // Lookups open the state alone, read-only, and cannot verify it all
    // first: what they do not read may be damaged, but they never panic,
    // and damage they meet is the same error.
    let lookups = [&["name", "zone", "ls"][..], &["name", "resolve", "z/x"]];
    for args in lookups {
        let out = node.cmd(args).output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    damage_from(&state, 4096);
    for args in lookups {
        let out = node.cmd(args).output().unwrap();
        let err = refused(&out);
        assert!(err.contains("state.redb is damaged"), "{args:?}: {err}");
    }
}

/// Overwrites everything of `path` from `offset` on with garbage.
fn damage_from(path: &Path, offset: u64) {
    let len = std::fs::metadata(path).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let garbage: Vec<u8> = (offset..len)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    f.write_all(&garbage).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_damaged_blob_database_is_an_error_naming_it_not_a_panic() {
    let node = node_with_history();
    let blobs = node.home().join("blobs/blobs.db");
    damage_middle(&blobs);
    each_refused_naming(
        &node,
        &[&["pin", "ls"], &["cat", "t/a.txt"], &["gc"], &["fsck"]],
        "blobs.db",
    );
}

/// Each of `commands`, and `start`, is refused with an error naming the
/// damaged `file`.
fn each_refused_naming(node: &TestNode, commands: &[&[&str]], file: &str) {
    for args in commands {
        let out = node.cmd(*args).output().unwrap();
        let err = refused(&out);
        assert!(err.contains(file), "{args:?}: {err}");
        assert!(err.contains("damaged"), "{args:?}: {err}");
    }
    let out = node
        .cmd(["start", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(refused(&out).contains(file));
}

#[test]
fn a_lost_or_emptied_state_is_refused_not_recreated() {
    let node = node_with_history();
    let state = node.home().join("state.redb");
    let saved = node.scratch("state.redb.saved");
    std::fs::copy(&state, &saved).unwrap();
    let pins = node.ok(["pin", "ls"]);

    for lose in ["empty", "missing"] {
        match lose {
            "empty" => std::fs::File::create(&state).map(drop).unwrap(),
            _ => std::fs::remove_file(&state).unwrap(),
        }
        for args in [&["gc"][..], &["pin", "ls"], &["add", "-"]] {
            let out = node.cmd(args).output().unwrap();
            let err = refused(&out);
            assert!(err.contains("state.redb"), "{lose} {args:?}: {err}");
            assert!(err.contains("restore"), "{lose} {args:?}: {err}");
        }
        let out = node
            .cmd(["start", "--bind", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert!(refused(&out).contains("state.redb"));
        // Nothing was created in its place.
        let len = std::fs::metadata(&state).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len, 0, "{lose}: a new state was created");
    }
    // Put back, everything is there.
    std::fs::copy(&saved, &state).unwrap();
    assert_eq!(node.ok(["pin", "ls"]), pins);
    assert_eq!(node.ok(["cat", "p3"]), "file 3 ".repeat(300));
}

#[test]
fn reading_an_endless_file_stops_at_its_limit() {
    let node = TestNode::new();
    let out = node.cmd(["trust", "import", "/dev/zero"]).output().unwrap();
    let err = refused(&out);
    assert!(err.contains("/dev/zero is larger than"), "{err}");
    let out = node
        .cmd(["trust", "roots", "add", "/dev/zero", "--name", "z"])
        .output()
        .unwrap();
    assert!(refused(&out).contains("/dev/zero"));
}

#[test]
fn a_key_file_others_can_read_is_refused_with_the_chmod_that_fixes_it() {
    let node = TestNode::new();
    let key = node.home().join("id_ed25519");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = node.cmd(["id"]).output().unwrap();
    let err = refused(&out);
    assert!(err.contains("UNPROTECTED PRIVATE KEY FILE"), "{err}");
    assert!(err.contains("0644"), "{err}");
    assert!(
        err.contains(&format!("chmod 600 {}", key.display())),
        "{err}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    node.ok(["id"]);

    // Importing one.
    let other = TestNode::uninitialised();
    let loose = other.scratch("my key");
    clive_tests::ssh_keygen_key(&["-t", "ed25519", "-N", ""], &loose);
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = other
        .cmd(["init".as_ref(), "--ssh-key".as_ref(), loose.as_os_str()])
        .output()
        .unwrap();
    let err = refused(&out);
    assert!(
        err.contains(&format!("chmod 600 '{}'", loose.display())),
        "{err}"
    );
    assert!(!other.home().join("id_ed25519").exists());
}

#[test]
fn a_missing_key_file_says_so_and_how_to_get_one() {
    let node = TestNode::uninitialised();
    let missing = node.scratch("nope");
    let out = node
        .cmd(["init".as_ref(), "--ssh-key".as_ref(), missing.as_os_str()])
        .output()
        .unwrap();
    let err = refused(&out);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("no such key file"), "{err}");
    assert!(err.contains("clive-node init"), "{err}");

    // A home whose private key went away: signing names the file.
    let node = TestNode::new();
    let key = node.home().join("id_ed25519");
    let me = node.ok(["id"]).lines().next().unwrap().to_owned();
    std::fs::remove_file(&key).unwrap();
    let out = node
        .cmd(["trust", "grant", &me, "--cap", "fetch"])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    let err = refused(&out);
    assert!(
        err.contains(&format!("{}: no such key file", key.display())),
        "{err}"
    );
    assert!(err.contains("ssh-agent"), "{err}");
}

/// Parses the one JSON object a `--json` failure prints on standard error.
fn json_error(out: &Output) -> serde_json::Value {
    let err = stderr(out);
    let value: serde_json::Value =
        serde_json::from_str(err.trim()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{err}"));
    assert!(value["error"].is_string(), "{value}");
    value
}

#[test]
fn with_json_errors_are_json_on_stderr_with_the_same_exit_codes() {
    let node = TestNode::new();
    let text = node.cmd(["cat", "nosuch"]).output().unwrap();
    let json = node.cmd(["--json", "cat", "nosuch"]).output().unwrap();
    assert_eq!(json.status.code(), text.status.code());
    assert_eq!(json.status.code(), Some(1));
    let value = json_error(&json);
    assert!(
        value["error"].as_str().unwrap().contains("nosuch"),
        "{value}"
    );
    assert!(stderr(&text).starts_with("error: "));

    // Arguments that do not parse: clap's exit code, as JSON.
    let text = node.cmd(["frobnicate"]).output().unwrap();
    let json = node.cmd(["--json", "frobnicate"]).output().unwrap();
    assert_eq!(json.status.code(), text.status.code());
    assert_eq!(json.status.code(), Some(2));
    json_error(&json);

    // A node that is not there.
    let none = TestNode::uninitialised();
    let out = none.cmd(["--json", "pin", "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(json_error(&out)["error"].as_str().unwrap().contains("init"));

    // Through a daemon.
    let _daemon = node.start_daemon();
    let out = node.cmd(["--json", "cat", "nosuch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json_error(&out)["error"]
            .as_str()
            .unwrap()
            .contains("nosuch")
    );
    let out = node
        .cmd(["--json", "pin", "rm", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    json_error(&out);
}

#[test]
fn pin_names_that_look_like_hashes_or_paths_are_refused() {
    let (node, hash) = node_with_tree();
    let file = node.scratch("f");
    std::fs::write(&file, b"x").unwrap();
    for name in [hash.as_str(), &hash.to_uppercase(), "a/b", "/", "rel/"] {
        let err = node.fails(["pin", "add", name, "t"]);
        assert!(err.contains("invalid pin name"), "{name}: {err}");
        let err = node.fails([
            "add".as_ref(),
            "--pin".as_ref(),
            name.as_ref(),
            file.as_os_str(),
        ]);
        assert!(err.contains("invalid pin name"), "{name}: {err}");
    }
    let err = node.fails(["pin", "add", &hash, "t"]);
    assert!(err.contains("hash"), "{err}");
    let err = node.fails(["pin", "add", "a/b", "t"]);
    assert!(err.contains("'/'"), "{err}");
    // 63 hex digits is a name.
    node.ok(["pin", "add", &hash[..63], "t"]);
}

#[test]
fn replacing_a_pin_says_what_it_replaced() {
    let (node, tree) = node_with_tree();
    let file = node.scratch("f");
    std::fs::write(&file, b"x").unwrap();
    let blob = first_word(&node.ok(["add".as_ref(), file.as_os_str()]));

    let out = node.ok(["pin", "add", "t", &blob]);
    assert!(out.contains(&format!("replacing {tree}")), "{out}");
    let value = node.json(["pin", "add", "t", &tree]);
    assert_eq!(value["replaced"], blob.as_str(), "{value}");
    // The same object again replaces nothing.
    let value = node.json(["pin", "add", "t", &tree]);
    assert!(value.get("replaced").is_none(), "{value}");
    let out = node.ok(["pin", "add", "fresh", &tree]);
    assert!(!out.contains("replacing"), "{out}");

    // add --pin, as text (a note beside b3sum's line) and as JSON.
    let out = node
        .cmd([
            "add".as_ref(),
            "--pin".as_ref(),
            "t".as_ref(),
            file.as_os_str(),
        ])
        .output()
        .unwrap();
    check_success(&out);
    assert_eq!(first_word(&String::from_utf8_lossy(&out.stdout)), blob);
    assert!(
        stderr(&out).contains(&format!("it was {tree}")),
        "{}",
        stderr(&out)
    );
    let src = node.scratch("src");
    let value = node.json([
        "add".as_ref(),
        "--pin".as_ref(),
        "t".as_ref(),
        src.as_os_str(),
    ]);
    assert_eq!(value[0]["replaced"], blob.as_str(), "{value}");
}

#[test]
fn cat_of_a_tree_on_a_terminal_points_to_ls() {
    let (node, tree) = node_with_tree();
    let out = node.on_terminal(&["cat", "t"]);
    // pty.spawn joins the program's stdout and stderr on the terminal.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("is a tree"), "{text}");
    assert!(text.contains("clive-node ls t"), "{text}");
    // A blob on a terminal prints; a tree into a pipe is its encoding.
    let out = node.on_terminal(&["cat", "t/a.txt"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("alpha"));
    let out = node.cmd(["cat", &tree]).output().unwrap();
    check_success(&out);
    assert!(!out.stdout.is_empty());
    // Through a daemon too.
    let _daemon = node.start_daemon();
    let out = node.on_terminal(&["cat", "t"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("clive-node ls t"));
}

#[test]
fn init_makes_the_home_private_also_when_it_exists() {
    let fresh = TestNode::uninitialised();
    fresh.ok(["init"]);
    assert_eq!(mode(&fresh.home()), 0o700);

    let made = TestNode::uninitialised();
    std::fs::create_dir(made.home()).unwrap();
    std::fs::set_permissions(made.home(), std::fs::Permissions::from_mode(0o755)).unwrap();
    made.ok(["init"]);
    assert_eq!(mode(&made.home()), 0o700);
}
