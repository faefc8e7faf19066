use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use crate::util::*;

/// Every table file of `dir` (the published links, not the run and history folders)
/// with its bytes, to prove a failed run changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten().filter(|e| !e.path().is_dir()) {
            out.insert(
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            );
        }
    }
    out
}

/// A good run first, then the broken input: exit 2, a message with every `needles`,
/// and the earlier outputs byte for byte as they were.
fn assert_rejected(w: &Workdir, extra: &[&str], needles: &[&str]) {
    assert_rejected_env(w, extra, &[], needles);
}

/// `assert_rejected` with `env` variables set; gives stderr for further checks.
fn assert_rejected_env(
    w: &Workdir,
    extra: &[&str],
    env: &[(&str, &str)],
    needles: &[&str],
) -> String {
    let before = snapshot(&w.out());
    let o = w.try_run_env(extra, env);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        o.status.code(),
        Some(2),
        "exit code ({env:?} {extra:?}); stderr: {stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "stderr should mention {n:?}: {stderr}");
    }
    assert!(o.stdout.is_empty(), "stdout stays clean");
    assert_eq!(snapshot(&w.out()), before, "outputs untouched");
    stderr
}

/// A one-row frame with `column` (text) made null.
fn with_null(mut df: DataFrame, column: &str) -> DataFrame {
    df.replace(column, Column::new(column.into(), [None::<&str>]))
        .unwrap();
    df
}

fn good() -> Workdir {
    let w = Workdir::new();
    minimal(&w);
    w.run(&[]);
    assert!(w.out().join("health.parquet").exists());
    w
}

#[test]
fn missing_required_table() {
    let w = good();
    std::fs::remove_file(w.input().join("usage.parquet")).unwrap();
    assert_rejected(&w, &["--as-of", AS_OF], &["usage", "not found"]);
}

#[test]
fn missing_required_column() {
    let w = good();
    let m = members(&[("a", "a1", "owner", "2026-01-01", None)])
        .drop("role")
        .unwrap();
    w.write("members", &m);
    assert_rejected(
        &w,
        &["--as-of", AS_OF],
        &["members.parquet", "`role`", "missing"],
    );
}

#[test]
fn wrong_type_that_cannot_be_cast() {
    let w = good();
    let e = df!(
        "timestamp" => ["2026-11-01"],
        "event" => ["x"],
        "distinct_id" => ["a1"],
        "org_id" => ["a"],
    )
    .unwrap();
    w.write("events", &e);
    assert_rejected(
        &w,
        &["--as-of", AS_OF],
        &["events.parquet", "`timestamp`", "expected a timestamp"],
    );
}

#[test]
fn null_in_required_column() {
    let w = good();
    let m = members(&[("a", "a1", "owner", "2026-01-01", None)]);
    w.write("members", &with_null(m, "distinct_id"));
    assert_rejected(
        &w,
        &["--as-of", AS_OF],
        &["members.parquet", "`distinct_id`", "null"],
    );
}

#[test]
fn truncated_parquet_file() {
    let w = good();
    let path = w.input().join("events.parquet");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_rejected(&w, &["--as-of", AS_OF], &["events.parquet", "Parquet"]);
}

#[test]
fn not_a_parquet_file() {
    let w = good();
    std::fs::write(
        w.input().join("usage.parquet"),
        "org_id,date\na,2026-11-01\n",
    )
    .unwrap();
    assert_rejected(&w, &["--as-of", AS_OF], &["usage.parquet"]);
}

#[test]
fn unparseable_as_of() {
    let w = good();
    assert_rejected(
        &w,
        &["--as-of", "2026-02-30"],
        &["--as-of", "2026-02-30", "YYYY-MM-DD"],
    );
}

