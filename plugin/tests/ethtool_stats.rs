//! Driver statistics over SIOCETHTOOL, checked against `ethtool -S` on veths in
//! namespaces made by each test (needs root).

use std::collections::BTreeMap;

use nix::errno::Errno;
use veth_xdp::ethtool_stats::{driver_stats, driver_stats_in, veth_hidden_drops, HiddenDrops};

mod support;

use support::ns::{ifname, Netns};

/// A namespace for one test.
fn test_ns(tag: &str) -> Netns {
    Netns::new(&format!("es{tag}"))
}

/// Parses `ethtool -S` output ("NIC statistics:" then "     name: value").
fn cli_stats(ns: &Netns, dev: &str) -> Vec<(String, u64)> {
    ns.must(&format!("ethtool -S {dev}"))
        .lines()
        .skip_while(|l| !l.starts_with("NIC statistics:"))
        .skip(1)
        .map(|l| {
            let (name, value) = l
                .trim()
                .rsplit_once(": ")
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (
                name.to_string(),
                value
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value {l:?}")),
            )
        })
        .collect()
}

fn sum(stats: &[(String, u64)], prefix: &str, suffix: &str) -> u64 {
    stats
        .iter()
        .filter(|(n, _)| n.starts_with(prefix) && n.ends_with(suffix))
        .map(|(_, v)| v)
        .sum()
}

/// A veth pair a/b inside `ns`, 2 rx and 2 tx queues on each end.
fn veth_pair_in(ns: &Netns, a: &str, b: &str) {
    ns.ip(&format!(
        "link add name {a} numtxqueues 2 numrxqueues 2 type veth peer name {b} numtxqueues 2 numrxqueues 2"
    ));
}

#[test]
fn names_and_values_match_ethtool_cli() {
    let ns = test_ns("cl");
    let (a, b) = (ifname("esca"), ifname("escb"));
    veth_pair_in(&ns, &a, &b);
    // Links down: nothing moves, so every value must match exactly.

    let ours = driver_stats_in(&ns.path(), &a).expect("driver_stats_in");
    let cli = cli_stats(&ns, &a);
    assert!(!cli.is_empty(), "ethtool -S printed nothing for {a}");
    assert_eq!(ours, cli, "driver_stats_in({a}) differs from ethtool -S");

    // Two queues each way: 1 global + 2 x 7 rx + 2 x 2 tx on Linux 6.18.
    for name in [
        "peer_ifindex",
        "rx_queue_1_drops",
        "rx_queue_1_xdp_redirect",
        "tx_queue_1_xdp_xmit_errors",
    ] {
        assert!(
            ours.iter().any(|(n, _)| n == name),
            "{name} missing from {ours:?}"
        );
    }
    assert!(
        !ours.iter().any(|(n, _)| n.starts_with("rx_queue_2_")),
        "a third queue in {ours:?}"
    );

    // peer_ifindex is a real value, not a counter: b's ifindex.
    // (`ip -o link` prints "INDEX: NAME@PEER: ..."; /sys would show the root namespace.)
    let line = ns.ip(&format!("-o link show {b}"));
    let b_index: u64 = line.split(':').next().unwrap().trim().parse().unwrap();
    let peer = ours.iter().find(|(n, _)| n == "peer_ifindex").unwrap().1;
    assert_eq!(peer, b_index, "peer_ifindex of {a}");

    // The current-namespace entry point, from a thread moved into the namespace.
    let path = ns.path();
    let a2 = a.clone();
    let inside = std::thread::spawn(move || {
        veth_xdp::netns::with_netns(&path, || driver_stats(&a2)).expect("enter netns")
    })
    .join()
    .expect("thread")
    .expect("driver_stats inside the namespace");
    assert_eq!(
        inside, cli,
        "driver_stats({a}) inside the namespace differs from ethtool -S"
    );
}

