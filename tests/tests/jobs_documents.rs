//! Job documents and results across real boundaries: a result signed with
//! a real node's key checked by stock `ssh-keygen -Y verify`, and the memo's
//! hit rules against the trust state of a home initialised by the binary,
//! with `attest` granted (and revoked) through `trust grant` / `trust revoke`.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
};

use clive_node::{
    Home, NodeTrust,
    cas::{Hash, parse_hash},
    clive_trust::{KeySigner, NodeKey, PublicIdentity, Signer, SystemClock, clock::format_time},
    jobs::{
        document::{Input, JobDoc, JobId},
        jobfile::JobSpec,
        memo::Memo,
        platform::Platform,
        result::{Exit, JobResult, RESULT_NAMESPACE, SignedResult, executor_line},
        sandbox::SandboxLevel,
    },
};
use clive_tests::{TestNode, check_success};

/// The signer of a node's own key file, as the node itself signs.
fn node_signer(node: &TestNode) -> KeySigner {
    let key = NodeKey::read(&Home::new(node.home()).key_path()).unwrap();
    KeySigner::from_key(&key, None).unwrap()
}

/// A job document made the way `job submit` makes one: from a JOB.toml,
/// with its path input added to the node's store.
fn job(node: &TestNode) -> JobDoc {
    let dir = node.scratch("project");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/main.c"), "int main(void) { return 0; }\n").unwrap();
    let spec = JobSpec::parse(
        "argv = [\"cc\", \"-o\", \"../out/app\", \"main.c\"]\nworkdir = \"src\"\n\
         outputs = [\"../out/app\"]\n[inputs]\nsrc = \"./src\"",
        &dir,
    );
    // `..` leaves the workdir: refused before anything runs.
    assert!(spec.unwrap_err().to_string().contains("'..' component"));
    let spec = JobSpec::parse(
        "argv = [\"cc\", \"-o\", \"app\", \"src/main.c\"]\noutputs = [\"app\"]\n\
         timeout = \"1m\"\nsandbox = \"landlock\"\n[inputs]\nsrc = \"./src\"",
        &dir,
    )
    .unwrap();
    let added = node.json(["add".as_ref(), dir.join("src").as_os_str()]);
    let hash = parse_hash(added[0]["hash"].as_str().unwrap()).unwrap();
    let inputs = [("src".to_owned(), Input { hash, name: None })].into();
    spec.doc(inputs).unwrap()
}

/// A result of `job` run by `signer`, its outputs and logs the given objects.
fn result(job: JobId, signer: &dyn Signer, objects: [Hash; 3]) -> JobResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    JobResult {
        version: 1,
        job,
        executor: executor_line(&signer.public()),
        platform: Platform {
            os: "linux".into(),
            arch: "x86_64".into(),
            cores: 2,
            features: Vec::new(),
            sandbox: vec![SandboxLevel::None, SandboxLevel::Landlock],
        },
        sandbox: SandboxLevel::Landlock,
        exit: Exit::Code(0),
        timed_out: false,
        cancelled: false,
        outputs: objects[0],
        missing_outputs: Vec::new(),
        stdout: objects[1],
        stderr: objects[2],
        stdout_bytes: 0,
        stderr_bytes: 0,
        logs_truncated: false,
        started: format_time(now - 2),
        ended: format_time(now),
        cpu_ms: 10,
        peak_memory_bytes: 1 << 20,
    }
}

