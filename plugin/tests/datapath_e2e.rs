//! End-to-end datapath tests in namespaces (issue: XDP datapath), in both
//! egress modes: the wire reaches the pods and the pods reach the wire, each
//! other and the node, over ICMP, UDP and TCP, and the counters prove the XDP
//! path carried each flow. Run as root: `cargo test --test datapath_e2e`.

mod support;

use serde_json::{json, Value};
use support::cmd::{must, xdp_pass_object};
use support::cni::*;
use support::ns::Netns;
use support::traces;
use support::traffic::{iperf, ping};
use veth_xdp::bpf::{self, BpfPaths};
use veth_xdp::record::Store;

/// The XDP attach mode `ip -j -d link` reports (1 = driver, 2 = generic), None without XDP.
fn xdp_mode(ns: &Netns, dev: &str) -> Option<u64> {
    ns.link_json(dev)
        .get("xdp")
        .and_then(|x| x["mode"].as_u64())
}

struct TwoPods {
    node: Node,
    pods: [Netns; 2],
    ips: [String; 2],
    conf: Value,
}

fn two_pods(tag: &str, mtu: u32, extra: Value) -> TwoPods {
    let node = Node::with_mtu(tag, mtu);
    let conf = node.conf("1.0.0", extra);
    let pods = [node.pod(1), node.pod(2)];
    let r1 = node.add("c1", &pods[0], &conf);
    let r2 = node.add("c2", &pods[1], &conf);
    TwoPods {
        ips: [pod_ip(&r1), pod_ip(&r2)],
        node,
        pods,
        conf,
    }
}

