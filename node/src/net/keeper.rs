//! Connections to known peers: dialled at start, kept open, and re-dialled
//! with bounded exponential backoff when they drop.
//!
//! Each peer has one keeper task. It gives up after [`MAX_ATTEMPTS`] failed
//! dials in a row (about three minutes) and is started again when the peer
//! is heard from (a hello, an address announcement) or re-added.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use iroh::{EndpointId, endpoint::Connection};
use tokio::sync::Notify;

use super::{
    shared::{Shared, lock},
    state, wire,
};
use crate::{NetError, NodeError};

/// Failed dials in a row before a keeper gives up.
pub const MAX_ATTEMPTS: u32 = 12;
/// How long a dial may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connection that lasted this long counts as a success for the backoff.
const STABLE: Duration = Duration::from_secs(10);

/// Starts (or wakes) the keeper of `id`; does nothing unless keepers are
/// enabled.
pub fn start(shared: &Arc<Shared>, id: EndpointId) {
    if !shared.keepers.enabled() {
        return;
    }
    let weak = Arc::downgrade(shared);
    shared
        .keepers
        .wake_or_start(id, |wake| tokio::spawn(keep(weak, id, wake)));
}

/// Enables keepers and starts one for every known peer.
pub fn start_all(shared: &Arc<Shared>) -> Result<(), NodeError> {
    shared.keepers.enable();
    for (id, _) in state::peers(&shared.db)? {
        if let Ok(id) = EndpointId::from_bytes(&id) {
            start(shared, id);
        }
    }
    Ok(())
}

fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF)
}

async fn keep(shared: std::sync::Weak<Shared>, id: EndpointId, wake: Arc<Notify>) {
    let mut attempt = 0u32;
    loop {
        let Some(s) = shared.upgrade() else { return };
        let open = lock(&s.conns)
            .get(&id)
            .filter(|c| c.close_reason().is_none())
            .cloned();
        if let Some(conn) = open {
            drop(s);
            let since = Instant::now();
            conn.closed().await;
            if since.elapsed() >= STABLE {
                attempt = 0;
            }
            tracing::info!(peer = %id.fmt_short(), "connection to peer closed");
            continue;
        }
        if attempt >= MAX_ATTEMPTS {
            tracing::info!(
                peer = %id.fmt_short(),
                "peer unreachable after {MAX_ATTEMPTS} attempts; waiting to hear from it"
            );
            return;
        }
        match connect(&s, id).await {
            Ok(_) => {
                s.announcer.join_peer(id);
                tracing::info!(peer = %id.fmt_short(), "connected to peer");
                continue;
            }
            Err(e) => {
                attempt += 1;
                tracing::debug!(peer = %id.fmt_short(), attempt, "dial failed: {e}");
            }
        }
        drop(s);
        tokio::select! {
            _ = tokio::time::sleep(backoff(attempt)) => {}
            _ = wake.notified() => attempt = 0,
        }
    }
}

/// Dials `id` on `alpn`, at the addresses this node knows for it.
pub async fn dial(shared: &Shared, id: EndpointId, alpn: &[u8]) -> Result<Connection, NodeError> {
    let short = id.fmt_short();
    match tokio::time::timeout(DIAL_TIMEOUT, shared.endpoint.connect(id, alpn)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(cause)) => Err(NetError::Unreachable {
            peer: short.to_string(),
            cause,
        }
        .into()),
        Err(_) => Err(NetError::NoAnswer {
            peer: short.to_string(),
            secs: DIAL_TIMEOUT.as_secs(),
        }
        .into()),
    }
}

/// Dials `id` and says hello; the connection is then kept as the peer's.
pub async fn connect(shared: &Arc<Shared>, id: EndpointId) -> Result<Connection, NodeError> {
    let conn = dial(shared, id, wire::PEER_ALPN).await?;
    hello(shared, &conn).await?;
    Ok(conn)
}

/// Says hello on `conn`: presents this node's addresses and certificates,
/// learns the peer's addresses, and keeps the connection as the peer's.
pub async fn hello(shared: &Shared, conn: &Connection) -> Result<(), NodeError> {
    let peer = conn.remote_id();
    let request = wire::PeerRequest::Hello {
        addrs: shared.own_addrs(),
        certs: shared.own_certs(),
    };
    match wire::call(conn, &request, Some(wire::CALL_TIMEOUT)).await? {
        wire::PeerReply::Hello { addrs } => {
            shared.learn_addrs(peer, &addrs);
            shared.saw_peer(&peer, &addrs)?;
            shared.keep_conn(conn).await;
            Ok(())
        }
        wire::PeerReply::Refused { reason } => Err(NetError::Refused {
            peer: peer.fmt_short().to_string(),
            what: "the connection",
            reason,
        }
        .into()),
        other => Err(NetError::OutOfTurn {
            peer: peer.fmt_short().to_string(),
            what: "hello",
            reply: format!("{other:?}"),
        }
        .into()),
    }
}
