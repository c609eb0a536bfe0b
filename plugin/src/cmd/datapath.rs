//! The XDP datapath's part of each verb: node setup (load once, pin, attach
//! the uplink program), per-pod map entries and host-veth programs, the pod
//! side, and what CHECK verifies. The mechanisms live in `crate::bpf`; this
//! file decides what each verb asks of them.

use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::AsFd;

use ipnetwork::IpNetwork;

use super::add::Plan;
use super::check::Findings;
use crate::bpf::{self, BpfPaths, Hook, Maps, NodeSpec, PodDatapath, UplinkMode};
use crate::cni::config::{EgressMode, PodProgram};
use crate::cni::error::{CniError, CniResult, Code, OrCode};
use crate::cni::Request;
use crate::kernel;
use crate::netdev::Netdev;
use crate::netlink::{Link, Netlink, XdpMode};
use crate::record::Record;
use crate::rollback::Rollback;

/// What node setup found out, for the per-pod steps.
#[derive(Debug, Clone)]
pub struct NodeDatapath {
    /// The uplink advertises ndo-xmit: host veths XDP-redirect to it; else the tc fallback.
    pub uplink_can_xmit: bool,
    pub uplink_mode: UplinkMode,
    /// The node's addresses, as put into the node-address map.
    pub node_addrs: Vec<IpAddr>,
}

impl NodeDatapath {
    /// The node's IPv6 addresses a pod may need to resolve (not link-local).
    pub fn node_ipv6(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.node_addrs.iter().filter_map(|a| match a {
            IpAddr::V6(v6) if !is_ipv6_link_local(a) => Some(*v6),
            _ => None,
        })
    }
}

/// The attachment key of a pod's host-veth links: its host veth name (unique
/// on the node, derived from container ID + ifname, so DEL needs no record).
fn link_key(host_name: &str) -> &str {
    host_name
}

/// Node-wide setup, idempotent; the caller holds the node lock.
pub async fn prepare_node(req: &Request, plan: &Plan, node: &Netlink) -> CniResult<NodeDatapath> {
    setup_node(node, &req.conf.bpf_root, req.conf.max_pods, &plan.uplink).await
}

/// Loads and pins the datapath once, attaches the uplink program (driver mode,
/// generic only where the driver refuses), refreshes the node addresses. Shared
/// by ADD and `veth-xdp setup`; the caller holds the node lock.
pub async fn setup_node(
    node: &Netlink,
    bpf_root: &std::path::Path,
    max_pods: u32,
    uplink: &Link,
) -> CniResult<NodeDatapath> {
    kernel::require_datapath()?;
    let paths = BpfPaths::new(bpf_root);
    bpf::ensure_bpffs(bpf_root).map_err(|e| CniError::from(e).context("bpffs"))?;
    let netdev = Netdev::current().or_code(Code::Datapath, "netdev genetlink")?;
    let features = netdev
        .xdp_features(uplink.index)
        .await
        .or_code(Code::Datapath, "read uplink xdp-features")?
        .ok_or_else(|| {
            CniError::new(
                Code::KernelFeature,
                "no netdev genetlink family: Linux 6.3 or newer is needed",
            )
        })?;
    let spec = NodeSpec {
        uplink_ifindex: uplink.index,
        uplink_can_xmit: features.ndo_xmit,
        max_pods,
    };
    let status = bpf::ensure_node(&paths, &spec)
        .map_err(|e| CniError::from(e).context("set up the node datapath"))?;
    if status.loaded_now {
        log::info!(
            "datapath loaded and pinned under {}; uplink {} program in {:?} mode; uplink ndo-xmit: {}",
            bpf_root.display(), uplink.name, status.uplink_mode, features.ndo_xmit
        );
    }
    let node_addrs = refresh_node_addrs(node, &paths, uplink.index).await?;
    Ok(NodeDatapath {
        uplink_can_xmit: features.ndo_xmit,
        uplink_mode: status.uplink_mode,
        node_addrs,
    })
}

