//! `job run --check` through the CLI: a deterministic pipeline passes and
//! leaves the memo as it was; a step that writes the time or reads
//! /dev/urandom is named not reproducible, the step after it is checked
//! against the memoized output, and the next `job run` is still a memo hit
//! with the old output; a step with no memo runs and is memoized; a remote
//! step is checked on its executor without touching that memo. And a
//! pipeline's `ZONE/NAME` inputs are resolved once per run.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::path::Path;

use clive_tests::{TestNode, admit, clive_bin, count_lines, step_of, tool, write};

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `clive-node --json ARGS` whatever its exit status: the exit code, the
/// JSON on standard output, and standard error.
fn json_any(node: &TestNode, args: &[&str]) -> (i32, serde_json::Value, String) {
    let got = node.cmd([&["--json"], args].concat()).output().unwrap();
    let stdout = String::from_utf8_lossy(&got.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&got.stderr).into_owned();
    let value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    (got.status.code().unwrap_or(-1), value, stderr)
}

/// `job result ID --json` for each step of `run`, by step name.
fn results(node: &TestNode, run: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let id = s["run"]["id"].as_str().unwrap();
            (
                s["step"].as_str().unwrap().to_owned(),
                node.json(["job", "result", id]),
            )
        })
        .collect()
}

#[test]
fn a_deterministic_pipeline_passes_the_check_and_its_memo_is_unchanged() {
    let node = TestNode::loopback();
    let dir = node.scratch("p");
    let counter = node.scratch("upper-runs");
    write(&dir.join("in/words"), "alpha\nbeta\n");
    write(
        &dir.join("p.toml"),
        &format!(
            r#"version = 1
[step.sort]
argv = ["sh", "-c", "sort -r in/words > sorted"]
inputs = {{ "in" = "./in" }}
outputs = ["sorted"]
[step.upper]
argv = ["sh", "-c", "echo run >> {}; tr a-z A-Z < s/sorted > upper"]
inputs = {{ "s" = "step:sort" }}
outputs = ["upper"]
"#,
            counter.display()
        ),
    );
    let file = dir.join("p.toml");
    let first = node.json(["job", "run", path_str(&file)]);
    assert!(first.get("failed").is_none(), "{first}");
    let before = results(&node, &first);
    assert_eq!(count_lines(&counter), 1);

    let check = node.json(["job", "run", path_str(&file), "--check"]);
    assert_eq!(
        check["plan"],
        serde_json::json!([["sort"], ["upper"]]),
        "{check}"
    );
    for name in ["sort", "upper"] {
        let step = step_of(&check, name);
        assert_eq!(step["verdict"], "reproducible", "{check}");
        assert_eq!(step["run"]["memo_hit"], false, "{name} ran again");
        assert_eq!(step["id"], step_of(&first, name)["run"]["id"]);
        assert_eq!(
            step["memoized_outputs"],
            step_of(&first, name)["run"]["result"]["outputs"]
        );
    }
    assert_eq!(check["not_reproducible"], serde_json::json!([]));
    assert_eq!(count_lines(&counter), 2, "the check ran upper again");

    // The text form says so and exits 0.
    let text = node
        .cmd(["job", "run", path_str(&file), "--check"])
        .output()
        .unwrap();
    assert!(text.status.success());
    let said = String::from_utf8_lossy(&text.stderr);
    assert!(said.contains("step sort: reproducible"), "{said}");
    assert!(said.contains("step upper: reproducible"), "{said}");

    // The memo and the records hold what they held: the same signed
    // results, and the next run is all memo hits.
    assert_eq!(results(&node, &first), before);
    let after = node.json(["job", "run", path_str(&file)]);
    for name in ["sort", "upper"] {
        assert_eq!(step_of(&after, name)["run"]["memo_hit"], true, "{after}");
        assert_eq!(
            step_of(&after, name)["run"]["result"],
            step_of(&first, name)["run"]["result"]
        );
    }
    assert_eq!(count_lines(&counter), 3);
    node.ok(["fsck"]);
}

