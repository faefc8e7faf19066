//! `backtest`: churn labels, the accounts left out, and scores exactly as `run`'s.

use polars::prelude::*;

use crate::util::*;

fn churns(rows: &[(&str, &str)]) -> DataFrame {
    DataFrame::new_infer_height(vec![
        Column::new(
            "org_id".into(),
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        ),
        Column::new(
            "churned_at".into(),
            rows.iter().map(|r| days(r.1)).collect::<Vec<_>>(),
        )
        .cast(&DataType::Date)
        .unwrap(),
    ])
    .unwrap()
}

fn backtest(w: &Workdir, from: &str, to: &str, horizon: &str) -> std::process::Output {
    backtest_into(w, "bt", from, to, horizon, &[])
}

/// `backtest` of the workdir's input into `w.path()/out`, with `extra` arguments.
fn backtest_into(
    w: &Workdir,
    out: &str,
    from: &str,
    to: &str,
    horizon: &str,
    extra: &[&str],
) -> std::process::Output {
    let out = w.path().join(out);
    let input = w.input();
    let mut args = vec![
        "backtest",
        "--quiet",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--from",
        from,
        "--to",
        to,
        "--horizon",
        horizon,
    ];
    args.extend_from_slice(extra);
    w.cmd(&args)
}

#[test]
fn without_churn_labels_it_says_where_they_go_and_writes_nothing() {
    let w = Workdir::new();
    w.generate(6, 40, 2);
    // generate writes churn into accounts: without accounts, no labels anywhere.
    std::fs::remove_file(w.input().join("accounts.parquet")).unwrap();
    let o = backtest(&w, "2026-11-16", "2026-11-23", "30");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("churned_at") && err.contains("churns table"),
        "{err}"
    );
    assert!(!w.path().join("bt").exists());
}

