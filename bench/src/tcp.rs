//! TCP figures with iperf3: pod → node, node → pod, pod → wire, wire → pod and
//! pod → pod, 1 and 4 streams. Each iperf3 interval is one window.
use crate::{
    bed::{Bed, Column, UPLINK, WIRE_IP},
    bpf::LimitXdp,
    measure,
    report::Cell,
    sys,
};
use anyhow::{bail, Context, Result};
use std::process::{Child, Command, Stdio};

/// Where a TCP figure's traffic starts or ends.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Pod0,
    Pod1,
    Node,
    Wire,
}

const DIRECTIONS: [(&str, End, End); 5] = [
    ("pod → node", End::Pod0, End::Node),
    ("node → pod", End::Node, End::Pod0),
    ("pod → wire", End::Pod0, End::Wire),
    ("wire → pod", End::Wire, End::Pod0),
    ("pod → pod", End::Pod0, End::Pod1),
];

/// How long each iperf3 run lasts and how it is cut into windows.
#[derive(Clone, Copy, Debug)]
pub struct TcpConfig {
    pub secs: f64,
    pub interval: f64,
    pub streams: &'static [u32],
}

/// Title of a TCP figure.
pub fn figure(dir: &str, streams: u32) -> String {
    format!(
        "TCP {dir}, {streams} stream{} (Gb/s)",
        if streams == 1 { "" } else { "s" }
    )
}

/// Every TCP figure of a bed. limit gets a full XDP switch (every h_i
/// redirects by MAC to the other pods or the uplink) and pods with tx
/// checksum offload off, and has no node figures (the node is not on its path).
pub fn run(bed: &Bed, name: &str, cfg: TcpConfig) -> Vec<Cell> {
    let _switch = if bed.column == Column::Limit {
        match limit_switch(bed) {
            Ok(s) => Some(s),
            Err(e) => return all_na(name, cfg, &format!("limit switch: {e:#}")),
        }
    } else {
        None
    };
    let mut cells = vec![];
    for (dir, from, to) in DIRECTIONS {
        for &n in cfg.streams {
            let fig = figure(dir, n);
            eprintln!("vx-bench: {name}: {fig}");
            let r = if bed.column == Column::Limit && (from == End::Node || to == End::Node) {
                Err(anyhow::anyhow!("the node is not on the bare path"))
            } else {
                iperf(bed, from, to, n, cfg)
            };
            let (rate, na) = match r {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            };
            cells.push(Cell {
                figure: fig,
                column: name.into(),
                rate,
                ratio: None,
                rx_mode: None,
                na,
            });
        }
    }
    cells
}

fn all_na(name: &str, cfg: TcpConfig, why: &str) -> Vec<Cell> {
    DIRECTIONS
        .iter()
        .flat_map(|(dir, _, _)| cfg.streams.iter().map(move |n| figure(dir, *n)))
        .map(|fig| Cell {
            figure: fig,
            column: name.into(),
            rate: None,
            ratio: None,
            rx_mode: None,
            na: Some(why.into()),
        })
        .collect()
}

fn limit_switch(bed: &Bed) -> Result<Vec<LimitXdp>> {
    let node = &bed.node.name;
    let up = sys::link_info(node, UPLINK)?.ifindex;
    let mut progs = vec![];
    for (i, p) in bed.pods.iter().enumerate() {
        sys::ethtool_k(&p.ns.name, "eth0", &["tx", "off", "gro", "on"])?;
        let mut targets = vec![(bed.wire_mac, up)];
        for (j, q) in bed.pods.iter().enumerate().filter(|(j, _)| *j != i) {
            targets.push((q.mac, sys::link_info(node, &format!("h{j}"))?.ifindex));
        }
        progs.push(LimitXdp::attach(node, &format!("h{i}"), &targets)?);
    }
    Ok(progs)
}

fn ns_of(bed: &Bed, e: End) -> &str {
    match e {
        End::Pod0 => &bed.pods[0].ns.name,
        End::Pod1 => &bed.pods[1].ns.name,
        End::Node => &bed.node.name,
        End::Wire => &bed.wire.name,
    }
}

fn ip_of(bed: &Bed, e: End) -> String {
    let ip = match e {
        End::Pod0 => bed.pods[0].ip,
        End::Pod1 => bed.pods[1].ip,
        End::Node => bed.node_ip_for_pods(),
        End::Wire => WIRE_IP,
    };
    std::net::Ipv4Addr::from(ip).to_string()
}

/// An iperf3 server for one test; killed on drop if still running.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn iperf(bed: &Bed, from: End, to: End, streams: u32, cfg: TcpConfig) -> Result<measure::Rate> {
    let _server = Server(
        Command::new("nsenter")
            .arg(format!("--net={}", sys::netns_path(ns_of(bed, to))))
            .args(["iperf3", "-s", "-1", "-p", "5201"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning iperf3 server")?,
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (t, i, p) = (
        format!("{}", cfg.secs),
        format!("{}", cfg.interval),
        streams.to_string(),
    );
    let out = Command::new("nsenter")
        .arg(format!("--net={}", sys::netns_path(ns_of(bed, from))))
        .args([
            "iperf3",
            "-J",
            "-c",
            &ip_of(bed, to),
            "-p",
            "5201",
            "-t",
            &t,
            "-i",
            &i,
            "-P",
            &p,
            "--connect-timeout",
            "2000",
        ])
        .output()
        .context("running iperf3 client")?;
    parse_iperf(&String::from_utf8_lossy(&out.stdout))
}

/// Gb/s per iperf3 interval (the windows), from iperf3 -J.
fn parse_iperf(json: &str) -> Result<measure::Rate> {
    let v: serde_json::Value = serde_json::from_str(json).context("iperf3 output is not JSON")?;
    if let Some(e) = v["error"].as_str() {
        bail!("iperf3: {e}");
    }
    let windows: Vec<f64> = v["intervals"]
        .as_array()
        .context("iperf3: no intervals")?
        .iter()
        .filter_map(|i| i["sum"]["bits_per_second"].as_f64())
        .map(|b| b / 1e9)
        .collect();
    if v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0) == 0 {
        bail!("iperf3: the receiver got no data");
    }
    Ok(measure::summarize(windows, 0, 0))
}
