//! Answering the `name` requests that only read state, from `state.redb`
//! alone when no daemon runs.

use std::sync::Arc;

use clive_naming::Zones;
use clive_trust::Clock;

use crate::NodeError;

/// The node's state alone (`state.redb`), opened read-only, for commands
/// that only read it (`name resolve`, `name history`, `name zone ls`) when
/// no daemon runs: it skips the blob store, the trust state and the home
/// lock (redb's own file lock keeps writers out while it is open), so a
/// lookup costs about what starting the process does, and writes nothing.
#[derive(Debug)]
pub struct StateView {
    zones: Zones,
    identity: Option<clive_trust::PublicIdentity>,
    home: crate::Home,
    clock: Arc<dyn Clock>,
}

impl StateView {
    /// Opens `home`'s state read-only. Fails when another process has it
    /// open for writing (then the caller opens the node, which says who).
    /// `clock` decides what has expired.
    pub fn open(home: &crate::Home, clock: Arc<dyn Clock>) -> Result<StateView, NodeError> {
        let db = crate::statedb::open_state_read_only(home)?;
        Ok(StateView {
            zones: Zones::read_only(Arc::new(db)),
            identity: crate::node::read_public_key_file(&home.pub_key_path()),
            home: home.clone(),
            clock,
        })
    }

    /// Runs `read` on the zones and the node's key; a damaged state is an
    /// error naming it, not a panic.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&Zones, Option<&clive_trust::PublicIdentity>) -> Result<T, NodeError>,
    ) -> Result<T, NodeError> {
        crate::statedb::read_state(&self.home, || read(&self.zones, self.identity.as_ref()))
    }

    /// The zones in it.
    pub fn zones(&self) -> &Zones {
        &self.zones
    }

    /// Now, by the view's clock.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The node's key, when its public key file reads.
    pub fn identity(&self) -> Option<&clive_trust::PublicIdentity> {
        self.identity.as_ref()
    }
}

/// Answers the `name` requests that only read state, from `zones` (`me` is
/// the node's key; `now` decides what has expired); `None` for any other
/// request.
pub fn read_request(
    zones: &Zones,
    me: Option<&clive_trust::PublicIdentity>,
    request: &crate::NameRequest,
    now: u64,
) -> Option<Result<crate::Reply, NodeError>> {
    use crate::{NameRequest, Reply};
    fn split(name: &str) -> Result<(&str, &str), NodeError> {
        clive_naming::name::split(name).map_err(NodeError::from)
    }
    Some(match request {
        NameRequest::Resolve { name, offline } => split(name).and_then(|(zone, path)| {
            zones
                .resolve(zone, path, *offline, now)
                .map(Reply::Resolved)
                .map_err(NodeError::from)
        }),
        NameRequest::History { name } => split(name).and_then(|(zone, path)| {
            zones
                .history(zone, path)
                .map(Reply::NameHistory)
                .map_err(NodeError::from)
        }),
        NameRequest::ZoneLs => zones.list(me).map(Reply::Zones).map_err(NodeError::from),
        NameRequest::Receipt { receipt } => read_receipt(zones, receipt),
        _ => return None,
    })
}

/// What the publish recorded under `receipt` committed (nothing yet: empty).
pub fn read_receipt(zones: &Zones, receipt: &str) -> Result<crate::Reply, NodeError> {
    zones
        .receipt(receipt)
        .map(|r| crate::Reply::NamesPublished(r.unwrap_or_default()))
        .map_err(NodeError::from)
}
