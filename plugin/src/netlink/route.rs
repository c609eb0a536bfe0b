//! Routes (main table).

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::{Netlink, NlResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNetwork,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// RT_SCOPE_LINK (a host route via a device, no gateway)
    pub scope_link: bool,
}

impl Netlink {
    /// Adds a route; an identical existing route is not an error.
    pub async fn route_add(&self, route: &Route) -> NlResult<()> {
        let _ = route;
        todo!("netlink helper")
    }

    /// Deletes a route; Ok(false) when it was not there.
    pub async fn route_del(&self, route: &Route) -> NlResult<bool> {
        let _ = route;
        todo!("netlink helper")
    }

    /// Routes of the main table, both families.
    pub async fn route_list(&self) -> NlResult<Vec<Route>> {
        todo!("netlink helper")
    }

    /// The output interface of the default route (IPv4 first, then IPv6).
    pub async fn default_route_oif(&self) -> NlResult<Option<u32>> {
        todo!("netlink helper")
    }
}
