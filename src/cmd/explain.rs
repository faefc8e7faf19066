//! `account-health explain ORG_ID`: why an account scores as it does, from a run's
//! outputs (health, metric_scores, indicators and the manifest's model). Plain text on
//! stdout, fitted to an 80-column terminal.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use polars::prelude::*;

use crate::cli::ExplainArgs;
use crate::error::InputError;
use crate::score::{category_column, weight_column};

const WIDTH: usize = 80;

pub fn run(args: ExplainArgs) -> Result<()> {
    // Every table of one run: the current one, resolved once.
    let run = crate::publish::current_run(&args.out);
    let mut text = explain(&run, &args.org_id)?;
    if let Some(since) = &args.since {
        let since = crate::time::AsOf::parse(since)?;
        text.push('\n');
        text.push_str(&explain_since(&args.out, &run, &args.org_id, &since)?);
    }
    print!("{text}");
    Ok(())
}

/// A table of a run folder (or a history entry), which must be there.
fn read_table(dir: &Path, name: &str) -> Result<DataFrame, InputError> {
    crate::output::read_table(dir, name)?.ok_or_else(|| InputError::BadPath {
        path: dir.join(format!("{name}.parquet")).display().to_string(),
        problem:
            "not found; run `account-health run --out DIR` first (explain reads Parquet outputs)"
                .into(),
    })
}

/// The part of the manifest explain needs: of the model the run used, its categories
/// (in order, with their default weights), which category each metric belongs to, and
/// a healthy metric's points. Read leniently (unknown keys ignored), so runs made by
/// other versions of the tool, with other model keys, still explain.
#[derive(serde::Deserialize)]
struct ManifestModel {
    config: Model,
}

#[derive(serde::Deserialize)]
struct Model {
    points: Points,
    categories: indexmap::IndexMap<String, Category>,
    metrics: indexmap::IndexMap<String, Metric>,
    /// Absent from the manifests of runs before the deployment checks.
    deployment: Option<Deployment>,
}

#[derive(serde::Deserialize)]
struct Deployment {
    window_days: u32,
}

#[derive(serde::Deserialize)]
struct Points {
    healthy: f64,
}

#[derive(serde::Deserialize)]
struct Category {
    weight: f64,
}

#[derive(serde::Deserialize)]
struct Metric {
    category: String,
}

impl Model {
    fn default_weights(&self) -> Vec<f64> {
        self.categories.values().map(|c| c.weight).collect()
    }
}

