//! Runs the datapath figures for every column, each on its own fresh testbed.
use crate::{
    bed::{Bed, BedConfig, Column},
    bpf::{Generator, Receiver},
    measure::{self, Windows},
    report::Cell,
};
use anyhow::{Context, Result};

pub const INTO_ONE: &str = "wire → 1 pod (Mpps)";
pub const INTO_FOUR: &str = "wire → 4 pods (Mpps)";

/// Settings of the datapath part.
pub struct DatapathConfig {
    pub windows: Windows,
    pub gen_cpu: Option<usize>,
}

/// Measures every figure for `column`; figures that cannot run become n/a cells.
pub fn run_column(bed_cfg: &BedConfig, dp: &DatapathConfig, column: Column) -> Vec<Cell> {
    let figures = [INTO_ONE, INTO_FOUR];
    let na = |why: String| -> Vec<Cell> {
        figures.iter().map(|f| cell(f, column, None, None, Some(why.clone()))).collect()
    };
    if let Err(e) = crate::bed::check_plugin(column, bed_cfg) {
        return na(format!("{e:#}"));
    }
    eprintln!("vx-bench: {}: building testbed", column.name());
    let bed = match Bed::build(bed_cfg, column, 4) {
        Ok(b) => b,
        Err(e) => return na(format!("setup: {e:#}")),
    };
    let rx = match attach_receivers(&bed) {
        Ok(r) => r,
        Err(e) => return na(format!("receivers: {e:#}")),
    };
    let mode = rx.first().map(|r| r.mode);
    let mut cells = vec![];
    for (fig, n) in [(INTO_ONE, 1usize), (INTO_FOUR, 4)] {
        eprintln!("vx-bench: {}: {fig}", column.name());
        match ingress(&bed, &rx[..n], dp) {
            Ok(rate) => cells.push(cell(fig, column, Some(rate), mode, None)),
            Err(e) => cells.push(cell(fig, column, None, None, Some(format!("{e:#}")))),
        }
    }
    cells
}

fn cell(fig: &str, column: Column, rate: Option<measure::Rate>, mode: Option<crate::bpf::Mode>, na: Option<String>) -> Cell {
    Cell { figure: fig.into(), column: column.name().into(), rate, ratio: None, rx_mode: mode, na }
}

fn attach_receivers(bed: &Bed) -> Result<Vec<Receiver>> {
    bed.pods.iter().map(|p| Receiver::attach(&p.ns.name, "eth0")).collect()
}

/// Wire → the first `rx.len()` pods: frames injected at the uplink.
fn ingress(bed: &Bed, rx: &[Receiver], dp: &DatapathConfig) -> Result<measure::Rate> {
    let targets: Vec<_> = (0..rx.len()).map(|i| bed.ingress_target(i)).collect();
    let gen = Generator::start(&bed.wire.name, crate::bed::WIRE_DEV, bed.wire_target(), &targets, dp.gen_cpu)
        .context("starting generator")?;
    measure::measure(gen, rx, dp.windows)
}
