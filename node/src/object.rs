//! OBJECT arguments: the one parser and resolver behind every command that
//! names an object (`cat`, `ls`, `export`, `get`, `push`, `pin add`).
//!
//! [`Node::resolve_object`] is the only resolver of OBJECT text: the store
//! handle's methods take the [`struct@Hash`] it answers.
//!
//! An OBJECT is a hash, a pin name, or a signed name `ZONE/NAME`, each
//! optionally followed by a path inside that tree. A signed name is
//! resolved and verified exactly as `name resolve` does (overrides apply;
//! expired metadata is refused). Names may hold `/` themselves, so the
//! longest published name wins and the rest is the path inside it. A word
//! whose first part is both a pin (or a hash) and a zone is refused with
//! both readings; `pin:` and `name:` say which is meant.

use clive_cas::{Hash, parse_hash};
use clive_naming::NamingError;

use crate::{Node, NodeError};

/// The help of every OBJECT argument (`-h`).
pub const OBJECT_HELP: &str =
    "A hash, a pin name or a ZONE/NAME, optionally with a path inside it (PIN/dir/file)";

/// The long help of every OBJECT argument (`--help`).
pub const OBJECT_LONG_HELP: &str = "\
A hash, a pin name or a signed name ZONE/NAME, optionally followed by a path \
inside that tree: HASH/dir/file, PIN/dir/file, ZONE/NAME/dir/file.

A ZONE/NAME is resolved and verified as `name resolve` does (expired metadata \
is refused); the longest published NAME wins, the rest is the path inside it. \
When the first part is both a pin (or a hash) and a zone, the command refuses: \
write pin:PIN/dir/file or name:ZONE/NAME/dir/file to say which.";

/// The prefix that reads an OBJECT as a pin (or a hash).
pub const PIN_PREFIX: &str = "pin:";

/// The prefix that reads an OBJECT as a signed name.
pub const NAME_PREFIX: &str = "name:";

