use super::*;
use crate::control::wire::{Kind, decode_json, read_frame, write_json};

/// The index of `request`'s variant among all of them. The match is
/// exhaustive on purpose: a new variant does not compile until it has an
/// index here, and then [`every_request_variant_round_trips_through_the_wire`]
/// fails until [`examples`] has one of it.
fn variant(request: &Request) -> usize {
    match request {
        Request::Id => 0,
        Request::Stop => 1,
        Request::Status => 2,
        Request::Store(r) => match r {
            StoreRequest::Add { .. } => 3,
            StoreRequest::Cat { .. } => 4,
            StoreRequest::Ls { .. } => 5,
            StoreRequest::Export { .. } => 6,
            StoreRequest::Pin(PinRequest::Add { .. }) => 7,
            StoreRequest::Pin(PinRequest::Rm { .. }) => 8,
            StoreRequest::Pin(PinRequest::Ls) => 9,
            StoreRequest::Gc { .. } => 10,
            StoreRequest::Fsck { .. } => 11,
        },
        Request::Trust(r) => match r {
            TrustRequest::Grant { .. } => 12,
            TrustRequest::Import { .. } => 13,
            TrustRequest::Ls => 14,
            TrustRequest::Show { .. } => 15,
            TrustRequest::Verify { .. } => 16,
            TrustRequest::Revoke { .. } => 17,
            TrustRequest::Roots(RootsRequest::Add { .. }) => 18,
            TrustRequest::Roots(RootsRequest::Rm { .. }) => 19,
            TrustRequest::Roots(RootsRequest::Ls) => 20,
        },
        Request::Peers(r) => match r {
            PeerRequest::Invite { .. } => 21,
            PeerRequest::Join { .. } => 22,
            PeerRequest::Peers(PeersRequest::Ls) => 23,
            PeerRequest::Peers(PeersRequest::Add { .. }) => 24,
            PeerRequest::Peers(PeersRequest::Rm { .. }) => 25,
            PeerRequest::Get { .. } => 26,
            PeerRequest::Push { .. } => 27,
        },
        Request::Name(r) => match r {
            NameRequest::Zone(ZoneRequest::Create { .. }) => 28,
            NameRequest::Zone(ZoneRequest::Ls) => 29,
            NameRequest::Zone(ZoneRequest::Show { .. }) => 30,
            NameRequest::Publish { .. } => 31,
            NameRequest::Unpublish { .. } => 32,
            NameRequest::Receipt { .. } => 33,
            NameRequest::Delegate { .. } => 34,
            NameRequest::Rotate { .. } => 35,
            NameRequest::Root(RootRequest::Sign { .. }) => 36,
            NameRequest::Root(RootRequest::Commit { .. }) => 37,
            NameRequest::Follow { .. } => 38,
            NameRequest::Refresh { .. } => 39,
            NameRequest::Resolve { .. } => 40,
            NameRequest::History { .. } => 41,
            NameRequest::Export { .. } => 42,
            NameRequest::Override { .. } => 43,
        },
    }
}

/// How many variants [`variant`] numbers.
const VARIANTS: usize = 44;

