//! SSH signatures and the ssh-agent client, checked against the real
//! OpenSSH tools (ssh-keygen, ssh-agent, ssh-add).

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use clive_trust::agent::{AgentSigner, list_identities};
use clive_trust::sshsig::{self, KeySigner, SigError, Signer, SshSignature};
use clive_trust::{NodeKey, PublicIdentity};
use tempfile::TempDir;

const NAMESPACE: &str = "clive-cert";
const MESSAGE: &[u8] = b"a certificate body\nwith two lines\n";

/// An OpenSSH command that never sees the environment's agent.
fn openssh(program: &str) -> Command {
    let mut command = Command::new(program);
    command.env_remove("SSH_AUTH_SOCK").stdin(Stdio::null());
    command
}

/// Runs `command`, panicking with its output if it fails.
fn run(command: &mut Command) {
    let output = command.output().expect("cannot run an OpenSSH tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Makes an unencrypted key of `kind` (`ed25519`, `rsa`, `ecdsa`) with
/// ssh-keygen.
fn keygen(dir: &Path, name: &str, kind: &str) -> PathBuf {
    let path = dir.join(name);
    run(openssh("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
        .arg(&path));
    path
}

/// The public identity of an ed25519 key file.
fn public_of(key: &Path) -> PublicIdentity {
    NodeKey::read(key).unwrap().public()
}

/// Writes `message` to `dir/name` and signs it with `ssh-keygen -Y sign`,
/// returning the armored signature.
fn keygen_sign(dir: &Path, key: &Path, namespace: &str, name: &str, message: &[u8]) -> String {
    let path = dir.join(name);
    fs::write(&path, message).unwrap();
    let sig_path = dir.join(format!("{name}.sig"));
    let _ = fs::remove_file(&sig_path);
    run(openssh("ssh-keygen")
        .args(["-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .arg(&path));
    fs::read_to_string(sig_path).unwrap()
}

/// Whether `ssh-keygen -Y verify` accepts `armored` as alice's signature
/// (alice being `signer`) over `message` in `namespace`.
fn keygen_verifies(
    dir: &Path,
    signer: &PublicIdentity,
    namespace: &str,
    message: &[u8],
    armored: &str,
) -> bool {
    let allowed = dir.join("allowed_signers");
    fs::write(&allowed, format!("alice {}\n", signer.openssh_line())).unwrap();
    let sig_path = dir.join("check.sig");
    fs::write(&sig_path, armored).unwrap();
    let msg_path = dir.join("check.msg");
    fs::write(&msg_path, message).unwrap();
    let output = openssh("ssh-keygen")
        .args(["-Y", "verify", "-I", "alice", "-n", namespace, "-f"])
        .arg(&allowed)
        .arg("-s")
        .arg(&sig_path)
        .stdin(fs::File::open(&msg_path).unwrap())
        .output()
        .unwrap();
    output.status.success()
}

fn key_signer(key: &Path) -> KeySigner {
    KeySigner::from_key(&NodeKey::read(key).unwrap(), None).unwrap()
}

#[test]
fn key_signer_matches_ssh_keygen() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "K", "ed25519");
    let signer = key_signer(&key);
    assert_eq!(signer.public().bytes(), public_of(&key).bytes());

    let sig = signer.sign(NAMESPACE, MESSAGE).unwrap();
    assert_eq!(sig.namespace(), NAMESPACE);
    assert_eq!(sig.signer().bytes(), signer.public().bytes());
    let armored = sig.to_armored();
    assert!(keygen_verifies(
        dir.path(),
        &signer.public(),
        NAMESPACE,
        MESSAGE,
        &armored
    ));
    // ed25519 is deterministic: ssh-keygen writes the very same bytes.
    let theirs = keygen_sign(dir.path(), &key, NAMESPACE, "msg", MESSAGE);
    assert_eq!(armored, theirs);
    sshsig::verify(&sig, &signer.public(), NAMESPACE, MESSAGE).unwrap();

    // An empty message, and a large one spanning many hash blocks.
    for message in [&b""[..], &vec![0x5a; 100_000][..]] {
        let sig = signer.sign(NAMESPACE, message).unwrap();
        let theirs = keygen_sign(dir.path(), &key, NAMESPACE, "msg2", message);
        assert_eq!(sig.to_armored(), theirs);
    }
}

#[test]
fn ssh_keygen_signature_parses_and_verifies() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "K", "ed25519");
    let public = public_of(&key);
    let armored = keygen_sign(dir.path(), &key, NAMESPACE, "msg", MESSAGE);
    let sig = SshSignature::parse(&armored).unwrap();
    assert_eq!(sig.signer().bytes(), public.bytes());
    assert_eq!(sig.namespace(), NAMESPACE);
    assert_eq!(sig.to_armored(), armored);
    sshsig::verify(&sig, &public, NAMESPACE, MESSAGE).unwrap();

    // Other line endings and widths are accepted, as ssh-keygen does.
    let crlf = armored.replace('\n', "\r\n");
    assert_eq!(SshSignature::parse(&crlf).unwrap(), sig);
    let body: String = armored
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let one_line =
        format!("\n  -----BEGIN SSH SIGNATURE-----\n{body}\n-----END SSH SIGNATURE-----");
    assert_eq!(SshSignature::parse(&one_line).unwrap(), sig);
}

#[test]
fn tampered_message_is_bad_signature() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "K", "ed25519");
    let public = public_of(&key);
    let sig = SshSignature::parse(&keygen_sign(dir.path(), &key, NAMESPACE, "m", MESSAGE)).unwrap();
    let mut tampered = MESSAGE.to_vec();
    tampered[3] ^= 1;
    let err = sshsig::verify(&sig, &public, NAMESPACE, &tampered).unwrap_err();
    assert!(matches!(err, SigError::BadSignature), "{err:?}");
    let err = sshsig::verify(&sig, &public, NAMESPACE, b"").unwrap_err();
    assert!(matches!(err, SigError::BadSignature), "{err:?}");
}

