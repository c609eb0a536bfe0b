//! ethtool and netdev genetlink operations against veths in throwaway
//! namespaces, checked against the `ethtool` and `ip` CLIs. Needs root.
//!
//! Run: `cargo test --test genl_ops -- --test-threads=2`

use veth_xdp::ethtool::Ethtool;
use veth_xdp::netdev::Netdev;

mod support;

use support::ns::{ifname, Netns};
use support::runtime as rt;

/// A namespace for one test.
fn test_ns(tag: &str) -> Netns {
    Netns::new(&format!("genl{tag}"))
}

/// A plain veth pair a/b inside `ns` (down, one queue each way).
fn veth_in(ns: &Netns, a: &str, b: &str) {
    ns.ip(&format!("link add {a} type veth peer name {b}"));
}

fn ethtool_k(ns: &Netns, dev: &str) -> String {
    ns.exec(&["ethtool", "-k", dev])
}

/// `name: on|off [fixed]` lines of `ethtool -k` (ethtool prints some kernel
/// names as CLI aliases, e.g. rx-gro as generic-receive-offload).
fn cli_features(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let (name, rest) = line.trim().split_once(": ")?;
            let on = match rest.split_whitespace().next()? {
                "on" => true,
                "off" => false,
                _ => return None,
            };
            Some((name.to_string(), on))
        })
        .collect()
}

/// [RX max, TX max, RX current, TX current] from `ethtool -l`.
fn cli_channels(text: &str) -> [u32; 4] {
    let counts: Vec<u32> = text
        .lines()
        .filter_map(|l| l.strip_prefix("RX:").or_else(|| l.strip_prefix("TX:")))
        .map(|v| v.trim().parse().expect("numeric RX/TX count"))
        .collect();
    counts
        .try_into()
        .unwrap_or_else(|c| panic!("ethtool -l: {c:?} in {text}"))
}

fn cli_has(text: &str, line: &str) -> bool {
    text.lines()
        .any(|l| l.trim() == line || l.trim().starts_with(&format!("{line} ")))
}

#[test]
fn features_agree_with_ethtool_cli() {
    let ns = test_ns("feat");
    let (a, b) = (ifname("gfa"), ifname("gfb"));
    veth_in(&ns, &a, &b);

    let ours = rt().block_on(async {
        let et = Ethtool::in_netns(&ns.path()).unwrap();
        et.features(&a).await.unwrap()
    });
    let cli = cli_features(&ethtool_k(&ns, &a));

    let mut compared = 0;
    for (name, on) in &cli {
        if let Some(&mine) = ours.get(name) {
            assert_eq!(
                mine, *on,
                "{name}: features() says {mine}, ethtool -k says {on}"
            );
            compared += 1;
        }
    }
    assert!(
        compared >= 40,
        "only {compared} features in common with ethtool -k: {ours:?}"
    );
    // Bit 0 (which ethtool 0.3.0's parser drops) and the ones the plugin sets.
    for name in [
        "tx-scatter-gather",
        "tx-checksum-ip-generic",
        "tx-checksum-sctp",
    ] {
        assert_eq!(ours.get(name), Some(&true), "{name} in {ours:?}");
    }
    for name in ["tx-vlan-hw-insert", "rx-vlan-hw-parse", "rx-gro"] {
        assert!(ours.contains_key(name), "{name} missing from {ours:?}");
    }
    // A veth starts with GRO off: the reply's "off" features are reported too.
    assert_eq!(ours.get("rx-gro"), Some(&false));
}

#[test]
fn set_features_applies_only_listed_bits_and_is_idempotent() {
    let ns = test_ns("set");
    let (a, b) = (ifname("gsa"), ifname("gsb"));
    veth_in(&ns, &a, &b);
    let wanted = [
        ("tx-checksum-ip-generic", false),
        ("tx-checksum-sctp", false),
        ("tx-vlan-hw-insert", false),
        ("rx-gro", true),
    ];

    let (before, after) = rt().block_on(async {
        let et = Ethtool::in_netns(&ns.path()).unwrap();
        let before = et.features(&a).await.unwrap();
        et.set_features(&a, &wanted).await.unwrap();
        // Same request again: nothing to change, still Ok.
        et.set_features(&a, &wanted).await.expect("idempotent set");
        (before, et.features(&a).await.unwrap())
    });

    let k = ethtool_k(&ns, &a);
    assert!(cli_has(&k, "tx-checksumming: off"), "{k}");
    assert!(cli_has(&k, "tx-vlan-offload: off"), "{k}");
    assert!(cli_has(&k, "generic-receive-offload: on"), "{k}");
    for (name, on) in wanted {
        assert_eq!(after.get(name), Some(&on), "{name}");
    }
    // Not listed, not touched (TSO/GSO do drop with ip-generic, as expected).
    assert_eq!(before.get("rx-vlan-hw-parse"), Some(&true));
    assert_eq!(after.get("rx-vlan-hw-parse"), Some(&true));
    assert!(cli_has(&k, "rx-vlan-offload: on"), "{k}");
    // The peer is a different device and keeps its offloads.
    let kb = ethtool_k(&ns, &b);
    assert!(cli_has(&kb, "tx-checksumming: on"), "{kb}");
}

