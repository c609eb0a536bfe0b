//! NDP proxy entries (`ip -6 neigh add proxy ADDR dev DEV`): the node answers
//! neighbour solicitations for ADDR arriving on DEV. Linux answers an NS only
//! for addresses of the receiving device, so without these a pod cannot
//! resolve the node's IPv6 addresses through its host veth.

use std::net::Ipv6Addr;

use rtnetlink::packet_route::neighbour::NeighbourFlags;

use super::{tolerate, Netlink, NlResult};

impl Netlink {
    /// Adds a proxy entry for `addr` on link `index`; an existing one is fine.
    pub async fn ndp_proxy_add(&self, index: u32, addr: Ipv6Addr) -> NlResult<()> {
        let result = self
            .handle
            .neighbours()
            .add(index, addr.into())
            .flags(NeighbourFlags::Proxy)
            .execute()
            .await;
        tolerate(result, &[libc::EEXIST], || {
            format!("add NDP proxy entry {addr} on link index {index}")
        })?;
        Ok(())
    }
}
