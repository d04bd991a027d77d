//! OBJECT arguments through the real binary: a signed `ZONE/NAME`, with a
//! path inside its tree, serves `cat`, `ls`, `export`, `pin add`, `get` and
//! `push` as a hash or a pin does; it resolves as `name resolve` does
//! (overrides included); a word that is both a pin and a zone is refused
//! with both readings, and each explicit spelling (`pin:`, `name:`) works.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::path::Path;

use clive_tests::{TestNode, admit, assert_same_tree};

fn b3(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// A small tree: `README`, `bin/tool`.
fn make_app(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("README"), "read me\n").unwrap();
    std::fs::write(dir.join("bin/tool"), "#!/bin/sh\necho tool\n").unwrap();
}

/// A node with zone `rel` publishing `rel/app` (the tree) and
/// `rel/docs/readme` (a name holding `/`, a blob); returns the tree's hash.
fn publisher(node: &TestNode) -> String {
    let app = node.scratch("app");
    make_app(&app);
    node.ok(["name", "zone", "create", "rel"]);
    let published = node.json(["name", "publish", "rel/app", app.to_str().unwrap()]);
    node.ok([
        "name",
        "publish",
        "rel/docs/readme",
        app.join("README").to_str().unwrap(),
    ]);
    published["hash"].as_str().expect("a hash").to_owned()
}

#[test]
fn a_named_tree_serves_cat_ls_export_and_pin_add() {
    let node = TestNode::new();
    let tree = publisher(&node);

    // A path inside the named tree, and a name that holds a `/` itself.
    assert_eq!(node.ok(["cat", "rel/app/README"]), "read me\n");
    assert_eq!(
        node.ok(["cat", "rel/app/bin/tool"]),
        "#!/bin/sh\necho tool\n"
    );
    assert_eq!(node.ok(["cat", "rel/docs/readme"]), "read me\n");
    // `ls` of the name lists what `ls` of its hash lists.
    assert_eq!(node.ok(["ls", "rel/app"]), node.ok(["ls", &tree]));
    let bin = node.ok(["ls", "rel/app/bin"]);
    assert!(bin.contains(&b3(b"#!/bin/sh\necho tool\n")), "{bin}");
    assert!(bin.ends_with(" tool\n"), "{bin}");

    let out = node.scratch("out");
    let exported = node.json(["export", "rel/app", out.to_str().unwrap()]);
    assert_eq!(exported["hash"], tree.as_str(), "{exported}");
    assert_same_tree(&node.scratch("app"), &out);

    let pinned = node.json(["pin", "add", "tool", "rel/app/bin/tool"]);
    assert_eq!(pinned["hash"], b3(b"#!/bin/sh\necho tool\n").as_str());
    let pinned = node.json(["pin", "add", "app", "rel/app"]);
    assert_eq!(pinned["hash"], tree.as_str());

    // What is not there is said plainly.
    let err = node.fails(["cat", "rel/nope"]);
    assert!(
        err.contains("rel/nope is not published in zone rel"),
        "{err}"
    );
    let err = node.fails(["cat", "rel/app/nope"]);
    assert!(err.contains("nope"), "{err}");
    let err = node.fails(["cat", "name:nozone/x"]);
    assert!(err.contains("no zone \"nozone\""), "{err}");
}

#[test]
fn a_name_resolves_as_name_resolve_does_overrides_included() {
    let node = TestNode::new();
    publisher(&node);
    let other = node.scratch("other.txt");
    std::fs::write(&other, "overridden\n").unwrap();
    node.ok([
        "name",
        "override",
        "rel/docs/readme",
        other.to_str().unwrap(),
    ]);
    let resolved = node.ok(["name", "resolve", "rel/docs/readme"]);
    assert_eq!(resolved.trim(), b3(b"overridden\n"));
    assert_eq!(node.ok(["cat", "rel/docs/readme"]), "overridden\n");
    node.ok(["name", "override", "rel/docs/readme", "--clear"]);
    assert_eq!(node.ok(["cat", "rel/docs/readme"]), "read me\n");
}

