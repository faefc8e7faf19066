//! `metric_changes` (issue 22): why an org's health score moved since the previous
//! run, metric by metric, in contributions that add up exactly to the change.
//!
//! The split (docs/RULES.md): the health score is a sum of the scored metrics' shares,
//! `share = category weight × points / (scored metrics of the category × total weight
//! of the org's scored categories)`; an unscored metric (null points, or its category
//! unscored) has share 0. A metric's contribution to the change is its share now minus
//! its share in the previous run, so the contributions of an org add up to its
//! `health_score_change` (up to float rounding), including a category becoming scored
//! or unscored: its metrics gain or lose their shares, and every other metric's share
//! is diluted or concentrated by the change of the total weight. A metric's `weight`
//! is its share per point, `category weight / (scored metrics × total weight)`.

use polars::prelude::*;

use crate::score::{category_column, weight_column};

/// A run's tables as the split reads them.
pub struct RunTables<'a> {
    /// `health`: `org_id`, `health_score`, and per category `<category>_score` and
    /// `<category>_weight`.
    pub health: &'a DataFrame,
    /// `metric_scores`: `org_id`, `category`, `metric`, `value`, `band`, `points`.
    pub metric_scores: &'a DataFrame,
}

/// Each (org, metric)'s value, band, points, weight and share in one run.
/// `categories` are the model's categories with the weight to use where the health
/// table has no `<category>_weight` column (an output of an earlier version).
pub(crate) fn shares(run: &RunTables, categories: &[(String, f64)]) -> PolarsResult<LazyFrame> {
    let schema = run.health.schema();
    let per_category: Vec<LazyFrame> = categories
        .iter()
        .map(|(c, default)| {
            let weight = if schema.contains(&weight_column(c)) {
                col(weight_column(c)).cast(DataType::Float64)
            } else {
                lit(*default)
            };
            let scored = if schema.contains(&category_column(c)) {
                col(category_column(c)).is_not_null()
            } else {
                lit(false)
            };
            run.health.clone().lazy().select([
                col("org_id").cast(DataType::String),
                lit(c.clone()).alias("category"),
                weight.alias("category_weight"),
                scored.alias("category_scored"),
            ])
        })
        .collect();
    let weights = concat(per_category, UnionArgs::default())?.with_column(
        col("category_weight")
            .filter(col("category_scored"))
            .sum()
            .over([col("org_id")])?
            .alias("total_weight"),
    );
    let points = col("points").cast(DataType::Float64);
    let metrics = run
        .metric_scores
        .clone()
        .lazy()
        .select([
            col("org_id").cast(DataType::String),
            col("category").cast(DataType::String),
            col("metric").cast(DataType::String),
            col("value").cast(DataType::Float64),
            col("band").cast(DataType::String),
            points.clone().alias("points"),
        ])
        .with_column(
            col("points")
                .is_not_null()
                .sum()
                .over([col("org_id"), col("category")])?
                .cast(DataType::Float64)
                .alias("scored_metrics"),
        );
    let scored = col("points")
        .is_not_null()
        .and(col("category_scored"))
        .and(col("total_weight").gt(lit(0.0)));
    let weight = when(scored.clone())
        .then(col("category_weight") / (col("scored_metrics") * col("total_weight")))
        .otherwise(lit(0.0));
    Ok(metrics
        .join(
            weights,
            [col("org_id"), col("category")],
            [col("org_id"), col("category")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(weight.alias("weight"))
        .with_column(
            when(scored)
                .then(col("weight") * col("points"))
                .otherwise(lit(0.0))
                .alias("share"),
        )
        .select([
            col("org_id"),
            col("category"),
            col("metric"),
            col("value"),
            col("band"),
            col("points"),
            col("weight"),
            col("share"),
        ]))
}

/// The `metric_changes` table: per org scored in both runs and metric whose band,
/// points or weight changed (or whose share did), the previous and current value,
/// band, points and weight, and its contribution to `health_score_change`; sorted by
/// org_id, category, metric.
pub fn metric_changes(
    now: &RunTables,
    previous: &RunTables,
    categories: &[(String, f64)],
    as_of: i32,
    previous_as_of: Option<i32>,
) -> PolarsResult<DataFrame> {
    let both_scored = now
        .health
        .clone()
        .lazy()
        .select([col("org_id").cast(DataType::String), col("health_score")])
        .join(
            previous.health.clone().lazy().select([
                col("org_id").cast(DataType::String),
                col("health_score").alias("previous_health_score"),
            ]),
            [col("org_id")],
            [col("org_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(
            col("health_score")
                .is_not_null()
                .and(col("previous_health_score").is_not_null()),
        )
        .select([col("org_id")]);
    let before = shares(previous, categories)?.select([
        col("org_id"),
        col("metric"),
        col("category").alias("previous_category"),
        col("value").alias("previous_value"),
        col("band").alias("previous_band"),
        col("points").alias("previous_points"),
        col("weight").alias("previous_weight"),
        col("share").alias("previous_share"),
    ]);
    let key = || [col("org_id"), col("metric")];
    let semi = |lf: LazyFrame| {
        lf.join(
            both_scored.clone(),
            [col("org_id")],
            [col("org_id")],
            JoinArgs::new(JoinType::Semi),
        )
    };
    let changed = col("band")
        .neq_missing(col("previous_band"))
        .or(col("points").neq_missing(col("previous_points")))
        .or(col("weight").neq_missing(col("previous_weight")))
        .or(col("contribution").neq(lit(0.0)));
    // A full join: a metric of one run only (a config that added or removed it)
    // still has its share counted, as 0 on the other side.
    semi(shares(now, categories)?)
        .join(
            semi(before),
            key(),
            key(),
            JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
        )
        .with_columns([
            coalesce(&[col("category"), col("previous_category")]).alias("category"),
            col("weight").fill_null(lit(0.0)),
            col("previous_weight").fill_null(lit(0.0)),
            (col("share").fill_null(lit(0.0)) - col("previous_share").fill_null(lit(0.0)))
                .alias("contribution"),
        ])
        .filter(changed)
        .select([
            col("org_id"),
            col("category"),
            col("metric"),
            col("previous_value"),
            col("value"),
            col("previous_band"),
            col("band"),
            col("previous_points"),
            col("points"),
            col("previous_weight"),
            col("weight"),
            col("contribution"),
            match previous_as_of {
                Some(d) => lit(d),
                None => lit(NULL),
            }
            .cast(DataType::Date)
            .alias("previous_as_of"),
            lit(as_of).cast(DataType::Date).alias("as_of"),
        ])
        .sort(["org_id", "category", "metric"], Default::default())
        .collect()
}

/// An empty `metric_changes` table (no previous run to compare with).
pub fn empty() -> DataFrame {
    let f = DataType::Float64;
    let s = DataType::String;
    let columns = [
        ("org_id", &s),
        ("category", &s),
        ("metric", &s),
        ("previous_value", &f),
        ("value", &f),
        ("previous_band", &s),
        ("band", &s),
        ("previous_points", &f),
        ("points", &f),
        ("previous_weight", &f),
        ("weight", &f),
        ("contribution", &f),
        ("previous_as_of", &DataType::Date),
        ("as_of", &DataType::Date),
    ];
    DataFrame::new(
        0,
        columns
            .iter()
            .map(|(n, t)| Column::new_empty((*n).into(), t))
            .collect(),
    )
    .expect("valid empty frame")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A health row: org, score, (ue, pa) category scores, (ue, pa) weights.
    type HealthRow<'a> = (&'a str, f64, [Option<f64>; 2], [f64; 2]);

    fn health(rows: &[HealthRow]) -> DataFrame {
        df!(
            "org_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "health_score" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "ue_score" => rows.iter().map(|r| r.2[0]).collect::<Vec<_>>(),
            "pa_score" => rows.iter().map(|r| r.2[1]).collect::<Vec<_>>(),
            "ue_weight" => rows.iter().map(|r| r.3[0]).collect::<Vec<_>>(),
            "pa_weight" => rows.iter().map(|r| r.3[1]).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    /// metric_scores of orgs with metrics m1, m2 (category ue) and m3 (pa).
    fn scores(rows: &[(&str, [Option<f64>; 3])]) -> DataFrame {
        let mut org = Vec::new();
        let (mut cat, mut metric, mut points) = (Vec::new(), Vec::new(), Vec::new());
        for (o, p) in rows {
            for (i, (c, m)) in [("ue", "m1"), ("ue", "m2"), ("pa", "m3")]
                .iter()
                .enumerate()
            {
                org.push(*o);
                cat.push(*c);
                metric.push(*m);
                points.push(p[i]);
            }
        }
        let band: Vec<Option<&str>> = points
            .iter()
            .map(|p| {
                p.map(|p| {
                    if p == 10.0 {
                        "healthy"
                    } else if p == 5.0 {
                        "concerning"
                    } else {
                        "poor"
                    }
                })
            })
            .collect();
        df!(
            "org_id" => org, "category" => cat, "metric" => metric,
            "value" => points.clone(), "band" => band, "points" => points,
        )
        .unwrap()
    }

    /// `metric_changes` of (health, metric_scores) now against before, with
    /// categories `ue` (default weight 15) and `pa` (33), as of day 20,000 against
    /// 19,999.
    fn split(now: (&DataFrame, &DataFrame), before: (&DataFrame, &DataFrame)) -> DataFrame {
        let categories = vec![("ue".to_string(), 15.0), ("pa".to_string(), 33.0)];
        metric_changes(
            &RunTables {
                health: now.0,
                metric_scores: now.1,
            },
            &RunTables {
                health: before.0,
                metric_scores: before.1,
            },
            &categories,
            20_000,
            Some(19_999),
        )
        .unwrap()
    }

    fn row(df: &DataFrame, org: &str, metric: &str) -> Option<(f64, f64, f64)> {
        let orgs = df.column("org_id").unwrap().str().unwrap();
        let metrics = df.column("metric").unwrap().str().unwrap();
        let i = (0..df.height())
            .find(|&i| orgs.get(i) == Some(org) && metrics.get(i) == Some(metric))?;
        let f = |c: &str| df.column(c).unwrap().f64().unwrap().get(i).unwrap();
        Some((f("previous_weight"), f("weight"), f("contribution")))
    }

    #[test]
    fn contributions_add_up_to_the_change_when_a_category_becomes_scored_and_on_plan_weights() {
        // x (default weights 15 and 33): before, ue scored (m1 10, m2 0: 5), pa not
        // adopted: H0 = 5. Now m1 10, m2 5 (ue 7.5), pa scored with m3 10:
        // H1 = (15 x 7.5 + 33 x 10) / 48 = 9.21875, a change of 4.21875.
        // y (plan weights 50 and 50): before ue 10 (10, 10), pa 0: H0 = 5; now ue 5
        // (10, 0), pa 10: H1 = 7.5, a change of 2.5.
        let prev_health = health(&[
            ("x", 5.0, [Some(5.0), None], [15.0, 33.0]),
            ("y", 5.0, [Some(10.0), Some(0.0)], [50.0, 50.0]),
        ]);
        let prev_scores = scores(&[
            ("x", [Some(10.0), Some(0.0), None]),
            ("y", [Some(10.0), Some(10.0), Some(0.0)]),
        ]);
        let now_health = health(&[
            ("x", 9.21875, [Some(7.5), Some(10.0)], [15.0, 33.0]),
            ("y", 7.5, [Some(5.0), Some(10.0)], [50.0, 50.0]),
        ]);
        let now_scores = scores(&[
            ("x", [Some(10.0), Some(5.0), Some(10.0)]),
            ("y", [Some(10.0), Some(0.0), Some(10.0)]),
        ]);
        let changes = split((&now_health, &now_scores), (&prev_health, &prev_scores));
        // x: shares now m1 15x10/(2x48) = 1.5625, m2 15x5/96 = 0.78125, m3 33x10/48
        // = 6.875; before m1 15x10/(2x15) = 5, m2 0, m3 0 (unscored). m1's points did
        // not move, but pa's weight joining the total dilutes it: -3.4375.
        assert_eq!(row(&changes, "x", "m1"), Some((0.5, 0.15625, -3.4375)));
        assert_eq!(row(&changes, "x", "m2"), Some((0.5, 0.15625, 0.78125)));
        assert_eq!(row(&changes, "x", "m3"), Some((0.0, 0.6875, 6.875)));
        // y: m1 unchanged (points and weight 50/(2x100)): no row; m2 10 -> 0 points
        // at 0.25 a point: -2.5; m3 0 -> 10 at 0.5 a point: +5.
        assert_eq!(row(&changes, "y", "m1"), None);
        assert_eq!(row(&changes, "y", "m2"), Some((0.25, 0.25, -2.5)));
        assert_eq!(row(&changes, "y", "m3"), Some((0.5, 0.5, 5.0)));
        for (org, change) in [("x", 4.21875), ("y", 2.5)] {
            let sum: f64 = (0..changes.height())
                .filter(|&i| changes.column("org_id").unwrap().str().unwrap().get(i) == Some(org))
                .map(|i| {
                    changes
                        .column("contribution")
                        .unwrap()
                        .f64()
                        .unwrap()
                        .get(i)
                        .unwrap()
                })
                .sum();
            assert!((sum - change).abs() < 1e-9, "{org}: {sum} vs {change}");
        }
    }

    #[test]
    fn a_metric_removed_since_the_previous_run_still_adds_its_lost_share() {
        // Before: ue holds m0 (10 points) and m1 (0): 5, so H0 = 5. A config then
        // removed m0: ue is m1 alone, 0, so H1 = 0. m0's share 15 x 10 / (2 x 15) = 5
        // is lost (-5); m1 keeps 0 points at a new weight (0.5 -> 1 a point).
        let prev_health = health(&[("x", 5.0, [Some(5.0), None], [15.0, 33.0])]);
        let now_health = health(&[("x", 0.0, [Some(0.0), None], [15.0, 33.0])]);
        let ms = |metrics: &[(&str, f64)]| {
            df!(
                "org_id" => metrics.iter().map(|_| "x").collect::<Vec<_>>(),
                "category" => metrics.iter().map(|_| "ue").collect::<Vec<_>>(),
                "metric" => metrics.iter().map(|m| m.0).collect::<Vec<_>>(),
                "value" => metrics.iter().map(|m| m.1).collect::<Vec<_>>(),
                "band" => metrics.iter().map(|m| if m.1 == 10.0 { "healthy" } else { "poor" }).collect::<Vec<_>>(),
                "points" => metrics.iter().map(|m| m.1).collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let (before, now) = (ms(&[("m0", 10.0), ("m1", 0.0)]), ms(&[("m1", 0.0)]));
        let changes = split((&now_health, &now), (&prev_health, &before));
        assert_eq!(row(&changes, "x", "m0"), Some((0.5, 0.0, -5.0)));
        assert_eq!(row(&changes, "x", "m1"), Some((0.5, 1.0, 0.0)));
        let category = changes.column("category").unwrap().str().unwrap();
        assert!(category.iter().all(|c| c == Some("ue")));
    }

    #[test]
    fn an_org_new_since_the_previous_run_or_unscored_in_either_has_no_rows() {
        let prev_health = health(&[("x", 5.0, [Some(5.0), None], [15.0, 33.0])]);
        let prev_scores = scores(&[("x", [Some(10.0), Some(0.0), None])]);
        let now_health = df!(
            "org_id" => ["x", "z"], "health_score" => [None, Some(10.0)],
            "ue_score" => [None, Some(10.0)], "pa_score" => [None::<f64>, None],
            "ue_weight" => [15.0, 15.0], "pa_weight" => [33.0, 33.0],
        )
        .unwrap();
        let now_scores = scores(&[
            ("x", [None, None, None]),
            ("z", [Some(10.0), Some(10.0), None]),
        ]);
        let changes = split((&now_health, &now_scores), (&prev_health, &prev_scores));
        assert_eq!(changes.height(), 0);
    }
}
