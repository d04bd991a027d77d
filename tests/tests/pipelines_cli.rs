//! Pipelines through the CLI: the early cutoff of the %ford proposal's
//! site example, bad pipelines refused before anything runs.

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::path::Path;

use clive_tests::{TestNode, count_lines, step_of, write};

/// The site: three pages; `titles` takes each page's first line,
/// `sidebar` renders them (counting its runs in a file outside the store),
/// `site` puts pages and sidebar together.
fn site(dir: &Path, counter: &Path) {
    for (name, title) in [("a", "Alpha"), ("b", "Beta"), ("c", "Gamma")] {
        write(
            &dir.join(format!("pages/{name}")),
            &format!("{title}\nbody of {name}\n"),
        );
    }
    write(
        &dir.join("site.toml"),
        &format!(
            r#"version = 1
[step.titles]
argv = ["sh", "-c", "head -qn1 pages/* > titles.txt"]
inputs = {{ "pages" = "./pages" }}
outputs = ["titles.txt"]
[step.sidebar]
argv = ["sh", "-c", "echo run >> {counter}; sed 's/^/- /' t/titles.txt > sidebar.html"]
inputs = {{ "t" = "step:titles" }}
outputs = ["sidebar.html"]
[step.site]
argv = ["sh", "-c", "cat s/sidebar.html pages/* > index.html"]
inputs = {{ "pages" = "./pages", "s" = "step:sidebar" }}
outputs = ["index.html"]
"#,
            counter = counter.display()
        ),
    );
}

#[test]
fn an_unchanged_intermediate_output_leaves_the_steps_after_it_memo_hits() {
    let node = TestNode::loopback();
    let daemon = node.start_daemon();
    let dir = node.scratch("site");
    let counter = node.scratch("sidebar-runs");
    site(&dir, &counter);
    let file = dir.join("site.toml");
    let out = node.scratch("out");
    let first = node.json([
        "job",
        "run",
        file.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        first["plan"],
        serde_json::json!([["titles"], ["sidebar"], ["site"]])
    );
    assert!(first.get("failed").is_none(), "{first}");
    assert_eq!(count_lines(&counter), 1);
    let index = std::fs::read_to_string(out.join("site/index.html")).unwrap();
    assert!(index.starts_with("- Alpha\n- Beta\n- Gamma\n"), "{index}");

    // A page's body changes, not its title: titles and site run again,
    // titles.txt is the same, so sidebar is a memo hit and does not run.
    write(&dir.join("pages/b"), "Beta\na new body\n");
    let second = node.json(["job", "run", file.to_str().unwrap()]);
    assert_eq!(step_of(&second, "titles")["run"]["memo_hit"], false);
    assert_eq!(step_of(&second, "sidebar")["run"]["memo_hit"], true);
    assert_eq!(step_of(&second, "site")["run"]["memo_hit"], false);
    assert_eq!(count_lines(&counter), 1, "sidebar did not run again");

    // A title changes: everything runs.
    write(&dir.join("pages/c"), "Delta\nbody of c\n");
    let third = node.json(["job", "run", file.to_str().unwrap()]);
    assert_eq!(step_of(&third, "sidebar")["run"]["memo_hit"], false);
    assert_eq!(count_lines(&counter), 2);
    node.stop(daemon);
}

#[test]
fn bad_pipelines_fail_before_any_step_runs() {
    let node = TestNode::loopback();
    let dir = node.scratch("bad");
    let marker = node.scratch("ran");
    // Each case, and what its error must say.
    let cases = [
        (
            "cycle",
            "steps form a cycle: a -> b -> a",
            // Each declares an output, so the cycle is what is wrong.
            "version = 1\n[step.a]\nargv = [\"true\"]\noutputs = [\"o\"]\n\
             inputs = { x = \"step:b\" }\n\
             [step.b]\nargv = [\"true\"]\noutputs = [\"o\"]\ninputs = { y = \"step:a\" }\n",
        ),
        (
            "unknown step",
            "step a input x reads step:nope, but there is no step nope",
            "version = 1\n[step.a]\nargv = [\"true\"]\ninputs = { x = \"step:nope\" }\n",
        ),
        (
            "undeclared output",
            "step b input x reads \"other\" of step a, which does not declare it (its outputs: o)",
            "version = 1\n[step.a]\nargv = [\"true\"]\noutputs = [\"o\"]\n\
             [step.b]\nargv = [\"true\"]\ninputs = { x = \"step:a/other\" }\n",
        ),
    ];
    for (what, expected, text) in cases {
        // A first step that would leave a mark if anything ran.
        let text = format!(
            "{text}[step.first]\nargv = [\"sh\", \"-c\", \"touch {}\"]\n",
            marker.display()
        );
        let file = dir.join(format!("{}.toml", what.replace(' ', "-")));
        write(&file, &text);
        let err = node.fails(["job", "run", file.to_str().unwrap()]);
        assert!(err.contains(expected), "{what}: {err}");
        assert!(!marker.exists(), "{what}: a step ran");
    }
    let big = dir.join("big.toml");
    write(&big, &format!("version = 1\n# {}\n", "x".repeat(2 << 20)));
    let err = node.fails(["job", "run", big.to_str().unwrap()]);
    assert!(
        err.contains("pipeline file is over 1048576 bytes: refused"),
        "{err}"
    );
}

/// Path inputs unchanged since an earlier run are not read again (their
/// stamps are remembered once settled), and any change to them, the same
/// size or with the modification time put back, is seen all the same.
#[test]
fn a_remembered_path_input_still_sees_every_edit() {
    let node = TestNode::loopback();
    let mut daemon = node.start_daemon();
    let dir = node.scratch("p");
    write(&dir.join("src/a.txt"), "one\n");
    write(
        &dir.join("p.toml"),
        "version = 1\n[step.copy]\nargv = [\"sh\", \"-c\", \"cat src/a.txt > out.txt\"]\n\
         inputs = { src = \"./src\" }\noutputs = [\"out.txt\"]\n",
    );
    let file = dir.join("p.toml");
    let out = node.scratch("out");
    let run = |expect: &str| {
        let _ = std::fs::remove_dir_all(&out);
        node.json([
            "job",
            "run",
            file.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        let got = std::fs::read_to_string(out.join("copy/out.txt")).unwrap();
        assert_eq!(got, expect);
    };
    run("one\n");
    // Past the settling time the stamp is remembered, and answers.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    run("one\n");
    run("one\n");
    // The same size, the modification time put back: still seen.
    let stamp = std::fs::metadata(dir.join("src/a.txt"))
        .unwrap()
        .modified()
        .unwrap();
    write(&dir.join("src/a.txt"), "two\n");
    std::fs::File::options()
        .write(true)
        .open(dir.join("src/a.txt"))
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    run("two\n");
    // A new file in the directory.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    run("two\n");
    write(&dir.join("src/b.txt"), "b\n");
    write(
        &dir.join("p.toml"),
        "version = 1\n[step.copy]\nargv = [\"sh\", \"-c\", \"cat src/*.txt > out.txt\"]\n\
         inputs = { src = \"./src\" }\noutputs = [\"out.txt\"]\n",
    );
    run("two\nb\n");
    node.ok(["stop"]);
    assert!(
        daemon
            .wait_exit(std::time::Duration::from_secs(60))
            .success()
    );
}
