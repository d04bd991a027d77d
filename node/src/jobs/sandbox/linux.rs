//! The Linux sandbox: Landlock rules and namespaces, applied by the
//! supervisor ([`crate::jobs::supervisor`]) in its single-threaded child.
//!
//! Landlock ([`restrict`]): the job directory gets every file right (read,
//! write, create, remove, execute); [`READ_ONLY`] paths get read and execute;
//! [`DEVICES`] get what each device needs; nothing else is reachable. TCP
//! bind and connect are denied (no port is allowed); sending signals to,
//! tracing, and connecting to abstract unix sockets of processes outside the
//! sandbox are denied. The rights asked for are those of [`TARGET_ABI`], as
//! a hard requirement: a kernel that cannot enforce every one of them makes
//! [`restrict`] fail (and such a kernel's machine does not offer the level:
//! [`super::landlock_suffices`]). A seccomp filter ([`deny_unix_sockets`])
//! then refuses new unix sockets, which Landlock (before ABI 9) does not
//! cover: the node's control socket and other local daemons stay out of
//! reach.
//!
//! Namespaces (`isolated`): the supervisor itself enters new user, PID and
//! network namespaces ([`enter_namespaces`]), mapping only its own uid and
//! gid; its first child is PID 1 of the new PID namespace and enters a new
//! mount namespace ([`private_mounts`]) where `/proc` is a fresh procfs of
//! that PID namespace and `/tmp` a private tmpfs. The network namespace has
//! only a loopback interface, left down: no network at all.

use std::{
    ffi::CString,
    io,
    path::{Path, PathBuf},
};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, make_bitflags,
};

/// The Landlock ABI whose rights this code asks for (and was tested with):
/// that of [`super::MIN_LANDLOCK_ABI`].
pub const TARGET_ABI: ABI = ABI::V6;

/// Read-only system paths under `landlock` and `isolated` (those missing on
/// this machine are skipped), and why each is there:
///
/// - `/usr`: compilers, headers, libraries and tools (merged-usr systems
///   keep `/bin` and `/lib` here);
/// - `/bin`, `/sbin`, `/lib`, `/lib32`, `/lib64`, `/libx32`: the same on
///   systems that are not merged, and the dynamic loader's own path;
/// - `/etc/alternatives`: `cc`, `c++`, `ld` are symlinks through it on Debian;
/// - `/etc/ld.so.cache`, `/etc/ld.so.conf`, `/etc/ld.so.conf.d`: the dynamic
///   loader's library search;
/// - `/etc/passwd`, `/etc/group`, `/etc/nsswitch.conf`: user and group names
///   (`ls -l`, `id`, tools that look up their own user);
/// - `/etc/localtime`: local time for tools that print dates;
/// - parts of `/proc`: see [`PROC_READ_ONLY`];
/// - `/sys/devices/system/cpu`: the CPU count (`sysconf`).
///
/// The rest of `/etc` (keys, shadow passwords), home directories, the node's
/// home and `/tmp` are not readable.
pub const READ_ONLY: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/sys/devices/system/cpu",
];

/// The parts of `/proc` readable under `landlock` (and why): system-wide
/// facts tools ask for (`/proc/cpuinfo`, `meminfo`, `stat`, `loadavg`,
/// `version`, `filesystems`, `/proc/sys/kernel` for `getconf` and `uname`
/// style queries), and the job's main process's own `/proc/PID` (what
/// `/proc/self` is for it). Not the rest: Landlock does not stop a job from
/// reading another process's `/proc/PID/environ` or `maps` (tried on this
/// kernel), so other processes' directories stay closed. `readlink
/// /proc/self/exe` and `/dev/fd/N` work without any rule. Under `isolated`
/// all of `/proc` is readable: it is the namespace's own, showing only the
/// job's processes.
pub const PROC_READ_ONLY: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/loadavg",
    "/proc/version",
    "/proc/filesystems",
    "/proc/sys/kernel",
    "/proc/self",
];

