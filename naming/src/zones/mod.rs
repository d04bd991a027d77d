//! Zones this node publishes or follows: creating and signing them, taking
//! new metadata through the TUF client workflow, resolving names, history,
//! overrides, and the files peers and mirrors are given.
//!
//! [`Zones`] is one handle over the node's `state.redb`; each concern adds
//! its methods in a module of its own:
//!
//! - `info`: listing and showing zones.
//! - `roots`: creating a zone, rotating keys, co-signed roots.
//! - `devices`: zones of several devices, adding a device.
//! - `publish`: publishing names, and publish receipts.
//! - `delegate`: delegated roles, on the publisher and on the delegate.
//! - `clocks`: per-name version vectors, tombstones, merging by them.
//! - `signing`: the new targets, snapshot and timestamp versions every
//!   signing path shares.
//! - `update`: following a zone and the TUF client workflow over new files.
//! - `forks`: forks between devices' keys and equivocations, conflicts.
//! - `merge`: merging a device's metadata with a peer device's.
//! - `resolve`: resolving names from verified metadata.
//! - `mirrored`: the downloaded bytes of targets made by other TUF tools.
//! - `history`: a name's changes, re-verified.
//! - `overrides`: local overrides of a name.
//! - `resign`: re-signing metadata before it expires.
//! - `files`: the files a zone serves to peers and mirrors.

use std::sync::Arc;

use redb::{Database, ReadOnlyDatabase};

use crate::NamingError;
use crate::name;
use crate::source::ZoneLocal;
use crate::state::{self, ZONES, ZoneRecord};
use crate::tuf::{Metadata, Signed, TufError};

mod clocks;
mod delegate;
mod devices;
mod files;
mod forks;
mod history;
mod info;
mod merge;
mod mirrored;
mod overrides;
mod publish;
mod resign;
mod resolve;
mod roots;
mod signing;
mod update;

pub use clocks::{Clock, Conflict, REMOVED_FIELD, Relation, compare, device_id};
pub use files::{RECENT_VERSIONS, encode_role};
pub(crate) use forks::classify;
pub use forks::{MergedFork, NameClock};
pub use history::Change;
pub use info::{RoleInfo, ZoneInfo};
pub use merge::Merged;
pub use mirrored::{Mirrored, PlainTarget, target_url_path};
pub use publish::{Content, Published, RECEIPTS_KEPT, new_receipt};
pub use resolve::Resolution;
pub use roots::{RootChange, RootStatus, ZONE_FIELD, zone_id, zone_name};

/// How long each role's metadata is valid when this node signs it.
pub mod lifetime {
    /// Root: a year.
    pub const ROOT: u64 = 365 * 86_400;
    /// Targets: 90 days.
    pub const TARGETS: u64 = 90 * 86_400;
    /// Snapshot: 7 days.
    pub const SNAPSHOT: u64 = 7 * 86_400;
    /// Timestamp: 1 day.
    pub const TIMESTAMP: u64 = 86_400;
}

/// The zones of a node.
#[derive(Debug, Clone)]
pub struct Zones {
    db: state::Db,
}

fn tuf_err(zone: &str) -> impl Fn(TufError) -> NamingError + '_ {
    move |cause| NamingError::Tuf {
        zone: zone.to_owned(),
        cause,
    }
}

fn parse<T: Signed>(zone: &str, bytes: &[u8]) -> Result<Metadata<T>, NamingError> {
    Metadata::<T>::from_bytes(bytes).map_err(tuf_err(zone))
}

fn to_bytes<T: Signed>(zone: &str, m: &Metadata<T>) -> Result<Vec<u8>, NamingError> {
    m.to_bytes().map_err(tuf_err(zone))
}

impl Zones {
    /// The zones kept in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Zones {
            db: state::Db::Rw(db),
        }
    }

    /// The zones kept in `db`, for reading only: whatever would write fails.
    pub fn read_only(db: Arc<ReadOnlyDatabase>) -> Self {
        Zones {
            db: state::Db::Ro(db),
        }
    }

    /// The record of `zone`: its id, origin, mirror and last verification.
    pub fn record(&self, zone: &str) -> Result<ZoneRecord, NamingError> {
        name::check_zone(zone)?;
        state::get(&self.db, ZONES, zone)?.ok_or_else(|| NamingError::UnknownZone {
            zone: zone.to_owned(),
        })
    }

    fn current<T: Signed>(&self, zone: &str, role: &str) -> Result<Metadata<T>, NamingError> {
        let bytes = ZoneLocal::current(&self.db, zone, role)?.ok_or_else(|| {
            NamingError::Invalid(format!("zone {zone} has no trusted {role} metadata yet"))
        })?;
        parse(zone, &bytes)
    }

    /// Runs `f` over one write transaction of the node's state: it sees its
    /// own writes, and all of them are kept or none. Inside a transaction
    /// already, `f` joins it.
    pub fn transaction<R>(
        &self,
        f: impl FnOnce(&Zones) -> Result<R, NamingError>,
    ) -> Result<R, NamingError> {
        self.db.transaction(|db| f(&Zones { db: db.clone() }))
    }
}
