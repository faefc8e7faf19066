use polars::prelude::{df, DataFrame, DataType, IntoLazy};

use crate::util::*;

/// Inputs where nothing fires by accident: each org has one member who was active
/// yesterday and analyzed an insight, and steady usage.
fn base(w: &Workdir, orgs: &[&str]) {
    w.write("members", &one_member_each(orgs));
    let ids: Vec<String> = orgs.iter().map(|o| format!("{o}1")).collect();
    let rows: Vec<(&str, &str, &str, &str, Option<&str>)> = orgs
        .iter()
        .zip(&ids)
        .map(|(o, id)| {
            (
                *o,
                id.as_str(),
                "insight analyzed",
                "2026-11-22 12:00",
                None,
            )
        })
        .collect();
    w.write("events", &events(&rows));
    w.write(
        "usage",
        &usage(&[("zz", "2026-11-01", &[("event_count_in_period", 1)])]),
    );
}

fn fires_only(w: &Workdir, indicator: &str, want: &[&str]) {
    assert_eq!(
        fired_for(w, indicator),
        want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "{indicator}"
    );
}

#[test]
fn forecasted_mrr_change_beyond_ten_percent() {
    let w = Workdir::new();
    base(&w, &["d1", "d2", "g1", "g2", "z"]);
    w.write(
        "accounts",
        &accounts_full(&[
            ("d1", 100.0, 89.0, "paid", "2027-06-01"),  // -11%: fires
            ("d2", 100.0, 90.0, "paid", "2027-06-01"),  // -10%: not below -10
            ("g1", 100.0, 111.0, "paid", "2027-06-01"), // +11%: fires
            ("g2", 100.0, 110.0, "paid", "2027-06-01"), // +10%: not above 10
            ("z", 0.0, 50.0, "paid", "2027-06-01"),     // mrr 0: no change defined
        ]),
    );
    w.run(&[]);
    fires_only(&w, "forecasted_mrr_decrease", &["d1"]);
    fires_only(&w, "forecasted_mrr_growth", &["g1"]);
    let f = fired(&w);
    let d1 = f.iter().find(|x| x.0 == "d1").unwrap();
    assert!((d1.3.unwrap() + 11.0).abs() < 1e-9);
    assert_eq!(
        message(&w, "d1", "forecasted_mrr_decrease"),
        "Forecasted MRR 89.0 is 11.0% below current MRR 100.0 (threshold -10.0%)."
    );
}

#[test]
fn billing_page_visits_more_than_one_in_7_days() {
    let w = Workdir::new();
    base(&w, &["a", "b"]);
    let mut rows = vec![
        ("a", "a1", "insight analyzed", "2026-11-22 12:00", None),
        ("b", "b1", "insight analyzed", "2026-11-22 12:00", None),
        // a: two visits in the window (one at its very start): fires.
        ("a", "a1", "billing v2 shown", "2026-11-16 00:00", None),
        (
            "a",
            "a1",
            "$pageview",
            "2026-11-20 10:00",
            Some("https://us.posthog.com/organization/billing/overview?x=1"),
        ),
        // b: one in the window, one just before it: does not fire.
        ("b", "b1", "billing v2 shown", "2026-11-20 10:00", None),
        ("b", "b1", "billing v2 shown", "2026-11-15 23:59", None),
        (
            "b",
            "stranger",
            "billing v2 shown",
            "2026-11-20 10:00",
            None,
        ),
    ];
    rows.push((
        "b",
        "b1",
        "$pageview",
        "2026-11-20 10:00",
        Some("https://us.posthog.com/project/1/billing"),
    ));
    w.write("events", &events(&rows));
    w.run(&[]);
    fires_only(&w, "billing_page_visits", &["a"]);
    assert_eq!(
        message(&w, "a", "billing_page_visits"),
        "2 billing page visits by members in the last 7 days (threshold: more than 1.0)."
    );
}

