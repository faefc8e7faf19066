//! The `trends` table (SPEC 8): one row per org and full ISO week before as_of, with
//! weekday-only means of each usage counter and of daily active members, so weekend
//! dips never read as declines.

use polars::prelude::*;

use crate::input::Inputs;
use crate::member_aggregates::{EventAggregates, MemberEvents, RowFilter};
use crate::metrics::scored_orgs;
use crate::model::Model;
use crate::time::{weekday_of_day, AsOf, Window};

/// Weekdays in a week, the divisor of every weekday mean.
const WEEKDAYS: f64 = 5.0;

/// The Monday (day count) of the latest full Monday-to-Sunday week ending before as_of.
pub fn latest_full_week_start(as_of: &AsOf) -> i32 {
    as_of.day - weekday_of_day(as_of.day) - 7
}

/// The trends table: every scored org (sorted) × each of the `model.trends.weeks`
/// full weeks before as_of (ascending), with each usage counter's weekday sum and the
/// weekday member-days of the week, each divided by 5. Computed by org number, not
/// by joins on the org_id strings: the grid is small, the string joins were not.
pub fn compute(
    events: &MemberEvents,
    inputs: &Inputs,
    model: &Model,
    as_of: &AsOf,
) -> PolarsResult<LazyFrame> {
    let weeks = model.trends.weeks as usize;
    let last = latest_full_week_start(as_of);
    let first = last - 7 * (weeks as i32 - 1);
    let end = last + 7;
    let orgs = scored_orgs(events, inputs)?;
    let org_ids = orgs.column("org_id")?.str()?;
    let org_of: PlHashMap<&str, usize> = org_ids
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.map(|o| (o, i)))
        .collect();
    // A day of the trend weeks' weekdays: its cell is its org's week in the grid
    // (org-major).
    let trend_days = Window {
        start_day: first,
        end_day: end,
    };
    let in_trend_weekdays = |day: i32| trend_days.holds_day(day, true);

    // Each usage row's cell of the grid (org-major), or `usize::MAX`: a row off the
    // trend weeks' weekdays, or of an org not scored. The rows' orgs are numbered
    // once, when the inputs are read (`UsageRows`), so each org is looked up here
    // once, not per row.
    let rows = &inputs.usage_rows;
    let grid_org: Vec<Option<usize>> = (rows.org_ids().iter())
        .map(|o| org_of.get(o.as_str()).copied())
        .collect();
    let cells: Vec<usize> = (rows.org_of_row().iter())
        .zip(rows.dates()?)
        .map(|(&g, &day)| match grid_org[g as usize] {
            Some(o) if in_trend_weekdays(day) => o * weeks + ((day - first) / 7) as usize,
            _ => usize::MAX,
        })
        .collect();
    let mut columns = vec![
        org_ids
            .take(&IdxCa::from_vec(
                "org".into(),
                (0..org_ids.len() as IdxSize)
                    .flat_map(|o| std::iter::repeat_n(o, weeks))
                    .collect(),
            ))?
            .into_column(),
        Int32Chunked::from_vec(
            "week_start".into(),
            (0..org_ids.len())
                .flat_map(|_| (0..weeks as i32).map(|k| first + 7 * k))
                .collect(),
        )
        .into_column()
        .cast(&DataType::Date)?,
    ];
    // Each counter's weekday sum per org and week, its rows added in file order. The
    // normalised usage table is one chunk, its counters without nulls.
    let usage = &inputs.usage;
    for c in &inputs.usage_counters_present {
        let mut sums = vec![0.0f64; org_ids.len() * weeks];
        let values = usage.column(c)?.f64()?.rechunk();
        for (&cell, &value) in cells.iter().zip(values.cont_slice()?) {
            if cell != usize::MAX {
                sums[cell] += value;
            }
        }
        columns.push(weekday_means(&format!("{c}_weekday_mean"), sums));
    }

    // Members with an event on each weekday, summed over the week: one rollup row is
    // one member on one day, so that is the week's weekday rows of the org.
    let mut active = EventAggregates::default();
    for k in 0..weeks {
        let start = first + 7 * k as i32;
        let week = Window {
            start_day: start,
            end_day: start + 7,
        };
        active.rows(&k.to_string(), RowFilter::days(week).weekdays_only());
    }
    let active = active.per_org(events)?;
    let mut member_days = vec![0.0f64; org_ids.len() * weeks];
    let active_orgs = active.column("org_id")?.str()?;
    for k in 0..weeks {
        let days = active.column(&k.to_string())?.cast(&DataType::Float64)?;
        for (org, n) in active_orgs.iter().zip(days.f64()?.iter()) {
            if let (Some(&o), Some(n)) = (org.and_then(|o| org_of.get(o)), n) {
                member_days[o * weeks + k] = n;
            }
        }
    }
    columns.push(weekday_means("active_members_weekday_mean", member_days));
    Ok(DataFrame::new_infer_height(columns)?.lazy())
}

/// A column of weekday means: each week's sum over its weekdays, divided by 5.
fn weekday_means(name: &str, sums: Vec<f64>) -> Column {
    let means = sums.into_iter().map(|s| s / WEEKDAYS).collect();
    Float64Chunked::from_vec(name.into(), means).into_column()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_full_week_ends_before_as_of() {
        // 2026-11-23 is a Monday: the latest full week is 11-16 .. 11-22.
        let monday = AsOf::parse("2026-11-23").unwrap();
        assert_eq!(
            latest_full_week_start(&monday),
            AsOf::parse("2026-11-16").unwrap().day
        );
        // A Wednesday: the current week is not full; still 11-16.
        let wednesday = AsOf::parse("2026-11-25").unwrap();
        assert_eq!(
            latest_full_week_start(&wednesday),
            AsOf::parse("2026-11-16").unwrap().day
        );
        // The next Monday: 11-23 .. 11-29.
        let next = AsOf::parse("2026-11-30").unwrap();
        assert_eq!(
            latest_full_week_start(&next),
            AsOf::parse("2026-11-23").unwrap().day
        );
    }
}
