//! The BPF program lab: the datapath pinned under a pin root of its own
//! inside a test namespace (`BpfNode`), the standard two-pod `Lab` with the
//! object's programs loaded against those pins, and BPF_PROG_TEST_RUN wrappers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use aya::programs::{SchedClassifier, TestRun, TestRunOptions, Xdp};
use aya::{Ebpf, EbpfLoader};
use veth_xdp::bpf::{self, BpfPaths, NodeSpec, NodeStatus, PodDatapath};

use super::ns::Netns;

// Kernel UAPI return codes (enum xdp_action, TC_ACT_*), not the library's.
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;
pub const TC_ACT_OK: u32 = 0;
pub const TC_ACT_SHOT: u32 = 2;
pub const TC_ACT_REDIRECT: u32 = 7;

/// A test namespace (IPv6 off) with a pin root of its own under bpffs. On
/// drop the node's datapath is torn down (links detached first, so nothing
/// stays attached), then the pin root and the namespace are removed.
pub struct BpfNode {
    pub ns: Netns,
    pub paths: BpfPaths,
}

impl BpfNode {
    pub fn new(tag: &str) -> Self {
        assert!(nix::unistd::geteuid().is_root(), "BPF tests need root");
        let ns = Netns::new(tag).without_ipv6();
        let root = PathBuf::from(bpf::BPFFS_MOUNT).join(ns.name());
        let _ = std::fs::remove_dir_all(&root);
        bpf::ensure_bpffs(&root).expect("bpffs");
        Self {
            ns,
            paths: BpfPaths::new(root),
        }
    }

    /// insert_pod from inside the netns: the devmap resolves ifindexes in the
    /// caller's netns, as the plugin's does in the node's.
    pub fn insert_pod(&self, pod: &PodDatapath) -> Result<(), bpf::Error> {
        self.ns
            .enter(|| bpf::Maps::open(&self.paths)?.insert_pod(pod))
    }

    pub fn ensure_node(&self, spec: &NodeSpec) -> NodeStatus {
        self.ns
            .enter(|| bpf::ensure_node(&self.paths, spec))
            .expect("ensure_node")
    }
}

impl Drop for BpfNode {
    fn drop(&mut self) {
        if super::keep_state(&self.paths.root().display()) {
            return;
        }
        if let Err(e) = bpf::teardown_node(&self.paths) {
            eprintln!("teardown_node: {e:#}");
        }
        let _ = std::fs::remove_dir_all(self.paths.root());
    }
}

pub const UPLINK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x01];
pub const WIRE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xaa, 0x02];
pub const GATEWAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xbb, 0x01];
pub const NODE_V4: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
pub const NODE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
pub const OTHER_V4: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 99);
pub const OTHER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x99);

/// One pod of the lab: its datapath entry and the names of its veth ends.
#[derive(Debug, Clone)]
pub struct LabPod {
    pub dp: PodDatapath,
    pub host_dev: String,
}

impl LabPod {
    pub fn ifindex(&self) -> u32 {
        self.dp.host_ifindex
    }
    pub fn mac(&self) -> [u8; 6] {
        self.dp.pod_mac
    }
    pub fn host_mac(&self) -> [u8; 6] {
        self.dp.host_mac
    }
    pub fn v4(&self) -> Ipv4Addr {
        self.dp.ipv4s[0]
    }
    pub fn v6(&self) -> Ipv6Addr {
        self.dp.ipv6s[0]
    }
}

/// The standard lab: uplink veth `up0` (peer `up1`), pods 1 and 2 on host
/// veths `h1`/`h2`, a host veth `h3` without a pod, node addresses set, and
/// the object's programs loaded against the pinned maps for test runs.
pub struct Lab {
    // Dropped first: program fds before the node tears the pins down.
    pub progs: Ebpf,
    pub uplink: u32,
    pub pod1: LabPod,
    pub pod2: LabPod,
    pub stray: u32,
    pub status: NodeStatus,
    pub node: BpfNode,
}

fn lab_pod(node: &BpfNode, n: u8) -> LabPod {
    let host_mac = [0x02, 0, 0, 0, n, 0x01];
    let pod_mac = [0x02, 0, 0, 0, n, 0x02];
    let host_dev = format!("h{n}");
    let (host_ifindex, _) = node.ns.veth(&host_dev, host_mac, &format!("p{n}"), pod_mac);
    LabPod {
        dp: PodDatapath {
            host_ifindex,
            host_mac,
            pod_mac,
            ipv4s: vec![Ipv4Addr::new(10, 10, 0, 10 + n)],
            ipv6s: vec![Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10 + u16::from(n))],
            allow: 0,
        },
        host_dev,
    }
}