#[test]
fn query_failure_rate_above_ten_percent() {
    let w = Workdir::new();
    base(&w, &["a", "b"]);
    let mut rows = Vec::new();
    // a: 11 failed of 100 (11%): fires. b: 10 of 100 (10%): does not.
    for (org, id, failed) in [("a", "a1", 11), ("b", "b1", 10)] {
        for i in 0..100 {
            let event = if i < failed {
                "query failed"
            } else {
                "query completed"
            };
            rows.push((org, id, event, "2026-11-20 10:00", None));
        }
    }
    w.write("events", &events(&rows));
    w.run(&[]);
    fires_only(&w, "query_failure_rate_high", &["a"]);
    assert_eq!(
        message(&w, "a", "query_failure_rate_high"),
        "Query failure rate 11.0% over the last 7 days (threshold 10.0%): 11 of 100 queries failed."
    );
}

#[test]
fn event_volume_drop_counts_weekdays_only() {
    let w = Workdir::new();
    base(&w, &["a", "b", "c", "d"]);
    // Previous 7 days: Mon 11-09 .. Sun 11-15; last 7: Mon 11-16 .. Sun 11-22.
    let prev_weekdays = [
        "2026-11-09",
        "2026-11-10",
        "2026-11-11",
        "2026-11-12",
        "2026-11-13",
    ];
    let prev_weekend = ["2026-11-14", "2026-11-15"];
    let cur_weekdays = [
        "2026-11-16",
        "2026-11-17",
        "2026-11-18",
        "2026-11-19",
        "2026-11-20",
    ];
    let cur_weekend = ["2026-11-21", "2026-11-22"];
    let mut rows: Vec<(String, String, i64)> = Vec::new();
    let mut add = |org: &str, days: &[&str], v: i64| {
        for d in days {
            rows.push((org.to_string(), d.to_string(), v));
        }
    };
    // a: weekdays 500 -> 399: 20.2% drop, fires. b: 500 -> 400: exactly 20%, does not.
    add("a", &prev_weekdays, 100);
    add("a", &cur_weekdays[..4], 80);
    add("a", &cur_weekdays[4..], 79);
    add("b", &prev_weekdays, 100);
    add("b", &cur_weekdays, 80);
    // c: a weekend spike in the previous week, weekdays flat: no alarm.
    add("c", &prev_weekdays, 100);
    add("c", &prev_weekend, 1000);
    add("c", &cur_weekdays, 100);
    add("c", &cur_weekend, 100);
    // d: a weekday drop of the same size as c's all-days drop: fires.
    add("d", &prev_weekdays, 500);
    add("d", &cur_weekdays, 140);
    type OwnedRow<'a> = (&'a str, &'a str, Vec<(&'a str, i64)>);
    let table: Vec<OwnedRow> = rows
        .iter()
        .map(|(o, d, v)| (o.as_str(), d.as_str(), vec![("event_count_in_period", *v)]))
        .collect();
    let refs: Vec<UsageRow> = table
        .iter()
        .map(|(o, d, c)| (*o, *d, c.as_slice()))
        .collect();
    w.write("usage", &usage(&refs));
    w.run(&[]);
    fires_only(&w, "event_volume_drop", &["a", "d"]);
    // c: all days 2500 -> 700 (72%) for reference; weekdays 500 -> 500 (0%).
    assert_close(
        w.health_f64("c", "event_volume_drop_7d"),
        72.0,
        "c all days",
    );
    assert_close(
        w.health_f64("c", "weekday_event_volume_drop_7d"),
        0.0,
        "c weekdays",
    );
    assert_close(
        w.health_f64("d", "weekday_event_volume_drop_7d"),
        72.0,
        "d weekdays",
    );
    assert_close(
        w.health_f64("b", "weekday_event_volume_drop_7d"),
        20.0,
        "b weekdays",
    );
    assert_eq!(
        message(&w, "d", "event_volume_drop"),
        "Weekday event volume fell 72.0% in the last 7 days (700 vs 2500 on the 5 weekdays before; threshold 20.0%)."
    );
}

#[test]
fn no_insights_analyzed_for_more_than_7_days() {
    let w = Workdir::new();
    w.write("members", &one_member_each(&["a", "b", "c"]));
    w.write(
        "events",
        &events(&[
            ("a", "a1", "insight analyzed", "2026-11-15 23:00", None), // 7.04 days: fires
            ("b", "b1", "insight analyzed", "2026-11-16 00:00", None), // exactly 7: does not
            ("c", "c1", "insight viewed", "2026-11-01 00:00", None),   // never analyzed: does not
            ("a", "a1", "insight viewed", "2026-11-22 00:00", None),
        ]),
    );
    w.write(
        "usage",
        &usage(&[("zz", "2026-11-01", &[("event_count_in_period", 1)])]),
    );
    w.run(&[]);
    fires_only(&w, "no_insights_analyzed", &["a"]);
}

