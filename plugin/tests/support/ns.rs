//! The one throwaway network namespace of the tests, and unique interface names.

use std::fmt;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::cmd::{must, run, sh, shell_quote, succeeds};

/// A network namespace made for one test (`/var/run/netns/<name>`), deleted
/// with its devices on drop, on every exit path of the test. Displays as its
/// name, so it reads naturally in `ip -n {ns}` command lines.
pub struct Netns {
    name: String,
}

impl Netns {
    /// A new namespace named after `tag` (a few letters naming the test),
    /// unique to this call (see [`super::unique_name`]).
    pub fn new(tag: &str) -> Self {
        let name = super::unique_name(tag);
        // A leftover from a crashed run with a recycled pid would make `add` fail.
        let _ = succeeds("ip", &["netns", "del", &name]);
        run("ip", &["netns", "add", &name]);
        Self { name }
    }

    /// With loopback up (a fresh namespace has it down).
    pub fn lo_up(self) -> Self {
        self.ip("link set lo up");
        self
    }

    /// With IPv6 off: no autoconf/DAD/MLD chatter reaching a live program.
    pub fn without_ipv6(self) -> Self {
        for key in [
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ] {
            self.exec(&["sysctl", "-qw", key]);
        }
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/var/run/netns/<name>`: what CNI_NETNS and `nsenter --net=` take.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.name))
    }

    pub fn file(&self) -> File {
        File::open(self.path()).expect("open netns file")
    }

    /// `ip -n <ns> <args>` (split on whitespace), which must succeed; stdout.
    pub fn ip(&self, args: &str) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend(args.split_whitespace());
        run("ip", &all)
    }

    fn nsenter_args<'a>(&self, net: &'a str, cmd: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec![net];
        all.extend_from_slice(cmd);
        all
    }

    /// A program inside the namespace (nsenter, never `ip netns exec`, which
    /// remounts /sys and hides bpffs), which must succeed; stdout.
    pub fn exec(&self, cmd: &[&str]) -> String {
        let net = format!("--net={}", self.path().display());
        run("nsenter", &self.nsenter_args(&net, cmd))
    }

    /// Like `exec`, but returns whether the program succeeded.
    pub fn try_exec(&self, cmd: &[&str]) -> bool {
        let net = format!("--net={}", self.path().display());
        succeeds("nsenter", &self.nsenter_args(&net, cmd))
    }

    /// Starts a program inside the namespace in the background (output
    /// discarded); the caller kills and waits for it.
    pub fn spawn(&self, cmd: &[&str]) -> Child {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path().display()))
            .args(cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?} in {self}: {e}"))
    }

    /// A bash command line inside the namespace; (success, stdout + stderr).
    pub fn sh(&self, line: &str) -> (bool, String) {
        sh(&format!(
            "nsenter --net={} bash -c {}",
            self.path().display(),
            shell_quote(line)
        ))
    }

    /// A bash command line inside the namespace that must succeed.
    pub fn must(&self, line: &str) -> String {
        must(&format!(
            "nsenter --net={} bash -c {}",
            self.path().display(),
            shell_quote(line)
        ))
    }

    /// `ip -d -j link show dev <dev>`, the device's object.
    pub fn link_json(&self, dev: &str) -> Value {
        let out = self.ip(&format!("-d -j link show dev {dev}"));
        let v: Value = serde_json::from_str(&out).expect("ip -j output");
        v[0].clone()
    }

    pub fn ifindex(&self, dev: &str) -> u32 {
        self.link_json(dev)["ifindex"].as_u64().expect("ifindex") as u32
    }

    /// A veth pair inside the namespace, both ends up, with fixed MACs;
    /// returns (ifindex of a, ifindex of b).
    pub fn veth(&self, a: &str, mac_a: [u8; 6], b: &str, mac_b: [u8; 6]) -> (u32, u32) {
        self.ip(&format!(
            "link add {a} address {} type veth peer name {b} address {}",
            super::frames::mac_str(&mac_a),
            super::frames::mac_str(&mac_b)
        ));
        self.ip(&format!("link set {a} up"));
        self.ip(&format!("link set {b} up"));
        (self.ifindex(a), self.ifindex(b))
    }

    /// Runs `f` with this thread inside the namespace.
    pub fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        veth_xdp::netns::with_netns(&self.path(), f).expect("enter test netns")
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !super::keep_state(&self.name) {
            let _ = succeeds("ip", &["netns", "del", &self.name]);
        }
    }
}

/// An interface name unique to this test process (<= 15 bytes).
pub fn ifname(prefix: &str) -> String {
    let name = format!("{prefix}{}", std::process::id());
    assert!(name.len() <= 15, "ifname {name} too long");
    name
}
