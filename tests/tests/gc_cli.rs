//! `gc` racing the commands that make roots: nothing a command reported as
//! stored may be collected.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{path::Path, process::Child};

use clive_tests::{TestNode, write_pseudo_random};

/// Rounds of each race.
const ROUNDS: u64 = 30;
/// Files in the pinned tree that makes gc's walk take a while.
const FILES_IN_LARGE_TREE: u64 = 5000;

fn first_word(text: &str) -> String {
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Seeds of distinct files: `write_pseudo_random` ignores the lowest bit.
fn seed(base: u64, round: u64) -> u64 {
    base + 2 * round
}

fn b3(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap())
        .to_hex()
        .to_string()
}

/// Pins a tree of many small files, so that working out what is live
/// takes gc a while: the window a racing command falls into.
fn pin_a_large_tree(node: &TestNode) {
    let dir = node.scratch("large");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..FILES_IN_LARGE_TREE {
        std::fs::write(dir.join(format!("{i}.txt")), format!("file {i}\n")).unwrap();
    }
    node.ok([
        "add".as_ref(),
        dir.as_os_str(),
        "--pin".as_ref(),
        "large".as_ref(),
    ]);
}

/// Starts `gc` in the background, with something for it to remove.
fn spawn_gc(node: &TestNode, round: u64) -> Child {
    let junk = node.scratch(&format!("junk{round}"));
    std::fs::write(&junk, format!("junk {round}\n")).unwrap();
    node.ok(["add".as_ref(), junk.as_os_str()]);
    let gc = node
        .cmd(["gc"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn clive-node gc");
    // Let it get some way into its walk before the racing command starts;
    // rounds vary how far.
    std::thread::sleep(std::time::Duration::from_millis(round % 5 * 25));
    gc
}

fn finish_gc(gc: Child) {
    let out = gc.wait_with_output().expect("wait for clive-node gc");
    assert!(
        out.status.success(),
        "gc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `(object, file)` is stored whole: `cat` gives the file's bytes.
fn assert_all_present(node: &TestNode, kept: &[(String, std::path::PathBuf)]) {
    let mut lost = Vec::new();
    for (object, file) in kept {
        let out = node.cmd(["cat", object]).output().unwrap();
        if !out.status.success() || out.stdout != std::fs::read(file).unwrap() {
            lost.push(format!(
                "{object}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} stored objects lost to gc:\n{}",
        lost.len(),
        kept.len(),
        lost.join("\n")
    );
    let fsck = node.json(["fsck"]);
    assert!(fsck["damaged"].as_array().unwrap().is_empty(), "{fsck}");
    assert!(fsck["missing"].as_array().unwrap().is_empty(), "{fsck}");
}

#[test]
fn gc_racing_add_with_pin_loses_nothing() {
    let node = TestNode::loopback();
    let daemon = node.start_daemon();
    pin_a_large_tree(&node);
    let mut kept = Vec::new();
    for i in 0..ROUNDS {
        let file = node.scratch(&format!("f{i}.bin"));
        write_pseudo_random(&file, 1 << 20, seed(1000, i));
        let pin = format!("p{i}");
        let gc = spawn_gc(&node, i);
        let out = node
            .cmd([
                "add".as_ref(),
                file.as_os_str(),
                "--pin".as_ref(),
                pin.as_ref(),
            ])
            .output()
            .unwrap();
        finish_gc(gc);
        if out.status.success() {
            kept.push((pin, file));
        }
    }
    assert!(!kept.is_empty(), "no add succeeded");
    assert_all_present(&node, &kept);
    node.stop(daemon);
}

#[test]
fn gc_racing_name_publish_loses_nothing() {
    let node = TestNode::loopback();
    let daemon = node.start_daemon();
    node.ok(["name", "zone", "create", "z"]);
    pin_a_large_tree(&node);
    let mut kept = Vec::new();
    for i in 0..ROUNDS {
        let file = node.scratch(&format!("n{i}.bin"));
        write_pseudo_random(&file, 1 << 20, seed(2000, i));
        let gc = spawn_gc(&node, i);
        let out = node
            .cmd([
                "name".as_ref(),
                "publish".as_ref(),
                format!("z/f{i}").as_ref(),
                file.as_os_str(),
            ])
            .output()
            .unwrap();
        finish_gc(gc);
        if out.status.success() {
            kept.push((b3(&file), file));
        }
    }
    assert!(!kept.is_empty(), "no publish succeeded");
    assert_all_present(&node, &kept);
    node.stop(daemon);
}

#[test]
fn gc_racing_get_then_pin_add_loses_nothing() {
    let (a, b) = (TestNode::loopback(), TestNode::loopback());
    let a_daemon = a.start_daemon();
    let b_daemon = b.start_daemon();
    let a_id = a.json(["id"])["endpoint_id"].as_str().unwrap().to_owned();
    clive_tests::admit(&a, &b, "fetch");
    pin_a_large_tree(&b);
    let mut kept = Vec::new();
    for i in 0..ROUNDS {
        let file = a.scratch(&format!("g{i}.bin"));
        write_pseudo_random(&file, 1 << 20, seed(3000, i));
        let hash = first_word(&a.ok([
            "add".as_ref(),
            file.as_os_str(),
            "--pin".as_ref(),
            format!("g{i}").as_ref(),
        ]));
        let gc = spawn_gc(&b, i);
        let got = b.cmd(["get", &hash, "--from", &a_id]).output().unwrap();
        // gc may take it between the two commands; then `pin add` must
        // refuse, never pin what is gone.
        let pinned = b
            .cmd(["pin", "add", &format!("g{i}"), &hash])
            .output()
            .unwrap();
        finish_gc(gc);
        if got.status.success() && pinned.status.success() {
            kept.push((hash, file));
        }
    }
    assert!(!kept.is_empty(), "no get and pin succeeded");
    assert_all_present(&b, &kept);
    a.stop(a_daemon);
    b.stop(b_daemon);
}

#[test]
fn pin_add_refuses_an_object_whose_closure_is_not_here() {
    let a = TestNode::new();
    let src = a.scratch("src");
    std::fs::create_dir(&src).unwrap();
    write_pseudo_random(&src.join("big.bin"), 300_000, 41);
    std::fs::write(src.join("small.txt"), b"small\n").unwrap();
    let tree = first_word(&a.ok(["add".as_ref(), src.as_os_str()]));
    let encoded = a.scratch("tree.bin");
    let out = a.cmd(["cat", &tree]).output().unwrap();
    assert!(out.status.success());
    std::fs::write(&encoded, &out.stdout).unwrap();

    // B holds the tree object but nothing below it, as after an
    // interrupted `get`.
    let b = TestNode::new();
    assert_eq!(
        first_word(&b.ok(["add".as_ref(), encoded.as_os_str()])),
        tree
    );
    let err = b.fails(["pin", "add", "partial", &tree]);
    let big = b3(&src.join("big.bin"));
    assert!(err.contains("not all here"), "{err}");
    assert!(err.contains(&format!("{tree}/big.bin ({big})")), "{err}");
    assert!(err.contains(&format!("clive-node get {tree}")), "{err}");
    assert!(!b.ok(["pin", "ls"]).contains("partial"));
    let fsck = b.json(["fsck"]);
    assert!(fsck["missing"].as_array().unwrap().is_empty(), "{fsck}");

    // Complete, it pins.
    b.ok(["add".as_ref(), src.as_os_str()]);
    b.ok(["pin", "add", "whole", &tree]);
}