fn run_flows(t: &TwoPods, mode: &str) {
    let n = &t.node;
    let paths = BpfPaths::new(&n.bpf_root);
    // The uplink program and host-veth programs are attached as reported.
    assert_eq!(
        xdp_mode(&n.ns, UPLINK),
        Some(1),
        "uplink program in driver mode (ip -d link: xdp mode 1)"
    );
    let stats = n.stats();
    for a in stats["attachments"].as_array().unwrap() {
        assert_eq!(a["egress"], mode);
        let dev = a["hostVeth"].as_str().unwrap();
        if mode == "xdp" {
            assert_eq!(
                xdp_mode(&n.ns, dev),
                Some(1),
                "host veth XDP in driver mode"
            );
        } else {
            assert_eq!(
                xdp_mode(&n.ns, dev),
                None,
                "no XDP on the host veth in tc mode"
            );
            // bpftool 7.1 (Debian 12) does not know tcx links by name: read the pinned link.
            let prog = traces::linked_program(&paths.link(&format!("{dev}_tc")));
            assert!(
                prog.contains(bpf::PROG_HOST_TC),
                "tc program on host veth: {prog}"
            );
        }
    }

    // wire -> pods (ARP resolved through the uplink program, frames redirected in)
    let up0 = n.uplink_redirected();
    let in0 = n.counter("c1", "redirectedIn");
    for ip in &t.ips {
        assert!(ping(&n.wire, ip), "wire pings pod {ip}");
    }
    assert!(
        n.uplink_redirected() >= up0 + 4,
        "uplink redirected the pings"
    );
    assert!(
        n.counter("c1", "redirectedIn") >= in0 + 2,
        "pod 1 received by redirect"
    );

    // pod -> gateway (the wire): out through the uplink
    let out0 = n.counter("c1", "redirectedToUplink");
    assert!(ping(&t.pods[0], GATEWAY), "pod pings the gateway");
    assert!(
        n.counter("c1", "redirectedToUplink") >= out0 + 2,
        "pod 1 -> wire by redirect"
    );

    // pod <-> pod
    let p0 = n.counter("c1", "redirectedToPod");
    let i2 = n.counter("c2", "redirectedIn");
    assert!(ping(&t.pods[0], &t.ips[1]), "pod 1 pings pod 2");
    assert!(ping(&t.pods[1], &t.ips[0]), "pod 2 pings pod 1");
    assert!(
        n.counter("c1", "redirectedToPod") >= p0 + 2,
        "pod 1 -> pod 2 by redirect"
    );
    assert!(
        n.counter("c2", "redirectedIn") >= i2 + 2,
        "pod 2 received by redirect"
    );

    // node -> pod (the kubelet probe path): replies reach the node's stack
    let pass0 = n.counter("c1", "passedToStack");
    assert!(ping(&n.ns, &t.ips[0]), "node pings pod 1");
    assert!(
        n.counter("c1", "passedToStack") >= pass0 + 2,
        "pod replies to the node are passed to the stack"
    );

    // TCP and UDP: wire <-> pod, pod <-> pod, node -> pod
    let out0 = n.counter("c1", "redirectedToUplink");
    assert!(
        iperf(&n.wire, &t.pods[0], GATEWAY, false, 5201) > 0,
        "TCP pod -> wire"
    );
    assert!(
        n.counter("c1", "redirectedToUplink") > out0 + 100,
        "TCP to the wire went by redirect"
    );
    let in0 = n.counter("c1", "redirectedIn");
    assert!(
        iperf(&t.pods[0], &n.wire, &t.ips[0], false, 5202) > 0,
        "TCP wire -> pod"
    );
    assert!(
        n.counter("c1", "redirectedIn") > in0 + 100,
        "TCP from the wire went by redirect"
    );
    let pp0 = n.counter("c1", "redirectedToPod");
    assert!(
        iperf(&t.pods[1], &t.pods[0], &t.ips[1], false, 5203) > 0,
        "TCP pod -> pod"
    );
    assert!(
        n.counter("c1", "redirectedToPod") > pp0 + 100,
        "TCP pod -> pod by redirect"
    );
    assert!(
        iperf(&t.pods[0], &n.ns, &t.ips[0], false, 5204) > 0,
        "TCP node -> pod"
    );
    let u0 = n.counter("c2", "redirectedToUplink");
    assert!(
        iperf(&n.wire, &t.pods[1], GATEWAY, true, 5205) > 0,
        "UDP pod -> wire"
    );
    assert!(
        n.counter("c2", "redirectedToUplink") > u0 + 100,
        "UDP to the wire by redirect"
    );
    assert!(
        iperf(&t.pods[1], &n.wire, &t.ips[1], true, 5206) > 0,
        "UDP wire -> pod"
    );

    // A pod spoofing its source address reaches nobody, and is counted.
    let spoof0 = n.counter("c1", "spoofDrops");
    must(&format!(
        "ip -n {} addr add 10.77.0.251/24 dev eth0",
        t.pods[0]
    ));
    for dst in [GATEWAY, t.ips[1].as_str(), NODE_IP] {
        let (ok, _) = t.pods[0].sh(&format!("ping -c 1 -W 1 -I 10.77.0.251 {dst}"));
        assert!(!ok, "spoofed source reaches {dst}");
    }
    must(&format!(
        "ip -n {} addr del 10.77.0.251/24 dev eth0",
        t.pods[0]
    ));
    assert!(
        n.counter("c1", "spoofDrops") >= spoof0 + 3,
        "spoofed frames counted"
    );

    // CHECK still passes, then DEL leaves nothing in the maps or bpffs.
    let records = Store::new(&n.state_dir(), NETWORK);
    for (i, c) in ["c1", "c2"].iter().enumerate() {
        let mut prev = records.load(c, "eth0").unwrap().expect("record").result;
        prev["cniVersion"] = json!("1.0.0");
        n.cni(
            "CHECK",
            c,
            Some(&t.pods[i]),
            "eth0",
            &with_prev(&t.conf, &prev),
        )
        .ok();
    }
    for (i, c) in ["c1", "c2"].iter().enumerate() {
        n.cni("DEL", c, Some(&t.pods[i]), "eth0", &t.conf).ok();
    }
    n.assert_clean();
    let links: Vec<String> = std::fs::read_dir(paths.links_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        links,
        [bpf::LINK_UPLINK],
        "only the node's uplink link stays pinned: {links:?}"
    );
    // vx_counters is a per-CPU array indexed by slot (0 = uplink): after DEL
    // every pod slot is zeroed.
    let dirty = traces::dirty_slots(&paths.map("vx_counters"));
    assert!(
        dirty.is_empty(),
        "vx_counters slots not zeroed after DEL: {dirty:?}"
    );
    for (map, left) in [
        ("vx_pod_mac", 0),
        ("vx_pod_v4", 0),
        ("vx_pod_v6", 0),
        ("vx_pod_if", 0),
        ("vx_redirect", 1),
    ] {
        let entries = traces::dump_map(&paths.map(map));
        assert_eq!(
            entries.len(),
            left,
            "{map} after DEL (the uplink's own entries stay): {entries:?}"
        );
    }
    assert!(n.stats()["attachments"].as_array().unwrap().is_empty());
}

