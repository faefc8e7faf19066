//! The one pass over the events (SPEC 2, 3): the event export is read once, streaming,
//! and rolled up to one row per (org, person, day, event, relevant URL path) with a
//! count and the latest instant. Every metric, indicator, user signal and trend is
//! computed from this rollup: windows are whole days (as_of is a midnight), counts are
//! sums of `n`, "days since" uses `last_us`, so nothing needs the raw rows again.
//!
//! Also finds the nulls and unreadable pages of the events input that the per-file
//! schema checks could not see, and blames the file.

use polars::prelude::*;

use crate::error::InputError;
use crate::input::Inputs;
use crate::metrics::{in_set, url_path};
use crate::model::Model;
use crate::time::{AsOf, MICROS_PER_DAY};

/// The events, rolled up. Columns: `org_id`, `distinct_id`, `day` (i32 days since the
/// epoch), `event`, `rel_path` (the URL path of a pageview under a prefix the model
/// watches, else null), `n` (events), `last_us` (latest instant).
pub struct Rollup {
    pub frame: DataFrame,
    /// Events read.
    pub rows: u64,
    /// The latest event instant, for the default as_of.
    pub latest_us: Option<i64>,
}

/// Every URL prefix the model looks at: docs, billing, each product's docs.
fn watched_prefixes(model: &Model) -> Vec<String> {
    let mut prefixes = vec![
        model.paths.docs_prefix.clone(),
        model.paths.billing_prefix.clone(),
    ];
    prefixes.extend(model.products.values().map(|p| p.docs_prefix.clone()));
    prefixes.sort();
    prefixes.dedup();
    prefixes
}

/// The path of a pageview when it is under a watched prefix; null otherwise, so that
/// the rollup does not grow with every page of the app.
fn relevant_path(model: &Model) -> Expr {
    let path = url_path("current_url");
    let watched = watched_prefixes(model)
        .into_iter()
        .map(|p| path.clone().str().starts_with(lit(p)))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    when(in_set("event", &model.events_of("pageview")).and(watched))
        .then(path)
        .otherwise(lit(NULL).cast(DataType::String))
}

/// Events no rule of the model names only ever count as "any event": they are rolled
/// up under this one name, so the rollup does not grow with every event a product
/// sends. (The `query` command still sees the raw names.)
pub const OTHER_EVENT: &str = "(other event)";

/// Every event name some event set of the model contains.
fn named_events(model: &Model) -> Vec<String> {
    let mut names: Vec<String> = model.event_sets.values().flatten().cloned().collect();
    names.sort();
    names.dedup();
    names
}

/// The event name as the rollup keeps it; a null stays null so the null check sees it.
fn event_key(model: &Model) -> Expr {
    when(col("event").is_null())
        .then(lit(NULL).cast(DataType::String))
        .when(in_set("event", &named_events(model)))
        .then(col("event"))
        .otherwise(lit(OTHER_EVENT))
}

pub fn rollup(inputs: &Inputs, model: &Model) -> Result<Rollup, InputError> {
    let keys = [
        col("org_id"),
        col("distinct_id"),
        col("day"),
        col("event"),
        col("rel_path"),
    ];
    let query = inputs
        .events
        .frame
        .clone()
        .with_columns([
            col("timestamp")
                .floor_div(lit(MICROS_PER_DAY))
                .cast(DataType::Int32)
                .alias("day"),
            relevant_path(model).alias("rel_path"),
        ])
        .with_column(event_key(model).alias("event"))
        .group_by(keys)
        .agg([
            len().cast(DataType::Int64).alias("n"),
            col("timestamp").max().alias("last_us"),
        ]);
    // A plain query has one result; only several sinks would give several.
    let frame = match query.collect_with_engine(Engine::Streaming) {
        Ok(result) => result.unwrap_single(),
        Err(e) => return Err(inputs.events.blame(Some(e))),
    };
    // A null key is a null in a required column of some file: name it.
    let null_keys: usize = ["org_id", "distinct_id", "day", "event"]
        .iter()
        .map(|c| frame.column(c).map_or(0, |s| s.null_count()))
        .sum();
    if null_keys > 0 {
        return Err(inputs.events.blame(None));
    }
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

/// The number of events in rows matching `cond`.
pub fn events_where(cond: Expr) -> Expr {
    col("n").filter(cond).sum()
}
