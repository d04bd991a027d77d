//! The content address: BLAKE3 of an object's bytes, written as 64 lowercase
//! hex digits (exactly what `b3sum` prints).

pub use iroh_blobs::Hash;

/// Why a string is not a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a hash: expected 64 hex digits (BLAKE3, as `b3sum` prints)")]
pub struct ParseHashError {
    input: String,
}

/// Parses 64 hex digits (either case) into a hash.
pub fn parse_hash(s: &str) -> Result<Hash, ParseHashError> {
    let err = || ParseHashError {
        input: s.chars().take(80).collect(),
    };
    if s.len() != 64 {
        return Err(err());
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(s, &mut bytes).map_err(|_| err())?;
    Ok(Hash::from_bytes(bytes))
}

/// Serde adapter writing a hash as 64 lowercase hex digits.
pub mod serde_hex {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use super::{Hash, parse_hash};

    /// Writes the hash as hex.
    pub fn serialize<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hash.to_hex())
    }

    /// Reads a hash from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        parse_hash(&s).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_rejects_everything_else() {
        let h = Hash::new(b"abc");
        assert_eq!(parse_hash(&h.to_hex()).unwrap(), h);
        assert_eq!(parse_hash(&h.to_hex().to_uppercase()).unwrap(), h);
        assert!(parse_hash("abc").is_err());
        assert!(parse_hash(&"g".repeat(64)).is_err());
        assert!(parse_hash(&"é".repeat(32)).is_err());
        assert_eq!(h.to_hex(), blake3::hash(b"abc").to_hex().as_str());
    }
}
