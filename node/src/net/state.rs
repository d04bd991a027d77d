//! What the network layer keeps in `state.redb`.
//!
//! Tables (format version 1, created by their first write):
//! - `net.peers.v1`: endpoint id (32 bytes) -> JSON [`PeerRecord`]
//! - `net.invites.v1`: BLAKE3 of the invite secret (32 bytes) -> JSON
//!   [`InviteRecord`]. Only the hash of a secret is stored, so the state
//!   file alone cannot be used to join.

use std::net::SocketAddr;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{NetError, error::StateError};

const PEERS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("net.peers.v1");
const INVITES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("net.invites.v1");

/// A known peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// Where it was last reachable.
    pub addrs: Vec<SocketAddr>,
    /// When it became a peer (seconds since the Unix epoch).
    pub added: u64,
    /// When it was last heard from.
    pub last_seen: Option<u64>,
}

/// An invite not yet used up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRecord {
    /// Capabilities granted to the joiner (`fetch,push`).
    pub caps: String,
    /// When the ticket stops working.
    pub expires: u64,
    /// Joins it still admits.
    pub uses_left: u32,
    /// How long the joiner's certificate is valid, in seconds.
    pub cert_valid_secs: u64,
    /// For an invite of one's own device: the device zone the joiner's
    /// key is added to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_zone: Option<String>,
}

/// Why an invite cannot be redeemed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Redeem {
    /// No invite has this secret.
    #[error("this ticket was not issued by this node (or was forged)")]
    Unknown,
    /// Past its expiry.
    #[error("this ticket expired {0}")]
    Expired(String),
    /// Every use has been taken.
    #[error("this ticket has already been used")]
    UsedUp,
}

/// A record of these tables, from its stored bytes; a clear error when they
/// are damaged (public for the fuzz targets in `fuzz/`).
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, NetError> {
    serde_json::from_slice(bytes).map_err(|e| NetError::State(StateError::Record(e)))
}

/// The stored bytes of a record of these tables.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, NetError> {
    serde_json::to_vec(value).map_err(|e| NetError::State(StateError::Encode(e)))
}

/// Every known peer.
pub fn peers(db: &Database) -> Result<Vec<([u8; 32], PeerRecord)>, NetError> {
    let tx = db.begin_read().map_err(StateError::from)?;
    let table = match tx.open_table(PEERS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(StateError::from(e).into()),
    };
    let mut out = Vec::new();
    for row in table.iter().map_err(StateError::from)? {
        let (k, v) = row.map_err(StateError::from)?;
        out.push((*k.value(), decode(v.value())?));
    }
    Ok(out)
}

/// One peer, if known.
pub fn peer(db: &Database, id: &[u8; 32]) -> Result<Option<PeerRecord>, NetError> {
    Ok(peers(db)?
        .into_iter()
        .find(|(k, _)| k == id)
        .map(|(_, r)| r))
}

/// Records or updates a peer: `update` gets the old record, if any.
pub fn update_peer(
    db: &Database,
    id: &[u8; 32],
    update: impl FnOnce(Option<PeerRecord>) -> PeerRecord,
) -> Result<PeerRecord, NetError> {
    let tx = db.begin_write().map_err(StateError::from)?;
    let record = {
        let mut table = tx.open_table(PEERS).map_err(StateError::from)?;
        let old = match table.get(id).map_err(StateError::from)? {
            Some(v) => Some(decode::<PeerRecord>(v.value())?),
            None => None,
        };
        let new = update(old);
        table
            .insert(id, encode(&new)?.as_slice())
            .map_err(StateError::from)?;
        new
    };
    tx.commit().map_err(StateError::from)?;
    Ok(record)
}

/// Forgets a peer; returns its record.
pub fn remove_peer(db: &Database, id: &[u8; 32]) -> Result<Option<PeerRecord>, NetError> {
    let tx = db.begin_write().map_err(StateError::from)?;
    let old = {
        let mut table = tx.open_table(PEERS).map_err(StateError::from)?;
        let old = table.remove(id).map_err(StateError::from)?;
        match old {
            Some(v) => Some(decode::<PeerRecord>(v.value())?),
            None => None,
        }
    };
    tx.commit().map_err(StateError::from)?;
    Ok(old)
}

/// Keeps a new invite under the hash of its secret.
pub fn add_invite(db: &Database, secret: &[u8; 32], invite: &InviteRecord) -> Result<(), NetError> {
    let key = *blake3::hash(secret).as_bytes();
    let tx = db.begin_write().map_err(StateError::from)?;
    tx.open_table(INVITES)
        .map_err(StateError::from)?
        .insert(&key, encode(invite)?.as_slice())
        .map_err(StateError::from)?;
    Ok(tx.commit().map_err(StateError::from)?)
}

/// Takes one use of the invite with `secret`, atomically.
pub fn redeem_invite(
    db: &Database,
    secret: &[u8; 32],
    now: u64,
) -> Result<Result<InviteRecord, Redeem>, NetError> {
    let key = *blake3::hash(secret).as_bytes();
    let tx = db.begin_write().map_err(StateError::from)?;
    let outcome = {
        let mut table = tx.open_table(INVITES).map_err(StateError::from)?;
        let found = match table.get(&key).map_err(StateError::from)? {
            Some(v) => Some(decode::<InviteRecord>(v.value())?),
            None => None,
        };
        match found {
            None => Err(Redeem::Unknown),
            Some(invite) if invite.uses_left == 0 => Err(Redeem::UsedUp),
            Some(invite) if now >= invite.expires => Err(Redeem::Expired(
                clive_trust::clock::format_time(invite.expires),
            )),
            Some(mut invite) => {
                invite.uses_left -= 1;
                table
                    .insert(&key, encode(&invite)?.as_slice())
                    .map_err(StateError::from)?;
                Ok(invite)
            }
        }
    };
    tx.commit().map_err(StateError::from)?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invites_are_used_up_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("s.redb")).unwrap();
        let secret = [3u8; 32];
        let invite = InviteRecord {
            caps: "fetch".into(),
            expires: 1000,
            uses_left: 1,
            cert_valid_secs: 60,
            device_zone: None,
        };
        add_invite(&db, &secret, &invite).unwrap();
        assert_eq!(
            redeem_invite(&db, &[4; 32], 10).unwrap(),
            Err(Redeem::Unknown)
        );
        assert!(matches!(
            redeem_invite(&db, &secret, 1000).unwrap(),
            Err(Redeem::Expired(_))
        ));
        assert_eq!(
            redeem_invite(&db, &secret, 10).unwrap().unwrap().uses_left,
            0
        );
        assert_eq!(
            redeem_invite(&db, &secret, 10).unwrap(),
            Err(Redeem::UsedUp)
        );
    }

    #[test]
    fn peers_persist() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("s.redb")).unwrap();
        assert!(peers(&db).unwrap().is_empty());
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        update_peer(&db, &[1; 32], |_| PeerRecord {
            addrs: vec![addr],
            added: 5,
            last_seen: None,
        })
        .unwrap();
        assert_eq!(peer(&db, &[1; 32]).unwrap().unwrap().addrs, vec![addr]);
        assert!(remove_peer(&db, &[1; 32]).unwrap().is_some());
        assert!(peer(&db, &[1; 32]).unwrap().is_none());
    }
}
