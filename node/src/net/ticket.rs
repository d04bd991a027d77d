//! Tickets: invites (what `clive-node invite` prints and `join` takes) and
//! zone tickets (what `name zone create` prints and `name follow` takes).
//!
//! Format version 1: the text `clive1` followed by the lowercase, unpadded
//! base32 of
//!
//! ```text
//! u8       version (1)
//! [u8;32]  the inviter's endpoint id (its ed25519 public key)
//! [u8;32]  the invite's secret
//! u64 BE   expiry, seconds since the Unix epoch
//! u8       number of addresses (at most 16), then each:
//!            u8 4 + [u8;4] + u16 BE port, or u8 6 + [u8;16] + u16 BE port
//! [u8;4]   the first 4 bytes of BLAKE3 of everything above (catches typos)
//! ```
//!
//! Invites of one's own devices (`invite --device`), format version 2: the
//! same text and fields, the version byte 2, and after the addresses
//!
//! ```text
//! u8       flags: bit 0 set (an own device: the joiner grants the inviter
//!          every capability back and joins the device zone); the other
//!          bits are 0, and a ticket with another bit set is refused
//! u8       length of the device zone's name (1 to 64), then the name
//! ```
//!
//! then the checksum. A plain invite is still written as version 1, and
//! both versions are read.
//!
//! Zone tickets, format version 1: the text `clivezone1` followed by the
//! same base32 of
//!
//! ```text
//! u8       version (1)
//! [u8;32]  the publishing node's endpoint id
//! [u8;32]  BLAKE3 of the zone's root.json to start from
//! [u8;16]  the zone's id
//! u8       length of the zone's name (at most 64), then the name
//! addresses and checksum as above
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use data_encoding::BASE32_NOPAD;

/// The prefix of every ticket.
pub const PREFIX: &str = "clive1";
const VERSION: u8 = 1;
const DEVICE_VERSION: u8 = 2;
const OWN_DEVICE: u8 = 1;
const MAX_ADDRS: usize = 16;
const MAX_TEXT: usize = 1024;

/// A decoded invite ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The inviter's endpoint id.
    pub inviter: [u8; 32],
    /// Where the inviter listens.
    pub addrs: Vec<SocketAddr>,
    /// The invite's secret.
    pub secret: [u8; 32],
    /// When the invite expires (seconds since the Unix epoch).
    pub expires: u64,
    /// For an invite of one's own device (`invite --device`): the device
    /// zone both devices follow and publish into.
    pub device_zone: Option<String>,
}

pub use crate::error::TicketError;

impl Ticket {
    /// The ticket's text.
    pub fn encode(&self) -> String {
        let version = match self.device_zone {
            Some(_) => DEVICE_VERSION,
            None => VERSION,
        };
        let mut out = vec![version];
        out.extend_from_slice(&self.inviter);
        out.extend_from_slice(&self.secret);
        out.extend_from_slice(&self.expires.to_be_bytes());
        put_addrs(&mut out, &self.addrs);
        if let Some(zone) = &self.device_zone {
            out.push(OWN_DEVICE);
            put_name(&mut out, zone);
        }
        seal(PREFIX, out)
    }

    /// Reads a ticket's text (format version 1 or 2).
    pub fn decode(text: &str) -> Result<Ticket, TicketError> {
        let (version, payload) = open_versions(PREFIX, text, &[VERSION, DEVICE_VERSION])?;
        let mut r = Reader(&payload);
        let inviter = r.take::<32>()?;
        let secret = r.take::<32>()?;
        let expires = u64::from_be_bytes(r.take::<8>()?);
        let addrs = r.addrs()?;
        let device_zone = if version == DEVICE_VERSION {
            if r.take::<1>()?[0] != OWN_DEVICE {
                return Err(TicketError::Damaged("unknown flags"));
            }
            let name = r.name()?;
            if name.is_empty() {
                return Err(TicketError::Damaged("empty zone name"));
            }
            Some(name)
        } else {
            None
        };
        r.finish()?;
        Ok(Ticket {
            inviter,
            addrs,
            secret,
            expires,
            device_zone,
        })
    }
}

/// The prefix of every zone ticket.
pub const ZONE_PREFIX: &str = "clivezone1";
const MAX_ZONE_NAME: usize = 64;

