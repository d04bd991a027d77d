//! Helpers for end-to-end tests: run the real `clive-node` binary against
//! real homes in temporary directories.

pub mod netns;

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

/// The `clive-node` binary built by this workspace.
///
/// `$CLIVE_NODE_BIN` overrides; otherwise the binary next to the test's own
/// target directory (`cargo build` or the test run of `clive-cli` builds it).
pub fn clive_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CLIVE_NODE_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/<profile>/deps/<test> -> target/<profile>/clive-node
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let bin = dir.join("clive-node");
    assert!(
        bin.exists(),
        "{} does not exist: build it first (`cargo build -p clive-cli`)",
        bin.display()
    );
    bin
}

/// A node home in a temporary directory, driven through the CLI.
pub struct TestNode {
    dir: tempfile::TempDir,
}

impl TestNode {
    /// A fresh, initialised node.
    pub fn new() -> Self {
        let node = Self::uninitialised();
        node.ok(["init"]);
        node
    }

    /// A node whose key is an `ssh-keygen` key encrypted with `passphrase`,
    /// imported with the passphrase from `CLIVE_PASSPHRASE`.
    pub fn with_encrypted_key(passphrase: &str) -> Self {
        let node = Self::uninitialised();
        let key = node.scratch("id_ed25519");
        ssh_keygen_key(&["-t", "ed25519", "-N", passphrase], &key);
        let out = node
            .cmd(["init".as_ref(), "--ssh-key".as_ref(), key.as_os_str()])
            .env("CLIVE_PASSPHRASE", passphrase)
            .output()
            .expect("run clive-node init");
        check_success(&out);
        node
    }

