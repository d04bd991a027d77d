//! The node's state opened read-only, for the `name` requests that only
//! read it when no daemon runs (answered by `read_only_reply` in the names
//! part of the node API).

use std::sync::Arc;

use clive_naming::Zones;

use crate::NodeError;

/// The node's state alone (`state.redb`), opened read-only, for commands
/// that only read it (`name resolve`, `name history`, `name zone ls`, and
/// the control client's receipt lookup, `NameRequest::Receipt`) when
/// no daemon runs: it skips the blob store, the trust state and the home
/// lock (redb's own file lock keeps writers out while it is open), so a
/// lookup costs about what starting the process does, and writes nothing.
#[derive(Debug)]
pub struct StateView {
    zones: Zones,
    identity: Option<clive_trust::PublicIdentity>,
    home: crate::Home,
}

impl StateView {
    /// Opens `home`'s state read-only. Fails when another process has it
    /// open for writing (then the caller opens the node, which says who),
    /// or when it needs recovery.
    pub fn open(home: &crate::Home) -> Result<StateView, NodeError> {
        let db = crate::statedb::open_state_read_only(home)?;
        Ok(StateView {
            zones: Zones::read_only(Arc::new(db)),
            identity: crate::node::read_public_key_file(&home.pub_key_path()),
            home: home.clone(),
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
}
