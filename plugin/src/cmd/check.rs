//! CHECK: the attachment still is what ADD made. Every mismatch is named in
//! the error message, with what to do about it where that is not obvious.

use std::path::Path;

use super::datapath::{self, PodDatapathSpec};
use super::policy;
use crate::cni::result::CniOutput;
use crate::cni::{CniError, CniResult, Code, Request};
use crate::ethtool::Ethtool;
use crate::ipam;
use crate::mac::{mac_to_string, parse_mac};
use crate::netlink::{Link, Netlink, Route};
use crate::netns::validate_netns_path;
use crate::record::{Record, Store};

/// Collected mismatches.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn add(&mut self, s: impl Into<String>) {
        self.0.push(s.into());
    }
}

pub async fn run(req: &Request) -> CniResult<()> {
    let prev = req.conf.prev_result.as_ref().ok_or_else(|| {
        CniError::new(
            Code::InvalidConfig,
            "CHECK needs prevResult in the network config",
        )
    })?;
    let prev = CniOutput::parse(prev)
        .map_err(|e| CniError::new(Code::Decode, format!("prevResult: {e}")))?;
    let netns = req.env.netns.clone().expect("CHECK has CNI_NETNS");
    validate_netns_path(&netns)?;
    let store = Store::new(&req.conf.state_dir, &req.conf.name);
    let rec = store
        .load(&req.env.container_id, &req.env.ifname)?
        .ok_or_else(|| {
            CniError::new(
                Code::UnknownContainer,
                format!(
                    "no attachment of container {} ifname {} on network {}",
                    req.env.container_id, req.env.ifname, req.conf.name
                ),
            )
        })?;
    if rec.pending {
        return Err(CniError::new(
            Code::CheckMismatch,
            format!(
                "the ADD of container {} ifname {} did not finish (only its built-in IPAM lease \
                 is recorded): DEL it",
                req.env.container_id, req.env.ifname
            ),
        ));
    }
    let node = Netlink::current()?;
    let pod = Netlink::in_netns(&netns)?;
    let mut f = Findings::default();
    // A failed read is an error, never a "missing" finding.
    let host = node.link_by_name(&rec.host_ifname).await?;
    let pod_link = pod.link_by_name(&req.env.ifname).await?;
    match &host {
        None => f.add(format!("host veth {} is missing", rec.host_ifname)),
        Some(h) => check_link(&mut f, "host veth", h, &rec),
    }
    match &pod_link {
        None => f.add(format!(
            "pod interface {} is missing in {}",
            req.env.ifname,
            netns.display()
        )),
        Some(p) => {
            check_link(&mut f, "pod interface", p, &rec);
            if p.mac.map(|m| mac_to_string(&m)) != Some(rec.pod_mac.clone()) {
                f.add(format!(
                    "pod interface {} has MAC {:?}, expected {}",
                    p.name,
                    p.mac.map(|m| mac_to_string(&m)),
                    rec.pod_mac
                ));
            }
            check_pod_ip(&mut f, &pod, p, &prev).await?;
        }
    }
    if let (Some(h), Some(_)) = (&host, &pod_link) {
        check_offloads(&mut f, &rec, &netns, &req.env.ifname).await;
        check_node_side(&mut f, &node, h, &rec).await?;
        let services = !req.conf.service_cidrs.is_empty();
        f.0.extend(check_datapath(&rec, h, services).await);
    }
    if req.conf.ipam.is_some() {
        if let Err(e) = ipam::check(req) {
            f.add(format!("IPAM: {}", e.msg));
        }
    }
    if f.0.is_empty() {
        Ok(())
    } else {
        Err(CniError::new(
            Code::CheckMismatch,
            format!("CHECK failed: {}", f.0.join("; ")),
        ))
    }
}

fn check_link(f: &mut Findings, who: &str, l: &Link, rec: &Record) {
    if l.kind.as_deref() != Some("veth") {
        f.add(format!("{who} {} is {:?}, not a veth", l.name, l.kind));
    }
    if l.num_rx_queues != rec.queues || l.num_tx_queues != rec.queues {
        f.add(format!(
            "{who} {} has {}/{} rx/tx queues, expected {}",
            l.name, l.num_rx_queues, l.num_tx_queues, rec.queues
        ));
    }
    if l.mtu != rec.mtu {
        f.add(format!(
            "{who} {} has MTU {}, expected {}",
            l.name, l.mtu, rec.mtu
        ));
    }
    if !l.admin_up {
        f.add(format!("{who} {} is down", l.name));
    }
}

