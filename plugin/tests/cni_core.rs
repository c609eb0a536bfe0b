//! Namespace-level tests of the CNI core (issue: ADD/DEL/CHECK/VERSION/GC/STATUS).
//! Run as root: `cargo test --test cni_core`.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::cmd::{must, sh};
use support::cni::*;
use support::ns::Netns;
use veth_xdp::bpf::{self, BpfPaths};
use veth_xdp::cni::config::{MAX_QUEUES, MIN_MTU};

/// The attachment is what the talk's "Usage" slide prescribes.
fn assert_attachment(node: &Node, pod: &Netns, res: &Value, queues: u32) {
    let host = host_veth(res);
    let ip = pod_ip(res);
    let mac = res["interfaces"][1]["mac"].as_str().unwrap();
    for (ns, dev) in [(&node.ns, host.as_str()), (pod, "eth0")] {
        let d = must(&format!("ip -n {ns} -d link show {dev}"));
        assert!(
            d.contains(&format!("numtxqueues {queues} numrxqueues {queues}")),
            "{dev} queues: {d}"
        );
        let (_, l) = ns.sh(&format!("ethtool -l {dev}"));
        let current = l.split("Current hardware settings:").nth(1).unwrap();
        assert!(
            current.contains(&format!("RX:\t\t{queues}"))
                && current.contains(&format!("TX:\t\t{queues}")),
            "{dev} channels: {l}"
        );
        let (_, k) = ns.sh(&format!("ethtool -k {dev}"));
        assert!(
            k.contains("tx-checksumming: off"),
            "{dev} tx-checksumming: {k}"
        );
        assert!(
            k.contains("tx-vlan-offload: off"),
            "{dev} tx-vlan-offload: {k}"
        );
    }
    let (_, k) = pod.sh("ethtool -k eth0");
    assert!(
        k.contains("generic-receive-offload: on"),
        "GRO on the pod end"
    );
    let (_, k) = node.in_node(&format!("ethtool -k {UPLINK}"));
    assert!(
        k.contains("rx-vlan-offload: off"),
        "rx-vlan off on the uplink: {k}"
    );
    let fdb = must(&format!("bridge -n {} fdb show dev {UPLINK}", node.ns));
    assert!(
        fdb.contains(&format!("{mac} self permanent")),
        "pod MAC in the unicast filter: {fdb}"
    );
    let addr = must(&format!("ip -n {pod} addr show eth0"));
    assert!(
        addr.contains(&format!("inet {ip}/24")),
        "pod address: {addr}"
    );
    assert!(addr.contains(mac), "pod MAC: {addr}");
    let routes = must(&format!("ip -n {pod} route"));
    assert!(
        routes.contains(&format!("default via {GATEWAY} dev eth0")),
        "pod default route: {routes}"
    );
    let host_routes = must(&format!("ip -n {} route", node.ns));
    assert!(
        host_routes.contains(&format!("{ip} dev {host} scope link")),
        "host route: {host_routes}"
    );
    let (ok, out) = node.in_node(&format!("ping -c 1 -W 2 {ip}"));
    assert!(ok, "node pings its pod: {out}");
}

#[test]
fn add_check_del_in_every_version() {
    let node = Node::new("ver");
    for (i, v) in VERSIONS.iter().enumerate() {
        let pod = node.pod(i);
        let cid = format!("ctr-{i}");
        let conf = node.conf(v, json!({}));
        let res = node.add(&cid, &pod, &conf);
        validate_result(v, &res);
        assert_eq!(
            res["interfaces"][1]["sandbox"],
            format!("/var/run/netns/{pod}")
        );
        assert_attachment(&node, &pod, &res, 2.max(nproc()));
        if has_check(v) {
            node.cni("CHECK", &cid, Some(&pod), "eth0", &with_prev(&conf, &res))
                .ok();
        } else {
            let msg = node
                .cni("CHECK", &cid, Some(&pod), "eth0", &with_prev(&conf, &res))
                .err(1);
            assert!(msg.contains("CHECK"), "{msg}");
        }
        node.cni("DEL", &cid, Some(&pod), "eth0", &with_prev(&conf, &res))
            .ok();
        node.assert_clean();
        assert!(
            must(&format!("ip -n {pod} -o link"))
                .lines()
                .all(|l| !l.contains("eth0")),
            "pod end gone"
        );
        // A second DEL, and containerd's RemovePodSandbox DEL (empty netns, no prevResult).
        node.cni("DEL", &cid, Some(&pod), "eth0", &conf).ok();
        node.cni("DEL", &cid, None, "eth0", &conf).ok();
        node.assert_clean();
    }
}

