//! The `ingestion` table coded once for the deployment figures (`deployment`) of any
//! number of as_of dates: each row's (org_id, lib, lib_version) and event as
//! numbers, so a date's window is summed by one loop over the rows instead of a
//! filter and a group-by over their strings (`backfill` scores 53 dates from one
//! read; the group-by was 8% of its time). Built beside the events pass.

use polars::prelude::*;

use crate::numbering::numbered_strings;
use crate::time::Window;

pub struct IngestionRows {
    /// Each row's day, in file order (`UNDATED` without a date).
    day: Vec<i32>,
    /// Each row's group: the number of its (org_id, lib, lib_version).
    group: Vec<u32>,
    /// Each row's event number.
    event: Vec<u32>,
    /// Each row's count (0 where null).
    count: Vec<f64>,
    /// org_id, lib and lib_version of each group number, in order of first row.
    groups: DataFrame,
    /// Each event number's name (none for a null event, in no set).
    events: Vec<Option<String>>,
}

/// The day of a row without a date: before every window.
const UNDATED: i32 = i32::MIN;

impl IngestionRows {
    /// Codes the normalised `ingestion` table (`org_id`, `date`, `event`, `lib`,
    /// `lib_version`, `count`).
    pub fn new(ingestion: &DataFrame) -> PolarsResult<IngestionRows> {
        let day = ingestion.column("date")?.cast(&DataType::Int32)?;
        let day: Vec<i32> = day.i32()?.iter().map(|d| d.unwrap_or(UNDATED)).collect();
        let count: Vec<f64> = ingestion
            .column("count")?
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .map(|c| c.unwrap_or(0.0))
            .collect();
        let (org, lib, version) = (
            ingestion.column("org_id")?.str()?,
            ingestion.column("lib")?.str()?,
            ingestion.column("lib_version")?.str()?,
        );
        let (group, first_rows) = numbered_strings([org, lib, version]);
        let event_names = ingestion.column("event")?.str()?;
        let (event, first_events) = numbered_strings([event_names]);
        let events = first_events
            .iter()
            .map(|&row| event_names.get(row as usize).map(String::from))
            .collect();
        let first_rows = IdxCa::from_vec("".into(), first_rows);
        let groups = ingestion
            .select(["org_id", "lib", "lib_version"])?
            .take(&first_rows)?;
        Ok(IngestionRows {
            day,
            group,
            event,
            count,
            groups,
            events,
        })
    }

