//! Per-name version vectors, tombstones, and merging two devices' versions
//! of one targets document name by name.
//!
//! Every publish or unpublish in a zone records, in the target's `custom`
//! (beside `blake3`, `kind` and `published`):
//!
//! - `device`: the short id of the key that signed it ([`device_id`]: the
//!   first 16 hex digits of its TUF key id);
//! - `clock`: device id -> counter, the previous entry's clock with this
//!   device's counter one higher.
//!
//! An unpublish leaves a tombstone in the same document's signed fields,
//! under [`REMOVED_FIELD`] (stock TUF clients ignore fields they do not
//! know): `{name: {clock, published, device}}`. A later publish of the name
//! removes it. Entries made before clocks existed count as an empty clock.
//!
//! Merging ([`merge_names`]): when one side's clock dominates, that side's
//! entry is taken; when the clocks are concurrent, the later `published`
//! wins, then the lower hash (a removal's hash is the empty string); the
//! merged clock is the element-wise maximum, and the entry records the
//! loser under `custom.conflict` (a tombstone under its own `conflict`):
//! `{blake3: HASH | null, device, published}`. A later publish drops it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use clive_trust::PublicIdentity;
use clive_trust::clock::{format_time, parse_time};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::sign::tuf_key;
use crate::source::content_address;
use crate::tuf::{TargetFile, Targets};

/// The signed field of a targets document holding its tombstones.
pub const REMOVED_FIELD: &str = "x-clive-removed";

/// A version vector: device id -> counter.
pub type Clock = BTreeMap<String, u64>;

/// The short id a device's entries carry: the first 16 hex digits of its
/// TUF key id.
pub fn device_id(key: &PublicIdentity) -> String {
    tuf_key(key).id().chars().take(16).collect()
}