/// Devices a job may use: `(path, writable)`. `/dev/null`, `/dev/zero` and
/// `/dev/full` can be opened for writing (shells redirect to `/dev/null`
/// with `O_TRUNC`); the random devices only for reading.
pub const DEVICES: &[(&str, bool)] = &[
    ("/dev/null", true),
    ("/dev/zero", true),
    ("/dev/full", true),
    ("/dev/random", false),
    ("/dev/urandom", false),
];

/// The size limit of the private `/tmp` under `isolated`.
pub const TMP_SIZE: &str = "512m";

/// Errors setting up the Linux sandbox.
#[derive(Debug, thiserror::Error)]
pub enum LinuxError {
    /// The job directory (or another writable path) could not be opened.
    #[error("cannot open {path} for the landlock rules: {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        source: landlock::PathFdError,
    },
    /// The kernel refused the ruleset.
    #[error("landlock: {0}")]
    Ruleset(#[from] landlock::RulesetError),
    /// The kernel did not enforce the whole ruleset (no Landlock, it is
    /// disabled, or its ABI is older than [`TARGET_ABI`]).
    #[error("landlock is not fully enforced by this kernel")]
    NotEnforced,
    /// A namespace or mount step failed.
    #[error("{what}: {source}")]
    Namespace {
        /// The step.
        what: &'static str,
        /// The system's error.
        source: io::Error,
    },
}

/// The Landlock ABI of the running kernel, or `None` when it has none.
///
/// Asked of the kernel directly (`landlock_create_ruleset` with the version
/// flag): the `landlock` crate keeps its own probe private.
pub fn landlock_abi() -> Option<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer, size 0 and the version flag the
    // call only returns the ABI version (or fails); it touches no memory.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then(|| i32::try_from(v).unwrap_or(i32::MAX))
}

/// Restricts the calling thread (and what it executes) to the job directory
/// `root`, [`READ_ONLY`], [`PROC_READ_ONLY`] and [`DEVICES`], denies TCP
/// bind/connect, and scopes signals and abstract unix sockets to the job.
/// `isolated`: also the private `/tmp` (writable) and the namespace's whole
/// `/proc`. Call it in the single-threaded job process, right before `exec`
/// (so `/proc/self` is the job's main process). Every right of
/// [`TARGET_ABI`] is required: a kernel that lacks one is an error, nothing
/// is enforced in part.
pub fn restrict(root: &Path, isolated: bool) -> Result<(), LinuxError> {
    let tmp = Path::new("/tmp");
    let writable: &[&Path] = if isolated { &[tmp] } else { &[] };
    let proc_all: &[&str] = &["/proc"];
    let proc = if isolated { proc_all } else { PROC_READ_ONLY };
    let abi = TARGET_ABI;
    let all = AccessFs::from_all(abi);
    let read = AccessFs::from_read(abi);
    let file_read: BitFlags<AccessFs> = make_bitflags!(AccessFs::{ReadFile});
    let file_rw: BitFlags<AccessFs> =
        make_bitflags!(AccessFs::{ReadFile | WriteFile | Truncate | IoctlDev});

    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)?
        .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?
        .scope(Scope::from_all(abi))?
        .create()?;
    for path in std::iter::once(root).chain(writable.iter().copied()) {
        let fd = PathFd::new(path).map_err(|source| LinuxError::Path {
            path: path.to_owned(),
            source,
        })?;
        ruleset = ruleset.add_rule(PathBeneath::new(fd, all))?;
    }
    for path in READ_ONLY.iter().chain(proc) {
        // A path this system does not have is simply not granted.
        if let Ok(fd) = PathFd::new(path) {
            let access = if Path::new(path).is_dir() {
                read
            } else {
                file_read
            };
            ruleset = ruleset.add_rule(PathBeneath::new(fd, access))?;
        }
    }
    for (path, writable) in DEVICES {
        if let Ok(fd) = PathFd::new(path) {
            let access = if *writable { file_rw } else { file_read };
            ruleset = ruleset.add_rule(PathBeneath::new(fd, access))?;
        }
    }
    let status = ruleset.restrict_self()?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(LinuxError::NotEnforced);
    }
    deny_unix_sockets()
}

