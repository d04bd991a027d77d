use std::{collections::BTreeMap, path::Path, time::Duration};

use clive_cas::Hash;
use proptest::prelude::*;

use super::*;
use crate::jobs::{
    document::{Input, shown},
    platform::Target,
    sandbox::SandboxLevel,
};

/// The shape the issue gives, word for word.
const ISSUE: &str = r#"
version = 1
[step.titles]
argv = ["sh", "-c", "head -qn1 pages/* > titles.txt"]
inputs = { "pages" = "./pages" }
outputs = ["titles.txt"]
[step.sidebar]
argv = ["sh", "-c", "sed 's/^/- /' t/titles.txt > sidebar.html"]
inputs = { "t" = "step:titles" }
outputs = ["sidebar.html"]
sandbox = "landlock"
on = "os=linux"
"#;

/// The early-cutoff site: titles -> sidebar -> site.
const SITE: &str = r#"
version = 1
[step.titles]
argv = ["sh", "-c", "head -qn1 pages/* > titles.txt"]
inputs = { pages = "./pages" }
outputs = ["titles.txt"]
[step.sidebar]
argv = ["sh", "-c", "sed 's/^/- /' t/titles.txt > sidebar.html"]
inputs = { t = "step:titles" }
outputs = ["sidebar.html"]
[step.site]
argv = ["sh", "-c", "mkdir site && cat pages/* side.html > site/index.html"]
inputs = { pages = "./pages", "side.html" = "step:sidebar/sidebar.html" }
outputs = ["site"]
"#;

fn parse(text: &str) -> Result<Pipeline, PipelineError> {
    Pipeline::parse(text, Path::new("/project"))
}

/// Steps as `(name, [step: sources read])`.
type Graph<'a> = [(&'a str, &'a [&'a str])];

/// A pipeline of `steps`, each declaring the output `out`.
fn graph(steps: &Graph) -> String {
    let mut text = String::from("version = 1\n");
    for (name, reads) in steps {
        text.push_str(&format!(
            "[step.{name:?}]\nargv = [\"true\"]\noutputs = [\"out\"]\n[step.{name:?}.inputs]\n"
        ));
        for (i, read) in reads.iter().enumerate() {
            text.push_str(&format!("in{i} = \"step:{read}\"\n"));
        }
    }
    text
}

fn names(levels: &[&[&str]]) -> Vec<Vec<String>> {
    levels
        .iter()
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .collect()
}

