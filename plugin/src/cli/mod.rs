//! The binary's entry: a CNI plugin when CNI_COMMAND is set, an operator tool otherwise.

pub mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use ipnetwork::IpNetwork;

use crate::defaults::{
    BPF_ROOT as DEFAULT_BPF_ROOT, MAX_PODS as DEFAULT_MAX_PODS, STATE_DIR as DEFAULT_STATE_DIR,
};

/// veth-xdp: a CNI plugin (run by the container runtime with CNI_COMMAND set)
/// and the operator commands below.
#[derive(Debug, Parser)]
#[command(name = "veth-xdp", disable_version_flag = true)]
struct Cli {
    /// print the version and the CNI versions supported (as `veth-xdp version`)
    #[arg(long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load and pin the datapath, attach the uplink program (what the first ADD does)
    Setup {
        /// the uplink (default: the device of the default route)
        #[arg(long, value_name = "DEV")]
        uplink: Option<String>,
        /// where programs and maps are pinned
        #[arg(long, value_name = "DIR", default_value = DEFAULT_BPF_ROOT)]
        bpf_root: PathBuf,
        /// datapath map capacity in pods
        #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PODS)]
        max_pods: u32,
        /// the cluster's Service ranges (comma-separated)
        #[arg(long, value_name = "CIDR[,CIDR...]", value_delimiter = ',')]
        service_cidrs: Vec<IpNetwork>,
        /// accepted and ignored (it held the node lock, now on the pin root)
        #[arg(long, value_name = "DIR", hide = true)]
        state_dir: Option<PathBuf>,
    },
    /// Attachments with per-pod datapath counters and hidden veth drops
    Stats {
        /// machine-readable output
        #[arg(long)]
        json: bool,
        /// show rates over intervals of SECS seconds
        #[arg(long, value_name = "SECS", value_parser = crate::install::parse_secs)]
        watch: Option<Duration>,
        /// with --watch: stop after N intervals
        #[arg(long, value_name = "N")]
        count: Option<u32>,
        /// where the attachment records are
        #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Detach the uplink program and remove every pin (pods lose the fast path)
    Teardown {
        /// where programs and maps are pinned
        #[arg(long, value_name = "DIR", default_value = DEFAULT_BPF_ROOT)]
        bpf_root: PathBuf,
    },
    /// Install the plugin on a node: binary, datapath, conflist (the DaemonSet's entry point)
    Install(crate::install::InstallArgs),
    /// Print the version and the CNI versions supported
    Version,
}

pub fn main() -> i32 {
    if std::env::var_os("CNI_COMMAND").is_some() {
        return crate::cni::main(&crate::cmd::VERBS);
    }
    drop_empty_settings();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help goes to stdout and succeeds; a usage error exits 2.
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("veth-xdp: {e:#}");
            1
        }
    }
}

fn print_version() {
    println!(
        "veth-xdp {} (CNI {})",
        env!("CARGO_PKG_VERSION"),
        crate::cni::version::SUPPORTED.join(", ")
    );
}

/// The settings operators pass as environment (the DaemonSet's ConfigMap):
/// an empty value means "not given" (clap would try to parse it).
fn drop_empty_settings() {
    let empty: Vec<_> = std::env::vars_os()
        .filter(|(k, v)| {
            let k = k.to_string_lossy();
            v.is_empty() && (k.starts_with("VETH_XDP_") || k == "NODE_NAME" || k == "KUBECONFIG")
        })
        .map(|(k, _)| k)
        .collect();
    for k in empty {
        // Single-threaded here: nothing else reads the environment yet.
        std::env::remove_var(k);
    }
}

/// Runs one operator command; Ok(exit code).
fn run(cli: Cli) -> Result<i32> {
    let command = match (cli.version, cli.command) {
        (true, _) | (false, Some(Command::Version)) => {
            print_version();
            return Ok(0);
        }
        (false, None) => {
            use clap::CommandFactory;
            eprint!("{}", Cli::command().render_help());
            anyhow::bail!("no command given");
        }
        (false, Some(command)) => command,
    };
    match command {
        Command::Stats {
            json,
            watch,
            count,
            state_dir,
        } => stats::run(&stats::StatsArgs {
            state_dir,
            json,
            watch,
            count,
        })?,
        Command::Setup {
            uplink,
            bpf_root,
            max_pods,
            service_cidrs,
            state_dir: _,
        } => setup(uplink, bpf_root, max_pods, &service_cidrs)?,
        Command::Teardown { bpf_root } => {
            crate::bpf::teardown_node(&crate::bpf::BpfPaths::new(bpf_root))?
        }
        Command::Install(args) => return install(&args),
        Command::Version => unreachable!("answered above"),
    }
    Ok(0)
}

/// `veth-xdp install`: print the host paths, install once, or run the agent.
fn install(args: &crate::install::InstallArgs) -> Result<i32> {
    if args.print_host_paths {
        return crate::install::print_host_paths(args);
    }
    if args.once {
        return crate::install::run_once(args);
    }
    crate::agent::run(args)
}

fn setup(
    uplink: Option<String>,
    bpf_root: PathBuf,
    max_pods: u32,
    services: &[IpNetwork],
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
