//! `account-health backtest --from D1 --to D2 --every DAYS --horizon DAYS`: does the
//! health score foretell churn? Each as_of is scored exactly as `run --as-of` scores
//! it (`scores_of`, from one read of the inputs and one events pass, as `backfill`
//! does), and measured against the churn labels (`backtest::label`): a row per as_of
//! in `OUT/backtest.{parquet,csv}`, and each signal (metric, category score) weighed
//! alone in `OUT/backtest_signals.{parquet,csv}`; `OUT/backtest.html` draws AUC and
//! lift over the dates and each date's ROC curve. The measures' rules are in
//! `crate::backtest`.

use std::collections::BTreeMap;

use anyhow::Result;
use polars::prelude::*;
use rayon::prelude::*;

use super::run::scores_of;
use crate::backtest::{auc, churn_days, label, precision_recall, roc, top_decile_lift};
use crate::cli::BacktestArgs;
use crate::error::InputError;
use crate::indicators::inputs::IND;
use crate::member_aggregates::MemberEvents;
use crate::model::Model;
use crate::publish::replace_file;
use crate::score::{category_column, with_health_score};
use crate::time::AsOf;

/// The longest horizon (ten years): churn dates are days in an i32.
const MAX_HORIZON_DAYS: u32 = 3_650;

/// The health labels the precision and recall are of.
const POOR: &str = "poor";
const CONCERNING: &str = "concerning";

pub fn run(args: BacktestArgs, quiet: bool) -> Result<()> {
    super::check_threads(args.threads)?;
    crate::sys::keep_freed_memory();
    let dates = super::backfill::dates(&args.from, &args.to, args.every)?;
    if !(1..=MAX_HORIZON_DAYS).contains(&args.horizon) {
        return Err(InputError::Usage {
            problem: format!("--horizon must be 1 to {MAX_HORIZON_DAYS} days"),
        }
        .into());
    }
    super::check_out_folder(&args.out)?;
    let loaded = super::load_model(args.config.as_deref())?;
    let model = &loaded.model;
    let progress = crate::progress::Progress::new(quiet);
    progress.stage("reading inputs and the events (one streaming pass)");
    let (inputs, rollup, _, _) =
        super::read_inputs_and_rollups(&args.input, model, &progress, args.rollups.as_deref())?;
    let churned_on =
        churn_days(inputs.accounts.as_ref(), inputs.churns.as_ref())?.ok_or_else(|| {
            InputError::Usage {
                problem: format!(
                    "no churn labels in {}: give accounts a churned_at date column, or add a \
                 churns table (org_id, churned_at)",
                    args.input.display()
                ),
            }
        })?;
    progress.stage(&format!("scoring {} date(s)", dates.len()));
    let signals = signals(model);
    // The rollup's member keys, orgs and day runs, found once (`dates` holds a date).
    let member_events = MemberEvents::new(&rollup, &dates[0])?;
    let scores: Vec<Result<Vec<Scored>>> = dates
        .par_iter()
        .map(|as_of| {
            let member_events = member_events.at(as_of);
            scored(
                &scores_of(&member_events, &inputs, model, as_of)?,
                &signals,
                model,
            )
        })
        .collect();
    let scores = scores.into_iter().collect::<Result<Vec<_>>>()?;
    let healthy = model.points.healthy;
    let mut rows = Rows::default();
    // Every labelled account at every as_of, for the signals; and the date's index.
    let mut all_labelled: Vec<(&Scored, bool)> = Vec::new();
    let mut date_of: Vec<usize> = Vec::new();
    // Each org's current streak of poor labels: the as_of it began.
    let mut poor_since: BTreeMap<String, i32> = BTreeMap::new();
    for (k, (as_of, scored)) in dates.iter().zip(&scores).enumerate() {
        track_poor(&mut poor_since, as_of.day, scored);
        let horizon = args.horizon as i32;
        let labelled = rows.push(as_of, scored, &churned_on, horizon, healthy, &poor_since);
        all_labelled.extend(labelled);
        date_of.resize(all_labelled.len(), k);
    }
    let page = rows.page(args.horizon);
    let tables = [
        ("backtest", rows.frame()?),
        ("backtest_signals", signals_frame(&signals, &all_labelled)?),
    ];
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", args.out.display()))?;
    // Each file written beside its final name, then renamed over it.
    for (name, mut table) in tables {
        replace_file(&args.out.join(format!("{name}.parquet")), |staging| {
            crate::output::write_parquet(&mut table, staging)
        })?;
        replace_file(&args.out.join(format!("{name}.csv")), |staging| {
            crate::output::write_csv(&mut table, staging)
        })?;
    }
    if args.fit_weights {
        let split = dates.len().div_ceil(2);
        let (train, test): (Vec<_>, Vec<_>) = all_labelled
            .iter()
            .zip(&date_of)
            .partition(|(_, &k)| k < split);
        let train: Vec<(&Scored, bool)> = train.into_iter().map(|(r, _)| *r).collect();
        let test: Vec<(&Scored, bool)> = test.into_iter().map(|(r, _)| *r).collect();
        let fit = fit_weights(model, &train, &test)?;
        let text = fit.config(&dates[..split], &dates[split..])?;
        replace_file(&args.out.join("fitted_weights.toml"), |staging| {
            Ok(std::fs::write(staging, &text)?)
        })?;
        progress.note(&fit.summary());
    }
    replace_file(&args.out.join("backtest.html"), |staging| {
        Ok(std::fs::write(staging, &page)?)
    })?;
    progress.note(&format!(
        "backtest of {} date(s) written to {}",
        dates.len(),
        args.out.display()
    ));
    Ok(())
}

