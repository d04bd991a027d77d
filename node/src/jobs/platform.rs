//! Platforms: what an executor offers ([`Platform`]), what a job requires
//! ([`Requirements`]) and where `--on` sends it ([`Target`]).
//!
//! # Requirements, as written (`--on`, `on =` in `JOB.toml`)
//!
//! Comma-separated `KEY=VALUE` items, matched exactly:
//!
//! ```text
//! os=macos             the executor's os (`std::env::consts::OS` or `[jobs] os`)
//! arch=aarch64         its architecture (`std::env::consts::ARCH` or `[jobs] arch`)
//! feature=gpu          a feature it advertises (`[jobs] features`); repeatable
//! features=gpu+cuda    several features at once, `+`-separated
//! ```
//!
//! A value is 1 to 64 characters of ASCII letters, digits, `_`, `-` and `.`.
//! `os` and `arch` may each appear once. An item with any other key is kept
//! as written in [`Requirements::unknown`] and matches no platform, so a
//! requirement this node does not understand is never silently ignored.
//!
//! # Format (inside job documents, results and advertisements, version 1)
//!
//! `Requirements` is a JSON object `{"arch":..,"features":[..],"os":..,
//! "unknown":[..]}`, absent fields being none or empty, `features` and
//! `unknown` sorted without repeats. `Platform` is `{"arch":..,"cores":N,
//! "features":[..],"os":..,"sandbox":[..]}`, `features` sorted without
//! repeats and `sandbox` the levels it gives, weakest first. Unknown fields
//! are refused.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use super::sandbox::SandboxLevel;

/// The `[jobs]` section of `config.toml` (see `crate::config`, which
/// re-exports it): whether and how this node runs jobs. It lives here, beside
/// what it configures, so that `config` uses `jobs` and not the other way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// Whether this node runs jobs for the peers it granted `exec`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How many jobs run at once (at least 1); the number of cores when unset.
    #[serde(default, deserialize_with = "checked::slots")]
    pub slots: Option<u32>,
    /// The operating system advertised; the real one when unset.
    #[serde(default, deserialize_with = "checked::value")]
    pub os: Option<String>,
    /// The architecture advertised; the real one when unset.
    #[serde(default, deserialize_with = "checked::value")]
    pub arch: Option<String>,
    /// Features advertised: words jobs can require (`feature=gpu`), each
    /// a value as requirements spell them.
    #[serde(default, deserialize_with = "checked::values")]
    pub features: Vec<String>,
    /// The least sandbox level a job from another node runs under; the
    /// strongest this machine can give when unset.
    #[serde(default)]
    pub min_sandbox: Option<SandboxLevel>,
    /// The bound of the memo's cache, in bytes: past it, outputs of
    /// memoized results are evicted least recently used (see
    /// `crate::jobs::cache`). Written as sizes are (`crate::jobs::size`:
    /// `"10 GiB"`, `"512M"`) or as a number of bytes.
    #[serde(default = "default_cache", deserialize_with = "checked::size")]
    pub cache: u64,
}

/// The default bound of the memo's cache: 10 GiB.
pub const DEFAULT_CACHE: u64 = 10 << 30;

fn default_cache() -> u64 {
    DEFAULT_CACHE
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            enabled: true,
            slots: None,
            os: None,
            arch: None,
            features: Vec::new(),
            min_sandbox: None,
            cache: DEFAULT_CACHE,
        }
    }
}

fn yes() -> bool {
    true
}

/// Checks of `[jobs]` as it is read, so a bad value is an error naming its
/// line in `config.toml` rather than a platform no peer can read.
mod checked {
    use serde::{Deserialize, Deserializer, de::Error};

    use crate::jobs::platform::{MAX_FEATURES, check_value};

