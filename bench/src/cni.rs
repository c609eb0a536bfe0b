//! Invoking a CNI plugin exactly as a runtime does: env + stdin config, run in
//! the node namespace through `nsenter --net`.
use crate::sys;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Where the reference plugins (and host-local) live on Debian.
pub const CNI_PATH: &str = "/usr/lib/cni";

/// What one CNI call returned.
pub struct Outcome {
    pub result: Value,
    pub elapsed: Duration,
}

/// Runs `bin` with CNI_COMMAND=`command` for container `id` whose netns is
/// `pod_ns`, inside `node_ns`.
pub fn invoke(
    node_ns: &str,
    bin: &Path,
    command: &str,
    id: &str,
    pod_ns: &str,
    conf: &Value,
) -> Result<Outcome> {
    invoke_with(
        Command::new("nsenter"),
        node_ns,
        bin,
        command,
        id,
        pod_ns,
        conf,
    )
}

/// Like [`invoke`], under GNU time: also returns the peak RSS (KiB) of the
/// plugin and the IPAM plugin it runs. (rusage from our own wait4 would report
/// this process's RSS: a child's high-water mark includes its pre-exec image.)
pub fn invoke_rss(
    node_ns: &str,
    bin: &Path,
    command: &str,
    id: &str,
    pod_ns: &str,
    conf: &Value,
    scratch: &str,
) -> Result<(Outcome, u64)> {
    let file = format!("{scratch}/time-{id}");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M", "-o", &file, "nsenter"]);
    let out = invoke_with(cmd, node_ns, bin, command, id, pod_ns, conf)?;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading {file} (GNU time; apt-get install time)"))?;
    let kib = text
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .parse()
        .with_context(|| format!("GNU time output {text:?}"))?;
    Ok((out, kib))
}

fn invoke_with(
    mut cmd: Command,
    node_ns: &str,
    bin: &Path,
    command: &str,
    id: &str,
    pod_ns: &str,
    conf: &Value,
) -> Result<Outcome> {
    let started = Instant::now();
    let mut child = cmd
        .arg(format!("--net={}", sys::netns_path(node_ns)))
        .arg(bin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", sys::netns_path(pod_ns))
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", CNI_PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;
    // A plugin may exit without reading its config (EPIPE): its exit status
    // and stdout then say why, so the write error is not the one to report.
    let _ = child
        .stdin
        .take()
        .context("plugin stdin")?
        .write_all(conf.to_string().as_bytes());
    let status = wait(child.id() as i32)?;
    let elapsed = started.elapsed();
    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read;
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    let name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if status != 0 {
        let msg = serde_json::from_str::<Value>(&stdout)
            .ok()
            .and_then(|v| v["msg"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{} {}", stdout.trim(), stderr.trim()));
        bail!("{name} {command} {id} exited {status}: {msg}");
    }
    let result = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout)
            .with_context(|| format!("{name} {command}: result is not JSON: {stdout}"))?
    };
    Ok(Outcome { result, elapsed })
}

/// waitpid: the child's exit code (128 + signal when killed).
fn wait(pid: i32) -> Result<i32> {
    let mut status = 0;
    // SAFETY: pid is our child; status is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r < 0 {
        bail!("waitpid {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

/// The pod's address and MAC from a CNI result (first IP, its interface).
pub fn pod_addr(result: &Value) -> Result<([u8; 4], [u8; 6])> {
    let ip0 = &result["ips"][0];
    let addr = ip0["address"]
        .as_str()
        .context("result has no ips[0].address")?;
    let ip: std::net::Ipv4Addr = addr
        .split('/')
        .next()
        .unwrap_or("")
        .parse()
        .with_context(|| format!("bad address {addr}"))?;
    let ifaces = result["interfaces"]
        .as_array()
        .context("result has no interfaces")?;
    let iface = match ip0["interface"].as_u64() {
        Some(i) => &ifaces[i as usize],
        None => ifaces
            .iter()
            .find(|i| i.get("sandbox").is_some())
            .context("no sandbox interface")?,
    };
    let mac = sys::parse_mac(iface["mac"].as_str().context("interface has no mac")?)?;
    Ok((ip.octets(), mac))
}

/// host-local IPAM section for `subnet` (a /24 given as "a.b.c"), leases in `data_dir`.
pub fn host_local(net24: &str, gateway: &str, data_dir: &str) -> Value {
    serde_json::json!({
        "type": "host-local",
        "ranges": [[{"subnet": format!("{net24}.0/24"), "gateway": gateway,
                     "rangeStart": format!("{net24}.10"), "rangeEnd": format!("{net24}.250")}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": data_dir,
    })
}
