//! Canonical JSON (the OLPC dialect TUF and securesystemslib sign).
//!
//! Objects have their keys sorted, there is no insignificant white space,
//! only `"` and `\` are escaped in strings, and floating point numbers are
//! refused.

use serde::Serialize;
use serde_json::Value;

use super::error::{Result, TufError};

/// Canonical JSON bytes of `value`.
///
/// Fails (rather than guess) on floating point numbers, which canonical JSON
/// cannot represent.
pub fn to_canonical_bytes(value: &Value) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut buf, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut ser).map_err(|e| TufError::Json {
        role: "canonical".into(),
        reason: format!("cannot encode as canonical JSON: {e}"),
    })?;
    Ok(buf)
}

/// Pretty, deterministic JSON of `value` (one space indent, sorted keys), the
/// layout python-tuf's `JSONSerializer` writes; suitable for serving files.
pub fn to_pretty_bytes(value: &Value) -> Result<Vec<u8>> {
    let sorted = sorted(value);
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    sorted.serialize(&mut ser).map_err(|e| TufError::Json {
        role: "serialize".into(),
        reason: e.to_string(),
    })?;
    Ok(buf)
}

/// A copy of `value` whose objects have their keys inserted in sorted order
/// (so output is sorted whether or not serde_json preserves order).
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                if let Some(v) = map.get(k) {
                    out.insert(k.clone(), sorted(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_strips_whitespace() {
        let v = json!({"b": 1, "a": [true, null, "x"], "c": {"z": -2, "y": "q\"\\\n"}});
        let out = to_canonical_bytes(&v).unwrap();
        assert_eq!(
            out,
            b"{\"a\":[true,null,\"x\"],\"b\":1,\"c\":{\"y\":\"q\\\"\\\\\n\",\"z\":-2}}".to_vec()
        );
    }

    #[test]
    fn refuses_floats() {
        assert!(to_canonical_bytes(&json!({"a": 1.5})).is_err());
    }

    #[test]
    fn non_ascii_is_not_escaped() {
        let out = to_canonical_bytes(&json!({"é": "ü"})).unwrap();
        assert_eq!(out, "{\"é\":\"ü\"}".as_bytes());
    }

    #[test]
    fn pretty_is_sorted() {
        let out = to_pretty_bytes(&json!({"b": 1, "a": 2})).unwrap();
        assert_eq!(out, b"{\n \"a\": 2,\n \"b\": 1\n}".to_vec());
    }
}
