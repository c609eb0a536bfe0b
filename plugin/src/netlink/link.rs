//! Links: the veth pair built for XDP, lookups, delete, up, MTU.

use std::os::fd::{AsRawFd, BorrowedFd};

use rtnetlink::packet_route::link::{
    InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State,
};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::{collect_dump, kernel_errno, nl_error, tolerate, Netlink, NlResult};
use crate::mac::Mac;

/// What the kernel says about a link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<Mac>,
    pub mtu: u32,
    /// IFF_UP
    pub admin_up: bool,
    /// IFF_LOOPBACK
    pub loopback: bool,
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
        self.handle
            .link()
            .add(veth_message(spec))
            .execute()
            .await
            .map_err(|e| {
                nl_error(
                    format!("create veth {} (peer {})", spec.host_name, spec.pod_name),
                    e,
                )
            })
    }

    pub async fn link_by_name(&self, name: &str) -> NlResult<Option<Link>> {
        let request = self.handle.link().get().match_name(name).execute();
        self.single_link(request, || format!("get link {name}"))
            .await
    }

    pub async fn link_by_index(&self, index: u32) -> NlResult<Option<Link>> {
        let request = self.handle.link().get().match_index(index).execute();
        self.single_link(request, || format!("get link index {index}"))
            .await
    }

    pub async fn links(&self) -> NlResult<Vec<Link>> {
        let messages = collect_dump(self.handle.link().get().execute(), || {
            "dump links".to_string()
        })
        .await?;
        Ok(messages.iter().map(parse_link).collect())
    }

    /// Deletes the link; Ok(false) when it was already gone.
    pub async fn link_delete_by_name(&self, name: &str) -> NlResult<bool> {
        // RTM_DELLINK accepts IFLA_IFNAME with index 0 (kernel >= 2.6.33).
        let message = LinkUnspec::new_with_name(name).build();
        let result = self.handle.link().del_with_message(message).execute().await;
        tolerate(result, &[libc::ENODEV], || format!("delete link {name}"))
    }

    pub async fn link_set_up(&self, index: u32) -> NlResult<()> {
        let message = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .change(message)
            .execute()
            .await
            .map_err(|e| nl_error(format!("set link index {index} up"), e))
    }

    pub async fn link_set_mtu(&self, index: u32, mtu: u32) -> NlResult<()> {
        let message = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.handle
            .link()
            .change(message)
            .execute()
            .await
            .map_err(|e| nl_error(format!("set mtu {mtu} on link index {index}"), e))
    }

    /// Reads the one answer of a non-dump RTM_GETLINK; ENODEV means "no such link".
    async fn single_link(
        &self,
        request: impl futures::Stream<Item = Result<LinkMessage, rtnetlink::Error>>,
        op: impl FnOnce() -> String,
    ) -> NlResult<Option<Link>> {
        use futures::TryStreamExt;
        futures::pin_mut!(request);
        match request.try_next().await {
            Ok(message) => Ok(message.as_ref().map(parse_link)),
            Err(e) if kernel_errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(nl_error(op(), e)),
        }
    }
}

/// The RTM_NEWLINK message of the pair. The queue counts and the MTU go on both
/// messages: a veth created without IFLA_NUM_{RX,TX}_QUEUES allocates nproc
/// queues but enables only one real channel (`ethtool -l`: current 1, kernel 6.18).
fn veth_message(spec: &VethSpec<'_>) -> LinkMessage {
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(spec.pod_name)
        .address(spec.pod_mac.to_vec())
        .mtu(spec.mtu)
        .append_extra_attribute(LinkAttribute::NumRxQueues(spec.queues))
        .append_extra_attribute(LinkAttribute::NumTxQueues(spec.queues))
        .setns_by_fd(spec.pod_netns.as_raw_fd())
        .build();
    LinkVeth::new(spec.host_name, spec.pod_name)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .mtu(spec.mtu)
        .append_extra_attribute(LinkAttribute::NumRxQueues(spec.queues))
        .append_extra_attribute(LinkAttribute::NumTxQueues(spec.queues))
        .build()
}

/// Reads the fields we care about out of an RTM_NEWLINK message.
pub fn parse_link(message: &LinkMessage) -> Link {
    let flags = message.header.flags;
    let mut link = Link {
        index: message.header.index,
        admin_up: flags.contains(LinkFlags::Up),
        loopback: flags.contains(LinkFlags::Loopback),
        ..Default::default()
    };
    let mut oper_state = None;
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Address(bytes) => link.mac = <Mac>::try_from(bytes.as_slice()).ok(),
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::OperState(state) => oper_state = Some(*state),
            LinkAttribute::NumRxQueues(n) => link.num_rx_queues = *n,
            LinkAttribute::NumTxQueues(n) => link.num_tx_queues = *n,
            LinkAttribute::Promiscuity(n) => link.promiscuity = *n,
            LinkAttribute::Link(index) => link.peer_index = Some(*index),
            LinkAttribute::LinkInfo(infos) => link.kind = info_kind(infos),
            LinkAttribute::Xdp(xdp) => link.xdp = super::xdp::parse_xdp(xdp),
            _ => {}
        }
    }
    link.oper_up = match oper_state {
        Some(State::Up) => true,
        Some(State::Unknown) | None => flags.contains(LinkFlags::LowerUp),
        Some(_) => false,
    };
    link
}

fn info_kind(infos: &[LinkInfo]) -> Option<String> {
    infos.iter().find_map(|info| match info {
        LinkInfo::Kind(kind) => Some(kind.to_string()),
        _ => None,
    })
}
