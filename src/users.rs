//! The `users` table (SPEC 9): one row per member, the outreach list of the handbook's
//! frustration signals (insights started vs saved, queries failed vs completed).

use polars::prelude::*;

use crate::input::Inputs;
use crate::member_aggregates::{EventAggregates, MemberEvents, RowFilter};
use crate::metrics::days_since;
use crate::model::Model;
use crate::rollup_spec::{self, count_column};
use crate::time::AsOf;

/// One row per distinct (org_id, distinct_id) of the members table, sorted. A member
/// with several rows (left and rejoined) shows the row with the latest `joined_at`
/// (the first such row on a tie). `events` are the member events of the rollup,
/// whose member numbers follow the same sort, so nothing is sorted here.
pub fn compute(
    events: &MemberEvents,
    inputs: &Inputs,
    model: &Model,
    as_of: &AsOf,
) -> PolarsResult<LazyFrame> {
    let recent = RowFilter::days(as_of.last_n_days(model.users.events_window_days));
    let signals = RowFilter::days(as_of.last_n_days(model.users.signals_window_days));
    let mut aggs = EventAggregates::default();
    aggs.max("_last_seen_us", rollup_spec::LAST_INSTANT);
    aggs.sum("events_30d", rollup_spec::EVENTS, recent);
    for (alias, set) in model.users.signal_sets() {
        aggs.sum(alias, &count_column(set), signals.clone());
    }
    let mut activity = aggs.per_member(events)?;
    let rows = latest_row_of_each_member(
        &inputs.members,
        events.member_of_row(),
        events.keys().height(),
    )?;
    for c in ["email", "role"] {
        let values = inputs.members.column(c)?.take(&rows)?;
        activity.with_column(values)?;
    }
    let mut counts = vec!["events_30d"];
    counts.extend(model.users.signal_sets().map(|(alias, _)| alias));
    let mut select = vec![
        col("org_id"),
        col("distinct_id"),
        col("email"),
        col("role"),
        days_since(lit(as_of.us()), col("_last_seen_us")).alias("days_since_last_seen"),
    ];
    select.extend(counts.iter().map(|c| col(*c).cast(DataType::UInt32)));
    Ok(activity.lazy().select(select))
}

/// For each member number, the row of `members` it shows: the latest `joined_at`,
/// the first row on a tie. `member_of_row` is each row's member number; every member
/// has a row (the members are the members table's distinct pairs).
fn latest_row_of_each_member(
    members: &DataFrame,
    member_of_row: &[u32],
    count: usize,
) -> PolarsResult<IdxCa> {
    let joined = members.column("joined_at")?.i64()?;
    let mut best: Vec<Option<(i64, IdxSize)>> = vec![None; count];
    for (row, (&m, j)) in member_of_row.iter().zip(joined.iter()).enumerate() {
        // Rows in order: a later join replaces the pick, an equal one does not.
        let j = j.unwrap_or(i64::MIN);
        let b = &mut best[m as usize];
        if b.is_none_or(|(bj, _)| j > bj) {
            *b = Some((j, row as IdxSize));
        }
    }
    let rows: Vec<IdxSize> = best
        .into_iter()
        .map(|b| {
            b.map(|(_, r)| r)
                .ok_or_else(|| polars_err!(ComputeError: "a member without a member row"))
        })
        .collect::<PolarsResult<_>>()?;
    Ok(IdxCa::from_vec("_row".into(), rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_member_shows_its_latest_joined_row_and_the_first_one_on_a_tie() {
        let members = df!(
            "org_id" => ["b", "a", "a", "b", "a", "b"],
            "distinct_id" => ["q", "p", "p", "q", "r", "q"],
            "joined_at" => [30i64, 10, 20, 30, 5, 25],
        )
        .unwrap();
        // Members a/p (0), a/r (1), b/q (2).
        let member_of_row = [2, 0, 0, 2, 1, 2];
        let rows = latest_row_of_each_member(&members, &member_of_row, 3).unwrap();
        // a/p: row 2 (20 > 10); a/r: row 4; b/q: rows 0 and 3 tie at 30, row 0 first.
        assert_eq!(rows.into_no_null_iter().collect::<Vec<_>>(), [2, 4, 0]);
    }
}
