//! Indicators over time (issue 22): which of today's fired indicators are new and
//! which are ongoing (since when), and the `alerts` table, what to tell a human today
//! so that the same indicator is not reported every morning until it clears.
//!
//! An indicator is keyed by (org_id, indicator, product). Against the previous run
//! (the latest history entry before as_of, or `--previous DIR`):
//! - fired today, not in the previous run: `new`, `first_fired` = as_of; alerted.
//! - fired today and in the previous run: `ongoing`, `first_fired` carried over;
//!   alerted again when its last alert is more than the indicator's `renotify_days`
//!   before as_of.
//! - in the previous run, not fired today: an alert with status `resolved`.
//!
//! `last_alerted` is carried in the `indicators` table (and so in history) to know
//! when an ongoing indicator was last told. Pure frames: no I/O.

use polars::prelude::*;

use crate::model::Model;
use crate::time::AsOf;

/// The key columns of an indicator row, with a null product as the empty string
/// (join keys never match on null).
const KEY: [&str; 3] = ["org_id", "indicator", "product_key"];

/// An indicator row's product as a join key: a null product (an indicator not per
/// product) is the empty string, so that keys with no product match.
pub fn product_key() -> Expr {
    col("product").cast(DataType::String).fill_null(lit(""))
}

/// Today's indicators with their lifecycle, and the alerts.
pub struct Followed {
    pub indicators: DataFrame,
    /// Not collected: `backfill` keeps no alerts.
    pub alerts: LazyFrame,
}

/// The previous run's indicators as the lifecycle reads them: key, kind, value,
/// threshold, message, and when its streak began and was last alerted (an output
/// of an earlier version has neither: its as_of stands for both).
fn previous_state(previous: &DataFrame) -> PolarsResult<LazyFrame> {
    let has = |c: &str| previous.schema().contains(c);
    let date_or_as_of = |c: &str| {
        if has(c) {
            col(c).cast(DataType::Date)
        } else {
            col("as_of").cast(DataType::Date)
        }
    };
    Ok(previous.clone().lazy().select([
        col("org_id").cast(DataType::String),
        col("indicator").cast(DataType::String),
        col("product").cast(DataType::String),
        product_key().alias("product_key"),
        col("kind").cast(DataType::String),
        col("value").cast(DataType::Float64),
        col("threshold").cast(DataType::Float64),
        col("message").cast(DataType::String),
        date_or_as_of("first_fired").alias("first_fired"),
        date_or_as_of("last_alerted").alias("last_alerted"),
    ]))
}

/// Each indicator's `renotify_days`, as a frame to join on.
fn renotify_days(model: &Model) -> PolarsResult<LazyFrame> {
    let (names, days): (Vec<&str>, Vec<i32>) = model
        .indicators
        .iter()
        .map(|(n, i)| (n.as_str(), i.renotify_days() as i32))
        .unzip();
    Ok(df!("indicator" => names, "renotify_days" => days)?.lazy())
}

/// Follows today's fired `indicators` (the `indicators::compute` shape) from the
/// previous run's; `previous` is `None` when there was no earlier run (everything
/// is new). `orgs_today` (an `org_id` column) are the orgs of this run.
pub fn follow(
    indicators: DataFrame,
    previous: Option<&DataFrame>,
    orgs_today: &DataFrame,
    model: &Model,
    as_of: &AsOf,
) -> PolarsResult<Followed> {
    let today = lit(as_of.day).cast(DataType::Date);
    let keyed = indicators
        .lazy()
        .with_column(product_key().alias("product_key"));
    let previous = match previous {
        Some(p) => previous_state(p)?,
        None => previous_state(&crate::indicators::empty_with_lifecycle())?,
    };
    let key = || KEY.map(col).to_vec();
    let carried = previous.clone().select([
        col("org_id"),
        col("indicator"),
        col("product_key"),
        col("first_fired").alias("previous_first_fired"),
        col("last_alerted").alias("previous_last_alerted"),
    ]);
    let joined = keyed
        .join(carried, key(), key(), JoinArgs::new(JoinType::Left))
        .join(
            renotify_days(model)?,
            [col("indicator")],
            [col("indicator")],
            JoinArgs::new(JoinType::Left),
        );
    let is_new = col("previous_first_fired").is_null();
    let days_since_alert =
        today.clone().cast(DataType::Int32) - col("previous_last_alerted").cast(DataType::Int32);
    let alert_today = is_new.clone().or(days_since_alert.gt(col("renotify_days")));
    let followed = joined
        .with_columns([
            when(is_new.clone())
                .then(lit("new"))
                .otherwise(lit("ongoing"))
                .alias("status"),
            when(is_new)
                .then(today.clone())
                .otherwise(col("previous_first_fired"))
                .alias("first_fired"),
            when(alert_today.clone())
                .then(today.clone())
                .otherwise(col("previous_last_alerted"))
                .alias("last_alerted"),
            alert_today.alias("alert_today"),
        ])
        .collect()?;
    let sort = |lf: LazyFrame| {
        lf.sort(
            ["org_id", "indicator", "product"],
            SortMultipleOptions::default().with_nulls_last(false),
        )
    };
    let indicators = sort(followed.clone().lazy().select(indicator_columns())).collect()?;
    let raised = followed
        .lazy()
        .filter(col("alert_today"))
        .select(alert_columns());
    let resolved = previous
        .join(
            indicators
                .clone()
                .lazy()
                .with_column(product_key().alias("product_key")),
            key(),
            key(),
            JoinArgs::new(JoinType::Anti),
        )
        // An org no longer in the run (gone from the inputs) resolved nothing.
        .join(
            orgs_today
                .clone()
                .lazy()
                .select([col("org_id").cast(DataType::String)]),
            [col("org_id")],
            [col("org_id")],
            JoinArgs::new(JoinType::Semi),
        )
        .with_columns([
            lit("resolved").alias("status"),
            today.alias("as_of"),
            // What was last said, so the reader knows what cleared.
            format_str("Resolved: {}", &[col("message")])?.alias("message"),
        ])
        .select(alert_columns());
    let alerts = sort(concat([raised, resolved], UnionArgs::default())?);
    Ok(Followed { indicators, alerts })
}

/// The `indicators` table's columns: SPEC 7's, then the lifecycle's.
fn indicator_columns() -> Vec<Expr> {
    [
        "org_id",
        "indicator",
        "kind",
        "product",
        "value",
        "threshold",
        "message",
        "as_of",
        "status",
        "first_fired",
        "last_alerted",
    ]
    .map(col)
    .to_vec()
}

/// The `alerts` table's columns.
fn alert_columns() -> Vec<Expr> {
    [
        "org_id",
        "indicator",
        "kind",
        "product",
        "status",
        "first_fired",
        "value",
        "threshold",
        "message",
        "as_of",
    ]
    .map(col)
    .to_vec()
}