#[test]
fn flows_in_xdp_egress_mode() {
    let t = two_pods("ex", 1500, json!({}));
    run_flows(&t, "xdp");
}

#[test]
fn flows_in_tc_egress_mode() {
    let t = two_pods("et", 1500, json!({"egress": "tc"}));
    // In tc mode the pod keeps tx checksum offload (and so GSO).
    let (_, k) = t.pods[0].sh("ethtool -k eth0");
    assert!(k.contains("tx-checksumming: on"), "{k}");
    run_flows(&t, "tc");
}

#[test]
fn pod_annotation_selects_tc_egress() {
    let node = Node::new("ann");
    let pod = node.pod(0);
    // The annotation is user-facing: spelled out here, not taken from the library.
    let conf = node.conf(
        "1.0.0",
        json!({"runtimeConfig": {"io.kubernetes.cri.pod-annotations": {"veth-xdp/egress": "tc"}}}),
    );
    let res = node.add("c-ann", &pod, &conf);
    let host = host_veth(&res);
    assert!(!must(&format!("ip -n {} -d link show {host}", node.ns)).contains("prog/xdp"));
    assert_eq!(node.stats()["attachments"][0]["egress"], "tc");
    let (_, k) = pod.sh("ethtool -k eth0");
    assert!(
        k.contains("tx-checksumming: on"),
        "annotated pod keeps checksum offload: {k}"
    );
    assert!(ping(&node.wire, &pod_ip(&res)));
    node.cni("DEL", "c-ann", Some(&pod), "eth0", &conf).ok();
    node.assert_clean();
}

#[test]
fn jumbo_uplink_mtu_9000() {
    let t = two_pods("jb", 9000, json!({}));
    let n = &t.node;
    let (ok, out) = n
        .wire
        .sh(&format!("ping -c 2 -W 2 -M do -s 8900 {}", t.ips[0]));
    assert!(ok, "jumbo ping wire -> pod: {out}");
    let (ok, out) = t.pods[0].sh(&format!("ping -c 2 -W 2 -M do -s 8900 {}", t.ips[1]));
    assert!(ok, "jumbo ping pod -> pod: {out}");
    let in0 = n.counter("c1", "redirectedIn");
    assert!(
        iperf(&t.pods[0], &n.wire, &t.ips[0], false, 5211) > 0,
        "TCP wire -> pod at MTU 9000"
    );
    assert!(n.counter("c1", "redirectedIn") > in0 + 100);
    assert!(
        iperf(&n.wire, &t.pods[0], GATEWAY, false, 5212) > 0,
        "TCP pod -> wire at MTU 9000"
    );
}

#[test]
fn pod_own_program_then_gro_keeps_redirects_flowing_and_check_explains_gro_off() {
    let node = Node::new("own");
    let pod = node.pod(0);
    let conf = node.conf("1.0.0", json!({}));
    let res = node.add("c-own", &pod, &conf);
    let ip = pod_ip(&res);
    let obj = xdp_pass_object(&node.dir, "pod_own");
    must(&format!(
        "ip -n {pod} link set dev eth0 xdpdrv obj {} sec xdp",
        obj.display()
    ));
    assert!(
        must(&format!("ip -n {pod} -d link show eth0")).contains("prog/xdp"),
        "pod's own program attached"
    );
    assert!(
        ping(&node.wire, &ip),
        "redirects arrive with the pod's own program"
    );
    must(&format!("ip -n {pod} link set dev eth0 xdpdrv off"));
    assert!(
        ping(&node.wire, &ip),
        "after detaching, GRO keeps redirects arriving"
    );
    let check = with_prev(&conf, &res);
    node.cni("CHECK", "c-own", Some(&pod), "eth0", &check).ok();
    pod.exec(&["ethtool", "-K", "eth0", "gro", "off"]);
    let msg = node
        .cni("CHECK", "c-own", Some(&pod), "eth0", &check)
        .err(108);
    assert!(msg.contains("GRO") || msg.contains("rx-gro"), "{msg}");
    assert!(msg.contains("ndo-xmit") && msg.contains("dropped"), "{msg}");
}

