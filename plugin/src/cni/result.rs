//! The CNI result: parsed from the delegated IPAM (any version) and written in
//! the version the caller's config asked for.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::version;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    pub address: IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteConfig {
    pub dst: IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// A version-independent result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniOutput {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<RouteConfig>,
    pub dns: Dns,
}

impl CniOutput {
    /// Parses a result of any version >= 0.3.0 (IPAM results, prevResult).
    pub fn parse(v: &Value) -> Result<Self, String> {
        let obj = v.as_object().ok_or("result is not a JSON object")?;
        let interfaces = match obj.get("interfaces") {
            Some(Value::Null) | None => Vec::new(),
            Some(x) => serde_json::from_value(x.clone()).map_err(|e| format!("interfaces: {e}"))?,
        };
        let ips = match obj.get("ips") {
            Some(Value::Null) | None => Vec::new(),
            Some(Value::Array(list)) => list.iter().map(parse_ip).collect::<Result<_, _>>()?,
            Some(_) => return Err("ips: not a list".into()),
        };
        let routes = match obj.get("routes") {
            Some(Value::Null) | None => Vec::new(),
            Some(x) => serde_json::from_value(x.clone()).map_err(|e| format!("routes: {e}"))?,
        };
        let dns = match obj.get("dns") {
            Some(Value::Null) | None => Dns::default(),
            Some(x) => serde_json::from_value(x.clone()).map_err(|e| format!("dns: {e}"))?,
        };
        Ok(Self {
            interfaces,
            ips,
            routes,
            dns,
        })
    }

    /// The gateway a route uses: its own, or (as ptp does) the gateway of the
    /// first address of the route's family.
    pub fn route_gateway(&self, r: &RouteConfig) -> Option<IpAddr> {
        r.gw.or_else(|| {
            self.ips
                .iter()
                .find(|i| i.address.is_ipv4() == r.dst.is_ipv4())
                .and_then(|i| i.gateway)
        })
    }

    /// The result JSON in `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> Value {
        let with_version = version::ips_carry_version(cni_version);
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut v = serde_json::to_value(ip).expect("ip serialises");
                if with_version {
                    v["version"] = json!(if ip.address.is_ipv4() { "4" } else { "6" });
                }
                v
            })
            .collect();
        let mut out = json!({
            "cniVersion": cni_version,
            "interfaces": self.interfaces,
            "ips": ips,
        });
        if !self.routes.is_empty() {
            out["routes"] = json!(self.routes);
        }
        out["dns"] = serde_json::to_value(&self.dns).expect("dns serialises");
        out
    }
}

fn parse_ip(v: &Value) -> Result<IpConfig, String> {
    let address = v
        .get("address")
        .and_then(Value::as_str)
        .ok_or("ips[].address missing")?
        .parse::<IpNetwork>()
        .map_err(|e| format!("ips[].address: {e}"))?;
    let gateway = match v.get("gateway") {
        Some(Value::String(s)) if !s.is_empty() => {
            Some(s.parse().map_err(|e| format!("ips[].gateway: {e}"))?)
        }
        _ => None,
    };
    let interface = v
        .get("interface")
        .and_then(Value::as_u64)
        .map(|i| i as usize);
    Ok(IpConfig {
        address,
        gateway,
        interface,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_versions() {
        let ipam = json!({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.1.0.5/24","gateway":"10.1.0.1"}],
                          "routes":[{"dst":"0.0.0.0/0"}],"dns":{}});
        let mut out = CniOutput::parse(&ipam).unwrap();
        out.ips[0].interface = Some(1);
        let old = out.to_json("0.3.1");
        assert_eq!(old["ips"][0]["version"], "4");
        assert_eq!(old["ips"][0]["interface"], 1);
        let new = out.to_json("1.0.0");
        assert!(new["ips"][0].get("version").is_none());
        assert_eq!(new["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(CniOutput::parse(&new).unwrap(), out);
    }
}
