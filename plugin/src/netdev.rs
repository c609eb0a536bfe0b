//! The `netdev` genetlink family (kernel >= 6.3): a device's `xdp-features`.
//!
//! A veth advertises `ndo-xmit` (it can receive XDP-redirected frames) only
//! while its peer has an XDP program or GRO on: that is how the plugin proves a
//! pod is ready for redirects (drivers/net/veth.c `veth_set_xdp_features`, since
//! 6.3, commit fccca038f300 "veth: take into account device reconfiguration for
//! xdp_features flag"; the peer check was fixed right after in 6.3-rc).

use std::path::Path;

use futures::StreamExt;
use genetlink::{GenetlinkError, GenetlinkHandle};
use netlink_packet_core::{
    parse_u64, DecodeError, DefaultNla, Emitable, NetlinkMessage, NetlinkPayload, NlasIterator,
    NLM_F_REQUEST,
};
use netlink_packet_generic::GenlMessage;

use crate::genl::{genetlink_error, GenlError};

/// A netdev genetlink operation failed (xdp-features).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct NetdevError(#[from] pub GenlError);

type Result<T, E = NetdevError> = std::result::Result<T, E>;

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

impl XdpFeatures {
    pub fn from_bits(raw: u64) -> Self {
        let has = |bit: u64| raw & bit != 0;
        Self {
            basic: has(NETDEV_XDP_ACT_BASIC),
            redirect: has(NETDEV_XDP_ACT_REDIRECT),
            ndo_xmit: has(NETDEV_XDP_ACT_NDO_XMIT),
            xsk_zerocopy: has(NETDEV_XDP_ACT_XSK_ZEROCOPY),
            hw_offload: has(NETDEV_XDP_ACT_HW_OFFLOAD),
            rx_sg: has(NETDEV_XDP_ACT_RX_SG),
            ndo_xmit_sg: has(NETDEV_XDP_ACT_NDO_XMIT_SG),
            raw,
        }
    }
}

/// A netdev genetlink socket bound to one namespace.
pub struct Netdev {
    handle: GenetlinkHandle,
}

impl Netdev {
    pub fn current() -> Result<Self> {
        let handle = crate::genl::connect(None, genetlink::new_connection, "netdev")?;
        Ok(Self { handle })
    }

    /// A socket in the namespace at `path`.
    pub fn in_netns(path: &Path) -> Result<Self> {
        let handle = crate::genl::connect(Some(path), genetlink::new_connection, "netdev")?;
        Ok(Self { handle })
    }

    /// Ok(None) when the kernel has no netdev family (< 6.3).
    pub async fn xdp_features(&self, ifindex: u32) -> Result<Option<XdpFeatures>> {
        let op = || format!("netdev DEV_GET ifindex {ifindex}");
        let mut genl = self.handle.clone();
        match genl.resolve_family::<DevMsg>().await {
            Ok(_) => {}
            // CTRL_CMD_GETFAMILY answers ENOENT for an unknown family.
            Err(GenetlinkError::NetlinkError(io)) if io.raw_os_error() == Some(libc::ENOENT) => {
                return Ok(None)
            }
            Err(e) => {
                return Err(genetlink_error("resolve genetlink family \"netdev\"".into(), e).into())
            }
        }
        let mut nl = NetlinkMessage::from(GenlMessage::from_payload(DevMsg::get(ifindex)));
        nl.header.flags = NLM_F_REQUEST;
        let mut replies = genl
            .request(nl)
            .await
            .map_err(|e| genetlink_error(op(), e))?;
        let mut features = None;
        while let Some(reply) = replies.next().await {
            match reply.map_err(|e| GenlError::reply(op(), e))?.payload {
                NetlinkPayload::InnerMessage(msg) => {
                    let raw = xdp_features_attr(&msg.payload.attrs)
                        .map_err(|e| GenlError::reply(op(), e))?;
                    features = Some(XdpFeatures::from_bits(raw));
                }
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(GenlError::io(op(), e.to_io()).into());
                }
                _ => {}
            }
        }
        features
            .map(Some)
            .ok_or_else(|| GenlError::reply(op(), "no reply").into())
    }
}

fn xdp_features_attr(attrs: &[u8]) -> Result<u64, DecodeError> {
    for nla in NlasIterator::new(attrs) {
        let nla = nla?;
        if nla.kind() == NETDEV_A_DEV_XDP_FEATURES {
            return parse_u64(nla.value());
        }
    }
    Err(DecodeError::from("reply has no NETDEV_A_DEV_XDP_FEATURES"))
}

// include/uapi/linux/netdev.h (not in linux-libc-dev 6.1; checked against the
// kernel's uapi header).
const NETDEV_FAMILY_NAME: &str = "netdev";
const NETDEV_FAMILY_VERSION: u8 = 1;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_XDP_ACT_BASIC: u64 = 1;
const NETDEV_XDP_ACT_REDIRECT: u64 = 2;
const NETDEV_XDP_ACT_NDO_XMIT: u64 = 4;
const NETDEV_XDP_ACT_XSK_ZEROCOPY: u64 = 8;
const NETDEV_XDP_ACT_HW_OFFLOAD: u64 = 16;
const NETDEV_XDP_ACT_RX_SG: u64 = 32;
const NETDEV_XDP_ACT_NDO_XMIT_SG: u64 = 64;

crate::genl::raw_genl_message!(
    /// A netdev DEV_GET request or reply: the command and its encoded attributes.
    DevMsg, NETDEV_FAMILY_NAME, NETDEV_FAMILY_VERSION);

impl DevMsg {
    fn get(ifindex: u32) -> Self {
        let ifindex = [DefaultNla::new(
            NETDEV_A_DEV_IFINDEX,
            ifindex.to_ne_bytes().to_vec(),
        )];
        let mut attrs = vec![0u8; ifindex.as_slice().buffer_len()];
        ifindex.as_slice().emit(&mut attrs);
        Self {
            cmd: NETDEV_CMD_DEV_GET,
            attrs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_map_to_fields() {
        let f = XdpFeatures::from_bits(1 | 2 | 32);
        assert!(f.basic && f.redirect && f.rx_sg);
        assert!(!f.ndo_xmit && !f.ndo_xmit_sg && !f.xsk_zerocopy && !f.hw_offload);
        let f = XdpFeatures::from_bits(4 | 64);
        assert!(f.ndo_xmit && f.ndo_xmit_sg && !f.basic);
        assert_eq!(f.raw, 68);
    }

    #[test]
    fn get_request_carries_ifindex() {
        let msg = DevMsg::get(7);
        assert_eq!(msg.attrs, [8, 0, 1, 0, 7, 0, 0, 0]);
    }
}
