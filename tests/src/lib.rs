//! Helpers for end-to-end tests: run the real `clive-node` binary against
//! real homes in temporary directories.

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

    /// A directory for a node that `init` has not run in yet.
    pub fn uninitialised() -> Self {
        TestNode {
            dir: tempfile::tempdir().expect("temp dir"),
        }
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
