use polars::prelude::*;

use crate::util::*;

#[test]
fn users_table_lists_every_member_with_frustration_signals() {
    let w = Workdir::new();
    w.write(
        "members",
        &members(&[
            ("a", "a1", "owner", "2026-01-01", None),
            // a2 left and came back: the current row (latest joined_at) is shown.
            ("a", "a2", "admin", "2025-01-01", Some("2025-06-01")),
            ("a", "a2", "member", "2026-01-01", None),
        ]),
    );
    let mut rows = Vec::new();
    for _ in 0..3 {
        rows.push(("a", "a1", "insight created", "2026-11-20 10:00", None));
    }
    rows.push(("a", "a1", "insight saved", "2026-11-21 10:00", None));
    rows.push(("a", "a1", "query failed", "2026-11-22 12:00", None));
    rows.push(("a", "a1", "query failed", "2026-11-22 11:00", None));
    rows.push(("a", "a1", "query completed", "2026-11-16 00:00", None)); // first instant of the 7 days
    rows.push(("a", "a1", "query completed", "2026-11-15 23:00", None)); // 30 days, not 7
    rows.push(("a", "a1", "x", "2026-10-24 00:00", None)); // first instant of the 30 days
    rows.push(("a", "a1", "x", "2026-10-23 23:00", None)); // before them
    rows.push(("a", "a1", "x", "2026-11-23 00:00", None)); // at as_of: ignored
    w.write("events", &events(&rows));
    w.write(
        "usage",
        &usage(&[("a", "2026-11-01", &[("event_count_in_period", 1)])]),
    );
    w.run(&[]);
    let u = w.read("users");
    assert_eq!(u.height(), 2);
    let ids: Vec<Option<&str>> = u
        .column("distinct_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(ids, vec![Some("a1"), Some("a2")]);
    let roles: Vec<Option<&str>> = u.column("role").unwrap().str().unwrap().iter().collect();
    assert_eq!(roles, vec![Some("owner"), Some("member")]);
    let get = |c: &str, id: &str| cell_f64(&u, "distinct_id", id, c);
    // a1: latest 2026-11-22 12:00 = 0.5 days. 30 days: 3 + 1 + 2 + 2 + 1 = 9 events.
    assert_eq!(get("days_since_last_seen", "a1"), Some(0.5));
    assert_eq!(get("events_30d", "a1"), Some(9.0));
    assert_eq!(get("insights_started_7d", "a1"), Some(3.0));
    assert_eq!(get("insights_saved_7d", "a1"), Some(1.0));
    assert_eq!(get("queries_failed_7d", "a1"), Some(2.0));
    assert_eq!(get("queries_completed_7d", "a1"), Some(1.0));
    // a2: no events.
    assert_eq!(get("days_since_last_seen", "a2"), None);
    assert_eq!(get("events_30d", "a2"), Some(0.0));
}

#[test]
fn trends_have_twelve_full_weeks_of_weekday_means() {
    let w = Workdir::new();
    w.write(
        "members",
        &members(&[
            ("a", "a1", "owner", "2026-01-01", None),
            ("a", "a2", "member", "2026-01-01", None),
            ("b", "b1", "owner", "2026-01-01", None),
        ]),
    );
    w.write(
        "events",
        &events(&[
            // Week of 11-16: Monday a1 and a2 (a1 twice), Tuesday a1; Sunday ignored.
            ("a", "a1", "x", "2026-11-16 09:00", None),
            ("a", "a1", "x", "2026-11-16 10:00", None),
            ("a", "a2", "x", "2026-11-16 11:00", None),
            ("a", "a1", "x", "2026-11-17 09:00", None),
            ("a", "a1", "x", "2026-11-22 09:00", None),
            // Sunday before the first week: outside.
            ("a", "a1", "x", "2026-08-30 09:00", None),
            ("a", "stranger", "x", "2026-11-18 09:00", None),
        ]),
    );
    let e = "event_count_in_period";
    w.write(
        "usage",
        &usage(&[
            ("a", "2026-11-16", &[(e, 10)]),
            ("a", "2026-11-17", &[(e, 20)]),
            ("a", "2026-11-18", &[(e, 30)]),
            ("a", "2026-11-19", &[(e, 40)]),
            ("a", "2026-11-20", &[(e, 50)]),
            ("a", "2026-11-21", &[(e, 1000)]), // Saturday: not in weekday means
            (
                "a",
                "2026-11-10",
                &[(e, 50), ("recording_count_in_period", 5)],
            ),
            ("a", "2026-08-31", &[(e, 5)]), // Monday of the first week
            ("a", "2026-11-23", &[(e, 999)]), // as_of: the current week is not full
        ]),
    );
    w.run(&[]);
    let t = w.read("trends");
    assert_eq!(t.height(), 2 * 12);
    let cols: Vec<String> = t.get_column_names().iter().map(|c| c.to_string()).collect();
    assert_eq!(
        cols,
        vec![
            "org_id",
            "week_start",
            "event_count_in_period_weekday_mean",
            "recording_count_in_period_weekday_mean",
            "active_members_weekday_mean"
        ]
    );
    let a = t
        .clone()
        .lazy()
        .filter(col("org_id").eq(lit("a")))
        .collect()
        .unwrap();
    let week = |r: usize| {
        a.column("week_start")
            .unwrap()
            .cast(&DataType::String)
            .unwrap()
            .str()
            .unwrap()
            .get(r)
            .unwrap()
            .to_string()
    };
    let f = |c: &str, r: usize| a.column(c).unwrap().f64().unwrap().get(r).unwrap();
    assert_eq!(week(0), "2026-08-31");
    assert_eq!(week(11), "2026-11-16");
    // Week of 11-16: (10+20+30+40+50)/5 = 30; active members (2 + 1) / 5 = 0.6.
    assert_eq!(f("event_count_in_period_weekday_mean", 11), 30.0);
    assert_eq!(f("active_members_weekday_mean", 11), 0.6);
    // Week of 11-09: 50/5 = 10 and 5/5 = 1.
    assert_eq!(f("event_count_in_period_weekday_mean", 10), 10.0);
    assert_eq!(f("recording_count_in_period_weekday_mean", 10), 1.0);
    // First week: 5/5 = 1; the Sunday event before it is outside.
    assert_eq!(f("event_count_in_period_weekday_mean", 0), 1.0);
    assert_eq!(f("active_members_weekday_mean", 0), 0.0);
}

#[test]
fn explain_prints_why_an_account_scores_as_it_does() {
    let w = Workdir::new();
    crate::metrics::rich_fixture(&w);
    w.run(&[]);
    let out = w.out();
    let o = w.cmd(&["explain", "a", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = String::from_utf8(o.stdout).unwrap();
    // Scores as in scores::category_and_health_scores_of_a_hand_built_org; points lost
    // = weight * (10 - score) / 78, e.g. product_analytics 33 * 5 / 78 = 2.12.
    let want = "\
a: Acme (ana), as of 2026-11-23
Health score 5.53 / 10: concerning

category                     weight    score    points lost
user_engagement                  15     6.25           0.72
product_experience                5     6.25           0.24
company_engagement                5     8.33           0.11
product_analytics                33     5.00           2.12
session_replay                   20     5.00           1.28
feature_flags_experiments        17        -     not scored
surveys_data_warehouse            5        -     not scored

Pulled down most by: product_analytics (2.12), session_replay (1.28),
  user_engagement (0.72).

metric                                  value band         points
days_since_last_seen                     1.50 concerning        5
active_user_pct                           100 healthy          10
active_user_pct_decrease                 -100 healthy          10
users_engaging_with_features                2 poor              0
tickets_created_30d                         4 healthy          10
urgent_tickets_unresolved                   2 concerning        5
docs_visits_7d                              2 healthy          10
query_failure_rate_7d                      25 poor              0
days_since_last_meeting                 29.50 healthy          10
days_since_last_ticket                      1 healthy          10
product_count                               3 concerning        5
event_count_decrease_30d                   20 concerning        5
insight_analyzers_pct                      25 concerning        5
recording_count_decrease_30d             null unscored          -
replay_watchers_pct                        25 concerning        5
decide_requests_decrease_30d             null unscored          -
flag_editors_pct                            0 unscored          -
experiment_users_pct                        0 unscored          -
survey_viewers_pct                          0 unscored          -
rows_synced_decrease_30d                 null unscored          -

Indicators (1):
- risk: query_failure_rate_high: Query failure rate 25.0% over the last 7 days
    (threshold 10.0%): 1 of 4 queries failed.
";
    for (i, (g, e)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, e, "line {}", i + 1);
    }
    assert_eq!(got.lines().count(), want.lines().count(), "{got}");
    assert!(got.lines().all(|l| l.len() <= 80), "fits 80 columns");
}

#[test]
fn explain_an_unknown_org_is_a_clear_error() {
    let w = Workdir::new();
    crate::metrics::rich_fixture(&w);
    w.run(&[]);
    let out = w.out();
    let o = w.cmd(&["explain", "nope", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("org_id \"nope\" is not in"));
    assert!(o.stdout.is_empty());
    let o = w.cmd(&[
        "explain",
        "a",
        "--out",
        w.path().join("nowhere").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn query_runs_sql_over_inputs_and_outputs() {
    let w = Workdir::new();
    crate::metrics::rich_fixture(&w);
    w.run(&[]);
    let (i, o) = (w.input(), w.out());
    let args = |sql: &str| {
        vec![
            "query".to_string(),
            sql.to_string(),
            "--input".into(),
            i.display().to_string(),
            "--out".into(),
            o.display().to_string(),
        ]
    };
    let run = |sql: &str| {
        let a = args(sql);
        w.cmd(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // An output table joined with an input table; CSV on stdout.
    let out = run("SELECT h.org_id, h.name, COUNT(*) AS members FROM health h JOIN members m ON m.org_id = h.org_id GROUP BY h.org_id, h.name ORDER BY h.org_id");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "org_id,name,members\r\na,Acme,5\r\nb,Beta,1\r\n"
    );
    // Input instants are datetimes again for analysts.
    let out = run("SELECT MAX(timestamp) AS latest FROM events WHERE distinct_id = 'a1'");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "latest\r\n2026-11-21T12:00:00.000000\r\n"
    );
    // The SQL the Cargo features are enabled for: IN, ANTI JOIN, regex. Members of a
    // (5) and b (1); accounts a, b, c: c has no member.
    let out = run("SELECT COUNT(*) AS n FROM members WHERE org_id IN ('a', 'x')");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "n\r\n5\r\n");
    let out = run("SELECT a.org_id FROM accounts a ANTI JOIN members m ON m.org_id = a.org_id");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "org_id\r\nc\r\n");
    let out = run("SELECT COUNT(*) AS n FROM members WHERE distinct_id ~ '^a[0-9]$'");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "n\r\n5\r\n");
    // A bad query: exit 2, the error carries the query text.
    let out = run("SELECT nope FROM health");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SELECT nope FROM health") && err.contains("nope"),
        "{err}"
    );
    // A ready query from queries/ by file path.
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run(repo.join("queries/at_risk_accounts.sql").to_str().unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("org_id,name,csm,health_score,health_label"),
        "{text}"
    );
}

#[test]
fn a_killed_run_s_staging_folder_is_removed_by_the_next_run() {
    let w = Workdir::new();
    minimal(&w);
    // A folder left by a run that was killed (pid beyond any Linux pid), and one of a
    // live process (this test's): only the first is removed.
    let dead = w.out().join(".account-health-staging-999999999");
    let live = w
        .out()
        .join(format!(".account-health-staging-{}", std::process::id()));
    for dir in [&dead, &live] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("health.parquet"), b"half written").unwrap();
    }
    w.run(&[]);
    assert!(!dead.exists(), "abandoned staging folder removed");
    assert!(live.exists(), "a live run's staging folder is left alone");
    assert!(w.out().join("health.parquet").exists());
}

#[test]
fn the_events_pass_reports_each_file_in_a_log_and_nothing_when_quiet() {
    let w = Workdir::new();
    w.generate(8, 30, 2);
    // Not a terminal (captured): a plain line per events file, for a scheduled run's log.
    let o = w.try_run(&["--as-of", AS_OF]);
    assert!(o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    let files = std::fs::read_dir(w.input().join("events"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".parquet"))
        .count();
    assert!(files >= 2, "{files}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("events file"))
        .collect();
    assert_eq!(lines.len(), files, "{stderr}");
    assert!(
        lines[files - 1].contains(&format!("events file {files}/{files} read")),
        "{stderr}"
    );
    assert!(lines[0].contains("rows so far"), "{stderr}");
    let quiet = w.try_run(&["--as-of", AS_OF, "--quiet"]);
    assert!(quiet.status.success());
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
}
