//! The job supervisor: `clive-node` re-executed with the hidden first
//! argument [`ARG`] (and [`PROTOCOL_VERSION`]), checked by `cli/src/main.rs`
//! before anything else starts, so this process is single-threaded and
//! sandbox setup between `fork` and `exec` is ordinary code.
//!
//! It owns the job's whole process tree: it starts its own session, makes
//! itself a child subreaper (Linux), so every orphan of the job is
//! reparented to it, applies the sandbox level, starts the job, and waits for
//! every descendant. When the job's main process ends, or on a kill request,
//! SIGTERM/SIGINT/SIGHUP, or the executor going away, it kills every
//! descendant (found by walking `/proc`): first it freezes them (SIGSTOP,
//! listing again until nothing new shows up, so a fork bomb cannot outrun
//! it), then SIGKILLs them, repeating until none is left (bounded in rounds
//! and time), and reaps them; only then it reports. What holds when the
//! supervisor itself dies, per level: see [`crate::jobs::sandbox`].
//!
//! # Protocol (version 1)
//!
//! The executor starts `clive-node __job-supervisor 1` with exactly three
//! descriptors: stdin is one end of a Unix stream socket pair (the control
//! socket), stdout and stderr are the job's stdout and stderr pipes (the job
//! inherits them; the supervisor writes nothing to them).
//!
//! - executor -> supervisor, on the control socket: the [`Spec`] as a 4-byte
//!   big-endian length (at most [`MAX_SPEC_LEN`]) and that many bytes of
//!   JSON; then single bytes: `k` means kill the job's tree now (timeout or
//!   cancel). End of file (the executor closed it, or died) also kills the
//!   tree: that is how executor death is noticed (`PR_SET_PDEATHSIG` on the
//!   supervisor would fire when the executor *thread* that spawned it exits).
//! - supervisor -> executor, on the same socket, once at the end: one
//!   [`Report`] as a JSON line (`\n`-terminated), then the supervisor exits:
//!   status 0 after a job ran, 1 after a setup failure (the report's `error`).
//!
//! Both JSON objects refuse unknown fields:
//!
//! ```text
//! Spec   {"v":1, "root":"/abs/job", "workdir":"/abs/job/sub", "argv":["make"],
//!         "env":{"PATH":"/usr/bin:/bin"}, "level":"none"|"landlock"|"isolated"}
//! Report {"v":1, "code":0 | "signal":9, "killed":false, "cpu_us":1234,
//!         "max_rss_bytes":5242880, "survivors":0}
//!        {"v":1, "error":"landlock: ...", "killed":false, "cpu_us":0,
//!         "max_rss_bytes":0, "survivors":0}
//! ```
//!
//! `killed`: the tree was killed on request (`k`, end of file, or a signal)
//! while the job's main process still ran. `cpu_us`: user plus system time
//! of every process of the job (`getrusage(RUSAGE_CHILDREN)` once all are
//! reaped). `max_rss_bytes`: the largest resident set of any one of them.
//! `survivors`: processes still alive after the bounded kill loop (2000
//! rounds or 20 s).
//!
//! The job process: exactly the spec's environment, stdin `/dev/null`, the
//! workdir as its current directory, every other descriptor closed, default
//! signal dispositions, `argv[0]` looked up in the spec's own `PATH` (default
//! `/usr/bin:/bin`). A program that cannot be executed exits 127 (not found)
//! or 126 (not executable) with a message on its stderr, as shells do.
//!
//! `isolated`: the supervisor enters new user, PID and network namespaces
//! itself; its child is PID 1 of the new PID namespace (the "namespace
//! init"): it makes a new mount namespace (fresh `/proc`, private `/tmp`),
//! starts the job, reaps orphans, kills the namespace when the job ends, and
//! passes the job's wait status to the supervisor on a pipe. Killing the
//! namespace init kills the whole namespace (the kernel does it).
//!
//! macOS has no subreaper: the job gets its own process group, which is
//! what is killed, so a job there that calls `setsid` can escape the kill.

use std::{
    collections::BTreeMap,
    ffi::{CString, OsString},
    io::{self, Read, Write},
    os::{fd::FromRawFd, unix::ffi::OsStrExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicI32, Ordering},
};

