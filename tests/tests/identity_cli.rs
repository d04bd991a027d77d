//! Node identity through the real binary, checked against real `ssh-keygen`.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::os::unix::fs::PermissionsExt;

use clive_tests::{TestNode, ssh_keygen_key, tool};

#[test]
fn id_matches_ssh_keygen() {
    let node = TestNode::new();
    let key = node.home().join("id_ed25519");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let id = node.ok(["id"]);
    let lines: Vec<&str> = id.lines().collect();
    assert_eq!(lines.len(), 3, "{id}");
    assert_eq!(
        lines[0],
        tool(
            "ssh-keygen",
            ["-y".as_ref(), "-f".as_ref(), key.as_os_str()]
        )
        .trim()
    );
    assert_eq!(
        lines[1],
        tool(
            "ssh-keygen",
            ["-l".as_ref(), "-f".as_ref(), key.as_os_str()]
        )
        .trim()
    );
    assert_eq!(lines[2].len(), 64);
    assert!(
        lines[2]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let json = node.json(["id"]);
    assert_eq!(json["public_key"], lines[0]);
    assert_eq!(json["fingerprint_line"], lines[1]);
    assert_eq!(json["endpoint_id"], lines[2]);
    assert!(lines[1].contains(json["fingerprint"].as_str().unwrap()));

    let err = node.fails(["init"]);
    assert!(err.contains("already holds a node"), "{err}");
}

#[test]
fn init_imports_an_encrypted_key_with_the_passphrase_from_the_environment() {
    let node = TestNode::uninitialised();
    let key = node.scratch("id_ed25519");
    ssh_keygen_key(
        &["-t", "ed25519", "-N", "correct horse", "-C", "me@laptop"],
        &key,
    );
    let expected = tool(
        "ssh-keygen",
        ["-l".as_ref(), "-f".as_ref(), key.as_os_str()],
    );

    let err = node.fails(["init".as_ref(), "--ssh-key".as_ref(), key.as_os_str()]);
    assert!(
        err.contains("passphrase") && err.contains("CLIVE_PASSPHRASE"),
        "{err}"
    );
    let out = node
        .cmd(["init".as_ref(), "--ssh-key".as_ref(), key.as_os_str()])
        .env("CLIVE_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(
        !node.home().join("id_ed25519").exists(),
        "a failed init left a key"
    );

    let out = node
        .cmd(["init".as_ref(), "--ssh-key".as_ref(), key.as_os_str()])
        .env("CLIVE_PASSPHRASE", "correct horse")
        .output()
        .unwrap();
    clive_tests::check_success(&out);
    let id = node.ok(["id"]);
    assert_eq!(id.lines().nth(1).unwrap(), expected.trim());
    assert_eq!(
        std::fs::read(node.home().join("id_ed25519")).unwrap(),
        std::fs::read(&key).unwrap(),
        "the imported key is kept as it was, still encrypted"
    );
}

#[test]
fn init_refuses_other_key_types_and_missing_files_clearly() {
    let node = TestNode::uninitialised();
    let rsa = node.scratch("id_rsa");
    ssh_keygen_key(&["-t", "rsa", "-b", "2048", "-N", ""], &rsa);
    let err = node.fails(["init".as_ref(), "--ssh-key".as_ref(), rsa.as_os_str()]);
    assert!(err.contains("ssh-rsa") && err.contains("ed25519"), "{err}");
    let ecdsa = node.scratch("id_ecdsa");
    ssh_keygen_key(&["-t", "ecdsa", "-N", ""], &ecdsa);
    let err = node.fails(["init".as_ref(), "--ssh-key".as_ref(), ecdsa.as_os_str()]);
    assert!(err.contains("ecdsa") && err.contains("ed25519"), "{err}");
    let err = node.fails(["init", "--ssh-key", "/nonexistent/id_ed25519"]);
    assert!(err.contains("/nonexistent/id_ed25519"), "{err}");
    let garbage = node.scratch("garbage");
    std::fs::write(&garbage, b"-----BEGIN NOTHING-----\n").unwrap();
    let err = node.fails(["init".as_ref(), "--ssh-key".as_ref(), garbage.as_os_str()]);
    assert!(err.contains("garbage"), "{err}");
    assert!(!node.home().join("id_ed25519").exists());
}
