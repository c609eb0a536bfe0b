//! Routes (main table).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
    RouteVia,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::RouteMessageBuilder;

use super::{collect_dump, tolerate, Netlink, NlError, NlResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNetwork,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// RT_SCOPE_LINK (a host route via a device, no gateway)
    pub scope_link: bool,
}

impl Route {
    /// A host route: `dst/32` (or /128) dev `oif` scope link, no gateway.
    pub fn host(dst: IpAddr, oif: u32) -> Self {
        Route {
            dst: super::host_network(dst),
            gateway: None,
            oif: Some(oif),
            scope_link: true,
        }
    }

    /// The default route of `gateway`'s family via `gateway` (optionally pinned to `oif`).
    pub fn default_via(gateway: IpAddr, oif: Option<u32>) -> Self {
        let any: IpAddr = if gateway.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let dst = IpNetwork::new(any, 0).expect("a zero prefix is always valid");
        Route {
            dst,
            gateway: Some(gateway),
            oif,
            scope_link: false,
        }
    }

    /// `dst` via `gateway` (optionally pinned to `oif`).
    pub fn via(dst: IpNetwork, gateway: IpAddr, oif: Option<u32>) -> Self {
        Route {
            dst,
            gateway: Some(gateway),
            oif,
            scope_link: false,
        }
    }

    fn describe(&self) -> String {
        let mut text = self.dst.to_string();
        if let Some(gateway) = self.gateway {
            text.push_str(&format!(" via {gateway}"));
        }
        if let Some(oif) = self.oif {
            text.push_str(&format!(" dev index {oif}"));
        }
        if self.scope_link {
            text.push_str(" scope link");
        }
        text
    }
}

impl Netlink {
    /// Adds a route; an identical existing route is not an error.
    pub async fn route_add(&self, route: &Route) -> NlResult<()> {
        let op = || format!("add route {}", route.describe());
        let message = route_message(route, RouteProtocol::Boot, scope_of(route))
            .map_err(|e| invalid(op(), e))?;
        // NLM_F_EXCL: EEXIST means a route to this destination (same metric) is there.
        let result = self.handle.route().add(message).execute().await;
        tolerate(result, &[libc::EEXIST], op)?;
        Ok(())
    }

    /// Deletes a route; Ok(false) when it was not there.
    pub async fn route_del(&self, route: &Route) -> NlResult<bool> {
        let op = || format!("delete route {}", route.describe());
        // Like `ip route del`: protocol 0 and scope NOWHERE are wildcards to
        // fib_table_delete(), so the route matches by destination, gateway and device.
        let mut message = route_message(route, RouteProtocol::Unspec, RouteScope::NoWhere)
            .map_err(|e| invalid(op(), e))?;
        message.header.kind = RouteType::Unspec;
        let result = self.handle.route().del(message).execute().await;
        // IPv4 answers ESRCH for a missing route, IPv6 ENOENT.
        tolerate(result, &[libc::ESRCH, libc::ENOENT], op)
    }

    /// Routes of the main table, both families.
    pub async fn route_list(&self) -> NlResult<Vec<Route>> {
        Ok(self
            .main_table()
            .await?
            .into_iter()
            .map(|(route, _)| route)
            .collect())
    }

    /// The output interface of the default route (IPv4 first, then IPv6).
    pub async fn default_route_oif(&self) -> NlResult<Option<u32>> {
        let routes = self.main_table().await?;
        let best_default = |v4: bool| {
            routes
                .iter()
                .filter(|(route, _)| {
                    route.dst.prefix() == 0 && route.dst.is_ipv4() == v4 && route.oif.is_some()
                })
                .min_by_key(|(_, priority)| *priority)
                .and_then(|(route, _)| route.oif)
        };
        Ok(best_default(true).or_else(|| best_default(false)))
    }