async fn check_pod_ip(
    f: &mut Findings,
    pod: &Netlink,
    link: &Link,
    prev: &CniOutput,
) -> CniResult<()> {
    let addrs = pod.addr_list(link.index).await?;
    for ip in &prev.ips {
        if !addrs.contains(&ip.address) {
            f.add(format!(
                "pod address {} is missing on {}",
                ip.address, link.name
            ));
        }
    }
    let routes = pod.route_list().await?;
    for r in &prev.routes {
        let gw = prev.route_gateway(r);
        let found = routes
            .iter()
            .any(|x| x.dst == r.dst && x.gateway == gw && x.oif == Some(link.index));
        if !found {
            f.add(format!("pod route {} via {:?} is missing", r.dst, gw));
        }
    }
    Ok(())
}

async fn check_offloads(f: &mut Findings, rec: &Record, netns: &Path, ifname: &str) {
    let ends = [
        (
            "host veth",
            rec.host_ifname.clone(),
            None,
            policy::host_end_features(rec.egress),
        ),
        (
            "pod interface",
            ifname.to_string(),
            Some(netns),
            policy::pod_end_features(rec.egress),
        ),
    ];
    for (who, name, ns, wanted) in ends {
        let eth = match ns {
            None => Ethtool::current(),
            Some(p) => Ethtool::in_netns(p),
        };
        let eth = match eth {
            Ok(e) => e,
            Err(e) => return f.add(format!("ethtool: {e}")),
        };
        match eth.features(&name).await {
            Ok(active) => {
                for (feat, on) in wanted {
                    if active.get(feat) != Some(&on) {
                        f.add(format!(
                            "{feat} is {} on {who} {name}, expected {} ({})",
                            if on { "off" } else { "on" },
                            if on { "on" } else { "off" },
                            policy::why(feat)
                        ));
                    }
                }
            }
            Err(e) => f.add(format!("read features of {who} {name}: {e}")),
        }
        match eth.channels(&name).await {
            Ok(ch) if ch.rx == rec.queues && ch.tx == rec.queues => {}
            Ok(ch) => f.add(format!(
                "{who} {name} uses {}/{} rx/tx channels, expected {}",
                ch.rx, ch.tx, rec.queues
            )),
            Err(e) => f.add(format!("read channels of {who} {name}: {e}")),
        }
    }
}

async fn check_node_side(
    f: &mut Findings,
    node: &Netlink,
    host: &Link,
    rec: &Record,
) -> CniResult<()> {
    let routes = node.route_list().await?;
    for ip in &rec.ips {
        let want = Route::host(ip.ip(), host.index);
        if !routes
            .iter()
            .any(|r| r.dst == want.dst && r.oif == want.oif)
        {
            f.add(format!(
                "host route {} via {} is missing",
                want.dst, rec.host_ifname
            ));
        }
    }
    let Some(up) = node.link_by_name(&rec.uplink).await? else {
        f.add(format!("uplink {} is missing", rec.uplink));
        return Ok(());
    };
    let fdb = node.fdb_list(up.index).await?;
    let mac = parse_mac(&rec.pod_mac);
    if !fdb
        .iter()
        .any(|e| Some(e.mac) == mac && e.self_flag && e.permanent)
    {
        f.add(format!(
            "pod MAC {} is not in uplink {}'s unicast filter (fdb self permanent)",
            rec.pod_mac, rec.uplink
        ));
    }
    Ok(())
}

/// The datapath's findings, from the record's view of the pod.
async fn check_datapath(rec: &Record, host: &Link, services: bool) -> Vec<String> {
    let ips = &rec.ips;
    let spec = PodDatapathSpec {
        bpf_root: Path::new(&rec.bpf_root),
        host,
        pod_mac: parse_mac(&rec.pod_mac).unwrap_or_default(),
        ips,
        egress: rec.egress,
        allow: 0,
    };
    let uplink = (rec.uplink.as_str(), rec.uplink_ifindex);
    datapath::check_pod(&spec, &rec.ifname, uplink, services).await
}
