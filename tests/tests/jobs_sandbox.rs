//! Running jobs through the real supervisor (the built `clive-node` binary)
//! on real processes: exact environment, logs and limits, exit codes and
//! signals, refused levels and protocols, a C compiler under the sandbox,
//! and staging inputs and collecting outputs around a run. Kills and
//! confinement: `jobs_sandbox_escape.rs`.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

mod jobs_sandbox_support;

use std::{os::fd::OwnedFd, path::Path, process::Stdio, time::Duration};

use clive_node::jobs::{
    collect,
    process::{LogLen, ProcessError, run},
    result::Exit,
    sandbox::{self, SandboxLevel},
    stage, supervisor,
};
use clive_tests::clive_bin;
use jobs_sandbox_support::{Job, PATH, has, ok, run_job, sh};
use tokio::sync::watch;

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
        // Under landlock /tmp is not writable. The CLI gives every job
        // `TMPDIR=.`; this run does not go through the CLI, so the job sets
        // its TMPDIR into its own directory itself.
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