#[test]
fn one_date_measures_run_s_scores_against_the_labels() {
    let w = Workdir::new();
    w.generate(20, 60, 5);
    // The labels are only the churns table's (generate's accounts carry its own churn).
    std::fs::remove_file(w.input().join("accounts.parquet")).unwrap();
    // org 1 churns within 30 days of as_of; org 2 churned before as_of (left out);
    // org 3 churns after the horizon (stayed); org 4 exactly at as_of + 30 (churned).
    w.write(
        "churns",
        &churns(&[
            ("org_00001", "2026-12-10"),
            ("org_00002", "2026-11-01"),
            ("org_00003", "2027-06-01"),
            ("org_00004", "2026-12-23"),
        ]),
    );
    w.run_at("2026-11-23", &["--allow-incomplete"]);
    let o = backtest(&w, "2026-11-23", "2026-11-23", "30");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bt = read_parquet(&w.path().join("bt/backtest.parquet"));
    assert_eq!(bt.height(), 1);
    let u = |c: &str| {
        bt.column(c)
            .unwrap()
            .cast(&DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
    };

    // The same figures from run's health table, counted here pair by pair.
    let health = w.read("health");
    let orgs = strings(&health, "org_id");
    let scores: Vec<Option<f64>> = health
        .column("health_score")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    let labels: Vec<Option<String>> = health
        .column("health_label")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|l| l.map(String::from))
        .collect();
    let churned = |o: &str| o == "org_00001" || o == "org_00004";
    let kept: Vec<usize> = (0..orgs.len())
        .filter(|&i| orgs[i] != "org_00002")
        .collect();
    assert_eq!(u("accounts"), Some(19.0));
    assert_eq!(u("churned"), Some(2.0));
    let unscored = kept.iter().filter(|&&i| scores[i].is_none()).count();
    assert_eq!(u("unscored"), Some(unscored as f64));
    // AUC of 10 - score: each churned-stayed pair, the churned riskier 1, tied 0.5.
    let (mut wins, mut pairs) = (0.0, 0.0);
    for &p in kept
        .iter()
        .filter(|&&i| churned(&orgs[i]) && scores[i].is_some())
    {
        for &n in kept
            .iter()
            .filter(|&&i| !churned(&orgs[i]) && scores[i].is_some())
        {
            let (rp, rn) = (10.0 - scores[p].unwrap(), 10.0 - scores[n].unwrap());
            wins += if rp > rn {
                1.0
            } else if rp == rn {
                0.5
            } else {
                0.0
            };
            pairs += 1.0;
        }
    }
    let auc = u("auc").unwrap();
    assert!(
        (auc - wins / pairs).abs() < 1e-12,
        "{auc} vs {}",
        wins / pairs
    );
    // Precision of "poor": churned among the poor (null when none is poor).
    let poor: Vec<usize> = kept
        .iter()
        .copied()
        .filter(|&i| labels[i].as_deref() == Some("poor"))
        .collect();
    let want = (!poor.is_empty())
        .then(|| poor.iter().filter(|&&i| churned(&orgs[i])).count() as f64 / poor.len() as f64);
    assert_eq!(u("precision_poor"), want);
    // The CSV beside it.
    assert!(w.path().join("bt/backtest.csv").exists());

    // Signals alone: days since last seen (higher is riskier) and a category score
    // (higher is healthier), each AUC counted pair by pair from run's health.
    let signals = read_parquet(&w.path().join("bt/backtest_signals.parquet"));
    let names = strings(&signals, "signal");
    for (signal, column, sign) in [
        ("days_since_last_seen", "days_since_last_seen", 1.0),
        ("user_engagement", "user_engagement_score", -1.0),
    ] {
        let values: Vec<Option<f64>> = health
            .column(column)
            .unwrap()
            .cast(&DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .collect();
        let (mut wins, mut pairs) = (0.0, 0.0);
        for &p in kept
            .iter()
            .filter(|&&i| churned(&orgs[i]) && values[i].is_some())
        {
            for &n in kept
                .iter()
                .filter(|&&i| !churned(&orgs[i]) && values[i].is_some())
            {
                let (rp, rn) = (sign * values[p].unwrap(), sign * values[n].unwrap());
                wins += if rp > rn {
                    1.0
                } else if rp == rn {
                    0.5
                } else {
                    0.0
                };
                pairs += 1.0;
            }
        }
        let row = names.iter().position(|n| n == signal).unwrap();
        let got = signals.column("auc").unwrap().f64().unwrap().get(row);
        let want = (pairs > 0.0).then(|| wins / pairs);
        assert_eq!(got, want, "{signal}");
        let covered = kept.iter().filter(|&&i| values[i].is_some()).count() as f64;
        let coverage = signals.column("coverage").unwrap().f64().unwrap().get(row);
        assert_eq!(coverage, Some(covered / kept.len() as f64), "{signal}");
    }
}

#[test]
fn generated_churn_is_foretold_by_the_score_near_the_end() {
    // generate plants churn in declining and gone-quiet accounts in the 90 days after
    // the data ends: a week before that, the score ranks them riskier.
    let w = Workdir::new();
    w.generate(60, 90, 3);
    let o = backtest(&w, "2026-11-16", "2026-11-16", "90");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bt = read_parquet(&w.path().join("bt/backtest.parquet"));
    let churned = bt.column("churned").unwrap().u32().unwrap().get(0).unwrap();
    assert!(churned >= 5, "{churned} churned");
    let auc = bt.column("auc").unwrap().f64().unwrap().get(0).unwrap();
    assert!(auc > 0.7, "AUC {auc}");
    // The page: one ROC curve for the date, AUC and lift lines, nothing to fetch.
    let page = std::fs::read_to_string(w.path().join("bt/backtest.html")).unwrap();
    assert_eq!(page.matches("class=\"curve\"").count(), 1);
    assert!(page.contains(&format!("2026-11-16: AUC {auc:.3}; {churned} of ")));
    assert_fetches_nothing(&page);
}

#[test]
fn fitted_weights_are_never_worse_on_their_training_half_and_load_as_a_config() {
    let w = Workdir::new();
    w.generate(60, 90, 3);
    let out = w.path().join("bt");
    let o = backtest_into(
        &w,
        "bt",
        "2026-10-19",
        "2026-11-16",
        "90",
        &["--fit-weights"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.join("fitted_weights.toml")).unwrap();
    // "# earlier half (...): current A, proposed B"
    let line = text
        .lines()
        .find(|l| l.starts_with("# earlier half"))
        .unwrap();
    let number = |key: &str| -> f64 {
        let at = line.find(key).unwrap() + key.len();
        line[at..]
            .split(',')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (current, proposed) = (number("current "), number("proposed "));
    assert!(proposed >= current, "{line}");
    // Non-negative weights summing to 100.
    let weights: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("weight = "))
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(weights.len(), 7);
    assert!(weights.iter().all(|&x| x >= 0.0), "{weights:?}");
    assert!(
        (weights.iter().sum::<f64>() - 100.0).abs() < 1e-9,
        "{weights:?}"
    );
    // The file is a config the job takes.
    let config = out.join("fitted_weights.toml");
    let config = ["--config", config.to_str().unwrap()];
    let o = backtest_into(&w, "bt2", "2026-11-16", "2026-11-16", "90", &config);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
