//! The network configuration (JSON on stdin), runtimeConfig capabilities,
//! `args.cni` and CNI_ARGS. Tolerant of unknown keys and nulls; strict and
//! explicit (the message names the key) about wrong types and ranges.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use serde_json::{Map, Value};

use super::error::{CniError, CniResult, Code};
use super::version;
use crate::defaults;
pub use crate::egress::EgressMode;
use crate::mac::{parse_mac, Mac};

/// veth rx/tx queues: the kernel refuses more than this (net/core/rtnetlink.c,
/// rtnl_create_link: "Invalid number of receive queues").
pub const MAX_QUEUES: u32 = 4096;
/// The smallest IPv4 MTU (RFC 791).
pub const MIN_MTU: u32 = 68;
/// The pod annotation that picks the egress mode of one pod.
pub const EGRESS_ANNOTATION: &str = "veth-xdp/egress";
/// Pod annotations ("true"/"false") that open what a pod may send to the wire.
pub const ROUTER_FRAMES_ANNOTATION: &str = "veth-xdp/allow-router-frames";
pub const ALL_ETHERTYPES_ANNOTATION: &str = "veth-xdp/allow-all-ethertypes";
/// Service prefixes per address family the datapath holds (VX_MAX_SERVICE_CIDRS).
pub const MAX_SERVICE_CIDRS: usize = 4;

/// One (containerID, ifname) pair of `cni.dev/valid-attachments`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AttachmentId {
    pub container_id: String,
    pub ifname: String,
}

/// The parsed network configuration.
#[derive(Debug, Clone)]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    pub plugin_type: String,
    pub uplink: Option<String>,
    pub queues: Option<u32>,
    pub mtu: Option<u32>,
    /// the `ipam` object as given (delegated verbatim)
    pub ipam: Option<Map<String, Value>>,
    pub state_dir: PathBuf,
    pub log_file: PathBuf,
    pub log_level: log::LevelFilter,
    /// log the netlink/aya crates' own records too (off: only ours, so
    /// `trace` is readable)
    pub log_dependencies: bool,
    pub egress: EgressMode,
    /// attach our pass program on the pod's eth0. "auto" (the default) is
    /// false: the program was needed only below 5.13 (GRO enables veth NAPI since
    /// d3256efd8e8b), and the plugin requires 6.3.
    pub pod_program: bool,
    pub bpf_root: PathBuf,
    pub max_pods: u32,
    pub dns: Option<Value>,
    /// runtimeConfig / args.cni / CNI_ARGS, merged in that order of precedence
    pub requested_mac: Option<Mac>,
    pub requested_ips: Vec<IpNetwork>,
    /// the pod annotation `veth-xdp/egress`, if the runtime passed annotations
    pub egress_annotation: Option<EgressMode>,
    /// the cluster's service ranges: pods' frames to them go to the node's
    /// stack (kube-proxy); empty = no Kubernetes services on this network
    pub service_cidrs: Vec<IpNetwork>,
    /// pods may send router frames (RA, redirects, DHCP server replies) /
    /// any ethertype; each overridden per pod by its annotation
    pub allow_router_frames: bool,
    pub allow_all_ethertypes: bool,
    pub router_frames_annotation: Option<bool>,
    pub all_ethertypes_annotation: Option<bool>,
    pub prev_result: Option<Value>,
    /// GC: None when the key is absent (then nothing is removed)
    pub valid_attachments: Option<Vec<AttachmentId>>,
    /// the whole config as received, for delegation
    pub raw: Map<String, Value>,
}

impl NetConf {
    /// The egress mode of this pod: its annotation wins over the network's setting.
    pub fn pod_egress(&self) -> EgressMode {
        self.egress_annotation.unwrap_or(self.egress)
    }

    /// Whether this pod may send router frames: its annotation, else the network's setting.
    pub fn pod_allows_router_frames(&self) -> bool {
        self.router_frames_annotation
            .unwrap_or(self.allow_router_frames)
    }

