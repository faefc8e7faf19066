//! Data-quality counts (SPEC 2): suspicious but usable data is counted, never fatal.
//!
//! Also derives the default `as_of` from the events. Reads the normalised inputs and
//! returns small counts; writes nothing.

use indexmap::IndexMap;
use polars::prelude::*;
use rayon::prelude::*;

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

/// The one count a query of one row and column computes. A failed query is an
/// internal error, never a silent 0: a count in the manifest is a statement of fact.
fn scalar(lf: LazyFrame) -> PolarsResult<u64> {
    let df = lf.collect()?;
    let value = match df.columns().first() {
        Some(c) if c.len() == 1 => c.get(0)?,
        _ => polars_bail!(ComputeError: "a data-quality count gave no single value"),
    };
    value
        .extract::<u64>()
        .ok_or_else(|| polars_err!(ComputeError: "a data-quality count gave {value}, not a count"))
}

fn count_rows(df: &DataFrame, predicate: Expr) -> PolarsResult<u64> {
    scalar(df.clone().lazy().select([predicate.sum()]))
}

/// Rows whose (`org`, `day`) key an earlier row already has (nulls are a value like
/// any other). An export sorted by org and day, the usual one, has its repeats side by
/// side and is counted in one pass; any other is sorted first (in Rust: a fifth of the
/// time of polars' `unique` over the two columns).
fn duplicate_org_days(df: &DataFrame, org: &str, day: &str) -> PolarsResult<u64> {
    let orgs = df.column(org)?.str()?;
    let days = df.column(day)?.i32()?;
    let keys = || orgs.iter().zip(days.iter());
    if let Some(repeats) = repeats_if_sorted(keys()) {
        return Ok(repeats);
    }
    let mut keys: Vec<(Option<&str>, Option<i32>)> = keys().collect();
    keys.par_sort_unstable();
    keys.dedup();
    Ok((df.height() - keys.len()) as u64)
}

/// How many keys equal the key before them, if the keys never go down (`None` as soon
/// as one is less than the key before it: then equal keys need not be side by side).
fn repeats_if_sorted<K: Ord>(keys: impl Iterator<Item = K>) -> Option<u64> {
    let mut repeats = 0;
    let mut previous: Option<K> = None;
    for key in keys {
        if let Some(p) = &previous {
            match p.cmp(&key) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => repeats += 1,
                std::cmp::Ordering::Greater => return None,
            }
        }
        previous = Some(key);
    }
    Some(repeats)
}

