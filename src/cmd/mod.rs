//! The subcommands, each a thin composition of the stages, one file each.

pub mod backfill;
pub mod backtest;
pub mod config;
pub mod explain;
pub mod generate;
mod generate_deployment;
mod generate_posthog;
pub mod load;
pub mod query;
pub mod rollup;
pub mod run;
pub mod validate;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::error::InputError;
use crate::time::AsOf;

pub fn dispatch(cli: Cli) -> Result<()> {
    // One pool for the whole command: polars runs its work on its own pool, so work
    // started on rayon's global pool would add a second set of threads contending
    // for the same cores (a 53-date backfill took 4.5 s with both, 3.5 s with one).
    // Rayon's parallel calls made on this pool stay on it.
    polars_core::runtime::THREAD_POOL.install(|| dispatch_in_pool(cli))
}

fn dispatch_in_pool(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args, cli.quiet),
        Command::Validate(args) => validate::run(args, cli.quiet),
        Command::Generate(args) => generate::run(args, cli.quiet),
        Command::Backfill(args) => backfill::run(args, cli.quiet),
        Command::Backtest(args) => backtest::run(args, cli.quiet),
        Command::Explain(args) => explain::run(args),
        Command::Report(args) => crate::report::write(&args.out, args.csm.as_deref()),
        Command::Config(args) => config::run(args),
        Command::Query(args) => query::run(args),
        Command::Load(args) => load::run(args, cli.quiet),
        Command::Rollup(args) => rollup::run(args, cli.quiet),
        Command::RollupSql(args) => rollup::sql(args),
    }
}

/// The days a run took from rollups, and the rest from the raw events (the
/// manifest's `rollups`).
#[derive(serde::Serialize)]
pub struct RollupsUsed {
    folder: String,
    files: usize,
    /// Days held by the rollups, the first and the last.
    rollup_days: usize,
    first_rollup_day: Option<String>,
    last_rollup_day: Option<String>,
    /// Days of the raw events read (those the rollups lack) that had events.
    raw_days: usize,
    /// The rollup files read from their digests, and those whose digest was built.
    digests: Option<crate::events::digests::DigestsUsed>,
}

/// `read_inputs`, with the days `rollups` holds (`--rollups`) taken from them and
/// left out of the raw events; what came from where, for the manifest.
pub fn read_inputs_and_rollups(
    dir: &std::path::Path,
    model: &crate::model::Model,
    progress: &crate::progress::Progress,
    rollups: Option<&std::path::Path>,
) -> Result<(
    crate::input::Inputs,
    crate::events::Rollup,
    f64,
    Option<RollupsUsed>,
)> {
    use crate::events::rollup_files::RollupFiles;
    let Some(folder) = rollups else {
        let (inputs, rollup, seconds) = read_inputs(dir, model, progress, None)?;
        return Ok((inputs, rollup, seconds, None));
    };
    let spec = crate::rollup_spec::RollupSpec::of(model);
    let files = RollupFiles::read(folder, &spec)?;
    let (inputs, rollup, seconds) = read_inputs(dir, model, progress, Some(&files))?;
    let used = RollupsUsed {
        folder: folder.display().to_string(),
        files: files.files.len(),
        rollup_days: files.days.len(),
        first_rollup_day: files.days.first().map(|d| crate::time::iso_of_day(*d)),
        last_rollup_day: files.days.last().map(|d| crate::time::iso_of_day(*d)),
        // The raw events' days are those the rollups do not hold.
        raw_days: rollup
            .events_per_day
            .keys()
            .filter(|d| files.days.binary_search(d).is_err())
            .count(),
        digests: rollup.digests.clone(),
    };
    if let Some(why) = rollup.digests.as_ref().and_then(|d| d.not_kept.as_ref()) {
        progress.note(&format!(
            "the rollups' digests could not be kept (the next run reads the rollup rows again): {why}"
        ));
    }
    Ok((inputs, rollup, seconds, Some(used)))
}

/// The input tables and the events rolled up, as `run` and `validate` read them: the
/// events and members first, then the events pass over them, while the other tables
/// are read beside it (the pass leaves a thread idle now and then, and they fill
/// it). Problems are reported in table order (events, members, usage, the optional
/// tables), then the pass's own; the pass's time is returned apart. With `rollups`,
/// the events of the days they hold are left out and their rows added instead.
pub fn read_inputs(
    dir: &std::path::Path,
    model: &crate::model::Model,
    progress: &crate::progress::Progress,
    rollups: Option<&crate::events::rollup_files::RollupFiles>,
) -> Result<(crate::input::Inputs, crate::events::Rollup, f64)> {
    use crate::{events, input};
    let spec = crate::rollup_spec::RollupSpec::of(model);
    let (first, others) = rayon::join(
        || -> Result<_, InputError> {
            let tables = input::load_event_tables(dir, model)?;
            let start = std::time::Instant::now();
            let bytes = tables.events.files.iter().map(|f| f.bytes).sum();
            let pass = progress.pass(tables.events.files(), bytes);
            let rollup = events::rollup(&tables.events, &tables.members, &spec, &pass, rollups);
            pass.finish();
            Ok((tables, rollup, start.elapsed().as_secs_f64()))
        },
        || input::load_other_tables(dir, model),
    );
    let (tables, rollup, pass_seconds) = first?;
    let mut inputs = input::Inputs::assemble(tables, others?);
    let rollup = rollup.map_err(|e| e.into_error(&inputs.events))?;
    let out_of_range = [rollup.earliest_us, rollup.latest_us]
        .into_iter()
        .flatten()
        .any(|us| !crate::time::instant_in_range(us));
    if out_of_range {
        return Err(match inputs.events.instant_out_of_range() {
            Some(e) => e.into(),
            None => {
                anyhow::anyhow!("the events pass saw an instant out of range that no file holds")
            }
        });
    }
    // The events read: the raw rows, not the rollups' (the manifest's `rollups` says
    // which days came from them).
    inputs.set_event_rows(rollup.rows - rollup.from_rollups);
    Ok((inputs, rollup, pass_seconds))
}

/// The scoring model with `--config` merged over it, its input column names checked
/// against the tables the job reads.
pub fn load_model(
    config: Option<&std::path::Path>,
) -> Result<crate::model::LoadedModel, InputError> {
    let loaded = crate::model::load(config)?;
    let source = loaded.source.as_deref().unwrap_or("built-in default");
    crate::input::check_column_names(&loaded.model, source)?;
    Ok(loaded)
}

/// `--as-of`, parsed, or `None` to derive it from the events.
fn parse_as_of(raw: Option<&str>) -> Result<Option<AsOf>, InputError> {
    raw.map(AsOf::parse).transpose()
}

/// Refuses an `--out` that exists and is not a folder (before any work is done).
pub(super) fn check_out_folder(out: &std::path::Path) -> Result<(), InputError> {
    if out.exists() && !out.is_dir() {
        return Err(InputError::BadPath {
            path: out.display().to_string(),
            problem: "--out must be a folder; this is a file".into(),
        });
    }
    Ok(())
}

/// Refuses `--threads 0`. The count itself is applied by `main`, which caps polars'
/// pool through `POLARS_MAX_THREADS` before any thread exists; every command runs on
/// that pool (`dispatch`).
pub(super) fn check_threads(threads: Option<usize>) -> Result<(), InputError> {
    if threads == Some(0) {
        return Err(InputError::Usage {
            problem: "--threads must be at least 1".into(),
        });
    }
    Ok(())
}
