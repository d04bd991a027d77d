//! Typed TUF 1.0 metadata: the four top-level roles, delegations, file
//! info and the signed envelope.
//!
//! Decoding follows python-tuf's `tuf.api.metadata`: every field the
//! specification defines is type-checked, fields it does not know are kept
//! (`unrecognized`) so a document re-encodes to the same canonical bytes, and
//! the bytes signatures cover are the canonical JSON of the re-encoded
//! `signed` part. `expires` is held as unix seconds and written as
//! `YYYY-MM-DDTHH:MM:SSZ`.

use std::collections::BTreeMap;

use clive_trust::clock::{format_time, parse_time};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::canonical::{to_canonical_bytes, to_pretty_bytes};
use super::error::{Result, TufError};
use super::key::{Key, take_string};

/// Names of the four top-level roles.
pub const TOP_LEVEL_ROLE_NAMES: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

/// Largest metadata document [`Metadata::from_bytes`] accepts (64 MiB).
pub const MAX_METADATA_BYTES: usize = 64 * 1024 * 1024;

/// The specification version written into new metadata.
pub const SPECIFICATION_VERSION: &str = "1.0.31";

/// Fields a decoder does not interpret, kept verbatim.
pub type Unrecognized = Map<String, Value>;

/// The `signed` part of a metadata document of one role type.
pub trait Signed: Sized + Clone {
    /// The `_type` value (`root`, `timestamp`, `snapshot` or `targets`).
    const TYPE: &'static str;
    /// Decode from the JSON `signed` object.
    fn from_value(value: Value) -> Result<Self>;
    /// Encode to the JSON `signed` object.
    fn to_value(&self) -> Value;
    /// The metadata version.
    fn version(&self) -> u64;
    /// Expiry, unix seconds.
    fn expires(&self) -> u64;
    /// True when `now` (unix seconds) is at or past the expiry.
    fn is_expired(&self, now: u64) -> bool {
        now >= self.expires()
    }
    /// Refuses the document, as `role`, when it is expired at `now`.
    fn check_not_expired(&self, role: &str, now: u64) -> Result<()> {
        if self.is_expired(now) {
            return Err(TufError::Expired {
                role: role.into(),
                expires: self.expires(),
                now,
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- helpers

fn obj(value: Value, what: &str) -> Result<Map<String, Value>> {
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(TufError::invalid(what, "expected a JSON object")),
    }
}

fn take_u64(map: &mut Map<String, Value>, field: &str, what: &str) -> Result<u64> {
    match map.remove(field) {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            TufError::invalid(what, format!("{field} must be a non-negative integer"))
        }),
        Some(_) => Err(TufError::invalid(
            what,
            format!("{field} must be an integer"),
        )),
        None => Err(TufError::invalid(what, format!("missing field {field}"))),
    }
}

fn take_opt_u64(map: &mut Map<String, Value>, field: &str, what: &str) -> Result<Option<u64>> {
    if map.contains_key(field) {
        take_u64(map, field, what).map(Some)
    } else {
        Ok(None)
    }
}

fn take_bool(map: &mut Map<String, Value>, field: &str, what: &str) -> Result<bool> {
    match map.remove(field) {
        Some(Value::Bool(b)) => Ok(b),
        Some(_) => Err(TufError::invalid(
            what,
            format!("{field} must be a boolean"),
        )),
        None => Err(TufError::invalid(what, format!("missing field {field}"))),
    }
}

fn take_obj(map: &mut Map<String, Value>, field: &str, what: &str) -> Result<Map<String, Value>> {
    match map.remove(field) {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(TufError::invalid(
            what,
            format!("{field} must be an object"),
        )),
        None => Err(TufError::invalid(what, format!("missing field {field}"))),
    }
}

fn strings(value: Value, field: &str, what: &str) -> Result<Vec<String>> {
    let Value::Array(items) = value else {
        return Err(TufError::invalid(what, format!("{field} must be a list")));
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            _ => Err(TufError::invalid(
                what,
                format!("{field} must hold strings"),
            )),
        })
        .collect()
}

fn take_strings(map: &mut Map<String, Value>, field: &str, what: &str) -> Result<Vec<String>> {
    match map.remove(field) {
        Some(v) => strings(v, field, what),
        None => Err(TufError::invalid(what, format!("missing field {field}"))),
    }
}

fn take_opt_strings(
    map: &mut Map<String, Value>,
    field: &str,
    what: &str,
) -> Result<Option<Vec<String>>> {
    match map.remove(field) {
        Some(v) => strings(v, field, what).map(Some),
        None => Ok(None),
    }
}

fn string_map(m: Map<String, Value>, what: &str) -> Result<BTreeMap<String, String>> {
    m.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(TufError::invalid(what, "hashes values must be strings")),
        })
        .collect()
}

