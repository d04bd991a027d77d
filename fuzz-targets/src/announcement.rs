use clive_node::net::{AnnouncementBody, open_announcement, seal_announcement};
use clive_trust::{Clock, SystemClock};

/// Gossip announcements (`node::net::announce`): what any peer on the
/// announcement topic hands `open_announcement`.
///
/// The first input byte picks a mode:
/// - even: the rest is a gossip message. Properties: never panics; the body
///   of one that opens, sealed again under another key, opens as the same
///   body.
/// - odd: the rest is the JSON of a body, sealed here with a fixed key (to
///   reach past the signature check). Property: a body that seals opens as
///   the same body, from that key.
pub fn announcement(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = SystemClock.now();
    if mode % 2 == 0 {
        let Ok((_origin, body)) = open_announcement(rest, now) else {
            return;
        };
        let key = iroh::SecretKey::from_bytes(&[5; 32]);
        // `None` when the body no longer fits the limit: the received origin
        // may have been written shorter than ours.
        if let Some(sealed) = seal_announcement(&key, body.clone(), now) {
            let (_, back) = open_announcement(&sealed, now).expect("a sealed announcement opens");
            assert_eq!(back, body);
        }
        return;
    }
    let Ok(body) = serde_json::from_slice::<AnnouncementBody>(rest) else {
        return;
    };
    let key = iroh::SecretKey::from_bytes(&[5; 32]);
    let Some(sealed) = seal_announcement(&key, body.clone(), now) else {
        return;
    };
    let (origin, back) = open_announcement(&sealed, SystemClock.now())
        .expect("an announcement sealed just now opens");
    assert_eq!(origin, key.public());
    assert_eq!(back, body);
}
