use clive_trust::{KeySigner, PublicIdentity, Revocation, SecretKey};

/// The first second `format_time` cannot write (year 10000).
const TIME_LIMIT: u64 = 253_402_300_800;

/// Revocations (`trust::revocation`): what `Revocation::decode` reads from
/// files and from peers' announcements.
///
/// The first input byte picks a mode:
/// - even: the rest is a revocation's encoding. Properties: never panics;
///   one that decodes re-encodes to exactly the input.
/// - odd: the rest chooses the revoked id and the time, a fixed key signs.
///   Property: it decodes back to the same fields.
pub fn revocation(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Ok(r) = Revocation::decode(rest) else {
            return;
        };
        assert_eq!(r.encode(), rest, "a decoded revocation is not canonical");
        return;
    }
    let secret = SecretKey::from_seed([9; 32]);
    let public = PublicIdentity::from_bytes(secret.public_bytes());
    let signer = KeySigner::new(secret, public.clone()).expect("matching halves");
    let mut certificate = [0u8; 32];
    for (i, b) in rest.iter().take(32).enumerate() {
        certificate[i] = *b;
    }
    let mut at = [0u8; 8];
    for (i, b) in rest.iter().skip(32).take(8).enumerate() {
        at[i] = *b;
    }
    let at = u64::from_le_bytes(at) % TIME_LIMIT;
    let r = Revocation::sign(certificate, at, &signer).expect("a key signs");
    let back = Revocation::decode(&r.encode()).expect("a signed revocation decodes");
    assert_eq!(back.certificate, certificate);
    assert_eq!(back.revoked_at, at);
    assert_eq!(back.revoker.bytes(), public.bytes());
    assert_eq!(back.encode(), r.encode());
}
