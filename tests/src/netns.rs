//! Two network namespaces joined by a veth pair, made and removed by a test,
//! so that a test can cut a real network link between two daemons (the
//! link taken down, then up again) and talk only to addresses it created.
//!
//! Namespaces need root (CI runs as root). [`Link::create`] returns `None`
//! only where they cannot be expected (not root and `ip netns add` refused);
//! as root, a failure to create them fails the test.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
};

use crate::{Daemon, TestNode};

/// Two namespaces `a` and `b` and the veth pair between them, with
/// `10.231.N.1/24` in `a` and `10.231.N.2/24` in `b`; removed on drop.
pub struct Link {
    names: [String; 2],
    devices: [String; 2],
    addrs: [String; 2],
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "ip {}: {e} (scripts/install-test-deps installs iproute2)",
                args.join(" ")
            )
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Link {
    /// Creates the pair, up; `None` (with a note on stderr) only when not
    /// root and namespaces are refused. Panics as root when anything fails.
    pub fn create() -> Option<Link> {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // A subnet per link of this process; the pid keeps parallel test
        // processes' namespace names apart.
        let subnet = (pid as usize * 7 + n) % 250 + 1;
        let tag = format!("{pid}-{n}");
        let link = Link {
            names: [format!("clive-{tag}-a"), format!("clive-{tag}-b")],
            devices: [format!("cv{tag}a"), format!("cv{tag}b")],
            addrs: [format!("10.231.{subnet}.1"), format!("10.231.{subnet}.2")],
        };
        let root = unsafe { libc::geteuid() } == 0;
        if let Err(e) = ip(&["netns", "add", &link.names[0]]) {
            if root {
                panic!("as root, network namespaces must work: {e}");
            }
            eprintln!("skipped: network namespaces need root here ({e})");
            return None;
        }
        if let Err(e) = link.finish() {
            panic!("setting up the veth pair: {e}");
        }
        Some(link)
    }

    fn finish(&self) -> Result<(), String> {
        let [a, b] = &self.names;
        let [da, db] = &self.devices;
        ip(&["netns", "add", b])?;
        ip(&["link", "add", da, "type", "veth", "peer", "name", db])?;
        for (ns, dev, addr) in [(a, da, &self.addrs[0]), (b, db, &self.addrs[1])] {
            ip(&["link", "set", dev, "netns", ns])?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// The address of side `i` (0: `a`, 1: `b`).
    pub fn addr(&self, i: usize) -> &str {
        &self.addrs[i]
    }

    /// Limits the link's rate both ways (`tc ... tbf`, RATE as tc reads
    /// it: `40mbit`).
    pub fn limit(&self, rate: &str) {
        for i in 0..2 {
            let out = Command::new("tc")
                .args([
                    "-n",
                    &self.names[i],
                    "qdisc",
                    "add",
                    "dev",
                    &self.devices[i],
                ])
                .args([
                    "root", "tbf", "rate", rate, "burst", "64kb", "latency", "50ms",
                ])
                .output()
                .unwrap_or_else(|e| {
                    panic!("tc: {e} (scripts/install-test-deps installs iproute2)")
                });
            assert!(
                out.status.success(),
                "tc tbf: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Takes the link down on both sides: packets between them are lost.
    pub fn down(&self) {
        for i in 0..2 {
            ip(&[
                "-n",
                &self.names[i],
                "link",
                "set",
                &self.devices[i],
                "down",
            ])
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Brings the link back up on both sides.
    pub fn up(&self) {
        for i in 0..2 {
            ip(&["-n", &self.names[i], "link", "set", &self.devices[i], "up"])
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Starts `node`'s daemon inside namespace `i`, listening on its address
    /// (port 4919; each namespace has its own ports), and waits until it
    /// answers on its control socket (a file: reachable from outside).
    pub fn start_daemon(&self, node: &TestNode, i: usize) -> Daemon {
        let ns = self.names[i].clone();
        let bind = format!("{}:4919", self.addrs[i]);
        node.start_daemon_wrapped(
            |program: &Path| {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", &ns]).arg(program);
                cmd
            },
            &bind,
        )
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it
        // the pair.
        for name in &self.names {
            let _ = ip(&["netns", "del", name]);
        }
    }
}
