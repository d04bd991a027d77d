//! The content-addressed store through the real `clive-node` binary.

use std::{
    io::Write,
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use clive_tests::{TestNode, assert_same_tree, check_success, tool, write_pseudo_random};

fn b3sum(path: &Path) -> String {
    tool("b3sum", [path])
        .split_whitespace()
        .next()
        .expect("b3sum prints a hash")
        .to_owned()
}

fn first_word(text: &str) -> String {
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn blob_hash_equals_b3sum_for_files_and_stdin() {
    let node = TestNode::new();
    let file = node.scratch("data.bin");
    write_pseudo_random(&file, 5_000_003, 7);
    let out = node.ok(["add".as_ref(), file.as_os_str()]);
    // Exactly the line b3sum prints.
    assert_eq!(out, tool("b3sum", [&file]));
    let empty = node.scratch("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(
        first_word(&node.ok(["add".as_ref(), empty.as_os_str()])),
        b3sum(&empty)
    );

    let mut child = node
        .cmd(["add", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&std::fs::read(&file).unwrap()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    check_success(&out);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}  -\n", b3sum(&file))
    );
}

/// `find`'s view of a tree: relative path, type and permission bits.
fn modes(root: &Path) -> Vec<String> {
    let out = tool(
        "find",
        [root.as_os_str(), "-printf".as_ref(), "%P %y %m\n".as_ref()],
    );
    let mut lines: Vec<String> = out
        .lines()
        .filter(|l| !l.is_empty())
        // Symlink permission bits are meaningless on Linux.
        .map(|l| {
            if l.contains(" l ") {
                l.rsplit_once(' ').map_or(l, |(a, _)| a).to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn tree_round_trip_keeps_content_modes_links_and_empty_dirs() {
    let node = TestNode::new();
    let src = node.scratch("src");
    std::fs::create_dir_all(src.join("a/b/c")).unwrap();
    std::fs::create_dir_all(src.join("empty-dir/also-empty")).unwrap();
    std::fs::create_dir_all(src.join("ünïcödé ☃/日本語")).unwrap();
    std::fs::write(src.join("a/b/c/deep.txt"), b"deep\n").unwrap();
    std::fs::write(src.join("empty-file"), b"").unwrap();
    std::fs::write(
        src.join("ünïcödé ☃/日本語/ファイル.txt"),
        "こんにちは".as_bytes(),
    )
    .unwrap();
    let script = src.join("a/run.sh");
    std::fs::write(&script, b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    symlink("b/c/deep.txt", src.join("a/link-to-deep")).unwrap();
    symlink("../missing-target", src.join("dangling")).unwrap();
    write_pseudo_random(&src.join("a/big.bin"), 100 * 1024 * 1024 + 17, 42);
    for dir in ["", "a", "a/b", "a/b/c", "empty-dir", "empty-dir/also-empty"] {
        std::fs::set_permissions(src.join(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    let hash = first_word(&node.ok(["add".as_ref(), src.as_os_str()]));
    let listing = node.ok(["ls", &hash]);
    assert!(
        listing.contains("tree") && listing.contains("empty-dir/"),
        "{listing}"
    );
    assert!(
        listing.contains("dangling -> ../missing-target"),
        "{listing}"
    );

    let dest = node.scratch("dest");
    node.ok(["export".as_ref(), hash.as_ref(), dest.as_os_str()]);
    assert_same_tree(&src, &dest);
    assert_eq!(modes(&src), modes(&dest));

    // Exporting again refuses to overwrite, unless forced.
    let err = node.fails(["export".as_ref(), hash.as_ref(), dest.as_os_str()]);
    assert!(err.contains("already exists (use --force"), "{err}");
    std::fs::write(dest.join("extra"), b"stale").unwrap();
    node.ok([
        "export".as_ref(),
        hash.as_ref(),
        dest.as_os_str(),
        "--force".as_ref(),
    ]);
    assert!(!dest.join("extra").exists());
    assert_same_tree(&src, &dest);
}

#[test]
fn same_content_added_twice_is_stored_once() {
    let node = TestNode::new();
    let file = node.scratch("one.bin");
    write_pseudo_random(&file, 3_000_000, 3);
    let copy = node.scratch("copy.bin");
    std::fs::copy(&file, &copy).unwrap();
    node.ok(["add".as_ref(), file.as_os_str()]);
    let before = node.json(["fsck"]);
    node.ok(["add".as_ref(), file.as_os_str(), copy.as_os_str()]);
    let after = node.json(["fsck"]);
    assert_eq!(before["objects"], 1);
    assert_eq!(after["objects"], 1);
    assert_eq!(before["bytes"], after["bytes"]);
}

#[test]
fn pins_gc_fsck_cat_and_json() {
    let node = TestNode::new();
    let keep = node.scratch("keep.txt");
    std::fs::write(&keep, b"keep me\n").unwrap();
    let drop_me = node.scratch("drop.bin");
    write_pseudo_random(&drop_me, 200_000, 9);
    let added = node.json([
        "add".as_ref(),
        keep.as_os_str(),
        "--pin".as_ref(),
        "keeper".as_ref(),
    ]);
    let keep_hash = added[0]["hash"].as_str().unwrap().to_owned();
    assert_eq!(added[0]["kind"], "blob");
    assert_eq!(added[0]["pin"], "keeper");
    let dropped = first_word(&node.ok(["add".as_ref(), drop_me.as_os_str()]));

    assert_eq!(node.ok(["cat", "keeper"]), "keep me\n");
    assert_eq!(node.ok(["cat", &keep_hash]), "keep me\n");
    let pins = node.json(["pin", "ls"]);
    assert_eq!(pins[0]["name"], "keeper");
    assert_eq!(pins[0]["hash"], keep_hash.as_str());

    let dry = node.json(["gc", "--dry-run"]);
    assert_eq!(dry["removed"], 1);
    assert_eq!(dry["freed_bytes"], 200_000);
    assert_eq!(dry["removed_hashes"][0], dropped.as_str());
    let out = node.cmd(["cat", &dropped]).output().unwrap();
    check_success(&out);
    assert_eq!(out.stdout, std::fs::read(&drop_me).unwrap());
    let text = node.ok(["gc"]);
    assert!(text.starts_with("removed 1 objects"), "{text}");
    let err = node.fails(["cat", &dropped]);
    assert!(err.contains("is not in this store"), "{err}");
    assert_eq!(node.ok(["cat", "keeper"]), "keep me\n");

    let fsck = node.json(["fsck"]);
    assert_eq!(fsck["objects"], 1);
    assert_eq!(fsck["damaged"].as_array().unwrap().len(), 0);

    node.ok(["pin", "rm", "keeper"]);
    let err = node.fails(["pin", "rm", "keeper"]);
    assert!(err.contains("no pin named \"keeper\""), "{err}");
    let err = node.fails(["cat", "keeper"]);
    assert!(err.contains("neither a hash"), "{err}");
    let err = node.fails(["ls", &keep_hash]);
    assert!(err.contains("is a blob, not a tree"), "{err}");
}

#[test]
fn fsck_reports_a_corrupted_blob_and_exits_nonzero() {
    let node = TestNode::new();
    let file = node.scratch("victim.bin");
    write_pseudo_random(&file, 1_000_000, 11);
    let hash = first_word(&node.ok(["add".as_ref(), file.as_os_str()]));
    let data = node.home().join(format!("blobs/data/{hash}.data"));
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[500_000] ^= 1;
    std::fs::write(&data, bytes).unwrap();
    let out = node.cmd(["fsck"]).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("damaged {hash}")), "{text}");
}

#[test]
fn a_second_process_is_told_which_process_holds_the_home() {
    let node = TestNode::new();
    // `add -` holds the home until its standard input closes.
    let mut holder = node
        .cmd(["add", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = holder.id().to_string();
    let lock = node.home().join("lock");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&lock).unwrap_or_default().trim() != pid {
        assert!(Instant::now() < deadline, "the holder never took the home");
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = node.fails(["id"]);
    assert!(
        err.contains(&format!("is in use by process {pid}")),
        "{err}"
    );
    assert!(err.contains("clive-node"), "{err}");
    drop(holder.stdin.take());
    let out = holder.wait_with_output().unwrap();
    check_success(&out);
    node.ok(["id"]);
}

#[test]
fn killed_add_leaves_a_clean_store_and_a_new_add_completes() {
    let node = TestNode::new();
    let big = node.scratch("big.bin");
    write_pseudo_random(&big, 600 * 1024 * 1024, 5);
    let mut child = node
        .cmd(["add".as_ref(), big.as_os_str()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the import has written part of its data.
    let temp = node.home().join("blobs/temp");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut killed_midway = false;
    loop {
        let written: u64 = std::fs::read_dir(&temp)
            .map(|d| {
                d.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        if written > 0 {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            killed_midway = true;
            break;
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = child.wait().unwrap();
    assert!(
        killed_midway,
        "the add finished before it could be killed ({status})"
    );
    assert!(!status.success());

    let fsck = node.json(["fsck"]);
    assert_eq!(fsck["damaged"].as_array().unwrap().len(), 0, "{fsck}");
    assert_eq!(fsck["missing"].as_array().unwrap().len(), 0, "{fsck}");
    let out = node.ok(["add".as_ref(), big.as_os_str()]);
    assert_eq!(first_word(&out), b3sum(&big));
    let fsck = node.json(["fsck"]);
    assert_eq!(fsck["objects"], 1, "{fsck}");
    assert!(
        std::fs::read_dir(&temp).unwrap().next().is_none(),
        "temp files left over"
    );
}