/// `ssh-keygen -Y verify -f allowed_signers -I x -n NAMESPACE -s SIG < MESSAGE`.
fn keygen_verify(
    dir: &Path,
    key: &str,
    namespace: &str,
    message: &Path,
    sig: &Path,
) -> std::process::Output {
    let signers = dir.join("allowed_signers");
    std::fs::write(&signers, format!("x {key}\n")).unwrap();
    Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args(["-I", "x", "-n", namespace, "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(message).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_result_signed_with_a_node_key_verifies_with_ssh_keygen() {
    let (a, other) = (TestNode::new(), TestNode::new());
    let doc = job(&a);
    assert_eq!(JobDoc::decode(&doc.encode()).unwrap(), doc);
    assert_eq!(
        doc.id().to_string(),
        blake3::hash(&doc.encode()).to_hex().as_str()
    );

    let signer = node_signer(&a);
    let blob = Hash::new(b"");
    let signed = SignedResult::sign(&result(doc.id(), &signer, [blob; 3]), &signer).unwrap();
    let (checked, by) = signed.verify().unwrap();
    assert_eq!(checked.job, doc.id());
    // The key the result names is the one the node reports as its own.
    let key = a.public_key();
    assert_eq!(by.bytes(), PublicIdentity::parse(&key).unwrap().bytes());

    let dir = a.scratch("verify");
    std::fs::create_dir(&dir).unwrap();
    let (message, sig) = (dir.join("result.json"), dir.join("result.sig"));
    std::fs::write(&message, &signed.result).unwrap();
    std::fs::write(&sig, &signed.signature).unwrap();
    let out = keygen_verify(&dir, &key, RESULT_NAMESPACE, &message, &sig);
    check_success(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("Good \"clive-result\" signature for x"),
        "{said}"
    );

    // Another namespace, another key, or one changed byte: ssh-keygen refuses.
    assert!(
        !keygen_verify(&dir, &key, "clive-cert", &message, &sig)
            .status
            .success()
    );
    assert!(
        !keygen_verify(&dir, &other.public_key(), RESULT_NAMESPACE, &message, &sig)
            .status
            .success()
    );
    let mut changed = signed.result.clone();
    let at = changed.iter().position(|b| *b == b'0').unwrap();
    changed[at] = b'1';
    std::fs::write(&message, &changed).unwrap();
    assert!(
        !keygen_verify(&dir, &key, RESULT_NAMESPACE, &message, &sig)
            .status
            .success()
    );
    assert!(
        SignedResult {
            result: changed,
            ..signed.clone()
        }
        .verify()
        .is_err()
    );

    // A signature ssh-keygen made over our canonical bytes verifies here too.
    std::fs::write(&message, &signed.result).unwrap();
    let sig2 = dir.join("result.json.sig");
    let key_file = Home::new(a.home()).key_path();
    check_success(
        &Command::new("ssh-keygen")
            .args(["-Y", "sign", "-q", "-n", RESULT_NAMESPACE, "-f"])
            .arg(&key_file)
            .arg(&message)
            .output()
            .unwrap(),
    );
    let by_keygen = SignedResult {
        result: signed.result.clone(),
        signature: std::fs::read_to_string(&sig2).unwrap(),
    };
    assert_eq!(by_keygen.verify().unwrap().1.bytes(), by.bytes());
}

/// Opens `node`'s state as the node does, for the memo and its trust state.
fn open_state(node: &TestNode) -> (Memo, NodeTrust, PublicIdentity) {
    let me = PublicIdentity::parse(&node.public_key()).unwrap();
    let home = Home::new(node.home());
    let db = Arc::new(redb::Database::open(home.state_path()).unwrap());
    let trust = NodeTrust::open(
        db.clone(),
        &home.roots_path(),
        me.clone(),
        Arc::new(SystemClock),
    )
    .unwrap();
    (Memo::new(db), trust, me)
}

fn add_blob(node: &TestNode, name: &str, text: &str) -> Hash {
    let path = node.scratch(name);
    std::fs::write(&path, text).unwrap();
    let added = node.json(["add".as_ref(), path.as_os_str()]);
    parse_hash(added[0]["hash"].as_str().unwrap()).unwrap()
}

#[test]
fn memo_hits_are_results_signed_here_or_by_a_key_granted_attest() {
    let (a, b, c, d) = (
        TestNode::new(),
        TestNode::new(),
        TestNode::new(),
        TestNode::new(),
    );
    let doc = job(&a);
    let attest = a.json(["trust", "grant", &b.public_key(), "--cap", "attest"]);
    assert_eq!(attest["capabilities"], "attest");
    a.ok([
        "trust",
        "grant",
        &c.public_key(),
        "--cap",
        "exec,fetch,push",
    ]);

    // Results of four different jobs (ids from four different timeouts), one per signer.
    let jobs: Vec<JobId> = (1..=4)
        .map(|n| {
            let mut doc = doc.clone();
            doc.timeout_ms = n * 1000;
            doc.id()
        })
        .collect();
    let kept = [
        add_blob(&a, "outputs", "the outputs\n"),
        add_blob(&a, "stdout", "the output\n"),
        add_blob(&a, "stderr", "the errors\n"),
    ];
    let junk = add_blob(&a, "junk", "nothing keeps this\n");
    {
        let (memo, trust, me) = open_state(&a);
        let signers = [
            node_signer(&a),
            node_signer(&b),
            node_signer(&c),
            node_signer(&d),
        ];
        for (id, signer) in jobs.iter().zip(&signers) {
            memo.put(&SignedResult::sign(&result(*id, signer, kept), signer).unwrap())
                .unwrap();
        }
        let hits: Vec<bool> = jobs
            .iter()
            .map(|id| memo.hit(id, &me, &trust).unwrap().is_some())
            .collect();
        // Mine: hit; B, granted attest: hit; C, granted everything but attest: miss; D: miss.
        assert_eq!(hits, [true, true, false, false]);
        for id in &jobs {
            assert!(memo.get(id).unwrap().is_some(), "every result is kept");
        }
        let (result, signed) = memo.hit(&jobs[1], &me, &trust).unwrap().unwrap();
        assert_eq!(result.job, jobs[1]);
        assert_eq!(
            signed.verify().unwrap().1.bytes(),
            node_signer(&b).public().bytes()
        );
        let mut objects = kept.to_vec();
        objects.sort();
        assert_eq!(memo.objects().unwrap(), objects);
    }

    // gc keeps what a stored result references, and only that.
    a.ok(["gc"]);
    for hash in kept {
        a.ok(["cat", &hash.to_string()]);
    }
    let out = a.cmd(["cat", &junk.to_string()]).output().unwrap();
    assert!(
        !out.status.success(),
        "gc kept an object nothing references"
    );

    // The CLI agrees on who holds attest, and revoking the grant ends B's hits.
    let verdict = a.json([
        "trust",
        "verify",
        "--peer",
        &b.public_key(),
        "--cap",
        "attest",
    ]);
    assert_eq!(verdict["allowed"], true);
    let out = a
        .cmd([
            "trust",
            "verify",
            "--peer",
            &c.public_key(),
            "--cap",
            "attest",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    a.ok(["trust", "revoke", attest["id"].as_str().unwrap()]);
    let (memo, trust, me) = open_state(&a);
    assert!(memo.hit(&jobs[0], &me, &trust).unwrap().is_some());
    assert!(memo.hit(&jobs[1], &me, &trust).unwrap().is_none());
}
