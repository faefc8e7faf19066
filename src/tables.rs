//! Assembles the output tables of SPEC 9 from the scored frame: column order, names,
//! types and row order. Decides nothing about scores; only shapes them.

use polars::prelude::*;

use crate::indicators::inputs::{ALL_DAYS_VOLUME_DROP, IND};
use crate::model::Model;
use crate::score::{band_column, category_column, points_column, weight_column};
use crate::time::AsOf;

/// Adds `previous_health_score` and `health_score_change` from an earlier run's health
/// table; orgs new since then get nulls.
pub fn with_previous(scored: LazyFrame, previous: Option<DataFrame>) -> LazyFrame {
    let with = match previous {
        Some(p) => scored.join(
            p.lazy()
                .unique(Some(cols(["org_id"])), UniqueKeepStrategy::First)
                .select([
                    col("org_id"),
                    col("health_score").alias("previous_health_score"),
                ]),
            [col("org_id")],
            [col("org_id")],
            JoinArgs::new(JoinType::Left),
        ),
        None => scored.with_column(
            lit(NULL)
                .cast(DataType::Float64)
                .alias("previous_health_score"),
        ),
    };
    with.with_column(
        (col("health_score") - col("previous_health_score")).alias("health_score_change"),
    )
}

/// The `health` table: one row per org, sorted by org_id.
pub fn health(
    scored: &DataFrame,
    indicators: &DataFrame,
    model: &Model,
    as_of: &AsOf,
) -> PolarsResult<DataFrame> {
    let counts = indicators.clone().lazy().group_by([col("org_id")]).agg([
        col("kind").eq(lit("risk")).sum().alias("risk_count"),
        col("kind")
            .eq(lit("opportunity"))
            .sum()
            .alias("opportunity_count"),
    ]);
    let mut columns = vec![
        col("org_id"),
        col("name"),
        col("csm"),
        lit(as_of.day).cast(DataType::Date).alias("as_of"),
        col("health_score"),
        col("health_label"),
        col("previous_health_score"),
        col("health_score_change"),
    ];
    columns.extend(model.categories.keys().map(|c| col(category_column(c))));
    columns.extend(model.categories.keys().map(|c| col(weight_column(c))));
    columns.extend(model.metrics.keys().map(|m| col(m.as_str())));
    columns.push(col(IND.weekday_volume_drop));
    columns.push(col(ALL_DAYS_VOLUME_DROP));
    columns.push(col("risk_count").fill_null(lit(0)).cast(DataType::UInt32));
    columns.push(
        col("opportunity_count")
            .fill_null(lit(0))
            .cast(DataType::UInt32),
    );
    // The account's money and renewal, for readers of this table alone (the report).
    columns.push(col(IND.mrr).alias("mrr"));
    columns.push(col(IND.renewal_date).alias("renewal_date"));
    scored
        .clone()
        .lazy()
        .join(
            counts,
            [col("org_id")],
            [col("org_id")],
            JoinArgs::new(JoinType::Left),
        )
        .select(columns)
        .sort(["org_id"], Default::default())
        .collect()
}

/// The `metric_scores` table: one row per org and metric, sorted by org_id, category, metric.
/// The rows are put in that order without sorting them: the orgs are sorted once (one
/// row each), the metrics by (category, metric) from the model, and the org-major
/// rows are gathered from the metric-major stack (a three-key string sort of every
/// row took most of this stage).
pub fn metric_scores(scored: &DataFrame, model: &Model) -> PolarsResult<DataFrame> {
    let scored = scored
        .clone()
        .lazy()
        .sort(["org_id"], Default::default())
        .collect()?;
    let mut metrics: Vec<_> = model.metrics.iter().collect();
    metrics.sort_by(|(a, ma), (b, mb)| (&ma.category, a).cmp(&(&mb.category, b)));
    let parts: Vec<LazyFrame> = metrics
        .iter()
        .map(|(name, m)| {
            scored.clone().lazy().select([
                col("org_id"),
                lit(m.category.clone()).alias("category"),
                lit(name.to_string()).alias("metric"),
                col(name.as_str()).cast(DataType::Float64).alias("value"),
                col(band_column(name)).alias("band"),
                col(points_column(name)).alias("points"),
            ])
        })
        .collect();
    let stacked = concat(parts, UnionArgs::default())?.collect()?;
    let (orgs, per_org) = (scored.height(), metrics.len());
    let org_major = IdxCa::from_vec(
        "row".into(),
        (0..orgs)
            .flat_map(|o| (0..per_org).map(move |m| (m * orgs + o) as IdxSize))
            .collect(),
    );
    stacked.take(&org_major)
}
