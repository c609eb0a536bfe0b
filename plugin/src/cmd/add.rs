//! ADD: a straight line of named steps, each pushing its undo onto the
//! rollback stack; unless every step succeeds and the record is written, the
//! stack runs and the node is left as it was.

use std::os::fd::AsFd;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use ipnetwork::IpNetwork;

use super::datapath::{self, NodeDatapath, PodDatapathSpec};
use super::node::{pod_mtu, queue_count, resolve_uplink};
use super::{fault_point, policy};
use crate::bpf::types::{POD_ALLOW_ETHERTYPES, POD_ALLOW_ROUTER};
use crate::cni::result::{CniOutput, Dns, Interface, IpConfig, RouteConfig};
use crate::cni::{CniError, CniResult, Code, Context, NetConf, Request};
use crate::egress::EgressMode;
use crate::ethtool::{Channels, Ethtool};
use crate::mac::{mac_to_string, Mac};
use crate::netlink::{Link, Netlink, Route, VethSpec};
use crate::netns::validate_netns_path;
use crate::record::{Record, Store, RECORD_VERSION};
use crate::rollback::Rollback;
use crate::{bpf, ipam, ipam_lease, naming};

/// Everything ADD decided before changing anything.
struct Plan {
    netns: std::path::PathBuf,
    host_name: String,
    pod_mac: Mac,
    uplink: Link,
    mtu: u32,
    queues: u32,
    egress: EgressMode,
}

pub async fn run(req: &Request) -> CniResult<String> {
    let netns = req
        .env
        .netns
        .clone()
        .expect("ADD has CNI_NETNS (checked in cni::parse_env)");
    validate_netns_path(&netns)?;
    let store = Store::new(&req.conf.state_dir, &req.conf.name);
    let _attachments = store
        .lock_for_verb(true)
        .context("lock the network's attachments")?;
    if store.exists(&req.env.container_id, &req.env.ifname) {
        return Err(CniError::new(
            Code::AttachmentExists,
            format!(
                "container {} already has interface {} on network {}: DEL it first",
                req.env.container_id, req.env.ifname, req.conf.name
            ),
        ));
    }
    ipam::preflight(req)?;
    let sockets = Sockets::open(&netns)?;
    let plan = plan(req, &sockets.node, &sockets.pod, netns).await?;
    let node_dp = prepare_node(req, &plan, &sockets).await?;

    let mut rollback = Rollback::new();
    // A panic in a step must not leave the node half-built: catch it, undo, report.
    let built = AssertUnwindSafe(build(req, &plan, &node_dp, &sockets, &store, &mut rollback))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(panicked(panic)));
    match built {
        Ok(output) => {
            rollback.commit();
            Ok(
                serde_json::to_string(&output.to_json(&req.conf.cni_version))
                    .expect("result serialises"),
            )
        }
        Err(mut e) => {
            let failures = rollback.run().await;
            if !failures.is_empty() {
                e.details = format!(
                    "{} (rollback incomplete: {})",
                    e.details,
                    failures.join("; ")
                );
            }
            Err(e)
        }
    }
}

/// A panic in ADD, as the CNI error the runtime gets (the undo stack still runs).
fn panicked(panic: Box<dyn std::any::Any + Send>) -> CniError {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    CniError::new(
        Code::Internal,
        format!("ADD panicked (a bug, please report it): {what}; everything it made is undone"),
    )
}

/// Checks the names and settings before anything is created.
async fn plan(
    req: &Request,
    node: &Netlink,
    pod: &Netlink,
    netns: std::path::PathBuf,
) -> CniResult<Plan> {
    let uplink = resolve_uplink(node, req.conf.uplink.as_deref()).await?;
    let mtu = pod_mtu(&req.conf, &uplink)?;
    let host_name = naming::host_veth_name(&req.env.container_id, &req.env.ifname);
    if node.link_by_name(&host_name).await?.is_some() {
        return Err(CniError::new(
            Code::AttachmentExists,
            format!(
                "host veth {host_name} (for container {} ifname {}) exists already",
                req.env.container_id, req.env.ifname
            ),
        ));
    }
    if pod.link_by_name(&req.env.ifname).await?.is_some() {
        return Err(CniError::new(
            Code::InvalidEnv,
            format!(
                "CNI_IFNAME {} already exists in {}: pick another name",
                req.env.ifname,
                netns.display()
            ),
        ));
    }
    Ok(Plan {
        netns,
        host_name,
        pod_mac: req
            .conf
            .requested_mac
            .unwrap_or_else(|| naming::pod_mac(&req.env.container_id, &req.env.ifname)),
        uplink,
        mtu,
        queues: queue_count(&req.conf),
        egress: req.conf.pod_egress(),
    })
}