#[test]
fn bad_config() {
    let w = good();
    let cfg = w.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[metrics.active_user_pct]\nhealthy = \">= 10\"\npoor = \"< 30\"\n",
    )
    .unwrap();
    assert_rejected(
        &w,
        &["--as-of", AS_OF, "--config", cfg.to_str().unwrap()],
        &["bad.toml", "metrics.active_user_pct", "overlap"],
    );
    // A category no metric belongs to could never be scored: a typo, most likely.
    std::fs::write(&cfg, "[categories.nonsense]\nweight = 3.0\n").unwrap();
    assert_rejected(
        &w,
        &["--as-of", AS_OF, "--config", cfg.to_str().unwrap()],
        &["categories.nonsense", "no metric"],
    );
    std::fs::write(
        &cfg,
        "[metrics.active_user_pct]\ncategory = \"user_engagment\"\n",
    )
    .unwrap();
    assert_rejected(
        &w,
        &["--as-of", AS_OF, "--config", cfg.to_str().unwrap()],
        &["metrics.active_user_pct.category", "unknown category"],
    );
}

#[test]
fn unknown_format_is_a_usage_error() {
    let w = good();
    assert_rejected(
        &w,
        &["--as-of", AS_OF, "--format", "xlsx"],
        &["--format", "xlsx"],
    );
}

#[test]
fn validate_reports_the_same_errors_and_writes_nothing() {
    let w = Workdir::new();
    minimal(&w);
    let input = w.input();
    let o = w.cmd(&[
        "validate",
        "--input",
        input.to_str().unwrap(),
        "--as-of",
        AS_OF,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("events_of_unknown_members"), "{stdout}");
    assert!(!w.out().exists(), "validate writes nothing");
    std::fs::remove_file(w.input().join("members.parquet")).unwrap();
    let o = w.cmd(&["validate", "--input", input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("members"));
}

#[test]
fn suspicious_data_is_counted_not_fatal() {
    let w = Workdir::new();
    w.write(
        "members",
        &members(&[
            ("a", "a1", "owner", "2026-01-01", None),
            ("a", "a1", "owner", "2026-01-01", None),
        ]),
    );
    w.write(
        "events",
        &events(&[
            ("a", "a1", "x", "2026-11-22 10:00", None),
            ("a", "a1", "x", "2026-11-24 10:00", None),
            ("a", "ghost", "x", "2026-11-20 10:00", None),
        ]),
    );
    w.write(
        "usage",
        &usage(&[
            ("a", "2026-11-01", &[("event_count_in_period", -5)]),
            ("a", "2026-11-01", &[("event_count_in_period", 3)]),
        ]),
    );
    w.run(&[]);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.out().join("manifest.json")).unwrap())
            .unwrap();
    let dq = &m["data_quality"];
    assert_eq!(dq["events_at_or_after_as_of"], 1);
    assert_eq!(dq["events_of_unknown_members"], 1);
    assert_eq!(dq["duplicate_member_rows"], 1);
    assert_eq!(dq["negative_usage_values"], 1);
    assert_eq!(dq["duplicate_usage_rows"], 1);
    // The duplicate member row counts once: 1 active of 1 member.
    assert_eq!(w.score("a", "active_user_pct").0, Some(100.0));
}

#[test]
fn null_in_one_events_file_of_a_folder_names_that_file() {
    let w = good();
    std::fs::remove_file(w.input().join("events.parquet")).unwrap();
    let ok = events(&[("a", "a1", "x", "2026-11-01 10:00", None)]);
    let bad = with_null(
        events(&[("a", "a1", "x", "2026-11-02 10:00", None)]),
        "event",
    );
    write_parquet(&w.input().join("events/day=1/part-0.parquet"), &ok);
    write_parquet(&w.input().join("events/day=2/part-0.parquet"), &bad);
    assert_rejected(
        &w,
        &["--as-of", AS_OF],
        &["events/day=2/part-0.parquet", "`event`", "null"],
    );
}