#[test]
fn a_step_that_writes_the_time_or_reads_urandom_is_not_reproducible() {
    let node = TestNode::loopback();
    let dir = node.scratch("p");
    write(
        &dir.join("p.toml"),
        r#"version = 1
[step.stamp]
argv = ["sh", "-c", "date +%s%N > when; echo fixed > same"]
outputs = ["when", "same"]
[step.noise]
argv = ["sh", "-c", "head -c 32 /dev/urandom > noise"]
outputs = ["noise"]
[step.copy]
argv = ["sh", "-c", "cat s/when > copied"]
inputs = { "s" = "step:stamp" }
outputs = ["copied"]
"#,
    );
    let file = dir.join("p.toml");
    let first = node.json(["job", "run", path_str(&file)]);
    assert!(first.get("failed").is_none(), "{first}");
    let before = results(&node, &first);

    let (code, check, _) = json_any(&node, &["job", "run", path_str(&file), "--check"]);
    assert_eq!(code, 1, "{check}");
    assert_eq!(
        check["not_reproducible"],
        serde_json::json!(["noise", "stamp"])
    );
    let stamp = step_of(&check, "stamp");
    assert_eq!(stamp["verdict"], "not_reproducible");
    let differs = stamp["differs"].as_array().unwrap();
    assert_eq!(differs.len(), 1, "only `when` differs: {stamp}");
    assert_eq!(differs[0]["path"], "when");
    assert_ne!(differs[0]["memoized"], differs[0]["checked"]);
    assert_eq!(
        stamp["memoized_outputs"],
        step_of(&first, "stamp")["run"]["result"]["outputs"]
    );
    assert_ne!(
        stamp["run"]["result"]["outputs"],
        step_of(&first, "stamp")["run"]["result"]["outputs"]
    );
    assert_eq!(step_of(&check, "noise")["verdict"], "not_reproducible");
    assert_eq!(step_of(&check, "noise")["differs"][0]["path"], "noise");
    // copy is checked against the memoized `when`, not the fresh one: the
    // same job, and reproducible.
    let copy = step_of(&check, "copy");
    assert_eq!(copy["id"], step_of(&first, "copy")["run"]["id"]);
    assert_eq!(copy["verdict"], "reproducible", "{copy}");

    // The text form names the steps and what differs.
    let text = node
        .cmd(["job", "run", path_str(&file), "--check"])
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(1));
    let said = String::from_utf8_lossy(&text.stderr);
    assert!(said.contains("step stamp: NOT reproducible"), "{said}");
    assert!(said.contains("  when: memoized "), "{said}");
    assert!(said.contains("not reproducible: noise, stamp"), "{said}");

    // The memo kept the old results: a normal run is a memo hit with the
    // old outputs.
    assert_eq!(results(&node, &first), before);
    let after = node.json(["job", "run", path_str(&file)]);
    for name in ["stamp", "noise", "copy"] {
        assert_eq!(step_of(&after, name)["run"]["memo_hit"], true, "{after}");
        assert_eq!(
            step_of(&after, name)["run"]["result"]["outputs"],
            step_of(&first, name)["run"]["result"]["outputs"]
        );
    }
    node.ok(["fsck"]);
}

#[test]
fn a_step_without_a_memo_runs_and_is_memoized() {
    let node = TestNode::loopback();
    let dir = node.scratch("p");
    write(
        &dir.join("p.toml"),
        "version = 1\n[step.only]\nargv = [\"sh\", \"-c\", \"echo hi > o\"]\noutputs = [\"o\"]\n",
    );
    let file = dir.join("p.toml");
    let check = node.json(["job", "run", path_str(&file), "--check"]);
    let only = step_of(&check, "only");
    assert_eq!(only["verdict"], "no_memo", "{check}");
    assert!(only.get("memoized_outputs").is_none());
    let text = node
        .cmd(["job", "run", path_str(&file), "--check"])
        .output()
        .unwrap();
    assert!(text.status.success());
    let said = String::from_utf8_lossy(&text.stderr);
    assert!(
        said.contains("step only: reproducible"),
        "memoized by the first check: {said}"
    );
    let after = node.json(["job", "run", path_str(&file)]);
    assert_eq!(step_of(&after, "only")["run"]["memo_hit"], true);
    assert_eq!(
        step_of(&after, "only")["run"]["result"],
        only["run"]["result"]
    );
}

