//! The `netdev` genetlink family (kernel >= 6.3): a device's `xdp-features`.
//!
//! A veth advertises `ndo-xmit` (it can receive XDP-redirected frames) only
//! while its peer has an XDP program or GRO on: that is how the plugin proves a
//! pod is ready for redirects.

use std::path::Path;

use anyhow::Result;

/// NETDEV_XDP_ACT_* bits, see include/uapi/linux/netdev.h.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpFeatures {
    pub basic: bool,
    pub redirect: bool,
    pub ndo_xmit: bool,
    pub xsk_zerocopy: bool,
    pub hw_offload: bool,
    pub rx_sg: bool,
    pub ndo_xmit_sg: bool,
    /// the raw bitmask
    pub raw: u64,
}

/// A netdev genetlink socket bound to one namespace.
pub struct Netdev {
    _private: (),
}

impl Netdev {
    pub fn current() -> Result<Self> {
        todo!("genl helper")
    }

    pub fn in_netns(path: &Path) -> Result<Self> {
        let _ = path;
        todo!("genl helper")
    }

    /// Ok(None) when the kernel has no netdev family (< 6.3).
    pub async fn xdp_features(&self, ifindex: u32) -> Result<Option<XdpFeatures>> {
        let _ = ifindex;
        todo!("genl helper")
    }
}
