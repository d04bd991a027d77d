use std::path::Path;

use super::call::file_arg;
use super::*;
use crate::control::wire::{Kind, decode_json, read_frame, write_json};

/// Every request variant, each named once beside its example: the macro
/// makes of the patterns one exhaustive match ([`variant`]), so a new
/// variant does not compile until it has a line here, and of the
/// expressions the examples ([`examples`]), every field set (options
/// present, lists of two where a list is taken, flags true) so that a field
/// serde drops would show.
macro_rules! every_request {
    ($($pattern:pat => $example:expr,)*) => {
        /// The variant of `request`, as its pattern is written.
        fn variant(request: &Request) -> &'static str {
            match request {
                $($pattern => stringify!($pattern),)*
            }
        }

        /// Every variant, as [`variant`] names them.
        const VARIANTS: &[&str] = &[$(stringify!($pattern)),*];

        /// One example of each variant.
        fn examples() -> Vec<Request> {
            vec![$($example),*]
        }
    };
}

/// A text field of an example.
fn s(text: &str) -> String {
    text.to_owned()
}

/// A path field of an example.
fn p(path: &str) -> PathBuf {
    PathBuf::from(path)
}

every_request! {
    Request::Id => Request::Id,
    Request::Stop => Request::Stop,
    Request::Status => Request::Status,
    Request::Store(StoreRequest::Add { .. }) => Request::Store(StoreRequest::Add {
        paths: vec![p("a"), p("-")],
        pin: Some(s("p")),
    }),
    Request::Store(StoreRequest::Cat { .. }) => Request::Store(StoreRequest::Cat {
        object: s("name:z/n/dir"),
        terminal: true,
    }),
    Request::Store(StoreRequest::Ls { .. }) => Request::Store(StoreRequest::Ls { object: s("p/dir") }),
    Request::Store(StoreRequest::Export { .. }) => Request::Store(StoreRequest::Export {
        object: s("pin:p"),
        dest: p("out"),
        force: true,
    }),
    Request::Store(StoreRequest::Pin(PinRequest::Add { .. })) => {
        Request::Store(StoreRequest::Pin(PinRequest::Add {
            name: s("p"),
            object: s("z/n"),
        }))
    },
    Request::Store(StoreRequest::Pin(PinRequest::Rm { .. })) => {
        Request::Store(StoreRequest::Pin(PinRequest::Rm { name: s("p") }))
    },
    Request::Store(StoreRequest::Pin(PinRequest::Ls)) => Request::Store(StoreRequest::Pin(PinRequest::Ls)),
    Request::Store(StoreRequest::Gc { .. }) => Request::Store(StoreRequest::Gc { dry_run: true }),
    Request::Store(StoreRequest::Fsck { .. }) => Request::Store(StoreRequest::Fsck { repair: true }),
    Request::Trust(TrustRequest::Grant { .. }) => Request::Trust(TrustRequest::Grant {
        key: s("bob.pub"),
        caps: s("fetch,push"),
        expires: s("30d"),
        delegate: 2,
        out: Some(p("cert")),
        agent: true,
    }),
    Request::Trust(TrustRequest::Import { .. }) => Request::Trust(TrustRequest::Import { file: p("cert") }),
    Request::Trust(TrustRequest::Ls) => Request::Trust(TrustRequest::Ls),
    Request::Trust(TrustRequest::Show { .. }) => Request::Trust(TrustRequest::Show { cert: s("abcd") }),
    Request::Trust(TrustRequest::Verify { .. }) => Request::Trust(TrustRequest::Verify {
        peer: s("SHA256:x"),
        cap: s("fetch"),
    }),
    Request::Trust(TrustRequest::Revoke { .. }) => Request::Trust(TrustRequest::Revoke {
        cert: s("abcd"),
        out: Some(p("rev")),
        agent: true,
    }),
    Request::Trust(TrustRequest::Roots(RootsRequest::Add { .. })) => {
        Request::Trust(TrustRequest::Roots(RootsRequest::Add {
            key: s("root.pub"),
            name: s("root"),
        }))
    },
    Request::Trust(TrustRequest::Roots(RootsRequest::Rm { .. })) => {
        Request::Trust(TrustRequest::Roots(RootsRequest::Rm { key: s("root.pub") }))
    },
    Request::Trust(TrustRequest::Roots(RootsRequest::Ls)) => {
        Request::Trust(TrustRequest::Roots(RootsRequest::Ls))
    },
    Request::Peers(PeerRequest::Invite { .. }) => Request::Peers(PeerRequest::Invite {
        caps: s("fetch"),
        expires: s("1h"),
        uses: 3,
        device: true,
        zone: Some(s("devices")),
    }),
    Request::Peers(PeerRequest::Join { .. }) => Request::Peers(PeerRequest::Join { ticket: s("t") }),
    Request::Peers(PeerRequest::Peers(PeersRequest::Ls)) => {
        Request::Peers(PeerRequest::Peers(PeersRequest::Ls))
    },
    Request::Peers(PeerRequest::Peers(PeersRequest::Add { .. })) => {
        Request::Peers(PeerRequest::Peers(PeersRequest::Add {
            peer: s("bob.pub"),
            addrs: vec![s("127.0.0.1:1"), s("127.0.0.1:2")],
        }))
    },
    Request::Peers(PeerRequest::Peers(PeersRequest::Rm { .. })) => {
        Request::Peers(PeerRequest::Peers(PeersRequest::Rm { peer: s("bob.pub") }))
    },
    Request::Peers(PeerRequest::Get { .. }) => Request::Peers(PeerRequest::Get {
        object: s("ab"),
        from: Some(s("SHA256:x")),
        out: Some(p("out")),
        force: true,
        pin: Some(s("p")),
    }),
    Request::Peers(PeerRequest::Push { .. }) => Request::Peers(PeerRequest::Push {
        object: s("p"),
        to: s("bob.pub"),
    }),
    Request::Name(NameRequest::Zone(ZoneRequest::Create { .. })) => {
        Request::Name(NameRequest::Zone(ZoneRequest::Create {
            zone: s("z"),
            keys: vec![s("k1"), s("k2")],
            threshold: 2,
            devices: vec![s("laptop.pub")],
            out: Some(p("root.json")),
            agent: true,
        }))
    },
    Request::Name(NameRequest::Zone(ZoneRequest::AddDevice { .. })) => {
        Request::Name(NameRequest::Zone(ZoneRequest::AddDevice {
            zone: s("z"),
            key: s("laptop.pub"),
            agent: true,
        }))
    },
    Request::Name(NameRequest::Zone(ZoneRequest::Ls)) => Request::Name(NameRequest::Zone(ZoneRequest::Ls)),
    Request::Name(NameRequest::Zone(ZoneRequest::Show { .. })) => {
        Request::Name(NameRequest::Zone(ZoneRequest::Show { zone: s("z") }))
    },
    Request::Name(NameRequest::Publish { .. }) => Request::Name(NameRequest::Publish {
        name: s("z/n"),
        target: s("dir"),
        more: vec![s("z/m"), s("file")],
        agent: true,
        receipt: Some(s("r")),
    }),
    Request::Name(NameRequest::Unpublish { .. }) => Request::Name(NameRequest::Unpublish {
        name: s("z/n"),
        agent: true,
        receipt: Some(s("r")),
    }),
    Request::Name(NameRequest::Receipt { .. }) => Request::Name(NameRequest::Receipt { receipt: s("r") }),
    Request::Name(NameRequest::Delegate { .. }) => Request::Name(NameRequest::Delegate {
        zone: s("z"),
        prefix: s("beta/"),
        to: s("bob.pub"),
        agent: true,
    }),
    Request::Name(NameRequest::Rotate { .. }) => Request::Name(NameRequest::Rotate {
        zone: s("z"),
        role: s("targets"),
        keys: vec![s("k1"), s("k2")],
        threshold: Some(1),
        out: Some(p("root.json")),
        agent: true,
    }),
    Request::Name(NameRequest::Root(RootRequest::Sign { .. })) => {
        // Both set, which the command line refuses but the wire carries.
        Request::Name(NameRequest::Root(RootRequest::Sign {
            file: p("root.json"),
            key: Some(p("id_ed25519")),
            agent: true,
        }))
    },
    Request::Name(NameRequest::Root(RootRequest::Commit { .. })) => {
        Request::Name(NameRequest::Root(RootRequest::Commit {
            zone: s("z"),
            file: p("root.json"),
        }))
    },
    Request::Name(NameRequest::Follow { .. }) => Request::Name(NameRequest::Follow {
        source: s("ticket"),
        mirror: Some(s("http://127.0.0.1:1/")),
        alias: Some(s("y")),
    }),
    Request::Name(NameRequest::Refresh { .. }) => Request::Name(NameRequest::Refresh { zone: s("z") }),
    Request::Name(NameRequest::Resolve { .. }) => Request::Name(NameRequest::Resolve {
        name: s("z/n"),
        offline: true,
    }),
    Request::Name(NameRequest::History { .. }) => Request::Name(NameRequest::History { name: s("z/n") }),
    Request::Name(NameRequest::Export { .. }) => Request::Name(NameRequest::Export {
        zone: s("z"),
        dir: p("repo"),
    }),
    Request::Name(NameRequest::Override { .. }) => {
        // Both set, as for `root sign`.
        Request::Name(NameRequest::Override {
            name: s("z/n"),
            target: Some(s("file")),
            clear: true,
        })
    },
    Request::Exec(_) => Request::Exec(ExecArgs {
        on: Some(s("os=macos,arch=aarch64")),
        inputs: vec![s("src=./src"), s("lib=release/lib")],
        outputs: vec![s("app")],
        env: vec![s("PATH=/bin")],
        workdir: s("src"),
        timeout: s("10m"),
        sandbox: Some(s("landlock")),
        no_cache: true,
        out: Some(p("out")),
        argv: vec![s("make"), s("test")],
    }),
    Request::Job(JobRequest::Submit { .. }) => Request::Job(JobRequest::Submit {
        file: p("JOB.toml"),
        on: Some(s("local")),
        no_cache: true,
        out: Some(p("out")),
    }),
    Request::Job(JobRequest::Run { .. }) => Request::Job(JobRequest::Run {
        file: p("site.toml"),
        step: Some(s("sidebar")),
        on: Some(s("local")),
        no_cache: true,
        out: Some(p("out")),
        check: true,
        watch: true,
        detach: true,
    }),
    Request::Job(JobRequest::Watches) => Request::Job(JobRequest::Watches),
    Request::Job(JobRequest::Unwatch { .. }) => Request::Job(JobRequest::Unwatch { id: s("ab12") }),
    Request::Job(JobRequest::Ls) => Request::Job(JobRequest::Ls),
    Request::Job(JobRequest::Status { .. }) => Request::Job(JobRequest::Status { id: s("ab12") }),
    Request::Job(JobRequest::Logs { .. }) => Request::Job(JobRequest::Logs { id: s("ab12") }),
    Request::Job(JobRequest::Attach { .. }) => Request::Job(JobRequest::Attach {
        id: s("ab12"),
        stdout_from: 10,
        stderr_from: 2,
        out: Some(p("out")),
    }),
    Request::Job(JobRequest::Cancel { .. }) => Request::Job(JobRequest::Cancel { id: s("ab12") }),
    Request::Job(JobRequest::Result { .. }) => Request::Job(JobRequest::Result {
        id: s("ab12"),
        out: Some(p("result.json")),
    }),
    Request::Sync(SyncRequest::Follow { .. }) => Request::Sync(SyncRequest::Follow { entry: s("z/rel") }),
    Request::Sync(SyncRequest::Unfollow { .. }) => Request::Sync(SyncRequest::Unfollow { entry: s("z/rel") }),
    Request::Sync(SyncRequest::Ls) => Request::Sync(SyncRequest::Ls),
    Request::Sync(SyncRequest::Now { .. }) => Request::Sync(SyncRequest::Now { peer: Some(s("bob.pub")) }),
    Request::Sync(SyncRequest::Status { .. }) => Request::Sync(SyncRequest::Status { wait: Some(s("10s")) }),
    Request::Sync(SyncRequest::Folder { .. }) => Request::Sync(SyncRequest::Folder {
        action: Some(crate::api::sync::FolderOp::Rm { dir: "notes".into() }),
        dir: None,
        name: None,
    }),
}

