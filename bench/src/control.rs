//! Control-plane figures per plugin (with host-local IPAM, and veth-xdp with
//! its built-in IPAM too): ADD/DEL latency percentiles, a burst of parallel
//! ADDs (wall time and per-ADD percentiles), ADD p50 against existing pods,
//! peak RSS of an ADD, BPF map memory of the node; and the targets as
//! ratios to ptp and to the plugin's own sequential figures.
use crate::{
    bed::{Bed, BedConfig, Column},
    measure::percentile,
    sys, topo,
};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

/// How many pods the control-plane runs use.
#[derive(Debug, Clone, Copy)]
pub struct CpConfig {
    pub sequential: usize,
    pub parallel: usize,
    pub threads: usize,
    pub levels: &'static [usize],
    /// Timed ADDs at each level.
    pub per_level: usize,
}

/// Which IPAM a control-plane row runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipam {
    /// the reference host-local, exec'd by the plugin (every plugin's row)
    HostLocal,
    /// veth-xdp's own, in process (`"type": "veth-xdp"`)
    Builtin,
}

/// p50/p95/p99 in ms.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// Control-plane figures of one plugin.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PluginCp {
    pub plugin: String,
    pub add: Option<Latency>,
    pub del: Option<Latency>,
    /// Wall time (s) of `parallel_n` ADDs with `threads` in parallel.
    pub parallel_wall_s: Option<f64>,
    /// Each ADD's time within that burst.
    #[serde(default)]
    pub parallel_add: Option<Latency>,
    pub parallel_n: usize,
    pub threads: usize,
    /// (existing pods, ADD p50 ms).
    pub add_p50_at: Vec<(usize, f64)>,
    pub peak_rss_kib: Option<u64>,
    /// Bytes of BPF maps pinned by the plugin (0 for plugins without BPF).
    pub bpf_map_bytes: Option<u64>,
    pub na: Option<String>,
}

fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(|a, b| a.total_cmp(b));
    Latency {
        n: ms.len(),
        p50: percentile(&ms, 50.0),
        p95: percentile(&ms, 95.0),
        p99: percentile(&ms, 99.0),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Measures one plugin on a fresh node; errors become an n/a row.
pub fn run_plugin(bed_cfg: &BedConfig, column: Column, ipam: Ipam, cfg: CpConfig) -> PluginCp {
    let plugin = match ipam {
        Ipam::HostLocal => column.name().to_string(),
        Ipam::Builtin => format!("{} + built-in IPAM", column.name()),
    };
    let mut row = PluginCp {
        plugin,
        parallel_n: cfg.parallel,
        threads: cfg.threads,
        ..Default::default()
    };
    if let Err(e) = crate::bed::check_plugin(column, bed_cfg)
        .and_then(|_| measure_plugin(bed_cfg, column, ipam, cfg, &mut row))
    {
        row.na = Some(format!("{e:#}"));
    }
    row
}

fn measure_plugin(
    bed_cfg: &BedConfig,
    column: Column,
    ipam: Ipam,
    cfg: CpConfig,
    row: &mut PluginCp,
) -> Result<()> {
    eprintln!("vx-bench: control plane: {}", row.plugin);
    let mut cp_cfg = BedConfig {
        plugin_bin: bed_cfg.plugin_bin.clone(),
        run_dir: bed_cfg.run_dir.clone(),
        prefix: format!("{}c", bed_cfg.prefix),
    };
    cp_cfg.prefix.truncate(20);
    let mut bed = Bed::build(&cp_cfg, column, 0)?;
    let ipam_dir = topo::OwnedDir::new(format!(
        "{}/cp-ipam-{}",
        bed_cfg.run_dir,
        column.name().replace([' ', '(', ')'], "")
    ))?;
    let ranges = serde_json::json!([[{"subnet": "10.210.0.0/16", "gateway": "10.210.0.1"}]]);
    bed.set_ipam(match ipam {
        Ipam::HostLocal => serde_json::json!({
            "type": "host-local",
            "ranges": ranges,
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": ipam_dir.path,
        }),
        Ipam::Builtin => serde_json::json!({
            "type": "veth-xdp",
            "ranges": ranges,
            "routes": [{"dst": "0.0.0.0/0"}],
        }),
    });
    // Sequential ADDs, then DELs.
    let pods = namespaces(&bed, 0, cfg.sequential)?;
    let mut adds = vec![];
    for p in &pods {
        adds.push(ms(bed.cni_add(&p.name)?));
    }
    row.bpf_map_bytes = Some(match bed.bpf_root() {
        Some(root) => pinned_map_bytes(&root)?,
        None => 0,
    });
    let mut dels = vec![];
    for p in &pods {
        dels.push(ms(bed.cni_del(&p.name)?));
    }
    drop(pods);
    row.add = Some(latency(adds));
    row.del = Some(latency(dels));
    let rss_pod = namespaces(&bed, 0, 1)?;
    row.peak_rss_kib = Some(bed.cni_add_rss(&rss_pod[0].name, &ipam_dir.path)?);
    bed.cni_del(&rss_pod[0].name)?;
    drop(rss_pod);
    // Parallel ADDs.
    let pods = namespaces(&bed, 0, cfg.parallel)?;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let (times, errors): (Vec<f64>, Vec<String>) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cfg.threads)
            .map(|_| {
                s.spawn(|| {
                    let (mut times, mut errs) = (vec![], vec![]);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(p) = pods.get(i) else { break };
                        match bed.cni_add(&p.name) {
                            Ok(d) => times.push(ms(d)),
                            Err(e) => errs.push(format!("{e:#}")),
                        }
                    }
                    (times, errs)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .fold((vec![], vec![]), |(mut t, mut e), (wt, we)| {
                t.extend(wt);
                e.extend(we);
                (t, e)
            })
    });
    let wall = started.elapsed().as_secs_f64();
    row.parallel_add = Some(latency(times));
    for p in &pods {
        let _ = bed.cni_del(&p.name);
    }
    drop(pods);
    if let Some(e) = errors.first() {
        anyhow::bail!(
            "{} of {} parallel ADDs failed, first: {e}",
            errors.len(),
            cfg.parallel
        );
    }
    row.parallel_wall_s = Some(wall);
    // ADD p50 against existing pods.
    let mut existing: Vec<topo::Netns> = vec![];
    for &level in cfg.levels {
        let more = namespaces(&bed, existing.len(), level - existing.len())?;
        for p in &more {
            bed.cni_add(&p.name)?;
        }
        existing.extend(more);
        let probe = namespaces(&bed, existing.len(), cfg.per_level)?;
        let mut t = vec![];
        for p in &probe {
            t.push(ms(bed.cni_add(&p.name)?));
        }
        for p in &probe {
            bed.cni_del(&p.name)?;
        }
        t.sort_by(|a, b| a.total_cmp(b));
        row.add_p50_at.push((level, percentile(&t, 50.0)));
    }
    for p in &existing {
        let _ = bed.cni_del(&p.name);
    }
    Ok(())
}

/// Creates pod namespaces numbered from..from+n on the bed's node.
fn namespaces(bed: &Bed, from: usize, n: usize) -> Result<Vec<topo::Netns>> {
    (from..from + n)
        .map(|i| topo::Netns::new(bed.cp_ns_name(i)))
        .collect()
}

/// Sum of bytes_memlock of the maps pinned under `root` (bpftool).
fn pinned_map_bytes(root: &str) -> Result<u64> {
    let mut total = 0;
    let mut dirs = vec![std::path::PathBuf::from(root)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Ok(out) = sys::run(
                "bpftool",
                &["-j", "map", "show", "pinned", &p.to_string_lossy()],
            ) {
                let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
                total += v["bytes_memlock"].as_u64().unwrap_or(0);
            }
        }
    }
    Ok(total)
}