fn err(text: &str) -> PipelineError {
    match parse(text) {
        Ok(p) => panic!("accepted {text}: {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn the_issues_shape_parses() {
    let p = parse(ISSUE).unwrap();
    assert_eq!(p.steps().keys().collect::<Vec<_>>(), ["sidebar", "titles"]);
    let titles = p.step("titles").unwrap();
    assert_eq!(titles.name(), "titles");
    assert_eq!(
        titles.job().inputs["pages"],
        InputSource::Path(Path::new("/project").join("./pages"))
    );
    assert!(titles.reads().is_empty());
    assert_eq!(titles.job().outputs, ["titles.txt"]);
    assert_eq!(titles.job().timeout, crate::jobs::jobfile::DEFAULT_TIMEOUT);

    let sidebar = p.step("sidebar").unwrap();
    assert!(
        sidebar.job().inputs.is_empty(),
        "step: inputs are kept apart"
    );
    assert_eq!(
        sidebar.reads()["t"],
        StepRef {
            step: "titles".into(),
            path: None
        }
    );
    assert_eq!(sidebar.needs().into_iter().collect::<Vec<_>>(), ["titles"]);
    assert_eq!(sidebar.job().sandbox, Some(SandboxLevel::Landlock));
    assert_eq!(
        sidebar.job().on,
        Some("os=linux".parse::<Target>().unwrap())
    );
    assert_eq!(p.order(), names(&[&["titles"], &["sidebar"]]));
    assert!(p.step("site").is_none());
}

#[test]
fn every_job_toml_key_is_a_step_key() {
    let text = r#"
version = 1
[step.build]
version = 1
argv = ["make", "app"]
workdir = "build"
outputs = ["app"]
timeout = "10m"
sandbox = "isolated"
on = "local"
[step.build.inputs]
src = "./src"
tools = "zone/tools"
[step.build.env]
CC = "cc"
[step.build.limits]
output = "1 GiB"
log = 1000
"#;
    let p = Pipeline::parse(text, Path::new("/p")).unwrap();
    let job = p.step("build").unwrap().job();
    assert_eq!(job.argv, ["make", "app"]);
    assert_eq!(job.workdir, "build");
    assert_eq!(job.timeout, Duration::from_secs(600));
    assert_eq!(job.sandbox, Some(SandboxLevel::Isolated));
    assert_eq!(job.on, Some(Target::Local));
    assert_eq!(job.env["CC"], "cc");
    assert_eq!(job.limits.output_bytes, 1 << 30);
    assert_eq!(job.limits.log_bytes, 1000);
    assert_eq!(job.inputs["src"], InputSource::Path("/p/./src".into()));
    assert_eq!(
        job.inputs["tools"],
        InputSource::Object("zone/tools".into())
    );
}

#[test]
fn the_site_runs_in_three_levels() {
    let p = parse(SITE).unwrap();
    assert_eq!(p.order(), names(&[&["titles"], &["sidebar"], &["site"]]));
    let site = p.step("site").unwrap();
    assert_eq!(
        site.reads()["side.html"],
        StepRef {
            step: "sidebar".into(),
            path: Some("sidebar.html".into())
        }
    );
    assert_eq!(
        site.reads()["side.html"].to_string(),
        "step:sidebar/sidebar.html"
    );
    assert!(matches!(site.job().inputs["pages"], InputSource::Path(_)));
}

#[test]
fn a_diamond_runs_its_middle_together() {
    let p = parse(&graph(&[
        ("d", &["b", "c"]),
        ("c", &["a"]),
        ("b", &["a"]),
        ("a", &[]),
        ("e", &[]),
        // Its longest chain of needs decides its level, not its shortest.
        ("f", &["e", "d"]),
    ]))
    .unwrap();
    assert_eq!(
        p.order(),
        names(&[&["a", "e"], &["b", "c"], &["d"], &["f"]])
    );
}

#[test]
fn only_keeps_a_step_and_what_it_needs() {
    let p = parse(&graph(&[
        ("a", &[]),
        ("b", &["a"]),
        ("c", &["a"]),
        ("d", &["b", "c"]),
        ("e", &[]),
    ]))
    .unwrap();
    let b = p.only("b").unwrap();
    assert_eq!(b.steps().keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(b.order(), names(&[&["a"], &["b"]]));
    assert_eq!(b.step("b"), p.step("b"));
    let d = p.only("d").unwrap();
    assert_eq!(d.order(), names(&[&["a"], &["b", "c"], &["d"]]));
    assert_eq!(p.only("e").unwrap().order(), names(&[&["e"]]));
    assert_eq!(
        p.only("d").unwrap().only("c").unwrap(),
        p.only("c").unwrap()
    );

    let e = p.only("nope").unwrap_err();
    assert!(matches!(&e, PipelineError::NoSuchStep { step, .. } if step == "nope"));
    assert_eq!(
        e.to_string(),
        "the pipeline has no step \"nope\" (its steps: a, b, c, d, e)"
    );
}

#[test]
fn cycles_are_refused_and_named() {
    let cases: &[(&Graph, &[&str])] = &[
        (&[("a", &["b"]), ("b", &["a"])], &["a", "b", "a"]),
        (
            // b reads a, c reads b, a reads c.
            &[("a", &["c"]), ("b", &["a"]), ("c", &["b"])],
            &["a", "b", "c", "a"],
        ),
        (&[("a", &["a"])], &["a", "a"]),
        (
            // A step downstream of the cycle is not part of it.
            &[("a0", &["x"]), ("x", &["y"]), ("y", &["x"]), ("z", &[])],
            &["x", "y", "x"],
        ),
    ];
    for (steps, cycle) in cases {
        match err(&graph(steps)) {
            PipelineError::Cycle(found) => assert_eq!(found, *cycle, "{steps:?}"),
            other => panic!("{steps:?}: {other}"),
        }
    }
    assert_eq!(
        err(&graph(&[("a", &["b"]), ("b", &["a"])])).to_string(),
        "steps form a cycle: a -> b -> a (each reads the outputs of the one before)"
    );
    assert!(
        err(&graph(&[("a", &["a/out"])]))
            .to_string()
            .contains("cycle: a -> a ")
    );
}

#[test]
fn reading_a_step_that_is_not_there_is_refused() {
    let e = err(&graph(&[("a", &[]), ("b", &["a", "nope"])]));
    assert!(
        matches!(&e, PipelineError::UnknownStep { step, mount, needs }
            if step == "b" && mount == "in1" && needs == "nope"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "step b input in1 reads step:nope, but there is no step nope"
    );
    let e = err(&graph(&[("b", &["nope/out"])]));
    assert!(matches!(e, PipelineError::UnknownStep { .. }), "{e:?}");
}

#[test]
fn reading_an_output_a_step_does_not_declare_is_refused() {
    let text = |read: &str| {
        format!(
            "version = 1\n[step.a]\nargv = [\"x\"]\noutputs = [\"out/x\", \"log\"]\n\
             [step.b]\nargv = [\"x\"]\ninputs = {{ m = \"step:a/{read}\" }}\n"
        )
    };
    for ok in ["out/x", "log", "out/x/deep/file"] {
        let p = parse(&text(ok)).unwrap();
        assert_eq!(p.step("b").unwrap().reads()["m"].path.as_deref(), Some(ok));
    }
    for undeclared in ["out", "out/xy", "other", "lo"] {
        let e = err(&text(undeclared));
        assert!(
            matches!(&e, PipelineError::UndeclaredOutput { step, mount, needs, path, declared }
                if step == "b" && mount == "m" && needs == "a" && path == undeclared
                    && *declared == ["log", "out/x"]),
            "{undeclared}: {e:?}"
        );
    }
    assert_eq!(
        err(&text("other")).to_string(),
        "step b input m reads \"other\" of step a, which does not declare it \
         (its outputs: log, out/x)"
    );

    let e = err(
        "version = 1\n[step.a]\nargv = [\"x\"]\n[step.b]\nargv = [\"x\"]\n\
                 inputs = { m = \"step:a\" }\n",
    );
    assert!(
        matches!(&e, PipelineError::NoOutputs { step, needs, .. } if step == "b" && needs == "a"),
        "{e:?}"
    );
    assert!(e.to_string().contains("which declares no outputs"), "{e}");
}

#[test]
fn an_oversized_file_is_refused() {
    let mut big = graph(&[("a", &[])]);
    big.push_str(&format!("# {}\n", "x".repeat(MAX_PIPELINE_LEN)));
    assert!(matches!(err(&big), PipelineError::TooLarge));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    std::fs::write(&path, &big).unwrap();
    assert!(matches!(
        Pipeline::load(&path),
        Err(PipelineError::TooLarge)
    ));
    assert!(matches!(
        Pipeline::load(&dir.path().join("missing.toml")),
        Err(PipelineError::Read(clive_trust::ReadError::NotFound { .. }))
    ));
}

#[test]
fn load_reads_paths_relative_to_the_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    std::fs::write(&path, SITE).unwrap();
    let p = Pipeline::load(&path).unwrap();
    assert_eq!(
        p.step("titles").unwrap().job().inputs["pages"],
        InputSource::Path(dir.path().join("./pages"))
    );
    assert_eq!(p, Pipeline::parse(SITE, dir.path()).unwrap());
}

#[test]
fn step_names_are_checked() {
    let longest = "n".repeat(MAX_STEP_NAME_LEN);
    let p = parse(&graph(&[(&longest, &[]), ("A-z_0.9", &[&longest])])).unwrap();
    assert_eq!(p.order(), names(&[&[&longest], &["A-z_0.9"]]));

    let too_long = "n".repeat(MAX_STEP_NAME_LEN + 1);
    for bad in ["", "a b", ".", "..", "a/b", "é", "a:b", too_long.as_str()] {
        let e = err(&graph(&[(bad, &[])]));
        assert!(
            matches!(&e, PipelineError::BadStepName(name) if name == &shown(bad)),
            "{bad:?}: {e:?}"
        );
    }
    assert!(
        err(&graph(&[("a b", &[])]))
            .to_string()
            .starts_with("step name \"a b\" is not 1 to 64 of")
    );
}

#[test]
fn bad_step_inputs_are_refused() {
    for (read, reason) in [
        ("", "\"\" is not a step name"),
        ("a b", "\"a b\" is not a step name"),
        ("./x", "\".\" is not a step name"),
        ("a/", "the path \"\" is empty"),
        ("a/../x", "the path \"../x\" has a '..' component"),
        ("a/x//y", "has an empty component"),
        ("a/./x", "has a '.' component"),
    ] {
        let text = format!(
            "version = 1\n[step.a]\nargv = [\"x\"]\noutputs = [\"x\"]\n\
             [step.b]\nargv = [\"x\"]\ninputs = {{ m = \"step:{read}\" }}\n"
        );
        let e = err(&text);
        assert!(
            matches!(&e, PipelineError::BadStepInput { step, mount, .. } if step == "b" && mount == "m"),
            "{read:?}: {e:?}"
        );
        assert!(e.to_string().contains(reason), "{read:?}: {e}");
    }
}

#[test]
fn unknown_keys_are_refused() {
    let e = err("version = 1\nsteps = 1\n[step.a]\nargv = [\"x\"]\n");
    assert!(
        matches!(&e, PipelineError::Toml(m) if m.contains("unknown field `steps`")),
        "{e}"
    );
    for (text, message) in [
        ("[step.a]\nargv = [\"x\"]\nargs = 1", "unknown field `args`"),
        (
            "[step.a]\nargv = [\"x\"]\n[step.a.limits]\ncpu = 1",
            "unknown field `cpu`",
        ),
        ("[step.a]\nargv = \"x\"", "invalid type"),
        (
            "[step.a]\nargv = [\"x\"]\ninputs = { m = 1 }",
            "invalid type",
        ),
    ] {
        let e = err(&format!("version = 1\n{text}\n"));
        assert!(
            matches!(&e, PipelineError::StepToml { step, message: m } if step == "a" && m.contains(message)),
            "{text:?}: {e:?}"
        );
        assert!(e.to_string().starts_with("step a: "), "{e}");
    }
}

#[test]
fn the_file_itself_is_checked() {
    let step = "[step.a]\nargv = [\"x\"]\n";
    let e = err(step);
    assert!(
        matches!(&e, PipelineError::Toml(m) if m.contains("missing field `version`")),
        "{e}"
    );
    assert!(matches!(
        err(&format!("version = 2\n{step}")),
        PipelineError::Version(2)
    ));
    assert!(matches!(err("version = 1\n"), PipelineError::NoSteps));
    assert!(matches!(
        err("version = 1\nstep = 3\n"),
        PipelineError::Toml(_)
    ));
    assert!(matches!(err("version = 1\n[step"), PipelineError::Toml(_)));

    let many: Vec<String> = (0..=MAX_STEPS).map(|i| format!("s{i}")).collect();
    let steps: Vec<(&str, &[&str])> = many.iter().map(|n| (n.as_str(), &[][..])).collect();
    assert!(matches!(
        err(&graph(&steps)),
        PipelineError::TooManySteps(n) if n == MAX_STEPS + 1
    ));
    assert!(parse(&graph(&steps[..MAX_STEPS])).is_ok());

    // Deep nesting is an error, not a stack overflow.
    let deep = format!("version = 1\nx = {}", "[".repeat(100_000));
    assert!(matches!(err(&deep), PipelineError::Toml(_)));
}

#[test]
fn a_step_that_is_not_a_valid_job_is_refused() {
    let cases: &[(&str, &str)] = &[
        ("argv = []", "argv is empty"),
        ("argv = [\"x\"]\ntimeout = \"soon\"", "timeout \"soon\""),
        ("argv = [\"x\"]\nversion = 2", "version 2 is not supported"),
        ("argv = [\"x\"]\nsandbox = \"jail\"", "jail"),
        (
            "argv = [\"x\"]\noutputs = [\"../x\"]",
            "output \"../x\" has a '..'",
        ),
        (
            "argv = [\"x\"]\ninputs = { \"/abs\" = \"step:a\" }",
            "input mount \"/abs\" is absolute",
        ),
        (
            "argv = [\"x\"]\ninputs = { src = \"src\" }",
            "write \"./src\" to add it",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    for (body, message) in cases {
        let text =
            format!("version = 1\n[step.a]\nargv = [\"x\"]\noutputs = [\"o\"]\n[step.b]\n{body}\n");
        let e = Pipeline::parse(&text, dir.path()).unwrap_err();
        assert!(
            matches!(&e, PipelineError::Step { step, .. } if step == "b"),
            "{body:?}: {e:?}"
        );
        assert!(e.to_string().starts_with("step b: "), "{e}");
        assert!(
            e.to_string().contains(message),
            "{body:?}: expected {message:?} in {e}"
        );
    }
    // What only a job document refuses, `step:` inputs included.
    for (body, message) in [
        (
            "inputs = { a = \"step:a\", \"a/b\" = \"./b\" }",
            "input \"a/b\" is mounted inside input \"a\"",
        ),
        (
            "inputs = { a = \"step:a\" }\noutputs = [\"a/x\"]",
            "output \"a/x\" is inside input \"a\"",
        ),
        (
            "inputs = { w = \"step:a/o\" }\nworkdir = \"w\"",
            "workdir \"w\" is inside input \"w\"",
        ),
        ("env = { \"A=B\" = \"x\" }", "environment key \"A=B\""),
    ] {
        let text = format!(
            "version = 1\n[step.a]\nargv = [\"x\"]\noutputs = [\"o\"]\n[step.b]\nargv = [\"x\"]\n{body}\n"
        );
        let e = err(&text);
        assert!(
            matches!(&e, PipelineError::StepDoc { step, .. } if step == "b"),
            "{body:?}: {e:?}"
        );
        assert!(
            e.to_string().contains(message),
            "{body:?}: expected {message:?} in {e}"
        );
    }
}

#[test]
fn spec_turns_step_inputs_into_objects() {
    let p = parse(SITE).unwrap();
    let titles = Hash::new(b"titles tree");
    let sidebar = Hash::new(b"sidebar tree");
    let upstream: BTreeMap<String, Hash> = [
        ("titles".to_owned(), titles),
        ("sidebar".to_owned(), sidebar),
    ]
    .into();

    let first = p.step("titles").unwrap().spec(&BTreeMap::new()).unwrap();
    assert_eq!(&first, p.step("titles").unwrap().job());

    let spec = p.step("sidebar").unwrap().spec(&upstream).unwrap();
    assert_eq!(
        spec.inputs["t"],
        InputSource::Object(titles.to_hex().to_string())
    );
    assert_eq!(spec.argv, p.step("sidebar").unwrap().job().argv);

    let spec = p.step("site").unwrap().spec(&upstream).unwrap();
    let object = format!("pin:{}/sidebar.html", sidebar.to_hex());
    assert_eq!(
        spec.inputs["side.html"],
        InputSource::Object(object.clone())
    );
    assert!(matches!(spec.inputs["pages"], InputSource::Path(_)));
    // The spelling the OBJECT resolver reads as a hash and a path inside
    // it, never as a signed name.
    assert_eq!(TREE_PATH_PREFIX, crate::object::PIN_PREFIX);
    assert_eq!(
        crate::object::ObjectRef::parse(&object),
        crate::object::ObjectRef::Pin(&object[4..])
    );
    // Once resolved, it is a valid job.
    let inputs = spec
        .inputs
        .keys()
        .map(|m| {
            (
                m.clone(),
                Input {
                    hash: Hash::new(m),
                    name: None,
                },
            )
        })
        .collect();
    spec.doc(inputs).unwrap();

    let e = p
        .step("site")
        .unwrap()
        .spec(&[("titles".to_owned(), titles)].into())
        .unwrap_err();
    assert!(
        matches!(&e, PipelineError::NotFinished { step, needs } if step == "site" && needs == "sidebar"),
        "{e:?}"
    );
}

#[test]
fn the_plan_serializes() {
    let p = parse(SITE).unwrap();
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(
        json["order"],
        serde_json::json!([["titles"], ["sidebar"], ["site"]])
    );
    assert_eq!(
        json["steps"]["site"]["inputs"],
        serde_json::json!({
            "pages": { "path": "/project/./pages" },
            "side.html": { "step": { "step": "sidebar", "path": "sidebar.html" } },
        })
    );
    assert_eq!(
        json["steps"]["sidebar"]["inputs"]["t"],
        serde_json::json!({ "step": { "step": "titles" } })
    );
    assert_eq!(
        json["steps"]["site"]["needs"],
        serde_json::json!(["sidebar"])
    );
    assert_eq!(json["steps"]["titles"]["timeout_ms"], 3_600_000);
    let issue = serde_json::to_value(parse(ISSUE).unwrap()).unwrap();
    assert_eq!(issue["steps"]["sidebar"]["on"], "os=linux");
    assert_eq!(issue["steps"]["sidebar"]["sandbox"], "landlock");
    assert!(issue["steps"]["titles"].get("on").is_none());
    let back: Plan = serde_json::from_value(json).unwrap();
    assert_eq!(back, p.plan());
}

/// Pipelines over a few names reading each other at random: refused or
/// in a valid order, never a panic.
fn pipelines() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec!["a", "b", "c", "d", "e", "f"]);
    let read = (
        name.clone(),
        prop::option::of(prop::sample::select(vec!["o", "o/x", "p"])),
    );
    let step = (name, prop::collection::vec(read, 0..3));
    prop::collection::vec(step, 1..7).prop_map(|steps| {
        let mut text = String::from("version = 1\n");
        let mut seen = std::collections::BTreeSet::new();
        for (name, reads) in steps {
            if !seen.insert(name) {
                continue;
            }
            text.push_str(&format!(
                "[step.{name}]\nargv = [\"true\"]\noutputs = [\"o\"]\n[step.{name}.inputs]\n"
            ));
            for (i, (step, path)) in reads.into_iter().enumerate() {
                match path {
                    None => text.push_str(&format!("m{i} = \"step:{step}\"\n")),
                    Some(p) => text.push_str(&format!("m{i} = \"step:{step}/{p}\"\n")),
                }
            }
        }
        text
    })
}

/// Each step once, each after every step it reads.
fn check_order(p: &Pipeline) -> Result<(), TestCaseError> {
    let order = p.order();
    let level_of: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .flat_map(|(i, level)| level.iter().map(move |s| (s.as_str(), i)))
        .collect();
    prop_assert_eq!(level_of.len(), p.steps().len());
    prop_assert_eq!(order.iter().map(Vec::len).sum::<usize>(), p.steps().len());
    for (name, step) in p.steps() {
        for needs in step.needs() {
            prop_assert!(level_of[needs] < level_of[name.as_str()]);
        }
    }
    for level in &order {
        prop_assert!(level.is_sorted());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_never_panics(text in ".{0,400}", bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let base = Path::new("/p");
        let _ = Pipeline::parse(&text, base);
        let _ = Pipeline::parse(&String::from_utf8_lossy(&bytes), base);
        let _ = Pipeline::parse(&format!("version = 1\n[step.a]\n{text}"), base);
        let _ = Pipeline::parse(&format!("version = 1\n[step.{text:?}]\nargv = [\"x\"]"), base);
        let _ = Pipeline::parse(
            &format!("version = 1\n[step.a]\nargv = [\"x\"]\ninputs = {{ m = {text:?} }}"),
            base,
        );
    }

    #[test]
    fn toml_ish_text_never_panics(
        lines in prop::collection::vec(
            prop_oneof![
                Just("version = 1".to_owned()),
                "\\[step\\.[a-c./ ]{0,3}\\]",
                "\\[step\\.[a-c]\\.(inputs|env|limits)\\]",
                "(argv|outputs) = \\[\"[a-z/.]{0,4}\"\\]",
                "[a-z/.]{0,3} = \"(step:)?[a-c]{0,2}(/[a-z/.]{0,4})?\"",
                "(timeout|sandbox|on|workdir|output|log) = \"[a-z0-9=./ ]{0,6}\"",
                "[a-z\\[\\]{}=\" ]{0,12}",
            ],
            0..14,
        )
    ) {
        let _ = Pipeline::parse(&lines.join("\n"), Path::new("/p"));
    }

    #[test]
    fn accepted_pipelines_are_in_order(text in pipelines()) {
        let Ok(p) = Pipeline::parse(&text, Path::new("/p")) else {
            return Ok(());
        };
        check_order(&p)?;
        for name in p.steps().keys() {
            let only = p.only(name).unwrap();
            check_order(&only)?;
            prop_assert!(only.step(name).is_some());
            for step in only.steps().values() {
                for needs in step.needs() {
                    prop_assert!(only.step(needs).is_some());
                }
            }
        }
    }
}

#[test]
fn objects_lists_each_object_input_once_and_no_paths_or_steps() {
    let p = parse(
        r#"
version = 1
[step.a]
argv = ["true"]
inputs = { tool = "rel/tool", src = "./src" }
outputs = ["o"]
[step.b]
argv = ["true"]
inputs = { tool = "rel/tool", lib = "rel/lib", o = "step:a/o" }
"#,
    )
    .unwrap();
    let objects: Vec<&str> = p.objects().into_iter().collect();
    assert_eq!(objects, ["rel/lib", "rel/tool"]);
}