#[test]
fn a_bad_table_is_named_before_a_null_the_events_pass_finds() {
    // The events pass runs while the other tables are read; a problem in a table
    // still comes first, as when the tables were all read before the pass.
    let w = good();
    let bad = with_null(
        events(&[("a", "a1", "x", "2026-11-02 10:00", None)]),
        "event",
    );
    w.write("events", &bad);
    let m = members(&[("a", "a1", "owner", "2026-01-01", None)]);
    w.write("members", &with_null(m, "distinct_id"));
    assert_rejected(
        &w,
        &["--as-of", AS_OF],
        &["members.parquet", "`distinct_id`", "null"],
    );
    std::fs::remove_file(w.input().join("usage.parquet")).unwrap();
    w.write(
        "members",
        &members(&[("a", "a1", "owner", "2026-01-01", None)]),
    );
    assert_rejected(&w, &["--as-of", AS_OF], &["usage", "not found"]);
}

#[test]
fn empty_events_folder_is_bad_input() {
    let w = good();
    std::fs::remove_file(w.input().join("events.parquet")).unwrap();
    std::fs::create_dir_all(w.input().join("events")).unwrap();
    std::fs::write(w.input().join("events/_SUCCESS"), "").unwrap();
    assert_rejected(&w, &["--as-of", AS_OF], &["events", "no .parquet files"]);
}

#[test]
fn out_that_is_a_file_is_a_usage_error() {
    let w = good();
    let file = w.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let input = w.input();
    let o = w.cmd(&[
        "run",
        "--input",
        input.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--out must be a folder"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn an_events_export_with_no_rows_needs_an_as_of() {
    let w = good();
    w.write("events", &events(&[]));
    // Without --as-of there is no latest event to take it from.
    assert_rejected(&w, &[], &["events"]);
    // With one (`run` gives AS_OF), the run goes on: members without events.
    w.run(&[]);
    let health = w.read("health");
    assert!(health.height() > 0);
    let seen = health.column("days_since_last_seen").unwrap();
    assert_eq!(
        seen.null_count(),
        health.height(),
        "no member was ever seen"
    );
}

/// An events file whose `timestamp` column holds `raw` in `unit` (one row of member a1).
fn events_at(raw: i64, unit: TimeUnit) -> DataFrame {
    DataFrame::new_infer_height(vec![
        Column::new("timestamp".into(), [raw])
            .cast(&DataType::Datetime(unit, None))
            .unwrap(),
        Column::new("event".into(), ["x"]),
        Column::new("distinct_id".into(), ["a1"]),
        Column::new("org_id".into(), ["a"]),
    ])
    .unwrap()
}

#[test]
fn a_timestamp_beyond_any_date_is_bad_input_naming_file_and_column() {
    // An i64::MAX sentinel (year 294247): no as_of can be derived from it, and with
    // --as-of it is still no instant a date can hold. Both readers of the pass.
    for reader in ["pages", "polars"] {
        let w = good();
        let events = w.input().join("events");
        write_parquet(
            &events.join("part-0.parquet"),
            &events_at(us("2026-11-01 10:00"), TimeUnit::Microseconds),
        );
        write_parquet(
            &events.join("part-1.parquet"),
            &events_at(i64::MAX, TimeUnit::Microseconds),
        );
        std::fs::remove_file(w.input().join("events.parquet")).unwrap();
        for extra in [&[][..], &["--as-of", AS_OF][..]] {
            let stderr = assert_rejected_env(
                &w,
                extra,
                &[("ACCOUNT_HEALTH_EVENTS_READER", reader)],
                &[
                    "part-1.parquet",
                    "`timestamp`",
                    "outside the supported range",
                ],
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

#[test]
fn milliseconds_too_large_for_microseconds_are_reported_not_wrapped() {
    // i64::MAX / 100 ms wraps round to a date in range if multiplied without a check.
    // Both readers of the pass: the page reader (`time::micros`) and polars' scan
    // (`input::instant_us`), the same rule in two forms.
    for reader in ["pages", "polars"] {
        let w = good();
        w.write("events", &events_at(i64::MAX / 100, TimeUnit::Milliseconds));
        assert_rejected_env(
            &w,
            &["--as-of", AS_OF],
            &[("ACCOUNT_HEALTH_EVENTS_READER", reader)],
            &[
                "events.parquet",
                "`timestamp`",
                "outside the supported range",
            ],
        );
    }
}