#[test]
fn traffic_moves_rx_queue_counters() {
    let left = test_ns("tl");
    let right = test_ns("tr");
    let (l, r) = (ifname("estl"), ifname("estr"));
    veth_pair_in(&left, &l, &r);
    left.ip(&format!("link set {r} netns {right}"));
    left.ip(&format!("addr add 10.213.0.1/24 dev {l}"));
    right.ip(&format!("addr add 10.213.0.2/24 dev {r}"));
    // veth counts rx_queue_N_* only on its NAPI path, which GRO (or an XDP
    // program) on the receiver turns on; and veth_xmit only takes that path for
    // an skb `veth_skb_is_eligible_for_gro`, i.e. when the sender has TSO off
    // (drivers/net/veth.c, Linux 6.18). Otherwise frames take netif_rx and
    // skip the rings and their counters.
    left.must(&format!("ethtool -K {l} gro on tso off"));
    right.must(&format!("ethtool -K {r} gro on tso off"));
    left.ip(&format!("link set {l} up"));
    right.ip(&format!("link set {r} up"));

    let before_l = driver_stats_in(&left.path(), &l).expect("stats left");
    let before_r = driver_stats_in(&right.path(), &r).expect("stats right");

    left.must("ping -c 5 -i 0.2 -W 2 10.213.0.2");

    let after_l = driver_stats_in(&left.path(), &l).expect("stats left");
    let after_r = driver_stats_in(&right.path(), &r).expect("stats right");
    for (dev, before, after) in [(&l, &before_l, &after_l), (&r, &before_r, &after_r)] {
        let (p0, p1) = (
            sum(before, "rx_queue_", "_xdp_packets"),
            sum(after, "rx_queue_", "_xdp_packets"),
        );
        // 5 echo requests/replies each way, plus ARP.
        assert!(p1 >= p0 + 5, "{dev}: rx_queue_*_xdp_packets {p0} -> {p1}");
        let (b0, b1) = (
            sum(before, "rx_queue_", "_xdp_bytes"),
            sum(after, "rx_queue_", "_xdp_bytes"),
        );
        assert!(
            b1 >= b0 + 5 * 84,
            "{dev}: rx_queue_*_xdp_bytes {b0} -> {b1}"
        );
        let drops = veth_hidden_drops(after);
        assert_eq!(
            drops,
            HiddenDrops::default(),
            "{dev}: unexpected drops in {after:?}"
        );
    }

    // Traffic has stopped: the CLI must see the same numbers as we do (retry
    // once in case a late frame such as an IPv6 router solicitation landed between).
    for (ns, dev) in [(&left, &l), (&right, &r)] {
        let mut same = false;
        for _ in 0..3 {
            let ours = driver_stats_in(&ns.path(), dev).expect("stats");
            if ours == cli_stats(ns, dev) {
                same = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        assert!(
            same,
            "{dev}: driver_stats_in never matched ethtool -S after traffic"
        );
    }
}

#[test]
fn missing_device_is_an_error_naming_it() {
    let ns = test_ns("mi");
    let missing = ifname("esmiss");
    let err = driver_stats_in(&ns.path(), &missing).expect_err("missing device must fail");
    let text = format!("{err:#}");
    assert!(
        text.contains(&missing),
        "error does not name the device: {text}"
    );
    assert!(
        text.contains("ETHTOOL_GSSET_INFO"),
        "error does not name the ioctl: {text}"
    );
    assert!(
        text.contains("ENODEV"),
        "error does not name the errno: {text}"
    );
    let ioctl = err.ioctl().expect("an EthtoolIoctlError at the root");
    assert_eq!(ioctl.errno, Errno::ENODEV);

    // The namespace decides: a device that exists only inside it is missing
    // from the root namespace.
    let (a, b) = (ifname("esma"), ifname("esmb"));
    veth_pair_in(&ns, &a, &b);
    assert!(!driver_stats_in(&ns.path(), &a).expect("inside").is_empty());
    let err = driver_stats(&a).expect_err("device only exists in the test namespace");
    assert_eq!(err.ioctl().map(|e| e.errno), Some(Errno::ENODEV), "{err:#}");
}

#[test]
fn device_without_driver_stats_gives_empty_list() {
    // Loopback has no ETH_SS_STATS set: GSSET_INFO clears the mask bit.
    let ns = test_ns("lo");
    assert_eq!(driver_stats_in(&ns.path(), "lo").expect("lo"), Vec::new());
}

#[test]
fn invalid_ifname_is_rejected() {
    let err = driver_stats("a-name-of-16-byt").expect_err("16 bytes is too long");
    assert!(format!("{err:#}").contains("a-name-of-16-byt"), "{err:#}");
    assert!(driver_stats("").is_err());
}

#[test]
fn hidden_drops_sum_over_queues() {
    let stats: Vec<(String, u64)> = [
        ("peer_ifindex", 7),
        ("rx_queue_0_xdp_packets", 1000),
        ("rx_queue_0_drops", 3),
        ("rx_queue_0_xdp_redirect", 40),
        ("rx_queue_0_xdp_drops", 2),
        ("rx_queue_0_xdp_tx_errors", 5),
        ("rx_queue_1_drops", 4),
        ("rx_queue_1_xdp_redirect", 60),
        ("rx_queue_1_xdp_drops", 1),
        ("rx_queue_1_xdp_tx_errors", 6),
        ("rx_queue_12_drops", 100),
        ("tx_queue_0_xdp_xmit", 500),
        ("tx_queue_0_xdp_xmit_errors", 9),
        ("tx_queue_1_xdp_xmit_errors", 11),
        ("xdp_xmit_errors", 1),
        // Not per-queue stats: must not be counted.
        ("rx_queue_x_drops", 1000),
        ("rx_queue__drops", 1000),
        ("rx_drops", 1000),
        ("tx_queue_0_drops", 1000),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    assert_eq!(
        veth_hidden_drops(&stats),
        HiddenDrops {
            xdp_xmit_errors: 21,
            rx_drops: 107,
            xdp_drops: 3,
            xdp_tx_errors: 11,
            xdp_redirect: 100
        }
    );
    assert_eq!(veth_hidden_drops(&[]), HiddenDrops::default());
}

#[test]
fn hidden_drops_reads_names_veth_really_has() {
    // Guards against the kernel renaming what the helper sums.
    let ns = test_ns("hn");
    let (a, b) = (ifname("esha"), ifname("eshb"));
    veth_pair_in(&ns, &a, &b);
    let names: BTreeMap<String, u64> = driver_stats_in(&ns.path(), &a)
        .expect("stats")
        .into_iter()
        .collect();
    for q in 0..2 {
        for stat in ["drops", "xdp_redirect", "xdp_drops", "xdp_tx_errors"] {
            let name = format!("rx_queue_{q}_{stat}");
            assert!(names.contains_key(&name), "{name} missing: {names:?}");
        }
        let name = format!("tx_queue_{q}_xdp_xmit_errors");
        assert!(names.contains_key(&name), "{name} missing: {names:?}");
    }
}