fn strings_value(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

fn hashes_value(h: &BTreeMap<String, String>) -> Value {
    Value::Object(
        h.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn keys_from(m: Map<String, Value>) -> Result<BTreeMap<String, Key>> {
    m.into_iter()
        .map(|(id, v)| Key::from_value(&id, v).map(|k| (id, k)))
        .collect()
}

fn keys_value(keys: &BTreeMap<String, Key>) -> Value {
    Value::Object(
        keys.iter()
            .map(|(k, v)| (k.clone(), v.to_value()))
            .collect(),
    )
}

/// Common fields of every `signed` object.
struct Common {
    version: u64,
    spec_version: String,
    expires: u64,
}

fn take_common(map: &mut Map<String, Value>, ty: &str) -> Result<Common> {
    let got = take_string(map, "_type", ty)?;
    if got != ty {
        return Err(TufError::WrongType {
            expected: ty.into(),
            got,
        });
    }
    let version = take_u64(map, "version", ty)?;
    if version == 0 {
        return Err(TufError::invalid(ty, "version must be > 0"));
    }
    let spec_version = take_string(map, "spec_version", ty)?;
    let parts: Vec<&str> = spec_version.split('.').collect();
    if !(parts.len() == 2 || parts.len() == 3)
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(TufError::invalid(
            ty,
            format!("cannot parse spec_version {spec_version}"),
        ));
    }
    if parts[0] != "1" {
        return Err(TufError::invalid(
            ty,
            format!("unsupported spec_version {spec_version}"),
        ));
    }
    let exp = take_string(map, "expires", ty)?;
    let expires = parse_time(&exp).ok_or_else(|| {
        TufError::invalid(ty, format!("expires '{exp}' is not YYYY-MM-DDTHH:MM:SSZ"))
    })?;
    Ok(Common {
        version,
        spec_version,
        expires,
    })
}

fn put_common(
    ty: &str,
    version: u64,
    spec_version: &str,
    expires: u64,
    unrecognized: &Unrecognized,
) -> Map<String, Value> {
    let mut m = unrecognized.clone();
    m.insert("_type".into(), Value::String(ty.into()));
    m.insert("version".into(), Value::from(version));
    m.insert("spec_version".into(), Value::String(spec_version.into()));
    m.insert("expires".into(), Value::String(format_time(expires)));
    m
}

// ---------------------------------------------------------------- hashes

/// Hex digest of `data` with `algorithm` (`sha256`, `sha512`, `sha384`,
/// `sha224` or `blake3`), or `None` for an unsupported algorithm.
pub fn digest_hex(algorithm: &str, data: &[u8]) -> Option<String> {
    Some(match algorithm {
        "sha256" => hex::encode(Sha256::digest(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        "blake3" => blake3::hash(data).to_hex().to_string(),
        _ => return None,
    })
}

fn verify_length_and_hashes(
    what: &str,
    data: &[u8],
    length: Option<u64>,
    hashes: Option<&BTreeMap<String, String>>,
) -> Result<()> {
    let mismatch = |reason: String| TufError::LengthOrHashMismatch {
        what: what.to_string(),
        reason,
    };
    if let Some(expected) = length
        && data.len() as u64 != expected
    {
        return Err(mismatch(format!(
            "observed length {} does not match expected length {expected}",
            data.len()
        )));
    }
    for (algo, expected) in hashes.into_iter().flatten() {
        let observed = digest_hex(algo, data)
            .ok_or_else(|| mismatch(format!("unsupported hash algorithm '{algo}'")))?;
        if &observed != expected {
            return Err(mismatch(format!(
                "observed {algo} {observed} does not match expected {expected}"
            )));
        }
    }
    Ok(())
}

fn compute_hashes(
    data: &[u8],
    algorithms: &[&str],
    what: &str,
) -> Result<BTreeMap<String, String>> {
    let mut hashes = BTreeMap::new();
    for algo in algorithms {
        let h = digest_hex(algo, data).ok_or_else(|| {
            TufError::invalid(what, format!("unsupported hash algorithm '{algo}'"))
        })?;
        hashes.insert((*algo).to_string(), h);
    }
    Ok(hashes)
}

// ---------------------------------------------------------------- roles

/// Keys and threshold authorized for a role.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// Ids of the keys allowed to sign (unique).
    pub keyids: Vec<String>,
    /// How many of them must sign (at least 1).
    pub threshold: u64,
    /// Fields not interpreted here.
    pub unrecognized: Unrecognized,
}

fn take_role_fields(map: &mut Map<String, Value>, what: &str) -> Result<(Vec<String>, u64)> {
    let keyids = take_strings(map, "keyids", what)?;
    let mut seen = std::collections::BTreeSet::new();
    if !keyids.iter().all(|k| seen.insert(k)) {
        return Err(TufError::invalid(what, "keyids are not unique"));
    }
    let threshold = take_u64(map, "threshold", what)?;
    if threshold < 1 {
        return Err(TufError::invalid(what, "threshold must be at least 1"));
    }
    Ok((keyids, threshold))
}

impl Role {
    /// Decode from JSON (`what` names the role in errors).
    pub fn from_value(value: Value, what: &str) -> Result<Role> {
        let mut map = obj(value, what)?;
        let (keyids, threshold) = take_role_fields(&mut map, what)?;
        Ok(Role {
            keyids,
            threshold,
            unrecognized: map,
        })
    }

    /// Encode to JSON.
    pub fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("keyids".into(), strings_value(&self.keyids));
        m.insert("threshold".into(), Value::from(self.threshold));
        Value::Object(m)
    }
}

/// The `signed` part of root metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Root {
    /// Metadata version.
    pub version: u64,
    /// Specification version it follows.
    pub spec_version: String,
    /// Expiry, unix seconds.
    pub expires: u64,
    /// Whether the repository uses consistent snapshots (absent = `None`).
    pub consistent_snapshot: Option<bool>,
    /// Keys by key id.
    pub keys: BTreeMap<String, Key>,
    /// Exactly the four top-level roles.
    pub roles: BTreeMap<String, Role>,
    /// Fields not interpreted here.
    pub unrecognized: Unrecognized,
}

impl Root {
    /// A root with no keys, every top-level role threshold 1, consistent
    /// snapshots on, version 1.
    pub fn new(expires: u64) -> Root {
        Root {
            version: 1,
            spec_version: SPECIFICATION_VERSION.into(),
            expires,
            consistent_snapshot: Some(true),
            keys: BTreeMap::new(),
            roles: TOP_LEVEL_ROLE_NAMES
                .iter()
                .map(|r| {
                    (
                        (*r).to_string(),
                        Role {
                            keyids: vec![],
                            threshold: 1,
                            unrecognized: Map::new(),
                        },
                    )
                })
                .collect(),
            unrecognized: Map::new(),
        }
    }

    /// True when consistent snapshots are on.
    pub fn consistent_snapshot(&self) -> bool {
        self.consistent_snapshot.unwrap_or(false)
    }

    /// Authorize `key` for top-level `role`.
    pub fn add_key(&mut self, key: Key, role: &str) -> Result<()> {
        let id = key.id();
        let r = self
            .roles
            .get_mut(role)
            .ok_or_else(|| TufError::invalid("root", format!("role {role} does not exist")))?;
        if !r.keyids.contains(&id) {
            r.keyids.push(id.clone());
        }
        self.keys.insert(id, key);
        Ok(())
    }
}

impl Signed for Root {
    const TYPE: &'static str = "root";

    fn from_value(value: Value) -> Result<Self> {
        let mut map = obj(value, "root")?;
        let c = take_common(&mut map, "root")?;
        let consistent_snapshot = match map.remove("consistent_snapshot") {
            None => None,
            Some(Value::Bool(b)) => Some(b),
            Some(_) => {
                return Err(TufError::invalid(
                    "root",
                    "consistent_snapshot must be a boolean",
                ));
            }
        };
        let keys = keys_from(take_obj(&mut map, "keys", "root")?)?;
        let mut roles = BTreeMap::new();
        for (name, v) in take_obj(&mut map, "roles", "root")? {
            let role = Role::from_value(v, &format!("root role {name}"))?;
            roles.insert(name, role);
        }
        if roles.len() != 4 || !TOP_LEVEL_ROLE_NAMES.iter().all(|r| roles.contains_key(*r)) {
            return Err(TufError::invalid(
                "root",
                "role names must be the top-level metadata roles",
            ));
        }
        Ok(Root {
            version: c.version,
            spec_version: c.spec_version,
            expires: c.expires,
            consistent_snapshot,
            keys,
            roles,
            unrecognized: map,
        })
    }

    fn to_value(&self) -> Value {
        let mut m = put_common(
            "root",
            self.version,
            &self.spec_version,
            self.expires,
            &self.unrecognized,
        );
        if let Some(cs) = self.consistent_snapshot {
            m.insert("consistent_snapshot".into(), Value::Bool(cs));
        }
        m.insert("keys".into(), keys_value(&self.keys));
        m.insert(
            "roles".into(),
            Value::Object(
                self.roles
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        );
        Value::Object(m)
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn expires(&self) -> u64 {
        self.expires
    }
}

/// Version, and optionally length and hashes, of a metadata file as listed
/// in timestamp or snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaFile {
    /// Version of the metadata file (> 0).
    pub version: u64,
    /// Length in bytes, if listed.
    pub length: Option<u64>,
    /// Hashes by algorithm, if listed (never empty when present).
    pub hashes: Option<BTreeMap<String, String>>,
    /// Fields not interpreted here.
    pub unrecognized: Unrecognized,
}

impl MetaFile {
    /// Only a version.
    pub fn new(version: u64) -> MetaFile {
        MetaFile {
            version,
            length: None,
            hashes: None,
            unrecognized: Map::new(),
        }
    }

    /// Version plus length and hashes of `data`.
    pub fn from_data(version: u64, data: &[u8], algorithms: &[&str]) -> Result<MetaFile> {
        Ok(MetaFile {
            version,
            length: Some(data.len() as u64),
            hashes: Some(compute_hashes(data, algorithms, "metafile")?),
            unrecognized: Map::new(),
        })
    }

    /// Decode from JSON.
    pub fn from_value(value: Value, what: &str) -> Result<MetaFile> {
        let mut map = obj(value, what)?;
        let version = take_u64(&mut map, "version", what)?;
        if version == 0 {
            return Err(TufError::invalid(what, "metafile version must be > 0"));
        }
        let length = take_opt_u64(&mut map, "length", what)?;
        let hashes = match map.remove("hashes") {
            None => None,
            Some(Value::Object(h)) => {
                if h.is_empty() {
                    return Err(TufError::invalid(what, "hashes must be a non-empty object"));
                }
                Some(string_map(h, what)?)
            }
            Some(_) => return Err(TufError::invalid(what, "hashes must be an object")),
        };
        Ok(MetaFile {
            version,
            length,
            hashes,
            unrecognized: map,
        })
    }

    /// Encode to JSON.
    pub fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("version".into(), Value::from(self.version));
        if let Some(l) = self.length {
            m.insert("length".into(), Value::from(l));
        }
        if let Some(h) = &self.hashes {
            m.insert("hashes".into(), hashes_value(h));
        }
        Value::Object(m)
    }

    /// Check `data` against the listed length and hashes (those present).
    pub fn verify_length_and_hashes(&self, what: &str, data: &[u8]) -> Result<()> {
        verify_length_and_hashes(what, data, self.length, self.hashes.as_ref())
    }
}

/// The `signed` part of timestamp metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Timestamp {
    /// Metadata version.
    pub version: u64,
    /// Specification version it follows.
    pub spec_version: String,
    /// Expiry, unix seconds.
    pub expires: u64,
    /// The `snapshot.json` entry of `meta`.
    pub snapshot_meta: MetaFile,
    /// Fields not interpreted here.
    pub unrecognized: Unrecognized,
}

