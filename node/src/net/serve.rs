//! Answering peers: the router that accepts each protocol, the peer
//! protocol's handler, and the trust check on every blob request.
//!
//! Blob requests (iroh-blobs' get, get-many and observe) are intercepted one
//! by one and served only when the requester holds `fetch`, or when this
//! node is pushing exactly those objects to it. Each request is checked
//! afresh, so a revocation refuses the next request on a connection that is
//! already open. iroh-blobs' own push requests are disabled: a push here is
//! an offer the receiver answers by fetching.
//!
//! A damaged copy is never served: the provider checks each range against
//! the hash as it reads it and stops the request at the first that does
//! not match. A request that stops early is looked at here, and damage is
//! logged with the way to repair it ([`watch_request`]). Checking every
//! blob once more before serving it cost more than half the serving
//! node's CPU on a tree of small files, and read a large blob twice.

use std::{collections::HashMap, sync::Arc, time::Instant};

use clive_cas::{Hash, NoProgress, Store};
use clive_trust::{Capability, Caps, CertBody, Certificate, PublicIdentity};
use iroh::{
    EndpointId,
    endpoint::Connection,
    protocol::{AcceptError, ProtocolHandler, Router},
};
use iroh_blobs::{
    BlobsProtocol,
    protocol::ChunkRanges,
    provider::events::{
        AbortReason, ConnectMode, EventMask, EventSender, ObserveMode, ProviderMessage,
        RequestMode, RequestUpdate, ThrottleMode,
    },
};

use super::{
    devices, fetch, gossip, keeper,
    shared::{MAX_PRESENTED_CERTS, Shared, lock},
    state, wire, zones,
};

/// The router: one ALPN per protocol on one endpoint: blobs, the peer
/// protocol, zones and announcements, and the `extra` protocols of other
/// concerns (jobs).
pub fn router(
    shared: &Arc<Shared>,
    extra: Vec<(&'static [u8], Box<dyn iroh::protocol::DynProtocolHandler>)>,
) -> Router {
    let blobs = BlobsProtocol::new(shared.store.blobs(), Some(blob_events(shared.clone())));
    let mut builder = Router::builder(shared.endpoint.clone());
    for (alpn, handler) in extra {
        builder = builder.accept(alpn, handler);
    }
    builder
        .accept(iroh_blobs::ALPN, ServeBlobs(blobs))
        .accept(wire::PEER_ALPN, PeerProtocol(shared.clone()))
        .accept(
            zones::ZONES_ALPN,
            zones::ZonesProtocol(Arc::downgrade(shared)),
        )
        .accept(
            iroh_gossip::ALPN,
            gossip::Gated {
                gossip: shared.announcer.gossip().clone(),
                shared: Arc::downgrade(shared),
            },
        )
        .spawn()
}

/// iroh-blobs' provider, minus its shutdown: the store belongs to the node
/// and outlives the network layer.
#[derive(Debug, Clone)]
struct ServeBlobs(BlobsProtocol);

impl ProtocolHandler for ServeBlobs {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        self.0.accept(conn).await
    }
}

/// Whether `peer` may fetch `hashes` (as plain blobs when `raw`).
fn may_fetch(shared: &Shared, peer: &EndpointId, hashes: &[Hash], raw: bool) -> bool {
    if shared.trust.holds(peer.as_bytes(), Capability::Fetch) {
        return true;
    }
    if !raw {
        return false;
    }
    let now = Instant::now();
    let grants = lock(&shared.push_grants);
    let Some(granted) = grants.get(peer) else {
        return false;
    };
    hashes
        .iter()
        .all(|h| granted.iter().any(|(g, until)| g == h && *until > now))
}

fn verdict(ok: bool) -> Result<(), AbortReason> {
    if ok {
        Ok(())
    } else {
        Err(AbortReason::Permission)
    }
}

