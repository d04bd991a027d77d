//! Names against python-tuf, the reference TUF implementation, both ways, over
//! plain HTTP on loopback:
//!
//! - a zone that `clive-node name export` wrote, served by `python3 -m
//!   http.server`, is refreshed and downloaded by `tuf.ngclient.Updater`;
//! - a repository that python-tuf's metadata API built is followed by
//!   `clive-node name follow ROOT.json --mirror URL` and its names resolve.
//!
//! The Python side runs in the venv that `scripts/install-test-deps` makes
//! (`$CLIVE_TEST_PYVENV`, default `TARGET_DIR/pyvenv`); the scripts are in
//! `tests/python/`.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use clive_tests::{TestNode, check_success, write_pseudo_random};
use serde_json::Value;

/// The venv's python, checked to import python-tuf and blake3.
fn python() -> PathBuf {
    let venv = match std::env::var_os("CLIVE_TEST_PYVENV") {
        Some(v) => PathBuf::from(v),
        None => {
            // target/<profile>/deps/<test> -> target/pyvenv
            let exe = std::env::current_exe().expect("the test binary has a path");
            exe.ancestors()
                .nth(3)
                .expect("test binaries live in target/<profile>/deps")
                .join("pyvenv")
        }
    };
    let python = venv.join("bin").join("python");
    let out = Command::new(&python)
        .args([
            "-c",
            "import tuf.ngclient, tuf.api.metadata, blake3, cryptography",
        ])
        .output();
    match out {
        Ok(out) if out.status.success() => python,
        Ok(out) => panic!(
            "python-tuf is not importable from {}: run scripts/install-test-deps\n{}",
            venv.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "no python venv at {} ({e}): run scripts/install-test-deps",
            venv.display()
        ),
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// Runs a script of `tests/python` with the venv's python, with a time
/// limit; it must succeed. Returns its standard output parsed as JSON.
fn run_python(name: &str, args: &[&Path]) -> Value {
    let out = run_python_output(name, args);
    check_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{name} printed bad JSON ({e}):\n{text}"))
}

fn run_python_output(name: &str, args: &[&Path]) -> Output {
    let mut cmd = Command::new(python());
    cmd.arg(script(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Loopback only: no proxy may take the requests elsewhere.
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    let child = cmd.spawn().expect("run python");
    wait_bounded(child, Duration::from_secs(120), name)
}

/// Waits for a child at most `limit`, killing it past that.
fn wait_bounded(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            // SAFETY: kill(2) on our child's pid; at worst it already exited.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().expect("wait for child");
    let _ = tx.send(());
    assert!(
        out.status.code().is_some(),
        "{what} did not finish within {limit:?} (killed)\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `python3 -m http.server` serving a directory on 127.0.0.1, on a port the
/// kernel picks; killed on drop.
struct StaticServer {
    child: Child,
    url: String,
    log: PathBuf,
}

impl StaticServer {
    fn start(dir: &Path, log: PathBuf) -> StaticServer {
        let mut child = Command::new(python())
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .arg("--directory")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("server log file"))
            .spawn()
            .expect("start python3 -m http.server");
        // "Serving HTTP on 127.0.0.1 port 41235 (http://127.0.0.1:41235/) ..."
        let stdout = child.stdout.take().expect("server stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = StaticServer {
            child,
            url: String::new(),
            log,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("http.server did not start\n{}", server.logs()));
        let port: u16 = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        server.url = format!("http://127.0.0.1:{port}");
        server
    }

    fn logs(&self) -> String {
        format!(
            "http.server log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn blake3_hex(path: &Path) -> String {
    iroh_blobs::Hash::new(std::fs::read(path).expect("read file")).to_hex()
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new(python())
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())",
        ])
        .arg(path)
        .output()
        .expect("run python");
    check_success(&out);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// python-tuf's client downloads `target` from `server`, trusting `root`;
/// returns what it reported and the downloaded file.
fn python_download(
    node: &TestNode,
    server: &StaticServer,
    root: &Path,
    target: &str,
) -> (Value, PathBuf) {
    let dest = node.scratch(&format!("py-download-{}", target.replace('/', "_")));
    let _ = std::fs::remove_file(&dest);
    let out = run_python_output(
        "tuf_client.py",
        &[root, Path::new(&server.url), Path::new(target), &dest],
    );
    assert!(
        out.status.success(),
        "python-tuf could not download {target}:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("tuf_client.py printed bad JSON ({e}):\n{text}"));
    (report, dest)
}

#[test]
fn python_tuf_downloads_what_clive_exports() {
    let node = TestNode::new();
    node.ok(["name", "zone", "create", "release"]);
    let app = node.scratch("myapp.bin");
    write_pseudo_random(&app, 300_007, 11);
    let helper = node.scratch("helper.sh");
    std::fs::write(&helper, b"#!/bin/sh\necho helper\n").unwrap();
    node.ok([
        "name".as_ref(),
        "publish".as_ref(),
        "release/myapp".as_ref(),
        app.as_os_str(),
    ]);
    node.ok([
        "name".as_ref(),
        "publish".as_ref(),
        "release/tools/helper".as_ref(),
        helper.as_os_str(),
    ]);
    let resolved = node.json(["name", "resolve", "release/myapp"]);
    let hash = resolved["hash"].as_str().expect("hash").to_owned();
    assert_eq!(hash, blake3_hex(&app));

    let mirror = node.scratch("mirror");
    node.ok([
        "name".as_ref(),
        "export".as_ref(),
        "release".as_ref(),
        mirror.as_os_str(),
    ]);
    let root = mirror.join("metadata").join("1.root.json");
    assert!(root.exists(), "export wrote no metadata/1.root.json");
    let server = StaticServer::start(&mirror, node.scratch("http.log"));

    // Stock python-tuf, untouched, verifies the whole metadata chain, finds
    // the target, downloads it and checks its length and sha256. The BLAKE3
    // content address rides in the signed `custom` field.
    let (report, got) = python_download(&node, &server, &root, "myapp");
    assert_eq!(
        std::fs::read(&got).unwrap(),
        std::fs::read(&app).unwrap(),
        "python-tuf downloaded other bytes"
    );
    assert_eq!(report["hashes"]["sha256"], sha256_hex(&app).as_str());
    assert_eq!(report["custom"]["blake3"], hash.as_str());
    assert_eq!(report["custom"]["kind"], "blob");
    assert_eq!(report["length"], 300_007);
    let (_, got) = python_download(&node, &server, &root, "tools/helper");
    assert_eq!(
        std::fs::read(&got).unwrap(),
        std::fs::read(&helper).unwrap()
    );

    // A new version, exported again over the same mirror: a fresh python-tuf
    // client starting from root v1 gets the new bytes.
    let app2 = node.scratch("myapp-2.bin");
    write_pseudo_random(&app2, 65_536, 12);
    node.ok([
        "name".as_ref(),
        "publish".as_ref(),
        "release/myapp".as_ref(),
        app2.as_os_str(),
    ]);
    let export2 = node.scratch("mirror-2");
    node.ok([
        "name".as_ref(),
        "export".as_ref(),
        "release".as_ref(),
        export2.as_os_str(),
    ]);
    drop(server);
    let server = StaticServer::start(&export2, node.scratch("http-2.log"));
    let (report2, got) = python_download(&node, &server, &root, "myapp");
    assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&app2).unwrap());
    assert_eq!(report2["custom"]["blake3"], blake3_hex(&app2).as_str());
    assert!(
        report2["versions"]["snapshot"].as_u64() > report["versions"]["snapshot"].as_u64(),
        "python-tuf did not see a newer snapshot version: {report} then {report2}"
    );
}

#[test]
fn clive_follows_a_python_tuf_repository() {
    let node = TestNode::new();
    let repo = node.scratch("pyrepo");
    let app = node.scratch("app-1.txt");
    write_pseudo_random(&app, 10_001, 21);
    let made = run_python(
        "tuf_repo.py",
        &[
            Path::new("init"),
            &repo,
            Path::new(&format!("app.txt={}", app.display())),
        ],
    );
    assert_eq!(
        made["files"]["app.txt"]["hashes"]["blake3"],
        blake3_hex(&app).as_str()
    );
    let server = StaticServer::start(&repo, node.scratch("http.log"));

    let root = repo.join("metadata").join("1.root.json");
    let out = node
        .cmd([
            "name".as_ref(),
            "follow".as_ref(),
            root.as_os_str(),
            "--mirror".as_ref(),
            server.url.as_ref(),
            "--as".as_ref(),
            "pyzone".as_ref(),
        ])
        .output()
        .expect("run clive-node name follow");
    assert!(
        out.status.success(),
        "name follow failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
    let out = node
        .cmd(["name", "resolve", "pyzone/app.txt"])
        .output()
        .unwrap();
    check_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        blake3_hex(&app)
    );
    let how = String::from_utf8_lossy(&out.stderr);
    assert!(
        how.contains("TUF"),
        "resolve does not say how it verified: {how}"
    );

    // The repository moves on: root v2 rotates the timestamp key, targets v2
    // changes app.txt and adds lib/tool.bin. `name refresh` takes all of it.
    let app2 = node.scratch("app-2.txt");
    write_pseudo_random(&app2, 4_096, 22);
    let tool = node.scratch("tool.bin");
    write_pseudo_random(&tool, 777, 23);
    let updated = run_python(
        "tuf_repo.py",
        &[
            Path::new("update"),
            &repo,
            Path::new(&format!("app.txt={}", app2.display())),
            Path::new(&format!("lib/tool.bin={}", tool.display())),
        ],
    );
    assert_eq!(updated["root"], 2);
    let out = node.cmd(["name", "refresh", "pyzone"]).output().unwrap();
    assert!(
        out.status.success(),
        "name refresh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
    let resolved = node.json(["name", "resolve", "pyzone/app.txt"]);
    assert_eq!(resolved["hash"], blake3_hex(&app2).as_str());
    assert_eq!(resolved["verified"]["root"], 2);
    assert_eq!(resolved["verified"]["targets"], 2);
    assert_eq!(resolved["overridden"], false);
    let resolved = node.json(["name", "resolve", "pyzone/lib/tool.bin"]);
    assert_eq!(resolved["hash"], blake3_hex(&tool).as_str());

    // Both versions of app.txt are in its history.
    let history = node.ok(["name", "history", "pyzone/app.txt"]);
    assert!(
        history.contains(&blake3_hex(&app)) && history.contains(&blake3_hex(&app2)),
        "history lacks a version:\n{history}"
    );
}