/// One request of every variant, with every field set (options present,
/// flags true), so a field serde drops would show.
fn examples() -> Vec<Request> {
    let s = |t: &str| t.to_owned();
    let p = |t: &str| PathBuf::from(t);
    let store = Request::Store;
    let trust = Request::Trust;
    let peers = Request::Peers;
    let name = Request::Name;
    vec![
        Request::Id,
        Request::Stop,
        Request::Status,
        store(StoreRequest::Add {
            paths: vec![p("a"), p("-")],
            pin: Some(s("p")),
        }),
        store(StoreRequest::Cat {
            object: s("name:z/n/dir"),
            terminal: true,
        }),
        store(StoreRequest::Ls { object: s("p/dir") }),
        store(StoreRequest::Export {
            object: s("pin:p"),
            dest: p("out"),
            force: true,
        }),
        store(StoreRequest::Pin(PinRequest::Add {
            name: s("p"),
            object: s("z/n"),
        })),
        store(StoreRequest::Pin(PinRequest::Rm { name: s("p") })),
        store(StoreRequest::Pin(PinRequest::Ls)),
        store(StoreRequest::Gc { dry_run: true }),
        store(StoreRequest::Fsck { repair: true }),
        trust(TrustRequest::Grant {
            key: s("bob.pub"),
            caps: s("fetch,push"),
            expires: s("30d"),
            delegate: 2,
            out: Some(p("cert")),
            agent: true,
        }),
        trust(TrustRequest::Import { file: p("cert") }),
        trust(TrustRequest::Ls),
        trust(TrustRequest::Show { cert: s("abcd") }),
        trust(TrustRequest::Verify {
            peer: s("SHA256:x"),
            cap: s("fetch"),
        }),
        trust(TrustRequest::Revoke {
            cert: s("abcd"),
            out: Some(p("rev")),
            agent: true,
        }),
        trust(TrustRequest::Roots(RootsRequest::Add {
            key: s("root.pub"),
            name: s("root"),
        })),
        trust(TrustRequest::Roots(RootsRequest::Rm { key: s("root.pub") })),
        trust(TrustRequest::Roots(RootsRequest::Ls)),
        peers(PeerRequest::Invite {
            caps: s("fetch"),
            expires: s("1h"),
            uses: 3,
        }),
        peers(PeerRequest::Join { ticket: s("t") }),
        peers(PeerRequest::Peers(PeersRequest::Ls)),
        peers(PeerRequest::Peers(PeersRequest::Add {
            peer: s("bob.pub"),
            addrs: vec![s("127.0.0.1:1"), s("127.0.0.1:2")],
        })),
        peers(PeerRequest::Peers(PeersRequest::Rm { peer: s("bob.pub") })),
        peers(PeerRequest::Get {
            object: s("ab"),
            from: Some(s("SHA256:x")),
            out: Some(p("out")),
            force: true,
            pin: Some(s("p")),
        }),
        peers(PeerRequest::Push {
            object: s("p"),
            to: s("bob.pub"),
        }),
        name(NameRequest::Zone(ZoneRequest::Create {
            zone: s("z"),
            keys: vec![s("k1"), s("k2")],
            threshold: 2,
            out: Some(p("root.json")),
            agent: true,
        })),
        name(NameRequest::Zone(ZoneRequest::Ls)),
        name(NameRequest::Zone(ZoneRequest::Show { zone: s("z") })),
        name(NameRequest::Publish {
            name: s("z/n"),
            target: s("dir"),
            more: vec![s("z/m"), s("file")],
            agent: true,
            receipt: Some(s("r")),
        }),
        name(NameRequest::Unpublish {
            name: s("z/n"),
            agent: true,
            receipt: Some(s("r")),
        }),
        name(NameRequest::Receipt { receipt: s("r") }),
        name(NameRequest::Delegate {
            zone: s("z"),
            prefix: s("beta/"),
            to: s("bob.pub"),
            agent: true,
        }),
        name(NameRequest::Rotate {
            zone: s("z"),
            role: s("targets"),
            keys: vec![s("k1")],
            threshold: Some(1),
            out: Some(p("root.json")),
            agent: true,
        }),
        name(NameRequest::Root(RootRequest::Sign {
            file: p("root.json"),
            key: Some(p("id_ed25519")),
            agent: false,
        })),
        name(NameRequest::Root(RootRequest::Commit {
            zone: s("z"),
            file: p("root.json"),
        })),
        name(NameRequest::Follow {
            source: s("ticket"),
            mirror: Some(s("http://127.0.0.1:1/")),
            alias: Some(s("y")),
        }),
        name(NameRequest::Refresh { zone: s("z") }),
        name(NameRequest::Resolve {
            name: s("z/n"),
            offline: true,
        }),
        name(NameRequest::History { name: s("z/n") }),
        name(NameRequest::Export {
            zone: s("z"),
            dir: p("repo"),
        }),
        name(NameRequest::Override {
            name: s("z/n"),
            target: Some(s("file")),
            clear: false,
        }),
    ]
}