    /// A directory for a node that `init` has not run in yet.
    pub fn uninitialised() -> Self {
        TestNode {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A fresh, initialised node whose directory (home and scratch files)
    /// is inside `parent` (a small file system, say).
    pub fn new_in(parent: &Path) -> Self {
        let node = TestNode {
            dir: tempfile::tempdir_in(parent).expect("temp dir"),
        };
        node.ok(["init"]);
        node
    }

    /// The home directory.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A scratch directory beside the home.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A command running `clive-node --home HOME ARGS`.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(clive_bin());
        cmd.arg("--home").arg(self.home()).args(args);
        cmd.env_remove("CLIVE_PASSPHRASE").env_remove("RUST_LOG");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs a command, which must succeed; returns its standard output.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.cmd(args).output().expect("run clive-node");
        check_success(&out);
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs a command, which must fail; returns its standard error.
    pub fn fails<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.cmd(args).output().expect("run clive-node");
        assert!(
            !out.status.success(),
            "expected failure, got success; stdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs a command with `--json`, which must succeed; returns the value.
    pub fn json<I, S>(&self, args: I) -> serde_json::Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec!["--json".into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        let text = self.ok(all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{text}"))
    }

    /// Runs `clive-node ARGS` with its standard output and error on a
    /// pseudo-terminal (python's pty module, which joins both on
    /// `stdout`; python3 is installed by scripts/install-test-deps).
    pub fn on_terminal(&self, args: &[&str]) -> Output {
        let script = "import os, pty, sys\n\
                      status = pty.spawn(sys.argv[1:])\n\
                      sys.exit(os.waitstatus_to_exitcode(status))";
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(clive_bin())
            .arg("--home")
            .arg(self.home())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run python3")
    }

    /// The id of a job of this node in `state` (`job ls`), if there is one.
    pub fn job_in(&self, state: &str) -> Option<String> {
        self.json(["job", "ls"])
            .as_array()?
            .iter()
            .find(|j| j["state"] == state)
            .and_then(|j| j["id"].as_str())
            .map(str::to_owned)
    }

    /// The node's public key, as `id` prints it (an OpenSSH line).
    pub fn public_key(&self) -> String {
        let id = self.json(["id"]);
        id["public_key"]
            .as_str()
            .unwrap_or_else(|| panic!("id printed no public_key: {id}"))
            .to_owned()
    }
}

impl Default for TestNode {
    fn default() -> Self {
        Self::new()
    }
}

/// Panics with both output streams unless the process succeeded.
pub fn check_success(out: &Output) {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs an outside tool (`b3sum`, `ssh-keygen`, `diff`), which must succeed.
pub fn tool<I, S>(program: &str, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (scripts/install-test-deps): {e}"));
    check_success(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `len` bytes of cheap pseudo-random data (xorshift) to `path`.
pub fn write_pseudo_random(path: &Path, len: u64, seed: u64) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("create data file");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut x = seed | 1;
    let mut left = len;
    let mut buf = [0u8; 8];
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.copy_from_slice(&x.to_le_bytes());
        let n = left.min(8) as usize;
        w.write_all(&buf[..n]).expect("write data");
        left -= n as u64;
    }
    w.flush().expect("flush data");
}

/// Asserts with `diff -r` that two trees are identical, symlinks compared as links.
pub fn assert_same_tree(a: &Path, b: &Path) {
    tool(
        "diff",
        [
            "-r".as_ref(),
            "--no-dereference".as_ref(),
            a.as_os_str(),
            b.as_os_str(),
        ],
    );
}

/// Makes a key with `ssh-keygen ARGS -q -f PATH` (for example
/// `["-t", "ed25519", "-N", ""]`).
pub fn ssh_keygen_key(args: &[&str], path: &Path) {
    let mut all: Vec<&OsStr> = args.iter().map(|a| a.as_ref()).collect();
    all.extend(["-q".as_ref(), "-f".as_ref(), path.as_os_str()]);
    tool("ssh-keygen", all);
}

/// A daemon (`clive-node start`) serving a test node's home. Dropping it
/// kills it (SIGKILL) if it still runs, so a failing test leaves nothing
/// behind.
pub struct Daemon {
    child: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl TestNode {
    /// The directory holding the home and the scratch files.
    pub fn root(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Starts a daemon on `127.0.0.1:0` with `configure` applied to its
    /// command (environment, say), and waits (`status --wait 10s`) until it
    /// answers.
    pub fn start_daemon_with(&self, configure: impl FnOnce(&mut Command)) -> Daemon {
        let mut cmd = self.cmd(["start", "--bind", "127.0.0.1:0"]);
        configure(&mut cmd);
        self.spawn_daemon(cmd)
    }

    /// Starts a daemon listening on `bind`, its command made by `wrap` from
    /// the binary's path (to run it inside a network namespace, say), and
    /// waits until it answers.
    pub fn start_daemon_wrapped(&self, wrap: impl FnOnce(&Path) -> Command, bind: &str) -> Daemon {
        let mut cmd = wrap(&clive_bin());
        cmd.arg("--home")
            .arg(self.home())
            .args(["start", "--bind", bind]);
        cmd.env_remove("CLIVE_PASSPHRASE").env_remove("RUST_LOG");
        cmd.stdin(Stdio::null());
        self.spawn_daemon(cmd)
    }

    fn spawn_daemon(&self, mut cmd: Command) -> Daemon {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let stdout = self.scratch(&format!("daemon-{n}.out"));
        let stderr = self.scratch(&format!("daemon-{n}.err"));
        cmd.stdout(std::fs::File::create(&stdout).expect("daemon stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("daemon stderr file"));
        let child = cmd.spawn().expect("spawn clive-node start");
        let mut daemon = Daemon {
            child,
            stdout,
            stderr,
        };
        let out = self
            .cmd(["status", "--wait", "10s"])
            .output()
            .expect("run clive-node status --wait");
        if !out.status.success() {
            let exited = daemon.child.try_wait().ok().flatten();
            panic!(
                "the daemon did not answer ({exited:?}): {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                daemon.logs()
            );
        }
        daemon
    }

    /// Starts a daemon on `127.0.0.1:0` and waits until it answers.
    pub fn start_daemon(&self) -> Daemon {
        self.start_daemon_with(|_| {})
    }
}

impl Daemon {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it printed, standard output then standard error.
    pub fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "daemon stdout:\n{}\ndaemon stderr:\n{}",
            read(&self.stdout),
            read(&self.stderr)
        )
    }

    /// Sends it a signal.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill {}", self.child.id());
    }

    /// Waits at most `timeout` for it to exit; panics (with its logs) if it
    /// does not.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the daemon") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon did not exit within {timeout:?}\n{}",
                self.logs()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A real `ssh-agent -D` listening on a socket in a test's directory;
/// killed on drop.
pub struct Agent {
    child: std::process::Child,
    /// The socket to put in `SSH_AUTH_SOCK`.
    pub socket: PathBuf,
}

impl Agent {
    /// Starts an agent with its socket in `dir` and waits (bounded) for it.
    pub fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent must be installed (scripts/install-test-deps)");
        let mut agent = Agent { child, socket };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !agent.socket.exists() {
            if let Ok(Some(status)) = agent.child.try_wait() {
                panic!("ssh-agent exited: {status}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ssh-agent did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestNode {
    /// A node whose config keeps it on 127.0.0.1 (port 0).
    pub fn loopback() -> Self {
        let node = TestNode::new();
        std::fs::write(
            node.home().join("config.toml"),
            "[net]\nbind = [\"127.0.0.1:0\"]\n",
        )
        .unwrap();
        node
    }
}

/// `invite` on `inviter` granting `caps`, `join` on `joiner`; returns the
/// ticket.
pub fn admit(inviter: &TestNode, joiner: &TestNode, caps: &str) -> String {
    let out = inviter.ok(["invite", "--cap", caps, "--expires", "10m"]);
    let ticket = out.lines().last().unwrap().trim().to_owned();
    assert!(ticket.starts_with("clive1"), "{out}");
    joiner.ok(["join", &ticket]);
    ticket
}

/// Waits until `check` holds, looking every 100 ms for at most 20 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting for: {what}");
}

impl TestNode {
    /// Stops `daemon` through the CLI (`stop`); it must exit cleanly.
    pub fn stop(&self, mut daemon: Daemon) {
        self.ok(["stop"]);
        let status = daemon.wait_exit(std::time::Duration::from_secs(30));
        assert!(
            status.success(),
            "daemon exited with {status}\n{}",
            daemon.logs()
        );
    }
}

// The dev-dependencies are the tests' under tests/; this library's own
// unit-test build links them too.
#[cfg(test)]
use {
    bao_tree as _, blake3 as _, clive_node as _, iroh as _, iroh_blobs as _, redb as _, tokio as _,
};

/// Writes `text` at `path`, creating its directory first.
pub fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// How many lines the file at `path` holds (0 when it does not exist): a
/// run counter a job appends to, outside the store.
pub fn count_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

/// The step `name` of a `job run --json` reply.
pub fn step_of<'a>(run: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {run}"))
}

/// Bytes of every file under `dir` (0 when it does not exist): how far a
/// fetch into a node's store has got, read from the disk.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
