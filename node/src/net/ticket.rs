//! Invite tickets: what `clive-node invite` prints and `join` takes.
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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use data_encoding::BASE32_NOPAD;

/// The prefix of every ticket.
pub const PREFIX: &str = "clive1";
const VERSION: u8 = 1;
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
}

/// Why a ticket cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not a clive-node ticket at all.
    #[error("this is not a clive-node ticket (tickets start with {PREFIX:?})")]
    NotATicket,
    /// Damaged in copying.
    #[error("the ticket is damaged ({0}); copy it again, whole")]
    Damaged(&'static str),
}

impl Ticket {
    /// The ticket's text.
    pub fn encode(&self) -> String {
        let mut out = vec![VERSION];
        out.extend_from_slice(&self.inviter);
        out.extend_from_slice(&self.secret);
        out.extend_from_slice(&self.expires.to_be_bytes());
        let addrs = &self.addrs[..self.addrs.len().min(MAX_ADDRS)];
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
        let check = blake3::hash(&out);
        out.extend_from_slice(&check.as_bytes()[..4]);
        format!("{PREFIX}{}", BASE32_NOPAD.encode(&out).to_ascii_lowercase())
    }

    /// Reads a ticket's text.
    pub fn decode(text: &str) -> Result<Ticket, TicketError> {
        let text = text.trim();
        let body = text.strip_prefix(PREFIX).ok_or(TicketError::NotATicket)?;
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
        let mut r = Reader(payload);
        if r.take::<1>()?[0] != VERSION {
            return Err(TicketError::Damaged("unknown version"));
        }
        let inviter = r.take::<32>()?;
        let secret = r.take::<32>()?;
        let expires = u64::from_be_bytes(r.take::<8>()?);
        let count = r.take::<1>()?[0] as usize;
        if count > MAX_ADDRS {
            return Err(TicketError::Damaged("too many addresses"));
        }
        let mut addrs = Vec::with_capacity(count);
        for _ in 0..count {
            let ip = match r.take::<1>()?[0] {
                4 => IpAddr::V4(Ipv4Addr::from(r.take::<4>()?)),
                6 => IpAddr::V6(Ipv6Addr::from(r.take::<16>()?)),
                _ => return Err(TicketError::Damaged("bad address family")),
            };
            addrs.push(SocketAddr::new(ip, u16::from_be_bytes(r.take::<2>()?)));
        }
        if !r.0.is_empty() {
            return Err(TicketError::Damaged("trailing bytes"));
        }
        Ok(Ticket {
            inviter,
            addrs,
            secret,
            expires,
        })
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
        }
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
        assert_eq!(Ticket::decode("hello"), Err(TicketError::NotATicket));
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

    proptest! {
        #[test]
        fn never_panics(s in "clive1[a-z2-7]{0,300}") {
            let _ = Ticket::decode(&s);
        }
    }
}
