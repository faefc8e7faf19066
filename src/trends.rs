//! The `trends` table (SPEC 8): one row per org and full ISO week before as_of, with
//! weekday-only means of each usage counter and of daily active members, so weekend
//! dips never read as declines.

use polars::prelude::*;

use crate::input::Inputs;
use crate::member_aggregates::{EventAggregates, MemberEvents, RowFilter};
use crate::metrics::{div_exact, is_weekday_day, scored_orgs};
use crate::model::Model;
use crate::time::{weekday_of_day, AsOf, Window};

/// Weekdays in a week, the divisor of every weekday mean.
const WEEKDAYS: f64 = 5.0;

/// The Monday (day count) of the latest full Monday-to-Sunday week ending before as_of.
pub fn latest_full_week_start(as_of: &AsOf) -> i32 {
    as_of.day - weekday_of_day(as_of.day) - 7
}

fn week_start(day: Expr) -> Expr {
    // Monday of the day's week: day - weekday (1970-01-01 was a Thursday).
    day.clone() - ((day + lit(3 + 7 * 100_000)) % lit(7))
}

pub fn compute(
    events: &MemberEvents,
    inputs: &Inputs,
    model: &Model,
    as_of: &AsOf,
) -> PolarsResult<LazyFrame> {
    let weeks = model.trends.weeks as i32;
    let last = latest_full_week_start(as_of);
    let first = last - 7 * (weeks - 1);
    let end = last + 7;
    let starts: Vec<i32> = (0..weeks).map(|k| first + 7 * k).collect();
    let grid = scored_orgs(inputs)
        .with_column(lit(1).alias("_k"))
        .join(
            df!("week_start" => &starts)?
                .lazy()
                .with_column(lit(1).alias("_k")),
            [col("_k")],
            [col("_k")],
            JoinArgs::new(JoinType::Inner),
        )
        .drop(cols(["_k"]));

    let in_range = |c: &str| {
        col(c)
            .gt_eq(lit(first))
            .and(col(c).lt(lit(end)))
            .and(is_weekday_day(c))
    };
    let counters = &inputs.usage_counters_present;
    let usage = inputs
        .usage
        .clone()
        .lazy()
        .filter(in_range("date"))
        .with_column(week_start(col("date")).alias("week_start"))
        .group_by([col("org_id"), col("week_start")])
        .agg(
            counters
                .iter()
                .map(|c| {
                    div_exact(col(c.as_str()).sum(), WEEKDAYS).alias(format!("{c}_weekday_mean"))
                })
                .collect::<Vec<_>>(),
        );
    // Members with an event on each weekday, summed over the week: one rollup row is
    // one member on one day, so that is the week's weekday rows of the org.
    let mut active = EventAggregates::default();
    for (k, &start) in starts.iter().enumerate() {
        let week = Window {
            start_day: start,
            end_day: start + 7,
        };
        active.rows(&k.to_string(), RowFilter::days(week).weekdays_only());
    }
    let active = active.per_org(events)?;
    let weeks_of_active: Vec<LazyFrame> = starts
        .iter()
        .enumerate()
        .map(|(k, &start)| {
            active.clone().lazy().select([
                col("org_id"),
                lit(start).alias("week_start"),
                div_exact(col(k.to_string()), WEEKDAYS).alias("active_members_weekday_mean"),
            ])
        })
        .collect();
    let active = concat(weeks_of_active, UnionArgs::default())?;

    let keys = [col("org_id"), col("week_start")];
    let mut select = vec![col("org_id"), col("week_start").cast(DataType::Date)];
    select.extend(counters.iter().map(|c| {
        let name = format!("{c}_weekday_mean");
        col(name.as_str()).fill_null(lit(0.0)).alias(name)
    }));
    select.push(col("active_members_weekday_mean").fill_null(lit(0.0)));
    Ok(grid
        .join(
            usage,
            keys.clone(),
            keys.clone(),
            JoinArgs::new(JoinType::Left),
        )
        .join(active, keys.clone(), keys, JoinArgs::new(JoinType::Left))
        .select(select)
        .sort(["org_id", "week_start"], Default::default()))
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
