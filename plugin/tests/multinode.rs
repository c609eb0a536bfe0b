//! Multi-node tests (issue 8, "Pods reach Kubernetes Services"), each in both
//! egress modes: a cluster of three nodes on one L2 segment
//! (`support::cluster`), pods reaching pods on other nodes, the node, the
//! gateway and a client on the wire with the counters proving the uplink
//! redirect carried the frames; then kube-proxy's own nat rules
//! (`support/kube_proxy_rules.py`) and Services: ClusterIP from pods and from
//! the node, NodePort from the wire with both external traffic policies, and
//! the flows no NAT touches staying on the fast path meanwhile.
//!
//! Run as root: `cargo test --test multinode -- --test-threads=2`.

mod support;

use serde_json::{json, Value};
use support::cluster::{
    kube_proxy_rules, restore_rules, Cluster, ClusterNode, Pod, CLIENT_IP, GATEWAY,
};
use support::cmd::TempDir;
use support::ns::Netns;
use support::traffic::{ask, echo_server, iperf, pings, Answer, Background, Proto};

/// Runs test function `name(mode)` once per egress mode, as the tests
/// `<name>::xdp` and `<name>::tc` (attributes such as `#[ignore]` go to both).
macro_rules! in_both_modes {
    ($(#[$attr:meta])* $name:ident) => {
        mod $name {
            $(#[$attr])*
            #[test]
            fn xdp() {
                super::$name("xdp")
            }

            $(#[$attr])*
            #[test]
            fn tc() {
                super::$name("tc")
            }
        }
    };
}

/// A cluster whose pods use egress mode `mode`; `tag` names the test.
fn cluster(tag: &str, mode: &str) -> Cluster {
    Cluster::new(&format!("{tag}{}", &mode[..1]), json!({"egress": mode}))
}

/// Counters (`veth-xdp stats --json` keys) of pods, read together so a
/// check can say which moved and by how much.
struct Watch<'a> {
    what: Vec<(&'a ClusterNode, &'a Pod, &'static str)>,
    uplinks: Vec<&'a ClusterNode>,
    before: Vec<u64>,
}

impl<'a> Watch<'a> {
    fn new(
        what: Vec<(&'a ClusterNode, &'a Pod, &'static str)>,
        uplinks: Vec<&'a ClusterNode>,
    ) -> Self {
        let mut w = Self {
            what,
            uplinks,
            before: vec![],
        };
        w.before = w.read();
        w
    }

    fn read(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .what
            .iter()
            .map(|(n, p, key)| n.counter(p, key))
            .collect();
        v.extend(self.uplinks.iter().map(|n| n.node.uplink_redirected()));
        v
    }

    /// How much each watched counter grew, named.
    fn deltas(&self) -> Vec<(String, u64)> {
        let names = self
            .what
            .iter()
            .map(|(n, p, key)| format!("{}/{} {key}", n.name, p.name))
            .chain(
                self.uplinks
                    .iter()
                    .map(|n| format!("{} uplink redirectedToPods", n.name)),
            );
        names
            .zip(self.read().iter().zip(&self.before).map(|(a, b)| a - b))
            .collect()
    }

    /// Asserts every watched counter grew by at least `n`.
    fn grew_by(&self, n: u64, flow: &str) {
        let d = self.deltas();
        assert!(
            d.iter().all(|(_, v)| *v >= n),
            "{flow}: a counter grew by less than the {n} packets sent: {d:?}"
        );
    }
}

/// `count` pings from node1's first pod to node2's first pod, carried by the
/// redirects both ways: out of the sender's host veth to the wire, into the
/// receiver by its node's uplink program, and the replies back alike.
fn ping_across_nodes_by_redirect(c: &Cluster, count: u32, flow: &str) {
    let (n1, n2) = (&c.nodes[0], &c.nodes[1]);
    let (a, b) = (c.pod(0, 0), c.pod(1, 0));
    let w = Watch::new(
        vec![
            (n1, a, "redirectedToUplink"),
            (n2, b, "redirectedIn"),
            (n2, b, "redirectedToUplink"),
            (n1, a, "redirectedIn"),
        ],
        vec![n1, n2],
    );
    pings(&a.ns, &b.ip, count, "").unwrap();
    w.grew_by(count.into(), flow);
}

/// ICMP (MTU-sized with DF too), TCP and UDP between pods on different
/// nodes, each frame redirected by the receiving node's uplink program
/// into the pod and by the sender's host-veth program to the wire.
fn pods_reach_pods_on_other_nodes(mode: &str) {
    let c = cluster("pp", mode);
    let (n1, n2) = (&c.nodes[0], &c.nodes[1]);
    let (a, b) = (c.pod(0, 0), c.pod(1, 0));

    ping_across_nodes_by_redirect(&c, 5, "ICMP node1 pod -> node2 pod");

    // The pod MTU is the segment's: a full frame with DF crosses both ways.
    let w = Watch::new(
        vec![(n2, b, "redirectedIn"), (n1, a, "redirectedIn")],
        vec![n1, n2],
    );
    pings(&a.ns, &b.ip, 3, "-M do -s 1472").unwrap();
    pings(&b.ns, &a.ip, 3, "-M do -s 1472").unwrap();
    w.grew_by(6, "MTU-sized ICMP with DF between nodes");

    let w = Watch::new(vec![(n2, b, "redirectedIn")], vec![n2]);
    assert!(
        iperf(&b.ns, &a.ns, &b.ip, false, 5301) > 0,
        "TCP node1 pod -> node2 pod"
    );
    w.grew_by(100, "TCP node1 pod -> node2 pod");
    let w = Watch::new(vec![(n1, a, "redirectedIn")], vec![n1]);
    assert!(
        iperf(&a.ns, &b.ns, &a.ip, false, 5302) > 0,
        "TCP node2 pod -> node1 pod"
    );
    w.grew_by(100, "TCP node2 pod -> node1 pod");

    let _server = echo_server(&b.ns, &b.name, &[5353]);
    let w = Watch::new(
        vec![(n2, b, "redirectedIn"), (n1, a, "redirectedIn")],
        vec![n1, n2],
    );
    let answer = ask(&a.ns, Proto::Udp, &b.ip, 5353, 5.0);
    assert_eq!(
        answer,
        Ok(Answer {
            server: b.name.clone(),
            peer: a.ip.clone()
        }),
        "UDP request/response node1 pod -> node2 pod"
    );
    w.grew_by(1, "UDP request/response between nodes");
    c.remove_pods_and_assert_clean();
}

in_both_modes!(pods_reach_pods_on_other_nodes);

/// The node reaches its own pods (the kubelet's probes: replies passed to
/// its stack) and pods on other nodes; pods reach the gateway, and a
/// client on the wire reaches pods.
fn pods_reach_the_node_the_gateway_and_the_wire(mode: &str) {
    let c = cluster("ng", mode);
    let (n1, n3) = (&c.nodes[0], &c.nodes[2]);
    let (a, d) = (c.pod(0, 0), c.pod(2, 1));

    let w = Watch::new(vec![(n1, a, "passedToStack")], vec![]);
    pings(&n1.node.ns, &a.ip, 3, "").unwrap();
    w.grew_by(3, "node1 -> its pod (replies passed to the node)");

    let w = Watch::new(vec![(n3, d, "redirectedIn")], vec![n3]);
    pings(&n1.node.ns, &d.ip, 3, "").unwrap();
    w.grew_by(3, "node1 -> a pod on node3");

    let w = Watch::new(
        vec![(n1, a, "redirectedToUplink"), (n1, a, "redirectedIn")],
        vec![n1],
    );
    pings(&a.ns, GATEWAY, 3, "").unwrap();
    w.grew_by(3, "pod -> gateway");

    let w = Watch::new(
        vec![(n3, d, "redirectedIn"), (n3, d, "redirectedToUplink")],
        vec![n3],
    );
    pings(&c.client, &d.ip, 3, "").unwrap();
    w.grew_by(3, "client on the wire -> pod on node3");
    c.remove_pods_and_assert_clean();
}

in_both_modes!(pods_reach_the_node_the_gateway_and_the_wire);

// ---- kube-proxy's rules -------------------------------------------------------------

/// The golden dumps of kubernetes/kubernetes pkg/proxy/iptables/proxier_test.go
/// (nat table), with what a real node adds and the tests' fake iptables leaves out:
/// the jumps from the built-in chains and `--random-fully`.
const BUILTIN_JUMPS: &str = r#"-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
"#;
/// Where kube-proxy's rules begin, as iptables-save shows it.
const PREROUTING_JUMP: &str =
    r#"-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES"#;
const MASQ_RULES: &str = r#"-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
"#;

#[test]
fn kube_proxy_rules_are_kube_proxys_golden_output() {
    // TestOnlyLocalNodePorts: a NodePort with externalTrafficPolicy Local, one
    // endpoint on this node ("test-hostname") and one elsewhere.
    let local = kube_proxy_rules(&json!({
        "node": "test-hostname",
        "clusterCIDR": "10.0.0.0/8",
        "services": [{
            "namespace": "ns1", "name": "svc1", "type": "NodePort", "clusterIP": "172.30.0.41",
            "externalTrafficPolicy": "Local",
            "ports": [{"name": "p80", "protocol": "TCP", "port": 80, "nodePort": 3001}],
            "endpoints": [{"ip": "10.180.0.1"}, {"ip": "10.180.2.1", "nodeName": "test-hostname"}],
        }],
    }));
    let golden = [
        r#"*nat
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXT-XPGD46QRK7WJZT7O - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
:KUBE-SEP-ZX7GRIZKSNUQ3LAJ - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SVL-XPGD46QRK7WJZT7O - [0:0]
"#,
        BUILTIN_JUMPS,
        r#"-A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-XPGD46QRK7WJZT7O
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "masquerade LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "route LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVL-XPGD46QRK7WJZT7O
"#,
        MASQ_RULES,
        r#"-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SEP-ZX7GRIZKSNUQ3LAJ -m comment --comment ns1/svc1:p80 -s 10.180.2.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-ZX7GRIZKSNUQ3LAJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.2.1:80
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.2.1:80" -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ
-A KUBE-SVL-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.2.1:80" -j KUBE-SEP-ZX7GRIZKSNUQ3LAJ
COMMIT
"#,
    ]
    .concat();
    assert_eq!(local, golden);

    // TestInternalTrafficPolicyE2E ("cluster"): a ClusterIP Service with an
    // unnamed port and three endpoints; and TestOverallIPTablesRules' ns3/svc3,
    // a NodePort with externalTrafficPolicy Cluster.
    let cluster = kube_proxy_rules(&json!({
        "node": "test-hostname",
        "clusterCIDR": "10.0.0.0/8",
        "services": [
            {
                "namespace": "ns1", "name": "svc1", "clusterIP": "172.30.1.1",
                "ports": [{"protocol": "TCP", "port": 80}],
                "endpoints": [
                    {"ip": "10.0.1.1", "nodeName": "test-hostname"},
                    {"ip": "10.0.1.2", "nodeName": "host1"},
                    {"ip": "10.0.1.3", "nodeName": "host2"},
                ],
            },
            {
                "namespace": "ns3", "name": "svc3", "type": "NodePort", "clusterIP": "172.30.0.43",
                "ports": [{"name": "p80", "protocol": "TCP", "port": 80, "nodePort": 3003}],
                "endpoints": [{"ip": "10.180.0.3"}],
            },
        ],
    }));
    let golden = [
        r#"*nat
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-3JOIVZTXZZRGORX4 - [0:0]
:KUBE-SEP-IO5XOSKPAXIFQXAJ - [0:0]
:KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
:KUBE-SEP-XGJFVO3L2O5SRFNT - [0:0]
:KUBE-SVC-AQI2S6QIMU7PVVRP - [0:0]
:KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
"#,
        BUILTIN_JUMPS,
        r#"-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
-A KUBE-SERVICES -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 -j KUBE-SVC-AQI2S6QIMU7PVVRP
-A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
"#,
        MASQ_RULES,
        r#"-A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -s 10.0.1.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-3JOIVZTXZZRGORX4 -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80
-A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -s 10.0.1.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-IO5XOSKPAXIFQXAJ -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.2:80
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SEP-XGJFVO3L2O5SRFNT -m comment --comment ns1/svc1 -s 10.0.1.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-XGJFVO3L2O5SRFNT -m comment --comment ns1/svc1 -m tcp -p tcp -j DNAT --to-destination 10.0.1.3:80
-A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 cluster IP" -m tcp -p tcp -d 172.30.1.1 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-3JOIVZTXZZRGORX4
-A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-IO5XOSKPAXIFQXAJ
-A KUBE-SVC-AQI2S6QIMU7PVVRP -m comment --comment "ns1/svc1 -> 10.0.1.3:80" -j KUBE-SEP-XGJFVO3L2O5SRFNT
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
COMMIT
"#,
    ]
    .concat();
    assert_eq!(cluster, golden);
}

/// The rules load into a namespace's nat table as written (iptables-nft on
/// Debian 12), UDP ports included.
#[test]
fn kube_proxy_rules_load_with_iptables_restore() {
    let ns = Netns::new("kpr");
    let rules = kube_proxy_rules(&json!({
        "node": "node1",
        "clusterCIDR": "10.88.16.0/20",
        "services": [{
            "namespace": "kube-system", "name": "dns", "clusterIP": "10.96.0.10", "type": "NodePort",
            "externalTrafficPolicy": "Local",
            "ports": [
                {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 5353, "nodePort": 30053},
                {"name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": 5353, "nodePort": 30053},
            ],
            "endpoints": [
                {"ip": "10.88.17.10", "nodeName": "node1"},
                {"ip": "10.88.18.10", "nodeName": "node2"},
            ],
        }],
    }));
    let dir = TempDir::new("kpr");
    restore_rules(&ns, &dir.path().join("nat.rules"), &rules);
    let saved = ns.exec(&["iptables-save", "-t", "nat"]);
    for want in [
        PREROUTING_JUMP,
        r#"-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES"#,
        r#"-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING"#,
        // iptables-save's spelling of --or-mark 0x4000 and --xor-mark 0x4000.
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        "-j MASQUERADE --random-fully",
        r#"-p udp -m comment --comment "kube-system/dns:dns" -m udp -j DNAT --to-destination 10.88.17.10:5353"#,
        r#"! -s 10.88.16.0/20 -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/dns:dns cluster IP""#,
    ] {
        assert!(saved.contains(want), "{want:?} not in:\n{saved}");
    }
    // Only node1's endpoint is local: the Local chain lists it alone.
    let svl: Vec<&str> = saved
        .lines()
        .filter(|l| l.starts_with("-A KUBE-SVL-"))
        .collect();
    assert_eq!(svl.len(), 2, "one local endpoint per port: {svl:?}");
    assert!(svl.iter().all(|l| l.contains("10.88.17.10")), "{svl:?}");
}

// ---- Services ---------------------------------------------------------------------

const HTTP: u16 = 80;
const HTTP_TARGET: u16 = 8080;
const DNS: u16 = 53;
const DNS_TARGET: u16 = 5353;

/// One Service of the tests.
struct Svc {
    name: &'static str,
    cluster_ip: &'static str,
    /// Some: a NodePort Service.
    node_port: Option<u16>,
    /// externalTrafficPolicy.
    policy: &'static str,
    /// Its one endpoint: (node, pod).
    endpoint: (usize, usize),
}

const SERVICES: &[Svc] = &[
    // ClusterIP, endpoint on node1 / on node2.
    Svc {
        name: "web-n1",
        cluster_ip: "10.96.0.11",
        node_port: None,
        policy: "Cluster",
        endpoint: (0, 1),
    },
    Svc {
        name: "web-n2",
        cluster_ip: "10.96.0.12",
        node_port: None,
        policy: "Cluster",
        endpoint: (1, 0),
    },
    // NodePort (Cluster), endpoint on node1 / node2.
    Svc {
        name: "np-n1",
        cluster_ip: "10.96.0.21",
        node_port: Some(30081),
        policy: "Cluster",
        endpoint: (0, 1),
    },
    Svc {
        name: "np-n2",
        cluster_ip: "10.96.0.22",
        node_port: Some(30082),
        policy: "Cluster",
        endpoint: (1, 1),
    },
    // NodePort (Local), endpoint on node2 only.
    Svc {
        name: "np-local",
        cluster_ip: "10.96.0.23",
        node_port: Some(30083),
        policy: "Local",
        endpoint: (1, 1),
    },
];

fn service(name: &str) -> &'static Svc {
    SERVICES.iter().find(|s| s.name == name).unwrap()
}

/// Each Service: an HTTP-like TCP port and a DNS-like UDP port (the same
/// nodePort for both protocols), one endpoint.
fn service_descriptions(c: &Cluster) -> Value {
    let list: Vec<Value> = SERVICES
        .iter()
        .map(|s| {
            let mut ports = vec![
                json!({"name": "http", "protocol": "TCP", "port": HTTP, "targetPort": HTTP_TARGET}),
                json!({"name": "dns", "protocol": "UDP", "port": DNS, "targetPort": DNS_TARGET}),
            ];
            if let Some(np) = s.node_port {
                for p in &mut ports {
                    p["nodePort"] = json!(np);
                }
            }
            let (i, j) = s.endpoint;
            json!({
                "namespace": "default", "name": s.name, "clusterIP": s.cluster_ip,
                "type": if s.node_port.is_some() { "NodePort" } else { "ClusterIP" },
                "externalTrafficPolicy": s.policy,
                "ports": ports,
                "endpoints": [{"ip": c.pod(i, j).ip, "nodeName": c.nodes[i].name}],
            })
        })
        .collect();
    Value::Array(list)
}

/// A cluster with the Services installed on every node and an echo server
/// in every pod (answering with the pod's name on both target ports).
fn cluster_with_services(tag: &str, mode: &str) -> (Cluster, Vec<Background>) {
    let c = cluster(tag, mode);
    c.install_services(&service_descriptions(&c));
    for n in &c.nodes {
        let saved = n.node.ns.exec(&["iptables-save", "-t", "nat"]);
        assert!(
            saved.contains(PREROUTING_JUMP),
            "kube-proxy's rules on {}: {saved}",
            n.name
        );
        let fwd = n.node.ns.exec(&["sysctl", "-n", "net.ipv4.ip_forward"]);
        assert_eq!(fwd.trim(), "1", "{} forwards", n.name);
    }
    let servers = c
        .pods()
        .map(|(_, p)| echo_server(&p.ns, &p.name, &[HTTP_TARGET, DNS_TARGET]))
        .collect();
    (c, servers)
}

/// One request to a Service and what it must meet.
struct ServiceFlow<'a> {
    what: String,
    from: &'a Netns,
    /// The pod the request leaves from, if it is one.
    from_pod: Option<(&'a ClusterNode, &'a Pod)>,
    proto: Proto,
    dst: String,
    port: u16,
    /// The node whose netfilter translates the request (entry node).
    entry: usize,
    /// The endpoint that must answer: (node, pod).
    backend: (usize, usize),
    /// The source address the endpoint must see.
    peer: String,
}

/// What moved along a Service flow's hops.
struct Hops {
    dnat: u64,
    backend_in: u64,
    from_out: u64,
    from_pass: u64,
}

fn target_port(proto: Proto) -> u16 {
    match proto {
        Proto::Tcp => HTTP_TARGET,
        Proto::Udp => DNS_TARGET,
    }
}

fn hops(c: &Cluster, f: &ServiceFlow) -> Hops {
    let backend = c.pod(f.backend.0, f.backend.1);
    // The target ports differ per protocol: the destination names the rule.
    let to = format!(
        "-j DNAT --to-destination {}:{}",
        backend.ip,
        target_port(f.proto)
    );
    let dnat = c.nodes[f.entry]
        .nat_rules()
        .iter()
        .filter(|(_, rule)| rule.contains(&to))
        .map(|(p, _)| p)
        .sum();
    let pod_counter = |(n, p): (&ClusterNode, &Pod), key| n.counter(p, key);
    Hops {
        dnat,
        backend_in: c.nodes[f.backend.0].counter(backend, "redirectedIn"),
        from_out: f
            .from_pod
            .map_or(0, |fp| pod_counter(fp, "redirectedToUplink")),
        from_pass: f.from_pod.map_or(0, |fp| pod_counter(fp, "passedToStack")),
    }
}

/// Sends the request; on failure names the first hop that failed (client →
/// entry node's netfilter, DNAT → endpoint, the reply back through the
/// entry node's conntrack), with every node's rules, conntrack and counters.
fn check_service_flow(c: &Cluster, f: &ServiceFlow) {
    let entry = &c.nodes[f.entry];
    let backend = c.pod(f.backend.0, f.backend.1);
    let before = hops(c, f);
    let got = ask(f.from, f.proto, &f.dst, f.port, 3.0);
    let after = hops(c, f);
    let want = Answer {
        server: backend.name.clone(),
        peer: f.peer.clone(),
    };
    let dnat = after.dnat - before.dnat;
    if got.as_ref() == Ok(&want) && dnat > 0 {
        return;
    }
    let conntrack: Vec<String> = entry
        .conntrack()
        .into_iter()
        .filter(|e| {
            e.contains(&format!("dst={} ", f.dst)) && e.contains(&format!("dport={} ", f.port))
        })
        .collect();
    let verdict = if dnat == 0 {
        let sender = match f.from_pod {
            Some(_) => format!(
                "; the sending pod's frames: {} redirected to the wire, {} passed to its node",
                after.from_out - before.from_out,
                after.from_pass - before.from_pass
            ),
            None => String::new(),
        };
        format!(
            "hop 1 failed: the request never reached {}'s netfilter \
             (no packet DNATed to {}){sender}",
            entry.name, backend.name,
        )
    } else if f.backend.0 != f.entry && after.backend_in == before.backend_in {
        format!(
            "hop 2 failed: {} DNATed {dnat} packet(s) to {} on {}, \
             none arrived by the uplink redirect",
            entry.name, backend.name, c.nodes[f.backend.0].name
        )
    } else if conntrack.is_empty() || conntrack.iter().all(|e| e.contains("[UNREPLIED]")) {
        format!(
            "hop 3 failed: {} reached {} but no reply came back through {}'s conntrack \
             (the reply skipped the reverse NAT): {} entries, all [UNREPLIED], e.g. {:?}",
            f.what,
            backend.name,
            entry.name,
            conntrack.len(),
            conntrack.first()
        )
    } else {
        format!(
            "the replies went through {}'s conntrack ({conntrack:?}); the client got {got:?}",
            entry.name
        )
    };
    panic!(
        "{}: got {got:?}, want {want:?}\n{verdict}\n{}",
        f.what,
        c.report()
    );
}

/// Flows no NAT touches — pod ↔ pod across nodes, pod ↔ client on the wire —
/// stay on the fast path with kube-proxy's rules in place: redirected both
/// ways, not passed to the nodes' stacks, unseen by their conntrack.
fn assert_fast_path_untouched(c: &Cluster) {
    let (n1, n2) = (&c.nodes[0], &c.nodes[1]);
    let (a, b) = (c.pod(0, 0), c.pod(1, 0));
    let count = 5;
    let pass = Watch::new(
        vec![(n1, a, "passedToStack"), (n2, b, "passedToStack")],
        vec![],
    );
    ping_across_nodes_by_redirect(c, count, "pod -> pod on another node, no NAT");
    let w = Watch::new(
        vec![(n1, a, "redirectedToUplink"), (n1, a, "redirectedIn")],
        vec![n1],
    );
    pings(&a.ns, CLIENT_IP, count, "").unwrap();
    pings(&c.client, &a.ip, count, "").unwrap();
    w.grew_by((2 * count).into(), "pod <-> client on the wire, no NAT");
    let passed = pass.deltas();
    assert!(
        passed.iter().all(|(_, d)| *d < count.into()),
        "flows without NAT were passed to the stack: {passed:?}\n{}",
        c.report()
    );
    for n in [n1, n2] {
        let seen: Vec<String> = n
            .conntrack()
            .into_iter()
            .filter(|e| {
                e.contains("icmp")
                    && (e.contains(&format!("src={} ", a.ip))
                        || e.contains(&format!("dst={} ", a.ip)))
            })
            .collect();
        assert!(
            seen.is_empty(),
            "{}'s conntrack saw fast-path flows: {seen:?}",
            n.name
        );
    }
}

/// Who sends a request to a Service.
#[derive(Clone, Copy)]
enum Sender {
    Pod(usize, usize),
    Node(usize),
    Client,
}

/// A request from `from` to Service `name`'s ClusterIP (`node_port_on`
/// None) or its NodePort on that node, with what kube-proxy's rules make of
/// it: the node that translates it, and the source the endpoint sees (pods
/// are inside the cluster CIDR and keep theirs; the node's own and
/// externalTrafficPolicy Cluster are masqueraded to the translating node's
/// address; Local keeps the client's).
fn service_flow<'a>(
    c: &'a Cluster,
    from: Sender,
    name: &str,
    proto: Proto,
    node_port_on: Option<usize>,
) -> ServiceFlow<'a> {
    let svc = service(name);
    let (who, ns, from_pod, entry, peer) = match (from, node_port_on) {
        (Sender::Pod(i, j), None) => {
            let pod = c.pod(i, j);
            let who = format!("{} {}", c.nodes[i].name, pod.name);
            (who, &pod.ns, Some((&c.nodes[i], pod)), i, pod.ip.clone())
        }
        (Sender::Node(i), None) => {
            let n = &c.nodes[i];
            (n.name.clone(), &n.node.ns, None, i, n.ip.clone())
        }
        (Sender::Client, Some(i)) => {
            let peer = match svc.policy {
                "Local" => CLIENT_IP.to_string(),
                _ => c.nodes[i].ip.clone(),
            };
            (format!("client {CLIENT_IP}"), &c.client, None, i, peer)
        }
        _ => panic!("service_flow: this sender and Service address are not modelled"),
    };
    let (dst, port) = match node_port_on {
        Some(i) => (
            c.nodes[i].ip.clone(),
            svc.node_port.expect("a NodePort Service"),
        ),
        None => (
            svc.cluster_ip.to_string(),
            if proto == Proto::Tcp { HTTP } else { DNS },
        ),
    };
    ServiceFlow {
        what: format!("{who} -> {name} at {dst}:{port} ({})", proto.as_str()),
        from: ns,
        from_pod,
        proto,
        dst,
        port,
        entry,
        backend: svc.endpoint,
        peer,
    }
}

