//! `fsck --repair`: damaged or missing objects fetched again from peers.

use std::sync::Arc;

use clive_cas::{Damage, FsckReport, NoProgress, Progress, Root};

use crate::{NetError, Node, NodeError, net::fetch};

/// Repairs what `found` (a check of `node`'s store with the roots `keep`)
/// lists: removes the damaged copies (a fetch skips what the store holds),
/// fetches each object again from the peers that have it, and checks the
/// store again. The report is that last check, with what was repaired and
/// what could not be, and why.
pub(crate) async fn repair(
    node: &Node,
    found: FsckReport,
    keep: &[Root],
    progress: Arc<dyn Progress>,
) -> Result<FsckReport, NodeError> {
    let damaged: Vec<_> = found.damaged.iter().map(|d| d.hash).collect();
    node.store().cas().remove_objects(&damaged).await?;
    let mut repaired = Vec::new();
    let mut unrepaired = Vec::new();
    let broken: Vec<&Damage> = found.damaged.iter().chain(&found.missing).collect();
    let net = node.online().await.map_err(Arc::new);
    for hash in found.broken() {
        let reached_by = broken
            .iter()
            .find(|d| d.hash == hash)
            .map(|d| d.reached_by.clone())
            .unwrap_or_default();
        let fetched = match &net {
            Ok(net) => fetch::get(&net.shared, hash, Vec::new(), Arc::new(NoProgress)).await,
            Err(e) => Err(NetError::Offline(e.clone()).into()),
        };
        match fetched {
            Ok(_) => repaired.push(hash),
            Err(e) => unrepaired.push(Damage {
                hash,
                problem: e.to_string(),
                reached_by,
            }),
        }
    }
    node.store().cas().sync().await?;
    let mut after = node.store().cas().fsck(progress, keep).await?;
    after.repaired = repaired;
    after.unrepaired = unrepaired;
    Ok(after)
}