fn nproc() -> u32 {
    must("nproc").trim().parse().unwrap()
}

#[test]
fn default_queues_follow_online_cpus_and_config_overrides() {
    let node = Node::new("q");
    let pod = node.pod(0);
    let res = node.add("c-default", &pod, &node.conf("1.0.0", json!({})));
    assert_attachment(&node, &pod, &res, nproc());
    let pod2 = node.pod(1);
    let res2 = node.add("c-three", &pod2, &node.conf("1.0.0", json!({"queues": 3})));
    assert_attachment(&node, &pod2, &res2, 3);
}

#[test]
fn mac_from_runtime_config_and_cni_args() {
    let node = Node::new("mac");
    let p0 = node.pod(0);
    let conf = node.conf(
        "1.0.0",
        json!({"runtimeConfig": {"mac": "02:aa:bb:cc:dd:01"}}),
    );
    let res = node.add("c-rc", &p0, &conf);
    assert_eq!(res["interfaces"][1]["mac"], "02:aa:bb:cc:dd:01");
    assert_attachment(&node, &p0, &res, nproc());
    let p1 = node.pod(1);
    let conf1 = node.conf("1.0.0", json!({}));
    let out = node.cni_env(
        "ADD",
        "c-args",
        Some(&p1),
        "eth0",
        &conf1,
        &[(
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAME=x;MAC=02:aa:bb:cc:dd:02",
        )],
    );
    assert_eq!(out.ok()["interfaces"][1]["mac"], "02:aa:bb:cc:dd:02");
    // Generated MACs are stable and locally administered unicast.
    let p2 = node.pod(2);
    let res2 = node.add("c-gen", &p2, &conf1);
    let mac = res2["interfaces"][1]["mac"].as_str().unwrap();
    let first = u8::from_str_radix(&mac[..2], 16).unwrap();
    assert_eq!(first & 0x03, 0x02, "locally administered unicast: {mac}");
    for (cid, pod) in [("c-rc", &p0), ("c-args", &p1), ("c-gen", &p2)] {
        node.cni("DEL", cid, Some(pod), "eth0", &conf1).ok();
    }
    node.assert_clean();
}

#[test]
fn mtu_defaults_to_uplink_and_is_bounded_by_it() {
    let node = Node::with_mtu("mtu", 9000);
    let p0 = node.pod(0);
    let res = node.add("c-jumbo", &p0, &node.conf("1.0.0", json!({})));
    assert!(must(&format!("ip -n {p0} link show eth0")).contains("mtu 9000"));
    assert!(must(&format!("ip -n {} link show {}", node.ns, host_veth(&res))).contains("mtu 9000"));
    let p1 = node.pod(1);
    node.add("c-small", &p1, &node.conf("1.0.0", json!({"mtu": 1400})));
    assert!(must(&format!("ip -n {p1} link show eth0")).contains("mtu 1400"));
    let p2 = node.pod(2);
    let msg = node
        .cni(
            "ADD",
            "c-big",
            Some(&p2),
            "eth0",
            &node.conf("1.0.0", json!({"mtu": 9001})),
        )
        .err(7);
    assert!(msg.contains("\"mtu\""), "{msg}");
}

