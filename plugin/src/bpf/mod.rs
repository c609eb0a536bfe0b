//! The XDP/tc datapath: the embedded BPF object (C in `bpf/`, built by
//! `build.rs`), loaded once per node and pinned, then used per pod from pins.
//!
//! Pin layout (`BpfPaths`, default root `/sys/fs/bpf/veth-xdp`):
//! `<root>/v1/maps/<map>`, `<root>/v1/progs/<prog>`,
//! `<root>/v1/links/{uplink,<key>_xdp,<key>_tc}`. The `v1` is
//! `VX_LAYOUT_VERSION`; a build with another layout never opens these maps.
//!
//! API (errors are `anyhow` with context naming the map/program/pin and the
//! syscall; typed causes to downcast: [`PodMapError`]):
//! - node, under [`lock_node`]`(paths) -> DirLock` (the node lock: a flock on
//!   the pin root; [`teardown_node`] takes it itself):
//!   [`ensure_bpffs`]`(root)`, [`ensure_node`]`(paths, &NodeSpec) -> NodeStatus`
//!   (idempotent; reuses compatible pins, refuses incompatible ones; attaches the
//!   uplink program in driver mode, generic only if driver fails; pinned link),
//!   [`teardown_node`]`(paths)`, [`set_node_addrs`]`(paths, &[IpAddr])`.
//! - per pod (no verifier run): [`insert_pod`]`(paths, &PodDatapath)`,
//!   [`remove_pod`]`(paths, host_ifindex)`, [`attach_host_xdp`] /
//!   [`attach_host_tc`]`(paths, key, host_ifindex)`, [`detach_host`]`(paths, key)`,
//!   [`host_attachment`]`(paths, key) -> Option<Hook>`, [`pod_present`],
//!   [`pod_pass_program`]`(paths) -> OwnedFd` (attach it with IFLA_XDP so a pod
//!   can replace it).
//! - observation: [`read_counters`]`(paths) -> Vec<PodCounters>` (per-CPU sums;
//!   ifindex 0 = the uplink), [`counters_of`]`(paths, key)`.
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
mod maps;
mod node;
mod paths;
mod slots;
mod sys;
pub mod types;

pub use attach::{
    attach_host_tc, attach_host_xdp, detach_host, host_attachment, pod_pass_program, Hook,
};
pub use maps::{
    check_pinned, counters_of, insert_pod, max_entries, open_map, pod_entry, pod_present,
    read_counters, remove_pod, set_node_addrs, MapSpec, PodCounters, PodDatapath, PodMapError,
    MAP_SPECS,
};
pub use node::{
    ensure_node, lock_node, teardown_node, NodeSpec, NodeStatus, UplinkMode, LINK_UPLINK,
};
pub use paths::{ensure_bpffs, BpfPaths, BPFFS_MOUNT, DEFAULT_PIN_ROOT};
pub use sys::{pinned_link_info, LinkInfo, BPF_LINK_TYPE_TCX, BPF_LINK_TYPE_XDP};

/// The compiled object: `bpf/veth_xdp.c` with all programs and maps.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/veth_xdp.o"));

/// Program (function) names in the object.
pub const PROG_UPLINK: &str = "vx_uplink";
pub const PROG_HOST_XDP: &str = "vx_host_xdp";
pub const PROG_HOST_TC: &str = "vx_host_tc";
pub const PROG_POD_PASS: &str = "vx_pod_pass";
/// The XDP programs of the object.
pub const XDP_PROGRAMS: [&str; 3] = [PROG_UPLINK, PROG_HOST_XDP, PROG_POD_PASS];
