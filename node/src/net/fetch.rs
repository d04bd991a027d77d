//! Fetching objects from peers, and pushing them.
//!
//! A blob is fetched with iroh-blobs, which verifies every 16 KiB group
//! against the BLAKE3 hash as it streams in and never stores a group that
//! fails. Only the ranges missing locally are requested, so a fetch cut off
//! by a dropped connection or a killed process resumes where it stopped
//! (the store keeps partial blobs across restarts).
//!
//! What iroh-blobs verified is in its files at once, but a new partial blob
//! is recorded in its database only when a write transaction commits, which
//! it does lazily; a process killed before that forgets the blob, however
//! many bytes are on disk. So a fetch commits the store's database every
//! [`COMMIT_EVERY`] bytes or [`COMMIT_INTERVAL`], whichever comes first: a
//! kill at any instant loses at most what arrived since the last commit
//! (the next open recovers the rest by checking the files against the hash
//! tree).
//!
//! A tree is fetched level by level: once a level's trees are stored, every
//! missing entry below them goes out in get-many requests of up to
//! [`BATCH`] objects, so the round trips grow with the depth of the tree,
//! never with its number of files.

use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use clive_cas::{EntryKind, Exported, Hash, ObjectKind, Progress, Store};
use iroh::{
    EndpointId,
    endpoint::{Connection, ConnectionError, ReadError, WriteError},
};
use iroh_blobs::{
    HashAndFormat,
    api::{proto::Bitfield, remote::GetProgressItem},
    get::{GetError, fsm::DecodeError},
    protocol::{ChunkRanges, ERR_INTERNAL, ERR_PERMISSION, GetManyRequest},
};
use n0_future::{BufferedStreamExt, StreamExt};
use serde::{Deserialize, Serialize};

use super::{
    keeper,
    shared::{Shared, lock},
    state, wire,
};
use crate::{NetError, NodeError};

mod spread;

/// The result of `get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetched {
    /// The object.
    #[serde(with = "clive_cas::hash::serde_hex")]
    pub hash: Hash,
    /// Blob or tree.
    pub kind: ObjectKind,
    /// Bytes of content it holds (a tree: all its files).
    pub size: u64,
    /// Objects (blobs and trees) it consists of.
    pub objects: u64,
    /// Payload bytes received over the network for this fetch.
    pub bytes_received: u64,
    /// The peer it came from (endpoint id), the one that sent the most
    /// when several did; empty when it was all here already.
    pub from: String,
    /// Payload bytes from each peer that sent any.
    #[serde(default)]
    pub from_peers: Vec<FromPeer>,
    /// Where it was exported, with `-o`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exported: Option<Exported>,
}

/// What one peer sent for a `get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromPeer {
    /// The peer (endpoint id).
    pub peer: String,
    /// Payload bytes it sent.
    pub bytes: u64,
}

/// The result of `push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pushed {
    /// The object.
    #[serde(with = "clive_cas::hash::serde_hex")]
    pub hash: Hash,
    /// The peer it went to (endpoint id).
    pub to: String,
    /// Payload bytes sent.
    pub bytes_sent: u64,
}

/// Most objects in one get-many request.
pub const BATCH: usize = 1024;
/// Get-many requests in flight at once on one connection.
const BATCHES_IN_FLIGHT: usize = 3;
/// Local-state lookups in flight at once while planning a tree level.
const LOOKUPS_IN_FLIGHT: usize = 64;
/// How long a pushed object may be fetched by the receiver.
const PUSH_WINDOW: Duration = Duration::from_secs(3600);
/// Payload bytes a fetch receives between commits of the store's database.
pub const COMMIT_EVERY: u64 = 4 << 20;
/// Longest time between those commits while bytes arrive.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(250);