    /// Whether this pod may send any ethertype: its annotation, else the network's setting.
    pub fn pod_allows_all_ethertypes(&self) -> bool {
        self.all_ethertypes_annotation
            .unwrap_or(self.allow_all_ethertypes)
    }

    pub fn ipam_type(&self) -> Option<&str> {
        self.ipam.as_ref()?.get("type")?.as_str()
    }
}

fn invalid(key: &str, what: impl std::fmt::Display) -> CniError {
    CniError::new(
        Code::InvalidConfig,
        format!("network config: \"{key}\" {what}"),
    )
}

fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str) -> CniResult<Option<&'a str>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(invalid(key, format!("must be a string, got {other}"))),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> CniResult<Option<bool>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(invalid(key, format!("must be true or false, got {v}"))),
    }
}

/// `serviceCIDRs`: IPv4 and IPv6 prefixes, at most MAX_SERVICE_CIDRS of each.
fn parse_service_cidrs(obj: &Map<String, Value>) -> CniResult<Vec<IpNetwork>> {
    const KEY: &str = "serviceCIDRs";
    let list = match obj.get(KEY) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(v) => return Err(invalid(KEY, format!("must be a list of CIDRs, got {v}"))),
    };
    let mut cidrs = Vec::new();
    for v in list {
        let s = v
            .as_str()
            .ok_or_else(|| invalid(KEY, format!("must hold CIDR strings, got {v}")))?;
        let net: IpNetwork = s
            .parse()
            .map_err(|e| invalid(KEY, format!("{s:?} is not a CIDR: {e}")))?;
        if net.prefix() == 0 {
            return Err(invalid(KEY, format!("{s:?} covers every address")));
        }
        if net.network() != net.ip() {
            return Err(invalid(
                KEY,
                format!(
                    "{s:?} has host bits set (did you mean {}/{}?)",
                    net.network(),
                    net.prefix()
                ),
            ));
        }
        cidrs.push(net);
    }
    for (family, v4) in [("IPv4", true), ("IPv6", false)] {
        if cidrs.iter().filter(|n| n.is_ipv4() == v4).count() > MAX_SERVICE_CIDRS {
            return Err(invalid(
                KEY,
                format!("holds more than {MAX_SERVICE_CIDRS} {family} prefixes"),
            ));
        }
    }
    Ok(cidrs)
}

fn opt_u32_in(obj: &Map<String, Value>, key: &str, min: u32, max: u32) -> CniResult<Option<u32>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = v
                .as_u64()
                .ok_or_else(|| invalid(key, format!("must be an integer, got {v}")))?;
            if n < u64::from(min) || n > u64::from(max) {
                return Err(invalid(
                    key,
                    format!("must be between {min} and {max}, got {n}"),
                ));
            }
            Ok(Some(n as u32))
        }
    }
}

