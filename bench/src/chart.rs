//! PNG charts drawn with plotters (bitmap backend; text needs a TrueType font
//! found by fontconfig, e.g. Debian's fonts-dejavu-core).
use crate::report::{Cell, Report};
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One bar chart per datapath figure (median with min–max spread, ratio to
/// limit on top); returns the files written.
pub fn datapath_charts(rep: &Report, out: &Path) -> Result<Vec<PathBuf>> {
    let mut figures: Vec<&str> = vec![];
    for c in &rep.cells {
        if !figures.contains(&c.figure.as_str()) {
            figures.push(&c.figure);
        }
    }
    let mut files = vec![];
    for fig in figures {
        let cells: Vec<&Cell> = rep.cells.iter().filter(|c| c.figure == fig).collect();
        let file = out.join(format!("{}.png", slug(fig)));
        bar_chart(fig, &cells, &file)?;
        files.push(file);
    }
    Ok(files)
}

/// File name for a figure title: lowercase letters and digits, '-' between.
pub fn slug(title: &str) -> String {
    let mut s = String::new();
    for ch in title.chars() {
        if ch.is_ascii_alphanumeric() {
            s.push(ch.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    s.trim_end_matches('-').to_string()
}

fn bar_chart(title: &str, cells: &[&Cell], file: &Path) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", file.display());
    let root = BitMapBackend::new(file, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let top = cells
        .iter()
        .filter_map(|c| c.rate.as_ref().map(|r| r.max))
        .fold(0.0f64, f64::max)
        .max(0.1)
        * 1.2;
    let n = cells.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)
        .map_err(|e| err(&e))?;
    let names: Vec<String> = cells.iter().map(|c| c.column.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(if title.contains("Gb/s") {
            "Gb/s"
        } else {
            "Mpps"
        })
        .x_labels(cells.len() + 1)
        .label_style(("sans-serif", 15))
        .light_line_style(WHITE)
        .x_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(|e| err(&e))?;
    for (i, c) in cells.iter().enumerate() {
        let x = i as f64;
        let color = if c.column.starts_with("limit") {
            RGBColor(120, 120, 120)
        } else if c.column.starts_with("veth-xdp") {
            RGBColor(31, 119, 180)
        } else {
            RGBColor(255, 127, 14)
        };
        let Some(r) = &c.rate else {
            chart
                .draw_series(std::iter::once(Text::new(
                    "n/a",
                    (x - 0.1, top * 0.03),
                    ("sans-serif", 16),
                )))
                .map_err(|e| err(&e))?;
            continue;
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.35, 0.0), (x + 0.35, r.median)],
                color.mix(0.85).filled(),
            )))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(std::iter::once(ErrorBar::new_vertical(
                x,
                r.min,
                r.median,
                r.max,
                BLACK.stroke_width(2),
                12,
            )))
            .map_err(|e| err(&e))?;
        let label = match c.ratio {
            _ if r.delivered == 0 && r.sent > 0 => "0 (100% lost)".to_string(),
            Some(x) => format!("{:.2} ({x:.2}×)", r.median),
            None => format!("{:.2}", r.median),
        };
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (x - 0.3, r.max + top * 0.06),
                ("sans-serif", 16),
            )))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// ADD p50 latency (ms) against the number of existing pods, one line per plugin.
pub fn latency_chart(series: &[(String, Vec<(u32, f64)>)], file: &Path) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", file.display());
    let root = BitMapBackend::new(file, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let max_x = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .max()
        .unwrap_or(1)
        .max(1);
    let max_y = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption("CNI ADD p50 against existing pods", ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0u32..max_x + max_x / 10, 0f64..max_y)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("existing pods")
        .y_desc("ADD p50 (ms)")
        .draw()
        .map_err(|e| err(&e))?;
    for (k, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
