//! The XDP datapath's part of each verb: node setup (load once, pin, attach
//! the uplink program), per-pod map entries and host-veth programs, the pod
//! side, and what CHECK verifies. The mechanisms live in `crate::bpf`; this
//! file decides what each verb asks of them. Its input is plain data
//! ([`PodDatapathSpec`]), so it serves every verb without knowing any.

use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::Path;

use ipnetwork::IpNetwork;

use crate::bpf::types::{VxServices, MAX_NODE_ADDRS};
use crate::bpf::{self, BpfPaths, Hook, Maps, NodeSpec, PodDatapath, UplinkMode};
use crate::cni::{CniError, CniResult, Code, Context};
use crate::egress::EgressMode;
use crate::kernel;
use crate::mac::Mac;
use crate::netdev::Netdev;
use crate::netlink::{Link, Netlink, XdpMode};
use crate::rollback::Rollback;
use crate::sysctl;

/// What node setup found out, for the per-pod steps.
#[derive(Debug, Clone)]
pub struct NodeDatapath {
    /// The uplink advertises ndo-xmit: host veths XDP-redirect to it; else the tc fallback.
    pub uplink_can_xmit: bool,
    pub uplink_mode: UplinkMode,
    /// The node's addresses, as put into the node-address map.
    pub node_addrs: Vec<IpAddr>,
    /// The network has service ranges: pods get the flow-tracking egress program.
    pub services: bool,
    /// What this setup had to do: load the object, attach the uplink program.
    pub loaded_now: bool,
    pub uplink_attached_now: bool,
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

/// One pod as the datapath sees it: the plain input of attach and check.
#[derive(Debug, Clone)]
pub struct PodDatapathSpec<'a> {
    pub bpf_root: &'a Path,
    /// the host veth, as it is now (name, ifindex, MAC)
    pub host: &'a Link,
    pub pod_mac: Mac,
    pub ips: &'a [IpNetwork],
    pub egress: EgressMode,
    /// what the pod may send beyond IPv4/IPv6/ARP without router frames
    /// (`bpf::types::POD_ALLOW_*`)
    pub allow: u32,
}

/// The attachment key of a pod's host-veth links: its host veth name (unique
/// on the node, derived from container ID + ifname, so DEL needs no record).
fn link_key(host_name: &str) -> &str {
    host_name
}

/// Loads and pins the datapath once, attaches the uplink program (driver mode,
/// generic only where the driver refuses), refreshes the node addresses. Shared
/// by ADD and `veth-xdp setup`; the caller holds the node lock.
pub async fn setup_node(
    bpf_root: &Path,
    max_pods: u32,
    uplink: &Link,
    service_cidrs: &[IpNetwork],
) -> CniResult<NodeDatapath> {
    kernel::require_datapath()?;
    let paths = BpfPaths::new(bpf_root);
    bpf::ensure_bpffs(bpf_root).context("bpffs")?;
    let features = Netdev::current()?
        .xdp_features(uplink.index)
        .await
        .context("read uplink xdp-features")?
        .ok_or_else(|| {
            CniError::new(
                Code::KernelFeature,
                "no netdev genetlink family: Linux 6.3 or newer is needed",
            )
        })?;
    let spec = NodeSpec {
        uplink_ifindex: uplink.index,
        uplink_mac: uplink.mac.unwrap_or_default(),
        uplink_can_xmit: features.ndo_xmit,
        max_pods,
        services: VxServices::from_cidrs(service_cidrs),
        uplink_is_veth: uplink.kind.as_deref() == Some("veth"),
    };
    let services = !service_cidrs.is_empty();
    if services {
        enable_forwarding(service_cidrs.iter().any(IpNetwork::is_ipv6))?;
    }
    let status = bpf::ensure_node(&paths, &spec).context("set up the node datapath")?;
    if status.loaded_now {
        log::info!(
            "datapath loaded and pinned under {}; uplink {} program in {:?} mode; uplink ndo-xmit: {}",
            bpf_root.display(), uplink.name, status.uplink_mode, features.ndo_xmit
        );
    }
    let node_addrs = refresh_node_addrs(&paths, uplink).await?;
    Ok(NodeDatapath {
        uplink_can_xmit: features.ndo_xmit,
        uplink_mode: status.uplink_mode,
        node_addrs,
        services,
        loaded_now: status.loaded_now,
        uplink_attached_now: status.uplink_attached_now,
    })
}