fn check(what: &'static str, ret: libc::c_int) -> Result<(), LinuxError> {
    if ret == 0 {
        Ok(())
    } else {
        Err(LinuxError::Namespace {
            what,
            source: io::Error::last_os_error(),
        })
    }
}

fn write_proc(what: &'static str, path: &str, text: &str) -> Result<(), LinuxError> {
    std::fs::write(path, text).map_err(|source| LinuxError::Namespace { what, source })
}

/// Moves the calling (single-threaded) process into new user, PID and
/// network namespaces, mapping only its own uid and gid to themselves. Its
/// next child is PID 1 of the new PID namespace.
pub fn enter_namespaces() -> Result<(), LinuxError> {
    // SAFETY: plain system calls without pointers.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // SAFETY: unshare takes only flags.
    let ret =
        unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNET) };
    check("unshare(user, pid, net)", ret)?;
    write_proc("deny setgroups", "/proc/self/setgroups", "deny")?;
    write_proc("uid_map", "/proc/self/uid_map", &format!("{uid} {uid} 1\n"))?;
    write_proc("gid_map", "/proc/self/gid_map", &format!("{gid} {gid} 1\n"))?;
    Ok(())
}

fn mount(
    what: &'static str,
    source: &std::ffi::CStr,
    target: &std::ffi::CStr,
    fstype: Option<&std::ffi::CStr>,
    flags: libc::c_ulong,
    data: Option<&std::ffi::CStr>,
) -> Result<(), LinuxError> {
    // SAFETY: every pointer is a valid NUL-terminated string or null.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data.map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    check(what, ret)
}

/// In PID 1 of the new PID namespace: a new mount namespace, private mounts,
/// a fresh `/proc` for the new PID namespace and a private tmpfs on `/tmp`.
/// When the tmpfs hides the job directory `root` (a job directory under
/// `/tmp`), `root` is bound back at the same path inside it, so the job
/// sees its directory where the executor put it.
pub fn private_mounts(root: &Path) -> Result<(), LinuxError> {
    use std::os::{fd::AsRawFd, unix::fs::MetadataExt};
    let ns = |what: &'static str| move |source: io::Error| LinuxError::Namespace { what, source };
    // SAFETY: unshare takes only flags.
    check("unshare(mount)", unsafe {
        libc::unshare(libc::CLONE_NEWNS)
    })?;
    mount(
        "make mounts private",
        c"none",
        c"/",
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    mount(
        "mount /proc",
        c"proc",
        c"/proc",
        Some(c"proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )?;
    let before = std::fs::metadata(root).map_err(ns("the job directory"))?;
    let keep = std::fs::File::open(root).map_err(ns("opening the job directory"))?;
    let data =
        CString::new(format!("size={TMP_SIZE},mode=1777")).map_err(|_| LinuxError::Namespace {
            what: "tmpfs options",
            source: io::Error::from(io::ErrorKind::InvalidInput),
        })?;
    mount(
        "mount /tmp",
        c"tmpfs",
        c"/tmp",
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(&data),
    )?;
    let same = std::fs::metadata(root)
        .is_ok_and(|now| (now.dev(), now.ino()) == (before.dev(), before.ino()));
    if !same {
        std::fs::create_dir_all(root).map_err(ns("the job directory's path in /tmp"))?;
        let source = CString::new(format!("/proc/self/fd/{}", keep.as_raw_fd())).map_err(|_| {
            LinuxError::Namespace {
                what: "bind source",
                source: io::Error::from(io::ErrorKind::InvalidInput),
            }
        })?;
        let target = CString::new(root.as_os_str().as_encoded_bytes()).map_err(|_| {
            LinuxError::Namespace {
                what: "the job directory's path",
                source: io::Error::from(io::ErrorKind::InvalidInput),
            }
        })?;
        mount(
            "bind the job directory",
            &source,
            &target,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )?;
    }
    Ok(())
}

/// Whether new user, PID, network and mount namespaces with a fresh
/// `/proc` and `/tmp` can be made here: tried in a forked child.
pub fn namespaces_work() -> bool {
    let setgroups = c"/proc/self/setgroups";
    let uid_map = c"/proc/self/uid_map";
    let gid_map = c"/proc/self/gid_map";
    // SAFETY: plain system calls without pointers.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let uid_line = format!("{uid} {uid} 1\n");
    let gid_line = format!("{gid} {gid} 1\n");
    let tmp_data = format!("size={TMP_SIZE},mode=1777\0");

    fn write_all(path: &std::ffi::CStr, bytes: &[u8]) -> bool {
        // SAFETY: async-signal-safe calls on a valid path and buffer.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return false;
            }
            let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            libc::close(fd);
            n == bytes.len() as isize
        }
    }

    // SAFETY: the child (of a possibly multi-threaded process) only makes
    // async-signal-safe system calls on memory prepared before the fork,
    // and leaves with `_exit`.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return false;
        }
        if pid == 0 {
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID | libc::CLONE_NEWNET) != 0 {
                libc::_exit(10);
            }
            if !write_all(setgroups, b"deny")
                || !write_all(uid_map, uid_line.as_bytes())
                || !write_all(gid_map, gid_line.as_bytes())
            {
                libc::_exit(11);
            }
            let init = libc::fork();
            if init < 0 {
                libc::_exit(12);
            }
            if init == 0 {
                if libc::unshare(libc::CLONE_NEWNS) != 0
                    || libc::mount(
                        c"none".as_ptr(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) != 0
                    || libc::mount(
                        c"proc".as_ptr(),
                        c"/proc".as_ptr(),
                        c"proc".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        std::ptr::null(),
                    ) != 0
                    || libc::mount(
                        c"tmpfs".as_ptr(),
                        c"/tmp".as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        tmp_data.as_ptr().cast(),
                    ) != 0
                {
                    libc::_exit(13);
                }
                libc::_exit(0);
            }
            let mut status = 0;
            if libc::waitpid(init, &mut status, 0) != init
                || !libc::WIFEXITED(status)
                || libc::WEXITSTATUS(status) != 0
            {
                libc::_exit(14);
            }
            libc::_exit(0);
        }
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return false;
            }
        }
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }
}

