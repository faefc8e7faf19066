//! `backfill` (issue 22): history for past dates from one read of the inputs, byte
//! for byte what separate runs at those dates write.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::*;

/// Every file under `OUT/history`, by relative path.
fn history(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(out.join("history")).unwrap().flatten() {
        for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
            files.insert(
                format!(
                    "{}/{}",
                    entry.file_name().to_string_lossy(),
                    file.file_name().to_string_lossy()
                ),
                std::fs::read(file.path()).unwrap(),
            );
        }
    }
    files
}

/// Runs at 2026-11-05 into two folders; then backfills `dates` (every 7 days) into
/// one and runs them one by one into the other, both with `config`; every history
/// file must be the same bytes. Gives the backfilled folder.
fn compare_with_separate_runs(w: &Workdir, config: &str, dates: &[&str]) -> std::path::PathBuf {
    let config_path = w.path().join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    let config = config_path.to_str().unwrap();
    let input = w.input();
    let (a, b) = (w.path().join("a"), w.path().join("b"));
    for dir in [&a, &b] {
        let _ = std::fs::remove_dir_all(dir);
    }
    let run = |out: &Path, as_of: &str| {
        let o = w.cmd(&[
            "run",
            "--quiet",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--as-of",
            as_of,
            "--config",
            config,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    // Both folders already hold an entry between the dates (11-05).
    run(&a, "2026-11-05");
    run(&b, "2026-11-05");
    let o = w.cmd(&[
        "backfill",
        "--quiet",
        "--input",
        input.to_str().unwrap(),
        "--out",
        a.to_str().unwrap(),
        "--from",
        dates[0],
        "--to",
        dates[dates.len() - 1],
        "--every",
        "7",
        "--config",
        config,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for as_of in dates {
        run(&b, as_of);
    }
    let (backfilled, separate) = (history(&a), history(&b));
    assert_eq!(
        backfilled.keys().collect::<Vec<_>>(),
        separate.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &separate {
        assert!(
            backfilled[name] == *bytes,
            "{name} differs from the separate run's"
        );
    }
    a
}

#[test]
fn backfilled_history_is_byte_identical_to_separate_runs_at_the_same_dates() {
    let w = Workdir::new();
    w.generate(12, 60, 9);
    // Few orgs make noisy days: the feed check is off (tested on its own). The
    // 11-09 date takes the 11-05 entry as its previous run, not the backfilled 11-02.
    let a = compare_with_separate_runs(
        &w,
        "[run]\nfeed_check_days = 0\n",
        &[
            "2026-10-26",
            "2026-11-02",
            "2026-11-09",
            "2026-11-16",
            "2026-11-23",
        ],
    );
    assert_eq!(history(&a).len(), 6 * 3, "six entries of three tables");
    // The current run is left alone: still the 11-05 run's.
    let manifest = std::fs::read_to_string(a.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"as_of\": \"2026-11-05\""));
}

/// Ten weekly dates: more than a batch of backfilled dates (8), the first ones before
/// the generated events begin (`generate(12, 60, 9)`: 60 days to 11-23).
const TEN_WEEKS: [&str; 10] = [
    "2026-09-21",
    "2026-09-28",
    "2026-10-05",
    "2026-10-12",
    "2026-10-19",
    "2026-10-26",
    "2026-11-02",
    "2026-11-09",
    "2026-11-16",
    "2026-11-23",
];

#[test]
fn backfill_across_batches_of_stacked_dates_matches_separate_runs() {
    // Ten dates: two batches of dates scored stacked (8 a batch), the first date
    // with no previous run beside seven with one, dates before the events begin
    // beside dates with events, 11-09 reading the 11-05 entry from disk, and the
    // second batch's first date (11-16) taking the first batch's last as its
    // previous run.
    let w = Workdir::new();
    w.generate(12, 60, 9);
    let a = compare_with_separate_runs(&w, "[run]\nfeed_check_days = 0\n", &TEN_WEEKS);
    assert_eq!(history(&a).len(), 11 * 3, "eleven entries of three tables");
}

#[test]
fn backfill_of_many_dates_without_a_previous_run_matches_separate_runs() {
    // History kept 3 days, dates a week apart: no date has a previous run, so a
    // whole batch is stacked without one (no health_score_drop rule).
    let w = Workdir::new();
    w.generate(12, 60, 9);
    let config = "[run]\nfeed_check_days = 0\nhistory_days = 3\n";
    compare_with_separate_runs(&w, config, &TEN_WEEKS[..9]);
}

#[test]
fn backfill_prunes_as_separate_runs_would_before_handing_a_date_on() {
    let w = Workdir::new();
    w.generate(12, 60, 9);
    // History kept 10 days: 10-19, older than 11-05 minus 10 days, is pruned as soon
    // as a separate run writes it, so the run of 10-26 has no previous run; the
    // backfill must not hand it 10-19.
    let a = compare_with_separate_runs(
        &w,
        "[run]\nfeed_check_days = 0\nhistory_days = 10\n",
        &["2026-10-19", "2026-10-26", "2026-11-02", "2026-11-09"],
    );
    let kept: Vec<String> = history(&a)
        .keys()
        .map(|k| k.split('/').next().unwrap().to_string())
        .collect();
    assert!(!kept.iter().any(|k| k == "as_of=2026-10-19"), "{kept:?}");
}

#[test]
fn backfill_dates_must_make_sense() {
    let w = Workdir::new();
    minimal(&w);
    for (from, to, every) in [
        ("2026-11-10", "2026-11-01", "7"),
        ("2026-11-01", "2026-11-10", "0"),
    ] {
        let o = w.cmd(&[
            "backfill",
            "--quiet",
            "--input",
            w.input().to_str().unwrap(),
            "--out",
            w.out().to_str().unwrap(),
            "--from",
            from,
            "--to",
            to,
            "--every",
            every,
        ]);
        assert_eq!(o.status.code(), Some(2), "{from} {to} {every}");
        assert!(!w.out().join("history").exists());
    }
}

#[test]
fn backfill_with_clear_at_matches_separate_runs_too() {
    // With a `clear_at`, each date's indicators read the date before's: the backfill
    // follows them in order, across batches (10 dates: the last indicators of the
    // first batch handed to the second).
    let w = Workdir::new();
    w.generate(12, 60, 9);
    compare_with_separate_runs(
        &w,
        "[run]\nfeed_check_days = 0\n[indicators.event_volume_drop]\nclear_at = 5.0\n[indicators.query_failure_rate_high]\nclear_at = 2.0\n",
        &TEN_WEEKS,
    );
}
