//! TUF public keys: parsing, key ids and signature verification.
//!
//! Supported (keytype, scheme) pairs are those the TUF specification and
//! securesystemslib define: `ed25519`/`ed25519` (hex public key),
//! `ecdsa`/`ecdsa-sha2-nistp256` (also keytype `ecdsa-sha2-nistp256`; PEM
//! SPKI public key, DER signature over SHA-256), and `rsa` with
//! `rsassa-pss-sha256` or `rsa-pkcs1v15-sha256` (PEM SPKI public key). Keys
//! of any other type parse fine but never verify anything.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::canonical::to_canonical_bytes;
use super::error::{Result, TufError};

/// A public key as it appears in root or delegations metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Key type, for example `ed25519`, `ecdsa` or `rsa`.
    pub keytype: String,
    /// Signature scheme, for example `ed25519` or `ecdsa-sha2-nistp256`.
    pub scheme: String,
    /// Key value; `public` holds the public key (hex or PEM).
    pub keyval: Map<String, Value>,
    /// Fields this implementation does not interpret, kept for round trips.
    pub unrecognized: Map<String, Value>,
}

impl Key {
    /// An `ed25519` key for the given 32-byte public key.
    pub fn ed25519(public: &[u8; 32]) -> Key {
        let mut keyval = Map::new();
        keyval.insert("public".into(), Value::String(hex::encode(public)));
        Key {
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
            keyval,
            unrecognized: Map::new(),
        }
    }

