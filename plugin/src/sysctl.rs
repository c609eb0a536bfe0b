//! Per-device sysctls of the namespace the process is in (/proc/sys/net is
//! resolved against the opening task's network namespace).

use anyhow::{Context, Result};

/// Writes `net.ipv6.conf.<dev>.<key> = value`.
pub fn set_ipv6_conf(dev: &str, key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{dev}/{key}");
    std::fs::write(&path, value).with_context(|| format!("write {value} to {path}"))
}
