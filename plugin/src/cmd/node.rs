//! Node-side facts every verb needs: the uplink, the pod MTU, the queue count.

use crate::cni::{CniError, CniResult, Code, NetConf};
use crate::naming;
use crate::netlink::{Link, Netlink};

/// Finds the uplink: the configured one (`uplink`), or the device of the
/// default route, and refuses a device that cannot be one.
pub async fn resolve_uplink(nl: &Netlink, uplink: Option<&str>) -> CniResult<Link> {
    let link = find_uplink(nl, uplink).await?;
    match unfit_uplink(&link) {
        None => Ok(link),
        Some(why) => Err(CniError::new(
            Code::InvalidConfig,
            format!(
                "network config: \"uplink\" {:?} {why}: name the node's physical NIC",
                link.name
            ),
        )),
    }
}

/// Why a device cannot carry pods' frames to the wire, if it cannot.
fn unfit_uplink(link: &Link) -> Option<&'static str> {
    if link.loopback {
        Some("is the loopback device")
    } else if link.name.starts_with(naming::HOST_VETH_PREFIX)
        && link.kind.as_deref() == Some("veth")
    {
        Some("is a pod's host veth")
    } else if link.mac.is_none() {
        Some("has no Ethernet address (not an L2 device)")
    } else {
        None
    }
}

async fn find_uplink(nl: &Netlink, uplink: Option<&str>) -> CniResult<Link> {
    match uplink {
        Some(name) => nl.link_by_name(name).await?.ok_or_else(|| {
            CniError::new(
                Code::InvalidConfig,
                format!(
                    "network config: \"uplink\" {name:?} does not exist in this network namespace"
                ),
            )
        }),
        None => {
            let oif = nl
                .default_route_oif()
                .await?
                .ok_or_else(|| {
                    CniError::new(Code::Uplink, "no default route to take the uplink from: set \"uplink\" in the network config")
                })?;
            nl.link_by_index(oif).await?.ok_or_else(|| {
                CniError::new(
                    Code::Uplink,
                    format!("default route device (ifindex {oif}) vanished"),
                )
            })
        }
    }
}

/// The pod MTU: configured (at most the uplink's — a redirected frame larger
/// than the receiving veth's MTU is dropped) or the uplink's.
pub fn pod_mtu(conf: &NetConf, uplink: &Link) -> CniResult<u32> {
    match conf.mtu {
        Some(m) if m > uplink.mtu => Err(CniError::new(
            Code::InvalidConfig,
            format!(
                "network config: \"mtu\" {m} is above the uplink {}'s MTU {}",
                uplink.name, uplink.mtu
            ),
        )),
        Some(m) => Ok(m),
        None => Ok(uplink.mtu),
    }
}

/// rx/tx queues per veth end: configured, or one per online CPU.
pub fn queue_count(conf: &NetConf) -> u32 {
    conf.queues.unwrap_or_else(online_cpus)
}

pub fn online_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}
