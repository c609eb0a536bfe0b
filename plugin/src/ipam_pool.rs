//! The built-in IPAM's pure part: the host-local-compatible configuration and
//! the choice of addresses, given the addresses in use. No files, no locks:
//! the caller ([`crate::ipam_lease`]) keeps the leases (the attachment
//! records) and holds the lock while it chooses.
//!
//! Configuration, as host-local reads it:
//! `{"type": "veth-xdp", "ranges": [[{"subnet", "rangeStart"?, "rangeEnd"?, "gateway"?}, ...], ...],
//!   "routes": [{"dst", "gw"?}]?, "reserved"?: ["IP", ...]}` — one range set per address
//! family wanted (a pod gets one address from each set), each set tried range by range.
//! Defaults as host-local's `Range.Canonicalize`: rangeStart = the subnet's first
//! address after the network address, rangeEnd = the last before the broadcast
//! address (IPv4) or the last address (IPv6), gateway = the first address;
//! the gateway is never handed out.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::{Map, Value};

/// One range of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub subnet: IpNetwork,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: Option<IpAddr>,
}

/// The pool: range sets (one address from each), reserved addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub sets: Vec<Vec<Range>>,
    pub reserved: BTreeSet<IpAddr>,
}

/// One address chosen: with its range's prefix and gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: IpNetwork,
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// a configuration key is wrong: the key and why
    #[error("ipam.{key}: {why}")]
    Config { key: String, why: String },
    /// every address of a set is in use
    #[error("no free address in {ranges} ({in_use} in use)")]
    Exhausted { ranges: String, in_use: usize },
    /// a requested (static) address is outside every range, taken or reserved
    #[error("requested address {ip}: {why}")]
    Requested { ip: IpAddr, why: String },
}

fn config(key: impl Into<String>, why: impl Into<String>) -> PoolError {
    PoolError::Config {
        key: key.into(),
        why: why.into(),
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4((v as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(v.into()),
    }
}

fn ip_of(key: &str, v: &Value) -> Result<IpAddr, PoolError> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| config(key, format!("{v} is not an IP address")))
}

fn parse_range(key: &str, v: &Value) -> Result<Range, PoolError> {
    let obj = v
        .as_object()
        .ok_or_else(|| config(key, "each range is an object"))?;
    let subnet: IpNetwork = obj
        .get("subnet")
        .and_then(Value::as_str)
        .ok_or_else(|| config(format!("{key}.subnet"), "is required"))?
        .parse()
        .map_err(|e| config(format!("{key}.subnet"), format!("{e}")))?;
    let net = subnet.network();
    if subnet.ip() != net {
        return Err(config(
            format!("{key}.subnet"),
            format!(
                "{subnet} has host bits set (did you mean {net}/{}?)",
                subnet.prefix()
            ),
        ));
    }
    let first = to_u128(net);
    let last = to_u128(subnet.broadcast());
    let (lo, hi) = match subnet {
        IpNetwork::V4(_) if subnet.prefix() >= 31 => (first, last),
        IpNetwork::V4(_) => (first + 1, last - 1),
        IpNetwork::V6(_) => (first + 1, last),
    };
    let opt_ip = |k: &str| -> Result<Option<IpAddr>, PoolError> {
        obj.get(k)
            .filter(|v| !v.is_null())
            .map(|v| ip_of(&format!("{key}.{k}"), v))
            .transpose()
    };
    let inside = |k: &str, ip: IpAddr| -> Result<IpAddr, PoolError> {
        let v = to_u128(ip);
        if ip.is_ipv4() != subnet.is_ipv4() || v < lo || v > hi {
            return Err(config(
                format!("{key}.{k}"),
                format!("{ip} is not a usable address of {subnet}"),
            ));
        }
        Ok(ip)
    };
    let start =
        opt_ip("rangeStart")?.map_or(Ok(from_u128(lo, net)), |ip| inside("rangeStart", ip))?;
    let end = opt_ip("rangeEnd")?.map_or(Ok(from_u128(hi, net)), |ip| inside("rangeEnd", ip))?;
    if to_u128(start) > to_u128(end) {
        return Err(config(
            key,
            format!("rangeStart {start} is after rangeEnd {end}"),
        ));
    }
    let gateway = match opt_ip("gateway")? {
        Some(gw) => Some(inside("gateway", gw)?),
        None => Some(from_u128(first + 1, net)).filter(|_| hi > lo),
    };
    Ok(Range {
        subnet,
        start,
        end,
        gateway,
    })
}

