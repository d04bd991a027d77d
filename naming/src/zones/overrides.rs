//! Local overrides: mapping a name to a hash on this node only, logged in the
//! name's history.

use crate::state::{self, LOG, LogEntry, OVERRIDES, Override};
use crate::{NamingError, name};

use super::Zones;

impl Zones {
    /// Maps `zone/name` to `hash` on this node only.
    pub fn set_override(
        &self,
        zone: &str,
        name: &str,
        hash: &str,
        kind: &str,
        now: u64,
    ) -> Result<Override, NamingError> {
        name::check_path(name)?;
        self.record(zone)?;
        let o = Override {
            hash: hash.to_owned(),
            kind: kind.to_owned(),
            at: now,
        };
        let log = LogEntry {
            at: now,
            event: "override".into(),
            hash: Some(hash.to_owned()),
        };
        self.log_and(zone, name, log, |tx, row| {
            state::put(tx, OVERRIDES, row, &o)
        })?;
        Ok(o)
    }

    /// Removes the override of `zone/name`; whether there was one.
    pub fn clear_override(&self, zone: &str, name: &str, now: u64) -> Result<bool, NamingError> {
        name::check_path(name)?;
        self.record(zone)?;
        let log = LogEntry {
            at: now,
            event: "override cleared".into(),
            hash: None,
        };
        self.log_and(zone, name, log, |tx, row| state::remove(tx, OVERRIDES, row))
    }

    fn log_and<R>(
        &self,
        zone: &str,
        name: &str,
        log: LogEntry,
        change: impl FnOnce(&redb::WriteTransaction, &str) -> Result<R, NamingError>,
    ) -> Result<R, NamingError> {
        self.transaction(|z| {
            let seq = state::scan::<LogEntry>(&z.db, LOG, &state::key(&[zone, name, ""]))?.len();
            let row = state::key(&[zone, name]);
            let log_row = state::key(&[zone, name, &format!("{seq:020}")]);
            state::write(&z.db, |tx| {
                let out = change(tx, &row)?;
                state::put(tx, LOG, &log_row, &log)?;
                Ok(out)
            })
        })
    }
}
