//! SVG plots for the report (plotters, SVG backend: no fonts or system libraries needed).
//!
//! - grouped bars: one group per category (a workload's parameter, or an allocator), one
//!   bar per series, so allocators stand side by side;
//! - CDFs: latency distributions on a logarithmic time axis, one line per allocator;
//! - lines: curves on linear axes (a replay's RSS and live bytes against the operation index).

use plotters::prelude::*;
use std::path::Path;

/// Plot size in pixels: wide enough for nine allocators side by side.
const SIZE_PX: (u32, u32) = (960, 480);
/// The CDF's time axis ends at four times the slowest allocator's value at this quantile.
const TAIL_QUANTILE: f64 = 0.999;
/// Series colours, cycled (plotters' default palette, readable on white).
const PALETTE: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

fn fail(path: &Path) -> impl Fn(String) -> String + '_ {
    move |e| format!("cannot draw {}: {e}", path.display())
}

/// A named series of values, one per category (`None` where it was not measured).
pub type Series = (String, Vec<Option<f64>>);

/// Grouped bars: for each category, one bar per series.
pub fn bars(
    path: &Path,
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[Series],
) -> Result<(), String> {
    let fail = fail(path);
    let y_max = series
        .iter()
        .flat_map(|(_, values)| values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    if categories.is_empty() || series.is_empty() || y_max <= 0.0 {
        return Ok(());
    }
    let root = SVGBackend::new(path, SIZE_PX).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..categories.len() as f64, 0f64..y_max * 1.1)
        .map_err(|e| fail(e.to_string()))?;
    let labels = categories.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(categories.len() * 2 + 1)
        .x_label_formatter(&|x| {
            // Label only the middle of each group.
            let index = x.floor() as usize;
            let middle = (x - x.floor() - 0.5).abs() < 1e-6;
            labels
                .get(index)
                .filter(|_| middle)
                .cloned()
                .unwrap_or_default()
        })
        .y_desc(y_label)
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    let width = 0.8 / series.len() as f64;
    for (index, (name, values)) in series.iter().enumerate() {
        let style = colour(index).filled();
        let rects = values.iter().enumerate().filter_map(|(category, value)| {
            let left = category as f64 + 0.1 + width * index as f64;
            value.map(|v| Rectangle::new([(left, 0.0), (left + width * 0.9, v)], style))
        });
        chart
            .draw_series(rects)
            .map_err(|e| fail(e.to_string()))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], style));
    }
    finish(chart, SeriesLabelPosition::UpperLeft, &fail)
}

/// Cumulative distributions: x = nanoseconds (log scale), y = fraction of operations.
pub fn cdf(path: &Path, title: &str, series: &[(String, Vec<(f64, f64)>)]) -> Result<(), String> {
    let fail = fail(path);
    // The axis ends a little past the slowest P99.9: the rare multi-millisecond outlier (a
    // page fault, the scheduler) would otherwise squeeze every distribution into the left edge.
    let x_max = series
        .iter()
        .filter_map(|(_, p)| p.iter().find(|(_, y)| *y >= TAIL_QUANTILE).map(|(x, _)| *x))
        .fold(10.0f64, f64::max)
        * 4.0;
    if series.iter().all(|(_, p)| p.is_empty()) {
        return Ok(());
    }
    let root = SVGBackend::new(path, SIZE_PX).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1f64..x_max * 1.5).log_scale(), 0f64..1.0)
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("nanoseconds per operation (timer overhead subtracted)")
        .y_desc("fraction of operations")
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    for (index, (name, points)) in series.iter().enumerate() {
        let style = colour(index).stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                points
                    .iter()
                    .filter(|(x, _)| *x <= x_max)
                    .map(|&(x, y)| (x.max(1.0), y)),
                style,
            ))
            .map_err(|e| fail(e.to_string()))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], colour(index)));
    }
    finish(chart, SeriesLabelPosition::LowerRight, &fail)
}

/// Lines on linear axes from 0: one per series of `(x, y)` points.
pub fn lines(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), String> {
    let fail = fail(path);
    let points = || series.iter().flat_map(|(_, p)| p.iter());
    let x_max = points().map(|p| p.0).fold(1.0, f64::max);
    let y_max = points().map(|p| p.1).fold(0.1, f64::max);
    let root = SVGBackend::new(path, SIZE_PX).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max * 1.1)
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    for (index, (name, points)) in series.iter().enumerate() {
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour(index).stroke_width(2),
            ))
            .map_err(|e| fail(e.to_string()))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], colour(index)));
    }
    finish(chart, SeriesLabelPosition::UpperLeft, &fail)
}

/// Draws the legend at `position` and writes the picture out: the last step of every plot.
fn finish<'a, CT: CoordTranslate>(
    mut chart: ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
    fail: &impl Fn(String) -> String,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    chart
        .plotting_area()
        .present()
        .map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_svg_files() {
        let dir = std::env::temp_dir().join(format!("heapkit-plots-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bars_path = dir.join("bars.svg");
        bars(
            &bars_path,
            "hot_pair",
            "ns per op",
            &["16".into(), "64".into()],
            &[
                ("system".into(), vec![Some(20.0), Some(21.0)]),
                ("heapkit".into(), vec![Some(5.0), None]),
            ],
        )
        .unwrap();
        let cdf_path = dir.join("cdf.svg");
        cdf(
            &cdf_path,
            "alloc",
            &[("system".into(), vec![(10.0, 0.5), (100.0, 1.0)])],
        )
        .unwrap();
        for path in [bars_path, cdf_path] {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.starts_with("<svg") && text.contains("system"),
                "{}",
                path.display()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