impl Timestamp {
    /// Version 1 pointing at snapshot version 1.
    pub fn new(expires: u64) -> Timestamp {
        Timestamp {
            version: 1,
            spec_version: SPECIFICATION_VERSION.into(),
            expires,
            snapshot_meta: MetaFile::new(1),
            unrecognized: Map::new(),
        }
    }
}

impl Signed for Timestamp {
    const TYPE: &'static str = "timestamp";

    fn from_value(value: Value) -> Result<Self> {
        let mut map = obj(value, "timestamp")?;
        let c = take_common(&mut map, "timestamp")?;
        let mut meta = take_obj(&mut map, "meta", "timestamp")?;
        let snap = meta
            .remove("snapshot.json")
            .ok_or_else(|| TufError::invalid("timestamp", "meta has no snapshot.json"))?;
        let snapshot_meta = MetaFile::from_value(snap, "timestamp meta snapshot.json")?;
        Ok(Timestamp {
            version: c.version,
            spec_version: c.spec_version,
            expires: c.expires,
            snapshot_meta,
            unrecognized: map,
        })
    }

    fn to_value(&self) -> Value {
        let mut m = put_common(
            "timestamp",
            self.version,
            &self.spec_version,
            self.expires,
            &self.unrecognized,
        );
        let mut meta = Map::new();
        meta.insert("snapshot.json".into(), self.snapshot_meta.to_value());
        m.insert("meta".into(), Value::Object(meta));
        Value::Object(m)
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn expires(&self) -> u64 {
        self.expires
    }
}

/// The `signed` part of snapshot metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Metadata version.
    pub version: u64,
    /// Specification version it follows.
    pub spec_version: String,
    /// Expiry, unix seconds.
    pub expires: u64,
    /// Targets metadata files (`targets.json`, `<role>.json`) and their info.
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields not interpreted here.
    pub unrecognized: Unrecognized,
}

