//! A throwaway network namespace for tests of one kernel-facing module, and
//! the small command helpers those tests share.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

/// A network namespace made for one test, deleted (with its devices) on drop.
pub struct TestNs {
    pub name: String,
}

impl TestNs {
    /// `<prefix><pid>`: unique per test (the prefix) and per test process.
    pub fn new(prefix: &str) -> Self {
        let name = format!("{prefix}{}", std::process::id());
        // A leftover from a crashed run with a recycled pid would make `add` fail.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        TestNs { name }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.name))
    }

    pub fn file(&self) -> File {
        File::open(self.path()).expect("open netns file")
    }

    /// `ip -n NS ARGS...`
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs a command inside the namespace with nsenter (never `ip netns exec`).
    pub fn nsenter(&self, cmd: &str, args: &[&str]) -> String {
        let net = format!("--net={}", self.path().display());
        let mut all = vec![net.as_str(), cmd];
        all.extend_from_slice(args);
        run("nsenter", &all)
    }

    /// A shell command line inside the namespace, which must succeed.
    pub fn sh(&self, cmd: &str) -> String {
        super::must(&format!("nsenter --net={} {cmd}", self.path().display()))
    }

    pub fn ifindex(&self, dev: &str) -> u32 {
        let out = self.ip(&["-j", "link", "show", "dev", dev]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j output");
        v[0]["ifindex"].as_u64().expect("ifindex") as u32
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs a command that must succeed and returns its stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An ifname unique to this test and process (<= 15 bytes).
pub fn ifname(prefix: &str) -> String {
    let name = format!("{prefix}{}", std::process::id());
    assert!(name.len() <= 15, "ifname {name} too long");
    name
}

/// The current-thread runtime the CNI verbs use.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
