//! Test harness: a simulated node made of network namespaces, and the plugin
//! invoked exactly as a runtime does (env + stdin), inside the node namespace
//! with `nsenter --net` (not `ip netns exec`, which remounts /sys and hides bpffs).
//!
//! Topology (all names unique to the test, removed on drop):
//!
//!   [wire ns]  wire0 10.77.0.1/24 (gateway) ── veth ── uplink0 10.77.0.2/24 [node ns]
//!                                                       └── vx… host veths ══ eth0 [pod ns]

#![allow(dead_code)]

pub mod ns;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

pub const SUBNET: &str = "10.77.0.0/24";
pub const GATEWAY: &str = "10.77.0.1";
pub const NODE_IP: &str = "10.77.0.2";
pub const UPLINK: &str = "uplink0";
pub const WIRE_IF: &str = "wire0";

pub fn plugin_bin() -> &'static str {
    env!("CARGO_BIN_EXE_veth-xdp")
}

/// Runs a command, returns (success, stdout+stderr).
pub fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run bash");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

/// Runs a command that must succeed.
pub fn must(cmd: &str) -> String {
    let (ok, out) = sh(cmd);
    assert!(ok, "command failed: {cmd}\n{out}");
    out
}

/// The result of one plugin invocation.
#[derive(Debug)]
pub struct Outcome {
    pub exit: i32,
    pub stdout: String,
    pub json: Value,
}

impl Outcome {
    pub fn ok(&self) -> &Value {
        assert_eq!(self.exit, 0, "plugin failed: {}", self.stdout);
        &self.json
    }

    /// Asserts a CNI error with this code and returns its message.
    pub fn err(&self, code: u64) -> String {
        assert_ne!(
            self.exit, 0,
            "plugin unexpectedly succeeded: {}",
            self.stdout
        );
        assert_eq!(
            self.json["code"].as_u64(),
            Some(code),
            "wrong error code: {}",
            self.stdout
        );
        let msg = self.json["msg"].as_str().unwrap_or_default().to_string();
        assert!(!msg.is_empty(), "error without msg: {}", self.stdout);
        msg
    }
}

pub struct Node {
    pub tag: String,
    pub node_ns: String,
    pub wire_ns: String,
    pub dir: PathBuf,
    pub bpf_root: PathBuf,
    pods: std::sync::Mutex<Vec<String>>,
}

impl Node {
    /// `tag`: a few letters naming the test (kept short: netns names appear in errors).
    pub fn new(tag: &str) -> Self {
        Self::with_mtu(tag, 1500)
    }

    pub fn with_mtu(tag: &str, mtu: u32) -> Self {
        let tag = format!("vc{tag}{}", std::process::id());
        let node = Self {
            node_ns: format!("{tag}n"),
            wire_ns: format!("{tag}w"),
            dir: PathBuf::from(format!("/tmp/veth-xdp-test/{tag}")),
            bpf_root: PathBuf::from(format!("/sys/fs/bpf/{tag}")),
            tag,
            pods: Default::default(),
        };
        node.cleanup();
        let (n, w) = (&node.node_ns, &node.wire_ns);
        must(&format!(
            "set -e; ip netns add {n}; ip netns add {w}; \
             ip link add {UPLINK} mtu {mtu} netns {n} type veth peer name {WIRE_IF} mtu {mtu} netns {w}; \
             ip -n {n} link set lo up; ip -n {w} link set lo up; \
             ip -n {n} addr add {NODE_IP}/24 dev {UPLINK}; ip -n {w} addr add {GATEWAY}/24 dev {WIRE_IF}; \
             ip -n {n} link set {UPLINK} up; ip -n {w} link set {WIRE_IF} up; \
             ip -n {n} route add default via {GATEWAY}; \
             nsenter --net=/var/run/netns/{w} ethtool -K {WIRE_IF} gro on tx off >/dev/null"
        ));
        std::fs::create_dir_all(&node.dir).unwrap();
        node
    }

    pub fn ns_path(ns: &str) -> String {
        format!("/var/run/netns/{ns}")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }

    /// A new pod namespace; returns its name.
    pub fn pod(&self, i: usize) -> String {
        let name = format!("{}p{i}", self.tag);
        must(&format!(
            "ip netns add {name} && ip -n {name} link set lo up"
        ));
        self.pods.lock().unwrap().push(name.clone());
        name
    }