/// The netlink and ethtool sockets of an ADD, opened once in each namespace.
struct Sockets {
    node: Netlink,
    pod: Netlink,
    node_eth: Ethtool,
    pod_eth: Ethtool,
}

impl Sockets {
    fn open(netns: &std::path::Path) -> CniResult<Self> {
        Ok(Self {
            node: Netlink::current()?,
            pod: Netlink::in_netns(netns)?,
            node_eth: Ethtool::current()?,
            pod_eth: Ethtool::in_netns(netns)?,
        })
    }
}

/// Node-wide, idempotent settings, under the node lock.
async fn prepare_node(req: &Request, plan: &Plan, sockets: &Sockets) -> CniResult<NodeDatapath> {
    let eth = &sockets.node_eth;
    let uplink = &plan.uplink.name;
    let _lock = bpf::lock_node(&bpf::BpfPaths::new(&req.conf.bpf_root))?;
    let present = eth
        .features(uplink)
        .await
        .context(format!("uplink {uplink}"))?;
    let wanted: Vec<(&str, bool)> = policy::uplink_features()
        .into_iter()
        .filter(|(f, on)| present.get(*f).is_some_and(|cur| cur != on))
        .collect();
    eth.set_features(uplink, &wanted)
        .await
        .context(format!("uplink {uplink}"))?;
    datapath::setup_node(
        &req.conf.bpf_root,
        req.conf.max_pods,
        &plan.uplink,
        &req.conf.service_cidrs,
    )
    .await
}

/// The steps that change the node, in order.
async fn build<'a>(
    req: &'a Request,
    plan: &'a Plan,
    node_dp: &NodeDatapath,
    sockets: &'a Sockets,
    store: &'a Store,
    rb: &mut Rollback<'a>,
) -> CniResult<CniOutput> {
    let (node, pod) = (&sockets.node, &sockets.pod);
    let ipam_out = if ipam_lease::is_builtin(req) {
        let pending = |ips| Record {
            pending: true,
            ..record(req, plan, 0, ips, serde_json::Value::Null)
        };
        let out = ipam_lease::lease(req, store, pending)?;
        rb.push("built-in IPAM lease (pending record)", move || async move {
            store
                .remove(&req.env.container_id, &req.env.ifname)
                .map_err(anyhow::Error::from)
        });
        out
    } else {
        let out = ipam::add(req)?;
        rb.push("IPAM lease", move || async move {
            ipam::del(req).map_err(anyhow::Error::from)
        });
        out
    };
    fault_point("ipam")?;

    let (host, pod_link) = create_veth(plan, node, pod, &req.env.ifname, rb).await?;
    fault_point("veth")?;

    set_offloads(plan, &req.env.ifname, sockets).await?;
    verify_channels(plan, &req.env.ifname, sockets).await?;
    fault_point("offloads")?;

    node.link_set_up(host.index).await?;
    pod.link_set_up(pod_link.index).await?;
    fault_point("link-up")?;

    configure_pod_ip(pod, pod_link.index, &ipam_out).await?;
    fault_point("pod-ip")?;

    node.fdb_add_self(plan.uplink.index, plan.pod_mac)
        .await
        .context("add pod MAC to the uplink's unicast filter")?;
    let (uplink_idx, mac) = (plan.uplink.index, plan.pod_mac);
    rb.push("uplink fdb entry", move || async move {
        node.fdb_del_self(uplink_idx, mac)
            .await
            .map(|_| ())
            .map_err(anyhow::Error::from)
    });
    fault_point("fdb")?;

    for ip in &ipam_out.ips {
        let route = Route::host(ip.address.ip(), host.index);
        node.route_add(&route)
            .await
            .context("add host route to the pod")?;
        rb.push(format!("host route {}", route.dst), move || async move {
            node.route_del(&route)
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        });
    }
    answer_ndp_for_node(node, node_dp, &host, &ipam_out).await?;
    fault_point("host-routes")?;

    let ips: Vec<IpNetwork> = ipam_out.ips.iter().map(|i| i.address).collect();
    let spec = PodDatapathSpec {
        bpf_root: &req.conf.bpf_root,
        host: &host,
        pod_mac: plan.pod_mac,
        ips: &ips,
        egress: plan.egress,
        allow: allowed_frames(&req.conf),
    };
    let pod_program = req.conf.pod_program;
    let pod_end = pod_program.then_some((pod, &pod_link));
    datapath::attach_pod(&spec, node_dp, pod_end, rb).await?;
    fault_point("datapath")?;

    let output = result(req, plan, &host, &ipam_out);
    let record = record(req, plan, host.index, ips, output.to_json("1.1.0"));
    store.save(&record).context("write attachment record")?;
    rb.push("attachment record", move || async move {
        store
            .remove(&req.env.container_id, &req.env.ifname)
            .map_err(anyhow::Error::from)
    });
    fault_point("record")?;
    Ok(output)
}

