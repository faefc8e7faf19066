//! Macro benchmark of the nightly job (issue 5): generates inputs of named sizes with
//! `account-health generate`, runs the full job on each as a child process, and in the
//! same run times two bare scans of the event columns the job reads (polars, same
//! files, each a child process so its peak memory is its own): collected into one
//! frame (issue 5's baseline), and streamed chunk by chunk with each chunk dropped (the
//! cost of reading the export at all, as the job's pass reads it). Prints one table.
//!
//! Each size runs in both shapes of the events (`BENCH_SHAPES=flat,posthog`): flat
//! files (`bench-data/10M`) and PostHog's batch export (`bench-data/10M-posthog`),
//! whose scans read `properties` and `uuid` instead of `org_id` and `current_url`.
//!
//! `cargo bench --bench job` runs 1M and 10M events; `BENCH_SIZES=1M,10M,50M cargo
//! bench --bench job` adds 50M (a few GB of generated Parquet in `bench-data` under
//! the target folder, `CARGO_TARGET_DIR` when set, kept between runs). The job and
//! the two scans run in turn, `BENCH_RUNS` rounds (default 3); the table shows median
//! wall times and, as ratios, the median of each round's ratio. Every command starts
//! with the files it reads in the page cache (read through once, untimed, before it),
//! so no command pays for the disk because of what ran before it. Timings belong
//! here, never in `cargo test`.
//!
//! A fourth command per round, "wide", is the job with a model that counts eight
//! more event sets (`WIDE_MODEL`): its (member, day) slots take two cache lines
//! instead of one, and `wide/job` is what that costs.
//!
//! `BENCH_ROLLUPS=1` adds the nightly run from rollups (issue 27): `rollup` of every
//! day but the last two once (kept in `bench-data/<size>-rollups`), then `run
//! --rollups` each round, printed with how much faster than the job it is and the
//! rollups' size against the events'. It runs as on the nightly schedule's machine:
//! the rollups folder keeps the digests of the days the runs before read, and the
//! newest day (rolled up that night) has none yet, so each round's run builds its
//! digest (it is removed before each round; one untimed run builds the rest first). `BENCH_BACKFILL=1` adds a 53-date backfill.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use polars::prelude::*;

mod common;

const AS_OF: &str = "2026-11-23";

/// A named input size and the `generate` arguments that give about that many events
/// (the generator makes ~28 events per org and day at its defaults).
struct Size {
    name: &'static str,
    orgs: usize,
    days: u32,
}

const SIZES: [Size; 3] = [
    Size {
        name: "1M",
        orgs: 400,
        days: 90,
    },
    Size {
        name: "10M",
        orgs: 4000,
        days: 90,
    },
    Size {
        name: "50M",
        orgs: 20000,
        days: 90,
    },
];

/// A config that adds eight event sets, each counted by a new metric, so the events
/// pass's slots outgrow one cache line (the default model's 10 counted sets fill one).
fn wide_model() -> String {
    let mut config = String::from("[event_sets]\n");
    let names = [
        "insight analyzed",
        "insight viewed",
        "recording viewed",
        "feature flag updated",
        "survey viewed",
        "query completed",
        "dashboard updated",
        "experiment viewed",
    ];
    for (i, name) in names.iter().enumerate() {
        config.push_str(&format!("wide_{i} = [{name:?}]\n"));
    }
    for i in 0..names.len() {
        config.push_str(&format!(
            "[metrics.wide_{i}]\ncategory = \"user_engagement\"\nmeasure = \"members_with_event\"\n\
             event_set = \"wide_{i}\"\nwindow_days = 30\nhealthy = \">= 2\"\npoor = \"< 1\"\n"
        ));
    }
    config
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_account-health"))
}

/// Rounds of the measured commands (`BENCH_RUNS`, default 3): the table shows the
/// median wall time and the largest peak memory, so one run disturbed by the shared
/// machine does not move a ratio.
fn runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

/// What `measure` found of one command: its largest peak resident memory (MiB) and
/// its wall time in each round.
struct Measured {
    mib: f64,
    rounds: Vec<f64>,
}

impl Measured {
    /// Median wall seconds.
    fn wall(&self) -> f64 {
        median(self.rounds.clone())
    }
}

