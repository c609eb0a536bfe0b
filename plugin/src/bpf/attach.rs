//! Per-pod attachments from the pinned programs (no verifier run): host-veth
//! XDP and tcx links pinned under `links/<key>_xdp` / `links/<key>_tc`, and the
//! pod-side pass program's fd for the netlink (IFLA_XDP) attach.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use aya::programs::links::{FdLink, LinkOrder};
use aya::programs::tc::{SchedClassifier, TcAttachOptions, TcAttachType};

use super::paths::{check_key, BpfPaths};
use super::sys;
use super::{PROG_HOST_TC, PROG_HOST_XDP, PROG_POD_PASS};

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

/// True if the link pinned at `pin` already serves `ifindex`; a pin for
/// another (or a vanished) device is detached and removed.
fn already_attached(pin: &Path, ifindex: u32) -> Result<bool> {
    if !pin.exists() {
        return Ok(false);
    }
    if sys::pinned_link_info(pin)?.ifindex == ifindex {
        return Ok(true);
    }
    sys::detach_and_unpin(pin)?;
    Ok(false)
}

/// Attaches the host-veth XDP program in driver mode; pinned link `links/<key>_xdp`.
/// Idempotent for the same key and ifindex.
pub fn attach_host_xdp(paths: &BpfPaths, key: &str, host_ifindex: u32) -> Result<()> {
    let pin = xdp_pin(paths, key)?;
    if already_attached(&pin, host_ifindex)? {
        return Ok(());
    }
    attach_xdp_pinned(
        paths,
        PROG_HOST_XDP,
        host_ifindex,
        sys::XDP_FLAGS_DRV_MODE,
        &pin,
    )
    .with_context(|| {
        format!("attach {PROG_HOST_XDP} (driver mode) to host veth ifindex {host_ifindex}")
    })
}

/// Attaches the pinned XDP program `prog` to `ifindex` through a bpf_link and
/// pins the link at `link_pin`, so it outlives this process.
pub(crate) fn attach_xdp_pinned(
    paths: &BpfPaths,
    prog: &str,
    ifindex: u32,
    xdp_flags: u32,
    link_pin: &Path,
) -> Result<()> {
    let prog_pin = paths.prog(prog);
    let prog_fd = sys::obj_get(&prog_pin)
        .with_context(|| format!("open pinned program {} (BPF_OBJ_GET)", prog_pin.display()))?;
    let link = sys::xdp_link_create(prog_fd.as_fd(), ifindex, xdp_flags).with_context(|| {
        format!("BPF_LINK_CREATE (xdp, flags {xdp_flags:#x}) on ifindex {ifindex}")
    })?;
    sys::obj_pin(link.as_fd(), link_pin)
        .with_context(|| format!("pin XDP link at {} (BPF_OBJ_PIN)", link_pin.display()))
}

/// The errno of the first io::Error in an anyhow chain.
pub(crate) fn errno_in(e: &anyhow::Error) -> Option<i32> {
    e.chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error)
}

/// Attaches the tc program at the host veth's tcx ingress (pod egress);
/// pinned link `links/<key>_tc`. Idempotent for the same key and ifindex.
pub fn attach_host_tc(paths: &BpfPaths, key: &str, host_ifindex: u32) -> Result<()> {
    let pin = tc_pin(paths, key)?;
    if already_attached(&pin, host_ifindex)? {
        return Ok(());
    }
    let prog_pin = paths.prog(PROG_HOST_TC);
    let mut prog = SchedClassifier::from_pin(&prog_pin)
        .with_context(|| format!("open pinned program {}", prog_pin.display()))?;
    let ifname = if_name(host_ifindex)?;
    let id = prog
        .attach_with_options(
            &ifname,
            TcAttachType::Ingress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .with_context(|| format!("attach {PROG_HOST_TC} (tcx ingress) to host veth {ifname}"))?;
    let link = FdLink::try_from(prog.take_link(id).context("take host tc link")?)
        .context("host tc program attached over netlink, not tcx: cannot pin it")?;
    link.pin(&pin)
        .with_context(|| format!("pin host tc link at {} (BPF_OBJ_PIN)", pin.display()))?;
    Ok(())
}

/// Detaches and unpins both host links of `key`. Idempotent.
pub fn detach_host(paths: &BpfPaths, key: &str) -> Result<()> {
    sys::detach_and_unpin(&xdp_pin(paths, key)?)?;
    sys::detach_and_unpin(&tc_pin(paths, key)?)?;
    Ok(())
}

/// What the pins say is attached for `key` (for CHECK).
pub fn host_attachment(paths: &BpfPaths, key: &str) -> Result<Option<Hook>> {
    let ifindex_of = |pin: PathBuf| -> Result<Option<u32>> {
        if !pin.exists() {
            return Ok(None);
        }
        Ok(Some(sys::pinned_link_info(&pin)?.ifindex))
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
pub fn pod_pass_program(paths: &BpfPaths) -> Result<OwnedFd> {
    let pin = paths.prog(PROG_POD_PASS);
    sys::obj_get(&pin)
        .with_context(|| format!("open pinned program {} (BPF_OBJ_GET)", pin.display()))
}

/// Interface name of `ifindex` in the caller's netns (tcx attach in aya takes a name).
fn if_name(ifindex: u32) -> Result<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        bail!(
            "if_indextoname({ifindex}): {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}
