//! Node-level setup under the node lock ([`lock_node`]): load the object once,
//! pin maps and programs, attach the uplink program with a pinned link, write
//! the config. Later calls reuse the pins after checking they are compatible.
//! [`teardown_node`] undoes it all, under the same lock.

use std::path::Path;

use anyhow::{bail, Context, Result};
use aya::programs::{SchedClassifier, Xdp};
use aya::EbpfLoader;

use super::attach::{attach_xdp_pinned, errno_in};
use super::maps::{self, MAP_SPECS};
use super::paths::{ensure_bpffs, BpfPaths};
use super::sys;
use super::types::{VxConfig, CFG_UPLINK_CAN_XMIT, CFG_UPLINK_GENERIC};
use super::{OBJECT, PROG_HOST_TC, PROG_HOST_XDP, PROG_POD_PASS, PROG_UPLINK, XDP_PROGRAMS};
use crate::lock::{self, DirLock};

/// Link pin name of the uplink attachment.
pub const LINK_UPLINK: &str = "uplink";

/// What the node needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpec {
    pub uplink_ifindex: u32,
    /// The uplink has `ndo_xdp_xmit` (netdev xdp-features `ndo-xmit`): host
    /// veths may XDP-redirect to it. If false, the tc program must be attached
    /// on host veths as the fallback.
    pub uplink_can_xmit: bool,
    /// Map sizes are made for this many pods (only when the maps are created).
    pub max_pods: u32,
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
        bail!("ensure_node: uplink ifindex 0 is not a device");
    }
    if spec.max_pods == 0 {
        bail!("ensure_node: max_pods must be at least 1");
    }
    paths.create_dirs()?;
    let loaded_now = ensure_loaded(paths, spec.max_pods)?;
    let previous = maps::read_config(paths)?;

    maps::add_redirect_target(paths, spec.uplink_ifindex)?;
    let uplink_mode = ensure_uplink_link(paths, spec.uplink_ifindex, previous)?;
    let mut flags = 0;
    if spec.uplink_can_xmit {
        flags |= CFG_UPLINK_CAN_XMIT;
    }
    if uplink_mode == UplinkMode::Generic {
        flags |= CFG_UPLINK_GENERIC;
    }
    maps::write_config(
        paths,
        VxConfig {
            uplink_ifindex: spec.uplink_ifindex,
            flags,
        },
    )?;
    if previous.uplink_ifindex != 0 && previous.uplink_ifindex != spec.uplink_ifindex {
        maps::remove_redirect_target(paths, previous.uplink_ifindex)?;
    }
    Ok(NodeStatus {
        uplink_mode,
        loaded_now,
    })
}

/// True if every map and program is pinned (maps checked for compatibility).
fn all_pinned(paths: &BpfPaths) -> Result<bool> {
    let mut all = true;
    for spec in &MAP_SPECS {
        // check_pinned fails on an incompatible map: never reuse or extend it.
        all &= maps::check_pinned(paths, spec)?;
    }
    for prog in [PROG_UPLINK, PROG_HOST_XDP, PROG_HOST_TC, PROG_POD_PASS] {
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
        loader.map_max_entries(spec.name, maps::max_entries(spec.name, max_pods));
    }
    // Maps already pinned (compatible, checked above) are reused by name.
    let mut ebpf = loader
        .load(OBJECT)
        .context("load the embedded BPF object (maps, BTF)")?;

    for name in XDP_PROGRAMS {
        let prog: &mut Xdp = ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing from the object"))?
            .try_into()
            .with_context(|| format!("program {name} is not XDP"))?;
        prog.load()
            .with_context(|| format!("load program {name} (BPF_PROG_LOAD, verifier)"))?;
        pin_replacing(paths.prog(name), |p| prog.pin(p).map_err(Into::into))?;
    }
    let tc: &mut SchedClassifier = ebpf
        .program_mut(PROG_HOST_TC)
        .context("program vx_host_tc missing from the object")?
        .try_into()
        .context("program vx_host_tc is not sched_cls")?;
    tc.load()
        .context("load program vx_host_tc (BPF_PROG_LOAD, verifier)")?;
    pin_replacing(paths.prog(PROG_HOST_TC), |p| tc.pin(p).map_err(Into::into))?;
    Ok(true)
}

/// Pins at `path`, replacing a stale pin of a partial earlier setup.
fn pin_replacing(path: std::path::PathBuf, pin: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if path.exists() {
        std::fs::remove_file(&path)
            .with_context(|| format!("remove stale pin {}", path.display()))?;
    }
    pin(&path).with_context(|| format!("pin program at {} (BPF_OBJ_PIN)", path.display()))
}

/// Attaches the uplink program unless the pinned link already serves `ifindex`.
fn ensure_uplink_link(paths: &BpfPaths, ifindex: u32, previous: VxConfig) -> Result<UplinkMode> {
    let pin = paths.link(LINK_UPLINK);
    if pin.exists() {
        let info = sys::pinned_link_info(&pin)?;
        if info.ifindex == ifindex {
            return Ok(if previous.flags & CFG_UPLINK_GENERIC != 0 {
                UplinkMode::Generic
            } else {
                UplinkMode::Driver
            });
        }
        // Another (or a vanished) uplink: replace the attachment.
        sys::detach_and_unpin(&pin)?;
    }
    attach_uplink(paths, ifindex)
}

fn attach_uplink(paths: &BpfPaths, ifindex: u32) -> Result<UplinkMode> {
    let pin = paths.link(LINK_UPLINK);
    let driver = attach_xdp_pinned(paths, PROG_UPLINK, ifindex, sys::XDP_FLAGS_DRV_MODE, &pin);
    let driver_err = match driver {
        Ok(()) => return Ok(UplinkMode::Driver),
        Err(e) => e,
    };
    if errno_in(&driver_err) == Some(libc::EBUSY) {
        return Err(driver_err).with_context(|| {
            format!(
                "attach {PROG_UPLINK} to uplink ifindex {ifindex}: another XDP program is attached"
            )
        });
    }
    attach_xdp_pinned(paths, PROG_UPLINK, ifindex, sys::XDP_FLAGS_SKB_MODE, &pin).with_context(|| {
        format!(
            "attach {PROG_UPLINK} to uplink ifindex {ifindex}: driver mode failed ({driver_err:#}), \
             generic mode failed too"
        )
    })?;
    Ok(UplinkMode::Generic)
}

/// Detaches every link of this layout (uplink and host veths) and removes all
/// pins, under the node lock (taken here: the caller must not hold it). For
/// tests and operators; pods lose their datapath. Nothing pinned at all is Ok.
pub fn teardown_node(paths: &BpfPaths) -> Result<()> {
    if !paths.root().exists() {
        return Ok(());
    }
    let _lock = lock::exclusive(paths.root())?;
    let mut errors = Vec::new();
    if let Ok(entries) = std::fs::read_dir(paths.links_dir()) {
        for entry in entries.flatten() {
            if let Err(e) = sys::detach_and_unpin(&entry.path()) {
                errors.push(format!("{e:#}"));
            }
        }
    }
    match std::fs::remove_dir_all(paths.version_dir()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => errors.push(format!("remove {}: {e}", paths.version_dir().display())),
    }
    // The root goes too if nothing else (another layout version) is in it.
    let _ = std::fs::remove_dir(paths.root());
    if !errors.is_empty() {
        bail!("teardown_node: {}", errors.join("; "));
    }
    Ok(())
}
