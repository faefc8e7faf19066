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
/// The rows are put in that order without sorting them: the orgs' order is found once
/// (an argsort of org_id), the metrics are ordered by (category, metric) from the
/// model, and each output column is filled org by org from the metrics' columns (a
/// three-key string sort of every row took most of this stage; then a sort of every
/// metric's columns and a gather of their stack took half of `backfill`'s time a
/// date, most of it in fresh memory).
pub fn metric_scores(scored: &DataFrame, model: &Model) -> PolarsResult<DataFrame> {
    let mut metrics: Vec<_> = model.metrics.iter().collect();
    metrics.sort_by(|(a, ma), (b, mb)| (&ma.category, a).cmp(&(&mb.category, b)));
    let org_ids = scored.column("org_id")?;
    let order = org_ids
        .as_materialized_series()
        .arg_sort(SortOptions::default());
    let order: Vec<usize> = order.into_no_null_iter().map(|i| i as usize).collect();
    let per_org = metrics.len();
    // Each metric's column of `column_of(metric)`, as `T`, one chunk.
    fn each<T: PolarsDataType>(
        scored: &DataFrame,
        metrics: &[(&String, &crate::model::Metric)],
        column_of: impl Fn(&str) -> String,
        dtype: &DataType,
        typed: impl Fn(&Column) -> PolarsResult<&ChunkedArray<T>>,
    ) -> PolarsResult<Vec<ChunkedArray<T>>> {
        metrics
            .iter()
            .map(|(name, _)| {
                Ok(typed(&scored.column(&column_of(name))?.cast(dtype)?)?
                    .rechunk()
                    .into_owned())
            })
            .collect()
    }
    let values = each(
        scored,
        &metrics,
        |n| n.to_string(),
        &DataType::Float64,
        |c| c.f64(),
    )?;
    let bands = each(scored, &metrics, band_column, &DataType::String, |c| {
        c.str()
    })?;
    let points = each(scored, &metrics, points_column, &DataType::Float64, |c| {
        c.f64()
    })?;
    // Row (org o, metric m) of the output is row order[o] of metric m's column.
    let cells = || {
        order
            .iter()
            .flat_map(|&o| (0..per_org).map(move |m| (o, m)))
    };
    let value =
        Float64Chunked::from_iter_options("value".into(), cells().map(|(o, m)| values[m].get(o)));
    let band =
        StringChunked::from_iter_options("band".into(), cells().map(|(o, m)| bands[m].get(o)));
    let points =
        Float64Chunked::from_iter_options("points".into(), cells().map(|(o, m)| points[m].get(o)));
    // A text per metric, repeated for each org: gathered from the metrics' texts, so
    // every row is a view of the same few strings.
    let each_metric = IdxCa::from_vec(
        "row".into(),
        order.iter().flat_map(|_| 0..per_org as IdxSize).collect(),
    );
    let repeated = |alias: &str, texts: Vec<&str>| -> PolarsResult<Column> {
        let texts = StringChunked::from_iter_values(alias.into(), texts.into_iter());
        Column::from(texts.into_series()).take(&each_metric)
    };
    DataFrame::new(
        order.len() * per_org,
        vec![
            org_ids.take(&IdxCa::from_vec(
                "row".into(),
                order
                    .iter()
                    .flat_map(|&o| std::iter::repeat_n(o as IdxSize, per_org))
                    .collect(),
            ))?,
            repeated(
                "category",
                metrics.iter().map(|(_, m)| m.category.as_str()).collect(),
            )?,
            repeated("metric", metrics.iter().map(|(n, _)| n.as_str()).collect())?,
            value.into_column(),
            band.into_column(),
            points.into_column(),
        ],
    )
}
