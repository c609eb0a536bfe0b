//! XDP attachment over netlink (IFLA_XDP), for programs a pod must be able to
//! replace (a bpf_link attachment would block that), and the readback CHECK uses.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use rtnetlink::packet_route::link::{LinkAttribute, LinkXdp, XdpAttached as KernelXdpAttached};
use rtnetlink::LinkUnspec;

use super::{nl_error, Netlink, NlResult};

/// XDP attach mode as IFLA_XDP_ATTACHED reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum XdpAttached {
    #[default]
    None,
    Driver,
    Generic,
    Offload,
    Multi,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpState {
    pub attached: XdpAttached,
    /// IFLA_XDP_PROG_ID (or DRV_PROG_ID / SKB_PROG_ID)
    pub prog_id: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    Driver,
    Generic,
}

/// XDP_FLAGS_SKB_MODE (include/uapi/linux/if_link.h)
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// XDP_FLAGS_DRV_MODE
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

impl XdpMode {
    /// The IFLA_XDP_FLAGS value that forces this mode.
    pub fn flags(self) -> u32 {
        match self {
            XdpMode::Driver => XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => XDP_FLAGS_SKB_MODE,
        }
    }
}

impl Netlink {
    /// Attaches `prog` to the link with IFLA_XDP {FD, FLAGS(DRV or SKB mode)}.
    pub async fn xdp_attach(
        &self,
        index: u32,
        prog: BorrowedFd<'_>,
        mode: XdpMode,
    ) -> NlResult<()> {
        self.set_xdp_fd(index, prog.as_raw_fd(), mode)
            .await
            .map_err(|e| {
                nl_error(
                    format!("attach XDP program ({mode:?} mode) to link index {index}"),
                    e,
                )
            })
    }

    /// Detaches whatever netlink-attached program is there (FD = -1).
    pub async fn xdp_detach(&self, index: u32, mode: XdpMode) -> NlResult<()> {
        self.set_xdp_fd(index, -1, mode).await.map_err(|e| {
            nl_error(
                format!("detach XDP program ({mode:?} mode) from link index {index}"),
                e,
            )
        })
    }

    /// The XDP state of one link (Ok(None) when the link does not exist).
    pub async fn xdp_query(&self, index: u32) -> NlResult<Option<XdpState>> {
        Ok(self.link_by_index(index).await?.map(|link| link.xdp))
    }

    /// RTM_SETLINK on the index with IFLA_XDP {FD, FLAGS}.
    async fn set_xdp_fd(
        &self,
        index: u32,
        fd: RawFd,
        mode: XdpMode,
    ) -> Result<(), rtnetlink::Error> {
        let message = LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::Xdp(vec![
                LinkXdp::Fd(fd),
                LinkXdp::Flags(mode.flags()),
            ]))
            .build();
        self.handle.link().set(message).execute().await
    }
}

/// Reads IFLA_XDP as the kernel reports it. With one program attached the kernel
/// sends IFLA_XDP_PROG_ID; in "multi" mode only the per-mode DRV/SKB/HW ids.
pub(crate) fn parse_xdp(attributes: &[LinkXdp]) -> XdpState {
    let mut state = XdpState::default();
    let mut mode_prog_id = None;
    for attribute in attributes {
        match attribute {
            LinkXdp::Attached(attached) => state.attached = attach_mode(*attached),
            LinkXdp::ProgId(id) => state.prog_id = Some(*id),
            LinkXdp::DrvProgId(id) | LinkXdp::SkbProgId(id) | LinkXdp::HwProgId(id) => {
                mode_prog_id = mode_prog_id.or(Some(*id))
            }
            _ => {}
        }
    }
    if state.attached == XdpAttached::None {
        state.prog_id = None;
    } else if state.prog_id.is_none() {
        state.prog_id = mode_prog_id;
    }
    state
}

fn attach_mode(attached: KernelXdpAttached) -> XdpAttached {
    match attached {
        KernelXdpAttached::Driver => XdpAttached::Driver,
        KernelXdpAttached::SocketBuffer => XdpAttached::Generic,
        KernelXdpAttached::Hardware => XdpAttached::Offload,
        KernelXdpAttached::Multiple => XdpAttached::Multi,
        _ => XdpAttached::None,
    }
}
