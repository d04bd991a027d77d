//! The content-addressed store through the real `clive-node` binary.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

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
    let size: u64 = 1 << 30;
    write_pseudo_random(&big, size, 5);
    let mut child = node
        .cmd(["add".as_ref(), big.as_os_str()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the import has written part of its data: into the
    // store's data directory (one pass) or its temp directory.
    let temp = node.home().join("blobs/temp");
    let data = node.home().join("blobs/data");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut killed_midway = false;
    loop {
        let written: u64 = [&temp, &data]
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        if written > size / 3 {
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

/// Flips one bit of the byte at `offset` in a stored large blob's data file.
fn flip_stored_byte(node: &TestNode, hash: &str, offset: usize) {
    let data = node.home().join(format!("blobs/data/{hash}.data"));
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[offset] ^= 1;
    std::fs::write(&data, bytes).unwrap();
}

/// Entries of `dir` whose names start with `prefix`.
fn entries_starting(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn a_flipped_byte_is_never_handed_out_by_cat_or_export() {
    let node = TestNode::new();
    let src = node.scratch("src");
    std::fs::create_dir(&src).unwrap();
    let big = src.join("big.bin");
    write_pseudo_random(&big, 3_000_000, 21);
    std::fs::write(src.join("small.txt"), b"intact\n").unwrap();
    let tree = first_word(&node.ok([
        "add".as_ref(),
        src.as_os_str(),
        "--pin".as_ref(),
        "p".as_ref(),
    ]));
    let big_hash = b3sum(&big);
    flip_stored_byte(&node, &big_hash, 600_000);

    // `cat` fails naming the object and the repair; what it wrote before
    // is correct and ends before the damaged 16 KiB group.
    for object in [big_hash.clone(), "p/big.bin".to_owned()] {
        let out = node.cmd(["cat", &object]).output().unwrap();
        assert!(!out.status.success(), "cat {object} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&big_hash), "{err}");
        assert!(err.contains("damaged"), "{err}");
        assert!(err.contains("clive-node fsck --repair"), "{err}");
        let original = std::fs::read(&big).unwrap();
        assert!(
            out.stdout.len() <= 600_000 / 16384 * 16384,
            "{}",
            out.stdout.len()
        );
        assert!(
            out.stdout == original[..out.stdout.len()],
            "cat wrote wrong bytes"
        );
    }
    assert_eq!(node.ok(["cat", "p/small.txt"]), "intact\n");

    // `export` of the tree and of the blob fails and writes nothing.
    for (i, object) in [tree.as_str(), big_hash.as_str(), "p"].iter().enumerate() {
        let dest = node.scratch(&format!("out{i}"));
        let err = node.fails(["export".as_ref(), object.as_ref(), dest.as_os_str()]);
        assert!(err.contains(&big_hash), "{err}");
        assert!(err.contains("clive-node fsck --repair"), "{err}");
        assert!(!dest.exists(), "export {object} left {}", dest.display());
        assert!(
            entries_starting(&node.root(), &format!(".out{i}")).is_empty(),
            "export left its staging directory"
        );
    }
}

#[test]
fn fsck_names_what_reaches_a_missing_data_file_and_gc_still_works() {
    let node = TestNode::new();
    let src = node.scratch("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let big = src.join("sub/big.bin");
    write_pseudo_random(&big, 1_000_000, 22);
    std::fs::write(src.join("small.txt"), b"still here\n").unwrap();
    node.ok([
        "add".as_ref(),
        src.as_os_str(),
        "--pin".as_ref(),
        "p".as_ref(),
    ]);
    let garbage = node.scratch("garbage.bin");
    write_pseudo_random(&garbage, 300_000, 23);
    let garbage_hash = first_word(&node.ok(["add".as_ref(), garbage.as_os_str()]));
    let big_hash = b3sum(&big);
    std::fs::remove_file(node.home().join(format!("blobs/data/{big_hash}.data"))).unwrap();

    let out = node.cmd(["fsck"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(&format!("damaged {big_hash}")), "{text}");
    assert!(text.contains("pin \"p\"/sub/big.bin"), "{text}");
    assert!(text.contains("fsck --repair"), "{text}");
    let out = node.cmd(["--json", "fsck"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let damaged = report["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 1, "{report}");
    assert_eq!(damaged[0]["hash"], big_hash.as_str());
    assert_eq!(damaged[0]["reached_by"][0], "pin \"p\"/sub/big.bin");

    // gc works on the damaged store: the garbage goes, the damaged object
    // (which a pin needs) stays for a repair.
    let gc = node.json(["gc"]);
    assert_eq!(gc["removed"], 1, "{gc}");
    assert_eq!(gc["removed_hashes"][0], garbage_hash.as_str());
    assert_eq!(node.ok(["cat", "p/small.txt"]), "still here\n");
    let err = node.fails(["cat", "p/sub/big.bin"]);
    assert!(
        err.contains(&big_hash) && err.contains("fsck --repair"),
        "{err}"
    );
}

#[test]
fn gc_removes_orphaned_files_and_counts_their_bytes() {
    let node = TestNode::loopback();
    let daemon = node.start_daemon();
    // What a killed or failed import leaves: a copy in temp/, and a data
    // file the store never recorded.
    let temp_orphan = node
        .home()
        .join("blobs/temp/0123456789abcdef0123456789abcdef.temp");
    write_pseudo_random(&temp_orphan, 300_000, 24);
    let unknown = blake3::hash(b"never recorded").to_hex();
    let data_orphan = node.home().join(format!("blobs/data/{unknown}.data"));
    write_pseudo_random(&data_orphan, 100_000, 25);
    for path in [&temp_orphan, &data_orphan] {
        tool(
            "touch",
            ["-d".as_ref(), "1 hour ago".as_ref(), path.as_os_str()],
        );
    }
    let kept = node.scratch("kept.bin");
    write_pseudo_random(&kept, 200_000, 26);
    node.ok([
        "add".as_ref(),
        kept.as_os_str(),
        "--pin".as_ref(),
        "kept".as_ref(),
    ]);

    let dry = node.json(["gc", "--dry-run"]);
    assert_eq!(dry["orphan_files"], 2, "{dry}");
    assert_eq!(dry["orphan_bytes"], 400_000, "{dry}");
    assert!(temp_orphan.exists() && data_orphan.exists());
    let text = node.ok(["gc"]);
    assert!(text.contains("2 orphaned temporary files"), "{text}");
    assert!(!temp_orphan.exists() && !data_orphan.exists());
    let again = node.json(["gc"]);
    assert_eq!(again["orphan_files"], 0, "{again}");
    assert_eq!(again["freed_bytes"], 0, "{again}");
    let out = node.cmd(["cat", "kept"]).output().unwrap();
    check_success(&out);
    assert_eq!(out.stdout, std::fs::read(&kept).unwrap());
    node.stop(daemon);
}

/// A tmpfs of `size` mounted at `dir` until dropped (tests run as root).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        tool(
            "mount",
            [
                "-t".as_ref(),
                "tmpfs".as_ref(),
                "-o".as_ref(),
                format!("size={size}").as_ref(),
                "tmpfs".as_ref(),
                dir.as_os_str(),
            ],
        );
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_fails_the_add_naming_the_store_and_leaves_nothing_behind() {
    let outer = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&outer.path().join("small-fs"), "64m");
    let node = TestNode::new_in(&fs.0);
    std::fs::write(
        node.home().join("config.toml"),
        "[net]\nbind = [\"127.0.0.1:0\"]\n",
    )
    .unwrap();
    let daemon = node.start_daemon();
    let too_big = outer.path().join("too-big.bin");
    write_pseudo_random(&too_big, 96 * 1024 * 1024, 27);

    let err = node.fails(["add".as_ref(), too_big.as_os_str()]);
    assert!(err.contains("writing to the store"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(!err.contains("reading"), "{err}");
    let temp = node.home().join("blobs/temp");
    assert_eq!(
        std::fs::read_dir(&temp).unwrap().count(),
        0,
        "the failed add left files in {}",
        temp.display()
    );

    // The space is free again: the next add, gc and fsck work.
    let fits = outer.path().join("fits.bin");
    write_pseudo_random(&fits, 24 * 1024 * 1024, 28);
    let out = node.ok([
        "add".as_ref(),
        fits.as_os_str(),
        "--pin".as_ref(),
        "fits".as_ref(),
    ]);
    assert_eq!(first_word(&out), b3sum(&fits));
    node.json(["gc"]);
    let fsck = node.json(["fsck"]);
    assert_eq!(fsck["damaged"].as_array().unwrap().len(), 0, "{fsck}");
    let out = node.cmd(["cat", "fits"]).output().unwrap();
    check_success(&out);
    assert!(out.stdout == std::fs::read(&fits).unwrap());
    node.stop(daemon);
    drop(node);
    drop(fs);
}

/// Runs `cmd`, waits for it, and returns its exit status and its peak
/// resident memory in bytes (wait4's rusage of exactly that process).
// The child is reaped by wait4, which std's `wait` cannot give the rusage of.
#[allow(clippy::zombie_processes)]
fn run_measuring_peak_rss(mut cmd: std::process::Command) -> (bool, std::process::Output, u64) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut stdout = child.stdout.unwrap();
    let mut stderr = child.stderr.unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).unwrap();
        buf
    });
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
    let err = err_reader.join().unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4");
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let output = std::process::Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: out,
        stderr: err,
    };
    (success, output, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn add_of_files_whose_size_lies_reads_them_to_the_end_in_bounded_memory() {
    // /proc/kpageflags: stat says 0 bytes, reading it yields 8 bytes per
    // page frame of memory (tens of MiB). Four of them, bind-mounted into a
    // directory in a private mount namespace, are imported at once.
    let node = TestNode::new();
    let expected = std::fs::read("/proc/kpageflags").unwrap().len() as u64;
    assert!(expected > 16 * 1024 * 1024, "{expected}");
    let dir = node.scratch("lying");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..4 {
        std::fs::write(dir.join(format!("f{i}")), b"").unwrap();
    }
    let script = format!(
        "for f in {dir}/f*; do mount --bind /proc/kpageflags \"$f\" || exit 1; done; \
         exec \"$0\" --home \"$1\" --json add {dir}",
        dir = dir.display()
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &script])
        .arg(clive_tests::clive_bin())
        .arg(node.home())
        .stdin(Stdio::null());
    let (success, out, peak) = run_measuring_peak_rss(cmd);
    assert!(success, "{out:?}");
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every file was read to its end, whatever its size said.
    assert_eq!(added[0]["size"], 4 * expected, "{added}");
    let hash = added[0]["hash"].as_str().unwrap();
    let listing = node.json(["ls", hash]);
    for entry in listing.as_array().unwrap() {
        assert_eq!(entry["size"], expected, "{entry}");
        let out = node
            .cmd(["cat", entry["hash"].as_str().unwrap()])
            .output()
            .unwrap();
        check_success(&out);
        assert_eq!(out.stdout.len() as u64, expected);
        assert_eq!(blake3::hash(&out.stdout).to_hex().as_str(), entry["hash"]);
    }
    // Streamed, not buffered whole: far less than the files held.
    assert!(
        peak < 2 * expected,
        "peak RSS {peak} bytes for four files of {expected} bytes each"
    );
}

fn endpoint_id(node: &TestNode) -> String {
    node.json(["id"])["endpoint_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn fsck_repair_fetches_damaged_and_missing_objects_from_a_peer() {
    let (a, b) = (TestNode::loopback(), TestNode::loopback());
    let a_daemon = a.start_daemon();
    let b_daemon = b.start_daemon();
    let a_id = endpoint_id(&a);
    clive_tests::admit(&a, &b, "fetch");
    let src = a.scratch("src");
    std::fs::create_dir(&src).unwrap();
    let (flipped, deleted) = (src.join("flipped.bin"), src.join("deleted.bin"));
    write_pseudo_random(&flipped, 1_000_000, 31);
    write_pseudo_random(&deleted, 2_000_000, 32);
    std::fs::write(src.join("small.txt"), b"small\n").unwrap();
    let tree = first_word(&a.ok([
        "add".as_ref(),
        src.as_os_str(),
        "--pin".as_ref(),
        "src".as_ref(),
    ]));
    b.ok(["get", &tree, "--from", &a_id]);
    b.ok(["pin", "add", "src", &tree]);
    let (flipped_hash, deleted_hash) = (b3sum(&flipped), b3sum(&deleted));
    flip_stored_byte(&b, &flipped_hash, 123_456);
    std::fs::remove_file(b.home().join(format!("blobs/data/{deleted_hash}.data"))).unwrap();
    // Something only B has, damaged: nobody can repair it.
    let only_b = b.scratch("only-b.bin");
    write_pseudo_random(&only_b, 500_000, 33);
    let only_b_hash = first_word(&b.ok([
        "add".as_ref(),
        only_b.as_os_str(),
        "--pin".as_ref(),
        "only-b".as_ref(),
    ]));
    flip_stored_byte(&b, &only_b_hash, 1000);

    let out = b.cmd(["fsck", "--repair"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(&format!("repaired {flipped_hash}")), "{text}");
    assert!(text.contains(&format!("repaired {deleted_hash}")), "{text}");
    assert!(
        text.contains(&format!("could not repair {only_b_hash}")),
        "{text}"
    );
    assert!(text.contains("pin \"only-b\""), "{text}");

    let dest = b.scratch("out");
    b.ok(["export".as_ref(), "src".as_ref(), dest.as_os_str()]);
    assert_same_tree(&src, &dest);
    b.ok(["pin", "rm", "only-b"]);
    b.ok(["gc"]);
    let fsck = b.json(["fsck"]);
    assert!(fsck["damaged"].as_array().unwrap().is_empty(), "{fsck}");
    assert!(fsck["missing"].as_array().unwrap().is_empty(), "{fsck}");
    a.stop(a_daemon);
    b.stop(b_daemon);
}

#[test]
fn a_node_refuses_to_serve_a_damaged_object_and_logs_it() {
    let (a, b) = (TestNode::loopback(), TestNode::loopback());
    let a_daemon = a.start_daemon();
    let _b_daemon = b.start_daemon();
    let a_id = endpoint_id(&a);
    clive_tests::admit(&a, &b, "fetch");
    let file = a.scratch("served.bin");
    write_pseudo_random(&file, 1_000_000, 34);
    let hash = first_word(&a.ok([
        "add".as_ref(),
        file.as_os_str(),
        "--pin".as_ref(),
        "s".as_ref(),
    ]));
    flip_stored_byte(&a, &hash, 900_000);

    b.fails(["get", &hash, "--from", &a_id]);
    b.fails(["cat", &hash]);
    clive_tests::eventually("A logs the refusal", || {
        a_daemon
            .logs()
            .contains(&format!("refused to serve {hash}"))
    });
    let logs = a_daemon.logs();
    assert!(logs.contains("fsck --repair"), "{logs}");
    // What B received before A stopped is sound: nothing damaged came across.
    let fsck = b.json(["fsck"]);
    assert!(fsck["damaged"].as_array().unwrap().is_empty(), "{fsck}");
}

/// `cat | head`: a reader that stops early is not a failure, in-process
/// or through a daemon; the output is what it read, nothing on stderr.
#[test]
fn cat_into_a_reader_that_stops_early_exits_quietly() {
    use std::io::Read;
    let node = TestNode::loopback();
    let big = node.scratch("big");
    write_pseudo_random(&big, 32 << 20, 9);
    let hash = node.ok(["add", big.to_str().unwrap()]);
    let hash = hash.split_whitespace().next().unwrap().to_owned();
    let head = |node: &TestNode| {
        let mut child = node
            .cmd(["cat", &hash])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 10];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The pipe's reading end is closed here, as `head` closes it.
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    };
    head(&node);
    let _daemon = node.start_daemon();
    head(&node);
}

/// A large blob is exported by the kernel's copy from the store's file;
/// onto another file system (tmpfs under /dev/shm), where the kernel
/// cannot copy between the two, the same bytes are written from a verified
/// read instead.
#[test]
fn export_onto_another_file_system_writes_the_same_bytes() {
    use std::os::unix::fs::MetadataExt;
    let node = TestNode::new();
    let shm = Path::new("/dev/shm");
    let other_fs = shm
        .metadata()
        .is_ok_and(|m| m.is_dir() && m.dev() != node.root().metadata().unwrap().dev());
    if !other_fs {
        eprintln!("skipped: no /dev/shm on a file system of its own");
        return;
    }
    let file = node.scratch("big.bin");
    write_pseudo_random(&file, 3_000_001, 8);
    node.ok([
        "add".as_ref(),
        file.as_os_str(),
        "--pin".as_ref(),
        "b".as_ref(),
    ]);
    let there = tempfile::tempdir_in(shm).unwrap();
    for dest in [node.scratch("out.bin"), there.path().join("out.bin")] {
        node.ok(["export".as_ref(), "b".as_ref(), dest.as_os_str()]);
        assert!(
            std::fs::read(&dest).unwrap() == std::fs::read(&file).unwrap(),
            "{} differs",
            dest.display()
        );
    }
}
