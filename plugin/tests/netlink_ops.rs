//! Namespace-level tests of `veth_xdp::netlink`: every operation runs over a
//! socket opened in a throwaway namespace and is checked with iproute2/ethtool.
//! Needs root. Run with `cargo test --test netlink_ops -- --test-threads=2`.

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::Path;

use ipnetwork::IpNetwork;
use veth_xdp::mac::{mac_to_string, Mac};
use veth_xdp::netlink::{
    host_network, FdbEntry, Link, Netlink, Route, VethSpec, XdpAttached, XdpMode, XdpState,
};

mod support;

use support::cmd::{run, succeeds, xdp_pass_object, TempDir};
use support::ns::{ifname, Netns};
use support::runtime;

/// A namespace for one test.
fn test_ns(abbr: &str) -> Netns {
    Netns::new(&format!("nl{abbr}"))
}

/// A host and a pod namespace for one test, and the host veth name.
fn host_and_pod(abbr: &str) -> (Netns, Netns, String) {
    let host_ns = test_ns(&format!("{abbr}h"));
    let pod_ns = test_ns(&format!("{abbr}p"));
    (host_ns, pod_ns, ifname(&format!("vxnl{abbr}")))
}

/// The veth of the pod tests: host end `host_name`, pod end eth0 with
/// POD_MAC born in the namespace of `pod_netns`.
fn pod_veth<'a>(host_name: &'a str, pod_netns: &'a File, queues: u32, mtu: u32) -> VethSpec<'a> {
    VethSpec {
        host_name,
        pod_name: "eth0",
        pod_mac: POD_MAC,
        queues,
        mtu,
        pod_netns: pod_netns.as_fd(),
    }
}

/// A netlink socket inside the test namespace.
fn netlink_in(ns: &Netns) -> Netlink {
    Netlink::in_netns(&ns.path()).expect("netlink socket in test netns")
}

fn net(s: &str) -> IpNetwork {
    s.parse().expect("test network literal")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address literal")
}

/// "Current hardware settings" RX and TX channel counts from `ethtool -l`.
fn current_channels(ns: &Netns, dev: &str) -> (u32, u32) {
    let out = ns.exec(&["ethtool", "-l", dev]);
    let current = out
        .split("Current hardware settings:")
        .nth(1)
        .expect("ethtool -l current section");
    let field = |key: &str| -> u32 {
        current
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in ethtool -l output:\n{out}"))
    };
    (field("RX:"), field("TX:"))
}

/// A veth pair with both ends in `ns`, up (for tests that need just devices).
async fn local_veth(nl: &Netlink, ns: &Netns, a: &str, b: &str, mac: Mac) -> (Link, Link) {
    let fd = ns.file();
    nl.veth_create(&VethSpec {
        host_name: a,
        pod_name: b,
        pod_mac: mac,
        queues: 2,
        mtu: 1500,
        pod_netns: fd.as_fd(),
    })
    .await
    .expect("create veth");
    let a_link = nl.link_by_name(a).await.unwrap().expect("first end");
    let b_link = nl.link_by_name(b).await.unwrap().expect("second end");
    nl.link_set_up(a_link.index).await.unwrap();
    nl.link_set_up(b_link.index).await.unwrap();
    (a_link, b_link)
}

const POD_MAC: Mac = [0x02, 0x42, 0xac, 0x11, 0x00, 0x07];

