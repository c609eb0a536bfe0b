//! Node-level setup under the node lock ([`lock_node`]): load the object once,
//! pin maps and programs, attach the uplink program with a pinned link, write
//! the config. Later calls reuse the pins after checking they are compatible.
//! [`teardown_node`] undoes it all, under the same lock.

use std::path::{Path, PathBuf};

use aya::pin::PinError;
use aya::programs::tc::TcAttachType;
use aya::programs::{Program, ProgramError, Xdp};
use aya::programs::{SchedClassifier, XdpMode};
use aya::EbpfLoader;

use super::error::{Error, Result};
use super::links::{attach_tcx, attach_xdp, detach_and_unpin, pinned_link_info};
use super::maps::Maps;
use super::paths::{ensure_bpffs, BpfPaths};
use super::spec::{check_pinned, max_entries, MAP_SPECS};
use super::types::{VxConfig, VxServices, CFG_SERVICES, CFG_UPLINK_CAN_XMIT, CFG_UPLINK_GENERIC};
use super::{
    OBJECT, PROG_HOST_EGRESS, PROG_HOST_TC, PROG_HOST_XDP, PROG_POD_PASS, PROG_READDRESSED,
    PROG_UPLINK, TC_PROGRAMS, XDP_PROGRAMS,
};
use crate::lock::{self, DirLock};

/// Link pin name of the uplink attachment.
pub const LINK_UPLINK: &str = "uplink";
/// Link pin name of the uplink's PACKET_HOST fix-up (a veth uplink with service ranges).
pub const LINK_UPLINK_READDRESSED: &str = "uplink_readdressed";

/// What the node needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeSpec {
    pub uplink_ifindex: u32,
    /// Frames the uplink program hands to the stack (NAT returns) are
    /// readdressed to it.
    pub uplink_mac: [u8; 6],
    /// The uplink has `ndo_xdp_xmit` (netdev xdp-features `ndo-xmit`): host
    /// veths may XDP-redirect to it. If false, the tc program must be attached
    /// on host veths as the fallback.
    pub uplink_can_xmit: bool,
    /// Map sizes are made for this many pods (only when the maps are created).
    pub max_pods: u32,
    /// The cluster's service ranges ([`VxServices::from_cidrs`]); none: no
    /// service steering, no flow tracking.
    pub services: VxServices,
    /// The uplink is a veth (frames reach its XDP as skbs): with service
    /// ranges, NAT returns the uplink program readdresses need the
    /// PACKET_HOST fix-up at its tcx ingress (bpf/lib/hook_tc.h).
    pub uplink_is_veth: bool,
}

/// How the uplink program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UplinkMode {
    /// Native (driver) XDP.
    Driver,
    /// Generic (skb) XDP: the driver refused native mode.
    Generic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStatus {
    pub uplink_mode: UplinkMode,
    /// The object was loaded (verifier ran) by this call; false = pins reused.
    pub loaded_now: bool,
    /// The uplink program was attached by this call (first setup, a new
    /// uplink, or its link was gone).
    pub uplink_attached_now: bool,
}

/// The node lock: held while the node's datapath is set up (and the uplink
/// prepared for it) or torn down. An exclusive flock on the pin root `paths.root()`
/// — what it protects are the pins under it; bpffs takes no regular files, but
/// a directory flocks — created, with bpffs mounted, if missing.
pub fn lock_node(paths: &BpfPaths) -> Result<DirLock> {
    ensure_bpffs(paths.root())?;
    Ok(lock::exclusive(paths.root())?)
}

