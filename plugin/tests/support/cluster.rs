//! A Kubernetes cluster in L2 mode (DESIGN.md, "Kubernetes node model"):
//! three nodes whose uplinks are ports of one bridge, the physical segment,
//! with the gateway on it and a client standing for the outside world; each
//! node's pod CIDR is its host-local range, with the segment's prefix and
//! gateway; kube-proxy's nat rules installed from Service descriptions.
//!
//! ```text
//!   [fabric] br0 10.88.0.1/16 (gateway)
//!      ├── n1 ══ uplink0 10.88.0.11/16 [node1] ── pods 10.88.17.x/16 (gw 10.88.0.1)
//!      ├── n2 ══ uplink0 10.88.0.12/16 [node2] ── pods 10.88.18.x/16
//!      ├── n3 ══ uplink0 10.88.0.13/16 [node3] ── pods 10.88.19.x/16
//!      └── wc ══ wc0 10.88.200.1/16 [wire client]
//!   cluster CIDR 10.88.16.0/20 (the pod CIDRs), Service CIDR 10.96.0.0/16
//! ```
//!
//! Every namespace, state dir and pin root is the test's own and goes on
//! drop; `Cluster::remove_pods_and_assert_clean` DELs every pod and runs the
//! traces check on every node.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::cmd::must;
use super::cni::{pod_ip, Node, Wiring, UPLINK};
use super::ns::Netns;

pub const GATEWAY: &str = "10.88.0.1";
pub const SEGMENT_PREFIX: u8 = 16;
/// The union of the nodes' pod CIDRs (kube-proxy's `--cluster-cidr`).
pub const CLUSTER_CIDR: &str = "10.88.16.0/20";
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The client on the wire: outside the cluster CIDR, on the segment.
pub const CLIENT_IP: &str = "10.88.200.1";
pub const NODES: usize = 3;
pub const PODS_PER_NODE: usize = 2;
const BRIDGE: &str = "br0";
const CLIENT_IF: &str = "wc0";

/// Node `i` (0-based): its name, its address, and its pod CIDR's third octet.
fn node_name(i: usize) -> String {
    format!("node{}", i + 1)
}

fn node_ip(i: usize) -> String {
    format!("10.88.0.{}", 11 + i)
}

fn pod_subnet_octet(i: usize) -> usize {
    17 + i
}

/// One pod: its namespace, container ID, name (`n<node>p<pod>`) and address.
pub struct Pod {
    pub ns: Netns,
    pub cid: String,
    pub name: String,
    pub ip: String,
}

/// One node of the cluster with its pods and its network config.
pub struct ClusterNode {
    // Pods first: their namespaces go before the node's.
    pub pods: Vec<Pod>,
    pub node: Node,
    /// `node1`, `node2`, … (the node name in Service endpoints).
    pub name: String,
    pub ip: String,
    pub conf: Value,
}

impl ClusterNode {
    /// One counter (packets) of one of this node's pods (`veth-xdp stats --json` key).
    pub fn counter(&self, pod: &Pod, key: &str) -> u64 {
        self.node.counter(&pod.cid, key)
    }

    /// `iptables-save -c -t nat` in the node, as (packets, rule) for every rule.
    pub fn nat_rules(&self) -> Vec<(u64, String)> {
        self.node
            .ns
            .exec(&["iptables-save", "-c", "-t", "nat"])
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix('[')?;
                let (counts, rule) = rest.split_once("] ")?;
                Some((counts.split(':').next()?.parse().ok()?, rule.to_string()))
            })
            .collect()
    }

    /// The node's conntrack table (`/proc/net/nf_conntrack` read inside its
    /// namespace: no conntrack tool needed), one entry per line.
    pub fn conntrack(&self) -> Vec<String> {
        let (_, out) = self.node.ns.sh("cat /proc/net/nf_conntrack 2>/dev/null");
        out.lines().map(str::to_string).collect()
    }
}

/// The cluster: dropped nodes first (with their pods), then the client,
/// then the fabric (the nodes share it through their `wire`).
pub struct Cluster {
    pub nodes: Vec<ClusterNode>,
    pub client: Netns,
    pub fabric: Arc<Netns>,
}

impl Cluster {
    /// Three nodes with two pods each; `extra` keys are merged into every
    /// node's network config (e.g. `{"egress": "tc"}`). Every config carries
    /// `serviceCIDRs`, as a cluster's does.
    pub fn new(tag: &str, extra: Value) -> Self {
        let fabric = Arc::new(Netns::new(&format!("{tag}f")).lo_up().without_ipv6());
        fabric.ip(&format!("link add {BRIDGE} type bridge"));
        fabric.ip(&format!("addr add {GATEWAY}/{SEGMENT_PREFIX} dev {BRIDGE}"));
        fabric.ip(&format!("link set {BRIDGE} up"));
        // Bridged frames are the wire's business, not the fabric's netfilter's.
        let _ = fabric.try_exec(&["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"]);

        let client = Netns::new(&format!("{tag}c")).lo_up().without_ipv6();
        must(&format!(
            "set -e; ip link add {CLIENT_IF} netns {client} type veth peer name wc netns {fabric}; \
             ip -n {client} addr add {CLIENT_IP}/{SEGMENT_PREFIX} dev {CLIENT_IF}; \
             ip -n {client} link set {CLIENT_IF} up; \
             ip -n {fabric} link set wc master {BRIDGE} up"
        ));
        fabric.exec(&["ethtool", "-K", "wc", "gro", "on", "tx", "off"]);

        let nodes = (0..NODES)
            .map(|i| Self::node(tag, &fabric, i, &extra))
            .collect();
        Self {
            nodes,
            client,
            fabric,
        }
    }