#[test]
fn pod_program_option_attaches_a_replaceable_pass_program() {
    let node = Node::new("pp");
    let pod = node.pod(0);
    let conf = node.conf("1.0.0", json!({"podProgram": true}));
    let res = node.add("c-pp", &pod, &conf);
    let d = must(&format!("ip -n {pod} -d link show eth0"));
    assert!(d.contains("prog/xdp"), "pass program on the pod end: {d}");
    assert!(ping(&node.wire, &pod_ip(&res)));
    // Netlink-attached (not a bpf_link), so the pod can replace it.
    let obj = xdp_pass_object(&node.dir, "pod_own");
    must(&format!(
        "ip -force -n {pod} link set dev eth0 xdpdrv obj {} sec xdp",
        obj.display()
    ));
    assert!(
        must(&format!("ip -n {pod} -d link show eth0")).contains("pod_own"),
        "replaced by the pod's own program"
    );
    assert!(ping(&node.wire, &pod_ip(&res)));
    node.cni("DEL", "c-pp", Some(&pod), "eth0", &conf).ok();
    node.assert_clean();
}

#[test]
fn stats_watch_shows_counters_moving_during_traffic() {
    let node = Node::new("sw");
    let pod = node.pod(0);
    let conf = node.conf("1.0.0", json!({}));
    let res = node.add("c-sw", &pod, &conf);
    let ip = pod_ip(&res);
    let mut ping = node
        .wire
        .spawn(&["ping", "-i", "0.01", "-c", "300", "-q", &ip]);
    let (ok, out) = node.in_node(&format!(
        "{} stats --json --watch 0.5 --count 2 --state-dir {}",
        plugin_bin(),
        node.state_dir().display()
    ));
    let _ = ping.kill();
    let _ = ping.wait();
    assert!(ok, "{out}");
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let att = &last["attachments"][0];
    let pps = att["pps"]["redirectedIn"].as_f64().unwrap();
    assert!(
        pps > 10.0,
        "redirected-in rate while pinging: {pps} ({att})"
    );
    assert!(
        att["hiddenDrops"]["xdpXmitErrors"].is_u64(),
        "hidden drops reported: {att}"
    );
    // The table form names the columns and the attachment.
    let (ok, table) = node.in_node(&format!(
        "{} stats --state-dir {}",
        plugin_bin(),
        node.state_dir().display()
    ));
    assert!(
        ok && table.contains("c-sw") && table.contains("OUT-WIRE") && table.contains("HIDDEN-DROP"),
        "{table}"
    );
}

/// An uplink that cannot take XDP-redirected frames (its peer has neither GRO
/// nor XDP, so no ndo-xmit): pod egress falls back to tc, and still delivers.
#[test]
fn uplink_without_ndo_xmit_falls_back_to_tc_and_delivers() {
    let node = Node::new("fb");
    node.wire.exec(&["ethtool", "-K", WIRE_IF, "gro", "off"]);
    let pod = node.pod(0);
    let conf = node.conf("1.0.0", json!({}));
    let res = node.add("c-fb", &pod, &conf);
    let host = host_veth(&res);
    assert_eq!(
        xdp_mode(&node.ns, &host),
        Some(1),
        "XDP stays on the host veth"
    );
    assert!(
        BpfPaths::new(&node.bpf_root)
            .link(&format!("{host}_tc"))
            .exists(),
        "tc fallback attached"
    );
    let out0 = node.counter("c-fb", "redirectedToUplink");
    assert!(
        ping(&pod, GATEWAY),
        "pod reaches the wire through the tc fallback"
    );
    assert!(ping(&node.wire, &pod_ip(&res)), "the wire reaches the pod");
    assert!(
        iperf(&node.wire, &pod, GATEWAY, false, 5221) > 0,
        "TCP pod -> wire via the fallback"
    );
    assert!(
        node.counter("c-fb", "redirectedToUplink") > out0 + 100,
        "tc counted the redirects"
    );
    let check = with_prev(&conf, &res);
    node.cni("CHECK", "c-fb", Some(&pod), "eth0", &check).ok();
    node.cni("DEL", "c-fb", Some(&pod), "eth0", &conf).ok();
    node.assert_clean();
}

