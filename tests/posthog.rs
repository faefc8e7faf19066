//! PostHog's batch-export shape of the events (issue 21), on hand-built export files:
//! repeated uuids, late arrivals, escaped and reordered properties, rows without an
//! organization or with malformed properties, the split interval's manifest, the
//! export's file names and time-zone-aware timestamps; and a usage column renamed
//! through the config.

use polars::prelude::*;

use crate::util::*;

/// One exported row: (uuid, distinct_id, event, "YYYY-MM-DD HH:MM", properties JSON).
type Row<'a> = (&'a str, &'a str, &'a str, &'a str, Option<&'a str>);

/// An export file's columns (a few the job does not read included), timestamps with
/// the UTC zone set, as the export writes them.
fn export_file(rows: &[Row]) -> DataFrame {
    let utc = |name: &str, v: Vec<i64>| {
        Column::new(name.into(), v)
            .cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap()
    };
    let text = |name: &str, f: &dyn Fn(&Row) -> Option<String>| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    DataFrame::new_infer_height(vec![
        text("uuid", &|r| Some(r.0.to_string())),
        text("event", &|r| Some(r.2.to_string())),
        text("properties", &|r| r.4.map(str::to_string)),
        text("distinct_id", &|r| Some(r.1.to_string())),
        text("person_id", &|r| Some(format!("p-{}", r.1))),
        utc("timestamp", rows.iter().map(|r| us(r.3)).collect()),
        utc(
            "_inserted_at",
            rows.iter().map(|r| us(r.3) + 5_000_000).collect(),
        ),
        text("elements_chain", &|_| None),
    ])
    .unwrap()
}

const FIRST: &str = "2026-11-01T00:00:00+00:00-2026-11-18T00:00:00+00:00";
const SECOND: &str = "2026-11-18T00:00:00+00:00-2026-11-23T00:00:00+00:00";

