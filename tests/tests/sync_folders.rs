//! Synced folders between two paired devices, real daemons on 127.0.0.1:
//! `sync folder DIR devices/notes` on each; files added, edited, renamed,
//! deleted, made executable, symlinks and an empty directory appear on the
//! other side; edits made apart converge (a conflict copy for the one file
//! both changed, an edit kept against a deletion); a file written slowly
//! is published once, complete; `.cliveignore` keeps files local. Apart
//! means one daemon stopped, and in another run the link between two
//! network namespaces (that the test creates) taken down.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use clive_tests::{Daemon, TestNode, eventually, netns::Link};

const NAME: &str = "devices/notes";

/// Two paired devices with a daemon each and a synced folder each.
struct Devices {
    desk: TestNode,
    laptop: TestNode,
    desk_daemon: Option<Daemon>,
    laptop_daemon: Option<Daemon>,
    desk_dir: PathBuf,
    laptop_dir: PathBuf,
}

impl Devices {
    fn new() -> Devices {
        let desk = TestNode::loopback();
        let laptop = TestNode::loopback();
        let desk_daemon = desk.start_daemon();
        let laptop_daemon = laptop.start_daemon();
        Devices::paired(desk, laptop, desk_daemon, laptop_daemon)
    }

    /// The desk in one network namespace and the laptop in the other.
    fn across(link: &Link) -> Devices {
        let desk = TestNode::new();
        let laptop = TestNode::new();
        let desk_daemon = link.start_daemon(&desk, 0);
        let laptop_daemon = link.start_daemon(&laptop, 1);
        Devices::paired(desk, laptop, desk_daemon, laptop_daemon)
    }

