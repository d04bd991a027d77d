//! The daemon and its control socket, through real processes: the same
//! commands give the same output through a daemon and in-process; the
//! socket is private; `stop`, SIGTERM and SIGINT stop it cleanly; hostile
//! clients get errors and the daemon keeps serving.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    io::{Read, Write},
    os::unix::{
        fs::{FileTypeExt, PermissionsExt, symlink},
        net::UnixStream,
    },
    process::{Command, Stdio},
    time::Duration,
};

use clive_tests::{Agent, TestNode, check_success, ssh_keygen_key};

/// How long any single wait in these tests may take.
const WAIT: Duration = Duration::from_secs(60);

/// Exit code, standard output and standard error of `clive-node ARGS` run in
/// the node's root directory, with `stdin` as its standard input.
fn run(node: &TestNode, args: &[&str], stdin: Option<&[u8]>) -> (Option<i32>, String, String) {
    let mut cmd = node.cmd(args);
    cmd.current_dir(node.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("run clive-node");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(bytes).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for clive-node");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Replaces what legitimately differs between two homes: their directory,
/// times, the ids of certificates (which hold a random nonce) and of zones
/// (random), and zone tickets (which hold the node's addresses).
/// `text` with the digits after each of `keys` replaced by `$SECS`.
fn mask_seconds(text: &str, keys: &[&str]) -> String {
    let mut out = text.to_owned();
    for key in keys {
        let mut masked = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(key) {
            let (head, tail) = rest.split_at(at + key.len());
            masked.push_str(head);
            let digits = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits > 0 {
                masked.push_str("$SECS");
            }
            rest = &tail[digits..];
        }
        masked.push_str(rest);
        out = masked;
    }
    out
}

fn normalize(node: &TestNode, text: &str, ids: &[String]) -> String {
    let mut text = text.replace(&node.root().display().to_string(), "$ROOT");
    for id in ids {
        text = text.replace(id.as_str(), "$ID").replace(&id[..16], "$ID");
    }
    let text: String = text
        .split_inclusive(|c: char| c.is_whitespace() || c == '"')
        .map(|word| match word.strip_prefix("clivezone1") {
            Some(rest) => {
                let end = rest.trim_end_matches(|c: char| c.is_whitespace() || c == '"');
                format!("$TICKET{}", &rest[end.len()..])
            }
            None => word.to_owned(),
        })
        .collect();
    // Seconds since the epoch in JSON (`"at": 1796175543`): the two homes
    // publish a moment apart, at times a second apart.
    let text = mask_seconds(&text, &["\"at\": ", "\"expires\": "]);
    // RFC 3339 seconds: 2026-11-22T10:00:00Z
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let window = bytes.get(i..i + 20);
        let is_time = window.is_some_and(|w| {
            w.iter().enumerate().all(|(j, b)| match j {
                4 | 7 => *b == b'-',
                10 => *b == b'T',
                13 | 16 => *b == b':',
                19 => *b == b'Z',
                _ => b.is_ascii_digit(),
            })
        });
        if is_time {
            out.push_str("$TIME");
            i += 20;
        } else {
            let c = text[i..].chars().next().expect("a char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The ids of the node's certificates and zones.
fn ids(node: &TestNode) -> Vec<String> {
    let mut ids = Vec::new();
    for list in [
        node.json(["trust", "ls"]),
        node.json(["name", "zone", "ls"]),
    ] {
        let list = list.as_array().expect("a list");
        ids.extend(
            list.iter()
                .map(|c| c["id"].as_str().expect("an id").to_owned()),
        );
    }
    ids
}

/// The same files in each node's root.
fn make_data(node: &TestNode) {
    let root = node.root();
    let data = root.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("a.txt"), b"hello, world\n").unwrap();
    std::fs::write(data.join("sub/b.bin"), vec![7u8; 300_000]).unwrap();
    std::fs::write(data.join("run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(data.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    symlink("a.txt", data.join("link")).unwrap();
}

#[test]
fn the_same_commands_print_the_same_through_a_daemon_and_in_process() {
    // Both homes hold the same key, so identities match too.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id_ed25519");
    ssh_keygen_key(&["-t", "ed25519", "-N", "", "-C", "twin"], &key);
    let subject_key = keys.path().join("bob");
    ssh_keygen_key(&["-t", "ed25519", "-N", "", "-C", "bob"], &subject_key);
    let subject = std::fs::read_to_string(keys.path().join("bob.pub")).unwrap();
    let subject = subject.trim();

    let (served, local) = (TestNode::uninitialised(), TestNode::uninitialised());
    for node in [&served, &local] {
        node.ok(["init".as_ref(), "--ssh-key".as_ref(), key.as_os_str()]);
        make_data(node);
        std::fs::copy(keys.path().join("bob.pub"), node.root().join("bob.pub")).unwrap();
        // Bob's private key, to co-sign a root offline (`name root sign --key`).
        std::fs::copy(&subject_key, node.root().join("bob.key")).unwrap();
    }
    let daemon = served.start_daemon();

    let stdin = b"from standard input\n".repeat(10_000);
    // Each step: the command line ($BOB: the subject's key line), its
    // standard input, and the exit code expected of both.
    let steps: &[(&str, Option<&[u8]>, i32)] = &[
        ("id", None, 0),
        ("--json id", None, 0),
        ("add data --pin tree", None, 0),
        ("add data/a.txt data/sub", None, 0),
        ("--json add data/a.txt", None, 0),
        ("add -", Some(&stdin), 0),
        ("add - --pin piped", Some(b"pinned input"), 0),
        ("add missing-file", None, 1),
        ("add data data/a.txt --pin two", None, 1),
        ("ls tree", None, 0),
        ("ls tree/sub", None, 0),
        ("--json ls tree", None, 0),
        ("cat tree/a.txt", None, 0),
        ("cat piped", None, 0),
        ("cat tree/sub/b.bin", None, 0),
        ("cat nope", None, 1),
        ("ls tree/a.txt", None, 1),
        ("export tree out", None, 0),
        ("export tree out", None, 1),
        ("export tree out --force", None, 0),
        ("--json export tree/run.sh run-copy", None, 0),
        ("pin add a tree/a.txt", None, 0),
        ("pin ls", None, 0),
        ("--json pin ls", None, 0),
        ("pin rm a", None, 0),
        ("pin rm a", None, 1),
        ("pin add x nope", None, 1),
        ("gc --dry-run", None, 0),
        ("gc", None, 0),
        ("--json gc", None, 0),
        ("fsck", None, 0),
        ("--json fsck", None, 0),
        ("trust roots ls", None, 0),
        ("trust grant $BOB --cap fetch -o bob.cert", None, 0),
        ("trust grant $BOB --cap fetch --expires soon", None, 1),
        ("trust ls", None, 0),
        ("trust show bob.cert", None, 0),
        ("trust verify --peer bob.pub --cap fetch", None, 0),
        ("trust verify --peer $BOB --cap push", None, 1),
        ("--json trust verify --peer $BOB --cap push", None, 1),
        ("trust roots add bob.pub --name bob", None, 0),
        ("trust roots ls", None, 0),
        ("trust roots rm bob.pub", None, 0),
        ("trust revoke bob.cert -o bob.revoked", None, 0),
        ("trust ls", None, 0),
        ("trust import no-such-file", None, 1),
        ("peers add $BOB", None, 2),
        ("peers ls", None, 0),
        ("--json peers ls", None, 0),
        ("fsck", None, 0),
        ("name zone create rel", None, 0),
        ("name zone create rel", None, 1),
        ("name zone ls", None, 0),
        ("name zone show rel", None, 0),
        ("name zone show nope", None, 1),
        ("name publish rel/app data", None, 0),
        (
            "name publish rel/docs/a data/a.txt rel/docs/run data/run.sh",
            None,
            0,
        ),
        ("name publish rel/x data/a.txt rel/y", None, 1),
        ("name publish other/x data/a.txt", None, 1),
        ("name resolve rel/app", None, 0),
        ("name resolve rel/docs/run", None, 0),
        ("name resolve rel/nope", None, 1),
        ("name history rel/app", None, 0),
        ("cat rel/app/a.txt", None, 0),
        ("ls rel/app/sub", None, 0),
        ("cat rel/docs/a", None, 0),
        ("export rel/app named-out", None, 0),
        ("pin add rel rel/app/sub", None, 0),
        ("ls rel/b.bin", None, 1),
        ("--json ls rel/b.bin", None, 1),
        ("ls pin:rel", None, 0),
        ("cat name:rel/app/a.txt", None, 0),
        ("pin rm rel", None, 0),
        ("name override rel/app data/a.txt", None, 0),
        ("name resolve rel/app", None, 0),
        ("name override rel/app --clear", None, 0),
        ("name unpublish rel/docs/run", None, 0),
        ("name history rel/docs/run", None, 0),
        ("name export rel repo", None, 0),
        ("--json name zone show rel", None, 0),
        ("name delegate rel beta/ --to bob.pub", None, 0),
        ("name delegate nope beta/ --to bob.pub", None, 1),
        // Bob's key as the root: the new root needs his signature too, so
        // it is written to -o for him.
        ("name rotate rel root --key bob.pub -o rot.json", None, 0),
        ("name root commit rel rot.json", None, 1),
        ("name root sign rot.json --key bob.key", None, 0),
        ("name root commit rel rot.json", None, 0),
        ("name zone show rel", None, 0),
        ("gc", None, 0),
    ];
    for (line, input, code) in steps {
        let args: Vec<&str> = line
            .split(' ')
            .map(|word| if word == "$BOB" { subject } else { word })
            .collect();
        let a = run(&served, &args, *input);
        let b = run(&local, &args, *input);
        let (ids_a, ids_b) = (ids(&served), ids(&local));
        let norm_a = (
            a.0,
            normalize(&served, &a.1, &ids_a),
            normalize(&served, &a.2, &ids_a),
        );
        let norm_b = (
            b.0,
            normalize(&local, &b.1, &ids_b),
            normalize(&local, &b.2, &ids_b),
        );
        assert_eq!(
            norm_a,
            norm_b,
            "`{line}` differs (left: daemon, right: in-process)\n{}",
            daemon.logs()
        );
        assert_eq!(a.0, Some(*code), "`{line}`: {norm_a:?}");
        if *code == 0 && line.starts_with("name resolve") {
            // How the name was verified goes to standard error.
            assert!(
                a.2.contains("verified") || a.2.contains("OVERRIDDEN"),
                "`{line}`: {}",
                a.2
            );
        } else if *code == 0 {
            assert!(a.2.is_empty(), "`{line}` wrote to stderr: {}", a.2);
        } else {
            assert!(a.2.starts_with("error") || *code == 1, "`{line}`: {}", a.2);
        }
    }
    // Files written by the daemon landed where the client asked.
    for name in [
        "out/a.txt",
        "run-copy",
        "bob.cert",
        "bob.cert.sig",
        "bob.revoked",
        "named-out/a.txt",
        "repo/metadata/root.json",
        "rot.json",
    ] {
        assert!(served.root().join(name).exists(), "{name}");
        assert!(local.root().join(name).exists(), "{name}");
    }
    // The daemon did serve them: it still owns its home.
    let status = served.json(["status"]);
    assert_eq!(status["running"], true, "{status}");
    assert_eq!(status["daemon"]["pid"], daemon.pid(), "{status}");
}

#[test]
fn the_socket_is_private_and_stop_ends_the_daemon_and_removes_it() {
    let node = TestNode::new();
    let mut daemon = node.start_daemon();
    let socket = node.home().join("control.sock");
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let banner = std::fs::read_to_string(node.scratch("daemon-0.out")).unwrap_or_default();
    assert!(
        banner.starts_with("clive-node running: endpoint id ") || banner.is_empty(),
        "{banner}"
    );

    let status = node.ok(["status"]);
    assert!(
        status.contains(&format!("running (process {}", daemon.pid())),
        "{status}"
    );
    let id = node.json(["id"]);
    assert!(
        status.contains(id["endpoint_id"].as_str().unwrap()),
        "{status}"
    );

    // A second daemon on the same home is told who holds it.
    let err = node.fails(["start", "--bind", "127.0.0.1:0"]);
    assert!(
        err.contains(&format!("in use by process {}", daemon.pid())),
        "{err}"
    );

    let out = node.ok(["stop"]);
    assert_eq!(
        out,
        format!("stopped clive-node (process {})\n", daemon.pid())
    );
    // `stop` returns once the daemon is gone: socket removed, home released.
    assert!(!socket.exists(), "the socket is still there");
    let status = daemon.wait_exit(WAIT);
    assert!(status.success(), "{status}\n{}", daemon.logs());
    node.ok(["id"]);

    let status = node.ok(["status"]);
    assert!(status.starts_with("status     not running\n"), "{status}");
    assert_eq!(node.json(["status"])["running"], false);
    let err = node.fails(["stop"]);
    assert!(err.contains("no daemon is running"), "{err}");
    let err = node.fails(["status", "--wait", "200ms"]);
    assert!(err.contains("no daemon answered within 200ms"), "{err}");
}

#[test]
fn sigterm_and_sigint_stop_the_daemon_cleanly() {
    let node = TestNode::new();
    let file = node.scratch("kept.txt");
    std::fs::write(&file, b"kept across restarts\n").unwrap();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut daemon = node.start_daemon();
        node.ok([
            "add".as_ref(),
            file.as_os_str(),
            "--pin".as_ref(),
            "kept".as_ref(),
        ]);
        daemon.signal(signal);
        let status = daemon.wait_exit(WAIT);
        assert!(status.success(), "{status}\n{}", daemon.logs());
        assert!(!node.home().join("control.sock").exists());
        assert!(daemon.logs().contains("stopped"), "{}", daemon.logs());
    }
    // In-process again: what the daemon stored is there and sound.
    assert_eq!(node.ok(["cat", "kept"]), "kept across restarts\n");
    let fsck = node.json(["fsck"]);
    assert_eq!(fsck["damaged"].as_array().unwrap().len(), 0, "{fsck}");
}

#[test]
fn a_stale_socket_is_ignored_and_replaced() {
    let node = TestNode::new();
    let socket = node.home().join("control.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    // Nothing listens: commands run in-process.
    node.ok(["id"]);
    assert!(node.ok(["status"]).contains("not running"));
    let mut daemon = node.start_daemon();
    assert_eq!(
        std::fs::symlink_metadata(&socket)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    node.ok(["stop"]);
    assert!(daemon.wait_exit(WAIT).success());
}

/// Writes one frame: length, kind, payload.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(payload);
    out
}

/// Reads one frame; `None` at the end of the connection.
fn read_frame(stream: &mut UnixStream) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    if stream.read_exact(&mut header).is_err() {
        return None;
    }
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    assert!((1..=16 << 20).contains(&len), "frame length {len}");
    let mut payload = vec![0u8; len - 1];
    stream.read_exact(&mut payload).expect("a whole frame");
    Some((header[4], payload))
}

fn connect(node: &TestNode) -> UnixStream {
    let stream = UnixStream::connect(node.home().join("control.sock")).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream
}

/// Sends `bytes` and returns the error the daemon answers with; the daemon
/// then closes the connection.
fn error_for(node: &TestNode, bytes: &[u8]) -> String {
    let mut stream = connect(node);
    stream.write_all(bytes).unwrap();
    let mut kinds = Vec::new();
    let last = loop {
        match read_frame(&mut stream) {
            Some((8, payload)) => break payload,
            Some((kind, _)) => kinds.push(kind),
            None => panic!("no ERROR frame, got kinds {kinds:?}"),
        }
    };
    let value: serde_json::Value = serde_json::from_slice(&last).expect("JSON error");
    assert!(
        read_frame(&mut stream).is_none(),
        "the connection stays open"
    );
    value["message"].as_str().expect("a message").to_owned()
}

const HELLO: &[u8] = br#"{"protocol":"clive-control","version":4}"#;

#[test]
fn hostile_clients_get_errors_and_the_daemon_keeps_serving() {
    let node = TestNode::new();
    let mut daemon = node.start_daemon();

    // An idle connection does not block anyone.
    let _idle = connect(&node);
    node.ok(["id"]);

    let err = error_for(&node, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(err.contains("exceeds the limit"), "{err}");
    let err = error_for(&node, &[0xff, 0xff, 0xff, 0xff, 1]);
    assert!(err.contains("exceeds the limit"), "{err}");
    let err = error_for(&node, &[0, 0, 0, 0, 1]);
    assert!(err.contains("empty frame"), "{err}");
    let err = error_for(&node, &frame(77, b"?"));
    assert!(err.contains("unknown frame kind 77"), "{err}");
    let err = error_for(&node, &frame(2, br#"{"cwd":"/","request":{"op":"id"}}"#));
    assert!(err.contains("expected HELLO"), "{err}");
    let err = error_for(&node, &frame(1, b"\xff\xfe not json"));
    assert!(err.contains("malformed hello"), "{err}");
    let err = error_for(
        &node,
        &frame(1, br#"{"protocol":"clive-control","version":99}"#),
    );
    assert!(
        err.contains("version 4, not clive-control version 99"),
        "{err}"
    );
    let mut bad_request = frame(1, HELLO);
    bad_request.extend(frame(2, br#"{"cwd":"/","request":{"op":"rm -rf"}}"#));
    let err = error_for(&node, &bad_request);
    assert!(err.contains("malformed request"), "{err}");
    let mut deep = frame(1, HELLO);
    deep.extend(frame(2, &b"[".repeat(1 << 20)));
    let err = error_for(&node, &deep);
    assert!(err.contains("malformed request"), "{err}");
    // Data where none is expected: refused, unless the call was quicker.
    {
        let mut stream = connect(&node);
        let mut stray = frame(1, HELLO);
        stray.extend(frame(
            2,
            br#"{"cwd":"/","request":{"op":"store","store_op":"fsck"}}"#,
        ));
        stray.extend(frame(3, b"unasked-for input"));
        stream.write_all(&stray).unwrap();
        let mut last = None;
        while let Some((kind, payload)) = read_frame(&mut stream) {
            last = Some((kind, String::from_utf8_lossy(&payload).into_owned()));
        }
        match last {
            Some((8, message)) => assert!(message.contains("unexpected Data frame"), "{message}"),
            Some((7, reply)) => assert!(reply.contains("fsck"), "{reply}"),
            other => panic!("neither an error nor a reply: {other:?}"),
        }
    }

    // A client that leaves in the middle of its standard input adds nothing.
    {
        let mut stream = connect(&node);
        let mut bytes = frame(1, HELLO);
        bytes.extend(frame(
            2,
            br#"{"cwd":"/","request":{"op":"store","store_op":"add","paths":["-"],"pin":"half"}}"#,
        ));
        bytes.extend(frame(3, &[1u8; 1000]));
        stream.write_all(&bytes).unwrap();
        let (kind, _) = read_frame(&mut stream).expect("hello back");
        assert_eq!(kind, 1);
    }
    // A frame announced but never completed, then gone.
    {
        let mut stream = connect(&node);
        stream.write_all(&[0, 0, 1, 0, 1, b'{']).unwrap();
    }

    // Still serving, and nothing was pinned by the departed client.
    let pins = node.ok(["pin", "ls"]);
    assert!(!pins.contains("half"), "{pins}");
    node.ok(["status"]);
    node.ok(["stop"]);
    assert!(daemon.wait_exit(WAIT).success(), "{}", daemon.logs());
}

#[test]
fn a_long_call_does_not_block_others() {
    let node = TestNode::new();
    let mut daemon = node.start_daemon();
    // `add -` runs as long as its standard input stays open.
    let mut adding = node
        .cmd(["add", "-", "--pin", "slow"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = adding.stdin.take().unwrap();
    pipe.write_all(b"first part, ").unwrap();
    pipe.flush().unwrap();
    assert!(node.ok(["status"]).contains("running (process"));
    node.ok(["id"]);
    pipe.write_all(b"second part").unwrap();
    drop(pipe);
    let out = adding.wait_with_output().unwrap();
    check_success(&out);
    assert_eq!(node.ok(["cat", "slow"]), "first part, second part");
    node.ok(["stop"]);
    assert!(daemon.wait_exit(WAIT).success());
}

#[test]
fn the_daemon_signs_with_a_key_unlocked_once_at_start() {
    let node = TestNode::with_encrypted_key("s3cret pass");
    let subject = TestNode::new().json(["id"])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();

    // A wrong passphrase stops the start.
    let out = node
        .cmd(["start", "--bind", "127.0.0.1:0"])
        .env("CLIVE_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!node.home().join("control.sock").exists());

    let mut daemon = node.start_daemon_with(|cmd| {
        cmd.env("CLIVE_PASSPHRASE", "s3cret pass");
    });
    // The client has no passphrase; the daemon does.
    let cert = node.json(["trust", "grant", &subject, "--cap", "fetch"]);
    assert_eq!(cert["relation"], "issued");
    node.ok(["stop"]);
    assert!(daemon.wait_exit(WAIT).success());
}

#[test]
fn agent_signing_uses_the_clients_ssh_agent() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(dir.path());
    let socket = &agent.socket;

    // The daemon has no agent; the client's signs.
    let node = TestNode::new();
    let out = Command::new("ssh-add")
        .arg(node.home().join("id_ed25519"))
        .env("SSH_AUTH_SOCK", socket)
        .output()
        .unwrap();
    check_success(&out);
    let mut daemon = node.start_daemon_with(|cmd| {
        cmd.env_remove("SSH_AUTH_SOCK");
    });
    let subject = TestNode::new().json(["id"])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = node
        .cmd(["trust", "grant", &subject, "--cap", "fetch", "--agent"])
        .env("SSH_AUTH_SOCK", socket)
        .output()
        .unwrap();
    check_success(&out);
    let out = node
        .cmd(["trust", "grant", &subject, "--cap", "fetch", "--agent"])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SSH_AUTH_SOCK is not set"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.ok(["stop"]);
    assert!(daemon.wait_exit(WAIT).success());
}

#[test]
fn a_root_awaiting_co_signers_is_written_in_the_clients_directory() {
    let node = TestNode::new();
    let cosigner = TestNode::new();
    // The daemon runs elsewhere than the client: a default FILE is the
    // client's, as every other relative path is.
    let daemon_dir = tempfile::tempdir().unwrap();
    let _daemon = node.start_daemon_with(|cmd| {
        cmd.current_dir(daemon_dir.path());
    });
    let client_dir = node.scratch("client");
    std::fs::create_dir_all(&client_dir).unwrap();
    let cosigner_key = cosigner.home().join("id_ed25519.pub");
    let in_client = |args: &[&str]| {
        let out = node
            .cmd(args)
            .current_dir(&client_dir)
            .output()
            .expect("run clive-node");
        check_success(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let created = in_client(&[
        "name",
        "zone",
        "create",
        "rel",
        "--key",
        cosigner_key.to_str().unwrap(),
        "--threshold",
        "2",
    ]);
    assert!(
        created.contains("`clive-node name root sign rel.1.root.json`"),
        "{created}"
    );
    let first = client_dir.join("rel.1.root.json");
    assert!(first.is_file(), "{created}");
    assert!(!daemon_dir.path().join("rel.1.root.json").exists());
    cosigner.ok(["name", "root", "sign", first.to_str().unwrap()]);
    in_client(&["name", "root", "commit", "rel", "rel.1.root.json"]);

    let own_key = node.home().join("id_ed25519.pub");
    let rotated = in_client(&[
        "name",
        "rotate",
        "rel",
        "timestamp",
        "--key",
        own_key.to_str().unwrap(),
    ]);
    assert!(rotated.contains("rel.2.root.json"), "{rotated}");
    assert!(client_dir.join("rel.2.root.json").is_file(), "{rotated}");
    assert!(!daemon_dir.path().join("rel.2.root.json").exists());
}