impl Snapshot {
    /// Version 1 listing `targets.json` version 1.
    pub fn new(expires: u64) -> Snapshot {
        let mut meta = BTreeMap::new();
        meta.insert("targets.json".to_string(), MetaFile::new(1));
        Snapshot {
            version: 1,
            spec_version: SPECIFICATION_VERSION.into(),
            expires,
            meta,
            unrecognized: Map::new(),
        }
    }
}

impl Signed for Snapshot {
    const TYPE: &'static str = "snapshot";

    fn from_value(value: Value) -> Result<Self> {
        let mut map = obj(value, "snapshot")?;
        let c = take_common(&mut map, "snapshot")?;
        let mut meta = BTreeMap::new();
        for (name, v) in take_obj(&mut map, "meta", "snapshot")? {
            let mf = MetaFile::from_value(v, &format!("snapshot meta {name}"))?;
            meta.insert(name, mf);
        }
        Ok(Snapshot {
            version: c.version,
            spec_version: c.spec_version,
            expires: c.expires,
            meta,
            unrecognized: map,
        })
    }

    fn to_value(&self) -> Value {
        let mut m = put_common(
            "snapshot",
            self.version,
            &self.spec_version,
            self.expires,
            &self.unrecognized,
        );
        m.insert(
            "meta".into(),
            Value::Object(
                self.meta
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        );
        Value::Object(m)
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn expires(&self) -> u64 {
        self.expires
    }
}

/// Length and hashes of a target file, under its target path.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetFile {
    /// The target path (the key in `targets`).
    pub path: String,
    /// Length in bytes.
    pub length: u64,
    /// Hashes by algorithm (never empty).
    pub hashes: BTreeMap<String, String>,
    /// Other fields, including `custom`.
    pub unrecognized: Unrecognized,
}

impl TargetFile {
    /// Length and hashes of `data` with the given algorithms
    /// (for example `["sha256", "blake3"]`).
    pub fn from_data(path: &str, data: &[u8], algorithms: &[&str]) -> Result<TargetFile> {
        Ok(TargetFile {
            path: path.to_string(),
            length: data.len() as u64,
            hashes: compute_hashes(data, algorithms, path)?,
            unrecognized: Map::new(),
        })
    }

    /// The `custom` field, if any.
    pub fn custom(&self) -> Option<&Value> {
        self.unrecognized.get("custom")
    }

    /// Check `data` against length and every listed hash; an unsupported
    /// algorithm is a mismatch (as in python-tuf).
    pub fn verify_length_and_hashes(&self, data: &[u8]) -> Result<()> {
        verify_length_and_hashes(&self.path, data, Some(self.length), Some(&self.hashes))
    }

    /// The hash used to prefix the file name under consistent snapshots:
    /// `sha256` if listed, else `sha512`, else the first algorithm by name.
    pub fn prefix_hash(&self) -> Option<&str> {
        self.hashes
            .get("sha256")
            .or_else(|| self.hashes.get("sha512"))
            .or_else(|| self.hashes.values().next())
            .map(String::as_str)
    }

    /// Decode from JSON.
    pub fn from_value(path: &str, value: Value) -> Result<TargetFile> {
        let what = format!("target {path}");
        let mut map = obj(value, &what)?;
        let length = take_u64(&mut map, "length", &what)?;
        let h = take_obj(&mut map, "hashes", &what)?;
        if h.is_empty() {
            return Err(TufError::invalid(
                &what,
                "hashes must be a non-empty object",
            ));
        }
        Ok(TargetFile {
            path: path.to_string(),
            length,
            hashes: string_map(h, &what)?,
            unrecognized: map,
        })
    }

    /// Encode to JSON.
    pub fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("length".into(), Value::from(self.length));
        m.insert("hashes".into(), hashes_value(&self.hashes));
        Value::Object(m)
    }
}

/// A delegation to a named targets role, by path patterns or hash prefixes.
#[derive(Debug, Clone, PartialEq)]
pub struct DelegatedRole {
    /// Role name.
    pub name: String,
    /// Keys allowed to sign it (unique).
    pub keyids: Vec<String>,
    /// How many must sign.
    pub threshold: u64,
    /// When true, a lookup matching this role does not backtrack to others.
    pub terminating: bool,
    /// Path patterns (exclusive with `path_hash_prefixes`).
    pub paths: Option<Vec<String>>,
    /// Prefixes of the hex SHA-256 of target paths.
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Fields not interpreted here.
    pub unrecognized: Unrecognized,
}

