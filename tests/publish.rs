//! Publishing a run (issue 22): run folders behind one `current` link switched
//! atomically, kill tests at every point of publishing, and the history entry that
//! feeds the next run's previous score.

use std::path::Path;

use crate::util::*;

/// The as_of a run's files say, read through the paths users know: the manifest's,
/// and each table's `as_of` column (every row), which must agree.
fn published_as_of(out: &Path) -> String {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let as_of = manifest["as_of"].as_str().unwrap().to_string();
    for table in ["health.parquet", "indicators.parquet", "health.csv"] {
        let dates: Vec<String> = if table.ends_with(".csv") {
            let text = std::fs::read_to_string(out.join(table)).unwrap();
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next().unwrap().split(',').collect();
            let i = header.iter().position(|h| *h == "as_of").unwrap();
            lines
                .map(|l| l.split(',').nth(i).unwrap().to_string())
                .collect()
        } else {
            let df = read_parquet(&out.join(table));
            let col = df
                .column("as_of")
                .unwrap()
                .cast(&polars::prelude::DataType::String)
                .unwrap();
            col.str()
                .unwrap()
                .iter()
                .map(|d| d.unwrap().to_string())
                .collect()
        };
        assert!(
            dates.iter().all(|d| *d == as_of),
            "{table} holds {dates:?}, the manifest says {as_of}"
        );
    }
    as_of
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

/// A tiny input with an org that fires an indicator (so `indicators` has rows).
fn input(w: &Workdir) {
    minimal(w);
    w.write(
        "members",
        &members(&[("a", "a1", "owner", "2026-01-01", None)]),
    );
}

#[test]
fn tables_are_links_through_current_to_the_newest_of_three_run_folders() {
    let w = Workdir::new();
    input(&w);
    for _ in 0..4 {
        w.run(&[]);
    }
    let out = w.out();
    let current = std::fs::read_link(out.join("current")).unwrap();
    assert!(current.starts_with("runs"), "{current:?}");
    for file in [
        "health.parquet",
        "health.csv",
        "metric_scores.parquet",
        "manifest.json",
    ] {
        assert_eq!(
            std::fs::read_link(out.join(file)).unwrap(),
            Path::new("current").join(file),
            "{file}"
        );
        assert!(
            out.join(&current).join(file).is_file(),
            "{file} in the run folder"
        );
    }
    // The current run and the two before it; nothing staged is left.
    let runs = names(&out.join("runs"));
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(
        runs.last().map(String::as_str),
        current.file_name().and_then(|n| n.to_str())
    );
    assert_eq!(published_as_of(&out), AS_OF);
    // A format no longer asked for loses its link (it would name a file the
    // current run does not have).
    w.run(&["--format", "parquet"]);
    assert!(out.join("health.parquet").exists());
    assert!(out.join("health.csv").symlink_metadata().is_err());
}

#[test]
fn a_kill_at_any_point_of_publishing_leaves_one_run_s_tables() {
    let w = Workdir::new();
    input(&w);
    let out = w.out();
    w.run_at("2026-11-20", &[]);
    // Killed before the switch: the last run's tables; from the switch on: the new
    // run's. Every table agrees with the manifest at every point.
    for (point, expected) in [
        ("staged", "2026-11-20"),
        ("run_moved", "2026-11-20"),
        ("current_switched", "2026-11-21"),
        ("linked", "2026-11-21"),
        ("history_written", "2026-11-21"),
    ] {
        let o = w.try_run_at("2026-11-21", &[], &[("ACCOUNT_HEALTH_FAIL_AT", point)]);
        assert!(!o.status.success(), "{point}: the run was to be killed");
        assert_eq!(published_as_of(&out), expected, "killed at {point}");
    }
    // A run killed before its switch left no history entry; one killed after it had
    // its entry staged, put in place by the next run before it reads history.
    let o = w.try_run_at(
        "2026-11-21",
        &[],
        &[("ACCOUNT_HEALTH_FAIL_AT", "history_set_aside")],
    );
    assert!(!o.status.success());
    assert!(!out.join("history/as_of=2026-11-21").exists());
    assert_eq!(published_as_of(&out), "2026-11-21");
    w.run_at("2026-11-22", &[]);
    assert_eq!(published_as_of(&out), "2026-11-22");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["previous_run"]["as_of"], "2026-11-21");
    assert_eq!(
        names(&out.join("history")),
        ["as_of=2026-11-20", "as_of=2026-11-21", "as_of=2026-11-22"]
    );
    // The repaired 2026-11-21 entry is the published 2026-11-21 run's.
    let current_run = std::fs::read_link(out.join("current")).unwrap();
    let runs = names(&out.join("runs"));
    let before = out.join("runs").join(&runs[runs.len() - 2]);
    assert_ne!(out.join(&current_run), before);
    assert_eq!(
        std::fs::read(out.join("history/as_of=2026-11-21/health.parquet")).unwrap(),
        std::fs::read(before.join("health.parquet")).unwrap()
    );
    // No leftovers of the killed runs anywhere.
    for dir in [out.clone(), out.join("runs"), out.join("history")] {
        let left: Vec<String> = names(&dir)
            .into_iter()
            .filter(|n| n.starts_with('.') && n != ".lock")
            .collect();
        assert!(left.is_empty(), "{}: {left:?}", dir.display());
    }
    assert_eq!(names(&out.join("runs")).len(), 3);
}

