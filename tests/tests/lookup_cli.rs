//! Read-only lookups (`name resolve`, `name history`, `name zone ls`): with
//! no daemon they are answered from `state.redb` opened read-only; when
//! that cannot be done, a warning says why before the node is opened.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use clive_tests::TestNode;

/// `clive-node name resolve NAME` with `RUST_LOG=info`, or with the
/// tool's default log filter when `info` is false: exit success, standard
/// output, standard error.
fn resolve_logged(node: &TestNode, name: &str, info: bool) -> (bool, String, String) {
    let mut cmd: Command = node.cmd(["name", "resolve", name]);
    if info {
        cmd.env("RUST_LOG", "info");
    }
    let out = cmd.output().expect("run clive-node");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether process `pid` has `file` open (Linux: its `/proc/PID/fd`).
fn holds_open(pid: u32, file: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == file))
}

#[test]
fn a_lookup_that_cannot_read_the_state_alone_says_why() {
    let node = TestNode::new();
    let file = node.scratch("f");
    std::fs::write(&file, "content\n").unwrap();
    node.ok(["name", "zone", "create", "rel"]);
    node.ok(["name", "publish", "rel/f", file.to_str().unwrap()]);
    let hash = blake3::hash(b"content\n").to_hex().to_string();

    // Served from the state alone: nothing to explain, even at `info`.
    let (ok, out, err) = resolve_logged(&node, "rel/f", true);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), hash);
    assert!(!err.contains("read-only"), "{err}");

    // Another process holds the node (and its state, for writing): `add -`
    // waiting for the rest of its standard input.
    let mut holder = node
        .cmd(["add", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run clive-node add -");
    let mut stdin = holder.stdin.take().expect("stdin");
    stdin.write_all(b"partial").unwrap();
    // Once the holder has the state open (a lookup before that would keep
    // it out: redb's lock), the lookup cannot read the state alone.
    let state = node.home().join("state.redb");
    let mut opened = false;
    for _ in 0..600 {
        if holds_open(holder.id(), &state) {
            opened = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(opened, "the holder never opened {}", state.display());
    // Said as a warning, which the default filter shows.
    let (ok, _, err) = resolve_logged(&node, "rel/f", false);
    assert!(!ok, "{err}");
    assert!(err.contains("in use by process"), "{err}");
    assert!(
        err.contains("WARN")
            && err.contains("the state cannot be opened read-only")
            && err.contains("state.redb")
            && err.contains("opening the node instead"),
        "{err}"
    );
    drop(stdin);
    assert!(holder.wait().unwrap().success());
    let (ok, out, err) = resolve_logged(&node, "rel/f", true);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), hash);
}
