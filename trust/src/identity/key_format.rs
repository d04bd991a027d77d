//! What the bytes of a private key file hold: an OpenSSH private key, or
//! else what kind of file it is instead (another key type, PKCS#8, PuTTY, a
//! public key), read from the OpenSSH header when the key cannot be decoded.

use std::path::Path;

use ssh_key::{Algorithm, PrivateKey};
use zeroize::Zeroizing;

use super::base64::base64_decode;
use super::error::IdentityError;

/// Parses an OpenSSH private key file's bytes, explaining what else the file
/// is when it is not one.
pub(super) fn parse_private(path: &Path, bytes: &[u8]) -> Result<PrivateKey, IdentityError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(IdentityError::malformed(
            path,
            "it is not a text file (an OpenSSH key starts with \
             -----BEGIN OPENSSH PRIVATE KEY-----)",
        ));
    };
    let text = text.trim();
    let not_ed25519 = |algorithm: &str| IdentityError::NotEd25519 {
        path: path.to_owned(),
        algorithm: algorithm.to_owned(),
    };
    if text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
        return PrivateKey::from_openssh(text).map_err(|e| match e {
            ssh_key::Error::AlgorithmUnsupported { algorithm } => not_ed25519(algorithm.as_str()),
            // ssh-key cannot decode every key type (and fails on some P-521
            // keys); name the type from the file's unencrypted header.
            e => match openssh_key_algorithm(text) {
                Some(algorithm) if algorithm != Algorithm::Ed25519.as_str() => {
                    not_ed25519(&algorithm)
                }
                _ => IdentityError::malformed(path, format!("the file is damaged ({e})")),
            },
        });
    }
    // Legacy PEM files, e.g. from `ssh-keygen -m PEM` or openssl.
    if text.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        return Err(not_ed25519("ssh-rsa"));
    }
    if text.starts_with("-----BEGIN EC PRIVATE KEY-----") {
        return Err(not_ed25519("ecdsa"));
    }
    if text.starts_with("-----BEGIN DSA PRIVATE KEY-----") {
        return Err(not_ed25519("ssh-dss"));
    }
    let reason = if text.is_empty() {
        "the file is empty".to_owned()
    } else if text.starts_with("-----BEGIN PRIVATE KEY-----")
        || text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    {
        "it is a PKCS#8 key, not in OpenSSH format; make one with ssh-keygen -t ed25519".to_owned()
    } else if text.starts_with("PuTTY-User-Key-File") {
        "it is a PuTTY key; export it with puttygen as an OpenSSH key".to_owned()
    } else if text.starts_with("---- BEGIN SSH2 PUBLIC KEY ----")
        || ssh_key::PublicKey::from_openssh(text).is_ok()
    {
        "it is a public key; give the private key file (the one without .pub)".to_owned()
    } else {
        "it does not start with -----BEGIN OPENSSH PRIVATE KEY-----".to_owned()
    };
    Err(IdentityError::malformed(path, reason))
}

/// The key type named in the public key of an OpenSSH private key file
/// (`-----BEGIN OPENSSH PRIVATE KEY-----`), if the header is readable.
///
/// The header (see OpenSSH's PROTOCOL.key) is `"openssh-key-v1\0"`, string
/// cipher, string kdf, string kdf options, uint32 count, then the first
/// public key as a string whose first field is the key type.
fn openssh_key_algorithm(text: &str) -> Option<String> {
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect();
    let bytes = Zeroizing::new(base64_decode(&body)?);
    let mut rest = bytes.strip_prefix(b"openssh-key-v1\0")?;
    for _ in 0..3 {
        take_string(&mut rest)?;
    }
    rest = rest.get(4..)?;
    let mut public = take_string(&mut rest)?;
    let algorithm = take_string(&mut public)?;
    String::from_utf8(algorithm.to_vec()).ok()
}

/// Takes an SSH `string` (uint32 length, bytes) off the front of `data`.
fn take_string<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len_bytes: [u8; 4] = data.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).ok()?;
    let end = len.checked_add(4)?;
    let string = data.get(4..end)?;
    *data = data.get(end..)?;
    Some(string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::base64::base64_padded;

    /// Armours `bytes` as an OpenSSH private key file.
    fn armour(bytes: &[u8]) -> String {
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            base64_padded(bytes)
        )
    }

    /// An OpenSSH private key container whose private part is garbage.
    fn container(algorithm: &str) -> Vec<u8> {
        let mut public = Vec::new();
        for field in [algorithm.as_bytes(), &[7u8; 40][..]] {
            public.extend_from_slice(&(field.len() as u32).to_be_bytes());
            public.extend_from_slice(field);
        }
        let mut out = b"openssh-key-v1\0".to_vec();
        for field in [&b"none"[..], b"none", b""] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&(public.len() as u32).to_be_bytes());
        out.extend_from_slice(&public);
        out.extend_from_slice(&[0, 0, 0, 3, 1, 2]);
        out
    }

    #[test]
    fn undecodable_key_is_named_from_header() {
        let path = Path::new("/k");
        for algorithm in ["ecdsa-sha2-nistp521", "ssh-rsa", "x-unknown@example.com"] {
            let text = armour(&container(algorithm));
            assert_eq!(openssh_key_algorithm(&text).as_deref(), Some(algorithm));
            match parse_private(path, text.as_bytes()) {
                Err(IdentityError::NotEd25519 { algorithm: a, .. }) => assert_eq!(a, algorithm),
                other => panic!("{algorithm}: {other:?}"),
            }
        }
        // A damaged ed25519 key stays "damaged".
        let text = armour(&container("ssh-ed25519"));
        assert!(matches!(
            parse_private(path, text.as_bytes()),
            Err(IdentityError::Malformed { .. })
        ));
        // Truncated headers yield nothing, without panicking.
        let full = container("ssh-rsa");
        for len in 0..full.len() - 8 {
            let text = armour(&full[..len]);
            let _ = openssh_key_algorithm(&text);
            assert!(parse_private(path, text.as_bytes()).is_err());
        }
    }
}