/// A node routing Service traffic forwards (kube-proxy DNATs a pod's frame to
/// a backend elsewhere); turned on once, said in the log.
fn enable_forwarding(ipv6: bool) -> CniResult<()> {
    for key in sysctl::node_forwarding_keys(ipv6) {
        if sysctl::get(key)? != "1" {
            sysctl::set(key, "1")?;
            log::info!("service ranges configured: {key} = 1 (the node forwards Service traffic)");
        }
    }
    if let Some(why) = strict_rp_filter() {
        log::warn!("{why}");
    }
    Ok(())
}

/// Strict reverse-path filtering (`net.ipv4.conf.all.rp_filter=1`, which
/// overrides every device's looser setting) drops a backend's answer that the
/// stack gets on the backend's host veth for a client behind another host veth.
fn strict_rp_filter() -> Option<String> {
    let key = "net/ipv4/conf/all/rp_filter";
    (sysctl::get(key).ok()? == "1").then(|| {
        format!("{key} is 1 (strict): answers of Service backends on this node to clients on this node are dropped by the stack; set it to 2 (loose) or 0")
    })
}

/// Keeps the node-address map (ARP/ND from pods for these is answered by the
/// node) current: the uplink's addresses, the only ones a station on the
/// uplink's segment resolves. One kernel-filtered dump of one link, so ADD
/// does not grow with the node's other addresses (kube-proxy's IPVS mode puts
/// every ClusterIP on kube-ipvs0) nor with the pods (every host veth has a
/// link-local address).
async fn refresh_node_addrs(paths: &BpfPaths, uplink: &Link) -> CniResult<Vec<IpAddr>> {
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = Netlink::current_strict()?
        .addr_list(uplink.index)
        .await?
        .into_iter()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback())
        .partition(IpAddr::is_ipv4);
    let max = MAX_NODE_ADDRS as usize;
    for (family, list) in [("IPv4", &v4), ("IPv6", &v6)] {
        if list.len() > max {
            log::warn!(
                "uplink {} has {} {family} addresses; pods' ARP/ND is answered for the first {max}",
                uplink.name,
                list.len()
            );
        }
    }
    let addrs: Vec<IpAddr> = v4
        .into_iter()
        .take(max)
        .chain(v6.into_iter().take(max))
        .collect();
    Maps::open(paths)
        .and_then(|mut maps| maps.set_node_addrs(&addrs))
        .context("update node addresses")?;
    Ok(addrs)
}

fn is_ipv6_link_local(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// Per-pod datapath: the host-veth program(s), the optional pass program on
/// the pod end (`pod_end`: its netlink socket and link), proof that the pod end
/// can take redirects, and the map entries last (the uplink redirects to a pod
/// only once its MAC is in the maps). Each step pushes its undo.
pub async fn attach_pod<'a>(
    pod: &PodDatapathSpec<'_>,
    node_dp: &NodeDatapath,
    pod_end: Option<(&Netlink, &Link)>,
    rb: &mut Rollback<'a>,
) -> CniResult<()> {
    let paths = BpfPaths::new(pod.bpf_root);
    let key = link_key(&pod.host.name).to_string();
    let undo_paths = paths.clone();
    rb.push("host veth programs", move || async move {
        Ok(bpf::detach_host(&undo_paths, &key)?)
    });
    ensure_host_programs(&paths, pod.host, pod.egress, node_dp)?;
    if let Some((nl, link)) = pod_end {
        let prog = bpf::pod_pass_program(&paths).context("open pod program")?;
        nl.xdp_attach(link.index, prog.as_fd(), XdpMode::Driver)
            .await
            .map_err(|e| {
                CniError::new(
                    Code::Datapath,
                    format!("attach pass program to the pod's {}: {e}", link.name),
                )
            })?;
    }
    require_ndo_xmit(pod.host).await?;

    let undo_paths = paths.clone();
    let host_index = pod.host.index;
    rb.push("datapath map entries", move || async move {
        Ok(Maps::open(&undo_paths)?.remove_pod(host_index)?)
    });
    Maps::open(&paths)
        .and_then(|mut maps| maps.insert_pod(&map_entry(pod)))
        .context("insert pod into datapath maps")
}

