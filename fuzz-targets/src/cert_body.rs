use clive_trust::CertBody;

/// Certificate bodies (`trust::cert`): the text `CertBody::decode` reads
/// from `trust import` files and peers' hellos, before any signature.
///
/// Properties: decoding never panics; only canonical text decodes (its
/// encoding is exactly the input).
pub fn cert_body(data: &[u8]) {
    let Ok(body) = CertBody::decode(data) else {
        return;
    };
    assert_eq!(
        body.encode().as_bytes(),
        data,
        "a decoded body is not canonical"
    );
    assert!(body.valid_from < body.valid_until);
    assert!(!body.caps.is_empty());
}