/// Fetches `hash` from `providers` (all known peers, connected ones first,
/// when none are named). With several, a large blob is spread over all of
/// them ([`spread`]); what is still missing then comes from the first that
/// has it. A connection lost mid-transfer is redialled once and the fetch
/// resumes where it stopped.
pub async fn get(
    shared: &Arc<Shared>,
    hash: Hash,
    providers: Vec<EndpointId>,
    progress: Arc<dyn Progress>,
) -> Result<Fetched, NodeError> {
    let _held = shared.in_flight.hold(&shared.store, hash).await;
    if let Some(fetched) = here(&shared.store, hash).await? {
        return Ok(fetched);
    }
    let mut providers = if providers.is_empty() {
        let mut known: Vec<EndpointId> = state::peers(&shared.db)?
            .into_iter()
            .filter_map(|(id, _)| EndpointId::from_bytes(&id).ok())
            .collect();
        known.sort_by_key(|id| !shared.is_connected(id));
        known
    } else {
        providers
    };
    if providers.is_empty() {
        return Err(NetError::NoProvider.into());
    }
    let mut failures = Vec::new();
    let mut from = Vec::new();
    if providers.len() > 1 {
        let spread = spread::fetch(shared, hash, &providers, progress.clone()).await?;
        from = spread.from;
        // A peer that lied or refused gets no second chance; one whose
        // connection was lost is tried again, after the others.
        let mut lost = Vec::new();
        for (peer, failure) in spread.dropped {
            match failure {
                Failure::Lost(_) => lost.push(peer),
                Failure::Other(e) => {
                    providers.retain(|p| *p != peer);
                    failures.push(e);
                }
            }
        }
        providers.sort_by_key(|p| lost.contains(p));
        // Copies of a failed peer's pieces may have completed it all.
        if let Some(mut fetched) = here(&shared.store, hash).await? {
            fetched.from = String::new();
            fetched.add_from(&from);
            return Ok(fetched);
        }
    }
    for &peer in &providers {
        let mut result = get_from(shared, hash, peer, &providers, &progress).await;
        if let Err(Failure::Lost(lost)) = &result {
            tracing::info!(peer = %peer.fmt_short(), "{lost}; redialling");
            let lost = lost.clone();
            result = get_from(shared, hash, peer, &providers, &progress)
                .await
                .map_err(|again| Failure::Other(format!("{lost}; then: {}", again.message())));
        }
        match result {
            Ok(mut fetched) => {
                fetched.add_from(&from);
                return Ok(fetched);
            }
            Err(e) => {
                let e = e.message();
                tracing::info!(peer = %peer.fmt_short(), "fetch of {hash} failed: {e}");
                failures.push(e);
            }
        }
    }
    Err(NetError::FetchFailed { hash, failures }.into())
}

impl Fetched {
    /// Counts in what a spread fetch received before this fetch finished
    /// it; [`Fetched::from`] becomes the peer that sent the most.
    fn add_from(&mut self, spread: &[(EndpointId, u64)]) {
        for (peer, bytes) in spread {
            let peer = peer.to_string();
            self.bytes_received += bytes;
            match self.from_peers.iter_mut().find(|p| p.peer == peer) {
                Some(p) => p.bytes += bytes,
                None => self.from_peers.push(FromPeer {
                    peer,
                    bytes: *bytes,
                }),
            }
        }
        self.from_peers.retain(|p| p.bytes > 0);
        if let Some(most) = self.from_peers.iter().max_by_key(|p| p.bytes) {
            self.from = most.peer.clone();
        }
    }
}

/// `hash` as a fetch reports it when it (and all a tree reaches) is stored
/// here completely already: nothing received, from no peer.
pub async fn here(store: &Store, hash: Hash) -> Result<Option<Fetched>, NodeError> {
    let began = store.removals();
    if !store.has(hash).await? {
        return Ok(None);
    }
    let kind = store.kind(hash).await?;
    let (mut size, mut objects) = (store.size(hash).await?, 1u64);
    if kind == ObjectKind::Tree {
        size = 0;
        let mut walk = Walk::new(store, hash);
        while !walk.level.is_empty() {
            let children = walk.next_level(&mut objects, &mut size).await?;
            if !missing_ranges(store, children).await?.is_empty() {
                return Ok(None);
            }
        }
        store.claim_complete(began, walk.trees);
    }
    Ok(Some(Fetched {
        hash,
        kind,
        size,
        objects,
        bytes_received: 0,
        from: String::new(),
        from_peers: Vec::new(),
        exported: None,
    }))
}