/// Each org's current run of poor labels: the as_of it began, updated with one
/// date's labels (an org not poor, unscored or absent that date ends its run).
fn track_poor(poor_since: &mut BTreeMap<String, i32>, as_of_day: i32, scored: &[Scored]) {
    let poor: std::collections::BTreeSet<&str> = scored
        .iter()
        .filter(|s| s.label.as_deref() == Some(POOR))
        .map(|s| s.org.as_str())
        .collect();
    poor_since.retain(|org, _| poor.contains(org.as_str()));
    for org in poor {
        poor_since.entry(org.to_string()).or_insert(as_of_day);
    }
}

/// One org's score at one as_of, and its signals' risks (`signals` order).
struct Scored {
    org: String,
    score: Option<f64>,
    label: Option<String>,
    risks: Vec<Option<f64>>,
    /// Category scores in the model's order, and the plan (for `--fit-weights`).
    categories: Vec<Option<f64>>,
    plan: Option<String>,
}

/// A signal the backtest weighs alone: a metric or a category score, with the sign
/// that makes a higher value riskier.
struct Signal {
    name: String,
    kind: &'static str,
    column: String,
    sign: f64,
}

/// Every metric (oriented by its bands) and every category score (higher is
/// healthier), in the model's order.
fn signals(model: &crate::model::Model) -> Vec<Signal> {
    let metrics = model.metrics.iter().map(|(name, m)| Signal {
        name: name.clone(),
        kind: "metric",
        column: name.clone(),
        sign: if m.lower_is_better() { 1.0 } else { -1.0 },
    });
    let categories = model.categories.keys().map(|c| Signal {
        name: c.clone(),
        kind: "category",
        column: crate::score::category_column(c),
        sign: -1.0,
    });
    metrics.chain(categories).collect()
}

fn scored(scores: &DataFrame, signals: &[Signal], model: &Model) -> Result<Vec<Scored>> {
    let categories: Vec<Column> = model
        .categories
        .keys()
        .map(|c| scores.column(&category_column(c))?.cast(&DataType::Float64))
        .collect::<PolarsResult<_>>()?;
    let categories: Vec<&Float64Chunked> = categories
        .iter()
        .map(|c| c.f64())
        .collect::<PolarsResult<_>>()?;
    let plan = scores.column(IND.plan)?.cast(&DataType::String)?;
    let plan = plan.str()?;
    let orgs = scores.column("org_id")?.cast(&DataType::String)?;
    let score = scores.column("health_score")?.cast(&DataType::Float64)?;
    let label = scores.column("health_label")?.cast(&DataType::String)?;
    let values: Vec<Column> = signals
        .iter()
        .map(|s| scores.column(&s.column)?.cast(&DataType::Float64))
        .collect::<PolarsResult<_>>()?;
    let values: Vec<&Float64Chunked> = values
        .iter()
        .map(|c| c.f64())
        .collect::<PolarsResult<_>>()?;
    Ok(orgs
        .str()?
        .iter()
        .zip(score.f64()?.iter())
        .zip(label.str()?.iter())
        .enumerate()
        .filter_map(|(row, ((org, score), label))| {
            Some(Scored {
                org: org?.to_string(),
                score,
                label: label.map(str::to_string),
                risks: values
                    .iter()
                    .zip(signals)
                    .map(|(v, s)| v.get(row).map(|x| s.sign * x))
                    .collect(),
                categories: categories.iter().map(|c| c.get(row)).collect(),
                plan: plan.get(row).map(str::to_string),
            })
        })
        .collect())
}