fn map_entry(pod: &PodDatapathSpec<'_>) -> PodDatapath {
    let ips = || pod.ips.iter().map(IpNetwork::ip);
    PodDatapath {
        host_ifindex: pod.host.index,
        host_mac: pod.host.mac.unwrap_or_default(),
        pod_mac: pod.pod_mac,
        allow: pod.allow,
        ipv4s: ips()
            .filter_map(|ip| match ip {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })
            .collect(),
        ipv6s: ips()
            .filter_map(|ip| match ip {
                IpAddr::V6(a) => Some(a),
                IpAddr::V4(_) => None,
            })
            .collect(),
    }
}

/// Attaches the host veth's programs the egress mode and the node want, each
/// unless already attached (idempotent: ADD, and the agent's repair); returns
/// the hooks attached by this call.
pub fn ensure_host_programs(
    paths: &BpfPaths,
    host: &Link,
    mode: EgressMode,
    node_dp: &NodeDatapath,
) -> CniResult<Vec<&'static str>> {
    let key = link_key(&host.name);
    let mut attached = Vec::new();
    let mut note = |hook: &'static str, now: bool| {
        if now {
            attached.push(hook);
        }
    };
    let xdp = mode == EgressMode::Xdp;
    // The uplink cannot take XDP-redirected frames (no ndo_xdp_xmit): the XDP
    // program passes uplink-bound frames up, and tc redirects the skb.
    let tc = mode == EgressMode::Tc || !node_dp.uplink_can_xmit;
    // tcx (6.6) is checked by the bpf layer before each attach (107).
    if node_dp.services {
        let now = bpf::attach_host_egress(paths, key, host.index)
            .context("attach the flow-tracking program to the host veth's egress")?;
        note("flow-tracking egress", now);
        // Frames vx_host_xdp readdresses to the stack keep PACKET_OTHERHOST
        // without it (veth skb path, bpf/lib/hook_tc.h); vx_host_tc, where
        // attached, fixes pkt_type itself.
        if xdp && !tc {
            let now = bpf::attach_host_readdressed(paths, key, host.index)
                .context("attach the PACKET_HOST fix-up to the host veth")?;
            note("PACKET_HOST fix-up", now);
        }
    }
    if xdp {
        let now =
            bpf::attach_host_xdp(paths, key, host.index).context("attach XDP to the host veth")?;
        note("xdp", now);
    }
    if tc {
        let now =
            bpf::attach_host_tc(paths, key, host.index).context("attach tc to the host veth")?;
        note("tc", now);
    }
    Ok(attached)
}

/// Puts the pod back into the datapath maps if its entry is missing (the
/// agent's repair); Ok(true) when it was missing.
pub fn ensure_pod_entry(pod: &PodDatapathSpec<'_>) -> CniResult<bool> {
    let paths = BpfPaths::new(pod.bpf_root);
    let mut maps = Maps::open(&paths).context("open datapath maps")?;
    if maps
        .pod_present(pod.host.index)
        .context("read datapath maps")?
    {
        return Ok(false);
    }
    maps.insert_pod(&map_entry(pod))
        .context("insert pod into datapath maps")?;
    Ok(true)
}

/// Whether the host veth advertises ndo-xmit (a veth does only while its peer
/// has GRO or an XDP program: without it, redirected frames are dropped silently).
async fn host_takes_redirects(host_index: u32) -> CniResult<bool> {
    let features = Netdev::current()?
        .xdp_features(host_index)
        .await
        .context("read host veth xdp-features")?;
    Ok(features.is_some_and(|f| f.ndo_xmit))
}

async fn require_ndo_xmit(host: &Link) -> CniResult<()> {
    if host_takes_redirects(host.index).await? {
        Ok(())
    } else {
        Err(CniError::new(
            Code::Datapath,
            format!("host veth {} does not advertise ndo-xmit: the pod end has neither GRO nor an XDP program, so redirected frames would be dropped", host.name),
        ))
    }
}