#[test]
fn payment_failed_reads_each_orgs_latest_payment_whatever_the_file_order() {
    // Three orgs' rows interleaved and out of time order. On a tie in time the
    // succeeded payment is the latest, wherever it stands in the file.
    let w = Workdir::new();
    base(&w, &["a", "b", "c"]);
    w.write(
        "payments",
        &payments(&[
            ("a", "2026-11-20 00:00", "succeeded"),
            ("b", "2026-11-20 00:00", "failed"), // b's latest: fires
            ("c", "2026-11-21 00:00", "failed"), // c's latest: fires
            ("a", "2026-11-20 00:00", "failed"), // a tie with a's success: does not
            ("b", "2026-11-01 00:00", "succeeded"),
            ("c", "2026-11-01 00:00", "succeeded"),
            ("a", "2026-11-01 00:00", "failed"),
        ]),
    );
    w.run(&[]);
    fires_only(&w, "payment_failed", &["b", "c"]);
    assert_eq!(
        message(&w, "c", "payment_failed"),
        "The latest payment failed 2.0 days ago; nothing has succeeded since."
    );
}

#[test]
fn payment_failed_when_the_latest_payment_failed_in_30_days() {
    let w = Workdir::new();
    base(&w, &["a", "b", "c", "d"]);
    w.write(
        "payments",
        &payments(&[
            ("a", "2026-10-20 00:00", "succeeded"),
            ("a", "2026-11-20 00:00", "failed"), // latest, failed: fires
            ("b", "2026-11-10 00:00", "failed"),
            ("b", "2026-11-15 00:00", "succeeded"), // retried and paid: does not
            ("c", "2026-10-23 23:00", "failed"),    // 30.04 days ago: too old
            ("d", "2026-10-24 00:00", "failed"),    // exactly 30 days: in the window, fires
            ("d", "2026-11-23 00:00", "succeeded"), // at as_of: not before it
        ]),
    );
    w.run(&[]);
    fires_only(&w, "payment_failed", &["a", "d"]);
    let f = fired(&w);
    let d = f
        .iter()
        .find(|x| x.0 == "d" && x.1 == "payment_failed")
        .unwrap();
    assert_eq!(d.3, Some(30.0), "value: the failed payment's age in days");
    assert_eq!(
        message(&w, "a", "payment_failed"),
        "The latest payment failed 3.0 days ago; nothing has succeeded since."
    );
}

#[test]
fn startup_credit_running_out() {
    let w = Workdir::new();
    base(&w, &["a", "b", "c"]);
    w.write(
        "accounts",
        &accounts_full(&[
            ("a", 0.0, 50.0, "startup", "2027-06-01"), // fires
            ("b", 0.0, 0.0, "startup", "2027-06-01"),  // no forecasted MRR
            ("c", 0.0, 50.0, "paid", "2027-06-01"),    // not on the startup plan
        ]),
    );
    w.run(&[]);
    fires_only(&w, "startup_credit_running_out", &["a"]);
}

#[test]
fn owner_removed_and_added_in_14_days() {
    let w = Workdir::new();
    base(&w, &["a", "b", "c", "d", "e", "f"]);
    w.write(
        "role_changes",
        &role_changes(&[
            ("a", "a1", "2026-11-09 00:00", Some("owner"), Some("admin")), // exactly 14 days: removed
            ("b", "b1", "2026-11-08 23:00", Some("owner"), Some("admin")), // too old
            ("c", "c1", "2026-11-20 00:00", Some("member"), Some("owner")), // added
            ("d", "d1", "2026-11-20 00:00", Some("owner"), Some("owner")), // no change
            ("e", "e1", "2026-11-20 00:00", Some("owner"), None),          // left the org: removed
            ("f", "f1", "2026-11-20 00:00", None, Some("owner")),          // joined as owner: added
        ]),
    );
    w.run(&[]);
    fires_only(&w, "owner_removed", &["a", "e"]);
    fires_only(&w, "owner_added", &["c", "f"]);
    assert_eq!(
        message(&w, "a", "owner_removed"),
        "Owner role removed from a1 in the last 14 days (1 change(s)): a champion may be gone."
    );
}

