//! Several real nodes in one process, on loopback QUIC, through the node
//! API: invite and join, fetching a tree, push, revocation, refusals, a
//! dishonest peer, reconnection after a restart, and one blob from several
//! peers at once.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{path::Path, sync::Arc, time::Duration};

use clive_node::{
    NetError, NodeError,
    cas::{NoProgress, ObjectKind},
    clive_trust::{Clock, SystemClock},
};
use clive_tests::{assert_same_tree, write_pseudo_random};
use net_nodes_support::{Liar, TestPeer, eventually, sign, stored_bytes};

mod net_nodes_support;

fn make_tree(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{:02}", i % 20));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("f{i:04}")),
            format!("file {i}\n").repeat(i % 7 + 1),
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_join_fetch_push_and_revoke() {
    let a = TestPeer::start().await;
    let b = TestPeer::start().await;
    let c = TestPeer::start().await;
    let b_cert = a.admit(&b, "fetch,push").await;
    a.admit(&c, "fetch").await;

    // A tree of 1,000 files fetched from A by B, then exported identically.
    let src = a.dir.path().join("src");
    make_tree(&src, 1000);
    let hash = a.add(&src, Some("src")).await;
    let fetched = b
        .node()
        .store()
        .get(&hash, Some(&a.id()), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(fetched.kind, ObjectKind::Tree);
    assert_eq!(fetched.objects, 1000 + 20 + 1);
    let out = b.dir.path().join("out");
    b.node()
        .store()
        .export(&hash, &out, false, Arc::new(NoProgress))
        .await
        .unwrap();
    assert_same_tree(&src, &out);
    // Fetching again moves no payload: everything is already here.
    let again = b
        .node()
        .store()
        .get(&hash, Some(&a.id()), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(again.bytes_received, 0);

    // B holds push on A; C does not.
    let note = b.dir.path().join("note.txt");
    std::fs::write(&note, "pushed from B\n").unwrap();
    let note_hash = b.add(&note, None).await;
    let pushed = b
        .node()
        .store()
        .push(&note_hash, &a.id(), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(pushed.bytes_sent, 14);
    let mut got = Vec::new();
    a.node().store().cat(&note_hash, &mut got).await.unwrap();
    assert_eq!(got, b"pushed from B\n");
    c.add(&note, None).await;
    let refused = c
        .node()
        .store()
        .push(&note_hash, &a.id(), Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            NodeError::Net(NetError::Refused {
                what: "the push",
                ..
            })
        ),
        "{refused:?}"
    );
    let refused = refused.to_string();
    assert!(refused.contains("refused the push"), "{refused}");
    assert!(refused.contains("push"), "{refused}");

    // A revokes B's certificate: B's next fetch is refused, on the open connection too.
    let later = a.dir.path().join("later.txt");
    std::fs::write(&later, "after the revocation\n").unwrap();
    let later_hash = a.add(&later, Some("later")).await;
    a.node()
        .trust()
        .revoke(&b_cert, None, sign())
        .await
        .unwrap();
    let err = b
        .node()
        .store()
        .get(&later_hash, Some(&a.id()), Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NodeError::Net(NetError::FetchFailed { .. })),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(err.contains("refused to serve"), "{err}");
    assert!(err.contains("revoked"), "{err}");
    // A does not have everything: it says so.
    let missing = clive_node::cas::parse_hash(&"11".repeat(32)).unwrap();
    let err = c
        .node()
        .store()
        .get(&missing, Some(&a.id()), Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NodeError::Net(NetError::FetchFailed { .. })),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(err.contains("does not have it"), "{err}");
    // C, still trusted, fetches it.
    c.node()
        .store()
        .get(&later_hash, None, Arc::new(NoProgress))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tickets_are_single_use_unforgeable_and_expire() {
    let a = TestPeer::start().await;
    let b = TestPeer::start().await;
    let c = TestPeer::start().await;
    let invite = a
        .node()
        .peers()
        .invite("fetch", Duration::from_secs(600), 1)
        .await
        .unwrap();
    b.node().peers().join(&invite.ticket).await.unwrap();
    let reused = c.node().peers().join(&invite.ticket).await.unwrap_err();
    assert!(
        matches!(reused, NodeError::Net(NetError::JoinRefused(_))),
        "{reused:?}"
    );
    let reused = reused.to_string();
    assert!(reused.contains("already been used"), "{reused}");

    // A ticket with a made-up secret (correct checksum, so it decodes).
    let mut forged = clive_node::net::ticket::Ticket::decode(&invite.ticket).unwrap();
    forged.secret = [0x42; 32];
    let err = c.node().peers().join(&forged.encode()).await.unwrap_err();
    assert!(
        matches!(err, NodeError::Net(NetError::JoinRefused(_))),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(err.contains("not issued by this node"), "{err}");

    let damaged = invite.ticket.replace('a', "b");
    let err = c.node().peers().join(&damaged).await.unwrap_err();
    assert!(
        matches!(err, NodeError::Net(NetError::Ticket(_))),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.contains("damaged") || err.contains("not a clive-node ticket"),
        "{err}"
    );

    let short = a
        .node()
        .peers()
        .invite("fetch", Duration::from_secs(60), 1)
        .await
        .unwrap();
    // Expired by the inviter's clock only: the joiner's says it is valid,
    // so the joiner asks, and the inviter itself refuses. (A minute, so
    // that the joiner's clock, started a moment after the inviter's, is
    // well inside it.)
    a.clock.advance(Duration::from_secs(120));
    let err = c.node().peers().join(&short.ticket).await.unwrap_err();
    assert!(
        matches!(&err, NodeError::Net(NetError::JoinRefused(why)) if why.starts_with("this ticket expired")),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.contains("the inviter refused: this ticket expired"),
        "{err}"
    );
    // Expired by the joiner's clock too: refused before asking anyone.
    c.clock.advance(Duration::from_secs(120));
    let err = c.node().peers().join(&short.ticket).await.unwrap_err();
    assert!(
        matches!(err, NodeError::Net(NetError::TicketExpired(_))),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.starts_with("this ticket expired") && err.contains("ask for a new invite"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_without_a_certificate_is_refused() {
    let a = TestPeer::start().await;
    let stranger = TestPeer::start().await;
    let blob = a.dir.path().join("b");
    std::fs::write(&blob, "secret stuff").unwrap();
    let hash = a.add(&blob, Some("b")).await;
    let addrs = a.node().status().await.unwrap().addrs;
    stranger.node().peers().add(&a.id(), &addrs).await.unwrap();
    let err = stranger
        .node()
        .store()
        .get(&hash, Some(&a.id()), Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NodeError::Net(NetError::FetchFailed { .. })),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(err.contains("refused"), "{err}");
    assert!(!stranger.node().store().cas().has(hash).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_bytes_from_a_peer_are_detected_and_an_honest_peer_serves() {
    let honest = TestPeer::start().await;
    let b = TestPeer::start().await;
    honest.admit(&b, "fetch").await;
    let file = b.dir.path().join("big");
    write_pseudo_random(&file, 2 << 20, 7);
    let truth = std::fs::read(&file).unwrap();
    let hash = honest.add(&file, Some("big")).await;
    let (_liar, liar_id, liar_addr) = Liar::new(&truth).serve().await;
    b.node().peers().add(&liar_id, &[liar_addr]).await.unwrap();

    let err = b
        .node()
        .store()
        .get(&hash, Some(&liar_id), Arc::new(NoProgress))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NodeError::Net(NetError::FetchFailed { .. })),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(err.contains("does not match"), "{err}");
    // Nothing wrong was stored, and the blob is not complete here.
    assert!(!b.node().store().cas().has(hash).await.unwrap());
    assert!(
        b.node()
            .store()
            .fsck(false, Arc::new(NoProgress))
            .await
            .unwrap()
            .is_clean()
    );

    // The honest peer serves it, and only verified bytes were kept.
    let fetched = b
        .node()
        .store()
        .get(&hash, Some(&honest.id()), Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(fetched.from, honest.id());
    let mut got = Vec::new();
    b.node().store().cat(&hash, &mut got).await.unwrap();
    assert!(got == truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_node_reconnects_to_its_peers() {
    let a = TestPeer::start().await;
    let mut b = TestPeer::start().await;
    a.admit(&b, "fetch").await;
    eventually("A and B connected", || async {
        a.connected_to(&b).await && b.connected_to(&a).await
    })
    .await;
    b.restart().await;
    for _ in 0..300 {
        if b.connected_to(&a).await && a.connected_to(&b).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        b.connected_to(&a).await && a.connected_to(&b).await,
        "B did not reconnect to A after its restart:\nA: {:?}\nB: {:?}",
        a.node().peers().list().await.unwrap(),
        b.node().peers().list().await.unwrap()
    );
    // The peer records survived the restart.
    assert_eq!(b.node().peers().list().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_fetch_resumes_where_it_stopped() {
    let a = TestPeer::start().await;
    let mut b = TestPeer::start().await;
    a.admit(&b, "fetch").await;
    let file = a.dir.path().join("big");
    let size: u64 = 64 << 20;
    write_pseudo_random(&file, size, 3);
    let hash = a.add(&file, Some("big")).await;
    // Cut the fetch off once about a third has arrived.
    let partial = b
        .home()
        .blobs_dir()
        .join("data")
        .join(format!("{}.data", hash.to_hex()));
    let from = a.id();
    b.stop_services().await;
    let node = b.node.take().unwrap();
    let fetch = {
        let node = node.clone();
        tokio::spawn(async move {
            node.store()
                .get(&hash, Some(&from), Arc::new(NoProgress))
                .await
        })
    };
    let mut cut = false;
    for _ in 0..2000 {
        let len = stored_bytes(&partial);
        if len > size / 3 {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(cut, "the fetch never got a third of the way");
    fetch.abort();
    assert!(fetch.await.unwrap_err().is_cancelled());
    // Close the node, open it again: the partial blob is still there.
    let node = Arc::try_unwrap(node).expect("the fetch task is gone");
    node.close().await.unwrap();
    b.restart().await;
    let fetched = b
        .node()
        .store()
        .get(&hash, Some(&a.id()), Arc::new(NoProgress))
        .await
        .unwrap();
    assert!(
        fetched.bytes_received < size * 3 / 4,
        "resumed fetch moved {} of {size} bytes",
        fetched.bytes_received
    );
    let mut got = Vec::new();
    b.node().store().cat(&hash, &mut got).await.unwrap();
    assert!(got == std::fs::read(&file).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocations_spread_to_peers_over_gossip() {
    let a = TestPeer::start().await;
    let b = TestPeer::start().await;
    let c = TestPeer::start().await;
    let b_cert = a.admit(&b, "fetch").await;
    a.admit(&c, "fetch").await;
    eventually("B and C connected to A", || async {
        a.connected_to(&b).await && a.connected_to(&c).await
    })
    .await;
    assert!(
        b.node()
            .trust()
            .show(&b_cert)
            .await
            .unwrap()
            .revoked_by
            .is_none()
    );
    // A revokes B's certificate: B hears of it on the announcement topic.
    a.node()
        .trust()
        .revoke(&b_cert, None, sign())
        .await
        .unwrap();
    eventually("B sees its own certificate revoked", || async {
        b.node()
            .trust()
            .show(&b_cert)
            .await
            .is_ok_and(|info| info.revoked_by.is_some())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_addresses_spread_to_peers_over_gossip() {
    let a = TestPeer::start().await;
    let b = TestPeer::start().await;
    let c = TestPeer::start().await;
    a.admit(&c, "fetch").await;
    eventually("C connected to A", || async { a.connected_to(&c).await }).await;
    // C knows B only at a stale address.
    c.node()
        .peers()
        .add(&b.id(), &["127.0.0.1:9".to_owned()])
        .await
        .unwrap();
    // B joins A and announces where it listens; the announcement reaches C through A.
    a.admit(&b, "fetch").await;
    let b_addrs = b.node().status().await.unwrap().addrs;
    assert!(!b_addrs.is_empty());
    eventually("C learns B's address from the announcement", || async {
        c.node()
            .peers()
            .list()
            .await
            .unwrap()
            .iter()
            .any(|p| p.endpoint_id == b.id() && p.addrs == b_addrs)
    })
    .await;
}

/// A signed name given where an OBJECT goes obeys the node's clock exactly
/// as `name resolve` does: served while its metadata holds, refused with
/// the same error once the clock passes its expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_as_an_object_expires_by_the_nodes_clock_as_name_resolve_does() {
    let mut a = TestPeer::start().await;
    // The re-signer would renew the zone's metadata once the clock moves.
    a.stop_services().await;
    let file = a.dir.path().join("app.txt");
    std::fs::write(&file, b"version 1\n").unwrap();
    let names = a.node().names();
    names
        .zone_create("rel", &[], 1, None, a.dir.path(), sign())
        .await
        .unwrap();
    names
        .publish(
            "rel/app",
            Some((file.to_str().unwrap(), a.dir.path())),
            sign(),
            None,
        )
        .await
        .unwrap();
    let hash = a.node().resolve_object("rel/app").await.unwrap();
    assert_eq!(
        hash.to_string(),
        blake3::hash(b"version 1\n").to_hex().as_str()
    );

    a.clock.set(SystemClock.now() + 400 * 24 * 3600);
    let by_resolve = a
        .node()
        .names()
        .zones()
        .resolve("rel", "app", false, a.node().now())
        .expect_err("expired metadata resolves");
    let by_object = a
        .node()
        .resolve_object("rel/app")
        .await
        .expect_err("an expired name served as an object");
    assert!(
        matches!(
            by_object,
            clive_node::object::ObjectError::Node(NodeError::Naming(_))
        ),
        "{by_object:?}"
    );
    let by_object = by_object.to_string();
    assert!(
        by_object.contains(&by_resolve.to_string()),
        "{by_object:?} is not {by_resolve:?}"
    );
    assert!(by_object.contains("expired"), "{by_object}");
    a.stop().await;
}

/// Bytes in the blob the several-peer tests fetch.
const SPREAD_SIZE: u64 = 200 << 20;

/// Seeders that each hold `src` (a file or a folder), and a fetcher that
/// each of them admitted; returns its hash.
async fn seeders(count: usize, src: &Path) -> (Vec<TestPeer>, TestPeer, clive_node::cas::Hash) {
    let fetcher = TestPeer::start().await;
    let mut seeders = Vec::new();
    let mut hash = None;
    for _ in 0..count {
        let seeder = TestPeer::start().await;
        seeder.admit(&fetcher, "fetch").await;
        hash = Some(seeder.add(src, Some("src")).await);
        seeders.push(seeder);
    }
    (seeders, fetcher, hash.expect("at least one seeder"))
}

/// Seeders of a blob of [`SPREAD_SIZE`] bytes; returns them, the fetcher,
/// the blob and its hash.
async fn blob_seeders(count: usize) -> (Vec<TestPeer>, TestPeer, Vec<u8>, clive_node::cas::Hash) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big");
    write_pseudo_random(&file, SPREAD_SIZE, 11);
    let (seeders, fetcher, hash) = seeders(count, &file).await;
    (seeders, fetcher, std::fs::read(&file).unwrap(), hash)
}

/// Checks that `fetcher` holds exactly `truth` as `hash`, with a clean store.
async fn holds(fetcher: &TestPeer, hash: &clive_node::cas::Hash, truth: &[u8]) {
    let mut got = Vec::new();
    fetcher.node().store().cat(hash, &mut got).await.unwrap();
    assert!(got == truth, "the fetched blob differs from what was added");
    let fsck = fetcher
        .node()
        .store()
        .fsck(false, Arc::new(NoProgress))
        .await
        .unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
}

/// `hash` fetched by `fetcher` from whichever of its peers have it.
async fn get_from_any(fetcher: &TestPeer, hash: &clive_node::cas::Hash) -> clive_node::Fetched {
    fetcher
        .node()
        .store()
        .get(hash, None, Arc::new(NoProgress))
        .await
        .unwrap()
}

/// Checks that each of `peers` sent some of `fetched`.
fn each_sent(fetched: &clive_node::Fetched, peers: &[TestPeer]) {
    for peer in peers {
        assert!(
            bytes_from(fetched, &peer.id()) > 0,
            "nothing came from {}: {fetched:?}",
            peer.id()
        );
    }
}

/// The bytes `peer` sent for `fetched`, per its report.
fn bytes_from(fetched: &clive_node::Fetched, peer: &str) -> u64 {
    fetched
        .from_peers
        .iter()
        .filter(|p| p.peer == peer)
        .map(|p| p.bytes)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_blob_comes_from_every_peer_that_has_it_at_once() {
    let (seeders, fetcher, truth, hash) = blob_seeders(3).await;
    let fetched = get_from_any(&fetcher, &hash).await;
    each_sent(&fetched, &seeders);
    let sum: u64 = fetched.from_peers.iter().map(|p| p.bytes).sum();
    assert_eq!(sum, fetched.bytes_received);
    assert!(fetched.bytes_received >= SPREAD_SIZE, "{fetched:?}");
    holds(&fetcher, &hash, &truth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_that_vanishes_midway_leaves_its_pieces_to_the_others() {
    let (seeders, fetcher, truth, hash) = blob_seeders(3).await;
    let partial = fetcher
        .home()
        .blobs_dir()
        .join("data")
        .join(format!("{}.data", hash.to_hex()));
    let node = fetcher.node.clone().unwrap();
    let fetch =
        tokio::spawn(async move { node.store().get(&hash, None, Arc::new(NoProgress)).await });
    let mut midway = false;
    for _ in 0..4000 {
        if stored_bytes(&partial) > SPREAD_SIZE / 3 {
            midway = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(midway, "the fetch never got a third of the way");
    let vanished = &seeders[2];
    vanished.node().stop_net().await;
    let fetched = fetch.await.unwrap().unwrap();
    each_sent(&fetched, &seeders[..2]);
    holds(&fetcher, &hash, &truth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_serving_wrong_bytes_stores_nothing_and_the_honest_peers_finish() {
    let (seeders, fetcher, truth, hash) = blob_seeders(2).await;
    let (_liar, liar_id, liar_addr) = Liar::new(&truth).serve().await;
    fetcher
        .node()
        .peers()
        .add(&liar_id, &[liar_addr])
        .await
        .unwrap();
    let fetched = get_from_any(&fetcher, &hash).await;
    assert_eq!(bytes_from(&fetched, &liar_id), 0, "{fetched:?}");
    each_sent(&fetched, &seeders);
    holds(&fetcher, &hash, &truth).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_large_files_of_a_tree_come_from_several_peers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src, 50);
    write_pseudo_random(&src.join("d00").join("large"), 48 << 20, 5);
    let (seeders, fetcher, hash) = seeders(2, &src).await;
    let fetched = get_from_any(&fetcher, &hash).await;
    each_sent(&fetched, &seeders);
    let out = fetcher.dir.path().join("out");
    fetcher
        .node()
        .store()
        .export(&hash, &out, false, Arc::new(NoProgress))
        .await
        .unwrap();
    assert_same_tree(&src, &out);
}