#[test]
fn version_is_answered_without_the_environment() {
    let node = Node::new("vv");
    let out = node.invoke_raw(
        &[
            ("CNI_COMMAND", "VERSION"),
            ("CNI_NETNS", "dummy"),
            ("CNI_IFNAME", "dummy"),
            ("CNI_PATH", "dummy"),
        ],
        br#"{"cniVersion":"1.0.0"}"#,
    );
    let v = out.ok();
    assert_eq!(v["cniVersion"], "1.0.0");
    // Spelled out, not veth_xdp::cni::version::SUPPORTED: what we promise runtimes.
    assert_eq!(
        v["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
}

/// Every bad input gets its code and creates nothing.
#[test]
fn bad_input_creates_nothing() {
    let node = Node::new("bad");
    let pod = node.pod(0);
    let ns = pod.path().display().to_string();
    let good = node.conf("1.0.0", json!({}));
    let good_s = good.to_string();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let env_ok = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, String)> {
        let mut e: Vec<(&'static str, String)> = vec![
            ("CNI_COMMAND", "ADD".into()),
            ("CNI_CONTAINERID", "c-bad".into()),
            ("CNI_NETNS", ns.clone()),
            ("CNI_IFNAME", "eth0".into()),
            ("CNI_PATH", CNI_PATH.into()),
        ];
        for (k, v) in extra {
            e.retain(|(ek, _)| ek != k);
            e.push((k, v.to_string()));
        }
        e
    };
    let conf_with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c.to_string()
    };
    // A wrapper IPAM plugin that runs veth-xdp again: a delegation loop
    // through another name (without the guard: a fork bomb, 438 processes
    // within 1.5 s from one ADD, measured here before the guard existed).
    let loop_dir = node.dir.join("loop-ipam");
    std::fs::create_dir_all(&loop_dir).unwrap();
    let wrapper = loop_dir.join("loop-ipam");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {} \"$@\"\n", plugin_bin()),
    )
    .unwrap();
    must(&format!("chmod +x {}", wrapper.display()));
    let loop_path: &'static str =
        Box::leak(format!("{}:{CNI_PATH}", loop_dir.display()).into_boxed_str());
    // (what, env, stdin, expected code; 0 = any CNI error code)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, String, u64);
    let cases: Vec<Case> = vec![
        (
            "ipam.type is the plugin itself",
            env_ok(&[]),
            conf_with(json!({"ipam": {"type": "veth-xdp"}})),
            7,
        ),
        (
            "ipam.type runs the plugin again under another name",
            env_ok(&[("CNI_PATH", loop_path)]),
            conf_with(json!({"ipam": {"type": "loop-ipam"}})),
            7,
        ),
        (
            "uplink is the loopback device",
            env_ok(&[]),
            conf_with(json!({"uplink": "lo"})),
            7,
        ),
        (
            "serviceCIDRs with host bits",
            env_ok(&[]),
            conf_with(json!({"serviceCIDRs": ["10.96.0.1/16"]})),
            7,
        ),
        (
            "serviceCIDRs not a CIDR",
            env_ok(&[]),
            conf_with(json!({"serviceCIDRs": ["ten.96/16"]})),
            7,
        ),
        (
            "allowRouterFrames wrong type",
            env_ok(&[]),
            conf_with(json!({"allowRouterFrames": "yes"})),
            7,
        ),
        ("malformed JSON", env_ok(&[]), "{\"cniVersion\":".into(), 6),
        ("deeply nested JSON", env_ok(&[]), deep, 6),
        (
            "unknown cniVersion",
            env_ok(&[]),
            conf_with(json!({"cniVersion": "2.0.0"})),
            1,
        ),
        (
            "missing CNI_CONTAINERID",
            env_ok(&[("CNI_CONTAINERID", "")]),
            good_s.clone(),
            4,
        ),
        (
            "missing CNI_NETNS",
            env_ok(&[("CNI_NETNS", "")]),
            good_s.clone(),
            4,
        ),
        (
            "missing CNI_IFNAME",
            env_ok(&[("CNI_IFNAME", "")]),
            good_s.clone(),
            4,
        ),
        (
            "missing CNI_PATH",
            env_ok(&[("CNI_PATH", "")]),
            good_s.clone(),
            4,
        ),
        (
            "netns does not exist",
            env_ok(&[("CNI_NETNS", "/var/run/netns/vc-no-such-ns")]),
            good_s.clone(),
            3,
        ),
        (
            "netns is not a netns",
            env_ok(&[("CNI_NETNS", "/etc/hostname")]),
            good_s.clone(),
            4,
        ),
        (
            "ifname too long",
            env_ok(&[("CNI_IFNAME", "eth0123456789012")]),
            good_s.clone(),
            4,
        ),
        (
            "ifname with slash",
            env_ok(&[("CNI_IFNAME", "eth/0")]),
            good_s.clone(),
            4,
        ),
        (
            "ifname with space",
            env_ok(&[("CNI_IFNAME", "eth 0")]),
            good_s.clone(),
            4,
        ),
        (
            "ifname names an existing device",
            env_ok(&[("CNI_IFNAME", "lo")]),
            good_s.clone(),
            4,
        ),
        (
            "container id with slash",
            env_ok(&[("CNI_CONTAINERID", "../../etc/x")]),
            good_s.clone(),
            4,
        ),
        (
            "container id with control char",
            env_ok(&[("CNI_CONTAINERID", "ab\u{7}c")]),
            good_s.clone(),
            4,
        ),
        (
            "uplink does not exist",
            env_ok(&[]),
            conf_with(json!({"uplink": "nosuchdev"})),
            7,
        ),
        ("queues 0", env_ok(&[]), conf_with(json!({"queues": 0})), 7),
        (
            "queues above kernel limit",
            env_ok(&[]),
            conf_with(json!({"queues": MAX_QUEUES + 1})),
            7,
        ),
        (
            "queues wrong type",
            env_ok(&[]),
            conf_with(json!({"queues": "two"})),
            7,
        ),
        (
            "mtu below 68",
            env_ok(&[]),
            conf_with(json!({"mtu": MIN_MTU - 1})),
            7,
        ),
        (
            "mtu above uplink",
            env_ok(&[]),
            conf_with(json!({"mtu": 1501})),
            7,
        ),
        (
            "missing IPAM plugin",
            env_ok(&[]),
            conf_with(json!({"ipam": {"type": "no-such-ipam"}})),
            102,
        ),
        (
            "failing IPAM plugin",
            env_ok(&[]),
            conf_with(json!({"ipam": {"type": "host-local"}})),
            0,
        ),
    ];
    for (what, env, stdin, code) in cases {
        let t0 = std::time::Instant::now();
        let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = node.invoke_raw(&env_ref, stdin.as_bytes());
        assert_ne!(out.exit, 0, "{what}: unexpectedly succeeded");
        if code != 0 {
            let msg = out.err(code);
            assert!(!msg.is_empty(), "{what}");
        } else {
            assert!(
                out.json["code"].as_u64().is_some(),
                "{what}: {}",
                out.stdout
            );
        }
        node.assert_clean();
        assert!(
            must(&format!("ip -n {pod} -o link")).lines().count() == 1,
            "{what}: pod namespace untouched"
        );
        assert!(
            !sh("pgrep -f loop-ipam").0,
            "{what}: a delegated plugin is still running"
        );
        assert!(!std::path::Path::new("/etc/x").exists());
        eprintln!("{what}: {:?}", t0.elapsed());
    }
    // Invalid UTF-8.
    let env = env_ok(&[]);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    node.invoke_raw(&env_ref, b"{\"cniVersion\":\"1.0.0\",\"name\":\"\xff\"}")
        .err(6);
    node.assert_clean();
}