/// The attachment's record: what ADD planned and built (`host_ifindex` 0 and
/// a null result while the built-in IPAM's lease is all there is).
fn record(
    req: &Request,
    plan: &Plan,
    host_ifindex: u32,
    ips: Vec<IpNetwork>,
    result: serde_json::Value,
) -> Record {
    let pod_ref = req.env.k8s_pod();
    Record {
        version: RECORD_VERSION,
        network: req.conf.name.clone(),
        container_id: req.env.container_id.clone(),
        ifname: req.env.ifname.clone(),
        netns: plan.netns.display().to_string(),
        host_ifname: plan.host_name.clone(),
        host_ifindex,
        pod_mac: mac_to_string(&plan.pod_mac),
        ips,
        uplink: plan.uplink.name.clone(),
        uplink_ifindex: plan.uplink.index,
        queues: plan.queues,
        mtu: plan.mtu,
        egress: plan.egress,
        pod_program: req.conf.pod_program,
        bpf_root: req.conf.bpf_root.display().to_string(),
        k8s_namespace: pod_ref.as_ref().map(|p| p.0.clone()),
        k8s_pod: pod_ref.map(|p| p.1),
        allow: allowed_frames(&req.conf),
        result,
        pending: false,
    }
}

/// What this pod may send beyond IPv4/IPv6/ARP without router frames.
fn allowed_frames(conf: &NetConf) -> u32 {
    let mut allow = 0;
    if conf.pod_allows_router_frames() {
        allow |= POD_ALLOW_ROUTER;
    }
    if conf.pod_allows_all_ethertypes() {
        allow |= POD_ALLOW_ETHERTYPES;
    }
    allow
}

/// Creates the pair with the pod end born in the pod namespace, and returns both ends.
async fn create_veth<'a>(
    plan: &'a Plan,
    node: &'a Netlink,
    pod: &'a Netlink,
    ifname: &str,
    rb: &mut Rollback<'a>,
) -> CniResult<(Link, Link)> {
    let ns_file = std::fs::File::open(&plan.netns).map_err(|e| {
        CniError::new(
            Code::UnknownContainer,
            format!("open {}: {e}", plan.netns.display()),
        )
    })?;
    let spec = VethSpec {
        host_name: &plan.host_name,
        pod_name: ifname,
        pod_mac: plan.pod_mac,
        queues: plan.queues,
        mtu: plan.mtu,
        pod_netns: ns_file.as_fd(),
    };
    node.veth_create(&spec).await.map_err(|e| {
        if e.is(libc::EEXIST) {
            CniError::new(
                Code::AttachmentExists,
                format!("veth {} or {ifname} exists already: {e}", plan.host_name),
            )
        } else {
            e.into()
        }
    })?;
    let name = plan.host_name.clone();
    rb.push(format!("veth {name}"), move || async move {
        node.link_delete_by_name(&name)
            .await
            .map(|_| ())
            .map_err(anyhow::Error::from)
    });
    let host = node.link_by_name(&plan.host_name).await?.ok_or_else(|| {
        CniError::new(
            Code::Netlink,
            format!("host veth {} vanished after creation", plan.host_name),
        )
    })?;
    let pod_link = pod.link_by_name(ifname).await?.ok_or_else(|| {
        CniError::new(
            Code::Netlink,
            format!(
                "pod interface {ifname} not found in {}",
                plan.netns.display()
            ),
        )
    })?;
    Ok((host, pod_link))
}