#[test]
fn inactive_org_has_members_and_no_events_in_14_days() {
    let w = Workdir::new();
    w.write(
        "members",
        &members(&[
            ("a", "a1", "owner", "2026-01-01", None),
            ("b", "b1", "owner", "2026-01-01", None),
            ("c", "c1", "owner", "2026-01-01", Some("2026-11-01")),
        ]),
    );
    w.write(
        "events",
        &events(&[
            ("a", "a1", "insight analyzed", "2026-11-08 23:00", None), // before the window: fires
            ("b", "b1", "insight analyzed", "2026-11-09 00:00", None), // at its start: does not
            ("c", "c1", "insight analyzed", "2026-11-01 00:00", None), // no members now: does not
        ]),
    );
    w.write(
        "usage",
        &usage(&[("zz", "2026-11-01", &[("event_count_in_period", 1)])]),
    );
    w.run(&[]);
    fires_only(&w, "inactive_org", &["a"]);
}

#[test]
fn lost_insights_many_started_few_saved() {
    let w = Workdir::new();
    base(&w, &["a", "b", "c"]);
    let mut rows = Vec::new();
    // a: 20 started, 1 saved (5%): fires. b: 19 started, 0 saved: too few started.
    // c: 20 started, 2 saved (10%): not below 10%.
    for (org, id, started, saved) in [("a", "a1", 20, 1), ("b", "b1", 19, 0), ("c", "c1", 20, 2)] {
        for _ in 0..started {
            rows.push((org, id, "insight created", "2026-11-18 10:00", None));
        }
        for _ in 0..saved {
            rows.push((org, id, "insight saved", "2026-11-18 11:00", None));
        }
        rows.push((org, id, "insight analyzed", "2026-11-22 12:00", None));
    }
    w.write("events", &events(&rows));
    w.run(&[]);
    fires_only(&w, "lost_insights", &["a"]);
    assert_eq!(
        message(&w, "a", "lost_insights"),
        "Only 1 of 20 insights started in the last 7 days were saved (5.0%, threshold 10.0%)."
    );
}

#[test]
fn renewal_upcoming_earlier_for_quiet_accounts() {
    let w = Workdir::new();
    let orgs = ["a", "b", "c", "d", "e", "f", "g", "h"];
    w.write("members", &one_member_each(&orgs));
    w.write(
        "events",
        &events(&[
            ("a", "a1", "x", "2026-11-22 00:00", None),
            ("b", "b1", "x", "2026-11-22 00:00", None),
            ("c", "c1", "x", "2026-11-15 00:00", None), // 8 days: quiet
            ("d", "d1", "x", "2026-11-15 00:00", None),
            ("e", "e1", "x", "2026-11-22 00:00", None),
            ("f", "f1", "x", "2026-11-22 00:00", None),
            ("g", "g1", "x", "2026-11-16 00:00", None), // exactly 7 days: not quiet
        ]),
    );
    w.write(
        "usage",
        &usage(&[("zz", "2026-11-01", &[("event_count_in_period", 1)])]),
    );
    // as_of 2026-11-23; +60 days = 2027-01-22, +90 = 2027-02-21.
    w.write(
        "accounts",
        &accounts_full(&[
            ("a", 1.0, 1.0, "paid", "2027-01-22"), // 60 days, active: fires
            ("b", 1.0, 1.0, "paid", "2027-01-23"), // 61 days, active: does not
            ("c", 1.0, 1.0, "paid", "2027-02-21"), // 90 days, quiet: fires
            ("d", 1.0, 1.0, "paid", "2027-02-22"), // 91 days, quiet: does not
            ("e", 1.0, 1.0, "paid", "2026-11-22"), // already past: does not
            ("f", 1.0, 1.0, "paid", "2026-11-23"), // today: fires
            ("g", 1.0, 1.0, "paid", "2027-02-06"), // 75 days, last seen exactly 7 days ago: does not
            ("h", 1.0, 1.0, "paid", "2027-02-06"), // 75 days, never seen: fires
        ]),
    );
    w.run(&[]);
    fires_only(&w, "renewal_upcoming", &["a", "c", "f", "h"]);
    // The threshold column holds the limit that applied: 90 days for quiet accounts.
    let ind = w
        .read("indicators")
        .lazy()
        .filter(polars::prelude::col("indicator").eq(polars::prelude::lit("renewal_upcoming")))
        .collect()
        .unwrap();
    let thresholds: Vec<Option<f64>> = ind
        .column("threshold")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    let values: Vec<Option<f64>> = ind.column("value").unwrap().f64().unwrap().iter().collect();
    assert_eq!(
        thresholds,
        vec![Some(60.0), Some(90.0), Some(60.0), Some(90.0)]
    );
    assert_eq!(values, vec![Some(60.0), Some(90.0), Some(0.0), Some(75.0)]);
    assert_eq!(
        message(&w, "h", "renewal_upcoming"),
        "Renewal on 2027-02-06 in 75 days; no member activity seen yet."
    );
}

