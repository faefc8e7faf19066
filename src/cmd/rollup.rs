//! `account-health rollup`: the events rolled up per org, member, day and event
//! (`events::day_rollups`), one folder per UTC day, each replaced whole in one
//! rename when rolled again. `run --rollups` scores from them.

use anyhow::{Context, Result};
use rayon::prelude::*;

use crate::cli::RollupArgs;
use crate::events;
use crate::events::day_rollups::{day_folder, write_day};
use crate::time::AsOf;

/// A `--from`/`--to` day, as days since the epoch.
fn day(raw: &Option<String>) -> Result<Option<i32>, crate::InputError> {
    Ok(raw.as_deref().map(AsOf::parse).transpose()?.map(|d| d.day))
}

pub fn run(args: RollupArgs, quiet: bool) -> Result<()> {
    let model = super::load_model(args.config.as_deref())?.model;
    let (given_from, given_to) = (day(&args.from)?, day(&args.to)?);
    let (from, to) = (given_from.unwrap_or(i32::MIN), given_to.unwrap_or(i32::MAX));
    if from > to {
        return Err(crate::InputError::Usage {
            problem: "--from is after --to".into(),
        }
        .into());
    }
    let progress = crate::progress::Progress::new(quiet);
    let events = crate::input::load_events(&args.input, &model)?;
    let spec = crate::rollup_spec::RollupSpec::of(&model);

    // Bad input leaves nothing behind: not even OUT, when this rollup made it.
    let made_out = !args.out.exists();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let lock = crate::publish::lock(&args.out)?;
    // A killed rollup's leftovers: a day set aside while being replaced is put back
    // when nothing took its place; staging folders (with their spill files) are
    // removed.
    crate::publish::tidy_swaps(&args.out);
    let staging = args.out.join(format!(".staging-{}", std::process::id()));
    let spill = staging.join("spill");
    std::fs::create_dir_all(&spill).with_context(|| format!("creating {}", spill.display()))?;
    let written = roll_and_stage(
        &args,
        &events,
        &spec,
        (from, to),
        &staging,
        &spill,
        &progress,
    );
    let _ = std::fs::remove_dir_all(&spill);
    let (days, rows, skipped) = match written {
        Ok(written) => written,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            drop(lock);
            if made_out {
                let _ = std::fs::remove_dir_all(&args.out);
            }
            return Err(e);
        }
    };
    for &d in &days {
        let folder = day_folder(d);
        crate::publish::replace_folder(&args.out, &staging.join(&folder), &folder)?;
    }
    // A day of --from..--to rolled again with no events left (its events moved or
    // were removed) must not keep its old rows.
    if let (Some(from), Some(to)) = (given_from, given_to) {
        for d in from..=to {
            let old = args.out.join(day_folder(d));
            if !days.contains(&d) && old.is_dir() {
                std::fs::remove_dir_all(&old)
                    .with_context(|| format!("removing {}", old.display()))?;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&staging);
    progress.note(&format!(
        "rolled up {} days into {} ({rows} rows); left out of export files: {} repeated uuids, {} unreadable properties, {} without organization",
        days.len(),
        args.out.display(),
        skipped.duplicate_event_uuids,
        skipped.events_unreadable_properties,
        skipped.events_without_org
    ));
    Ok(())
}

/// The events of `from..=to` rolled up (spilling into `spill`) and each day's file
/// written into `staging`: the days, their rows, and what the export reader left
/// out.
fn roll_and_stage(
    args: &RollupArgs,
    events: &crate::input::EventsScan,
    spec: &crate::rollup_spec::RollupSpec,
    (from, to): (i32, i32),
    staging: &std::path::Path,
    spill: &std::path::Path,
    progress: &crate::progress::Progress,
) -> Result<(Vec<i32>, usize, events::Skipped)> {
    progress.stage("rolling up the events (one streaming pass)");
    let bytes = events.files.iter().map(|f| f.bytes).sum();
    let pass = progress.pass(events.files(), bytes);
    let rolled = events::day_rollups(events, spec, from, to, &pass, spill.to_path_buf());
    pass.finish();
    let (mut rollups, skipped) = rolled.map_err(|e| e.into_error(events))?;
    if let Some(e) = rollups.spill_error() {
        return Err(anyhow::Error::from(e).context(format!(
            "spilling rollup rows into {} (for {})",
            spill.display(),
            args.out.display()
        )));
    }
    let meta = rollups.meta();
    let ranks = rollups.ranks();
    let days = rollups.days();
    // Each day's file is built and written side by side; the folders are then put
    // in place one by one, in day order.
    let rows: Vec<usize> = days
        .par_iter()
        .map(|&d| -> Result<usize> {
            let staged = staging.join(day_folder(d));
            std::fs::create_dir_all(&staged)
                .with_context(|| format!("creating {}", staged.display()))?;
            let mut frame = rollups.frame(d, &ranks)?;
            write_day(&mut frame, &staged.join("part-0.parquet"), &meta)?;
            Ok(frame.height())
        })
        .collect::<Result<_>>()?;
    Ok((days, rows.iter().sum(), skipped))
}

/// `rollup-sql`: the warehouse's way to the same rollup rows.
pub fn sql(args: crate::cli::RollupSqlArgs) -> Result<()> {
    let model = super::load_model(args.config.as_deref())?.model;
    let spec = crate::rollup_spec::RollupSpec::of(&model);
    let days = match (day(&args.from)?, day(&args.to)?) {
        (Some(from), Some(to)) if from <= to => Some((from, to)),
        (None, None) => None,
        _ => {
            return Err(crate::InputError::Usage {
                problem: "--from and --to go together, --from not after --to".into(),
            }
            .into())
        }
    };
    match args.dialect {
        crate::cli::Dialect::Clickhouse => print!(
            "{}",
            crate::events::day_rollups::clickhouse_sql(
                &spec,
                &model.input.posthog_group_type,
                &args.events,
                days
            )
        ),
    }
    Ok(())
}