use serde::{Deserialize, Serialize};

use crate::jobs::sandbox::SandboxLevel;

/// The hidden first argument that makes `clive-node` the supervisor.
pub const ARG: &str = "__job-supervisor";
/// The protocol version, passed as the second argument.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest spec frame the supervisor reads.
pub const MAX_SPEC_LEN: u32 = 16 * 1024 * 1024;
/// The control byte that asks for the tree to be killed.
pub const KILL: u8 = b'k';
/// Rounds of "freeze every descendant, SIGKILL them" before giving up.
const KILL_ROUNDS: u32 = 2000;
/// How long killing the tree may take before what is left is reported as
/// survivors.
const KILL_TIME: std::time::Duration = std::time::Duration::from_secs(20);

/// What to run: sent by the executor first on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// [`PROTOCOL_VERSION`].
    pub v: u32,
    /// The job directory (writable under `landlock`; everything else is not).
    pub root: PathBuf,
    /// The job's current directory, inside `root`.
    pub workdir: PathBuf,
    /// The command; `argv[0]` is looked up in `env`'s `PATH`.
    pub argv: Vec<String>,
    /// Exactly the job's environment.
    pub env: BTreeMap<String, String>,
    /// The sandbox level to apply.
    pub level: SandboxLevel,
}

/// How it ended: sent once by the supervisor at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// [`PROTOCOL_VERSION`].
    pub v: u32,
    /// Set when the sandbox or the job could not be set up (nothing ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The job's exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The signal that ended the job, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// The tree was killed on request while the job's main process still ran.
    pub killed: bool,
    /// User plus system CPU time of every reaped process of the job, in µs.
    pub cpu_us: u64,
    /// The largest resident set of any process of the job, in bytes.
    pub max_rss_bytes: u64,
    /// Processes still alive after the bounded kill loop (0 normally).
    pub survivors: u32,
}

impl Report {
    fn failed(error: impl Into<String>) -> Report {
        Report {
            v: PROTOCOL_VERSION,
            error: Some(error.into()),
            ..Report::default()
        }
    }
}

/// The supervisor's entry point: `args` are the arguments after [`ARG`].
/// Never returns.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ! {
    let mut args = args.into_iter();
    let report = match args.next() {
        Some(v) if v.as_bytes() == PROTOCOL_VERSION.to_string().as_bytes() => supervise(),
        other => Report::failed(format!(
            "supervisor protocol {other:?} is not {PROTOCOL_VERSION}"
        )),
    };
    let status = i32::from(report.error.is_some());
    let mut line = serde_json::to_vec(&report).unwrap_or_default();
    line.push(b'\n');
    // SAFETY: fd 0 is the control socket this process was started with; the
    // File is forgotten below, so it is not closed twice.
    let mut ctl = unsafe { std::fs::File::from_raw_fd(0) };
    // The executor may be gone: nothing to do about a failed report then.
    let _ = ctl.write_all(&line);
    std::mem::forget(ctl);
    std::process::exit(status)
}

/// The last OS error, with what was being done.
fn os_err(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

fn read_spec() -> Result<Spec, String> {
    // SAFETY: fd 0 is the control socket; forgotten below, not closed.
    let mut ctl = unsafe { std::fs::File::from_raw_fd(0) };
    let result = (|| {
        let mut len = [0u8; 4];
        ctl.read_exact(&mut len)
            .map_err(|e| format!("reading the spec: {e}"))?;
        let len = u32::from_be_bytes(len);
        if len > MAX_SPEC_LEN {
            return Err(format!("spec of {len} bytes is over {MAX_SPEC_LEN}"));
        }
        let mut buf = vec![0u8; len as usize];
        ctl.read_exact(&mut buf)
            .map_err(|e| format!("reading the spec: {e}"))?;
        let spec: Spec =
            serde_json::from_slice(&buf).map_err(|e| format!("decoding the spec: {e}"))?;
        if spec.v != PROTOCOL_VERSION {
            return Err(format!("spec version {} is not {PROTOCOL_VERSION}", spec.v));
        }
        if spec.argv.is_empty() {
            return Err("the spec has no argv".to_owned());
        }
        Ok(spec)
    })();
    std::mem::forget(ctl);
    result
}

/// The write end of the self-pipe the signal handler writes to.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking,
        // so a full pipe drops the byte (a wake-up is already pending).
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

const HANDLED: [libc::c_int; 4] = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

fn set_handler(signal: libc::c_int, handler: libc::sighandler_t) -> Result<(), String> {
    // SAFETY: a zeroed sigaction with a handler (or SIG_DFL/SIG_IGN) and an
    // empty mask is a valid argument.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(os_err("sigaction"));
        }
    }
    Ok(())
}