pub fn measure(inputs: &Inputs, rollup: &Rollup, as_of: &AsOf) -> PolarsResult<DataQuality> {
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
    let skipped = rollup.skipped;
    q.insert(
        "duplicate_event_uuids".into(),
        skipped.duplicate_event_uuids,
    );
    q.insert(
        "events_unreadable_properties".into(),
        skipped.events_unreadable_properties,
    );
    q.insert("events_without_org".into(), skipped.events_without_org);
    // The rollup's member keys are the members' distinct (org_id, distinct_id) pairs.
    q.insert(
        "duplicate_member_rows".into(),
        inputs
            .members
            .height()
            .saturating_sub(rollup.members.height()) as u64,
    );
    q.insert(
        "members_joined_at_or_after_as_of".into(),
        count_rows(&inputs.members, future("joined_at"))?,
    );
    let mut negative = 0;
    for c in &inputs.usage_counters_present {
        negative += count_rows(&inputs.usage, col(c.as_str()).lt(lit(0.0)))?;
    }
    q.insert("negative_usage_values".into(), negative);
    q.insert(
        "duplicate_usage_rows".into(),
        duplicate_org_days(&inputs.usage, "org_id", "date")?,
    );
    q.insert(
        "usage_rows_at_or_after_as_of".into(),
        count_rows(&inputs.usage, col("date").gt_eq(lit(as_of.day)))?,
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
                count_rows(df, future(column))?,
            );
        }
    }
    // The deployment checks' table: counts below 0 skew the shares; null counts read
    // as 0; rows at or after as_of are not read.
    if let Some(df) = &inputs.ingestion {
        q.insert(
            "negative_ingestion_counts".into(),
            count_rows(df, col("count").lt(lit(0.0)))?,
        );
        q.insert(
            "ingestion_rows_without_count".into(),
            count_rows(df, col("count").is_null())?,
        );
        q.insert(
            "ingestion_rows_at_or_after_as_of".into(),
            count_rows(df, col("date").cast(DataType::Int32).gt_eq(lit(as_of.day)))?,
        );
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_worked_by_hand() {
        let df = df!(
            "k" => ["a", "a", "b", "a"],
            "v" => [-1i64, 2, -3, 2],
        )
        .unwrap();
        assert_eq!(count_rows(&df, col("v").lt(lit(0))).unwrap(), 2);
        let empty = df.head(Some(0));
        assert_eq!(count_rows(&empty, col("v").lt(lit(0))).unwrap(), 0);
    }

    #[test]
    fn duplicate_org_days_worked_by_hand() {
        let df = df!(
            "org" => [Some("a"), Some("a"), Some("b"), Some("a"), None, None, Some("b")],
            "day" => [Some(1i32), Some(2), Some(1), Some(1), Some(1), Some(1), None],
        )
        .unwrap();
        // (a, 1) and (null, 1) twice each: one repeat each; (a, 2), (b, 1) and
        // (b, null) once each.
        assert_eq!(duplicate_org_days(&df, "org", "day").unwrap(), 2);
        assert_eq!(duplicate_org_days(&df.reverse(), "org", "day").unwrap(), 2);
        assert_eq!(
            duplicate_org_days(&df.head(Some(0)), "org", "day").unwrap(),
            0
        );
        // Sorted by (org, day), nulls first: counted in one pass, the same count.
        let sorted = df
            .sort(
                ["org", "day"],
                SortMultipleOptions::default().with_nulls_last(false),
            )
            .unwrap();
        let orgs = sorted.column("org").unwrap().str().unwrap();
        let days = sorted.column("day").unwrap().i32().unwrap();
        assert_eq!(repeats_if_sorted(orgs.iter().zip(days.iter())), Some(2));
        assert_eq!(duplicate_org_days(&sorted, "org", "day").unwrap(), 2);
        // The same count as polars' `unique` over the pair.
        let distinct = df
            .clone()
            .lazy()
            .unique(None, UniqueKeepStrategy::Any)
            .collect()
            .unwrap()
            .height();
        assert_eq!(df.height() - distinct, 2);
    }

    #[test]
    fn repeats_are_counted_in_one_pass_only_while_the_keys_never_go_down() {
        assert_eq!(repeats_if_sorted([1, 1, 2, 3, 3, 3].into_iter()), Some(3));
        assert_eq!(repeats_if_sorted([1, 2, 3].into_iter()), Some(0));
        assert_eq!(repeats_if_sorted(std::iter::empty::<i32>()), Some(0));
        // A key below the one before it, even at the very end: not sorted, no count.
        assert_eq!(repeats_if_sorted([1, 1, 2, 1].into_iter()), None);
        assert_eq!(repeats_if_sorted([2, 1, 1].into_iter()), None);
    }

    #[test]
    fn a_count_that_cannot_be_computed_is_an_error_not_zero() {
        let df = df!("v" => [1i64]).unwrap();
        assert!(count_rows(&df, col("missing").lt(lit(0))).is_err());
        assert!(duplicate_org_days(&df, "missing", "v").is_err());
        // Not one value: no count.
        assert_eq!(scalar(df.clone().lazy()).unwrap(), 1);
        assert!(scalar(df!("v" => [1i64, 2]).unwrap().lazy()).is_err());
        assert!(scalar(df!("s" => ["x"]).unwrap().lazy()).is_err());
    }
}
