use clive_naming::state::{Accepted, Evidence, LogEntry, NameEntry, Override, Row, ZoneRecord};

fn round_trip<T: Row + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<Vec<u8>> {
    let record = T::from_row(bytes).ok()?;
    let encoded = record.to_row().expect("a decoded record encodes");
    let back = T::from_row(&encoded).expect("an encoded record decodes");
    assert_eq!(back, record);
    Some(encoded)
}

/// The naming tables' records (`naming::state`): what a damaged or foreign
/// `state.redb` hands `Row::from_row`.
///
/// The first input byte picks the table; the rest is the stored value.
/// Properties: never panics; a record that decodes encodes to bytes that
/// decode to the same record (and a version record to exactly its bytes).
pub fn naming_records(data: &[u8]) {
    let Some((&table, bytes)) = data.split_first() else {
        return;
    };
    match table % 6 {
        0 => {
            if let Some(encoded) = round_trip::<Accepted>(bytes) {
                assert_eq!(encoded, bytes);
            }
        }
        1 => drop(round_trip::<ZoneRecord>(bytes)),
        2 => drop(round_trip::<NameEntry>(bytes)),
        3 => drop(round_trip::<Override>(bytes)),
        4 => drop(round_trip::<LogEntry>(bytes)),
        _ => drop(round_trip::<Evidence>(bytes)),
    }
}
