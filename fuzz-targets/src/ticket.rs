use clive_node::net::ticket::{PREFIX, Ticket};

/// Invite tickets (`clive1...`, `node::net::ticket`): what `join` reads.
///
/// The first input byte picks a mode:
/// - even: the rest is the ticket's text, as a user pastes it.
/// - odd: the rest is a payload, sealed here as a ticket is (base32 with
///   its checksum), so the fuzzer reaches past the checksum.
///
/// Properties: decoding never panics; a ticket that decodes encodes to text
/// that decodes to the same ticket, and a sealed payload that decodes
/// encodes back to exactly the sealed text.
pub fn ticket(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sealed = mode % 2 == 1;
    let text = if sealed {
        crate::seal::seal(PREFIX, rest)
    } else {
        String::from_utf8_lossy(rest).into_owned()
    };
    let Ok(ticket) = Ticket::decode(&text) else {
        return;
    };
    let encoded = ticket.encode();
    assert_eq!(Ticket::decode(&encoded).as_ref(), Ok(&ticket));
    if sealed {
        assert_eq!(encoded, text, "a decoded ticket encodes to other text");
    }
}