/// Node state must not grow with the pod count beyond the pod maps: 300 pods
/// (more than the node-address map holds) attach, and the last one still
/// answers on the fast path. (Each host veth has an IPv6 link-local address;
/// counting those as node addresses once overflowed that map at 256 pods.)
#[test]
fn three_hundred_pods_attach_and_the_last_one_is_reachable() {
    let node = Node::new("many");
    let mut conf = node.conf("1.0.0", json!({}));
    conf["ipam"]["ranges"] = json!([[{"subnet": "10.77.0.0/16", "rangeStart": "10.77.0.10", "rangeEnd": "10.77.3.250", "gateway": GATEWAY}]]);
    must(&format!(
        "ip -n {} route add 10.77.0.0/16 dev {WIRE_IF}",
        node.wire
    ));
    let mut last = Value::Null;
    let mut pods = Vec::new();
    for i in 0..300 {
        let pod = node.pod(i);
        last = node.add(&format!("c-many{i}"), &pod, &conf);
        pods.push(pod);
    }
    assert!(
        ping(&node.wire, &pod_ip(&last)),
        "the 300th pod is reachable from the wire"
    );
    assert_eq!(node.stats()["attachments"].as_array().unwrap().len(), 300);
    for (i, pod) in pods.iter().enumerate() {
        node.cni("DEL", &format!("c-many{i}"), Some(pod), "eth0", &conf)
            .ok();
    }
    node.assert_clean();
}