    pub(super) fn slots<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        match u32::deserialize(d)? {
            0 => Err(D::Error::custom("slots must be at least 1")),
            n => Ok(Some(n)),
        }
    }

    /// A size: a string as `jobfile::parse_size` reads it, or bytes.
    pub(super) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Size {
            Bytes(u64),
            Text(String),
        }
        match Size::deserialize(d)? {
            Size::Bytes(n) => Ok(n),
            Size::Text(s) => crate::jobs::size::parse_size(&s).ok_or_else(|| {
                D::Error::custom(format!(
                    "cache {:?} is not a size (like 10 GiB, 512 MiB or a number of bytes)",
                    s.chars().take(80).collect::<String>()
                ))
            }),
        }
    }

    pub(super) fn value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let s = String::deserialize(d)?;
        check_value("value", &s).map_err(D::Error::custom)?;
        Ok(Some(s))
    }

    pub(super) fn values<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        if v.len() > MAX_FEATURES {
            return Err(D::Error::custom(format!(
                "more than {MAX_FEATURES} features"
            )));
        }
        for s in &v {
            check_value("feature", s).map_err(D::Error::custom)?;
        }
        Ok(v)
    }
}

/// Longest value of a requirement or platform field, in bytes.
pub const MAX_VALUE_LEN: usize = 64;
/// Most features (or unknown items) a platform or a requirement lists.
pub const MAX_FEATURES: usize = 64;
/// Longest requirements text [`Requirements::parse`] reads: room for the
/// longest that [`Requirements`] prints.
pub const MAX_REQUIREMENTS_LEN: usize = 16 * 1024;

/// What an executor offers (advertised to peers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// Operating system, as Rust names it (`linux`, `macos`, ...).
    pub os: String,
    /// Architecture, as Rust names it (`x86_64`, `aarch64`, ...).
    pub arch: String,
    /// Cores available to jobs.
    pub cores: u32,
    /// Features advertised, sorted, without repeats.
    pub features: Vec<String>,
    /// The sandbox levels it can give, weakest first.
    pub sandbox: Vec<SandboxLevel>,
}

impl Platform {
    /// This machine, as `[jobs]` configures it (os/arch/features override the real ones;
    /// `sandbox` = the levels given, passed in by the caller from sandbox::available()).
    pub fn local(config: &JobsConfig, sandbox: Vec<SandboxLevel>) -> Platform {
        let cores = std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            .unwrap_or(1);
        let mut features = config.features.clone();
        features.sort();
        features.dedup();
        let mut sandbox = sandbox;
        sandbox.sort();
        sandbox.dedup();
        Platform {
            os: config
                .os
                .clone()
                .unwrap_or_else(|| std::env::consts::OS.to_owned()),
            arch: config
                .arch
                .clone()
                .unwrap_or_else(|| std::env::consts::ARCH.to_owned()),
            cores,
            features,
            sandbox,
        }
    }

    /// Checks what a peer or a result says: values well-formed and bounded,
    /// features sorted without repeats, sandbox levels ascending.
    pub fn validate(&self) -> Result<(), PlatformError> {
        check_value("os", &self.os)?;
        check_value("arch", &self.arch)?;
        check_sorted_values("feature", &self.features)?;
        if !self.sandbox.is_sorted_by(|a, b| a < b) {
            return Err(PlatformError::NotSorted { what: "sandbox" });
        }
        Ok(())
    }

    /// Whether it gives sandbox level `level`.
    pub fn gives(&self, level: SandboxLevel) -> bool {
        self.sandbox.contains(&level)
    }
}

/// A job's platform requirements: exact matches; an unknown key matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// The operating system required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// The architecture required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Features required, sorted, without repeats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// `key=value` items the parser did not know, sorted; never met.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
}

