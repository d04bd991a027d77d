//! The announcement topic as a running service: joining it, answering
//! new neighbours with this node's addresses, announcing revocations, and
//! acting on what arrives (addresses and revocations here; what else an
//! announcement says goes out as a typed [`Announcement`]). Only peers this
//! node admits may join its side of the topic ([`Gated`]).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use clive_trust::{CertId, Revocation};
use iroh::{
    EndpointId,
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler},
};
use iroh_gossip::{Gossip, TopicId, api::Event};
use n0_future::StreamExt;

use super::{
    announce::{Announcement, Body, MIN_INTERVAL, PER_ORIGIN_PER_MINUTE, TOPIC, open},
    keeper,
    shared::{Shared, lock},
    state,
};

/// Gossip, accepting only peers this node admits.
#[derive(Debug, Clone)]
pub struct Gated {
    /// The gossip protocol.
    pub gossip: Gossip,
    /// The node.
    pub shared: Weak<Shared>,
}

impl ProtocolHandler for Gated {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let admitted = self
            .shared
            .upgrade()
            .is_some_and(|s| s.admits(&conn.remote_id()));
        if !admitted {
            conn.close(1u32.into(), b"not a peer");
            return Ok(());
        }
        self.gossip.accept(conn).await
    }

    async fn shutdown(&self) {
        self.gossip.shutdown().await.ok();
    }
}

/// Joins the topic and runs announcements until the task is aborted.
pub fn spawn(shared: &Arc<Shared>) -> tokio::task::JoinHandle<()> {
    let shared = shared.clone();
    tokio::spawn(async move {
        if let Err(e) = run(shared).await {
            tracing::warn!("announcements stopped: {e}");
        }
    })
}

async fn run(shared: Arc<Shared>) -> Result<(), String> {
    let topic = TopicId::from_bytes(*blake3::hash(TOPIC.as_bytes()).as_bytes());
    let bootstrap: Vec<EndpointId> = state::peers(&shared.db)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|(id, _)| EndpointId::from_bytes(&id).ok())
        .collect();
    let sub = shared
        .announcer
        .gossip
        .subscribe(topic, bootstrap)
        .await
        .map_err(|e| e.to_string())?;
    let (sender, mut receiver) = sub.split();
    *shared.announcer.sender.lock().await = Some((
        sender,
        Instant::now()
            .checked_sub(MIN_INTERVAL)
            .unwrap_or_else(Instant::now),
    ));
    // The trust layer reports revocations on a std channel; look every 200 ms.
    let revoked = shared.trust.authorizer().subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let key = shared.endpoint.secret_key().clone();
    let mut limiter = Limiter::default();
    let mut last_addrs: Option<Instant> = None;
    loop {
        tokio::select! {
            event = receiver.next() => match event {
                Some(Ok(Event::Received(msg))) => {
                    received(&shared, &msg.content, &mut limiter).await;
                }
                Some(Ok(Event::NeighborUp(id))) => {
                    tracing::debug!(peer = %id.fmt_short(), "gossip neighbour up");
                    // Tell the new neighbour (and through it, the rest) where we are.
                    if last_addrs.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        last_addrs = Some(Instant::now());
                        let addrs = shared.own_addrs();
                        shared.announcer.send(&key, Body::Addrs { addrs }).await;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(()),
            },
            _ = tick.tick() => {
                let ids: Vec<CertId> = revoked.try_iter().collect();
                for id in ids {
                    if lock(&shared.announcer.seen).insert(id)
                        && let Some(revocation) = revocation_of(&shared, &id)
                    {
                        shared.announcer.send(&key, Body::Revocation { revocation }).await;
                    }
                }
            }
        }
    }
}

fn revocation_of(shared: &Shared, id: &CertId) -> Option<String> {
    shared.trust.authorizer().with_set(|set| {
        let cert = set.cert(id)?;
        let r = set.revocation_of(id, cert)?;
        String::from_utf8(r.encode()).ok()
    })
}

async fn received(shared: &Arc<Shared>, bytes: &[u8], limiter: &mut Limiter) {
    let (origin, body) = match open(bytes, shared.clock.now()) {
        Ok(x) => x,
        Err(e) => {
            tracing::debug!("dropped an announcement: {e}");
            return;
        }
    };
    if origin == shared.endpoint.id() || !limiter.admit(origin) {
        return;
    }
    match body {
        Body::Addrs { addrs } => {
            let addrs: Vec<SocketAddr> = addrs.into_iter().take(16).collect();
            if matches!(state::peer(&shared.db, origin.as_bytes()), Ok(Some(_))) {
                tracing::info!(peer = %origin.fmt_short(), ?addrs, "peer announced addresses");
                shared.add_peer(&origin, &addrs).ok();
                keeper::start(shared, origin);
            }
        }
        Body::Zone { zone, version } => {
            if matches!(state::peer(&shared.db, origin.as_bytes()), Ok(Some(_))) {
                // Nobody listening is fine: nothing follows zones then.
                let _ = shared.announcements.send(Announcement::Zone {
                    origin,
                    zone,
                    version,
                });
            }
        }
        Body::Revocation { revocation } => {
            let Ok(r) = Revocation::decode(revocation.as_bytes()) else {
                return;
            };
            // Keep it only if it applies here: to a certificate this node
            // holds, signed by that certificate's issuer or by a root.
            let applies = shared.trust.authorizer().with_set(|set| {
                set.cert(&r.certificate).is_some_and(|c| {
                    let revoker = r.revoker.bytes();
                    c.body().issuer.bytes() == revoker || set.is_root(&revoker)
                })
            });
            if !applies || !lock(&shared.announcer.seen).insert(r.certificate) {
                return;
            }
            tracing::info!(cert = %hex::encode(r.certificate), "revocation announced");
            if let Ok((_, guard)) = shared.store.put_bytes(r.encode()).await {
                shared.trust.add_revocation(r).ok();
                drop(guard);
            }
        }
    }
}

/// At most [`PER_ORIGIN_PER_MINUTE`] announcements per origin per minute.
#[derive(Debug, Default)]
struct Limiter {
    windows: HashMap<EndpointId, (Instant, u32)>,
}

impl Limiter {
    fn admit(&mut self, origin: EndpointId) -> bool {
        if self.windows.len() > 4096 {
            self.windows.clear();
        }
        let now = Instant::now();
        let (start, count) = self.windows.entry(origin).or_insert((now, 0));
        if now.duration_since(*start) > Duration::from_secs(60) {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= PER_ORIGIN_PER_MINUTE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_bounds_each_origin() {
        let mut l = Limiter::default();
        let a = iroh::SecretKey::from_bytes(&[1; 32]).public();
        let admitted = (0..100).filter(|_| l.admit(a)).count();
        assert_eq!(admitted, PER_ORIGIN_PER_MINUTE as usize);
    }
}