/// Network names follow libcni's rule (pkg/utils ValidateNetworkName).
fn valid_network_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Parses stdin bytes into a config. `cni_args` is the CNI_ARGS variable.
pub fn parse(stdin: &[u8], cni_args: &str) -> CniResult<NetConf> {
    let text = std::str::from_utf8(stdin).map_err(|e| {
        CniError::new(
            Code::Decode,
            format!("network config is not valid UTF-8: {e}"),
        )
    })?;
    // serde_json refuses nesting deeper than 128 levels, so hostile input cannot blow the stack.
    let value: Value = serde_json::from_str(text).map_err(|e| {
        CniError::new(
            Code::Decode,
            format!("network config is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(raw) = value else {
        return Err(CniError::new(
            Code::Decode,
            "network config must be a JSON object",
        ));
    };
    let cni_version = match raw.get("cniVersion") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            return Err(CniError::new(
                Code::IncompatibleVersion,
                "network config has no \"cniVersion\"",
            ))
        }
        Some(v) => return Err(invalid("cniVersion", format!("must be a string, got {v}"))),
    };
    if !version::is_supported(&cni_version) {
        return Err(CniError::new(
            Code::IncompatibleVersion,
            format!(
                "cniVersion {cni_version} is not supported (supported: {})",
                version::SUPPORTED.join(", ")
            ),
        ));
    }
    let name = opt_str(&raw, "name")?
        .ok_or_else(|| invalid("name", "is required"))?
        .to_string();
    if !valid_network_name(&name) {
        return Err(invalid("name", format!("{name:?} must start with a letter or digit and contain only letters, digits, '_', '.', '-'")));
    }
    let plugin_type = opt_str(&raw, "type")?.unwrap_or_default().to_string();
    let uplink = opt_str(&raw, "uplink")?.map(str::to_string);
    if let Some(u) = &uplink {
        if u.is_empty() || u.len() > 15 || u.contains(['/', ' ']) {
            return Err(invalid(
                "uplink",
                format!("{u:?} is not a valid interface name"),
            ));
        }
    }
    let queues = opt_u32_in(&raw, "queues", 1, MAX_QUEUES)?;
    // The upper bound is the uplink's MTU, checked once the uplink is known.
    let mtu = opt_u32_in(&raw, "mtu", MIN_MTU, 65535)?;
    let ipam = match raw.get("ipam") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => {
            match o.get("type") {
                Some(Value::String(t)) if !t.is_empty() && !t.contains('/') => {}
                _ => {
                    return Err(invalid(
                        "ipam",
                        "must have a \"type\" naming an IPAM plugin on CNI_PATH",
                    ))
                }
            }
            Some(o.clone())
        }
        Some(v) => return Err(invalid("ipam", format!("must be an object, got {v}"))),
    };
    let state_dir = opt_str(&raw, "stateDir")?
        .map_or_else(|| PathBuf::from(defaults::STATE_DIR), PathBuf::from);
    let log_file =
        opt_str(&raw, "logFile")?.map_or_else(|| PathBuf::from(defaults::LOG_FILE), PathBuf::from);
    let bpf_root =
        opt_str(&raw, "bpfRoot")?.map_or_else(|| PathBuf::from(defaults::BPF_ROOT), PathBuf::from);
    for (key, p) in [
        ("stateDir", &state_dir),
        ("logFile", &log_file),
        ("bpfRoot", &bpf_root),
    ] {
        if !p.is_absolute() {
            return Err(invalid(
                key,
                format!("must be an absolute path, got {}", p.display()),
            ));
        }
    }
    let log_level = match opt_str(&raw, "logLevel")? {
        None => log::LevelFilter::Info,
        Some(s) => s.parse().map_err(|_| {
            invalid(
                "logLevel",
                format!("{s:?} is not one of error, warn, info, debug, trace, off"),
            )
        })?,
    };
    let log_dependencies = opt_bool(&raw, "logDependencies")?.unwrap_or(false);
    let allow_router_frames = opt_bool(&raw, "allowRouterFrames")?.unwrap_or(false);
    let allow_all_ethertypes = opt_bool(&raw, "allowAllEthertypes")?.unwrap_or(false);
    let service_cidrs = parse_service_cidrs(&raw)?;
    let egress = match opt_str(&raw, "egress")? {
        None => EgressMode::Xdp,
        Some(s) => EgressMode::parse(s)
            .ok_or_else(|| invalid("egress", format!("{s:?} must be \"xdp\" or \"tc\"")))?,
    };
    let pod_program = match raw.get("podProgram") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "auto" => false,
        Some(v) => {
            return Err(invalid(
                "podProgram",
                format!("must be true, false or \"auto\", got {v}"),
            ))
        }
    };
    let max_pods = opt_u32_in(&raw, "maxPods", 1, 1 << 20)?.unwrap_or(defaults::MAX_PODS);
    let dns = raw.get("dns").filter(|v| !v.is_null()).cloned();

    let mut conf = NetConf {
        cni_version,
        name,
        plugin_type,
        uplink,
        queues,
        mtu,
        ipam,
        state_dir,
        log_file,
        log_level,
        log_dependencies,
        egress,
        pod_program,
        bpf_root,
        max_pods,
        dns,
        requested_mac: None,
        requested_ips: Vec::new(),
        egress_annotation: None,
        service_cidrs,
        allow_router_frames,
        allow_all_ethertypes,
        router_frames_annotation: None,
        all_ethertypes_annotation: None,
        prev_result: raw.get("prevResult").filter(|v| !v.is_null()).cloned(),
        valid_attachments: parse_valid_attachments(&raw)?,
        raw: raw.clone(),
    };
    apply_requests(&mut conf, cni_args)?;
    Ok(conf)
}

