//! Running tools (ip, ethtool, ping, nsenter) and code inside network namespaces.
use anyhow::{bail, Context, Result};
use std::{fs::File, process::Command};

/// Path of a named network namespace made by `ip netns add`.
pub fn netns_path(ns: &str) -> String {
    format!("/var/run/netns/{ns}")
}

/// Runs a command, failing with its stderr when it exits non-zero; returns stdout.
pub fn run(prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .with_context(|| format!("spawning {prog} {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{prog} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip ARGS` in namespace `ns` (`ip -n NS ...`).
pub fn ip(ns: &str, args: &[&str]) -> Result<String> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Runs `prog args` inside namespace `ns` through `nsenter --net` (never
/// `ip netns exec`, which remounts /sys and hides bpffs).
pub fn ns_run(ns: &str, prog: &str, args: &[&str]) -> Result<String> {
    let net = format!("--net={}", netns_path(ns));
    let mut all = vec![net.as_str(), prog];
    all.extend_from_slice(args);
    run("nsenter", &all)
}

/// `ethtool -K DEV features...` inside `ns`.
pub fn ethtool_k(ns: &str, dev: &str, features: &[&str]) -> Result<()> {
    let mut args = vec!["-K", dev];
    args.extend_from_slice(features);
    ns_run(ns, "ethtool", &args).map(|_| ())
}

/// Runs `f` on a fresh thread whose network namespace is `ns`; the caller's
/// thread never changes namespace.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_netns(ns)?;
            f()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("thread in netns {ns} panicked"))?
    })
}

/// Moves the calling thread into namespace `ns`.
pub fn enter_netns(ns: &str) -> Result<()> {
    let file = File::open(netns_path(ns)).with_context(|| format!("opening netns {ns}"))?;
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("setns into {ns}"))
}

/// Pins the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).context("CpuSet::set")?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("sched_setaffinity cpu {cpu}"))
}

/// Link facts read with `ip -j link show`.
#[derive(Debug, Clone)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub mac: [u8; 6],
}

/// Reads ifindex and MAC of `dev` in `ns`.
pub fn link_info(ns: &str, dev: &str) -> Result<LinkInfo> {
    let out = ip(ns, &["-j", "link", "show", "dev", dev])?;
    let v: serde_json::Value = serde_json::from_str(&out).context("parsing ip -j link")?;
    let l = &v[0];
    let ifindex = l["ifindex"].as_u64().context("ifindex missing")? as u32;
    let mac = parse_mac(l["address"].as_str().context("address missing")?)?;
    Ok(LinkInfo { ifindex, mac })
}

/// Parses "aa:bb:cc:dd:ee:ff".
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        bail!("bad MAC {s}");
    }
    for (i, p) in parts.iter().enumerate() {
        mac[i] = u8::from_str_radix(p, 16).with_context(|| format!("bad MAC {s}"))?;
    }
    Ok(mac)
}

#[cfg_attr(not(test), allow(dead_code))] // used by the line-rate test
/// Reads one counter of /proc/net/snmp (e.g. "Ip", "InReceives") inside `ns`.
pub fn snmp_counter(ns: &str, group: &str, name: &str) -> Result<u64> {
    let text = ns_run(ns, "cat", &["/proc/net/snmp"])?;
    let prefix = format!("{group}:");
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
    if rows.len() < 2 {
        bail!("/proc/net/snmp in {ns} has no {group} rows");
    }
    let names: Vec<&str> = rows[0].split_whitespace().collect();
    let values: Vec<&str> = rows[1].split_whitespace().collect();
    let i = names
        .iter()
        .position(|n| *n == name)
        .with_context(|| format!("no {group} {name}"))?;
    values[i].parse().context("parsing snmp value")
}

/// Sends one small UDP datagram (to the discard port) from namespace `ns` to
/// `to`; the kernel resolves the neighbour on the way.
pub fn send_udp(ns: &str, to: [u8; 4]) -> Result<()> {
    in_netns(ns, || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").context("binding UDP socket")?;
        s.send_to(b"vx-bench warm-up", (std::net::Ipv4Addr::from(to), 9))
            .context("sending warm-up datagram")?;
        Ok(())
    })
}
