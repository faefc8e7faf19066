use crate::util::*;

const PV: &str = "$pageview";

/// The hand-built input most metric tests read. as_of is 2026-11-23 (a Monday), so:
/// last 30 days = [2026-10-24, 2026-11-23), previous 30 = [2026-09-24, 2026-10-24),
/// last 14 = [2026-11-09, ..), last 7 = [2026-11-16, ..), last 60 = [2026-09-24, ..).
///
/// Org `a`: members a1, a2, a3 (since January), a4 (removed 2026-11-01), a5 (joined
/// 2026-11-10). Members at as_of: a1 a2 a3 a5 = 4. Members at 2026-10-24: a1 a2 a3 a4 = 4.
/// Org `b`: one member, no events, no meetings. Org `c`: in accounts only, no members.
pub fn rich_fixture(w: &Workdir) {
    w.write(
        "members",
        &members(&[
            ("a", "a1", "owner", "2026-01-01", None),
            ("a", "a2", "member", "2026-01-01", None),
            ("a", "a3", "member", "2026-01-01", None),
            ("a", "a4", "member", "2026-01-01", Some("2026-11-01")),
            ("a", "a5", "member", "2026-11-10", None),
            ("b", "b1", "owner", "2026-01-01", None),
        ]),
    );
    w.write(
        "accounts",
        &accounts(&[
            ("a", "Acme", "ana"),
            ("b", "Beta", "ben"),
            ("c", "Gamma", "cleo"),
        ]),
    );
    w.write(
        "events",
        &events(&[
            // Current 30 days: a1, a2 (exactly at the window start), a4 (removed since,
            // still a member row), a5. a3's event at as_of itself does not count.
            ("a", "a1", "insight analyzed", "2026-11-21 12:00", None),
            ("a", "a2", "query completed", "2026-10-24 00:00", None),
            (
                "a",
                "a4",
                PV,
                "2026-11-05 10:00",
                Some("https://us.posthog.com/project/1"),
            ),
            ("a", "a5", "recording viewed", "2026-11-15 09:00", None),
            ("a", "a3", "insight analyzed", "2026-11-23 00:00", None),
            // Previous 30 days: a1 and a3 (exactly at its start).
            ("a", "a1", "insight viewed", "2026-10-01 08:00", None),
            ("a", "a3", "insight viewed", "2026-09-24 00:00", None),
            // Not a member of a: ignored everywhere.
            (
                "a",
                "stranger",
                "insight analyzed",
                "2026-11-22 12:00",
                None,
            ),
            ("a", "stranger", "survey viewed", "2026-11-22 12:00", None),
            (
                "a",
                "stranger",
                PV,
                "2026-11-22 12:00",
                Some("https://posthog.com/docs/surveys"),
            ),
            // Docs visits in the last 7 days: two count (one exactly at its start).
            (
                "a",
                "a1",
                PV,
                "2026-11-16 00:00",
                Some("https://posthog.com/docs/surveys?x=1#top"),
            ),
            ("a", "a2", PV, "2026-11-20 10:00", Some("/docs")),
            (
                "a",
                "a2",
                PV,
                "2026-11-15 23:59",
                Some("https://posthog.com/docs/surveys"),
            ),
            (
                "a",
                "a2",
                PV,
                "2026-11-20 10:00",
                Some("https://posthog.com/blog/docs"),
            ),
            // Queries in the last 7 days: 3 completed, 1 failed; one failed before the window.
            ("a", "a1", "query completed", "2026-11-16 00:00", None),
            ("a", "a1", "query completed", "2026-11-18 00:00", None),
            ("a", "a2", "query completed", "2026-11-19 00:00", None),
            ("a", "a2", "query failed", "2026-11-21 10:00", None),
            ("a", "a2", "query failed", "2026-11-15 23:00", None),
        ]),
    );
    w.write(
        "usage",
        &usage(&[
            // event_count: previous 30 days 100 + 50 = 150, last 30 days 90 + 30 = 120.
            ("a", "2026-10-01", &[("event_count_in_period", 100)]),
            (
                "a",
                "2026-10-23",
                &[
                    ("event_count_in_period", 50),
                    ("cdp_billable_invocations_in_period", 5),
                ],
            ),
            ("a", "2026-10-24", &[("event_count_in_period", 90)]),
            (
                "a",
                "2026-11-01",
                &[
                    ("rows_synced_in_period", 10),
                    ("exceptions_captured_in_period", 0),
                ],
            ),
            ("a", "2026-11-22", &[("event_count_in_period", 30)]),
            ("a", "2026-11-23", &[("event_count_in_period", 1000)]),
            ("b", "2026-11-01", &[("event_count_in_period", 0)]),
        ]),
    );
    w.write(
        "tickets",
        &tickets(&[
            (
                "a",
                "t1",
                "2026-10-24 00:00",
                "normal",
                Some("2026-10-25 00:00"),
            ),
            ("a", "t2", "2026-10-23 23:00", "normal", None),
            ("a", "t3", "2026-11-22 00:00", "urgent", None),
            (
                "a",
                "t4",
                "2026-11-01 00:00",
                "urgent",
                Some("2026-11-23 00:00"),
            ),
            (
                "a",
                "t5",
                "2026-11-01 00:00",
                "urgent",
                Some("2026-11-20 00:00"),
            ),
            ("a", "t6", "2026-11-23 01:00", "urgent", None),
        ]),
    );
    w.write(
        "meetings",
        &meetings(&[
            ("a", "2026-08-01 00:00"),
            ("a", "2026-10-24 12:00"),
            ("a", "2026-11-23 10:00"),
        ]),
    );
}

