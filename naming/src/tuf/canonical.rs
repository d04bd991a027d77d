//! Canonical JSON (the OLPC dialect TUF and securesystemslib sign).
//!
//! Objects have their keys sorted, there is no insignificant white space,
//! only `"` and `\` are escaped in strings, and floating point numbers are
//! refused.

use serde::Serialize;
use serde_json::Value;

use super::error::{Result, TufError};

/// Canonical JSON bytes of `value`, byte for byte what securesystemslib's
/// `encode_canonical` produces (which python-tuf and go-tuf sign): keys
/// sorted by code point, no white space, strings as UTF-8 with only `"` and
/// `\` escaped and no Unicode normalization.
///
/// Fails (rather than guess) on floating point numbers, which canonical JSON
/// cannot represent.
pub fn to_canonical_bytes(value: &Value) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    write_canonical(value, &mut buf)?;
    Ok(buf)
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if n.is_f64() {
                return Err(TufError::Json {
                    role: "canonical".into(),
                    reason: format!("cannot encode {n} as canonical JSON: not an integer"),
                });
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // Byte order of UTF-8 is code point order, as Python sorts.
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out)?;
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
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