/// fnmatch-style match of one path component: `*` (any run), `?` (one
/// character), `[seq]` / `[!seq]` character classes; others literal.
fn fnmatch(name: &[char], pat: &[char]) -> bool {
    // Iterative matcher with backtracking on the last `*`.
    let (mut n, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pat.len() {
            match pat[p] {
                '*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                '?' => {
                    n += 1;
                    p += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class_match(name[n], &pat[p..]) {
                        if matched {
                            n += 1;
                            p += next;
                            continue;
                        }
                    } else if name[n] == '[' {
                        n += 1;
                        p += 1;
                        continue;
                    }
                }
                c => {
                    if c == name[n] {
                        n += 1;
                        p += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|c| *c == '*')
}

/// Match `c` against a class starting at `pat[0] == '['`: `Some((matched,
/// class length))`, or `None` when the class is not closed (then `[` is
/// literal, as in Python's fnmatch).
fn class_match(c: char, pat: &[char]) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some('!'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut matched = false;
    loop {
        let ch = *pat.get(i)?;
        if ch == ']' && i > start {
            break;
        }
        if pat.get(i + 1) == Some(&'-') && pat.get(i + 2).is_some_and(|e| *e != ']') {
            let hi = pat[i + 2];
            if ch <= c && c <= hi {
                matched = true;
            }
            i += 3;
        } else {
            if ch == c {
                matched = true;
            }
            i += 1;
        }
    }
    Some((matched != negate, i + 1))
}

impl DelegatedRole {
    /// Whether `targetpath` matches `pattern` component by component
    /// (`*` never crosses `/`).
    pub fn is_target_in_pathpattern(targetpath: &str, pattern: &str) -> bool {
        let t: Vec<&str> = targetpath.split('/').collect();
        let p: Vec<&str> = pattern.split('/').collect();
        if t.len() != p.len() {
            return false;
        }
        t.iter().zip(p.iter()).all(|(a, b)| {
            let a: Vec<char> = a.chars().collect();
            let b: Vec<char> = b.chars().collect();
            fnmatch(&a, &b)
        })
    }

    /// Whether this role is trusted for `target_path`.
    pub fn is_delegated_path(&self, target_path: &str) -> bool {
        if let Some(prefixes) = &self.path_hash_prefixes {
            let h = hex::encode(Sha256::digest(target_path.as_bytes()));
            prefixes.iter().any(|p| h.starts_with(p.as_str()))
        } else if let Some(paths) = &self.paths {
            paths
                .iter()
                .any(|p| Self::is_target_in_pathpattern(target_path, p))
        } else {
            false
        }
    }

    /// Decode from JSON.
    pub fn from_value(value: Value) -> Result<DelegatedRole> {
        let mut map = obj(value, "delegated role")?;
        let name = take_string(&mut map, "name", "delegated role")?;
        let what = format!("delegated role {name}");
        let (keyids, threshold) = take_role_fields(&mut map, &what)?;
        let terminating = take_bool(&mut map, "terminating", &what)?;
        let paths = take_opt_strings(&mut map, "paths", &what)?;
        let path_hash_prefixes = take_opt_strings(&mut map, "path_hash_prefixes", &what)?;
        if paths.is_some() == path_hash_prefixes.is_some() {
            return Err(TufError::invalid(
                &what,
                "exactly one of paths and path_hash_prefixes must be set",
            ));
        }
        Ok(DelegatedRole {
            name,
            keyids,
            threshold,
            terminating,
            paths,
            path_hash_prefixes,
            unrecognized: map,
        })
    }

    /// Encode to JSON.
    pub fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("name".into(), Value::String(self.name.clone()));
        m.insert("keyids".into(), strings_value(&self.keyids));
        m.insert("threshold".into(), Value::from(self.threshold));
        m.insert("terminating".into(), Value::Bool(self.terminating));
        if let Some(p) = &self.paths {
            m.insert("paths".into(), strings_value(p));
        } else if let Some(p) = &self.path_hash_prefixes {
            m.insert("path_hash_prefixes".into(), strings_value(p));
        }
        Value::Object(m)
    }
}

/// Hash-bin delegation (TAP 15): `2^bit_length` terminating roles named
/// `<name_prefix>-<hex bin>`.
#[derive(Debug, Clone, PartialEq)]
pub struct SuccinctRoles {
    /// Keys allowed to sign any bin.
    pub keyids: Vec<String>,
    /// How many must sign.
    pub threshold: u64,
    /// Number of bits, 1 to 32.
    pub bit_length: u32,
    /// Prefix of every bin name.
    pub name_prefix: String,
    /// Fields not interpreted here.
    pub unrecognized: Unrecognized,
}

impl SuccinctRoles {
    fn suffix_len(&self) -> usize {
        let bins: u64 = 1u64 << self.bit_length;
        format!("{:x}", bins - 1).len()
    }

    /// The bin responsible for `target_path`.
    pub fn role_for_target(&self, target_path: &str) -> String {
        let h = Sha256::digest(target_path.as_bytes());
        let first = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let bin = u64::from(first) >> (32 - self.bit_length);
        format!(
            "{}-{:0width$x}",
            self.name_prefix,
            bin,
            width = self.suffix_len()
        )
    }

    /// Whether `role_name` is one of the bins.
    pub fn is_delegated_role(&self, role_name: &str) -> bool {
        let Some(suffix) = role_name
            .strip_prefix(self.name_prefix.as_str())
            .and_then(|s| s.strip_prefix('-'))
        else {
            return false;
        };
        if suffix.len() != self.suffix_len() || !suffix.bytes().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
        u64::from_str_radix(suffix, 16).is_ok_and(|n| n < (1u64 << self.bit_length))
    }

    /// Decode from JSON.
    pub fn from_value(value: Value) -> Result<SuccinctRoles> {
        let what = "succinct_roles";
        let mut map = obj(value, what)?;
        let (keyids, threshold) = take_role_fields(&mut map, what)?;
        let bit_length = take_u64(&mut map, "bit_length", what)?;
        if !(1..=32).contains(&bit_length) {
            return Err(TufError::invalid(
                what,
                "bit_length must be between 1 and 32",
            ));
        }
        let name_prefix = take_string(&mut map, "name_prefix", what)?;
        Ok(SuccinctRoles {
            keyids,
            threshold,
            bit_length: bit_length as u32,
            name_prefix,
            unrecognized: map,
        })
    }

    /// Encode to JSON.
    pub fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("keyids".into(), strings_value(&self.keyids));
        m.insert("threshold".into(), Value::from(self.threshold));
        m.insert("bit_length".into(), Value::from(self.bit_length));
        m.insert(
            "name_prefix".into(),
            Value::String(self.name_prefix.clone()),
        );
        Value::Object(m)
    }
}

/// Keys and delegated roles of a targets role.
#[derive(Debug, Clone, PartialEq)]
pub struct Delegations {
    /// Keys by key id.
    pub keys: BTreeMap<String, Key>,
    /// Delegated roles in order of trust (exclusive with `succinct_roles`).
    pub roles: Option<Vec<DelegatedRole>>,
    /// Hash-bin delegation.
    pub succinct_roles: Option<SuccinctRoles>,
    /// Fields not interpreted here.
    pub unrecognized: Unrecognized,
}

impl Delegations {
    /// Delegated roles responsible for `target_path`, in order, with their
    /// `terminating` flag (succinct bins are always terminating).
    pub fn roles_for_target(&self, target_path: &str) -> Vec<(String, bool)> {
        if let Some(roles) = &self.roles {
            roles
                .iter()
                .filter(|r| r.is_delegated_path(target_path))
                .map(|r| (r.name.clone(), r.terminating))
                .collect()
        } else if let Some(s) = &self.succinct_roles {
            vec![(s.role_for_target(target_path), true)]
        } else {
            vec![]
        }
    }

    /// Decode from JSON.
    pub fn from_value(value: Value) -> Result<Delegations> {
        let what = "delegations";
        let mut map = obj(value, what)?;
        let keys = keys_from(take_obj(&mut map, "keys", what)?)?;
        let roles = match map.remove("roles") {
            None => None,
            Some(Value::Array(items)) => {
                let mut out: Vec<DelegatedRole> = Vec::with_capacity(items.len());
                for item in items {
                    let r = DelegatedRole::from_value(item)?;
                    if r.name.is_empty() || TOP_LEVEL_ROLE_NAMES.contains(&r.name.as_str()) {
                        return Err(TufError::invalid(
                            what,
                            "delegated roles cannot be empty or use top-level role names",
                        ));
                    }
                    if out.iter().any(|o| o.name == r.name) {
                        return Err(TufError::invalid(
                            what,
                            format!("duplicate role {}", r.name),
                        ));
                    }
                    out.push(r);
                }
                Some(out)
            }
            Some(_) => return Err(TufError::invalid(what, "roles must be a list")),
        };
        let succinct_roles = map
            .remove("succinct_roles")
            .map(SuccinctRoles::from_value)
            .transpose()?;
        if roles.is_some() == succinct_roles.is_some() {
            return Err(TufError::invalid(
                what,
                "exactly one of roles and succinct_roles must be set",
            ));
        }
        Ok(Delegations {
            keys,
            roles,
            succinct_roles,
            unrecognized: map,
        })
    }

    /// Encode to JSON.
    pub fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("keys".into(), keys_value(&self.keys));
        if let Some(r) = &self.roles {
            m.insert(
                "roles".into(),
                Value::Array(r.iter().map(DelegatedRole::to_value).collect()),
            );
        } else if let Some(s) = &self.succinct_roles {
            m.insert("succinct_roles".into(), s.to_value());
        }
        Value::Object(m)
    }
}