fn parse_valid_attachments(raw: &Map<String, Value>) -> CniResult<Option<Vec<AttachmentId>>> {
    const KEY: &str = "cni.dev/valid-attachments";
    let Some(v) = raw.get(KEY).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let list = v.as_array().ok_or_else(|| invalid(KEY, "must be a list"))?;
    list.iter()
        .map(|a| {
            let container_id = a.get("containerID").and_then(Value::as_str);
            let ifname = a.get("ifname").and_then(Value::as_str);
            match (container_id, ifname) {
                (Some(c), Some(i)) => Ok(AttachmentId {
                    container_id: c.into(),
                    ifname: i.into(),
                }),
                _ => Err(invalid(
                    KEY,
                    format!("entries need \"containerID\" and \"ifname\", got {a}"),
                )),
            }
        })
        .collect::<CniResult<Vec<_>>>()
        .map(Some)
}

/// Parses CNI_ARGS ("K=V;K=V", any order) into a map.
pub fn parse_cni_args(s: &str) -> CniResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in s.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            CniError::new(
                Code::InvalidEnv,
                format!("CNI_ARGS: {pair:?} is not KEY=VALUE"),
            )
        })?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn mac_from(key: &str, s: &str) -> CniResult<Mac> {
    let mac = parse_mac(s).ok_or_else(|| invalid(key, format!("{s:?} is not a MAC address")))?;
    if mac[0] & 1 == 1 {
        return Err(invalid(
            key,
            format!("{s} is a multicast address; a pod MAC must be unicast"),
        ));
    }
    if mac == [0; 6] {
        return Err(invalid(key, "00:00:00:00:00:00 is not a usable pod MAC"));
    }
    Ok(mac)
}

fn ips_from(key: &str, items: &[&str]) -> CniResult<Vec<IpNetwork>> {
    items
        .iter()
        .map(|s| {
            // A bare address means a host address; IPAM decides the prefix.
            s.parse::<IpNetwork>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNetwork::from))
                .map_err(|_| invalid(key, format!("{s:?} is not an IP address")))
        })
        .collect()
}

/// Applies `MAC=`/`IP=` from CNI_ARGS, then `args.cni`, then runtimeConfig (highest).
/// A "true"/"false" pod annotation (annotation values are strings).
fn bool_annotation(ann: &Map<String, Value>, name: &str) -> CniResult<Option<bool>> {
    match ann.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(v) => Err(invalid(
            &format!("runtimeConfig pod annotation {name}"),
            format!("must be \"true\" or \"false\", got {v}"),
        )),
    }
}

