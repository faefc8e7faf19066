use polars::prelude::*;

use crate::metrics::rich_fixture;
use crate::util::*;

/// (org, metric) -> (band, points) of a run's metric_scores.
/// (org_id, metric, band, points, value)
type ScoreRow = (String, String, Option<String>, Option<f64>, Option<f64>);

fn bands(w: &Workdir) -> Vec<ScoreRow> {
    let ms = w.read("metric_scores");
    (0..ms.height())
        .map(|r| {
            let s = |c: &str| {
                ms.column(c)
                    .unwrap()
                    .str()
                    .unwrap()
                    .get(r)
                    .map(str::to_string)
            };
            let f = |c: &str| ms.column(c).unwrap().f64().unwrap().get(r);
            (
                s("org_id").unwrap(),
                s("metric").unwrap(),
                s("band"),
                f("points"),
                f("value"),
            )
        })
        .collect()
}

#[test]
fn moving_one_threshold_changes_exactly_the_bands_that_straddle_it() {
    let w = Workdir::new();
    rich_fixture(&w);
    w.run(&[]);
    let before = bands(&w);
    // docs visits: a has 2, b and c have 0. Healthy up to 1 instead of 20: only a moves.
    let cfg = w.path().join("tuned.toml");
    std::fs::write(&cfg, "[metrics.docs_visits_7d]\nhealthy = \"<= 1\"\n").unwrap();
    w.run(&["--config", cfg.to_str().unwrap()]);
    let after = bands(&w);
    let changed: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, a)| (b.0.clone(), b.1.clone(), b.2.clone(), a.2.clone()))
        .collect();
    assert_eq!(
        changed,
        vec![(
            "a".into(),
            "docs_visits_7d".into(),
            Some("healthy".into()),
            Some("concerning".into())
        )]
    );
    // And the manifest records the tuned model's hash, as `config` prints it.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.out().join("manifest.json")).unwrap())
            .unwrap();
    let printed = w.cmd(&["config", "--config", cfg.to_str().unwrap()]);
    let text = String::from_utf8(printed.stdout).unwrap();
    let hash = m["config_sha256"].as_str().unwrap();
    assert!(text.contains(&format!("# sha256 {hash}")), "{text}");
    assert_eq!(m["config"]["metrics"]["docs_visits_7d"]["healthy"], "<= 1");
}

#[test]
fn the_printed_model_reads_back_as_the_same_model() {
    let w = Workdir::new();
    let o = w.cmd(&["config"]);
    assert!(o.status.success());
    let path = w.path().join("effective.toml");
    std::fs::write(&path, &o.stdout).unwrap();
    let again = w.cmd(&["config", "--config", path.to_str().unwrap()]);
    let first = String::from_utf8(o.stdout).unwrap();
    let second = String::from_utf8(again.stdout).unwrap();
    // Same model, same hash; only the source line differs.
    assert_eq!(
        first.lines().skip(1).collect::<Vec<_>>(),
        second.lines().skip(1).collect::<Vec<_>>()
    );
}

/// Two identical orgs scored with `plan_weights.enterprise.product_experience = 45`:
/// a on plan enterprise, b on plan free (no weights of its own). Both score
/// user_engagement 0, product_experience 10, company_engagement 0, product_analytics 0
/// (see indicators::health_score_drop_against_a_previous_run).
fn run_two_plans(w: &Workdir) {
    identical_quiet_orgs(w, &["a", "b"]);
    w.write(
        "accounts",
        &accounts_full(&[
            ("a", 1.0, 1.0, "enterprise", "2027-06-01"),
            ("b", 1.0, 1.0, "free", "2027-06-01"),
        ]),
    );
    let cfg = w.path().join("plans.toml");
    std::fs::write(
        &cfg,
        "[plan_weights.enterprise]\nproduct_experience = 45.0\n",
    )
    .unwrap();
    w.run(&["--config", cfg.to_str().unwrap()]);
}

#[test]
fn per_plan_weights_choose_the_org_s_weight_set() {
    let w = Workdir::new();
    run_two_plans(&w);
    // enterprise: (15*0 + 45*10 + 5*0 + 33*0) / (15+45+5+33) = 450/98.
    assert_close(
        w.health_f64("a", "health_score"),
        450.0 / 98.0,
        "enterprise",
    );
    // free keeps the default weights: 50/58.
    assert_close(w.health_f64("b", "health_score"), 50.0 / 58.0, "free");
}

