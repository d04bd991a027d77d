//! The node's state opened read-only, for the `name` requests that only
//! read it when no daemon runs (answered by
//! the names part of the node API).

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