fn rich() -> Workdir {
    let w = Workdir::new();
    rich_fixture(&w);
    w.run(&[]);
    w
}

#[test]
fn days_since_last_seen_counts_member_events_before_as_of_only() {
    let w = rich();
    // a1 at 2026-11-21 12:00: 1.5 days before as_of; the stranger (11-22) and the
    // event at as_of itself are ignored.
    assert_eq!(
        w.score("a", "days_since_last_seen"),
        (Some(1.5), Some("concerning".into()), Some(5.0))
    );
    // No member event at all: null, scored poor.
    assert_eq!(
        w.score("b", "days_since_last_seen"),
        (None, Some("poor".into()), Some(0.0))
    );
    // No members: still null and poor (the events table was given).
    assert_eq!(
        w.score("c", "days_since_last_seen"),
        (None, Some("poor".into()), Some(0.0))
    );
}

#[test]
fn active_user_pct_is_members_with_an_event_over_members_at_as_of() {
    let w = rich();
    // Active in the last 30 days: a1, a2 (at the window start), a4, a5 = 4; members 4.
    assert_eq!(
        w.score("a", "active_user_pct"),
        (Some(100.0), Some("healthy".into()), Some(10.0))
    );
    // b: 0 of 1.
    assert_eq!(
        w.score("b", "active_user_pct"),
        (Some(0.0), Some("poor".into()), Some(0.0))
    );
    // c: no members, null and unscored.
    assert_eq!(w.score("c", "active_user_pct"), (None, None, None));
}

#[test]
fn active_user_pct_decrease_compares_with_the_previous_window() {
    let w = rich();
    // Previous: a1, a3 active of 4 members at 2026-10-24 = 50%; now 100%:
    // 100 * (50 - 100) / 50 = -100 (growth), healthy.
    assert_eq!(
        w.score("a", "active_user_pct_decrease"),
        (Some(-100.0), Some("healthy".into()), Some(10.0))
    );
    // b: previous 0% -> null, unscored.
    assert_eq!(w.score("b", "active_user_pct_decrease"), (None, None, None));
}

#[test]
fn users_engaging_with_features_counts_distinct_members() {
    let w = rich();
    // feature_use in the last 30 days: a1 (insight analyzed), a5 (recording viewed) = 2.
    assert_eq!(
        w.score("a", "users_engaging_with_features"),
        (Some(2.0), Some("poor".into()), Some(0.0))
    );
    assert_eq!(
        w.score("b", "users_engaging_with_features"),
        (Some(0.0), Some("poor".into()), Some(0.0))
    );
}

#[test]
fn ticket_metrics() {
    let w = rich();
    // Created in [2026-10-24, as_of): t1 (at the start), t3, t4, t5 = 4. t2 is earlier, t6 after as_of.
    assert_eq!(
        w.score("a", "tickets_created_30d"),
        (Some(4.0), Some("healthy".into()), Some(10.0))
    );
    // Urgent, not solved before as_of: t3 (open), t4 (solved exactly at as_of) = 2.
    assert_eq!(
        w.score("a", "urgent_tickets_unresolved"),
        (Some(2.0), Some("concerning".into()), Some(5.0))
    );
    // Latest ticket before as_of: t3 at 2026-11-22 00:00 = 1 day.
    assert_eq!(
        w.score("a", "days_since_last_ticket"),
        (Some(1.0), Some("healthy".into()), Some(10.0))
    );
    // b has no tickets: counts are 0; no ticket ever is null, scored poor.
    assert_eq!(
        w.score("b", "tickets_created_30d"),
        (Some(0.0), Some("healthy".into()), Some(10.0))
    );
    assert_eq!(
        w.score("b", "urgent_tickets_unresolved"),
        (Some(0.0), Some("healthy".into()), Some(10.0))
    );
    assert_eq!(
        w.score("b", "days_since_last_ticket"),
        (None, Some("poor".into()), Some(0.0))
    );
}