#[tokio::test]
async fn every_request_variant_round_trips_through_the_wire() {
    let mut seen = std::collections::BTreeSet::new();
    for request in examples() {
        seen.insert(variant(&request));
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
    let missing: Vec<&str> = VARIANTS
        .iter()
        .copied()
        .filter(|v| !seen.contains(v))
        .collect();
    assert!(
        missing.is_empty(),
        "variants without an example: {missing:?}"
    );
}

#[test]
fn only_state_lookups_are_read_only() {
    let read_only: Vec<&str> = examples()
        .iter()
        .filter(|r| r.read_only())
        .map(variant)
        .collect();
    assert_eq!(
        read_only,
        [
            "Request::Name(NameRequest::Zone(ZoneRequest::Ls))",
            "Request::Name(NameRequest::Receipt { .. })",
            "Request::Name(NameRequest::Resolve { .. })",
            "Request::Name(NameRequest::History { .. })",
        ]
    );
}

#[test]
fn replies_round_trip_as_json() {
    for reply in [
        Reply::Store(StoreReply::Written { bytes: 3 }),
        Reply::Store(StoreReply::Added(Vec::new())),
        Reply::Name(NameReply::NamesPublished(Vec::new())),
    ] {
        let json = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<Reply>(&json).unwrap(), reply);
    }
    assert_eq!(
        serde_json::to_string(&Reply::Store(StoreReply::Written { bytes: 3 })).unwrap(),
        r#"{"store":{"reply":"written","value":{"bytes":3}}}"#
    );
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