/// Parses the `ipam` object (host-local's keys; unknown keys are ignored, as
/// host-local does).
pub fn parse(ipam: &Map<String, Value>) -> Result<Pool, PoolError> {
    let sets = ipam
        .get("ranges")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            config(
                "ranges",
                "is required: a list of range sets, e.g. [[{\"subnet\": \"10.0.0.0/24\"}]]",
            )
        })?;
    if sets.is_empty() {
        return Err(config("ranges", "holds no range set"));
    }
    let mut out = Vec::new();
    let mut seen_v4 = false;
    let mut seen_v6 = false;
    for (i, set) in sets.iter().enumerate() {
        let list = set
            .as_array()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| config(format!("ranges[{i}]"), "is a non-empty list of ranges"))?;
        let ranges: Vec<Range> = list
            .iter()
            .enumerate()
            .map(|(j, r)| parse_range(&format!("ranges[{i}][{j}]"), r))
            .collect::<Result<_, _>>()?;
        let v4 = ranges[0].subnet.is_ipv4();
        if ranges.iter().any(|r| r.subnet.is_ipv4() != v4) {
            return Err(config(
                format!("ranges[{i}]"),
                "mixes IPv4 and IPv6 ranges (one set per family)",
            ));
        }
        for (a, ra) in ranges.iter().enumerate() {
            for rb in &ranges[a + 1..] {
                if to_u128(ra.start) <= to_u128(rb.end) && to_u128(rb.start) <= to_u128(ra.end) {
                    return Err(config(
                        format!("ranges[{i}]"),
                        format!("{}-{} overlaps {}-{}", ra.start, ra.end, rb.start, rb.end),
                    ));
                }
            }
        }
        let seen = if v4 { &mut seen_v4 } else { &mut seen_v6 };
        if std::mem::replace(seen, true) {
            return Err(config(
                format!("ranges[{i}]"),
                "a second set of the same family (a pod gets one address per set)",
            ));
        }
        out.push(ranges);
    }
    let reserved = match ipam.get("reserved") {
        None | Some(Value::Null) => BTreeSet::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, v)| ip_of(&format!("reserved[{i}]"), v))
            .collect::<Result<_, _>>()?,
        Some(v) => {
            return Err(config(
                "reserved",
                format!("{v} is not a list of addresses"),
            ))
        }
    };
    Ok(Pool {
        sets: out,
        reserved,
    })
}

impl Pool {
    /// Chooses one address per set: `requested` ones first (each must lie in
    /// a range of its family's set, be free and not reserved), then for the
    /// other sets the first free address after `last` (the last address handed
    /// out, so a freed address is not reused at once — host-local's order),
    /// wrapping around.
    pub fn allocate(
        &self,
        in_use: &BTreeSet<IpAddr>,
        requested: &[IpAddr],
        last: &[IpAddr],
    ) -> Result<Vec<Lease>, PoolError> {
        let taken = |ip: &IpAddr| in_use.contains(ip) || self.reserved.contains(ip);
        let mut out = Vec::new();
        for ip in requested {
            let set = self
                .sets
                .iter()
                .find(|s| s[0].subnet.is_ipv4() == ip.is_ipv4())
                .ok_or_else(|| PoolError::Requested {
                    ip: *ip,
                    why: "no range set of its family".into(),
                })?;
            let range = set
                .iter()
                .find(|r| to_u128(r.start) <= to_u128(*ip) && to_u128(*ip) <= to_u128(r.end))
                .ok_or_else(|| PoolError::Requested {
                    ip: *ip,
                    why: format!("outside the ranges ({})", describe(set)),
                })?;
            if taken(ip) || range.gateway == Some(*ip) {
                return Err(PoolError::Requested {
                    ip: *ip,
                    why: "in use, reserved or the gateway".into(),
                });
            }
            out.push(lease(range, *ip));
        }
        for set in &self.sets {
            let v4 = set[0].subnet.is_ipv4();
            if requested.iter().any(|ip| ip.is_ipv4() == v4) {
                continue;
            }
            let after = last.iter().find(|ip| ip.is_ipv4() == v4).copied();
            let ip =
                first_free(set, after, &|ip| taken(ip)).ok_or_else(|| PoolError::Exhausted {
                    ranges: describe(set),
                    in_use: in_use.iter().filter(|ip| ip.is_ipv4() == v4).count(),
                })?;
            let range = set
                .iter()
                .find(|r| to_u128(r.start) <= to_u128(ip) && to_u128(ip) <= to_u128(r.end))
                .expect("first_free returns an address of the set");
            out.push(lease(range, ip));
        }
        Ok(out)
    }
}

