//! The store against real files on disk: import, export, pins, gc, fsck.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::{
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    sync::Arc,
};

use clive_cas::{
    CasError, Entry, EntryKind, Hash, NoProgress, ObjectKind, Progress, Store, Tree, tree,
};

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    store: Store,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let db = Arc::new(redb::Database::create(root.join("state.redb")).unwrap());
    let store = Store::open(&root.join("blobs"), db).await.unwrap();
    Fixture {
        _dir: dir,
        root,
        store,
    }
}

fn none() -> Arc<dyn Progress> {
    Arc::new(NoProgress)
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn data_files(store: &Store) -> usize {
    std::fs::read_dir(store.dir().join("data"))
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".data")
        })
        .count()
}

#[tokio::test]
async fn same_content_is_stored_once() {
    let f = fixture().await;
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    write(&f.root.join("in/a.bin"), &big);
    write(&f.root.join("in/copy/b.bin"), &big);
    write(&f.root.join("in/small.txt"), b"hello");
    write(&f.root.join("in/copy/small2.txt"), b"hello");
    let (first, _g1) = f
        .store
        .add_path(&f.root.join("in/a.bin"), none())
        .await
        .unwrap();
    assert_eq!(first.hash.to_hex(), blake3::hash(&big).to_hex().as_str());
    let objects_after_one = f.store.list().await.unwrap().len();
    let (tree, _g2) = f.store.add_path(&f.root.join("in"), none()).await.unwrap();
    assert_eq!(tree.kind, ObjectKind::Tree);
    let (again, _g3) = f
        .store
        .add_path(&f.root.join("in/copy/b.bin"), none())
        .await
        .unwrap();
    assert_eq!(again.hash, first.hash);
    // The big blob, one small blob, two trees (in, in/copy).
    let objects = f.store.list().await.unwrap().len();
    assert_eq!(objects, objects_after_one + 3);
    // One data file on disk per object (nothing is inlined in the
    // database): the two copies of each file share theirs.
    assert_eq!(data_files(&f.store), objects);
}