/// A Service test: a cluster with the Services, each request (sender,
/// Service, NodePort node or None for the ClusterIP) over TCP and over UDP (a
/// DNS-like request/response), the test's `more` checks, then the flows no
/// NAT touches and the traces check.
fn service_test(
    tag: &str,
    mode: &str,
    requests: &[(Sender, &str, Option<usize>)],
    more: impl FnOnce(&Cluster),
) {
    let (c, _servers) = cluster_with_services(tag, mode);
    for (from, name, node_port_on) in requests {
        for proto in [Proto::Tcp, Proto::Udp] {
            check_service_flow(&c, &service_flow(&c, *from, name, proto, *node_port_on));
        }
    }
    more(&c);
    assert_fast_path_untouched(&c);
    c.remove_pods_and_assert_clean();
}

/// A pod reaches a ClusterIP whose endpoint is another pod of its node.
fn services_pod_to_cluster_ip_backend_on_same_node(mode: &str) {
    service_test("sps", mode, &[(Sender::Pod(0, 0), "web-n1", None)], |_| {});
}

in_both_modes!(services_pod_to_cluster_ip_backend_on_same_node);

/// A pod reaches a ClusterIP whose endpoint runs on another node.
fn services_pod_to_cluster_ip_backend_on_other_node(mode: &str) {
    service_test("spo", mode, &[(Sender::Pod(0, 0), "web-n2", None)], |_| {});
}