/// Applies the offload policy to both ends (set over genetlink, then re-read).
async fn set_offloads(plan: &Plan, ifname: &str, sockets: &Sockets) -> CniResult<()> {
    sockets
        .node_eth
        .set_features(&plan.host_name, &policy::host_end_features(plan.egress))
        .await
        .context(format!("host veth {}", plan.host_name))?;
    sockets
        .pod_eth
        .set_features(ifname, &policy::pod_end_features(plan.egress))
        .await
        .context(format!("pod interface {ifname}"))
}

/// Both ends must really use `queues` rx and tx channels (a veth created
/// without explicit counts enables only one).
async fn verify_channels(plan: &Plan, ifname: &str, sockets: &Sockets) -> CniResult<()> {
    let check = |who: String, ch: Channels| {
        if ch.rx == plan.queues && ch.tx == plan.queues {
            Ok(())
        } else {
            Err(CniError::new(
                Code::Offload,
                format!(
                    "{who} has {} rx / {} tx channels, expected {}",
                    ch.rx, ch.tx, plan.queues
                ),
            ))
        }
    };
    let ch = sockets.node_eth.channels(&plan.host_name).await?;
    check(format!("host veth {}", plan.host_name), ch)?;
    let ch = sockets.pod_eth.channels(ifname).await?;
    check(format!("pod interface {ifname}"), ch)
}

/// Addresses and routes from IPAM, inside the pod.
async fn configure_pod_ip(pod: &Netlink, index: u32, out: &CniOutput) -> CniResult<()> {
    for ip in &out.ips {
        pod.addr_add(index, ip.address).await?;
    }
    for r in &out.routes {
        let gw = out.route_gateway(r);
        let route = Route {
            dst: r.dst,
            gateway: gw,
            oif: Some(index),
            scope_link: gw.is_none(),
        };
        pod.route_add(&route)
            .await
            .context(format!("add pod route {}", r.dst))?;
    }
    Ok(())
}

/// IPv6 pods resolve the node's addresses on their link: proxy them on the
/// host veth (the entries go with the veth on DEL). Linux answers an NS only
/// for addresses of the receiving device, and answers for proxied ones only on
/// a device with forwarding on (ndisc_recv_ns): per-device forwarding changes
/// the host veth's ND role, not whether the node forwards (that is
/// `all.forwarding`).
async fn answer_ndp_for_node(
    node: &Netlink,
    node_dp: &NodeDatapath,
    host: &Link,
    out: &CniOutput,
) -> CniResult<()> {
    if !out.ips.iter().any(|i| i.address.is_ipv6()) {
        return Ok(());
    }
    for key in ["proxy_ndp", "forwarding"] {
        crate::sysctl::set_ipv6_conf(&host.name, key, "1")?;
    }
    for v6 in node_dp.node_ipv6() {
        node.ndp_proxy_add(host.index, v6)
            .await
            .context("proxy the node's IPv6 address to the pod")?;
    }
    Ok(())
}

fn result(req: &Request, plan: &Plan, host: &Link, ipam_out: &CniOutput) -> CniOutput {
    let interfaces = vec![
        Interface {
            name: plan.host_name.clone(),
            mac: host.mac.map(|m| mac_to_string(&m)).unwrap_or_default(),
            mtu: Some(plan.mtu),
            sandbox: None,
        },
        Interface {
            name: req.env.ifname.clone(),
            mac: mac_to_string(&plan.pod_mac),
            mtu: Some(plan.mtu),
            sandbox: Some(plan.netns.display().to_string()),
        },
    ];
    let ips = ipam_out
        .ips
        .iter()
        .map(|i| IpConfig {
            interface: Some(1),
            ..i.clone()
        })
        .collect();
    let routes: Vec<RouteConfig> = ipam_out.routes.clone();
    let dns = merged_dns(req, &ipam_out.dns);
    CniOutput {
        interfaces,
        ips,
        routes,
        dns,
    }
}

/// The config's `dns` fills in what IPAM did not give.
fn merged_dns(req: &Request, from_ipam: &Dns) -> Dns {
    if !from_ipam.is_empty() {
        return from_ipam.clone();
    }
    req.conf
        .dns
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}