/// A pipe whose both ends close on exec.
fn cloexec_pipe() -> Result<(libc::c_int, libc::c_int), String> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(os_err("pipe"));
    }
    for fd in fds {
        // SAFETY: fd was just opened.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((fds[0], fds[1]))
}

fn close(fd: libc::c_int) {
    // SAFETY: closing a descriptor this process owns.
    unsafe { libc::close(fd) };
}

/// Reads `fd` to its end (retrying interrupted reads).
fn read_to_end(fd: libc::c_int) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            out.extend_from_slice(&buf[..n as usize]);
        } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return out;
        }
    }
}

fn supervise() -> Report {
    let spec = match read_spec() {
        Ok(spec) => spec,
        Err(e) => return Report::failed(e),
    };
    match start(&spec) {
        Ok(running) => running.wait(false),
        Err(e) => Report::failed(e),
    }
}

/// The job, started: what the supervisor waits for.
struct Running {
    /// The supervisor's direct child: the job, or the namespace init.
    main: libc::pid_t,
    /// `isolated`: the pipe the namespace init passes the job's status on.
    status_pipe: Option<libc::c_int>,
    signals: libc::c_int,
}

fn start(spec: &Spec) -> Result<Running, String> {
    // SAFETY: setsid and prctl take no pointers; setsid fails harmlessly
    // when this process already leads a group.
    unsafe {
        libc::setsid();
        #[cfg(target_os = "linux")]
        if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
            return Err(os_err("becoming a child subreaper"));
        }
    }
    let (signals, signals_w) = cloexec_pipe()?;
    for fd in [signals, signals_w] {
        // SAFETY: fd was just opened.
        unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    }
    SIGNAL_PIPE.store(signals_w, Ordering::Relaxed);
    for signal in HANDLED {
        set_handler(
            signal,
            on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        )?;
    }
    set_handler(libc::SIGPIPE, libc::SIG_IGN)?;

    if spec.level == SandboxLevel::Isolated {
        #[cfg(target_os = "linux")]
        crate::jobs::sandbox::linux::enter_namespaces().map_err(|e| e.to_string())?;
        #[cfg(not(target_os = "linux"))]
        return Err("the isolated level needs Linux".to_owned());
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    if spec.level != SandboxLevel::None {
        return Err(format!("the {} level is not available here", spec.level));
    }

    let (err_r, err_w) = cloexec_pipe()?;
    let status = if spec.level == SandboxLevel::Isolated {
        Some(cloexec_pipe()?)
    } else {
        None
    };
    // SAFETY: this process is single-threaded (the supervisor runs before
    // anything can start a thread), so the child may run ordinary code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_err("fork"));
    }
    if pid == 0 {
        child_reset();
        match status {
            Some((r, w)) => {
                close(r);
                namespace_init(spec, err_w, w)
            }
            None => job_child(spec, err_w),
        }
    }
    close(err_w);
    let status_pipe = status.map(|(r, w)| {
        close(w);
        r
    });
    let running = Running {
        main: pid,
        status_pipe,
        signals,
    };
    // Empty: the job executed (the pipe closed on exec) or could not be run
    // (its message is on its stderr). Otherwise the setup error.
    let setup = read_to_end(err_r);
    close(err_r);
    if !setup.is_empty() {
        running.wait(true);
        return Err(String::from_utf8_lossy(&setup).into_owned());
    }
    Ok(running)
}

