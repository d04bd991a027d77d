//! The memo against a real state database and a real trust state; the
//! same rules through a home initialised by the binary, with the grant made
//! by `trust grant --cap attest`, are in tests/tests/jobs_documents.rs.

use clive_trust::{Capability, Caps, CertBody, ManualClock, Signer};

use super::*;
use crate::{
    authority::NodeTrust,
    jobs::result::tests::{sample_for, signer},
};

const NOW: u64 = 1_800_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    db: Arc<Database>,
    memo: Memo,
    trust: NodeTrust,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::create(dir.path().join("state.redb")).unwrap());
    let trust = NodeTrust::open(
        db.clone(),
        &dir.path().join("allowed_signers"),
        signer(1).public(),
        Arc::new(ManualClock::new(NOW)),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        memo: Memo::new(db.clone()),
        db,
        trust,
    }
}

/// `issuer` grants `subject` `caps` in `trust`.
fn grant(trust: &NodeTrust, issuer: &dyn Signer, subject: &dyn Signer, caps: &[Capability]) {
    let cert = CertBody {
        issuer: issuer.public(),
        subject: subject.public(),
        caps: Caps::of(caps),
        delegate: 0,
        valid_from: NOW - 60,
        valid_until: NOW + 3600,
        nonce: [subject.public().bytes()[0]; 16],
    }
    .sign(issuer)
    .unwrap();
    trust.add_cert(cert).unwrap();
}

fn job(n: u8) -> JobId {
    JobId(Hash::new([n]))
}

fn signed(job: JobId, by: &dyn Signer) -> SignedResult {
    SignedResult::sign(&sample_for(job, by), by).unwrap()
}

