//! Results of a run: JSON (everything) and a markdown table (with ratios to limit).
use crate::{bpf::Mode, measure::Rate};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// One measured (or unavailable) figure of one column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub figure: String,
    pub column: String,
    pub rate: Option<Rate>,
    /// median / limit's median for the same figure, same run.
    pub ratio: Option<f64>,
    /// How the receiving XDP program is attached (native/generic).
    pub rx_mode: Option<Mode>,
    /// Why the figure is missing ("n/a (reason)").
    pub na: Option<String>,
}

/// Machine and command facts shown with the numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub command: String,
    pub date: String,
    pub kernel: String,
    pub cpu: String,
    pub cpus: usize,
    pub quick: bool,
    pub windows: crate::measure::Windows,
    /// Length of each iperf3 run and of its intervals (the TCP windows).
    #[serde(default)]
    pub tcp_secs: Option<f64>,
    #[serde(default)]
    pub tcp_interval_secs: Option<f64>,
    pub duration_secs: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub meta: Meta,
    pub cells: Vec<Cell>,
    pub control_plane: Vec<crate::control::PluginCp>,
}

impl Report {
    /// Fills every cell's ratio from the limit cell of the same figure.
    /// `limit_of(figure, column)` names the limit cell a cell is compared with.
    pub fn compute_ratios(&mut self, limit_of: impl Fn(&str, &str) -> String) {
        let limits: Vec<(String, String, f64)> = self
            .cells
            .iter()
            .filter_map(|c| {
                c.rate
                    .as_ref()
                    .map(|r| (c.figure.clone(), c.column.clone(), r.median))
            })
            .collect();
        for c in &mut self.cells {
            let want = limit_of(&c.figure, &c.column);
            let lim = limits
                .iter()
                .find(|(f, col, _)| *f == c.figure && *col == want)
                .map(|x| x.2);
            c.ratio = match (&c.rate, lim) {
                (Some(r), Some(l)) if l > 0.0 => Some(r.median / l),
                _ => None,
            };
        }
    }

    fn figures(&self) -> Vec<String> {
        let mut f: Vec<String> = vec![];
        for c in &self.cells {
            if !f.contains(&c.figure) {
                f.push(c.figure.clone());
            }
        }
        f
    }

    /// Markdown: one table per figure (column, Mpps median, spread, × limit, lost, receiver).
    pub fn markdown(&self) -> String {
        let m = &self.meta;
        let mut s = String::new();
        let _ = writeln!(s, "Command: `{}`  ", m.command);
        let tcp = match (m.tcp_secs, m.tcp_interval_secs) {
            (Some(t), Some(i)) => format!(" · TCP: {t} s iperf3 runs, {i} s windows"),
            _ => String::new(),
        };
        let _ = writeln!(s, "Date: {} · kernel {} · CPU {} ({} CPUs) · Mpps: {} windows of {} s after {} s warm-up{tcp}{} · {:.0} s\n",
            m.date, m.kernel, m.cpu, m.cpus, m.windows.count, m.windows.secs, m.windows.warmup_secs,
            if m.quick { " (--quick)" } else { "" }, m.duration_secs);
        for fig in self.figures() {
            let _ = writeln!(s, "### {fig}\n");
            let _ = writeln!(
                s,
                "| column | median | spread (min–max) | × limit | lost | receiver XDP |"
            );
            let _ = writeln!(s, "|---|---:|---:|---:|---:|---|");
            for c in self.cells.iter().filter(|c| c.figure == fig) {
                match (&c.rate, &c.na) {
                    (Some(r), _) => {
                        let lost = if r.sent > 0 {
                            format!("{} ({:.1}%)", r.lost, 100.0 * r.lost as f64 / r.sent as f64)
                        } else {
                            "–".into()
                        };
                        let _ = writeln!(
                            s,
                            "| {} | {:.3} | {:.3}–{:.3} | {} | {} | {} |",
                            c.column,
                            r.median,
                            r.min,
                            r.max,
                            c.ratio.map(|x| format!("{x:.2}")).unwrap_or("–".into()),
                            lost,
                            c.rx_mode
                                .map(|m| format!("{m:?}").to_lowercase())
                                .unwrap_or_default()
                        );
                    }
                    (None, na) => {
                        let _ = writeln!(
                            s,
                            "| {} | n/a ({}) | | | | |",
                            c.column,
                            na.as_deref().unwrap_or("not run")
                        );
                    }
                }
            }
            s.push('\n');
        }
        s.push_str(&self.targets());
        s.push_str(&crate::control::markdown(&self.control_plane));
        s
    }

    /// Targets, shown and never asserted: measured ratio next to the goal
    /// (veth-xdp) or the prototype's ratio (reference plugins).
    fn targets(&self) -> String {
        let fig = crate::runner::INTO_ONE;
        let ratio = |col: &str| {
            self.cells
                .iter()
                .find(|c| c.figure == fig && c.column == col)
                .and_then(|c| c.ratio)
        };
        let mut s = format!("### Targets ({fig}, × limit; shown, not asserted)\n\n| column | measured | target / prototype |\n|---|---:|---:|\n");
        let rows = [
            ("veth-xdp (xdp)", "≥ 0.90 (target)"),
            ("veth-xdp (tc)", "≥ 0.90 (target)"),
            ("macvlan", "~0.46 (prototype)"),
            ("ptp", "~0.27 (prototype)"),
            ("bridge", "~0.17 (prototype)"),
        ];
        for (col, goal) in rows {
            let m = ratio(col)
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "n/a".into());
            s.push_str(&format!("| {col} | {m} | {goal} |\n"));
        }
        let lim = self
            .cells
            .iter()
            .find(|c| c.figure == fig && c.column == "limit")
            .and_then(|c| c.rate.as_ref())
            .map(|r| format!("{:.2} Mpps", r.median))
            .unwrap_or_else(|| "n/a".into());
        s.push_str(&format!("| limit | {lim} | ~4.1 Mpps (prototype) |\n\n"));
        s
    }
}