/// Makes the node's datapath match `spec`; idempotent.
pub fn ensure_node(paths: &BpfPaths, spec: &NodeSpec) -> Result<NodeStatus> {
    if spec.uplink_ifindex == 0 {
        return Err(Error::InvalidNodeSpec("uplink ifindex 0 is not a device"));
    }
    if spec.max_pods == 0 {
        return Err(Error::InvalidNodeSpec("max_pods must be at least 1"));
    }
    paths.create_dirs()?;
    let loaded_now = ensure_loaded(paths, spec.max_pods)?;
    let mut maps = Maps::open(paths)?;
    let previous = maps.config()?;

    maps.add_redirect_target(spec.uplink_ifindex)?;
    let (uplink_mode, uplink_attached_now) =
        ensure_uplink_link(paths, spec.uplink_ifindex, previous)?;
    let mut flags = 0;
    if spec.uplink_can_xmit {
        flags |= CFG_UPLINK_CAN_XMIT;
    }
    if uplink_mode == UplinkMode::Generic {
        flags |= CFG_UPLINK_GENERIC;
    }
    if !spec.services.is_empty() {
        flags |= CFG_SERVICES;
    }
    // Services first: the flag that makes the programs read them comes after.
    maps.set_services(&spec.services)?;
    maps.set_config(VxConfig {
        uplink_ifindex: spec.uplink_ifindex,
        flags,
        uplink_mac: spec.uplink_mac,
        pad: [0; 2],
    })?;
    if previous.uplink_ifindex != 0 && previous.uplink_ifindex != spec.uplink_ifindex {
        maps.remove_redirect_target(previous.uplink_ifindex)?;
    }
    ensure_uplink_readdressed(paths, spec)?;
    Ok(NodeStatus {
        uplink_mode,
        loaded_now,
        uplink_attached_now,
    })
}

/// True if every map and program is pinned (maps checked for compatibility).
fn all_pinned(paths: &BpfPaths) -> Result<bool> {
    let mut all = true;
    for spec in &MAP_SPECS {
        // check_pinned fails on an incompatible map: never reuse or extend it.
        all &= check_pinned(paths, spec)?;
    }
    for prog in [
        PROG_UPLINK,
        PROG_HOST_XDP,
        PROG_HOST_TC,
        PROG_HOST_EGRESS,
        PROG_POD_PASS,
    ] {
        all &= paths.prog(prog).exists();
    }
    Ok(all)
}

/// Loads the object unless all pins exist; returns whether it loaded.
fn ensure_loaded(paths: &BpfPaths, max_pods: u32) -> Result<bool> {
    if all_pinned(paths)? {
        return Ok(false);
    }
    // memlock rlimit: not needed, BPF memory is memcg-accounted since 5.11.
    let mut loader = EbpfLoader::new();
    loader.default_map_pin_directory(paths.maps_dir());
    for spec in &MAP_SPECS {
        loader.map_max_entries(spec.name, max_entries(spec.name, max_pods));
    }
    // Maps already pinned (compatible, checked above) are reused by name.
    let mut ebpf = loader.load(OBJECT).map_err(|error| Error::Load {
        error: Box::new(error),
    })?;

    for name in XDP_PROGRAMS {
        let prog: &mut Xdp = typed_program(ebpf.program_mut(name), name)?;
        prog.load()
            .map_err(program_err("load (BPF_PROG_LOAD, verifier)", name))?;
        pin_replacing(paths.prog(name), |p| prog.pin(p))?;
    }
    for name in TC_PROGRAMS {
        let tc: &mut SchedClassifier = typed_program(ebpf.program_mut(name), name)?;
        tc.load()
            .map_err(program_err("load (BPF_PROG_LOAD, verifier)", name))?;
        pin_replacing(paths.prog(name), |p| tc.pin(p))?;
    }
    Ok(true)
}

fn program_err(op: &'static str, program: &'static str) -> impl FnOnce(ProgramError) -> Error {
    move |error| Error::Program {
        op,
        program,
        error: Box::new(error),
    }
}

/// The object's program `name` as its type `P` (`Xdp`, `SchedClassifier`).
fn typed_program<'a, P>(prog: Option<&'a mut Program>, name: &'static str) -> Result<&'a mut P>
where
    &'a mut P: TryFrom<&'a mut Program, Error = ProgramError>,
{
    let prog = prog.ok_or(Error::MissingProgram { program: name })?;
    prog.try_into()
        .map_err(program_err("use as its program type", name))
}

