use polars::prelude::*;

use crate::util::*;

fn with_unit(df: &DataFrame, column: &str, dtype: DataType) -> DataFrame {
    let mut df = df.clone();
    let c = df.column(column).unwrap().cast(&dtype).unwrap();
    df.replace(column, c).unwrap();
    df
}

#[test]
fn folders_hive_partitions_units_zones_and_dictionary_strings() {
    let w = Workdir::new();
    w.write(
        "members",
        &members(&[
            ("a", "a1", "owner", "2026-01-01", None),
            ("a", "a2", "member", "2026-01-01", None),
        ]),
    );
    // Events split over hive folders, in three time units, one file with a UTC zone and
    // categorical (dictionary-encoded) strings, plus files that are not data.
    let e1 = events(&[("a", "a1", "insight analyzed", "2026-11-21 12:00", None)]);
    let e1 = with_unit(
        &e1,
        "timestamp",
        DataType::Datetime(TimeUnit::Nanoseconds, None),
    );
    let e2 = events(&[("a", "a2", "insight analyzed", "2026-11-10 12:00", None)]);
    let e2 = with_unit(
        &e2,
        "timestamp",
        DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
    );
    let e2 = with_unit(
        &e2,
        "event",
        DataType::from_categories(Categories::global()),
    );
    let e2 = with_unit(
        &e2,
        "org_id",
        DataType::from_categories(Categories::global()),
    );
    write_parquet(
        &w.input().join("events/date=2026-11-21/part-0.parquet"),
        &e1,
    );
    write_parquet(
        &w.input().join("events/date=2026-11-10/part-0.parquet"),
        &e2,
    );
    std::fs::write(w.input().join("events/_SUCCESS"), "").unwrap();
    std::fs::write(w.input().join("events/README.md"), "export notes").unwrap();
    // Usage: one folder, small integers, an extra column that is ignored.
    let mut u = usage(&[("a", "2026-11-01", &[("event_count_in_period", 7)])]);
    u = with_unit(&u, "event_count_in_period", DataType::Int16);
    u.with_column(Column::new("note".into(), ["x"])).unwrap();
    write_parquet(&w.input().join("usage/part-0.parquet"), &u);
    w.run(&[]);
    // Latest member event: 2026-11-21 12:00 -> 1.5 days; both members active.
    assert_eq!(w.score("a", "days_since_last_seen").0, Some(1.5));
    assert_eq!(w.score("a", "active_user_pct").0, Some(100.0));
    assert_eq!(w.score("a", "insight_analyzers_pct").0, Some(100.0));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.out().join("manifest.json")).unwrap())
            .unwrap();
    let events = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "events")
        .unwrap();
    assert_eq!(events["files"], 2);
    assert_eq!(events["rows"], 2);
}

#[test]
fn default_as_of_is_the_day_after_the_latest_event() {
    let w = Workdir::new();
    minimal(&w);
    w.write(
        "events",
        &events(&[
            ("a", "a1", "x", "2026-11-20 23:59", None),
            ("a", "a1", "x", "2026-11-01 10:00", None),
        ]),
    );
    let out = w.try_run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("as_of 2026-11-21"));
    // as_of 2026-11-21 00:00: the latest event was 1 minute before.
    let d = w.score("a", "days_since_last_seen").0.unwrap();
    assert!((d - 1.0 / 1440.0).abs() < 1e-9, "{d}");
}

#[test]
fn csv_is_rfc4180_with_empty_nulls_and_iso_dates() {
    let w = Workdir::new();
    crate::metrics::rich_fixture(&w);
    w.run(&[]);
    let csv = std::fs::read_to_string(w.out().join("health.csv")).unwrap();
    let mut lines = csv.split("\r\n");
    let header = lines.next().unwrap();
    assert!(header.starts_with("org_id,name,csm,as_of,health_score,health_label,previous_health_score,health_score_change,"));
    let c = lines.find(|l| l.starts_with("c,")).unwrap();
    assert!(c.starts_with("c,Gamma,cleo,2026-11-23,"), "{c}");
    // c has no members: active_user_pct is an empty cell.
    let cols: Vec<&str> = header.split(',').collect();
    let idx = cols.iter().position(|h| *h == "active_user_pct").unwrap();
    assert_eq!(c.split(',').nth(idx), Some(""));
}

#[test]
fn dates_stored_as_midnight_timestamps_are_dates_and_times_of_day_are_rejected() {
    let w = Workdir::new();
    minimal(&w);
    // usage.date as a millisecond timestamp at midnight: read as the date.
    let u = usage(&[
        ("a", "2026-10-10", &[("event_count_in_period", 100)]),
        ("a", "2026-11-10", &[("event_count_in_period", 80)]),
    ]);
    let as_ts = with_unit(&u, "date", DataType::Datetime(TimeUnit::Milliseconds, None));
    w.write("usage", &as_ts);
    w.run(&[]);
    // previous 30 days 100, last 30 days 80: a 20% decrease.
    assert_eq!(w.score("a", "event_count_decrease_30d").0, Some(20.0));
    // A time of day would be lost: bad input, naming file and column.
    let mut noon = as_ts.clone();
    let shifted = (noon
        .column("date")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        + 43_200_000)
        .into_series()
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
    noon.replace("date", shifted.into()).unwrap();
    w.write("usage", &noon);
    let out = w.try_run(&["--as-of", AS_OF]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("usage.parquet") && err.contains("`date`") && err.contains("time of day"),
        "{err}"
    );
}

#[test]
fn a_narrower_format_removes_the_other_format_s_stale_tables() {
    let w = Workdir::new();
    minimal(&w);
    w.run(&[]);
    assert!(w.out().join("health.parquet").exists() && w.out().join("health.csv").exists());
    w.run(&["--format", "csv"]);
    assert!(w.out().join("health.csv").exists());
    assert!(
        !w.out().join("health.parquet").exists(),
        "no stale Parquet from the earlier run"
    );
    assert!(w.out().join("manifest.json").exists());
}