    /// One row per group with a row dated in `days`, in group order: `org_id`,
    /// `lib`, `lib_version`, `total_alias` (the sum of its rows' counts) and, per `sets`
    /// entry (alias, event names), the sum of the counts of its rows whose event is
    /// one of them. Each sum adds its rows in file order.
    pub fn sums(
        &self,
        days: Window,
        total_alias: &str,
        sets: &[(String, Vec<String>)],
    ) -> PolarsResult<DataFrame> {
        let n = self.groups.height();
        // Per set, whether each event number is in it.
        let in_set: Vec<Vec<bool>> = sets
            .iter()
            .map(|(_, names)| {
                self.events
                    .iter()
                    .map(|e| e.as_ref().is_some_and(|e| names.contains(e)))
                    .collect()
            })
            .collect();
        let mut seen = vec![false; n];
        let mut totals = vec![0.0f64; n];
        let mut set_sums = vec![vec![0.0f64; n]; sets.len()];
        for (i, &day) in self.day.iter().enumerate() {
            if !days.holds_day(day, false) {
                continue;
            }
            let g = self.group[i] as usize;
            seen[g] = true;
            totals[g] += self.count[i];
            for (sums, in_set) in set_sums.iter_mut().zip(&in_set) {
                if in_set[self.event[i] as usize] {
                    sums[g] += self.count[i];
                }
            }
        }
        let kept: Vec<IdxSize> = (0..n as IdxSize).filter(|&g| seen[g as usize]).collect();
        let pick =
            |values: &[f64]| -> Vec<f64> { kept.iter().map(|&g| values[g as usize]).collect() };
        let (totals, set_sums): (Vec<f64>, Vec<Vec<f64>>) =
            (pick(&totals), set_sums.iter().map(|s| pick(s)).collect());
        let mut frame = self.groups.take(&IdxCa::from_vec("".into(), kept))?;
        frame.with_column(Column::new(total_alias.into(), totals))?;
        for ((alias, _), sums) in sets.iter().zip(set_sums) {
            frame.with_column(Column::new(alias.as_str().into(), sums))?;
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Days 10..; the window is days 11 and 12.
    fn ingestion() -> DataFrame {
        df!(
            "org_id" => ["a", "a", "b", "a", "a", "b", "a"],
            "date" => [10i32, 11, 11, 12, 12, 13, 11],
            "event" => ["$pageview", "$identify", "$pageview", "$identify", "$pageview", "$identify", "$pageview"],
            "lib" => [Some("web"), Some("web"), Some("web"), None, Some("web"), Some("ios"), Some("web")],
            "lib_version" => [Some("1.0"), Some("1.0"), Some("2.0"), None, Some("1.1"), Some("3.0"), Some("1.0")],
            "count" => [Some(1.0), Some(2.0), Some(4.0), Some(8.0), None, Some(32.0), Some(64.0)],
        )
        .unwrap()
        .lazy()
        .with_column(col("date").cast(DataType::Date))
        .collect()
        .unwrap()
    }

    /// A text column, nulls as `None`.
    fn strs(f: &DataFrame, c: &str) -> Vec<Option<String>> {
        let texts = f.column(c).unwrap().str().unwrap();
        texts.iter().map(|s| s.map(String::from)).collect()
    }

    /// A float column without nulls.
    fn nums(f: &DataFrame, c: &str) -> Vec<f64> {
        let values = f.column(c).unwrap().f64().unwrap();
        values.into_no_null_iter().collect()
    }

    fn some(texts: &[&str]) -> Vec<Option<String>> {
        texts.iter().map(|s| Some(s.to_string())).collect()
    }

    #[test]
    fn sums_each_group_with_rows_in_the_window_in_order_of_first_row() {
        let rows = IngestionRows::new(&ingestion()).unwrap();
        let sets = [("identify".to_string(), vec!["$identify".to_string()])];
        let f = rows
            .sums(
                Window {
                    start_day: 11,
                    end_day: 13,
                },
                "n",
                &sets,
            )
            .unwrap();
        // Groups by first row: (a, web, 1.0) rows 0, 1, 6; (b, web, 2.0) row 2;
        // (a, null, null) row 3; (a, web, 1.1) row 4; (b, ios, 3.0) row 5 (day 13:
        // out). Row 0 (day 10) is out too. (a, web, 1.1)'s count is null: 0, but
        // the group has a row in the window, so it is listed.
        assert_eq!(strs(&f, "org_id"), some(&["a", "b", "a", "a"]));
        assert_eq!(
            strs(&f, "lib"),
            vec![
                Some("web".into()),
                Some("web".into()),
                None,
                Some("web".into())
            ]
        );
        assert_eq!(
            strs(&f, "lib_version"),
            vec![
                Some("1.0".into()),
                Some("2.0".into()),
                None,
                Some("1.1".into())
            ]
        );
        // (a, web, 1.0): 2 + 64; identify 2. (b, web, 2.0): 4, none.
        // (a, null, null): 8, identify 8. (a, web, 1.1): 0.
        assert_eq!(nums(&f, "n"), vec![66.0, 4.0, 8.0, 0.0]);
        assert_eq!(nums(&f, "identify"), vec![2.0, 0.0, 8.0, 0.0]);
    }

    #[test]
    fn a_window_without_rows_gives_no_group_and_the_columns_typed() {
        let rows = IngestionRows::new(&ingestion()).unwrap();
        let sets = [("identify".to_string(), vec!["$identify".to_string()])];
        let f = rows
            .sums(
                Window {
                    start_day: 0,
                    end_day: 10,
                },
                "n",
                &sets,
            )
            .unwrap();
        assert_eq!(f.height(), 0);
        assert_eq!(f.column("org_id").unwrap().dtype(), &DataType::String);
        assert_eq!(f.column("n").unwrap().dtype(), &DataType::Float64);
        assert_eq!(f.column("identify").unwrap().dtype(), &DataType::Float64);
    }

    #[test]
    fn sets_may_share_events_and_a_group_out_of_the_window_is_left_out_wherever_it_is() {
        // z's only row (day 5) is before the window 11..13, and z is group 0.
        let ingestion = df!(
            "org_id" => ["z", "a", "a", "b"],
            "date" => [5i32, 11, 12, 11],
            "event" => ["$identify", "$identify", "$pageview", "$groupidentify"],
            "lib" => ["web", "web", "web", "web"],
            "lib_version" => ["1", "1", "1", "1"],
            "count" => [100.0, 1.0, 2.0, 4.0],
        )
        .unwrap()
        .lazy()
        .with_column(col("date").cast(DataType::Date))
        .collect()
        .unwrap();
        let rows = IngestionRows::new(&ingestion).unwrap();
        let window = Window {
            start_day: 11,
            end_day: 13,
        };
        let sets = [
            (
                "s1".to_string(),
                vec!["$identify".into(), "$pageview".into()],
            ),
            (
                "s2".to_string(),
                vec!["$identify".into(), "$groupidentify".into()],
            ),
        ];
        let f = rows.sums(window, "n", &sets).unwrap();
        assert_eq!(strs(&f, "org_id"), some(&["a", "b"]));
        // a: 1 + 2, both in s1, the identify in s2; b: 4, in s2 only.
        assert_eq!(nums(&f, "n"), [3.0, 4.0]);
        assert_eq!(nums(&f, "s1"), [3.0, 0.0]);
        assert_eq!(nums(&f, "s2"), [1.0, 4.0]);
        // No sets: the groups and their totals only.
        let f = rows.sums(window, "n", &[]).unwrap();
        assert_eq!(f.get_column_names(), ["org_id", "lib", "lib_version", "n"]);
        // No rows at all.
        let empty = IngestionRows::new(&ingestion.head(Some(0))).unwrap();
        assert_eq!(empty.sums(window, "n", &sets).unwrap().height(), 0);
    }
}
