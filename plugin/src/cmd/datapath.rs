//! The XDP datapath's part of each verb (node setup, per-pod maps and programs).
//! Filled in by the datapath work; until then ADD builds the attachment without programs.

use ipnetwork::IpNetwork;

use super::add::Plan;
use crate::cni::error::CniResult;
use crate::cni::Request;
use crate::netlink::{Link, Netlink};
use crate::rollback::Rollback;

/// Node-wide datapath setup (called under the node lock).
pub async fn prepare_node(_req: &Request, _plan: &Plan) -> CniResult<()> {
    Ok(())
}

/// Per-pod datapath. Returns whether a program was attached on the pod end.
pub async fn attach_pod<'a>(
    _req: &'a Request,
    _plan: &'a Plan,
    _host: &Link,
    _pod_link: &Link,
    _ips: &[IpNetwork],
    _pod: &'a Netlink,
    _rb: &mut Rollback<'a>,
) -> CniResult<bool> {
    Ok(false)
}

/// Removes the pod's map entries and programs (idempotent).
pub async fn detach_pod(_req: &Request, _target: &super::del::Target, _host: Option<&Link>) -> CniResult<()> {
    Ok(())
}

/// CHECK's datapath part: programs attached, pod end ready for redirects, map entries.
pub async fn check_pod(_req: &Request, _rec: &crate::record::Record, _host: &Link, _f: &mut super::check::Findings) {}