#[test]
fn docs_visits_7d_counts_member_pageviews_under_docs() {
    let w = rich();
    // 2026-11-16 00:00 (query and fragment stripped) and "/docs": 2. The 11-15 visit is
    // outside the window, /blog/docs is not a docs path, the stranger is not a member.
    assert_eq!(
        w.score("a", "docs_visits_7d"),
        (Some(2.0), Some("healthy".into()), Some(10.0))
    );
}

#[test]
fn query_failure_rate_7d() {
    let w = rich();
    // 1 failed / (3 completed + 1 failed) = 25%.
    assert_eq!(
        w.score("a", "query_failure_rate_7d"),
        (Some(25.0), Some("poor".into()), Some(0.0))
    );
    // No queries: null, unscored.
    assert_eq!(w.score("b", "query_failure_rate_7d"), (None, None, None));
}

#[test]
fn days_since_last_meeting() {
    let w = rich();
    // Latest before as_of: 2026-10-24 12:00 = 29.5 days; the 11-23 meeting is after as_of.
    assert_eq!(
        w.score("a", "days_since_last_meeting"),
        (Some(29.5), Some("healthy".into()), Some(10.0))
    );
    // No meeting ever: null, scored poor.
    assert_eq!(
        w.score("b", "days_since_last_meeting"),
        (None, Some("poor".into()), Some(0.0))
    );
}

#[test]
fn product_count_counts_products_in_use_over_30_days() {
    let w = rich();
    // product_analytics (insight analyzed), session_replay (recording viewed by a5),
    // data_warehouse (rows_synced 10) = 3. cdp's usage is before the window; the
    // stranger's survey view does not count; exceptions 0 is not use.
    assert_eq!(
        w.score("a", "product_count"),
        (Some(3.0), Some("concerning".into()), Some(5.0))
    );
    // b: event_count 0 and no events.
    assert_eq!(
        w.score("b", "product_count"),
        (Some(0.0), Some("poor".into()), Some(0.0))
    );
}

#[test]
fn usage_decreases_over_30_days() {
    let w = rich();
    // event_count: previous 150, current 120 (the row at as_of excluded): 100*30/150 = 20.
    assert_eq!(
        w.score("a", "event_count_decrease_30d"),
        (Some(20.0), Some("concerning".into()), Some(5.0))
    );
    // No recording counter at all: previous 0, null; product in use so the category is
    // scored, but a null decrease is unscored.
    assert_eq!(
        w.score("a", "recording_count_decrease_30d"),
        (None, None, None)
    );
    // rows_synced: previous 0 -> null.
    assert_eq!(w.score("a", "rows_synced_decrease_30d"), (None, None, None));
    assert_eq!(w.score("a", "decide_requests_decrease_30d").0, None);
}

#[test]
fn product_engagement_percentages() {
    let w = rich();
    // 14 days: a1 analyzed an insight: 1 of 4 members = 25%.
    assert_eq!(
        w.score("a", "insight_analyzers_pct"),
        (Some(25.0), Some("concerning".into()), Some(5.0))
    );
    // a5 watched a recording: 25%.
    assert_eq!(
        w.score("a", "replay_watchers_pct"),
        (Some(25.0), Some("concerning".into()), Some(5.0))
    );
    // Not adopted: values still output (0%), but unscored.
    assert_eq!(w.score("a", "flag_editors_pct"), (Some(0.0), None, None));
    assert_eq!(
        w.score("a", "experiment_users_pct"),
        (Some(0.0), None, None)
    );
    // surveys_data_warehouse is adopted (rows synced) but surveys is not in use: unscored.
    assert_eq!(w.score("a", "survey_viewers_pct"), (Some(0.0), None, None));
}

#[test]
fn health_table_carries_every_metric_and_the_account_fields() {
    let w = rich();
    let h = w.read("health");
    assert_eq!(h.height(), 3);
    let orgs: Vec<Option<&str>> = h.column("org_id").unwrap().str().unwrap().iter().collect();
    assert_eq!(orgs, vec![Some("a"), Some("b"), Some("c")]);
    assert_eq!(w.health_str("a", "name").as_deref(), Some("Acme"));
    assert_eq!(w.health_str("c", "csm").as_deref(), Some("cleo"));
    assert_close(
        w.health_f64("a", "docs_visits_7d"),
        2.0,
        "docs_visits_7d in health",
    );
    let ms = w.read("metric_scores");
    assert_eq!(ms.height(), 3 * 20);
}