/// A living process of the job, as `/proc` showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descendant {
    /// Its pid.
    pub pid: libc::pid_t,
    /// Its process group.
    pub pgid: libc::pid_t,
}

/// Every living (not zombie) descendant of this process, from `/proc`
/// (the supervisor kills them: it is their subreaper). Zombies are walked
/// through: their children are listed.
pub fn living_descendants() -> Vec<Descendant> {
    use std::collections::HashMap;
    let me = std::process::id() as libc::pid_t;
    // ppid -> (pid, pgid, dead)
    let mut children: HashMap<libc::pid_t, Vec<(libc::pid_t, libc::pid_t, bool)>> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and
        // parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let (Some(ppid), Some(pgid)) = (
            fields.next().and_then(|s| s.parse().ok()),
            fields.next().and_then(|s| s.parse().ok()),
        ) else {
            continue;
        };
        children
            .entry(ppid)
            .or_default()
            .push((pid, pgid, state == "Z" || state == "X"));
    }
    let mut queue = vec![me];
    let mut living = Vec::new();
    let mut seen = std::collections::HashSet::from([me]);
    while let Some(parent) = queue.pop() {
        for &(pid, pgid, dead) in children.get(&parent).into_iter().flatten() {
            if seen.insert(pid) {
                queue.push(pid);
                if !dead {
                    living.push(Descendant { pid, pgid });
                }
            }
        }
    }
    living
}

/// Listings per freeze before the stopped ones are killed anyway (a tree
/// that keeps showing new processes is killed in part, then frozen again).
const FREEZE_ROUNDS: u32 = 100;

/// Sends `sig` to `pid` (a process group when negative).
fn signal(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill with integer arguments.
    unsafe { libc::kill(pid, sig) };
}