    fn paired(
        desk: TestNode,
        laptop: TestNode,
        desk_daemon: Daemon,
        laptop_daemon: Daemon,
    ) -> Devices {
        let out = desk.ok(["invite", "--device", "--expires", "10m"]);
        let ticket = out.lines().last().unwrap().trim().to_owned();
        laptop.ok(["join", &ticket]);
        let desk_dir = desk.scratch("notes");
        let laptop_dir = laptop.scratch("notes");
        std::fs::create_dir(&desk_dir).unwrap();
        std::fs::create_dir(&laptop_dir).unwrap();
        desk.ok(["sync", "folder", desk_dir.to_str().unwrap(), NAME]);
        eventually("the laptop knows the desk's folder name", || {
            laptop
                .cmd(["name", "resolve", NAME])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        laptop.ok(["sync", "folder", laptop_dir.to_str().unwrap(), NAME]);
        Devices {
            desk,
            laptop,
            desk_daemon: Some(desk_daemon),
            laptop_daemon: Some(laptop_daemon),
            desk_dir,
            laptop_dir,
        }
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Every entry under `dir` (relative path, kind, content or target, exec
/// bit), conflict copies included, the node's temporary files excluded.
fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let md = std::fs::symlink_metadata(&path).unwrap();
            let what = if md.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if md.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else {
                format!(
                    "{}{}",
                    if md.permissions().mode() & 0o111 != 0 {
                        "x "
                    } else {
                        ""
                    },
                    std::fs::read_to_string(&path).unwrap_or_default()
                )
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

fn same(a: &Path, b: &Path) -> bool {
    listing(a) == listing(b)
}

fn wait_same(d: &Devices, what: &str) {
    for _ in 0..300 {
        if same(&d.desk_dir, &d.laptop_dir) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "{what}: the folders differ\ndesk: {:?}\nlaptop: {:?}\ndesk log: {}\nlaptop log: {}",
        listing(&d.desk_dir),
        listing(&d.laptop_dir),
        d.desk_daemon.as_ref().map(|x| x.logs()).unwrap_or_default(),
        d.laptop_daemon
            .as_ref()
            .map(|x| x.logs())
            .unwrap_or_default()
    );
}

#[test]
fn every_kind_of_change_on_one_device_appears_on_the_other() {
    let d = Devices::new();
    let (desk, laptop) = (&d.desk_dir, &d.laptop_dir);

    // Added on the desk: files, a subdirectory, a symlink, an empty directory.
    std::fs::write(desk.join("todo.txt"), "buy milk\n").unwrap();
    std::fs::create_dir_all(desk.join("projects/clive")).unwrap();
    std::fs::write(desk.join("projects/clive/plan.md"), "# plan\n").unwrap();
    std::os::unix::fs::symlink("projects/clive/plan.md", desk.join("plan")).unwrap();
    std::fs::create_dir(desk.join("empty")).unwrap();
    wait_same(&d, "files added on the desk");
    assert_eq!(
        read(&laptop.join("projects/clive/plan.md")).as_deref(),
        Some("# plan\n")
    );
    assert!(laptop.join("empty").is_dir());
    assert!(
        std::fs::symlink_metadata(laptop.join("plan"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // Edited on the laptop.
    std::fs::write(laptop.join("todo.txt"), "buy milk\nand bread\n").unwrap();
    wait_same(&d, "a file edited on the laptop");
    assert_eq!(
        read(&desk.join("todo.txt")).as_deref(),
        Some("buy milk\nand bread\n")
    );

    // Renamed and made executable on the desk.
    std::fs::rename(
        desk.join("projects/clive/plan.md"),
        desk.join("projects/clive/PLAN.md"),
    )
    .unwrap();
    std::fs::write(desk.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(desk.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    wait_same(&d, "a rename and an executable on the desk");
    assert!(!laptop.join("projects/clive/plan.md").exists());
    let mode = std::fs::metadata(laptop.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "{mode:o}");

    // Deleted on the laptop: a file and the empty directory.
    std::fs::remove_file(laptop.join("todo.txt")).unwrap();
    std::fs::remove_dir(laptop.join("empty")).unwrap();
    wait_same(&d, "deletions on the laptop");
    assert!(!desk.join("todo.txt").exists());
    assert!(!desk.join("empty").exists());

    // Every version is in the name's history: the deleted file exports back.
    let history = d.desk.json(["name", "history", NAME]);
    let versions = history.as_array().map_or(0, Vec::len);
    assert!(versions >= 5, "{history}");

    let listed = d.laptop.json(["sync", "folder", "ls"]);
    assert_eq!(listed[0]["name"], NAME, "{listed}");
    d.laptop
        .ok(["sync", "folder", "rm", laptop.to_str().unwrap()]);
    assert_eq!(
        d.laptop.json(["sync", "folder", "ls"]),
        serde_json::json!([])
    );
    std::fs::write(desk.join("after.txt"), "not synced to the laptop\n").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        !laptop.join("after.txt").exists(),
        "a removed folder is not written"
    );
    assert!(
        laptop.join("run.sh").exists(),
        "a removed folder keeps its files"
    );
}

/// The edits of the two "apart" runs: a file each, one file both edit, and
/// one the laptop deletes and the desk edits.
fn edit_apart(d: &Devices, laptop_published: impl Fn()) {
    std::fs::write(d.laptop_dir.join("laptop.txt"), "from the train\n").unwrap();
    std::fs::write(d.laptop_dir.join("shared.txt"), "laptop's version\n").unwrap();
    std::fs::remove_file(d.laptop_dir.join("doomed.txt")).unwrap();
    // The laptop publishes its edits locally as they happen.
    eventually("the laptop published its edits", || {
        d.laptop
            .json(["name", "history", NAME])
            .as_array()
            .map_or(0, Vec::len)
            >= 3
            && read(&d.laptop_dir.join("doomed.txt")).is_none()
    });
    laptop_published();
    std::fs::write(d.desk_dir.join("desk.txt"), "from the desk\n").unwrap();
    std::fs::write(d.desk_dir.join("shared.txt"), "desk's version\n").unwrap();
    std::fs::write(d.desk_dir.join("doomed.txt"), "edited on the desk\n").unwrap();
}

/// What both folders hold once they met again: every edit, the edit
/// against the deletion, one conflict copy of the file both edited.
fn converged(d: &Devices) {
    wait_same(d, "after meeting again");
    let files = listing(&d.desk_dir);
    assert_eq!(
        read(&d.desk_dir.join("laptop.txt")).as_deref(),
        Some("from the train\n")
    );
    assert_eq!(
        read(&d.desk_dir.join("desk.txt")).as_deref(),
        Some("from the desk\n")
    );
    assert_eq!(
        read(&d.desk_dir.join("doomed.txt")).as_deref(),
        Some("edited on the desk\n"),
        "an edit is kept against a deletion: {files:?}"
    );
    let copies: Vec<_> = files
        .iter()
        .filter(|(p, _)| p.contains(".sync-conflict-"))
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "{files:?}\ndesk: {}\nlaptop: {}",
        d.desk_daemon.as_ref().unwrap().logs(),
        d.laptop_daemon.as_ref().unwrap().logs()
    );
    let (copy, content) = copies[0];
    assert!(
        copy.starts_with("shared.sync-conflict-") && copy.ends_with(".txt"),
        "{copy}"
    );
    let main = read(&d.desk_dir.join("shared.txt")).unwrap();
    let mut both = vec![main.as_str(), content.as_str()];
    both.sort();
    assert_eq!(both, ["desk's version\n", "laptop's version\n"]);
    for node in [&d.desk, &d.laptop] {
        let status = node.json(["sync", "status"]);
        let listed = status["folder_conflicts"].to_string();
        assert!(listed.contains("shared.sync-conflict-"), "{status}");
    }
}

fn first_version(d: &Devices) {
    std::fs::write(d.desk_dir.join("shared.txt"), "first\n").unwrap();
    std::fs::write(d.desk_dir.join("doomed.txt"), "keep me?\n").unwrap();
    wait_same(d, "the first version");
}

#[test]
fn edits_made_apart_converge_with_one_conflict_copy() {
    let mut d = Devices::new();
    first_version(&d);
    // Apart: the desk's daemon is stopped while both sides edit.
    let daemon = d.desk_daemon.take().unwrap();
    d.desk.stop(daemon);
    edit_apart(&d, || {});
    // Together again: nothing but starting the desk.
    d.desk_daemon = Some(d.desk.start_daemon());
    converged(&d);
}

#[test]
fn edits_made_while_the_link_is_down_converge_once_it_is_up() {
    let Some(link) = Link::create() else { return };
    let d = Devices::across(&link);
    first_version(&d);
    // Apart: both daemons run, the link between them is down.
    let version = |node: &TestNode| node.json(["sync", "folder", "ls"])[0]["version"].clone();
    let first = version(&d.desk);
    link.down();
    edit_apart(&d, || {});
    // The desk, cut off, publishes its edits too.
    eventually("the desk published its edits", || {
        version(&d.desk) != first
            && !d
                .desk
                .ok(["sync", "folder", "ls"])
                .contains("3 files, version none")
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    link.up();
    converged(&d);
}

#[test]
fn a_file_written_slowly_is_published_once_complete_and_ignored_files_stay() {
    let d = Devices::new();
    std::fs::write(d.desk_dir.join(".cliveignore"), "*.secret\nbuild/\n").unwrap();
    std::fs::write(d.desk_dir.join("key.secret"), "hunter2\n").unwrap();
    std::fs::create_dir(d.desk_dir.join("build")).unwrap();
    std::fs::write(d.desk_dir.join("build/out.o"), "object\n").unwrap();
    std::fs::write(d.desk_dir.join("readme.txt"), "hello\n").unwrap();
    eventually("the readme reaches the laptop", || {
        read(&d.laptop_dir.join("readme.txt")).is_some()
    });
    let before = d
        .desk
        .json(["name", "history", NAME])
        .as_array()
        .map_or(0, Vec::len);

    // A writer appending for two seconds.
    let slow = d.desk_dir.join("slow.log");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&slow).unwrap();
        for i in 0..20 {
            writeln!(f, "line {i}").unwrap();
            f.flush().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let whole: String = (0..20).map(|i| format!("line {i}\n")).collect();
    eventually("the slow file reaches the laptop whole", || {
        read(&d.laptop_dir.join("slow.log")).as_deref() == Some(whole.as_str())
    });
    std::thread::sleep(std::time::Duration::from_secs(1));
    let history = d.desk.json(["name", "history", NAME]);
    let after = history.as_array().map_or(0, Vec::len);
    assert_eq!(
        after,
        before + 1,
        "the slow file was published more than once: {history}"
    );

    assert!(d.laptop_dir.join(".cliveignore").exists());
    assert!(!d.laptop_dir.join("key.secret").exists());
    assert!(!d.laptop_dir.join("build").exists());
}