/// Pins at `path`, replacing a stale pin of a partial earlier setup.
fn pin_replacing(
    path: PathBuf,
    pin: impl FnOnce(&Path) -> std::result::Result<(), PinError>,
) -> Result<()> {
    if path.exists() {
        std::fs::remove_file(&path).map_err(|error| Error::Fs {
            op: "remove stale pin",
            path: path.clone(),
            error,
        })?;
    }
    pin(&path).map_err(|error| Error::Pin {
        what: "program",
        path,
        error,
    })
}

/// Attaches the uplink program unless the pinned link already serves `ifindex`.
/// The uplink's PACKET_HOST fix-up: attached where it is needed (a veth
/// uplink on a network with service ranges), detached elsewhere.
fn ensure_uplink_readdressed(paths: &BpfPaths, spec: &NodeSpec) -> Result<()> {
    let pin = paths.link(LINK_UPLINK_READDRESSED);
    let wanted = spec.uplink_is_veth && !spec.services.is_empty();
    if pin.exists() {
        if wanted && pinned_link_info(&pin)?.ifindex == spec.uplink_ifindex {
            return Ok(());
        }
        detach_and_unpin(&pin)?;
    }
    if wanted {
        attach_tcx(
            paths,
            PROG_READDRESSED,
            spec.uplink_ifindex,
            TcAttachType::Ingress,
            &pin,
        )?;
    }
    Ok(())
}

/// The uplink's mode, and whether its program was attached by this call.
fn ensure_uplink_link(
    paths: &BpfPaths,
    ifindex: u32,
    previous: VxConfig,
) -> Result<(UplinkMode, bool)> {
    let pin = paths.link(LINK_UPLINK);
    if pin.exists() {
        let info = pinned_link_info(&pin)?;
        if info.ifindex == ifindex {
            let mode = if previous.flags & CFG_UPLINK_GENERIC != 0 {
                UplinkMode::Generic
            } else {
                UplinkMode::Driver
            };
            return Ok((mode, false));
        }
        // Another (or a vanished) uplink: replace the attachment.
        detach_and_unpin(&pin)?;
    }
    Ok((attach_uplink(paths, ifindex)?, true))
}

fn attach_uplink(paths: &BpfPaths, ifindex: u32) -> Result<UplinkMode> {
    let pin = paths.link(LINK_UPLINK);
    let driver = match attach_xdp(paths, PROG_UPLINK, ifindex, XdpMode::Driver, &pin) {
        Ok(()) => return Ok(UplinkMode::Driver),
        Err(e) => e,
    };
    if driver.errno() == Some(libc::EBUSY) {
        return Err(Error::UplinkBusy {
            ifindex,
            error: Box::new(driver),
        });
    }
    attach_xdp(paths, PROG_UPLINK, ifindex, XdpMode::Skb, &pin).map_err(|generic| {
        Error::UplinkNoMode {
            ifindex,
            driver: Box::new(driver),
            generic: Box::new(generic),
        }
    })?;
    Ok(UplinkMode::Generic)
}

/// Detaches every link of this layout (uplink and host veths) and removes all
/// pins, under the node lock (taken here: the caller must not hold it). For
/// tests and operators; pods lose their datapath. Goes on after a failure and
/// reports them all ([`Error::Teardown`]); nothing pinned at all is Ok.
pub fn teardown_node(paths: &BpfPaths) -> Result<()> {
    if !paths.root().exists() {
        return Ok(());
    }
    let _lock = lock::exclusive(paths.root())?;
    let mut errors = Vec::new();
    if let Ok(entries) = std::fs::read_dir(paths.links_dir()) {
        for entry in entries.flatten() {
            if let Err(e) = detach_and_unpin(&entry.path()) {
                errors.push(e);
            }
        }
    }
    match std::fs::remove_dir_all(paths.version_dir()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => errors.push(Error::Fs {
            op: "remove",
            path: paths.version_dir().to_path_buf(),
            error,
        }),
    }
    // The root goes too if nothing else (another layout version) is in it.
    let _ = std::fs::remove_dir(paths.root());
    if !errors.is_empty() {
        return Err(Error::Teardown { errors });
    }
    Ok(())
}
