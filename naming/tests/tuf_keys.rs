//! Key and canonical-JSON tests against values produced by python-tuf /
//! securesystemslib (fixtures generated with securesystemslib 1.4.0's
//! `CryptoSigner`, signing the message `hello`) and against the real signed
//! sigstore and tuf-on-ci root metadata shipped in the tuf-conformance
//! suite's static data.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use clive_naming::tuf::metadata::{Delegator, Metadata, Root, Signed};
use clive_naming::tuf::{Key, canonical};
use ed25519_dalek::Signer;
use serde_json::{Map, Value, json};

const RSA_PSS_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEA1jElmOpToP2Mvn3/5KGG\nQc4S5sZlhjCHjRUU1BUvlVn6uk00T2uc4hfrZoq64R5wnFo4x+EDfrfE2EKci0yg\nGzsnd79zIrMSj4wgo7MDLUlRVNAqu2aI2kMy4oMIXUMVZ/HVkfBLTWMv4ewjp/6E\nUXwUAKKzM2TIOxmkCR/ok99eqim/+S91uQFvvZzG+PJ9vGwTsbhe8HrtostdGgIR\n1qxKQw1zzaHtWqneyyWCRJpmzU4J+79MMffVNSabVjfFxAPj+EVve3WK7DFw7hLu\nDceDGWYdBcVRCgJOXieZyxyLfZ5xK2tB4kbknhWtqj1xuiy78zfhqDBmqAUHiBB5\nAzbdodEAmFbg/oWi0/F4pUOFSbCKMEFB5zWqTip+id6gfC84Y4TG8pzgCY0vFMkr\nyUmQ3+iI7mgd7D0W22+U03mZuXHFg2BTvpIwuE4+6QOjuTNoDUVHRoePlKQOb0Rh\nEAziN2loZvNNQ5FoTHpgJitOZlT+Po8wkXP9QwK8XUL/AgMBAAE=\n-----END PUBLIC KEY-----\n";
const RSA_PSS_SIG: &str = "3b530b6432d371a40d55dc9bedbf44678a7306fe853314ee993ae28edf58d9acd25de78ad3c0cc908b2fdd66aea5dd30fe8edb73f2c84c91afef0211e0726fa633b19a13b37dcd28ec6277e28df32aead7f944c5cfdf52038c4f0c359744f25e13fd9c6f4df6870e557c7822d4b4e21d1ab30b3818374585ebdb767b8bb8810f63e8e23f32e6a0ccb23ba1f25b56e3fbae257764ec5fb92c078ab34ce6d21b9b9e816483afca45a4129b13b30fc8ecc84626f8f3cb2e91b374583ba31ff9a529d115414229d08860605510c9a08936c192195931da2473f04d3479b8e4ba55dd0e746ae0097527e3c32938d297140e66776540f03bb824ca4cb9210836469ed2900aabdde03a162c8579957ebbeecbc40366435dee64a339dada215f0562a08c5f419b238500c1d895179e9ccc4c315b5da5ea1d05a2cfa4bdde3ebf32d038c195c91102ab279fa552253f0de8300fc96c0cfc6812f768b2d8cd4635e4b537de91b1358e22011df9bb9d37fc0f246c293ba2d55cb5f781b619f47851f2f8d131";