#[tokio::test]
async fn tree_round_trip_preserves_content_modes_and_links() {
    let f = fixture().await;
    let src = f.root.join("src");
    write(&src.join("a/b/c.txt"), b"deep");
    write(&src.join("empty"), b"");
    write(&src.join("été/naïve ☃.txt"), "unicode".as_bytes());
    write(&src.join("run.sh"), b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(src.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(src.join("hollow/inner")).unwrap();
    symlink("a/b/c.txt", src.join("link")).unwrap();
    let (added, _guard) = f.store.add_path(&src, none()).await.unwrap();
    let dest = f.root.join("out");
    let exported = f
        .store
        .export(added.hash, &dest, false, none())
        .await
        .unwrap();
    assert_eq!(exported.kind, ObjectKind::Tree);
    assert_eq!(std::fs::read(dest.join("a/b/c.txt")).unwrap(), b"deep");
    assert_eq!(std::fs::read(dest.join("empty")).unwrap(), b"");
    assert_eq!(
        std::fs::read(dest.join("été/naïve ☃.txt")).unwrap(),
        b"unicode"
    );
    let mode = std::fs::metadata(dest.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111);
    assert!(dest.join("hollow/inner").is_dir());
    assert_eq!(
        std::fs::read_link(dest.join("link")).unwrap(),
        Path::new("a/b/c.txt")
    );
    // Re-adding the export gives the same hash.
    let (again, _g) = f.store.add_path(&dest, none()).await.unwrap();
    assert_eq!(again.hash, added.hash);
}

#[tokio::test]
async fn export_refuses_to_overwrite_unless_forced() {
    let f = fixture().await;
    write(&f.root.join("file"), b"new content");
    let (added, _g) = f
        .store
        .add_path(&f.root.join("file"), none())
        .await
        .unwrap();
    let dest = f.root.join("existing");
    write(&dest, b"precious");
    let err = f
        .store
        .export(added.hash, &dest, false, none())
        .await
        .unwrap_err();
    assert!(matches!(err, CasError::DestinationExists(_)), "{err}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"precious");
    f.store
        .export(added.hash, &dest, true, none())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"new content");
}

/// A tree encoded by hand, bypassing the encoder's checks.
fn raw_tree(entries: &[(u8, &str, Hash, u64)]) -> Vec<u8> {
    let mut out = tree::MAGIC.to_vec();
    out.push(tree::VERSION);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (kind, name, hash, size) in entries {
        out.push(*kind);
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(hash.as_bytes());
    }
    out
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn crafted_tree_cannot_write_through_a_symlink_outside_dest() {
    let f = fixture().await;
    let outside = f.root.join("outside");
    std::fs::create_dir(&outside).unwrap();
    let (target, _g1) = f
        .store
        .put_bytes(outside.to_string_lossy().into_owned())
        .await
        .unwrap();
    let (payload, _g2) = f.store.put_bytes(b"pwned".to_vec()).await.unwrap();
    let inner = Tree::new(vec![Entry {
        name: "file".into(),
        kind: EntryKind::File,
        hash: payload,
        size: 5,
    }])
    .unwrap();
    let (inner_hash, _g3) = f.store.put_tree(&inner).await.unwrap();
    let len = outside.as_os_str().len() as u64;
    // `escape` is a symlink to OUTSIDE, then a directory `escape` holding `file`:
    // a naive exporter would write OUTSIDE/file.
    let crafted = raw_tree(&[(2, "escape", target, len), (3, "escape", inner_hash, 5)]);
    let (crafted_hash, _g4) = f.store.put_bytes(crafted).await.unwrap();
    let dest = f.root.join("dest");
    let err = f
        .store
        .export(crafted_hash, &dest, false, none())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("duplicate name"), "{err}");
    assert!(names_in(&outside).is_empty());
    assert!(!dest.exists());
    let staging: Vec<_> = names_in(&f.root)
        .into_iter()
        .filter(|n| n.contains("clive-export"))
        .collect();
    assert!(staging.is_empty(), "{staging:?}");

    // A valid tree whose symlink points outside: the link is recreated as a
    // link, nothing is written through it.
    let ok = raw_tree(&[(3, "dir", inner_hash, 5), (2, "escape", target, len)]);
    let (ok_hash, _g5) = f.store.put_bytes(ok).await.unwrap();
    f.store.export(ok_hash, &dest, false, none()).await.unwrap();
    assert_eq!(std::fs::read_link(dest.join("escape")).unwrap(), outside);
    assert_eq!(std::fs::read(dest.join("dir/file")).unwrap(), b"pwned");
    assert!(names_in(&outside).is_empty());

    // Forcing over a destination that is itself a symlink to OUTSIDE replaces
    // the link; nothing lands in OUTSIDE.
    let dest2 = f.root.join("dest2");
    symlink(&outside, &dest2).unwrap();
    f.store.export(ok_hash, &dest2, true, none()).await.unwrap();
    assert!(dest2.symlink_metadata().unwrap().is_dir());
    assert!(names_in(&outside).is_empty());
}

#[tokio::test]
async fn gc_keeps_what_pins_reach_and_removes_the_rest() {
    let f = fixture().await;
    let big: Vec<u8> = vec![7u8; 1_000_000];
    write(&f.root.join("kept/big.bin"), &big);
    write(&f.root.join("kept/sub/small.txt"), b"small kept");
    write(&f.root.join("dropped.bin"), &vec![9u8; 500_000]);
    let (kept, g1) = f
        .store
        .add_path(&f.root.join("kept"), none())
        .await
        .unwrap();
    let (dropped, g2) = f
        .store
        .add_path(&f.root.join("dropped.bin"), none())
        .await
        .unwrap();
    f.store.pin("release", kept.hash).await.unwrap();
    drop((g1, g2));

    let dry = gc(&f.store, true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.removed_hashes, vec![dropped.hash]);
    assert_eq!(dry.freed_bytes, 500_000);
    assert!(f.store.has(dropped.hash).await.unwrap());

    let report = gc(&f.store, false).await.unwrap();
    assert_eq!(report.removed_hashes, vec![dropped.hash]);
    assert!(!f.store.has(dropped.hash).await.unwrap());
    assert!(f.store.fsck(none(), &[]).await.unwrap().is_clean());
    let out = f.root.join("out");
    f.store
        .export(kept.hash, &out, false, none())
        .await
        .unwrap();
    assert_eq!(std::fs::read(out.join("big.bin")).unwrap(), big);

    // Unpinned, everything goes.
    assert_eq!(f.store.unpin("release").await.unwrap(), kept.hash);
    let report = gc(&f.store, false).await.unwrap();
    assert_eq!(report.removed, 4, "{report:?}"); // two trees, two files
    assert!(f.store.list().await.unwrap().is_empty());
    assert!(matches!(
        f.store.unpin("release").await,
        Err(CasError::PinNotFound(_))
    ));
}

#[tokio::test]
async fn gc_waits_for_an_unfinished_import_and_keeps_what_it_pinned() {
    let f = fixture().await;
    write(&f.root.join("x.bin"), &vec![1u8; 100_000]);
    write(&f.root.join("y.bin"), &vec![2u8; 100_000]);
    let (added, guard) = f
        .store
        .add_path(&f.root.join("x.bin"), none())
        .await
        .unwrap();
    let store = f.store.clone();
    let collecting = tokio::spawn(async move { gc(&store, false).await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !collecting.is_finished(),
        "gc ran while an import was unpinned"
    );
    // Pinned after the collection was asked for, then unprotected: kept.
    f.store.pin("x", added.hash).await.unwrap();
    drop(guard);
    collecting.await.unwrap().unwrap();
    assert!(f.store.has(added.hash).await.unwrap());
    // Unpinned and unprotected: removed.
    let (other, guard) = f
        .store
        .add_path(&f.root.join("y.bin"), none())
        .await
        .unwrap();
    drop(guard);
    gc(&f.store, false).await.unwrap();
    assert!(!f.store.has(other.hash).await.unwrap());
}

async fn gc(store: &Store, dry_run: bool) -> clive_cas::Result<clive_cas::GcReport> {
    let lock = store.lock_for_gc().await;
    store.gc(&lock, dry_run, &[]).await
}

#[tokio::test]
async fn fsck_finds_corrupted_and_missing_objects() {
    let f = fixture().await;
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    write(&f.root.join("d/big.bin"), &data);
    write(&f.root.join("d/other.bin"), &vec![3u8; 300_000]);
    let (tree_added, _g) = f.store.add_path(&f.root.join("d"), none()).await.unwrap();
    f.store.pin("d", tree_added.hash).await.unwrap();
    f.store.sync().await.unwrap();
    let clean = f.store.fsck(none(), &[]).await.unwrap();
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!(clean.objects, 3);

    let big = Hash::new(&data);
    let path = f.store.dir().join(format!("data/{}.data", big.to_hex()));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1_234_567] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let report = f.store.fsck(none(), &[]).await.unwrap();
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert_eq!(report.damaged[0].hash, big);
    assert!(
        report.damaged[0].problem.contains("do not match its hash"),
        "{report:?}"
    );

    let (lonely, _g2) = f.store.put_bytes(b"x".to_vec()).await.unwrap();
    let missing_tree = Tree::new(vec![Entry {
        name: "gone".into(),
        kind: EntryKind::File,
        hash: Hash::new(b"never stored"),
        size: 12,
    }])
    .unwrap();
    let (mt, _g3) = f.store.put_tree(&missing_tree).await.unwrap();
    f.store.pin("broken", mt).await.unwrap();
    let report = f.store.fsck(none(), &[]).await.unwrap();
    assert_eq!(report.missing.len(), 1, "{report:?}");
    assert!(report.missing[0].problem.contains("pin \"broken\"/gone"));
    assert!(f.store.has(lonely).await.unwrap());
}

#[tokio::test]
async fn refuses_special_files() {
    let f = fixture().await;
    let dir = f.root.join("with-fifo");
    std::fs::create_dir(&dir).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(dir.join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    let err = f.store.add_path(&dir, none()).await.unwrap_err();
    assert!(
        err.to_string().contains("fifo files are not supported"),
        "{err}"
    );
}