#[test]
fn a_remote_step_is_checked_on_its_executor_whose_memo_keeps_the_old_result() {
    let mac = TestNode::loopback();
    let config = mac.home().join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[jobs]\nos = \"macos\"\nmin_sandbox = \"none\"\n");
    write(&config, &text);
    let laptop = TestNode::loopback();
    let _d = [mac.start_daemon(), laptop.start_daemon()];
    admit(&mac, &laptop, "exec");
    let dir = laptop.scratch("p");
    write(
        &dir.join("p.toml"),
        r#"version = 1
[step.far]
argv = ["sh", "-c", "head -c 32 /dev/urandom > noise; echo same > same"]
outputs = ["noise", "same"]
on = "os=macos"
"#,
    );
    let file = dir.join("p.toml");
    let first = laptop.json(["job", "run", path_str(&file)]);
    let far = step_of(&first, "far");
    assert_eq!(far["run"]["memo_hit"], false, "{first}");
    let id = far["run"]["id"].as_str().unwrap().to_owned();
    let on_mac = mac.json(["job", "result", &id]);
    let on_laptop = laptop.json(["job", "result", &id]);

    let (code, check, stderr) = json_any(&laptop, &["job", "run", path_str(&file), "--check"]);
    assert_eq!(code, 1, "{check}\n{stderr}");
    let checked = step_of(&check, "far");
    assert_eq!(checked["verdict"], "not_reproducible");
    assert_eq!(checked["differs"][0]["path"], "noise");
    assert_eq!(checked["run"]["executor"], far["run"]["executor"]);

    // Neither side's record or memo took the check's result.
    assert_eq!(mac.json(["job", "result", &id]), on_mac);
    assert_eq!(laptop.json(["job", "result", &id]), on_laptop);
    let after = laptop.json(["job", "run", path_str(&file)]);
    let far_after = step_of(&after, "far");
    assert_eq!(far_after["run"]["memo_hit"], true, "{after}");
    assert_eq!(far_after["run"]["result"], far["run"]["result"]);
}

#[test]
fn a_name_read_by_several_steps_is_resolved_once_per_run() {
    let node = TestNode::loopback();
    let _d = node.start_daemon();
    node.ok(["name", "zone", "create", "rel"]);
    let v1 = node.scratch("v1");
    let v2 = node.scratch("v2");
    write(&v1, "one\n");
    write(&v2, "two\n");
    node.ok(["name", "publish", "rel/tool", path_str(&v1)]);
    // `mover` moves the name while the pipeline runs; `reader`, after it,
    // reads the name too: resolved once, it still sees what the run began
    // with.
    let dir = node.scratch("p");
    write(
        &dir.join("p.toml"),
        &format!(
            r#"version = 1
[step.mover]
argv = ["sh", "-c", "cat tool > before && {bin} --home {home} name publish rel/tool {v2}"]
inputs = {{ "tool" = "rel/tool" }}
outputs = ["before"]
sandbox = "none"
[step.reader]
argv = ["sh", "-c", "cat tool m/before > seen"]
inputs = {{ "tool" = "rel/tool", "m" = "step:mover" }}
outputs = ["seen"]
"#,
            bin = clive_bin().display(),
            home = node.home().display(),
            v2 = v2.display()
        ),
    );
    let out = node.scratch("out");
    node.ok([
        "job",
        "run",
        path_str(&dir.join("p.toml")),
        "-o",
        path_str(&out),
    ]);
    let resolved = node.json(["name", "resolve", "rel/tool"]);
    let v2_hash = tool("b3sum", ["--no-names", path_str(&v2)]);
    assert_eq!(resolved["hash"], v2_hash.trim(), "the step moved the name");
    let seen = std::fs::read_to_string(out.join("reader/seen")).unwrap();
    assert_eq!(
        seen, "one\none\n",
        "both steps read the name as the run resolved it"
    );
}

/// Waits (bounded) until `path` exists.
fn wait_for(path: &Path) {
    for _ in 0..1200 {
        if path.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} never appeared", path.display());
}

/// A mac node that runs the laptop's jobs, and a pipeline whose one step
/// runs there, writes random bytes and, while `hold` exists, says so in
/// `started` and waits (bounded) for `gate`.
struct HeldCheck {
    mac: TestNode,
    laptop: TestNode,
    _daemons: [clive_tests::Daemon; 2],
    file: std::path::PathBuf,
    hold: std::path::PathBuf,
    started: std::path::PathBuf,
    gate: std::path::PathBuf,
}

