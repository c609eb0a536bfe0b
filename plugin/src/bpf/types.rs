//! `#[repr(C)]` mirrors of `bpf/include/vx_shared.h`: the map keys and values
//! the programs and this crate exchange. Explicit padding, integers only, and a
//! size assertion per type; `tests/bpf_progs.rs` also checks the sizes against
//! the maps the kernel creates from the embedded object.

/// `VX_LAYOUT_VERSION`: part of the pin path (`<root>/v2/...`).
pub const LAYOUT_VERSION: u32 = 2;
/// `VX_ADDRS_PER_POD`: IPv4 (and IPv6) addresses per pod the address maps hold.
pub const ADDRS_PER_POD: u32 = 4;
/// `VX_MAX_NODE_ADDRS`.
pub const MAX_NODE_ADDRS: u32 = 256;
/// `VX_MAX_SERVICE_CIDRS`: service prefixes per family.
pub const MAX_SERVICE_CIDRS: usize = 4;
/// `VX_MAX_FLOWS`: size of the LRU of flows the stack must see.
pub const MAX_FLOWS: u32 = 65536;
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
/// `VX_CFG_SERVICES`: `vx_services` holds a prefix; pods' frames to it go to
/// the stack, and NATed flows are tracked.
pub const CFG_SERVICES: u32 = 1 << 2;

/// `struct vx_config`, the single entry of `vx_config`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VxConfig {
    pub uplink_ifindex: u32,
    pub flags: u32,
    /// frames handed to the stack from the wire are readdressed to it
    pub uplink_mac: [u8; 6],
    pub pad: [u8; 2],
}

/// `struct vx_prefix`: `addr & mask == addr`, network-order words (IPv4:
/// word 0); `prefix_len` 0 = unused.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VxPrefix {
    pub addr: [u32; 4],
    pub mask: [u32; 4],
    pub prefix_len: u32,
}

/// `struct vx_services`, the single entry of `vx_services`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VxServices {
    pub v4: [VxPrefix; MAX_SERVICE_CIDRS],
    pub v6: [VxPrefix; MAX_SERVICE_CIDRS],
}

impl VxServices {
    /// The service ranges as the programs compare them; at most
    /// [`MAX_SERVICE_CIDRS`] per family (the config parser enforces it; extra
    /// ones are ignored here).
    pub fn from_cidrs(cidrs: &[ipnetwork::IpNetwork]) -> Self {
        let mut out = Self::default();
        let (mut n4, mut n6) = (0, 0);
        for net in cidrs {
            let (slot, words) = match net {
                ipnetwork::IpNetwork::V4(_) if n4 < MAX_SERVICE_CIDRS => {
                    n4 += 1;
                    (&mut out.v4[n4 - 1], 1)
                }
                ipnetwork::IpNetwork::V6(_) if n6 < MAX_SERVICE_CIDRS => {
                    n6 += 1;
                    (&mut out.v6[n6 - 1], 4)
                }
                _ => continue,
            };
            *slot = VxPrefix::of(net, words);
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.v4.iter().chain(&self.v6).all(|p| p.prefix_len == 0)
    }
}

impl VxPrefix {
    /// The first `words` network-order u32 words of the address and mask (1
    /// for IPv4). `prefix_len` doubles as "in use", so a /0 is not a prefix
    /// here (the config parser refuses it).
    fn of(net: &ipnetwork::IpNetwork, words: usize) -> Self {
        let (addr, mask): ([u8; 16], [u8; 16]) = match net {
            ipnetwork::IpNetwork::V4(n) => (
                n.network().to_ipv6_mapped().octets(),
                n.mask().to_ipv6_mapped().octets(),
            ),
            ipnetwork::IpNetwork::V6(n) => (n.network().octets(), n.mask().octets()),
        };
        // IPv4 sits in the last word of the mapped form.
        let first = if words == 1 { 3 } else { 0 };
        let word = |b: &[u8; 16], i: usize| {
            let at = 4 * (first + i);
            u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
        };
        let mut p = Self {
            prefix_len: u32::from(net.prefix()),
            ..Self::default()
        };
        for i in 0..words {
            p.addr[i] = word(&addr, i);
            p.mask[i] = word(&mask, i);
        }
        p
    }
}

/// `VX_POD_ALLOW_ROUTER`: the pod may send RAs, redirects, DHCP server frames.
pub const POD_ALLOW_ROUTER: u32 = 1 << 0;
/// `VX_POD_ALLOW_ETHERTYPES`: the pod may send any ethertype, VLAN tags included.
pub const POD_ALLOW_ETHERTYPES: u32 = 1 << 1;
/// `VX_POD_STACK_FLOWS`: set by the programs once a flow of the pod is in `vx_flows`.
pub const POD_STACK_FLOWS: u32 = 1 << 2;

/// `struct vx_flow_key`: one side of a TCP/UDP flow, seen from the pod.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VxFlowKey {
    pub pod_ip: [u8; 16],
    pub peer_ip: [u8; 16],
    pub pod_port: u16,
    pub peer_port: u16,
    pub proto: u8,
    pub pad: [u8; 3],
}

/// `struct vx_flow`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VxFlow {
    pub reason: u32,
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
    /// `VX_POD_*`
    pub flags: u32,
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
    /// PASS split by reason; PASS minus these three is "other".
    PassNode = 7,
    PassService = 8,
    PassNatReturn = 9,
    DropEthertype = 10,
    DropRouter = 11,
    /// on slot 0: frames on a host veth without a pod record
    DropNoPod = 12,
}

/// `VX_CNT_MAX`.
pub const COUNTER_SLOTS: usize = 13;

impl CounterIdx {
    /// Every counter, in index order.
    pub const ALL: [CounterIdx; COUNTER_SLOTS] = [
        Self::RxRedirect,
        Self::TxUplink,
        Self::TxPod,
        Self::Pass,
        Self::DropSpoof,
        Self::DropMalformed,
        Self::RedirectFail,
        Self::PassNode,
        Self::PassService,
        Self::PassNatReturn,
        Self::DropEthertype,
        Self::DropRouter,
        Self::DropNoPod,
    ];
}

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

const _: () = assert!(size_of::<VxConfig>() == 16);
const _: () = assert!(size_of::<VxPrefix>() == 36);
const _: () = assert!(size_of::<VxServices>() == 36 * 2 * MAX_SERVICE_CIDRS);
const _: () = assert!(size_of::<VxFlowKey>() == 40);
const _: () = assert!(size_of::<VxFlow>() == 4);
const _: () = assert!(size_of::<VxMacKey>() == 8);
const _: () = assert!(size_of::<VxIn6Key>() == 16);
const _: () = assert!(size_of::<VxPod>() == 28);
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
unsafe impl aya::Pod for VxPrefix {}
unsafe impl aya::Pod for VxServices {}
unsafe impl aya::Pod for VxFlowKey {}
unsafe impl aya::Pod for VxFlow {}
