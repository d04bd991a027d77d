//! Pairing one's own devices (`invite --device` on one, `join` on the
//! other): the certificates both ways, and the shared device zone.
//!
//! The joiner of a device invite (ticket version 2, `ticket.rs`) issues
//! the inviter a certificate granting every capability and sends it with
//! its `join` (`wire.rs`); the inviter checks that it names the joiner as
//! issuer and itself as subject, keeps it, issues its own (every
//! capability too, from the invite), adds the joiner's key to the device
//! zone (a multi-device zone, threshold 1 per role, so each device
//! publishes into it offline) and answers with the zone's ticket, which
//! the joiner follows.

use std::sync::Arc;

use clive_naming::Zones;
use clive_trust::{Capability, Caps, CertBody, Certificate, PublicIdentity};
use iroh::EndpointId;

use super::{
    shared::{DEFAULT_CERT_VALIDITY, Shared},
    zones,
};
use crate::NodeError;

/// Every capability: what paired devices grant each other.
pub fn all_caps() -> Caps {
    Caps::of(&Capability::ALL)
}

/// Whether `peer` is one of this node's own devices: it holds every
/// capability here, as pairing (`invite --device`) grants, and it is a
/// device of a zone this node publishes in (pairing's device zone, or one
/// made with `name zone create --device` or `name zone add-device`).
/// Holding every capability alone is not enough: an ordinary invite or
/// grant can give that to anyone.
pub(crate) fn is_own_device(shared: &Shared, peer: &EndpointId) -> bool {
    let holds_all = Capability::ALL
        .iter()
        .all(|cap| shared.require(peer, *cap).is_ok());
    holds_all && shares_a_zone(shared, peer)
}

fn shares_a_zone(shared: &Shared, peer: &EndpointId) -> bool {
    let zones = Zones::new(shared.db.clone());
    let key = PublicIdentity::from_bytes(*peer.as_bytes());
    zones
        .list(Some(&shared.identity))
        .unwrap_or_default()
        .iter()
        .filter(|info| info.publisher)
        .any(|info| zones.can_publish(&info.zone, &key).unwrap_or(false))
}

/// The body of the certificate a device grants the device it pairs with:
/// every capability, no delegation, valid as long as a join's.
pub fn device_cert_body(issuer: &PublicIdentity, subject: [u8; 32], now: u64) -> CertBody {
    let mut nonce = [0u8; 16];
    rand::fill(&mut nonce);
    CertBody {
        issuer: PublicIdentity::from_bytes(issuer.bytes()),
        subject: PublicIdentity::from_bytes(subject),
        caps: all_caps(),
        delegate: 0,
        valid_from: now,
        valid_until: now.saturating_add(DEFAULT_CERT_VALIDITY.as_secs()),
        nonce,
    }
}

/// The inviter's side of a device join by `peer`: keeps the certificate
/// the joiner issued it (checked: from `peer`, for this node, signed),
/// adds `peer`'s key to `zone` and returns the zone's ticket. The error
/// is the reason the joiner is told.
pub(crate) async fn admit(
    shared: &Arc<Shared>,
    peer: EndpointId,
    zone: &str,
    device_cert: &str,
) -> Result<String, String> {
    let cert = Certificate::decode(device_cert.as_bytes())
        .map_err(|e| format!("your certificate for this node does not decode: {e}"))?;
    let body = cert.body();
    if body.issuer.bytes() != *peer.as_bytes() || body.subject.bytes() != shared.identity.bytes() {
        return Err("your certificate is not from you for this node".into());
    }
    shared
        .trust
        .keep_cert(&shared.store, cert)
        .await
        .map_err(|e| format!("the inviter failed to keep your certificate: {e}"))?;
    let zones = Zones::new(shared.db.clone());
    add_device(shared, &zones, zone, peer)
        .await
        .map_err(|e| format!("the inviter could not add you to zone {zone}: {e}"))?;
    zones::zone_ticket(&zones, zone, shared.identity.bytes(), shared.own_addrs())
        .map_err(|e| e.to_string())
}

/// Adds `peer`'s key to the device zone `zone` (signed by this node), and
/// tells this node's watches and the zone's followers.
async fn add_device(
    shared: &Arc<Shared>,
    zones: &Zones,
    zone: &str,
    peer: EndpointId,
) -> Result<(), NodeError> {
    let key = PublicIdentity::from_bytes(*peer.as_bytes());
    // Paired before (the same key, joining again): nothing to add.
    if zones.can_publish(zone, &key)? {
        return Ok(());
    }
    let (z, held, zs) = (zone.to_owned(), shared.clone(), zones.clone());
    tokio::task::spawn_blocking(move || zs.add_device(&z, &key, &*held.signer, held.clock.now()))
        .await
        .map_err(crate::NamesError::Task)??;
    shared.zone_events.stored(zone);
    if let Ok(record) = zones.record(zone)
        && let Some(v) = record.verified
    {
        zones::announce(shared, record.id, v.timestamp);
    }
    Ok(())
}
