//! The peers handle ([`Node::peers`]): invites and joining, and the peer
//! table as users see it (the table itself, and the connections to each
//! peer, are the network layer's: [`crate::net::state`], `net/keeper.rs`).

use std::{net::SocketAddr, time::Duration};

use clive_trust::{Caps, Certificate, PublicIdentity, clock::format_time};
use iroh::EndpointId;

use crate::{
    NetError, Node, NodeError, TrustError,
    net::{
        DEFAULT_CERT_VALIDITY, Invite, Joined, PeerInfo, endpoint_id, keeper, lock, peer_info,
        state, ticket, wire,
    },
};

/// The peer commands of a node: `node.peers()`.
#[derive(Debug, Clone, Copy)]
pub struct PeersHandle<'a> {
    node: &'a Node,
}

impl Node {
    /// The peer commands: invites, joining, the peer table.
    pub fn peers(&self) -> PeersHandle<'_> {
        PeersHandle { node: self }
    }
}

impl PeersHandle<'_> {
    /// Creates an invite granting `caps` to whoever joins with its ticket.
    /// The ticket carries the addresses the node listens on, so the node
    /// must be online (a daemon running).
    pub async fn invite(
        &self,
        caps: &str,
        expires: Duration,
        uses: u32,
    ) -> Result<Invite, NodeError> {
        let caps = Caps::parse(caps)?;
        if caps.is_empty() {
            return Err(TrustError::EmptyInvite.into());
        }
        if uses == 0 {
            return Err(NetError::NoUses.into());
        }
        let net = self.node.net.get().ok_or(NetError::InviteOffline)?;
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let expires_at = self.node.now().saturating_add(expires.as_secs().max(1));
        state::add_invite(
            self.node.db(),
            &secret,
            &state::InviteRecord {
                caps: caps.to_string(),
                expires: expires_at,
                uses_left: uses,
                cert_valid_secs: DEFAULT_CERT_VALIDITY.as_secs(),
            },
        )?;
        let ticket = ticket::Ticket {
            inviter: self.node.public().bytes(),
            addrs: net.shared.own_addrs(),
            secret,
            expires: expires_at,
        };
        Ok(Invite {
            ticket: ticket.encode(),
            caps: caps.to_string(),
            expires: format_time(expires_at),
            uses,
        })
    }

    /// Joins the node that issued `ticket`: it issues this node a
    /// certificate, and each records the other as a peer.
    pub async fn join(&self, ticket: &str) -> Result<Joined, NodeError> {
        let t = ticket::Ticket::decode(ticket).map_err(NetError::Ticket)?;
        if self.node.now() >= t.expires {
            return Err(NetError::TicketExpired(format_time(t.expires)).into());
        }
        if t.inviter == self.node.public().bytes() {
            return Err(NetError::OwnTicket.into());
        }
        let net = self.node.online().await?;
        let shared = &net.shared;
        let inviter = EndpointId::from_bytes(&t.inviter).map_err(|_| NetError::TicketKey)?;
        shared.learn_addrs(inviter, &t.addrs);
        let conn = keeper::dial(shared, inviter, wire::PEER_ALPN).await?;
        let reply = wire::call(
            &conn,
            &wire::PeerRequest::Join {
                secret: hex::encode(t.secret),
            },
            Some(wire::CALL_TIMEOUT),
        )
        .await?;
        let cert = match reply {
            wire::PeerReply::Joined { cert } => {
                Certificate::decode(cert.as_bytes()).map_err(NetError::BadJoinCert)?
            }
            wire::PeerReply::Refused { reason } => {
                return Err(NetError::JoinRefused(reason).into());
            }
            other => {
                return Err(NetError::JoinOutOfTurn(Box::new(other)).into());
            }
        };
        let body = cert.body();
        if body.issuer.bytes() != t.inviter || body.subject.bytes() != self.node.public().bytes() {
            return Err(NetError::JoinCertMismatch.into());
        }
        let cert = shared.trust.keep_cert(&shared.store, cert).await?;
        let record = shared.add_peer(&inviter, &t.addrs)?;
        keeper::hello(shared, &conn).await.ok();
        conn.close(0u32.into(), b"joined");
        // Both sides keep the connection, as they do after a restart: the
        // joiner knows the inviter's addresses from the ticket.
        keeper::start(shared, inviter);
        Ok(Joined {
            peer: peer_info(&t.inviter, &record, false),
            cert,
        })
    }

    /// Every known peer.
    pub async fn list(&self) -> Result<Vec<PeerInfo>, NodeError> {
        let net = self.node.net.get();
        Ok(state::peers(self.node.db())?
            .iter()
            .map(|(id, r)| {
                let connected = net.as_ref().is_some_and(|net| {
                    iroh::EndpointId::from_bytes(id).is_ok_and(|e| net.shared.is_connected(&e))
                });
                peer_info(id, r, connected)
            })
            .collect())
    }

    /// Records a peer by KEY (endpoint id, key line, fingerprint) and address.
    pub async fn add(&self, peer: &str, addrs: &[String]) -> Result<PeerInfo, NodeError> {
        let id = self.resolve(peer)?;
        let addrs = addrs
            .iter()
            .map(|a| {
                a.parse::<SocketAddr>()
                    .map_err(|_| NetError::BadAddr(a.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let record = match self.node.net.get() {
            Some(net) => {
                let eid = endpoint_id(&id)?;
                let record = net.shared.add_peer(&eid, &addrs)?;
                keeper::start(&net.shared, eid);
                record
            }
            None => state::update_peer(self.node.db(), &id, |old| state::PeerRecord {
                addrs: addrs.clone(),
                added: old.as_ref().map_or(self.node.now(), |o| o.added),
                last_seen: old.and_then(|o| o.last_seen),
            })?,
        };
        Ok(peer_info(&id, &record, false))
    }

    /// Forgets a peer.
    pub async fn rm(&self, peer: &str) -> Result<PeerInfo, NodeError> {
        let id = self.resolve(peer)?;
        let record = state::remove_peer(self.node.db(), &id)?
            .ok_or_else(|| NetError::NotAPeer(peer.to_owned()))?;
        if let Some(net) = self.node.net.get() {
            let eid = endpoint_id(&id)?;
            net.shared.keepers.stop(&eid);
            if let Some(conn) = lock(&net.shared.conns).remove(&eid) {
                conn.close(0u32.into(), b"forgotten");
            }
        }
        Ok(peer_info(&id, &record, false))
    }

    /// A peer named by endpoint id, key line or file, or the fingerprint of
    /// a known peer or key.
    pub fn resolve(&self, peer: &str) -> Result<[u8; 32], NodeError> {
        if let Some(fp) = peer.strip_prefix("SHA256:") {
            for (id, _) in state::peers(self.node.db())? {
                if PublicIdentity::from_bytes(id).fingerprint() == format!("SHA256:{fp}") {
                    return Ok(id);
                }
            }
        }
        Ok(self.node.trust().resolve_key(peer)?.bytes())
    }
}
