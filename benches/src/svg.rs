//! A hand-written SVG bar chart of asyncio / fastest peer per row.

use std::fmt::Write;

use crate::report::Report;

const WIDTH: f64 = 860.0;
const LABEL_W: f64 = 190.0;
const PLOT_W: f64 = 480.0;
const ROW_H: f64 = 30.0;
const TOP: f64 = 60.0;

/// The chart as SVG text: one horizontal bar per row, a line at parity.
pub fn chart(report: &Report) -> String {
    let ratios: Vec<(String, Option<f64>)> = report
        .rows
        .iter()
        .map(|r| (r.label(), r.cost_vs_peers()))
        .collect();
    // Log scale around parity, so 2x slower and 2x faster are the same length.
    let known = || ratios.iter().filter_map(|(_, r)| *r);
    let lo = known().fold(0.5f64, f64::min) / 1.3;
    let hi = known().fold(2.0f64, f64::max) * 1.3;
    let x = |ratio: f64| LABEL_W + (ratio / lo).ln() / (hi / lo).ln() * PLOT_W;
    let height = TOP + ROW_H * ratios.len() as f64 + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="26" font-size="16" font-weight="bold">asyncio-rs time (or memory, latency) / best of tokio and smol</text>"#
    );
    let _ = writeln!(
        s,
        r##"<text x="10" y="46" fill="#555">median per row, log scale; lower is better (req/s rows inverted: best peer / asyncio); the dashed line marks parity</text>"##
    );
    for (i, (label, ratio)) in ratios.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL_W - 8.0,
            y + 19.0,
            escape(label)
        );
        match ratio {
            Some(r) => {
                let fill = if *r <= 1.0 { "#3a8f4b" } else { "#d9822b" };
                let (left, right) = (x(r.min(1.0)), x(r.max(1.0)));
                let _ = writeln!(
                    s,
                    r#"<rect x="{left:.1}" y="{}" width="{:.1}" height="{}" fill="{fill}"/>"#,
                    y + 5.0,
                    (right - left).max(1.0),
                    ROW_H - 10.0
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{}">{r:.2}x</text>"#,
                    right + 6.0,
                    y + 19.0
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    r##"<text x="{:.1}" y="{}" fill="#888">n/a</text>"##,
                    x(1.0) + 6.0,
                    y + 19.0
                );
            }
        }
    }
    let bottom = TOP + ROW_H * ratios.len() as f64;
    let _ = writeln!(
        s,
        r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{bottom}" stroke="#333" stroke-dasharray="4 3"/>"##,
        x(1.0),
        TOP - 4.0
    );
    for tick in [0.01, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0, 100.0, 1000.0] {
        if tick < lo || tick > hi {
            continue;
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" font-size="11">{tick}x</text>"#,
            x(tick),
            bottom + 18.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