/// Markdown section for the control-plane figures.
pub fn markdown(rows: &[PluginCp]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from("### Control plane\n\n");
    let levels: Vec<usize> = rows
        .iter()
        .flat_map(|r| r.add_p50_at.iter().map(|x| x.0))
        .fold(vec![], |mut v, l| {
            if !v.contains(&l) {
                v.push(l);
            }
            v
        });
    s.push_str("| plugin | ADD p50/p95/p99 (ms) | DEL p50/p95/p99 (ms) | parallel ADDs wall (s) | parallel ADD p50/p99 (ms) |");
    for l in &levels {
        s.push_str(&format!(" ADD p50 at {l} pods (ms) |"));
    }
    s.push_str(" peak RSS of an ADD (MiB) | BPF map memory (KiB) |\n|---|---:|---:|---:|---:|");
    s.push_str(&"---:|".repeat(levels.len()));
    s.push_str("---:|---:|\n");
    for r in rows {
        if let Some(na) = &r.na {
            s.push_str(&format!("| {} | n/a ({na}) |\n", r.plugin));
            continue;
        }
        let lat = |l: &Option<Latency>| {
            l.as_ref()
                .map(|l| format!("{:.1} / {:.1} / {:.1} (n={})", l.p50, l.p95, l.p99, l.n))
                .unwrap_or_default()
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} |",
            r.plugin,
            lat(&r.add),
            lat(&r.del),
            r.parallel_wall_s
                .map(|w| format!("{w:.2} ({} ADDs, {} threads)", r.parallel_n, r.threads))
                .unwrap_or_default()
        ));
        s.push_str(&format!(
            " {} |",
            r.parallel_add
                .as_ref()
                .map(|l| format!("{:.1} / {:.1}", l.p50, l.p99))
                .unwrap_or_default()
        ));
        for l in &levels {
            let v = r
                .add_p50_at
                .iter()
                .find(|x| x.0 == *l)
                .map(|x| format!("{:.1}", x.1))
                .unwrap_or_default();
            s.push_str(&format!(" {v} |"));
        }
        s.push_str(&format!(
            " {} | {} |\n",
            r.peak_rss_kib
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or_default(),
            r.bpf_map_bytes
                .map(|b| format!("{:.1}", b as f64 / 1024.0))
                .unwrap_or_default()
        ));
    }
    s.push('\n');
    s.push_str(&targets(rows));
    s
}

/// The control-plane targets (issue 11) as ratios from this run.
fn targets(rows: &[PluginCp]) -> String {
    let find = |name: &str| rows.iter().find(|r| r.plugin == name && r.na.is_none());
    let p50 = |r: &PluginCp| r.add.as_ref().map(|l| l.p50);
    let mut s = String::new();
    let mut line = |what: String, v: Option<f64>, target: &str| {
        if let Some(v) = v {
            s.push_str(&format!("- {what}: **{v:.2}** (target {target})\n"));
        }
    };
    let ptp = find("ptp").and_then(p50);
    for r in rows
        .iter()
        .filter(|r| r.plugin.starts_with("veth-xdp") && r.na.is_none())
    {
        let builtin = r.plugin.contains("built-in");
        let target = if builtin { "≤ 0.5" } else { "≤ 0.8" };
        line(
            format!("{}: ADD p50 / ptp's ADD p50", r.plugin),
            p50(r).zip(ptp).map(|(a, b)| a / b),
            target,
        );
        let at = |n: usize| r.add_p50_at.iter().find(|x| x.0 == n).map(|x| x.1);
        if let (Some(first), Some(last)) = (r.add_p50_at.first(), r.add_p50_at.last()) {
            line(
                format!(
                    "{}: ADD p50 at {} pods / at {} pods",
                    r.plugin, last.0, first.0
                ),
                at(last.0).zip(at(first.0)).map(|(a, b)| a / b),
                "≤ 1.2",
            );
        }
        line(
            format!(
                "{}: burst of {} ADDs, {} at once: p99 / sequential ADD p50",
                r.plugin, r.parallel_n, r.threads
            ),
            r.parallel_add
                .as_ref()
                .map(|l| l.p99)
                .zip(p50(r))
                .map(|(a, b)| a / b),
            "≤ 3",
        );
    }
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// Charts of the control-plane figures (ADD p50 against existing pods).
pub fn charts(rows: &[PluginCp], out: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let series: Vec<(String, Vec<(u32, f64)>)> = rows
        .iter()
        .filter(|r| !r.add_p50_at.is_empty())
        .map(|r| {
            (
                r.plugin.clone(),
                r.add_p50_at.iter().map(|(l, v)| (*l as u32, *v)).collect(),
            )
        })
        .collect();
    if series.is_empty() {
        return Ok(vec![]);
    }
    let file = out.join("cni-add-p50-vs-pods.png");
    crate::chart::latency_chart(&series, &file)?;
    Ok(vec![file])
}
