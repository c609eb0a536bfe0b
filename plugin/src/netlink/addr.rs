//! Interface addresses.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};

use super::{collect_dump, tolerate, Netlink, NlResult};

impl Netlink {
    /// Adds an address; an identical existing address is not an error.
    /// IPv6 addresses are added without duplicate address detection
    /// (IFA_F_NODAD, as `ip addr add ... nodad`): IPAM made them unique, and
    /// with DAD a pod's address stays "tentative", unusable, for a second or
    /// more after ADD returns.
    pub async fn addr_add(&self, index: u32, addr: IpNetwork) -> NlResult<()> {
        let mut request = self.handle.address().add(index, addr.ip(), addr.prefix());
        if addr.is_ipv6() {
            let message = request.message_mut();
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        let result = request.execute().await;
        tolerate(result, &[libc::EEXIST], || {
            format!("add address {addr} to link index {index}")
        })?;
        Ok(())
    }

    /// Addresses on one link (global and link-local). On a socket made with
    /// [`Netlink::current_strict`] the kernel filters; elsewhere the dump
    /// holds every address and the crate filters.
    pub async fn addr_list(&self, index: u32) -> NlResult<Vec<IpNetwork>> {
        let mut request = self.handle.address().get().set_link_index_filter(index);
        request.message_mut().header.index = index;
        let request = request.execute();
        let messages =
            collect_dump(request, || format!("list addresses of link index {index}")).await?;
        Ok(messages.iter().filter_map(parse_address).collect())
    }
}

/// The single-address network of `ip`: a /32 or a /128.
pub fn host_network(ip: IpAddr) -> IpNetwork {
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    IpNetwork::new(ip, prefix).expect("a full-length prefix is always valid")
}

/// The local address of an RTM_NEWADDR message with its prefix length. For IPv4,
/// IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
/// point-to-point links); IPv6 sends only IFA_ADDRESS.
fn parse_address(message: &AddressMessage) -> Option<IpNetwork> {
    let mut local = None;
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    IpNetwork::new(local.or(address)?, message.header.prefix_len).ok()
}
