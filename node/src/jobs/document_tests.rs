use proptest::prelude::*;

use super::*;

fn hash(n: u8) -> Hash {
    Hash::new([n])
}

/// A document with every kind of field filled in.
fn sample() -> JobDoc {
    JobDoc {
        version: JOB_VERSION,
        argv: vec![
            "make".into(),
            "-C".into(),
            "src".into(),
            "all\n\"quoted\"".into(),
        ],
        env: [
            ("PATH", "/usr/bin:/bin"),
            ("CC", "cc"),
            ("LANG", "C.UTF-8 é"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        inputs: [
            (
                "src",
                Input {
                    hash: hash(1),
                    name: None,
                },
            ),
            (
                "vendor/lib",
                Input {
                    hash: hash(2),
                    name: Some("zone/lib".into()),
                },
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        workdir: "build".into(),
        platform: Requirements::parse("os=linux,feature=gpu").unwrap(),
        timeout_ms: 600_000,
        outputs: vec!["app".into(), "out/log.txt".into()],
        limits: Limits::default(),
        sandbox: SandboxLevel::Landlock,
    }
}

/// The smallest valid document.
fn minimal() -> JobDoc {
    JobDoc {
        version: 1,
        argv: vec!["true".into()],
        env: BTreeMap::new(),
        inputs: BTreeMap::new(),
        workdir: String::new(),
        platform: Requirements::default(),
        timeout_ms: 1000,
        outputs: Vec::new(),
        limits: Limits {
            output_bytes: 1,
            log_bytes: 2,
        },
        sandbox: SandboxLevel::None,
    }
}

/// `value` with every object's keys written in reverse order.
pub(crate) fn reversed_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| b.0.cmp(a.0));
            let items: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{} : {}", Value::String(k.clone()), reversed_json(v)))
                .collect();
            format!("{{ {} }}", items.join(" , "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(reversed_json).collect();
            format!("[ {} ]", items.join(", "))
        }
        scalar => scalar.to_string(),
    }
}

/// `doc`'s encoding with `edit` applied to its JSON.
fn edited(doc: &JobDoc, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&doc.encode()).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn round_trips_and_the_id_is_blake3_of_the_encoding() {
    for doc in [sample(), minimal()] {
        let bytes = doc.encode();
        assert_eq!(JobDoc::decode(&bytes).unwrap(), doc);
        assert_eq!(doc.id().0.as_bytes(), blake3::hash(&bytes).as_bytes());
        assert_eq!(doc.id().to_string(), blake3::hash(&bytes).to_hex().as_str());
        assert_eq!(doc.id().to_string().parse::<JobId>().unwrap(), doc.id());
    }
    assert_ne!(sample().id(), minimal().id());
    assert!(matches!("abc".parse::<JobId>(), Err(DocError::BadId(_))));
}

#[test]
fn the_canonical_bytes_are_fixed() {
    let text = String::from_utf8(minimal().encode()).unwrap();
    assert_eq!(
        text,
        r#"{"argv":["true"],"env":{},"inputs":{},"limits":{"log_bytes":2,"output_bytes":1},"outputs":[],"platform":{},"sandbox":"none","timeout_ms":1000,"version":1,"workdir":""}"#
    );
    let text = String::from_utf8(sample().encode()).unwrap();
    assert!(
        text.contains(r#""argv":["make","-C","src","all\n\"quoted\""]"#),
        "{text}"
    );
    assert!(text.contains(&format!(
        r#""vendor/lib":{{"hash":"{}","name":"zone/lib"}}"#,
        hash(2).to_hex()
    )));
    assert!(
        text.contains(r#""platform":{"features":["gpu"],"os":"linux"}"#),
        "{text}"
    );
}

#[test]
fn the_encoding_does_not_depend_on_the_input_key_order() {
    let doc = sample();
    let value: Value = serde_json::from_slice(&doc.encode()).unwrap();
    let shuffled = reversed_json(&value);
    assert_ne!(shuffled.as_bytes(), doc.encode().as_slice());
    let decoded = JobDoc::decode(shuffled.as_bytes()).unwrap();
    assert_eq!(decoded.encode(), doc.encode());
    assert_eq!(decoded.id(), doc.id());
}

#[test]
fn unknown_fields_and_versions_are_refused() {
    let doc = sample();
    for (at, bytes) in [
        (
            "top",
            edited(&doc, |v| {
                v["extra"] = 1.into();
            }),
        ),
        (
            "limits",
            edited(&doc, |v| {
                v["limits"]["cpu"] = 1.into();
            }),
        ),
        (
            "input",
            edited(&doc, |v| {
                v["inputs"]["src"]["mode"] = "rw".into();
            }),
        ),
        (
            "platform",
            edited(&doc, |v| {
                v["platform"]["ram"] = "1G".into();
            }),
        ),
    ] {
        let err = JobDoc::decode(&bytes).unwrap_err();
        assert!(
            matches!(&err, DocError::Malformed(m) if m.contains("unknown field")),
            "{at}: {err}"
        );
    }
    let v2 = edited(&doc, |v| {
        v["version"] = 2.into();
        v["new_field"] = true.into();
    });
    let err = JobDoc::decode(&v2).unwrap_err();
    assert_eq!(err, DocError::UnknownVersion(2));
    assert!(
        err.to_string().contains("version 2 is not supported"),
        "{err}"
    );
    let none = edited(&doc, |v| {
        v.as_object_mut().unwrap().remove("version");
    });
    assert!(matches!(JobDoc::decode(&none), Err(DocError::Malformed(m)) if m.contains("version")));
    let missing = edited(&doc, |v| {
        v.as_object_mut().unwrap().remove("argv");
    });
    assert!(matches!(JobDoc::decode(&missing), Err(DocError::Malformed(m)) if m.contains("argv")));
    let bad_hash = edited(&doc, |v| v["inputs"]["src"]["hash"] = "xyz".into());
    assert!(
        matches!(JobDoc::decode(&bad_hash), Err(DocError::Malformed(m)) if m.contains("not a hash"))
    );
    let bad_level = edited(&doc, |v| v["sandbox"] = "jail".into());
    assert!(JobDoc::decode(&bad_level).is_err());
}

#[test]
fn oversized_and_garbage_documents_are_refused() {
    let mut big = minimal();
    big.argv.push("x".repeat(MAX_JOB_LEN));
    let bytes = big.encode();
    assert_eq!(
        JobDoc::decode(&bytes).unwrap_err(),
        DocError::TooLarge { len: bytes.len() }
    );
    for garbage in [
        &b""[..],
        b"null",
        b"[]",
        b"{",
        b"\xff\xfe",
        b"{\"version\":1}",
        b"1e400",
    ] {
        assert!(JobDoc::decode(garbage).is_err(), "{garbage:?}");
    }
    // Nesting far deeper than any document is refused, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(JobDoc::decode(deep.as_bytes()).is_err());
}

/// Applies `edit` to a valid document and checks validate() and decode()
/// refuse it with an error whose message contains `message`.
fn refused(edit: impl FnOnce(&mut JobDoc), message: &str) -> DocError {
    let mut doc = sample();
    edit(&mut doc);
    let err = doc.validate().unwrap_err();
    assert!(
        err.to_string().contains(message),
        "expected {message:?} in {err:?}: {err}"
    );
    if doc.encode().len() <= MAX_JOB_LEN {
        assert_eq!(JobDoc::decode(&doc.encode()).unwrap_err(), err);
    }
    err
}

fn input(n: u8) -> Input {
    Input {
        hash: hash(n),
        name: None,
    }
}

#[test]
fn every_path_problem_is_refused_naming_the_path() {
    let cases: &[(&str, PathProblem)] = &[
        ("/etc", PathProblem::Absolute),
        ("../up", PathProblem::DotDot),
        ("a/../b", PathProblem::DotDot),
        ("./a", PathProblem::Dot),
        ("a/.", PathProblem::Dot),
        ("a//b", PathProblem::EmptyComponent),
        ("a/", PathProblem::EmptyComponent),
        ("a\0b", PathProblem::Nul),
        ("a\\b", PathProblem::Backslash),
    ];
    for &(path, problem) in cases {
        let p = path.to_owned();
        let err = refused(|d| d.outputs = vec![p], &problem.to_string());
        assert!(matches!(err, DocError::Path { what: "output", problem: q, .. } if q == problem));
        let p = path.to_owned();
        let err = refused(
            |d| {
                d.inputs.insert(p, input(9));
            },
            "input mount",
        );
        assert!(
            matches!(err, DocError::Path { problem: q, .. } if q == problem),
            "{err}"
        );
        let p = path.to_owned();
        let err = refused(|d| d.workdir = p, "workdir");
        assert!(
            matches!(err, DocError::Path { problem: q, .. } if q == problem),
            "{err}"
        );
    }
    refused(
        |d| {
            d.inputs.insert(String::new(), input(9));
        },
        "is empty",
    );
    refused(|d| d.outputs = vec![String::new()], "is empty");
    refused(
        |d| d.outputs = vec!["a".repeat(MAX_COMPONENT_LEN + 1)],
        "is too long",
    );
    refused(
        |d| d.outputs = vec!["a/".repeat(MAX_PATH_LEN / 2 + 1) + "a"],
        "is too long",
    );
}

#[test]
fn mounts_over_each_other_or_the_workdir_are_refused() {
    let err = refused(
        |d| {
            d.inputs.insert("src/gen".into(), input(9));
        },
        "mounted inside input \"src\"",
    );
    assert_eq!(
        err,
        DocError::NestedInputs {
            outer: "src".into(),
            inner: "src/gen".into()
        }
    );
    refused(
        |d| {
            d.inputs.insert("vendor".into(), input(9));
        },
        "mounted inside input \"vendor\"",
    );
    // A sibling that shares a prefix is fine.
    let mut doc = sample();
    doc.inputs.insert("src-extra".into(), input(9));
    doc.inputs.insert("srcs/x".into(), input(9));
    doc.validate().unwrap();

    let err = refused(
        |d| d.workdir = "src".into(),
        "workdir \"src\" is inside input \"src\"",
    );
    assert!(matches!(err, DocError::WorkdirInInput { .. }));
    refused(|d| d.workdir = "src/sub".into(), "is inside input \"src\"");
    refused(
        |d| {
            d.inputs.insert("build".into(), input(9));
        },
        "workdir \"build\" is inside input \"build\"",
    );
    refused(
        |d| {
            d.workdir = "a/b/c".into();
            d.inputs.insert("a/b".into(), input(9));
        },
        "inside input \"a/b\"",
    );
    // An input inside the workdir is what inputs are for.
    let mut doc = sample();
    doc.inputs.insert("build/dep".into(), input(9));
    doc.validate().unwrap();
}

#[test]
fn outputs_inside_inputs_unsorted_or_repeated_are_refused() {
    let err = refused(
        |d| {
            d.workdir = String::new();
            d.outputs = vec!["src/main.o".into()];
        },
        "output \"src/main.o\" is inside input \"src\"",
    );
    assert!(matches!(err, DocError::OutputInInput { .. }));
    refused(
        |d| {
            d.inputs.insert("build/dep".into(), input(9));
            d.outputs = vec!["dep".into()];
        },
        "output \"dep\" is inside input \"build/dep\"",
    );
    refused(|d| d.outputs = vec!["b".into(), "a".into()], "not sorted");
    refused(|d| d.outputs = vec!["a".into(), "a".into()], "not sorted");
    let mut doc = sample();
    doc.outputs = vec!["b".into(), "a".into(), "b".into()];
    doc.normalize();
    assert_eq!(doc.outputs, ["a", "b"]);
    doc.validate().unwrap();
}

#[test]
fn argv_env_timeout_and_counts_are_checked() {
    assert_eq!(
        refused(|d| d.argv.clear(), "empty argv"),
        DocError::EmptyArgv
    );
    refused(
        |d| d.argv.push("a\0b".into()),
        "argv[4] contains a NUL byte",
    );
    refused(
        |d| d.argv = vec!["x".repeat(MAX_ARG_LEN + 1)],
        "argv[0] is 131073 bytes",
    );
    refused(
        |d| d.argv = vec![String::new(); MAX_ARGS + 1],
        "4097 argv entries",
    );
    refused(
        |d| {
            d.env.insert("A=B".into(), "x".into());
        },
        "key \"A=B\" is empty or contains '='",
    );
    refused(
        |d| {
            d.env.insert(String::new(), "x".into());
        },
        "key \"\" is empty",
    );
    refused(
        |d| {
            d.env.insert("A\0".into(), "x".into());
        },
        "contains a NUL byte",
    );
    refused(
        |d| {
            d.env.insert("A".into(), "x\0".into());
        },
        "environment variable \"A\" contains a NUL",
    );
    refused(
        |d| {
            d.env = (0..=MAX_ENV)
                .map(|i| (format!("V{i}"), String::new()))
                .collect()
        },
        "4097 environment variables",
    );
    refused(
        |d| {
            d.inputs = (0..=MAX_INPUTS)
                .map(|i| (format!("i{i}"), input(1)))
                .collect()
        },
        "4097 inputs",
    );
    refused(
        |d| d.outputs = (0..=MAX_OUTPUTS).map(|i| format!("o{i:05}")).collect(),
        "4097 outputs",
    );
    assert_eq!(
        refused(|d| d.timeout_ms = 0, "timeout of 0 ms"),
        DocError::Timeout(0)
    );
    refused(
        |d| d.timeout_ms = MAX_TIMEOUT_MS + 1,
        "not between 1 ms and 7 days",
    );
    let mut doc = sample();
    doc.timeout_ms = MAX_TIMEOUT_MS;
    doc.validate().unwrap();
    refused(|d| d.version = 3, "version 3 is not supported");
    refused(
        |d| d.inputs.get_mut("src").unwrap().name = Some(String::new()),
        "input \"src\" has a name",
    );
    refused(
        |d| d.inputs.get_mut("src").unwrap().name = Some("a\nb".into()),
        "control characters",
    );
    refused(
        |d| d.platform.features = vec!["b".into(), "a".into()],
        "platform: platform feature list is not sorted",
    );
    refused(
        |d| d.platform.os = Some("mac os".into()),
        "platform: platform os",
    );
}

#[test]
fn errors_show_at_most_a_bounded_part_of_a_path() {
    let long = "x".repeat(10_000);
    let err = refused(|d| d.outputs = vec![format!("/{long}")], "output");
    assert!(err.to_string().len() < 300, "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = JobDoc::decode(&bytes);
    }

    #[test]
    fn a_damaged_encoding_never_panics_and_what_decodes_is_canonical(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = sample().encode();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        bytes.truncate(cut.index(bytes.len() + 1).max(i));
        if let Ok(doc) = JobDoc::decode(&bytes) {
            prop_assert_eq!(JobDoc::decode(&doc.encode()).unwrap(), doc.clone());
            doc.validate().unwrap();
        }
    }

    #[test]
    fn any_json_value_never_panics(value in json_value()) {
        let _ = JobDoc::decode(value.to_string().as_bytes());
    }
}

/// Arbitrary JSON, with keys from the document's own fields now and then.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("version".to_owned()),
        Just("argv".to_owned()),
        Just("inputs".to_owned()),
        Just("hash".to_owned()),
        "[a-z_]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        Just(Value::from(1)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
