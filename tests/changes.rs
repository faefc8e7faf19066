//! `metric_changes` (issue 22) over real runs: every org's contributions add up to
//! its `health_score_change`, with per-plan weights too. (The split itself is worked
//! out by hand in `changes`' unit tests.)

use polars::prelude::*;

use crate::util::*;

#[test]
fn every_org_s_contributions_add_up_to_its_score_change() {
    let w = Workdir::new();
    w.generate(30, 70, 5);
    // Enterprise orgs weigh product experience 45: their shares use their own weights.
    let config = w.path().join("plans.toml");
    std::fs::write(
        &config,
        "[plan_weights.enterprise]\nproduct_experience = 45.0\n[run]\nfeed_check_days = 0\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    w.run_at("2026-11-02", &["--config", config]);
    w.run_at("2026-11-23", &["--config", config]);
    let health = w.read("health");
    let changes = w.read("metric_changes");
    assert!(changes.height() > 0);
    let sums = changes
        .clone()
        .lazy()
        .group_by([col("org_id")])
        .agg([col("contribution").sum()])
        .collect()
        .unwrap();
    let orgs = health.column("org_id").unwrap().str().unwrap();
    let change = health.column("health_score_change").unwrap().f64().unwrap();
    let mut checked = 0;
    for i in 0..health.height() {
        let (Some(org), Some(want)) = (orgs.get(i), change.get(i)) else {
            continue;
        };
        let got = if want == 0.0
            && !sums
                .column("org_id")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .any(|o| o == Some(org))
        {
            0.0
        } else {
            cell_f64(&sums, "org_id", org, "contribution").unwrap()
        };
        assert!(
            (got - want).abs() < 1e-9,
            "{org}: contributions {got}, change {want}"
        );
        checked += 1;
    }
    assert!(checked >= 25, "{checked} orgs scored in both runs");
    // The rows say when they compare.
    let prev = changes
        .column("previous_as_of")
        .unwrap()
        .cast(&DataType::String)
        .unwrap();
    assert!(prev.str().unwrap().iter().all(|d| d == Some("2026-11-02")));
}

#[test]
fn explain_since_tells_the_same_split_in_sentences() {
    let w = Workdir::new();
    w.generate(30, 70, 5);
    let config = w.path().join("no_check.toml");
    std::fs::write(&config, "[run]\nfeed_check_days = 0\n").unwrap();
    let config = config.to_str().unwrap();
    w.run_at("2026-11-02", &["--config", config]);
    w.run_at("2026-11-23", &["--config", config]);
    let changes = w.read("metric_changes");
    let org = strings(&changes, "org_id")[0].clone();
    let out = w.out();
    // The 11-02 entry is the latest on or before 11-05.
    let o = w.cmd(&[
        "explain",
        &org,
        "--out",
        out.to_str().unwrap(),
        "--since",
        "2026-11-05",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let health = w.read("health");
    let (before, after) = (
        cell_f64(&health, "org_id", &org, "previous_health_score").unwrap(),
        cell_f64(&health, "org_id", &org, "health_score").unwrap(),
    );
    let since = text
        .lines()
        .find(|l| l.starts_with("Since 2026-11-02: health score "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        since.ends_with(&format!("({:+.2}).", after - before)),
        "{since}"
    );
    assert!(
        text.contains(&format!("These add up to {:+.2}.", after - before)),
        "{text}"
    );
    // Every metric_changes row of the org is a line.
    let rows = changes
        .clone()
        .lazy()
        .filter(col("org_id").eq(lit(org.clone())))
        .collect()
        .unwrap();
    for m in rows
        .column("metric")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
    {
        assert!(text.contains(&format!("- {m} (")), "{m}: {text}");
    }
    // Before any history entry: a usage error.
    let o = w.cmd(&[
        "explain",
        &org,
        "--out",
        out.to_str().unwrap(),
        "--since",
        "2026-10-01",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no history entry on or before"));
}