/// Runs the commands in rounds, each round every command once in turn, `runs()`
/// rounds: a shared VM's speed drifts over minutes, and interleaving lets every
/// command see the same drift, so a ratio of two of them compares like with like.
/// Before each command the folders it reads are read through once, untimed, so that
/// every command starts with its files in the page cache: otherwise what ran before
/// decides (a 15 GB collected scan leaves the files it did not read on disk).
/// A command to time: the folders read through before each round (`warm`), and the
/// files removed before each round (what a nightly run finds missing every night).
struct Timed {
    cmd: Command,
    reads: Vec<PathBuf>,
    forget: Vec<PathBuf>,
}

fn timed(cmd: Command, reads: Vec<PathBuf>) -> Timed {
    Timed {
        cmd,
        reads,
        forget: Vec::new(),
    }
}

fn measure(cmds: &mut [Timed]) -> Vec<Measured> {
    let mut found: Vec<Measured> = cmds
        .iter()
        .map(|_| Measured {
            mib: 0.0,
            rounds: Vec::new(),
        })
        .collect();
    for _ in 0..runs() {
        for (t, m) in cmds.iter_mut().zip(&mut found) {
            for file in &t.forget {
                let _ = std::fs::remove_file(file);
            }
            for folder in &t.reads {
                warm(folder);
            }
            let (wall, mib) = measure_once(&mut t.cmd);
            m.rounds.push(wall);
            m.mib = m.mib.max(mib);
        }
    }
    found
}

/// Reads every file under `dir` once (into the page cache), discarding the bytes.
fn warm(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            warm(&path);
        } else if let Ok(mut file) = std::fs::File::open(&path) {
            std::io::copy(&mut file, &mut std::io::sink()).expect("reads a bench file");
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The median over rounds of `a`'s time over `b`'s in the same round.
fn ratio(a: &Measured, b: &Measured) -> f64 {
    median(a.rounds.iter().zip(&b.rounds).map(|(x, y)| x / y).collect())
}

/// Wall seconds and peak resident memory (MiB) of a child process, via GNU time.
fn measure_once(cmd: &mut Command) -> (f64, f64) {
    let report =
        std::env::temp_dir().join(format!("account-health-bench-{}.time", std::process::id()));
    let program = cmd.get_program().to_os_string();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_os_string()).collect();
    let start = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(program)
        .args(args)
        .status()
        .expect("runs /usr/bin/time (Debian package `time`)");
    let wall = start.elapsed().as_secs_f64();
    assert!(status.success(), "benchmarked command failed");
    let kib: f64 = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(f64::NAN);
    (wall, kib / 1024.0)
}

/// The five event columns the job reads, from every events file: the flat shape's, or
/// the export shape's (`properties` and `uuid` instead of `org_id` and `current_url`).
fn event_columns(input: &Path) -> LazyFrame {
    let pattern = input.join("events").join("**").join("*.parquet*");
    let args = ScanArgsParquet {
        glob: true,
        ..Default::default()
    };
    let mut scan =
        LazyFrame::scan_parquet(PlRefPath::new(pattern.to_string_lossy().to_string()), args)
            .expect("scan");
    let export = !scan.collect_schema().expect("schema").contains("org_id");
    let columns = if export {
        ["timestamp", "event", "distinct_id", "properties", "uuid"]
    } else {
        ["timestamp", "event", "distinct_id", "org_id", "current_url"]
    };
    scan.select(columns.map(col))
}