#[test]
fn a_pin_that_is_also_a_zone_is_refused_with_both_readings_and_each_spelling_works() {
    let node = TestNode::new();
    let tree = publisher(&node);
    // A pin named like the zone, holding the tree's `bin`.
    node.ok(["pin", "add", "rel", "rel/app/bin"]);

    for command in [
        &["cat", "rel/tool"][..],
        &["ls", "rel/app"],
        &["pin", "add", "x", "rel/app"],
        &["export", "rel/app", "out"],
    ] {
        let err = node.fails(command);
        assert!(
            err.contains("is ambiguous")
                && err.contains("pin:rel/")
                && err.contains("means the pin rel")
                && err.contains("name:rel/")
                && err.contains("means the signed name rel/"),
            "{command:?}: {err}"
        );
    }
    assert!(!node.scratch("out").exists());
    let err = node.fails(["--json", "cat", "rel/tool"]);
    let err: serde_json::Value = serde_json::from_str(err.trim()).expect("a JSON error");
    assert!(
        err["error"].as_str().unwrap().contains("pin:rel/tool"),
        "{err}"
    );

    // Each spelling reads one way only.
    assert_eq!(node.ok(["cat", "pin:rel/tool"]), "#!/bin/sh\necho tool\n");
    assert_eq!(node.ok(["cat", "name:rel/app/README"]), "read me\n");
    assert_eq!(node.ok(["ls", "name:rel/app"]), node.ok(["ls", &tree]));
    assert_eq!(
        node.ok(["ls", "pin:rel"]),
        node.ok(["ls", "name:rel/app/bin"])
    );
    let err = node.fails(["cat", "pin:rel/README"]);
    assert!(!err.contains("ambiguous"), "{err}");
    let err = node.fails(["cat", "name:rel/tool"]);
    assert!(
        err.contains("rel/tool is not published in zone rel"),
        "{err}"
    );
    // A hash, as the pin spelling, with a path inside it.
    assert_eq!(node.ok(["cat", &format!("pin:{tree}/README")]), "read me\n");
    // Without a `/` there is no zone reading: the pin, as always.
    assert_eq!(node.ok(["ls", "rel"]), node.ok(["ls", "pin:rel"]));
}

#[test]
fn get_and_push_take_a_zone_name() {
    let (a, b) = (TestNode::loopback(), TestNode::loopback());
    let _a_daemon = a.start_daemon();
    let _b_daemon = b.start_daemon();
    let a_id = a.json(["id"])["endpoint_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    admit(&a, &b, "fetch,push");
    let tree = publisher(&a);

    let ticket = a.json(["name", "zone", "show", "rel"])["ticket"]
        .as_str()
        .expect("a ticket")
        .to_owned();
    b.ok(["name", "follow", &ticket]);
    // B has the name but not the content: `get` resolves, then fetches.
    b.fails(["cat", "rel/app/README"]);
    let out = b.scratch("out");
    let got = b.json([
        "get",
        "rel/app",
        "--from",
        &a_id,
        "-o",
        out.to_str().unwrap(),
        "--pin",
        "app",
    ]);
    assert_eq!(got["hash"], tree.as_str(), "{got}");
    assert_same_tree(&a.scratch("app"), &out);
    assert_eq!(b.ok(["cat", "rel/app/README"]), "read me\n");
    let pins = b.ok(["pin", "ls"]);
    assert!(pins.contains(&tree) && pins.contains("app"), "{pins}");

    // B pushes what one of its own names points at to A.
    let note = b.scratch("note");
    std::fs::write(&note, "from B\n").unwrap();
    b.ok(["name", "zone", "create", "mine"]);
    b.ok(["name", "publish", "mine/note", note.to_str().unwrap()]);
    b.ok(["push", "mine/note", "--to", &a_id]);
    assert_eq!(a.ok(["cat", &b3(b"from B\n")]), "from B\n");
}