/// The `backtest_signals` table: per signal, its AUC alone and its coverage over
/// every labelled account and as_of of the backtest together.
fn signals_frame(signals: &[Signal], labelled: &[(&Scored, bool)]) -> PolarsResult<DataFrame> {
    let (mut auc_of, mut coverage) = (vec![], vec![]);
    for k in 0..signals.len() {
        let (risk, churned): (Vec<f64>, Vec<bool>) = labelled
            .iter()
            .filter_map(|(s, c)| Some((s.risks[k]?, *c)))
            .unzip();
        auc_of.push(auc(&risk, &churned));
        coverage.push((!labelled.is_empty()).then(|| risk.len() as f64 / labelled.len() as f64));
    }
    DataFrame::new_infer_height(vec![
        Column::new(
            "signal".into(),
            signals.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "kind".into(),
            signals.iter().map(|s| s.kind).collect::<Vec<_>>(),
        ),
        Column::new(
            "higher_is".into(),
            signals
                .iter()
                .map(|s| if s.sign > 0.0 { "riskier" } else { "healthier" })
                .collect::<Vec<_>>(),
        ),
        Column::new("auc".into(), auc_of),
        Column::new("coverage".into(), coverage),
        Column::new("rows".into(), vec![labelled.len() as u32; signals.len()]),
    ])
}

/// The `backtest` table's columns, a row per as_of.
#[derive(Default)]
struct Rows {
    as_of: Vec<i32>,
    accounts: Vec<u32>,
    churned: Vec<u32>,
    unscored: Vec<u32>,
    auc: Vec<Option<f64>>,
    lift: Vec<Option<f64>>,
    precision_poor: Vec<Option<f64>>,
    recall_poor: Vec<Option<f64>>,
    precision_poor_or_concerning: Vec<Option<f64>>,
    recall_poor_or_concerning: Vec<Option<f64>>,
    median_lead_days: Vec<Option<f64>>,
    /// Each as_of's ROC curve, for the page.
    roc: Vec<Vec<(f64, f64)>>,
}

