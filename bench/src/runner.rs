//! Runs the datapath figures for every column, each on its own fresh testbed.
use crate::{
    bed::{Bed, BedConfig, Column, Egress, UPLINK, WIRE_DEV, WIRE_IP},
    bpf::{Generator, LimitTc, LimitXdp, Receiver, Target},
    measure::{self, Source, Windows},
    report::Cell,
    stack::StackSender,
    sys,
};
use anyhow::{Context, Result};

pub const INTO_ONE: &str = "wire → 1 pod (Mpps)";
pub const INTO_FOUR: &str = "wire → 4 pods (Mpps)";
pub const POD_POD_XDP: &str = "pod → pod, XDP-sent (Mpps)";
pub const POD_WIRE_XDP: &str = "pod → wire, XDP-sent (Mpps)";
pub const POD_POD_STACK: &str = "pod → pod, stack-sent (Mpps)";
pub const POD_WIRE_STACK: &str = "pod → wire, stack-sent (Mpps)";
const ALL: [&str; 6] = [
    INTO_ONE,
    INTO_FOUR,
    POD_POD_XDP,
    POD_WIRE_XDP,
    POD_POD_STACK,
    POD_WIRE_STACK,
];

pub const LIMIT_XDP: &str = "limit (xdp redirect)";
pub const LIMIT_TC: &str = "limit (tc redirect)";

/// The limit cell a figure of `column` is compared with.
pub fn limit_for(figure: &str, column: &str) -> String {
    if figure.starts_with("TCP") {
        LIMIT_XDP.into()
    } else if figure == INTO_ONE || figure == INTO_FOUR {
        Column::Limit.name().into()
    } else if column == Column::VethXdp(Egress::Tc).name() || column == LIMIT_TC {
        LIMIT_TC.into()
    } else {
        LIMIT_XDP.into()
    }
}

/// Settings of the datapath part.
pub struct DatapathConfig {
    pub windows: Windows,
    pub gen_cpu: Option<usize>,
    /// None: no TCP figures.
    pub tcp: Option<crate::tcp::TcpConfig>,
}

