//! `account-health run`: the nightly job. Load → quality → metrics → score → tables
//! → write, with the manifest describing the run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use indexmap::IndexMap;
use polars::prelude::*;
use serde::Serialize;

use crate::cli::RunArgs;
use crate::error::{IncompleteFeed, InputError};
use crate::feed_check::{self, FeedCheck};
use crate::input::TableInfo;
use crate::member_aggregates::MemberEvents;
use crate::model::{LoadedModel, Model};
use crate::output::{self, Formats, Table};
use crate::quality::{self, DataQuality};
use crate::time::AsOf;
use crate::{alerts, changes, indicators, metrics, publish, score, tables, trends, users};

/// The checked settings of a run: nothing here is a raw argument any more.
pub struct RunSettings {
    pub input: PathBuf,
    pub out: PathBuf,
    pub as_of: Option<AsOf>,
    pub model: LoadedModel,
    pub previous: Option<PathBuf>,
    pub formats: Formats,
    /// Publish even when the feed check finds the input incomplete.
    pub allow_incomplete: bool,
    /// Per-day rollups to score from, for the days they hold (`rollup`).
    pub rollups: Option<PathBuf>,
}

impl RunSettings {
    pub fn from_args(args: &RunArgs) -> Result<RunSettings, InputError> {
        super::check_threads(args.threads)?;
        super::check_out_folder(&args.out)?;
        Ok(RunSettings {
            input: args.input.clone(),
            out: args.out.clone(),
            as_of: super::parse_as_of(args.as_of.as_deref())?,
            model: super::load_model(args.config.as_deref())?,
            previous: args.previous.clone(),
            formats: parse_formats(&args.format)?,
            allow_incomplete: args.allow_incomplete,
            rollups: args.rollups.clone(),
        })
    }
}

fn parse_formats(s: &str) -> Result<Formats, InputError> {
    let mut f = Formats {
        parquet: false,
        csv: false,
    };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "parquet" => f.parquet = true,
            "csv" => f.csv = true,
            other => {
                return Err(InputError::Usage {
                    problem: format!(
                        "--format: unknown format {other:?}; expected parquet, csv or both"
                    ),
                })
            }
        }
    }
    if !(f.parquet || f.csv) {
        return Err(InputError::Usage {
            problem: "--format: name at least one of parquet, csv".into(),
        });
    }
    Ok(f)
}

#[derive(Serialize)]
pub(super) struct PreviousRun {
    /// `history` or `--previous DIR`.
    source: String,
    /// The history entry's as_of (an earlier run's folder does not say).
    as_of: Option<String>,
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    version: &'static str,
    as_of: String,
    input: String,
    inputs: &'a [TableInfo],
    absent_tables: Vec<&'a str>,
    orgs_scored: usize,
    config_source: Option<&'a str>,
    config_sha256: &'a str,
    config: &'a Model,
    data_quality: &'a DataQuality,
    /// Where `previous_health_score` came from; null when there was no earlier run.
    previous_run: Option<PreviousRun>,
    /// The last days' rows against their weekday medians; `incomplete` and `allowed`
    /// together mean it was published under `--allow-incomplete`.
    feed_check: FeedCheck,
    timings_seconds: IndexMap<&'static str, f64>,
    /// Peak resident memory of the process (MiB) at the end of each stage, where the
    /// OS tells (Linux); like the timings, it varies from run to run.
    peak_memory_mib: IndexMap<&'static str, f64>,
    /// Which days came from rollups (`--rollups`) and which from the raw events.
    #[serde(skip_serializing_if = "Option::is_none")]
    rollups: Option<super::RollupsUsed>,
}

pub fn run(args: RunArgs, quiet: bool) -> Result<()> {
    let settings = RunSettings::from_args(&args)?;
    execute(&settings, quiet)
}

