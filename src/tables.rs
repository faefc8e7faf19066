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
/// row each, only the columns read here), the metrics by (category, metric) from the
/// model, and the org-major rows are gathered from the metric-major stack of each
/// column (a three-key string sort of every row took most of this stage; then a
/// union of a plan per metric and the sort of every scored column took half of it).
pub fn metric_scores(scored: &DataFrame, model: &Model) -> PolarsResult<DataFrame> {
    let mut metrics: Vec<_> = model.metrics.iter().collect();
    metrics.sort_by(|(a, ma), (b, mb)| (&ma.category, a).cmp(&(&mb.category, b)));
    // Only the columns read here are sorted (the scored frame has hundreds).
    let mut read = vec![col("org_id")];
    for (name, _) in &metrics {
        read.extend([name.as_str(), &band_column(name), &points_column(name)].map(col));
    }
    let scored = scored
        .clone()
        .lazy()
        .select(read)
        .sort(["org_id"], Default::default())
        .collect()?;
    let (orgs, per_org) = (scored.height(), metrics.len());
    let org_major = IdxCa::from_vec(
        "row".into(),
        (0..orgs)
            .flat_map(|o| (0..per_org).map(move |m| (m * orgs + o) as IdxSize))
            .collect(),
    );
    // A column of every metric's `column_of(metric)` stacked metric by metric, then
    // gathered into org-major order; cast to `dtype` if given (metrics' values come in
    // several types).
    let stacked = |column_of: &dyn Fn(&str) -> String,
                   dtype: Option<&DataType>,
                   alias: &str|
     -> PolarsResult<Column> {
        let mut stack = Column::new_empty(alias.into(), &DataType::Null);
        for (name, _) in &metrics {
            let mut part = scored.column(&column_of(name))?.clone();
            if let Some(dtype) = dtype {
                part = part.cast(dtype)?;
            }
            if stack.dtype().is_null() {
                stack = part;
            } else {
                stack.append(&part)?;
            }
        }
        Ok(stack.take(&org_major)?.with_name(alias.into()))
    };
    // A column of one text per metric, repeated for each org: gathered from the
    // metrics' texts, so every row is a view of the same few strings (written out
    // row by row, the strings took most of this table's time, in fresh memory).
    let each_metric = IdxCa::from_vec(
        "row".into(),
        (0..orgs).flat_map(|_| 0..per_org as IdxSize).collect(),
    );
    let repeated = |alias: &str, texts: Vec<&str>| -> PolarsResult<Column> {
        let texts = StringChunked::from_iter_values(alias.into(), texts.into_iter());
        Ok(Column::from(texts.into_series()).take(&each_metric)?)
    };
    DataFrame::new(
        orgs * per_org,
        vec![
            scored.column("org_id")?.take(&IdxCa::from_vec(
                "row".into(),
                (0..orgs as IdxSize)
                    .flat_map(|o| std::iter::repeat_n(o, per_org))
                    .collect(),
            ))?,
            repeated(
                "category",
                metrics.iter().map(|(_, m)| m.category.as_str()).collect(),
            )?,
            repeated("metric", metrics.iter().map(|(n, _)| n.as_str()).collect())?,
            stacked(&|n| n.to_string(), Some(&DataType::Float64), "value")?,
            stacked(&band_column, None, "band")?,
            stacked(&points_column, None, "points")?,
        ],
    )
}