impl Rows {
    /// The row of one as_of; returns the accounts it measured (those not churned by
    /// then), labelled.
    fn push<'a>(
        &mut self,
        as_of: &AsOf,
        scored: &'a [Scored],
        churned_on: &BTreeMap<String, i32>,
        horizon: i32,
        healthy: f64,
        poor_since: &BTreeMap<String, i32>,
    ) -> Vec<(&'a Scored, bool)> {
        let labelled: Vec<(&Scored, bool)> = scored
            .iter()
            .filter_map(|s| {
                let churns = label(churned_on.get(&s.org).copied(), as_of.day, horizon)?;
                Some((s, churns))
            })
            .collect();
        let churned: Vec<bool> = labelled.iter().map(|(_, c)| *c).collect();
        let (risk, scored_churned): (Vec<f64>, Vec<bool>) = labelled
            .iter()
            .filter_map(|(s, c)| Some((healthy - s.score?, *c)))
            .unzip();
        let flagged = |labels: &[&str]| -> Vec<bool> {
            labelled
                .iter()
                .map(|(s, _)| s.label.as_deref().is_some_and(|l| labels.contains(&l)))
                .collect()
        };
        let (p_poor, r_poor) = precision_recall(&flagged(&[POOR]), &churned);
        let (p_either, r_either) = precision_recall(&flagged(&[POOR, CONCERNING]), &churned);
        // Lead time: from the start of a churned account's poor streak to its churn.
        let leads: Vec<f64> = labelled
            .iter()
            .filter(|(_, c)| *c)
            .filter_map(|(s, _)| {
                let since = poor_since.get(&s.org)?;
                Some((churned_on[&s.org] - since) as f64)
            })
            .collect();
        self.as_of.push(as_of.day);
        self.accounts.push(labelled.len() as u32);
        self.churned
            .push(churned.iter().filter(|&&c| c).count() as u32);
        self.unscored.push((labelled.len() - risk.len()) as u32);
        self.auc.push(auc(&risk, &scored_churned));
        self.roc.push(roc(&risk, &scored_churned));
        self.lift.push(top_decile_lift(&risk, &scored_churned));
        self.precision_poor.push(p_poor);
        self.recall_poor.push(r_poor);
        self.precision_poor_or_concerning.push(p_either);
        self.recall_poor_or_concerning.push(r_either);
        self.median_lead_days.push(crate::stats::median(&leads));
        labelled
    }

    /// `backtest.html`: AUC and lift over the as_of dates, and each date's ROC curve,
    /// as inline SVG (no script, font or link to load).
    fn page(&self, horizon: u32) -> String {
        use crate::report::html::esc;
        use crate::report::svg;
        use std::fmt::Write as _;
        let dates: Vec<String> = self
            .as_of
            .iter()
            .map(|&d| crate::time::iso_of_day(d))
            .collect();
        let series = |values: &[Option<f64>]| -> Vec<(String, f64)> {
            dates
                .iter()
                .zip(values)
                .filter_map(|(d, v)| Some((d.clone(), (*v)?)))
                .collect()
        };
        let mut h = String::from(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Backtest</title>\
             <style>body{font-family:system-ui,sans-serif;max-width:64rem;margin:1rem auto;padding:0 1rem}\
             figure{display:inline-block;margin:.5rem}figcaption{font-size:.8rem}</style></head><body>",
        );
        let _ = write!(
            h,
            "<h1>Does the score foretell churn?</h1><p>Churn within {horizon} days after each as_of; \
             risk is 10 minus the health score. An AUC of 0.5 is chance, 1 is perfect.</p>"
        );
        let _ = write!(
            h,
            "<h2>Over time</h2><figure>{}<figcaption>AUC per as_of (0 to 1)</figcaption></figure>\
             <figure>{}<figcaption>Top-decile lift per as_of</figcaption></figure>",
            svg::line(&[("AUC", &series(&self.auc))], 0.0, Some(1.0)),
            svg::line(&[("lift", &series(&self.lift))], 0.0, None)
        );
        h.push_str("<h2>ROC curve per as_of</h2>");
        for (k, date) in dates.iter().enumerate() {
            let auc = self.auc[k].map_or("no AUC".into(), |a| format!("AUC {a:.3}"));
            let _ = write!(
                h,
                "<figure>{}<figcaption>{}: {}; {} of {} churned</figcaption></figure>",
                svg::unit_curve(date, &self.roc[k]),
                esc(date),
                auc,
                self.churned[k],
                self.accounts[k]
            );
        }
        h.push_str("</body></html>\n");
        h
    }

    fn frame(self) -> PolarsResult<DataFrame> {
        DataFrame::new_infer_height(vec![
            Column::new("as_of".into(), self.as_of).cast(&DataType::Date)?,
            Column::new("accounts".into(), self.accounts),
            Column::new("churned".into(), self.churned),
            Column::new("unscored".into(), self.unscored),
            Column::new("auc".into(), self.auc),
            Column::new("top_decile_lift".into(), self.lift),
            Column::new("precision_poor".into(), self.precision_poor),
            Column::new("recall_poor".into(), self.recall_poor),
            Column::new(
                "precision_poor_or_concerning".into(),
                self.precision_poor_or_concerning,
            ),
            Column::new(
                "recall_poor_or_concerning".into(),
                self.recall_poor_or_concerning,
            ),
            Column::new("median_lead_days".into(), self.median_lead_days),
        ])
    }
}

/// `--fit-weights`' result: the proposed category weights (summing to 100) and the
/// pooled AUCs of the current and the proposed weights on both halves of the dates.
struct Fit {
    categories: Vec<String>,
    weights: Vec<f64>,
    /// The whole model the backtest ran with, the proposed weights in it.
    model: Model,
    train: (Option<f64>, Option<f64>),
    test: (Option<f64>, Option<f64>),
}