in_both_modes!(services_pod_to_cluster_ip_backend_on_other_node);

/// The node reaches ClusterIPs (its OUTPUT chain DNATs, the replies come
/// back to its own stack): endpoint on the node and on another node.
fn services_node_to_cluster_ip(mode: &str) {
    let requests = [
        (Sender::Node(0), "web-n1", None),
        (Sender::Node(0), "web-n2", None),
    ];
    service_test("snc", mode, &requests, |_| {});
}

in_both_modes!(services_node_to_cluster_ip);

/// A client on the wire reaches NodePorts with externalTrafficPolicy
/// Cluster on node1: endpoint on node1 and on node2, the client's
/// address masqueraded to node1's.
fn services_wire_to_node_port_cluster_policy(mode: &str) {
    let requests = [
        (Sender::Client, "np-n1", Some(0)),
        (Sender::Client, "np-n2", Some(0)),
    ];
    service_test("snp", mode, &requests, |_| {});
}

in_both_modes!(services_wire_to_node_port_cluster_policy);

/// externalTrafficPolicy Local: the node with the endpoint (node2)
/// answers, with the client's own address preserved (no masquerade, so
/// the reply must go back through node2's conntrack); nodes without an
/// endpoint do not.
fn services_wire_to_node_port_local_policy(mode: &str) {
    service_test("snl", mode, &[(Sender::Client, "np-local", Some(1))], |c| {
        let node_port = service("np-local").node_port.unwrap();
        for n in [&c.nodes[0], &c.nodes[2]] {
            let got = ask(&c.client, Proto::Tcp, &n.ip, node_port, 1.0);
            assert!(
                got.is_err(),
                "{} has no local endpoint of np-local, yet answered: {got:?}",
                n.name
            );
        }
    });
}

in_both_modes!(services_wire_to_node_port_local_policy);
