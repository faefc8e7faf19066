//! Time as the SPEC defines it (SPEC 1): a UTC `as_of` date, half-open windows
//! `[as_of - N days, as_of)`, and "days since" in fractional days.
//!
//! Inside the job every instant is an i64 count of microseconds since the Unix epoch
//! (UTC) and every date an i32 count of days since the epoch, so windows are plain
//! integer comparisons and nothing depends on time-zone or calendar code at run time.

use chrono::NaiveDate;

use crate::error::InputError;

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A half-open interval of days relative to `as_of`: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First day (days since epoch), inclusive.
    pub start_day: i32,
    /// Day after the last one, exclusive.
    pub end_day: i32,
}

impl Window {
    /// Whether a day is in the window and, with `weekdays_only`, a weekday: the one
    /// test of both (SPEC 1, 8) that every windowed sum and count uses.
    #[inline]
    pub fn holds_day(&self, day: i32, weekdays_only: bool) -> bool {
        day >= self.start_day && day < self.end_day && (!weekdays_only || is_weekday(day))
    }

    /// The part of the window before `day` (as_of: nothing at or after it counts).
    pub fn before(self, day: i32) -> Window {
        Window {
            start_day: self.start_day,
            end_day: self.end_day.min(day),
        }
    }

    pub fn start_us(&self) -> i64 {
        self.start_day as i64 * MICROS_PER_DAY
    }
    pub fn end_us(&self) -> i64 {
        self.end_day as i64 * MICROS_PER_DAY
    }
}

/// The instant the run describes: `as_of` 00:00:00 UTC, exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    pub date: NaiveDate,
    /// Days since the Unix epoch.
    pub day: i32,
}

impl AsOf {
    pub fn from_date(date: NaiveDate) -> AsOf {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        AsOf {
            date,
            day: (date - epoch).num_days() as i32,
        }
    }

    pub fn from_day(day: i32) -> AsOf {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        AsOf::from_date(epoch + chrono::Duration::days(day as i64))
    }

    /// Parses `--as-of YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<AsOf, InputError> {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(AsOf::from_date)
            .map_err(|_| InputError::BadAsOf {
                value: s.to_string(),
            })
    }

    /// The default as_of: the day after the latest event timestamp (SPEC 1).
    pub fn day_after(latest_us: i64) -> AsOf {
        AsOf::from_day(latest_us.div_euclid(MICROS_PER_DAY) as i32 + 1)
    }

    pub fn us(&self) -> i64 {
        self.day as i64 * MICROS_PER_DAY
    }

    /// "last N days": `[as_of - N days, as_of)`.
    pub fn last_n_days(&self, n: u32) -> Window {
        self.shifted_window(n, 0)
    }

    /// "previous N days": `[as_of - 2N days, as_of - N days)`.
    pub fn previous_n_days(&self, n: u32) -> Window {
        self.shifted_window(n, n)
    }

    /// N days ending `back` days before as_of.
    pub fn shifted_window(&self, n: u32, back: u32) -> Window {
        let end_day = self.day - back as i32;
        Window {
            start_day: end_day - n as i32,
            end_day,
        }
    }

    /// `as_of - n days` as an instant.
    pub fn minus_days_us(&self, n: u32) -> i64 {
        (self.day - n as i32) as i64 * MICROS_PER_DAY
    }

    pub fn iso(&self) -> String {
        self.date.format("%Y-%m-%d").to_string()
    }
}

/// An instant stored in `unit` as microseconds since the epoch: the one rule for every
/// timestamp the job reads (`input::instant_us` is its expression form). Nanoseconds
/// are floored; milliseconds beyond what microseconds hold saturate, so they land
/// outside `instant_in_range` and are reported, never wrapped round to another date.
pub fn micros(raw: i64, unit: polars::prelude::TimeUnit) -> i64 {
    use polars::prelude::TimeUnit;
    match unit {
        TimeUnit::Microseconds => raw,
        TimeUnit::Milliseconds => raw.saturating_mul(1000),
        TimeUnit::Nanoseconds => raw.div_euclid(1000),
    }
}

/// Whether an instant's day, and the day after it (a default as_of), are dates chrono
/// can hold (years -262143 to 262142).
pub fn instant_in_range(us: i64) -> bool {
    day_in_range(us.div_euclid(MICROS_PER_DAY))
}

/// Whether a day count since the epoch is one a date can hold, its next day too
/// (`instant_in_range`).
pub fn day_in_range(day: i64) -> bool {
    // Worked out once: rollup files check each run of rows of one day.
    static DAYS: std::sync::LazyLock<(i64, i64)> = std::sync::LazyLock::new(|| {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        (
            (NaiveDate::MIN - epoch).num_days(),
            (NaiveDate::MAX - epoch).num_days(),
        )
    });
    let (first, last) = *DAYS;
    day >= first && day < last
}