    /// A network config with host-local in the wire's subnet; `extra` keys are merged in.
    pub fn conf(&self, version: &str, extra: Value) -> Value {
        let mut c = json!({
            "cniVersion": version,
            "name": "testnet",
            "type": "veth-xdp",
            "uplink": UPLINK,
            "stateDir": self.state_dir(),
            "logFile": self.dir.join("plugin.log"),
            "logLevel": "debug",
            "bpfRoot": self.bpf_root,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": SUBNET, "rangeStart": "10.77.0.10", "rangeEnd": "10.77.0.250", "gateway": GATEWAY}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": self.ipam_dir(),
            },
        });
        if let (Value::Object(base), Value::Object(more)) = (&mut c, extra) {
            for (k, v) in more {
                base.insert(k, v);
            }
        }
        c
    }

    /// Invokes the plugin inside the node namespace with raw stdin bytes and full control of env.
    pub fn invoke_raw(&self, env: &[(&str, &str)], stdin: &[u8]) -> Outcome {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", Self::ns_path(&self.node_ns)))
            .arg(plugin_bin())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn nsenter");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        assert!(
            out.stdout.is_empty() || json != Value::Null,
            "plugin stdout is not JSON: {stdout:?} (stderr {})",
            String::from_utf8_lossy(&out.stderr)
        );
        Outcome {
            exit: out.status.code().unwrap_or(-1),
            stdout,
            json,
        }
    }

    /// Invokes a verb the way a runtime does.
    pub fn cni(
        &self,
        verb: &str,
        cid: &str,
        netns: Option<&str>,
        ifname: &str,
        conf: &Value,
    ) -> Outcome {
        self.cni_env(verb, cid, netns, ifname, conf, &[])
    }

    pub fn cni_env(
        &self,
        verb: &str,
        cid: &str,
        netns: Option<&str>,
        ifname: &str,
        conf: &Value,
        extra: &[(&str, &str)],
    ) -> Outcome {
        let ns = netns.map(Self::ns_path).unwrap_or_default();
        let mut env = vec![
            ("CNI_COMMAND", verb),
            ("CNI_CONTAINERID", cid),
            ("CNI_NETNS", ns.as_str()),
            ("CNI_IFNAME", ifname),
            ("CNI_PATH", "/usr/lib/cni"),
        ];
        env.extend_from_slice(extra);
        self.invoke_raw(&env, conf.to_string().as_bytes())
    }

    /// ADD that must succeed; returns the result.
    pub fn add(&self, cid: &str, pod: &str, conf: &Value) -> Value {
        self.cni("ADD", cid, Some(pod), "eth0", conf).ok().clone()
    }

    /// A shell command inside a namespace (nsenter --net).
    pub fn in_ns(ns: &str, cmd: &str) -> (bool, String) {
        sh(&format!(
            "nsenter --net={} bash -c {}",
            Self::ns_path(ns),
            shell_quote(cmd)
        ))
    }

    pub fn in_node(&self, cmd: &str) -> (bool, String) {
        Self::in_ns(&self.node_ns, cmd)
    }

    /// Everything an attachment leaves on the node: must be empty after DEL / failed ADD.
    pub fn traces(&self) -> Vec<String> {
        let mut t = Vec::new();
        let links = must(&format!("ip -n {} -o link show", self.node_ns));
        t.extend(
            links
                .lines()
                .filter(|l| l.contains(": vx"))
                .map(|l| format!("link {l}")),
        );
        let routes = must(&format!("ip -n {} route show", self.node_ns));
        t.extend(
            routes
                .lines()
                .filter(|l| l.contains("dev vx"))
                .map(|l| format!("route {l}")),
        );
        let fdb = must(&format!("bridge -n {} fdb show dev {UPLINK}", self.node_ns));
        // The kernel lists the device's multicast addresses as "self permanent" too.
        t.extend(
            fdb.lines()
                .filter(|l| !l.starts_with("33:33") && !l.starts_with("01:00:5e"))
                .map(|l| format!("fdb {l}")),
        );
        let records = self.state_dir().join("networks/testnet");
        if let Ok(entries) = std::fs::read_dir(&records) {
            t.extend(
                entries
                    .flatten()
                    .map(|e| format!("record {}", e.path().display())),
            );
        }
        if let Ok(entries) = std::fs::read_dir(self.ipam_dir().join("testnet")) {
            t.extend(
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with("last_reserved_ip") && n != "lock")
                    .map(|n| format!("lease {n}")),
            );
        }
        t
    }

    pub fn assert_clean(&self) {
        let t = self.traces();
        assert!(t.is_empty(), "traces left on the node:\n{}", t.join("\n"));
    }

    fn cleanup(&self) {
        for p in self.pods.lock().unwrap().iter() {
            let _ = sh(&format!("ip netns del {p}"));
        }
        let _ = sh(&format!(
            "ip netns del {} ; ip netns del {}",
            self.node_ns, self.wire_ns
        ));
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(&self.bpf_root);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::env::var_os("VETH_XDP_KEEP_TEST_STATE").is_some() {
            eprintln!("keeping {} (VETH_XDP_KEEP_TEST_STATE)", self.tag);
            return;
        }
        self.cleanup();
    }
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The CNI versions we speak.
pub const VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

