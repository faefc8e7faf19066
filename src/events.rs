//! The one pass over the events (SPEC 2, 3): the event export is read once, streaming,
//! and rolled up to one row per org, person and UTC day, with a count per event set and
//! URL class the model looks at and the latest instant. Every metric, indicator, user
//! signal and trend is computed from this rollup: windows are whole days (as_of is a
//! midnight), counts are sums of the count columns, "days since" uses `last_us`, so
//! nothing needs the raw rows again.
//!
//! Also finds the nulls and unreadable pages of the events input that the per-file
//! schema checks could not see, and blames the file.

use polars::prelude::*;

use crate::error::InputError;
use crate::input::Inputs;
use crate::metrics::url_path;
use crate::model::Model;
use crate::time::{AsOf, MICROS_PER_DAY};

/// The events, rolled up to one row per org, person and UTC day. Columns: `org_id`,
/// `distinct_id`, `day` (i32 days since the epoch), `n` (events), `last_us` (latest
/// instant), and one count per thing the model looks at: `n__<set>` for every event
/// set (and `feature_use`), `n__docs_visit`, `n__billing_visit`, `n__docs__<product>`,
/// plus `last__<set>` for the sets whose latest instant an indicator reads. (Counted
/// sets: see `counted_sets`.)
pub struct Rollup {
    pub frame: DataFrame,
    /// Events read.
    pub rows: u64,
    /// The latest event instant, for the default as_of.
    pub latest_us: Option<i64>,
}

pub const DOCS_VISITS: &str = "n__docs_visit";
pub const BILLING_VISITS: &str = "n__billing_visit";

/// The rollup column counting the events of a named set (or `feature_use`).
pub fn set_count(set: &str) -> String {
    format!("n__{set}")
}

/// The rollup column counting members' visits to a product's docs.
pub fn product_docs_visits(product: &str) -> String {
    format!("n__docs__{product}")
}

/// The rollup column holding the latest instant of an event set.
pub fn latest_of_set(set: &str) -> String {
    format!("last__{set}")
}

/// The sum of a count column over the rollup rows matching `cond`.
pub fn count_where(column: &str, cond: Expr) -> Expr {
    col(column).filter(cond).sum()
}

/// The number of events (of any name) in rollup rows matching `cond`.
pub fn events_where(cond: Expr) -> Expr {
    count_where("n", cond)
}

/// Sets the stages count by name (query failures, lost insights, the users table).
pub const SETS_COUNTED_BY_NAME: [&str; 4] = [
    "query_ok",
    "query_failed",
    "insight_started",
    "insight_saved",
];

/// Every set the rollup counts: those the metrics and products name, and those the
/// stages count by name. (Each count is one more aggregation in the streaming pass, so
/// sets used only inside another column, like `pageview`, are not counted alone.)
fn counted_sets(model: &Model) -> Vec<String> {
    let mut sets: Vec<String> = SETS_COUNTED_BY_NAME.iter().map(|s| s.to_string()).collect();
    sets.extend(model.metrics.values().filter_map(|m| m.event_set.clone()));
    sets.extend(model.products.values().filter_map(|p| p.engagement.clone()));
    first_of_each(sets)
}

/// The names in order of first appearance, each once.
fn first_of_each(names: Vec<String>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        if !seen.contains(&n) {
            seen.push(n);
        }
    }
    seen
}

/// The sets whose latest instant some indicator reads.
fn latest_sets(model: &Model) -> Vec<String> {
    let mut sets: Vec<String> = model
        .indicators
        .values()
        .filter_map(|i| i.event_set.clone())
        .collect();
    sets.sort();
    sets.dedup();
    sets
}

/// Flag column of the event-set table: the event belongs to the set.
fn in_set_flag(set: &str) -> String {
    format!("_is__{set}")
}

/// One row per event name the model names, one boolean column per counted set: joined
/// onto the events once, so each row's set membership is a lookup, not a string
/// comparison per set.
fn event_set_table(model: &Model) -> PolarsResult<LazyFrame> {
    let mut sets = counted_sets(model);
    sets.extend(["pageview".to_string(), "billing_shown".to_string()]);
    sets.extend(latest_sets(model));
    let sets = first_of_each(sets);
    let mut names: Vec<String> = sets.iter().flat_map(|s| model.events_of(s)).collect();
    names.sort();
    names.dedup();
    let mut columns = vec![Column::new("event".into(), names.clone())];
    for set in &sets {
        let members = model.events_of(set);
        let flags: Vec<bool> = names.iter().map(|n| members.contains(n)).collect();
        columns.push(Column::new(in_set_flag(set).into(), flags));
    }
    Ok(DataFrame::new_infer_height(columns)?.lazy())
}