#[test]
fn wrong_namespace_is_rejected() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "K", "ed25519");
    let public = public_of(&key);
    let sig = SshSignature::parse(&keygen_sign(dir.path(), &key, "other", "m", MESSAGE)).unwrap();
    assert_eq!(sig.namespace(), "other");
    match sshsig::verify(&sig, &public, NAMESPACE, MESSAGE) {
        Err(SigError::WrongNamespace { expected, found }) => {
            assert_eq!(expected, NAMESPACE);
            assert_eq!(found, "other");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn another_keys_signature_is_wrong_signer() {
    let dir = TempDir::new().unwrap();
    let alice = keygen(dir.path(), "alice", "ed25519");
    let mallory = keygen(dir.path(), "mallory", "ed25519");
    let sig =
        SshSignature::parse(&keygen_sign(dir.path(), &mallory, NAMESPACE, "m", MESSAGE)).unwrap();
    let err = sshsig::verify(&sig, &public_of(&alice), NAMESPACE, MESSAGE).unwrap_err();
    match &err {
        SigError::WrongSigner { expected, found } => {
            assert_eq!(*expected, public_of(&alice).fingerprint());
            assert_eq!(*found, public_of(&mallory).fingerprint());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(&public_of(&mallory).fingerprint()));
    // And ssh-keygen agrees.
    assert!(!keygen_verifies(
        dir.path(),
        &public_of(&alice),
        NAMESPACE,
        MESSAGE,
        &sig.to_armored()
    ));
}

fn assert_malformed(input: &str) {
    match SshSignature::parse(input) {
        Err(SigError::Malformed { reason }) => assert!(!reason.is_empty()),
        other => panic!("{:?}: {other:?}", &input[..input.len().min(100)]),
    }
}

#[test]
fn garbage_truncated_and_huge_inputs_are_malformed() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "K", "ed25519");
    let armored = keygen_sign(dir.path(), &key, NAMESPACE, "m", MESSAGE);

    for garbage in [
        "",
        "   \n",
        "hello",
        "-----BEGIN SSH SIGNATURE-----",
        "-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n",
        "-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n",
        "-----BEGIN SSH SIGNATURE-----\naGVsbG8gd29ybGQ=\n-----END SSH SIGNATURE-----\n",
        "-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n",
    ] {
        assert_malformed(garbage);
    }
    // Text after the armor.
    assert_malformed(&format!("{armored}more"));

    // Every truncation fails cleanly.
    let whole = armored.trim_end();
    for (cut, _) in whole.char_indices() {
        assert_malformed(&whole[..cut]);
    }
    // As does dropping any one line of the body.
    let lines: Vec<&str> = armored.lines().collect();
    for skip in 1..lines.len() - 1 {
        let text: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != skip)
            .map(|(_, l)| *l)
            .collect();
        assert_malformed(&text.join("\n"));
    }

    // 1 MiB is refused before parsing, whatever it holds.
    let huge = format!("{armored}{}", " ".repeat(1024 * 1024));
    match SshSignature::parse(&huge) {
        Err(SigError::Malformed { reason }) => assert!(reason.contains("KiB"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_malformed(&"A".repeat(1024 * 1024));
}

#[test]
fn flipped_signature_bit_does_not_verify() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "K", "ed25519");
    let public = public_of(&key);
    let armored = keygen_sign(dir.path(), &key, NAMESPACE, "m", MESSAGE);
    // Change one base64 character of the last body line (the signature's
    // tail); whatever happens, never a panic and never acceptance.
    let lines: Vec<String> = armored.lines().map(str::to_owned).collect();
    let last = lines.len() - 2;
    for pos in 0..lines[last].trim_end_matches('=').len() {
        let mut changed = lines.clone();
        let mut chars: Vec<char> = changed[last].chars().collect();
        chars[pos] = if chars[pos] == 'A' { 'B' } else { 'A' };
        changed[last] = chars.into_iter().collect();
        if let Ok(sig) = SshSignature::parse(&changed.join("\n")) {
            assert!(sshsig::verify(&sig, &public, NAMESPACE, MESSAGE).is_err());
        }
    }
}

#[test]
fn rsa_signature_is_unsupported() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "R", "rsa");
    let armored = keygen_sign(dir.path(), &key, NAMESPACE, "m", MESSAGE);
    match SshSignature::parse(&armored) {
        Err(err @ SigError::UnsupportedKey { .. }) => {
            let SigError::UnsupportedKey { algorithm } = &err else {
                unreachable!()
            };
            assert_eq!(algorithm, "ssh-rsa");
            assert!(err.to_string().contains("ed25519"), "{err}");
        }
        other => panic!("{other:?}"),
    }
    let key = keygen(dir.path(), "E", "ecdsa");
    let armored = keygen_sign(dir.path(), &key, NAMESPACE, "m", MESSAGE);
    match SshSignature::parse(&armored) {
        Err(SigError::UnsupportedKey { algorithm }) => {
            assert_eq!(algorithm, "ecdsa-sha2-nistp256")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn key_signer_rejects_mismatched_public_key() {
    let dir = TempDir::new().unwrap();
    let a = NodeKey::read(&keygen(dir.path(), "a", "ed25519")).unwrap();
    let b = NodeKey::read(&keygen(dir.path(), "b", "ed25519")).unwrap();
    let err = KeySigner::new(a.unlock(None).unwrap(), b.public()).unwrap_err();
    assert!(matches!(err, SigError::KeyMismatch { .. }), "{err:?}");
    let signer = KeySigner::new(a.unlock(None).unwrap(), a.public()).unwrap();
    assert!(matches!(
        signer.sign("", MESSAGE),
        Err(SigError::EmptyNamespace)
    ));
}

/// A real ssh-agent, killed when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = openssh("ssh-agent")
            .arg("-a")
            .arg(&socket)
            .arg("-D")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start ssh-agent");
        let agent = Agent { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agent.socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent did not start");
            thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn add(&self, key: &Path) {
        run(Command::new("ssh-add")
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdin(Stdio::null())
            .arg(key));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn agent_signs_and_lists() {
    let dir = TempDir::new().unwrap();
    let key = keygen(dir.path(), "K", "ed25519");
    let other = keygen(dir.path(), "other", "ed25519");
    let ecdsa = keygen(dir.path(), "E", "ecdsa");
    let public = public_of(&key);
    let agent = Agent::start(dir.path());

    assert!(list_identities(&agent.socket).unwrap().is_empty());
    agent.add(&ecdsa);
    agent.add(&key);

    let keys = list_identities(&agent.socket).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}"); // the ECDSA key is skipped
    assert_eq!(keys[0].bytes(), public.bytes());
    assert_eq!(keys[0].comment(), Some("K"));

    let signer = AgentSigner::new(&agent.socket, public.clone());
    assert_eq!(signer.public(), public);
    let sig = signer.sign(NAMESPACE, MESSAGE).unwrap();
    assert!(keygen_verifies(
        dir.path(),
        &public,
        NAMESPACE,
        MESSAGE,
        &sig.to_armored()
    ));
    sshsig::verify(&sig, &public, NAMESPACE, MESSAGE).unwrap();
    // The same bytes as signing locally (ed25519 is deterministic).
    assert_eq!(
        sig.to_armored(),
        key_signer(&key)
            .sign(NAMESPACE, MESSAGE)
            .unwrap()
            .to_armored()
    );
    // Raw signatures (TUF metadata) from the agent equal local ones and
    // verify as plain ed25519.
    let raw = signer.sign_raw(MESSAGE).unwrap();
    assert_eq!(raw, key_signer(&key).sign_raw(MESSAGE).unwrap());
    ed25519_dalek::VerifyingKey::from_bytes(&public.bytes())
        .unwrap()
        .verify_strict(MESSAGE, &ed25519_dalek::Signature::from_bytes(&raw))
        .unwrap();

    // A key the agent does not hold.
    let err = AgentSigner::new(&agent.socket, public_of(&other))
        .sign(NAMESPACE, MESSAGE)
        .unwrap_err();
    match &err {
        SigError::NotInAgent { fingerprint, .. } => {
            assert_eq!(*fingerprint, public_of(&other).fingerprint())
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("ssh-add"), "{err}");

    // Usable through the trait object, as callers hold it.
    let boxed: Box<dyn Signer> = Box::new(signer);
    boxed.sign(NAMESPACE, b"x").unwrap();
    drop(agent);

    let err = AgentSigner::new(dir.path().join("agent.sock"), public)
        .sign(NAMESPACE, MESSAGE)
        .unwrap_err();
    assert!(matches!(err, SigError::Agent(_)), "{err:?}");
}

/// A fake agent answering each connection in turn with one canned reply.
fn fake_agent(dir: &Path, replies: Vec<Vec<u8>>) -> (PathBuf, thread::JoinHandle<()>) {
    let socket = dir.join("fake.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let handle = thread::spawn(move || {
        for reply in replies {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut len = [0u8; 4];
            if stream.read_exact(&mut len).is_err() {
                continue;
            }
            let mut request = vec![0u8; u32::from_be_bytes(len) as usize];
            let _ = stream.read_exact(&mut request);
            let _ = stream.write_all(&reply);
        }
    });
    (socket, handle)
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[test]
fn hostile_agent_replies_are_errors() {
    let dir = TempDir::new().unwrap();
    let public = PublicIdentity::from_bytes([9; 32]);
    let replies = vec![
        // Far too long: refused before allocating.
        vec![0xff, 0xff, 0xff, 0xff, 14],
        // Announces more than it sends.
        vec![0, 0, 1, 0, 14, 0, 0],
        // Empty message.
        vec![0, 0, 0, 0],
        // A sign response whose string overruns the message.
        framed(&[14, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]),
        // An RSA signature.
        framed(&[
            14, 0, 0, 0, 11, 0, 0, 0, 7, b's', b's', b'h', b'-', b'r', b's', b'a',
        ]),
        // An unexpected message type.
        framed(&[6]),
        // Failure, then an identity list that announces a billion keys.
        framed(&[5]),
        framed(&[12, 0x3b, 0x9a, 0xca, 0x00]),
        // A well-formed but invalid ed25519 signature.
        framed(&{
            let mut sig_blob = Vec::new();
            sig_blob.extend_from_slice(&11u32.to_be_bytes());
            sig_blob.extend_from_slice(b"ssh-ed25519");
            sig_blob.extend_from_slice(&64u32.to_be_bytes());
            sig_blob.extend_from_slice(&[7; 64]);
            let mut body = vec![14];
            body.extend_from_slice(&(sig_blob.len() as u32).to_be_bytes());
            body.extend_from_slice(&sig_blob);
            body
        }),
        // Failure, then an identity list that holds the key: refused.
        framed(&[5]),
        framed(&{
            let mut body = vec![12, 0, 0, 0, 1];
            let mut blob = Vec::new();
            blob.extend_from_slice(&11u32.to_be_bytes());
            blob.extend_from_slice(b"ssh-ed25519");
            blob.extend_from_slice(&32u32.to_be_bytes());
            blob.extend_from_slice(&[9; 32]);
            body.extend_from_slice(&(blob.len() as u32).to_be_bytes());
            body.extend_from_slice(&blob);
            body.extend_from_slice(&[0, 0, 0, 0]);
            body
        }),
    ];
    let n = 8;
    let (socket, handle) = fake_agent(dir.path(), replies);
    let signer = AgentSigner::new(&socket, public);
    for i in 0..n {
        match signer.sign(NAMESPACE, MESSAGE) {
            Err(SigError::Agent(message)) => assert!(!message.is_empty()),
            other => panic!("reply {i}: {other:?}"),
        }
    }
    match signer.sign(NAMESPACE, MESSAGE) {
        Err(SigError::Agent(message)) => assert_eq!(
            message,
            "the agent refused to sign: is the key added? (ssh-add)"
        ),
        other => panic!("{other:?}"),
    }
    handle.join().unwrap();
}

#[test]
fn from_env_needs_ssh_auth_sock() {
    // The environment is not changed here (other tests run in parallel);
    // only the outcome for the current environment is checked.
    let public = PublicIdentity::from_bytes([1; 32]);
    match std::env::var_os("SSH_AUTH_SOCK") {
        Some(sock) if !sock.is_empty() => {
            assert_eq!(
                AgentSigner::from_env(public).unwrap().socket(),
                Path::new(&sock)
            )
        }
        _ => match AgentSigner::from_env(public) {
            Err(SigError::Agent(message)) => {
                assert_eq!(message, "no ssh-agent: SSH_AUTH_SOCK is not set")
            }
            other => panic!("{other:?}"),
        },
    }
}