pub fn has_check(v: &str) -> bool {
    !v.starts_with("0.3")
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Validates a result against the CNI result schema of `version` (the fields
/// and types the spec requires; 0.3.x/0.4.0 need `ips[].version`).
pub fn validate_result(version: &str, r: &Value) {
    assert_eq!(r["cniVersion"], version, "result cniVersion: {r}");
    let ifaces = r["interfaces"].as_array().expect("interfaces is a list");
    for i in ifaces {
        assert!(
            i["name"].is_string() && !i["name"].as_str().unwrap().is_empty(),
            "interface name: {i}"
        );
        let mac = i["mac"].as_str().expect("interface mac");
        assert_eq!(mac.len(), 17, "mac format: {mac}");
        if let Some(s) = i.get("sandbox") {
            assert!(s.is_string(), "sandbox is a string: {i}");
        }
    }
    let ips = r["ips"].as_array().expect("ips is a list");
    assert!(!ips.is_empty());
    for ip in ips {
        let addr = ip["address"].as_str().expect("ips[].address");
        assert!(
            addr.parse::<ipnetwork::IpNetwork>().is_ok() && addr.contains('/'),
            "address is CIDR: {addr}"
        );
        if let Some(gw) = ip.get("gateway") {
            assert!(
                gw.as_str().unwrap().parse::<std::net::IpAddr>().is_ok(),
                "gateway: {gw}"
            );
        }
        let idx = ip["interface"].as_u64().expect("ips[].interface") as usize;
        assert!(idx < ifaces.len(), "interface index in range");
        assert!(
            ifaces[idx].get("sandbox").is_some(),
            "ips point at the sandbox interface"
        );
        if version.starts_with("0.") {
            let v = ip["version"].as_str().expect("ips[].version before 1.0.0");
            assert!(v == "4" || v == "6");
        } else {
            assert!(
                ip.get("version").is_none(),
                "no ips[].version from 1.0.0 on"
            );
        }
    }
    for rt in r
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        assert!(
            rt["dst"]
                .as_str()
                .unwrap()
                .parse::<ipnetwork::IpNetwork>()
                .is_ok(),
            "route dst: {rt}"
        );
    }
    if let Some(dns) = r.get("dns") {
        assert!(dns.is_object(), "dns is an object");
    }
}

impl Node {
    /// `veth-xdp stats --json` run in the node namespace.
    pub fn stats(&self) -> Value {
        let (ok, out) = self.in_node(&format!(
            "{} stats --json --state-dir {}",
            plugin_bin(),
            self.state_dir().display()
        ));
        assert!(ok, "stats failed: {out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("stats JSON: {e}: {out}"))
    }

    /// One counter (packets) of one attachment, by container ID.
    pub fn counter(&self, cid: &str, key: &str) -> u64 {
        let s = self.stats();
        let att = s["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["containerID"] == cid)
            .unwrap_or_else(|| panic!("no attachment {cid} in stats: {s}"));
        att["counters"][key]["packets"].as_u64().unwrap()
    }

    /// Packets the uplink program redirected into pods.
    pub fn uplink_redirected(&self) -> u64 {
        let s = self.stats();
        s["uplinks"][0]["redirectedToPods"].as_u64().unwrap_or(0)
    }
}
