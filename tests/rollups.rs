//! Per-day rollups (issue 27): `rollup`, then `run --rollups`, gives the raw run's
//! tables byte for byte, whether the rollups hold every day or only the older ones;
//! late events for a rolled day count once the day is rolled again; rollups built
//! for other path prefixes are refused.

use std::path::Path;
use std::process::Output;

use polars::prelude::*;

use crate::util::*;

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn rollup(w: &Workdir, extra: &[&str]) -> Output {
    let mut args = vec!["--quiet", "rollup", "--input", "in", "--out", "r"];
    args.extend_from_slice(extra);
    w.cmd(&args)
}

fn run_into(w: &Workdir, out: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--quiet", "run", "--input", "in", "--out", out, "--as-of", AS_OF,
    ];
    args.extend_from_slice(extra);
    w.cmd(&args)
}

/// Every output file of two runs, byte for byte.
fn assert_same_tables(a: &Path, b: &Path) {
    let mut names: Vec<String> = std::fs::read_dir(a.join("current"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".csv") || n.ends_with(".parquet"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 16, "{names:?}");
    for name in names {
        let x = std::fs::read(a.join("current").join(&name)).unwrap();
        let y = std::fs::read(b.join("current").join(&name)).unwrap();
        assert!(
            x == y,
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// Where runs keep the rollups' digests (`events::digests::FOLDER`).
const DIGESTS: &str = ".account-health-digests";

/// The files under a rollups folder's digests folder, by path under it, but each
/// layout's mark of when it was last used and its fingerprints' key.
fn digest_files(rollups: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let root = rollups.join(DIGESTS);
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if ![".used", ".key"].contains(&&*entry.file_name().to_string_lossy()) {
                let under = path.strip_prefix(&root).unwrap();
                found.push(under.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

fn rollup_days(w: &Workdir) -> Vec<String> {
    let mut days: Vec<String> = std::fs::read_dir(w.path().join("r"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("day="))
        .collect();
    days.sort();
    days
}

#[test]
fn a_run_from_rollups_equals_the_raw_run_in_either_shape() {
    for shape in ["posthog", "flat"] {
        let w = Workdir::new();
        if shape == "flat" {
            w.generate_flat(12, 60, 4);
        } else {
            w.generate(12, 60, 4);
        }
        ok(run_into(&w, "raw", &[]));
        ok(rollup(&w, &[]));
        let days = rollup_days(&w);
        assert!(days.len() >= 59, "{shape}: {days:?}");
        ok(run_into(&w, "from_rollups", &["--rollups", "r"]));
        assert_same_tables(&w.path().join("raw"), &w.path().join("from_rollups"));
        // `inputs.events.rows` counts raw rows read: none when every day is held.
        assert_eq!(event_rows(&w.path().join("from_rollups")), 0, "{shape}");
        // At any thread count and chunk size (rollup rows go through the pass's
        // phases like events).
        let mut args = vec!["--quiet", "run", "--input", "in", "--out", "one_thread"];
        args.extend(["--as-of", AS_OF, "--rollups", "r", "--threads", "1"]);
        ok(w.cmd_env(&args, &[("ACCOUNT_HEALTH_EVENTS_CHUNK_ROWS", "777")]));
        assert_same_tables(&w.path().join("raw"), &w.path().join("one_thread"));

        // Mixed: rollups for all but the last three days, raw events for those.
        std::fs::remove_dir_all(w.path().join("r")).unwrap();
        ok(rollup(&w, &["--to", "2026-11-19"]));
        assert_eq!(
            rollup_days(&w).last().map(String::as_str),
            Some("day=2026-11-19")
        );
        ok(run_into(&w, "mixed", &["--rollups", "r"]));
        assert_same_tables(&w.path().join("raw"), &w.path().join("mixed"));
        let manifest = std::fs::read_to_string(w.path().join("mixed/manifest.json")).unwrap();
        assert!(
            manifest.contains("\"last_rollup_day\": \"2026-11-19\""),
            "{manifest}"
        );
        assert!(manifest.contains("\"raw_days\": 3"), "{shape}: {manifest}");
        let (raw, mixed) = (
            event_rows(&w.path().join("raw")),
            event_rows(&w.path().join("mixed")),
        );
        assert!(0 < mixed && mixed * 10 < raw, "{shape}: {mixed} of {raw}");
    }
}

/// The manifest's `inputs` rows of the events.
fn event_rows(out: &Path) -> u64 {
    let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "events")
        .unwrap()["rows"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_rollup_row_counts_per_org_member_day_event_and_keeps_page_paths_under_the_prefixes() {
    let w = Workdir::new();
    w.write(
        "members",
        &members(&[("a", "a1", "owner", "2026-01-01", None)]),
    );
    w.write(
        "events",
        &events(&[
            (
                "a",
                "a1",
                "$pageview",
                "2026-11-20 09:00",
                Some("https://posthog.com/docs/x?q=1"),
            ),
            (
                "a",
                "a1",
                "$pageview",
                "2026-11-20 11:00",
                Some("https://posthog.com/docs/x#top"),
            ),
            (
                "a",
                "a1",
                "$pageview",
                "2026-11-20 10:00",
                Some("https://posthog.com/pricing"),
            ),
            (
                "a",
                "a1",
                "insight analyzed",
                "2026-11-20 12:00",
                Some("https://posthog.com/docs/x"),
            ),
            ("a", "a1", "insight analyzed", "2026-11-21 08:00", None),
            ("b", "b1", "insight analyzed", "2026-11-21 08:30", None),
        ]),
    );
    w.write(
        "usage",
        &usage(&[("a", "2026-11-01", &[("event_count_in_period", 1)])]),
    );
    ok(rollup(&w, &[]));
    assert_eq!(rollup_days(&w), ["day=2026-11-20", "day=2026-11-21"]);
    let day = read_parquet(&w.path().join("r/day=2026-11-20/part-0.parquet"));
    // By hand: the two /docs/x page views are one row (query and fragment dropped),
    // the /pricing one keeps no path (no URL set reads it), an insight event keeps
    // no path (not a page view).
    let rows: Vec<(String, Option<String>, i64, i64, i64)> = (0..day.height())
        .map(|i| {
            let get = |c: &str| day.column(c).unwrap().get(i).unwrap();
            (
                get("event").get_str().unwrap().to_string(),
                get("path").get_str().map(str::to_string),
                get("count").extract::<i64>().unwrap(),
                get("first_us").extract::<i64>().unwrap(),
                get("last_us").extract::<i64>().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "$pageview".into(),
                None,
                1,
                us("2026-11-20 10:00"),
                us("2026-11-20 10:00")
            ),
            (
                "$pageview".into(),
                Some("/docs/x".into()),
                2,
                us("2026-11-20 09:00"),
                us("2026-11-20 11:00")
            ),
            (
                "insight analyzed".into(),
                None,
                1,
                us("2026-11-20 12:00"),
                us("2026-11-20 12:00")
            ),
        ]
    );
    assert_eq!(strings(&day, "org_id"), ["a", "a", "a"]);
    assert_eq!(strings(&day, "distinct_id"), ["a1", "a1", "a1"]);
    // Non-members are rolled up too: membership is the run's business.
    let next = read_parquet(&w.path().join("r/day=2026-11-21/part-0.parquet"));
    assert_eq!(strings(&next, "org_id"), ["a", "b"]);
}

#[test]
fn late_events_for_a_rolled_day_count_once_that_day_is_rolled_again() {
    let w = Workdir::new();
    w.generate_flat(12, 60, 4);
    // The flat events are hive folders of files: a late file lands beside them.
    let month = w.input().join("events/month=2026-11");
    let events = read_parquet(&month.join("part-0.parquet"));
    ok(run_into(&w, "before", &[]));
    ok(rollup(&w, &[]));

    // A late file: insight events of a member, dated two days before as_of.
    let members = read_parquet(&w.input().join("members.parquet"));
    let (org, person) = (
        strings(&members, "org_id")[0].clone(),
        strings(&members, "distinct_id")[0].clone(),
    );
    let late: Vec<(&str, &str, &str, &str, Option<&str>)> = (0..5)
        .map(|_| {
            (
                org.as_str(),
                person.as_str(),
                "insight analyzed",
                "2026-11-21 10:00",
                None,
            )
        })
        .collect();
    write_parquet(&month.join("zz-late.parquet"), &events_like(&events, &late));
    ok(run_into(&w, "raw_with_late", &[]));
    let changed = std::fs::read(w.path().join("before/current/users.csv")).unwrap()
        != std::fs::read(w.path().join("raw_with_late/current/users.csv")).unwrap();
    assert!(changed, "the late events change the outputs");

    // Rollups hold that day already: the late events are not seen...
    ok(run_into(&w, "stale", &["--rollups", "r"]));
    assert_same_tables(&w.path().join("before"), &w.path().join("stale"));
    // ...until the day is rolled again.
    ok(rollup(&w, &["--from", "2026-11-21", "--to", "2026-11-21"]));
    ok(run_into(&w, "rerolled", &["--rollups", "r"]));
    assert_same_tables(&w.path().join("raw_with_late"), &w.path().join("rerolled"));
    // Rolling one day again replaced that folder alone and left nothing behind (the
    // runs' digests are kept in their own folder, with no temporary file left).
    let leftovers: Vec<String> = std::fs::read_dir(w.path().join("r"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".lock" && n != DIGESTS)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let digests = digest_files(&w.path().join("r"));
    assert!(
        !digests.is_empty() && digests.iter().all(|d| !d.contains(".tmp")),
        "{digests:?}"
    );
}

/// Rows shaped like `template` (the generated flat events' column types).
fn events_like(template: &DataFrame, rows: &[(&str, &str, &str, &str, Option<&str>)]) -> DataFrame {
    let mut frame = events(rows);
    let schema = template.schema();
    let columns: Vec<Column> = template
        .get_column_names()
        .iter()
        .map(|name| {
            let dtype = schema.get(name.as_str()).unwrap();
            match frame.column(name.as_str()) {
                Ok(c) => c.cast(dtype).unwrap(),
                Err(_) => Column::full_null((*name).clone(), rows.len(), dtype),
            }
        })
        .collect();
    frame = DataFrame::new(rows.len(), columns).unwrap();
    frame
}

#[test]
fn rollups_built_for_other_path_prefixes_are_refused() {
    let w = Workdir::new();
    w.generate(12, 60, 4);
    ok(rollup(&w, &[]));
    let config = w.path().join("pricing.toml");
    std::fs::write(
        &config,
        "[url_sets.pricing_visit]\npath_prefix = \"/pricing\"\n\n\
         [metrics.pricing_visits_7d]\ncategory = \"product_experience\"\n\
         measure = \"event_count\"\nevent_set = \"pricing_visit\"\nwindow_days = 7\n\
         healthy = \"<= 20\"\npoor = \"> 100\"\n",
    )
    .unwrap();
    // A model that reads /pricing: its page views' paths were not kept.
    let mut args = vec![
        "--quiet", "run", "--input", "in", "--out", "out", "--as-of", AS_OF,
    ];
    args.extend(["--rollups", "r", "--config", config.to_str().unwrap()]);
    let o = w.cmd(&args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("day=")
            && err.contains("/pricing")
            && err.contains("Roll these days up again"),
        "{err}"
    );
    assert!(!w.out().join("current").exists(), "nothing published");
}

#[test]
fn a_bad_rollup_file_is_refused_naming_it_and_the_column() {
    let w = Workdir::new();
    w.generate(12, 60, 4);
    ok(rollup(&w, &[]));
    // A warehouse's file without `last_us`: exit 2, naming the file and the column.
    let day = w.path().join("r/day=2026-11-20/part-0.parquet");
    let frame = read_parquet(&day).drop("last_us").unwrap();
    write_parquet(&day, &frame);
    let o = run_into(&w, "out", &["--rollups", "r"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("day=2026-11-20/part-0.parquet") && err.contains("`last_us`"),
        "{err}"
    );
    assert!(!w.path().join("out/current").exists(), "nothing published");
    // A row of no events, or whose instants are not on its day: exit 2, naming the
    // column, never a score built on it.
    ok(rollup(&w, &["--from", "2026-11-20", "--to", "2026-11-20"]));
    let good = read_parquet(&day);
    for (column, value) in [("count", 0i64), ("first_us", 0)] {
        let mut frame = good.clone();
        let n = frame.height();
        let mut values: Vec<i64> = frame
            .column(column)
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        values[n - 1] = value;
        frame
            .with_column(Column::new(column.into(), values))
            .unwrap();
        write_parquet(&day, &frame);
        let o = run_into(&w, "out", &["--rollups", "r"]);
        assert_eq!(o.status.code(), Some(2), "{column}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("`{column}`")), "{err}");
    }
    // Rows each within 1 to 2^32-1 events, but whose member's day adds up to more
    // (every row at the most): a slot's count would wrap, so exit 2 naming the file.
    let mut frame = good.clone();
    let n = frame.height();
    frame
        .with_column(Column::new("count".into(), vec![i64::from(u32::MAX); n]))
        .unwrap();
    write_parquet(&day, &frame);
    let o = run_into(&w, "out", &["--rollups", "r"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("day=2026-11-20/part-0.parquet")
            && err.contains("`count`")
            && err.contains("more than 2^32-1 events of one member on one day"),
        "{err}"
    );
    assert!(!w.path().join("out/current").exists(), "nothing published");
    // No such folder: exit 2 too.
    let o = run_into(&w, "out", &["--rollups", "nowhere"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rollups folder not found"));
}

/// Every file under `OUT/history`, by relative path.
fn history(out: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(out.join("history")).unwrap().flatten() {
        for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
            let name = format!(
                "{}/{}",
                entry.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            );
            files.insert(name, std::fs::read(file.path()).unwrap());
        }
    }
    files
}

#[test]
fn backfill_and_backtest_from_rollups_equal_theirs_from_raw_events() {
    let w = Workdir::new();
    w.generate(12, 60, 4);
    ok(rollup(&w, &["--to", "2026-11-10"]));
    // backfill or backtest over five weekly dates, into `out`.
    let dated = |command: &str, out: &str, extra: &[&str]| {
        let mut args = vec!["--quiet", command, "--input", "in", "--out", out];
        args.extend(["--from", "2026-10-20", "--to", "2026-11-17", "--every", "7"]);
        args.extend_from_slice(extra);
        ok(w.cmd(&args));
    };
    dated("backfill", "raw", &[]);
    dated("backfill", "from_rollups", &["--rollups", "r"]);
    let (raw, from_rollups) = (
        history(&w.path().join("raw")),
        history(&w.path().join("from_rollups")),
    );
    assert_eq!(raw.len(), 5 * 3, "{:?}", raw.keys());
    assert!(raw == from_rollups, "backfilled history differs");

    dated("backtest", "bt_raw", &["--horizon", "30"]);
    dated(
        "backtest",
        "bt_rollups",
        &["--horizon", "30", "--rollups", "r"],
    );
    for name in ["backtest.csv", "backtest_signals.csv"] {
        let a = std::fs::read(w.path().join("bt_raw").join(name)).unwrap();
        let b = std::fs::read(w.path().join("bt_rollups").join(name)).unwrap();
        assert!(a == b, "{name} differs");
    }
}

#[test]
fn a_day_split_over_several_files_counts_once() {
    // A warehouse may write one day's rows in several files: the (member, day) rows
    // are then summed over the files, as one. The second file is stored as a
    // warehouse may store it (unsigned 32-bit counts), which is read through polars
    // rather than page by page: the two readers give the same rows.
    let w = Workdir::new();
    w.generate(12, 60, 4);
    ok(run_into(&w, "raw", &[]));
    ok(rollup(&w, &[]));
    let day = w.path().join("r/day=2026-11-20");
    let frame = read_parquet(&day.join("part-0.parquet"));
    let half = frame.height() / 2;
    // Split in the middle of a (member, day): the first rows of the second part may
    // share an org and person with the last of the first.
    write_parquet(&day.join("part-0.parquet"), &frame.slice(0, half));
    std::fs::create_dir_all(w.path().join("r/extra")).unwrap();
    let mut rest = frame.slice(half as i64, frame.height() - half);
    let counts = rest
        .column("count")
        .unwrap()
        .cast(&DataType::UInt32)
        .unwrap();
    rest.with_column(counts).unwrap();
    write_parquet(&w.path().join("r/extra/part-1.parquet"), &rest);
    ok(run_into(&w, "split", &["--rollups", "r"]));
    assert_same_tables(&w.path().join("raw"), &w.path().join("split"));
}

#[test]
fn a_rollup_that_spills_its_rows_writes_the_same_files() {
    // Past ACCOUNT_HEALTH_ROLLUP_SPILL_ROWS held rows, `rollup` writes its day maps
    // to spill files and empties them; a key then comes back from several spills
    // and the maps, and is one row. Spilling every few dozen rows, in either
    // shape, gives the files of a rollup that never spills, and leaves no spill
    // files behind.
    for flat in [false, true] {
        let w = Workdir::new();
        if flat {
            w.generate_flat(12, 60, 4);
        } else {
            w.generate(12, 60, 4);
        }
        ok(rollup(&w, &[]));
        let args = ["--quiet", "rollup", "--input", "in", "--out", "spilled"];
        ok(w.cmd_env(&args, &[("ACCOUNT_HEALTH_ROLLUP_SPILL_ROWS", "37")]));
        let days = rollup_days(&w);
        assert!(days.len() > 50, "{days:?}");
        for day in &days {
            let a = std::fs::read(w.path().join("r").join(day).join("part-0.parquet")).unwrap();
            let b =
                std::fs::read(w.path().join("spilled").join(day).join("part-0.parquet")).unwrap();
            assert!(a == b, "{day} differs");
        }
        let left: Vec<_> = std::fs::read_dir(w.path().join("spilled"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("day=") && n != ".lock")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn a_rollup_of_bad_events_exits_2_and_leaves_nothing_behind() {
    // The pass meets a null `event`: exit 2 naming the file and column, and the
    // rollups folder it would have made (with its lock and spill folder) is gone.
    let w = Workdir::new();
    let mut df = events(&[
        ("o1", "p1", "insight saved", "2026-11-01 10:00", None),
        ("o1", "p1", "insight saved", "2026-11-02 10:00", None),
    ]);
    let event = Column::new("event".into(), [None, Some("insight saved")]);
    df.with_column(event).unwrap();
    w.write("events", &df);
    let o = rollup(&w, &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("events.parquet") && err.contains("`event`"),
        "{err}"
    );
    assert!(!w.path().join("r").exists(), "nothing left behind");
}

/// The manifest's `rollups.digests`: (reused, built, not_kept).
fn digests_used(out: &Path) -> (u64, u64, Option<String>) {
    let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let d = &manifest["rollups"]["digests"];
    (
        d["reused"].as_u64().unwrap(),
        d["built"].as_u64().unwrap(),
        d["not_kept"].as_str().map(str::to_string),
    )
}

#[test]
fn runs_keep_the_rollups_digests_and_the_next_runs_read_them_with_the_same_tables() {
    let w = Workdir::new();
    w.generate(12, 60, 4);
    ok(run_into(&w, "raw", &[]));
    ok(rollup(&w, &[]));
    let files = rollup_days(&w).len() as u64;

    // The first run builds a digest per rollup file, the next reads them.
    ok(run_into(&w, "first", &["--rollups", "r"]));
    assert_eq!(digests_used(&w.path().join("first")), (0, files, None));
    ok(run_into(&w, "second", &["--rollups", "r"]));
    assert_eq!(digests_used(&w.path().join("second")), (files, 0, None));
    assert_same_tables(&w.path().join("raw"), &w.path().join("second"));
    let kept = digest_files(&w.path().join("r"));
    assert_eq!(kept.len() as u64, files, "{kept:?}");
    let layout = kept[0].split('/').next().unwrap();
    let key = w.path().join("r").join(DIGESTS).join(layout).join(".key");
    assert_eq!(
        std::fs::read_to_string(key).unwrap().len(),
        32,
        "the fingerprints' key"
    );

    // Whoever is a member is decided when a digest is added: with a member gone
    // from the members table, the digests give what the raw events give.
    let members_path = w.input().join("members.parquet");
    let members = read_parquet(&members_path);
    write_parquet(&members_path, &members.slice(1, members.height() - 1));
    ok(run_into(&w, "raw_fewer", &[]));
    ok(run_into(&w, "fewer", &["--rollups", "r"]));
    assert_eq!(
        digests_used(&w.path().join("fewer")).1,
        0,
        "nothing rebuilt"
    );
    assert_same_tables(&w.path().join("raw_fewer"), &w.path().join("fewer"));
    write_parquet(&members_path, &members);

    // A model that counts other sets keeps digests of its own beside the first's.
    let config = w.path().join("saves.toml");
    std::fs::write(
        &config,
        "[event_sets]\nsaves_only = [\"insight saved\"]\n\n\
         [metrics.saves_7d]\ncategory = \"product_experience\"\n\
         measure = \"event_count\"\nevent_set = \"saves_only\"\nwindow_days = 7\n\
         healthy = \">= 1\"\npoor = \"< 1\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    ok(run_into(&w, "raw_saves", &["--config", config]));
    ok(run_into(
        &w,
        "saves",
        &["--rollups", "r", "--config", config],
    ));
    assert_eq!(digests_used(&w.path().join("saves")), (0, files, None));
    assert_same_tables(&w.path().join("raw_saves"), &w.path().join("saves"));
    ok(run_into(
        &w,
        "saves_again",
        &["--rollups", "r", "--config", config],
    ));
    assert_eq!(
        digests_used(&w.path().join("saves_again")),
        (files, 0, None)
    );
    assert_same_tables(&w.path().join("raw_saves"), &w.path().join("saves_again"));
    assert_eq!(digest_files(&w.path().join("r")).len() as u64, 2 * files);

    // A damaged digest is built again, never an error.
    let damaged = w.path().join("r").join(DIGESTS).join(&kept[3]);
    let bytes = std::fs::read(&damaged).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    ok(run_into(&w, "repaired", &["--rollups", "r"]));
    assert_eq!(
        digests_used(&w.path().join("repaired")),
        (files - 1, 1, None)
    );
    assert_same_tables(&w.path().join("raw"), &w.path().join("repaired"));
    assert_eq!(std::fs::read(&damaged).unwrap().len(), bytes.len());

    // A rollup file gone: its digests go too, of every model.
    let gone = rollup_days(&w)[0].clone();
    std::fs::remove_dir_all(w.path().join("r").join(&gone)).unwrap();
    ok(run_into(&w, "fewer_days", &["--rollups", "r"]));
    assert_eq!(
        digests_used(&w.path().join("fewer_days")),
        (files - 1, 0, None)
    );
    let left = digest_files(&w.path().join("r"));
    assert_eq!(left.len() as u64, 2 * (files - 1));
    assert!(left.iter().all(|d| !d.contains(&gone)), "{gone} kept");

    // Digests that cannot be kept: the run goes on, says why, and reads the rows.
    let fresh = Workdir::new();
    fresh.generate(12, 60, 4);
    ok(rollup(&fresh, &[]));
    std::fs::write(fresh.path().join("r").join(DIGESTS), "not a folder").unwrap();
    let mut args = vec!["run", "--input", "in", "--out", "unkept", "--as-of", AS_OF];
    args.extend(["--rollups", "r"]);
    let o = ok(fresh.cmd(&args));
    let (reused, built, why) = digests_used(&fresh.path().join("unkept"));
    assert_eq!((reused, built), (0, files));
    assert!(why.is_some_and(|w| w.contains(DIGESTS)));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("digests could not be kept"), "{err}");
    ok(run_into(&fresh, "raw", &[]));
    assert_same_tables(&fresh.path().join("raw"), &fresh.path().join("unkept"));
}
