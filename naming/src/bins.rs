//! Hashed bins: how a zone spreads its names over delegated targets roles.
//!
//! A zone made by clive-node lists no names in its top-level `targets`. It
//! delegates them to [`COUNT`] roles `bin-00` ... `bin-1f`, each taking the
//! names whose SHA-256 (hex) starts with one of its eight two-digit
//! prefixes (`path_hash_prefixes`, the TUF 1.0 hashed bin delegation).
//! Publishing a name re-signs its bin and the snapshot, so the cost of a
//! publish grows with a thirty-second of the zone, not the whole zone. Prefix delegations (`name delegate`) come
//! before the bins: TUF resolution takes the first role that matches.
//! A prefix delegation may not take a bin's name (`name delegate` refuses
//! one), and role names stay plain file names that any static web server
//! serves as they are.

use crate::tuf::{DelegatedRole, Targets};

/// How many bins a zone has.
pub const COUNT: usize = 32;
/// Two-digit hash prefixes per bin (256 in all).
const PREFIXES_PER_BIN: usize = 256 / COUNT;
/// What every bin's name starts with.
pub const PREFIX: &str = "bin-";

/// The names of the bins, in order.
pub fn names() -> Vec<String> {
    (0..COUNT).map(|i| format!("{PREFIX}{i:02x}")).collect()
}

/// The bin delegations, signed by the key `keyid`.
pub fn roles(keyid: &str) -> Vec<DelegatedRole> {
    roles_of(&[keyid.to_owned()])
}

/// The bin delegations, each signed by any one of `keyids` (threshold 1:
/// the devices of a multi-device zone each sign alone).
pub fn roles_of(keyids: &[String]) -> Vec<DelegatedRole> {
    (0..COUNT)
        .map(|i| DelegatedRole {
            name: format!("{PREFIX}{i:02x}"),
            keyids: keyids.to_vec(),
            threshold: 1,
            terminating: true,
            paths: None,
            path_hash_prefixes: Some(
                (0..PREFIXES_PER_BIN)
                    .map(|k| format!("{:02x}", i * PREFIXES_PER_BIN + k))
                    .collect(),
            ),
            unrecognized: serde_json::Map::new(),
        })
        .collect()
}

/// Whether `role` is one of the bins.
pub fn is_bin(role: &str) -> bool {
    role.strip_prefix(PREFIX)
        .is_some_and(|d| d.len() == 2 && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The first delegation of `top` that `name` matches: the role TUF
/// resolution reads `name` from, when `top` itself does not list it.
pub fn route<'a>(top: &'a Targets, name: &str) -> Option<&'a DelegatedRole> {
    top.delegations
        .as_ref()?
        .roles
        .as_ref()?
        .iter()
        .find(|r| r.is_delegated_path(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_exactly_one_bin() {
        let mut top = Targets::new(0);
        top.delegations = Some(crate::tuf::Delegations {
            keys: Default::default(),
            roles: Some(roles("k")),
            succinct_roles: None,
            unrecognized: serde_json::Map::new(),
        });
        for name in ["a", "release/x", "ü/ñ", "0"] {
            let matching: Vec<_> = roles("k")
                .into_iter()
                .filter(|r| r.is_delegated_path(name))
                .collect();
            assert_eq!(matching.len(), 1, "{name}");
            assert_eq!(route(&top, name).map(|r| &r.name), Some(&matching[0].name));
        }
        assert!(is_bin("bin-1a") && !is_bin("bin-a") && !is_bin("bin-abc") && !is_bin("beta"));
    }
}
