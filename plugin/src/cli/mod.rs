//! The binary's entry: a CNI plugin when CNI_COMMAND is set, an operator tool otherwise.

pub mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::defaults::{
    BPF_ROOT as DEFAULT_BPF_ROOT, MAX_PODS as DEFAULT_MAX_PODS, STATE_DIR as DEFAULT_STATE_DIR,
};

const USAGE: &str = "veth-xdp: a CNI plugin (run by the container runtime with CNI_COMMAND set)

operator commands:
  veth-xdp setup [--uplink DEV] [--bpf-root DIR] [--max-pods N]
        load and pin the datapath, attach the uplink program (what the first ADD does)
  veth-xdp stats [--json] [--watch SECS [--count N]] [--state-dir DIR]
        attachments with per-pod datapath counters and hidden veth drops
  veth-xdp teardown [--bpf-root DIR]
        detach the uplink program and remove every pin (pods lose the fast path)
  veth-xdp version
";

pub fn main() -> i32 {
    if std::env::var_os("CNI_COMMAND").is_some() {
        return crate::cni::main(&crate::cmd::VERBS);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("veth-xdp: {e:#}");
            1
        }
    }
}

/// Parsed `--key value` flags and `--switch`es.
struct Flags(Vec<String>);

impl Flags {
    fn value(&self, name: &str) -> Result<Option<String>> {
        match self.0.iter().position(|a| a == name) {
            None => Ok(None),
            Some(i) => self
                .0
                .get(i + 1)
                .cloned()
                .map(Some)
                .with_context(|| format!("{name} needs a value")),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    fn path(&self, name: &str, default: &str) -> Result<PathBuf> {
        Ok(PathBuf::from(
            self.value(name)?.unwrap_or_else(|| default.to_string()),
        ))
    }

    fn check_known(&self, known: &[&str]) -> Result<()> {
        for a in self.0.iter().filter(|a| a.starts_with("--")) {
            if !known.contains(&a.as_str()) {
                bail!("unknown option {a}\n{USAGE}");
            }
        }
        Ok(())
    }
}

fn run(args: &[String]) -> Result<()> {
    let flags = Flags(args.iter().skip(1).cloned().collect());
    match args.first().map(String::as_str) {
        Some("version") | Some("--version") => {
            println!(
                "veth-xdp {} (CNI {})",
                env!("CARGO_PKG_VERSION"),
                crate::cni::version::SUPPORTED.join(", ")
            );
            Ok(())
        }
        Some("stats") => {
            flags.check_known(&["--json", "--watch", "--count", "--state-dir"])?;
            let watch = flags
                .value("--watch")?
                .map(|s| s.parse::<f64>().map(Duration::from_secs_f64))
                .transpose()
                .context("--watch SECS")?;
            let count = flags
                .value("--count")?
                .map(|s| s.parse::<u32>())
                .transpose()
                .context("--count N")?;
            stats::run(&stats::StatsArgs {
                state_dir: flags.path("--state-dir", DEFAULT_STATE_DIR)?,
                json: flags.has("--json"),
                watch,
                count,
            })
        }
        Some("setup") => {
            // --state-dir is still accepted (it held the node lock, now on the pin root).
            flags.check_known(&[
                "--uplink",
                "--bpf-root",
                "--max-pods",
                "--state-dir",
                "--service-cidrs",
            ])?;
            let max_pods = flags
                .value("--max-pods")?
                .map(|s| s.parse::<u32>())
                .transpose()
                .context("--max-pods N")?
                .unwrap_or(DEFAULT_MAX_PODS);
            let services = flags
                .value("--service-cidrs")?
                .map(|list| {
                    list.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::parse)
                        .collect::<Result<Vec<ipnetwork::IpNetwork>, _>>()
                })
                .transpose()
                .context("--service-cidrs CIDR[,CIDR...]")?
                .unwrap_or_default();
            setup(
                flags.value("--uplink")?,
                flags.path("--bpf-root", DEFAULT_BPF_ROOT)?,
                max_pods,
                &services,
            )
        }
        Some("teardown") => {
            flags.check_known(&["--bpf-root"])?;
            crate::bpf::teardown_node(&crate::bpf::BpfPaths::new(
                flags.path("--bpf-root", DEFAULT_BPF_ROOT)?,
            ))?;
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            bail!("no command given")
        }
    }
}

fn setup(
    uplink: Option<String>,
    bpf_root: PathBuf,
    max_pods: u32,
    services: &[ipnetwork::IpNetwork],
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let nl = crate::netlink::Netlink::current()?;
        let link = crate::cmd::node::resolve_uplink(&nl, uplink.as_deref()).await?;
        let _lock = crate::bpf::lock_node(&crate::bpf::BpfPaths::new(&bpf_root))?;
        let dp = crate::cmd::datapath::setup_node(&bpf_root, max_pods, &link, services).await?;
        println!(
            "datapath ready under {}: uplink {} (ifindex {}) in {} mode; {}",
            bpf_root.display(),
            link.name,
            link.index,
            match dp.uplink_mode {
                crate::bpf::UplinkMode::Driver => "driver (native XDP)",
                crate::bpf::UplinkMode::Generic =>
                    "generic (skb) XDP: the driver has no native XDP",
            },
            if dp.uplink_can_xmit {
                "pods XDP-redirect to the wire"
            } else {
                "the uplink lacks ndo-xmit: pod egress uses the tc fallback"
            }
        );
        Ok(())
    })
}