#[tokio::test]
async fn every_request_variant_round_trips_through_the_wire() {
    let examples = examples();
    let mut seen = [false; VARIANTS];
    for request in examples {
        seen[variant(&request)] = true;
        let call = Call {
            cwd: "/tmp".into(),
            ssh_auth_sock: Some("/tmp/agent".into()),
            request,
        };
        let mut wire = Vec::new();
        write_json(&mut wire, Kind::Request, &call).await.unwrap();
        let frame = read_frame(&mut &wire[..]).await.unwrap().unwrap();
        assert_eq!(frame.kind, Kind::Request);
        let back: Call = decode_json("request", &frame.payload).unwrap();
        assert_eq!(back, call);
    }
    let missing: Vec<usize> = (0..VARIANTS).filter(|i| !seen[*i]).collect();
    assert!(
        missing.is_empty(),
        "variants without an example: {missing:?}"
    );
}

#[test]
fn only_state_lookups_are_read_only() {
    let read_only: Vec<usize> = examples()
        .iter()
        .filter(|r| r.read_only())
        .map(variant)
        .collect();
    assert_eq!(read_only, [29, 33, 40, 41]);
}

#[test]
fn replies_round_trip_as_json() {
    for reply in [Reply::Written { bytes: 3 }, Reply::Added(Vec::new())] {
        let json = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<Reply>(&json).unwrap(), reply);
    }
}

#[test]
fn hostile_requests_are_errors() {
    for text in [
        "",
        "{}",
        r#"{"op":"nope"}"#,
        r#"{"op":"store","store_op":"cat"}"#,
        r#"{"op":"trust","trust_op":"grant","key":1}"#,
        r#"{"op":"store"}"#,
        &"[".repeat(100_000),
    ] {
        assert!(serde_json::from_str::<Request>(text).is_err(), "{text}");
    }
}

#[test]
fn add_of_several_paths_is_one_call_each_and_pin_names_one() {
    let add = |paths: &[&str], pin: Option<&str>| {
        Request::Store(StoreRequest::Add {
            paths: paths.iter().map(PathBuf::from).collect(),
            pin: pin.map(str::to_owned),
        })
    };
    let calls = add(&["a", "-"], None).into_calls().unwrap();
    assert_eq!(calls, [add(&["a"], None), add(&["-"], None)]);
    assert!(calls[1].reads_stdin() && !calls[0].reads_stdin());
    assert_eq!(calls[1].doing().as_deref(), Some("adding standard input"));
    assert!(matches!(
        add(&["a", "b"], Some("p")).into_calls(),
        Err(ApiError::Invalid { .. })
    ));
}

#[test]
fn file_args_resolve_against_the_client_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bob.pub"), "x").unwrap();
    let resolved = file_arg(dir.path(), "bob.pub".into());
    assert_eq!(Path::new(&resolved), dir.path().join("bob.pub"));
    for kept in ["SHA256:abc", "missing.pub", &"ab".repeat(32)] {
        assert_eq!(file_arg(dir.path(), kept.into()), kept);
    }
}

#[test]
fn the_read_only_decision_and_the_read_only_answer_agree() {
    let dir = tempfile::tempdir().unwrap();
    let db = redb::Database::create(dir.path().join("state.redb")).unwrap();
    let zones = clive_naming::Zones::new(Arc::new(db));
    for request in examples() {
        let Request::Name(name) = &request else {
            assert!(!request.read_only(), "{request:?}");
            continue;
        };
        assert_eq!(
            request.read_only(),
            names::read_only_reply(&zones, None, name, 0).is_some(),
            "{request:?}"
        );
    }
}
