use crate::metrics::rich_fixture;
use crate::util::*;

#[test]
fn category_and_health_scores_of_a_hand_built_org() {
    let w = Workdir::new();
    rich_fixture(&w);
    w.run(&[]);
    // user_engagement: days since 1.5 (5), active 100% (10), decrease -100 (10),
    // 2 users engaging (0): 25 / 4 = 6.25.
    assert_close(
        w.health_f64("a", "user_engagement_score"),
        6.25,
        "user_engagement",
    );
    // product_experience: 4 tickets (10), 2 urgent (5), 2 docs visits (10), 25% failures (0).
    assert_close(
        w.health_f64("a", "product_experience_score"),
        6.25,
        "product_experience",
    );
    // company_engagement: meeting 29.5 days (10), ticket 1 day (10), 3 products (5).
    assert_close(
        w.health_f64("a", "company_engagement_score"),
        25.0 / 3.0,
        "company_engagement",
    );
    // product_analytics: decrease 20 (5), analyzers 25% (5).
    assert_close(
        w.health_f64("a", "product_analytics_score"),
        5.0,
        "product_analytics",
    );
    // session_replay: adopted through a5's recording view; decrease null (unscored), watchers 25% (5).
    assert_close(
        w.health_f64("a", "session_replay_score"),
        5.0,
        "session_replay",
    );
    // Neither feature flags nor experiments used in 60 days: not adopted.
    assert_eq!(w.health_f64("a", "feature_flags_experiments_score"), None);
    // data_warehouse adopted, but neither of its metrics is scored: null.
    assert_eq!(w.health_f64("a", "surveys_data_warehouse_score"), None);
    // (15*6.25 + 5*6.25 + 5*25/3 + 33*5 + 20*5) / (15+5+5+33+20)
    let want = (15.0 * 6.25 + 5.0 * 6.25 + 5.0 * 25.0 / 3.0 + 33.0 * 5.0 + 20.0 * 5.0) / 78.0;
    assert_close(w.health_f64("a", "health_score"), want, "health_score");
    assert_eq!(
        w.health_str("a", "health_label").as_deref(),
        Some("concerning")
    );

    // b: user_engagement 0 (null last seen scored poor, 0% active, 0 engaging);
    // product_experience (10+10+10)/3; company 0 (no meeting, no ticket, 0 products);
    // no product adopted. (15*0 + 5*10 + 5*0) / 25 = 2.
    assert_close(
        w.health_f64("b", "user_engagement_score"),
        0.0,
        "b user_engagement",
    );
    assert_close(
        w.health_f64("b", "product_experience_score"),
        10.0,
        "b product_experience",
    );
    assert_close(
        w.health_f64("b", "company_engagement_score"),
        0.0,
        "b company",
    );
    assert_eq!(w.health_f64("b", "product_analytics_score"), None);
    assert_close(w.health_f64("b", "health_score"), 2.0, "b health");
    assert_eq!(w.health_str("b", "health_label").as_deref(), Some("poor"));
    // No previous run given: the history columns are null.
    assert_eq!(w.health_f64("a", "previous_health_score"), None);
    assert_eq!(w.health_f64("a", "health_score_change"), None);
}

#[test]
fn absent_optional_tables_make_their_metrics_null_and_unscored() {
    let w = Workdir::new();
    rich_fixture(&w);
    std::fs::remove_file(w.input().join("tickets.parquet")).unwrap();
    std::fs::remove_file(w.input().join("meetings.parquet")).unwrap();
    w.run(&[]);
    for m in [
        "tickets_created_30d",
        "urgent_tickets_unresolved",
        "days_since_last_ticket",
        "days_since_last_meeting",
    ] {
        assert_eq!(w.score("b", m), (None, None, None), "{m} without its table");
    }
    // b: product_experience = docs (10) only... and company_engagement = product_count (0) only.
    assert_close(
        w.health_f64("b", "product_experience_score"),
        10.0,
        "b product_experience",
    );
    assert_close(
        w.health_f64("b", "company_engagement_score"),
        0.0,
        "b company",
    );
    // a: product_experience = docs (10), failures (0): 5; company = 3 products (5).
    assert_close(
        w.health_f64("a", "product_experience_score"),
        5.0,
        "a product_experience",
    );
    assert_close(
        w.health_f64("a", "company_engagement_score"),
        5.0,
        "a company",
    );
    let manifest = std::fs::read_to_string(w.out().join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let absent: Vec<&str> = m["absent_tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        absent,
        vec![
            "role_changes",
            "tickets",
            "meetings",
            "payments",
            "ingestion",
            "sdk_releases",
            "churns"
        ]
    );
}

#[test]
fn only_adopted_product_categories_are_weighted() {
    // One org using only product analytics, everything else minimal: the weights of
    // the other product categories drop out of the denominator.
    let w = Workdir::new();
    w.write(
        "members",
        &members(&[("a", "a1", "owner", "2026-01-01", None)]),
    );
    w.write(
        "events",
        &events(&[("a", "a1", "insight analyzed", "2026-11-22 12:00", None)]),
    );
    w.write(
        "usage",
        &usage(&[
            ("a", "2026-10-10", &[("event_count_in_period", 100)]),
            ("a", "2026-11-10", &[("event_count_in_period", 100)]),
        ]),
    );
    w.run(&[]);
    // user_engagement: last seen 0.5 (10), 100% active (10), previous 0% -> null
    // (unscored), 1 engaging (0): 20/3.
    assert_close(
        w.health_f64("a", "user_engagement_score"),
        20.0 / 3.0,
        "user_engagement",
    );
    // product_experience: only docs visits 0 (10) is scored without tickets: 10.
    assert_close(
        w.health_f64("a", "product_experience_score"),
        10.0,
        "product_experience",
    );
    // company: product_count 1 (0); no meetings/tickets tables: 0.
    assert_close(
        w.health_f64("a", "company_engagement_score"),
        0.0,
        "company",
    );
    // product_analytics: decrease 0 (10), analyzers 100% (10): 10.
    assert_close(
        w.health_f64("a", "product_analytics_score"),
        10.0,
        "product_analytics",
    );
    let want =
        (15.0 * 20.0 / 3.0 + 5.0 * 10.0 + 5.0 * 0.0 + 33.0 * 10.0) / (15.0 + 5.0 + 5.0 + 33.0);
    assert_close(w.health_f64("a", "health_score"), want, "health_score");
    assert_eq!(
        w.health_str("a", "health_label").as_deref(),
        Some("healthy")
    );
}

#[test]
fn metric_scores_rows_are_sorted_by_org_category_metric() {
    let w = Workdir::new();
    rich_fixture(&w);
    w.run(&[]);
    let ms = w.read("metric_scores");
    let key = |i: usize| -> (String, String, String) {
        let s = |c: &str| {
            ms.column(c)
                .unwrap()
                .str()
                .unwrap()
                .get(i)
                .unwrap()
                .to_string()
        };
        (s("org_id"), s("category"), s("metric"))
    };
    for i in 1..ms.height() {
        assert!(key(i - 1) < key(i), "row {i} out of order");
    }
}
