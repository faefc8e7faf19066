//! Bands, points, category scores and the health score (SPEC 6).
//!
//! Takes the metrics frame and the model and adds, per metric, its band and points,
//! then per category the mean of its scored metrics' points, then the weighted
//! `health_score` and its label. Pure expressions: no I/O, no collecting.

use polars::prelude::*;

use crate::indicators::inputs::IND;
use crate::input::Inputs;
use crate::metrics::{adopted_column, Metrics};
use crate::model::{Condition, Metric, Model, Op};

pub fn band_column(metric: &str) -> String {
    format!("band__{metric}")
}

pub fn points_column(metric: &str) -> String {
    format!("points__{metric}")
}

pub fn category_column(category: &str) -> String {
    format!("{category}_score")
}

/// The weight a category had in an org's health score (its plan's, or the default).
pub fn weight_column(category: &str) -> String {
    format!("{category}_weight")
}

/// The scored frame: the metrics frame plus `band__<metric>`, `points__<metric>`,
/// `<category>_score`, `health_score` and `health_label`.
pub struct Scores {
    pub frame: LazyFrame,
}

fn condition(value: Expr, c: Condition) -> Expr {
    let t = lit(c.value);
    match c.op {
        Op::Lt => value.lt(t),
        Op::Le => value.lt_eq(t),
        Op::Gt => value.gt(t),
        Op::Ge => value.gt_eq(t),
    }
}

fn null_str() -> Expr {
    lit(NULL).cast(DataType::String)
}

/// Whether a category is scored for an org: always, unless it names adoption
/// products, in which case one of them must have been in use (SPEC 6).
fn category_adopted(model: &Model, category: &str) -> Expr {
    let products = &model.categories[category].adoption_products;
    products
        .iter()
        .map(|p| col(adopted_column(p)))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(true))
}

/// Whether a metric counts towards its category for an org.
fn metric_eligible(model: &Model, m: &Metric) -> Expr {
    let mut eligible = category_adopted(model, &m.category);
    if let Some(p) = &m.product {
        eligible = eligible.and(col(adopted_column(p)));
    }
    eligible
}

/// The band of a metric as an expression; null when unscored.
fn band_expr(name: &str, m: &Metric, model: &Model, null_scores_poor: bool) -> Expr {
    let value = col(name);
    let on_null = if null_scores_poor {
        lit("poor")
    } else {
        null_str()
    };
    when(metric_eligible(model, m).not())
        .then(null_str())
        .when(value.clone().is_null())
        .then(on_null)
        .when(condition(value.clone(), m.healthy))
        .then(lit("healthy"))
        .when(condition(value, m.poor))
        .then(lit("poor"))
        .otherwise(lit("concerning"))
}