#[test]
fn second_add_for_same_container_and_ifname_is_refused_and_keeps_the_first() {
    let node = Node::new("dup");
    let pod = node.pod(0);
    let conf = node.conf("1.0.0", json!({}));
    let res = node.add("c-dup", &pod, &conf);
    let msg = node.cni("ADD", "c-dup", Some(&pod), "eth0", &conf).err(103);
    assert!(msg.contains("already"), "{msg}");
    assert_attachment(&node, &pod, &res, nproc());
    node.cni(
        "CHECK",
        "c-dup",
        Some(&pod),
        "eth0",
        &with_prev(&conf, &res),
    )
    .ok();
    let leases = std::fs::read_dir(node.ipam_dir().join("testnet"))
        .unwrap()
        .count();
    assert_eq!(leases, 3, "one lease + last_reserved_ip + lock");
    node.cni("DEL", "c-dup", Some(&pod), "eth0", &conf).ok();
    node.assert_clean();
}

#[test]
fn del_survives_a_deleted_netns_and_a_missing_record() {
    let node = Node::new("gone");
    let pod = node.pod(0);
    let conf = node.conf("1.0.0", json!({}));
    let res = node.add("c-gone", &pod, &conf);
    must(&format!("ip netns del {pod}"));
    node.cni("DEL", "c-gone", Some(&pod), "eth0", &with_prev(&conf, &res))
        .ok();
    node.assert_clean();
    // Record lost (e.g. state dir wiped): DEL still removes the veth, fdb entry, routes and lease.
    let pod1 = node.pod(1);
    node.add("c-norec", &pod1, &conf);
    std::fs::remove_dir_all(node.state_dir().join("networks")).unwrap();
    node.cni("DEL", "c-norec", None, "eth0", &conf).ok();
    node.assert_clean();
}