/// A walk of a tree, level by level. Below a tree the store knows to be
/// complete ([`Store::known_complete`]) nothing needs looking up: its
/// entries are still read, so what the walk counts stays exact, but only
/// the entries of trees new here are checked and fetched.
struct Walk<'a> {
    store: &'a Store,
    /// The trees of the level to read next, each with whether it is known
    /// complete.
    level: Vec<(Hash, bool)>,
    seen: HashSet<Hash>,
    /// Every tree read so far: all complete once the walk is.
    trees: Vec<Hash>,
    /// Blobs of at least [`spread::SPREAD_MIN`] among the entries the last
    /// level returned: worth fetching from several peers at once.
    large: Vec<Hash>,
}

impl<'a> Walk<'a> {
    fn new(store: &'a Store, root: Hash) -> Self {
        Walk {
            store,
            level: vec![(root, store.known_complete(&root))],
            seen: HashSet::from([root]),
            trees: Vec::new(),
            large: Vec::new(),
        }
    }

    /// Reads the trees of the level (stored here) and moves to the next;
    /// returns the entries below them not seen before and not under a tree
    /// known complete (what to look up), counting every new entry into
    /// `objects` and their file bytes into `size`.
    async fn next_level(
        &mut self,
        objects: &mut u64,
        size: &mut u64,
    ) -> Result<Vec<Hash>, NodeError> {
        let (mut children, mut next) = (Vec::new(), Vec::new());
        self.large.clear();
        for (tree, known) in std::mem::take(&mut self.level) {
            self.trees.push(tree);
            for entry in self.store.read_tree(tree).await?.entries() {
                if !self.seen.insert(entry.hash) {
                    continue;
                }
                *objects += 1;
                if entry.kind == EntryKind::Tree {
                    next.push((entry.hash, known || self.store.known_complete(&entry.hash)));
                } else {
                    *size += entry.size;
                }
                if !known {
                    children.push(entry.hash);
                    if entry.kind != EntryKind::Tree && entry.size >= spread::SPREAD_MIN {
                        self.large.push(entry.hash);
                    }
                }
            }
        }
        self.level = next;
        Ok(children)
    }
}

/// Why a fetch from one peer failed.
#[derive(Debug)]
enum Failure {
    /// The connection went away mid-transfer; what arrived is kept.
    Lost(String),
    /// Anything else: refused, not there, wrong bytes, unreachable.
    Other(String),
}

impl Failure {
    fn message(self) -> String {
        match self {
            Failure::Lost(m) | Failure::Other(m) => m,
        }
    }

    fn text(&self) -> &str {
        match self {
            Failure::Lost(m) | Failure::Other(m) => m,
        }
    }
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Self {
        Failure::Other(e.to_string())
    }
}

impl From<clive_cas::CasError> for Failure {
    fn from(e: clive_cas::CasError) -> Self {
        Failure::Other(NodeError::from(e).to_string())
    }
}

/// A connection to `peer` for blobs, reused while it stays open.
async fn blob_conn(shared: &Shared, peer: EndpointId) -> Result<Connection, NodeError> {
    let mut conns = shared.blob_conns.lock().await;
    if let Some(conn) = conns.get(&peer)
        && conn.close_reason().is_none()
    {
        return Ok(conn.clone());
    }
    let conn = keeper::dial(shared, peer, iroh_blobs::ALPN).await?;
    conns.insert(peer, conn.clone());
    Ok(conn)
}

