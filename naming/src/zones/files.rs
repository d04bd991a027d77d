//! A zone's files, by the paths a TUF repository serves them under: what
//! peers and mirrors are given.

use crate::NamingError;
use crate::source::Bundle;
use crate::state::{self, Accepted, CURRENT, VERSIONS};
use crate::tuf::{self, Root};

use super::{Zones, to_bytes};

/// How many versions of each targets role (the current one included) a
/// zone's files carry for peers and mirrors.
pub const RECENT_VERSIONS: usize = 8;

impl Zones {
    /// The files of a zone's current state, by the path a repository
    /// serves them under: every root version, the timestamp, and the
    /// current snapshot, targets and delegated roles.
    pub fn files(&self, zone: &str) -> Result<Bundle, NamingError> {
        self.record(zone)?;
        let mut bundle = Bundle::default();
        let roots: Vec<(String, Accepted)> =
            state::scan(&self.db, VERSIONS, &state::key(&[zone, "root", ""]))?;
        for (version, accepted) in roots {
            let version: u64 = version.parse().map_err(state::state_err)?;
            bundle
                .files
                .insert(versioned("root", version), accepted.bytes);
        }
        let currents: Vec<(String, Vec<u8>)> = {
            let prefix = state::key(&[zone, ""]);
            state::scan_raw(&self.db, CURRENT, &prefix)?
        };
        for (role, bytes) in currents {
            match role.as_str() {
                "root" => {}
                "timestamp" => {
                    bundle.files.insert("timestamp.json".into(), bytes);
                }
                _ => {
                    let version = crate::source::role_version(&role, &bytes)?;
                    bundle
                        .files
                        .insert(versioned(&role, version), bytes.clone());
                    // Unversioned names too, for repositories without
                    // consistent snapshots and for plain mirrors.
                    bundle
                        .files
                        .insert(format!("{}.json", encode_role(&role)), bytes);
                }
            }
        }
        if let Ok(latest) = self.current::<Root>(zone, "root") {
            bundle
                .files
                .insert("root.json".into(), to_bytes(zone, &latest)?);
        }
        Ok(bundle)
    }

    /// The versions before the current one of each targets role of
    /// `zone` (up to [`RECENT_VERSIONS`] in all, each), so that a follower
    /// that was away sees each change in its history.
    pub fn older_files(&self, zone: &str) -> Result<Bundle, NamingError> {
        let mut bundle = Bundle::default();
        let currents = state::scan_raw(&self.db, CURRENT, &state::key(&[zone, ""]))?;
        for (role, _) in currents {
            if ["root", "timestamp", "snapshot"].contains(&role.as_str()) {
                continue;
            }
            let recent: Vec<(String, Accepted)> = state::last_versions(
                &self.db,
                VERSIONS,
                &state::key(&[zone, &role]),
                RECENT_VERSIONS,
            )?;
            for (version, accepted) in recent.into_iter().skip(1) {
                let version: u64 = version.parse().map_err(state::state_err)?;
                bundle
                    .files
                    .insert(versioned(&role, version), accepted.bytes);
            }
        }
        Ok(bundle)
    }
}

/// The path a repository serves a role's version under.
pub(super) fn versioned(role: &str, version: u64) -> String {
    format!("{version}.{}.json", encode_role(role))
}

/// A role name as a file name (as python-tuf quotes it).
pub fn encode_role(role: &str) -> String {
    tuf::updater::quote(role)
}
