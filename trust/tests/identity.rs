//! Node identity tests against the real `ssh-keygen`.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use clive_trust::{IdentityError, NodeKey, PublicIdentity};

/// Runs `ssh-keygen` with `args`, asserts success and returns its stdout, trimmed.
fn keygen(args: &[&str]) -> String {
    let out = Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .trim()
        .to_owned()
}

/// Makes a key with `ssh-keygen -q -t TYPE -N PASS -C COMMENT [extra] -f DIR/NAME`.
fn make_key(
    dir: &Path,
    name: &str,
    kind: &str,
    pass: &str,
    comment: &str,
    extra: &[&str],
) -> PathBuf {
    let path = dir.join(name);
    let path_str = path.to_str().expect("utf-8 path");
    let mut args = vec!["-q", "-t", kind, "-N", pass, "-C", comment];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-f", path_str]);
    keygen(&args);
    path
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn generated_key_matches_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node_key");
    let key = NodeKey::generate(&path, "node@example").unwrap();
    assert!(!key.is_encrypted());
    assert_eq!(mode(&path), 0o600);
    assert!(!dir.path().join("node_key.pub").exists());

    let public = key.public();
    assert_eq!(public.comment(), Some("node@example"));
    assert_eq!(
        keygen(&["-lf", path_str(&path)]),
        public.keygen_fingerprint_line()
    );
    // `ssh-keygen -y` decodes the whole private key and prints the public line.
    assert_eq!(keygen(&["-yf", path_str(&path)]), public.openssh_line());
    assert!(public.openssh_line().starts_with("ssh-ed25519 AAAA"));
    assert!(public.openssh_line().ends_with(" node@example"));
    assert!(public.fingerprint().starts_with("SHA256:"));
    assert!(!public.fingerprint().ends_with('='));

    let secret = key.unlock(None).unwrap();
    assert_eq!(secret.public_bytes(), public.bytes());
    // Reading it back gives the same key.
    let again = NodeKey::read(&path).unwrap();
    assert_eq!(again.public(), public);
    assert_eq!(again.unlock(None).unwrap().to_bytes(), secret.to_bytes());
    assert_eq!(again.path(), path);
}

#[test]
fn generated_keys_differ() {
    let dir = tempfile::tempdir().unwrap();
    let a = NodeKey::generate(&dir.path().join("a"), "").unwrap();
    let b = NodeKey::generate(&dir.path().join("b"), "").unwrap();
    assert_ne!(a.public().bytes(), b.public().bytes());
}

#[test]
fn reads_key_made_by_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_key(dir.path(), "K", "ed25519", "", "test", &[]);
    let key = NodeKey::read(&path).unwrap();
    assert!(!key.is_encrypted());
    let public = key.public();
    let pub_file = fs::read_to_string(dir.path().join("K.pub")).unwrap();
    assert_eq!(public.openssh_line(), pub_file.trim_end());
    assert_eq!(
        keygen(&["-lf", path_str(&path)]),
        public.keygen_fingerprint_line()
    );
    assert!(
        public
            .keygen_fingerprint_line()
            .ends_with(" test (ED25519)")
    );
    assert_eq!(public.comment(), Some("test"));
    assert_eq!(key.unlock(None).unwrap().public_bytes(), public.bytes());
    // A passphrase given for an unencrypted key is ignored.
    assert_eq!(
        key.unlock(Some("anything")).unwrap().public_bytes(),
        public.bytes()
    );
}

#[test]
fn encrypted_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_key(dir.path(), "K", "ed25519", "secret-pass", "enc", &[]);
    let key = NodeKey::read(&path).unwrap();
    assert!(key.is_encrypted());
    let public = key.public();
    // The public key is readable without the passphrase; the comment is not.
    let pub_file = fs::read_to_string(dir.path().join("K.pub")).unwrap();
    let pub_line = pub_file.trim_end().strip_suffix(" enc").unwrap();
    assert_eq!(public.openssh_line(), pub_line);
    assert_eq!(public.comment(), None);

    let secret = key.unlock(Some("secret-pass")).unwrap();
    assert_eq!(secret.public_bytes(), public.bytes());
    assert!(matches!(
        key.unlock(Some("wrong")),
        Err(IdentityError::WrongPassphrase { ref path }) if path == &dir.path().join("K")
    ));
    assert!(matches!(
        key.unlock(Some("")),
        Err(IdentityError::WrongPassphrase { .. })
    ));
    let err = key.unlock(None).unwrap_err();
    assert!(matches!(err, IdentityError::PassphraseRequired { .. }));
    assert!(err.to_string().contains("CLIVE_PASSPHRASE"), "{err}");

    // Without K.pub, ssh-keygen cannot read the comment either.
    fs::remove_file(dir.path().join("K.pub")).unwrap();
    assert_eq!(
        keygen(&["-lf", path_str(&path)]),
        public.keygen_fingerprint_line()
    );
    assert!(
        public
            .keygen_fingerprint_line()
            .ends_with(" no comment (ED25519)")
    );
}

