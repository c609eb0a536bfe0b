//! Per-device sysctls of the namespace the process is in (/proc/sys/net is
//! resolved against the opening task's network namespace).

/// A sysctl that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("write {value} to {path}: {source}")]
pub struct SysctlError {
    pub path: String,
    pub value: String,
    pub source: std::io::Error,
}

/// Writes `net.ipv6.conf.<dev>.<key> = value`.
pub fn set_ipv6_conf(dev: &str, key: &str, value: &str) -> Result<(), SysctlError> {
    set(&format!("net/ipv6/conf/{dev}/{key}"), value)
}

/// Writes the sysctl at `/proc/sys/<key>` (slashes, e.g. `net/ipv4/ip_forward`).
pub fn set(key: &str, value: &str) -> Result<(), SysctlError> {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).map_err(|source| SysctlError {
        path,
        value: value.to_string(),
        source,
    })
}

/// Reads the sysctl at `/proc/sys/<key>`, trimmed.
pub fn get(key: &str) -> Result<String, SysctlError> {
    let path = format!("/proc/sys/{key}");
    std::fs::read_to_string(&path)
        .map(|v| v.trim().to_string())
        .map_err(|source| SysctlError {
            path,
            value: String::new(),
            source,
        })
}

/// The forwarding switches a node needs to route Service traffic (kube-proxy
/// DNATs a pod's frame and forwards it to the backend): IPv4 always, IPv6
/// only with an IPv6 service range (forwarding on makes Linux ignore RAs on
/// interfaces whose accept_ra is 1, which a node configured by SLAAC needs).
pub fn node_forwarding_keys(ipv6: bool) -> &'static [&'static str] {
    if ipv6 {
        &["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"]
    } else {
        &["net/ipv4/ip_forward"]
    }
}
