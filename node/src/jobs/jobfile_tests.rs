use proptest::prelude::*;

use super::*;

const FULL: &str = r#"
version = 1
argv = ["make", "app"]
workdir = "build"
outputs = ["app", "a.log", "app"]
timeout = "10m"
sandbox = "landlock"
on = "os=macos,arch=aarch64"

[inputs]
src = "./src"
"up/lib" = "../lib"
abs = "/opt/tools"
dep = "0000000000000000000000000000000000000000000000000000000000000000"
tools = "zone/tools"

[env]
CC = "cc"

[limits]
output = "1 GiB"
log = 1000
"#;

#[test]
fn a_full_job_file_parses() {
    let base = Path::new("/work/project");
    let spec = JobSpec::parse(FULL, base).unwrap();
    assert_eq!(spec.argv, ["make", "app"]);
    assert_eq!(spec.workdir, "build");
    assert_eq!(spec.timeout, Duration::from_secs(600));
    assert_eq!(spec.sandbox, Some(SandboxLevel::Landlock));
    assert_eq!(spec.on, Some("os=macos,arch=aarch64".parse().unwrap()));
    assert_eq!(
        spec.limits,
        Limits {
            output_bytes: 1 << 30,
            log_bytes: 1000
        }
    );
    assert_eq!(spec.env["CC"], "cc");
    assert_eq!(spec.inputs["src"], InputSource::Path(base.join("./src")));
    assert_eq!(
        spec.inputs["up/lib"],
        InputSource::Path(base.join("../lib"))
    );
    assert_eq!(spec.inputs["abs"], InputSource::Path("/opt/tools".into()));
    assert!(matches!(&spec.inputs["dep"], InputSource::Object(h) if h.len() == 64));
    assert_eq!(
        spec.inputs["tools"],
        InputSource::Object("zone/tools".into())
    );

    // It becomes a document once its inputs are known.
    let inputs = spec
        .inputs
        .keys()
        .map(|m| {
            (
                m.clone(),
                Input {
                    hash: clive_cas::Hash::new(m),
                    name: None,
                },
            )
        })
        .collect();
    let doc = spec.doc(inputs).unwrap();
    assert_eq!(doc.outputs, ["a.log", "app"]);
    assert_eq!(doc.platform.os.as_deref(), Some("macos"));
    assert_eq!(doc.timeout_ms, 600_000);
    assert_eq!(doc.sandbox, SandboxLevel::Landlock);
    assert_eq!(doc.env.len(), 1, "nothing is added to the environment");
    assert_eq!(JobDoc::decode(&doc.encode()).unwrap(), doc);
}