/// The `signed` part of targets metadata (top-level or delegated).
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    /// Metadata version.
    pub version: u64,
    /// Specification version it follows.
    pub spec_version: String,
    /// Expiry, unix seconds.
    pub expires: u64,
    /// Target files by path.
    pub targets: BTreeMap<String, TargetFile>,
    /// Delegations to other targets roles.
    pub delegations: Option<Delegations>,
    /// Fields not interpreted here.
    pub unrecognized: Unrecognized,
}

impl Targets {
    /// Version 1 with no targets and no delegations.
    pub fn new(expires: u64) -> Targets {
        Targets {
            version: 1,
            spec_version: SPECIFICATION_VERSION.into(),
            expires,
            targets: BTreeMap::new(),
            delegations: None,
            unrecognized: Map::new(),
        }
    }
}

impl Signed for Targets {
    const TYPE: &'static str = "targets";

    fn from_value(value: Value) -> Result<Self> {
        let mut map = obj(value, "targets")?;
        let c = take_common(&mut map, "targets")?;
        let mut targets = BTreeMap::new();
        for (path, v) in take_obj(&mut map, "targets", "targets")? {
            let tf = TargetFile::from_value(&path, v)?;
            targets.insert(path, tf);
        }
        let delegations = map
            .remove("delegations")
            .map(Delegations::from_value)
            .transpose()?;
        Ok(Targets {
            version: c.version,
            spec_version: c.spec_version,
            expires: c.expires,
            targets,
            delegations,
            unrecognized: map,
        })
    }

