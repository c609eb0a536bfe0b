//! `vx-bench inject`: sends N live 64-byte UDP frames out of a device with the
//! same XDP generator the benchmark uses, for demos and manual checks:
//!   vx-bench inject --netns WIRE --dev wire0 --dst-mac MAC --dst-ip IP [--src-ip IP] [--frames N]
use crate::{bpf, sys};
use anyhow::{bail, Context, Result};

fn ipv4(s: &str) -> Result<[u8; 4]> {
    let ip: std::net::Ipv4Addr = s
        .parse()
        .with_context(|| format!("{s:?} is not an IPv4 address"))?;
    Ok(ip.octets())
}

pub fn run(args: &[String]) -> Result<()> {
    let get = |name: &str| -> Option<&str> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    for a in args.iter().filter(|a| a.starts_with("--")) {
        if ![
            "--netns",
            "--dev",
            "--dst-mac",
            "--dst-ip",
            "--src-ip",
            "--frames",
        ]
        .contains(&a.as_str())
        {
            bail!("inject: unknown option {a}");
        }
    }
    let ns = get("--netns").context("inject: --netns NAME is required")?;
    let dev = get("--dev").context("inject: --dev DEV is required")?;
    let dst = bpf::Target {
        mac: sys::parse_mac(get("--dst-mac").context("inject: --dst-mac is required")?)?,
        ip: ipv4(get("--dst-ip").context("inject: --dst-ip is required")?)?,
    };
    let src = bpf::Target {
        mac: sys::link_info(ns, dev)?.mac,
        ip: ipv4(get("--src-ip").unwrap_or("192.0.2.1"))?,
    };
    let frames: u32 = get("--frames")
        .unwrap_or("1000000")
        .parse()
        .context("inject: --frames N")?;
    let started = std::time::Instant::now();
    let sent = bpf::Generator::send_exact(ns, dev, src, &[dst], frames)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "injected {sent} frames of 64 B out of {dev} in {ns} in {secs:.3} s ({:.2} Mpps)",
        sent as f64 / secs / 1e6
    );
    Ok(())
}
