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

use serde_json::json;
use support::cluster::{kube_proxy_rules, restore_rules, Cluster, ClusterNode, Pod, GATEWAY};
use support::cmd::TempDir;
use support::ns::Netns;
use support::traffic::{ask, echo_server, iperf, pings, Answer, Proto};

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
            "{flow}: not carried by the redirects ({n} packets expected on each): {d:?}"
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
