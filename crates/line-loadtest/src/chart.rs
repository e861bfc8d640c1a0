//! An SVG chart of a load-test report, drawn with `plotters` (its SVG backend only: no font
//! files, no bitmap code): latency percentiles over time, and completed and failed flows per
//! second, on one time axis.
//!
//! - Ticks are the round numbers `plotters` picks for the axis range; the time axis is
//!   labelled in seconds since the start.
//! - The last second of a run is usually partial (a 10.4 s run ends 0.4 s into its eleventh
//!   second). Its counts are scaled to a per-second rate, and its points are drawn hollow and
//!   named in the caption, so a short last second does not read as a collapse.
//! - Every series has a fixed colour (not one picked by position), so charts of two runs can be
//!   compared at a glance.
//!
//! `plotters` escapes the text it writes into the SVG (the target URL in the caption).

use plotters::prelude::*;

use super::report::Report;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 640;
/// LINE's green, for the completed flows.
const OK: RGBColor = RGBColor(0x06, 0xc7, 0x55);
const FAILED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const P50: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const P99: RGBColor = RGBColor(0xff, 0x7f, 0x0e);

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the chart: {0}")]
pub struct ChartError(#[source] Box<dyn std::error::Error + Send + Sync + 'static>);

fn err(e: impl std::error::Error + Send + Sync + 'static) -> ChartError {
    ChartError(Box::new(e))
}

/// Renders the report as a standalone SVG document.
pub fn svg(report: &Report) -> Result<String, ChartError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let title = format!(
            "linelogin loadtest: {} ({:.0} flows/s, p99 {:.1} ms, {} ok, {} failed)",
            report.target, report.flows_per_s, report.latency_ms.p99, report.ok, report.failed
        );
        let root = root
            .titled(&title, ("sans-serif", 16).into_font())
            .map_err(err)?;
        let (top, bottom) = root.split_vertically(HEIGHT / 2 - 20);
        latency_panel(&top, report)?;
        throughput_panel(&bottom, report)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// The x range: the run's seconds (at least one).
fn x_range(report: &Report) -> std::ops::Range<f64> {
    0.0..(report.duration_s.ceil().max(1.0))
}

/// Points at the middle of each second.
fn mid(t: u64) -> f64 {
    t as f64 + 0.5
}

fn latency_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    report: &Report,
) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    let ymax = report
        .timeline
        .iter()
        .filter_map(|s| s.p99_ms)
        .fold(1.0_f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .caption("latency of successful flows", ("sans-serif", 14))
        .build_cartesian_2d(x_range(report), 0.0..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the start")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("latency (ms)")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    for (name, color, pick) in [
        (
            "p50",
            P50,
            (|s| s.p50_ms) as fn(&super::report::Second) -> Option<f64>,
        ),
        ("p99", P99, |s| s.p99_ms),
    ] {
        let points: Vec<(f64, f64)> = report
            .timeline
            .iter()
            .filter_map(|s| pick(s).map(|v| (mid(s.t), v)))
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn throughput_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    report: &Report,
) -> Result<(), ChartError>
where
    DB::ErrorType: 'static,
{
    // Per-second rates: the last, partial second is scaled by the part of it the run covered.
    let rate = |n: u64, span: f64| n as f64 / span.max(0.001);
    let ymax = report
        .timeline
        .iter()
        .map(|s| rate(s.ok.max(s.failed), s.span_s))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let partial = report.timeline.last().filter(|s| s.span_s < 0.999);
    let caption = match partial {
        Some(s) => format!(
            "flows per second (hollow: the last {:.2} s, scaled to a rate)",
            s.span_s
        ),
        None => "flows per second".to_owned(),
    };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .caption(caption, ("sans-serif", 14))
        .build_cartesian_2d(x_range(report), 0.0..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the start")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("flows/s")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    for (name, color, count) in [
        (
            "completed",
            OK,
            (|s| s.ok) as fn(&super::report::Second) -> u64,
        ),
        ("failed", FAILED, |s| s.failed),
    ] {
        let points: Vec<(f64, f64)> = report
            .timeline
            .iter()
            .map(|s| (mid(s.t), rate(count(s), s.span_s)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        if let (Some(last), Some(_)) = (points.last(), partial) {
            chart
                .draw_series(std::iter::once(Circle::new(
                    *last,
                    4,
                    color.stroke_width(2),
                )))
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Second, Tally};
    use std::time::Duration;

    fn report(duration: Duration) -> Report {
        let mut tally = Tally::default();
        let mut at = Duration::ZERO;
        while at < duration {
            tally.success(Duration::from_millis(3 + at.as_millis() as u64 % 7), at);
            at += Duration::from_millis(10);
        }
        tally.failure("callback_status_503".into(), Duration::from_millis(1500));
        Report::build(
            "http://127.0.0.1:8080 <&>".into(),
            "closed",
            4,
            None,
            tally,
            0,
            duration,
        )
    }

    #[test]
    fn draws_both_panels_with_a_labelled_time_axis() {
        let svg = svg(&report(Duration::from_millis(3400))).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for text in [
            "seconds since the start",
            "latency (ms)",
            "flows/s",
            "p99",
            "completed",
            "failed",
        ] {
            assert!(svg.contains(text), "{text}");
        }
        // The target in the title is escaped.
        assert!(svg.contains("8080 &lt;&amp;&gt;"), "{svg}");
        assert!(!svg.contains("8080 <&>"));
    }

    #[test]
    fn the_last_partial_second_is_scaled_and_marked() {
        let r = report(Duration::from_millis(3400));
        let last: &Second = r.timeline.last().unwrap();
        assert_eq!(last.t, 3);
        assert!((last.span_s - 0.4).abs() < 1e-6, "{}", last.span_s);
        let svg = svg(&r).unwrap();
        assert!(
            svg.contains("the last 0.40 s"),
            "caption names the partial second"
        );
        assert!(svg.contains("<circle"), "its points are marked");
        // A run that ends on a whole second has no partial second to mark.
        let whole = svg_of(Duration::from_secs(3));
        assert!(!whole.contains("<circle"));
    }

    fn svg_of(d: Duration) -> String {
        svg(&report(d)).unwrap()
    }

    #[test]
    fn colours_are_fixed_per_series() {
        // Two different runs: the same series keep the same colour.
        let (a, b) = (
            svg_of(Duration::from_millis(2500)),
            svg_of(Duration::from_secs(5)),
        );
        for color in ["#06C755", "#D62728", "#1F77B4", "#FF7F0E"] {
            assert!(
                a.to_uppercase().contains(color) && b.to_uppercase().contains(color),
                "{color}"
            );
        }
    }
}