/// In a freshly forked child: default signal dispositions, no mask, and the
/// supervisor's self-pipe out of the way.
fn child_reset() {
    let fd = SIGNAL_PIPE.swap(-1, Ordering::Relaxed);
    for signal in HANDLED.into_iter().chain([libc::SIGPIPE]) {
        let _ = set_handler(signal, libc::SIG_DFL);
    }
    if fd >= 0 {
        close(fd);
    }
    // SAFETY: an empty set is a valid mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Writes a setup failure on the error pipe and leaves.
fn fail(err_w: libc::c_int, message: &str) -> ! {
    // SAFETY: writing a valid buffer, then leaving without running any of
    // the parent's destructors or atexit handlers.
    unsafe {
        libc::write(err_w, message.as_ptr().cast(), message.len());
        libc::_exit(1)
    }
}

/// Ends the calling process when its parent (the supervisor, or the
/// namespace init) dies, unless that already happened.
fn die_with_parent(parent: libc::pid_t) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments; getppid and _exit are plain calls.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
}

fn to_cstring(what: &str, s: &[u8]) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what} contains NUL"))
}

/// The job process, after fork: set up, then exec. Never returns.
fn job_child(spec: &Spec, err_w: libc::c_int) -> ! {
    // SAFETY: getppid is a plain call.
    let parent = unsafe { libc::getppid() };
    die_with_parent(parent);
    if let Err(e) = prepare_job(spec) {
        fail(err_w, &e)
    }
    exec(spec)
}