#[test]
fn encrypted_key_other_ciphers() {
    let dir = tempfile::tempdir().unwrap();
    for (i, cipher) in [
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
        "aes128-ctr",
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("K{i}");
        let path = make_key(dir.path(), &name, "ed25519", "pw", "", &["-Z", cipher]);
        let key = NodeKey::read(&path).unwrap();
        assert!(key.is_encrypted(), "{cipher}");
        let secret = key.unlock(Some("pw")).unwrap();
        assert_eq!(secret.public_bytes(), key.public().bytes(), "{cipher}");
        assert!(
            matches!(
                key.unlock(Some("px")),
                Err(IdentityError::WrongPassphrase { .. })
            ),
            "{cipher}"
        );
    }
}

#[test]
fn no_comment_key_matches_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let path = make_key(dir.path(), "K", "ed25519", "", "", &[]);
    let pub_path = dir.path().join("K.pub");
    let key = NodeKey::read(&path).unwrap();
    let public = key.public();
    assert_eq!(public.comment(), Some(""));
    assert_eq!(keygen(&["-yf", path_str(&path)]), public.openssh_line());

    // A public key line without comment: ssh-keygen says "no comment".
    let from_pub = PublicIdentity::parse(&fs::read_to_string(&pub_path).unwrap()).unwrap();
    assert_eq!(from_pub.bytes(), public.bytes());
    assert_eq!(
        keygen(&["-lf", path_str(&pub_path)]),
        from_pub.keygen_fingerprint_line()
    );
    assert!(
        from_pub
            .keygen_fingerprint_line()
            .ends_with(" no comment (ED25519)")
    );

    // The private key file alone (as `generate` leaves it): ssh-keygen
    // prints the empty comment.
    fs::remove_file(&pub_path).unwrap();
    assert_eq!(
        keygen(&["-lf", path_str(&path)]),
        public.keygen_fingerprint_line()
    );

    // Same for a generated key without comment.
    let gen_path = dir.path().join("G");
    let generated = NodeKey::generate(&gen_path, "").unwrap().public();
    assert_eq!(
        keygen(&["-lf", path_str(&gen_path)]),
        generated.keygen_fingerprint_line()
    );
    assert_eq!(
        keygen(&["-yf", path_str(&gen_path)]),
        generated.openssh_line()
    );
}

#[test]
fn other_key_types_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &str); 6] = [
        ("rsa", &["-b", "2048"], "ssh-rsa"),
        ("rsa", &["-b", "2048", "-m", "PEM"], "ssh-rsa"),
        ("ecdsa", &[], "ecdsa-sha2-nistp256"),
        ("ecdsa", &["-b", "384"], "ecdsa-sha2-nistp384"),
        ("ecdsa", &["-b", "521"], "ecdsa-sha2-nistp521"),
        ("dsa", &[], "ssh-dss"),
    ];
    for (i, (kind, extra, algorithm)) in cases.into_iter().enumerate() {
        let path = make_key(dir.path(), &format!("K{i}"), kind, "", "", extra);
        let err = NodeKey::read(&path).unwrap_err();
        match &err {
            IdentityError::NotEd25519 {
                path: p,
                algorithm: a,
            } => {
                assert_eq!(p, &path);
                assert_eq!(a, algorithm);
            }
            other => panic!("{kind} {extra:?}: expected NotEd25519, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(algorithm) && msg.contains("ssh-keygen -t ed25519"),
            "{msg}"
        );
    }
    // An encrypted RSA key is recognised without a passphrase.
    let path = make_key(dir.path(), "E", "rsa", "pw", "", &["-b", "2048"]);
    assert!(matches!(
        NodeKey::read(&path),
        Err(IdentityError::NotEd25519 { ref algorithm, .. }) if algorithm == "ssh-rsa"
    ));
}