impl Lab {
    pub fn new(abbr: &str, uplink_can_xmit: bool) -> Self {
        let node = BpfNode::new(abbr);
        let (uplink, _) = node.ns.veth("up0", UPLINK_MAC, "up1", WIRE_MAC);
        // Wire end down: the uplink program is live, nothing may reach it but test runs.
        node.ns.ip("link set up1 down");
        let status = node.ensure_node(&NodeSpec {
            uplink_ifindex: uplink,
            uplink_can_xmit,
            max_pods: 16,
            ..Default::default()
        });
        let pod1 = lab_pod(&node, 1);
        let pod2 = lab_pod(&node, 2);
        let (stray, _) = node
            .ns
            .veth("h3", [0x02, 0, 0, 0, 3, 1], "p3", [0x02, 0, 0, 0, 3, 2]);
        node.insert_pod(&pod1.dp).expect("insert pod1");
        node.insert_pod(&pod2.dp).expect("insert pod2");
        bpf::Maps::open(&node.paths)
            .and_then(|mut maps| maps.set_node_addrs(&[IpAddr::V4(NODE_V4), IpAddr::V6(NODE_V6)]))
            .expect("node addrs");
        let progs = load_programs(&node.paths);
        Self {
            progs,
            uplink,
            pod1,
            pod2,
            stray,
            status,
            node,
        }
    }

    pub fn paths(&self) -> &BpfPaths {
        &self.node.paths
    }

    fn xdp(&self, name: &str) -> &Xdp {
        self.progs
            .program(name)
            .expect("program")
            .try_into()
            .expect("xdp program")
    }

    /// Runs the uplink program on `frame` (arriving on the uplink).
    pub fn run_uplink(&self, frame: &[u8]) -> u32 {
        let prog = self.xdp(bpf::PROG_UPLINK);
        self.node
            .ns
            .enter(|| test_run_xdp(prog, frame, self.uplink))
    }

    /// Runs the host-veth XDP program on `frame` sent by the pod behind `ifindex`.
    pub fn run_host_xdp(&self, ifindex: u32, frame: &[u8]) -> u32 {
        let prog = self.xdp(bpf::PROG_HOST_XDP);
        self.node.ns.enter(|| test_run_xdp(prog, frame, ifindex))
    }

    fn tc(&self, name: &str) -> &SchedClassifier {
        self.progs
            .program(name)
            .expect("tc program")
            .try_into()
            .expect("sched_cls")
    }

    /// Runs the tc program on `frame` as an skb arriving on `ifindex`.
    pub fn run_host_tc(&self, ifindex: u32, frame: &[u8]) -> u32 {
        let prog = self.tc(bpf::PROG_HOST_TC);
        self.node.ns.enter(|| test_run_tc(prog, frame, ifindex))
    }

    /// `run_uplink`, `run_host_xdp` and `run_host_tc` with the frame as the
    /// program left it: `hook` is "uplink", "xdp" or "tc".
    pub fn run_out(&self, hook: &str, ifindex: u32, frame: &[u8]) -> (u32, Vec<u8>) {
        self.node.ns.enter(|| match hook {
            "uplink" => test_run_xdp_out(self.xdp(bpf::PROG_UPLINK), frame, self.uplink),
            "xdp" => test_run_xdp_out(self.xdp(bpf::PROG_HOST_XDP), frame, ifindex),
            _ => test_run_tc_out(self.tc(bpf::PROG_HOST_TC), frame, ifindex, 0),
        })
    }

    /// Runs the host veth's egress program on `frame` leaving through
    /// `ifindex` (the stack delivering it to the pod), with skb `mark`.
    pub fn run_host_egress(&self, ifindex: u32, frame: &[u8], mark: u32) -> u32 {
        let prog = self.tc(bpf::PROG_HOST_EGRESS);
        self.node
            .ns
            .enter(|| test_run_tc_out(prog, frame, ifindex, mark).0)
    }

    /// Configures the node's service ranges (as ADD does from `serviceCIDRs`).
    pub fn set_services(&self, cidrs: &[&str]) {
        let cidrs: Vec<ipnetwork::IpNetwork> = cidrs.iter().map(|c| c.parse().unwrap()).collect();
        self.node.ensure_node(&NodeSpec {
            uplink_ifindex: self.uplink,
            uplink_mac: UPLINK_MAC,
            uplink_can_xmit: true,
            max_pods: 16,
            services: bpf::types::VxServices::from_cidrs(&cidrs),
            uplink_is_veth: false,
        });
    }

    /// Packets of counter `idx` of `key` (host ifindex, or 0 = uplink).
    pub fn count(&self, key: u32, idx: bpf::types::CounterIdx) -> u64 {
        bpf::Maps::open(self.paths())
            .and_then(|maps| maps.counters_of(key))
            .expect("counters")
            .map(|c| c.packets(idx))
            .unwrap_or(0)
    }

