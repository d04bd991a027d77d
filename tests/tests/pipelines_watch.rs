//! Pipeline watches through the CLI, on daemons on loopback: `job run
//! --watch` reruns when a name another node publishes moves (and not when
//! it is re-published with the same hash), or when a path input changes
//! on disk (only the steps that read it); Ctrl-C ends it; `--detach` runs
//! it inside the daemon, `job watches` lists it, a restarted daemon
//! resumes it, `job unwatch` stops it.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use clive_tests::{TestNode, admit, count_lines, eventually, write};

/// How many times a step ran: the lines of its counter file, which lies
/// outside the store.
/// `job run FILE --watch` as a child process, its output lines gathered
/// as they come.
struct Watching {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Watching {
    fn start(node: &TestNode, file: &Path) -> Watching {
        let mut child = node
            .cmd(["job", "run", file.to_str().unwrap(), "--watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn clive-node job run --watch");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Watching { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn has(&self, text: &str) -> bool {
        self.lines().iter().any(|l| l.contains(text))
    }

    fn count(&self, text: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(text)).count()
    }

    /// Waits (bounded) until a line contains `text`.
    fn wait_for(&self, text: &str) {
        for _ in 0..300 {
            if self.has(text) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("no line with {text:?}; lines:\n{}", self.lines().join("\n"));
    }

    /// Ctrl-C, then waits (bounded) for it to end; returns whether it
    /// exited successfully.
    fn interrupt(mut self) -> (bool, Vec<String>) {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        assert_eq!(rc, 0);
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader threads see the end of the pipes.
                thread::sleep(Duration::from_millis(100));
                return (status.success(), self.lines());
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the watch did not end on Ctrl-C:\n{}",
            self.lines().join("\n")
        );
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The verified timestamp version of `zone` on `node`.
fn timestamp(node: &TestNode, name: &str) -> u64 {
    node.json(["name", "resolve", name])["verified"]["timestamp"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_watch_reruns_when_a_followed_name_moves_and_not_when_it_is_republished() {
    let (a, b) = (TestNode::loopback(), TestNode::loopback());
    let _a_daemon = a.start_daemon();
    let _b_daemon = b.start_daemon();
    admit(&a, &b, "fetch");
    let created = a.json(["name", "zone", "create", "release"]);
    let ticket = created["ticket"].as_str().unwrap().to_owned();
    let v1 = a.scratch("v1");
    write(&v1, "tool 1\n");
    a.ok(["name", "publish", "release/tool", v1.to_str().unwrap()]);
    b.ok(["name", "follow", &ticket]);

    let dir = b.scratch("p");
    let counter = b.scratch("use-runs");
    let file = dir.join("pipeline.toml");
    write(
        &file,
        &format!(
            r#"version = 1
[step.use]
argv = ["sh", "-c", "echo run >> {counter}; cat tool > used.txt"]
inputs = {{ "tool" = "release/tool" }}
outputs = ["used.txt"]
"#,
            counter = counter.display()
        ),
    );
    let watching = Watching::start(&b, &file);
    watching.wait_for("run 1 done");
    assert_eq!(count_lines(&counter), 1, "{:?}", watching.lines());
    let listed = b.json(["job", "watches"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["detached"], false);

    // The publisher moves the name: the announcement reaches B's daemon,
    // the watch sees the new hash and runs again.
    let v2 = a.scratch("v2");
    write(&v2, "tool 2\n");
    a.ok(["name", "publish", "release/tool", v2.to_str().unwrap()]);
    watching.wait_for("run 2 done");
    assert!(
        watching.has("moved: release/tool"),
        "{:?}",
        watching.lines()
    );
    assert_eq!(count_lines(&counter), 2);

    // The same hash again: a new version of the zone reaches B, and
    // nothing runs.
    let before = timestamp(&b, "release/tool");
    a.ok(["name", "publish", "release/tool", v2.to_str().unwrap()]);
    eventually("B has the re-published version", || {
        timestamp(&b, "release/tool") > before
    });
    // The watch hears the zone event as B stores the version; it has had
    // its time to react to it (wrongly) by now.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(count_lines(&counter), 2, "{:?}", watching.lines());
    assert_eq!(
        watching.count("moved: release/tool"),
        1,
        "{:?}",
        watching.lines()
    );
    assert!(!watching.has("run 3"), "{:?}", watching.lines());
    // Then a real move: the next run is the third, for that move.
    let v3 = a.scratch("v3");
    write(&v3, "tool 3\n");
    a.ok(["name", "publish", "release/tool", v3.to_str().unwrap()]);
    watching.wait_for("run 3 done");
    assert_eq!(count_lines(&counter), 3, "{:?}", watching.lines());
    assert_eq!(
        watching.count("moved: release/tool"),
        2,
        "{:?}",
        watching.lines()
    );
    let v3_hash = b.json(["name", "resolve", "release/tool"])["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let moved = watching
        .lines()
        .into_iter()
        .rev()
        .find(|l| l.contains("moved: release/tool"))
        .unwrap();
    assert!(
        moved.ends_with(&format!("-> {}..", &v3_hash[..8])),
        "{moved} (v3 is {v3_hash})"
    );
    assert!(!watching.has("run 4"), "{:?}", watching.lines());

    // Ctrl-C ends it, and nothing of it is left.
    let (ok, lines) = watching.interrupt();
    assert!(ok, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("stopped after 3 runs")),
        "{lines:?}"
    );
    assert_eq!(b.json(["job", "watches"]), serde_json::json!([]));
}

/// Two steps, each reading a directory of its own and counting its runs,
/// and a third reading both.
fn two_sides(dir: &Path, node: &TestNode) -> std::path::PathBuf {
    write(&dir.join("left/x"), "left 1\n");
    write(&dir.join("right/x"), "right 1\n");
    let counter = |n: &str| node.scratch(&format!("{n}-runs")).display().to_string();
    let file = dir.join("sides.toml");
    write(
        &file,
        &format!(
            r#"version = 1
[step.left]
argv = ["sh", "-c", "echo run >> {l}; echo built-left; cat in/* > left.txt"]
inputs = {{ "in" = "./left" }}
outputs = ["left.txt"]
[step.right]
argv = ["sh", "-c", "echo run >> {r}; cat in/* > right.txt"]
inputs = {{ "in" = "./right" }}
outputs = ["right.txt"]
[step.join]
argv = ["sh", "-c", "echo run >> {j}; cat l/left.txt r/right.txt > all.txt"]
inputs = {{ "l" = "step:left", "r" = "step:right" }}
outputs = ["all.txt"]
"#,
            l = counter("left"),
            r = counter("right"),
            j = counter("join"),
        ),
    );
    file
}

#[test]
fn a_path_edited_on_disk_reruns_the_steps_that_read_it_and_only_them() {
    let node = TestNode::loopback();
    let _daemon = node.start_daemon();
    let dir = node.scratch("sides");
    let file = two_sides(&dir, &node);
    let count = |n: &str| count_lines(&node.scratch(&format!("{n}-runs")));
    let watching = Watching::start(&node, &file);
    watching.wait_for("run 1 done");
    assert_eq!((count("left"), count("right"), count("join")), (1, 1, 1));

    // The same bytes written again under right/ change no hash; an edit
    // under left/ does: left and join run, right is a memo hit.
    write(&dir.join("right/x"), "right 1\n");
    write(&dir.join("left/x"), "left 2\n");
    watching.wait_for("run 2 done");
    assert!(watching.has("changed: ./left"), "{:?}", watching.lines());
    assert!(!watching.has("changed: ./right"), "{:?}", watching.lines());
    assert!(
        watching.has("step right: memo hit"),
        "{:?}",
        watching.lines()
    );
    assert_eq!((count("left"), count("right"), count("join")), (2, 1, 2));

    // A new file under right/: right and join run, left does not.
    write(&dir.join("right/y"), "right 2\n");
    watching.wait_for("run 3 done");
    assert!(watching.has("changed: ./right"), "{:?}", watching.lines());
    assert_eq!((count("left"), count("right"), count("join")), (2, 2, 3));

    let (ok, lines) = watching.interrupt();
    assert!(ok, "{lines:?}");
    assert_eq!(node.json(["job", "watches"]), serde_json::json!([]));
}

#[test]
fn a_detached_watch_runs_in_the_daemon_survives_a_restart_and_unwatch_stops_it() {
    let node = TestNode::loopback();
    let dir = node.scratch("sides");
    let file = two_sides(&dir, &node);
    let file = file.to_str().unwrap();
    let count = |n: &str| count_lines(&node.scratch(&format!("{n}-runs")));

    // Without a daemon there is nowhere to detach to.
    let err = node.fails(["job", "run", file, "--watch", "--detach"]);
    assert!(err.contains("clive-node start"), "{err}");
    // --detach goes with --watch.
    node.fails(["job", "run", file, "--detach"]);

    let daemon = node.start_daemon();
    let out = node.ok(["job", "run", file, "--watch", "--detach"]);
    let id = out.lines().next().unwrap().trim().to_owned();
    assert_eq!(id.len(), 16, "{out}");
    let watches = |node: &TestNode| node.json(["job", "watches"]);
    let listed = watches(&node);
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed[0]["detached"], true);
    eventually("the first run", || {
        watches(&node)[0]["runs"] == 1 && count("join") == 1
    });
    eventually("the steps' output in the daemon's log", || {
        daemon.logs().contains("built-left")
    });

    write(&dir.join("left/x"), "left 2\n");
    eventually("a rerun on the edit", || {
        watches(&node)[0]["runs"] == 2 && count("join") == 2
    });
    assert_eq!(count("right"), 1);
    let listed = watches(&node);
    assert!(
        listed[0]["last_event"]
            .as_str()
            .unwrap()
            .contains("changed: ./left"),
        "{listed}"
    );

    // A new daemon on the home resumes it (its first run there is all
    // memo hits) and it goes on watching.
    node.stop(daemon);
    let _daemon = node.start_daemon();
    eventually("the watch resumed", || {
        let listed = watches(&node);
        listed[0]["id"] == id.as_str() && listed[0]["runs"] == 1
    });
    assert_eq!(count("join"), 2);
    write(&dir.join("right/x"), "right 2\n");
    eventually("a rerun on the edit after the restart", || {
        count("right") == 2 && count("join") == 3
    });

    // Stopped by a prefix of its id; an unknown id is an error.
    let err = node.fails(["job", "unwatch", "0000000000000000"]);
    assert!(err.contains("no watch"), "{err}");
    node.ok(["job", "unwatch", &id[..6]]);
    assert_eq!(watches(&node), serde_json::json!([]));
    // Nothing runs on a later edit (given time to, had it still watched).
    write(&dir.join("left/x"), "left 3\n");
    thread::sleep(Duration::from_secs(2));
    assert_eq!((count("left"), count("join")), (2, 3));
}
