use clive_node::net::ticket::{Ticket, ZONE_PREFIX, ZoneTicket};

/// Zone tickets (`clivezone1...`, `node::net::ticket`): what `name follow`
/// reads.
///
/// Modes and properties as in the `ticket` target: even first byte, the
/// rest is the text; odd, the rest is a payload sealed here. A ticket that
/// decodes encodes to text that decodes to it, and a sealed payload that
/// decodes encodes back to exactly the sealed text.
pub fn zone_ticket(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sealed = mode % 2 == 1;
    let text = if sealed {
        crate::seal::seal(ZONE_PREFIX, rest)
    } else {
        String::from_utf8_lossy(rest).into_owned()
    };
    let Ok(ticket) = ZoneTicket::decode(&text) else {
        return;
    };
    assert!(
        Ticket::decode(&text).is_err(),
        "one text is both an invite and a zone ticket"
    );
    let encoded = ticket.encode();
    assert_eq!(ZoneTicket::decode(&encoded).as_ref(), Ok(&ticket));
    if sealed {
        assert_eq!(encoded, text, "a decoded zone ticket encodes to other text");
    }
}