/// Keeps the node-address map (ARP/ND for these is answered by the node) current.
/// IPv6 link-local addresses count only on the uplink: every host veth has
/// one, so counting those would make the map (sized for the node's own
/// addresses) grow with the pod count, and they are scoped to that pod's link.
/// One address dump, no link dump: a link dump costs ~1.5 KB per pod.
async fn refresh_node_addrs(
    node: &Netlink,
    paths: &BpfPaths,
    uplink_index: u32,
) -> CniResult<Vec<IpAddr>> {
    let addrs: Vec<IpAddr> = node
        .addr_list_all()
        .await
        .map_err(|e| CniError::new(Code::Netlink, e.to_string()))?
        .into_iter()
        .filter(|(index, a)| *index == uplink_index || !is_ipv6_link_local(&a.ip()))
        .map(|(_, a)| a.ip())
        .filter(|ip| !ip.is_loopback())
        .collect();
    Maps::open(paths)
        .and_then(|mut maps| maps.set_node_addrs(&addrs))
        .map_err(|e| CniError::from(e).context("update node addresses"))?;
    Ok(addrs)
}

fn is_ipv6_link_local(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// Whether this pod gets our pass program on its eth0.
pub fn wants_pod_program(req: &Request) -> bool {
    match req.conf.pod_program {
        PodProgram::Always => true,
        PodProgram::Never => false,
        PodProgram::Auto => !kernel::gro_enables_veth_napi(),
    }
}

/// Per-pod datapath: map entries, the host-veth program(s), the optional pod
/// program, and proof that the pod end can take redirects. Returns whether a
/// pod program was attached.
#[allow(clippy::too_many_arguments)]
pub async fn attach_pod<'a>(
    req: &'a Request,
    plan: &'a Plan,
    node_dp: &NodeDatapath,
    host: &Link,
    pod_link: &Link,
    ips: &[IpNetwork],
    pod: &'a Netlink,
    rb: &mut Rollback<'a>,
) -> CniResult<bool> {
    let paths = BpfPaths::new(&req.conf.bpf_root);
    let entry = PodDatapath {
        host_ifindex: host.index,
        host_mac: host.mac.unwrap_or_default(),
        pod_mac: plan.pod_mac,
        ipv4s: ips
            .iter()
            .filter_map(|n| match n.ip() {
                IpAddr::V4(a) => Some(a),
                _ => None,
            })
            .collect(),
        ipv6s: ips
            .iter()
            .filter_map(|n| match n.ip() {
                IpAddr::V6(a) => Some(a),
                _ => None,
            })
            .collect(),
    };
    // Programs first, entries last: the uplink redirects to a pod only once its MAC is in the maps.
    let key = link_key(&plan.host_name).to_string();
    let undo_paths = paths.clone();
    rb.push("host veth programs", move || async move {
        Ok(bpf::detach_host(&undo_paths, &key)?)
    });
    attach_host_programs(
        &paths,
        &plan.host_name,
        host.index,
        plan.egress,
        node_dp.uplink_can_xmit,
    )?;

    let mut pod_program = false;
    if wants_pod_program(req) {
        let prog = bpf::pod_pass_program(&paths)
            .map_err(|e| CniError::from(e).context("open pod program"))?;
        pod.xdp_attach(pod_link.index, prog.as_fd(), XdpMode::Driver)
            .await
            .map_err(|e| {
                CniError::new(
                    Code::Datapath,
                    format!("attach pass program to the pod's {}: {e}", pod_link.name),
                )
            })?;
        pod_program = true;
    }
    require_ndo_xmit(host).await?;

    let undo_paths = paths.clone();
    let host_index = host.index;
    rb.push("datapath map entries", move || async move {
        Ok(Maps::open(&undo_paths)?.remove_pod(host_index)?)
    });
    Maps::open(&paths)
        .and_then(|mut maps| maps.insert_pod(&entry))
        .map_err(|e| CniError::from(e).context("insert pod into datapath maps"))?;
    Ok(pod_program)
}

fn attach_host_programs(
    paths: &BpfPaths,
    host_name: &str,
    index: u32,
    mode: EgressMode,
    uplink_can_xmit: bool,
) -> CniResult<()> {
    let key = link_key(host_name);
    match mode {
        EgressMode::Xdp => {
            bpf::attach_host_xdp(paths, key, index)
                .map_err(|e| CniError::from(e).context("attach XDP to the host veth"))?;
            if !uplink_can_xmit {
                // The uplink cannot take XDP-redirected frames (no ndo_xdp_xmit):
                // the XDP program passes uplink-bound frames up, and tc redirects the skb.
                bpf::attach_host_tc(paths, key, index).map_err(|e| {
                    CniError::from(e).context("attach the tc fallback to the host veth")
                })?;
            }
        }
        EgressMode::Tc => bpf::attach_host_tc(paths, key, index)
            .map_err(|e| CniError::from(e).context("attach tc to the host veth"))?,
    }
    Ok(())
}

