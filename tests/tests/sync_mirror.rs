//! A zone made elsewhere: a TUF repository that python-tuf's metadata API
//! built (ecdsa keys, `sha256` only, no BLAKE3 anywhere), served by
//! `python3 -m http.server` on 127.0.0.1, followed with `name follow
//! root.json --mirror URL`, then `sync follow`, which downloads each target,
//! verifies it by its TUF length and sha256 and stores it, so the names
//! resolve to the BLAKE3 of their bytes and export byte-identical. A target
//! whose bytes were tampered with on the mirror is refused and nothing is
//! stored for it; a second node following the zone through the first (no
//! mirror) learns the same BLAKE3 from it and checks the bytes itself.
//!
//! The repository script is written by this test; it runs in the venv of
//! `scripts/install-test-deps` (`$CLIVE_TEST_PYVENV`, default
//! `TARGET_DIR/pyvenv`).

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use clive_tests::{TestNode, admit, check_success, eventually, tool, write_pseudo_random};

/// Builds (`init DIR NAME=FILE...`) a repository with python-tuf's
/// metadata API: one ecdsa key per role, consistent snapshots, targets with
/// `sha256` only, each written under its plain name and under
/// `SHA256.NAME`; `tamper DIR NAME FILE` replaces what the mirror serves
/// for NAME (both files) by FILE, leaving the metadata alone.
const REPO_PY: &str = r#"
import hashlib, os, shutil, sys
from datetime import datetime, timedelta, timezone
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp

def expiry(days):
    return datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days)

def served(dir_, name):
    parent, base = os.path.split(name)
    tdir = os.path.join(dir_, "targets", parent)
    return tdir, base

def init(dir_, pairs):
    meta = os.path.join(dir_, "metadata")
    os.makedirs(meta)
    signers = {r: CryptoSigner.generate_ecdsa() for r in ["root", "targets", "snapshot", "timestamp"]}
    root = Metadata(Root(expires=expiry(365), consistent_snapshot=True))
    for role, s in signers.items():
        root.signed.add_key(s.public_key, role)
    root.sign(signers["root"])
    root.to_file(os.path.join(meta, "1.root.json"))
    root.to_file(os.path.join(meta, "root.json"))
    targets = Metadata(Targets(expires=expiry(30)))
    for pair in pairs:
        name, path = pair.split("=", 1)
        info = TargetFile.from_file(name, path, ["sha256"])
        assert list(info.hashes) == ["sha256"]
        tdir, base = served(dir_, name)
        os.makedirs(tdir, exist_ok=True)
        shutil.copyfile(path, os.path.join(tdir, base))
        shutil.copyfile(path, os.path.join(tdir, f"{info.hashes['sha256']}.{base}"))
        targets.signed.targets[name] = info
    targets.sign(signers["targets"])
    targets.to_file(os.path.join(meta, "1.targets.json"))
    snapshot = Metadata(Snapshot(expires=expiry(30)))
    snapshot.signed.meta["targets.json"] = MetaFile(version=1)
    snapshot.sign(signers["snapshot"])
    snapshot.to_file(os.path.join(meta, "1.snapshot.json"))
    timestamp = Metadata(Timestamp(expires=expiry(2)))
    timestamp.signed.snapshot_meta = MetaFile(version=1)
    timestamp.sign(signers["timestamp"])
    timestamp.to_file(os.path.join(meta, "timestamp.json"))
    assert all(k.keytype == "ecdsa" for k in root.signed.keys.values())

def tamper(dir_, name, path):
    tdir, base = served(dir_, name)
    for f in os.listdir(tdir):
        if f == base or f.endswith("." + base):
            shutil.copyfile(path, os.path.join(tdir, f))

if sys.argv[1] == "init":
    init(sys.argv[2], sys.argv[3:])
else:
    tamper(sys.argv[2], sys.argv[3], sys.argv[4])
"#;

