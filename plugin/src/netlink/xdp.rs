//! XDP attachment over netlink (IFLA_XDP), for programs a pod must be able to
//! replace (a bpf_link attachment would block that), and the readback CHECK uses.

use std::os::fd::BorrowedFd;

use super::{Netlink, NlResult};

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

impl Netlink {
    /// Attaches `prog` to the link with IFLA_XDP {FD, FLAGS(DRV or SKB mode)}.
    pub async fn xdp_attach(&self, index: u32, prog: BorrowedFd<'_>, mode: XdpMode) -> NlResult<()> {
        let _ = (index, prog, mode);
        todo!("netlink helper")
    }

    /// Detaches whatever netlink-attached program is there (FD = -1).
    pub async fn xdp_detach(&self, index: u32, mode: XdpMode) -> NlResult<()> {
        let _ = (index, mode);
        todo!("netlink helper")
    }
}
