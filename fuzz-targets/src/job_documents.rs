use std::{collections::BTreeMap, path::Path};

use clive_node::jobs::{
    document::{Input, JobDoc},
    jobfile::JobSpec,
    memo,
    platform::{Requirements, Target},
    result::{JobResult, SignedResult, executor_line},
};
use clive_trust::{KeySigner, PublicIdentity, SecretKey, Signer};

fn signer() -> KeySigner {
    let secret = SecretKey::from_seed([7; 32]);
    let public = PublicIdentity::from_bytes(secret.public_bytes());
    KeySigner::new(secret, public).expect("the public key is the secret's")
}

/// Job documents, results and what else a job's parsers read from files
/// and peers (`node::jobs`).
///
/// The first input byte picks a mode; the rest is the input:
/// - 0: a job document (`JobDoc::decode`). Properties: one that decodes is
///   valid, its encoding decodes to the same document and is stable, and
///   its id is the BLAKE3 of that encoding.
/// - 1: a job result (`JobResult::decode`). Properties: one that decodes is
///   valid and its encoding decodes to the same result; signed by a fixed
///   key made its executor (reaching past the signature check, which random
///   bytes cannot), it verifies as that key's.
/// - 2: a stored memo record (`memo::decode_record`), then its signature
///   check (`SignedResult::verify`). Property: a result that verifies is
///   exactly its canonical bytes.
/// - 3: a `JOB.toml` (`JobSpec::parse`), then the document it makes with
///   an input of its own for every mount (`JobSpec::doc`). Property: a
///   document it makes decodes from its encoding to itself.
/// - 4: platform requirements and a `--on` target as written. Property:
///   requirements that parse print as text that parses back to them.
///
/// Every mode: never panics.
pub fn job_documents(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 5 {
        0 => {
            let Ok(doc) = JobDoc::decode(rest) else {
                return;
            };
            doc.validate().expect("a decoded document is valid");
            let encoded = doc.encode();
            let back = JobDoc::decode(&encoded).expect("an encoded document decodes");
            assert_eq!(back, doc);
            assert_eq!(back.encode(), encoded, "the encoding is stable");
            assert_eq!(doc.id().0.as_bytes(), blake3::hash(&encoded).as_bytes());
        }
        1 => {
            let Ok(result) = JobResult::decode(rest) else {
                return;
            };
            result.validate().expect("a decoded result is valid");
            let back = JobResult::decode(&result.encode()).expect("an encoded result decodes");
            assert_eq!(back, result);
            // Signed by a fixed key as its executor, it verifies as that key's.
            let signer = signer();
            let mut result = result;
            result.executor = executor_line(&signer.public());
            let signed = SignedResult::sign(&result, &signer).expect("a valid result signs");
            let (verified, by) = signed.verify().expect("a signed result verifies");
            assert_eq!(verified, result);
            assert_eq!(by.bytes(), signer.public().bytes());
        }
        2 => {
            let Ok(signed) = memo::decode_record(rest) else {
                return;
            };
            if let Ok((result, _)) = signed.verify() {
                assert_eq!(result.encode(), signed.result);
            }
        }
        3 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let Ok(spec) = JobSpec::parse(text, Path::new("/job")) else {
                return;
            };
            let inputs: BTreeMap<String, Input> = spec
                .inputs
                .keys()
                .map(|m| {
                    let hash = clive_node::cas::Hash::new(m.as_bytes());
                    (m.clone(), Input { hash, name: None })
                })
                .collect();
            if let Ok(doc) = spec.doc(inputs) {
                let back = JobDoc::decode(&doc.encode()).expect("a made document decodes");
                assert_eq!(back, doc);
            }
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let _ = text.parse::<Target>();
            if let Ok(req) = Requirements::parse(text) {
                let printed = req.to_string();
                if !req.is_empty() {
                    let back = Requirements::parse(&printed).expect("printed requirements parse");
                    assert_eq!(back, req);
                }
            }
        }
    }
}