/// DEL with neither record nor veth (the netns went first, the state dir was
/// wiped): the pod's map entries and slot are found by its MAC (derived from
/// container ID + ifname), so the next pod can take the released address.
#[test]
fn del_without_record_and_netns_frees_the_address_for_the_next_pod() {
    let node = Node::new("nrn");
    let pod = node.pod(0);
    let ip = "10.77.0.42/24";
    let conf = node.conf(
        "1.0.0",
        json!({"runtimeConfig": {"ips": [ip]}, "capabilities": {"ips": true}}),
    );
    node.add("c-nrn-1", &pod, &conf);
    must(&format!("ip netns del {pod}"));
    std::fs::remove_dir_all(node.state_dir().join("networks")).unwrap();
    node.cni("DEL", "c-nrn-1", None, "eth0", &conf).ok();
    node.assert_clean();
    let pod1 = node.pod(1);
    let res = node.add("c-nrn-2", &pod1, &conf);
    assert_eq!(pod_ip(&res), "10.77.0.42", "{res}");
    node.cni("DEL", "c-nrn-2", Some(&pod1), "eth0", &conf).ok();
    node.assert_clean();
}

#[test]
fn check_names_each_mismatch() {
    let node = Node::new("chk");
    let pod = node.pod(0);
    let conf = node.conf("1.0.0", json!({}));
    let res = node.add("c-chk", &pod, &conf);
    let prev = with_prev(&conf, &res);
    node.cni("CHECK", "c-chk", Some(&pod), "eth0", &prev).ok();
    let (ok, _) = pod.sh("ethtool -K eth0 gro off");
    assert!(ok);
    let msg = node
        .cni("CHECK", "c-chk", Some(&pod), "eth0", &prev)
        .err(108);
    assert!(
        msg.contains("rx-gro") && msg.contains("dropped"),
        "GRO off is named with why: {msg}"
    );
    must(&format!("ip -n {pod} addr flush dev eth0"));
    must(&format!(
        "bridge -n {} fdb del {} dev {UPLINK} self",
        node.ns,
        res["interfaces"][1]["mac"].as_str().unwrap()
    ));
    let msg = node
        .cni("CHECK", "c-chk", Some(&pod), "eth0", &prev)
        .err(108);
    assert!(msg.contains("pod address"), "{msg}");
    assert!(msg.contains("unicast filter"), "{msg}");
    assert!(msg.contains("pod route"), "{msg}");
    // CHECK without prevResult is refused.
    node.cni("CHECK", "c-chk", Some(&pod), "eth0", &conf).err(7);
    node.cni("DEL", "c-chk", Some(&pod), "eth0", &conf).ok();
    node.assert_clean();
}