/// Coordinate ascent from the current default weights: each category's weight is
/// scaled by a few factors in turn (a zero weight is tried at 5), the weights
/// rescaled to sum to 100, and a candidate kept only if it raises the AUC on the
/// training rows; three rounds. Orgs on a plan with its own weights keep those
/// (`plan_weights`), as `run` would score them. Starting from the current weights
/// and keeping only gains, the proposal is never worse on the training half.
fn fit_weights(model: &Model, train: &[(&Scored, bool)], test: &[(&Scored, bool)]) -> Result<Fit> {
    let categories: Vec<String> = model.categories.keys().cloned().collect();
    let current: Vec<f64> = model.weights_for(None);
    let auc_with = |weights: &[f64], rows: &[(&Scored, bool)]| -> Result<(Option<f64>, usize)> {
        let mut candidate = model.clone();
        for (c, w) in categories.iter().zip(weights) {
            if let Some(cat) = candidate.categories.get_mut(c) {
                cat.weight = *w;
            }
        }
        let mut columns: Vec<Column> = categories
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Column::new(
                    category_column(c).into(),
                    rows.iter()
                        .map(|(s, _)| s.categories[i])
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        columns.push(Column::new(
            IND.plan.into(),
            rows.iter().map(|(s, _)| s.plan.clone()).collect::<Vec<_>>(),
        ));
        let frame = DataFrame::new(rows.len(), columns)?;
        let scored = with_health_score(frame.lazy(), &candidate)
            .select([col("health_score")])
            .collect()?;
        let (risk, churned): (Vec<f64>, Vec<bool>) = scored
            .column("health_score")?
            .f64()?
            .iter()
            .zip(rows)
            .filter_map(|(score, (_, c))| Some((model.points.healthy - score?, *c)))
            .unzip();
        Ok((auc(&risk, &churned), risk.len()))
    };
    let to_hundred = |w: &[f64]| -> Option<Vec<f64>> {
        let sum: f64 = w.iter().sum();
        (sum > 0.0)
            .then(|| round_to_hundred(&w.iter().map(|x| 100.0 * x / sum).collect::<Vec<_>>()))
    };
    // From the current weights as they are; a candidate must score the same accounts
    // (a zeroed weight can leave an org unscored, and dropping hard rows is no gain)
    // and raise the AUC. The current weights scaled to 100 come first, kept if no worse.
    let (current_auc, current_n) = auc_with(&current, train)?;
    let (mut best, mut best_auc) = (current.clone(), current_auc);
    if let Some(w) = to_hundred(&current) {
        let (a, n) = auc_with(&w, train)?;
        if n == current_n && a.is_some_and(|a| current_auc.is_none_or(|b| a >= b)) {
            (best, best_auc) = (w, a);
        }
    }
    for _ in 0..3 {
        for c in 0..categories.len() {
            for factor in [0.0, 0.5, 0.8, 1.25, 2.0] {
                let mut w = best.clone();
                w[c] = if w[c] == 0.0 {
                    5.0 * factor
                } else {
                    w[c] * factor
                };
                let Some(w) = to_hundred(&w) else { continue };
                let (a, n) = auc_with(&w, train)?;
                if n == current_n && a.is_some_and(|a| best_auc.is_none_or(|b| a > b + 1e-12)) {
                    best = w;
                    best_auc = a;
                }
            }
        }
    }
    let mut proposed = model.clone();
    for (c, w) in categories.iter().zip(&best) {
        if let Some(cat) = proposed.categories.get_mut(c) {
            cat.weight = *w;
        }
    }
    Ok(Fit {
        train: (current_auc, best_auc),
        test: (auc_with(&current, test)?.0, auc_with(&best, test)?.0),
        categories,
        weights: best,
        model: proposed,
    })
}

/// Weights rounded to 2 decimals that still sum to exactly 100 (the largest takes the
/// rounding's remainder).
fn round_to_hundred(weights: &[f64]) -> Vec<f64> {
    let mut rounded: Vec<f64> = weights
        .iter()
        .map(|w| (w * 100.0).round() / 100.0)
        .collect();
    if let Some(largest) = (0..rounded.len()).max_by(|&a, &b| rounded[a].total_cmp(&rounded[b])) {
        let others: f64 = (0..rounded.len())
            .filter(|&i| i != largest)
            .map(|i| rounded[i])
            .sum();
        rounded[largest] = ((100.0 - others) * 100.0).round() / 100.0;
    }
    rounded
}

impl Fit {
    fn show(auc: Option<f64>) -> String {
        auc.map_or("none".into(), |a| format!("{a:.4}"))
    }

    fn summary(&self) -> String {
        format!(
            "fitted weights: AUC on the earlier half {} -> {}, on the later half {} -> {}",
            Self::show(self.train.0),
            Self::show(self.train.1),
            Self::show(self.test.0),
            Self::show(self.test.1)
        )
    }

    /// A config file of the proposed weights, the AUCs in its header.
    /// The whole model the backtest ran with (its `--config` included), the proposed
    /// weights in it, so that the file gives the model the AUCs describe.
    fn config(&self, train: &[AsOf], test: &[AsOf]) -> Result<String> {
        let span = |d: &[AsOf]| match (d.first(), d.last()) {
            (Some(a), Some(b)) => format!("{} to {}", a.iso(), b.iso()),
            _ => "no dates".into(),
        };
        let mut s = format!(
            "# Category weights proposed by `account-health backtest --fit-weights`.\n\
             # Pass this file to --config to use them. Pooled AUC of 10 - health_score:\n\
             # earlier half ({}): current {}, proposed {}\n\
             # later half ({}): current {}, proposed {}\n",
            span(train),
            Self::show(self.train.0),
            Self::show(self.train.1),
            span(test),
            Self::show(self.test.0),
            Self::show(self.test.1)
        );
        let proposed: Vec<String> = self
            .categories
            .iter()
            .zip(&self.weights)
            .map(|(c, w)| format!("{c} {w}"))
            .collect();
        s += &format!("# proposed weights: {}\n\n", proposed.join(", "));
        Ok(s + &toml::to_string_pretty(&self.model)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(org: &str, score: f64, label: &str) -> Scored {
        Scored {
            org: org.into(),
            score: Some(score),
            label: Some(label.into()),
            risks: vec![],
            categories: vec![],
            plan: None,
        }
    }

    #[test]
    fn lead_time_runs_from_the_start_of_the_current_poor_streak_to_churn() {
        // Day 10: a poor, b healthy, c poor. Day 17: a and b poor, c healthy (its
        // streak ends). a churns on day 40 (lead 40 - 10 = 30), b on day 45 (45 - 17
        // = 28), c on day 30 (not poor at day 17: no lead); horizon 30.
        let mut poor_since = BTreeMap::new();
        track_poor(
            &mut poor_since,
            10,
            &[
                at("a", 2.0, "poor"),
                at("b", 8.0, "healthy"),
                at("c", 2.0, "poor"),
            ],
        );
        let day17 = [
            at("a", 2.0, "poor"),
            at("b", 3.0, "poor"),
            at("c", 8.0, "healthy"),
        ];
        track_poor(&mut poor_since, 17, &day17);
        let churned: BTreeMap<String, i32> =
            [("a".into(), 40), ("b".into(), 45), ("c".into(), 30)].into();
        let mut rows = Rows::default();
        rows.push(&AsOf::from_day(17), &day17, &churned, 30, 10.0, &poor_since);
        assert_eq!(rows.median_lead_days, [Some(29.0)]);
        assert_eq!(rows.churned, [3]);
        // Precision of poor: a and b flagged, both churned; recall 2 of 3.
        assert_eq!(rows.precision_poor, [Some(1.0)]);
        assert!((rows.recall_poor[0].unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn rounded_weights_still_sum_to_a_hundred() {
        let w = round_to_hundred(&[100.0 / 3.0, 100.0 / 3.0, 100.0 / 3.0]);
        assert_eq!(w.iter().sum::<f64>(), 100.0);
        assert_eq!(w, [33.33, 33.33, 33.34]);
        assert_eq!(round_to_hundred(&[12.345, 87.655]), [12.35, 87.65]);
    }
}