/// A decoded zone ticket: where to follow a zone from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneTicket {
    /// The publishing node's endpoint id.
    pub publisher: [u8; 32],
    /// Where it listens.
    pub addrs: Vec<SocketAddr>,
    /// BLAKE3 of the root.json the follower starts from.
    pub root: [u8; 32],
    /// The zone's id (peers and announcements name the zone by it).
    pub id: [u8; 16],
    /// The zone's name.
    pub zone: String,
}

impl ZoneTicket {
    /// The ticket's text.
    pub fn encode(&self) -> String {
        let mut out = vec![VERSION];
        out.extend_from_slice(&self.publisher);
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.id);
        put_name(&mut out, &self.zone);
        put_addrs(&mut out, &self.addrs);
        seal(ZONE_PREFIX, out)
    }

    /// Reads a zone ticket's text.
    pub fn decode(text: &str) -> Result<ZoneTicket, TicketError> {
        let payload = open(ZONE_PREFIX, text)?;
        let mut r = Reader(&payload);
        let publisher = r.take::<32>()?;
        let root = r.take::<32>()?;
        let id = r.take::<16>()?;
        let zone = r.name()?;
        let addrs = r.addrs()?;
        r.finish()?;
        Ok(ZoneTicket {
            publisher,
            addrs,
            root,
            id,
            zone,
        })
    }
}

/// Appends a zone name's length and the name (cut at [`MAX_ZONE_NAME`]
/// bytes, on a character boundary).
fn put_name(out: &mut Vec<u8>, zone: &str) {
    let mut end = zone.len().min(MAX_ZONE_NAME);
    while !zone.is_char_boundary(end) {
        end -= 1;
    }
    out.push(end as u8);
    out.extend_from_slice(&zone.as_bytes()[..end]);
}

/// Appends the address count and addresses (at most [`MAX_ADDRS`]).
fn put_addrs(out: &mut Vec<u8>, addrs: &[SocketAddr]) {
    let addrs = &addrs[..addrs.len().min(MAX_ADDRS)];
    out.push(addrs.len() as u8);
    for addr in addrs {
        match addr.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&addr.port().to_be_bytes());
    }
}

/// `prefix`, then the base32 of `payload` and its checksum.
fn seal(prefix: &str, mut payload: Vec<u8>) -> String {
    let check = blake3::hash(&payload);
    payload.extend_from_slice(&check.as_bytes()[..4]);
    format!(
        "{prefix}{}",
        BASE32_NOPAD.encode(&payload).to_ascii_lowercase()
    )
}

/// The payload of a ticket with `prefix`, checksum checked, after the
/// version byte.
fn open(prefix: &str, text: &str) -> Result<Vec<u8>, TicketError> {
    Ok(open_versions(prefix, text, &[VERSION])?.1)
}