#[test]
fn gc_removes_attachments_not_listed_and_nothing_without_a_list() {
    let node = Node::new("gc");
    let conf = node.conf("1.1.0", json!({}));
    let pods: Vec<Netns> = (0..3).map(|i| node.pod(i)).collect();
    for (i, p) in pods.iter().enumerate() {
        node.add(&format!("c-gc{i}"), p, &conf);
    }
    let gc = |c: &Value| {
        node.invoke_raw(
            &[("CNI_COMMAND", "GC"), ("CNI_PATH", CNI_PATH)],
            c.to_string().as_bytes(),
        )
    };
    gc(&conf).ok();
    assert_eq!(
        node.traces()
            .iter()
            .filter(|t| t.starts_with("link"))
            .count(),
        3,
        "no list: nothing removed"
    );
    let mut keep = conf.clone();
    keep["cni.dev/valid-attachments"] = json!([{"containerID": "c-gc1", "ifname": "eth0"}]);
    gc(&keep).ok();
    let t = node.traces();
    assert_eq!(
        t.iter().filter(|t| t.starts_with("link")).count(),
        1,
        "{t:?}"
    );
    assert_eq!(
        t.iter().filter(|t| t.starts_with("lease")).count(),
        1,
        "{t:?}"
    );
    assert_eq!(
        t.iter().filter(|t| t.starts_with("record")).count(),
        1,
        "{t:?}"
    );
    assert!(must(&format!("ip -n {} -o link", pods[0])).lines().count() == 1);
    // GC is a 1.1 verb.
    let old = node.conf("1.0.0", json!({}));
    gc(&old).err(1);
    keep["cni.dev/valid-attachments"] = json!([]);
    gc(&keep).ok();
    node.assert_clean();
}

#[test]
fn status_reports_what_stops_the_node_taking_pods() {
    let node = Node::new("st");
    let conf = node.conf("1.1.0", json!({}));
    let status = |c: &Value| {
        node.invoke_raw(
            &[("CNI_COMMAND", "STATUS"), ("CNI_PATH", CNI_PATH)],
            c.to_string().as_bytes(),
        )
    };
    status(&conf).ok();
    let mut no_ipam = conf.clone();
    no_ipam["ipam"]["type"] = json!("no-such-ipam");
    assert!(status(&no_ipam).err(50).contains("no-such-ipam"));
    let mut no_uplink = conf.clone();
    no_uplink["uplink"] = json!("nosuch0");
    assert!(status(&no_uplink).err(50).contains("nosuch0"));
    must(&format!("ip -n {} link set {UPLINK} down", node.ns));
    assert!(status(&conf).err(50).contains("down"));
    status(&node.conf("1.0.0", json!({}))).err(1);
}

#[test]
fn ipam_failure_leaves_nothing() {
    let node = Node::new("ipf");
    let mut conf = node.conf("1.0.0", json!({}));
    conf["ipam"]["ranges"] = json!([[{"subnet": SUBNET, "rangeStart": "10.77.0.10", "rangeEnd": "10.77.0.10", "gateway": GATEWAY}]]);
    let p0 = node.pod(0);
    node.add("c-one", &p0, &conf);
    let p1 = node.pod(1);
    let out = node.cni("ADD", "c-two", Some(&p1), "eth0", &conf);
    assert_ne!(out.exit, 0);
    assert!(
        out.json["msg"].as_str().unwrap().contains("IPAM"),
        "{}",
        out.stdout
    );
    assert!(must(&format!("ip -n {p1} -o link")).lines().count() == 1);
    node.cni("DEL", "c-one", Some(&p0), "eth0", &conf).ok();
    node.assert_clean();
}