/// Dual stack: IPv6 neighbour discovery goes through the uplink program (NS
/// for a pod address redirected into the pod) and the host-veth program, and
/// pod addresses are usable at once (no DAD wait): wire <-> pod, pod <-> pod,
/// pod -> gateway, spoofed IPv6 sources dropped.
#[test]
fn ipv6_wire_pod_and_pod_pod() {
    let node = Node::new("v6");
    must(&format!(
        "ip -n {} addr add fd77::1/64 dev {WIRE_IF} nodad",
        node.wire
    ));
    must(&format!(
        "ip -n {} addr add fd77::2/64 dev {UPLINK} nodad",
        node.ns
    ));
    let mut conf = node.conf("1.0.0", json!({}));
    conf["ipam"]["ranges"] = json!([
        [{"subnet": SUBNET, "rangeStart": "10.77.0.10", "rangeEnd": "10.77.0.250", "gateway": GATEWAY}],
        [{"subnet": "fd77::/64", "rangeStart": "fd77::10", "rangeEnd": "fd77::ff", "gateway": "fd77::1"}]
    ]);
    conf["ipam"]["routes"] = json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]);
    let pods = [node.pod(1), node.pod(2)];
    let v6 = |r: &Value| -> String {
        r["ips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["address"].as_str().unwrap())
            .find(|a| a.contains(':'))
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let r1 = node.add("c1", &pods[0], &conf);
    let r2 = node.add("c2", &pods[1], &conf);
    let (a1, a2) = (v6(&r1), v6(&r2));
    let addr = must(&format!("ip -n {} -6 addr show dev eth0", pods[0]));
    let global = addr
        .lines()
        .find(|l| l.contains(&format!("inet6 {a1}/64")))
        .unwrap_or_else(|| panic!("{addr}"));
    assert!(
        !global.contains("tentative"),
        "pod address usable at once: {addr}"
    );
    let in0 = node.counter("c1", "redirectedIn");
    assert!(
        node.wire.sh(&format!("ping -6 -c 2 -W 2 {a1}")).0,
        "wire pings pod over IPv6"
    );
    assert!(
        node.counter("c1", "redirectedIn") >= in0 + 3,
        "NS and echo requests redirected in"
    );
    assert!(
        pods[0].sh(&format!("ping -6 -c 2 -W 2 {a2}")).0,
        "pod pings pod over IPv6"
    );
    assert!(
        pods[1].sh("ping -6 -c 2 -W 2 fd77::1").0,
        "pod pings the IPv6 gateway"
    );
    // The pod resolves the node's address through the host veth's NDP proxy entry.
    assert!(
        node.ns.sh(&format!("ping -6 -c 2 -W 2 {a1}")).0,
        "node pings pod over IPv6"
    );
    let spoof0 = node.counter("c1", "spoofDrops");
    must(&format!(
        "ip -n {} addr add fd77::bad/64 dev eth0 nodad",
        pods[0]
    ));
    assert!(
        !pods[0].sh("ping -6 -c 1 -W 1 -I fd77::bad fd77::1").0,
        "spoofed IPv6 source reaches nobody"
    );
    assert!(node.counter("c1", "spoofDrops") > spoof0);
    for (i, c) in ["c1", "c2"].iter().enumerate() {
        node.cni("DEL", c, Some(&pods[i]), "eth0", &conf).ok();
    }
    node.assert_clean();
}

/// Sends raw Ethernet frames (hex) from `dev` with an AF_PACKET socket.
const SEND_RAW: &str = r#"
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for h in sys.argv[2:]:
    for _ in range(3):
        s.send(bytes.fromhex(h))
"#;

/// Counts, for `secs` seconds, the frames on `dev` of each ethertype (the
/// outer one: the kernel moves a VLAN tag out of the frame before packet
/// sockets see it, PACKET_AUXDATA gives it back) and the ICMPv6 RAs among
/// them; prints JSON.
const COUNT_RAW: &str = r#"
import json, socket, struct, sys, time
SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 263, 8, 0x10
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
s.bind((sys.argv[1], 0))
s.settimeout(0.2)
end = time.time() + float(sys.argv[2])
seen = {}
print("ready", flush=True)
while time.time() < end:
    try:
        f, anc, _, _ = s.recvmsg(65535, 64)
    except socket.timeout:
        continue
    et = f[12:14].hex()
    for level, kind, data in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA:
            status, _, _, _, _, tci, tpid = struct.unpack("IIIHHHH", data[:20])
            if status & TP_STATUS_VLAN_VALID:
                et = "%04x" % (tpid or 0x8100)
    if et == "86dd" and len(f) > 54 and f[20] == 58 and f[54] == 134:
        et = "ra"
    seen[et] = seen.get(et, 0) + 1
print(json.dumps(seen), flush=True)
"#;

/// A pod on a shared segment is untrusted: by default its RAs, MPLS and
/// VLAN-tagged frames never reach the wire (counted as drops with a
/// reason); with the pod annotations (router, network-function pods) they do.
#[test]
fn pod_egress_guard_keeps_router_frames_and_other_ethertypes_off_the_wire() {
    for mode in ["xdp", "tc"] {
        let node = Node::new(&format!("gd{}", &mode[..1]));
        let conf = node.conf("1.0.0", json!({"egress": mode}));
        let (plain, router) = (node.pod(1), node.pod(2));
        node.add("c-plain", &plain, &conf);
        let mut opted = conf.clone();
        opted["runtimeConfig"] = json!({"io.kubernetes.cri.pod-annotations": {
            "veth-xdp/allow-router-frames": "true",
            "veth-xdp/allow-all-ethertypes": "true",
        }});
        node.add("c-router", &router, &opted);
        // The wire shows VLAN tags in the frame, as a physical capture would.
        node.wire.exec(&["ethtool", "-K", WIRE_IF, "rxvlan", "off"]);
        for (pod, cid, allowed) in [(&plain, "c-plain", false), (&router, "c-router", true)] {
            // (/sys/class/net shows the test's own namespace, not the pod's.)
            let mac_of = |ns: &Netns, dev: &str| {
                ns.link_json(dev)["address"]
                    .as_str()
                    .unwrap()
                    .replace(':', "")
            };
            let src = mac_of(pod, "eth0");
            let gw = mac_of(&node.wire, WIRE_IF);
            // RA from the pod's link-local address to all nodes.
            let ll = pod.must("ip -6 -o addr show dev eth0 scope link");
            assert!(ll.contains("fe80"), "{ll}");
            let ra = format!(
                "333300000001{src}86dd6000000000103aff{}ff020000000000000000000000000001{}",
                "fe800000000000000000000000000001", "8600000040000708000000000000000000"
            );
            let mpls = format!("{gw}{src}8847000141400000000000000000000000000000");
            let vlan = format!("{gw}{src}81000007080045000014000000004001000a4d000a4d0001");
            let wire = &node.wire;
            let mut counter = std::process::Command::new("nsenter")
                .arg(format!("--net={}", wire.path().display()))
                .args(["python3", "-c", COUNT_RAW, WIRE_IF, "2"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = std::io::BufReader::new(counter.stdout.take().unwrap());
            let mut line = String::new();
            std::io::BufRead::read_line(&mut out, &mut line).unwrap();
            assert_eq!(line.trim(), "ready");
            pod.exec(&["python3", "-c", SEND_RAW, "eth0", &ra, &mpls, &vlan]);
            line.clear();
            std::io::BufRead::read_line(&mut out, &mut line).unwrap();
            counter.wait().unwrap();
            let seen: Value = serde_json::from_str(line.trim()).unwrap();
            for kind in ["ra", "8847", "8100"] {
                let n = seen[kind].as_u64().unwrap_or(0);
                if allowed {
                    assert!(
                        n >= 3,
                        "{mode}: {cid}: opted-in {kind} frames reach the wire: {seen}"
                    );
                } else {
                    assert_eq!(
                        n, 0,
                        "{mode}: {cid}: {kind} frames reached the wire: {seen}"
                    );
                }
            }
            if !allowed {
                assert!(
                    node.counter(cid, "routerFrameDrops") >= 3,
                    "{mode}: RAs counted"
                );
                assert!(
                    node.counter(cid, "ethertypeDrops") >= 6,
                    "{mode}: MPLS + VLAN counted"
                );
            }
        }
        for (pod, cid) in [(&plain, "c-plain"), (&router, "c-router")] {
            node.cni("DEL", cid, Some(pod), "eth0", &conf).ok();
        }
        node.assert_clean();
    }
}

/// kube-proxy's IPVS mode puts every ClusterIP on the node (kube-ipvs0): ADD
/// must work on a node with thousands of local addresses, and its map work
/// must not grow with them (only the uplink's addresses are the node's for
/// the pods). The ADD times are printed next to each other, not asserted.
#[test]
fn adds_on_a_node_with_thousands_of_local_addresses() {
    let node = Node::new("ipvs");
    let conf = node.conf("1.0.0", json!({}));
    let mut pods = Vec::new();
    let mut add = |i: usize| {
        let pod = node.pod(i);
        let t = std::time::Instant::now();
        let res = node.add(&format!("c-ipvs{i}"), &pod, &conf);
        let took = t.elapsed();
        assert!(ping(&node.wire, &pod_ip(&res)), "pod {i} reachable");
        pods.push(pod);
        took
    };
    add(0); // the first ADD loads the datapath
    let base = add(1);
    node.ns
        .ip("link add kube-ipvs0 type veth peer name kube-ipvs1");
    let mut have = 0;
    for (i, count) in [(2, 300), (3, 5000)] {
        let batch: String = (have..count)
            .map(|n| {
                format!(
                    "addr add 10.{}.{}.{}/32 dev kube-ipvs0\n",
                    96 + n / 65536,
                    (n / 256) % 256,
                    n % 256
                )
            })
            .collect();
        have = count;
        let file = node.dir.join("addrs.batch");
        std::fs::write(&file, batch).unwrap();
        node.ns.exec(&["ip", "-batch", file.to_str().unwrap()]);
        eprintln!(
            "ADD with {count} addresses on kube-ipvs0: {:?} (with none: {base:?})",
            add(i)
        );
    }
    // The node-address map holds the uplink's address, not the 5000.
    let v4 = traces::dump_map(&BpfPaths::new(&node.bpf_root).map("vx_node_v4"));
    assert_eq!(v4.len(), 1, "node addresses in the map: {}", v4.len());
    for (i, pod) in pods.iter().enumerate() {
        node.cni("DEL", &format!("c-ipvs{i}"), Some(pod), "eth0", &conf)
            .ok();
    }
    node.assert_clean();
}
