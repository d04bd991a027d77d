use clive_naming::tuf::canonical::{to_canonical_bytes, to_pretty_bytes};
use serde_json::Value;

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

fn has_control(v: &Value) -> bool {
    let control = |s: &str| s.bytes().any(|b| b < 0x20);
    match v {
        Value::String(s) => control(s),
        Value::Array(items) => items.iter().any(has_control),
        Value::Object(map) => map.iter().any(|(k, v)| control(k) || has_control(v)),
        _ => false,
    }
}

/// Canonical JSON (`naming::tuf::canonical`): the bytes TUF signatures
/// cover, written from whatever JSON a peer or mirror sent.
///
/// Properties: never panics; refuses exactly the documents holding floating
/// point numbers; the canonical bytes do not depend on the order of keys
/// (the pretty form, read back, has the same canonical bytes); and when no
/// string holds a control character (which canonical JSON leaves raw and
/// JSON forbids) the canonical bytes are JSON that reads back as the input.
pub fn canonical_json(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let canonical = to_canonical_bytes(&value);
    assert_eq!(canonical.is_err(), has_float(&value));
    let Ok(canonical) = canonical else {
        return;
    };
    let pretty = to_pretty_bytes(&value).expect("JSON without floats writes");
    let reread: Value = serde_json::from_slice(&pretty).expect("pretty JSON reads back");
    assert_eq!(reread, value);
    assert_eq!(to_canonical_bytes(&reread).ok().as_ref(), Some(&canonical));
    if !has_control(&value) {
        let back: Value = serde_json::from_slice(&canonical).expect("canonical JSON is JSON here");
        assert_eq!(back, value);
    }
}