/// A veth advertises ndo-xmit only while its peer has GRO or an XDP program:
/// without it, frames redirected into the pod would be dropped silently.
async fn require_ndo_xmit(host: &Link) -> CniResult<()> {
    let netdev = Netdev::current().or_code(Code::Datapath, "netdev genetlink")?;
    let f = netdev
        .xdp_features(host.index)
        .await
        .or_code(Code::Datapath, "read host veth xdp-features")?;
    if f.is_some_and(|f| f.ndo_xmit) {
        Ok(())
    } else {
        Err(CniError::new(
            Code::Datapath,
            format!("host veth {} does not advertise ndo-xmit: the pod end has neither GRO nor an XDP program, so redirected frames would be dropped", host.name),
        ))
    }
}

/// Removes the pod's map entries and programs (idempotent; nothing to do on a
/// node whose datapath was never set up).
pub async fn detach_pod(
    req: &Request,
    target: &super::del::Target,
    host: Option<&Link>,
) -> CniResult<()> {
    let root = target
        .record
        .as_ref()
        .map(|r| r.bpf_root.clone())
        .filter(|r| !r.is_empty());
    let paths = BpfPaths::new(root.unwrap_or_else(|| req.conf.bpf_root.display().to_string()));
    if !paths.version_dir().exists() {
        return Ok(());
    }
    let ifindex = target
        .record
        .as_ref()
        .map(|r| r.host_ifindex)
        .or(host.map(|h| h.index));
    if let Some(ifindex) = ifindex {
        Maps::open_existing(&paths)
            .and_then(|maps| maps.map_or(Ok(()), |mut maps| maps.remove_pod(ifindex)))
            .map_err(|e| CniError::from(e).context("remove pod from datapath maps"))?;
    }
    bpf::detach_host(&paths, link_key(&target.host_name))
        .map_err(|e| CniError::from(e).context("detach host veth programs"))
}

/// CHECK's datapath part: programs attached as the egress mode wants, the pod
/// end able to take redirects, the map entries present.
pub async fn check_pod(_req: &Request, rec: &Record, host: &Link, f: &mut Findings) {
    let paths = BpfPaths::new(&rec.bpf_root);
    match bpf::host_attachment(&paths, link_key(&rec.host_ifname)) {
        Ok(hook) => {
            let ok = match (rec.egress, hook) {
                (
                    EgressMode::Xdp,
                    Some(
                        Hook::Xdp { ifindex }
                        | Hook::XdpAndTc {
                            xdp_ifindex: ifindex,
                            ..
                        },
                    ),
                ) => ifindex == host.index,
                (EgressMode::Tc, Some(Hook::Tc { ifindex })) => ifindex == host.index,
                _ => false,
            };
            if !ok {
                f.add(format!(
                    "host veth {} should have the {} egress program attached, found {hook:?}",
                    rec.host_ifname,
                    rec.egress.as_str()
                ));
            }
        }
        Err(e) => f.add(format!("read host veth attachment: {e:#}")),
    }
    match Maps::open(&paths).and_then(|maps| maps.pod_present(host.index)) {
        Ok(true) => {}
        Ok(false) => f.add(format!(
            "pod {} is missing from the datapath maps",
            rec.pod_mac
        )),
        Err(e) => f.add(format!("read datapath maps: {e:#}")),
    }
    match bpf::pinned_link_info(&paths.link(bpf::LINK_UPLINK)) {
        Ok(info) if info.ifindex == rec.uplink_ifindex => {}
        Ok(info) => f.add(format!(
            "the uplink program is attached to ifindex {}, not uplink {}",
            info.ifindex, rec.uplink
        )),
        Err(e) => f.add(format!("the uplink program is not attached: {e:#}")),
    }
    match Netdev::current() {
        Ok(nd) => match nd.xdp_features(host.index).await {
            Ok(Some(x)) if x.ndo_xmit => {}
            Ok(_) => f.add(format!(
                "host veth {} does not advertise ndo-xmit: the pod end has neither GRO nor an XDP program, redirected frames are dropped (turn GRO back on in the pod: ethtool -K {} gro on)",
                rec.host_ifname, rec.ifname
            )),
            Err(e) => f.add(format!("read xdp-features: {e:#}")),
        },
        Err(e) => f.add(format!("netdev genetlink: {e:#}")),
    }
}
