//! The built-in IPAM (`"ipam": {"type": "veth-xdp"}`) on a throwaway node:
//! addresses from the range in order, static requests (CNI_ARGS `IP=`,
//! runtimeConfig `ips`) round-trip, exhaustion is a CNI error that leaves
//! nothing behind (STATUS says 50), DEL and GC free leases, and a SIGKILL at
//! every step of ADD loses no lease and leaks none. Run as root:
//! `cargo test --features veth-xdp/fault-injection --test ipam_builtin`.

mod support;

use serde_json::{json, Value};
use support::cni::{pod_ip, Node, NETWORK};

/// Three addresses: .200, .201, .202 of the node's /24.
fn conf(node: &Node, version: &str) -> Value {
    node.conf(
        version,
        json!({"ipam": {
            "type": "veth-xdp",
            "ranges": [[{"subnet": "10.77.0.0/24", "rangeStart": "10.77.0.200",
                         "rangeEnd": "10.77.0.202", "gateway": "10.77.0.1"}]],
            "routes": [{"dst": "0.0.0.0/0"}]
        }}),
    )
}

/// The addresses the network's records hold (the leases).
fn leased(node: &Node) -> Vec<String> {
    let store = veth_xdp::record::Store::new(&node.state_dir(), NETWORK);
    let mut ips: Vec<String> = store
        .list()
        .unwrap()
        .iter()
        .flat_map(|r| r.ips.iter().map(|n| n.ip().to_string()))
        .collect();
    ips.sort();
    ips
}

#[test]
fn allocates_in_order_round_trips_static_requests_and_frees_on_del() {
    let node = Node::new("ib");
    let conf = conf(&node, "1.1.0");
    let (p0, p1, p2) = (node.pod(0), node.pod(1), node.pod(2));
    let r0 = node.add("c-ib0", &p0, &conf);
    assert_eq!(pod_ip(&r0), "10.77.0.200", "{r0}");
    assert_eq!(r0["ips"][0]["gateway"], "10.77.0.1", "{r0}");
    assert_eq!(r0["routes"], json!([{"dst": "0.0.0.0/0"}]), "{r0}");
    // A static request through CNI_ARGS, as `IP=` (host-local's key).
    let out = node.cni_env(
        "ADD",
        "c-ib1",
        Some(&p1),
        "eth0",
        &conf,
        &[("CNI_ARGS", "IgnoreUnknown=1;IP=10.77.0.202")],
    );
    assert_eq!(pod_ip(out.ok()), "10.77.0.202", "{}", out.stdout);
    let (ok, text) = p1.sh("ip -4 -o addr show dev eth0");
    assert!(ok && text.contains("10.77.0.202/24"), "{text}");
    // The same address again, through runtimeConfig: refused, nothing left.
    let mut again = conf.clone();
    again["runtimeConfig"] = json!({"ips": ["10.77.0.202/24"]});
    let out = node.cni("ADD", "c-ib2", Some(&p2), "eth0", &again);
    let msg = out.err(102);
    assert!(
        msg.contains("10.77.0.202") && msg.contains("in use"),
        "{msg}"
    );
    assert_eq!(leased(&node), ["10.77.0.200", "10.77.0.202"]);
    // DEL frees the lease: the next ADD goes on after the last one handed
    // out (host-local's order), wraps, and finds the freed address.
    assert_eq!(node.cni("DEL", "c-ib0", Some(&p0), "eth0", &conf).exit, 0);
    assert_eq!(leased(&node), ["10.77.0.202"]);
    let r2 = node.add("c-ib2", &p2, &conf);
    assert_eq!(pod_ip(&r2), "10.77.0.200", "{r2}");
    // CHECK passes without delegating; no lease file anywhere but the records.
    let prev = support::cni::with_prev(&conf, &r2);
    assert_eq!(node.cni("CHECK", "c-ib2", Some(&p2), "eth0", &prev).exit, 0);
    for (cid, pod) in [("c-ib1", &p1), ("c-ib2", &p2)] {
        assert_eq!(node.cni("DEL", cid, Some(pod), "eth0", &conf).exit, 0);
    }
    assert!(leased(&node).is_empty());
    node.assert_clean();
}

#[test]
fn exhaustion_is_a_cni_error_that_leaves_nothing_and_status_says_so() {
    let node = Node::new("ix");
    let conf = conf(&node, "1.1.0");
    let pods: Vec<_> = (0..4).map(|i| node.pod(i)).collect();
    for (i, pod) in pods.iter().take(3).enumerate() {
        node.add(&format!("c-ix{i}"), pod, &conf);
    }
    let status = node.cni("STATUS", "", None, "", &conf);
    let msg = status.err(50);
    assert!(msg.contains("no free address"), "{msg}");
    let out = node.cni("ADD", "c-ix3", Some(&pods[3]), "eth0", &conf);
    let msg = out.err(102);
    assert!(
        msg.contains("no free address in 10.77.0.200-10.77.0.202 (3 in use)"),
        "{msg}"
    );
    let (present, _) = pods[3].sh("ip -o link show eth0");
    assert!(!present, "the failed ADD left the pod end");
    assert_eq!(leased(&node).len(), 3, "the failed ADD leased nothing");
    // GC keeping one: the other two leases go with their records.
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "c-ix1", "ifname": "eth0"}]);
    assert_eq!(node.cni("GC", "", None, "", &gc).exit, 0);
    assert_eq!(leased(&node), ["10.77.0.201"]);
    assert_eq!(node.cni("STATUS", "", None, "", &conf).exit, 0);
    assert_eq!(
        node.cni("DEL", "c-ix1", Some(&pods[1]), "eth0", &conf).exit,
        0
    );
    node.assert_clean();
}