/// Fetches `hash` from `peer`; the large blobs of a tree are spread over
/// `spread_over` as well, when it names several peers.
async fn get_from(
    shared: &Arc<Shared>,
    hash: Hash,
    peer: EndpointId,
    spread_over: &[EndpointId],
    progress: &Arc<dyn Progress>,
) -> Result<Fetched, Failure> {
    let store = &shared.store;
    let mut spread_over = spread_over.to_vec();
    let mut spread_from = Vec::new();
    let began = store.removals();
    let mut received = 0u64;
    if !stored(store, hash).await?.is_complete() {
        let conn = blob_conn(shared, peer).await?;
        let stream = store
            .blobs()
            .remote()
            .fetch(conn, HashAndFormat::raw(hash))
            .stream();
        received += match drive(store, stream, progress.as_ref()).await {
            Ok(n) => n,
            Err(e) => return Err(explain(shared, peer, e).await),
        };
    }
    let kind = store.kind(hash).await?;
    let (mut size, mut objects) = (store.size(hash).await?, 1u64);
    if kind == ObjectKind::Tree {
        let conn = blob_conn(shared, peer).await?;
        size = 0;
        let mut walk = Walk::new(store, hash);
        while !walk.level.is_empty() {
            let children = walk.next_level(&mut objects, &mut size).await?;
            progress.set_total(size);
            if spread_over.len() > 1 {
                for blob in std::mem::take(&mut walk.large) {
                    let counted = Arc::new(spread::NoTotal(progress.clone()));
                    let spread = spread::fetch(shared, blob, &spread_over, counted).await?;
                    spread_from.extend(spread.from);
                    for (dropped, failure) in spread.dropped {
                        if matches!(failure, Failure::Other(_)) {
                            spread_over.retain(|p| *p != dropped);
                        }
                    }
                }
            }
            // Each batch looks up what of it is missing, then fetches
            // that: the lookups of one overlap the transfers of others.
            let batches: Vec<_> = children
                .chunks(BATCH)
                .map(|batch| {
                    let conn = conn.clone();
                    async move {
                        let wanted = missing_ranges(store, batch.to_vec()).await?;
                        if wanted.is_empty() {
                            return Ok(0);
                        }
                        let mut builder = GetManyRequest::builder();
                        for (h, ranges) in wanted {
                            builder = builder.hash(h, ranges);
                        }
                        let stream = store
                            .blobs()
                            .remote()
                            .execute_get_many(conn, builder.build())
                            .stream();
                        match drive(store, stream, progress.as_ref()).await {
                            Ok(n) => Ok(n),
                            Err(e) => Err(explain(shared, peer, e).await),
                        }
                    }
                })
                .collect();
            let mut results =
                n0_future::stream::iter(batches).buffered_unordered(BATCHES_IN_FLIGHT);
            while let Some(result) = results.next().await {
                received += result?;
            }
        }
        store.claim_complete(began, walk.trees);
    }
    let mut fetched = Fetched {
        hash,
        kind,
        size,
        objects,
        bytes_received: received,
        from: peer.to_string(),
        from_peers: vec![FromPeer {
            peer: peer.to_string(),
            bytes: received,
        }],
        exported: None,
    };
    fetched.add_from(&spread_from);
    Ok(fetched)
}

/// The ranges of `hashes` not stored here yet (only for those not complete).
async fn missing_ranges(
    store: &Store,
    hashes: Vec<Hash>,
) -> Result<Vec<(Hash, ChunkRanges)>, NodeError> {
    // The lookups are made as they are polled: a level of 100,000 blobs
    // collected into futures first held 51 MB of them.
    let mut found = n0_future::stream::iter(hashes)
        .map(|hash| async move {
            let stored = stored(store, hash).await?;
            let ranges = (!stored.is_complete()).then(|| ChunkRanges::all() - &stored.ranges);
            Ok::<_, NodeError>(ranges.map(|r| (hash, r)))
        })
        .buffered_ordered(LOOKUPS_IN_FLIGHT);
    let mut out = Vec::new();
    while let Some(item) = found.next().await {
        out.extend(item?);
    }
    Ok(out)
}

/// What of blob `hash` is stored here and verified: its chunks, and its
/// size once a verified last chunk has proved it.
async fn stored(store: &Store, hash: Hash) -> Result<Bitfield, NodeError> {
    let observed = store
        .blobs()
        .observe(hash)
        .stream()
        .await
        .map_err(|e| NodeError::from(NetError::LocalStore(Box::new(e))))?;
    let mut observed = std::pin::pin!(observed);
    Ok(observed.next().await.unwrap_or_else(Bitfield::empty))
}

/// A commit of the store's database under way.
type Commit<'a> = Pin<Box<dyn Future<Output = Result<(), clive_cas::CasError>> + Send + 'a>>;

