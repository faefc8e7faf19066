//! The `users` table (SPEC 9): one row per member, the outreach list of the handbook's
//! frustration signals (insights started vs saved, queries failed vs completed).

use polars::prelude::*;

use crate::events::set_count;
use crate::input::Inputs;
use crate::member_aggregates::{EventAggregates, MemberEvents, RowFilter};
use crate::metrics::days_since;
use crate::model::Model;
use crate::time::AsOf;

/// One row per distinct (org_id, distinct_id) of the members table, sorted. A member
/// with several rows (left and rejoined) shows the row with the latest `joined_at`.
/// `events` are the member events of the rollup.
pub fn compute(
    events: &MemberEvents,
    inputs: &Inputs,
    model: &Model,
    as_of: &AsOf,
) -> PolarsResult<LazyFrame> {
    let recent = RowFilter::days(as_of.last_n_days(model.users.events_window_days));
    let signals = RowFilter::days(as_of.last_n_days(model.users.signals_window_days));
    let mut aggs = EventAggregates::default();
    aggs.max("_last_seen_us", "last_us");
    aggs.sum("events_30d", "n", recent);
    for (alias, set) in [
        ("insights_started_7d", "insight_started"),
        ("insights_saved_7d", "insight_saved"),
        ("queries_failed_7d", "query_failed"),
        ("queries_completed_7d", "query_ok"),
    ] {
        aggs.sum(alias, &set_count(set), signals.clone());
    }
    let activity = aggs.per_member(events)?.lazy();
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
    Ok(members
        .join(
            activity,
            [col("org_id"), col("distinct_id")],
            [col("org_id"), col("distinct_id")],
            JoinArgs::new(JoinType::Left),
        )
        .select(select)
        .sort(["org_id", "distinct_id"], Default::default()))
}
