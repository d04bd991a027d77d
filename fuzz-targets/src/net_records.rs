use clive_node::net::state::{self, InviteRecord, PeerRecord};

fn round_trip<T>(bytes: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(record) = state::decode::<T>(bytes) else {
        return;
    };
    let encoded = state::encode(&record).expect("a decoded record encodes");
    let back: T = state::decode(&encoded).expect("an encoded record decodes");
    assert_eq!(back, record);
}

/// The network layer's records in `state.redb` (`node::net::state`): known
/// peers and pending invites, as a damaged or foreign file holds them.
///
/// The first input byte picks the table; the rest is the stored value.
/// Properties: never panics; a record that decodes encodes to bytes that
/// decode to the same record.
pub fn net_records(data: &[u8]) {
    let Some((&table, bytes)) = data.split_first() else {
        return;
    };
    if table % 2 == 0 {
        round_trip::<PeerRecord>(bytes);
    } else {
        round_trip::<InviteRecord>(bytes);
    }
}
