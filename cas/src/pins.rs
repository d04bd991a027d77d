//! Pins: named roots that keep objects (and everything below them) alive.
//!
//! Stored in the node's `state.redb`, table `cas.pins` (version 1):
//! key = the pin's name (UTF-8), value = the 32-byte hash of the root.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{CasError, Hash, ObjectKind, Result, Store};

const PINS: TableDefinition<&str, &[u8; 32]> = TableDefinition::new("cas.pins.v1");

/// A named root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The pin's name.
    pub name: String,
    /// The object it keeps alive.
    #[serde(with = "crate::hash::serde_hex")]
    pub hash: Hash,
    /// Blob or tree.
    pub kind: ObjectKind,
    /// What the pin pointed at before, when pinning replaced it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_hex_opt"
    )]
    pub replaced: Option<Hash>,
}

/// Opens the pins table for reading; `None` before the first pin was written
/// (tables are created by the first write, so opening a store writes nothing).
fn read_table(
    tx: &redb::ReadTransaction,
) -> Result<Option<redb::ReadOnlyTable<&'static str, &'static [u8; 32]>>> {
    match tx.open_table(PINS) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Checks a pin name: 1 to 255 bytes, no whitespace or control characters,
/// no `/` (it separates a pin from a path inside its tree), and not 64 hex
/// digits (that names an object by its hash).
pub fn validate_pin_name(name: &str) -> Result<()> {
    let reason = if name.is_empty()
        || name.len() > 255
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        Some("use 1 to 255 printable characters, no whitespace")
    } else if name.contains('/') {
        Some("it contains '/', which separates a pin from a path inside its tree")
    } else if crate::parse_hash(name).is_ok() {
        Some("it looks like a hash (64 hex digits), which names an object by its content")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(CasError::BadPinName {
            name: name.to_owned(),
            reason,
        }),
    }
}

/// Serde adapter for an optional hash as 64 hex digits.
mod serde_hex_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Hash;

    pub fn serialize<S: Serializer>(hash: &Option<Hash>, s: S) -> Result<S::Ok, S::Error> {
        match hash {
            Some(hash) => crate::hash::serde_hex::serialize(hash, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Hash>, D::Error> {
        #[derive(Deserialize)]
        struct Hex(#[serde(with = "crate::hash::serde_hex")] Hash);
        Ok(Option::<Hex>::deserialize(d)?.map(|h| h.0))
    }
}

impl Store {
    /// Pins `hash` under `name`, replacing any pin of that name (the pin
    /// returned says what it replaced). The object must be stored. Holds
    /// off garbage collection meanwhile (see [`crate::roots`]), so an object
    /// found stored here stays stored once pinned.
    pub async fn pin(&self, name: &str, hash: Hash) -> Result<Pin> {
        validate_pin_name(name)?;
        let _hold = self.hold_roots().await;
        let kind = self.kind(hash).await?;
        let tx = self.db.begin_write()?;
        let replaced = tx
            .open_table(PINS)?
            .insert(name, hash.as_bytes())?
            .map(|old| Hash::from_bytes(*old.value()))
            .filter(|old| *old != hash);
        tx.commit()?;
        Ok(Pin {
            name: name.to_owned(),
            hash,
            kind,
            replaced,
        })
    }

    /// Removes the pin `name` and returns what it pinned.
    pub async fn unpin(&self, name: &str) -> Result<Hash> {
        let tx = self.db.begin_write()?;
        let removed = tx
            .open_table(PINS)?
            .remove(name)?
            .map(|v| Hash::from_bytes(*v.value()));
        tx.commit()?;
        removed.ok_or_else(|| CasError::PinNotFound(name.to_owned()))
    }

    /// What the pin `name` points at, if it exists.
    pub fn pinned(&self, name: &str) -> Result<Option<Hash>> {
        let tx = self.db.begin_read()?;
        let Some(table) = read_table(&tx)? else {
            return Ok(None);
        };
        Ok(table.get(name)?.map(|v| Hash::from_bytes(*v.value())))
    }

    /// Every pin, sorted by name.
    pub async fn pins(&self) -> Result<Vec<Pin>> {
        let raw: Vec<(String, Hash)> = {
            let tx = self.db.begin_read()?;
            let mut out = Vec::new();
            if let Some(table) = read_table(&tx)? {
                for item in table.iter()? {
                    let (k, v) = item?;
                    out.push((k.value().to_owned(), Hash::from_bytes(*v.value())));
                }
            }
            out
        };
        let mut pins = Vec::with_capacity(raw.len());
        for (name, hash) in raw {
            // A pinned object that went missing is reported by fsck; list it as a blob.
            let kind = self.kind(hash).await.unwrap_or(ObjectKind::Blob);
            pins.push(Pin {
                name,
                hash,
                kind,
                replaced: None,
            });
        }
        Ok(pins)
    }
}