    fn to_value(&self) -> Value {
        let mut m = put_common(
            "targets",
            self.version,
            &self.spec_version,
            self.expires,
            &self.unrecognized,
        );
        m.insert(
            "targets".into(),
            Value::Object(
                self.targets
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
        );
        if let Some(d) = &self.delegations {
            m.insert("delegations".into(), d.to_value());
        }
        Value::Object(m)
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn expires(&self) -> u64 {
        self.expires
    }
}

// ---------------------------------------------------------------- delegators

/// A role that delegates trust: root (to the top-level roles) or a targets
/// role (to its delegated roles).
pub trait Delegator {
    /// Name of the delegating role, for messages.
    fn delegator_name(&self) -> &str;
    /// Key ids and threshold for `role_name`, or `None` if not delegated.
    fn delegated_role(&self, role_name: &str) -> Option<(&[String], u64)>;
    /// The key with id `keyid`, if this delegator lists it.
    fn key(&self, keyid: &str) -> Option<&Key>;

    /// Key ids of `role_name` whose signature over `payload` verifies
    /// (only keys authorized for the role count, each at most once).
    fn valid_signers(
        &self,
        role_name: &str,
        payload: &[u8],
        signatures: &[Signature],
    ) -> Result<Vec<String>> {
        let (keyids, _) = self
            .delegated_role(role_name)
            .ok_or_else(|| TufError::NotDelegated {
                role: role_name.into(),
                delegator: self.delegator_name().into(),
            })?;
        let mut ok = Vec::new();
        for keyid in keyids {
            let Some(key) = self.key(keyid) else { continue };
            let Some(sig) = signatures.iter().find(|s| &s.keyid == keyid) else {
                continue;
            };
            if key.verify(payload, &sig.sig).is_ok() {
                ok.push(keyid.clone());
            }
        }
        Ok(ok)
    }

    /// Verify that `metadata` carries a threshold of valid signatures from
    /// the keys this delegator authorizes for `role_name`; returns the key
    /// ids that signed validly.
    fn verify_delegate<T: Signed>(
        &self,
        role_name: &str,
        metadata: &Metadata<T>,
    ) -> Result<Vec<String>>
    where
        Self: Sized,
    {
        let payload = metadata.signed_bytes()?;
        self.verify_delegate_bytes(role_name, &payload, &metadata.signatures)
    }

    /// [`Delegator::verify_delegate`] over an already computed payload.
    fn verify_delegate_bytes(
        &self,
        role_name: &str,
        payload: &[u8],
        signatures: &[Signature],
    ) -> Result<Vec<String>> {
        let signed = self.valid_signers(role_name, payload, signatures)?;
        let threshold = self.delegated_role(role_name).map(|(_, t)| t).unwrap_or(1);
        if (signed.len() as u64) < threshold {
            return Err(TufError::Unsigned {
                role: role_name.into(),
                delegator: self.delegator_name().into(),
                signed: signed.len(),
                threshold,
            });
        }
        Ok(signed)
    }
}

impl Delegator for Root {
    fn delegator_name(&self) -> &str {
        "root"
    }

    fn delegated_role(&self, role_name: &str) -> Option<(&[String], u64)> {
        self.roles
            .get(role_name)
            .map(|r| (r.keyids.as_slice(), r.threshold))
    }

    fn key(&self, keyid: &str) -> Option<&Key> {
        self.keys.get(keyid)
    }
}

/// A [`Targets`] acting as delegator, with its role name.
pub struct TargetsDelegator<'a> {
    /// Role name of the delegating targets metadata.
    pub name: &'a str,
    /// Its signed content.
    pub targets: &'a Targets,
}

impl Delegator for TargetsDelegator<'_> {
    fn delegator_name(&self) -> &str {
        self.name
    }

    fn delegated_role(&self, role_name: &str) -> Option<(&[String], u64)> {
        let d = self.targets.delegations.as_ref()?;
        if let Some(roles) = &d.roles {
            roles
                .iter()
                .find(|r| r.name == role_name)
                .map(|r| (r.keyids.as_slice(), r.threshold))
        } else {
            d.succinct_roles
                .as_ref()
                .filter(|s| s.is_delegated_role(role_name))
                .map(|s| (s.keyids.as_slice(), s.threshold))
        }
    }

    fn key(&self, keyid: &str) -> Option<&Key> {
        self.targets.delegations.as_ref()?.keys.get(keyid)
    }
}

impl Targets {
    /// This targets role (named `name`) as a delegator.
    pub fn as_delegator<'a>(&'a self, name: &'a str) -> TargetsDelegator<'a> {
        TargetsDelegator {
            name,
            targets: self,
        }
    }
}

/// `signed.version` of a metadata document, read without building the
/// rest (for documents already verified, or about to be refused anyway).
pub fn peek_version(data: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Doc {
        signed: PeekSigned,
    }
    #[derive(serde::Deserialize)]
    struct PeekSigned {
        version: u64,
    }
    serde_json::from_slice::<Doc>(data)
        .ok()
        .map(|d| d.signed.version)
}

// ---------------------------------------------------------------- envelope

/// One signature in the envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// Id of the signing key.
    pub keyid: String,
    /// Hex-encoded signature.
    pub sig: String,
    /// Fields not interpreted here.
    pub unrecognized: Unrecognized,
}

/// A signed metadata document: `{"signed": ..., "signatures": [...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata<T> {
    /// The signed content.
    pub signed: T,
    /// Signatures, at most one per key id.
    pub signatures: Vec<Signature>,
    /// Top-level fields not interpreted here.
    pub unrecognized: Unrecognized,
}

impl<T: Signed> Metadata<T> {
    /// Unsigned envelope around `signed`.
    pub fn new(signed: T) -> Self {
        Metadata {
            signed,
            signatures: Vec::new(),
            unrecognized: Map::new(),
        }
    }