#[test]
fn twenty_parallel_adds_then_twenty_parallel_dels() {
    let node = Node::new("par");
    let conf = node.conf("1.0.0", json!({}));
    let pods: Vec<Netns> = (0..20).map(|i| node.pod(i)).collect();
    let results: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (node, conf) = (&node, &conf);
                s.spawn(move || {
                    node.cni("ADD", &format!("c-par{i}"), Some(p), "eth0", conf)
                        .ok()
                        .clone()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ips: Vec<String> = results.iter().map(pod_ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "20 distinct addresses");
    for (p, r) in pods.iter().zip(&results) {
        assert_attachment(&node, p, r, nproc());
    }
    std::thread::scope(|s| {
        for (i, p) in pods.iter().enumerate() {
            let (node, conf) = (&node, &conf);
            s.spawn(move || {
                node.cni("DEL", &format!("c-par{i}"), Some(p), "eth0", conf)
                    .ok()
                    .clone()
            });
        }
    });
    node.assert_clean();
}

/// A failed ADD left nothing on the node (the shared traces check: links,
/// routes, fdb, records, leases and the datapath) nor in the pod; and the same
/// ADD without the fault then works: nothing stale blocks it.
#[cfg(feature = "fault-injection")]
fn assert_rolled_back(node: &Node, pod: &Netns, cid: &str, conf: &Value, what: &str) {
    node.assert_clean();
    assert_eq!(
        must(&format!("ip -n {pod} -o link")).lines().count(),
        1,
        "{what}: pod namespace clean"
    );
    node.add(cid, pod, conf);
    node.cni("DEL", cid, Some(pod), "eth0", conf).ok();
}

/// A failure injected after each ADD step leaves nothing behind.
#[cfg(feature = "fault-injection")]
#[test]
fn rollback_after_every_add_step() {
    let node = Node::new("rb");
    let conf = node.conf("1.0.0", json!({}));
    for (i, step) in support::cni::ADD_STEPS.iter().enumerate() {
        let pod = node.pod(i);
        let cid = format!("c-rb{i}");
        let out = node.cni_env(
            "ADD",
            &cid,
            Some(&pod),
            "eth0",
            &conf,
            &[("VETH_XDP_FAIL_AFTER", step)],
        );
        let msg = out.err(5);
        assert!(msg.contains(step), "{step}: {msg}");
        assert_rolled_back(&node, &pod, &cid, &conf, step);
    }
    node.assert_clean();
}

/// A panic in ADD (here right after the veth step) still rolls back: the
/// plugin answers a CNI error (109, internal) and leaves nothing behind.
#[cfg(feature = "fault-injection")]
#[test]
fn panic_during_add_rolls_back() {
    let node = Node::new("pn");
    let conf = node.conf("1.0.0", json!({}));
    let pod = node.pod(0);
    let out = node.cni_env(
        "ADD",
        "c-pn",
        Some(&pod),
        "eth0",
        &conf,
        &[
            ("VETH_XDP_FAIL_AFTER", "veth"),
            ("VETH_XDP_FAIL_MODE", "panic"),
        ],
    );
    assert_ne!(out.exit, 0, "a panicking ADD must fail: {}", out.stdout);
    let msg = out.err(109);
    assert!(msg.contains("panicked"), "{msg}");
    assert_rolled_back(&node, &pod, "c-pn", &conf, "panic after veth");
    node.assert_clean();
}

/// bpftool arguments for raw bytes: `hex ee ff ...`.
fn hex_args(bytes: &[u8]) -> Vec<String> {
    std::iter::once("hex".to_string())
        .chain(bytes.iter().map(|b| format!("{b:02x}")))
        .collect()
}

/// `bpftool map update|delete pinned <pin> key ... [value ...]`, run in the
/// node namespace (the devmap resolves its ifindex there).
fn bpftool_map(node: &Node, op: &str, pin: &Path, key: &[u8], value: Option<&[u8]>) {
    let mut args: Vec<String> = ["bpftool", "map", op, "pinned", pin.to_str().unwrap(), "key"]
        .map(String::from)
        .into();
    args.extend(hex_args(key));
    if let Some(value) = value {
        args.push("value".into());
        args.extend(hex_args(value));
    }
    node.ns
        .exec(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The traces check sees the datapath: a stray entry in each pod map, a
/// redirect target other than the uplink, a pod counter slot not zeroed and a
/// host veth's link pin left behind are each reported, and nothing else.
#[test]
fn traces_report_stray_datapath_state() {
    let node = Node::new("tr");
    let pod = node.pod(0);
    let conf = node.conf("1.0.0", json!({}));
    node.add("c-tr", &pod, &conf);
    let paths = BpfPaths::new(&node.bpf_root);
    // A second pin of the pod's XDP link outlives DEL (defunct once the veth goes).
    let own = std::fs::read_dir(paths.links_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.ends_with(bpf::LINK_UPLINK))
        .expect("the pod's link pin");
    let stray_pin = paths.link("stray_xdp");
    support::cmd::run(
        "bpftool",
        &[
            "link",
            "pin",
            "pinned",
            own.to_str().unwrap(),
            stray_pin.to_str().unwrap(),
        ],
    );
    node.cni("DEL", "c-tr", Some(&pod), "eth0", &conf).ok();
    assert_eq!(
        node.traces(),
        [format!(
            "pin {}: link of {}",
            stray_pin.display(),
            bpf::PROG_HOST_XDP
        )]
    );
    std::fs::remove_file(&stray_pin).unwrap();
    node.assert_clean();

    let lo = node.ns.ifindex("lo").to_ne_bytes();
    let size = |pin: &Path, field: &str| -> usize {
        let info = support::cmd::run(
            "bpftool",
            &["-j", "map", "show", "pinned", pin.to_str().unwrap()],
        );
        let info: Value = serde_json::from_str(&info).unwrap();
        info[field].as_u64().unwrap() as usize
    };
    for (map, trace) in [
        ("vx_pod_mac", "map vx_pod_mac: "),
        ("vx_pod_v4", "map vx_pod_v4: "),
        ("vx_pod_v6", "map vx_pod_v6: "),
        ("vx_pod_if", "map vx_pod_if: "),
        ("vx_redirect", "map vx_redirect: "),
        ("vx_counters", "slot 5: vx_counters not zeroed"),
    ] {
        let pin = paths.map(map);
        let (key_len, value_len) = (size(&pin, "bytes_key"), size(&pin, "bytes_value"));
        let (key, value) = match map {
            // A redirect target must be a device of the node: its loopback.
            "vx_redirect" => (lo.to_vec(), [lo.to_vec(), vec![0; value_len - 4]].concat()),
            // Slot 5, one non-zero counter.
            "vx_counters" => (
                5u32.to_ne_bytes().to_vec(),
                [vec![1], vec![0; value_len - 1]].concat(),
            ),
            _ => (vec![0xee; key_len], vec![0; value_len]),
        };
        bpftool_map(&node, "update", &pin, &key, Some(&value));
        let t = node.traces();
        assert!(
            t.len() == 1 && t[0].starts_with(trace),
            "{map}: expected one trace {trace:?}, got {t:?}"
        );
        match map {
            "vx_counters" => bpftool_map(&node, "update", &pin, &key, Some(&vec![0; value_len])),
            _ => bpftool_map(&node, "delete", &pin, &key, None),
        }
        node.assert_clean();
    }
}