/// Freezes the job's tree, then kills it: SIGSTOP to every process listed
/// and to its process group, listing again until a listing shows no process
/// that was not stopped yet (or [`FREEZE_ROUNDS`], or `deadline`), then
/// SIGKILL to all of them and their groups (the supervisor calls it, as the
/// subreaper of `listed`). A process forking while it is
/// sent SIGSTOP either has its new child already listable, or its fork is
/// restarted after the stop: so a tree that only grows cannot outrun this,
/// as it outruns "list, then kill" (anything forked after the listing lived
/// on). A group signal reaches every member at once, listed or not (a
/// process forking and exiting in a loop, within its group, is caught by
/// it). Groups are signalled only when this process leads its session:
/// then every group of its session but its own holds only the job's
/// processes (a job process can only join a group of its own session).
pub fn freeze_and_kill(mut listed: Vec<Descendant>, deadline: std::time::Instant) {
    use std::collections::BTreeSet;
    // SAFETY: plain calls without arguments that matter.
    let (own_group, leads_session) =
        unsafe { (libc::getpgrp(), libc::getsid(0) == libc::getpid()) };
    let mut stopped = BTreeSet::new();
    let mut groups = BTreeSet::new();
    for _ in 0..FREEZE_ROUNDS {
        let mut new = false;
        for process in &listed {
            if stopped.insert(process.pid) {
                signal(process.pid, libc::SIGSTOP);
                new = true;
            }
            if leads_session
                && process.pgid > 1
                && process.pgid != own_group
                && groups.insert(process.pgid)
            {
                signal(-process.pgid, libc::SIGSTOP);
            }
        }
        if !new || std::time::Instant::now() >= deadline {
            break;
        }
        listed = living_descendants();
    }
    for &group in &groups {
        signal(-group, libc::SIGKILL);
    }
    for &pid in &stopped {
        signal(pid, libc::SIGKILL);
    }
}

/// The audit architecture of this build, as seccomp reports it.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// A seccomp filter, applied after the Landlock ruleset: `socket(AF_UNIX,
/// ...)` fails with EACCES and `io_uring_setup` with ENOSYS (io_uring can
/// open sockets without the `socket` call), system calls of another
/// architecture (32-bit `socketcall`, x32) with ENOSYS. Landlock before ABI 9
/// does not cover connecting to a pathname unix socket, so without this a
/// job could reach the node's control socket, or any local daemon.
/// `socketpair` (an already connected pair, reaching nobody) still works.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn deny_unix_sockets() -> Result<(), LinuxError> {
    const fn stmt(code: u32, k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        }
    }
    const fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        }
    }
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let errno = |e: libc::c_int| libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA);
    // struct seccomp_data: nr (u32) at 0, arch (u32) at 4, args (u64 each)
    // from 16; the low half of args[0] is at 16 on these little-endian
    // architectures.
    let mut filter = vec![
        stmt(ld, 4),
        jump(jeq, AUDIT_ARCH, 1, 0),
        stmt(ret, errno(libc::ENOSYS)),
        stmt(ld, 0),
    ];
    #[cfg(target_arch = "x86_64")]
    filter.extend([
        // x32 system calls have this bit set.
        jump(
            libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
            0x4000_0000,
            0,
            1,
        ),
        stmt(ret, errno(libc::ENOSYS)),
    ]);
    filter.extend([
        jump(jeq, libc::SYS_io_uring_setup as u32, 0, 1),
        stmt(ret, errno(libc::ENOSYS)),
        jump(jeq, libc::SYS_socket as u32, 0, 3),
        stmt(ld, 16),
        jump(jeq, libc::AF_UNIX as u32, 0, 1),
        stmt(ret, errno(libc::EACCES)),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ]);
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prog points at `filter`, alive for the call; no_new_privs is
    // set (Landlock's restrict_self sets it), so an unprivileged process may
    // install a filter.
    let ret = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
            0,
            0,
        )
    };
    check("seccomp filter", ret)
}

/// Other architectures have no filter here: refused rather than silently
/// weaker.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn deny_unix_sockets() -> Result<(), LinuxError> {
    Err(LinuxError::Namespace {
        what: "seccomp filter",
        source: io::Error::from(io::ErrorKind::Unsupported),
    })
}
