//! Data-quality counts (SPEC 2): suspicious but usable data is counted, never fatal.
//!
//! Also derives the default `as_of` from the events. Reads the normalised inputs and
//! returns small counts; writes nothing.

use indexmap::IndexMap;
use polars::prelude::*;

use crate::error::InputError;
use crate::events::Rollup;
use crate::input::Inputs;
use crate::time::AsOf;

/// Named counts, in a fixed order, for the manifest and `validate`.
pub type DataQuality = IndexMap<String, u64>;

/// The default as_of: the day after the latest event (SPEC 1).
pub fn default_as_of(rollup: &Rollup) -> Result<AsOf, InputError> {
    match rollup.latest_us {
        Some(us) => Ok(AsOf::day_after(us)),
        None => Err(InputError::NoEvents {
            file: "events".into(),
        }),
    }
}

fn scalar(lf: LazyFrame) -> u64 {
    lf.collect()
        .ok()
        .and_then(|df| {
            df.columns()
                .first()
                .and_then(|c| c.get(0).ok().and_then(|v| v.extract::<u64>()))
        })
        .unwrap_or(0)
}

fn count_rows(df: &DataFrame, predicate: Expr) -> u64 {
    scalar(df.clone().lazy().select([predicate.sum()]))
}

fn duplicates(df: &DataFrame, keys: &[&str]) -> u64 {
    let distinct = scalar(
        df.clone()
            .lazy()
            .select(keys.iter().map(|k| col(*k)).collect::<Vec<_>>())
            .unique(None, UniqueKeepStrategy::Any)
            .select([len()]),
    );
    (df.height() as u64).saturating_sub(distinct)
}

pub fn measure(inputs: &Inputs, rollup: &Rollup, as_of: &AsOf) -> DataQuality {
    let mut q = DataQuality::new();
    let future = |c: &str| col(c).gt_eq(lit(as_of.us()));
    // The rollup's days are whole: an event is at or after as_of exactly when its day is.
    let late: u64 = rollup
        .events_per_day
        .range(as_of.day..)
        .map(|(_, n)| n)
        .sum();
    q.insert("events_at_or_after_as_of".into(), late);
    q.insert(
        "events_of_unknown_members".into(),
        rollup.unknown_member_events,
    );
    q.insert(
        "duplicate_member_rows".into(),
        duplicates(&inputs.members, &["org_id", "distinct_id"]),
    );
    q.insert(
        "members_joined_at_or_after_as_of".into(),
        count_rows(&inputs.members, future("joined_at")),
    );
    let negative = inputs
        .usage_counters_present
        .iter()
        .map(|c| count_rows(&inputs.usage, col(c.as_str()).lt(lit(0.0))))
        .sum();
    q.insert("negative_usage_values".into(), negative);
    q.insert(
        "duplicate_usage_rows".into(),
        duplicates(&inputs.usage, &["org_id", "date"]),
    );
    q.insert(
        "usage_rows_at_or_after_as_of".into(),
        count_rows(&inputs.usage, col("date").gt_eq(lit(as_of.day))),
    );
    let optional = [
        ("tickets", &inputs.tickets, "created_at"),
        ("meetings", &inputs.meetings, "started_at"),
        ("payments", &inputs.payments, "occurred_at"),
        ("role_changes", &inputs.role_changes, "changed_at"),
    ];
    for (name, table, column) in optional {
        if let Some(df) = table {
            q.insert(
                format!("{name}_at_or_after_as_of"),
                count_rows(df, future(column)),
            );
        }
    }
    q
}