fn held_check() -> HeldCheck {
    let mac = TestNode::loopback();
    let config = mac.home().join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[jobs]\nos = \"macos\"\nmin_sandbox = \"none\"\n");
    write(&config, &text);
    let laptop = TestNode::loopback();
    let daemons = [mac.start_daemon(), laptop.start_daemon()];
    admit(&mac, &laptop, "exec");
    let dir = laptop.scratch("p");
    let (hold, started, gate) = (dir.join("hold"), dir.join("started"), dir.join("gate"));
    write(
        &dir.join("p.toml"),
        &format!(
            r#"version = 1
[step.far]
argv = ["sh", "-c", "head -c 32 /dev/urandom > noise; if [ -e {hold} ]; then touch {started}; i=0; while [ ! -e {gate} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; fi"]
outputs = ["noise"]
on = "os=macos"
"#,
            hold = hold.display(),
            started = started.display(),
            gate = gate.display(),
        ),
    );
    HeldCheck {
        file: dir.join("p.toml"),
        mac,
        laptop,
        _daemons: daemons,
        hold,
        started,
        gate,
    }
}

#[test]
fn an_ordinary_run_while_its_check_runs_does_not_memoize_the_checks_result() {
    let h = held_check();
    let file = path_str(&h.file);
    let first = h.laptop.json(["job", "run", file]);
    let far = step_of(&first, "far");
    let outputs = far["run"]["result"]["outputs"].clone();
    write(&h.hold, "");
    let mut check = h
        .laptop
        .cmd(["--json", "job", "run", file, "--check"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&h.started);

    // An ordinary run (here and on the executor) is refused while the
    // check runs: it does not follow the check's run.
    let (code, run, stderr) = json_any(&h.laptop, &["job", "run", file, "--no-cache"]);
    assert_ne!(code, 0, "{run}\n{stderr}");
    assert!(
        format!("{run}{stderr}").contains("a reproducibility check of job"),
        "{run}\n{stderr}"
    );
    let id = far["run"]["id"].as_str().unwrap();
    let attach = h.laptop.cmd(["job", "attach", id]).output().unwrap();
    let said = String::from_utf8_lossy(&attach.stderr);
    assert!(!attach.status.success(), "{said}");
    assert!(said.contains("a reproducibility check of job"), "{said}");
    write(&h.gate, "");
    check.wait().unwrap();

    // The memo still answers the first run's outputs, on both sides.
    let after = h.laptop.json(["job", "run", file]);
    assert_eq!(step_of(&after, "far")["run"]["memo_hit"], true, "{after}");
    assert_eq!(step_of(&after, "far")["run"]["result"]["outputs"], outputs);
    assert_eq!(
        h.mac.json(["job", "result", id])["result"]["outputs"],
        outputs
    );
}

#[test]
fn a_check_whose_client_is_killed_leaves_no_live_sent_record() {
    let h = held_check();
    let file = path_str(&h.file);
    let first = h.laptop.json(["job", "run", file]);
    let id = step_of(&first, "far")["run"]["id"].clone();
    write(&h.hold, "");
    let mut check = h
        .laptop
        .cmd(["job", "run", file, "--check"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&h.started);
    check.kill().unwrap();
    check.wait().unwrap();
    write(&h.gate, "");
    let live = |jobs: &serde_json::Value| {
        jobs.as_array()
            .unwrap()
            .iter()
            .filter(|j| j["state"] == "queued" || j["state"] == "running")
            .count()
    };
    let mut jobs = serde_json::Value::Null;
    for _ in 0..1200 {
        jobs = h.laptop.json(["job", "ls"]);
        if live(&jobs) == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(live(&jobs), 0, "{jobs}");
    // The record the check replaced is back: the first run's result.
    let record = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == id)
        .unwrap_or_else(|| panic!("no record of {id}: {jobs}"));
    assert_eq!(record["state"], "done", "{jobs}");
    let after = h.laptop.json(["job", "run", file]);
    assert_eq!(step_of(&after, "far")["run"]["memo_hit"], true, "{after}");
}