#[test]
fn new_product_adoption_per_product() {
    let w = Workdir::new();
    base(&w, &["a", "b", "c"]);
    w.write(
        "events",
        &events(&[
            // a: watched a recording in the last 7 days, none in the 30 days before: fires.
            ("a", "a1", "recording viewed", "2026-11-20 10:00", None),
            // b: also one on 2026-10-17 00:00, the first instant of the 30 days before.
            ("b", "b1", "recording viewed", "2026-11-20 10:00", None),
            ("b", "b1", "recording viewed", "2026-10-17 00:00", None),
        ]),
    );
    // c: first rows synced in the last 7 days: data_warehouse fires.
    w.write(
        "usage",
        &usage(&[
            ("c", "2026-11-18", &[("rows_synced_in_period", 5)]),
            ("c", "2026-10-16", &[("rows_synced_in_period", 5)]), // before the lookback: ignored
        ]),
    );
    w.run(&[]);
    let f: Vec<(String, Option<String>)> = fired(&w)
        .into_iter()
        .filter(|x| x.1 == "new_product_adoption")
        .map(|x| (x.0, x.2))
        .collect();
    assert_eq!(
        f,
        vec![
            ("a".to_string(), Some("session_replay".to_string())),
            ("c".to_string(), Some("data_warehouse".to_string()))
        ]
    );
}

#[test]
fn product_interest_from_docs_visits() {
    let w = Workdir::new();
    base(&w, &["a", "b", "c"]);
    let docs = Some("https://posthog.com/docs/surveys/creating-surveys");
    let mut rows = Vec::new();
    for (org, id, n) in [("a", "a1", 3), ("b", "b1", 2), ("c", "c1", 3)] {
        for _ in 0..n {
            rows.push((org, id, "$pageview", "2026-11-20 10:00", docs));
        }
    }
    // c already uses surveys (a survey viewed 2026-10-25, inside the last 30 days).
    rows.push(("c", "c1", "survey viewed", "2026-10-25 00:00", None));
    w.write("events", &events(&rows));
    w.run(&[]);
    let f: Vec<_> = fired(&w)
        .into_iter()
        .filter(|x| x.1 == "product_interest")
        .collect();
    assert_eq!(
        f,
        vec![(
            "a".to_string(),
            "product_interest".to_string(),
            Some("surveys".to_string()),
            Some(3.0)
        )]
    );
}

#[test]
fn health_score_drop_against_a_previous_run() {
    let w = Workdir::new();
    // Three identical quiet orgs, each scoring 50/58 (see util::identical_quiet_orgs).
    identical_quiet_orgs(&w, &["a", "b", "c"]);
    let previous = w.path().join("previous");
    let prev = polars::prelude::df!("org_id" => ["a", "b"], "health_score" => [3.0, 2.8]).unwrap();
    write_parquet(&previous.join("health.parquet"), &prev);
    w.run(&["--previous", previous.to_str().unwrap()]);
    let now = 50.0 / 58.0;
    assert_close(w.health_f64("a", "health_score"), now, "score");
    assert_close(
        w.health_f64("a", "health_score_change"),
        now - 3.0,
        "a change",
    );
    assert_close(
        w.health_f64("b", "previous_health_score"),
        2.8,
        "b previous",
    );
    assert_eq!(w.health_f64("c", "previous_health_score"), None, "new org");
    assert_eq!(w.health_f64("c", "health_score_change"), None, "new org");
    // a fell 2.14 (fires), b 1.94 (does not), c is new.
    fires_only(&w, "health_score_drop", &["a"]);
    assert_eq!(
        w.health_f64("a", "risk_count"),
        Some(2.0),
        "health_score_drop and inactive_org"
    );
}