/// Watches one blob request as the provider serves it, and when it ends
/// early, checks the blob it was sending. The provider reads every range
/// against its hash as it sends it (bao-tree's validated traversal) and
/// stops at the first that does not match, so a damaged copy never leaves
/// this node; this is what says so in the log, with the way to repair it.
/// A request also ends early when the peer goes away: then the check finds
/// nothing. One such check runs at a time; the next early end checks again.
fn watch_request(
    store: Store,
    peer: Option<EndpointId>,
    requested: Vec<(Hash, ChunkRanges)>,
    mut updates: irpc::channel::mpsc::Receiver<RequestUpdate>,
) {
    static CHECKING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    tokio::spawn(async move {
        let mut sending = None;
        // Drained to the end: the provider's progress reports fail the
        // transfer when nobody receives them.
        while let Ok(Some(update)) = updates.recv().await {
            match update {
                RequestUpdate::Started(started) => sending = Some(started.index),
                RequestUpdate::Aborted(_) => {
                    let Some((hash, ranges)) = sending
                        .and_then(|i| usize::try_from(i).ok())
                        .and_then(|i| requested.get(i).cloned())
                    else {
                        break;
                    };
                    let Ok(_one) = CHECKING.try_acquire() else {
                        break;
                    };
                    if store.size(hash).await.is_err() {
                        break;
                    }
                    if let Err(e) = store.verify_ranges(hash, ranges).await {
                        let peer = peer.map(|p| p.fmt_short().to_string()).unwrap_or_default();
                        tracing::error!(%peer, "refused to serve {hash}: {e}");
                    }
                    break;
                }
                RequestUpdate::Progress(_) | RequestUpdate::Completed(_) => {}
            }
        }
    });
}

/// The blob provider's event handler: one trust check per connection and
/// per request, and a check of the data before it is served.
fn blob_events(shared: Arc<Shared>) -> EventSender {
    let mask = EventMask {
        connected: ConnectMode::Intercept,
        get: RequestMode::InterceptLog,
        get_many: RequestMode::InterceptLog,
        push: RequestMode::Disabled,
        observe: ObserveMode::Intercept,
        throttle: ThrottleMode::None,
    };
    let (sender, mut events) = EventSender::channel(64, mask);
    tokio::spawn(async move {
        let mut peers: HashMap<u64, EndpointId> = HashMap::new();
        while let Some(event) = events.recv().await {
            match event {
                ProviderMessage::ClientConnected(msg) => {
                    let ok = msg.endpoint_id.filter(|id| {
                        shared.admits(id) || lock(&shared.push_grants).contains_key(id)
                    });
                    if let Some(id) = ok {
                        peers.insert(msg.connection_id, id);
                    }
                    msg.tx.send(verdict(ok.is_some())).await.ok();
                }
                ProviderMessage::ConnectionClosed(msg) => {
                    peers.remove(&msg.connection_id);
                }
                ProviderMessage::GetRequestReceived(msg) => {
                    let peer = peers.get(&msg.connection_id).copied();
                    let ok = peer.is_some_and(|p| {
                        may_fetch(
                            &shared,
                            &p,
                            &[msg.request.hash],
                            msg.request.ranges.is_blob(),
                        )
                    });
                    if !ok {
                        msg.tx.send(verdict(false)).await.ok();
                        continue;
                    }
                    let requested = msg
                        .request
                        .ranges
                        .iter_infinite()
                        .next()
                        .map(|r| vec![(msg.request.hash, r.clone())])
                        .unwrap_or_default();
                    msg.tx.send(Ok(())).await.ok();
                    watch_request(shared.store.clone(), peer, requested, msg.rx);
                }
                ProviderMessage::GetManyRequestReceived(msg) => {
                    let peer = peers.get(&msg.connection_id).copied();
                    let ok =
                        peer.is_some_and(|p| may_fetch(&shared, &p, &msg.request.hashes, true));
                    if !ok {
                        msg.tx.send(verdict(false)).await.ok();
                        continue;
                    }
                    let requested: Vec<_> = msg
                        .request
                        .hashes
                        .iter()
                        .copied()
                        .zip(msg.request.ranges.iter_infinite().cloned())
                        .collect();
                    msg.tx.send(Ok(())).await.ok();
                    watch_request(shared.store.clone(), peer, requested, msg.rx);
                }
                ProviderMessage::ObserveRequestReceived(msg) => {
                    let ok = peers
                        .get(&msg.connection_id)
                        .is_some_and(|p| may_fetch(&shared, p, &[msg.request.hash], true));
                    msg.tx.send(verdict(ok)).await.ok();
                }
                _ => {}
            }
        }
    });
    sender
}