#[test]
fn the_defaults_need_only_argv() {
    let spec = JobSpec::parse(r#"argv = ["true"]"#, Path::new("/")).unwrap();
    assert_eq!(spec.timeout, DEFAULT_TIMEOUT);
    assert_eq!(spec.limits, Limits::default());
    assert_eq!((spec.sandbox, spec.on.clone()), (None, None));
    assert!(spec.inputs.is_empty() && spec.outputs.is_empty() && spec.workdir.is_empty());
    let doc = spec.doc(BTreeMap::new()).unwrap();
    assert_eq!(doc.sandbox, SandboxLevel::None);
    assert!(doc.platform.is_empty());
    let spec = JobSpec::parse("argv = [\"true\"]\non = \"local\"", Path::new("/")).unwrap();
    assert_eq!(spec.on, Some(Target::Local));
}

#[test]
fn mistakes_are_refused_clearly() {
    let base = tempfile::tempdir().unwrap();
    std::fs::create_dir(base.path().join("src")).unwrap();
    let cases: &[(&str, &str)] = &[
        ("argv = [\"x\"]\nargs = 1", "unknown field `args`"),
        ("argv = [\"x\"]\n[limits]\ncpu = 1", "unknown field `cpu`"),
        ("argv = [\"x\"]\nversion = 2", "version 2 is not supported"),
        ("argv = []", "argv is empty"),
        ("workdir = \"x\"", "missing field `argv`"),
        ("argv = [\"x\"", "job file:"),
        ("argv = [\"x\"]\ntimeout = \"soon\"", "timeout \"soon\""),
        ("argv = [\"x\"]\ntimeout = \"0s\"", "more than zero"),
        ("argv = [\"x\"]\ntimeout = \"8d\"", "at most 7 days"),
        ("argv = [\"x\"]\nsandbox = \"jail\"", "jail"),
        ("argv = [\"x\"]\non = \"os=\"", "on: platform os"),
        (
            "argv = [\"x\"]\n[limits]\noutput = \"lots\"",
            "limits.output \"lots\" is not a size",
        ),
        ("argv = [\"x\"]\n[limits]\nlog = -1", "limits.log \"-1\""),
        ("argv = [\"x\"]\n[limits]\nlog = 1.5", "limits.log"),
        (
            "argv = [\"x\"]\nworkdir = \"/abs\"",
            "workdir \"/abs\" is absolute",
        ),
        (
            "argv = [\"x\"]\noutputs = [\"../x\"]",
            "output \"../x\" has a '..' component",
        ),
        (
            "argv = [\"x\"]\n[inputs]\n\"a/../b\" = \"./b\"",
            "input mount \"a/../b\"",
        ),
        (
            "argv = [\"x\"]\n[inputs]\nsrc = \"\"",
            "input src has an empty source",
        ),
        (
            "argv = [\"x\"]\n[inputs]\nsrc = \"src\"",
            "write \"./src\" to add it",
        ),
    ];
    for (text, message) in cases {
        let err = JobSpec::parse(text, base.path()).unwrap_err();
        assert!(
            err.to_string().contains(message),
            "{text:?}: expected {message:?} in {err}"
        );
    }
    let big = format!("argv = [\"{}\"]", "x".repeat(MAX_JOB_LEN));
    assert!(matches!(
        JobSpec::parse(&big, base.path()),
        Err(JobFileError::TooLarge(_))
    ));
}

#[test]
fn doc_applies_the_document_rules() {
    let spec = JobSpec::parse(
        "argv = [\"x\"]\nworkdir = \"src\"\n[inputs]\nsrc = \"./src\"",
        Path::new("/p"),
    )
    .unwrap();
    let inputs = [(
        "src".to_owned(),
        Input {
            hash: clive_cas::Hash::new(b"x"),
            name: None,
        },
    )]
    .into();
    assert!(matches!(
        spec.doc(inputs),
        Err(DocError::WorkdirInInput { .. })
    ));
}

#[test]
fn input_arguments_are_paths_when_they_look_or_exist_like_one() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join("data"), b"x").unwrap();
    let cwd = cwd.path();
    let parse = |arg: &str| JobSpec::parse_input(arg, cwd).unwrap();
    assert_eq!(
        parse("d=data"),
        ("d".into(), InputSource::Path(cwd.join("data")))
    );
    assert_eq!(
        parse("d=./new"),
        ("d".into(), InputSource::Path(cwd.join("./new")))
    );
    assert_eq!(
        parse("d=../x"),
        ("d".into(), InputSource::Path(cwd.join("../x")))
    );
    assert_eq!(
        parse("a/b=/etc"),
        ("a/b".into(), InputSource::Path("/etc".into()))
    );
    assert_eq!(
        parse("t=zone/tools"),
        ("t".into(), InputSource::Object("zone/tools".into()))
    );
    let hex = "ab".repeat(32);
    assert_eq!(
        parse(&format!("h={hex}")),
        ("h".into(), InputSource::Object(hex.clone()))
    );
    // `=` in the source stays in it.
    assert_eq!(
        parse("e=x=y"),
        ("e".into(), InputSource::Object("x=y".into()))
    );
    for (arg, message) in [
        ("nomount", "is not MOUNT=PATH|HASH|ZONE/NAME"),
        ("=x", "input mount \"\" is empty"),
        ("/abs=x", "is absolute"),
        ("m=", "empty source"),
    ] {
        let err = JobSpec::parse_input(arg, cwd).unwrap_err();
        assert!(err.to_string().contains(message), "{arg}: {err}");
    }
}

#[test]
fn sizes_and_timeouts_parse_in_their_units() {
    for (s, n) in [
        ("0", 0),
        ("1000", 1000),
        ("1 B", 1),
        ("1 KiB", 1024),
        ("64MiB", 64 << 20),
        ("2 G", 2 << 30),
        ("1 TiB", 1 << 40),
        (" 3K ", 3072),
    ] {
        assert_eq!(parse_size("size", s).unwrap(), n, "{s}");
    }
    for s in ["", "GiB", "1 GB", "1.5 GiB", "-1", "99999999999 TiB"] {
        assert!(parse_size("size", s).is_err(), "{s}");
    }
    assert_eq!(parse_timeout("1h 30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_timeout("7d").unwrap(), Duration::from_secs(7 * 86400));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_never_panics(text in ".{0,400}", bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let base = Path::new("/job");
        let _ = JobSpec::parse(&text, base);
        let _ = JobSpec::parse(&String::from_utf8_lossy(&bytes), base);
        let _ = JobSpec::parse_input(&text, base);
        let _ = parse_size("size", &text);
        let _ = parse_timeout(&text);
    }

    #[test]
    fn job_files_made_of_known_keys_never_panic(
        argv in prop::collection::vec("[a-z -]{0,8}", 0..3),
        workdir in "[a-z./]{0,6}",
        output in "[a-z./]{0,6}",
        mount in "[a-z./]{0,6}",
        source in "[a-z0-9./=]{0,8}",
        timeout in "[0-9a-z ]{0,5}",
        on in "[a-z=,+]{0,12}",
    ) {
        let text = format!(
            "argv = {argv:?}\nworkdir = {workdir:?}\noutputs = [{output:?}]\ntimeout = {timeout:?}\n\
             on = {on:?}\n[inputs]\n{mount:?} = {source:?}\n"
        );
        if let Ok(spec) = JobSpec::parse(&text, Path::new("/job")) {
            let inputs = spec
                .inputs
                .keys()
                .map(|m| (m.clone(), Input { hash: clive_cas::Hash::new(m), name: None }))
                .collect();
            if let Ok(doc) = spec.doc(inputs) {
                prop_assert_eq!(JobDoc::decode(&doc.encode()).unwrap(), doc);
            }
        }
    }
}