/// The venv's python, checked to import python-tuf.
fn python() -> PathBuf {
    let venv = match std::env::var_os("CLIVE_TEST_PYVENV") {
        Some(v) => PathBuf::from(v),
        None => std::env::current_exe()
            .expect("the test binary has a path")
            .ancestors()
            .nth(3)
            .expect("test binaries live in target/<profile>/deps")
            .join("pyvenv"),
    };
    let python = venv.join("bin").join("python");
    let out = Command::new(&python)
        .args(["-c", "import tuf.api.metadata, securesystemslib.signer"])
        .output()
        .unwrap_or_else(|e| panic!("no python venv at {} ({e})", venv.display()));
    assert!(
        out.status.success(),
        "python-tuf is not importable from {}: run scripts/install-test-deps\n{}",
        venv.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    python
}

fn run_repo_script(node: &TestNode, args: &[&std::ffi::OsStr]) {
    let script = node.scratch("repo.py");
    std::fs::write(&script, REPO_PY).unwrap();
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the repository script");
    check_success(&out);
}

/// `python3 -m http.server` on 127.0.0.1, on a port the kernel picks;
/// killed on drop.
struct StaticServer {
    child: Child,
    url: String,
}

impl StaticServer {
    fn start(dir: &Path, log: PathBuf) -> StaticServer {
        let mut child = Command::new(python())
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .arg("--directory")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("server log file"))
            .spawn()
            .expect("start python3 -m http.server");
        let stdout = child.stdout.take().expect("server stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("http.server did not start");
        let port: u16 = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        StaticServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b3sum(path: &Path) -> String {
    let out = tool("b3sum", [path.as_os_str()]);
    out.split_whitespace()
        .next()
        .expect("b3sum prints a hash")
        .to_owned()
}

fn resolved(node: &TestNode, name: &str) -> String {
    node.ok(["name", "resolve", name]).trim().to_owned()
}

#[test]
fn a_plain_tuf_zone_resolves_after_sync_follow_and_travels_to_peers() {
    let a = TestNode::loopback();
    let files = [
        ("app.txt", 10_001, 1),
        ("docs/guide/intro.md", 4_096, 2),
        ("bin/tool.bin", 70_000, 3),
        ("evil.bin", 5_000, 4),
    ];
    let mut pairs = Vec::new();
    for (name, len, seed) in files {
        let path = a.scratch(&format!("src-{}", name.replace('/', "_")));
        write_pseudo_random(&path, len, seed);
        pairs.push(format!("{name}={}", path.display()));
    }
    let repo = a.scratch("pyrepo");
    let mut args: Vec<&std::ffi::OsStr> = vec!["init".as_ref(), repo.as_os_str()];
    args.extend(pairs.iter().map(|p| std::ffi::OsStr::new(p.as_str())));
    run_repo_script(&a, &args);
    // The mirror serves other bytes of the same length for evil.bin.
    let forged = a.scratch("forged.bin");
    write_pseudo_random(&forged, 5_000, 99);
    run_repo_script(
        &a,
        &[
            "tamper".as_ref(),
            repo.as_os_str(),
            "evil.bin".as_ref(),
            forged.as_os_str(),
        ],
    );
    let server = StaticServer::start(&repo, a.scratch("http.log"));

    let _da = a.start_daemon();
    let root = repo.join("metadata").join("1.root.json");
    a.ok([
        "name".as_ref(),
        "follow".as_ref(),
        root.as_os_str(),
        "--mirror".as_ref(),
        server.url.as_ref(),
        "--as".as_ref(),
        "py".as_ref(),
    ]);
    // Followed and verified, but not downloaded: the hint, not "not published".
    let err = a.fails(["name", "resolve", "py/app.txt"]);
    assert!(
        err.contains("plain TUF target not downloaded yet")
            && err.contains("clive-node sync follow py"),
        "{err}"
    );
    let err = a.fails(["name", "resolve", "py/nothing-here"]);
    assert!(err.contains("is not published"), "{err}");

    let out = a.cmd(["sync", "follow", "py"]).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("evil.bin"),
        "the refusal is not reported:\n{said}"
    );
    for (name, _, _) in files.iter().filter(|f| f.0 != "evil.bin") {
        let src = a.scratch(&format!("src-{}", name.replace('/', "_")));
        let hash = resolved(&a, &format!("py/{name}"));
        assert_eq!(hash, b3sum(&src), "{name}");
        let out = a.scratch(&format!("out-{}", name.replace('/', "_")));
        a.ok([
            "export".as_ref(),
            format!("py/{name}").as_ref(),
            out.as_os_str(),
        ]);
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&src).unwrap());
    }
    // The tampered target: refused, nothing stored under either hash.
    let err = a.fails(["name", "resolve", "py/evil.bin"]);
    assert!(err.contains("not downloaded yet"), "{err}");
    for bytes in [&forged, &a.scratch("src-evil.bin")] {
        let err = a.fails(["cat", &b3sum(bytes)]);
        assert!(!err.is_empty());
    }

    // B follows the zone through A (no mirror) and learns the BLAKE3s
    // from A, fetching and checking the bytes itself.
    let b = TestNode::loopback();
    let _db = b.start_daemon();
    admit(&a, &b, "fetch");
    let shown = a.json(["name", "zone", "show", "py"]);
    let ticket = shown["ticket"].as_str().expect("a zone ticket").to_owned();
    b.ok(["name", "follow", &ticket]);
    let err = b.fails(["name", "resolve", "py/bin/tool.bin"]);
    assert!(err.contains("not downloaded yet"), "{err}");
    b.cmd(["sync", "follow", "py"]).output().unwrap();
    eventually("b resolves the zone's targets", || {
        b.cmd(["name", "resolve", "py/bin/tool.bin"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    for (name, _, _) in files.iter().filter(|f| f.0 != "evil.bin") {
        assert_eq!(
            resolved(&b, &format!("py/{name}")),
            resolved(&a, &format!("py/{name}")),
            "{name}"
        );
    }
    let out = b.scratch("b-tool.bin");
    b.ok([
        "export".as_ref(),
        "py/bin/tool.bin".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(a.scratch("src-bin_tool.bin")).unwrap()
    );
    drop(server);
}