/// A clock as a JSON value carries it; anything malformed counts as absent.
fn clock_from(value: Option<&Value>) -> Clock {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn clock_value(clock: &Clock) -> Value {
    Value::Object(clock.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

/// How two clocks relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The same counters.
    Equal,
    /// The first is behind the second.
    Before,
    /// The first is ahead of the second.
    After,
    /// Each has a counter the other lacks: changed apart.
    Concurrent,
}

/// How clock `a` relates to clock `b`.
pub fn compare(a: &Clock, b: &Clock) -> Relation {
    let (mut less, mut more) = (false, false);
    let devices: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for d in devices {
        let (x, y) = (
            a.get(d).copied().unwrap_or(0),
            b.get(d).copied().unwrap_or(0),
        );
        match x.cmp(&y) {
            Ordering::Less => less = true,
            Ordering::Greater => more = true,
            Ordering::Equal => {}
        }
    }
    match (less, more) {
        (false, false) => Relation::Equal,
        (true, false) => Relation::Before,
        (false, true) => Relation::After,
        (true, true) => Relation::Concurrent,
    }
}

/// The element-wise maximum of two clocks.
pub fn max(a: &Clock, b: &Clock) -> Clock {
    let mut out = a.clone();
    for (d, v) in b {
        let e = out.entry(d.clone()).or_insert(0);
        *e = (*e).max(*v);
    }
    out
}

/// The tombstones of a targets document.
pub fn tombstones(doc: &Targets) -> Map<String, Value> {
    doc.unrecognized
        .get(REMOVED_FIELD)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn set_tombstones(doc: &mut Targets, stones: Map<String, Value>) {
    if stones.is_empty() {
        doc.unrecognized.remove(REMOVED_FIELD);
    } else {
        doc.unrecognized
            .insert(REMOVED_FIELD.into(), Value::Object(stones));
    }
}

/// The clock of `name` in `doc`: its entry's, its tombstone's, or empty.
pub fn clock_of(doc: &Targets, name: &str) -> Clock {
    match doc.targets.get(name) {
        Some(file) => clock_from(file.custom().and_then(|c| c.get("clock"))),
        None => clock_from(
            doc.unrecognized
                .get(REMOVED_FIELD)
                .and_then(|t| t.get(name).and_then(|s| s.get("clock"))),
        ),
    }
}

/// Records in `doc` that `device` published `name` as `file` (whose
/// `custom` it completes with `device` and `clock`), dropping its tombstone.
pub(super) fn record_publish(doc: &mut Targets, name: &str, mut file: TargetFile, device: &str) {
    let clock = tick(clock_of(doc, name), device);
    if let Some(Value::Object(custom)) = file.unrecognized.get_mut("custom") {
        custom.insert("device".into(), json!(device));
        custom.insert("clock".into(), clock_value(&clock));
    }
    let mut stones = tombstones(doc);
    if stones.remove(name).is_some() {
        set_tombstones(doc, stones);
    }
    doc.targets.insert(name.to_owned(), file);
}

/// Records in `doc` that `device` removed `name` at `now`: the entry goes,
/// a tombstone takes its place. Whether the name was there.
pub(super) fn record_unpublish(doc: &mut Targets, name: &str, device: &str, now: u64) -> bool {
    if !doc.targets.contains_key(name) {
        return false;
    }
    let clock = tick(clock_of(doc, name), device);
    doc.targets.remove(name);
    let mut stones = tombstones(doc);
    stones.insert(
        name.to_owned(),
        json!({ "clock": clock_value(&clock), "device": device, "published": format_time(now) }),
    );
    set_tombstones(doc, stones);
    true
}

fn tick(mut clock: Clock, device: &str) -> Clock {
    *clock.entry(device.to_owned()).or_insert(0) += 1;
    clock
}

/// A conflict a merge recorded: the entry kept and the one it beat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The zone.
    pub zone: String,
    /// The name.
    pub name: String,
    /// The winner's hash (`None`: the name was unpublished).
    pub winner: Option<String>,
    /// The device whose entry won.
    pub winner_device: String,
    /// When the winner was published (or unpublished).
    pub winner_published: u64,
    /// The loser's hash (`None`: an unpublish lost).
    pub loser: Option<String>,
    /// The device whose entry lost.
    pub loser_device: String,
    /// When the loser was published (or unpublished).
    pub loser_published: u64,
}

/// One side's entry for a name.
#[derive(Clone)]
enum Entry<'a> {
    Live(&'a TargetFile),
    Removed(&'a Value),
    Absent,
}

impl Entry<'_> {
    fn of<'a>(doc: &'a Targets, stones: &'a Map<String, Value>, name: &str) -> Entry<'a> {
        match (doc.targets.get(name), stones.get(name)) {
            (Some(f), _) => Entry::Live(f),
            (None, Some(t)) => Entry::Removed(t),
            (None, None) => Entry::Absent,
        }
    }

    fn fields(&self) -> Option<&Value> {
        match self {
            Entry::Live(f) => f.custom(),
            Entry::Removed(t) => Some(t),
            Entry::Absent => None,
        }
    }

    fn clock(&self) -> Clock {
        clock_from(self.fields().and_then(|c| c.get("clock")))
    }

    fn published(&self) -> u64 {
        self.fields()
            .and_then(|c| c.get("published"))
            .and_then(Value::as_str)
            .and_then(parse_time)
            .unwrap_or(0)
    }

    fn device(&self) -> String {
        self.fields()
            .and_then(|c| c.get("device"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// The hash the winner rule compares: a removal's is empty.
    fn hash(&self) -> String {
        match self {
            Entry::Live(f) => content_address(f)
                .or_else(|| f.hashes.get("sha256").cloned())
                .unwrap_or_default(),
            _ => String::new(),
        }
    }

    fn value(&self) -> Value {
        match self {
            Entry::Live(f) => f.to_value(),
            Entry::Removed(t) => (*t).clone(),
            Entry::Absent => Value::Null,
        }
    }
}

/// The names of `ours` and `theirs` merged by their clocks, into `into`
/// (whose own targets and tombstones are replaced): see the module docs.
pub fn merge_names(ours: &Targets, theirs: &Targets, into: &mut Targets) {
    let (so, st) = (tombstones(ours), tombstones(theirs));
    let names: BTreeSet<&String> = ours
        .targets
        .keys()
        .chain(so.keys())
        .chain(theirs.targets.keys())
        .chain(st.keys())
        .collect();
    let mut targets = BTreeMap::new();
    let mut stones = Map::new();
    for name in names {
        let (a, b) = (Entry::of(ours, &so, name), Entry::of(theirs, &st, name));
        let merged = match (&a, &b) {
            (_, Entry::Absent) => a.clone(),
            (Entry::Absent, _) => b.clone(),
            _ => match compare(&a.clock(), &b.clock()) {
                Relation::After => a.clone(),
                Relation::Before => b.clone(),
                Relation::Equal if a.value() == b.value() => a.clone(),
                _ => {
                    let (winner, loser) = if beats(&a, &b) { (&a, &b) } else { (&b, &a) };
                    let clock = max(&a.clock(), &b.clock());
                    put_resolved(&mut targets, &mut stones, name, winner, loser, &clock);
                    continue;
                }
            },
        };
        match merged {
            Entry::Live(f) => {
                targets.insert(name.clone(), f.clone());
            }
            Entry::Removed(t) => {
                stones.insert(name.clone(), t.clone());
            }
            Entry::Absent => {}
        }
    }
    into.targets = targets;
    set_tombstones(into, stones);
}

/// Whether concurrent entry `a` wins over `b`: the later publish, then
/// the lower hash, then the lower device id, then the lower encoding, so
/// that every node picks the same one.
fn beats(a: &Entry, b: &Entry) -> bool {
    let key = |e: &Entry| {
        (
            std::cmp::Reverse(e.published()),
            e.hash(),
            e.device(),
            e.value().to_string(),
        )
    };
    key(a) <= key(b)
}

/// Writes the winner of a conflict, with the merged clock and (when the
/// two differ in content) the loser recorded under `conflict`.
fn put_resolved(
    targets: &mut BTreeMap<String, TargetFile>,
    stones: &mut Map<String, Value>,
    name: &str,
    winner: &Entry,
    loser: &Entry,
    clock: &Clock,
) {
    let conflict = (winner.hash() != loser.hash()).then(|| {
        json!({
            "blake3": match loser { Entry::Live(_) => json!(loser.hash()), _ => Value::Null },
            "device": loser.device(),
            "published": format_time(loser.published()),
        })
    });
    let complete = |fields: &mut Map<String, Value>| {
        fields.insert("clock".into(), clock_value(clock));
        match &conflict {
            Some(c) => fields.insert("conflict".into(), c.clone()),
            None => fields.remove("conflict"),
        };
    };
    match winner {
        Entry::Live(f) => {
            let mut f = (*f).clone();
            let mut custom = f
                .custom()
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            complete(&mut custom);
            f.unrecognized
                .insert("custom".into(), Value::Object(custom));
            targets.insert(name.to_owned(), f);
        }
        Entry::Removed(t) => {
            let mut t = t.as_object().cloned().unwrap_or_default();
            complete(&mut t);
            stones.insert(name.to_owned(), Value::Object(t));
        }
        Entry::Absent => {}
    }
}

/// The conflicts recorded in `doc`'s entries and tombstones.
pub fn conflicts_in(zone: &str, doc: &Targets) -> Vec<Conflict> {
    let stones = tombstones(doc);
    let mut out = Vec::new();
    for (name, entry) in doc
        .targets
        .keys()
        .map(|n| (n, Entry::Live(&doc.targets[n])))
        .chain(stones.iter().map(|(n, t)| (n, Entry::Removed(t))))
    {
        let Some(c) = entry.fields().and_then(|f| f.get("conflict")) else {
            continue;
        };
        out.push(Conflict {
            zone: zone.to_owned(),
            name: name.clone(),
            winner: match entry {
                Entry::Live(_) => Some(entry.hash()),
                _ => None,
            },
            winner_device: entry.device(),
            winner_published: entry.published(),
            loser: c.get("blake3").and_then(Value::as_str).map(str::to_owned),
            loser_device: c
                .get("device")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            loser_published: c
                .get("published")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .unwrap_or(0),
        });
    }
    out
}
