//! The plugin harness (the reference plugins' `pkg/testutils/cmd.go`): a
//! simulated node made of network namespaces, and the built plugin invoked
//! exactly as a runtime does (CNI env + stdin), inside the node namespace with
//! `nsenter --net=` (not `ip netns exec`, which remounts /sys and hides bpffs).
//!
//! Topology of `Node::new` (namespaces, state and pin root unique to the
//! test, removed on drop):
//!
//!   [wire ns]  wire0 10.77.0.1/24 (gateway) ── veth ── uplink0 10.77.0.2/24 [node ns]
//!                                                       └── vx… host veths ══ eth0 [pod ns]
//!
//! `Node::wired` builds the same node on a wire namespace it shares with
//! others (`support::cluster`: several nodes on one bridge).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};

use super::cmd::must;
use super::ns::Netns;

pub const SUBNET: &str = "10.77.0.0/24";
pub const GATEWAY: &str = "10.77.0.1";
pub const NODE_IP: &str = "10.77.0.2";
pub const UPLINK: &str = "uplink0";
pub const WIRE_IF: &str = "wire0";
/// The network name of every test config.
pub const NETWORK: &str = "testnet";
pub const CNI_PATH: &str = "/usr/lib/cni";
/// ADD's steps in order, each a `cmd::fault_point` (`VETH_XDP_FAIL_AFTER`).
#[allow(dead_code)]
pub const ADD_STEPS: &[&str] = &[
    "ipam",
    "veth",
    "offloads",
    "link-up",
    "pod-ip",
    "fdb",
    "host-routes",
    "datapath",
    "record",
];

/// The CNI versions we promise, written out here rather than taken from
/// `veth_xdp::cni::version::SUPPORTED`: the tests check the plugin against
/// the spec, not against itself.
pub const VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// CHECK exists since 0.4.0 (the spec's rule, independent of the plugin's).
pub fn has_check(v: &str) -> bool {
    !v.starts_with("0.3")
}

pub fn plugin_bin() -> &'static str {
    env!("CARGO_BIN_EXE_veth-xdp")
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

/// The host-side interface of an ADD result.
pub fn host_veth(res: &Value) -> String {
    res["interfaces"][0]["name"].as_str().unwrap().to_string()
}

