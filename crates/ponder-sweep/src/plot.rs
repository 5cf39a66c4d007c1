//! `scaling.svg`: accuracy against mean thinking tokens, one line per mode.

use std::path::Path;

use plotters::prelude::*;

use crate::metrics::{Mode, ModeSummary};
use crate::SweepError;

/// Draws the scaling plot.
pub fn draw(summaries: &[ModeSummary], title: &str, path: &Path) -> Result<(), SweepError> {
    let error = |e: String| SweepError::Io(format!("{}: {e}", path.display()));
    let max_tokens = summaries
        .iter()
        .flat_map(|s| s.budgets.iter().map(|b| b.mean_reasoning_tokens + b.mean_probe_tokens))
        .fold(1.0f64, f64::max)
        * 1.05;
    let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..max_tokens, 0f64..1f64)
        .map_err(|e| error(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("mean thinking tokens per question (adaptive: with its probes)")
        .y_desc("accuracy")
        .draw()
        .map_err(|e| error(e.to_string()))?;
    for summary in summaries {
        let color = match summary.mode {
            Mode::Forcing => RED,
            Mode::CapOnly => BLUE,
            Mode::Parallel => GREEN,
            Mode::Adaptive => MAGENTA,
        };
        // Adaptive thinking's probes cost tokens too: its points stand at reasoning + probes.
        let points: Vec<(f64, f64)> =
            summary.budgets.iter().map(|b| (b.mean_reasoning_tokens + b.mean_probe_tokens, b.accuracy)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| error(e.to_string()))?
            .label(summary.mode.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| error(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| error(e.to_string()))?;
    root.present().map_err(|e| error(e.to_string()))?;
    Ok(())
}