#[test]
fn missing_and_malformed_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = NodeKey::read(&missing).unwrap_err();
    assert!(matches!(err, IdentityError::Missing { ref path } if path == &missing));
    assert!(err.to_string().contains("no such key file"), "{err}");

    let garbage = dir.path().join("garbage");
    fs::write(&garbage, b"this is not a key\n").unwrap();
    assert!(matches!(
        NodeKey::read(&garbage),
        Err(IdentityError::Malformed { ref path, .. }) if path == &garbage
    ));

    let binary = dir.path().join("binary");
    fs::write(&binary, [0xff, 0x00, 0x80, 0x7f]).unwrap();
    assert!(matches!(
        NodeKey::read(&binary),
        Err(IdentityError::Malformed { .. })
    ));

    let empty = dir.path().join("empty");
    fs::write(&empty, b"").unwrap();
    assert!(matches!(
        NodeKey::read(&empty),
        Err(IdentityError::Malformed { .. })
    ));

    assert!(matches!(
        NodeKey::read(dir.path()),
        Err(IdentityError::Malformed { .. })
    ));

    // A damaged OpenSSH key: the armour is right, the contents are not.
    let real = make_key(dir.path(), "real", "ed25519", "", "", &[]);
    let text = fs::read_to_string(&real).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(2);
    let damaged = dir.path().join("damaged");
    fs::write(&damaged, lines.join("\n")).unwrap();
    assert!(matches!(
        NodeKey::read(&damaged),
        Err(IdentityError::Malformed { .. })
    ));

    // A public key file given as the key.
    let err = NodeKey::read(&dir.path().join("real.pub")).unwrap_err();
    match &err {
        IdentityError::Malformed { reason, .. } => {
            assert!(reason.contains("public key"), "{reason}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn generate_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    fs::write(&path, b"precious").unwrap();
    let err = NodeKey::generate(&path, "x").unwrap_err();
    assert!(matches!(err, IdentityError::AlreadyExists { path: ref p } if p == &path));
    assert_eq!(fs::read(&path).unwrap(), b"precious");

    let err = NodeKey::generate(&dir.path().join("no/such/dir/key"), "x").unwrap_err();
    assert!(matches!(err, IdentityError::Io { .. }), "{err:?}");
}

#[test]
fn write_copy_keeps_bytes_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    for (name, pass) in [("plain", ""), ("enc", "pw")] {
        let path = make_key(dir.path(), name, "ed25519", pass, "c", &[]);
        // ssh-keygen writes 0600 already; make the source looser (once it
        // is read: a loose key file is refused) to be sure the copy does
        // not inherit the mode.
        let key = NodeKey::read(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let dest = dir.path().join(format!("{name}.copy"));
        key.write_copy(&dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), fs::read(&path).unwrap());
        assert_eq!(mode(&dest), 0o600);
        let copy = NodeKey::read(&dest).unwrap();
        assert_eq!(copy.is_encrypted(), !pass.is_empty());
        assert_eq!(copy.public(), key.public());
        assert!(matches!(
            key.write_copy(&dest),
            Err(IdentityError::AlreadyExists { .. })
        ));
    }
}

#[test]
fn public_identity_parse_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let key = NodeKey::generate(&dir.path().join("k"), "me@host").unwrap();
    let public = key.public();

    let line = public.openssh_line();
    assert_eq!(PublicIdentity::parse(&line).unwrap(), public);
    assert_eq!(
        PublicIdentity::parse(&format!("  {line}\n")).unwrap(),
        public
    );
    assert_eq!(line.parse::<PublicIdentity>().unwrap(), public);

    let id = public.endpoint_id();
    assert_eq!(id.len(), 64);
    assert_eq!(id, id.to_lowercase());
    let from_id = PublicIdentity::parse(&id).unwrap();
    assert_eq!(from_id.bytes(), public.bytes());
    assert_eq!(from_id, PublicIdentity::from_bytes(public.bytes()));
    assert_eq!(from_id.comment(), None);
    assert_eq!(PublicIdentity::parse(&id.to_uppercase()).unwrap(), from_id);
    assert_eq!(from_id.fingerprint(), public.fingerprint());
    assert!(
        from_id
            .keygen_fingerprint_line()
            .ends_with(" no comment (ED25519)")
    );

    // A line without comment parses to an identity without comment.
    let bare = from_id.openssh_line();
    assert_eq!(bare.split(' ').count(), 2);
    assert_eq!(PublicIdentity::parse(&bare).unwrap(), from_id);
    // A comment with spaces.
    let spaced = PublicIdentity::parse(&format!("{bare} two words")).unwrap();
    assert_eq!(spaced.comment(), Some("two words"));
    assert_eq!(spaced.openssh_line(), format!("{bare} two words"));
}

