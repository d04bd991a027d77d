//! Nothing of a job escapes: whole-tree kills on timeout, cancel, the main
//! process ending, executor death and a dropped run (double-forked `setsid`
//! processes and fork bombs included; the job cannot kill its supervisor),
//! Landlock's file, TCP and unix socket rules, the isolated level's
//! namespaces. Through the real supervisor (the built `clive-node` binary)
//! on real processes.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

mod jobs_sandbox_support;

use std::{
    collections::BTreeMap, io::Write, net::TcpListener, os::fd::OwnedFd, path::Path,
    process::Stdio, time::Duration,
};

use clive_node::jobs::{
    process::{LogLen, RunSpec, run},
    result::Exit,
    sandbox::SandboxLevel,
    supervisor,
};
use clive_tests::{clive_bin, eventually};
use jobs_sandbox_support::{Job, PATH, has, ok, run_job, sh};
use tokio::sync::watch;

/// The pid a job wrote into `root/name`.
fn pid_of(job: &Job, name: &str) -> u32 {
    let text = std::fs::read_to_string(job.root().join(name)).expect("the job wrote a pid");
    text.trim().parse().expect("a pid")
}

/// Whether `pid` is a live `sleep 1000` (a pid reused by something else is
/// not the job's).
fn sleeper_alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x001000\x00")
}