/// The version and payload of a ticket with `prefix` of one of `versions`,
/// checksum checked.
fn open_versions(prefix: &str, text: &str, versions: &[u8]) -> Result<(u8, Vec<u8>), TicketError> {
    let body = text
        .trim()
        .strip_prefix(prefix)
        .ok_or(TicketError::NotATicket { prefix: PREFIX })?;
    if body.len() > MAX_TEXT {
        return Err(TicketError::Damaged("too long"));
    }
    let bytes = BASE32_NOPAD
        .decode(body.to_ascii_uppercase().as_bytes())
        .map_err(|_| TicketError::Damaged("not base32"))?;
    let (payload, check) = bytes
        .split_at_checked(bytes.len().saturating_sub(4))
        .ok_or(TicketError::Damaged("too short"))?;
    if check.len() != 4 || blake3::hash(payload).as_bytes()[..4] != *check {
        return Err(TicketError::Damaged("checksum mismatch"));
    }
    match payload.split_first() {
        Some((v, rest)) if versions.contains(v) => Ok((*v, rest.to_vec())),
        _ => Err(TicketError::Damaged("unknown version")),
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], TicketError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(TicketError::Damaged("truncated"))?;
        self.0 = rest;
        Ok(*head)
    }

    fn bytes(&mut self, len: usize) -> Result<&[u8], TicketError> {
        let (head, rest) = self
            .0
            .split_at_checked(len)
            .ok_or(TicketError::Damaged("truncated"))?;
        self.0 = rest;
        Ok(head)
    }

    fn name(&mut self) -> Result<String, TicketError> {
        let len = self.take::<1>()?[0] as usize;
        if len > MAX_ZONE_NAME {
            return Err(TicketError::Damaged("zone name too long"));
        }
        String::from_utf8(self.bytes(len)?.to_vec())
            .map_err(|_| TicketError::Damaged("zone name is not UTF-8"))
    }

    fn addrs(&mut self) -> Result<Vec<SocketAddr>, TicketError> {
        let count = self.take::<1>()?[0] as usize;
        if count > MAX_ADDRS {
            return Err(TicketError::Damaged("too many addresses"));
        }
        let mut addrs = Vec::with_capacity(count);
        for _ in 0..count {
            let ip = match self.take::<1>()?[0] {
                4 => IpAddr::V4(Ipv4Addr::from(self.take::<4>()?)),
                6 => IpAddr::V6(Ipv6Addr::from(self.take::<16>()?)),
                _ => return Err(TicketError::Damaged("bad address family")),
            };
            addrs.push(SocketAddr::new(ip, u16::from_be_bytes(self.take::<2>()?)));
        }
        Ok(addrs)
    }

    fn finish(&self) -> Result<(), TicketError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(TicketError::Damaged("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Ticket {
        Ticket {
            inviter: [7; 32],
            addrs: vec![
                "127.0.0.1:4242".parse().unwrap(),
                "[::1]:4243".parse().unwrap(),
            ],
            secret: [9; 32],
            expires: 1_900_000_000,
            device_zone: None,
        }
    }

    #[test]
    fn device_invites_round_trip_and_plain_ones_stay_version_1() {
        let plain = sample();
        let text = plain.encode();
        let bytes = BASE32_NOPAD
            .decode(text[PREFIX.len()..].to_ascii_uppercase().as_bytes())
            .unwrap();
        assert_eq!(bytes[0], 1);
        let device = Ticket {
            device_zone: Some("devices".into()),
            ..sample()
        };
        let text = device.encode();
        assert!(text.starts_with("clive1"));
        assert_eq!(Ticket::decode(&text).unwrap(), device);
        // A version-1 payload followed by device fields is not version 1.
        let mut payload = vec![1u8];
        payload.extend_from_slice(&[7; 32]);
        payload.extend_from_slice(&[9; 32]);
        payload.extend_from_slice(&1u64.to_be_bytes());
        payload.extend_from_slice(&[0, 1, 1, b'd']);
        assert!(Ticket::decode(&seal(PREFIX, payload)).is_err());
    }

    #[test]
    fn round_trips() {
        let t = sample();
        let text = t.encode();
        assert!(text.starts_with("clive1"));
        assert_eq!(Ticket::decode(&text).unwrap(), t);
        assert_eq!(Ticket::decode(&format!("  {text}\n")).unwrap(), t);
    }

    #[test]
    fn damage_is_detected() {
        let text = sample().encode();
        assert_eq!(
            Ticket::decode("hello"),
            Err(TicketError::NotATicket { prefix: PREFIX })
        );
        let mut chars: Vec<char> = text.chars().collect();
        let i = chars.len() / 2;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(matches!(
            Ticket::decode(&typo),
            Err(TicketError::Damaged(_))
        ));
        assert!(Ticket::decode(&text[..text.len() - 3]).is_err());
    }

    #[test]
    fn zone_tickets_round_trip() {
        let t = ZoneTicket {
            publisher: [3; 32],
            addrs: vec!["127.0.0.1:4919".parse().unwrap()],
            root: [5; 32],
            id: [6; 16],
            zone: "release".into(),
        };
        let text = t.encode();
        assert!(text.starts_with("clivezone1"));
        assert_eq!(ZoneTicket::decode(&text).unwrap(), t);
        assert_eq!(
            ZoneTicket::decode(&sample().encode()),
            Err(TicketError::NotATicket { prefix: PREFIX })
        );
        assert_eq!(
            Ticket::decode(&text),
            Err(TicketError::NotATicket { prefix: PREFIX })
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "clive1[a-z2-7]{0,300}", z in "clivezone1[a-z2-7]{0,300}") {
            let _ = Ticket::decode(&s);
            let _ = ZoneTicket::decode(&z);
        }
    }
}