/// An earlier run's health table and, when it has one, its indicators table (an
/// output folder or a history entry).
pub(super) struct Previous {
    /// `org_id` and `health_score`.
    pub(super) health: DataFrame,
    /// Every column of its health table (category scores and weights).
    health_full: DataFrame,
    pub(super) indicators: Option<DataFrame>,
    metric_scores: Option<DataFrame>,
    /// Its as_of, from its health table (null when it has no rows).
    as_of: Option<i32>,
}

/// Reads an earlier run's tables from `dir`.
/// A run's scores as the next run reads them: `org_id` (String) and `health_score`
/// (Float64), from a `health` table or a scored frame.
pub(super) fn health_scores(frame: &DataFrame) -> PolarsResult<DataFrame> {
    frame
        .clone()
        .lazy()
        .select([
            col("org_id").cast(DataType::String),
            col("health_score").cast(DataType::Float64),
        ])
        .collect()
}

pub(super) fn read_previous(dir: &Path) -> Result<Previous, InputError> {
    let path = dir.join("health.parquet");
    let health_full = output::read_table(dir, "health")?.ok_or_else(|| InputError::BadPath {
        path: path.display().to_string(),
        problem: "no health.parquet of an earlier run here".into(),
    })?;
    let health = health_scores(&health_full).map_err(|e| InputError::Unreadable {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let as_of = match health_full.column("as_of") {
        Ok(c) => c
            .cast(&DataType::Int32)
            .ok()
            .and_then(|c| c.i32().ok().and_then(|c| c.get(0))),
        Err(_) => None,
    };
    Ok(Previous {
        health,
        health_full,
        indicators: output::read_table(dir, "indicators")?,
        metric_scores: output::read_table(dir, "metric_scores")?,
        as_of,
    })
}

pub fn execute(settings: &RunSettings, quiet: bool) -> Result<()> {
    let progress = crate::progress::Progress::new(quiet);
    let mut timings = IndexMap::new();
    let mut peaks = IndexMap::new();
    let model = &settings.model.model;
    let mut clock = Instant::now();
    let mut lap = |name: &'static str, timings: &mut IndexMap<&'static str, f64>| {
        timings.insert(name, clock.elapsed().as_secs_f64());
        if let Some(mib) = peak_memory_mib() {
            peaks.insert(name, mib);
        }
        clock = Instant::now();
    };

    progress.stage("reading inputs and the events (one streaming pass)");
    let (inputs, rollup, pass_seconds, rollups_used) = super::read_inputs_and_rollups(
        &settings.input,
        model,
        &progress,
        settings.rollups.as_deref(),
    )?;
    lap("inputs_and_events", &mut timings);
    timings.insert("events_pass", pass_seconds);

    let as_of = match settings.as_of {
        Some(a) => a,
        None => quality::default_as_of(&rollup)?,
    };
    progress.note(&format!("as_of {}", as_of.iso()));
    let feed = check_feed(
        &FeedCounts::of(&inputs, &rollup)?,
        &as_of,
        model,
        settings.allow_incomplete,
    )?;
    // One writer per output folder (taken only once the inputs are known good, so bad
    // input writes nothing); what a killed run left is repaired before history is
    // read for the previous run.
    let _lock = publish::lock(&settings.out)?;
    publish::tidy(&settings.out, model.run.history_days);
    let (previous, previous_run) =
        previous_run(settings.previous.as_deref(), &settings.out, &as_of)?;
    progress.stage("checking data quality; computing metrics, scores and indicators");
    // Metrics, users and trends all read the rollup through it (it shares the columns).
    let member_events = MemberEvents::new(&rollup, &as_of)?;
    let (previous_health, previous) = PreviousParts::split(previous);
    // The data-quality counts, the scores, the users table and the trends table read
    // nothing of each other: they are computed side by side, each on all threads, so
    // one's sequential steps (the checks are one thread's work) leave no thread idle.
    // `validate` is the checks' own time; the metrics stage's includes it.
    let ((dq, scored), (users, trends)) = rayon::join(
        || {
            rayon::join(
                || -> Result<(quality::DataQuality, f64)> {
                    let start = Instant::now();
                    let dq = quality::measure(&inputs, &rollup, &as_of)?;
                    Ok((dq, start.elapsed().as_secs_f64()))
                },
                || scored_frame(&member_events, &inputs, model, &as_of, previous_health),
            )
        },
        || {
            rayon::join(
                || -> Result<DataFrame> {
                    Ok(users::compute(&member_events, &inputs, model, &as_of)?.collect()?)
                },
                || -> Result<DataFrame> {
                    Ok(trends::compute(&member_events, &inputs, model, &as_of)?.collect()?)
                },
            )
        },
    );
    drop(rollup);
    let (mut dq, validate_seconds) = dq?;
    timings.insert("validate", validate_seconds);
    let (scored, users, trends) = (scored?, users?, trends?);
    let deployment = crate::deployment::table(&scored, model, &as_of)?;
    if inputs.sdk_releases.is_some() {
        dq.insert(
            "sdk_versions_unknown".into(),
            crate::deployment::unknown_versions(&deployment)?,
        );
    }
    let DayTables {
        health,
        metric_scores,
        indicators,
        alerts,
        metric_changes,
    } = day_tables(&scored, model, &as_of, &previous)?;
    lap("metrics_scores_indicators", &mut timings);

    let manifest = Manifest {
        tool: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        as_of: as_of.iso(),
        input: settings.input.display().to_string(),
        inputs: &inputs.tables,
        absent_tables: inputs
            .tables
            .iter()
            .filter(|t| !t.present)
            .map(|t| t.name.as_str())
            .collect(),
        orgs_scored: health.height(),
        config_source: settings.model.source.as_deref(),
        config_sha256: &settings.model.hash,
        config: model,
        data_quality: &dq,
        previous_run,
        feed_check: feed,
        timings_seconds: timings,
        peak_memory_mib: peaks,
        rollups: rollups_used,
    };
    let manifest_json = serde_json::to_string_pretty(&manifest)? + "\n";
    // The pass's columns and the input tables are no longer needed: they are freed
    // (some GB at 50M events, page by page) while the outputs are written, not after.
    // (Where no thread can be started, they are dropped here.)
    let _ = std::thread::Builder::new().spawn(move || drop((member_events, inputs)));

    progress.stage("writing outputs");
    let tables = vec![
        Table {
            name: "health",
            frame: health,
        },
        Table {
            name: "metric_scores",
            frame: metric_scores,
        },
        Table {
            name: "indicators",
            frame: indicators,
        },
        Table {
            name: "metric_changes",
            frame: metric_changes,
        },
        Table {
            name: "alerts",
            frame: alerts,
        },
        Table {
            name: "users",
            frame: users,
        },
        Table {
            name: "trends",
            frame: trends,
        },
        Table {
            name: "deployment",
            frame: deployment,
        },
    ];
    output::write_all(
        &settings.out,
        tables,
        &manifest_json,
        settings.formats,
        &as_of,
        model.run.history_days,
    )?;
    progress.stage("done");
    Ok(())
}

/// The previous run of `as_of`: `--previous DIR`, else the latest history entry
/// before as_of in `out`; and where it came from, for the manifest.
pub(super) fn previous_run(
    previous_dir: Option<&Path>,
    out: &Path,
    as_of: &AsOf,
) -> Result<(Option<Previous>, Option<PreviousRun>), InputError> {
    Ok(match previous_dir {
        Some(dir) => (
            Some(read_previous(dir)?),
            Some(PreviousRun {
                source: format!("--previous {}", dir.display()),
                as_of: None,
            }),
        ),
        None => match publish::history_before(out, as_of) {
            Some((date, dir)) => (
                Some(read_previous(&dir)?),
                Some(PreviousRun {
                    source: "history".into(),
                    as_of: Some(date.iso()),
                }),
            ),
            None => (None, None),
        },
    })
}

/// What of the previous run the day's tables read, once its health scores are
/// taken for `previous_health_score`.
pub(super) struct PreviousParts {
    /// There was a previous run (`health_score_drop` can fire).
    exists: bool,
    indicators: Option<DataFrame>,
    /// Its full health table, metric_scores and as_of, for `metric_changes`.
    tables: Option<(DataFrame, DataFrame, Option<i32>)>,
}

impl PreviousParts {
    /// The previous run's `org_id, health_score`, and the rest.
    pub(super) fn split(previous: Option<Previous>) -> (Option<DataFrame>, PreviousParts) {
        match previous {
            Some(p) => (
                Some(p.health),
                PreviousParts {
                    exists: true,
                    indicators: p.indicators,
                    tables: p.metric_scores.map(|m| (p.health_full, m, p.as_of)),
                },
            ),
            None => (
                None,
                PreviousParts {
                    exists: false,
                    indicators: None,
                    tables: None,
                },
            ),
        }
    }
}

/// Metrics, scores and the previous score of one as_of, collected.
pub(super) fn scored_frame(
    member_events: &MemberEvents,
    inputs: &crate::input::Inputs,
    model: &Model,
    as_of: &AsOf,
    previous_health: Option<DataFrame>,
) -> Result<DataFrame> {
    let scores = scores_of(member_events, inputs, model, as_of)?;
    with_previous_score(scores, previous_health)
}

/// Metrics and scores of one as_of, collected: what does not depend on the previous
/// run (`backfill` computes these for many dates side by side).
pub(super) fn scores_of(
    member_events: &MemberEvents,
    inputs: &crate::input::Inputs,
    model: &Model,
    as_of: &AsOf,
) -> Result<DataFrame> {
    let metrics = metrics::compute(member_events, inputs, model, as_of)?;
    Ok(score::compute(metrics, inputs, model).frame.collect()?)
}

/// The scores of several dates (each `scores_of` of its date) from their
/// `metrics::aggregates`, each with its `metrics::AsOfExprs::columns_of`, in date order:
/// the aggregates stacked and scored through one plan, then split by date.
pub(super) fn stacked_scores(
    aggregates: Vec<LazyFrame>,
    inputs: &crate::input::Inputs,
    model: &Model,
    dates: &[AsOf],
) -> Result<Vec<DataFrame>> {
    let stacked = concat(aggregates, UnionArgs::default())?;
    let metrics = metrics::values(stacked, inputs, model, &metrics::AsOfExprs::stacked());
    let scored = score::compute(metrics, inputs, model).frame.collect()?;
    // Each date's rows are one stretch: the union puts its inputs one after another,
    // and the one join over the stacked rows (the account fields) keeps their order.
    let frames = split_dates(&scored, metrics::AS_OF_US, dates, AsOf::us)?;
    frames
        .into_iter()
        .map(|f| Ok(f.drop_many([metrics::AS_OF_US, metrics::AS_OF_DAY])))
        .collect()
}

/// A frame of several dates' rows cut into one frame per date. Its rows are in date
/// order, `column` holding each row's date as `key` gives it (read as i64).
pub(super) fn split_dates(
    frame: &DataFrame,
    column: &str,
    dates: &[AsOf],
    key: impl Fn(&AsOf) -> i64,
) -> Result<Vec<DataFrame>> {
    let keys = frame.column(column)?.cast(&DataType::Int64)?;
    let mut keys = keys.i64()?.iter().peekable();
    let mut start = 0;
    let mut frames = Vec::with_capacity(dates.len());
    for as_of in dates {
        let mut rows = 0;
        while keys.next_if_eq(&Some(key(as_of))).is_some() {
            rows += 1;
        }
        frames.push(frame.slice(start as i64, rows));
        start += rows;
    }
    anyhow::ensure!(
        keys.next().is_none(),
        "bug: the rows of {column} are not in the dates' order"
    );
    Ok(frames)
}

/// `previous_health_score` and `health_score_change` added to the scores.
pub(super) fn with_previous_score(
    scores: DataFrame,
    previous_health: Option<DataFrame>,
) -> Result<DataFrame> {
    Ok(tables::with_previous(scores.lazy(), previous_health).collect()?)
}

/// The tables of one as_of that `run` publishes and history keeps.
pub(super) struct DayTables {
    pub(super) health: DataFrame,
    pub(super) metric_scores: DataFrame,
    pub(super) indicators: DataFrame,
    pub(super) alerts: DataFrame,
    pub(super) metric_changes: DataFrame,
}

/// Indicators (with their lifecycle), alerts, health, metric_scores and
/// metric_changes of one as_of from its scored frame.
pub(super) fn day_tables(
    scored: &DataFrame,
    model: &Model,
    as_of: &AsOf,
    previous: &PreviousParts,
) -> Result<DayTables> {
    let fired = indicators::compute(
        scored.clone().lazy(),
        model,
        as_of,
        previous.exists,
        previous.indicators.as_ref(),
    )?
    .collect()?;
    let alerts::Followed { indicators, alerts } =
        alerts::follow(fired, previous.indicators.as_ref(), scored, model, as_of)?;
    let alerts = alerts.collect()?;
    let health = tables::health(scored, &indicators, model, as_of)?;
    let metric_scores = tables::metric_scores(scored, model)?;
    let metric_changes = match &previous.tables {
        Some((health_before, scores_before, as_of_before)) => {
            let categories: Vec<(String, f64)> = model
                .categories
                .iter()
                .map(|(c, cat)| (c.clone(), cat.weight))
                .collect();
            changes::metric_changes(
                &changes::RunTables {
                    health: &health,
                    metric_scores: &metric_scores,
                },
                &changes::RunTables {
                    health: health_before,
                    metric_scores: scores_before,
                },
                &categories,
                as_of.day,
                *as_of_before,
            )?
        }
        None => changes::empty(),
    };
    Ok(DayTables {
        health,
        metric_scores,
        indicators,
        alerts,
        metric_changes,
    })
}

/// Rows per day of the feeds the feed check judges: the events the pass counted
/// (after the uuid dedupe) and the usage rows. The same for every as_of of a run or
/// backfill, so counted once.
pub(super) struct FeedCounts<'a> {
    events: &'a std::collections::BTreeMap<i32, u64>,
    usage: std::collections::BTreeMap<i32, u64>,
}

impl<'a> FeedCounts<'a> {
    pub(super) fn of(
        inputs: &crate::input::Inputs,
        rollup: &'a crate::events::Rollup,
    ) -> Result<Self> {
        let usage = inputs
            .usage
            .clone()
            .lazy()
            .group_by([col("date").cast(DataType::Int32).alias("day")])
            .agg([len().alias("rows")])
            .collect()?;
        let usage = usage
            .column("day")?
            .i32()?
            .iter()
            .zip(usage.column("rows")?.cast(&DataType::UInt64)?.u64()?.iter())
            .filter_map(|(d, n)| Some((d?, n?)))
            .collect();
        Ok(Self {
            events: &rollup.events_per_day,
            usage,
        })
    }
}

/// The feed check (`feed_check`) of `as_of` on the feeds' `counts`; an incomplete
/// feed stops the run unless `allow` (exit 3).
pub(super) fn check_feed(
    counts: &FeedCounts,
    as_of: &AsOf,
    model: &Model,
    allow: bool,
) -> Result<FeedCheck> {
    let mut check = feed_check::check(
        &[("events", counts.events), ("usage", &counts.usage)],
        as_of,
        model.run.feed_check_days,
        model.run.min_ratio,
        model.run.feed_check_min_rows,
    );
    if check.incomplete {
        if !allow {
            return Err(IncompleteFeed {
                details: check.describe(),
                min_ratio: check.min_ratio,
            }
            .into());
        }
        check.allowed = true;
        eprintln!(
            "account-health: warning: the input feed looks incomplete, published anyway (--allow-incomplete): {}",
            check.describe()
        );
    }
    Ok(check)
}

/// The process's peak resident set so far, from /proc (Linux only).
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