impl Requirements {
    /// Parses `os=macos,arch=aarch64,feature=gpu` (also `features=a+b`; see
    /// the module documentation).
    pub fn parse(s: &str) -> Result<Requirements, PlatformError> {
        if s.len() > MAX_REQUIREMENTS_LEN {
            return Err(PlatformError::TooLong { len: s.len() });
        }
        if s.trim().is_empty() {
            return Err(PlatformError::Empty);
        }
        let mut req = Requirements::default();
        for item in s.split(',').map(str::trim) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(PlatformError::NotKeyValue(shown(item)));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "os" | "arch" => {
                    check_value(key, value)?;
                    let slot = if key == "os" {
                        &mut req.os
                    } else {
                        &mut req.arch
                    };
                    if slot.is_some() {
                        return Err(PlatformError::Repeated { key: key.into() });
                    }
                    *slot = Some(value.to_owned());
                }
                "feature" | "features" => {
                    for f in value.split('+') {
                        check_value("feature", f)?;
                        req.features.push(f.to_owned());
                    }
                }
                _ => {
                    check_value(key, value)?;
                    if key.is_empty() {
                        return Err(PlatformError::NotKeyValue(shown(item)));
                    }
                    req.unknown.push(format!("{key}={value}"));
                }
            }
        }
        req.features.sort();
        req.features.dedup();
        req.unknown.sort();
        req.unknown.dedup();
        req.validate()?;
        Ok(req)
    }

    /// Checks what a document says: values well-formed and bounded, lists
    /// sorted without repeats.
    pub fn validate(&self) -> Result<(), PlatformError> {
        if let Some(os) = &self.os {
            check_value("os", os)?;
        }
        if let Some(arch) = &self.arch {
            check_value("arch", arch)?;
        }
        check_sorted_values("feature", &self.features)?;
        if self.unknown.len() > MAX_FEATURES {
            return Err(PlatformError::TooMany { what: "unknown" });
        }
        for item in &self.unknown {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| PlatformError::NotKeyValue(shown(item)))?;
            check_value(key, key)?;
            check_value(key, value)?;
            if matches!(key, "os" | "arch" | "feature" | "features") {
                return Err(PlatformError::NotKeyValue(shown(item)));
            }
        }
        if !self.unknown.is_sorted_by(|a, b| a < b) {
            return Err(PlatformError::NotSorted { what: "unknown" });
        }
        Ok(())
    }

    /// Each requirement `p` does not meet, spelled as the user wrote it (`os=windows`).
    pub fn unmet(&self, p: &Platform) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(os) = self.os.as_ref().filter(|os| **os != p.os) {
            out.push(format!("os={os}"));
        }
        if let Some(arch) = self.arch.as_ref().filter(|a| **a != p.arch) {
            out.push(format!("arch={arch}"));
        }
        for f in &self.features {
            if !p.features.contains(f) {
                out.push(format!("feature={f}"));
            }
        }
        out.extend(self.unknown.iter().cloned());
        out
    }

    /// Whether nothing is required (every platform matches).
    pub fn is_empty(&self) -> bool {
        self.os.is_none()
            && self.arch.is_none()
            && self.features.is_empty()
            && self.unknown.is_empty()
    }
}

impl fmt::Display for Requirements {
    /// `os=macos,arch=aarch64,feature=gpu`, unknown items last; what
    /// [`Requirements::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items = Vec::new();
        if let Some(os) = &self.os {
            items.push(format!("os={os}"));
        }
        if let Some(arch) = &self.arch {
            items.push(format!("arch={arch}"));
        }
        items.extend(self.features.iter().map(|x| format!("feature={x}")));
        items.extend(self.unknown.iter().cloned());
        f.pad(&items.join(","))
    }
}

/// Where `--on` sends a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// This node.
    Local,
    /// A named peer: a KEY spelling, resolved by the caller.
    Peer(String),
    /// The least loaded peer meeting these requirements.
    Platform(Requirements),
}

impl FromStr for Target {
    type Err = PlatformError;

    /// `local`; anything with `=` is requirements; anything else names a peer.
    fn from_str(s: &str) -> Result<Target, PlatformError> {
        let s = s.trim();
        if s == "local" {
            Ok(Target::Local)
        } else if s.contains('=') {
            Requirements::parse(s).map(Target::Platform)
        } else if s.is_empty() {
            Err(PlatformError::Empty)
        } else {
            Ok(Target::Peer(s.to_owned()))
        }
    }
}

impl fmt::Display for Target {
    /// What [`Target::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Local => f.pad("local"),
            Target::Peer(p) => f.pad(p),
            Target::Platform(r) => fmt::Display::fmt(r, f),
        }
    }
}

