//! `account-health backfill --from D1 --to D2 --every DAYS`: fills the score history
//! (`OUT/history/as_of=DATE/`) for past dates from one read of the inputs and one
//! events pass, not one full run per date. The events pass's rollup is per member and
//! day, whatever the as_of, so every date is scored from it: each date exactly as
//! `run --as-of DATE` would score it into the same folder, oldest first, each taking
//! the history entry before it as its previous run (so its history entry is byte for
//! byte what that run writes). Only history is written: the current run's tables
//! (`OUT/current`) are left as they are. The entries are staged one by one and put in
//! place together at the end (their files flushed side by side): a failure on the
//! way leaves history as it was.

use anyhow::Result;

use polars::prelude::DataFrame;
use rayon::prelude::*;

use super::run::{
    check_feed, day_tables, read_previous, scores_of, with_previous_score, DayTables, Previous,
    PreviousParts,
};
use crate::cli::BackfillArgs;
use crate::error::InputError;
use crate::member_aggregates::MemberEvents;
use crate::publish;
use crate::time::AsOf;

/// The most dates one backfill takes (a typo in `--every` should not start a
/// thousand-year job).
const MAX_DATES: usize = 5_000;

pub fn run(args: BackfillArgs, quiet: bool) -> Result<()> {
    super::set_threads(args.threads)?;
    let dates = dates(&args.from, &args.to, args.every)?;
    if args.out.exists() && !args.out.is_dir() {
        return Err(InputError::BadPath {
            path: args.out.display().to_string(),
            problem: "--out must be a folder; this is a file".into(),
        }
        .into());
    }
    let loaded = super::load_model(args.config.as_deref())?;
    let model = &loaded.model;
    let progress = crate::progress::Progress::new(quiet);
    progress.stage("reading inputs and the events (one streaming pass)");
    let (inputs, rollup, _) = super::read_inputs(&args.input, model, &progress)?;
    let _lock = publish::lock(&args.out)?;
    publish::tidy(&args.out, model.run.history_days);
    // Each date's metrics and scores read only the inputs and the rollup: they are
    // computed side by side. The rest reads the date before it, so it goes in order.
    progress.stage(&format!("scoring {} date(s)", dates.len()));
    let scores: Vec<Result<DataFrame>> = dates
        .par_iter()
        .map(|as_of| {
            check_feed(&inputs, &rollup, as_of, model, args.allow_incomplete)?;
            let member_events = MemberEvents::new(&rollup, as_of)?;
            scores_of(&member_events, &inputs, model, as_of)
        })
        .collect();
    progress.stage("writing history");
    // Each date's previous run is the latest history entry before it, as separate
    // runs in date order would see history: the entries already there and each date
    // as it is written, less those pruned (more than `history_days` before the
    // latest). A date this backfill scored is handed on in memory; an older entry is
    // read from disk.
    let days = model.run.history_days as i32;
    let mut seen: std::collections::BTreeSet<i32> = publish::history_dates(&args.out)
        .iter()
        .map(|d| d.day)
        .collect();
    let mut done: Option<(AsOf, Previous)> = None;
    let staged = std::sync::Mutex::new(Vec::with_capacity(dates.len()));
    // Each entry is written on another thread while the next date is scored.
    rayon::scope(|writes| -> Result<()> {
        for (as_of, scores) in dates.iter().zip(scores) {
            let before = seen.range(..as_of.day).next_back().copied();
            let previous = match (before, done.take()) {
                (None, _) => None,
                (Some(b), Some((day, tables))) if day.day == b => Some(tables),
                (Some(b), _) => Some(read_previous(
                    &args
                        .out
                        .join(publish::HISTORY)
                        .join(publish::history_folder(&AsOf::from_day(b))),
                )?),
            };
            seen.insert(as_of.day);
            let latest = seen.last().copied().unwrap_or(as_of.day);
            seen.retain(|&d| d >= latest - days);
            let (previous_health, previous) = PreviousParts::split(previous);
            let scored = with_previous_score(scores?, previous_health)?;
            let DayTables {
                health,
                metric_scores,
                indicators,
                ..
            } = day_tables(&scored, model, as_of, &previous.without_changes())?;
            done = Some((
                *as_of,
                Previous::of_tables(&health, &metric_scores, &indicators, as_of)?,
            ));
            let (out, staged) = (&args.out, &staged);
            writes.spawn(move |_| {
                let entry = publish::stage_history(
                    out,
                    as_of,
                    vec![
                        ("health", health),
                        ("metric_scores", metric_scores),
                        ("indicators", indicators),
                    ],
                );
                staged
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((as_of.day, entry));
            });
        }
        Ok(())
    })?;
    // In date order; the first failure (in date order) is reported.
    let mut staged = staged.into_inner().unwrap_or_else(|e| e.into_inner());
    staged.sort_by_key(|(day, _)| *day);
    let staged = staged
        .into_iter()
        .map(|(_, entry)| entry)
        .collect::<Result<Vec<_>>>()?;
    publish::commit_history(&args.out, staged, model.run.history_days)?;
    progress.note(&format!(
        "history filled for {} date(s), {} to {}",
        dates.len(),
        dates.first().map(AsOf::iso).unwrap_or_default(),
        dates.last().map(AsOf::iso).unwrap_or_default()
    ));
    Ok(())
}

/// `from`, `from + every`, ... up to `to` at most.
fn dates(from: &str, to: &str, every: u32) -> Result<Vec<AsOf>, InputError> {
    let (from, to) = (AsOf::parse(from)?, AsOf::parse(to)?);
    let usage = |problem: String| InputError::Usage { problem };
    if every == 0 {
        return Err(usage("--every must be at least 1 day".into()));
    }
    if to.day < from.day {
        return Err(usage(format!(
            "--to {} is before --from {}",
            to.iso(),
            from.iso()
        )));
    }
    let n = (to.day - from.day) as usize / every as usize + 1;
    if n > MAX_DATES {
        return Err(usage(format!(
            "{n} dates from --from to --to every {every} days; at most {MAX_DATES}"
        )));
    }
    Ok((0..n)
        .map(|i| AsOf::from_day(from.day + (i as i32) * every as i32))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_step_from_the_first_and_stop_at_or_before_the_last() {
        let iso = |v: Vec<AsOf>| v.iter().map(AsOf::iso).collect::<Vec<_>>();
        assert_eq!(
            iso(dates("2026-11-01", "2026-11-16", 7).unwrap()),
            ["2026-11-01", "2026-11-08", "2026-11-15"]
        );
        assert_eq!(
            iso(dates("2026-11-01", "2026-11-01", 7).unwrap()),
            ["2026-11-01"]
        );
        assert!(dates("2026-11-02", "2026-11-01", 1).is_err());
        assert!(dates("2026-11-01", "2026-11-02", 0).is_err());
        assert!(dates("2000-01-01", "2026-11-02", 1).is_err());
    }
}