// The deployment checks (issue 26). as_of is 2026-11-23; the window is the 30 days
// 2026-10-24 .. 2026-11-22.

/// One ingestion row: (org_id, date, event, lib, lib_version, count).
type IngestionRow<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, f64);

fn ingestion(rows: &[IngestionRow]) -> DataFrame {
    df!(
        "org_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "date" => rows.iter().map(|r| days(r.1)).collect::<Vec<_>>(),
        "event" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        "lib" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        "lib_version" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        "count" => rows.iter().map(|r| r.5).collect::<Vec<_>>(),
    )
    .unwrap()
    .lazy()
    .with_column(polars::prelude::col("date").cast(DataType::Date))
    .collect()
    .unwrap()
}

fn sdk_releases(rows: &[(&str, &str, &str)]) -> DataFrame {
    df!(
        "lib" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "version" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "released_at" => rows.iter().map(|r| days(r.2)).collect::<Vec<_>>(),
    )
    .unwrap()
    .lazy()
    .with_column(polars::prelude::col("released_at").cast(DataType::Date))
    .collect()
    .unwrap()
}

/// accounts with the deployment columns: (org_id, addons, autocapture_actions).
fn deployment_accounts(rows: &[(&str, Option<&str>, Option<f64>)]) -> DataFrame {
    df!(
        "org_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "addons" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "autocapture_actions" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
    )
    .unwrap()
}

/// An org's `total` events in the window, `n` of them `event`, on web 1.0.
fn share_rows<'a>(org: &'a str, event: &'a str, n: f64, total: f64) -> Vec<IngestionRow<'a>> {
    vec![
        (org, "2026-11-01", "$pageview", "web", "1.0", total - n),
        (org, "2026-11-02", event, "web", "1.0", n),
    ]
}

#[test]
fn identify_and_groupidentify_overuse_above_five_percent() {
    let w = Workdir::new();
    base(&w, &["a", "b", "c", "d", "e"]);
    let mut rows = vec![
        // a: 30 $identify + 21 $set of 1000 = 5.1%: fires.
        ("a", "2026-11-01", "$pageview", "web", "1.0", 949.0),
        ("a", "2026-11-02", "$identify", "web", "1.0", 30.0),
        ("a", "2026-11-22", "$set", "web", "1.0", 21.0),
        // b: 50 of 1000 = 5.0%, on the window's first day: not above 5.
        ("b", "2026-11-01", "$pageview", "web", "1.0", 950.0),
        ("b", "2026-10-24", "$identify", "web", "1.0", 50.0),
        // c: 49 of 1000 in the window = 4.9%; the day before the window and as_of
        // itself are not read.
        ("c", "2026-11-01", "$pageview", "web", "1.0", 951.0),
        ("c", "2026-11-05", "$identify", "web", "1.0", 49.0),
        ("c", "2026-10-23", "$identify", "web", "1.0", 500.0),
        ("c", "2026-11-23", "$identify", "web", "1.0", 500.0),
    ];
    // d: 51 $groupidentify of 1000: fires; e: 50: does not.
    rows.extend(share_rows("d", "$groupidentify", 51.0, 1000.0));
    rows.extend(share_rows("e", "$groupidentify", 50.0, 1000.0));
    w.write("ingestion", &ingestion(&rows));
    w.run(&[]);
    fires_only(&w, "identify_overuse", &["a"]);
    fires_only(&w, "groupidentify_overuse", &["d"]);
    let f = fired(&w);
    let a = f.iter().find(|x| x.0 == "a" && x.1 == "identify_overuse");
    assert!(
        (a.unwrap().3.unwrap() - 5.1).abs() < 1e-9,
        "value: the share in %"
    );
    assert_eq!(
        message(&w, "a", "identify_overuse"),
        "5.1% of the events ingested in the last 30 days are $identify, $set (51 of 1000; \
         threshold 5.0%): call identify once per session (on login or signup), not on every page."
    );
    assert!(message(&w, "d", "groupidentify_overuse")
        .ends_with("call group identify once per group per session, not on every page."));
    // The deployment table: one row per org with ingestion, its shares.
    let dep = w.read("deployment");
    assert_eq!(strings(&dep, "org_id"), ["a", "b", "c", "d", "e"]);
    let share =
        |c: &str| -> Vec<Option<f64>> { dep.column(c).unwrap().f64().unwrap().iter().collect() };
    assert_eq!(share("ingested_events"), vec![Some(1000.0); 5]);
    let identify = share("identify_pct");
    assert!((identify[0].unwrap() - 5.1).abs() < 1e-9);
    assert!((identify[2].unwrap() - 4.9).abs() < 1e-9);
    assert!((share("groupidentify_pct")[3].unwrap() - 5.1).abs() < 1e-9);
    // c's row at as_of is counted in data quality, not read.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.out().join("manifest.json")).unwrap())
            .unwrap();
    let dq = &manifest["data_quality"];
    assert_eq!(dq["ingestion_rows_at_or_after_as_of"], 1);
    assert_eq!(dq["negative_ingestion_counts"], 0);
    assert_eq!(dq["ingestion_rows_without_count"], 0);
}