#[test]
fn veth_pair_is_born_across_namespaces_with_queues_mac_and_mtu() {
    let (host_ns, pod_ns, host_name) = host_and_pod("v");
    runtime().block_on(async {
        let host = netlink_in(&host_ns);
        let pod = netlink_in(&pod_ns);
        let pod_fd = pod_ns.file();
        let spec = pod_veth(&host_name, &pod_fd, 2, 1400);
        host.veth_create(&spec).await.expect("create veth");

        // Kernel view through our parser.
        let host_link = host
            .link_by_name(&host_name)
            .await
            .unwrap()
            .expect("host end exists");
        let pod_link = pod
            .link_by_name("eth0")
            .await
            .unwrap()
            .expect("pod end exists in pod netns");
        assert_eq!(host_link.kind.as_deref(), Some("veth"));
        assert_eq!(pod_link.kind.as_deref(), Some("veth"));
        assert_eq!((host_link.mtu, pod_link.mtu), (1400, 1400));
        assert_eq!((host_link.num_rx_queues, host_link.num_tx_queues), (2, 2));
        assert_eq!((pod_link.num_rx_queues, pod_link.num_tx_queues), (2, 2));
        assert_eq!(pod_link.mac, Some(POD_MAC));
        assert_eq!(
            host_link.peer_index,
            Some(pod_link.index),
            "IFLA_LINK of the host end is the pod ifindex"
        );
        assert_eq!(pod_link.peer_index, Some(host_link.index));
        assert!(!host_link.admin_up && !host_link.oper_up);
        assert!(
            host.link_by_name("eth0").await.unwrap().is_none(),
            "pod end must not stay in the host netns"
        );
        assert_eq!(
            host.link_by_index(host_link.index).await.unwrap().as_ref(),
            Some(&host_link)
        );
        assert!(host
            .links()
            .await
            .unwrap()
            .iter()
            .any(|l| l.name == host_name));

        // iproute2 and ethtool agree.
        let shown = pod_ns.ip("-d link show eth0");
        assert!(shown.contains(&mac_to_string(&POD_MAC)), "{shown}");
        assert!(
            shown.contains("mtu 1400") && shown.contains("numtxqueues 2 numrxqueues 2"),
            "{shown}"
        );
        let shown = host_ns.ip(&format!("-d link show {host_name}"));
        assert!(
            shown.contains("veth") && shown.contains("numtxqueues 2 numrxqueues 2"),
            "{shown}"
        );
        assert_eq!(
            current_channels(&host_ns, &host_name),
            (2, 2),
            "host end real channels"
        );
        assert_eq!(
            current_channels(&pod_ns, "eth0"),
            (2, 2),
            "pod end real channels"
        );

        // Up and MTU changes.
        host.link_set_up(host_link.index).await.unwrap();
        pod.link_set_up(pod_link.index).await.unwrap();
        host.link_set_mtu(host_link.index, 1300).await.unwrap();
        let host_link = host.link_by_index(host_link.index).await.unwrap().unwrap();
        assert!(host_link.admin_up);
        assert_eq!(host_link.mtu, 1300);
        assert!(host_ns
            .ip(&format!("link show {host_name}"))
            .contains("mtu 1300"));
        assert!(
            pod.link_by_name("eth0").await.unwrap().unwrap().oper_up,
            "both ends up: carrier on the pod end"
        );

        // Duplicate creation is EEXIST with the operation named.
        let err = host
            .veth_create(&spec)
            .await
            .expect_err("second create must fail");
        assert!(err.is(libc::EEXIST), "{err:?}");
        assert!(err.op.contains(&host_name), "{err}");
        assert_eq!(
            err.to_string(),
            format!("create veth {host_name} (peer eth0): File exists (os error 17)")
        );

        // Missing links.
        assert_eq!(host.link_by_name("vxnl-missing").await.unwrap(), None);
        assert_eq!(host.link_by_index(999_999).await.unwrap(), None);

        // Delete twice: the second is "already gone"; the pod end goes with it.
        assert!(host.link_delete_by_name(&host_name).await.unwrap());
        assert!(!host.link_delete_by_name(&host_name).await.unwrap());
        assert!(pod.link_by_name("eth0").await.unwrap().is_none());
        let listed = succeeds("ip", &["-n", pod_ns.name(), "link", "show", "eth0"]);
        assert!(!listed, "pod end still listed by ip");
    });
}

#[test]
fn veth_queue_counts_apply_to_both_ends() {
    // 1 and 3 differ from this machine's nproc (2), the kernel's default
    // allocation, so a count missing from either message shows up here.
    let (host_ns, pod_ns, host_name) = host_and_pod("q");
    runtime().block_on(async {
        let host = netlink_in(&host_ns);
        let pod = netlink_in(&pod_ns);
        let pod_fd = pod_ns.file();
        for queues in [1, 3] {
            let spec = pod_veth(&host_name, &pod_fd, queues, 1500);
            host.veth_create(&spec).await.unwrap();
            let host_link = host.link_by_name(&host_name).await.unwrap().unwrap();
            let pod_link = pod.link_by_name("eth0").await.unwrap().unwrap();
            assert_eq!(
                (host_link.num_rx_queues, host_link.num_tx_queues),
                (queues, queues)
            );
            assert_eq!(
                (pod_link.num_rx_queues, pod_link.num_tx_queues),
                (queues, queues)
            );
            assert_eq!(
                current_channels(&host_ns, &host_name),
                (queues, queues),
                "host end, {queues} queues"
            );
            assert_eq!(
                current_channels(&pod_ns, "eth0"),
                (queues, queues),
                "pod end, {queues} queues"
            );
            assert!(host.link_delete_by_name(&host_name).await.unwrap());
        }
    });
}

