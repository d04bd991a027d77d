//! Seals a payload as tickets are sealed: `prefix`, then the lowercase,
//! unpadded base32 of the version byte, the payload and the first 4 bytes
//! of BLAKE3 of both (the format in `node/src/net/ticket.rs`).

/// The ticket text of format version 1 carrying `payload`.
pub fn seal(prefix: &str, payload: &[u8]) -> String {
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(payload);
    let check = blake3::hash(&bytes);
    bytes.extend_from_slice(&check.as_bytes()[..4]);
    format!(
        "{prefix}{}",
        data_encoding::BASE32_NOPAD
            .encode(&bytes)
            .to_ascii_lowercase()
    )
}
