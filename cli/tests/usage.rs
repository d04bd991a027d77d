//! The binary's own surface: usage errors and an uninitialised home.
//! (Also makes `cargo test` build `clive-node` for the end-to-end suite.)

// This target links every dependency of its package, used here or not:
// `unused_crate_dependencies` is checked on the library and its binary.
#![allow(unused_crate_dependencies)]

use std::process::Command;

fn clive() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clive-node"));
    cmd.env_remove("CLIVE_HOME");
    cmd
}

#[test]
fn commands_on_an_uninitialised_home_say_to_run_init() {
    let dir = tempfile::tempdir().unwrap();
    let out = clive()
        .arg("--home")
        .arg(dir.path().join("nowhere"))
        .arg("id")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run `clive-node init` first"), "{err}");
}

#[test]
fn clive_home_selects_the_home_and_bad_hashes_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let init = clive()
        .env("CLIVE_HOME", &home)
        .arg("init")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(home.join("id_ed25519").exists());
    let out = clive()
        .env("CLIVE_HOME", &home)
        .args(["cat", "not-a-hash"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("neither a hash (64 hex digits) nor the name of a pin"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_with_status_2() {
    let out = clive().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = clive().arg("add").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
