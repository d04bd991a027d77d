//! Jobs through the CLI, between real daemons on 127.0.0.1: a C build on a
//! peer under landlock, authorization, platform matching, the memo,
//! timeouts and cancels that leave no survivor, hostile jobs, re-attaching
//! after the requester is killed, and an executor restarted mid-job.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    io::Read,
    path::Path,
    process::{Output, Stdio},
    time::Duration,
};

use clive_tests::{Daemon, TestNode, admit, eventually};

/// A loopback node with `jobs` as its `[jobs]` section.
fn executor(jobs: &str) -> TestNode {
    let node = TestNode::loopback();
    let config = node.home().join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[jobs]\n");
    text.push_str(jobs);
    std::fs::write(&config, text).unwrap();
    node
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `clive-node ARGS` on `node`, whatever its exit status.
fn run(node: &TestNode, args: &[&str]) -> Output {
    node.cmd(args).output().expect("run clive-node")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A friend's executor and a laptop that holds `caps` there, both running.
struct Pair {
    friend: TestNode,
    laptop: TestNode,
    friend_key: String,
    _daemons: (Daemon, Daemon),
}

impl Pair {
    /// The friend grants the laptop `cap` with a certificate the laptop
    /// imports (`trust grant -o`, `trust import`).
    fn grant(&self, cap: &str) {
        let cert = self.laptop.scratch(&format!("{cap}.cert"));
        let laptop_key = self.laptop.public_key();
        self.friend.ok([
            "trust",
            "grant",
            &laptop_key,
            "--cap",
            cap,
            "-o",
            path_str(&cert),
        ]);
        self.laptop.ok(["trust", "import", path_str(&cert)]);
    }
}

fn pair(jobs: &str, caps: &str) -> Pair {
    let friend = executor(jobs);
    let laptop = TestNode::loopback();
    let fd = friend.start_daemon();
    let ld = laptop.start_daemon();
    admit(&friend, &laptop, caps);
    let friend_key = friend.public_key();
    Pair {
        friend,
        laptop,
        friend_key,
        _daemons: (fd, ld),
    }
}

/// A small C project: two sources, a header and a Makefile.
fn c_project(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("main.c"),
        "#include <stdio.h>\n#include \"greet.h\"\nint main(void) { printf(\"%s\\n\", greet()); return 0; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("greet.c"),
        "#include \"greet.h\"\nconst char *greet(void) { return \"hello from the friend's machine\"; }\n",
    )
    .unwrap();
    std::fs::write(dir.join("greet.h"), "const char *greet(void);\n").unwrap();
    std::fs::write(
        dir.join("Makefile"),
        "hello: src/main.c src/greet.c src/greet.h\n\tcc -O1 -Isrc -o hello src/main.c src/greet.c\n",
    )
    .unwrap();
}

#[test]
fn a_c_project_is_built_on_a_peer_under_landlock_and_the_binary_runs_here() {
    let p = pair("min_sandbox = \"landlock\"\n", "exec");
    let src = p.laptop.scratch("proj");
    c_project(&src);
    let out = p.laptop.scratch("out");
    let input = format!("src={}", path_str(&src));
    let got = run(
        &p.laptop,
        &[
            "exec",
            "--on",
            &p.friend_key,
            "--sandbox",
            "landlock",
            "--input",
            &input,
            "--output",
            "hello",
            "-o",
            path_str(&out),
            "--",
            "make",
            "-f",
            "src/Makefile",
        ],
    );
    assert!(
        got.status.success(),
        "exec failed: {}\n{}",
        text(&got.stdout),
        text(&got.stderr)
    );
    assert!(
        text(&got.stdout).contains("cc -O1"),
        "make's output streams back"
    );
    let binary = out.join("hello");
    let ran = std::process::Command::new(&binary).output().unwrap();
    assert_eq!(text(&ran.stdout), "hello from the friend's machine\n");

    // The friend ran it: its record says so, and the result names its key.
    let jobs = p.friend.json(["job", "ls"]);
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(jobs[0]["state"], "done");
    let laptop_jobs = p.laptop.json(["job", "ls"]);
    let id = laptop_jobs[0]["id"].as_str().unwrap().to_owned();
    let result = p.laptop.json(["job", "result", &id]);
    let key_only: Vec<&str> = p.friend_key.split_whitespace().take(2).collect();
    assert_eq!(result["result"]["executor"], key_only.join(" ").as_str());
    assert_eq!(result["result"]["sandbox"], "landlock");
}

#[test]
fn the_signed_result_verifies_with_ssh_keygen() {
    let node = TestNode::loopback();
    let got = run(&node, &["exec", "--", "sh", "-c", "echo signed"]);
    assert!(got.status.success(), "{}", text(&got.stderr));
    let id = node.json(["job", "ls"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = node.scratch("result.json");
    node.ok(["job", "result", &id, "-o", path_str(&file)]);
    let signers = node.scratch("allowed_signers");
    std::fs::write(&signers, format!("node {}\n", node.public_key())).unwrap();
    let verified = std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f", path_str(&signers), "-I", "node"])
        .args(["-n", "clive-result", "-s"])
        .arg(format!("{}.sig", file.display()))
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    // One byte changed and it no longer verifies.
    let mut doc = std::fs::read(&file).unwrap();
    let at = doc.iter().position(|b| *b == b'0').unwrap();
    doc[at] = b'1';
    std::fs::write(&file, doc).unwrap();
    let tampered = std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f", path_str(&signers), "-I", "node"])
        .args(["-n", "clive-result", "-s"])
        .arg(format!("{}.sig", file.display()))
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(!tampered.status.success());
}

#[test]
fn a_peer_without_exec_is_refused_and_a_revoked_exec_refuses_the_next_job() {
    let p = pair("", "fetch");
    let got = run(&p.laptop, &["exec", "--on", &p.friend_key, "--", "true"]);
    assert!(!got.status.success());
    let err = text(&got.stderr);
    assert!(
        err.contains("exec"),
        "the refusal names the capability: {err}"
    );

    // Granted exec, it runs; revoked, the next job is refused.
    p.grant("exec");
    let ok = run(
        &p.laptop,
        &["exec", "--on", &p.friend_key, "--", "echo", "granted"],
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout), "granted\n");
    // Asked for no sandbox, a peer's job still runs at the executor's
    // floor, by default the strongest level it has.
    let id = p.laptop.json(["job", "ls"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let result = p.laptop.json(["job", "result", &id]);
    assert_eq!(result["result"]["sandbox"], "isolated", "{result}");
    let certs = p.friend.json(["trust", "ls"]);
    for c in certs.as_array().unwrap() {
        if c["capabilities"].as_str().unwrap_or("").contains("exec") {
            p.friend.ok(["trust", "revoke", c["id"].as_str().unwrap()]);
        }
    }
    let refused = run(
        &p.laptop,
        &["exec", "--on", &p.friend_key, "--", "echo", "again"],
    );
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(err.contains("revoked") || err.contains("exec"), "{err}");
}

#[test]
fn dispatch_picks_the_platform_asked_for_and_names_what_no_peer_meets() {
    let linux = executor("os = \"linux\"\narch = \"x86_64\"\nmin_sandbox = \"none\"\n");
    let mac = executor("os = \"macos\"\narch = \"aarch64\"\nmin_sandbox = \"none\"\n");
    let gpu = executor("os = \"linux\"\nfeatures = [\"gpu\"]\nmin_sandbox = \"none\"\n");
    let laptop = TestNode::loopback();
    let _d = [
        linux.start_daemon(),
        mac.start_daemon(),
        gpu.start_daemon(),
        laptop.start_daemon(),
    ];
    for e in [&linux, &mac, &gpu] {
        admit(e, &laptop, "exec");
    }
    for i in 0..3 {
        let marker = format!("job-{i}");
        let got = run(
            &laptop,
            &["exec", "--on", "os=macos", "--", "echo", &marker],
        );
        assert!(got.status.success(), "{}", text(&got.stderr));
        assert_eq!(text(&got.stdout), format!("{marker}\n"));
    }
    assert_eq!(mac.json(["job", "ls"]).as_array().unwrap().len(), 3);
    assert!(linux.json(["job", "ls"]).as_array().unwrap().is_empty());
    assert!(gpu.json(["job", "ls"]).as_array().unwrap().is_empty());

    let got = run(
        &laptop,
        &["exec", "--on", "os=linux,feature=gpu", "--", "true"],
    );
    assert!(got.status.success(), "{}", text(&got.stderr));
    assert_eq!(gpu.json(["job", "ls"]).as_array().unwrap().len(), 1);

    let got = run(&laptop, &["exec", "--on", "os=windows", "--", "true"]);
    assert!(!got.status.success());
    let err = text(&got.stderr);
    assert!(err.contains("os=windows"), "{err}");
}

#[test]
fn a_second_identical_run_is_a_memo_hit_and_a_changed_input_runs_again() {
    let node = TestNode::loopback();
    let input = node.scratch("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("data"), "one\n").unwrap();
    let side = node.scratch("side-effect");
    std::fs::write(&side, "").unwrap();
    let script = format!(
        "echo ran >> {}; cat in/data > copy; cat copy",
        side.display()
    );
    let mount = format!("in={}", input.display());
    let exec = |node: &TestNode| {
        run(
            node,
            &[
                "exec",
                "--sandbox",
                "none",
                "--input",
                &mount,
                "--output",
                "copy",
                "--",
                "sh",
                "-c",
                &script,
            ],
        )
    };
    let first = exec(&node);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let second = exec(&node);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(
        std::fs::read_to_string(&side).unwrap(),
        "ran\n",
        "it ran once"
    );
    assert_eq!(first.stdout, second.stdout, "the same output, replayed");
    assert!(
        text(&second.stderr).contains("memo hit"),
        "{}",
        text(&second.stderr)
    );

    std::fs::write(input.join("data"), "two\n").unwrap();
    let third = exec(&node);
    assert!(third.status.success());
    assert_eq!(text(&third.stdout), "two\n");
    assert_eq!(std::fs::read_to_string(&side).unwrap(), "ran\nran\n");

    // --no-cache runs it again.
    let fourth = run(
        &node,
        &[
            "exec",
            "--no-cache",
            "--sandbox",
            "none",
            "--input",
            &mount,
            "--output",
            "copy",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(fourth.status.success());
    assert_eq!(std::fs::read_to_string(&side).unwrap(), "ran\nran\nran\n");
}

#[test]
fn a_result_signed_by_a_key_without_attest_is_not_a_memo_hit() {
    let p = pair("min_sandbox = \"none\"\n", "exec");
    let count = p.laptop.scratch("count");
    std::fs::write(&count, "").unwrap();
    let job = |word: &str| format!("echo {word} >> {}", count.display());
    let exec = |on: &str, word: &str| {
        let got = run(
            &p.laptop,
            &[
                "exec",
                "--on",
                on,
                "--sandbox",
                "none",
                "--",
                "sh",
                "-c",
                &job(word),
            ],
        );
        assert!(got.status.success(), "{}", text(&got.stderr));
        got
    };
    // Run on the friend, then the same job here: the friend's signature
    // is not trusted here, so it runs again.
    exec(&p.friend_key, "a");
    exec("local", "a");
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "a\na\n");
    // Once the friend's key holds attest here, its results are hits.
    let friend = p.friend_key.clone();
    p.laptop.ok(["trust", "grant", &friend, "--cap", "attest"]);
    exec(&p.friend_key, "b");
    let hit = exec("local", "b");
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "a\na\nb\n");
    assert!(
        text(&hit.stderr).contains("memo hit"),
        "{}",
        text(&hit.stderr)
    );
}

/// Waits until `node` has a job in `state`; its id.
fn wait_for_job(node: &TestNode, state: &str) -> String {
    let mut id = None;
    eventually(&format!("a job is {state}"), || {
        id = node.job_in(state);
        id.is_some()
    });
    id.unwrap_or_default()
}

/// Whether process `pid` is gone (or a zombie nobody can wake).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// A job that double-forks a `sleep` under `setsid` and writes its pid to
/// `pidfile` (outside the job: sandbox `none`, a local job).
fn escaping_job(pidfile: &Path) -> String {
    format!(
        "setsid sh -c 'sleep 1000 & echo $! > {}; wait' & sleep 1000",
        pidfile.display()
    )
}

#[test]
fn a_timeout_kills_the_whole_tree_and_says_so() {
    let node = TestNode::loopback();
    let pidfile = node.scratch("pid");
    let got = run(
        &node,
        &[
            "exec",
            "--sandbox",
            "none",
            "--timeout",
            "2s",
            "--",
            "sh",
            "-c",
            &escaping_job(&pidfile),
        ],
    );
    assert_eq!(got.status.code(), Some(124), "{}", text(&got.stderr));
    assert!(
        text(&got.stderr).contains("timed out"),
        "{}",
        text(&got.stderr)
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eventually("the double-forked sleep is gone", || gone(pid));
}

#[test]
fn ctrl_c_on_exec_cancels_the_remote_job_and_kills_its_tree() {
    let p = pair("min_sandbox = \"none\"\n", "exec");
    let pidfile = p.friend.scratch("pid");
    let mut child = p
        .laptop
        .cmd([
            "exec",
            "--on",
            &p.friend_key,
            "--sandbox",
            "none",
            "--",
            "sh",
            "-c",
            &escaping_job(&pidfile),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the job started on the friend", || pidfile.exists());
    let pid: i32 = loop {
        if let Ok(pid) = std::fs::read_to_string(&pidfile)
            .unwrap_or_default()
            .trim()
            .parse()
        {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("cancelled"), "{err}");
    eventually("the double-forked sleep on the friend is gone", || {
        gone(pid)
    });
}

#[test]
fn hostile_jobs_are_clear_errors_and_nothing_escapes() {
    let node = executor("");
    // Outputs escaping the working directory.
    for output in ["../x", "/etc/passwd", "a/../../x"] {
        let got = run(&node, &["exec", "--output", output, "--", "true"]);
        assert!(!got.status.success(), "{output}");
        assert!(text(&got.stderr).contains(output) || text(&got.stderr).contains("output"));
    }
    // Inputs mounted over each other, or over the working directory's parent.
    let dir = node.scratch("d");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let a = format!("a={}", dir.display());
    let ab = format!("a/b={}", dir.display());
    let got = run(
        &node,
        &["exec", "--input", &a, "--input", &ab, "--", "true"],
    );
    assert!(!got.status.success());
    let w = format!("w={}", dir.display());
    let got = run(
        &node,
        &["exec", "--input", &w, "--workdir", "w/build", "--", "true"],
    );
    assert!(!got.status.success());

    // Under landlock: no write outside the job directory, no TCP connect.
    let outside = node.scratch("outside");
    let got = run(
        &node,
        &[
            "exec",
            "--sandbox",
            "landlock",
            "--",
            "sh",
            "-c",
            &format!("echo x > {}", outside.display()),
        ],
    );
    assert!(!got.status.success());
    assert!(!outside.exists());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let connect =
        format!("python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2)'");
    let got = run(
        &node,
        &["exec", "--sandbox", "landlock", "--", "sh", "-c", &connect],
    );
    assert!(!got.status.success(), "a TCP connect under landlock failed");
    assert!(listener.accept().is_err(), "nothing connected");
    // Under isolated: no network at all.
    let got = run(
        &node,
        &["exec", "--sandbox", "isolated", "--", "sh", "-c", &connect],
    );
    assert!(!got.status.success());
    assert!(listener.accept().is_err(), "nothing connected");

    // A job document that does not parse, or is oversized.
    let job = node.scratch("job.toml");
    std::fs::write(&job, "argv = [\"true\"]\nnot toml at all [[[\n").unwrap();
    let err = node.fails(["job", "submit", path_str(&job)]);
    assert!(err.contains("job.toml"), "{err}");
    std::fs::write(&job, format!("argv = [\"{}\"]\n", "x".repeat(2 << 20))).unwrap();
    let err = node.fails(["job", "submit", path_str(&job)]);
    assert!(!err.is_empty());
}

#[test]
fn attach_after_the_requester_is_killed_gets_the_rest_byte_for_byte() {
    let p = pair("min_sandbox = \"none\"\n", "exec");
    let script = "for i in $(seq 1 40); do echo line $i; sleep 0.1; done; echo done >&2";
    // The output of a run that is not interrupted, for comparison.
    let whole = run(
        &p.laptop,
        &[
            "exec",
            "--on",
            &p.friend_key,
            "--no-cache",
            "--",
            "sh",
            "-c",
            script,
        ],
    );
    assert!(whole.status.success(), "{}", text(&whole.stderr));

    let out_file = p.laptop.scratch("partial.out");
    let mut child = p
        .laptop
        .cmd([
            "exec",
            "--on",
            &p.friend_key,
            "--no-cache",
            "--",
            "sh",
            "-c",
            script,
        ])
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the job printed a few lines", || {
        std::fs::read_to_string(&out_file)
            .unwrap_or_default()
            .lines()
            .count()
            >= 5
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = std::fs::read(&out_file).unwrap();
    assert!(!text(&partial).contains("line 40"), "killed before the end");

    let jobs = p.laptop.json(["job", "ls"]);
    let id = jobs[0]["id"].as_str().unwrap().to_owned();
    let from = partial.len().to_string();
    let rest = run(&p.laptop, &["job", "attach", &id, "--stdout-from", &from]);
    assert!(rest.status.success(), "{}", text(&rest.stderr));
    let mut joined = partial.clone();
    joined.extend_from_slice(&rest.stdout);
    assert_eq!(text(&joined), text(&whole.stdout));
    assert!(text(&rest.stderr).contains("done"));
}

#[test]
fn a_restarted_executor_reports_the_job_it_was_running_as_interrupted() {
    let node = TestNode::loopback();
    let daemon = node.start_daemon();
    let mut child = node
        .cmd(["exec", "--sandbox", "none", "--", "sleep", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_job(&node, "running");
    daemon.signal(libc::SIGKILL);
    let _ = child.wait();
    drop(daemon);
    let _daemon = node.start_daemon();
    let jobs = node.json(["job", "ls"]);
    assert_eq!(jobs[0]["state"], "interrupted", "{jobs}");
    let status = node.ok(["job", "status", jobs[0]["id"].as_str().unwrap()]);
    assert!(status.contains("interrupted"), "{status}");
}

#[test]
fn a_job_file_is_submitted_and_its_logs_status_and_cancel_work() {
    let node = TestNode::loopback();
    let _daemon = node.start_daemon();
    let dir = node.scratch("job");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/words"), "b\na\nc\n").unwrap();
    std::fs::write(
        dir.join("JOB.toml"),
        "argv = [\"sh\", \"-c\", \"sort in/words > sorted; echo sorted; echo note >&2\"]\n\
         outputs = [\"sorted\"]\n\
         timeout = \"1m\"\n\
         [inputs]\n\
         in = \"./data\"\n",
    )
    .unwrap();
    let out = node.scratch("out");
    let got = run(
        &node,
        &[
            "job",
            "submit",
            path_str(&dir.join("JOB.toml")),
            "-o",
            path_str(&out),
        ],
    );
    assert!(got.status.success(), "{}", text(&got.stderr));
    assert_eq!(text(&got.stdout), "sorted\n");
    assert!(text(&got.stderr).contains("note"));
    assert_eq!(
        std::fs::read_to_string(out.join("sorted")).unwrap(),
        "a\nb\nc\n"
    );

    let id = node.json(["job", "ls"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let logs = run(&node, &["job", "logs", &id[..8]]);
    assert_eq!(text(&logs.stdout), "sorted\n");
    assert_eq!(text(&logs.stderr), "note\n");
    let status = node.json(["job", "status", &id]);
    assert_eq!(status["state"], "done");
    assert_eq!(status["exit_code"], 0);

    // A long job, cancelled by `job cancel` from another command.
    let mut child = node
        .cmd(["exec", "--", "sh", "-c", "echo started; sleep 1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = wait_for_job(&node, "running");
    node.ok(["job", "cancel", &running]);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(node.json(["job", "status", &running])["state"], "cancelled");
    let err = node.fails(["job", "status", "ffffffffffff"]);
    assert!(err.contains("no job"), "{err}");
}

#[test]
fn exec_alone_never_reads_the_executors_objects_a_peer_did_not_send() {
    let p = pair("min_sandbox = \"none\"\n", "exec");
    let cat_on_friend = |input: &str| {
        run(
            &p.laptop,
            &[
                "exec",
                "--on",
                &p.friend_key,
                "--input",
                input,
                "--",
                "cat",
                "x",
            ],
        )
    };
    // The friend holds a file; the laptop happens to know its hash (it
    // has the same bytes), but never sent them to the friend.
    let secret = p.friend.scratch("secret");
    std::fs::write(&secret, "the friend's own bytes\n").unwrap();
    let hash = p.friend.json(["add", path_str(&secret)])[0]["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let copy = p.laptop.scratch("same");
    std::fs::write(&copy, "the friend's own bytes\n").unwrap();
    p.laptop.ok(["add", path_str(&copy)]);
    let input = format!("x={hash}");
    let got = cat_on_friend(&input);
    assert!(!got.status.success(), "{}", text(&got.stdout));
    assert!(text(&got.stdout).is_empty(), "nothing of it was printed");
    let err = text(&got.stderr);
    assert!(err.contains("no fetch"), "{err}");

    // An input the laptop sends is its own, and so is a later job's use of it.
    let mine = p.laptop.scratch("mine");
    std::fs::write(&mine, "the laptop's bytes\n").unwrap();
    let input = format!("x={}", mine.display());
    for _ in 0..2 {
        let got = run(
            &p.laptop,
            &[
                "exec",
                "--on",
                &p.friend_key,
                "--no-cache",
                "--input",
                &input,
                "--",
                "cat",
                "x",
            ],
        );
        assert!(got.status.success(), "{}", text(&got.stderr));
        assert_eq!(text(&got.stdout), "the laptop's bytes\n");
    }

    // Holding fetch there, the laptop may name what the friend holds.
    p.grant("fetch");
    let input = format!("x={hash}");
    let got = cat_on_friend(&input);
    assert!(got.status.success(), "{}", text(&got.stderr));
    assert_eq!(text(&got.stdout), "the friend's own bytes\n");
}

#[test]
fn a_job_cancelled_while_it_waits_for_a_slot_ends_at_once() {
    let node = executor("slots = 1\n");
    let _daemon = node.start_daemon();
    let spawn = |marker: &str| {
        node.cmd([
            "exec",
            "--",
            "sh",
            "-c",
            &format!("echo {marker}; sleep 1000"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let mut first = spawn("first");
    let running = wait_for_job(&node, "running");
    let mut second = spawn("second");
    let queued = wait_for_job(&node, "queued");
    node.ok(["job", "cancel", &queued]);
    // It ends without waiting for the slot the first job holds, saying
    // it never ran (there is no result to sign).
    assert_eq!(second.wait().unwrap().code(), Some(1));
    let mut err = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("cancelled before it started"), "{err}");
    assert_eq!(node.json(["job", "status", &queued])["state"], "cancelled");
    assert_eq!(node.json(["job", "status", &running])["state"], "running");
    node.ok(["job", "cancel", &running]);
    assert_eq!(first.wait().unwrap().code(), Some(130));
}
