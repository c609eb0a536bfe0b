//! Links: the veth pair built for XDP, lookups, delete, up, MTU.

use std::os::fd::BorrowedFd;

use super::{Mac, Netlink, NlResult};

/// What the kernel says about a link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<Mac>,
    pub mtu: u32,
    /// IFF_UP
    pub admin_up: bool,
    /// IFLA_OPERSTATE is UP (or UNKNOWN with IFF_LOWER_UP)
    pub oper_up: bool,
    pub num_rx_queues: u32,
    pub num_tx_queues: u32,
    /// IFLA_INFO_KIND ("veth", "bridge", ...)
    pub kind: Option<String>,
    pub promiscuity: u32,
    /// IFLA_LINK: for a veth, the peer's ifindex (in the peer's namespace)
    pub peer_index: Option<u32>,
    pub xdp: super::XdpState,
}

/// A veth pair: the host end stays in the socket's namespace, the pod end is
/// born directly in the pod namespace (IFLA_NET_NS_FD on the peer message).
pub struct VethSpec<'a> {
    pub host_name: &'a str,
    pub pod_name: &'a str,
    pub pod_mac: Mac,
    /// numrxqueues = numtxqueues = queues on BOTH ends (link and peer message).
    pub queues: u32,
    pub mtu: u32,
    pub pod_netns: BorrowedFd<'a>,
}

impl Netlink {
    /// Creates the veth pair (NLM_F_CREATE|NLM_F_EXCL): EEXIST if either name is taken.
    pub async fn veth_create(&self, spec: &VethSpec<'_>) -> NlResult<()> {
        let _ = spec;
        todo!("netlink helper")
    }

    pub async fn link_by_name(&self, name: &str) -> NlResult<Option<Link>> {
        let _ = name;
        todo!("netlink helper")
    }

    pub async fn link_by_index(&self, index: u32) -> NlResult<Option<Link>> {
        let _ = index;
        todo!("netlink helper")
    }

    pub async fn links(&self) -> NlResult<Vec<Link>> {
        todo!("netlink helper")
    }

    /// Deletes the link; Ok(false) when it was already gone.
    pub async fn link_delete_by_name(&self, name: &str) -> NlResult<bool> {
        let _ = name;
        todo!("netlink helper")
    }

    pub async fn link_set_up(&self, index: u32) -> NlResult<()> {
        let _ = index;
        todo!("netlink helper")
    }

    pub async fn link_set_mtu(&self, index: u32, mtu: u32) -> NlResult<()> {
        let _ = (index, mtu);
        todo!("netlink helper")
    }
}