/// The peer protocol's handler.
#[derive(Debug, Clone)]
struct PeerProtocol(Arc<Shared>);

impl ProtocolHandler for PeerProtocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let shared = Arc::downgrade(&self.0);
        while let Ok((send, recv)) = conn.accept_bi().await {
            let shared = shared.clone();
            let conn = conn.clone();
            tokio::spawn(async move {
                let (weak, c) = (&shared, &conn);
                let reply = move |request| async move {
                    let shared = weak.upgrade()?;
                    Some(respond(&shared, c, request).await)
                };
                if let Err(e) = wire::answer(send, recv, reply, refused).await {
                    tracing::debug!(peer = %conn.remote_id().fmt_short(), "peer stream: {e}");
                }
            });
        }
        Ok(())
    }
}

fn refused(reason: impl Into<String>) -> wire::PeerReply {
    wire::PeerReply::Refused {
        reason: reason.into(),
    }
}

async fn respond(
    shared: &Arc<Shared>,
    conn: &Connection,
    request: wire::PeerRequest,
) -> wire::PeerReply {
    let peer = conn.remote_id();
    match request {
        wire::PeerRequest::Hello { addrs, certs } => {
            if !shared.admits(&peer) {
                return refused(
                    "this node does not know you: join it with a ticket from `clive-node invite`",
                );
            }
            for text in certs.iter().take(MAX_PRESENTED_CERTS) {
                let Ok(cert) = Certificate::decode(text.as_bytes()) else {
                    continue;
                };
                // Keep only what extends a chain this node can already
                // follow, so a peer cannot fill the store with certificates
                // it issued itself.
                let issuer = cert.body().issuer.bytes();
                let useful = shared.trust.authorizer().with_set(|set| {
                    set.cert(&cert.id()).is_none()
                        && (set.is_root(&issuer)
                            || set.certs().any(|(_, c)| c.body().subject.bytes() == issuer))
                });
                if cert.body().subject.bytes() == *peer.as_bytes() && useful {
                    shared.trust.keep_cert(&shared.store, cert).await.ok();
                }
            }
            let addrs: Vec<_> = addrs.into_iter().take(16).collect();
            shared.learn_addrs(peer, &addrs);
            if let Err(e) = shared.saw_peer(&peer, &addrs) {
                tracing::warn!("recording peer {}: {e}", peer.fmt_short());
            }
            shared.keep_conn(conn).await;
            shared.announcer.join_peer(peer);
            tracing::info!(peer = %peer.fmt_short(), "peer said hello");
            wire::PeerReply::Hello {
                addrs: shared.own_addrs(),
            }
        }
        wire::PeerRequest::Join {
            secret,
            device_cert,
        } => join(shared, peer, &secret, device_cert.as_deref()).await,
        wire::PeerRequest::Check { cap } => match cap.parse::<Capability>() {
            Ok(cap) => {
                match shared
                    .trust
                    .check(&PublicIdentity::from_bytes(*peer.as_bytes()), cap)
                {
                    Ok(chain) => wire::PeerReply::Verdict {
                        allowed: true,
                        reason: format!(
                            "granted by a chain of {} certificate(s)",
                            chain.links.len()
                        ),
                    },
                    Err(refusal) => wire::PeerReply::Verdict {
                        allowed: false,
                        reason: refusal.cause.to_string(),
                    },
                }
            }
            Err(e) => refused(e.to_string()),
        },
        wire::PeerRequest::PushOffer { hash } => {
            let Ok(hash) = clive_cas::parse_hash(&hash) else {
                return refused("not a hash");
            };
            if let Err(why) = shared.require(&peer, Capability::Push) {
                return refused(why.to_string());
            }
            // Unprotected between the fetch and its pin otherwise.
            let _hold = shared.store.hold_roots().await;
            match fetch::get(shared, hash, vec![peer], Arc::new(NoProgress)).await {
                Ok(fetched) => {
                    if let Err(e) = fetch::keep_pushed(shared, hash).await {
                        return refused(e.to_string());
                    }
                    wire::PeerReply::Pushed {
                        bytes_received: fetched.bytes_received,
                    }
                }
                Err(e) => refused(e.to_string()),
            }
        }
    }
}