fn lease(r: &Range, ip: IpAddr) -> Lease {
    Lease {
        address: IpNetwork::new(ip, r.subnet.prefix()).expect("the subnet's prefix"),
        gateway: r.gateway,
    }
}

fn describe(set: &[Range]) -> String {
    set.iter()
        .map(|r| format!("{}-{}", r.start, r.end))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The set's addresses in order, starting after `after` (if it lies in the
/// set) and wrapping around; the first one `taken` refuses and that is not a
/// gateway. Walks at most the set's size.
fn first_free(
    set: &[Range],
    after: Option<IpAddr>,
    taken: &dyn Fn(&IpAddr) -> bool,
) -> Option<IpAddr> {
    let spans: Vec<(u128, u128, IpAddr)> = set
        .iter()
        .map(|r| (to_u128(r.start), to_u128(r.end), r.start))
        .collect();
    let gateways: BTreeSet<IpAddr> = set.iter().filter_map(|r| r.gateway).collect();
    // Position to start from: the span and offset after `after`.
    let (mut si, mut v) = (0usize, spans[0].0);
    if let Some(a) = after.map(to_u128) {
        if let Some(i) = spans.iter().position(|(lo, hi, _)| *lo <= a && a <= *hi) {
            si = i;
            v = a;
            // step past `after`
            if v == spans[si].1 {
                si = (si + 1) % spans.len();
                v = spans[si].0;
            } else {
                v += 1;
            }
        }
    }
    let total: u128 = spans.iter().map(|(lo, hi, _)| hi - lo + 1).sum();
    let mut walked: u128 = 0;
    while walked < total {
        let ip = from_u128(v, spans[si].2);
        if !taken(&ip) && !gateways.contains(&ip) {
            return Some(ip);
        }
        walked += 1;
        if v == spans[si].1 {
            si = (si + 1) % spans.len();
            v = spans[si].0;
        } else {
            v += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool(v: Value) -> Pool {
        parse(v.as_object().unwrap()).unwrap()
    }

    fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn defaults_follow_host_local() {
        let p = pool(json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "fd00::/120"}]]}));
        let v4 = &p.sets[0][0];
        assert_eq!(v4.start.to_string(), "10.0.0.1");
        assert_eq!(v4.end.to_string(), "10.0.0.254");
        assert_eq!(v4.gateway.unwrap().to_string(), "10.0.0.1");
        let v6 = &p.sets[1][0];
        assert_eq!(v6.start.to_string(), "fd00::1");
        assert_eq!(v6.end.to_string(), "fd00::ff");
        // dual-stack: one of each; the gateway is skipped
        let got = p.allocate(&BTreeSet::new(), &[], &[]).unwrap();
        assert_eq!(got[0].address.to_string(), "10.0.0.2/24");
        assert_eq!(got[1].address.to_string(), "fd00::2/120");
        assert_eq!(got[0].gateway.unwrap().to_string(), "10.0.0.1");
    }

    #[test]
    fn config_errors_name_the_key() {
        for (cfg, key) in [
            (json!({}), "ipam.ranges"),
            (json!({"ranges": []}), "ipam.ranges"),
            (
                json!({"ranges": [[{"subnet": "10.0.0.1/24"}]]}),
                "ipam.ranges[0][0].subnet",
            ),
            (
                json!({"ranges": [[{"subnet": "x"}]]}),
                "ipam.ranges[0][0].subnet",
            ),
            (
                json!({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.5"}]]}),
                "ipam.ranges[0][0].rangeStart",
            ),
            (
                json!({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.5"}]]}),
                "ipam.ranges[0][0]",
            ),
            (
                json!({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "fd00::/64"}]]}),
                "ipam.ranges[0]",
            ),
            (
                json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.1.0.0/24"}]]}),
                "ipam.ranges[1]",
            ),
            (
                json!({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "10.0.0.0/25"}]]}),
                "ipam.ranges[0]",
            ),
            (
                json!({"ranges": [[{"subnet": "10.0.0.0/24"}]], "reserved": ["nope"]}),
                "ipam.reserved[0]",
            ),
        ] {
            let e = parse(cfg.as_object().unwrap()).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{key}:")), "{cfg}: {e}");
        }
    }

    #[test]
    fn allocation_goes_round_and_reports_exhaustion() {
        let p = pool(json!({"ranges": [[
            {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.11", "gateway": "10.0.0.1"},
            {"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.20", "rangeEnd": "10.0.0.20", "gateway": "10.0.0.1"}
        ]], "reserved": ["10.0.0.11"]}));
        let a = p.allocate(&BTreeSet::new(), &[], &[]).unwrap()[0]
            .address
            .ip();
        assert_eq!(a.to_string(), "10.0.0.10");
        // after .10: .11 is reserved, so the next range
        let b = p.allocate(&ips(&["10.0.0.10"]), &[], &[a]).unwrap()[0]
            .address
            .ip();
        assert_eq!(b.to_string(), "10.0.0.20");
        // .10 freed, last was .20: wraps round to .10
        let c = p.allocate(&ips(&["10.0.0.20"]), &[], &[b]).unwrap()[0]
            .address
            .ip();
        assert_eq!(c.to_string(), "10.0.0.10");
        let e = p
            .allocate(&ips(&["10.0.0.10", "10.0.0.20"]), &[], &[c])
            .unwrap_err();
        assert!(matches!(e, PoolError::Exhausted { in_use: 2, .. }), "{e}");
        assert!(
            e.to_string()
                .contains("10.0.0.10-10.0.0.11, 10.0.0.20-10.0.0.20"),
            "{e}"
        );
    }

    #[test]
    fn static_requests_are_checked() {
        let p = pool(json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "fd00::/120"}]]}));
        let want: IpAddr = "10.0.0.77".parse().unwrap();
        let got = p.allocate(&BTreeSet::new(), &[want], &[]).unwrap();
        assert_eq!(got[0].address.to_string(), "10.0.0.77/24");
        assert!(
            got[1].address.ip().is_ipv6(),
            "the other family still gets one"
        );
        for (ip, why) in [
            ("10.0.1.5", "outside the ranges"),
            ("10.0.0.1", "the gateway"),
            ("10.0.0.9", "in use"),
            ("192.168.0.1", "outside"),
        ] {
            let e = p
                .allocate(&ips(&["10.0.0.9"]), &[ip.parse().unwrap()], &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(ip) && e.contains(why), "{ip}: {e}");
        }
    }

    #[test]
    fn a_slash_31_and_a_big_ipv6_range_work() {
        let p = pool(json!({"ranges": [[{"subnet": "10.9.0.0/31", "gateway": null}]]}));
        let got = p.allocate(&BTreeSet::new(), &[], &[]).unwrap();
        assert_eq!(got[0].address.to_string(), "10.9.0.0/31");
        let p = pool(json!({"ranges": [[{"subnet": "fd00::/64"}]]}));
        let last: IpAddr = "fd00::ffff:ffff:ffff:ffff".parse().unwrap();
        let got = p.allocate(&BTreeSet::new(), &[], &[last]).unwrap();
        assert_eq!(
            got[0].address.ip().to_string(),
            "fd00::2",
            "wraps past the end to the start"
        );
    }
}