/// Measures every figure for `column`; figures that cannot run become n/a cells.
pub fn run_column(bed_cfg: &BedConfig, dp: &DatapathConfig, column: Column) -> Vec<Cell> {
    let na = |why: String| -> Vec<Cell> {
        let mut names = vec![column.name()];
        if column == Column::Limit {
            names = vec![column.name(), LIMIT_XDP, LIMIT_TC];
        }
        ALL.iter()
            .flat_map(|f| {
                let ingress = *f == INTO_ONE || *f == INTO_FOUR;
                names
                    .iter()
                    .filter(move |n| {
                        ingress == (**n == Column::Limit.name() || column != Column::Limit)
                    })
                    .map(|n| cell(f, n, Err(anyhow::anyhow!("{why}"))))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    if let Err(e) = crate::bed::check_plugin(column, bed_cfg) {
        return na(format!("{e:#}"));
    }
    eprintln!("vx-bench: {}: building testbed", column.name());
    let bed = match Bed::build(bed_cfg, column, 4) {
        Ok(b) => b,
        Err(e) => return na(format!("setup: {e:#}")),
    };
    let rx = match bed
        .pods
        .iter()
        .map(|p| Receiver::attach(&p.ns.name, "eth0"))
        .collect::<Result<Vec<_>>>()
    {
        Ok(r) => r,
        Err(e) => return na(format!("receivers: {e:#}")),
    };
    let mut cells = vec![];
    for (fig, n) in [(INTO_ONE, 1usize), (INTO_FOUR, 4)] {
        eprintln!("vx-bench: {}: {fig}", column.name());
        let targets: Vec<_> = (0..n).map(|i| bed.ingress_target(i)).collect();
        let r = start_gen(&bed.wire.name, WIRE_DEV, bed.wire_target(), &targets, dp)
            .and_then(|g| measure::measure(g, &rx[..n], dp.windows));
        cells.push(cell(fig, column.name(), r.map(|r| (r, rx[0].mode))));
    }
    let wire_rx = match Receiver::attach(&bed.wire.name, WIRE_DEV) {
        Ok(r) => r,
        Err(e) => {
            cells.extend(
                na(format!("wire receiver: {e:#}"))
                    .into_iter()
                    .filter(|c| c.figure != INTO_ONE && c.figure != INTO_FOUR),
            );
            return cells;
        }
    };
    let eg = EgressRun {
        bed: &bed,
        pod1_rx: &rx[1],
        wire_rx: &wire_rx,
        dp,
    };
    if column == Column::Limit {
        cells.extend(eg.limit_variants());
    } else {
        cells.extend(eg.figures(
            column.name(),
            &[POD_POD_XDP, POD_WIRE_XDP, POD_POD_STACK, POD_WIRE_STACK],
        ));
    }
    drop(wire_rx);
    drop(rx);
    if let Some(tcp) = dp.tcp {
        let name = if column == Column::Limit {
            LIMIT_XDP
        } else {
            column.name()
        };
        cells.extend(crate::tcp::run(&bed, name, tcp));
    }
    let mut bed = bed;
    bed.delete_pods();
    cells
}

fn cell(fig: &str, column: &str, r: Result<(measure::Rate, crate::bpf::Mode)>) -> Cell {
    let (rate, rx_mode, na) = match r {
        Ok((rate, mode)) => (Some(rate), Some(mode), None),
        Err(e) => (None, None, Some(format!("{e:#}"))),
    };
    Cell {
        figure: fig.into(),
        column: column.into(),
        rate,
        ratio: None,
        rx_mode,
        na,
    }
}

fn start_gen(
    ns: &str,
    dev: &str,
    src: Target,
    targets: &[Target],
    dp: &DatapathConfig,
) -> Result<Box<dyn Source>> {
    Ok(Box::new(
        Generator::start(ns, dev, src, targets, dp.gen_cpu).context("starting generator")?,
    ))
}

/// Pod 0 → pod 1 and pod 0 → wire figures of one bed.
struct EgressRun<'a> {
    bed: &'a Bed,
    pod1_rx: &'a Receiver,
    wire_rx: &'a Receiver,
    dp: &'a DatapathConfig,
}

impl EgressRun<'_> {
    /// Measures `figures` under the column name `name`.
    fn figures(&self, name: &str, figures: &[&str]) -> Vec<Cell> {
        figures
            .iter()
            .map(|fig| {
                eprintln!("vx-bench: {name}: {fig}");
                let rx = if fig.starts_with("pod → pod") {
                    self.pod1_rx
                } else {
                    self.wire_rx
                };
                let r = self
                    .source(fig)
                    .and_then(|s| measure::measure(s, std::slice::from_ref(rx), self.dp.windows));
                cell(fig, name, r.map(|r| (r, rx.mode)))
            })
            .collect()
    }

    /// The sender of a figure: the generator redirecting out of pod 0's eth0,
    /// or pod 0's stack.
    fn source(&self, fig: &str) -> Result<Box<dyn Source>> {
        let b = self.bed;
        let p0 = &b.pods[0];
        let (dst, dst_ip) = if fig.starts_with("pod → pod") {
            (b.l2_target_from_pod(1)?, b.pods[1].ip)
        } else {
            (b.wire_from_pod()?, WIRE_IP)
        };
        if fig.contains("XDP-sent") {
            start_gen(
                &p0.ns.name,
                "eth0",
                Target {
                    mac: p0.mac,
                    ip: p0.ip,
                },
                &[dst],
                self.dp,
            )
        } else {
            Ok(Box::new(StackSender::start(
                &p0.ns.name,
                dst_ip,
                self.dp.gen_cpu,
            )?))
        }
    }

    /// limit's bare egress variants on h0: XDP redirect (by MAC to h1 or the
    /// uplink), then tc redirect to the uplink, then tc redirect to h1.
    fn limit_variants(&self) -> Vec<Cell> {
        let node = &self.bed.node.name;
        let ids = (|| -> Result<(u32, u32)> {
            Ok((
                sys::link_info(node, UPLINK)?.ifindex,
                sys::link_info(node, "h1")?.ifindex,
            ))
        })();
        let (up, h1) = match ids {
            Ok(x) => x,
            Err(e) => return vec![cell(POD_POD_XDP, LIMIT_XDP, Err(e))],
        };
        let mut cells = vec![];
        let all = [POD_POD_XDP, POD_WIRE_XDP, POD_POD_STACK, POD_WIRE_STACK];
        match LimitXdp::attach(
            node,
            "h0",
            &[(self.bed.wire_mac, up), (self.bed.pods[1].mac, h1)],
        ) {
            Ok(_prog) => cells.extend(self.figures(LIMIT_XDP, &all)),
            Err(e) => cells.extend(
                all.iter()
                    .map(|f| cell(f, LIMIT_XDP, Err(anyhow::anyhow!("{e:#}")))),
            ),
        }
        for (target, figs) in [
            (up, [POD_WIRE_XDP, POD_WIRE_STACK]),
            (h1, [POD_POD_XDP, POD_POD_STACK]),
        ] {
            match LimitTc::attach(node, "h0", target) {
                Ok(_prog) => cells.extend(self.figures(LIMIT_TC, &figs)),
                Err(e) => cells.extend(
                    figs.iter()
                        .map(|f| cell(f, LIMIT_TC, Err(anyhow::anyhow!("{e:#}")))),
                ),
            }
        }
        cells
    }
}
