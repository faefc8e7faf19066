//! The incomplete-feed check (issue 22): if the event export or the usage report
//! silently stops, every account looks as if it collapsed, and a nightly job would
//! publish thousands of volume-drop indicators. Before publishing, each of the last
//! `run.feed_check_days` days before as_of is compared, all orgs together, with the
//! median of the same weekday over the 4 weeks before it; events and usage rows each.
//! A day below `run.min_ratio` of its median stops the run (exit 3) unless
//! `--allow-incomplete` is given.
//!
//! Rules (docs/RULES.md): a week counts towards the median only from the first day
//! the source has any row (a feed that began 2 weeks ago is judged on those 2 weeks);
//! a day with no such week, or whose median is below `run.feed_check_min_rows` (at a
//! few rows a day a ratio is noise), is not judged (`ratio` null). The median of an
//! even number of weeks is the mean of the middle two.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::time::{iso_of_day, AsOf};

/// Weeks of the same weekday the median is taken over.
pub const WEEKS: i32 = 4;

/// One source's one day, against its baseline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeedDay {
    /// `events` or `usage`.
    pub source: &'static str,
    pub date: String,
    /// Rows of that day (events after the uuid dedupe; usage rows).
    pub rows: u64,
    /// The median of the same weekday over the weeks before (null without weeks).
    pub median: Option<f64>,
    /// Weeks the median was taken over.
    pub weeks: usize,
    /// `rows / median`; null when not judged (no week, or a median of 0 or below
    /// the minimum rows).
    pub ratio: Option<f64>,
}

impl FeedDay {
    fn below(&self, min_ratio: f64) -> bool {
        self.ratio.is_some_and(|r| r < min_ratio)
    }
}

/// The check's figures, for the manifest and the message.
#[derive(Debug, Clone, Serialize)]
pub struct FeedCheck {
    pub min_ratio: f64,
    pub days: Vec<FeedDay>,
    /// Some day is below `min_ratio`.
    pub incomplete: bool,
    /// Published anyway (`--allow-incomplete`).
    pub allowed: bool,
}