/// Runs one request to completion, reporting progress and committing what
/// the store verified every [`COMMIT_EVERY`] bytes or [`COMMIT_INTERVAL`]
/// (one commit at a time, beside the transfer); returns payload bytes read.
async fn drive(
    store: &Store,
    stream: impl n0_future::Stream<Item = GetProgressItem>,
    progress: &dyn Progress,
) -> Result<u64, GetError> {
    let mut stream = std::pin::pin!(stream);
    let mut reported = 0u64;
    let mut committed = 0u64;
    let mut last_commit = tokio::time::Instant::now();
    let mut commit: Option<Commit<'_>> = None;
    loop {
        let pending = reported > committed;
        if commit.is_none()
            && pending
            && (reported - committed >= COMMIT_EVERY
                || last_commit.elapsed() >= COMMIT_INTERVAL
                || committed == 0)
        {
            committed = reported;
            last_commit = tokio::time::Instant::now();
            commit = Some(Box::pin(store.sync()));
        }
        tokio::select! {
            done = async { commit.as_mut().expect("guarded").await }, if commit.is_some() => {
                commit = None;
                if let Err(e) = done {
                    tracing::warn!("committing a fetch in progress: {e}");
                }
            }
            _ = tokio::time::sleep_until(last_commit + COMMIT_INTERVAL),
                if commit.is_none() && pending => {}
            item = stream.next() => match item {
                Some(GetProgressItem::Progress(bytes)) => {
                    progress.advance(bytes.saturating_sub(reported));
                    reported = reported.max(bytes);
                }
                Some(GetProgressItem::Done(stats)) => return Ok(stats.payload_bytes_read),
                Some(GetProgressItem::Error(e)) => return Err(e),
                None => return Ok(reported),
            },
        }
    }
}

/// Turns a failed request into an error a user can act on, and forgets
/// the connection it failed on.
async fn explain(shared: &Arc<Shared>, peer: EndpointId, e: GetError) -> Failure {
    shared.forget_blob_conn(&peer).await;
    let short = peer.fmt_short();
    if let GetError::Decode { source, .. } = &e {
        match source {
            DecodeError::ParentHashMismatch { .. } | DecodeError::LeafHashMismatch { .. } => {
                return Failure::Other(format!(
                    "peer {short} sent data that does not match the hash (a corrupt or \
                     dishonest peer); the bad data was discarded: {e}"
                ));
            }
            DecodeError::ChunkNotFound { .. }
            | DecodeError::ParentNotFound { .. }
            | DecodeError::LeafNotFound { .. } => {
                return Failure::Other(format!(
                    "peer {short} stopped sending part of it (it may not hold all of it); \
                     what arrived was verified and kept: {e}"
                ));
            }
            DecodeError::Write { .. } => {
                return Failure::Other(format!("writing what peer {short} sent: {e}"));
            }
            // A read error is the connection's, handled below.
            _ => {}
        }
    }
    if e.iroh_error_code() == Some(ERR_PERMISSION) || is_refused_connection(&e) {
        let reason = refusal(shared, peer).await.unwrap_or_default();
        return Failure::Other(format!("peer {short} refused to serve it: {reason}"));
    }
    if e.iroh_error_code() == Some(ERR_INTERNAL) {
        return Failure::Other(format!(
            "peer {short} does not have it (or could not read it)"
        ));
    }
    let lost = || {
        Failure::Lost(format!(
            "the connection to peer {short} was lost mid-transfer ({e:#}); what arrived was \
             verified and kept, and the next `get` resumes from there"
        ))
    };
    let closed = match connection_error(&e) {
        // Timed out, reset, aborted: the peer or the path to it went away.
        Some(c) if !matches!(c, ConnectionError::ApplicationClosed(_)) => return lost(),
        Some(_) => true,
        None => false,
    };
    // A closed connection may also be a refusal: ask, and say so if it was.
    if let Some(reason) = refusal(shared, peer).await {
        return Failure::Other(format!("peer {short} refused to serve it: {reason}"));
    }
    if closed {
        return lost();
    }
    Failure::Other(format!("peer {short} could not serve it: {e}"))
}

/// The connection failure a request failed with, if it failed because its
/// connection did.
fn connection_error(e: &GetError) -> Option<&ConnectionError> {
    let inner = e
        .remote_read()
        .or(e.remote_write())
        .or(e.open())?
        .get_ref()?;
    if let Some(ReadError::ConnectionLost(c)) = inner.downcast_ref::<ReadError>() {
        return Some(c);
    }
    if let Some(WriteError::ConnectionLost(c)) = inner.downcast_ref::<WriteError>() {
        return Some(c);
    }
    inner.downcast_ref::<ConnectionError>()
}