fn prepare_job(spec: &Spec) -> Result<(), String> {
    // SAFETY: setpgid with integer arguments.
    unsafe { libc::setpgid(0, 0) };
    let workdir = to_cstring("the workdir", spec.workdir.as_os_str().as_bytes())?;
    // SAFETY: valid NUL-terminated paths; dup2 onto stdin.
    unsafe {
        if libc::chdir(workdir.as_ptr()) != 0 {
            return Err(os_err(&format!("entering {}", spec.workdir.display())));
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        if null < 0 || libc::dup2(null, 0) != 0 {
            return Err(os_err("opening /dev/null as stdin"));
        }
        if null != 0 {
            libc::close(null);
        }
    }
    close_other_fds();
    match spec.level {
        SandboxLevel::None => {}
        #[cfg(target_os = "linux")]
        SandboxLevel::Landlock | SandboxLevel::Isolated => {
            let isolated = spec.level == SandboxLevel::Isolated;
            crate::jobs::sandbox::linux::restrict(&spec.root, isolated)
                .map_err(|e| e.to_string())?;
        }
        #[cfg(not(target_os = "linux"))]
        // macOS: applied by exec() through sandbox-exec.
        SandboxLevel::Landlock | SandboxLevel::Isolated => {}
    }
    Ok(())
}

/// Marks every descriptor above stderr close-on-exec (the error pipe
/// already is).
fn close_other_fds() {
    #[cfg(target_os = "linux")]
    // SAFETY: close_range with CLOEXEC only changes descriptor flags.
    let done = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) == 0
    };
    #[cfg(not(target_os = "linux"))]
    let done = false;
    if !done {
        // SAFETY: fcntl on descriptors that may or may not be open.
        let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(256, 65536) as libc::c_int;
        for fd in 3..max {
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

/// The places `argv[0]` may be, in order: itself when it has a `/`, else
/// each directory of the job's `PATH` (`/usr/bin:/bin` when it has none).
fn candidates(program: &str, env: &BTreeMap<String, String>) -> Vec<PathBuf> {
    if program.contains('/') {
        return vec![PathBuf::from(program)];
    }
    let path = env.get("PATH").map_or("/usr/bin:/bin", String::as_str);
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .collect()
}

/// Execs the job; on failure writes why to its stderr and exits 127 or 126.
fn exec(spec: &Spec) -> ! {
    let program = &spec.argv[0];
    let message = match exec_candidates(spec) {
        Ok(never) => match never {},
        Err(message) => message,
    };
    let line = format!("clive-node: cannot run `{program}`: {}\n", message.1);
    // SAFETY: write to the job's stderr, then leave.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(message.0)
    }
}

enum Never {}

/// The argv to exec and where its program may be.
#[cfg(not(target_os = "macos"))]
fn sandboxed_argv(spec: &Spec) -> (Vec<String>, Vec<PathBuf>) {
    (spec.argv.clone(), candidates(&spec.argv[0], &spec.env))
}

/// macOS `landlock`: the job under `sandbox-exec` with the generated profile.
#[cfg(target_os = "macos")]
fn sandboxed_argv(spec: &Spec) -> (Vec<String>, Vec<PathBuf>) {
    use crate::jobs::sandbox::macos;
    let found = candidates(&spec.argv[0], &spec.env);
    if spec.level == SandboxLevel::None {
        return (spec.argv.clone(), found);
    }
    let root = std::fs::canonicalize(&spec.root).unwrap_or_else(|_| spec.root.clone());
    let profile = macos::profile(&root, &[]);
    let program = found.iter().find(|p| p.is_file()).map_or_else(
        || spec.argv[0].clone(),
        |p| p.to_string_lossy().into_owned(),
    );
    let argv = macos::wrap(&profile, &program, &spec.argv[1..]);
    (argv, vec![PathBuf::from(macos::SANDBOX_EXEC)])
}

fn exec_candidates(spec: &Spec) -> Result<Never, (i32, String)> {
    let bad = |what: &str| (126, format!("{what} contains NUL"));
    let env: Vec<CString> = spec
        .env
        .iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")).map_err(|_| bad("the environment")))
        .collect::<Result<_, _>>()?;
    let (args, found) = sandboxed_argv(spec);
    let argv: Vec<CString> = args
        .into_iter()
        .map(|a| CString::new(a).map_err(|_| bad("argv")))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let mut denied = false;
    let mut last = io::Error::from_raw_os_error(libc::ENOENT);
    for path in found {
        let Ok(path) = CString::new(path.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: NUL-terminated arrays of valid C strings.
        unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {}
            Some(libc::EACCES) => denied = true,
            _ => return Err((126, error.to_string())),
        }
        last = error;
    }
    if denied {
        Err((126, io::Error::from_raw_os_error(libc::EACCES).to_string()))
    } else {
        Err((127, last.to_string()))
    }
}

/// PID 1 of the new PID namespace (`isolated`). Never returns.
#[cfg(target_os = "linux")]
fn namespace_init(spec: &Spec, err_w: libc::c_int, status_w: libc::c_int) -> ! {
    // The supervisor is this process's parent, outside the namespace (0 here).
    die_with_parent(0);
    if let Err(e) = crate::jobs::sandbox::linux::private_mounts(&spec.root) {
        fail(err_w, &e.to_string())
    }
    // SAFETY: stdin onto /dev/null (the control socket is the supervisor's).
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        if null > 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
    }
    // SAFETY: single-threaded: the child may run ordinary code.
    let job = unsafe { libc::fork() };
    if job < 0 {
        fail(err_w, &os_err("fork in the namespace"))
    }
    if job == 0 {
        close(status_w);
        job_child(spec, err_w)
    }
    close(err_w);
    let mut job_status: Option<libc::c_int> = None;
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r == job {
            job_status = Some(status);
            // SAFETY: -1 from PID 1 is every other process of the namespace.
            unsafe { libc::kill(-1, libc::SIGKILL) };
        } else if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break;
        }
    }
    if let Some(status) = job_status {
        let bytes = status.to_ne_bytes();
        // SAFETY: writing a valid buffer.
        unsafe { libc::write(status_w, bytes.as_ptr().cast(), bytes.len()) };
    }
    // SAFETY: leaving without the parent's destructors.
    unsafe { libc::_exit(0) }
}

#[cfg(not(target_os = "linux"))]
fn namespace_init(_: &Spec, err_w: libc::c_int, _: libc::c_int) -> ! {
    fail(err_w, "the isolated level needs Linux")
}

/// Sends `sig` to `pid` (a process group when negative).
#[cfg(not(target_os = "linux"))]
fn signal(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, sig) };
}