#[test]
fn set_features_turns_back_on() {
    let ns = test_ns("back");
    let (a, b) = (ifname("gba"), ifname("gbb"));
    veth_in(&ns, &a, &b);
    rt().block_on(async {
        let et = Ethtool::in_netns(&ns.path()).unwrap();
        et.set_features(&a, &[("tx-vlan-hw-insert", false), ("rx-gro", true)])
            .await
            .unwrap();
        et.set_features(&a, &[("tx-vlan-hw-insert", true), ("rx-gro", false)])
            .await
            .unwrap();
    });
    let k = ethtool_k(&ns, &a);
    assert!(cli_has(&k, "tx-vlan-offload: on"), "{k}");
    assert!(cli_has(&k, "generic-receive-offload: off"), "{k}");
}

#[test]
fn set_features_errors_name_device_and_feature() {
    let ns = test_ns("err");
    let (a, b) = (ifname("gea"), ifname("geb"));
    veth_in(&ns, &a, &b);
    let missing = ifname("gem");

    let (gone, fixed, unknown) = rt().block_on(async {
        let et = Ethtool::in_netns(&ns.path()).unwrap();
        let gone = et
            .set_features(&missing, &[("rx-gro", true)])
            .await
            .unwrap_err();
        // tx-checksum-ipv4 is "off [fixed]" on a veth: the kernel takes the
        // request, the re-read shows it did not apply.
        let fixed = et
            .set_features(&a, &[("tx-checksum-ipv4", true)])
            .await
            .unwrap_err();
        let unknown = et
            .set_features(&a, &[("no-such-feature", true)])
            .await
            .unwrap_err();
        (
            format!("{gone:#}"),
            format!("{fixed:#}"),
            format!("{unknown:#}"),
        )
    });

    assert!(
        gone.contains(&missing) && gone.contains("No such device"),
        "{gone}"
    );
    assert!(
        fixed.contains(&format!("tx-checksum-ipv4 on {a} is still off (fixed?)")),
        "{fixed}"
    );
    assert!(
        unknown.contains("no-such-feature") && unknown.contains(&a),
        "{unknown}"
    );
    // The failed fixed request changed nothing the CLI can see.
    assert!(cli_has(
        &ethtool_k(&ns, &a),
        "tx-checksum-ipv4: off [fixed]"
    ));
}

#[test]
fn channels_report_real_queue_counts() {
    let ns = test_ns("chan");
    let (a, b) = (ifname("gca"), ifname("gcb"));
    let (q, p) = (ifname("gcq"), ifname("gcp"));
    veth_in(&ns, &a, &b);
    ns.ip(&format!(
        "link add {q} numrxqueues 2 numtxqueues 2 type veth peer name {p} numrxqueues 2 numtxqueues 2"
    ));

    let (plain, queued, missing) = rt().block_on(async {
        let et = Ethtool::in_netns(&ns.path()).unwrap();
        let missing = et.channels(&ifname("gcm")).await.unwrap_err();
        (
            et.channels(&a).await.unwrap(),
            et.channels(&q).await.unwrap(),
            format!("{missing:#}"),
        )
    });

    assert_eq!((plain.rx, plain.tx), (1, 1), "{plain:?}");
    assert_eq!((queued.rx, queued.tx), (2, 2), "{queued:?}");
    assert_eq!((queued.rx_max, queued.tx_max), (2, 2), "{queued:?}");
    assert_eq!(queued.combined, 0);
    assert!(missing.contains("No such device"), "{missing}");
    // `ethtool -l` agrees on maximums and current counts.
    for (dev, ch) in [(&a, plain), (&q, queued)] {
        let cli = cli_channels(&ns.exec(&["ethtool", "-l", dev]));
        assert_eq!(cli, [ch.rx_max, ch.tx_max, ch.rx, ch.tx], "{dev}: {ch:?}");
    }
}

#[test]
fn xdp_ndo_xmit_follows_peer_gro() {
    let node = test_ns("xn");
    let pod = test_ns("xp");
    let (host, peer) = (ifname("gxh"), ifname("gxp"));
    node.ip(&format!(
        "link add {host} type veth peer name {peer} netns {pod}"
    ));
    node.ip(&format!("link set {host} up"));
    pod.ip(&format!("link set {peer} up"));
    let ifindex = node.ifindex(&host);

    let rt = rt();
    let nd = rt
        .block_on(async { Netdev::in_netns(&node.path()) })
        .unwrap();
    let before = rt
        .block_on(nd.xdp_features(ifindex))
        .unwrap()
        .expect("netdev family on 6.18");
    assert!(before.basic && before.redirect, "{before:?}");
    assert!(
        !before.ndo_xmit && !before.ndo_xmit_sg,
        "peer has no GRO/XDP yet: {before:?}"
    );

    pod.exec(&["ethtool", "-K", &peer, "gro", "on"]);
    let after = rt.block_on(nd.xdp_features(ifindex)).unwrap().unwrap();
    assert!(
        after.ndo_xmit && after.ndo_xmit_sg,
        "peer GRO on: {after:?}"
    );
    assert_eq!(after.raw & 0x7f, before.raw | 4 | 64);

    // The socket is bound to the node namespace: the pod's ifindex space differs,
    // and a missing index is an error, not None.
    let err = rt.block_on(nd.xdp_features(999_999)).unwrap_err();
    assert!(format!("{err:#}").contains("999999"), "{err:#}");
}

#[test]
fn sockets_need_a_runtime() {
    let err = Ethtool::current()
        .err()
        .expect("no runtime: error, not panic");
    assert!(err.to_string().contains("tokio runtime"), "{err}");
    let err = Netdev::current()
        .err()
        .expect("no runtime: error, not panic");
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}
