//! Indicators with a lifecycle (issue 22): `status` and `first_fired` in
//! `indicators`, the `alerts` table (new, ongoing past `renotify_days`, resolved),
//! and `clear_at` hysteresis; each state worked out by hand over a few runs into one
//! output folder (the history entry of each run is the next one's previous run).

use polars::prelude::*;

use crate::util::*;

/// Rows of a table as (org, indicator, status, first_fired) for `indicator`.
fn states(w: &Workdir, table: &str, indicator: &str) -> Vec<(String, String, String)> {
    let df = w.read(table);
    let s = |c: &str| df.column(c).unwrap().cast(&DataType::String).unwrap();
    let (org, ind, status, first) = (s("org_id"), s("indicator"), s("status"), s("first_fired"));
    (0..df.height())
        .filter(|&i| ind.str().unwrap().get(i) == Some(indicator))
        .map(|i| {
            (
                org.str().unwrap().get(i).unwrap().to_string(),
                status.str().unwrap().get(i).unwrap().to_string(),
                first.str().unwrap().get(i).unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The message of the (only) row of `indicator`.
fn message_in(df: &DataFrame, indicator: &str) -> String {
    let i = row_of(df, "indicator", indicator);
    df.column("message")
        .unwrap()
        .str()
        .unwrap()
        .get(i)
        .unwrap()
        .to_string()
}

fn row(org: &str, status: &str, first: &str) -> (String, String, String) {
    (org.into(), status.into(), first.into())
}

/// Orgs `a` (renews 2026-12-15) and `b` (renews 2027-06-01), a member each, and
/// `renewal_upcoming` re-notified after 3 days.
fn renewals(w: &Workdir) {
    minimal(w);
    w.write("members", &one_member_each(&["a", "b"]));
    w.write(
        "accounts",
        &accounts_full(&[
            ("a", 100.0, 100.0, "paid", "2026-12-15"),
            ("b", 100.0, 100.0, "paid", "2027-06-01"),
        ]),
    );
    std::fs::write(
        w.path().join("renotify.toml"),
        "[indicators.renewal_upcoming]\nrenotify_days = 3\n",
    )
    .unwrap();
}

#[test]
fn an_indicator_is_new_then_ongoing_then_alerted_again_past_renotify_days_then_resolved() {
    let w = Workdir::new();
    renewals(&w);
    let config = w.path().join("renotify.toml");
    let config = ["--config", config.to_str().unwrap()];
    // 11-01: a renews in 44 days (fires, 0 to 60); b in 212 (does not).
    w.run_at("2026-11-01", &config);
    let new = vec![row("a", "new", "2026-11-01")];
    assert_eq!(states(&w, "indicators", "renewal_upcoming"), new);
    assert_eq!(states(&w, "alerts", "renewal_upcoming"), new);
    // 11-03 and 11-04: ongoing since 11-01, last alerted 11-01: 2 and 3 days ago,
    // not more than 3: no alert.
    for as_of in ["2026-11-03", "2026-11-04"] {
        w.run_at(as_of, &config);
        assert_eq!(
            states(&w, "indicators", "renewal_upcoming"),
            [row("a", "ongoing", "2026-11-01")],
            "{as_of}"
        );
        assert_eq!(states(&w, "alerts", "renewal_upcoming"), [], "{as_of}");
    }
    // 11-05: 4 days since the last alert: told again, still ongoing since 11-01.
    w.run_at("2026-11-05", &config);
    assert_eq!(
        states(&w, "alerts", "renewal_upcoming"),
        [row("a", "ongoing", "2026-11-01")]
    );
    let last = w.read("indicators");
    let last_alerted = last
        .column("last_alerted")
        .unwrap()
        .cast(&DataType::String)
        .unwrap();
    assert!(last_alerted
        .str()
        .unwrap()
        .iter()
        .any(|d| d == Some("2026-11-05")));
    // 11-06: alerted yesterday: quiet again.
    w.run_at("2026-11-06", &config);
    assert_eq!(states(&w, "alerts", "renewal_upcoming"), []);
    // 12-16: the renewal date has passed (-1 days): resolved, told once.
    w.run_at("2026-12-16", &config);
    assert_eq!(states(&w, "indicators", "renewal_upcoming"), []);
    assert_eq!(
        states(&w, "alerts", "renewal_upcoming"),
        [row("a", "resolved", "2026-11-01")]
    );
    let msg = message_in(&w.read("alerts"), "renewal_upcoming");
    assert!(msg.starts_with("Resolved: Renewal on 2026-12-15"), "{msg}");
    // And not again the run after.
    w.run_at("2026-12-17", &config);
    assert_eq!(states(&w, "alerts", "renewal_upcoming"), []);
}

#[test]
fn a_renotify_days_of_zero_alerts_every_run_and_the_default_is_seven() {
    let w = Workdir::new();
    renewals(&w);
    // Default 7: alerted on 11-01, quiet on 11-08 (7 days, not more), told on 11-09.
    w.run_at("2026-11-01", &[]);
    w.run_at("2026-11-08", &[]);
    assert_eq!(states(&w, "alerts", "renewal_upcoming"), []);
    w.run_at("2026-11-09", &[]);
    assert_eq!(
        states(&w, "alerts", "renewal_upcoming"),
        [row("a", "ongoing", "2026-11-01")]
    );
    std::fs::write(
        w.path().join("zero.toml"),
        "[indicators.renewal_upcoming]\nrenotify_days = 0\n",
    )
    .unwrap();
    let zero = w.path().join("zero.toml");
    w.run_at("2026-11-10", &["--config", zero.to_str().unwrap()]);
    assert_eq!(
        states(&w, "alerts", "renewal_upcoming"),
        [row("a", "ongoing", "2026-11-01")]
    );
}

/// Org `a`'s queries on 11-19: `failed` failed of `total`.
fn queries(w: &Workdir, failed: usize, total: usize) {
    let rows: Vec<(&str, &str, &str, &str, Option<&str>)> = (0..total)
        .map(|i| {
            let event = if i < failed {
                "query failed"
            } else {
                "query completed"
            };
            ("a", "a1", event, "2026-11-19 10:00", None)
        })
        .collect();
    w.write("events", &events(&rows));
}

#[test]
fn clear_at_keeps_a_fired_indicator_until_its_value_passes_it() {
    let w = Workdir::new();
    minimal(&w);
    w.write("members", &one_member_each(&["a"]));
    std::fs::write(
        w.path().join("sticky.toml"),
        "[indicators.query_failure_rate_high]\nclear_at = 5.0\n",
    )
    .unwrap();
    let config = w.path().join("sticky.toml");
    let config = ["--config", config.to_str().unwrap()];
    let fired = |w: &Workdir| states(w, "indicators", "query_failure_rate_high");
    // 8% without a previous firing: below the threshold of 10%, nothing.
    queries(&w, 2, 25);
    w.run_at("2026-11-20", &config);
    assert_eq!(fired(&w), []);
    // 20%: fires.
    queries(&w, 2, 10);
    w.run_at("2026-11-21", &config);
    assert_eq!(fired(&w), [row("a", "new", "2026-11-21")]);
    // 8%, then exactly 5%: it fired last run and the rate is not below 5%: holds.
    queries(&w, 2, 25);
    w.run_at("2026-11-22", &config);
    assert_eq!(fired(&w), [row("a", "ongoing", "2026-11-21")]);
    queries(&w, 1, 20);
    w.run_at("2026-11-23", &config);
    assert_eq!(fired(&w), [row("a", "ongoing", "2026-11-21")]);
    // 1 of 22 (4.5%): below clear_at: cleared, and the alert says resolved.
    queries(&w, 1, 22);
    w.run_at("2026-11-24", &config);
    assert_eq!(fired(&w), []);
    assert_eq!(
        states(&w, "alerts", "query_failure_rate_high"),
        [row("a", "resolved", "2026-11-21")]
    );
}

#[test]
fn clear_at_on_the_firing_side_or_on_an_indicator_without_a_value_is_bad_input() {
    let w = Workdir::new();
    minimal(&w);
    for (toml, key) in [
        // Fires above 10%: a clear_at above 10 could never hold it.
        (
            "[indicators.query_failure_rate_high]\nclear_at = 12.0\n",
            "indicators.query_failure_rate_high.clear_at",
        ),
        // Fires below -10%: clear_at must be at least -10.
        (
            "[indicators.forecasted_mrr_decrease]\nclear_at = -15.0\n",
            "indicators.forecasted_mrr_decrease.clear_at",
        ),
        (
            "[indicators.owner_removed]\nclear_at = 0.0\n",
            "indicators.owner_removed.clear_at",
        ),
    ] {
        std::fs::write(w.path().join("bad.toml"), toml).unwrap();
        let bad = w.path().join("bad.toml");
        let o = w.try_run(&["--quiet", "--config", bad.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{toml}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(key), "{toml}: {stderr}");
    }
}