/// Why requirements or a platform are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// Nothing was given.
    #[error("no platform requirement given (expected e.g. os=macos,arch=aarch64)")]
    Empty,
    /// An item without `=`.
    #[error("platform requirement {0:?} is not KEY=VALUE (e.g. os=macos)")]
    NotKeyValue(String),
    /// A value that is empty, too long or has characters other than
    /// letters, digits, `_`, `-` and `.`.
    #[error(
        "platform {key} {value:?} is not 1 to {MAX_VALUE_LEN} letters, digits, '_', '-' or '.'"
    )]
    BadValue {
        /// The key it was given for.
        key: String,
        /// The value (shortened).
        value: String,
    },
    /// `os` or `arch` given twice.
    #[error("platform requirement {key} is given more than once")]
    Repeated {
        /// The key.
        key: String,
    },
    /// Longer than any requirements.
    #[error("platform requirements of {len} bytes are too long")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// More than [`MAX_FEATURES`] items.
    #[error("more than {MAX_FEATURES} platform {what} items")]
    TooMany {
        /// Which list.
        what: &'static str,
    },
    /// A list that is not sorted or has repeats.
    #[error("platform {what} list is not sorted or repeats an item")]
    NotSorted {
        /// Which list.
        what: &'static str,
    },
}

/// At most 80 characters of outside input, for an error message.
fn shown(s: &str) -> String {
    s.chars().take(80).collect()
}

fn check_value(key: &str, value: &str) -> Result<(), PlatformError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_VALUE_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(PlatformError::BadValue {
            key: shown(key),
            value: shown(value),
        })
    }
}

