//! The XDP/tc datapath: the embedded BPF object (C in `bpf/`, built by
//! `build.rs`), loaded once per node and pinned, then used per pod from pins.
//!
//! Pin layout (`BpfPaths`, default root `/sys/fs/bpf/veth-xdp`):
//! `<root>/v2/maps/<map>`, `<root>/v2/progs/<prog>`,
//! `<root>/v2/links/{uplink,<key>_xdp,<key>_tc,<key>_egress}`. The `v2` is
//! `VX_LAYOUT_VERSION`; a build with another layout never opens these maps.
//!
//! API (every error is one [`Error`], whose variants name the operation and
//! the object and match the cases callers handle: [`Error::Full`],
//! [`Error::InUse`], [`Error::KernelTooOld`]; [`Error::errno`] reads a
//! syscall's errno):
//! - node, under [`lock_node`]`(paths) -> DirLock` (the node lock: a flock on
//!   the pin root): [`ensure_bpffs`]`(root)`,
//!   [`ensure_node`]`(paths, &NodeSpec) -> NodeStatus` (idempotent; reuses
//!   compatible pins, refuses incompatible ones; attaches the uplink program in
//!   driver mode, generic only if driver fails; pinned link);
//!   [`teardown_node`]`(paths)` takes the node lock itself.
//! - maps: [`Maps::open`]`(paths)` opens every pinned map once into typed
//!   handles ([`Maps::open_existing`]: None when nothing is pinned, for DEL);
//!   then `maps.`[`insert_pod`](Maps::insert_pod)`(&PodDatapath)`,
//!   [`remove_pod`](Maps::remove_pod)`(host_ifindex)`,
//!   [`pod_entry`](Maps::pod_entry) / [`pod_present`](Maps::pod_present),
//!   [`set_node_addrs`](Maps::set_node_addrs)`(&[IpAddr])`,
//!   [`read_counters`](Maps::read_counters)`() -> Vec<PodCounters>` (per-CPU
//!   sums; ifindex 0 = the uplink), [`counters_of`](Maps::counters_of)`(key)`.
//!   Pod slots change under a flock on the maps' pin directory, so pods are
//!   added and removed in parallel. The map ABI: [`MAP_SPECS`],
//!   [`max_entries`], [`check_pinned`]; [`open_map`] for one untyped handle.
//! - per-pod attachments (no verifier run): [`attach_host_xdp`] /
//!   [`attach_host_tc`] / [`attach_host_egress`]`(paths, key, host_ifindex)`
//!   (the last on networks with service ranges: it remembers the flows the
//!   stack delivers), [`detach_host`]`(paths, key)`, [`host_egress_attachment`],
//!   [`host_attachment`]`(paths, key) -> Option<Hook>`,
//!   [`pinned_link_info`]`(pin) -> LinkInfo`,
//!   [`pod_pass_program`]`(paths) -> ProgramFd` (attach it with IFLA_XDP so a
//!   pod can replace it).
//!
//! Programs, maps and links go through aya; `sys.rs` has the few bpf(2)
//! commands aya 0.14 lacks (link detach, a link's ifindex, batched lookup).
//!
//! Netns: `ensure_node`, `insert_pod` and `attach_host_*` resolve ifindexes in
//! the calling thread's netns (devmap updates and attaches do): call them from
//! the node's netns. Pins are per bpffs mount, not per netns.
//!
//! Datapath (see bpf/README.md): `vx_uplink` on the uplink redirects frames for
//! pod MACs and ARP/NS for pod addresses into the pod's host veth; `vx_host_xdp`
//! (or `vx_host_tc`) on each host veth drops spoofed sources and sends the rest
//! to a local pod, the node (PASS) or the uplink. Redirect targets are the
//! devmap `vx_redirect`; the config flag `CFG_UPLINK_CAN_XMIT` (from
//! `NodeSpec::uplink_can_xmit`) selects XDP redirect to the uplink or the tc
//! fallback (attach `vx_host_tc` too on each host veth when it is false).

mod attach;
mod counters;
mod error;
mod links;
mod maps;
mod node;
mod node_addrs;
mod paths;
mod pods;
mod spec;
mod sys;
pub mod types;

pub use attach::{
    attach_host_egress, attach_host_readdressed, attach_host_tc, attach_host_xdp, detach_host,
    host_attachment, host_egress_attachment, pod_pass_program, Hook,
};
pub use counters::PodCounters;
pub use error::Error;
pub use links::pinned_link_info;
pub use maps::{open_map, Maps};
pub use node::{
    ensure_node, lock_node, teardown_node, NodeSpec, NodeStatus, UplinkMode, LINK_UPLINK,
    LINK_UPLINK_READDRESSED,
};
pub use paths::{ensure_bpffs, BpfPaths, BPFFS_MOUNT, DEFAULT_PIN_ROOT};
pub use pods::PodDatapath;
pub use spec::{check_pinned, max_entries, MapSpec, MAP_SPECS};
pub use sys::{LinkInfo, BPF_LINK_TYPE_TCX, BPF_LINK_TYPE_XDP};

/// The compiled object: `bpf/veth_xdp.c` with all programs and maps.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/veth_xdp.o"));

/// Program (function) names in the object.
pub const PROG_UPLINK: &str = "vx_uplink";
pub const PROG_HOST_XDP: &str = "vx_host_xdp";
pub const PROG_HOST_TC: &str = "vx_host_tc";
pub const PROG_POD_PASS: &str = "vx_pod_pass";
/// The host veth's tcx egress program (stack -> pod flow tracking).
pub const PROG_HOST_EGRESS: &str = "vx_host_egress";
/// The tcx ingress program that restores PACKET_HOST on frames an XDP
/// program readdressed to the stack (veth skb path, see bpf/lib/hook_tc.h).
pub const PROG_READDRESSED: &str = "vx_readdressed";
/// The tc programs of the object.
pub const TC_PROGRAMS: [&str; 3] = [PROG_HOST_TC, PROG_HOST_EGRESS, PROG_READDRESSED];
/// The XDP programs of the object.
pub const XDP_PROGRAMS: [&str; 3] = [PROG_UPLINK, PROG_HOST_XDP, PROG_POD_PASS];
