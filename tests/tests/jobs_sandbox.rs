//! Running jobs under the sandbox levels, through the real supervisor (the
//! built `clive-node` binary) on real processes: exact environment, logs and
//! limits, exit codes and signals, whole-tree kills on timeout, cancel and
//! executor death, Landlock's file and TCP rules, the isolated level's
//! namespaces.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    collections::BTreeMap,
    io::Write,
    net::TcpListener,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use clive_node::jobs::{
    collect,
    process::{LogLen, ProcessError, RunOutcome, RunSpec, run},
    result::Exit,
    sandbox::{self, SandboxLevel},
    stage, supervisor,
};
use clive_tests::{clive_bin, eventually};
use tokio::sync::watch;

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A job directory (`root`) with its log files beside it.
struct Job {
    dir: tempfile::TempDir,
}

impl Job {
    fn new() -> Job {
        let job = Job {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        std::fs::create_dir(job.root()).unwrap();
        job
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A path outside the job directory.
    fn outside(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn spec(&self, level: SandboxLevel, argv: &[&str]) -> RunSpec {
        RunSpec {
            helper: clive_bin(),
            root: self.root(),
            workdir: self.root(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: BTreeMap::from([("PATH".to_owned(), PATH.to_owned())]),
            level,
            timeout: Duration::from_secs(600),
            stdout: self.outside("stdout"),
            stderr: self.outside("stderr"),
            log_limit: 1 << 20,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.outside("stdout")).unwrap()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.outside("stderr")).unwrap()
    }

    /// The pid a job wrote into `root/name`.
    fn pid(&self, name: &str) -> u32 {
        let text = std::fs::read_to_string(self.root().join(name)).expect("the job wrote a pid");
        text.trim().parse().expect("a pid")
    }
}

fn sh(script: &str) -> Vec<&str> {
    vec!["sh", "-c", script]
}

async fn run_job(spec: RunSpec) -> Result<RunOutcome, ProcessError> {
    let (logs, _) = watch::channel(LogLen::default());
    let (_cancel, cancelled) = watch::channel(false);
    run(spec, logs, cancelled).await
}

async fn ok(spec: RunSpec) -> RunOutcome {
    run_job(spec).await.expect("the job runs")
}

/// Whether `pid` is a live `sleep 1000` (a pid reused by something else is
/// not the job's).
fn sleeper_alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x001000\x00")
}

/// Host pids of the live `sleep 1000` processes whose environment holds
/// `CLIVE_TEST_MARK=mark`: a job's sleepers, whatever PID namespace they are in.
fn sleepers(mark: &str) -> Vec<u32> {
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
        if sleeper_alive(pid)
            && environ
                .split(|&b| b == 0)
                .any(|var| var == needle.as_bytes())
        {
            found.push(pid);
        }
    }
    found
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

fn has(level: SandboxLevel) -> bool {
    let yes = sandbox::available().contains(&level);
    assert!(
        yes || std::env::var_os("CLIVE_TEST_ALLOW_NO_SANDBOX").is_some(),
        "this machine should give {level}: {:?}",
        sandbox::available()
    );
    yes
}

/// A job that starts a `sleep 1000` double-forked under `setsid` (its pid in
/// `grandchild`), says `ready`, then sleeps itself.
const DOUBLE_FORK: &str = "(setsid sh -c 'echo $$ > grandchild.tmp; mv grandchild.tmp grandchild; \
    exec sleep 1000' &); while [ ! -s grandchild ]; do sleep 0.01; done; echo ready; sleep 1000";

#[tokio::test]
async fn environment_is_exactly_the_given_one() {
    let job = Job::new();
    std::fs::create_dir(job.root().join("sub")).unwrap();
    let mut spec = job.spec(SandboxLevel::None, &["env"]);
    spec.env
        .insert("GREETING".to_owned(), "hello world".to_owned());
    spec.workdir = job.root().join("sub");
    let out = ok(spec.clone()).await;
    assert_eq!(out.exit, Exit::Code(0));
    assert_eq!(
        job.stdout(),
        format!("GREETING=hello world\nPATH={PATH}\n"),
        "nothing inherited"
    );

    spec.argv = sh("pwd; readlink /proc/self/fd/0; ls /proc/self/fd")
        .into_iter()
        .map(String::from)
        .collect();
    let out = ok(spec).await;
    assert_eq!(out.exit, Exit::Code(0));
    // pwd, stdin, and only 0 1 2 (+ the fd ls itself opens) are open.
    let lines: Vec<String> = job.stdout().lines().map(String::from).collect();
    assert_eq!(lines[0], job.root().join("sub").display().to_string());
    assert_eq!(lines[1], "/dev/null");
    assert_eq!(lines[2..], ["0", "1", "2", "3"], "{lines:?}");
}

#[tokio::test]
async fn exit_codes_signals_and_unrunnable_programs() {
    let job = Job::new();
    let out = ok(job.spec(SandboxLevel::None, &sh("echo out; echo err >&2; exit 3"))).await;
    assert_eq!(out.exit, Exit::Code(3));
    assert!(!out.timed_out && !out.cancelled);
    assert_eq!(
        (job.stdout().as_str(), job.stderr().as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(
        out.logs,
        LogLen {
            stdout: 4,
            stderr: 4
        }
    );
    assert!(out.started <= out.ended);

    let out = ok(job.spec(SandboxLevel::None, &sh("kill -TERM $$"))).await;
    assert_eq!(out.exit, Exit::Signal(libc::SIGTERM));
    assert!(!out.timed_out && !out.cancelled);

    let out = ok(job.spec(SandboxLevel::None, &["no-such-program-here"])).await;
    assert_eq!(out.exit, Exit::Code(127));
    assert!(
        job.stderr().contains("cannot run `no-such-program-here`"),
        "{}",
        job.stderr()
    );
}

#[tokio::test]
async fn logs_are_limited_and_published_as_written() {
    let job = Job::new();
    let mut spec = job.spec(
        SandboxLevel::None,
        &sh("i=0; while [ $i -lt 200 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done"),
    );
    spec.log_limit = 1000;
    let (logs, mut seen) = watch::channel(LogLen::default());
    let (_cancel, cancelled) = watch::channel(false);
    let out = run(spec, logs, cancelled).await.unwrap();
    assert_eq!(out.exit, Exit::Code(0));
    assert!(out.logs_truncated);
    assert_eq!(
        out.logs,
        LogLen {
            stdout: 1000,
            stderr: 0
        }
    );
    assert_eq!(*seen.borrow_and_update(), out.logs);
    assert_eq!(job.stdout().len(), 1000);
    assert!(job.stdout().starts_with("0123456789"));
    // Some CPU was used by a 200-step shell loop, and it had memory.
    assert!(out.peak_memory_bytes > 0);
}

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
    let grandchild = job.pid("grandchild");
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
            assert!(before.contains(&job.pid("grandchild")));
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
    assert!(!sleeper_alive(job.pid("grandchild")));
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
    let grandchild = job.pid("grandchild");
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

/// A supervisor of another protocol version refuses, saying so.
#[test]
fn supervisor_refuses_another_protocol() {
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let status = std::process::Command::new(clive_bin())
        .args([supervisor::ARG, "999"])
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let mut line = String::new();
    std::io::Read::read_to_string(&mut ours, &mut line).unwrap();
    let report: supervisor::Report = serde_json::from_str(line.trim()).unwrap();
    assert!(report.error.unwrap().contains("999"));
}

#[tokio::test]
async fn levels_this_machine_lacks_are_refused() {
    let job = Job::new();
    for level in SandboxLevel::ALL {
        if sandbox::available().contains(&level) {
            continue;
        }
        let err = run_job(job.spec(level, &["true"])).await.unwrap_err();
        assert!(matches!(err, ProcessError::Unavailable { .. }), "{err}");
        assert!(err.to_string().contains(level.as_str()), "{err}");
    }
    // A workdir outside the job directory is refused.
    let mut spec = job.spec(SandboxLevel::None, &["true"]);
    spec.workdir = job.outside("");
    let err = run_job(spec.clone()).await.unwrap_err();
    assert!(matches!(err, ProcessError::Workdir(_)), "{err}");
    spec.workdir = job.root().join("..");
    let err = run_job(spec).await.unwrap_err();
    assert!(matches!(err, ProcessError::Workdir(_)), "{err}");
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

    // Signals reach only the job's own processes (Landlock scopes, ABI >= 6).
    if clive_node::jobs::sandbox::linux::landlock_abi().is_some_and(|abi| abi >= 6) {
        let signal = format!("kill -0 {me} && echo signalled; kill -0 $$ && echo self");
        let out = ok(job.spec(level, &sh(&signal))).await;
        assert_eq!(job.stdout(), "self\n", "{level}: {out:?} {}", job.stderr());
    }

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

/// A C compiler works under the sandbox: system headers, libraries and the
/// toolchain are readable, temporary files go to TMPDIR (landlock: inside the
/// job directory) or the private /tmp (isolated).
#[tokio::test]
async fn a_c_compiler_works_under_the_sandbox() {
    for level in [SandboxLevel::Landlock, SandboxLevel::Isolated] {
        if !has(level) {
            continue;
        }
        let job = Job::new();
        std::fs::write(
            job.root().join("hello.c"),
            "#include <stdio.h>\nint main(void) { printf(\"hello from cc\\n\"); return 0; }\n",
        )
        .unwrap();
        std::fs::write(
            job.root().join("Makefile"),
            "hello: hello.c\n\tcc -O1 -o hello hello.c\n",
        )
        .unwrap();
        // Under landlock /tmp is not writable: the job points TMPDIR into
        // its own directory (what the sandbox module documents).
        let script = match level {
            SandboxLevel::Landlock => "mkdir -p tmp && TMPDIR=$PWD/tmp make && ./hello",
            _ => "make && ./hello",
        };
        let spec = job.spec(level, &sh(script));
        let out = ok(spec).await;
        assert_eq!(out.exit, Exit::Code(0), "{level}: {}", job.stderr());
        assert!(
            job.stdout().ends_with("hello from cc\n"),
            "{level}: {}",
            job.stdout()
        );
        assert!(out.cpu > Duration::ZERO, "{level}: the compiler used CPU");
        assert!(Path::new(&job.root().join("hello")).exists());
    }
}

/// A node opened in-process (its home made by the real `init`), for its store.
async fn store_node() -> (clive_tests::TestNode, clive_node::Node) {
    let test_node = clive_tests::TestNode::new();
    let node = clive_node::Node::open(
        &clive_node::Home::new(test_node.home()),
        std::sync::Arc::new(clive_node::clive_trust::SystemClock),
    )
    .await
    .expect("open the node");
    (test_node, node)
}

async fn add(store: &clive_node::cas::Store, path: &Path) -> clive_node::cas::Hash {
    let (added, _guard) = store
        .add_path(path, std::sync::Arc::new(clive_node::cas::NoProgress))
        .await
        .unwrap();
    added.hash
}

#[tokio::test]
async fn stage_run_collect_round_trip() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let (_home, node) = store_node().await;
    let store = node.store().cas().clone();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("main.c"), "int main(void) { return 0; }\n").unwrap();
    std::fs::create_dir(src.path().join("lib")).unwrap();
    std::fs::write(src.path().join("lib/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(
        src.path().join("lib/run.sh"),
        PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    symlink("/etc/passwd", src.path().join("lib/passwd")).unwrap();
    let tree = add(&store, src.path()).await;
    std::fs::write(src.path().join("blob.txt"), "blob\n").unwrap();
    let blob = add(&store, &src.path().join("blob.txt")).await;

    let job = Job::new();
    let root = job.root().join("j");
    let inputs = [("src", tree), ("data/blob.txt", blob)];
    let workdir = stage::stage(&store, &root, inputs, "build/here")
        .await
        .unwrap();
    assert_eq!(workdir, root.join("build/here"));
    assert!(workdir.is_dir());
    let mode = |p: &str| {
        std::fs::symlink_metadata(root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("src"), 0o555);
    assert_eq!(mode("src/main.c"), 0o444);
    assert_eq!(mode("src/lib/run.sh"), 0o555);
    assert_eq!(mode("data/blob.txt"), 0o444);
    assert_eq!(
        std::fs::read_link(root.join("src/lib/passwd")).unwrap(),
        Path::new("/etc/passwd"),
        "a symlink stays a symlink"
    );

    // The job makes a file, an executable in a directory, a symlink, and a
    // directory holding a symlink; one output it does not make.
    let script = "mkdir -p out/sub && echo made > out/file && cp ../../src/lib/run.sh out/sub/ \
        && ln -s /etc/passwd link && mkdir d && ln -s ../out d/up";
    let mut spec = job.spec(SandboxLevel::Landlock, &sh(script));
    spec.root = root.clone();
    spec.workdir = workdir.clone();
    if !has(SandboxLevel::Landlock) {
        spec.level = SandboxLevel::None;
    }
    let out = ok(spec).await;
    assert_eq!(out.exit, Exit::Code(0), "{}", job.stderr());
    let outputs: Vec<String> = ["out", "out/file", "link", "d", "absent/x", "absent2"]
        .map(String::from)
        .to_vec();
    let collected = collect::collect(&store, &root, &workdir, &outputs, 1 << 20)
        .await
        .unwrap();
    assert_eq!(collected.missing, ["absent/x", "absent2"]);
    let back = job.outside("back");
    store
        .export(
            collected.tree,
            &back,
            false,
            std::sync::Arc::new(clive_node::cas::NoProgress),
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(back.join("out/file")).unwrap(),
        "made\n"
    );
    let run_sh = std::fs::metadata(back.join("out/sub/run.sh")).unwrap();
    assert_ne!(run_sh.permissions().mode() & 0o111, 0, "executable kept");
    assert_eq!(
        std::fs::read_link(back.join("link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        std::fs::read_link(back.join("d/up")).unwrap(),
        Path::new("../out")
    );
    assert_eq!(collected.bytes, 5 + 19 + 11 + 6);
    drop(collected.guard);

    stage::remove(&root).unwrap();
    assert!(!root.exists());
    drop(store);
    node.close().await.unwrap();
}

#[tokio::test]
async fn collect_refuses_escapes_and_limits() {
    use std::os::unix::fs::symlink;
    let (_home, node) = store_node().await;
    let store = node.store().cas().clone();
    let job = Job::new();
    let root = job.root();
    let workdir = root.join("w");
    std::fs::create_dir_all(workdir.join("real")).unwrap();
    std::fs::write(workdir.join("real/big"), vec![7u8; 4096]).unwrap();
    symlink("/etc", workdir.join("escape")).unwrap();
    let collect = |outputs: &[&str], limit: u64| {
        let outputs: Vec<String> = outputs.iter().map(|s| s.to_string()).collect();
        let (store, root, workdir) = (store.clone(), root.clone(), workdir.clone());
        async move { collect::collect(&store, &root, &workdir, &outputs, limit).await }
    };
    for bad in ["../x", "/etc/passwd", "a/../../x", "./real", ""] {
        let err = collect(&[bad], 1 << 20).await.unwrap_err();
        assert!(
            matches!(err, collect::CollectError::BadPath(_)),
            "{bad}: {err}"
        );
    }
    let err = collect(&["escape/passwd"], 1 << 20).await.unwrap_err();
    assert!(
        matches!(err, collect::CollectError::Symlink { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("escape"), "{err}");
    // The symlink itself as an output is stored as a symlink, not followed.
    let ok = collect(&["escape"], 1 << 20).await.unwrap();
    assert_eq!(ok.bytes, 4, "the link target's length, not /etc");
    drop(ok);
    // Over the limit.
    let err = collect(&["real"], 4095).await.unwrap_err();
    assert!(
        matches!(err, collect::CollectError::TooLarge { limit: 4095 }),
        "{err}"
    );
    assert_eq!(collect(&["real"], 4096).await.unwrap().bytes, 4096);

    // A workdir the job replaced with a symlink out of the job directory.
    std::fs::rename(&workdir, root.join("moved")).unwrap();
    symlink("/etc", &workdir).unwrap();
    let err = collect(&["passwd"], 1 << 20).await.unwrap_err();
    assert!(
        matches!(err, collect::CollectError::Symlink { .. }),
        "{err}"
    );
    drop(store);
    node.close().await.unwrap();
}

#[tokio::test]
async fn stage_refuses_bad_mounts() {
    let (_home, node) = store_node().await;
    let store = node.store().cas().clone();
    let (hash, guard) = store.put_bytes(b"x".to_vec()).await.unwrap();
    drop(guard);
    let job = Job::new();
    let root = job.root().join("s");
    let cases: [(&[&str], &str); 6] = [
        (&["../up"], ""),
        (&["/abs"], ""),
        (&["a/./b"], ""),
        (&["a", "a/b"], ""),
        (&["src"], "src/build"),
        (&["src"], "src"),
    ];
    for (mounts, workdir) in cases {
        let inputs = mounts.iter().map(|m| (*m, hash));
        let err = stage::stage(&store, &root, inputs, workdir)
            .await
            .unwrap_err();
        let expected = match err {
            stage::StageError::BadPath(_) => mounts[0].contains('.') || mounts[0].starts_with('/'),
            stage::StageError::Overlap { .. } => mounts.len() == 2,
            stage::StageError::WorkdirInInput { .. } => !workdir.is_empty(),
            _ => false,
        };
        assert!(expected, "{mounts:?} {workdir:?}: {err}");
        assert!(!root.join("up").exists() && !job.dir.path().join("up").exists());
    }
    drop(store);
    node.close().await.unwrap();
}
