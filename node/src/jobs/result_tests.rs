use clive_trust::{KeySigner, SecretKey};
use proptest::prelude::*;

use super::*;

pub(crate) fn signer(n: u8) -> KeySigner {
    let secret = SecretKey::from_seed([n; 32]);
    let public = PublicIdentity::from_bytes(secret.public_bytes());
    KeySigner::new(secret, public).unwrap()
}

/// A result of job `job` run by `executor`.
pub(crate) fn sample_for(job: JobId, executor: &dyn Signer) -> JobResult {
    JobResult {
        version: RESULT_VERSION,
        job,
        executor: executor_line(&executor.public()),
        platform: Platform {
            os: "linux".into(),
            arch: "x86_64".into(),
            cores: 8,
            features: vec!["gpu".into()],
            sandbox: vec![SandboxLevel::None, SandboxLevel::Landlock],
        },
        sandbox: SandboxLevel::Landlock,
        exit: Exit::Code(0),
        timed_out: false,
        cancelled: false,
        outputs: Hash::new(b"outputs"),
        missing_outputs: vec!["out/missing".into()],
        stdout: Hash::new(b"stdout"),
        stderr: Hash::new(b"stderr"),
        stdout_bytes: 7,
        stderr_bytes: 6,
        logs_truncated: false,
        started: "2026-12-01T14:20:29Z".into(),
        ended: "2026-12-01T14:20:31Z".into(),
        cpu_ms: 1234,
        peak_memory_bytes: 1 << 20,
    }
}

fn sample() -> JobResult {
    sample_for(JobId(Hash::new(b"job")), &signer(1))
}

