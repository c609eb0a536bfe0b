//! What an attachment must look like: the offload settings of each end. ADD
//! applies this, CHECK verifies it, so the two can never disagree.
//!
//! Why: XDP cannot see offloaded checksums or VLAN tags (the talk's "Usage"
//! slide), so tx checksum and tx-vlan offload go off on both veth ends, and
//! rx-vlan offload off on the uplink. GRO on the pod end is what makes
//! XDP-redirected frames arrive there at all: it enables the veth's NAPI since
//! 5.13 (d3256efd8e8b); without it (and without an XDP program) the frames are
//! dropped silently. Since 6.9 (d7db7775ea2e) attaching XDP no longer turns GRO
//! on by itself, so it is requested explicitly.

use crate::egress::EgressMode;

pub const TX_CSUM_IP: &str = "tx-checksum-ip-generic";
pub const TX_CSUM_SCTP: &str = "tx-checksum-sctp";
pub const TX_VLAN: &str = "tx-vlan-hw-insert";
pub const RX_VLAN: &str = "rx-vlan-hw-parse";
/// 802.1ad (S-tag) offloads: as invisible to XDP as 802.1Q ones; veth has both on by default.
pub const TX_VLAN_STAG: &str = "tx-vlan-stag-hw-insert";
pub const RX_VLAN_STAG: &str = "rx-vlan-stag-hw-parse";
pub const RX_GRO: &str = "rx-gro";

/// The host end: XDP (xdp mode) or tc reads what the pod sends; what the node
/// sends through it must carry full checksums and inline VLAN tags. In `tc`
/// mode nothing XDP runs on the host end, so frames a pod sends with
/// XDP_TX/redirect (xdp_frames) would be dropped there silently without GRO,
/// which gives the host end the NAPI that turns them into skbs for tc.
pub fn host_end_features(mode: EgressMode) -> Vec<(&'static str, bool)> {
    let mut f = vec![
        (TX_CSUM_IP, false),
        (TX_CSUM_SCTP, false),
        (TX_VLAN, false),
        (TX_VLAN_STAG, false),
    ];
    if mode == EgressMode::Tc {
        f.push((RX_GRO, true));
    }
    f
}

/// The pod end. In `tc` egress mode the pod keeps tx checksum offload (and so
/// TSO/GSO): its skbs are redirected by tc, which handles CHECKSUM_PARTIAL.
pub fn pod_end_features(mode: EgressMode) -> Vec<(&'static str, bool)> {
    match mode {
        EgressMode::Xdp => {
            vec![
                (TX_CSUM_IP, false),
                (TX_CSUM_SCTP, false),
                (TX_VLAN, false),
                (TX_VLAN_STAG, false),
                (RX_GRO, true),
            ]
        }
        EgressMode::Tc => vec![(TX_VLAN, false), (TX_VLAN_STAG, false), (RX_GRO, true)],
    }
}

/// The uplink (idempotent, node-wide): VLAN tags stay in the frame for XDP.
pub fn uplink_features() -> Vec<(&'static str, bool)> {
    vec![(RX_VLAN, false), (RX_VLAN_STAG, false)]
}

/// Why a feature matters, for CHECK's messages.
pub fn why(feature: &str) -> &'static str {
    match feature {
        RX_GRO => "redirected frames are dropped without GRO (or an XDP program) on the pod end",
        TX_CSUM_IP | TX_CSUM_SCTP => "XDP never fills in offloaded checksums",
        TX_VLAN | RX_VLAN | TX_VLAN_STAG | RX_VLAN_STAG => {
            "offloaded VLAN tags are invisible to XDP"
        }
        _ => "required by the datapath",
    }
}