/// Every step of ADD after which the process is SIGKILLed (cmd::fault_point).
#[cfg(feature = "fault-injection")]
const STEPS: &[&str] = support::cni::ADD_STEPS;

/// A kill at each step: the process dies with no undo. Afterwards the lease
/// is held by a record (never an empty or half-written file; another ADD
/// gets another address), and the runtime's DEL removes the attachment and
/// its lease. After all of them, every address of the range can be handed
/// out again: none was leaked.
#[cfg(feature = "fault-injection")]
#[test]
fn a_kill_at_every_step_of_add_loses_no_lease_and_leaks_none() {
    let node = Node::new("ik");
    let conf = conf(&node, "1.0.0");
    let other = node.pod(90);
    for (i, step) in STEPS.iter().enumerate() {
        let pod = node.pod(i);
        let cid = format!("c-ik{i}");
        let out = node.cni_env(
            "ADD",
            &cid,
            Some(&pod),
            "eth0",
            &conf,
            &[
                ("VETH_XDP_FAIL_AFTER", step),
                ("VETH_XDP_FAIL_MODE", "kill"),
            ],
        );
        assert_eq!(out.exit, -1, "{step}: not killed (stdout {})", out.stdout);
        let store = veth_xdp::record::Store::new(&node.state_dir(), NETWORK);
        let rec = store
            .load(&cid, "eth0")
            .unwrap_or_else(|e| panic!("{step}: the record holding the lease is unreadable: {e}"))
            .unwrap_or_else(|| panic!("{step}: killed after the lease, but no record holds it"));
        assert_eq!(rec.ips.len(), 1, "{step}: {rec:?}");
        assert_eq!(rec.pending, *step != "record", "{step}: pending");
        let held = rec.ips[0].ip().to_string();
        // The lease holds: another pod gets another address.
        let r = node.add("c-ik-other", &other, &conf);
        assert_ne!(pod_ip(&r), held.clone(), "{step}: lease lost");
        assert_eq!(
            node.cni("DEL", "c-ik-other", Some(&other), "eth0", &conf)
                .exit,
            0
        );
        // CHECK of the killed one fails (with a reason), DEL cleans it all.
        if *step != "record" {
            let prev = support::cni::with_prev(&conf, &json!({"cniVersion": "1.0.0", "ips": []}));
            let msg = node.cni("CHECK", &cid, Some(&pod), "eth0", &prev).err(108);
            assert!(msg.contains("did not finish"), "{step}: {msg}");
        }
        assert_eq!(
            node.cni("DEL", &cid, Some(&pod), "eth0", &conf).exit,
            0,
            "{step}: DEL after the kill"
        );
        assert!(
            leased(&node).is_empty(),
            "{step}: lease leaked: {:?}",
            leased(&node)
        );
        node.assert_clean();
    }
    // Nothing leaked: the whole range is there to take.
    let pods: Vec<_> = (0..3).map(|i| node.pod(50 + i)).collect();
    let mut got: Vec<String> = pods
        .iter()
        .enumerate()
        .map(|(i, p)| pod_ip(&node.add(&format!("c-ikf{i}"), p, &conf)))
        .collect();
    got.sort();
    assert_eq!(got, ["10.77.0.200", "10.77.0.201", "10.77.0.202"]);
    for (i, p) in pods.iter().enumerate() {
        assert_eq!(
            node.cni("DEL", &format!("c-ikf{i}"), Some(p), "eth0", &conf)
                .exit,
            0
        );
    }
    node.assert_clean();
}

#[test]
fn a_bad_range_is_an_invalid_config_error_naming_the_key() {
    let node = Node::new("ic");
    let mut conf = conf(&node, "1.0.0");
    conf["ipam"]["ranges"][0][0]["rangeEnd"] = json!("10.77.1.5");
    let pod = node.pod(0);
    let msg = node.cni("ADD", "c-ic", Some(&pod), "eth0", &conf).err(7);
    assert!(msg.contains("ipam.ranges"), "{msg}");
    node.assert_clean();
}

/// ADDs running at once each get an address of their own (the IPAM lock
/// serialises the choice and the record write), and DELs at once free them all.
#[test]
fn parallel_adds_get_distinct_addresses() {
    let node = Node::new("ip");
    let mut conf = conf(&node, "1.1.0");
    conf["ipam"]["ranges"][0][0]["rangeEnd"] = json!("10.77.0.219");
    let pods: Vec<_> = (0..12).map(|i| node.pod(i)).collect();
    let ips: Vec<String> = std::thread::scope(|s| {
        let adds: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (node, conf) = (&node, &conf);
                s.spawn(move || pod_ip(&node.add(&format!("c-ip{i}"), p, conf)))
            })
            .collect();
        adds.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct: std::collections::BTreeSet<_> = ips.iter().collect();
    assert_eq!(
        distinct.len(),
        ips.len(),
        "an address handed out twice: {ips:?}"
    );
    assert_eq!(leased(&node).len(), 12);
    std::thread::scope(|s| {
        for (i, p) in pods.iter().enumerate() {
            let (node, conf) = (&node, &conf);
            s.spawn(move || {
                assert_eq!(
                    node.cni("DEL", &format!("c-ip{i}"), Some(p), "eth0", conf)
                        .exit,
                    0
                );
            });
        }
    });
    assert!(leased(&node).is_empty());
    node.assert_clean();
}