const RSA_PKCS1_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEAsfUF4u2Fp/w2ziCw/kMa\nyyA20YtybvbR5uq8MO/9aoAPj9fgVa36sJj5sg4uXgPNirpgHhJOZU6nqBt14jSW\nyHouGUOjgTAdBQiQFvg18H/FuMavh6qc2lh/PMhXD9AOqQRTPRt8EFJTlNNv1pNw\nYWbtX8xOt8mieLeIguCqh9cFU7CDO5C2MPMxhc8Zp5A6mGPhkH6+dA0kZKGT4AxP\nw1xOuZo6Zs8Ps40Iu90pEqkDiSse9oaK3ev6YawTr6SBvKHU4U4JIsdi3V3G+Ji5\nQyihoCumSZnN4al7hd4kq1paDx9e+NffHULMzLIcnLeWcxYBAsN+rCZpAzSXRN+b\nA0HrtWpnUQO/VIIrrjyDLyCK9BEWyEPIwq3fJ0ZfxMof8OxxilmBBwojSy+ZvE91\nJzUGjcwwr7ECAzMahz2hyX8jr6d0j9bJspFGZdJDFi1f+a8IhIavWmBFvkEa8k8l\n9BHxuMg6+7tW84ey4NOoycgTHjJkNhWAFDVbiznaHq1nAgMBAAE=\n-----END PUBLIC KEY-----\n";
const RSA_PKCS1_SIG: &str = "3ccc2545eec8efc88090ea8189e82280dd2c1eb1980e411da44aaabcfd6b8bebf3b0d11fdd89d1f451b77bb940200406d63a29a90e431cdcdf737a1f74ee351abb772d89cf76a0cb686e610b49bfcee302f00553eda582beadd3b4e404e3c580942f7c02c2376c3a34cf2b422687a2ae9804d877294914227c5686b4c155c10dba6fee9eb5b5b80ae734df396c5d8c6e3eebc1c4efbf97a0851a7b691fef9eb675019356f98a76a25eca26c62f1a5c65700e8d1db500009b24798ced93dfe5645da7fe95e84142e033687f6dcf9aeb0b1f64bb5343f2c5d25100cf36c9701e0e335899aafad0ead4fbb8dc105da9fa57e36e8fa2705d9813ef4c4579e5b2bb1f74260a05aa570eed07ec0f68d1b887e723b218b15cb46d02978e7b092c654c908c490a267e606ae5ace7aeeacf241fdc9df55eae4fc4ed2ebed0d0289a9637d7fdbe7912e6138ec0f2d96651eeb3363e4733485e0d159a69656a8e2f6eb9de688b5f6c80559dbd5be6f72ea685ce547cab04a0c0eb326197a7e70e01b939428c";

const ECDSA_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEx1NP0oVNZQ6TfAFs+YDxgLA1cvMN\nqK9rUZnMbfAoIlH0reCloSyOeAY9nXWNCAKym68j9x+JKySBnOeG/4JVFg==\n-----END PUBLIC KEY-----\n";
const ECDSA_SIG: &str = "3045022100f15c6b77960b161cde03174e9d6d5ae662c70f40ffa9781d9da80252f3f7f7ee02201659e0d2a14260be7407f2616754ca9a85f7dd47461ccbc9cb14a462142376ec";

fn pem_key(keytype: &str, scheme: &str, pem: &str) -> Key {
    let mut keyval = Map::new();
    keyval.insert("public".into(), Value::String(pem.into()));
    Key {
        keytype: keytype.into(),
        scheme: scheme.into(),
        keyval,
        unrecognized: Map::new(),
    }
}

/// Flip one hex digit in the middle of a signature.
fn corrupt(sig: &str) -> String {
    let mut s: Vec<char> = sig.chars().collect();
    let i = s.len() / 2;
    s[i] = if s[i] == '0' { '1' } else { '0' };
    s.into_iter().collect()
}

#[test]
fn ed25519_key_id_matches_securesystemslib() {
    // SSlibKey.from_crypto(Ed25519PrivateKey.from_private_bytes(b"\x07" * 32).public_key())
    let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let key = Key::ed25519(sk.verifying_key().as_bytes());
    assert_eq!(
        key.public(),
        Some("ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c")
    );
    assert_eq!(
        key.id(),
        "bfe1a83869e5bf574e3ff3acbb83f840de84a990d10059f3096f0bf4f2b90c10"
    );
    // CryptoSigner(...).sign(b"hello") (ed25519 is deterministic)
    let expected = "359a315920d9541c3cc2a1dd1839f3e40bf23358a1d93a6ebd8303c0310ceb5025e679222ab016b4d822c5001e787e00c0ceaa6ac3c6e80248a944bd47104f0c";
    assert_eq!(hex::encode(sk.sign(b"hello").to_bytes()), expected);
    key.verify(b"hello", expected).unwrap();
    assert!(key.verify(b"hello", &corrupt(expected)).is_err());
}

#[test]
fn rsa_pss_signature_from_securesystemslib() {
    let key = pem_key("rsa", "rsassa-pss-sha256", RSA_PSS_PEM);
    key.verify(b"hello", RSA_PSS_SIG).unwrap();
    assert!(key.verify(b"hellO", RSA_PSS_SIG).is_err());
    assert!(key.verify(b"hello", &corrupt(RSA_PSS_SIG)).is_err());
    // The same key under the other RSA scheme does not accept a PSS signature.
    let other = pem_key("rsa", "rsa-pkcs1v15-sha256", RSA_PSS_PEM);
    assert!(other.verify(b"hello", RSA_PSS_SIG).is_err());
}

