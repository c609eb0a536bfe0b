//! `#[repr(C)]` mirrors of `bpf/include/vx_shared.h`: the map keys and values
//! the programs and this crate exchange. Explicit padding, integers only, and a
//! size assertion per type; `tests/bpf_progs.rs` also checks the sizes against
//! the maps the kernel creates from the embedded object.

/// `VX_LAYOUT_VERSION`: part of the pin path (`<root>/v1/...`).
pub const LAYOUT_VERSION: u32 = 1;
/// `VX_ADDRS_PER_POD`: IPv4 (and IPv6) addresses per pod the address maps hold.
pub const ADDRS_PER_POD: u32 = 4;
/// `VX_MAX_NODE_ADDRS`.
pub const MAX_NODE_ADDRS: u32 = 256;
/// Counters key of the uplink in [`crate::bpf::counters_of`] and
/// [`crate::bpf::PodCounters::ifindex`] (ifindex 0 is never a device).
pub const UPLINK_KEY: u32 = 0;
/// `VX_UPLINK_SLOT`: the uplink's index in `vx_counters`.
/// Pods get slots `1..=max_pods` ([`VxPod::slot`]).
pub const UPLINK_SLOT: u32 = 0;

/// `VX_CFG_UPLINK_CAN_XMIT`: host-veth XDP may redirect to the uplink.
pub const CFG_UPLINK_CAN_XMIT: u32 = 1 << 0;
/// `VX_CFG_UPLINK_GENERIC`: the uplink program runs in generic mode.
pub const CFG_UPLINK_GENERIC: u32 = 1 << 1;

/// `struct vx_config`, the single entry of `vx_config`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VxConfig {
    pub uplink_ifindex: u32,
    pub flags: u32,
}

/// `struct vx_mac_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VxMacKey {
    pub addr: [u8; 6],
    pub pad: [u8; 2],
}

impl VxMacKey {
    pub fn new(addr: [u8; 6]) -> Self {
        Self { addr, pad: [0; 2] }
    }
}

/// `struct vx_in6_key` (network byte order).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VxIn6Key {
    pub addr: [u8; 16],
}

/// `struct vx_pod`: the value of every pod map.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VxPod {
    pub host_ifindex: u32,
    /// `1..=max_pods`: the pod's index in `vx_counters`.
    pub slot: u32,
    /// The pod's first IPv4 address (network order), 0 if none: the
    /// anti-spoofing check compares with it before looking up `vx_pod_v4`.
    pub ipv4: u32,
    pub host_mac: [u8; 6],
    pub pod_mac: [u8; 6],
}

/// `enum vx_counter_idx`: index into [`VxCounters::c`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum CounterIdx {
    RxRedirect = 0,
    TxUplink = 1,
    TxPod = 2,
    Pass = 3,
    DropSpoof = 4,
    DropMalformed = 5,
    RedirectFail = 6,
}

/// `VX_CNT_MAX`.
pub const COUNTER_SLOTS: usize = 7;

/// `struct vx_count`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VxCount {
    pub packets: u64,
    pub bytes: u64,
}

/// `struct vx_counters`: one CPU's counters of one slot.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VxCounters {
    pub c: [VxCount; COUNTER_SLOTS],
}

/// `struct vx_node_addr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VxNodeAddr {
    pub flags: u32,
}

/// `struct bpf_devmap_val` (the devmap value the kernel defines).
pub const DEVMAP_VAL_SIZE: u32 = 8;

const _: () = assert!(size_of::<VxConfig>() == 8);
const _: () = assert!(size_of::<VxMacKey>() == 8);
const _: () = assert!(size_of::<VxIn6Key>() == 16);
const _: () = assert!(size_of::<VxPod>() == 24);
const _: () = assert!(size_of::<VxCount>() == 16);
const _: () = assert!(size_of::<VxCounters>() == 16 * COUNTER_SLOTS);
const _: () = assert!(size_of::<VxNodeAddr>() == 4);

// SAFETY: all are repr(C), integers/byte arrays only, no implicit padding
// (sizes asserted above), so every bit pattern is valid.
unsafe impl aya::Pod for VxConfig {}
unsafe impl aya::Pod for VxMacKey {}
unsafe impl aya::Pod for VxIn6Key {}
unsafe impl aya::Pod for VxPod {}
unsafe impl aya::Pod for VxCount {}
unsafe impl aya::Pod for VxCounters {}
unsafe impl aya::Pod for VxNodeAddr {}
