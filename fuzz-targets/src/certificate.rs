use clive_trust::{
    Capability, Caps, CertBody, Certificate, KeySigner, PublicIdentity, SecretKey, Signer,
    cert::MAX_CHAIN_LEN,
};

/// The first second `format_time` cannot write (year 10000): times a
/// decoded certificate can hold are below it.
const TIME_LIMIT: u64 = 253_402_300_800;

fn signer() -> KeySigner {
    let secret = SecretKey::from_seed([7; 32]);
    let public = PublicIdentity::from_bytes(secret.public_bytes());
    KeySigner::new(secret, public).expect("the public key is the secret's")
}

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    for (i, b) in bytes.iter().skip(at).take(8).enumerate() {
        w[i] = *b;
    }
    u64::from_le_bytes(w)
}

/// Signed certificates (`trust::cert`): what `Certificate::decode` reads
/// from files and peers.
///
/// The first input byte picks a mode:
/// - even: the rest is a certificate's encoding. Properties: never panics;
///   one that decodes re-encodes to exactly the input, and its id is the
///   BLAKE3 of the input.
/// - odd: the rest chooses the fields of a body that a fixed key signs
///   (reaching past the signature check, which random bytes cannot).
///   Property: the signed certificate decodes back to the same body and id.
pub fn certificate(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Ok(cert) = Certificate::decode(rest) else {
            return;
        };
        assert_eq!(
            cert.encode(),
            rest,
            "a decoded certificate is not canonical"
        );
        assert_eq!(cert.id(), *blake3::hash(rest).as_bytes());
        return;
    }
    let signer = signer();
    let mut subject = [0u8; 32];
    for (i, b) in rest.iter().skip(18).take(32).enumerate() {
        subject[i] = *b;
    }
    let mut nonce = [0u8; 16];
    for (i, b) in rest.iter().skip(50).take(16).enumerate() {
        nonce[i] = *b;
    }
    let caps_bits = rest.first().copied().unwrap_or(0);
    let caps: Vec<Capability> = Capability::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| caps_bits & (1 << i) != 0)
        .map(|(_, c)| c)
        .collect();
    let body = CertBody {
        issuer: Signer::public(&signer),
        subject: PublicIdentity::from_bytes(subject),
        caps: Caps::of(&caps),
        delegate: rest.get(1).copied().unwrap_or(0) % MAX_CHAIN_LEN as u8,
        valid_from: word(rest, 2) % TIME_LIMIT,
        valid_until: word(rest, 10) % TIME_LIMIT,
        nonce,
    };
    let Ok(cert) = body.clone().sign(&signer) else {
        return;
    };
    let encoded = cert.encode();
    match Certificate::decode(&encoded) {
        Ok(back) => {
            assert_eq!(back.body(), &body);
            assert_eq!(back.id(), cert.id());
            assert_eq!(back.encode(), encoded);
        }
        // Bodies the format cannot hold (no capability, times outside
        // RFC 3339, an empty validity) are refused, never mangled.
        Err(e) => assert!(
            CertBody::decode(body.encode().as_bytes()).is_err(),
            "a signed certificate does not decode: {e}"
        ),
    }
}
