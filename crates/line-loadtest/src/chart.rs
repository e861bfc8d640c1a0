//! An SVG chart of a load-test report: the latency distribution of whole flows and of each
//! step (percentile on a log axis, like HdrHistogram plots), and completed flows per second.

use std::fmt::Write as _;

use super::report::Report;

const W: f64 = 900.0;
const H: f64 = 300.0;
const PAD: f64 = 50.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#06c755",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the report as a standalone SVG document.
pub fn svg(report: &Report) -> String {
    let mut s = String::new();
    let total_h = 2.0 * H + 3.0 * PAD;
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{total_h}" viewBox="0 0 {W} {total_h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{PAD}" y="24" font-size="16" font-weight="bold">linelogin loadtest — {} — {:.0} flows/s, p99 {:.1} ms ({} ok, {} failed)</text>"#,
        esc(&report.target),
        report.flows_per_s,
        report.latency_ms.p99,
        report.ok,
        report.failed
    );
    latency_panel(&mut s, report, PAD + 10.0);
    throughput_panel(&mut s, report, PAD * 2.0 + H + 10.0);
    s.push_str("</svg>\n");
    s
}

fn latency_panel(s: &mut String, report: &Report, top: f64) {
    // x: percentile 50, 90, 99, 99.9, max; y: ms (linear, from 0 to the largest value).
    let labels = ["p50", "p90", "p99", "p99.9", "max"];
    let mut series: Vec<(String, [f64; 5])> = report
        .steps
        .iter()
        .map(|(k, p)| (k.clone(), [p.p50, p.p90, p.p99, p.p999, p.max]))
        .collect();
    let f = &report.latency_ms;
    series.push(("flow".to_owned(), [f.p50, f.p90, f.p99, f.p999, f.max]));
    let ymax = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1.0_f64, f64::max)
        * 1.1;
    let (x0, y0, w, h) = (PAD, top, W - 2.0 * PAD - 120.0, H - 20.0);
    axes(s, x0, y0, w, h, "latency (ms)", ymax);
    for (i, l) in labels.iter().enumerate() {
        let x = x0 + w * i as f64 / 4.0;
        let _ = write!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{l}</text>"#,
            y0 + h + 16.0
        );
    }
    for (si, (name, values)) in series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    x0 + w * i as f64 / 4.0,
                    y0 + h - h * v / ymax
                )
            })
            .collect();
        let width = if name == "flow" { 3.0 } else { 1.5 };
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="{width}" points="{}"/>"#,
            points.join(" ")
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" fill="{color}">{} (p99 {:.1})</text>"#,
            x0 + w + 10.0,
            y0 + 14.0 + 16.0 * si as f64,
            esc(name),
            values[2]
        );
    }
}

fn throughput_panel(s: &mut String, report: &Report, top: f64) {
    let n = report.timeline.len().max(1);
    let ymax = report
        .timeline
        .iter()
        .map(|p| (p.ok + p.failed) as f64)
        .fold(1.0_f64, f64::max)
        * 1.1;
    let (x0, y0, w, h) = (PAD, top, W - 2.0 * PAD - 120.0, H - 20.0);
    axes(s, x0, y0, w, h, "flows per second", ymax);
    let bar = w / n as f64;
    for p in &report.timeline {
        let x = x0 + bar * p.t as f64;
        let ok_h = h * p.ok as f64 / ymax;
        let fail_h = h * p.failed as f64 / ymax;
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{ok_h:.1}" fill="#06c755"/>"##,
            y0 + h - ok_h,
            (bar - 1.0).max(0.5)
        );
        if p.failed > 0 {
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{fail_h:.1}" fill="#d62728"/>"##,
                y0 + h - ok_h - fail_h,
                (bar - 1.0).max(0.5)
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds</text>"#,
        x0 + w / 2.0,
        y0 + h + 16.0
    );
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" fill="#06c755">ok</text>"##,
        x0 + w + 10.0,
        y0 + 14.0
    );
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" fill="#d62728">failed</text>"##,
        x0 + w + 10.0,
        y0 + 30.0
    );
}

fn axes(s: &mut String, x0: f64, y0: f64, w: f64, h: f64, label: &str, ymax: f64) {
    let _ = write!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>"##
    );
    for i in 0..=4 {
        let y = y0 + h - h * i as f64 / 4.0;
        let v = ymax * i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.1}</text>"##,
            x0 + w,
            x0 - 4.0,
            y + 4.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="12" y="{:.1}" transform="rotate(-90 12 {:.1})" text-anchor="middle">{label}</text>"#,
        y0 + h / 2.0,
        y0 + h / 2.0
    );
}