impl FeedCheck {
    /// The days below `min_ratio`, one sentence each.
    pub fn describe(&self) -> String {
        self.days
            .iter()
            .filter(|d| d.below(self.min_ratio))
            .map(|d| {
                format!(
                    "{} {}: {} rows, {:.0}% of the median {} of the same weekday over the {} week(s) before",
                    d.source,
                    d.date,
                    d.rows,
                    100.0 * d.ratio.unwrap_or_default(),
                    d.median.unwrap_or_default(),
                    d.weeks
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Checks the last `days` days before `as_of` of each source (`(name, rows per
/// day)`, days since the epoch).
pub fn check(
    sources: &[(&'static str, &BTreeMap<i32, u64>)],
    as_of: &AsOf,
    days: u32,
    min_ratio: f64,
    min_rows: u64,
) -> FeedCheck {
    let mut checked = Vec::new();
    for &(source, per_day) in sources {
        let first = per_day.iter().find(|(_, &n)| n > 0).map(|(&d, _)| d);
        for back in (1..=days as i32).rev() {
            let day = as_of.day - back;
            let rows = per_day.get(&day).copied().unwrap_or(0);
            let mut before: Vec<u64> = (1..=WEEKS)
                .map(|k| day - 7 * k)
                .filter(|&d| first.is_some_and(|f| d >= f))
                .map(|d| per_day.get(&d).copied().unwrap_or(0))
                .collect();
            before.sort_unstable();
            let median = median(&before);
            let judged = median.filter(|&m| m > 0.0 && m >= min_rows as f64);
            checked.push(FeedDay {
                source,
                date: iso_of_day(day),
                rows,
                median,
                weeks: before.len(),
                ratio: judged.map(|m| rows as f64 / m),
            });
        }
    }
    let incomplete = checked.iter().any(|d| d.below(min_ratio));
    FeedCheck {
        min_ratio,
        days: checked,
        incomplete,
        allowed: false,
    }
}

/// The median of sorted values; `None` when there are none.
fn median(sorted: &[u64]) -> Option<f64> {
    crate::stats::median(&sorted.iter().map(|&n| n as f64).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> i32 {
        AsOf::parse(s).unwrap().day
    }

    /// 100 rows a day from 2026-10-01 on, with `changes` instead on some days.
    fn feed(changes: &[(&str, u64)]) -> BTreeMap<i32, u64> {
        let mut m: BTreeMap<i32, u64> = (day("2026-10-01")..day("2026-11-23"))
            .map(|d| (d, 100))
            .collect();
        for (d, n) in changes {
            m.insert(day(d), *n);
        }
        m
    }

    #[test]
    fn a_day_just_below_min_ratio_of_its_weekday_median_is_incomplete() {
        let as_of = AsOf::parse("2026-11-23").unwrap();
        // Sunday 11-22 against Sundays 11-15, 11-08, 11-01, 10-25: 100, 100, 60, 200
        // sorted 60 100 100 200: median (100 + 100) / 2 = 100. 49 rows: 0.49 < 0.5.
        let events = feed(&[("2026-11-22", 49), ("2026-11-01", 60), ("2026-10-25", 200)]);
        let c = check(&[("events", &events)], &as_of, 2, 0.5, 10);
        assert_eq!(c.days.len(), 2);
        assert_eq!(c.days[0].date, "2026-11-21");
        assert_eq!(c.days[1].median, Some(100.0));
        assert_eq!(c.days[1].weeks, 4);
        assert_eq!(c.days[1].ratio, Some(0.49));
        assert!(c.incomplete);
        assert!(
            c.describe()
                .contains("events 2026-11-22: 49 rows, 49% of the median 100"),
            "{}",
            c.describe()
        );
        // 50 rows: exactly half is not below.
        let events = feed(&[("2026-11-22", 50), ("2026-11-01", 60), ("2026-10-25", 200)]);
        assert!(!check(&[("events", &events)], &as_of, 2, 0.5, 10).incomplete);
        // Saturday 11-21 is the other day checked; three days back is not.
        let events = feed(&[("2026-11-21", 10)]);
        assert!(check(&[("events", &events)], &as_of, 2, 0.5, 10).incomplete);
        let events = feed(&[("2026-11-20", 10)]);
        assert!(!check(&[("events", &events)], &as_of, 2, 0.5, 10).incomplete);
    }

    #[test]
    fn each_source_is_judged_alone_and_only_on_weeks_it_has() {
        let as_of = AsOf::parse("2026-11-23").unwrap();
        let events = feed(&[]);
        // Usage began on 11-08: Sunday 11-22's weeks are 11-15 and 11-08 only
        // (80 and 120: median 100); a missing day counts 0 rows.
        let mut usage: BTreeMap<i32, u64> = (day("2026-11-08")..day("2026-11-22"))
            .map(|d| (d, 100))
            .collect();
        usage.insert(day("2026-11-15"), 80);
        usage.insert(day("2026-11-08"), 120);
        let c = check(
            &[("events", &events), ("usage", &usage)],
            &as_of,
            2,
            0.5,
            10,
        );
        let sunday = c
            .days
            .iter()
            .find(|d| d.source == "usage" && d.date == "2026-11-22")
            .unwrap();
        assert_eq!(
            (sunday.rows, sunday.weeks, sunday.median),
            (0, 2, Some(100.0))
        );
        assert!(c.incomplete);
        assert!(c.describe().starts_with("usage 2026-11-22: 0 rows"));
        // A day with no week before the feed began is not judged.
        let young: BTreeMap<i32, u64> = [(day("2026-11-20"), 5)].into_iter().collect();
        let c = check(&[("usage", &young)], &as_of, 2, 0.5, 10);
        assert!(c.days.iter().all(|d| d.ratio.is_none() && d.weeks == 0));
        assert!(!c.incomplete);
        // Nor one whose median is below the minimum rows: 9 is, 10 is not.
        let mut small: BTreeMap<i32, u64> = (day("2026-10-01")..day("2026-11-22"))
            .map(|d| (d, 9))
            .collect();
        assert!(!check(&[("usage", &small)], &as_of, 2, 0.5, 10).incomplete);
        small.iter_mut().for_each(|(_, n)| *n = 10);
        small.remove(&day("2026-11-21"));
        let c = check(&[("usage", &small)], &as_of, 2, 0.5, 10);
        assert!(c.incomplete);
        assert_eq!(c.days.iter().filter(|d| d.ratio == Some(0.0)).count(), 2);
    }
}
