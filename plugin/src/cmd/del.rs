//! DEL: undoes ADD from the record (or, without one, from the names ADD
//! derives), tolerating everything that is already gone: the netns, the veth,
//! the record, the lease. Works with CNI_NETNS="" and no prevResult (what
//! containerd's RemovePodSandbox sends), and is safe to repeat.

use std::path::PathBuf;

use ipnetwork::IpNetwork;

use super::datapath;
use super::node::resolve_uplink;
use crate::cni::result::CniOutput;
use crate::cni::{CniResult, Context, ErrorList, Request};
use crate::mac::{parse_mac, Mac};
use crate::netlink::{Netlink, Route};
use crate::record::{Record, Store};
use crate::{ipam, naming};

/// What DEL needs to find every trace of one attachment.
pub struct Target {
    pub host_name: String,
    pub pod_mac: Mac,
    pub ips: Vec<IpNetwork>,
    pub uplink_index: Option<u32>,
    /// the host veth's ifindex at ADD (from the record)
    pub host_ifindex: Option<u32>,
    pub bpf_root: PathBuf,
}

pub async fn run(req: &Request) -> CniResult<()> {
    let store = Store::new(&req.conf.state_dir, &req.conf.name);
    let _attachments = store
        .lock_for_verb(false)
        .context("lock the network's attachments")?;
    let record = match store.load(&req.env.container_id, &req.env.ifname) {
        Ok(r) => r,
        Err(e) => {
            // A corrupt record must not block DEL: fall back to derived names.
            log::warn!("DEL: ignoring unreadable record: {e}");
            None
        }
    };
    let node = Netlink::current()?;
    let target = target(req, &node, record).await;
    let mut errors = teardown(&node, &target).await;
    if req.conf.ipam.is_some() {
        errors.note(ipam::del(req));
    }
    if !errors.is_empty() {
        // Keep the record so a retried DEL still knows what to remove.
        return errors.into_result("DEL incomplete");
    }
    store
        .remove(&req.env.container_id, &req.env.ifname)
        .context("DEL")
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
    let uplink_name = record
        .as_ref()
        .map(|r| r.uplink.as_str())
        .or(req.conf.uplink.as_deref());
    let uplink_index = resolve_uplink(node, uplink_name)
        .await
        .ok()
        .map(|l| l.index);
    let bpf_root = record
        .as_ref()
        .map(|r| PathBuf::from(&r.bpf_root))
        .filter(|r| !r.as_os_str().is_empty())
        .unwrap_or_else(|| req.conf.bpf_root.clone());
    Target {
        host_name,
        pod_mac,
        ips,
        uplink_index,
        // A pending record (the built-in IPAM's lease alone) names no veth yet.
        host_ifindex: record
            .as_ref()
            .filter(|r| !r.pending)
            .map(|r| r.host_ifindex),
        bpf_root,
    }
}

/// Removes the node-side traces; returns what could not be removed.
pub async fn teardown(node: &Netlink, t: &Target) -> ErrorList {
    let mut errors = ErrorList::default();
    let host = errors.note(node.link_by_name(&t.host_name).await).flatten();
    let host_ifindex = t.host_ifindex.or(host.as_ref().map(|h| h.index));
    errors.note(datapath::detach_pod(
        &t.bpf_root,
        &t.host_name,
        host_ifindex,
        t.pod_mac,
    ));
    if let Some(host) = &host {
        for ip in &t.ips {
            errors.note(node.route_del(&Route::host(ip.ip(), host.index)).await);
        }
    }
    if let Some(uplink) = t.uplink_index {
        errors.note(node.fdb_del_self(uplink, t.pod_mac).await);
    }
    // Deleting the host end deletes the pod end too, wherever it is.
    errors.note(node.link_delete_by_name(&t.host_name).await);
    errors
}
