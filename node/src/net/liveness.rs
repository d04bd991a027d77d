//! Noticing dead connections.
//!
//! A peer killed without a word leaves its connections looking open here
//! until QUIC gives up on them, and iroh keeps sending to the path it
//! selected for that peer, new handshakes included, while any of them
//! lives: a peer that restarted at another address cannot be dialled, and
//! `peers ls` says connected. Every path of a live connection is probed
//! every couple of seconds and the peer acknowledges, so a connection that
//! received nothing for [`SILENT_LIMIT`] is dead. Then every connection to
//! that peer is closed (the new ones of a restarted peer too, which it dials
//! again at once): with none left, iroh forgets the dead path and the next
//! dial tries every address it knows.
//!
//! Connections are registered by an endpoint hook, so those iroh-gossip
//! opens are watched as well.

use std::{sync::Arc, time::Duration};

use super::{
    keeper,
    shared::{SILENT_LIMIT, Shared},
};

/// How often connections are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Watches every connection until the node goes offline.
pub fn spawn(shared: &Arc<Shared>) -> tokio::task::JoinHandle<()> {
    let shared = Arc::downgrade(shared);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            for peer in shared.registry.sweep() {
                let closed = shared.registry.close_all(&peer);
                tracing::info!(
                    peer = %peer.fmt_short(),
                    "peer silent for {}s: closed its {closed} connection(s)",
                    SILENT_LIMIT.as_secs()
                );
                shared.forget_blob_conn(&peer).await;
                keeper::start(&shared, peer);
            }
        }
    })
}