fn edited(result: &JobResult, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&result.encode()).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn round_trips_canonically_and_exits_are_tagged() {
    let result = sample();
    let bytes = result.encode();
    assert_eq!(JobResult::decode(&bytes).unwrap(), result);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with(r#"{"cancelled":false,"cpu_ms":1234,"ended":"2026-12-01T14:20:31Z","executor":"ssh-ed25519 "#), "{text}");
    assert!(text.contains(r#","exit":{"code":0},"job":""#), "{text}");
    assert!(
        text.ends_with(r#","timed_out":false,"version":1}"#),
        "{text}"
    );
    // Key order of the input does not matter to decode, and the encoding is the same.
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    let reversed = crate::jobs::document::tests::reversed_json(&value);
    assert!(reversed.starts_with(r#"{ "version" : 1"#), "{reversed}");
    assert_eq!(
        JobResult::decode(reversed.as_bytes()).unwrap().encode(),
        bytes
    );

    let mut killed = sample();
    killed.exit = Exit::Signal(9);
    assert!(
        String::from_utf8(killed.encode())
            .unwrap()
            .contains(r#""exit":{"signal":9}"#)
    );
    assert_eq!(killed.exit_code(), 137);
    assert_eq!(JobResult::decode(&killed.encode()).unwrap(), killed);
    let mut failed = sample();
    failed.exit = Exit::Code(3);
    assert_eq!(failed.exit_code(), 3);
    assert_eq!(sample().exit_code(), 0);
}

#[test]
fn unknown_fields_versions_and_oversize_are_refused() {
    let r = sample();
    for bytes in [
        edited(&r, |v| v["extra"] = 1.into()),
        edited(&r, |v| v["platform"]["gpu"] = 1.into()),
        edited(&r, |v| {
            v["exit"] = serde_json::json!({"code": 0, "signal": 1})
        }),
        edited(&r, |v| v["exit"] = serde_json::json!({"stopped": 1})),
    ] {
        let err = JobResult::decode(&bytes).unwrap_err();
        assert!(matches!(err, ResultError::Malformed(_)), "{err}");
    }
    let v9 = edited(&r, |v| v["version"] = 9.into());
    assert!(matches!(
        JobResult::decode(&v9),
        Err(ResultError::UnknownVersion(9))
    ));
    let big = vec![b' '; MAX_RESULT_LEN + 1];
    assert!(matches!(
        JobResult::decode(&big),
        Err(ResultError::TooLarge {
            what: "document",
            ..
        })
    ));
    for garbage in [&b""[..], b"{}", b"[1]", b"\"x\"", b"{\"version\":1}"] {
        assert!(JobResult::decode(garbage).is_err());
    }
}

fn refused(edit: impl FnOnce(&mut JobResult), message: &str) {
    let mut r = sample();
    edit(&mut r);
    let err = r.validate().unwrap_err();
    assert!(
        err.to_string().contains(message),
        "expected {message:?}: {err}"
    );
    let err = JobResult::decode(&r.encode()).unwrap_err();
    assert!(
        err.to_string().contains(message),
        "expected {message:?}: {err}"
    );
}

#[test]
fn every_validate_refusal_says_what() {
    refused(
        |r| r.executor.push_str(" comment"),
        "is not an ssh-ed25519 public key line",
    );
    refused(
        |r| r.executor = signer(1).public().endpoint_id(),
        "without comment",
    );
    refused(|r| r.executor = "ssh-rsa AAAA".into(), "public key line");
    refused(
        |r| r.started = "yesterday".into(),
        "started \"yesterday\" is not a UTC RFC 3339 time",
    );
    refused(
        |r| r.ended = "2026-12-01 14:20:28".into(),
        "ended \"2026-12-01 14:20:28\"",
    );
    refused(
        |r| r.exit = Exit::Signal(0),
        "signal 0 is not between 1 and 127",
    );
    refused(|r| r.exit = Exit::Signal(128), "signal 128");
    refused(
        |r| r.missing_outputs = vec!["../x".into()],
        "has a '..' component",
    );
    refused(
        |r| r.missing_outputs = vec!["b".into(), "a".into()],
        "not sorted",
    );
    refused(
        |r| r.missing_outputs = vec!["x".into(); MAX_OUTPUTS + 1],
        "more than 4096",
    );
    refused(
        |r| r.platform.sandbox.reverse(),
        "sandbox list is not sorted",
    );
    refused(|r| r.platform.os = String::new(), "platform os");
    refused(|r| r.version = 2, "version 2 is not supported");
}

#[test]
fn a_signed_result_verifies_and_names_its_executor() {
    let key = signer(1);
    let result = sample();
    let signed = SignedResult::sign(&result, &key).unwrap();
    assert_eq!(signed.result, result.encode());
    assert!(
        signed
            .signature
            .starts_with("-----BEGIN SSH SIGNATURE-----\n")
    );
    let (back, by) = signed.verify().unwrap();
    assert_eq!(back, result);
    assert_eq!(by.bytes(), key.public().bytes());
    // As JSON: the result is its canonical text, as a string.
    let json = serde_json::to_value(&signed).unwrap();
    assert_eq!(json["result"], String::from_utf8(result.encode()).unwrap());
    let again: SignedResult = serde_json::from_value(json).unwrap();
    assert_eq!(again, signed);
    assert!(serde_json::from_str::<SignedResult>(r#"{"result":"","signature":"","x":1}"#).is_err());
}

#[test]
fn a_result_signed_wrongly_is_refused() {
    let (key, other) = (signer(1), signer(2));
    let result = sample();
    let err = SignedResult::sign(&result, &other).unwrap_err();
    assert!(matches!(err, ResultError::NotExecutor { .. }), "{err}");

    let good = SignedResult::sign(&result, &key).unwrap();
    // Another key's signature of the same bytes.
    let by_other = SignedResult {
        signature: other
            .sign(RESULT_NAMESPACE, &good.result)
            .unwrap()
            .to_armored(),
        ..good.clone()
    };
    let err = by_other.verify().unwrap_err();
    assert!(
        matches!(err, ResultError::Signature(SigError::WrongSigner { .. })),
        "{err}"
    );
    // The executor's signature for another purpose.
    let other_ns = SignedResult {
        signature: key.sign("clive-cert", &good.result).unwrap().to_armored(),
        ..good.clone()
    };
    let err = other_ns.verify().unwrap_err();
    assert!(
        matches!(err, ResultError::Signature(SigError::WrongNamespace { .. })),
        "{err}"
    );
    // A changed result.
    let mut changed = result.clone();
    changed.exit = Exit::Code(1);
    let tampered = SignedResult {
        result: changed.encode(),
        ..good.clone()
    };
    let err = tampered.verify().unwrap_err();
    assert!(
        matches!(err, ResultError::Signature(SigError::BadSignature)),
        "{err}"
    );
    // Validly signed, but not the canonical bytes.
    let value: Value = serde_json::from_slice(&good.result).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    let loose = SignedResult {
        signature: key.sign(RESULT_NAMESPACE, &pretty).unwrap().to_armored(),
        result: pretty,
    };
    assert!(matches!(loose.verify(), Err(ResultError::NotCanonical)));
    // A signature that is not one, or far too long.
    let junk = SignedResult {
        signature: "junk".into(),
        ..good.clone()
    };
    assert!(matches!(
        junk.verify(),
        Err(ResultError::Signature(SigError::Malformed { .. }))
    ));
    let long = SignedResult {
        signature: "x".repeat(MAX_SIGNATURE_LEN + 1),
        ..good
    };
    assert!(matches!(
        long.verify(),
        Err(ResultError::TooLarge {
            what: "signature",
            ..
        })
    ));
}

#[test]
fn a_verdict_kept_is_for_exactly_those_bytes() {
    let good = SignedResult::sign(&sample(), &signer(1)).unwrap();
    let first = good.verify().unwrap();
    // Again, from what the first verification kept: the same verdict.
    assert_eq!(good.verify().unwrap(), first);
    assert_eq!(good.verify_uncached().unwrap(), first);
    // The same signature over other bytes, or other signature bytes over
    // the same result, is verified afresh, and refused.
    let mut changed = sample();
    changed.exit = Exit::Code(3);
    let moved = SignedResult {
        result: changed.encode(),
        ..good.clone()
    };
    assert!(moved.verify().is_err());
    // One base64 character in the middle of the signature's body.
    let (head, body) = good.signature.split_once('\n').unwrap();
    let mut body = body.as_bytes().to_vec();
    let i = (body.len() / 2..body.len())
        .find(|&i| body[i].is_ascii_alphanumeric())
        .unwrap();
    body[i] = if body[i] == b'A' { b'B' } else { b'A' };
    let resigned = SignedResult {
        signature: format!("{head}\n{}", String::from_utf8(body).unwrap()),
        ..good.clone()
    };
    assert_ne!(resigned.signature, good.signature);
    assert!(resigned.verify().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = JobResult::decode(&bytes);
        let signed = SignedResult { result: bytes.clone(), signature: String::from_utf8_lossy(&bytes).into_owned() };
        let _ = signed.verify();
    }

    #[test]
    fn a_changed_byte_of_a_signed_result_never_verifies(
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let good = SignedResult::sign(&sample(), &signer(1)).unwrap();
        let mut bytes = good.result.clone();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        let bad = SignedResult { result: bytes, ..good };
        prop_assert!(bad.verify().is_err());
    }
}