/// `BENCH_SHAPES`: the events' shapes to run, `flat` and `posthog` (PostHog's batch
/// export: properties JSON, uuids to deduplicate) by default.
fn shapes() -> Vec<String> {
    std::env::var("BENCH_SHAPES")
        .unwrap_or_else(|_| "flat,posthog".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

/// The bare scan: the event columns read, decoded and collected into one frame.
fn bare_scan(input: &Path) -> usize {
    let df = event_columns(input)
        .collect_with_engine(Engine::Streaming)
        .expect("collect")
        .unwrap_single();
    df.height()
}

/// The streamed scan: the event columns read and decoded chunk by chunk, each chunk
/// dropped, as the job's pass reads them; the cost of reading the export at all.
fn streamed_scan(input: &Path) -> usize {
    let rows = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = rows.clone();
    event_columns(input)
        .sink_batches(
            PlanCallback::new(move |chunk: DataFrame| {
                counted.fetch_add(chunk.height(), std::sync::atomic::Ordering::Relaxed);
                Ok(false)
            }),
            true,
            None,
        )
        .expect("sink")
        .collect_with_engine(Engine::Streaming)
        .expect("stream");
    rows.load(std::sync::atomic::Ordering::Relaxed)
}

/// Events read by the job, from its manifest.
fn events_in(out: &Path) -> usize {
    let text = std::fs::read_to_string(out.join("manifest.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["inputs"][0]["rows"].as_u64().unwrap_or(0) as usize
}

/// The last day the rollups of `BENCH_ROLLUPS` hold: two days before `AS_OF`.
const ROLLED_UP_TO: &str = "2026-11-21";

/// Bytes of every file under `dir`, but in hidden folders (a rollups folder's
/// digests are counted apart).
fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => folder_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    for (flag, scan) in [
        ("--bare-scan", bare_scan as fn(&Path) -> usize),
        ("--streamed-scan", streamed_scan),
    ] {
        if let Some(i) = args.iter().position(|a| a == flag) {
            let rows = scan(Path::new(&args[i + 1]));
            assert!(rows > 0, "the scan read no events");
            return;
        }
    }
    let wanted = std::env::var("BENCH_SIZES").unwrap_or_else(|_| "1M,10M".into());
    let data = common::bench_data();
    std::fs::create_dir_all(&data).expect("bench data folder");
    let bin = binary();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "account-health job benchmark, {threads} threads, as_of {AS_OF}, {} interleaved rounds: \
         median times, median of each round's ratio",
        runs()
    );
    println!(
        "{:>14} {:>12} {:>8} {:>12} {:>8} {:>8} {:>9} {:>8} {:>10} {:>8} {:>12} {:>8} {:>9}",
        "size",
        "events",
        "job s",
        "events/s",
        "job MiB",
        "scan s",
        "scan MiB",
        "ratio",
        "stream s",
        "ratio",
        "stream MiB",
        "wide s",
        "wide/job"
    );
    let wide_config = data.join("wide-model.toml");
    std::fs::write(&wide_config, wide_model()).expect("writes the wide model");
    let sizes = SIZES
        .iter()
        .filter(|s| wanted.split(',').any(|w| w.trim() == s.name));
    for (size, shape) in sizes.flat_map(|s| shapes().into_iter().map(move |shape| (s, shape))) {
        // The flat inputs keep their first name (bench-data/10M), so earlier data is reused.
        let name = match shape.as_str() {
            "flat" => size.name.to_string(),
            other => format!("{}-{other}", size.name),
        };
        let input = data.join(&name);
        if !input.join("usage.parquet").exists() {
            let status = Command::new(&bin)
                .args(["generate", "--quiet", "--shape", &shape, "--out"])
                .arg(&input)
                .args([
                    "--orgs",
                    &size.orgs.to_string(),
                    "--days",
                    &size.days.to_string(),
                    "--seed",
                    "1",
                ])
                .args(["--as-of", AS_OF])
                .status()
                .expect("runs generate");
            assert!(status.success());
        }
        let out = data.join(format!("{name}-out"));
        let mut job = Command::new(&bin);
        job.args(["run", "--quiet", "--as-of", AS_OF, "--input"])
            .arg(&input)
            .arg("--out")
            .arg(&out);
        let me = std::env::current_exe().expect("bench path");
        let mut scan = Command::new(&me);
        scan.arg("--bare-scan").arg(&input);
        let mut stream = Command::new(&me);
        stream.arg("--streamed-scan").arg(&input);
        let mut wide = Command::new(&bin);
        wide.args(["run", "--quiet", "--as-of", AS_OF, "--input"])
            .arg(&input)
            .arg("--out")
            .arg(data.join(format!("{name}-wide-out")))
            .arg("--config")
            .arg(&wide_config);
        // The wide model's cost is the pass's, the same for both shapes: flat only.
        // Each command with the folders it reads, warmed before it runs.
        let reads = || vec![input.clone()];
        let mut commands = vec![
            timed(job, reads()),
            timed(scan, reads()),
            timed(stream, reads()),
        ];
        if shape == "flat" {
            commands.push(timed(wide, reads()));
        }
        // `BENCH_BACKFILL=1`: also 53 weekly history dates (a year) by `backfill`,
        // whose target is 3x one run (issue 22).
        let backfill = std::env::var("BENCH_BACKFILL").is_ok() && shape == "flat";
        if backfill {
            let mut b = Command::new(&bin);
            b.args(["backfill", "--quiet", "--input"])
                .arg(&input)
                .arg("--out")
                .arg(data.join(format!("{name}-backfill")))
                .args(["--from", "2025-11-24", "--to", AS_OF, "--every", "7"]);
            commands.push(timed(b, reads()));
        }
        // `BENCH_ROLLUPS=1`: also the nightly run from rollups of every day but the
        // last two (issue 27; built once, by `rollup`, into bench-data/<name>-rollups).
        let rollups = std::env::var("BENCH_ROLLUPS").is_ok();
        let rollups_dir = data.join(format!("{name}-rollups"));
        if rollups {
            if !rollups_dir.exists() {
                let status = Command::new(&bin)
                    .args(["rollup", "--quiet", "--to", ROLLED_UP_TO, "--input"])
                    .arg(&input)
                    .arg("--out")
                    .arg(&rollups_dir)
                    .status()
                    .expect("runs rollup");
                assert!(status.success());
            }
            let mut nightly = Command::new(&bin);
            nightly
                .args(["run", "--quiet", "--as-of", AS_OF, "--input"])
                .arg(&input)
                .arg("--out")
                .arg(data.join(format!("{name}-rollups-out")))
                .arg("--rollups")
                .arg(&rollups_dir);
            // The nightly steady state: the digests of every held day (kept in the
            // rollups folder by the runs before) but the newest, rolled up tonight,
            // whose digest this run builds. One untimed run builds them first (each
            // build of the tool keeps digests of its own).
            let digests = rollups_dir.join(".account-health-digests");
            let status = Command::new(nightly.get_program())
                .args(nightly.get_args())
                .status()
                .expect("runs the job from rollups");
            assert!(status.success());
            let newest = format!("day={ROLLED_UP_TO}+part-0.parquet");
            let forget = std::fs::read_dir(&digests)
                .into_iter()
                .flatten()
                .flatten()
                .map(|layout| layout.path().join(&newest))
                .collect();
            commands.push(Timed {
                cmd: nightly,
                reads: vec![input.clone(), rollups_dir.clone()],
                forget,
            });
        }
        let measured = measure(&mut commands);
        let (job, scan, stream) = (&measured[0], &measured[1], &measured[2]);
        // Commands after the first three: wide (flat only), backfill, nightly.
        let wide = (shape == "flat").then(|| &measured[3]);
        let (wide_s, wide_ratio) =
            wide.map_or((f64::NAN, f64::NAN), |wide| (wide.wall(), ratio(wide, job)));
        let events = events_in(&out);
        println!(
            "{:>14} {:>12} {:>8.2} {:>12.0} {:>8.0} {:>8.2} {:>9.0} {:>8.2} {:>10.2} {:>8.2} {:>12.0} {:>8.2} {:>9.2}",
            name,
            events,
            job.wall(),
            events as f64 / job.wall(),
            job.mib,
            scan.wall(),
            scan.mib,
            ratio(job, scan),
            stream.wall(),
            ratio(job, stream),
            stream.mib,
            wide_s,
            wide_ratio
        );
        if rollups {
            let r = &measured[measured.len() - 1];
            println!(
                "{:>14} run from rollups (all days but the last two; digests of all but the newest): {:.2} s, {:.0} MiB, {:.2}x faster than the job; rollups {:.0} MB (their digests {:.0} MB), events {:.0} MB",
                name,
                r.wall(),
                r.mib,
                job.wall() / r.wall(),
                folder_bytes(&rollups_dir) as f64 / 1e6,
                folder_bytes(&rollups_dir.join(".account-health-digests")) as f64 / 1e6,
                folder_bytes(&input.join("events")) as f64 / 1e6,
            );
        }
        if backfill {
            let b = &measured[measured.len() - 1 - usize::from(rollups)];
            println!(
                "{:>14} backfill of 53 weekly dates: {:.2} s, {:.0} MiB, {:.2}x the job",
                name,
                b.wall(),
                b.mib,
                ratio(b, job)
            );
        }
    }
}
