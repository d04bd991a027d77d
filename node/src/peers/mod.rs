//! The peers handle ([`Node::peers`]): invites and joining, and the peer
//! table as users see it (the table itself, and the connections to each
//! peer, are the network layer's: [`crate::net::state`], `net/keeper.rs`).

use std::{net::SocketAddr, time::Duration};

use clive_trust::{Caps, Certificate, PublicIdentity, clock::format_time};
use iroh::EndpointId;

use crate::{
    NetError, Node, NodeError, TrustError,
    net::{
        DEFAULT_CERT_VALIDITY, Invite, Joined, PeerInfo, devices, endpoint_id, keeper, lock,
        peer_info, state, ticket, wire,
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
        self.invite_with(caps, expires, uses, None).await
    }

    /// [`PeersHandle::invite`], or with `device_zone` an invite of one's
    /// own device (`invite --device`): every capability both ways, and
    /// the joiner's key added to that zone, which is created here (as a
    /// zone of this device alone) when missing.
    pub async fn invite_with(
        &self,
        caps: &str,
        expires: Duration,
        uses: u32,
        device_zone: Option<&str>,
    ) -> Result<Invite, NodeError> {
        let caps = match device_zone {
            Some(zone) => {
                clive_naming::name::check_zone(zone)?;
                devices::all_caps()
            }
            None => Caps::parse(caps)?,
        };
        if caps.is_empty() {
            return Err(TrustError::EmptyInvite.into());
        }
        if uses == 0 {
            return Err(NetError::NoUses.into());
        }
        let net = self.node.net.get().ok_or(NetError::InviteOffline)?;
        if let Some(zone) = device_zone {
            self.node
                .names()
                .ensure_device_zone(zone, &*net.shared.signer)
                .await?;
            // What the other devices publish there is kept here too.
            self.node
                .sync()
                .follow(
                    zone,
                    std::path::Path::new("."),
                    std::sync::Arc::new(clive_cas::NoProgress),
                )
                .await?;
        }
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
                device_zone: device_zone.map(str::to_owned),
            },
        )?;
        let ticket = ticket::Ticket {
            inviter: self.node.public().bytes(),
            addrs: net.shared.own_addrs(),
            secret,
            expires: expires_at,
            device_zone: device_zone.map(str::to_owned),
        };
        Ok(Invite {
            ticket: ticket.encode(),
            caps: caps.to_string(),
            expires: format_time(expires_at),
            uses,
            device_zone: device_zone.map(str::to_owned),
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
        // One's own device: this node grants the inviter everything too.
        let granted = match t.device_zone {
            Some(_) => Some(
                devices::device_cert_body(&shared.identity, t.inviter, self.node.now())
                    .sign(&*shared.signer)
                    .map_err(TrustError::Cert)?,
            ),
            None => None,
        };
        let reply = wire::call(
            &conn,
            &wire::PeerRequest::Join {
                secret: hex::encode(t.secret),
                device_cert: granted
                    .as_ref()
                    .map(|c| String::from_utf8_lossy(&c.encode()).into_owned()),
            },
            Some(wire::CALL_TIMEOUT),
        )
        .await?;
        let (cert, zone_ticket) = match reply {
            wire::PeerReply::Joined { cert, device_zone } => (
                Certificate::decode(cert.as_bytes()).map_err(NetError::BadJoinCert)?,
                device_zone,
            ),
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
        if t.device_zone.is_some() && zone_ticket.is_none() {
            return Err(NetError::JoinRefused(
                "the inviter did not add this device to its device zone".into(),
            )
            .into());
        }
        let cert = shared.trust.keep_cert(&shared.store, cert).await?;
        let granted = match granted {
            Some(c) => Some(shared.trust.keep_cert(&shared.store, c).await?),
            None => None,
        };
        let record = shared.add_peer(&inviter, &t.addrs)?;
        keeper::hello(shared, &conn).await.ok();
        conn.close(0u32.into(), b"joined");
        // Both sides keep the connection, as they do after a restart: the
        // joiner knows the inviter's addresses from the ticket.
        keeper::start(shared, inviter);
        let device_zone = match (&t.device_zone, zone_ticket) {
            (Some(zone), Some(ticket)) => Some(self.join_device_zone(zone, &ticket).await?),
            _ => None,
        };
        Ok(Joined {
            peer: peer_info(&t.inviter, &record, false),
            cert,
            granted,
            device_zone,
        })
    }

    /// Follows the device zone the inviter added this device to (from its
    /// `ticket`), metadata and content: each device keeps what the others
    /// publish there. Returns the zone.
    async fn join_device_zone(&self, zone: &str, ticket: &str) -> Result<String, NodeError> {
        let names = self.node.names();
        let followed = match names.zones().record(zone) {
            // Paired before: the zone is followed already; catch up.
            Ok(_) => names.refresh(zone).await,
            Err(_) => {
                names
                    .follow(ticket, std::path::Path::new("."), None, None)
                    .await
            }
        }?;
        if let Some(error) = followed.error {
            return Err(NetError::JoinRefused(format!(
                "the device zone {zone} did not verify: {error}"
            ))
            .into());
        }
        // Its content too, kept in sync from now on.
        self.node
            .sync()
            .follow(
                &followed.zone,
                std::path::Path::new("."),
                std::sync::Arc::new(clive_cas::NoProgress),
            )
            .await?;
        Ok(followed.zone)
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