/// Org a: members a1, a2. Two intervals, the second split in two with its manifest.
fn export_fixture(w: &Workdir) {
    w.write(
        "members",
        &members(&[
            ("a", "a1", "owner", "2026-01-01", None),
            ("a", "a2", "member", "2026-01-01", None),
        ]),
    );
    w.write(
        "usage",
        &usage(&[("a", "2026-11-01", &[("event_count_in_period", 10)])]),
    );
    let org = Some(r#"{"$groups":{"organization":"a"}}"#);
    let events = w.input().join("events");
    write_parquet(
        &events.join(format!("{FIRST}.parquet.zst")),
        &export_file(&[
            ("u1", "a1", "insight analyzed", "2026-11-10 10:00", org),
            // Reordered keys, escapes in keys and values, a look-alike key first.
            (
                "u2",
                "a2",
                "$pageview",
                "2026-11-17 12:00",
                Some(
                    r#"{"$groups_extra":{"organization":"z"},"$current_url":"https:\/\/posthog.com\/docs\/surveys?x=\"1\"","$title":"say \"hi\"","\u0024groups":{"project":"p","organization":"\u0061"}}"#,
                ),
            ),
            // No organization: skipped, counted.
            (
                "u3",
                "a1",
                "query failed",
                "2026-11-17 09:00",
                Some(r#"{"$lib":"web"}"#),
            ),
            // Not a JSON object: skipped, counted.
            (
                "u4",
                "a1",
                "query failed",
                "2026-11-17 09:30",
                Some(r#"{"$groups":{"organization":"a"}"#),
            ),
        ]),
    );
    write_parquet(
        &events.join(format!("{SECOND}-0.parquet.zst")),
        &export_file(&[
            // Exported again: counted once.
            ("u1", "a1", "insight analyzed", "2026-11-10 10:00", org),
            // A late arrival: its day is in the first interval.
            (
                "u5",
                "a2",
                "$pageview",
                "2026-11-17 09:00",
                Some(r#"{ "$current_url" : "/docs" , "$groups" : { "organization" : "a" } }"#),
            ),
            ("u6", "a1", "query completed", "2026-11-20 08:00", org),
        ]),
    );
    write_parquet(
        &events.join(format!("{SECOND}-1.parquet.zst")),
        &export_file(&[("u7", "a2", "insight analyzed", "2026-11-21 12:00", org)]),
    );
    std::fs::write(
        events.join(format!("{SECOND}_manifest.json")),
        format!(
            r#"{{"files": ["exports/events/{SECOND}-0.parquet.zst", "exports/events/{SECOND}-1.parquet.zst"]}}"#
        ),
    )
    .unwrap();
}

#[test]
fn export_files_are_read_deduplicated_with_skipped_rows_counted() {
    let w = Workdir::new();
    export_fixture(&w);
    w.run(&[]);
    // Members' events before as_of 2026-11-23: u1 once, u2, u5, u6, u7 (u3 and u4
    // skipped). Latest: u7 on 11-21 12:00, 1.5 days before as_of.
    assert_close(w.health_f64("a", "days_since_last_seen"), 1.5, "last seen");
    // Docs visits in [11-16, 11-23): u2 (/docs/surveys) and the late u5 (/docs).
    assert_eq!(w.score("a", "docs_visits_7d").0, Some(2.0));
    // Queries in the window: u6 completed; the skipped failures are not counted.
    assert_eq!(w.score("a", "query_failure_rate_7d").0, Some(0.0));
    // Per member, events in 30 days: a1 u1 and u6; a2 u2, u5 and u7.
    let users = w.read("users");
    assert_eq!(
        cell_f64(&users, "distinct_id", "a1", "events_30d"),
        Some(2.0)
    );
    assert_eq!(
        cell_f64(&users, "distinct_id", "a2", "events_30d"),
        Some(3.0)
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.out().join("manifest.json")).unwrap())
            .unwrap();
    let dq = &m["data_quality"];
    assert_eq!(dq["duplicate_event_uuids"], 1, "{dq}");
    assert_eq!(dq["events_without_org"], 1, "{dq}");
    assert_eq!(dq["events_unreadable_properties"], 1, "{dq}");
    // Every exported row was read.
    assert_eq!(m["inputs"][0]["rows"], 8);
    assert_eq!(m["inputs"][0]["files"], 3);
}

#[test]
fn validate_names_each_file_s_shape_and_what_it_skips() {
    let w = Workdir::new();
    export_fixture(&w);
    let input = w.input();
    let o = w.cmd(&[
        "validate",
        "--input",
        input.to_str().unwrap(),
        "--as-of",
        AS_OF,
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains(&format!("{FIRST}.parquet.zst: posthog")),
        "{stdout}"
    );
    assert!(stdout.contains("duplicate_event_uuids"), "{stdout}");
    assert!(stdout.contains("events_without_org"), "{stdout}");
}

#[test]
fn a_manifest_naming_a_missing_file_is_bad_input() {
    let w = Workdir::new();
    export_fixture(&w);
    let missing = format!("{SECOND}-1.parquet.zst");
    std::fs::remove_file(w.input().join("events").join(&missing)).unwrap();
    let o = w.try_run(&["--as-of", AS_OF]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&missing) && stderr.contains("_manifest.json"),
        "{stderr}"
    );
    assert!(stderr.contains("incomplete"), "{stderr}");
    assert!(!w.out().exists());
}

#[test]
fn a_usage_column_renamed_through_the_config() {
    let w = Workdir::new();
    export_fixture(&w);
    // PostHog's usage report names the organization `organization_id`.
    let u = usage(&[
        ("a", "2026-10-10", &[("event_count_in_period", 100)]),
        ("a", "2026-11-10", &[("event_count_in_period", 80)]),
    ]);
    let renamed = u
        .clone()
        .lazy()
        .rename(["org_id"], ["organization_id"], true)
        .collect()
        .unwrap();
    w.write("usage", &renamed);
    let o = w.try_run(&["--as-of", AS_OF]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("usage.parquet") && stderr.contains("`org_id`"),
        "{stderr}"
    );
    let cfg = w.path().join("names.toml");
    std::fs::write(
        &cfg,
        "[input.columns.usage]\norg_id = \"organization_id\"\n",
    )
    .unwrap();
    w.run(&["--config", cfg.to_str().unwrap()]);
    // Previous 30 days 100, last 30 days 80: 20% down.
    assert_eq!(w.score("a", "event_count_decrease_30d").0, Some(20.0));
    // A name the job does not read is a config error naming the key.
    std::fs::write(&cfg, "[input.columns.usage]\norg = \"organization_id\"\n").unwrap();
    let o = w.try_run(&["--as-of", AS_OF, "--config", cfg.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("input.columns.usage.org"), "{stderr}");
}

#[test]
fn an_export_file_without_a_uuid_column_is_bad_input() {
    // Without uuids nothing could be deduplicated: re-exported events would count twice.
    let w = Workdir::new();
    export_fixture(&w);
    let path = w
        .input()
        .join("events")
        .join(format!("{FIRST}.parquet.zst"));
    let without = read_parquet(&path).drop("uuid").unwrap();
    write_parquet(&path, &without);
    let o = w.try_run(&["--as-of", AS_OF]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(FIRST) && stderr.contains("`uuid`"),
        "{stderr}"
    );
}
