//! Pipelines through the CLI, what the issue asks to show beside the
//! early cutoff: steps on two platforms each go to the right node; the
//! cache bound evicts the least recently used step outputs and an evicted
//! step runs again; `--json` gives the plan and each step's result; a
//! failing step stops the steps after it and is named.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::path::Path;

use clive_tests::{TestNode, admit, step_of, write};

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A loopback node with `jobs` as its `[jobs]` section.
fn with_jobs(jobs: &str) -> TestNode {
    let node = TestNode::loopback();
    let config = node.home().join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[jobs]\n");
    text.push_str(jobs);
    write(&config, &text);
    node
}

/// How many lines `name` wrote to the counter `log` (outside the store).
fn runs(log: &Path, name: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == name)
        .count()
}

fn stored(node: &TestNode, hash: &serde_json::Value) -> bool {
    let hash = hash.as_str().unwrap();
    node.cmd(["ls", hash]).output().unwrap().status.success()
}

/// The job ids in `node`'s `job ls --json` on `side` (`run` or `sent`).
fn jobs_on(node: &TestNode, side: &str) -> Vec<String> {
    node.json(["job", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["side"] == side)
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn steps_on_two_platforms_each_go_to_the_right_node() {
    let mac = with_jobs("os = \"macos\"\narch = \"aarch64\"\nmin_sandbox = \"none\"\n");
    let laptop = TestNode::loopback();
    let _d = [mac.start_daemon(), laptop.start_daemon()];
    admit(&mac, &laptop, "exec");
    let mac_key = mac.json(["id"])["public_key"].as_str().unwrap().to_owned();
    let dir = laptop.scratch("p");
    write(
        &dir.join("p.toml"),
        r#"version = 1
[step.build]
argv = ["sh", "-c", "echo built on the mac > app"]
outputs = ["app"]
on = "os=macos"
[step.package]
argv = ["sh", "-c", "cat b/app > pkg; echo packaged here >> pkg"]
inputs = { "b" = "step:build" }
outputs = ["pkg"]
on = "local"
"#,
    );
    let out = laptop.scratch("out");
    let run = laptop.json([
        "job",
        "run",
        path_str(&dir.join("p.toml")),
        "-o",
        path_str(&out),
    ]);
    assert!(run.get("failed").is_none(), "{run}");
    let build = step_of(&run, "build");
    let package = step_of(&run, "package");
    // The executor a step names: the mac's key, or this node.
    let executor = build["run"]["executor"].as_str().unwrap();
    assert!(
        executor.contains(mac_key.split_whitespace().nth(1).unwrap_or(&mac_key)),
        "build ran on the mac: {executor} / {mac_key}"
    );
    assert_eq!(package["run"]["executor"], "local");
    let build_id = build["run"]["id"].as_str().unwrap().to_owned();
    let package_id = package["run"]["id"].as_str().unwrap().to_owned();
    // Each node's records say the same.
    assert_eq!(jobs_on(&mac, "run"), vec![build_id.clone()]);
    assert_eq!(jobs_on(&laptop, "sent"), vec![build_id]);
    assert_eq!(jobs_on(&laptop, "run"), vec![package_id]);
    assert_eq!(
        std::fs::read_to_string(out.join("package/pkg")).unwrap(),
        "built on the mac\npackaged here\n"
    );
}

/// Bytes each step of the cache pipeline writes.
const OUTPUT: u64 = 40 << 10;

#[test]
fn a_pipeline_past_the_cache_bound_evicts_the_least_recently_used_step() {
    // Two outputs of OUTPUT fit in the bound, not three.
    let node = with_jobs("cache = \"100 KiB\"\n");
    let log = node.scratch("ran");
    let dir = node.scratch("p");
    // A chain: each step writes OUTPUT random bytes and a constant marker,
    // and reads only the marker of the step before (so it runs after it,
    // and stays a memo hit when that step runs again).
    let mut text = String::from("version = 1\n");
    for (name, after) in [("s1", None), ("s2", Some("s1")), ("s3", Some("s2"))] {
        text.push_str(&format!(
            "[step.{name}]\nargv = [\"sh\", \"-c\", \"echo {name} >> {log}; \
             head -c {OUTPUT} /dev/urandom > big; echo ok > marker\"]\n\
             outputs = [\"big\", \"marker\"]\n",
            log = log.display()
        ));
        if let Some(after) = after {
            text.push_str(&format!("inputs = {{ \"m\" = \"step:{after}/marker\" }}\n"));
        }
    }
    let file = dir.join("p.toml");
    write(&file, &text);
    let first = node.json(["job", "run", path_str(&file)]);
    assert!(first.get("failed").is_none(), "{first}");
    let outputs = |run: &serde_json::Value, name: &str| {
        step_of(run, name)["run"]["result"]["outputs"].clone()
    };
    // s1, used longest ago, went with its outputs; s2 and s3 fit.
    assert!(!stored(&node, &outputs(&first, "s1")), "s1 was evicted");
    assert!(stored(&node, &outputs(&first, "s2")));
    assert!(stored(&node, &outputs(&first, "s3")));
    node.ok(["fsck"]);
    let status = node.json(["status"]);
    assert!(
        status["cache_bytes"].as_u64().unwrap() <= 100 << 10,
        "{status}"
    );

    // The evicted step runs again rather than answering with outputs that
    // are gone.
    let again = node.json(["job", "run", path_str(&file), "--step", "s1"]);
    assert_eq!(step_of(&again, "s1")["run"]["memo_hit"], false, "{again}");
    assert_eq!(runs(&log, "s1"), 2, "s1 ran again");
    assert!(stored(&node, &outputs(&again, "s1")));
    node.ok(["fsck"]);

    // The most recent step is still a memo hit (s2 is too: the marker it
    // reads did not change).
    let whole = node.json(["job", "run", path_str(&file)]);
    assert_eq!(step_of(&whole, "s3")["run"]["memo_hit"], true, "{whole}");
    assert_eq!(runs(&log, "s3"), 1);
    assert_eq!(
        outputs(&whole, "s3"),
        outputs(&first, "s3"),
        "the same outputs as its first run"
    );
    node.ok(["fsck"]);
}

#[test]
fn json_gives_the_plan_and_each_steps_result() {
    let node = TestNode::loopback();
    let dir = node.scratch("p");
    write(&dir.join("src/x"), "x\n");
    write(
        &dir.join("p.toml"),
        r#"version = 1
[step.a]
argv = ["sh", "-c", "cat src/x > a"]
inputs = { "src" = "./src" }
outputs = ["a"]
[step.b]
argv = ["sh", "-c", "echo b > b"]
outputs = ["b"]
[step.c]
argv = ["sh", "-c", "cat in/a in/b > c"]
inputs = { "in/a" = "step:a/a", "in/b" = "step:b/b" }
outputs = ["c"]
"#,
    );
    let file = dir.join("p.toml");
    for (round, hit) in [(1, false), (2, true)] {
        let run = node.json(["job", "run", path_str(&file)]);
        assert_eq!(
            run["plan"],
            serde_json::json!([["a", "b"], ["c"]]),
            "round {round}: {run}"
        );
        let steps = run["steps"].as_array().unwrap();
        let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
        assert_eq!(names, ["a", "b", "c"], "in plan order");
        for step in steps {
            let ran = &step["run"];
            assert_eq!(ran["memo_hit"], hit, "round {round}: {step}");
            assert_eq!(ran["id"].as_str().unwrap().len(), 64, "{step}");
            assert_eq!(ran["executor"], "local");
            let result = &ran["result"];
            assert_eq!(result["job"], ran["id"]);
            assert_eq!(result["exit"], serde_json::json!({ "code": 0 }), "{result}");
            assert_eq!(result["outputs"].as_str().unwrap().len(), 64);
            assert_eq!(result["missing_outputs"], serde_json::json!([]));
        }
        assert!(run.get("failed").is_none(), "{run}");
    }
}

#[test]
fn a_failing_step_is_named_and_the_steps_after_it_do_not_run() {
    let node = TestNode::loopback();
    let log = node.scratch("ran");
    let dir = node.scratch("p");
    // a, then b (fails) and x at once, then c (after b) and y (after x).
    let step = |name: &str, tail: &str, input: Option<&str>| {
        let mut s = format!(
            "[step.{name}]\nargv = [\"sh\", \"-c\", \"echo {name} >> {}; {tail}\"]\noutputs = [\"{name}\"]\n",
            log.display()
        );
        if let Some(input) = input {
            s.push_str(&format!("inputs = {{ \"in\" = \"step:{input}\" }}\n"));
        }
        s
    };
    let text = [
        "version = 1\n".to_owned(),
        step("a", "echo a > a", None),
        step("b", "echo failing >&2; exit 3", Some("a")),
        step("x", "echo x > x", Some("a")),
        step("c", "echo c > c", Some("b")),
        step("y", "echo y > y", Some("x")),
    ]
    .concat();
    let file = dir.join("p.toml");
    write(&file, &text);
    let got = node.cmd(["job", "run", path_str(&file)]).output().unwrap();
    assert_eq!(got.status.code(), Some(3), "the failed step's exit code");
    let said = String::from_utf8_lossy(&got.stderr);
    assert!(said.contains("step b failed with exit code 3"), "{said}");
    assert!(said.contains("b | failing"), "its output, prefixed: {said}");
    for (name, times) in [("a", 1), ("b", 1), ("x", 1), ("c", 0), ("y", 0)] {
        assert_eq!(runs(&log, name), times, "{name}: {said}");
    }

    let got = node
        .cmd(["--json", "job", "run", path_str(&file)])
        .output()
        .unwrap();
    assert_eq!(got.status.code(), Some(3));
    let run: serde_json::Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(run["failed"]["step"], "b", "{run}");
    assert_eq!(run["failed"]["exit_code"], 3);
    let names: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "x"], "c and y did not run: {run}");
    for (name, times) in [("c", 0), ("y", 0)] {
        assert_eq!(runs(&log, name), times, "{name}");
    }
}