    /// All counters of `key` as (idx, packets) pairs that are non-zero.
    pub fn nonzero(&self, key: u32) -> Vec<(bpf::types::CounterIdx, u64)> {
        bpf::types::CounterIdx::ALL
            .into_iter()
            .map(|i| (i, self.count(key, i)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// Loads the object's programs against the maps pinned under `paths`
/// (aya reuses pinned maps by name), so test runs see the node's maps.
pub fn load_programs(paths: &BpfPaths) -> Ebpf {
    let mut ebpf = EbpfLoader::new()
        .default_map_pin_directory(paths.maps_dir())
        .load(bpf::OBJECT)
        .expect("load object against pinned maps");
    for name in bpf::XDP_PROGRAMS {
        let p: &mut Xdp = ebpf.program_mut(name).unwrap().try_into().unwrap();
        p.load().unwrap_or_else(|e| panic!("load {name}: {e:?}"));
    }
    for name in bpf::TC_PROGRAMS {
        let tc: &mut SchedClassifier = ebpf.program_mut(name).unwrap().try_into().unwrap();
        tc.load().unwrap_or_else(|e| panic!("load {name}: {e:?}"));
    }
    ebpf
}

/// BPF_PROG_TEST_RUN of an XDP program with `xdp_md.ingress_ifindex` set
/// (the device must exist in the calling thread's netns); its verdict.
pub fn test_run_xdp(prog: &Xdp, frame: &[u8], ingress_ifindex: u32) -> u32 {
    cost_xdp(prog, frame, ingress_ifindex, 1, 1).0
}

/// BPF_PROG_TEST_RUN of an XDP program: its verdict and the frame as the
/// program left it.
pub fn test_run_xdp_out(prog: &Xdp, frame: &[u8], ingress_ifindex: u32) -> (u32, Vec<u8>) {
    let words = [0u32, frame.len() as u32, 0, ingress_ifindex, 0, 0];
    let ctx: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let mut out = vec![0u8; frame.len() + 256];
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ctx_in: Some(&ctx),
        ..TestRunOptions::default()
    };
    let r = prog.test_run(opts).expect("BPF_PROG_TEST_RUN (xdp)");
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

/// Nanoseconds per run of an XDP program on `frame` (BPF_PROG_TEST_RUN
/// repeat: the kernel times the program alone, redirect lookups included,
/// no transmit), best of `rounds` rounds of `repeat` runs; and its verdict.
pub fn cost_xdp(
    prog: &Xdp,
    frame: &[u8],
    ingress_ifindex: u32,
    repeat: u32,
    rounds: u32,
) -> (u32, u64) {
    // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index,
    // egress_ifindex }: data_end must equal the frame length.
    let words = [0u32, frame.len() as u32, 0, ingress_ifindex, 0, 0];
    let ctx: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let mut best = u64::MAX;
    let mut verdict = 0;
    for _ in 0..rounds {
        let opts = TestRunOptions {
            data_in: Some(frame),
            ctx_in: Some(&ctx),
            repeat,
            ..TestRunOptions::default()
        };
        let r = prog.test_run(opts).expect("BPF_PROG_TEST_RUN (xdp)");
        verdict = r.return_value;
        best = best.min(r.duration.as_nanos() as u64);
    }
    (verdict, best)
}

/// BPF_PROG_TEST_RUN of a sched_cls program with `__sk_buff.ifindex` set
/// (the kernel then builds the skb on that device).
pub fn test_run_tc(prog: &SchedClassifier, frame: &[u8], ifindex: u32) -> u32 {
    test_run_tc_out(prog, frame, ifindex, 0).0
}

/// BPF_PROG_TEST_RUN of a sched_cls program with `__sk_buff.ifindex` and
/// `mark` set: its verdict and the frame as the program left it.
pub fn test_run_tc_out(
    prog: &SchedClassifier,
    frame: &[u8],
    ifindex: u32,
    mark: u32,
) -> (u32, Vec<u8>) {
    let mut ctx = vec![0u8; 192]; // sizeof(struct __sk_buff)
    ctx[8..12].copy_from_slice(&mark.to_ne_bytes()); // offsetof(mark)
    ctx[40..44].copy_from_slice(&ifindex.to_ne_bytes()); // offsetof(ifindex)
    let mut out = vec![0u8; frame.len() + 256];
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ctx_in: Some(&ctx),
        ..TestRunOptions::default()
    };
    let r = prog.test_run(opts).expect("BPF_PROG_TEST_RUN (tc)");
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

/// The redirect targets (ifindexes) in the devmap `vx_redirect`, sorted.
pub fn devmap_targets(paths: &BpfPaths) -> Vec<u32> {
    let devmap =
        aya::maps::DevMapHash::try_from(bpf::open_map(paths, "vx_redirect").unwrap()).unwrap();
    let mut targets: Vec<u32> = devmap.keys().map(Result::unwrap).collect();
    targets.sort();
    targets
}

/// The slot of the pod on host veth `ifindex` (panics if it has no record).
pub fn slot_of(paths: &BpfPaths, ifindex: u32) -> u32 {
    bpf::Maps::open(paths)
        .and_then(|maps| maps.pod_entry(ifindex))
        .unwrap()
        .unwrap_or_else(|| panic!("no pod record for ifindex {ifindex}"))
        .slot
}