fn points_expr(band: Expr, model: &Model) -> Expr {
    let p = &model.points;
    when(band.clone().eq(lit("healthy")))
        .then(lit(p.healthy))
        .when(band.clone().eq(lit("concerning")))
        .then(lit(p.concerning))
        .when(band.eq(lit("poor")))
        .then(lit(p.poor))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// The weighted mean of the non-null values (`Σ w·v / Σ w` over them), the one rule
/// for a category's score (weights 1) and the health score (category weights); null
/// when all are null. Written out as a fixed sum so the result does not depend on
/// evaluation order or threads.
fn mean_of_non_null(values: Vec<Expr>, weights: Vec<Expr>) -> Expr {
    let sum = values
        .iter()
        .zip(&weights)
        .map(|(v, w)| v.clone().fill_null(lit(0.0)) * w.clone())
        .reduce(|a, b| a + b)
        .unwrap_or(lit(0.0));
    let total_weight = values
        .iter()
        .zip(&weights)
        .map(|(v, w)| {
            when(v.clone().is_not_null())
                .then(w.clone())
                .otherwise(lit(0.0))
        })
        .reduce(|a, b| a + b)
        .unwrap_or(lit(0.0));
    let any = values
        .iter()
        .map(|v| v.clone().is_not_null())
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    // A category whose only scored metrics have weight 0 still counts as present.
    when(any.and(total_weight.clone().gt(lit(0.0))))
        .then(sum / total_weight)
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// The label of a health score (SPEC 6).
fn label_expr(score: Expr, model: &Model) -> Expr {
    when(score.clone().is_null())
        .then(null_str())
        .when(score.clone().lt(lit(model.labels.concerning_from)))
        .then(lit("poor"))
        .when(score.lt(lit(model.labels.healthy_from)))
        .then(lit("concerning"))
        .otherwise(lit("healthy"))
}

/// Each org's category weights (`<category>_weight`): the defaults, or those of its
/// plan (`plan_weights`, Vitally-style segments, chosen by `accounts.plan`).
fn weight_exprs(model: &Model) -> Vec<Expr> {
    let defaults = model.weights_for(None);
    model
        .categories
        .keys()
        .enumerate()
        .map(|(i, cat)| {
            let mut weight = lit(defaults[i]);
            for plan in model.plan_weights.keys().rev() {
                weight = when(col(IND.plan).eq(lit(plan.clone())))
                    .then(lit(model.weights_for(Some(plan))[i]))
                    .otherwise(weight);
            }
            weight.alias(weight_column(cat))
        })
        .collect()
}

/// Each org's category weights (`<category>_weight`) and `health_score`, from the
/// category score columns and `IND.plan` of `frame` (SPEC 6). The backtest's
/// `--fit-weights` scores candidate weights through it too.
pub fn with_health_score(frame: LazyFrame, model: &Model) -> LazyFrame {
    let cats: Vec<Expr> = model
        .categories
        .keys()
        .map(|cat| col(category_column(cat)))
        .collect();
    let weights: Vec<Expr> = model
        .categories
        .keys()
        .map(|c| col(weight_column(c)))
        .collect();
    frame
        .with_columns(weight_exprs(model))
        .with_column(mean_of_non_null(cats, weights).alias("health_score"))
}

pub fn compute(metrics: Metrics, inputs: &Inputs, model: &Model) -> Scores {
    let mut bands = Vec::new();
    for (name, m) in &model.metrics {
        // SPEC 5: "null, scored poor" only when the table it is built on was given.
        let table_given = m
            .measure
            .optional_table()
            .is_none_or(|t| inputs.table_present(t));
        let null_scores_poor = m.null_is_poor && table_given;
        bands.push(band_expr(name, m, model, null_scores_poor).alias(band_column(name)));
    }
    let with_bands = metrics.frame.with_columns(bands);

    let points: Vec<Expr> = model
        .metrics
        .keys()
        .map(|name| points_expr(col(band_column(name)), model).alias(points_column(name)))
        .collect();
    let with_points = with_bands.with_columns(points);

    let categories: Vec<Expr> = model
        .categories
        .keys()
        .map(|cat| {
            let pts: Vec<Expr> = model
                .metrics
                .iter()
                .filter(|(_, m)| &m.category == cat)
                .map(|(name, _)| col(points_column(name)))
                .collect();
            let ones = vec![lit(1.0); pts.len()];
            mean_of_non_null(pts, ones).alias(category_column(cat))
        })
        .collect();
    let with_categories = with_points.with_columns(categories);
    let frame = with_health_score(with_categories, model)
        .with_column(label_expr(col("health_score"), model).alias("health_label"));
    Scores { frame }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bands of `values` for one metric through the same expression the job uses,
    /// with every product adopted.
    fn bands(metric: &str, values: &[f64]) -> Vec<String> {
        let model = Model::default_model();
        let m = &model.metrics[metric];
        let mut cols = vec![Column::new(metric.into(), values.to_vec())];
        for p in model.products.keys() {
            cols.push(Column::new(
                adopted_column(p).into(),
                vec![true; values.len()],
            ));
        }
        let df = DataFrame::new_infer_height(cols).unwrap();
        let out = df
            .lazy()
            .select([band_expr(metric, m, &model, false).alias("band")])
            .collect()
            .unwrap();
        out.column("band")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|b| b.unwrap_or("null").to_string())
            .collect()
    }

    const H: &str = "healthy";
    const C: &str = "concerning";
    const P: &str = "poor";

    /// Each row: metric, then (value, expected band) on and either side of every
    /// threshold of SPEC 6, written out from the SPEC table, not from the config.
    #[test]
    fn every_band_threshold_from_the_spec_table() {
        let e = 1e-9;
        let cases: &[(&str, &[(f64, &str)])] = &[
            (
                "days_since_last_seen",
                &[(1.0, H), (1.0 + e, C), (5.0, C), (5.0 + e, P)],
            ),
            (
                "active_user_pct",
                &[(20.0 - e, P), (20.0, C), (40.0 - e, C), (40.0, H)],
            ),
            (
                "active_user_pct_decrease",
                &[(5.0, H), (5.0 + e, C), (20.0, C), (20.0 + e, P), (-50.0, H)],
            ),
            (
                "users_engaging_with_features",
                &[(2.0, P), (3.0, C), (9.0, C), (10.0, H)],
            ),
            (
                "tickets_created_30d",
                &[(5.0, H), (6.0, C), (10.0, C), (11.0, P)],
            ),
            (
                "urgent_tickets_unresolved",
                &[(0.0, H), (1.0, C), (2.0, C), (3.0, P)],
            ),
            (
                "docs_visits_7d",
                &[(20.0, H), (21.0, C), (100.0, C), (101.0, P)],
            ),
            (
                "query_failure_rate_7d",
                &[(5.0, H), (5.0 + e, C), (13.0, C), (13.0 + e, P)],
            ),
            (
                "days_since_last_meeting",
                &[(30.0, H), (30.0 + e, C), (90.0, C), (90.0 + e, P)],
            ),
            (
                "days_since_last_ticket",
                &[(30.0, H), (30.0 + e, C), (90.0, C), (90.0 + e, P)],
            ),
            ("product_count", &[(2.0, P), (3.0, C), (6.0, C), (7.0, H)]),
            (
                "event_count_decrease_30d",
                &[(5.0, H), (5.0 + e, C), (20.0, C), (20.0 + e, P)],
            ),
            (
                "recording_count_decrease_30d",
                &[(5.0, H), (5.0 + e, C), (20.0, C), (20.0 + e, P)],
            ),
            (
                "decide_requests_decrease_30d",
                &[(5.0, H), (5.0 + e, C), (20.0, C), (20.0 + e, P)],
            ),
            (
                "rows_synced_decrease_30d",
                &[(5.0, H), (5.0 + e, C), (20.0, C), (20.0 + e, P)],
            ),
            (
                "insight_analyzers_pct",
                &[(20.0 - e, P), (20.0, C), (40.0 - e, C), (40.0, H)],
            ),
            (
                "replay_watchers_pct",
                &[(20.0 - e, P), (20.0, C), (40.0 - e, C), (40.0, H)],
            ),
            (
                "flag_editors_pct",
                &[(5.0 - e, P), (5.0, C), (20.0 - e, C), (20.0, H)],
            ),
            (
                "experiment_users_pct",
                &[(5.0 - e, P), (5.0, C), (20.0 - e, C), (20.0, H)],
            ),
            (
                "survey_viewers_pct",
                &[(5.0 - e, P), (5.0, C), (20.0 - e, C), (20.0, H)],
            ),
        ];
        assert_eq!(cases.len(), 20, "every metric of SPEC 5 has boundary cases");
        for (metric, pairs) in cases {
            let values: Vec<f64> = pairs.iter().map(|(v, _)| *v).collect();
            let expected: Vec<String> = pairs.iter().map(|(_, b)| b.to_string()).collect();
            assert_eq!(
                bands(metric, &values),
                expected,
                "bands of {metric} at {values:?}"
            );
        }
    }

    #[test]
    fn mean_of_non_null_skips_nulls_and_renormalises_weights() {
        let df = df!(
            "a" => [Some(10.0), None, None],
            "b" => [Some(0.0), Some(5.0), None],
        )
        .unwrap();
        let out = df
            .lazy()
            .select([
                mean_of_non_null(vec![col("a"), col("b")], vec![lit(3.0), lit(1.0)]).alias("m"),
            ])
            .collect()
            .unwrap();
        let m: Vec<Option<f64>> = out.column("m").unwrap().f64().unwrap().iter().collect();
        // (3*10 + 1*0) / 4 = 7.5; only b: 5; nothing: null.
        assert_eq!(m, vec![Some(7.5), Some(5.0), None]);
    }

    #[test]
    fn labels_cut_at_thirds() {
        let model = Model::default_model();
        let df = df!("s" => [Some(10.0 / 3.0 - 1e-9), Some(10.0 / 3.0), Some(20.0 / 3.0 - 1e-9), Some(20.0 / 3.0), None]).unwrap();
        let out = df
            .lazy()
            .select([label_expr(col("s"), &model).alias("l")])
            .collect()
            .unwrap();
        let l: Vec<Option<&str>> = out.column("l").unwrap().str().unwrap().iter().collect();
        assert_eq!(
            l,
            vec![
                Some("poor"),
                Some("concerning"),
                Some("concerning"),
                Some("healthy"),
                None
            ]
        );
    }
}
