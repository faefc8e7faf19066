//! The report's charts as small hand-written inline SVG: a line over runs, two lines
//! over weeks, bars of category scores, and the backtest's ROC curves. Hand-written rather than a plotting crate:
//! three fixed chart shapes of a few dozen points, whose bytes must not change from
//! one release of a dependency to the next (pages are compared byte for byte), and
//! no font or script to load. Coordinates are printed with one decimal.

use std::fmt::Write as _;

use super::html::esc;

const W: f64 = 260.0;
const H: f64 = 90.0;
const PAD: f64 = 6.0;

/// Polylines of `series` (label, points in order) over one y range (`lo` to `hi`,
/// or to the largest value when `hi` is `None`); "no data" when every series is
/// empty.
pub fn line(series: &[(&str, &[(String, f64)])], lo: f64, hi: Option<f64>) -> String {
    let max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return empty();
    }
    let hi = hi.unwrap_or(max).max(lo + 1e-9);
    let mut s = open("line");
    let colours = ["#3b6fd4", "#d4793b"];
    for (k, (label, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let n = points.len().max(2) - 1;
        let xy: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, (_, v))| {
                let x = PAD + (W - 2.0 * PAD) * i as f64 / n as f64;
                let y = H - PAD - (H - 2.0 * PAD) * ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            colours[k % colours.len()],
            xy.join(" "),
            esc(label)
        );
        if let Some((when, v)) = points.last() {
            let _ = write!(s, "<title>{} {}: {v:.1}</title>", esc(label), esc(when));
        }
    }
    s.push_str("</svg>");
    s
}

/// A curve of (x, y) points in the unit square over its diagonal (the ROC curve of
/// a score against the chance line), titled `label`.
pub fn unit_curve(label: &str, points: &[(f64, f64)]) -> String {
    if points.is_empty() {
        return empty();
    }
    let at = |(x, y): (f64, f64)| {
        (
            PAD + (H - 2.0 * PAD) * x.clamp(0.0, 1.0),
            H - PAD - (H - 2.0 * PAD) * y.clamp(0.0, 1.0),
        )
    };
    let mut s = open("curve");
    let ((x0, y0), (x1, y1)) = (at((0.0, 0.0)), at((1.0, 1.0)));
    let _ = write!(
        s,
        "<line x1=\"{x0:.1}\" y1=\"{y0:.1}\" x2=\"{x1:.1}\" y2=\"{y1:.1}\" stroke=\"#aaa\" stroke-dasharray=\"3 3\"></line>"
    );
    let xy: Vec<String> = points
        .iter()
        .map(|&p| {
            let (x, y) = at(p);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#3b6fd4\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline></svg>",
        xy.join(" "),
        esc(label)
    );
    s
}

/// Two series of one x axis, each scaled to its own maximum (events and members
/// differ by orders of magnitude).
pub fn pair(events: &[(String, f64)], members: &[(String, f64)]) -> String {
    if events.is_empty() && members.is_empty() {
        return empty();
    }
    let scaled = |p: &[(String, f64)]| -> Vec<(String, f64)> {
        let max = p.iter().map(|(_, v)| *v).fold(0.0, f64::max);
        p.iter()
            .map(|(w, v)| (w.clone(), if max > 0.0 { v / max } else { 0.0 }))
            .collect()
    };
    let (e, m) = (scaled(events), scaled(members));
    line(&[("events", &e), ("active members", &m)], 0.0, Some(1.0))
}

/// Horizontal bars of `values` (label, value or unscored) out of `max`.
pub fn bars(values: &[(String, Option<f64>)], max: f64) -> String {
    let row = 16.0;
    let height = row * values.len() as f64 + PAD;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"bars\" viewBox=\"0 0 {W:.0} {height:.0}\" width=\"{W:.0}\" height=\"{height:.0}\" role=\"img\">"
    );
    for (i, (label, v)) in values.iter().enumerate() {
        let y = PAD / 2.0 + row * i as f64;
        let width = v.map_or(0.0, |v| (W * 0.3) * (v / max).clamp(0.0, 1.0));
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"9\">{}</text><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"10\" fill=\"#3b6fd4\"></rect><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\">{}</text>",
            y + 10.0,
            esc(label),
            W * 0.55,
            y + 1.0,
            W * 0.55 + width + 3.0,
            y + 10.0,
            v.map_or("not scored".to_string(), |v| format!("{v:.1}"))
        );
    }
    s.push_str("</svg>");
    s
}

fn open(class: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"{class}\" viewBox=\"0 0 {W:.0} {H:.0}\" width=\"{W:.0}\" height=\"{H:.0}\" role=\"img\"><rect x=\"0\" y=\"0\" width=\"{W:.0}\" height=\"{H:.0}\" fill=\"#f6f8fa\"></rect>"
    )
}

fn empty() -> String {
    let mut s = open("empty");
    let _ = write!(
        s,
        "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\" text-anchor=\"middle\">no data yet</text></svg>",
        W / 2.0,
        H / 2.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_spans_the_box_and_scales_to_its_range() {
        let points = vec![("a".to_string(), 0.0), ("b".to_string(), 10.0)];
        let s = line(&[("score", &points)], 0.0, Some(10.0));
        // 0 at the bottom left, 10 at the top right, inside the padding.
        assert!(s.contains("points=\"6.0,84.0 254.0,6.0\""), "{s}");
        assert!(line(&[("score", &[])], 0.0, None).contains("no data yet"));
    }

    #[test]
    fn bars_are_as_long_as_their_share_and_unscored_has_none() {
        let s = bars(&[("a".into(), Some(5.0)), ("b".into(), None)], 10.0);
        // Half of the 78-unit track (0.3 of the width).
        assert!(s.contains("width=\"39.0\""), "{s}");
        assert!(s.contains("width=\"0.0\""));
        assert!(s.contains("not scored"));
    }
}
