//! Windowed sums of the usage counters per org (SPEC 4, 5, 8): the metrics and
//! indicators ask for ~60 of them (each product's counter over the adoption, count
//! and indicator windows, the 30-day decreases, the weekday-only volumes). As polars
//! aggregations with a filter inside each one, they re-filtered every usage row per
//! sum (0.6 s at 20,000 orgs); here each org's rows are found once and every sum is
//! one loop over the counter's column, the sums in parallel.

use polars::prelude::*;
use rayon::prelude::*;

use crate::numbering::numbered_strings;
use crate::time::{DayRuns, Window};

struct UsageSum {
    alias: String,
    counter: String,
    days: Window,
    weekdays_only: bool,
}

/// The sums a stage asks for, computed together by `per_org`.
#[derive(Default)]
pub struct UsageSums {
    sums: Vec<UsageSum>,
}

impl UsageSums {
    /// The sum of `counter` over the usage rows dated in `days` (Monday to Friday
    /// only, with `weekdays_only`).
    pub fn add(&mut self, alias: &str, counter: &str, days: Window, weekdays_only: bool) {
        self.sums.push(UsageSum {
            alias: alias.into(),
            counter: counter.into(),
            days,
            weekdays_only,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }

    /// One row per org with a usage row dated before `as_of_day`, in order of its
    /// first such row: `org_id` and each sum (Float64) under its alias; 0 where none
    /// of the org's rows is in the window. `usage` is the normalised usage table
    /// (`org_id`, `date` as i32 days, f64 counters without nulls) and `rows` its
    /// orgs and day runs (`UsageRows`). Each sum adds its rows in file order, so the
    /// threads change nothing. Where the rows are in runs of dates (`DayRuns`: an
    /// export sorted by org and date is a run per org), a sum reads only its
    /// window's stretch of each run, still in file order.
    pub fn per_org(
        &self,
        usage: &DataFrame,
        rows: &UsageRows,
        as_of_day: i32,
    ) -> PolarsResult<DataFrame> {
        let date = rows.date.cont_slice()?;
        // The orgs counted at as_of, in order of their first row before it. The rows
        // at or after as_of are skipped where they are read, not filtered out first
        // (a copy of every column per as_of, which backfill pays per date).
        let mut first_row = vec![usize::MAX; rows.org_ids.len()];
        for (i, &org) in rows.org_of_row.iter().enumerate() {
            let first = &mut first_row[org as usize];
            if *first == usize::MAX && date[i] < as_of_day {
                *first = i;
            }
        }
        let mut counted: Vec<u32> = (0..rows.org_ids.len() as u32)
            .filter(|&g| first_row[g as usize] != usize::MAX)
            .collect();
        counted.sort_unstable_by_key(|&g| first_row[g as usize]);
        // The sums grouped by window (the part before as_of), each group made in one
        // read of the window's stretches (a binary search per run and sum was a
        // third of this step; a read per sum, most of the rest).
        let mut groups: Vec<(Window, Vec<usize>)> = Vec::new();
        for (k, s) in self.sums.iter().enumerate() {
            let window = s.days.before(as_of_day);
            match groups.iter_mut().find(|(w, _)| *w == window) {
                Some((_, sums)) => sums.push(k),
                None => groups.push((window, vec![k])),
            }
        }
        let counters: Vec<Float64Chunked> = self
            .sums
            .iter()
            .map(|s| Ok(usage.column(&s.counter)?.f64()?.rechunk().into_owned()))
            .collect::<PolarsResult<_>>()?;
        let per_window: Vec<Vec<(usize, Vec<f64>)>> = groups
            .into_par_iter()
            .map(|(window, in_window)| {
                let values = in_window
                    .iter()
                    .map(|&k| counters[k].cont_slice())
                    .collect::<PolarsResult<Vec<&[f64]>>>()?;
                let weekdays: Vec<bool> = in_window
                    .iter()
                    .map(|&k| self.sums[k].weekdays_only)
                    .collect();
                let mut sums = vec![vec![0.0f64; rows.org_ids.len()]; in_window.len()];
                // The sums share the window; only weekdays_only tells them apart.
                for span in rows.runs.spans(date, window.start_day, window.end_day) {
                    for i in span {
                        let (day, org) = (date[i], rows.org_of_row[i] as usize);
                        if !window.holds_day(day, false) {
                            continue;
                        }
                        let weekday = window.holds_day(day, true);
                        for ((sum, values), &weekdays_only) in
                            sums.iter_mut().zip(&values).zip(&weekdays)
                        {
                            if weekday || !weekdays_only {
                                sum[org] += values[i];
                            }
                        }
                    }
                }
                Ok(in_window.into_iter().zip(sums).collect())
            })
            .collect::<PolarsResult<_>>()?;
        let mut by_sum: Vec<Option<Vec<f64>>> = vec![None; self.sums.len()];
        for (k, sums) in per_window.into_iter().flatten() {
            by_sum[k] = Some(sums);
        }
        let org_ids: Vec<&str> = counted
            .iter()
            .map(|&g| rows.org_ids[g as usize].as_str())
            .collect();
        let mut all = vec![Column::new("org_id".into(), org_ids)];
        for (s, sums) in self.sums.iter().zip(by_sum) {
            let sums = sums.expect("every sum's window is read");
            let values: Vec<f64> = counted.iter().map(|&g| sums[g as usize]).collect();
            all.push(Column::new(s.alias.as_str().into(), values));
        }
        DataFrame::new_infer_height(all)
    }
}

/// The usage table's orgs numbered once (in order of first row) and its day runs,
/// for the sums of any number of as_of dates (backfill scores 53 from one read; the
/// numbering, a hash per row, was redone per date). Built beside the events pass.
pub struct UsageRows {
    /// The `date` column, one chunk.
    date: Int32Chunked,
    org_of_row: Vec<u32>,
    /// Each org number's org_id.
    org_ids: Vec<String>,
    runs: DayRuns,
}

impl UsageRows {
    /// From the normalised usage table (`org_id`, `date` as i32 days).
    pub fn new(usage: &DataFrame) -> PolarsResult<UsageRows> {
        let date = usage.column("date")?.i32()?.rechunk().into_owned();
        let runs = DayRuns::of(date.cont_slice()?, (date.len() / MIN_RUN_ROWS).max(1));
        let orgs = usage.column("org_id")?.str()?;
        // `org_id` is a required column: the reader rejects nulls, so no null shares
        // the number of an empty org_id below.
        let (org_of_row, first_rows) = numbered_strings([orgs]);
        let org_ids = first_rows
            .iter()
            .map(|&row| orgs.get(row as usize).unwrap_or_default().to_string())
            .collect();
        Ok(UsageRows {
            date,
            org_of_row,
            org_ids,
            runs,
        })
    }

    /// Each row's org number (an index into `org_ids`).
    pub fn org_of_row(&self) -> &[u32] {
        &self.org_of_row
    }

    /// Each org number's `org_id`.
    pub fn org_ids(&self) -> &[String] {
        &self.org_ids
    }

    /// Each row's date (days since the epoch).
    pub fn dates(&self) -> PolarsResult<&[i32]> {
        self.date.cont_slice()
    }
}

/// Rows per day run, on average, below which the usage rows are read whole (a
/// binary search per run and sum would cost more than the rows it skips).
const MIN_RUN_ROWS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    /// Days 0.. from Thursday 1970-01-01; the window is days 1-4 (Fri, Sat, Sun, Mon).
    fn usage() -> DataFrame {
        df!(
            "org_id" => ["b", "a", "b", "a", "b", "b", "a"],
            "date" => [1i32, 2, 3, 4, 5, 0, 9],
            "c" => [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
        )
        .unwrap()
    }

    /// The orgs and their sum `x` of `c` over the window.
    fn sums(weekdays_only: bool, as_of_day: i32) -> (Vec<String>, Vec<f64>) {
        let mut s = UsageSums::default();
        s.add(
            "x",
            "c",
            Window {
                start_day: 1,
                end_day: 5,
            },
            weekdays_only,
        );
        let usage = usage();
        let rows = UsageRows::new(&usage).unwrap();
        let f = s.per_org(&usage, &rows, as_of_day).unwrap();
        (orgs(&f), column(&f, "x"))
    }

    /// The org_id column's texts.
    fn orgs(f: &DataFrame) -> Vec<String> {
        let orgs = f.column("org_id").unwrap().str().unwrap();
        orgs.iter().flatten().map(String::from).collect()
    }

    /// A sum's column.
    fn column(f: &DataFrame, c: &str) -> Vec<f64> {
        f.column(c)
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    }

    #[test]
    fn sums_the_rows_in_the_window_per_org_in_order_of_first_row() {
        // b: days 1 and 3 (1 + 4); day 5 is the window's end, day 0 before it.
        // a: days 2 and 4 (2 + 8).
        assert_eq!(
            sums(false, 10),
            (vec!["b".into(), "a".into()], vec![5.0, 10.0])
        );
    }

    #[test]
    fn weekdays_only_skips_saturday_and_sunday() {
        // Day 2 is a Saturday, day 3 a Sunday: b keeps day 1 (Friday), a day 4 (Monday).
        assert_eq!(
            sums(true, 10),
            (vec!["b".into(), "a".into()], vec![1.0, 8.0])
        );
    }

    #[test]
    fn rows_at_or_after_as_of_are_not_read_and_an_org_without_rows_before_is_absent() {
        // as_of day 3: a's rows before it are day 2 only; b's are days 0 and 1.
        assert_eq!(
            sums(false, 3),
            (vec!["b".into(), "a".into()], vec![1.0, 2.0])
        );
        // as_of day 1: only b has a row (day 0) before it, none in the window: 0.
        assert_eq!(sums(false, 1), (vec!["b".into()], vec![0.0]));
    }

    #[test]
    fn rows_sorted_by_org_and_date_sum_as_row_by_row() {
        // Two orgs of twelve days each (0 .. 11), sorted by org then date: two runs.
        let days: Vec<i32> = (0..24).map(|i| i % 12).collect();
        assert!(DayRuns::of(&days, days.len() / MIN_RUN_ROWS).is_sorted());
        let usage = df!(
            "org_id" => (0..24).map(|i| if i < 12 { "a" } else { "b" }).collect::<Vec<_>>(),
            "date" => &days,
            "c" => (0..24).map(|i| if i < 12 { 1.0 } else { 10.0 }).collect::<Vec<_>>(),
        )
        .unwrap();
        let mut s = UsageSums::default();
        let window = Window {
            start_day: 1,
            end_day: 5,
        };
        s.add("x", "c", window, false);
        s.add("weekdays", "c", window, true);
        // Past as_of (day 10): cut there.
        s.add(
            "late",
            "c",
            Window {
                start_day: 8,
                end_day: 20,
            },
            false,
        );
        let f = s
            .per_org(&usage, &UsageRows::new(&usage).unwrap(), 10)
            .unwrap();
        // Days 1-4 (Fri, Sat, Sun, Mon); Friday and Monday; days 8 and 9.
        assert_eq!(column(&f, "x"), vec![4.0, 40.0]);
        assert_eq!(column(&f, "weekdays"), vec![2.0, 20.0]);
        assert_eq!(column(&f, "late"), vec![2.0, 20.0]);
    }

    #[test]
    fn orgs_in_order_of_first_row_before_as_of_and_shared_windows_on_unsorted_rows() {
        // Days from Thursday 1970-01-01: 0 Thu, 1 Fri, 2 Sat, 3 Sun, 9 Sat. Rows in no
        // day order (one unsorted run). a's first row (day 9) is after as_of (day 5),
        // so b (row 1) comes before a (row 2).
        let usage = df!(
            "org_id" => ["a", "b", "a", "b", "a"],
            "date" => [9i32, 1, 2, 3, 0],
            "c" => [1.0, 2.0, 4.0, 8.0, 16.0],
        )
        .unwrap();
        let rows = UsageRows::new(&usage).unwrap();
        assert!(!rows.runs.is_sorted());
        let mut s = UsageSums::default();
        let all = Window {
            start_day: 0,
            end_day: 5,
        };
        s.add("x", "c", all, false);
        s.add("weekdays", "c", all, true);
        // Wholly at or after as_of: nothing counts.
        s.add(
            "late",
            "c",
            Window {
                start_day: 6,
                end_day: 10,
            },
            false,
        );
        let f = s.per_org(&usage, &rows, 5).unwrap();
        assert_eq!(orgs(&f), ["b", "a"]);
        // b: days 1 and 3 (2 + 8); a: days 2 and 0 (4 + 16); day 9 is after as_of.
        assert_eq!(column(&f, "x"), [10.0, 20.0]);
        // Weekdays: b's Friday (2), a's Thursday (16).
        assert_eq!(column(&f, "weekdays"), [2.0, 16.0]);
        assert_eq!(column(&f, "late"), [0.0, 0.0]);
    }
}