#[test]
fn current_opens_a_socket_in_the_callers_namespace() {
    // Read-only: lists the test process's own links.
    runtime().block_on(async {
        let nl = Netlink::current().expect("socket in current netns");
        let lo = nl
            .link_by_name("lo")
            .await
            .unwrap()
            .expect("every namespace has lo");
        assert_eq!(lo.index, 1);
        assert!(nl.links().await.unwrap().iter().any(|l| l.name == "lo"));
    });
}

#[test]
fn in_netns_fails_with_the_path_for_a_missing_namespace() {
    let rt = runtime();
    let _enter = rt.enter();
    let missing = Path::new("/var/run/netns/vxnl-none-does-not-exist");
    let err = Netlink::in_netns(missing).err().expect("no such netns");
    assert_eq!(err.errno, Some(libc::ENOENT), "{err:?}");
    assert!(err.op.contains("vxnl-none-does-not-exist"), "{err}");
}

#[test]
fn addresses_host_routes_and_default_routes() {
    let (host_ns, pod_ns, host_name) = host_and_pod("a");
    runtime().block_on(async {
        let host = netlink_in(&host_ns);
        let pod = netlink_in(&pod_ns);
        let pod_fd = pod_ns.file();
        let spec = pod_veth(&host_name, &pod_fd, 1, 1500);
        host.veth_create(&spec).await.unwrap();
        let host_if = host.link_by_name(&host_name).await.unwrap().unwrap().index;
        let pod_if = pod.link_by_name("eth0").await.unwrap().unwrap().index;
        host.link_set_up(host_if).await.unwrap();
        pod.link_set_up(pod_if).await.unwrap();

        // Addresses: both families, prefix lengths kept, repeat tolerated.
        for addr in ["10.77.0.5/24", "fd77::5/64"] {
            pod.addr_add(pod_if, net(addr)).await.unwrap();
            pod.addr_add(pod_if, net(addr)).await.expect("repeated add is success");
        }
        let listed = pod.addr_list(pod_if).await.unwrap();
        assert!(listed.contains(&net("10.77.0.5/24")) && listed.contains(&net("fd77::5/64")), "{listed:?}");
        // The kernel adds the fe80:: address asynchronously once the link has carrier.
        let mut listed = listed;
        for _ in 0..50 {
            if listed.iter().any(|a| matches!(a.ip(), IpAddr::V6(v6) if v6.segments()[0] == 0xfe80)) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            listed = pod.addr_list(pod_if).await.unwrap();
        }
        assert!(listed.iter().any(|a| matches!(a.ip(), IpAddr::V6(v6) if v6.segments()[0] == 0xfe80 && a.prefix() == 64)), "link-local: {listed:?}");
        let lo = pod.link_by_name("lo").await.unwrap().expect("lo");
        pod.link_set_up(lo.index).await.unwrap(); // a fresh netns has lo down, without 127.0.0.1
        // A strict socket gets only the asked link's addresses from the kernel.
        let strict = pod_ns.enter(Netlink::current_strict).unwrap();
        let on_lo = strict.addr_list(lo.index).await.unwrap();
        assert!(on_lo.contains(&net("127.0.0.1/8")), "loopback entry: {on_lo:?}");
        assert!(!on_lo.contains(&net("10.77.0.5/24")), "eth0's address listed for lo: {on_lo:?}");
        let on_eth0 = strict.addr_list(pod_if).await.unwrap();
        assert!(on_eth0.contains(&net("10.77.0.5/24")) && !on_eth0.contains(&net("127.0.0.1/8")), "{on_eth0:?}");
        let json = pod_ns.ip("-j addr show dev eth0");
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let shown: Vec<String> = parsed[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect();
        assert!(shown.contains(&"10.77.0.5/24".to_string()) && shown.contains(&"fd77::5/64".to_string()), "{shown:?}");

        // Host routes to the pod via the host veth, scope link, no gateway.
        let host_v4 = Route::host(ip("10.77.0.5"), host_if);
        let host_v6 = Route::host(ip("fd77::5"), host_if);
        assert_eq!(host_v4.dst, host_network(ip("10.77.0.5")));
        for route in [&host_v4, &host_v6] {
            host.route_add(route).await.unwrap();
            host.route_add(route).await.expect("repeated add is success");
        }
        let routes = host.route_list().await.unwrap();
        assert!(routes.contains(&host_v4) && routes.contains(&host_v6), "{routes:?}");
        let shown = host_ns.ip("route");
        assert!(shown.contains(&format!("10.77.0.5 dev {host_name} proto boot scope link"))
            || shown.contains(&format!("10.77.0.5 dev {host_name} scope link")), "{shown}");
        assert!(host_ns.ip("-6 route").contains(&format!("fd77::5 dev {host_name}")));

        // Pod default routes via the gateway; default_route_oif prefers IPv4.
        assert_eq!(pod.default_route_oif().await.unwrap(), None);
        let default_v6 = Route::default_via(ip("fd77::1"), Some(pod_if));
        pod.route_add(&default_v6).await.unwrap();
        assert_eq!(pod.default_route_oif().await.unwrap(), Some(pod_if), "IPv6 default when no IPv4 one");
        let default_v4 = Route::default_via(ip("10.77.0.1"), Some(pod_if));
        pod.route_add(&default_v4).await.unwrap();
        pod.route_add(&default_v4).await.expect("repeated add is success");
        let extra = Route::via(net("192.0.2.0/24"), ip("10.77.0.1"), None);
        pod.route_add(&extra).await.unwrap();
        let routes = pod.route_list().await.unwrap();
        assert!(routes.contains(&default_v4) && routes.contains(&default_v6), "{routes:?}");
        assert!(routes.contains(&Route { oif: Some(pod_if), ..extra.clone() }), "{routes:?}");
        assert!(routes.iter().all(|r| r.dst.ip() != ip("127.0.0.1")), "local table leaked: {routes:?}");
        assert_eq!(pod.default_route_oif().await.unwrap(), Some(pod_if));
        let shown = pod_ns.ip("route");
        assert!(shown.contains("default via 10.77.0.1 dev eth0"), "{shown}");
        assert!(shown.contains("192.0.2.0/24 via 10.77.0.1 dev eth0"), "{shown}");
        assert!(pod_ns.ip("-6 route").contains("default via fd77::1 dev eth0"));

        // Delete: true once, then false; the kernel table agrees.
        for (nl, route) in [(&pod, &default_v4), (&pod, &default_v6), (&pod, &extra), (&host, &host_v4), (&host, &host_v6)] {
            assert!(nl.route_del(route).await.unwrap(), "first delete of {route:?}");
            assert!(!nl.route_del(route).await.unwrap(), "second delete of {route:?}");
        }
        assert!(!pod_ns.ip("route").contains("default"));
        assert!(!host_ns.ip("route").contains("10.77.0.5"));
        assert_eq!(pod.default_route_oif().await.unwrap(), None);

        // Errors name the operation and carry the errno.
        let err = pod.route_add(&Route::host(ip("10.9.9.9"), 999_999)).await.expect_err("no such device");
        assert_eq!(err.errno, Some(libc::ENODEV), "{err:?}");
        assert!(err.op.contains("10.9.9.9/32"), "{err}");
        let err = pod.addr_add(999_999, net("10.9.9.9/32")).await.expect_err("no such device");
        assert_eq!(err.errno, Some(libc::ENODEV), "{err:?}");
    });
}

/// The device's promiscuity count as netlink and `ip -d link` report it.
async fn assert_promiscuity(nl: &Netlink, ns: &Netns, index: u32, dev: &str, want: u32) {
    let link = nl.link_by_index(index).await.unwrap().unwrap();
    assert_eq!(link.promiscuity, want);
    let shown = ns.ip(&format!("-d link show {dev}"));
    assert!(shown.contains(&format!("promiscuity {want}")), "{shown}");
}

#[test]
fn fdb_self_permanent_add_list_del_flips_promiscuity() {
    let ns = test_ns("fd");
    let uplink = ifname("vxnlu");
    let wire = ifname("vxnlw");
    let mac: Mac = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];
    runtime().block_on(async {
        let nl = netlink_in(&ns);
        let (up, _) = local_veth(&nl, &ns, &uplink, &wire, [0x02, 0, 0, 0, 0, 1]).await;
        assert_eq!(up.promiscuity, 0);

        nl.fdb_add_self(up.index, mac).await.unwrap();
        nl.fdb_add_self(up.index, mac)
            .await
            .expect("repeated add is success");
        let shown = run("bridge", &["-n", ns.name(), "fdb", "show", "dev", &uplink]);
        assert!(
            shown.contains(&format!("{} self permanent", mac_to_string(&mac))),
            "{shown}"
        );
        let entries = nl.fdb_list(up.index).await.unwrap();
        assert!(
            entries.contains(&FdbEntry {
                mac,
                self_flag: true,
                permanent: true
            }),
            "{entries:?}"
        );
        // veth has no IFF_UNICAST_FLT: a secondary unicast address makes it promiscuous.
        assert_promiscuity(&nl, &ns, up.index, &uplink, 1).await;

        assert!(nl.fdb_del_self(up.index, mac).await.unwrap());
        assert!(
            !nl.fdb_del_self(up.index, mac).await.unwrap(),
            "second delete: already gone"
        );
        let shown = run("bridge", &["-n", ns.name(), "fdb", "show", "dev", &uplink]);
        assert!(!shown.contains(&mac_to_string(&mac)), "{shown}");
        assert!(!nl
            .fdb_list(up.index)
            .await
            .unwrap()
            .iter()
            .any(|e| e.mac == mac));
        assert_promiscuity(&nl, &ns, up.index, &uplink, 0).await;

        let err = nl
            .fdb_add_self(999_999, mac)
            .await
            .expect_err("no such device");
        assert_eq!(err.errno, Some(libc::ENODEV), "{err:?}");
        assert!(err.op.contains(&mac_to_string(&mac)), "{err}");
    });
}