/// The first pod address of an ADD result, without its prefix length.
pub fn pod_ip(res: &Value) -> String {
    res["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// `conf` with `prevResult` set, for CHECK (and DEL).
pub fn with_prev(conf: &Value, prev: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}

/// A node namespace wired to a wire namespace, with its own state dir and
/// pin root. Namespaces are `Netns` guards; the directories go on drop.
pub struct Node {
    tag: String,
    pub ns: Netns,
    /// The namespace at the other end of the uplink, holding the gateway:
    /// the node's own, or one shared by the nodes of a cluster.
    pub wire: Arc<Netns>,
    pub dir: PathBuf,
    pub bpf_root: PathBuf,
    /// The host-local range `conf` hands out (one element of `ipam.ranges`).
    ipam_range: Value,
}

/// How a node meets its wire (see `Node::wired`).
pub struct Wiring<'a> {
    /// The uplink's peer, created in the wire namespace.
    pub wire_if: &'a str,
    /// The node's address on the uplink, with its prefix length.
    pub node_cidr: &'a str,
    /// The default route's next hop.
    pub gateway: &'a str,
    pub mtu: u32,
    /// The node's host-local range: `{"subnet", "rangeStart", "rangeEnd", "gateway"}`.
    pub ipam_range: Value,
}

impl Node {
    /// `tag`: a few letters naming the test (kept short: names appear in errors).
    pub fn new(tag: &str) -> Self {
        Self::with_mtu(tag, 1500)
    }

    pub fn with_mtu(tag: &str, mtu: u32) -> Self {
        let wire = Arc::new(Netns::new(&format!("{tag}w")).lo_up());
        let node = Self::wired(
            tag,
            Arc::clone(&wire),
            &Wiring {
                wire_if: WIRE_IF,
                node_cidr: &format!("{NODE_IP}/24"),
                gateway: GATEWAY,
                mtu,
                ipam_range: json!({
                    "subnet": SUBNET, "rangeStart": "10.77.0.10", "rangeEnd": "10.77.0.250",
                    "gateway": GATEWAY,
                }),
            },
        );
        wire.ip(&format!("addr add {GATEWAY}/24 dev {WIRE_IF}"));
        node
    }

    /// A node whose uplink (`UPLINK`, `w.node_cidr`, default route via
    /// `w.gateway`) is a veth with its peer `w.wire_if` in `wire`, up, with GRO
    /// on and tx checksum offload off: the peer stands for a physical wire,
    /// which takes redirected frames (GRO gives the uplink `ndo-xmit`) and
    /// delivers full checksums (see DESIGN.md).
    pub fn wired(tag: &str, wire: Arc<Netns>, w: &Wiring) -> Self {
        let ns = Netns::new(&format!("{tag}n")).lo_up();
        let node = Self {
            tag: tag.to_string(),
            dir: PathBuf::from(format!("/tmp/veth-xdp-test/{ns}")),
            bpf_root: PathBuf::from(veth_xdp::bpf::BPFFS_MOUNT).join(ns.name()),
            ns,
            wire,
            ipam_range: w.ipam_range.clone(),
        };
        node.remove_dirs();
        let (n, wn, wif, mtu) = (&node.ns, &node.wire, w.wire_if, w.mtu);
        must(&format!(
            "set -e; \
             ip link add {UPLINK} mtu {mtu} netns {n} type veth peer name {wif} mtu {mtu} netns {wn}; \
             ip -n {n} addr add {} dev {UPLINK}; \
             ip -n {n} link set {UPLINK} up; ip -n {wn} link set {wif} up; \
             ip -n {n} route add default via {}",
            w.node_cidr, w.gateway
        ));
        wn.exec(&["ethtool", "-K", wif, "gro", "on", "tx", "off"]);
        std::fs::create_dir_all(&node.dir).unwrap();
        node
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }

    /// A new pod namespace (loopback up), removed when the guard drops.
    pub fn pod(&self, i: usize) -> Netns {
        Netns::new(&format!("{}p{i}", self.tag)).lo_up()
    }

    /// A network config with host-local handing out the node's range; `extra` keys are merged in.
    pub fn conf(&self, version: &str, extra: Value) -> Value {
        let mut c = json!({
            "cniVersion": version,
            "name": NETWORK,
            "type": "veth-xdp",
            "uplink": UPLINK,
            "stateDir": self.state_dir(),
            "logFile": self.dir.join("plugin.log"),
            "logLevel": "debug",
            "bpfRoot": self.bpf_root,
            "ipam": {
                "type": "host-local",
                "ranges": [[self.ipam_range]],
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
        self.invoke_bin(Path::new(plugin_bin()), env, stdin)
    }

    /// `invoke_raw` of another copy of the plugin (an installed one).
    pub fn invoke_bin(&self, bin: &Path, env: &[(&str, &str)], stdin: &[u8]) -> Outcome {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.ns.path().display()))
            .arg(bin)
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

    /// Invokes a verb the way a runtime does (`netns` None: CNI_NETNS empty).
    pub fn cni(
        &self,
        verb: &str,
        cid: &str,
        netns: Option<&Netns>,
        ifname: &str,
        conf: &Value,
    ) -> Outcome {
        self.cni_env(verb, cid, netns, ifname, conf, &[])
    }

    /// `cni` with extra environment variables.
    pub fn cni_env(
        &self,
        verb: &str,
        cid: &str,
        netns: Option<&Netns>,
        ifname: &str,
        conf: &Value,
        extra: &[(&str, &str)],
    ) -> Outcome {
        let ns = netns
            .map(|n| n.path().display().to_string())
            .unwrap_or_default();
        let mut env = vec![
            ("CNI_COMMAND", verb),
            ("CNI_CONTAINERID", cid),
            ("CNI_NETNS", ns.as_str()),
            ("CNI_IFNAME", ifname),
            ("CNI_PATH", CNI_PATH),
        ];
        env.extend_from_slice(extra);
        self.invoke_raw(&env, conf.to_string().as_bytes())
    }

    /// ADD that must succeed; returns the result.
    pub fn add(&self, cid: &str, pod: &Netns, conf: &Value) -> Value {
        self.cni("ADD", cid, Some(pod), "eth0", conf).ok().clone()
    }

    /// A shell command inside the node namespace.
    pub fn in_node(&self, cmd: &str) -> (bool, String) {
        self.ns.sh(cmd)
    }

    /// Everything an attachment leaves on the node (see `support::traces`):
    /// must be empty after DEL, GC or a failed ADD.
    pub fn traces(&self) -> Vec<String> {
        super::traces::on_node(self)
    }

    pub fn assert_clean(&self) {
        let t = self.traces();
        assert!(t.is_empty(), "traces left on the node:\n{}", t.join("\n"));
    }

    fn remove_dirs(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(&self.bpf_root);
    }
}

/// The namespaces drop after this: the pins and directories go first.
impl Drop for Node {
    fn drop(&mut self) {
        if !super::keep_state(&self.dir.display()) {
            self.remove_dirs();
        }
    }
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
