use clive_node::net::wire::{self, MAX_MESSAGE, PeerReply, PeerRequest};

fn round_trip<T>(data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(msg) = wire::decode::<T>(data) else {
        return;
    };
    assert!(data.len() <= MAX_MESSAGE);
    let bytes = match wire::encode(&msg) {
        Ok(bytes) => bytes,
        // Escapes can make the encoding longer than a received message
        // (`"\u0001"` is longer than the raw byte it stands for, and the
        // reverse); only a message near the limit may grow past it.
        Err(e) => {
            assert!(data.len() * 6 > MAX_MESSAGE, "encoding failed: {e}");
            return;
        }
    };
    assert_eq!(wire::decode::<T>(&bytes).as_ref(), Ok(&msg));
}

/// The peer protocol's messages (`node::net::wire`): what a peer's stream
/// hands `wire::decode`, as a request (to a serving node) and as a reply
/// (to a caller).
///
/// Properties: decoding never panics; a message that decodes encodes
/// within the size limit to bytes that decode to the same message.
pub fn peer_wire(data: &[u8]) {
    round_trip::<PeerRequest>(data);
    round_trip::<PeerReply>(data);
}