#[test]
fn only_my_results_and_those_of_attested_keys_are_hits() {
    let f = fixture();
    let (me, stranger, attested, executor) = (signer(1), signer(2), signer(3), signer(4));
    grant(&f.trust, &me, &attested, &[Capability::Attest]);
    grant(
        &f.trust,
        &me,
        &executor,
        &[Capability::Exec, Capability::Fetch],
    );

    assert!(f.memo.get(&job(1)).unwrap().is_none());
    assert!(
        f.memo
            .hit(&job(1), &me.public(), &f.trust)
            .unwrap()
            .is_none()
    );

    for (n, by, hit) in [
        (1, &me, true),
        (2, &stranger, false),
        (3, &attested, true),
        (4, &executor, false),
    ] {
        let s = signed(job(n), by);
        f.memo.put(&s).unwrap();
        assert_eq!(
            f.memo.get(&job(n)).unwrap(),
            Some(s.clone()),
            "kept whoever signed it"
        );
        let found = f.memo.hit(&job(n), &me.public(), &f.trust).unwrap();
        assert_eq!(found.is_some(), hit, "result of job {n}");
        if let Some((result, again)) = found {
            assert_eq!(again, s);
            assert_eq!(result.job, job(n));
        }
    }
    // The same results, asked by the stranger: only its own is a hit.
    assert!(
        f.memo
            .hit(&job(2), &stranger.public(), &f.trust)
            .unwrap()
            .is_some()
    );
    // A root key holds no capability by being a root: only a certificate grants attest.
    assert!(
        f.memo
            .hit(&job(1), &stranger.public(), &f.trust)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_later_result_replaces_the_earlier_one() {
    let f = fixture();
    let (me, stranger) = (signer(1), signer(2));
    f.memo.put(&signed(job(1), &me)).unwrap();
    assert!(
        f.memo
            .hit(&job(1), &me.public(), &f.trust)
            .unwrap()
            .is_some()
    );
    f.memo.put(&signed(job(1), &stranger)).unwrap();
    assert!(
        f.memo
            .hit(&job(1), &me.public(), &f.trust)
            .unwrap()
            .is_none()
    );
}

#[test]
fn runs_that_did_not_complete_are_kept_but_never_hits_nor_replace_one_that_did() {
    let f = fixture();
    let me = signer(1);
    let sign = |edit: &dyn Fn(&mut JobResult)| {
        let mut r = sample_for(job(1), &me);
        edit(&mut r);
        SignedResult::sign(&r, &me).unwrap()
    };
    let timed_out = sign(&|r| r.timed_out = true);
    let cancelled = sign(&|r| r.cancelled = true);
    let failed = sign(&|r| r.exit = crate::jobs::result::Exit::Code(2));
    for incomplete in [&timed_out, &cancelled] {
        f.memo.put(incomplete).unwrap();
        assert_eq!(f.memo.get(&job(1)).unwrap().as_ref(), Some(incomplete));
        assert!(
            f.memo
                .hit(&job(1), &me.public(), &f.trust)
                .unwrap()
                .is_none()
        );
    }
    // A failing exit status is a result like any other.
    f.memo.put(&failed).unwrap();
    let (hit, _) = f
        .memo
        .hit(&job(1), &me.public(), &f.trust)
        .unwrap()
        .unwrap();
    assert_eq!(hit.exit_code(), 2);
    f.memo.put(&cancelled).unwrap();
    assert_eq!(f.memo.get(&job(1)).unwrap(), Some(failed.clone()));
    let ok = sign(&|_| {});
    f.memo.put(&ok).unwrap();
    assert_eq!(f.memo.get(&job(1)).unwrap(), Some(ok));
}

#[test]
fn put_verifies_first_and_damaged_records_are_no_hits() {
    let f = fixture();
    let me = signer(1);
    let mut bad = signed(job(1), &me);
    bad.result[10] ^= 1;
    assert!(matches!(f.memo.put(&bad), Err(MemoError::Result(_))));
    assert!(f.memo.get(&job(1)).unwrap().is_none());

    let write = |id: JobId, bytes: &[u8]| {
        let tx = f.db.begin_write().unwrap();
        tx.open_table(RESULTS)
            .unwrap()
            .insert(id.0.as_bytes(), bytes)
            .unwrap();
        tx.commit().unwrap();
    };
    f.memo.put(&signed(job(5), &me)).unwrap();
    write(job(2), b"\x01{not json");
    write(job(3), b"\x07{}");
    write(job(4), b"");
    // A valid result of job 6, stored under job 7.
    write(job(7), &encode_record(&signed(job(6), &me)));
    // A record that decodes but whose signature no longer verifies.
    write(job(8), &encode_record(&bad));
    for n in [2, 3, 4] {
        let err = f.memo.get(&job(n)).unwrap_err();
        assert!(matches!(err, MemoError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains(&job(n).to_string()), "{err}");
    }
    assert!(
        f.memo
            .get(&job(3))
            .unwrap_err()
            .to_string()
            .contains("record version 7")
    );
    for n in [2, 3, 4, 7, 8] {
        assert!(
            f.memo
                .hit(&job(n), &me.public(), &f.trust)
                .unwrap()
                .is_none(),
            "job {n}"
        );
    }
    // objects() skips the damaged ones and still lists the rest.
    let good = sample_for(job(5), &me);
    let objects = f.memo.objects().unwrap();
    for h in [good.outputs, good.stdout, good.stderr] {
        assert!(objects.contains(&h));
    }
}

#[test]
fn objects_lists_every_referenced_object_once() {
    let f = fixture();
    assert!(f.memo.objects().unwrap().is_empty());
    let me = signer(1);
    let mut a = sample_for(job(1), &me);
    a.outputs = Hash::new(b"tree a");
    let mut b = sample_for(job(2), &me);
    b.outputs = Hash::new(b"tree b");
    for r in [&a, &b] {
        f.memo.put(&SignedResult::sign(r, &me).unwrap()).unwrap();
    }
    let mut want = vec![a.outputs, b.outputs, a.stdout, a.stderr];
    want.sort();
    assert_eq!(f.memo.objects().unwrap(), want);
}

#[test]
fn oversized_records_are_refused_before_decoding() {
    let big = vec![b' '; MAX_RECORD_LEN + 1];
    assert!(
        decode_record(&big)
            .unwrap_err()
            .contains("more than any record")
    );
    let s = signed(job(1), &signer(1));
    assert_eq!(decode_record(&encode_record(&s)).unwrap(), s);
}
