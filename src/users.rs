//! The `users` table (SPEC 9): one row per member, the outreach list of the handbook's
//! frustration signals (insights started vs saved, queries failed vs completed).

use polars::prelude::*;

use crate::events::{count_where, events_where, set_count};
use crate::input::Inputs;
use crate::metrics::{days_since, in_window_day};
use crate::model::Model;
use crate::time::AsOf;

/// One row per distinct (org_id, distinct_id) of the members table, sorted. A member
/// with several rows (left and rejoined) shows the row with the latest `joined_at`.
/// `events` are the member events of the rollup (`events::member_events`).
pub fn compute(events: LazyFrame, inputs: &Inputs, model: &Model, as_of: &AsOf) -> LazyFrame {
    let recent = in_window_day("day", as_of.last_n_days(model.users.events_window_days));
    let signals = in_window_day("day", as_of.last_n_days(model.users.signals_window_days));
    let signal = |set: &str| count_where(&set_count(set), signals.clone());
    let activity = events.group_by([col("org_id"), col("distinct_id")]).agg([
        col("last_us").max().alias("_last_seen_us"),
        events_where(recent).alias("events_30d"),
        signal("insight_started").alias("insights_started_7d"),
        signal("insight_saved").alias("insights_saved_7d"),
        signal("query_failed").alias("queries_failed_7d"),
        signal("query_ok").alias("queries_completed_7d"),
    ]);
    let members = inputs
        .members
        .clone()
        .lazy()
        .with_row_index("_row", None)
        .sort(
            ["org_id", "distinct_id", "joined_at", "_row"],
            SortMultipleOptions::default().with_order_descending_multi([false, false, true, false]),
        )
        .unique_stable(
            Some(cols(["org_id", "distinct_id"])),
            UniqueKeepStrategy::First,
        );
    let counts = [
        "events_30d",
        "insights_started_7d",
        "insights_saved_7d",
        "queries_failed_7d",
        "queries_completed_7d",
    ];
    let mut select = vec![
        col("org_id"),
        col("distinct_id"),
        col("email"),
        col("role"),
        days_since(as_of, col("_last_seen_us")).alias("days_since_last_seen"),
    ];
    select.extend(
        counts
            .iter()
            .map(|c| col(*c).fill_null(lit(0)).cast(DataType::UInt32)),
    );
    members
        .join(
            activity,
            [col("org_id"), col("distinct_id")],
            [col("org_id"), col("distinct_id")],
            JoinArgs::new(JoinType::Left),
        )
        .select(select)
        .sort(["org_id", "distinct_id"], Default::default())
}