/// Whether the peer closed the connection the request went on as a
/// refusal: iroh-blobs' provider closes it with [`ERR_PERMISSION`] when
/// this node was refused at connecting.
fn is_refused_connection(e: &GetError) -> bool {
    matches!(
        connection_error(e),
        Some(ConnectionError::ApplicationClosed(close)) if close.error_code == ERR_PERMISSION
    )
}

/// Why `peer` refuses this node `fetch`, if it does.
async fn refusal(shared: &Shared, peer: EndpointId) -> Option<String> {
    let conn = keeper::dial(shared, peer, wire::PEER_ALPN).await.ok()?;
    let reply = wire::call(
        &conn,
        &wire::PeerRequest::Check {
            cap: "fetch".into(),
        },
        Some(wire::CALL_TIMEOUT),
    )
    .await
    .ok()?;
    match reply {
        wire::PeerReply::Verdict {
            allowed: false,
            reason,
        } => Some(format!("this node does not hold fetch there: {reason}")),
        wire::PeerReply::Refused { reason } => Some(reason),
        _ => None,
    }
}

/// Everything `root` reaches, which must all be stored here.
pub(crate) async fn closure(shared: &Shared, root: Hash) -> Result<Vec<Hash>, NodeError> {
    let mut out = vec![root];
    let mut seen = HashSet::from([root]);
    let mut stack = vec![root];
    while let Some(hash) = stack.pop() {
        if !shared.store.has(hash).await? {
            return Err(NetError::NotStored { root, hash }.into());
        }
        if shared.store.kind(hash).await? == ObjectKind::Tree {
            for e in shared.store.read_tree(hash).await?.entries() {
                if seen.insert(e.hash) {
                    out.push(e.hash);
                    stack.push(e.hash);
                }
            }
        }
    }
    Ok(out)
}

/// Offers `hash` to `peer`, which fetches it from this node if this node
/// holds `push` there.
pub async fn push(shared: &Arc<Shared>, hash: Hash, peer: EndpointId) -> Result<Pushed, NodeError> {
    let objects = closure(shared, hash).await?;
    grant(shared, peer, &objects);
    let result = offer(shared, hash, peer).await;
    ungrant(shared, peer, objects);
    result
}

/// Lets `peer` fetch `objects` from this node (for [`PUSH_WINDOW`] at most),
/// whatever it holds here: what this node offers it.
pub fn grant(shared: &Shared, peer: EndpointId, objects: &[Hash]) {
    let until = Instant::now() + PUSH_WINDOW;
    lock(&shared.push_grants)
        .entry(peer)
        .or_default()
        .extend(objects.iter().map(|h| (*h, until)));
}

/// Takes back a [`grant`] (and any that expired).
pub fn ungrant(shared: &Shared, peer: EndpointId, objects: Vec<Hash>) {
    let mut grants = lock(&shared.push_grants);
    if let Some(list) = grants.get_mut(&peer) {
        let now = Instant::now();
        let offered: HashSet<Hash> = objects.into_iter().collect();
        list.retain(|(h, t)| *t > now && !offered.contains(h));
        if list.is_empty() {
            grants.remove(&peer);
        }
    }
}

async fn offer(shared: &Arc<Shared>, hash: Hash, peer: EndpointId) -> Result<Pushed, NodeError> {
    let conn = keeper::connect(shared, peer).await?;
    let reply = wire::call(
        &conn,
        &wire::PeerRequest::PushOffer {
            hash: hash.to_string(),
        },
        None,
    )
    .await?;
    match reply {
        wire::PeerReply::Pushed { bytes_received } => Ok(Pushed {
            hash,
            to: peer.to_string(),
            bytes_sent: bytes_received,
        }),
        wire::PeerReply::Refused { reason } => Err(NetError::Refused {
            peer: peer.fmt_short().to_string(),
            what: "the push",
            reason,
        }
        .into()),
        other => Err(NetError::OutOfTurn {
            peer: peer.fmt_short().to_string(),
            what: "the push",
            reply: format!("{other:?}"),
        }
        .into()),
    }
}

/// Pins an object a peer pushed here, so gc keeps it: `pushed-HASHPREFIX`.
pub async fn keep_pushed(shared: &Shared, hash: Hash) -> Result<(), NodeError> {
    shared.store.sync().await?;
    let name = format!("pushed-{}", &hash.to_hex()[..16]);
    shared.store.pin(&name, hash).await?;
    Ok(())
}