    /// The key id securesystemslib computes: hex SHA-256 of the canonical
    /// JSON of `{keytype, scheme, keyval}`.
    pub fn id(&self) -> String {
        let mut m = Map::new();
        m.insert("keytype".into(), Value::String(self.keytype.clone()));
        m.insert("scheme".into(), Value::String(self.scheme.clone()));
        m.insert("keyval".into(), Value::Object(self.keyval.clone()));
        // A key parsed from JSON has no floats in keyval unless the document
        // had one; hash the empty encoding then (such a key cannot match).
        let bytes = to_canonical_bytes(&Value::Object(m)).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// The 32-byte public key of an `ed25519` key, if it is one.
    pub fn ed25519_public(&self) -> Option<[u8; 32]> {
        if self.keytype != "ed25519" || self.scheme != "ed25519" {
            return None;
        }
        let hex_str = self.public()?;
        let bytes = hex::decode(hex_str).ok()?;
        bytes.try_into().ok()
    }

    /// The `keyval.public` string, if present.
    pub fn public(&self) -> Option<&str> {
        self.keyval.get("public").and_then(Value::as_str)
    }

    /// Verify `signature_hex` (hex-encoded signature bytes) over `message`.
    pub fn verify(&self, message: &[u8], signature_hex: &str) -> Result<()> {
        let fail = |reason: &str| TufError::Key {
            keyid: "-".into(),
            reason: reason.to_string(),
        };
        let sig = hex::decode(signature_hex).map_err(|_| fail("signature is not hex"))?;
        let public = self
            .public()
            .ok_or_else(|| fail("keyval has no public key"))?;
        match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ed25519", "ed25519") => {
                let pk = self
                    .ed25519_public()
                    .ok_or_else(|| fail("ed25519 public key is not 32 hex bytes"))?;
                let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk)
                    .map_err(|_| fail("invalid ed25519 public key"))?;
                let sig = ed25519_dalek::Signature::from_slice(&sig)
                    .map_err(|_| fail("ed25519 signature is not 64 bytes"))?;
                vk.verify_strict(message, &sig)
                    .map_err(|_| fail("ed25519 signature does not verify"))
            }
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                use p256::ecdsa::signature::Verifier;
                use p256::pkcs8::DecodePublicKey;
                let vk = p256::ecdsa::VerifyingKey::from_public_key_pem(public)
                    .map_err(|_| fail("invalid PEM P-256 public key"))?;
                let sig = p256::ecdsa::Signature::from_der(&sig)
                    .map_err(|_| fail("ecdsa signature is not DER"))?;
                vk.verify(message, &sig)
                    .map_err(|_| fail("ecdsa signature does not verify"))
            }
            ("rsa", "rsassa-pss-sha256" | "rsa-pkcs1v15-sha256") => {
                use rsa::pkcs8::DecodePublicKey;
                use rsa::signature::Verifier;
                let pk = rsa::RsaPublicKey::from_public_key_pem(public)
                    .map_err(|_| fail("invalid PEM RSA public key"))?;
                if self.scheme == "rsa-pkcs1v15-sha256" {
                    let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(pk);
                    let sig = rsa::pkcs1v15::Signature::try_from(sig.as_slice())
                        .map_err(|_| fail("bad rsa signature encoding"))?;
                    vk.verify(message, &sig)
                        .map_err(|_| fail("rsa signature does not verify"))
                } else {
                    use rsa::traits::PublicKeyParts;
                    let sig = rsa::pss::Signature::try_from(sig.as_slice())
                        .map_err(|_| fail("bad rsa signature encoding"))?;
                    // securesystemslib signs with a salt as long as the digest
                    // and verifies with any salt length; try the digest length
                    // first, then the maximum.
                    let em_len = pk.size();
                    let max_salt = em_len.saturating_sub(32 + 2);
                    let mut result = Err(fail("rsa-pss signature does not verify"));
                    for salt in [32, max_salt] {
                        let vk =
                            rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(pk.clone(), salt);
                        if vk.verify(message, &sig).is_ok() {
                            result = Ok(());
                            break;
                        }
                    }
                    result
                }
            }
            (kt, sc) => Err(fail(&format!("unsupported key type/scheme {kt}/{sc}"))),
        }
    }

    /// Parse a key from its JSON form (`keyid` only names it in errors).
    pub fn from_value(keyid: &str, value: Value) -> Result<Key> {
        let what = format!("key {keyid}");
        let Value::Object(mut map) = value else {
            return Err(TufError::invalid(&what, "key is not an object"));
        };
        let keytype = take_string(&mut map, "keytype", &what)?;
        let scheme = take_string(&mut map, "scheme", &what)?;
        let keyval = match map.remove("keyval") {
            Some(Value::Object(m)) => m,
            _ => return Err(TufError::invalid(&what, "keyval must be an object")),
        };
        Ok(Key {
            keytype,
            scheme,
            keyval,
            unrecognized: map,
        })
    }

    /// The JSON form of the key.
    pub fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("keytype".into(), Value::String(self.keytype.clone()));
        m.insert("scheme".into(), Value::String(self.scheme.clone()));
        m.insert("keyval".into(), Value::Object(self.keyval.clone()));
        Value::Object(m)
    }
}

pub(crate) fn take_string(map: &mut Map<String, Value>, field: &str, what: &str) -> Result<String> {
    match map.remove(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(TufError::invalid(what, format!("{field} must be a string"))),
        None => Err(TufError::invalid(what, format!("missing field {field}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;

    #[test]
    fn ed25519_roundtrip() {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let key = Key::ed25519(sk.verifying_key().as_bytes());
        assert_eq!(key.ed25519_public(), Some(*sk.verifying_key().as_bytes()));
        let sig = hex::encode(sk.sign(b"hello").to_bytes());
        key.verify(b"hello", &sig).unwrap();
        assert!(key.verify(b"hellO", &sig).is_err());
        assert!(key.verify(b"hello", "zz").is_err());
        let parsed = Key::from_value("x", key.to_value()).unwrap();
        assert_eq!(parsed, key);
        assert_eq!(parsed.id(), key.id());
        assert_eq!(key.id().len(), 64);
    }

    #[test]
    fn unknown_scheme_parses_but_never_verifies() {
        let v = serde_json::json!({"keytype": "foo", "scheme": "bar", "keyval": {"public": "00"}, "x": 1});
        let key = Key::from_value("k", v).unwrap();
        assert_eq!(key.unrecognized.get("x"), Some(&Value::from(1)));
        assert!(key.verify(b"m", "00").is_err());
    }
}
