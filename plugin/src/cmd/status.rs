//! STATUS (CNI 1.1): can this node take pods? Code 50 with the reason if not.

use super::node::resolve_uplink;
use crate::cni::{CniError, CniResult, Code, Request};
use crate::ipam;
use crate::netlink::Netlink;

pub async fn run(req: &Request) -> CniResult<()> {
    let not_available = |msg: String| CniError::new(Code::NotAvailable, msg);
    let node = Netlink::current().map_err(|e| not_available(format!("netlink: {e}")))?;
    let uplink = resolve_uplink(&node, req.conf.uplink.as_deref())
        .await
        .map_err(|e| not_available(e.msg))?;
    if !uplink.admin_up || !uplink.oper_up {
        return Err(not_available(format!("uplink {} is down", uplink.name)));
    }
    match req.conf.ipam_type() {
        None => return Err(not_available("network config has no \"ipam\"".into())),
        Some(_) => ipam::status(req).map_err(|e| not_available(e.msg))?,
    }
    Ok(())
}