/// Host pids of the live processes whose environment holds
/// `CLIVE_TEST_MARK=mark`: a job's processes, whatever PID namespace they are
/// in (a zombie's environment is not readable: only the living are found).
fn marked_processes(mark: &str) -> Vec<u32> {
    let needle = format!("CLIVE_TEST_MARK={mark}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if environ
            .split(|&b| b == 0)
            .any(|var| var == needle.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}

/// Host pids of the live `sleep 1000` processes of the job marked `mark`.
fn sleepers(mark: &str) -> Vec<u32> {
    marked_processes(mark)
        .into_iter()
        .filter(|&pid| sleeper_alive(pid))
        .collect()
}

/// SIGKILLs whatever still carries its mark when dropped, so that a failing
/// test leaves nothing running (the mark is unique to one job).
struct KillMarked(String);

impl Drop for KillMarked {
    fn drop(&mut self) {
        for _ in 0..100 {
            let left = marked_processes(&self.0);
            if left.is_empty() {
                return;
            }
            for pid in left {
                // SAFETY: kill with integer arguments, on a process of ours
                // carrying this job's mark.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A unique mark for a job's environment.
fn mark() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `spec` with a fresh mark in its environment; returns the mark.
fn marked(spec: &mut RunSpec) -> String {
    let mark = mark();
    spec.env.insert("CLIVE_TEST_MARK".to_owned(), mark.clone());
    mark
}

/// A job that starts a `sleep 1000` double-forked under `setsid` (its pid in
/// `grandchild`), says `ready`, then sleeps itself.
const DOUBLE_FORK: &str = "(setsid sh -c 'echo $$ > grandchild.tmp; mv grandchild.tmp grandchild; \
    exec sleep 1000' &); while [ ! -s grandchild ]; do sleep 0.01; done; echo ready; sleep 1000";

#[tokio::test]
async fn timeout_kills_a_double_forked_setsid_tree() {
    let job = Job::new();
    let mut spec = job.spec(SandboxLevel::None, &sh(DOUBLE_FORK));
    spec.timeout = Duration::from_secs(5);
    let mark = marked(&mut spec);
    let out = ok(spec).await;
    assert!(out.timed_out, "{out:?}");
    assert!(!out.cancelled);
    assert_eq!(out.exit, Exit::Signal(libc::SIGKILL));
    assert_eq!(
        job.stdout(),
        "ready\n",
        "the grandchild was started before the timeout"
    );
    let grandchild = pid_of(&job, "grandchild");
    assert!(
        !sleeper_alive(grandchild),
        "grandchild {grandchild} survived"
    );
    assert_eq!(sleepers(&mark), [] as [u32; 0]);
}

#[tokio::test]
async fn cancel_kills_the_whole_tree() {
    for level in [
        SandboxLevel::None,
        SandboxLevel::Landlock,
        SandboxLevel::Isolated,
    ] {
        if !has(level) {
            continue;
        }
        let job = Job::new();
        let mut spec = job.spec(level, &sh(DOUBLE_FORK));
        let mark = marked(&mut spec);
        let (logs, mut seen) = watch::channel(LogLen::default());
        let (cancel, cancelled) = watch::channel(false);
        let task = tokio::spawn(run(spec, logs, cancelled));
        while seen.borrow_and_update().stdout == 0 {
            seen.changed().await.expect("the job prints ready");
        }
        // The grandchild, and the main process's own sleep.
        eventually("both sleepers run", || sleepers(&mark).len() == 2);
        let before = sleepers(&mark);
        if level != SandboxLevel::Isolated {
            // Under isolated the job sees its pid in its own namespace.
            assert!(before.contains(&pid_of(&job, "grandchild")));
        }
        cancel.send(true).unwrap();
        let out = task.await.unwrap().unwrap();
        assert!(out.cancelled && !out.timed_out, "{level}: {out:?}");
        assert_eq!(out.exit, Exit::Signal(libc::SIGKILL), "{level}");
        for pid in before {
            assert!(!sleeper_alive(pid), "{level}: {pid} survived");
        }
        assert_eq!(sleepers(&mark), [] as [u32; 0], "{level}");
    }
}

#[tokio::test]
async fn the_main_process_ending_kills_what_it_left_behind() {
    let job = Job::new();
    let script = "(setsid sh -c 'echo $$ > grandchild.tmp; mv grandchild.tmp grandchild; \
        exec sleep 1000' &); while [ ! -s grandchild ]; do sleep 0.01; done; exit 7";
    let mut spec = job.spec(SandboxLevel::None, &sh(script));
    let mark = marked(&mut spec);
    let out = ok(spec).await;
    assert_eq!(out.exit, Exit::Code(7));
    assert!(!out.timed_out && !out.cancelled);
    assert!(!sleeper_alive(pid_of(&job, "grandchild")));
    assert_eq!(sleepers(&mark), [] as [u32; 0]);
}

/// The executor process dying (its end of the control socket closing) makes
/// the supervisor kill the tree: the test plays the executor's part, with a
/// stand-in process holding the socket, and SIGKILLs the stand-in.
#[tokio::test]
async fn executor_death_kills_the_tree() {
    let job = Job::new();
    let spec = supervisor::Spec {
        v: supervisor::PROTOCOL_VERSION,
        root: job.root(),
        workdir: job.root(),
        argv: sh(DOUBLE_FORK).into_iter().map(String::from).collect(),
        env: BTreeMap::from([
            ("PATH".to_owned(), PATH.to_owned()),
            ("CLIVE_TEST_MARK".to_owned(), mark()),
        ]),
        level: SandboxLevel::None,
    };
    let mark = spec.env["CLIVE_TEST_MARK"].clone();
    let json = serde_json::to_vec(&spec).unwrap();
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.write_all(&(json.len() as u32).to_be_bytes()).unwrap();
    ours.write_all(&json).unwrap();
    let mut executor = std::process::Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::from(OwnedFd::from(ours)))
        .spawn()
        .unwrap();
    let mut supervisor = std::process::Command::new(clive_bin())
        .args([supervisor::ARG, "1"])
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the job started its grandchild", || {
        job.root().join("grandchild").exists()
    });
    let grandchild = pid_of(&job, "grandchild");
    assert!(sleeper_alive(grandchild));
    executor.kill().unwrap();
    executor.wait().unwrap();
    let status = supervisor.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !sleeper_alive(grandchild),
        "grandchild survived its executor"
    );
    assert_eq!(sleepers(&mark), [] as [u32; 0]);
}

/// The executor dropping the run (its task aborted) closes the control
/// socket: the tree is killed.
#[tokio::test]
async fn dropping_the_run_kills_the_tree() {
    let job = Job::new();
    let mut spec = job.spec(SandboxLevel::None, &sh(DOUBLE_FORK));
    let mark = marked(&mut spec);
    let (logs, mut seen) = watch::channel(LogLen::default());
    let (_cancel, cancelled) = watch::channel(false);
    let task = tokio::spawn(run(spec, logs, cancelled));
    while seen.borrow_and_update().stdout == 0 {
        seen.changed().await.expect("the job prints ready");
    }
    eventually("both sleepers run", || sleepers(&mark).len() == 2);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    eventually("the tree is gone", || sleepers(&mark).is_empty());
}

/// A binary tree of processes, each forking two until depth 9 (at most 1023
/// processes: the bound is in the job itself), leaves `sleep 1000`; the main
/// process exits as soon as the first leaf runs, while the tree still grows.
const GROWING_TREE: &str = "tree() { if [ \"$1\" -eq 0 ]; then [ -e grown ] || : > grown; \
    exec sleep 1000; fi; tree $(($1 - 1)) & tree $(($1 - 1)) & wait; }; \
    tree 9 & while [ ! -e grown ]; do sleep 0.01; done; exit 0";

/// A chain of 3000 hops, each forking the next and exiting (a few processes
/// alive at once: each lives only for its fork), the last one writing `end`
/// and sleeping; the main process exits once the chain has started.
const HOPPING_CHAIN: &str = "hop() { if [ \"$1\" -eq 0 ]; then : > end; exec sleep 1000; fi; \
    hop $(($1 - 1)) & }; hop 3000 & exit 0";

/// Processes that keep forking while the tree is killed: the supervisor
/// freezes the tree before killing it, and nothing forked during the kill
/// lives on; a chain hopping from process to process (never the same pid
/// twice in a listing) is stopped before its end.
#[tokio::test]
async fn a_growing_tree_and_a_hopping_chain_are_frozen_then_killed() {
    for level in SandboxLevel::ALL {
        if !has(level) {
            continue;
        }
        for (name, script) in [("tree", GROWING_TREE), ("chain", HOPPING_CHAIN)] {
            let job = Job::new();
            let mut spec = job.spec(level, &sh(script));
            let mark = marked(&mut spec);
            let _cleanup = KillMarked(mark.clone());
            let out = run_job(spec).await;
            let out = out.unwrap_or_else(|e| panic!("{level} {name}: {e}"));
            assert_eq!(out.exit, Exit::Code(0), "{level} {name}: {}", job.stderr());
            assert_eq!(
                marked_processes(&mark),
                [] as [u32; 0],
                "{level} {name}: survivors"
            );
            if name == "chain" {
                assert!(
                    !job.root().join("end").exists(),
                    "{level}: the chain ran to its end while being killed"
                );
            }
        }
    }
}

/// A sandboxed job cannot kill its supervisor (Landlock's signal scope; under
/// `isolated` its parent is the namespace init, outside its domain too): it
/// tries, then leaves a double-forked `setsid` sleeper behind and exits; the
/// supervisor still reports, and kills the sleeper.
#[tokio::test]
async fn a_sandboxed_job_cannot_kill_its_supervisor() {
    for level in [SandboxLevel::Landlock, SandboxLevel::Isolated] {
        if !has(level) {
            continue;
        }
        let job = Job::new();
        let script = "kill -KILL $PPID; echo kill=$?; \
            (setsid sh -c 'echo $$ > grandchild.tmp; mv grandchild.tmp grandchild; \
            exec sleep 1000' &); while [ ! -s grandchild ]; do sleep 0.01; done; exit 7";
        let mut spec = job.spec(level, &sh(script));
        let mark = marked(&mut spec);
        let _cleanup = KillMarked(mark.clone());
        let out = run_job(spec).await;
        let out = out.unwrap_or_else(|e| panic!("{level}: {e}"));
        assert_eq!(out.exit, Exit::Code(7), "{level}: {}", job.stderr());
        assert_eq!(job.stdout(), "kill=1\n", "{level}: {}", job.stderr());
        assert_eq!(sleepers(&mark), [] as [u32; 0], "{level}");
    }
}

/// A 127.0.0.1 listener opened by the test, and a job script that tries to
/// connect to it with bash's `/dev/tcp` (prints `connected` on success).
fn listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
    (listener, script)
}

fn accepted(listener: &TcpListener) -> bool {
    listener.accept().is_ok()
}

#[tokio::test]
async fn without_a_sandbox_the_job_reaches_the_network_and_files() {
    // The control for the landlock and isolated tests: the same job succeeds.
    let job = Job::new();
    let (listener, connect) = listener();
    let out = ok(job.spec(SandboxLevel::None, &["bash", "-c", &connect])).await;
    assert_eq!(out.exit, Exit::Code(0), "{}", job.stderr());
    assert_eq!(job.stdout(), "connected\n");
    eventually("the connection arrives", || accepted(&listener));
    let outside = job.outside("written");
    let script = format!("echo x > {}", outside.display());
    let out = ok(job.spec(SandboxLevel::None, &sh(&script))).await;
    assert_eq!(out.exit, Exit::Code(0));
    assert!(outside.exists());
}

/// Writes outside the job directory, reads a secret there, writes inside.
/// The outside directory is not under `/tmp` (which `isolated` replaces
/// with a private one, where writes are allowed and stay private).
fn write_outside_and_inside(outside: &Path) -> String {
    format!(
        "echo no > {out}; echo out=$?; cat {secret}; echo read=$?; echo yes > inside; echo in=$?; \
         cat inside",
        out = outside.join("written").display(),
        secret = outside.join("secret").display(),
    )
}

async fn confined(level: SandboxLevel) {
    let job = Job::new();
    let outside = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::write(outside.path().join("secret"), "secret\n").unwrap();
    let out = ok(job.spec(level, &sh(&write_outside_and_inside(outside.path())))).await;
    assert_eq!(out.exit, Exit::Code(0), "{}", job.stderr());
    assert_eq!(
        job.stdout(),
        "out=2\nread=1\nin=0\nyes\n",
        "{}",
        job.stderr()
    );
    assert!(!outside.path().join("written").exists());
    assert!(
        job.stderr().contains("Permission denied"),
        "{}",
        job.stderr()
    );

    // Other processes' environment (the test's own) stays closed.
    let me = std::process::id();
    let script = format!(
        "read l < /proc/self/status && echo \"$l\"; head -c 9 /proc/cpuinfo; echo; \
         cat /proc/{me}/environ > /dev/null && echo read-environ"
    );
    let out = ok(job.spec(level, &sh(&script))).await;
    assert_ne!(out.exit, Exit::Code(0), "{}", job.stdout());
    // Its own /proc/self and /proc/cpuinfo it can read.
    assert_eq!(
        job.stdout(),
        "Name:\tsh\nprocessor\n",
        "{level}: {}",
        job.stderr()
    );

    // Signals reach only the job's own processes (Landlock scopes: the
    // level is given only where the kernel's ABI has them).
    let signal = format!("kill -0 {me} && echo signalled; kill -0 $$ && echo self");
    let out = ok(job.spec(level, &sh(&signal))).await;
    assert_eq!(job.stdout(), "self\n", "{level}: {out:?} {}", job.stderr());

    // TCP bind is denied too (the same script binds without a sandbox).
    let bind = "socket(S, PF_INET, SOCK_STREAM, 0) or die; \
        bind(S, sockaddr_in(0, inet_aton('127.0.0.1'))) or die qq(bind: $!); print qq(bound)";
    let out = ok(job.spec(SandboxLevel::None, &["perl", "-MSocket", "-e", bind])).await;
    assert_eq!((out.exit, job.stdout().as_str()), (Exit::Code(0), "bound"));
    let out = ok(job.spec(level, &["perl", "-MSocket", "-e", bind])).await;
    assert_ne!(out.exit, Exit::Code(0), "{level}: {}", job.stdout());
    assert!(job.stderr().contains("bind: "), "{level}: {}", job.stderr());

    // A unix socket outside (the node's control socket is one) is out of
    // reach; the same connect works without a sandbox.
    let sock = outside.path().join("daemon.sock");
    let unix = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    unix.set_nonblocking(true).unwrap();
    let sock = sock.display().to_string();
    let connect_unix = "socket(S, PF_UNIX, SOCK_STREAM, 0) or die qq(socket: $!); \
        connect(S, pack_sockaddr_un($ARGV[0])) or die qq(connect: $!); print qq(connected)";
    let argv = ["perl", "-MSocket", "-e", connect_unix, &sock];
    let out = ok(job.spec(SandboxLevel::None, &argv)).await;
    assert_eq!(
        (out.exit, job.stdout().as_str()),
        (Exit::Code(0), "connected")
    );
    assert!(unix.accept().is_ok());
    let out = ok(job.spec(level, &argv)).await;
    assert_ne!(out.exit, Exit::Code(0), "{level}: {}", job.stdout());
    assert!(
        job.stderr().contains("socket: Permission denied"),
        "{level}: {}",
        job.stderr()
    );
    assert!(unix.accept().is_err(), "{level}: the job connected");
    // A connected pair (reaching nobody) still works.
    let pair =
        "socketpair(A, B, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die qq(pair: $!); print qq(pair)";
    let out = ok(job.spec(level, &["perl", "-MSocket", "-e", pair])).await;
    assert_eq!(
        (out.exit, job.stdout().as_str()),
        (Exit::Code(0), "pair"),
        "{}",
        job.stderr()
    );

    let (listener, connect) = listener();
    let out = ok(job.spec(level, &["bash", "-c", &connect])).await;
    assert_ne!(out.exit, Exit::Code(0), "{}", job.stdout());
    assert_eq!(job.stdout(), "");
    assert!(!accepted(&listener), "{level}: the job connected");
}

#[tokio::test]
async fn landlock_confines_files_and_tcp() {
    if has(SandboxLevel::Landlock) {
        confined(SandboxLevel::Landlock).await;
    }
}

#[tokio::test]
async fn isolated_confines_files_and_network() {
    if has(SandboxLevel::Isolated) {
        confined(SandboxLevel::Isolated).await;
    }
}

#[tokio::test]
async fn isolated_sees_only_its_own_processes() {
    if !has(SandboxLevel::Isolated) {
        return;
    }
    let job = Job::new();
    let me = std::process::id();
    let script = format!(
        "echo $$; test -e /proc/{me} && echo sees-the-test; ls /proc | grep -c '^[0-9]'; \
         echo hi > /tmp/clive-private-{me} && cat /tmp/clive-private-{me}"
    );
    let out = ok(job.spec(SandboxLevel::Isolated, &sh(&script))).await;
    assert_eq!(out.exit, Exit::Code(0), "{}", job.stderr());
    let stdout = job.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    // PID 1 is the namespace init, the job is 2.
    assert_eq!(lines[0], "2", "{stdout}");
    assert!(!stdout.contains("sees-the-test"), "{stdout}");
    // init, sh, ls, grep: a handful, not the machine's processes.
    let count: u32 = lines[1].parse().unwrap();
    assert!(count <= 6, "{stdout}");
    assert_eq!(lines[2], "hi", "a private writable /tmp: {stdout}");
    assert!(
        !Path::new(&format!("/tmp/clive-private-{me}")).exists(),
        "the job's /tmp is private"
    );
}
