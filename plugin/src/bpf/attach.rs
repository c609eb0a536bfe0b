//! Per-pod attachments from the pinned programs (no verifier run): host-veth
//! XDP and tcx links pinned under `links/<key>_xdp` / `links/<key>_tc`, and the
//! pod-side pass program's fd for the netlink (IFLA_XDP) attach.

use std::path::{Path, PathBuf};

use aya::programs::tc::TcAttachType;
use aya::programs::{ProgramFd, Xdp, XdpMode};
use aya_obj::programs::XdpAttachType;

use super::error::{Error, Result};
use super::links::{attach_tcx, attach_xdp, detach_and_unpin, pinned_link_info};
use super::paths::{check_key, BpfPaths};
use super::{PROG_HOST_EGRESS, PROG_HOST_TC, PROG_HOST_XDP, PROG_POD_PASS, PROG_READDRESSED};

/// What is attached on a host veth, with the device each link is on (0 once
/// the device is gone: the link is defunct).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Xdp {
        ifindex: u32,
    },
    Tc {
        ifindex: u32,
    },
    /// XDP mode with the tc fallback (uplink without ndo_xdp_xmit).
    XdpAndTc {
        xdp_ifindex: u32,
        tc_ifindex: u32,
    },
}

fn xdp_pin(paths: &BpfPaths, key: &str) -> Result<PathBuf> {
    check_key(key)?;
    Ok(paths.link(&format!("{key}_xdp")))
}

fn tc_pin(paths: &BpfPaths, key: &str) -> Result<PathBuf> {
    check_key(key)?;
    Ok(paths.link(&format!("{key}_tc")))
}

fn egress_pin(paths: &BpfPaths, key: &str) -> Result<PathBuf> {
    check_key(key)?;
    Ok(paths.link(&format!("{key}_egress")))
}

fn readdressed_pin(paths: &BpfPaths, key: &str) -> Result<PathBuf> {
    check_key(key)?;
    Ok(paths.link(&format!("{key}_readdressed")))
}

/// Attaches the PACKET_HOST fix-up (`vx_readdressed`) at the host veth's tcx
/// ingress, behind its XDP program (egress mode xdp with service ranges);
/// pinned link `links/<key>_readdressed`. Idempotent; Ok(true) when attached now.
pub fn attach_host_readdressed(paths: &BpfPaths, key: &str, host_ifindex: u32) -> Result<bool> {
    let pin = readdressed_pin(paths, key)?;
    if already_attached(&pin, host_ifindex)? {
        return Ok(false);
    }
    attach_tcx(
        paths,
        PROG_READDRESSED,
        host_ifindex,
        TcAttachType::Ingress,
        &pin,
    )?;
    Ok(true)
}

/// True if the link pinned at `pin` already serves `ifindex`; a pin for
/// another (or a vanished) device is detached and removed.
fn already_attached(pin: &Path, ifindex: u32) -> Result<bool> {
    if !pin.exists() {
        return Ok(false);
    }
    if pinned_link_info(pin)?.ifindex == ifindex {
        return Ok(true);
    }
    detach_and_unpin(pin)?;
    Ok(false)
}

/// Attaches the host-veth XDP program in driver mode; pinned link `links/<key>_xdp`.
/// Idempotent for the same key and ifindex; Ok(true) when attached now.
pub fn attach_host_xdp(paths: &BpfPaths, key: &str, host_ifindex: u32) -> Result<bool> {
    let pin = xdp_pin(paths, key)?;
    if already_attached(&pin, host_ifindex)? {
        return Ok(false);
    }
    attach_xdp(paths, PROG_HOST_XDP, host_ifindex, XdpMode::Driver, &pin)?;
    Ok(true)
}

/// Attaches the tc program at the host veth's tcx ingress (pod egress);
/// pinned link `links/<key>_tc`. Idempotent for the same key and ifindex.
pub fn attach_host_tc(paths: &BpfPaths, key: &str, host_ifindex: u32) -> Result<bool> {
    let pin = tc_pin(paths, key)?;
    if already_attached(&pin, host_ifindex)? {
        return Ok(false);
    }
    attach_tcx(
        paths,
        PROG_HOST_TC,
        host_ifindex,
        TcAttachType::Ingress,
        &pin,
    )?;
    Ok(true)
}

/// Attaches the flow-tracking program at the host veth's tcx egress (stack ->
/// pod); pinned link `links/<key>_egress`. Idempotent for the same key and ifindex.
pub fn attach_host_egress(paths: &BpfPaths, key: &str, host_ifindex: u32) -> Result<bool> {
    let pin = egress_pin(paths, key)?;
    if already_attached(&pin, host_ifindex)? {
        return Ok(false);
    }
    attach_tcx(
        paths,
        PROG_HOST_EGRESS,
        host_ifindex,
        TcAttachType::Egress,
        &pin,
    )?;
    Ok(true)
}

/// The device the egress program of `key` is attached to, if it is (for CHECK).
pub fn host_egress_attachment(paths: &BpfPaths, key: &str) -> Result<Option<u32>> {
    let pin = egress_pin(paths, key)?;
    if !pin.exists() {
        return Ok(None);
    }
    Ok(Some(pinned_link_info(&pin)?.ifindex))
}

/// Detaches and unpins every host link of `key`. Idempotent.
pub fn detach_host(paths: &BpfPaths, key: &str) -> Result<()> {
    detach_and_unpin(&xdp_pin(paths, key)?)?;
    detach_and_unpin(&tc_pin(paths, key)?)?;
    detach_and_unpin(&egress_pin(paths, key)?)?;
    detach_and_unpin(&readdressed_pin(paths, key)?)?;
    Ok(())
}

/// What the pins say is attached for `key` (for CHECK).
pub fn host_attachment(paths: &BpfPaths, key: &str) -> Result<Option<Hook>> {
    let ifindex_of = |pin: PathBuf| -> Result<Option<u32>> {
        if !pin.exists() {
            return Ok(None);
        }
        Ok(Some(pinned_link_info(&pin)?.ifindex))
    };
    let xdp = ifindex_of(xdp_pin(paths, key)?)?;
    let tc = ifindex_of(tc_pin(paths, key)?)?;
    Ok(match (xdp, tc) {
        (Some(x), Some(t)) => Some(Hook::XdpAndTc {
            xdp_ifindex: x,
            tc_ifindex: t,
        }),
        (Some(x), None) => Some(Hook::Xdp { ifindex: x }),
        (None, Some(t)) => Some(Hook::Tc { ifindex: t }),
        (None, None) => None,
    })
}

/// A new fd of the pinned pod-side pass program, for an IFLA_XDP attach.
pub fn pod_pass_program(paths: &BpfPaths) -> Result<ProgramFd> {
    let program_err = |op, error| Error::Program {
        op,
        program: PROG_POD_PASS,
        error: Box::new(error),
    };
    let prog = Xdp::from_pin(paths.prog(PROG_POD_PASS), XdpAttachType::Interface)
        .map_err(|e| program_err("open pinned program", e))?;
    let fd = prog
        .fd()
        .map_err(|e| program_err("read the fd of", e))?
        .try_clone()
        .map_err(|e| program_err("duplicate the fd of", e.into()))?;
    Ok(fd)
}