#[test]
fn history_keeps_an_entry_per_as_of_and_gives_the_next_run_its_previous_score() {
    let w = Workdir::new();
    w.generate(6, 40, 3);
    // Six generated orgs are few enough for a Sunday to fall below half its median:
    // the feed check (tested on its own) is off here.
    std::fs::write(
        w.path().join("no_check.toml"),
        "[run]\nfeed_check_days = 0\n",
    )
    .unwrap();
    let no_check = w.path().join("no_check.toml");
    let config = ["--config", no_check.to_str().unwrap()];
    let out = w.out();
    w.run_at("2026-11-16", &config);
    let first = read_parquet(&out.join("history/as_of=2026-11-16/health.parquet"));
    w.run_at("2026-11-23", &config);
    // The previous score is the history entry's, org by org.
    let health = read_parquet(&out.join("health.parquet"));
    for org in strings(&first, "org_id") {
        assert_eq!(
            cell_f64(&health, "org_id", &org, "previous_health_score"),
            cell_f64(&first, "org_id", &org, "health_score"),
            "{org}"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["previous_run"]["source"], "history");
    assert_eq!(manifest["previous_run"]["as_of"], "2026-11-16");
    // Each entry holds the three tables, as Parquet.
    assert_eq!(
        names(&out.join("history/as_of=2026-11-23")),
        [
            "health.parquet",
            "indicators.parquet",
            "metric_scores.parquet"
        ]
    );
    // A re-run of an as_of replaces its entry, and takes the entry before it, not
    // itself, as the previous run.
    w.run_at("2026-11-23", &[]);
    assert_eq!(
        names(&out.join("history")),
        ["as_of=2026-11-16", "as_of=2026-11-23"]
    );
    let again = read_parquet(&out.join("health.parquet"));
    assert_eq!(
        again.column("previous_health_score").unwrap(),
        health.column("previous_health_score").unwrap()
    );
    // The first run had no earlier one.
    let first_prev = first.column("previous_health_score").unwrap();
    assert_eq!(first_prev.null_count(), first_prev.len());
}

#[test]
fn history_older_than_history_days_before_the_latest_as_of_is_removed() {
    let w = Workdir::new();
    input(&w);
    std::fs::write(w.path().join("short.toml"), "[run]\nhistory_days = 5\n").unwrap();
    let config = w.path().join("short.toml");
    let config = config.to_str().unwrap();
    for as_of in ["2026-11-01", "2026-11-04", "2026-11-08"] {
        w.run_at(as_of, &["--config", config]);
    }
    // 2026-11-08 minus 5 days is 2026-11-03: the entry of 11-01 goes, 11-04 stays.
    assert_eq!(
        names(&w.out().join("history")),
        ["as_of=2026-11-04", "as_of=2026-11-08"]
    );
    // An earlier as_of run later does not prune the later entries.
    w.run_at("2026-11-05", &["--config", config]);
    assert_eq!(
        names(&w.out().join("history")),
        ["as_of=2026-11-04", "as_of=2026-11-05", "as_of=2026-11-08"]
    );
    // A value out of range is bad input, named.
    std::fs::write(w.path().join("bad.toml"), "[run]\nhistory_days = 0\n").unwrap();
    let bad = w.path().join("bad.toml");
    let o = w.try_run_at("2026-11-08", &["--config", bad.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("run.history_days"));
}

/// Org `a` with 20 events a day from 2026-10-18 to 2026-11-21, and `last` events on
/// 2026-11-22 (a Sunday, the last day before as_of 2026-11-23).
fn feed(w: &Workdir, last: usize) {
    minimal(w);
    w.write("members", &one_member_each(&["a"]));
    let start = days("2026-10-18");
    let dates: Vec<String> = (start..days("2026-11-23"))
        .map(|d| {
            chrono::DateTime::from_timestamp(d as i64 * 86_400, 0)
                .unwrap()
                .format("%Y-%m-%d 12:00")
                .to_string()
        })
        .collect();
    let mut rows = Vec::new();
    for (i, date) in dates.iter().enumerate() {
        let n = if i + 1 == dates.len() { last } else { 20 };
        for _ in 0..n {
            rows.push(("a", "a1", "insight analyzed", date.as_str(), None));
        }
    }
    w.write("events", &events(&rows));
}

#[test]
fn a_feed_below_half_its_weekday_median_is_refused_with_exit_3_and_nothing_published() {
    let w = Workdir::new();
    feed(&w, 20);
    w.run(&[]);
    let before = std::fs::read(w.out().join("health.parquet")).unwrap();
    // Sunday 11-22 against the 4 Sundays before (20 each): 9 events is 45%.
    feed(&w, 9);
    let o = w.try_run_at(AS_OF, &[], &[]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("events 2026-11-22: 9 rows, 45% of the median 20 of the same weekday over the 4 week(s) before"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(w.out().join("health.parquet")).unwrap(),
        before
    );
    // --allow-incomplete publishes, and the manifest says so.
    w.run_at(AS_OF, &["--allow-incomplete"]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.out().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["feed_check"]["incomplete"], true);
    assert_eq!(manifest["feed_check"]["allowed"], true);
    // 10 events, exactly half, is not below: published, nothing to allow.
    feed(&w, 10);
    w.run_at(AS_OF, &[]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.out().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["feed_check"]["incomplete"], false);
    let days = manifest["feed_check"]["days"].as_array().unwrap();
    let sunday = days
        .iter()
        .find(|d| d["source"] == "events" && d["date"] == "2026-11-22")
        .unwrap();
    assert_eq!(sunday["ratio"], 0.5);
}

#[test]
fn query_reads_every_history_entry_as_one_table() {
    let w = Workdir::new();
    input(&w);
    for as_of in ["2026-11-16", "2026-11-23"] {
        w.run_at(as_of, &[]);
    }
    let out = w.out();
    let o = w.cmd(&[
        "query",
        "select cast(as_of as varchar) as d, count(*) as n from health_history group by as_of order by as_of",
        "--out",
        out.to_str().unwrap(),
        "--input",
        w.path().join("none").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "d,n\r\n2026-11-16,1\r\n2026-11-23,1\r\n"
    );
}

#[test]
fn a_second_writer_into_the_same_folder_is_refused_while_the_first_holds_it() {
    let w = Workdir::new();
    input(&w);
    w.run(&[]);
    // This test holds the folder's lock, as a running job would.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(w.out().join(".lock"))
        .unwrap();
    lock.lock().unwrap();
    let before = std::fs::read(w.out().join("health.parquet")).unwrap();
    let o = w.try_run_at("2026-11-24", &[], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is writing into"));
    assert_eq!(
        std::fs::read(w.out().join("health.parquet")).unwrap(),
        before
    );
    drop(lock);
    w.run_at("2026-11-24", &[]);
}

#[test]
fn a_current_run_without_its_history_entry_gets_one_linked_and_nothing_else_is_lost() {
    let w = Workdir::new();
    input(&w);
    w.run_at("2026-11-20", &[]);
    w.run_at("2026-11-21", &[]);
    // As if the 11-21 run was killed after its switch, its entry neither placed nor
    // staged: the next run links one from the run folder, and keeps the others.
    let history = w.out().join("history");
    std::fs::remove_dir_all(history.join("as_of=2026-11-21")).unwrap();
    w.run_at("2026-11-22", &[]);
    assert_eq!(
        names(&history),
        ["as_of=2026-11-20", "as_of=2026-11-21", "as_of=2026-11-22"]
    );
    let current_before = std::fs::read(history.join("as_of=2026-11-21/health.parquet")).unwrap();
    let runs = names(&w.out().join("runs"));
    let run_21 = w.out().join("runs").join(&runs[runs.len() - 2]);
    assert_eq!(
        current_before,
        std::fs::read(run_21.join("health.parquet")).unwrap()
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.out().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["previous_run"]["as_of"], "2026-11-21");
}
