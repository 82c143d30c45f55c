//! `failover.svg`: every failover trial as a dot, one column per (timers,
//! fault, implementation), on a logarithmic time axis, with each column's
//! median as a bar. plotters' SVG backend, no font dependency.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::daemons::Impl;
use super::results::Results;

/// Writes the plot of `r`'s failover trials to `path`.
pub fn failover_svg(r: &Results, path: &Path) -> Result<()> {
    let columns: Vec<_> = r
        .failover
        .iter()
        .filter(|s| s.failover().is_some())
        .collect();
    if columns.is_empty() {
        return Ok(());
    }
    let values = columns
        .iter()
        .flat_map(|s| s.trials.iter().filter_map(|t| t.failover_ms));
    let (lo, hi) = values.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = ((lo * 0.7).max(0.1), hi * 1.5);
    let labels: Vec<String> = columns
        .iter()
        .map(|s| {
            format!(
                "{} b{} {}",
                s.which.name(),
                s.timers.advbase,
                match s.fault {
                    super::failover::Fault::LinkDown => "link",
                    super::failover::Fault::Kill => "kill",
                    super::failover::Fault::Term => "term",
                }
            )
        })
        .collect();
    let width = 160 + 110 * columns.len() as u32;
    let root = SVGBackend::new(path, (width, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Failover: fault → first reply of the backup (ms, log scale)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(columns.len() as f64 - 0.5), (lo..hi).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(columns.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("ms")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (i, s) in columns.iter().enumerate() {
        let color = match s.which {
            Impl::Carpd => RGBColor(0x1f, 0x77, 0xb4),
            Impl::Ucarp => RGBColor(0xd6, 0x27, 0x28),
            Impl::Keepalived => RGBColor(0x2c, 0xa0, 0x2c),
        };
        let n = s.trials.len().max(1) as f64;
        let dots = s.trials.iter().enumerate().filter_map(|(k, t)| {
            t.failover_ms
                .map(|v| (i as f64 - 0.25 + 0.5 * k as f64 / n, v))
        });
        chart
            .draw_series(dots.map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| anyhow!("{e}"))?;
        if let Some(f) = s.failover() {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(i as f64 - 0.35, f.median), (i as f64 + 0.35, f.median)],
                    color.stroke_width(2),
                )))
                .map_err(|e| anyhow!("{e}"))?;
        }
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