async fn join(
    shared: &Arc<Shared>,
    peer: EndpointId,
    secret: &str,
    device_cert: Option<&str>,
) -> wire::PeerReply {
    let mut bytes = [0u8; 32];
    if hex::decode_to_slice(secret, &mut bytes).is_err() {
        return refused("this ticket was not issued by this node (or was forged)");
    }
    let invite = match state::redeem_invite(&shared.db, &bytes, shared.clock.now()) {
        Ok(Ok(invite)) => invite,
        Ok(Err(why)) => {
            tracing::info!(peer = %peer.fmt_short(), "join refused: {why}");
            return refused(why.to_string());
        }
        Err(e) => return refused(format!("the inviter failed: {e}")),
    };
    if invite.device_zone.is_some() != device_cert.is_some() {
        return refused(if device_cert.is_some() {
            "this invite is not for one's own device"
        } else {
            "this invite pairs one's own devices: join with a clive-node that knows \
             device tickets"
        });
    }
    let caps = match clive_trust::Caps::parse(&invite.caps) {
        Ok(caps) => caps,
        Err(e) => return refused(format!("the invite is damaged: {e}")),
    };
    let body = join_cert_body(
        &shared.identity,
        *peer.as_bytes(),
        caps,
        invite.cert_valid_secs,
        shared.clock.now(),
    );
    let cert = match body.sign(&*shared.signer) {
        Ok(cert) => cert,
        Err(e) => return refused(format!("the inviter cannot sign: {e}")),
    };
    let text = String::from_utf8_lossy(&cert.encode()).into_owned();
    if let Err(e) = shared.trust.keep_cert(&shared.store, cert).await {
        return refused(format!("the inviter failed to keep the certificate: {e}"));
    }
    if let Err(e) = shared.add_peer(&peer, &[]) {
        return refused(format!("the inviter failed to record you: {e}"));
    }
    let device_zone = match (&invite.device_zone, device_cert) {
        (Some(zone), Some(theirs)) => match devices::admit(shared, peer, zone, theirs).await {
            Ok(ticket) => Some(ticket),
            Err(why) => return refused(why),
        },
        _ => None,
    };
    keeper::start(shared, peer);
    tracing::info!(peer = %peer.fmt_short(), caps = %caps, device = device_zone.is_some(), "peer joined");
    wire::PeerReply::Joined {
        cert: text,
        device_zone,
    }
}

/// The body of a certificate issued for a join.
fn join_cert_body(
    issuer: &PublicIdentity,
    subject: [u8; 32],
    caps: Caps,
    valid_secs: u64,
    now: u64,
) -> CertBody {
    let mut nonce = [0u8; 16];
    rand::fill(&mut nonce);
    CertBody {
        issuer: PublicIdentity::from_bytes(issuer.bytes()),
        subject: PublicIdentity::from_bytes(subject),
        caps,
        delegate: 0,
        valid_from: now,
        valid_until: now.saturating_add(valid_secs),
        nonce,
    }
}