/// Monday = 0 ... Sunday = 6, for a day count since the epoch (1970-01-01 was a Thursday).
pub fn weekday_of_day(day: i32) -> i32 {
    (day + 3).rem_euclid(7)
}

/// Monday to Friday (SPEC 1).
#[inline]
pub fn is_weekday(day: i32) -> bool {
    weekday_of_day(day) < 5
}

/// The ISO date of a day count, for messages.
pub fn iso_of_day(day: i32) -> String {
    AsOf::from_day(day).iso()
}

/// How rows lie by day: cut into runs of non-decreasing days, so that a window's rows
/// in a run are one stretch of it, found by binary search, and the rest of the run is
/// never read. The rollup of a time-ordered export is a run per member partition (each
/// partition's rows are in the order first seen); a usage export sorted by org and
/// date is a run per org. Rows in no useful order (more runs than a caller's
/// `max_runs`) are one unsorted run, read whole.
#[derive(Clone)]
pub struct DayRuns {
    runs: Vec<std::ops::Range<usize>>,
    sorted: bool,
}

impl DayRuns {
    pub fn of(day: &[i32], max_runs: usize) -> DayRuns {
        let mut runs = Vec::new();
        let mut start = 0;
        for i in 1..day.len() {
            if day[i] < day[i - 1] {
                runs.push(start..i);
                start = i;
                if runs.len() >= max_runs {
                    return DayRuns {
                        runs: std::iter::once(0..day.len()).collect(),
                        sorted: false,
                    };
                }
            }
        }
        if !day.is_empty() {
            runs.push(start..day.len());
        }
        DayRuns { runs, sorted: true }
    }

    /// Whether the runs are in day order (else there is one run of every row).
    pub fn is_sorted(&self) -> bool {
        self.sorted
    }

    pub fn len(&self) -> usize {
        self.runs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The stretches of rows that can hold a day in `start..end`, in row order (every
    /// row of an unsorted run; the caller still checks each row's day).
    pub fn spans(&self, day: &[i32], start: i32, end: i32) -> Vec<std::ops::Range<usize>> {
        if !self.sorted {
            return self.runs.clone();
        }
        self.runs
            .iter()
            .map(|run| {
                let days = &day[run.clone()];
                let first = days.partition_point(|&d| d < start);
                let last = days.partition_point(|&d| d < end).max(first);
                run.start + first..run.start + last
            })
            .filter(|span| !span.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_half_open_and_relative_to_as_of() {
        let a = AsOf::parse("2026-11-23").unwrap();
        let w = a.last_n_days(30);
        assert_eq!(w.end_day, a.day);
        assert_eq!(w.start_day, a.day - 30);
        let p = a.previous_n_days(30);
        assert_eq!((p.start_day, p.end_day), (a.day - 60, a.day - 30));
        assert_eq!(w.end_us() - w.start_us(), 30 * MICROS_PER_DAY);
    }

    #[test]
    fn default_as_of_is_the_day_after_the_latest_event() {
        let a = AsOf::parse("2026-11-23").unwrap();
        assert_eq!(AsOf::day_after(a.us() - 1), a);
        assert_eq!(AsOf::day_after(a.us()).day, a.day + 1);
    }

    #[test]
    fn weekdays_match_the_calendar() {
        // 2026-11-23 is a Monday.
        let a = AsOf::parse("2026-11-23").unwrap();
        assert_eq!(weekday_of_day(a.day), 0);
        assert_eq!(weekday_of_day(a.day - 1), 6);
        assert_eq!(weekday_of_day(0), 3); // 1970-01-01, a Thursday
    }

    #[test]
    fn bad_as_of_is_rejected() {
        assert!(matches!(
            AsOf::parse("2026-13-01"),
            Err(InputError::BadAsOf { .. })
        ));
        assert!(matches!(
            AsOf::parse("yesterday"),
            Err(InputError::BadAsOf { .. })
        ));
    }

    #[test]
    fn day_runs_are_cut_where_the_day_goes_back() {
        let days = [3, 5, 5, 2, 4, 1, 1, 9];
        let runs = DayRuns::of(&days, 3);
        assert!(runs.is_sorted());
        assert_eq!(runs.runs, vec![0..3, 3..5, 5..8]);
        // Days 4 and 5: rows 1-2 of the first run, row 4 of the second, none of the
        // third (its days jump from 1 to 9).
        assert_eq!(runs.spans(&days, 4, 6), vec![1..3, 4..5]);
        // A window before every day, and an empty one.
        assert!(runs.spans(&days, -5, 1).is_empty());
        assert!(runs.spans(&days, 5, 5).is_empty());
        assert!(DayRuns::of(&[], 1).is_empty());
        // One run more than allowed: the rows are one unsorted run, read whole.
        let runs = DayRuns::of(&days, 2);
        assert!(!runs.is_sorted());
        let whole: Vec<std::ops::Range<usize>> = std::iter::once(0..days.len()).collect();
        assert_eq!(runs.runs, whole);
        assert_eq!(runs.spans(&days, 4, 6), whole);
    }
}