fn read_model(out: &Path) -> Result<ManifestModel, InputError> {
    let path = out.join("manifest.json");
    let bad = |problem: String| InputError::BadPath {
        path: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot read: {e}")))?;
    // Straight into the typed model (not via serde_json::Value) so the config's order,
    // which is the display order, survives.
    serde_json::from_str(&text).map_err(|e| bad(format!("no usable `config`: {e}")))
}

/// The category weights the run scored the org with, in category order, as `health`
/// records them (`<category>_weight`: its plan's, or the defaults), and a note when
/// they were not the defaults. A run from before those columns gives the defaults.
fn weights_used(model: &Model, h: &DataFrame) -> (Vec<f64>, String) {
    let defaults = model.default_weights();
    let recorded: Option<Vec<f64>> = model
        .categories
        .keys()
        .map(|c| f64_at(h, &weight_column(c), 0))
        .collect();
    match recorded {
        Some(w) if w != defaults => (
            w,
            "Weights of the org's plan (plan_weights in the run's model), not the defaults.".into(),
        ),
        Some(w) => (w, String::new()),
        None => (
            defaults,
            "Default weights: this run's health table does not record the weights applied.".into(),
        ),
    }
}

fn rows_of(df: DataFrame, org: &str) -> PolarsResult<DataFrame> {
    df.lazy()
        .filter(col("org_id").eq(lit(org.to_string())))
        .collect()
}

fn f64_at(df: &DataFrame, column: &str, row: usize) -> Option<f64> {
    df.column(column)
        .ok()?
        .cast(&DataType::Float64)
        .ok()?
        .f64()
        .ok()?
        .get(row)
}

fn str_at(df: &DataFrame, column: &str, row: usize) -> Option<String> {
    df.column(column)
        .ok()?
        .str()
        .ok()?
        .get(row)
        .map(str::to_string)
}

fn show(v: Option<f64>) -> String {
    match v {
        None => "null".into(),
        Some(x) if x == x.trunc() && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// Wraps `text` to the terminal width, every line after the first indented.
fn wrap(text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let limit = if out.is_empty() {
            WIDTH
        } else {
            WIDTH - indent
        };
        if !line.is_empty() && line.len() + 1 + word.len() > limit {
            out.push_str(&line);
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}

/// The explanation of one org, as printed.
pub fn explain(out: &Path, org: &str) -> Result<String> {
    let manifest = read_model(out)?;
    let model = manifest.config;
    let health = read_table(out, "health")?;
    let h = rows_of(health, org)?;
    if h.height() == 0 {
        return Err(InputError::Usage {
            problem: format!(
                "org_id {org:?} is not in {}",
                out.join("health.parquet").display()
            ),
        }
        .into());
    }
    let scores = rows_of(read_table(out, "metric_scores")?, org)?;
    let indicators = rows_of(read_table(out, "indicators")?, org)?;
    let mut s = String::new();

    let name = str_at(&h, "name", 0).unwrap_or_else(|| "(no name)".into());
    let csm = str_at(&h, "csm", 0).unwrap_or_else(|| "no CSM".into());
    let as_of = h
        .column("as_of")?
        .cast(&DataType::String)?
        .str()?
        .get(0)
        .unwrap_or("")
        .to_string();
    writeln!(
        s,
        "{}",
        wrap(&format!("{org}: {name} ({csm}), as of {as_of}"), 2)
    )?;
    let score = f64_at(&h, "health_score", 0);
    let label = str_at(&h, "health_label", 0).unwrap_or_else(|| "unscored".into());
    let mut line = format!("Health score {} / 10: {label}", show(score));
    if let Some(prev) = f64_at(&h, "previous_health_score", 0) {
        let change = f64_at(&h, "health_score_change", 0).unwrap_or(0.0);
        write!(
            line,
            " (previous {}, change {:+.2})",
            show(Some(prev)),
            change
        )?;
    }
    writeln!(s, "{line}\n")?;

    // Categories, and how many health points each one costs the account.
    let (weight_of, weights_note) = weights_used(&model, &h);
    let weights: f64 = model
        .categories
        .keys()
        .zip(&weight_of)
        .filter(|(c, _)| f64_at(&h, &category_column(c), 0).is_some())
        .map(|(_, w)| w)
        .sum();
    if !weights_note.is_empty() {
        writeln!(s, "{}", wrap(&weights_note, 2))?;
    }
    writeln!(
        s,
        "{:<28} {:>6} {:>8} {:>14}",
        "category", "weight", "score", "points lost"
    )?;
    let mut losses = Vec::new();
    for (cat, &weight) in model.categories.keys().zip(&weight_of) {
        match f64_at(&h, &category_column(cat), 0) {
            Some(v) => {
                let lost = if weights > 0.0 {
                    weight * (model.points.healthy - v) / weights
                } else {
                    0.0
                };
                losses.push((lost, cat.clone()));
                writeln!(
                    s,
                    "{cat:<28} {:>6} {:>8.2} {:>14.2}",
                    show(Some(weight)),
                    v,
                    lost
                )?;
            }
            None => writeln!(
                s,
                "{cat:<28} {:>6} {:>8} {:>14}",
                show(Some(weight)),
                "-",
                "not scored"
            )?,
        }
    }
    losses.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let pulling: Vec<String> = losses
        .iter()
        .filter(|(lost, _)| *lost > 0.0)
        .take(3)
        .map(|(lost, cat)| format!("{cat} ({lost:.2})"))
        .collect();
    if !pulling.is_empty() {
        writeln!(
            s,
            "\n{}",
            wrap(&format!("Pulled down most by: {}.", pulling.join(", ")), 2)
        )?;
    }

    writeln!(
        s,
        "\n{:<32} {:>12} {:<12} {:>6}",
        "metric", "value", "band", "points"
    )?;
    for (cat, _) in &model.categories {
        for (metric, m) in model.metrics.iter().filter(|(_, m)| &m.category == cat) {
            let row = (0..scores.height())
                .find(|&r| str_at(&scores, "metric", r).as_deref() == Some(metric));
            let (value, band, points) = match row {
                Some(r) => (
                    f64_at(&scores, "value", r),
                    str_at(&scores, "band", r),
                    f64_at(&scores, "points", r),
                ),
                None => (None, None, None),
            };
            let _ = m;
            writeln!(
                s,
                "{:<32} {:>12} {:<12} {:>6}",
                metric,
                show(value),
                band.unwrap_or_else(|| "unscored".into()),
                points.map_or("-".into(), |p| show(Some(p)))
            )?;
        }
    }

    let n = indicators.height();
    if n == 0 {
        writeln!(s, "\nNo indicators fired.")?;
    } else {
        writeln!(s, "\nIndicators ({n}):")?;
        for r in 0..n {
            let kind = str_at(&indicators, "kind", r).unwrap_or_default();
            let ind = str_at(&indicators, "indicator", r).unwrap_or_default();
            let product = str_at(&indicators, "product", r)
                .map(|p| format!(" [{p}]"))
                .unwrap_or_default();
            let msg = str_at(&indicators, "message", r).unwrap_or_default();
            writeln!(
                s,
                "{}",
                wrap(&format!("- {kind}: {ind}{product}: {msg}"), 4)
            )?;
        }
    }
    // The deployment checks' figures, for a run that has them and an org with
    // ingestion rows.
    if let Some(deployment) = crate::output::read_table(out, "deployment")? {
        let d = rows_of(deployment, org)?;
        if d.height() > 0 {
            let window = model.deployment.as_ref().map(|d| d.window_days);
            let line = crate::deployment::sentence(&d, 0, window)?;
            writeln!(s, "\n{}", wrap(&line, 2))?;
        }
    }
    Ok(s)
}

/// What moved the org's score between the history entry of `since` (or the latest
/// before it) in `out` and the run in `run`, in sentences: the `metric_changes`
/// split, the largest contributions first.
pub fn explain_since(
    out: &Path,
    run: &Path,
    org: &str,
    since: &crate::time::AsOf,
) -> Result<String> {
    let entries = crate::publish::history_dates(out);
    let Some(then) = entries.iter().rev().find(|d| d.day <= since.day) else {
        return Err(InputError::Usage {
            problem: format!(
                "--since {}: no history entry on or before that day in {}",
                since.iso(),
                out.join(crate::publish::HISTORY).display()
            ),
        }
        .into());
    };
    let entry = out
        .join(crate::publish::HISTORY)
        .join(crate::publish::history_folder(then));
    let model = read_model(run)?.config;
    let categories: Vec<(String, f64)> = model
        .categories
        .iter()
        .map(|(c, cat)| (c.clone(), cat.weight))
        .collect();
    let (now_health, now_scores) = (
        rows_of(read_table(run, "health")?, org)?,
        rows_of(read_table(run, "metric_scores")?, org)?,
    );
    let (then_health, then_scores) = (
        rows_of(read_table(&entry, "health")?, org)?,
        rows_of(read_table(&entry, "metric_scores")?, org)?,
    );
    let mut s = String::new();
    let (before, after) = (
        f64_at(&then_health, "health_score", 0),
        f64_at(&now_health, "health_score", 0),
    );
    let now_as_of = now_health
        .column("as_of")?
        .cast(&DataType::Int32)?
        .i32()?
        .get(0)
        .unwrap_or_default();
    let (Some(before), Some(after)) = (before, after) else {
        writeln!(
            s,
            "{}",
            wrap(
                &format!(
                    "Since {}: the score was {} then and is {} now; no change to split.",
                    then.iso(),
                    show(before),
                    show(after)
                ),
                2
            )
        )?;
        return Ok(s);
    };
    let changes = crate::changes::metric_changes(
        &crate::changes::RunTables {
            health: &now_health,
            metric_scores: &now_scores,
        },
        &crate::changes::RunTables {
            health: &then_health,
            metric_scores: &then_scores,
        },
        &categories,
        now_as_of,
        Some(then.day),
    )?;
    writeln!(
        s,
        "Since {}: health score {} -> {} ({:+.2}).",
        then.iso(),
        show(Some(before)),
        show(Some(after)),
        after - before
    )?;
    let mut rows: Vec<(f64, String)> = (0..changes.height())
        .map(|r| {
            let contribution = f64_at(&changes, "contribution", r).unwrap_or(0.0);
            let metric = str_at(&changes, "metric", r).unwrap_or_default();
            let category = str_at(&changes, "category", r).unwrap_or_default();
            let band = |c: &str| str_at(&changes, c, r).unwrap_or_else(|| "unscored".into());
            let (b0, b1) = (band("previous_band"), band("band"));
            let (v0, v1) = (
                f64_at(&changes, "previous_value", r),
                f64_at(&changes, "value", r),
            );
            let what = if b0 != b1 || f64_at(&changes, "previous_points", r) != f64_at(&changes, "points", r) {
                format!("{b0} -> {b1} (value {} -> {})", show(v0), show(v1))
            } else {
                format!(
                    "still {b1}, its weight in the score moved as categories became scored or unscored (value {} -> {})",
                    show(v0),
                    show(v1)
                )
            };
            (contribution, format!("- {metric} ({category}): {what}: {contribution:+.2}"))
        })
        .collect();
    rows.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()).then(a.1.cmp(&b.1)));
    if rows.is_empty() {
        writeln!(s, "No metric's band, points or weight moved.")?;
    } else {
        writeln!(s, "What moved it, largest first:")?;
        for (_, line) in &rows {
            writeln!(s, "{}", wrap(line, 4))?;
        }
        let total: f64 = rows.iter().map(|(c, _)| c).sum();
        writeln!(s, "These add up to {total:+.2}.")?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_fits_80_columns_and_indents() {
        let text = "word ".repeat(40);
        let w = wrap(&text, 4);
        for (i, line) in w.lines().enumerate() {
            assert!(line.len() <= WIDTH, "{line}");
            if i > 0 {
                assert!(line.starts_with("    "));
            }
        }
    }
}
