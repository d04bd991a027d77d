//! Typed events one concern of the node raises and others subscribe to,
//! so that none of them imports another: [`ZoneEvents`], "the verified
//! metadata (or a local override) of zone Z was stored", raised where the
//! names concern and the zones protocol store zone metadata, and heard by
//! pipeline watches (`job run --watch`), which then look whether a name
//! they read moved.

use tokio::sync::broadcast;

/// How many zone events wait for a slow subscriber before the oldest are
/// dropped (it is told how many it missed, and looks at all its zones).
pub const ZONE_BACKLOG: usize = 256;

/// A zone's metadata, or a local override of one of its names, was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneStored {
    /// The zone, by its local name (what `ZONE/NAME` spells).
    pub zone: String,
}

/// The node's channel of [`ZoneStored`] events: one per node, shared by
/// every place that stores zone metadata.
#[derive(Debug, Clone)]
pub struct ZoneEvents(broadcast::Sender<ZoneStored>);

impl Default for ZoneEvents {
    fn default() -> Self {
        ZoneEvents(broadcast::channel(ZONE_BACKLOG).0)
    }
}

impl ZoneEvents {
    /// Says that `zone`'s metadata was stored (nobody listening is fine).
    pub fn stored(&self, zone: &str) {
        let _ = self.0.send(ZoneStored {
            zone: zone.to_owned(),
        });
    }

    /// Hears every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ZoneStored> {
        self.0.subscribe()
    }
}
