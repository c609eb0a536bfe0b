//! DEL: undoes ADD from the record (or, without one, from the names ADD
//! derives), tolerating everything that is already gone: the netns, the veth,
//! the record, the lease. Works with CNI_NETNS="" and no prevResult (what
//! containerd's RemovePodSandbox sends), and is safe to repeat.

use ipnetwork::IpNetwork;

use super::add::host_route;
use super::node::resolve_uplink;
use crate::cni::error::{CniError, CniResult, Code};
use crate::cni::result::CniOutput;
use crate::cni::Request;
use crate::netlink::{parse_mac, Mac, Netlink};
use crate::record::{Record, Store};
use crate::{ipam, naming};

/// What DEL needs to find every trace of one attachment.
pub struct Target {
    pub host_name: String,
    pub pod_mac: Mac,
    pub ips: Vec<IpNetwork>,
    pub uplink_index: Option<u32>,
    pub record: Option<Record>,
}

pub async fn run(req: &Request) -> CniResult<()> {
    let store = Store::new(&req.conf.state_dir, &req.conf.name);
    let record = match store.load(&req.env.container_id, &req.env.ifname) {
        Ok(r) => r,
        Err(e) => {
            // A corrupt record must not block DEL: fall back to derived names.
            log::warn!("DEL: ignoring unreadable record: {e:#}");
            None
        }
    };
    let node = Netlink::current().map_err(|e| CniError::new(Code::Netlink, e.to_string()))?;
    let target = target(req, &node, record).await;
    let mut errors = teardown(req, &node, &target).await;
    if req.conf.ipam.is_some() {
        if let Err(e) = ipam::del(req) {
            errors.push(e.to_string());
        }
    }
    if errors.is_empty() {
        store
            .remove(&req.env.container_id, &req.env.ifname)
            .map_err(|e| CniError::new(Code::Io, format!("{e:#}")))?;
        Ok(())
    } else {
        // Keep the record so a retried DEL still knows what to remove.
        Err(CniError::new(
            Code::Netlink,
            format!("DEL incomplete: {}", errors.join("; ")),
        ))
    }
}

/// Works out what to remove from the record, the config, prevResult and the derived names.
async fn target(req: &Request, node: &Netlink, record: Option<Record>) -> Target {
    let host_name = naming::host_veth_name(&req.env.container_id, &req.env.ifname);
    let pod_mac = record
        .as_ref()
        .and_then(|r| parse_mac(&r.pod_mac))
        .or(req.conf.requested_mac)
        .unwrap_or_else(|| naming::pod_mac(&req.env.container_id, &req.env.ifname));
    let ips = match &record {
        Some(r) => r.ips.clone(),
        None => req
            .conf
            .prev_result
            .as_ref()
            .and_then(|v| CniOutput::parse(v).ok())
            .map(|o| o.ips.iter().map(|i| i.address).collect())
            .unwrap_or_default(),
    };
    let uplink_index = match &record {
        Some(r) => match node.link_by_name(&r.uplink).await {
            Ok(Some(l)) => Some(l.index),
            _ => None,
        },
        None => resolve_uplink(node, &req.conf).await.ok().map(|l| l.index),
    };
    Target {
        host_name,
        pod_mac,
        ips,
        uplink_index,
        record,
    }
}

/// Removes the node-side traces; returns what could not be removed.
pub async fn teardown(req: &Request, node: &Netlink, t: &Target) -> Vec<String> {
    let mut errors = Vec::new();
    let host = node.link_by_name(&t.host_name).await.ok().flatten();
    if let Err(e) = super::datapath::detach_pod(req, t, host.as_ref()).await {
        errors.push(e.to_string());
    }
    if let Some(host) = &host {
        for ip in &t.ips {
            if let Err(e) = node.route_del(&host_route(ip.ip(), host.index)).await {
                errors.push(format!("host route {ip}: {e}"));
            }
        }
    }
    if let Some(uplink) = t.uplink_index {
        if let Err(e) = node.fdb_del_self(uplink, t.pod_mac).await {
            errors.push(format!("uplink fdb entry: {e}"));
        }
    }
    // Deleting the host end deletes the pod end too, wherever it is.
    if let Err(e) = node.link_delete_by_name(&t.host_name).await {
        errors.push(format!("veth {}: {e}", t.host_name));
    }
    errors
}