#[test]
fn xdp_attach_and_detach_in_driver_and_generic_mode() {
    let ns = test_ns("xd");
    let a = ifname("vxnlx");
    let b = ifname("vxnly");
    let dir = TempDir::new("nlxdp");
    let obj = xdp_pass_object(dir.path(), "xdp_pass");

    let mut ebpf = aya::Ebpf::load_file(&obj).expect("load XDP object");
    let program: &mut aya::programs::Xdp = ebpf
        .program_mut("xdp_pass")
        .expect("xdp_pass in object")
        .try_into()
        .expect("an XDP program");
    program.load().expect("verifier accepts XDP_PASS");
    let prog_id = program.info().unwrap().id();
    let prog_fd = program.fd().unwrap();

    runtime().block_on(async {
        let nl = netlink_in(&ns);
        let (link, _) = local_veth(&nl, &ns, &a, &b, [0x02, 0, 0, 0, 0, 2]).await;
        assert_eq!(link.xdp, XdpState::default());

        // `ip -d link` names the mode on the first line and the program on the last.
        for (mode, attached, shown_as) in [
            (XdpMode::Driver, XdpAttached::Driver, " xdp "),
            (XdpMode::Generic, XdpAttached::Generic, " xdpgeneric "),
        ] {
            nl.xdp_attach(link.index, prog_fd.as_fd(), mode)
                .await
                .unwrap();
            let state = nl.link_by_index(link.index).await.unwrap().unwrap().xdp;
            assert_eq!(
                state,
                XdpState {
                    attached,
                    prog_id: Some(prog_id)
                },
                "{mode:?}"
            );
            assert_eq!(nl.xdp_query(link.index).await.unwrap(), Some(state));
            let shown = ns.ip(&format!("-d link show {a}"));
            let first_line = shown.lines().next().unwrap_or_default();
            assert!(first_line.contains(shown_as), "{mode:?}: {shown}");
            assert!(
                shown.contains(&format!("prog/xdp id {prog_id} ")),
                "{mode:?}: {shown}"
            );

            // Attaching again over netlink replaces (a pod may do the same).
            nl.xdp_attach(link.index, prog_fd.as_fd(), mode)
                .await
                .expect("re-attach replaces");

            nl.xdp_detach(link.index, mode).await.unwrap();
            let state = nl.link_by_index(link.index).await.unwrap().unwrap().xdp;
            assert_eq!(state, XdpState::default(), "{mode:?} after detach");
            let shown = ns.ip(&format!("-d link show {a}"));
            assert!(
                !shown.contains("prog/xdp") && !shown.contains(shown_as),
                "{mode:?} after detach: {shown}"
            );
        }

        let err = nl
            .xdp_attach(999_999, prog_fd.as_fd(), XdpMode::Driver)
            .await
            .expect_err("no such device");
        assert_eq!(err.errno, Some(libc::ENODEV), "{err:?}");
        assert!(err.op.contains("999999"), "{err}");
    });
}