/// Every aggregation of the rollup, one per column described on `Rollup`.
fn rollup_aggregations(model: &Model) -> Vec<Expr> {
    let is = |set: &str| col(in_set_flag(set)).fill_null(lit(false));
    let under = |prefix: &str| col("path").str().starts_with(lit(prefix.to_string()));
    let pageview = is("pageview");
    let mut aggs = vec![
        len().cast(DataType::Int64).alias("n"),
        col("timestamp").max().alias("last_us"),
        col("event").is_null().sum().alias("_null_events"),
    ];
    for set in counted_sets(model) {
        aggs.push(is(&set).sum().alias(set_count(&set)));
    }
    aggs.push(
        pageview
            .clone()
            .and(under(&model.paths.docs_prefix))
            .sum()
            .alias(DOCS_VISITS),
    );
    let billing_page = pageview.clone().and(under(&model.paths.billing_prefix));
    aggs.push(
        is("billing_shown")
            .or(billing_page)
            .sum()
            .alias(BILLING_VISITS),
    );
    for (name, p) in &model.products {
        aggs.push(
            pageview
                .clone()
                .and(under(&p.docs_prefix))
                .sum()
                .alias(product_docs_visits(name)),
        );
    }
    for set in latest_sets(model) {
        let instant = when(is(&set))
            .then(col("timestamp"))
            .otherwise(lit(NULL).cast(DataType::Int64));
        aggs.push(instant.max().alias(latest_of_set(&set)));
    }
    aggs
}

/// The rollup of one batch of event files, streaming.
fn rollup_batch(events: LazyFrame, sets: LazyFrame, model: &Model) -> PolarsResult<DataFrame> {
    events
        .join(
            sets,
            [col("event")],
            [col("event")],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("timestamp")
                .floor_div(lit(MICROS_PER_DAY))
                .cast(DataType::Int32)
                .alias("day"),
            url_path("current_url").alias("path"),
        ])
        .group_by([col("org_id"), col("distinct_id"), col("day")])
        .agg(rollup_aggregations(model))
        .collect_with_engine(Engine::Streaming)
        // A plain query has one result; only several sinks would give several.
        .map(|result| result.unwrap_single())
}

/// Merges batch rollups whose (org, person, day) groups may repeat across batches:
/// counts add up, latest instants take the maximum.
fn merge_batches(batches: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    let columns: Vec<String> = batches[0]
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let aggs: Vec<Expr> = columns
        .iter()
        .filter(|c| !matches!(c.as_str(), "org_id" | "distinct_id" | "day"))
        .map(|c| {
            if c.starts_with("last") {
                col(c.as_str()).max()
            } else {
                col(c.as_str()).sum()
            }
        })
        .collect();
    let parts: Vec<LazyFrame> = batches.into_iter().map(DataFrame::lazy).collect();
    concat(parts, UnionArgs::default())?
        .group_by([col("org_id"), col("distinct_id"), col("day")])
        .agg(aggs)
        .collect_with_engine(Engine::Streaming)
        .map(|result| result.unwrap_single())
}

pub fn rollup(inputs: &Inputs, model: &Model) -> Result<Rollup, InputError> {
    let sets = event_set_table(model).map_err(|e| inputs.events.blame(Some(e)))?;
    let mut batches = Vec::with_capacity(inputs.events.batches.len());
    for events in &inputs.events.batches {
        let batch = rollup_batch(events.clone(), sets.clone(), model);
        batches.push(batch.map_err(|e| inputs.events.blame(Some(e)))?);
    }
    let mut frame = if batches.len() == 1 {
        batches.pop().expect("one batch")
    } else {
        merge_batches(batches).map_err(|e| inputs.events.blame(Some(e)))?
    };
    // A null key or event is a null in a required column of some file: name it.
    let null_keys: usize = ["org_id", "distinct_id", "day"]
        .iter()
        .map(|c| frame.column(c).map_or(0, |s| s.null_count()))
        .sum();
    let null_events = frame
        .column("_null_events")
        .ok()
        .and_then(|c| c.cast(&DataType::UInt64).ok()?.u64().ok()?.sum())
        .unwrap_or(0);
    if null_keys > 0 || null_events > 0 {
        return Err(inputs.events.blame(None));
    }
    let _ = frame.drop_in_place("_null_events");
    let rows = frame
        .column("n")
        .ok()
        .and_then(|c| c.i64().ok()?.sum())
        .unwrap_or(0) as u64;
    let latest_us = frame
        .column("last_us")
        .ok()
        .and_then(|c| c.i64().ok()?.max());
    Ok(Rollup {
        frame,
        rows,
        latest_us,
    })
}

/// The distinct (org_id, distinct_id) pairs of the members table.
pub fn member_keys(inputs: &Inputs) -> LazyFrame {
    inputs
        .members
        .clone()
        .lazy()
        .select([col("org_id"), col("distinct_id")])
        .unique(None, UniqueKeepStrategy::Any)
}

/// Member events before as_of (SPEC 2): the rollup rows of people who appear in a
/// member row of their org, whatever its dates.
pub fn member_events(rollup: &Rollup, inputs: &Inputs, as_of: &AsOf) -> LazyFrame {
    rollup
        .frame
        .clone()
        .lazy()
        .filter(col("day").lt(lit(as_of.day)))
        .join(
            member_keys(inputs),
            [col("org_id"), col("distinct_id")],
            [col("org_id"), col("distinct_id")],
            JoinArgs::new(JoinType::Semi),
        )
}