    fn node(tag: &str, fabric: &Arc<Netns>, i: usize, extra: &Value) -> ClusterNode {
        let port = format!("n{}", i + 1);
        let octet = pod_subnet_octet(i);
        let ip = node_ip(i);
        let node = Node::wired(
            &format!("{tag}{}", i + 1),
            Arc::clone(fabric),
            &Wiring {
                wire_if: &port,
                node_cidr: &format!("{ip}/{SEGMENT_PREFIX}"),
                gateway: GATEWAY,
                mtu: 1500,
                ipam_range: json!({
                    "subnet": format!("10.88.0.0/{SEGMENT_PREFIX}"),
                    "rangeStart": format!("10.88.{octet}.10"),
                    "rangeEnd": format!("10.88.{octet}.250"),
                    "gateway": GATEWAY,
                }),
            },
        );
        fabric.ip(&format!("link set {port} master {BRIDGE}"));
        // A Kubernetes node forwards (Services, NodePorts).
        node.ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let mut more = json!({"serviceCIDRs": [SERVICE_CIDR]});
        if let (Value::Object(m), Value::Object(e)) = (&mut more, extra) {
            m.extend(e.clone());
        }
        let conf = node.conf("1.0.0", more);
        let pods = (0..PODS_PER_NODE)
            .map(|j| {
                let name = format!("n{}p{}", i + 1, j + 1);
                let ns = node.pod(j);
                // Container IDs are unique in the cluster: the pod MAC derives from them.
                let res = node.add(&name, &ns, &conf);
                Pod {
                    ip: pod_ip(&res),
                    cid: name.clone(),
                    name,
                    ns,
                }
            })
            .collect();
        ClusterNode {
            pods,
            node,
            name: node_name(i),
            ip,
            conf,
        }
    }

    /// Pod `j` of node `i` (both 0-based).
    pub fn pod(&self, i: usize, j: usize) -> &Pod {
        &self.nodes[i].pods[j]
    }

    /// Every pod with the node it runs on.
    pub fn pods(&self) -> impl Iterator<Item = (&ClusterNode, &Pod)> {
        self.nodes
            .iter()
            .flat_map(|n| n.pods.iter().map(move |p| (n, p)))
    }

    /// Installs kube-proxy's nat rules for `services` (the `services` list of
    /// `kube_proxy_rules.py`) on every node, each node's own (Local policy
    /// lists only its endpoints), with `iptables-restore --noflush` in the
    /// node's namespace; the input is kept in the node's dir.
    pub fn install_services(&self, services: &Value) {
        for n in &self.nodes {
            let rules = kube_proxy_rules(&json!({
                "node": n.name,
                "clusterCIDR": CLUSTER_CIDR,
                "services": services,
            }));
            restore_rules(&n.node.ns, &n.node.dir.join("kube-proxy-nat.rules"), &rules);
        }
    }

    /// What every node shows: the nat rules that counted packets, the
    /// conntrack table, and the datapath counters that moved; for failure
    /// messages.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            out += &format!("== {} ({}, ns {})\n", n.name, n.ip, n.node.ns);
            let counted: Vec<String> = n
                .nat_rules()
                .into_iter()
                .filter(|(p, _)| *p > 0)
                .map(|(p, rule)| format!("[{p}] {rule}"))
                .collect();
            out += &section(
                "nat rules that counted packets (iptables-save -c)",
                &counted,
            );
            out += &section("conntrack", &n.conntrack());
            out += "-- datapath counters (veth-xdp stats --json, non-zero packets):\n";
            let stats = n.node.stats();
            for up in stats["uplinks"].as_array().into_iter().flatten() {
                out += &format!(
                    "   {UPLINK}: redirectedToPods {} passedToStack {}\n",
                    up["redirectedToPods"], up["passedToStack"]
                );
            }
            for a in stats["attachments"].as_array().into_iter().flatten() {
                let moved: Vec<String> = a["counters"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, c)| c["packets"].as_u64().unwrap_or(0) > 0)
                    .map(|(k, c)| format!("{k} {}", c["packets"]))
                    .collect();
                out += &format!(
                    "   {} {}: {}\n",
                    a["containerID"].as_str().unwrap_or("?"),
                    a["ips"],
                    moved.join(", ")
                );
            }
        }
        out
    }

    /// DELs every pod, then checks that no node keeps a trace of any.
    pub fn remove_pods_and_assert_clean(&self) {
        for n in &self.nodes {
            for p in &n.pods {
                n.node.cni("DEL", &p.cid, Some(&p.ns), "eth0", &n.conf).ok();
            }
            let t = n.node.traces();
            assert!(t.is_empty(), "traces left on {}:\n{}", n.name, t.join("\n"));
        }
    }
}

/// Loads `rules` with `iptables-restore --noflush` in `ns`, keeping them in `file`.
pub fn restore_rules(ns: &Netns, file: &Path, rules: &str) {
    std::fs::write(file, rules).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    ns.must(&format!("iptables-restore --noflush < {}", file.display()));
}

/// A titled list for `Cluster::report`.
fn section(title: &str, lines: &[String]) -> String {
    let mut out = format!("-- {title}:\n");
    if lines.is_empty() {
        out += "   (none)\n";
    }
    for l in lines {
        out += &format!("   {l}\n");
    }
    out
}

/// `kube_proxy_rules.py` run on `desc`: kube-proxy's nat rules for one node.
pub fn kube_proxy_rules(desc: &Value) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let script = format!(
        "{}/tests/support/kube_proxy_rules.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn python3 {script}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(desc.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed on {desc}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