#[test]
fn rsa_pkcs1v15_signature_from_securesystemslib() {
    let key = pem_key("rsa", "rsa-pkcs1v15-sha256", RSA_PKCS1_PEM);
    key.verify(b"hello", RSA_PKCS1_SIG).unwrap();
    assert!(key.verify(b"hellO", RSA_PKCS1_SIG).is_err());
    assert!(key.verify(b"hello", &corrupt(RSA_PKCS1_SIG)).is_err());
}

#[test]
fn ecdsa_signature_from_securesystemslib() {
    let key = pem_key("ecdsa", "ecdsa-sha2-nistp256", ECDSA_PEM);
    key.verify(b"hello", ECDSA_SIG).unwrap();
    assert!(key.verify(b"hellO", ECDSA_SIG).is_err());
    assert!(key.verify(b"hello", &corrupt(ECDSA_SIG)).is_err());
}

/// A file of the upstream tuf-conformance suite's static data, from the
/// checkout named by `CLIVE_TUF_CONFORMANCE` (as `tests/tuf-conformance/run`
/// sets it). The tests using it are ignored by default: the suite is not
/// part of this repository.
fn static_file(rel: &str) -> Vec<u8> {
    let dir = std::env::var_os("CLIVE_TUF_CONFORMANCE")
        .expect("set CLIVE_TUF_CONFORMANCE to a tuf-conformance checkout");
    let path = std::path::Path::new(&dir)
        .join("tuf_conformance/static_data")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
#[ignore = "needs a tuf-conformance checkout: tests/tuf-conformance/run runs it"]
fn sigstore_roots_verify_with_ecdsa() {
    let v11 = static_file("sigstore-root-signing/metadata/11.root.json");
    let v12 = static_file("sigstore-root-signing/metadata/12.root.json");
    let old = Metadata::<Root>::from_bytes(&v11).unwrap();
    let new = Metadata::<Root>::from_bytes(&v12).unwrap();
    assert_eq!(new.signed.version(), 12);
    // v12 is signed by a threshold of v11's root keys and of its own.
    let by_old = old.signed.verify_delegate("root", &new).unwrap();
    assert!(by_old.len() as u64 >= old.signed.roles["root"].threshold);
    new.signed.verify_delegate("root", &new).unwrap();
    // Re-encoding preserves the unrecognized fields, so the canonical bytes
    // (and thus the signatures) survive a round trip.
    let again = Metadata::<Root>::from_bytes(&new.to_bytes().unwrap()).unwrap();
    assert_eq!(again.signed_bytes().unwrap(), new.signed_bytes().unwrap());
    new.signed.verify_delegate("root", &again).unwrap();
    // A tampered document no longer verifies.
    let mut tampered = new.clone();
    tampered.signed.expires += 1;
    assert!(new.signed.verify_delegate("root", &tampered).is_err());
}

#[test]
#[ignore = "needs a tuf-conformance checkout: tests/tuf-conformance/run runs it"]
fn tuf_on_ci_root_verifies() {
    let v1 = static_file("tuf-on-ci-0.11/metadata/1.root.json");
    let root = Metadata::<Root>::from_bytes(&v1).unwrap();
    root.signed.verify_delegate("root", &root).unwrap();
}

#[test]
fn canonical_json_matches_securesystemslib_encoding() {
    // securesystemslib.formats.encode_canonical of the same object.
    let v = json!({"z": [1, {"b": false, "a": null}], "a": "\u{e9}\"\\", "m": -5});
    assert_eq!(
        canonical::to_canonical_bytes(&v).unwrap(),
        "{\"a\":\"\u{e9}\\\"\\\\\",\"m\":-5,\"z\":[1,{\"a\":null,\"b\":false}]}".as_bytes()
    );
}

#[test]
fn unknown_key_types_do_not_break_root_parsing() {
    let mut root = Root::new(4_000_000_000);
    let sk = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
    root.add_key(Key::ed25519(sk.verifying_key().as_bytes()), "root")
        .unwrap();
    let mut v = root.to_value();
    v["keys"]["weird"] =
        json!({"keytype": "sphincs", "scheme": "sphincs-shake", "keyval": {"public": "00"}});
    let parsed = Root::from_value(v).unwrap();
    assert_eq!(parsed.keys["weird"].keytype, "sphincs");
    assert!(parsed.keys["weird"].verify(b"x", "00").is_err());
}