#[test]
fn explain_charges_points_lost_at_the_org_s_plan_weights() {
    let w = Workdir::new();
    run_two_plans(&w);
    // health records the weights each org was scored with.
    assert_eq!(w.health_f64("a", "product_experience_weight"), Some(45.0));
    assert_eq!(w.health_f64("b", "product_experience_weight"), Some(5.0));
    assert_eq!(w.health_f64("a", "product_analytics_weight"), Some(33.0));
    let explain = |org: &str| {
        let o = w.cmd(&["explain", org, "--out", w.out().to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let row = |text: &str, cat: &str| -> String {
        let line = text.lines().find(|l| l.starts_with(cat)).unwrap();
        line.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    // The input folder is not needed: the weights come from the run's health table.
    std::fs::remove_dir_all(w.input()).unwrap();
    // a (enterprise): weights 15 + 45 + 5 + 33 = 98 over the scored categories;
    // points lost = weight * (10 - score) / 98: 15*10/98 = 1.53, 45*0 = 0,
    // 5*10/98 = 0.51, 33*10/98 = 3.37.
    let a = explain("a");
    assert!(a.contains("Weights of the org's plan"), "{a}");
    assert_eq!(row(&a, "user_engagement"), "user_engagement 15 0.00 1.53");
    assert_eq!(
        row(&a, "product_experience"),
        "product_experience 45 10.00 0.00"
    );
    assert_eq!(
        row(&a, "company_engagement"),
        "company_engagement 5 0.00 0.51"
    );
    assert_eq!(
        row(&a, "product_analytics"),
        "product_analytics 33 0.00 3.37"
    );
    // b (free, no weights of its own): defaults, 15 + 5 + 5 + 33 = 58; 33*10/58 = 5.69.
    let b = explain("b");
    assert!(!b.contains("Weights of the org's plan"), "{b}");
    assert_eq!(
        row(&b, "product_experience"),
        "product_experience 5 10.00 0.00"
    );
    assert_eq!(
        row(&b, "product_analytics"),
        "product_analytics 33 0.00 5.69"
    );
}

/// A config that adds an event set, a URL set, a category and three metrics, scored
/// from the rich fixture (tests/metrics.rs) with values worked out by hand.
fn run_with_added_metrics(w: &Workdir, viewers_window: u32) {
    let cfg = w.path().join("added.toml");
    std::fs::write(
        &cfg,
        format!(
            "[event_sets]\ninsight_viewing = [\"insight viewed\"]\n\
             [url_sets.blog_visit]\npath_prefix = \"/blog\"\n\
             [categories.insight_reading]\nweight = 10.0\n\
             [metrics.insight_viewers_pct]\ncategory = \"insight_reading\"\n\
             measure = \"members_with_event_pct\"\nevent_set = \"insight_viewing\"\n\
             window_days = {viewers_window}\nhealthy = \">= 50\"\npoor = \"< 25\"\n\
             [metrics.blog_visits_7d]\ncategory = \"insight_reading\"\nmeasure = \"event_count\"\n\
             event_set = \"blog_visit\"\nwindow_days = 7\nhealthy = \">= 1\"\npoor = \"< 1\"\n\
             [metrics.blog_readers_7d]\ncategory = \"insight_reading\"\n\
             measure = \"members_with_event\"\nevent_set = \"blog_visit\"\n\
             window_days = 7\nhealthy = \">= 2\"\npoor = \"< 1\"\n"
        ),
    )
    .unwrap();
    w.run(&["--config", cfg.to_str().unwrap()]);
}

#[test]
fn a_config_adds_an_event_set_a_url_set_a_category_and_metrics() {
    let w = Workdir::new();
    rich_fixture(&w);
    // a's members at as_of (2026-11-23): a1, a2, a3, a5 (a4 was removed on 11-01): 4.
    // "insight viewed" by members: a1 on 10-01, a3 on 09-24 00:00. A 60-day window
    // starts on 09-24: both, 100 * 2 / 4 = 50, healthy (>= 50) at its boundary.
    run_with_added_metrics(&w, 60);
    assert_eq!(
        w.score("a", "insight_viewers_pct"),
        (Some(50.0), Some("healthy".into()), Some(10.0))
    );
    // One page view under /blog in the last 7 days (a2, posthog.com/blog/docs on
    // 11-20; the stranger's and the other paths do not count): 1 visit, 1 member.
    assert_eq!(
        w.score("a", "blog_visits_7d"),
        (Some(1.0), Some("healthy".into()), Some(10.0))
    );
    assert_eq!(
        w.score("a", "blog_readers_7d"),
        (Some(1.0), Some("concerning".into()), Some(5.0))
    );
    // b (one member, no such events): 0 of each; c (no members): null percentage.
    assert_eq!(
        w.score("b", "insight_viewers_pct"),
        (Some(0.0), Some("poor".into()), Some(0.0))
    );
    assert_eq!(w.score("c", "insight_viewers_pct").0, None);
    // The new category: the mean of its scored metrics, (10 + 10 + 5) / 3, weight 10.
    assert_close(
        w.health_f64("a", "insight_reading_score"),
        25.0 / 3.0,
        "category",
    );
    assert_eq!(w.health_f64("a", "insight_reading_weight"), Some(10.0));
    // The health score weighs it in beside the default categories.
    let h = w.read("health");
    let cats = [
        ("user_engagement", 15.0),
        ("product_experience", 5.0),
        ("company_engagement", 5.0),
        ("product_analytics", 33.0),
        ("session_replay", 20.0),
        ("feature_flags_experiments", 17.0),
        ("surveys_data_warehouse", 5.0),
        ("insight_reading", 10.0),
    ];
    let (mut sum, mut total) = (0.0, 0.0);
    for (c, weight) in cats {
        if let Some(s) = cell_f64(&h, "org_id", "a", &format!("{c}_score")) {
            sum += weight * s;
            total += weight;
        }
    }
    assert_close(w.health_f64("a", "health_score"), sum / total, "health");
    // A 59-day window starts on 09-25: only a1, 25%, concerning at the poor boundary.
    run_with_added_metrics(&w, 59);
    assert_eq!(
        w.score("a", "insight_viewers_pct"),
        (Some(25.0), Some("concerning".into()), Some(5.0))
    );
}

#[test]
fn an_incomplete_new_metric_is_bad_input_naming_the_key() {
    let w = Workdir::new();
    rich_fixture(&w);
    let cfg = w.path().join("incomplete.toml");
    std::fs::write(
        &cfg,
        "[metrics.insight_viewers_pct]\ncategory = \"user_engagement\"\n\
         measure = \"members_with_event_pct\"\nevent_set = \"insight_analysis\"\n\
         window_days = 14\nhealthy = \">= 40\"\n",
    )
    .unwrap();
    let o = w.try_run(&["--as-of", AS_OF, "--config", cfg.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("metrics.insight_viewers_pct.poor"),
        "{stderr}"
    );
    assert!(stderr.contains("incomplete.toml"), "{stderr}");
    assert!(!w.out().exists(), "nothing written");
}

#[test]
fn previous_run_over_two_generated_days() {
    let w = Workdir::new();
    w.generate(20, 80, 11);
    let input = w.input();
    // Day 1: as_of 2026-11-22, into day1/. Drop org_00003 from it: a "new" org on day 2.
    let day1 = w.path().join("day1");
    let o = w.cmd(&[
        "run",
        "--quiet",
        "--input",
        input.to_str().unwrap(),
        "--out",
        day1.to_str().unwrap(),
        "--as-of",
        "2026-11-22",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h1 = read_parquet(&day1.join("health.parquet"));
    let kept = h1
        .clone()
        .lazy()
        .filter(col("org_id").neq(lit("org_00003")))
        .collect()
        .unwrap();
    write_parquet(&day1.join("health.parquet"), &kept);
    // Day 2: as_of 2026-11-23 with --previous day1.
    w.run(&["--previous", day1.to_str().unwrap()]);
    let h2 = w.read("health");
    let mut drops = Vec::new();
    for r in 0..h2.height() {
        let org = h2
            .column("org_id")
            .unwrap()
            .str()
            .unwrap()
            .get(r)
            .unwrap()
            .to_string();
        let now = h2
            .column("health_score")
            .unwrap()
            .f64()
            .unwrap()
            .get(r)
            .unwrap();
        let prev = h2
            .column("previous_health_score")
            .unwrap()
            .f64()
            .unwrap()
            .get(r);
        let change = h2
            .column("health_score_change")
            .unwrap()
            .f64()
            .unwrap()
            .get(r);
        if org == "org_00003" {
            assert_eq!((prev, change), (None, None), "new org");
            continue;
        }
        let was = cell_f64(&h1, "org_id", &org, "health_score").unwrap();
        assert_eq!(prev, Some(was), "{org} previous");
        assert_close(change, now - was, &org);
        if was - now >= 2.0 {
            drops.push(org);
        }
    }
    assert_eq!(fired_for(&w, "health_score_drop"), drops);
}