impl Running {
    /// Waits for the job and every descendant; kills the tree when the main
    /// process ends or a kill is asked for; then reports.
    fn wait(self, kill_now: bool) -> Report {
        let mut main_status: Option<libc::c_int> = None;
        let mut ctl_open = true;
        let mut killing = kill_now;
        let mut killed = false;
        let mut rounds = 0u32;
        let mut survivors = 0u32;
        let mut kill_deadline = None;
        loop {
            let children_left = self.reap(&mut main_status);
            if main_status.is_some() {
                killing = true;
            }
            if killing {
                let deadline =
                    *kill_deadline.get_or_insert_with(|| std::time::Instant::now() + KILL_TIME);
                #[cfg(target_os = "linux")]
                let living = crate::jobs::sandbox::linux::living_descendants();
                // Without a subreaper: the job's process group, once.
                #[cfg(not(target_os = "linux"))]
                let living: Vec<libc::pid_t> = if rounds == 0 {
                    vec![-self.main]
                } else {
                    Vec::new()
                };
                if living.is_empty() && !children_left {
                    break;
                }
                if rounds >= KILL_ROUNDS || std::time::Instant::now() >= deadline {
                    survivors = living.len() as u32;
                    break;
                }
                rounds += 1;
                #[cfg(target_os = "linux")]
                crate::jobs::sandbox::linux::freeze_and_kill(living, deadline);
                #[cfg(not(target_os = "linux"))]
                for pid in living {
                    signal(pid, libc::SIGKILL);
                }
            } else if !children_left {
                break;
            }
            let kill = self.poll(&mut ctl_open, if killing { 5 } else { 1000 });
            if kill && !killing {
                killing = true;
                killed = main_status.is_none();
            }
        }
        let mut report = Report {
            v: PROTOCOL_VERSION,
            killed,
            survivors,
            ..Report::default()
        };
        let status = self.job_status(main_status);
        if let Some(status) = status {
            if libc::WIFSIGNALED(status) {
                report.signal = Some(libc::WTERMSIG(status));
            } else {
                report.code = Some(libc::WEXITSTATUS(status));
            }
        }
        // SAFETY: usage is a valid out-pointer.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            if libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) == 0 {
                let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
                report.cpu_us = us(usage.ru_utime) + us(usage.ru_stime);
                // Linux counts KiB, macOS bytes.
                let scale = if cfg!(target_os = "macos") { 1 } else { 1024 };
                report.max_rss_bytes = usage.ru_maxrss.max(0) as u64 * scale;
            }
        }
        report
    }

    /// The job's own wait status: the main child's, or under `isolated` the
    /// one the namespace init passed on (none when the init was killed).
    fn job_status(&self, main_status: Option<libc::c_int>) -> Option<libc::c_int> {
        if let Some(pipe) = self.status_pipe {
            let bytes = read_to_end(pipe);
            close(pipe);
            if let Ok(b) = <[u8; 4]>::try_from(bytes.as_slice()) {
                return Some(libc::c_int::from_ne_bytes(b));
            }
        }
        main_status
    }

    /// Reaps every child that has ended; `false` once no child is left.
    fn reap(&self, main_status: &mut Option<libc::c_int>) -> bool {
        loop {
            let mut status = 0;
            // SAFETY: status is a valid out-pointer.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if r > 0 {
                if r == self.main {
                    *main_status = Some(status);
                }
                continue;
            }
            if r == 0 {
                return true;
            }
            return io::Error::last_os_error().raw_os_error() != Some(libc::ECHILD);
        }
    }

    /// Waits up to `ms` for a signal or a control byte; `true` when the tree
    /// is to be killed (a kill byte, the control socket's end, a signal).
    fn poll(&self, ctl_open: &mut bool, ms: libc::c_int) -> bool {
        let mut fds = [
            libc::pollfd {
                fd: if *ctl_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.signals,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of two pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n <= 0 {
            return false;
        }
        let mut kill = false;
        let mut buf = [0u8; 64];
        if fds[0].revents != 0 {
            // SAFETY: buf is valid for its length.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                *ctl_open = false;
                kill = true;
            } else if buf[..n as usize].contains(&KILL) {
                kill = true;
            }
        }
        if fds[1].revents != 0 {
            loop {
                // SAFETY: buf is valid; the pipe is non-blocking.
                let n = unsafe { libc::read(self.signals, buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    break;
                }
                if buf[..n as usize]
                    .iter()
                    .any(|&s| libc::c_int::from(s) != libc::SIGCHLD)
                {
                    kill = true;
                }
            }
        }
        kill
    }
}