fn apply_requests(conf: &mut NetConf, cni_args: &str) -> CniResult<()> {
    let args = parse_cni_args(cni_args)?;
    if let Some(m) = args.get("MAC") {
        conf.requested_mac = Some(mac_from("CNI_ARGS MAC", m)?);
    }
    if let Some(ips) = args.get("IP") {
        let list: Vec<&str> = ips.split(',').filter(|s| !s.is_empty()).collect();
        conf.requested_ips = ips_from("CNI_ARGS IP", &list)?;
    }
    if let Some(cni) = conf.raw.get("args").and_then(|a| a.get("cni")).cloned() {
        if let Some(m) = cni.get("mac").and_then(Value::as_str) {
            conf.requested_mac = Some(mac_from("args.cni.mac", m)?);
        }
        if let Some(list) = cni.get("ips").and_then(Value::as_array) {
            let items: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            conf.requested_ips = ips_from("args.cni.ips", &items)?;
        }
    }
    let Some(rc) = conf
        .raw
        .get("runtimeConfig")
        .filter(|v| !v.is_null())
        .cloned()
    else {
        return Ok(());
    };
    if !rc.is_object() {
        return Err(invalid("runtimeConfig", "must be an object"));
    }
    match rc.get("mac") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) => conf.requested_mac = Some(mac_from("runtimeConfig.mac", m)?),
        Some(v) => {
            return Err(invalid(
                "runtimeConfig.mac",
                format!("must be a string, got {v}"),
            ))
        }
    }
    match rc.get("ips") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            let items: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            conf.requested_ips = ips_from("runtimeConfig.ips", &items)?;
        }
        Some(v) => {
            return Err(invalid(
                "runtimeConfig.ips",
                format!("must be a list, got {v}"),
            ))
        }
    }
    if let Some(Value::Object(ann)) = rc.get("io.kubernetes.cri.pod-annotations") {
        conf.router_frames_annotation = bool_annotation(ann, ROUTER_FRAMES_ANNOTATION)?;
        conf.all_ethertypes_annotation = bool_annotation(ann, ALL_ETHERTYPES_ANNOTATION)?;
        match ann.get(EGRESS_ANNOTATION) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                conf.egress_annotation = Some(EgressMode::parse(s).ok_or_else(|| {
                    invalid(
                        "runtimeConfig pod annotation veth-xdp/egress",
                        format!("{s:?} must be \"xdp\" or \"tc\""),
                    )
                })?)
            }
            Some(v) => {
                return Err(invalid(
                    "runtimeConfig pod annotation veth-xdp/egress",
                    format!("must be a string, got {v}"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &str) -> CniResult<NetConf> {
        let s = format!(r#"{{"cniVersion":"1.0.0","name":"n1","type":"veth-xdp"{extra}}}"#);
        parse(s.as_bytes(), "")
    }

    #[test]
    fn defaults() {
        let c = conf("").unwrap();
        assert_eq!(c.egress, EgressMode::Xdp);
        assert_eq!(c.max_pods, defaults::MAX_PODS);
        assert!(c.valid_attachments.is_none());
    }

    #[test]
    fn errors_name_the_key() {
        for (extra, key) in [
            (r#","queues":0"#, "queues"),
            (r#","queues":5000"#, "queues"),
            (r#","queues":"2""#, "queues"),
            (r#","mtu":67"#, "mtu"),
            (r#","egress":"fast""#, "egress"),
            (r#","ipam":{}"#, "ipam"),
            (r#","stateDir":"rel""#, "stateDir"),
        ] {
            let e = conf(extra).unwrap_err();
            assert_eq!(e.code, 7, "{extra}");
            assert!(e.msg.contains(key), "{extra}: {}", e.msg);
        }
    }

    #[test]
    fn decode_errors() {
        assert_eq!(parse(b"\xff\xfe", "").unwrap_err().code, 6);
        assert_eq!(parse(b"{", "").unwrap_err().code, 6);
        let deep = format!("{}{}", "[".repeat(10000), "]".repeat(10000));
        assert_eq!(parse(deep.as_bytes(), "").unwrap_err().code, 6);
        assert_eq!(
            parse(br#"{"cniVersion":"9.9.9","name":"x"}"#, "")
                .unwrap_err()
                .code,
            1
        );
    }

    #[test]
    fn requests_precedence() {
        let c = parse(
            br#"{"cniVersion":"1.0.0","name":"n","args":{"cni":{"mac":"02:00:00:00:00:02"}},
                "runtimeConfig":{"mac":"02:00:00:00:00:03","io.kubernetes.cri.pod-annotations":{"veth-xdp/egress":"tc"}}}"#,
            "IgnoreUnknown=1;MAC=02:00:00:00:00:01;IP=10.0.0.9",
        )
        .unwrap();
        assert_eq!(c.requested_mac, Some([2, 0, 0, 0, 0, 3]));
        assert_eq!(
            c.requested_ips,
            vec!["10.0.0.9/32".parse::<IpNetwork>().unwrap()]
        );
        assert_eq!(c.pod_egress(), EgressMode::Tc);
        let null_ann = parse(br#"{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"io.kubernetes.cri.pod-annotations":null}}"#, "");
        assert!(null_ann.unwrap().egress_annotation.is_none());
    }
}
