//! Pinned links, the way every attachment of ours outlives the short CNI
//! process: attach a pinned program through a bpf_link (aya), pin the link,
//! and later read which device a pinned link serves or detach it (`sys.rs`).

use std::ffi::CStr;
use std::os::fd::AsFd;
use std::path::Path;

use aya::programs::links::{FdLink, LinkError, LinkOrder};
use aya::programs::tc::{SchedClassifier, TcAttachOptions, TcAttachType};
use aya::programs::{Xdp, XdpMode};
use aya::util::KernelVersion;
use aya_obj::programs::XdpAttachType;

use super::error::{Error, Result};
use super::paths::BpfPaths;
use super::sys::{self, LinkInfo};

/// A kernel feature, the version and commit that brought it.
struct Feature {
    what: &'static str,
    version: (u8, u8),
    name: &'static str,
    commit: &'static str,
}

/// XDP through a bpf_link: without it aya falls back to a netlink attach,
/// which cannot be pinned (and which aya would then leave attached).
const XDP_LINK: Feature = Feature {
    what: "XDP attached through a bpf_link",
    version: (5, 9),
    name: "5.9",
    commit: "aa8d3a716b59",
};

/// tcx: tc programs attached through a bpf_link.
const TCX: Feature = Feature {
    what: "tcx (tc programs attached through a bpf_link)",
    version: (6, 6),
    name: "6.6",
    commit: "e420bed02507",
};

/// [`Error::KernelTooOld`] if the running kernel predates `f` (an unreadable
/// version counts as new enough: the attach itself will say).
fn require(f: &Feature) -> Result<()> {
    let need = KernelVersion::new(f.version.0, f.version.1, 0);
    match KernelVersion::current() {
        Ok(have) if have < need => Err(Error::KernelTooOld {
            what: f.what,
            version: f.name,
            commit: f.commit,
        }),
        _ => Ok(()),
    }
}

/// Attaches the pinned XDP program `prog` to `ifindex` in `mode` through a
/// bpf_link and pins the link at `link_pin`, so it outlives this process.
pub(super) fn attach_xdp(
    paths: &BpfPaths,
    prog: &'static str,
    ifindex: u32,
    mode: XdpMode,
    link_pin: &Path,
) -> Result<()> {
    require(&XDP_LINK)?;
    let program_err = |op, error| Error::Program {
        op,
        program: prog,
        error: Box::new(error),
    };
    let mut xdp = Xdp::from_pin(paths.prog(prog), XdpAttachType::Interface)
        .map_err(|e| program_err("open pinned program", e))?;
    let id = xdp
        .attach_to_if_index(ifindex, mode)
        .map_err(|error| Error::Attach {
            program: prog,
            hook: match mode {
                XdpMode::Skb => "XDP generic mode",
                _ => "XDP driver mode",
            },
            ifindex,
            error: Box::new(error),
        })?;
    let link = xdp
        .take_link(id)
        .map_err(|e| program_err("take the link of", e))?;
    pin_link(link, "XDP link", link_pin)
}

/// Attaches the pinned tc program `prog` at `ifindex`'s tcx `direction` and pins
/// the link at `link_pin`.
pub(super) fn attach_tcx(
    paths: &BpfPaths,
    prog: &'static str,
    ifindex: u32,
    direction: TcAttachType,
    link_pin: &Path,
) -> Result<()> {
    require(&TCX)?;
    let program_err = |op, error| Error::Program {
        op,
        program: prog,
        error: Box::new(error),
    };
    let mut tc = SchedClassifier::from_pin(paths.prog(prog))
        .map_err(|e| program_err("open pinned program", e))?;
    let ifname = if_name(ifindex)?;
    let id = tc
        .attach_with_options(
            &ifname,
            direction,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .map_err(|error| Error::Attach {
            program: prog,
            hook: match direction {
                TcAttachType::Egress => "tcx egress",
                _ => "tcx ingress",
            },
            ifindex,
            error: Box::new(error),
        })?;
    let link = tc
        .take_link(id)
        .map_err(|e| program_err("take the link of", e))?;
    pin_link(link, "tc link", link_pin)
}

/// Pins a link taken from its program (a bpf_link, or the attach fell back
/// to netlink, which cannot be pinned) at `path`, so it outlives this process.
fn pin_link<L>(link: L, what: &'static str, path: &Path) -> Result<()>
where
    FdLink: TryFrom<L, Error = LinkError>,
{
    let link = FdLink::try_from(link).map_err(|error| Error::Link {
        op: "take as a bpf_link (attached over netlink instead?)",
        path: path.to_path_buf(),
        error,
    })?;
    link.pin(path).map_err(|error| Error::Pin {
        what,
        path: path.to_path_buf(),
        error,
    })?;
    Ok(())
}

fn link_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(aya::sys::SyscallError) -> Error + 'a {
    move |e| Error::Link {
        op,
        path: path.to_path_buf(),
        error: LinkError::SyscallError(e),
    }
}

/// Opens the link pinned at `path` and reads its info.
pub fn pinned_link_info(path: &Path) -> Result<LinkInfo> {
    let fd = sys::obj_get(path).map_err(link_err("open pinned link (BPF_OBJ_GET)", path))?;
    sys::link_info(fd.as_fd()).map_err(link_err("read info (BPF_OBJ_GET_INFO_BY_FD) of link", path))
}

/// Detaches the link pinned at `path` and removes the pin. Missing pin: Ok(false).
pub(super) fn detach_and_unpin(path: &Path) -> Result<bool> {
    let fd = match sys::obj_get(path) {
        Ok(fd) => fd,
        Err(e) if e.io_error.raw_os_error() == Some(libc::ENOENT) => return Ok(false),
        Err(e) => return Err(link_err("open pinned link (BPF_OBJ_GET)", path)(e)),
    };
    match sys::link_detach(fd.as_fd()) {
        Ok(()) => {}
        // ENOLINK: already detached (its device went away).
        Err(e) if e.io_error.raw_os_error() == Some(libc::ENOLINK) => {}
        Err(e) => return Err(link_err("detach (BPF_LINK_DETACH) link", path)(e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(error) => Err(Error::Fs {
            op: "unpin (unlink)",
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// Interface name of `ifindex` in the caller's netns (tcx attach in aya takes a name).
fn if_name(ifindex: u32) -> Result<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return Err(Error::Ifname {
            ifindex,
            error: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}