#[test]
fn autocapture_unused_above_half_without_actions() {
    let w = Workdir::new();
    base(&w, &["f", "g", "h", "i"]);
    let mut rows = share_rows("f", "$autocapture", 501.0, 1000.0); // 50.1%, no actions: fires
    rows.extend(share_rows("g", "$autocapture", 501.0, 1000.0)); // actions defined
    rows.extend(share_rows("h", "$autocapture", 500.0, 1000.0)); // 50.0%: not above
    rows.extend(share_rows("i", "$autocapture", 600.0, 1000.0)); // actions unknown
    w.write("ingestion", &ingestion(&rows));
    w.write(
        "accounts",
        &deployment_accounts(&[
            ("f", None, Some(0.0)),
            ("g", None, Some(3.0)),
            ("h", None, Some(0.0)),
            ("i", None, None),
        ]),
    );
    w.run(&[]);
    fires_only(&w, "autocapture_unused", &["f"]);
    assert!(message(&w, "f", "autocapture_unused")
        .ends_with("define actions on autocapture events, or turn autocapture down."));
}

#[test]
fn sdk_outdated_when_the_main_lib_is_more_than_90_days_behind() {
    let w = Workdir::new();
    base(&w, &["j", "k", "l", "m", "n", "o", "u"]);
    w.write(
        "sdk_releases",
        &sdk_releases(&[
            ("web", "1.0", "2026-06-01"),
            ("web", "1.1", "2026-08-31"), // 91 days after 1.0
            ("py", "2.0", "2026-06-01"),
            ("py", "2.1", "2026-08-30"), // 90 days after 2.0
            ("ios", "3.0", "2026-06-01"),
            ("ios", "3.1", "2026-12-01"), // after as_of: not known yet
        ]),
    );
    w.write(
        "ingestion",
        &ingestion(&[
            ("j", "2026-11-01", "$pageview", "web", "1.0", 100.0), // 91 days behind: fires
            ("k", "2026-11-01", "$pageview", "py", "2.0", 100.0),  // 90: not above
            ("l", "2026-11-01", "$pageview", "ios", "3.0", 100.0), // latest known: 0
            // m: the main lib is py 2.1 (600 events); web 1.0 is old but not the main one.
            ("m", "2026-11-01", "$pageview", "py", "2.1", 600.0),
            ("m", "2026-11-01", "$pageview", "web", "1.0", 400.0),
            ("n", "2026-11-01", "$pageview", "web", "0.9", 100.0), // unknown version
            // o: web's main version is 1.1 (700 events), not 1.0 (300).
            ("o", "2026-11-01", "$pageview", "web", "1.0", 300.0),
            ("o", "2026-11-02", "$pageview", "web", "1.1", 700.0),
            // u: a tie between libs goes to the first by name, py (90 days: no fire).
            ("u", "2026-11-01", "$pageview", "web", "1.0", 50.0),
            ("u", "2026-11-01", "$pageview", "py", "2.0", 50.0),
        ]),
    );
    w.run(&[]);
    fires_only(&w, "sdk_outdated", &["j"]);
    let f = fired(&w);
    let j = f.iter().find(|x| x.0 == "j" && x.1 == "sdk_outdated");
    assert_eq!(j.unwrap().3, Some(91.0), "value: days behind");
    assert_eq!(
        message(&w, "j", "sdk_outdated"),
        "The main SDK, web 1.0, was released 91 days before web's latest release of \
         2026-08-31 (threshold 90.0 days): update the SDKs monthly."
    );
    let dep = w.read("deployment");
    assert_eq!(
        strings(&dep, "main_lib"),
        ["web", "py", "ios", "py", "web", "web", "py"]
    );
    assert_eq!(
        strings(&dep, "main_lib_version"),
        ["1.0", "2.0", "3.0", "2.1", "0.9", "1.1", "2.0"]
    );
    let behind: Vec<Option<f64>> = dep
        .column("days_behind_latest")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        behind,
        [
            Some(91.0),
            Some(90.0),
            Some(0.0),
            Some(0.0),
            None,
            Some(0.0),
            Some(90.0)
        ]
    );
    // explain tells the deployment in one sentence (wrapped at 80 columns).
    let o = w.cmd(&["explain", "j", "--out", w.out().to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains(
            "Deployment, last 30 days: 100 events ingested; main SDK web 1.0, 91 days behind \
             web's latest release; identify 0.0%, group identify 0.0%, autocapture 0.0% of events."
        ),
        "{text}"
    );
    let o = w.cmd(&["explain", "n", "--out", w.out().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("main SDK web 0.9 (not in sdk_releases)"),
        "{text}"
    );
    // The unknown version is counted in data quality, not fired.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.out().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["data_quality"]["sdk_versions_unknown"], 1);
}

#[test]
fn group_analytics_unused_when_the_add_on_sends_no_group_events() {
    let w = Workdir::new();
    base(&w, &["p", "q", "r", "s", "t"]);
    let groups = "event_count_with_groups_in_period";
    w.write(
        "usage",
        &usage(&[
            ("p", "2026-11-10", &[(groups, 0)]), // add-on, none sent: fires
            ("q", "2026-11-10", &[(groups, 5)]), // sends groups
            ("r", "2026-11-10", &[(groups, 0)]), // no add-on
            ("s", "2026-11-10", &[(groups, 0)]), // sent only before the window: fires
            ("s", "2026-10-23", &[(groups, 10)]),
            ("t", "2026-11-10", &[(groups, 0)]), // another add-on's name
        ]),
    );
    w.write(
        "accounts",
        &deployment_accounts(&[
            ("p", Some("data_pipelines, group_analytics"), None),
            ("q", Some("group_analytics"), None),
            ("r", Some("data_pipelines"), None),
            ("s", Some("group_analytics"), None),
            ("t", Some("group_analyticsx"), None),
        ]),
    );
    w.run(&[]);
    fires_only(&w, "group_analytics_unused", &["p", "s"]);
    assert_eq!(
        message(&w, "p", "group_analytics_unused"),
        "Pays for the group_analytics add-on but sent no group events in the last 30 days: \
         remove the add-on or start sending groups."
    );
}

#[test]
fn group_analytics_unused_needs_the_counter_in_the_usage_export() {
    // The counter is in no usage file: group events are unknown, nothing fires.
    let w = Workdir::new();
    base(&w, &["p"]);
    w.write(
        "accounts",
        &deployment_accounts(&[("p", Some("group_analytics"), None)]),
    );
    w.run(&[]);
    fires_only(&w, "group_analytics_unused", &[]);
    // No ingestion table: no deployment rows, and the table is listed as absent.
    assert_eq!(w.read("deployment").height(), 0);
    let manifest = std::fs::read_to_string(w.out().join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let absent = manifest["absent_tables"].as_array().unwrap();
    assert!(absent.iter().any(|t| t == "ingestion"));
    assert!(absent.iter().any(|t| t == "sdk_releases"));
}
