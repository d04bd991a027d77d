//! Certificates through the real binary, checked against real OpenSSH:
//! `ssh-keygen -Y verify/sign`, `ssh-agent` and `ssh-add`.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{path::Path, process::Command};

use clive_tests::{Agent, TestNode, check_success, ssh_keygen_key, tool};

fn endpoint_id(node: &TestNode) -> String {
    node.json(["id"])["endpoint_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `ssh-keygen -Y verify` of NAME with NAME.sig against `principal key`.
fn keygen_verify(principal: &str, key: &str, body: &Path) -> std::process::Output {
    let dir = body.parent().unwrap();
    let signers = dir.join(format!("allowed_signers.{principal}"));
    std::fs::write(&signers, format!("{principal} {key}\n")).unwrap();
    let mut sig = body.as_os_str().to_owned();
    sig.push(".sig");
    Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args(["-I", principal, "-n", "clive-cert", "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(body).unwrap())
        .output()
        .unwrap()
}

/// `ssh-keygen -Y sign -n NAMESPACE -f KEY FILE`, writing FILE.sig.
fn keygen_sign(key: &Path, namespace: &str, file: &Path) {
    tool(
        "ssh-keygen",
        [
            "-Y".as_ref(),
            "sign".as_ref(),
            "-q".as_ref(),
            "-n".as_ref(),
            namespace.as_ref(),
            "-f".as_ref(),
            key.as_os_str(),
            file.as_os_str(),
        ],
    );
}

#[test]
fn delegation_chain_verifies_with_ssh_keygen_and_revocation_refuses_it() {
    let (a, b, c) = (TestNode::new(), TestNode::new(), TestNode::new());
    let (a_key, b_key, c_key) = (a.public_key(), b.public_key(), c.public_key());
    let ab = a.scratch("ab.cert");
    a.ok([
        "trust".as_ref(),
        "grant".as_ref(),
        b_key.as_ref(),
        "--cap".as_ref(),
        "fetch,push".as_ref(),
        "--delegate".as_ref(),
        "1".as_ref(),
        "-o".as_ref(),
        ab.as_os_str(),
    ]);
    let out = keygen_verify("alice", &a_key, &ab);
    check_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Good \"clive-cert\" signature"));

    // B holds it, and delegates fetch to C, naming C by endpoint id.
    b.ok(["trust".as_ref(), "import".as_ref(), ab.as_os_str()]);
    let held = b.json(["trust", "ls"]);
    assert_eq!(held[0]["relation"], "held");
    let bc = b.scratch("bc.cert");
    let c_id = endpoint_id(&c);
    b.ok([
        "trust".as_ref(),
        "grant".as_ref(),
        c_id.as_ref(),
        "--cap".as_ref(),
        "fetch".as_ref(),
        "-o".as_ref(),
        bc.as_os_str(),
    ]);
    check_success(&keygen_verify("bob", &b_key, &bc));

    a.ok(["trust".as_ref(), "import".as_ref(), bc.as_os_str()]);
    let verdict = a.json(["trust", "verify", "--peer", &c_key, "--cap", "fetch"]);
    assert_eq!(verdict["allowed"], true);
    assert_eq!(verdict["chain"].as_array().unwrap().len(), 2);
    // C's fingerprint names it too, now that A knows C's key.
    let c_fp = c.json(["id"])["fingerprint"].as_str().unwrap().to_owned();
    let text = a.ok(["trust", "verify", "--peer", &c_fp, "--cap", "fetch"]);
    assert!(
        text.contains("link 2:") && text.contains("allowed"),
        "{text}"
    );

    let out = a
        .cmd(["trust", "verify", "--peer", &c_key, "--cap", "push"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("grants fetch, not push"), "{text}");

    // Revoking the first link by the file it was written to.
    let revocation = a.scratch("ab.revoked");
    let revoked = a.json([
        "trust".as_ref(),
        "revoke".as_ref(),
        ab.as_os_str(),
        "-o".as_ref(),
        revocation.as_os_str(),
    ]);
    assert!(revoked["revoked_by"].is_string());
    let out = a
        .cmd(["trust", "verify", "--peer", &c_key, "--cap", "fetch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("link 1") && text.contains("revoked by"),
        "{text}"
    );

    // The revocation travels as a file: B takes it in and sees its own
    // certificate revoked; C, who never had the certificate, is told so.
    let imported = b.json(["trust".as_ref(), "import".as_ref(), revocation.as_os_str()]);
    assert_eq!(imported["kind"], "revocation");
    assert_eq!(imported["certificate_known"], true);
    let held = b.json(["trust", "ls"]);
    let ab_id = revoked["id"].as_str().unwrap();
    let entry = held
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == ab_id)
        .unwrap();
    assert!(entry["revoked_by"].is_string(), "{entry}");
    let text = c.ok(["trust".as_ref(), "import".as_ref(), revocation.as_os_str()]);
    assert!(text.contains("does not have yet"), "{text}");
    // A revocation altered in transit is refused.
    let forged = std::fs::read_to_string(&revocation)
        .unwrap()
        .replace("revoked-at 2026", "revoked-at 2027");
    std::fs::write(&revocation, forged).unwrap();
    let err = c.fails(["trust".as_ref(), "import".as_ref(), revocation.as_os_str()]);
    assert!(err.contains("signature"), "{err}");
}

#[test]
fn a_body_signed_by_ssh_keygen_is_imported_and_a_tampered_one_refused() {
    let (a, b) = (TestNode::new(), TestNode::new());
    let b_key = b.public_key();
    let template = a.scratch("template");
    a.ok([
        "trust".as_ref(),
        "grant".as_ref(),
        b_key.as_ref(),
        "--cap".as_ref(),
        "exec".as_ref(),
        "-o".as_ref(),
        template.as_os_str(),
    ]);
    // A new body (another nonce), signed by stock ssh-keygen with A's key.
    let body = std::fs::read_to_string(&template).unwrap();
    let nonce_line = body.lines().find(|l| l.starts_with("nonce ")).unwrap();
    let body = body.replace(nonce_line, "nonce 00112233445566778899aabbccddeeff");
    let file = a.scratch("by-ssh-keygen");
    std::fs::write(&file, &body).unwrap();
    keygen_sign(&a.home().join("id_ed25519"), "clive-cert", &file);
    let imported = a.json(["trust".as_ref(), "import".as_ref(), file.as_os_str()]);
    assert_eq!(imported["capabilities"], "exec");
    assert_eq!(imported["relation"], "issued");
    let verdict = a.json(["trust", "verify", "--peer", &b_key, "--cap", "exec"]);
    assert_eq!(verdict["allowed"], true);

    // Tampering with the body breaks the signature.
    std::fs::write(
        &file,
        body.replace("capabilities exec", "capabilities exec,push"),
    )
    .unwrap();
    let err = a.fails(["trust".as_ref(), "import".as_ref(), file.as_os_str()]);
    assert!(err.contains("signature"), "{err}");
    // Signed under another namespace: refused with its own message.
    std::fs::write(&file, &body).unwrap();
    std::fs::remove_file(a.scratch("by-ssh-keygen.sig")).unwrap();
    keygen_sign(&a.home().join("id_ed25519"), "file", &file);
    let err = a.fails(["trust".as_ref(), "import".as_ref(), file.as_os_str()]);
    assert!(err.contains("namespace"), "{err}");
    // Garbage.
    std::fs::write(&file, b"\x00\x01 not a certificate").unwrap();
    let err = a.fails(["trust".as_ref(), "import".as_ref(), file.as_os_str()]);
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn signing_goes_through_a_real_ssh_agent() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(dir.path());
    let key = dir.path().join("id_ed25519");
    ssh_keygen_key(&["-t", "ed25519", "-N", "", "-C", "agent-key"], &key);
    let out = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .unwrap();
    check_success(&out);
    let pub_key = std::fs::read_to_string(dir.path().join("id_ed25519.pub")).unwrap();
    // The private key file is gone: only the agent can sign now.
    std::fs::remove_file(&key).unwrap();

    let node = TestNode::uninitialised();
    let pub_path = dir.path().join("id_ed25519.pub");
    node.ok(["init".as_ref(), "--ssh-key".as_ref(), pub_path.as_os_str()]);
    assert!(!node.home().join("id_ed25519").exists());
    let subject = TestNode::new().public_key();
    let cert = node.scratch("via-agent");
    let mut grant = node.cmd([
        "trust".as_ref(),
        "grant".as_ref(),
        subject.as_ref(),
        "--cap".as_ref(),
        "fetch".as_ref(),
        "-o".as_ref(),
        cert.as_os_str(),
    ]);
    let out = grant.env("SSH_AUTH_SOCK", &agent.socket).output().unwrap();
    check_success(&out);
    check_success(&keygen_verify("agent", pub_key.trim(), &cert));

    // --agent on a home that has its private key: the agent signs.
    let full = TestNode::new();
    let out = Command::new("ssh-add")
        .arg(full.home().join("id_ed25519"))
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .unwrap();
    check_success(&out);
    let cert2 = full.scratch("via-agent-flag");
    let out = full
        .cmd([
            "trust".as_ref(),
            "grant".as_ref(),
            subject.as_ref(),
            "--cap".as_ref(),
            "push".as_ref(),
            "--agent".as_ref(),
            "-o".as_ref(),
            cert2.as_os_str(),
        ])
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .unwrap();
    check_success(&out);
    check_success(&keygen_verify("full", &full.public_key(), &cert2));

    // Without an agent the error says what is missing.
    let out = node
        .cmd(["trust", "grant", &subject, "--cap", "fetch"])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SSH_AUTH_SOCK"));
}

#[test]
fn roots_live_in_an_allowed_signers_file_ssh_keygen_reads() {
    let (a, r, b) = (TestNode::new(), TestNode::new(), TestNode::new());
    let (r_key, b_key) = (r.public_key(), b.public_key());
    a.ok(["trust", "roots", "add", &r_key, "--name", "release-team"]);
    let roots = a.json(["trust", "roots", "ls"]);
    assert_eq!(roots.as_array().unwrap().len(), 2);
    assert_eq!(roots[0]["name"], "self");
    assert_eq!(roots[1]["name"], "release-team");

    // R grants B; A trusts R, so A accepts B.
    let rb = r.scratch("rb");
    r.ok([
        "trust".as_ref(),
        "grant".as_ref(),
        b_key.as_ref(),
        "--cap".as_ref(),
        "fetch".as_ref(),
        "-o".as_ref(),
        rb.as_os_str(),
    ]);
    a.ok(["trust".as_ref(), "import".as_ref(), rb.as_os_str()]);
    assert_eq!(
        a.json(["trust", "verify", "--peer", &b_key, "--cap", "fetch"])["allowed"],
        true
    );
    // The roots file is what ssh-keygen reads.
    let mut sig = rb.as_os_str().to_owned();
    sig.push(".sig");
    let out = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(a.home().join("allowed_signers"))
        .args(["-I", "release-team", "-n", "clive-cert", "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(&rb).unwrap())
        .output()
        .unwrap();
    check_success(&out);

    a.ok(["trust", "roots", "rm", &r_key]);
    let out = a
        .cmd(["trust", "verify", "--peer", &b_key, "--cap", "fetch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not a trust root"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = a.fails([
        "trust",
        "verify",
        "--peer",
        "SHA256:doesnotexist",
        "--cap",
        "fetch",
    ]);
    assert!(err.contains("no known key"), "{err}");
}

#[test]
fn an_encrypted_node_key_signs_with_the_passphrase_from_the_environment() {
    let node = TestNode::with_encrypted_key("s3cret pass");
    let subject = TestNode::new().public_key();
    let err = node.fails(["trust", "grant", &subject, "--cap", "fetch"]);
    assert!(err.contains("passphrase"), "{err}");
    let cert = node.scratch("signed");
    let out = node
        .cmd([
            "trust".as_ref(),
            "grant".as_ref(),
            subject.as_ref(),
            "--cap".as_ref(),
            "fetch".as_ref(),
            "-o".as_ref(),
            cert.as_os_str(),
        ])
        .env("CLIVE_PASSPHRASE", "s3cret pass")
        .output()
        .unwrap();
    check_success(&out);
    let pub_line = std::fs::read_to_string(node.scratch("id_ed25519.pub")).unwrap();
    check_success(&keygen_verify("enc", pub_line.trim(), &cert));
}

#[test]
fn a_daemon_killed_right_after_a_grant_keeps_the_certificate_object() {
    // A certificate row in state.redb names the certificate's object in
    // the blob store; a SIGKILL just after the grant returned must find
    // both (the store commits its own database lazily).
    let issuer = TestNode::new();
    let subject = TestNode::new();
    let key = subject.public_key();
    for round in 0..5 {
        let mut daemon = issuer.start_daemon();
        let out = issuer.scratch(&format!("cert-{round}"));
        issuer.ok([
            "trust".as_ref(),
            "grant".as_ref(),
            key.as_ref(),
            "--cap".as_ref(),
            "fetch".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        daemon.signal(libc::SIGKILL);
        daemon.wait_exit(std::time::Duration::from_secs(30));
        let fsck = issuer.cmd(["fsck"]).output().unwrap();
        assert!(
            fsck.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&fsck.stdout)
        );
    }
}

#[test]
fn attest_is_granted_checked_and_verified_like_every_capability() {
    let (a, b) = (TestNode::new(), TestNode::new());
    let (a_key, b_key) = (a.public_key(), b.public_key());
    let ab = a.scratch("attest.cert");
    let granted = a.json([
        "trust".as_ref(),
        "grant".as_ref(),
        b_key.as_ref(),
        "--cap".as_ref(),
        "exec,attest".as_ref(),
        "-o".as_ref(),
        ab.as_os_str(),
    ]);
    assert_eq!(granted["capabilities"], "attest,exec");
    let body = std::fs::read_to_string(&ab).unwrap();
    assert!(body.contains("\ncapabilities attest,exec\n"), "{body}");
    check_success(&keygen_verify("alice", &a_key, &ab));

    let verdict = a.json(["trust", "verify", "--peer", &b_key, "--cap", "attest"]);
    assert_eq!(verdict["allowed"], true);
    let text = a.ok(["trust", "show", granted["id"].as_str().unwrap()]);
    assert!(text.contains("attest,exec"), "{text}");

    // B takes the certificate in and holds attest; a key granted only
    // fetch does not.
    b.ok(["trust".as_ref(), "import".as_ref(), ab.as_os_str()]);
    let held = b.json(["trust", "ls"]);
    assert_eq!(held[0]["relation"], "held");
    assert_eq!(held[0]["capabilities"], "attest,exec");
    let c = TestNode::new();
    let c_key = c.public_key();
    a.ok(["trust", "grant", &c_key, "--cap", "fetch"]);
    let out = a
        .cmd(["trust", "verify", "--peer", &c_key, "--cap", "attest"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("grants fetch, not attest"), "{text}");

    // A misspelt capability names every one there is.
    let err = a.fails(["trust", "grant", &c_key, "--cap", "attests"]);
    assert!(err.contains("known: attest, exec, fetch, push"), "{err}");
}