#[test]
fn public_identity_parse_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = make_key(dir.path(), "rsa", "rsa", "", "r", &["-b", "2048"]);
    let rsa_line = fs::read_to_string(dir.path().join("rsa.pub")).unwrap();
    let err = PublicIdentity::parse(&rsa_line).unwrap_err();
    match &err {
        IdentityError::BadPublicKey { reason, .. } => {
            assert!(reason.contains("ssh-rsa"), "{reason}")
        }
        other => panic!("expected BadPublicKey, got {other:?}"),
    }

    make_key(dir.path(), "ec", "ecdsa", "", "", &[]);
    let ecdsa_line = fs::read_to_string(dir.path().join("ec.pub")).unwrap();
    assert!(matches!(
        PublicIdentity::parse(&ecdsa_line),
        Err(IdentityError::BadPublicKey { ref reason, .. }) if reason.contains("ecdsa-sha2-nistp256")
    ));

    let bad = [
        "",
        "garbage",
        "ssh-ed25519",
        "ssh-ed25519 AAAA",
        "ssh-ed25519 !!!not-base64!!!",
        "ssh-rsa AAAAB3NzaC1yc2E",
        &"0".repeat(63),
        &"0".repeat(65),
        &"g".repeat(64),
        &"x".repeat(10_000),
    ];
    for input in bad {
        assert!(
            matches!(
                PublicIdentity::parse(input),
                Err(IdentityError::BadPublicKey { .. })
            ),
            "{input:?}"
        );
    }
    let long = PublicIdentity::parse(&"x".repeat(10_000))
        .unwrap_err()
        .to_string();
    assert!(long.len() < 400, "{long}");

    // A private key is not echoed back.
    let private = fs::read_to_string(&rsa).unwrap();
    let msg = PublicIdentity::parse(&private).unwrap_err().to_string();
    assert!(!msg.contains(private.lines().nth(1).unwrap()), "{msg}");

    // The type in the base64 data must match the one in front.
    let ed = NodeKey::generate(&dir.path().join("ed"), "")
        .unwrap()
        .public()
        .openssh_line();
    let swapped = ed.replacen("ssh-ed25519", "ssh-rsa", 1);
    assert!(PublicIdentity::parse(&swapped).is_err());
}

#[test]
fn secret_debug_hides_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let key = NodeKey::generate(&dir.path().join("k"), "").unwrap();
    let secret = key.unlock(None).unwrap();
    let shown = format!("{secret:?} {key:?}");
    assert!(!shown.contains(&hex::encode(secret.to_bytes())), "{shown}");
    assert!(
        shown.contains(&hex::encode(secret.public_bytes())),
        "{shown}"
    );
}

#[test]
fn error_messages() {
    let p = PathBuf::from("/k/node_key");
    let cases = [
        (
            IdentityError::NotEd25519 {
                path: p.clone(),
                algorithm: "ssh-rsa".into(),
            },
            "/k/node_key: ssh-rsa keys are not supported: clive-node needs an ed25519 key \
             (ssh-keygen -t ed25519)",
        ),
        (
            IdentityError::WrongPassphrase { path: p.clone() },
            "/k/node_key: wrong passphrase",
        ),
        (
            IdentityError::PassphraseRequired { path: p.clone() },
            "/k/node_key is passphrase-protected: enter the passphrase on a terminal or set \
             CLIVE_PASSPHRASE",
        ),
        (
            IdentityError::Missing { path: p.clone() },
            "/k/node_key: no such key file (`clive-node init` creates a node with a new key, \
             `clive-node init --ssh-key FILE` imports an OpenSSH ed25519 key)",
        ),
        (
            IdentityError::Unprotected {
                path: p.clone(),
                mode: 0o644,
            },
            "UNPROTECTED PRIVATE KEY FILE: permissions 0644 for /k/node_key are too open: a \
             private key must not be accessible by others, so it is ignored; fix it with \
             `chmod 600 /k/node_key`",
        ),
    ];
    for (err, want) in cases {
        assert_eq!(err.to_string(), want);
    }
}
