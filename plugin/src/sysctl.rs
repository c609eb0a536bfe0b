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
    let path = format!("/proc/sys/net/ipv6/conf/{dev}/{key}");
    std::fs::write(&path, value).map_err(|source| SysctlError {
        path,
        value: value.to_string(),
        source,
    })
}