/// Removes the pod's programs and map entries (idempotent; nothing to do on a
/// node whose datapath was never set up). Programs first: a program without
/// entries would drop the pod's frames. `host_ifindex`: the host veth's index
/// from the record, or of the link if it still exists; without either (netns
/// and record gone), the pod is found by its MAC.
pub fn detach_pod(
    bpf_root: &Path,
    host_name: &str,
    host_ifindex: Option<u32>,
    pod_mac: Mac,
) -> CniResult<()> {
    let paths = BpfPaths::new(bpf_root);
    if !paths.version_dir().exists() {
        return Ok(());
    }
    bpf::detach_host(&paths, link_key(host_name)).context("detach host veth programs")?;
    let Some(mut maps) = Maps::open_existing(&paths).context("open datapath maps")? else {
        return Ok(());
    };
    match host_ifindex {
        Some(ifindex) => maps.remove_pod(ifindex),
        None => maps.remove_pod_by_mac(pod_mac),
    }
    .context("remove pod from datapath maps")
}

/// CHECK's datapath part: programs attached as the egress mode wants, the pod
/// end able to take redirects, the map entries present, the uplink program on
/// `uplink` (name, ifindex). Returns what differs.
pub async fn check_pod(
    pod: &PodDatapathSpec<'_>,
    pod_ifname: &str,
    uplink: (&str, u32),
    services: bool,
) -> Vec<String> {
    let paths = BpfPaths::new(pod.bpf_root);
    let host = pod.host;
    let mut findings = Vec::new();
    if services {
        findings.extend(check_services(&paths, host));
    }
    match bpf::host_attachment(&paths, link_key(&host.name)) {
        Ok(hook) if egress_hook_matches(pod.egress, hook, host.index) => {}
        Ok(hook) => findings.push(format!(
            "host veth {} should have the {} egress program attached, found {hook:?}",
            host.name,
            pod.egress.as_str()
        )),
        Err(e) => findings.push(format!("read host veth attachment: {e}")),
    }
    match Maps::open(&paths).and_then(|maps| maps.pod_present(host.index)) {
        Ok(true) => {}
        Ok(false) => findings.push(format!(
            "pod {} is missing from the datapath maps",
            crate::mac::mac_to_string(&pod.pod_mac)
        )),
        Err(e) => findings.push(format!("read datapath maps: {e}")),
    }
    let (uplink_name, uplink_index) = uplink;
    match bpf::pinned_link_info(&paths.link(bpf::LINK_UPLINK)) {
        Ok(info) if info.ifindex == uplink_index => {}
        Ok(info) => findings.push(format!(
            "the uplink program is attached to ifindex {}, not uplink {uplink_name}",
            info.ifindex
        )),
        Err(e) => findings.push(format!("the uplink program is not attached: {e}")),
    }
    match host_takes_redirects(host.index).await {
        Ok(true) => {}
        Ok(false) => findings.push(format!(
            "host veth {} does not advertise ndo-xmit: the pod end has neither GRO nor an XDP program, redirected frames are dropped (turn GRO back on in the pod: ethtool -K {pod_ifname} gro on)",
            host.name
        )),
        Err(e) => findings.push(e.msg),
    }
    findings
}

/// On a network with service ranges: the flow-tracking program on the host
/// veth's egress, and the node forwarding.
fn check_services(paths: &BpfPaths, host: &Link) -> Vec<String> {
    let mut findings = Vec::new();
    match bpf::host_egress_attachment(paths, link_key(&host.name)) {
        Ok(Some(ifindex)) if ifindex == host.index => {}
        Ok(found) => findings.push(format!(
            "host veth {} should have the flow-tracking egress program attached (service ranges are configured), found {found:?}",
            host.name
        )),
        Err(e) => findings.push(format!("read host veth egress attachment: {e}")),
    }
    findings.extend(strict_rp_filter());
    for key in sysctl::node_forwarding_keys(false) {
        match sysctl::get(key) {
            Ok(v) if v == "1" => {}
            Ok(v) => findings.push(format!(
                "{key} is {v}: the node must forward Service traffic (service ranges are configured)"
            )),
            Err(e) => findings.push(e.to_string()),
        }
    }
    findings
}

fn egress_hook_matches(egress: EgressMode, hook: Option<Hook>, host_index: u32) -> bool {
    match (egress, hook) {
        (
            EgressMode::Xdp,
            Some(
                Hook::Xdp { ifindex }
                | Hook::XdpAndTc {
                    xdp_ifindex: ifindex,
                    ..
                },
            ),
        ) => ifindex == host_index,
        (EgressMode::Tc, Some(Hook::Tc { ifindex })) => ifindex == host_index,
        _ => false,
    }
}