/// An OBJECT argument, parsed: what it says, before anything is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectRef<'a> {
    /// `pin:PIN[/PATH]` (or `pin:HASH[/PATH]`): a hash or a pin, never a name.
    Pin(&'a str),
    /// `name:ZONE/NAME[/PATH]`: a signed name, never a pin.
    Name(&'a str),
    /// Anything else: a hash, a pin or a name, whichever exists.
    Either(&'a str),
}

impl<'a> ObjectRef<'a> {
    /// Parses an OBJECT argument.
    pub fn parse(object: &'a str) -> ObjectRef<'a> {
        if let Some(rest) = object.strip_prefix(PIN_PREFIX) {
            ObjectRef::Pin(rest)
        } else if let Some(rest) = object.strip_prefix(NAME_PREFIX) {
            ObjectRef::Name(rest)
        } else {
            ObjectRef::Either(object)
        }
    }
}

/// One meaning of an ambiguous OBJECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// What it means.
    pub meaning: String,
    /// How to write it so that it means only that.
    pub spelling: String,
}

/// Why an OBJECT does not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// It reads both as a pin (or hash) and as a zone's name.
    #[error(
        "{object:?} is ambiguous: {}",
        readings
            .iter()
            .map(|r| format!("{} means {}", r.spelling, r.meaning))
            .collect::<Vec<_>>()
            .join("; ")
    )]
    Ambiguous {
        /// The argument.
        object: String,
        /// What it could mean, and how to say each.
        readings: Vec<Reading>,
    },
    /// A name whose target is not a hash.
    #[error("{name} resolves to {target:?}, which is not a hash")]
    NotAHash {
        /// ZONE/NAME.
        name: String,
        /// What it resolves to.
        target: String,
    },
    /// Looking it up failed (no such pin, name or path; expired metadata).
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl Node {
    /// Resolves an OBJECT argument to the hash it names (see the module
    /// documentation for the forms it takes).
    pub async fn resolve_object(&self, object: &str) -> Result<Hash, ObjectError> {
        match ObjectRef::parse(object) {
            ObjectRef::Pin(rest) => Ok(self.resolve_stored(rest).await?),
            ObjectRef::Name(rest) => self.resolve_name(rest).await,
            ObjectRef::Either(word) => {
                let Some((first, _)) = word.split_once('/') else {
                    // No zone without a `/`: a hash or a pin, as always.
                    return Ok(self.resolve_stored(word).await?);
                };
                let hash = parse_hash(first).is_ok();
                let pin = !hash
                    && self
                        .store()
                        .cas()
                        .pinned(first)
                        .map_err(NodeError::from)?
                        .is_some();
                let zone = self.names().zones().record(first).is_ok();
                match (hash || pin, zone) {
                    (true, true) => {
                        let what = if hash { "hash" } else { "pin" };
                        let inside = &word[first.len() + 1..];
                        Err(ObjectError::Ambiguous {
                            object: word.to_owned(),
                            readings: vec![
                                Reading {
                                    meaning: format!("the {what} {first}, then {inside} inside it"),
                                    spelling: format!("{PIN_PREFIX}{word}"),
                                },
                                Reading {
                                    meaning: format!(
                                        "the signed name {word} (or a shorter name in zone \
                                         {first}, then the rest inside it)"
                                    ),
                                    spelling: format!("{NAME_PREFIX}{word}"),
                                },
                            ],
                        })
                    }
                    (false, true) => self.resolve_name(word).await,
                    // Neither: the error says no such object, as it always has.
                    (_, false) => Ok(self.resolve_stored(word).await?),
                }
            }
        }
    }

    /// Resolves a hash or a pin name, optionally followed by a path inside
    /// that tree (`myapp-1.0/bin/myapp`).
    async fn resolve_stored(&self, object: &str) -> Result<Hash, NodeError> {
        let (root, path) = object.split_once('/').unwrap_or((object, ""));
        let mut hash = match parse_hash(root) {
            Ok(hash) => hash,
            Err(_) => self
                .cas()
                .pinned(root)?
                .ok_or_else(|| NodeError::UnknownObject(root.to_owned()))?,
        };
        let mut walked = root.to_owned();
        for name in path.split('/').filter(|c| !c.is_empty()) {
            let tree = self.cas().read_tree(hash).await?;
            let entry = tree
                .entries()
                .iter()
                .find(|e| e.name == name)
                .ok_or_else(|| NodeError::NoSuchPath {
                    tree: walked.clone(),
                    name: name.to_owned(),
                })?;
            hash = entry.hash;
            walked = format!("{walked}/{name}");
        }
        Ok(hash)
    }

    /// Resolves `ZONE/NAME[/PATH]`: the longest published NAME, verified,
    /// then PATH inside its tree.
    async fn resolve_name(&self, text: &str) -> Result<Hash, ObjectError> {
        let (zone, rest) = clive_naming::name::split(text).map_err(NodeError::from)?;
        let zones = self.names().zones();
        let parts: Vec<&str> = rest.split('/').collect();
        let mut first_error = None;
        for take in (1..=parts.len()).rev() {
            let name = parts[..take].join("/");
            match zones.resolve(zone, &name, false, self.now()) {
                Ok(resolution) => {
                    let hash = parse_hash(&resolution.hash).map_err(|_| ObjectError::NotAHash {
                        name: format!("{zone}/{name}"),
                        target: resolution.hash.clone(),
                    })?;
                    let inside = parts[take..].join("/");
                    if inside.is_empty() {
                        return Ok(hash);
                    }
                    return Ok(self.resolve_stored(&format!("{hash}/{inside}")).await?);
                }
                // A shorter name may be published, with the rest inside it.
                Err(e @ NamingError::UnknownName { .. }) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(NodeError::from(e).into()),
            }
        }
        Err(match first_error {
            Some(e) => NodeError::from(e).into(),
            None => NodeError::UnknownObject(text.to_owned()).into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_say_which_reading_is_meant() {
        assert_eq!(ObjectRef::parse("pin:a/b"), ObjectRef::Pin("a/b"));
        assert_eq!(ObjectRef::parse("name:z/n"), ObjectRef::Name("z/n"));
        assert_eq!(ObjectRef::parse("z/n"), ObjectRef::Either("z/n"));
        assert_eq!(ObjectRef::parse("pinned"), ObjectRef::Either("pinned"));
    }
}