fn check_sorted_values(what: &'static str, values: &[String]) -> Result<(), PlatformError> {
    if values.len() > MAX_FEATURES {
        return Err(PlatformError::TooMany { what });
    }
    for v in values {
        check_value(what, v)?;
    }
    if !values.is_sorted_by(|a, b| a < b) {
        return Err(PlatformError::NotSorted { what });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn platform(os: &str, arch: &str, features: &[&str]) -> Platform {
        Platform {
            os: os.into(),
            arch: arch.into(),
            cores: 4,
            features: features.iter().map(|s| s.to_string()).collect(),
            sandbox: vec![SandboxLevel::None, SandboxLevel::Landlock],
        }
    }

    #[test]
    fn parses_every_spelling_and_prints_it_back() {
        let r =
            Requirements::parse("os=macos, arch=aarch64,feature=gpu,features=cuda+avx").unwrap();
        assert_eq!(r.os.as_deref(), Some("macos"));
        assert_eq!(r.arch.as_deref(), Some("aarch64"));
        assert_eq!(r.features, ["avx", "cuda", "gpu"]);
        assert!(r.unknown.is_empty() && !r.is_empty());
        let text = r.to_string();
        assert_eq!(
            text,
            "os=macos,arch=aarch64,feature=avx,feature=cuda,feature=gpu"
        );
        assert_eq!(Requirements::parse(&text).unwrap(), r);
        assert!(Requirements::default().is_empty());
    }

    #[test]
    fn matching_is_exact_and_names_what_is_unmet() {
        let mac = platform("macos", "aarch64", &["gpu"]);
        let r = Requirements::parse("os=macos,feature=gpu").unwrap();
        assert!(r.unmet(&mac).is_empty());
        let r = Requirements::parse("os=windows,arch=aarch64,feature=tpu").unwrap();
        assert_eq!(r.unmet(&mac), ["os=windows", "feature=tpu"]);
        assert!(Requirements::parse("os=mac").unwrap().unmet(&mac) == ["os=mac"]);
        // An unknown key is kept as written and matches nothing.
        let r = Requirements::parse("os=macos,ram=64G").unwrap();
        assert_eq!(r.unknown, ["ram=64G"]);
        assert_eq!(r.unmet(&mac), ["ram=64G"]);
        assert_eq!(r.to_string(), "os=macos,ram=64G");
    }

    #[test]
    fn malformed_requirements_are_refused_clearly() {
        let cases: &[(&str, &str)] = &[
            ("", "no platform requirement"),
            ("macos", "not KEY=VALUE"),
            ("os=", "is not 1 to 64"),
            ("os=mac os", "is not 1 to 64"),
            ("features=a++b", "is not 1 to 64"),
            ("os=linux,os=macos", "more than once"),
            ("=x", "not KEY=VALUE"),
            ("os=linux,,arch=x", "not KEY=VALUE"),
        ];
        for (input, message) in cases {
            let err = Requirements::parse(input).unwrap_err();
            assert!(err.to_string().contains(message), "{input:?}: {err}");
        }
        let long = format!("os={}", "a".repeat(MAX_VALUE_LEN + 1));
        assert!(matches!(
            Requirements::parse(&long),
            Err(PlatformError::BadValue { .. })
        ));
        // The longest requirements there are print as text that parses back.
        let longest = Requirements {
            os: Some("o".repeat(MAX_VALUE_LEN)),
            arch: Some("a".repeat(MAX_VALUE_LEN)),
            features: (0..MAX_FEATURES).map(|i| format!("{i:064}")).collect(),
            unknown: (0..MAX_FEATURES)
                .map(|i| format!("{i:064}={}", "v".repeat(MAX_VALUE_LEN)))
                .collect(),
        };
        longest.validate().unwrap();
        assert_eq!(Requirements::parse(&longest.to_string()).unwrap(), longest);
        assert!(matches!(
            Requirements::parse(&"x".repeat(MAX_REQUIREMENTS_LEN + 1)),
            Err(PlatformError::TooLong { .. })
        ));
        let many = (0..=MAX_FEATURES)
            .map(|i| format!("feature=f{i}"))
            .collect::<Vec<_>>();
        assert_eq!(
            Requirements::parse(&many.join(",")),
            Err(PlatformError::TooMany { what: "feature" })
        );
    }

    #[test]
    fn validate_refuses_unsorted_lists_and_bad_values() {
        let mut r = Requirements::parse("features=a+b").unwrap();
        r.features.reverse();
        assert_eq!(
            r.validate(),
            Err(PlatformError::NotSorted { what: "feature" })
        );
        let r = Requirements {
            unknown: vec!["os=linux".into()],
            ..Default::default()
        };
        assert!(r.validate().is_err());
        let mut p = platform("linux", "x86_64", &["b", "a"]);
        assert_eq!(
            p.validate(),
            Err(PlatformError::NotSorted { what: "feature" })
        );
        p.features.sort();
        p.validate().unwrap();
        p.sandbox = vec![SandboxLevel::Landlock, SandboxLevel::None];
        assert_eq!(
            p.validate(),
            Err(PlatformError::NotSorted { what: "sandbox" })
        );
    }

    #[test]
    fn targets_parse_from_their_three_spellings() {
        assert_eq!("local".parse::<Target>().unwrap(), Target::Local);
        assert_eq!(
            "SHA256:abc".parse::<Target>().unwrap(),
            Target::Peer("SHA256:abc".into())
        );
        let t: Target = "os=macos,arch=aarch64".parse().unwrap();
        assert_eq!(t.to_string(), "os=macos,arch=aarch64");
        assert!(matches!(t, Target::Platform(r) if r.os.as_deref() == Some("macos")));
        assert!("".parse::<Target>().is_err());
        assert!("os=".parse::<Target>().is_err());
    }

    #[test]
    fn the_local_platform_takes_the_configured_values() {
        let config = JobsConfig {
            os: Some("macos".into()),
            features: vec!["gpu".into(), "avx".into(), "gpu".into()],
            ..Default::default()
        };
        let p = Platform::local(&config, vec![SandboxLevel::Landlock, SandboxLevel::None]);
        assert_eq!(p.os, "macos");
        assert_eq!(p.arch, std::env::consts::ARCH);
        assert_eq!(p.features, ["avx", "gpu"]);
        assert_eq!(p.sandbox, [SandboxLevel::None, SandboxLevel::Landlock]);
        assert!(
            p.cores >= 1 && p.gives(SandboxLevel::Landlock) && !p.gives(SandboxLevel::Isolated)
        );
        p.validate().unwrap();
        let real = Platform::local(&JobsConfig::default(), vec![SandboxLevel::None]);
        assert_eq!(real.os, std::env::consts::OS);
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_what_parses_prints_back(s in "[a-z=,+. _-]{0,40}|.{0,40}") {
            let _ = s.parse::<Target>();
            if let Ok(r) = Requirements::parse(&s) {
                prop_assert_eq!(Requirements::parse(&r.to_string()).unwrap(), r);
            }
        }
    }
}