    /// Strict decode: at most [`MAX_METADATA_BYTES`], `_type` must be
    /// `T::TYPE`, no two signatures with the same key id.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_METADATA_BYTES {
            return Err(TufError::Json {
                role: T::TYPE.into(),
                reason: format!(
                    "{} bytes exceeds the limit of {MAX_METADATA_BYTES}",
                    bytes.len()
                ),
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| TufError::Json {
            role: T::TYPE.into(),
            reason: e.to_string(),
        })?;
        Self::from_value(value)
    }

    /// Decode from a JSON value (see [`Metadata::from_bytes`]).
    pub fn from_value(value: Value) -> Result<Self> {
        let mut map = obj(value, T::TYPE)?;
        let signed = map
            .remove("signed")
            .ok_or_else(|| TufError::invalid(T::TYPE, "missing field signed"))?;
        if let Some(ty) = signed.get("_type").and_then(Value::as_str)
            && ty != T::TYPE
        {
            return Err(TufError::WrongType {
                expected: T::TYPE.into(),
                got: ty.into(),
            });
        }
        let sigs = match map.remove("signatures") {
            Some(Value::Array(a)) => a,
            _ => return Err(TufError::invalid(T::TYPE, "signatures must be a list")),
        };
        let mut signatures: Vec<Signature> = Vec::with_capacity(sigs.len());
        for s in sigs {
            let mut m = obj(s, "signature")?;
            let keyid = take_string(&mut m, "keyid", "signature")?;
            let sig = take_string(&mut m, "sig", "signature")?;
            if signatures.iter().any(|o| o.keyid == keyid) {
                return Err(TufError::invalid(
                    T::TYPE,
                    format!("multiple signatures found for keyid {keyid}"),
                ));
            }
            signatures.push(Signature {
                keyid,
                sig,
                unrecognized: m,
            });
        }
        Ok(Metadata {
            signed: T::from_value(signed)?,
            signatures,
            unrecognized: map,
        })
    }

    /// The whole document as JSON.
    pub fn to_value(&self) -> Value {
        let mut m = self.unrecognized.clone();
        m.insert("signed".into(), self.signed.to_value());
        let sigs = self
            .signatures
            .iter()
            .map(|s| {
                let mut o = s.unrecognized.clone();
                o.insert("keyid".into(), Value::String(s.keyid.clone()));
                o.insert("sig".into(), Value::String(s.sig.clone()));
                Value::Object(o)
            })
            .collect();
        m.insert("signatures".into(), Value::Array(sigs));
        Value::Object(m)
    }

    /// Deterministic JSON of the whole document, as a server would serve it.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        to_pretty_bytes(&self.to_value())
    }

    /// Canonical JSON of `signed`: the bytes signatures cover.
    pub fn signed_bytes(&self) -> Result<Vec<u8>> {
        to_canonical_bytes(&self.signed.to_value())
    }

    /// Add a signature, replacing any earlier one by the same key id.
    pub fn add_signature(&mut self, keyid: &str, sig_hex: &str) {
        let sig = Signature {
            keyid: keyid.to_string(),
            sig: sig_hex.to_string(),
            unrecognized: Map::new(),
        };
        if let Some(existing) = self.signatures.iter_mut().find(|s| s.keyid == keyid) {
            *existing = sig;
        } else {
            self.signatures.push(sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_takes_one_form() {
        let root = |expires: &str| {
            let mut m = put_common("root", 1, "1.0.31", 0, &Map::new());
            m.insert("expires".into(), Value::String(expires.into()));
            take_common(&mut m, "root").map(|c| c.expires)
        };
        assert_eq!(root("2030-01-01T00:00:00Z").unwrap(), 1_893_456_000);
        for refused in [
            "2023-02-29T00:00:00Z",
            "2030-01-01 00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2030-01-01T00:00:00.000Z",
        ] {
            assert!(root(refused).is_err(), "{refused}");
        }
        let m = put_common("root", 1, "1.0.31", 1_893_456_000, &Map::new());
        assert_eq!(m["expires"], "2030-01-01T00:00:00Z");
    }

    #[test]
    fn fnmatch_components() {
        let m = DelegatedRole::is_target_in_pathpattern;
        assert!(m("a/b.txt", "a/*"));
        assert!(!m("a/b/c.txt", "a/*"));
        assert!(m("a/b/c.txt", "a/*/*.txt"));
        assert!(m("file1", "file?"));
        assert!(!m("file10", "file?"));
        assert!(m("x1", "x[0-9]"));
        assert!(!m("xa", "x[0-9]"));
        assert!(m("xa", "x[!0-9]"));
        assert!(m("[", "["));
        assert!(m("anything", "*"));
        assert!(!m("", "?"));
        assert!(m("abcabd", "*abd"));
    }

    #[test]
    fn succinct_bins() {
        let s = SuccinctRoles {
            keyids: vec![],
            threshold: 1,
            bit_length: 8,
            name_prefix: "bin".into(),
            unrecognized: Map::new(),
        };
        let name = s.role_for_target("some/path");
        assert!(s.is_delegated_role(&name));
        assert_eq!(name.len(), "bin-00".len());
        assert!(!s.is_delegated_role("bin-100"));
        assert!(!s.is_delegated_role("bin-0g"));
        assert!(!s.is_delegated_role("other-00"));
    }

    #[test]
    fn target_hashes() {
        let tf = TargetFile::from_data("a", b"hello", &["sha256", "sha512", "blake3"]).unwrap();
        tf.verify_length_and_hashes(b"hello").unwrap();
        assert!(tf.verify_length_and_hashes(b"hellO").is_err());
        let mut bad = tf.clone();
        bad.hashes.insert("md4".into(), "00".into());
        assert!(bad.verify_length_and_hashes(b"hello").is_err());
        assert_eq!(
            tf.hashes["blake3"],
            blake3::hash(b"hello").to_hex().to_string()
        );
    }
}