    /// Unicast routes of the main table with their metric (RTA_PRIORITY).
    async fn main_table(&self) -> NlResult<Vec<(Route, u32)>> {
        let request = self.handle.route().get(RouteMessage::default()).execute();
        let messages = collect_dump(request, || "dump routes".to_string()).await?;
        Ok(messages
            .iter()
            .filter(|m| is_main_unicast(m))
            .filter_map(parse_route)
            .collect())
    }
}

fn scope_of(route: &Route) -> RouteScope {
    if route.scope_link {
        RouteScope::Link
    } else {
        RouteScope::Universe
    }
}

/// A route the builder refused (mixed families, prefix too long), before any syscall.
fn invalid(op: String, msg: String) -> NlError {
    NlError {
        op,
        errno: Some(libc::EINVAL),
        msg,
    }
}

/// The RTM_NEWROUTE/RTM_DELROUTE message for `route` in the main table.
fn route_message(
    route: &Route,
    protocol: RouteProtocol,
    scope: RouteScope,
) -> Result<RouteMessage, String> {
    let mut builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(route.dst.ip(), route.dst.prefix())
        .map_err(|e| e.to_string())?
        .protocol(protocol)
        .scope(scope);
    if let Some(gateway) = route.gateway {
        builder = builder.gateway(gateway).map_err(|e| e.to_string())?;
    }
    if let Some(oif) = route.oif {
        builder = builder.output_interface(oif);
    }
    Ok(builder.build())
}

fn is_main_unicast(message: &RouteMessage) -> bool {
    let table = message
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(message.header.table as u32);
    table == RouteHeader::RT_TABLE_MAIN as u32 && message.header.kind == RouteType::Unicast
}

/// A route and its metric out of an RTM_NEWROUTE message (None for non-IP families).
fn parse_route(message: &RouteMessage) -> Option<(Route, u32)> {
    let header = &message.header;
    let (any, v6): (IpAddr, bool) = match header.address_family {
        AddressFamily::Inet => (Ipv4Addr::UNSPECIFIED.into(), false),
        AddressFamily::Inet6 => (Ipv6Addr::UNSPECIFIED.into(), true),
        _ => return None,
    };
    let mut dst = any;
    let mut gateway = None;
    let mut oif = None;
    let mut priority = 0;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(address) => dst = route_ip(address)?,
            RouteAttribute::Gateway(address) => gateway = route_ip(address),
            RouteAttribute::Via(RouteVia::Inet6(ip)) => gateway = Some((*ip).into()),
            RouteAttribute::Oif(index) => oif = Some(*index),
            RouteAttribute::Priority(metric) => priority = *metric,
            RouteAttribute::MultiPath(hops) => {
                // ECMP: report the first next hop.
                if let Some(hop) = hops.first() {
                    oif = oif.or(Some(hop.interface_index));
                    gateway = gateway.or_else(|| hop.attributes.iter().find_map(next_hop_gateway));
                }
            }
            _ => {}
        }
    }
    // IPv6 has no route scopes: the kernel reports every IPv6 route as scope
    // universe. A device route without a gateway is what RT_SCOPE_LINK means for
    // IPv4, so report it the same way for both families.
    let scope_link = header.scope == RouteScope::Link || (v6 && gateway.is_none() && oif.is_some());
    let dst = IpNetwork::new(dst, header.destination_prefix_length).ok()?;
    Some((
        Route {
            dst,
            gateway,
            oif,
            scope_link,
        },
        priority,
    ))
}

fn route_ip(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(ip) => Some((*ip).into()),
        RouteAddress::Inet6(ip) => Some((*ip).into()),
        _ => None,
    }
}

fn next_hop_gateway(attribute: &RouteAttribute) -> Option<IpAddr> {
    match attribute {
        RouteAttribute::Gateway(address) => route_ip(address),
        RouteAttribute::Via(RouteVia::Inet6(ip)) => Some((*ip).into()),
        _ => None,
    }
}
