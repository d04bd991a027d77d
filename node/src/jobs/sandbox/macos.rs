//! The macOS sandbox: a `sandbox-exec` profile, generated as plain text
//! (compiled and tested on every platform; only [`SANDBOX_EXEC`] running it
//! is macOS's).
//!
//! The profile (SBPL, version 1): deny by default; read file contents only
//! in the job directory, [`SYSTEM_READ_ONLY`] and the caller's extra
//! read-only paths; read file metadata anywhere (resolving a path stats its
//! parents); write only in the job directory (and to `/dev/null`); fork,
//! exec, signals within the sandbox, `sysctl` reads and the few Mach
//! services libc's user and time lookups need. There is no network rule at
//! all, so every network operation falls under `deny default`.

use std::path::{Path, PathBuf};

/// The program that applies a profile: `sandbox-exec -p PROFILE PROGRAM ARGS...`.
pub const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";

/// System paths readable under the profile: the toolchain (`/usr`,
/// `/Library/Developer` and Xcode), the system's libraries and frameworks
/// (`/System`, `/Library/Frameworks`), shells and tools (`/bin`, `/sbin`),
/// and what libc reads from `/private/etc` and `/private/var/db` (time zone,
/// dyld's cache).
pub const SYSTEM_READ_ONLY: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/System",
    "/Library/Developer",
    "/Library/Frameworks",
    "/Applications/Xcode.app",
    "/private/etc",
    "/private/var/db/timezone",
    "/private/var/db/dyld",
    "/private/var/select",
];

/// Device files the job may read; `/dev/null` it may also write.
pub const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"];

/// Mach services libc needs for user lookups, notifications and logging.
pub const MACH_SERVICES: &[&str] = &[
    "com.apple.system.opendirectoryd.libinfo",
    "com.apple.system.notification_center",
    "com.apple.system.logger",
];

/// An SBPL string literal for `s`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn subpath(path: &Path) -> String {
    format!("(subpath {})", quote(&path.to_string_lossy()))
}

/// The `sandbox-exec` profile for a job in `job_dir` (an absolute, resolved
/// path: macOS rules match real paths, `/private/var/...` not `/var/...`),
/// with `read_only` readable beside [`SYSTEM_READ_ONLY`].
pub fn profile(job_dir: &Path, read_only: &[PathBuf]) -> String {
    let job = subpath(job_dir);
    let mut reads: Vec<String> = SYSTEM_READ_ONLY
        .iter()
        .map(|p| subpath(Path::new(p)))
        .chain(read_only.iter().map(|p| subpath(p)))
        .chain(DEVICES.iter().map(|d| format!("(literal {})", quote(d))))
        .collect();
    reads.push(job.clone());
    let services: Vec<String> = MACH_SERVICES
        .iter()
        .map(|s| format!("(global-name {})", quote(s)))
        .collect();
    let mut p = String::new();
    p.push_str("(version 1)\n");
    p.push_str("(deny default)\n");
    p.push_str("(allow process-fork)\n");
    p.push_str("(allow process-exec)\n");
    p.push_str("(allow signal (target same-sandbox))\n");
    p.push_str("(allow sysctl-read)\n");
    p.push_str("(allow file-read-metadata)\n");
    p.push_str(&format!("(allow file-read* {})\n", reads.join(" ")));
    p.push_str(&format!("(allow file-write* {job})\n"));
    p.push_str("(allow file-write-data (literal \"/dev/null\"))\n");
    p.push_str(&format!("(allow mach-lookup {})\n", services.join(" ")));
    p
}

/// The argv that runs `program` with `args` under `profile`.
pub fn wrap(profile: &str, program: &str, args: &[String]) -> Vec<String> {
    let mut argv = vec![
        SANDBOX_EXEC.to_owned(),
        "-p".to_owned(),
        profile.to_owned(),
        program.to_owned(),
    ];
    argv.extend(args.iter().cloned());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(p: &str) -> Vec<&str> {
        p.lines().collect()
    }

    #[test]
    fn denies_by_default_and_has_no_network_rule() {
        let p = profile(Path::new("/private/var/jobs/j1/root"), &[]);
        let lines = lines(&p);
        assert_eq!(lines[0], "(version 1)");
        assert_eq!(lines[1], "(deny default)");
        assert!(!p.contains("network"), "{p}");
        // Nothing else is denied or allowed wholesale: every allow names what.
        assert!(!lines.contains(&"(allow default)"), "{p}");
        assert!(!p.contains("file-write* (subpath \"/\")"), "{p}");
    }

    #[test]
    fn writes_only_in_the_job_dir() {
        let job = "/private/var/jobs/j1/root";
        let p = profile(Path::new(job), &[PathBuf::from("/opt/toolchain")]);
        let writes: Vec<&str> = p.lines().filter(|l| l.contains("file-write")).collect();
        assert_eq!(
            writes,
            [
                "(allow file-write* (subpath \"/private/var/jobs/j1/root\"))",
                "(allow file-write-data (literal \"/dev/null\"))",
            ],
            "{p}"
        );
        let reads = p
            .lines()
            .find(|l| l.starts_with("(allow file-read* "))
            .unwrap();
        for path in SYSTEM_READ_ONLY.iter().chain([&job, &"/opt/toolchain"]) {
            assert!(
                reads.contains(&format!("(subpath \"{path}\")")),
                "{path} in {reads}"
            );
        }
        assert!(!reads.contains("(subpath \"/Users"), "{reads}");
    }

    #[test]
    fn quotes_paths() {
        let p = profile(Path::new("/jobs/a\"b\\c"), &[]);
        assert!(
            p.contains("(allow file-write* (subpath \"/jobs/a\\\"b\\\\c\"))"),
            "{p}"
        );
        assert!(!p.contains("a\"b"), "{p}");
    }

    #[test]
    fn wraps_argv() {
        let argv = wrap("(version 1)", "/usr/bin/make", &["-j2".to_owned()]);
        assert_eq!(
            argv,
            [SANDBOX_EXEC, "-p", "(version 1)", "/usr/bin/make", "-j2"]
        );
    }
}
