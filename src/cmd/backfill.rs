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

use anyhow::{Context, Result};

use rayon::prelude::*;

use polars::prelude::*;

use super::run::{
    check_feed, health_scores, read_previous, split_dates, stacked_scores, with_previous_score,
    FeedCounts, Previous,
};
use crate::cli::BackfillArgs;
use crate::error::InputError;
use crate::member_aggregates::MemberEvents;
use crate::publish;
use crate::time::AsOf;
use crate::{alerts, indicators, metrics, tables};

/// The most dates one backfill takes (a typo in `--every` should not start a
/// thousand-year job).
const MAX_DATES: usize = 5_000;

pub fn run(args: BackfillArgs, quiet: bool) -> Result<()> {
    super::check_threads(args.threads)?;
    crate::sys::keep_freed_memory();
    let dates = dates(&args.from, &args.to, args.every)?;
    super::check_out_folder(&args.out)?;
    let loaded = super::load_model(args.config.as_deref())?;
    let model = &loaded.model;
    let progress = crate::progress::Progress::new(quiet);
    progress.stage("reading inputs and the events (one streaming pass)");
    let (inputs, rollup, _, _) =
        super::read_inputs_and_rollups(&args.input, model, &progress, args.rollups.as_deref())?;
    let _lock = publish::lock(&args.out)?;
    publish::tidy(&args.out, model.run.history_days);
    // Each date's metrics and scores read only the inputs and the rollup: they are
    // computed a batch of dates at a time (at most two batches in memory: the one
    // followed and the next, prepared beside it; the memory a batch frees serves a
    // later one). The lifecycle reads the date before, so it goes in date order.
    progress.stage(&format!("scoring {} date(s)", dates.len()));
    let feed_counts = FeedCounts::of(&inputs, &rollup)?;
    // The rollup's member keys, orgs and day runs, found once (`dates` holds a date).
    let member_events = MemberEvents::new(&rollup, &dates[0])?;
    // A batch's dates have their aggregates computed side by side, then their rows
    // stacked and scored through one polars plan (whose fixed cost, mostly its
    // optimisation, is then paid once a batch, not once a date).
    let scores_of_dates = |batch: &[AsOf]| -> Result<Vec<DataFrame>> {
        let aggregates = batch
            .par_iter()
            .map(|as_of| -> Result<LazyFrame> {
                check_feed(&feed_counts, as_of, model, args.allow_incomplete)?;
                let member_events = member_events.at(as_of);
                Ok(metrics::aggregates(&member_events, &inputs, model, as_of)?
                    .with_columns(metrics::AsOfExprs::columns_of(as_of)))
            })
            .collect::<Vec<Result<_>>>();
        // The earliest date's failure, whichever thread failed first.
        let aggregates = aggregates.into_iter().collect::<Result<Vec<_>>>()?;
        stacked_scores(aggregates, &inputs, model, batch)
    };
    // Each date's previous run is the latest history entry before it, as separate
    // runs in date order would see history: the entries already there and each date
    // as it is written, less those pruned (more than `history_days` before the
    // latest). It is the date before it in this backfill, or an entry on disk.
    let mut seen: std::collections::BTreeSet<i32> = publish::history_dates(&args.out)
        .iter()
        .map(|d| d.day)
        .collect();
    let mut plan = Vec::with_capacity(dates.len());
    for (k, as_of) in dates.iter().enumerate() {
        let before = seen.range(..as_of.day).next_back().copied();
        plan.push(match before {
            None => Source::Nothing,
            Some(b) if k > 0 && dates[k - 1].day == b => Source::Date(k - 1),
            Some(b) => Source::Disk(b),
        });
        seen.insert(as_of.day);
        let latest = seen.last().copied().unwrap_or(as_of.day);
        seen.retain(|&d| publish::history_keeps(d, latest, model.run.history_days));
    }
    let mut on_disk: std::collections::BTreeMap<i32, Previous> = Default::default();
    for source in &plan {
        if let Source::Disk(d) = source {
            if !on_disk.contains_key(d) {
                let dir = args
                    .out
                    .join(publish::HISTORY)
                    .join(publish::history_folder(&AsOf::from_day(*d)));
                on_disk.insert(*d, read_previous(&dir)?);
            }
        }
    }
    // What needs only the previous run's scores, side by side: the previous score,
    // and (unless an indicator holds by `clear_at`, which reads the previous run's
    // indicators) the fired indicators, `health` and `metric_scores`.
    let sticky = model.indicators.values().any(|i| i.clear_at.is_some());
    // Each date's scores as the next date reads them (org_id, health_score).
    let mut healths: Vec<DataFrame> = Vec::with_capacity(dates.len());
    let part_of = |k: usize, scores: DataFrame, healths: &[DataFrame]| -> Result<Part> {
        let previous_health = match &plan[k] {
            Source::Nothing => None,
            Source::Date(j) => Some(healths[*j].clone()),
            Source::Disk(d) => Some(on_disk[d].health.clone()),
        };
        let has_previous = previous_health.is_some();
        let scored = with_previous_score(scores, previous_health)?;
        Ok(Part {
            scored,
            has_previous,
            fired: None,
            health: None,
        })
    };

    // A batch's parts: its dates' scores (their health scores kept for the dates
    // after), previous scores, and unless `sticky` their fired indicators and `health`.
    let prepare = |first: usize, healths: &mut Vec<DataFrame>| -> Result<Vec<Part>> {
        let batch = first..(first + PARTS_AT_ONCE).min(dates.len());
        let scores = scores_of_dates(&dates[batch.clone()])?;
        for s in &scores {
            healths.push(health_scores(s)?);
        }
        let healths = &*healths;
        let parts: Vec<Result<Part>> = scores
            .into_par_iter()
            .enumerate()
            .map(|(i, s)| part_of(first + i, s, healths))
            .collect();
        let mut parts = parts.into_iter().collect::<Result<Vec<Part>>>()?;
        if !sticky {
            let batch_dates = &dates[batch];
            let fired = stacked_indicators(&parts, batch_dates, model)?;
            parts
                .par_iter_mut()
                .zip(fired)
                .zip(batch_dates)
                .try_for_each(|((part, fired), as_of)| -> Result<()> {
                    part.health = Some(tables::health(&part.scored, &fired, model, as_of)?);
                    part.fired = Some(fired);
                    Ok(())
                })?;
        }
        Ok(parts)
    };

    // A few dates' parts at a time, so their frames are not all in memory; a batch
    // is followed in date order while the next one is prepared beside it.
    let mut last: Option<DataFrame> = None;
    let firsts: Vec<usize> = (0..dates.len()).step_by(PARTS_AT_ONCE).collect();
    let staged = std::sync::Mutex::new(Vec::with_capacity(dates.len()));
    rayon::scope(|writes| -> Result<()> {
        // Then in date order, each date's indicators against the previous run's: their
        // lifecycle (and `clear_at`). Each entry is written on another thread while the
        // next date is followed.
        let follow = |first: usize, parts: Vec<Part>, last: &mut Option<DataFrame>| -> Result<()> {
            for (k, part) in (first..).zip(parts) {
                let as_of = &dates[k];
                let previous_indicators = match &plan[k] {
                    Source::Nothing => None,
                    Source::Date(_) => last.take(),
                    Source::Disk(d) => on_disk[d].indicators.clone(),
                };
                let fired = match part.fired {
                    Some(f) => f,
                    None => indicators::compute(
                        part.scored.clone().lazy(),
                        model,
                        as_of,
                        part.has_previous,
                        previous_indicators.as_ref(),
                    )?
                    .collect()?,
                };
                let alerts::Followed { indicators, .. } = alerts::follow(
                    fired,
                    previous_indicators.as_ref(),
                    &part.scored,
                    model,
                    as_of,
                )?;
                let health = match part.health {
                    Some(h) => h,
                    None => tables::health(&part.scored, &indicators, model, as_of)?,
                };
                *last = Some(indicators.clone());
                let (out, staged, scored) = (&args.out, &staged, part.scored);
                writes.spawn(move |_| {
                    // Made here, not with the date's other tables, so a batch does
                    // not hold 8 dates' tables of 80,000 rows at once (peak 0.52 ->
                    // 0.48 GB at 10M events).
                    // A failure here stops the backfill when the entries are
                    // gathered, after the dates already started (nothing is put
                    // in place).
                    let entry = tables::metric_scores(&scored, model)
                        .map_err(anyhow::Error::from)
                        .with_context(|| format!("metric_scores of {}", as_of.iso()))
                        .and_then(|m| {
                            publish::stage_history(
                                out,
                                as_of,
                                vec![
                                    ("health", health),
                                    ("metric_scores", m),
                                    ("indicators", indicators),
                                ],
                            )
                        });
                    staged
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((as_of.day, entry));
                });
            }
            Ok(())
        };
        let mut parts = prepare(firsts[0], &mut healths)?;
        for (b, &first) in firsts.iter().enumerate() {
            let next = firsts.get(b + 1).copied();
            let (followed, next_parts) = rayon::join(
                || follow(first, parts, &mut last),
                || next.map(|n| prepare(n, &mut healths)).transpose(),
            );
            // The earlier date's failure first.
            followed?;
            match next_parts? {
                Some(p) => parts = p,
                None => break,
            }
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

/// The fired indicators of each date of a batch (no indicator has `clear_at`): the
/// scored rows of the dates with a previous run stacked and computed through one
/// plan, those without through another (`health_score_drop` needs the previous
/// score), then split by date.
fn stacked_indicators(
    parts: &[Part],
    dates: &[AsOf],
    model: &crate::model::Model,
) -> Result<Vec<DataFrame>> {
    let mut fired = Vec::with_capacity(parts.len());
    let mut start = 0;
    while start < parts.len() {
        let has_previous = parts[start].has_previous;
        let end = start
            + parts[start..]
                .iter()
                .take_while(|p| p.has_previous == has_previous)
                .count();
        let mut stacked: Option<DataFrame> = None;
        for (part, as_of) in parts[start..end].iter().zip(&dates[start..end]) {
            let mut frame = part.scored.clone();
            let day = Scalar::new(DataType::Int32, AnyValue::Int32(as_of.day));
            let height = frame.height();
            frame.with_column(Column::new_scalar(metrics::AS_OF_DAY.into(), day, height))?;
            match &mut stacked {
                Some(s) => {
                    s.vstack_mut(&frame)?;
                }
                None => stacked = Some(frame),
            }
        }
        let stacked = stacked.expect("a stretch holds a date");
        let all = indicators::compute_stacked(stacked.lazy(), model, has_previous)?.collect()?;
        fired.extend(split_dates(&all, "as_of", &dates[start..end], |d| {
            d.day.into()
        })?);
        start = end;
    }
    Ok(fired)
}

/// Dates a batch holds: scored through one stacked plan, then followed in order
/// while the next batch is prepared (4, 12 or 16 were no faster; 16 took 100 MB more).
const PARTS_AT_ONCE: usize = 8;

/// Where a date's previous run comes from.
enum Source {
    /// No history entry before it.
    Nothing,
    /// The date at this index of the backfill.
    Date(usize),
    /// The history entry of this day, already on disk.
    Disk(i32),
}

/// A date's tables that need only the previous run's scores.
struct Part {
    scored: DataFrame,
    has_previous: bool,
    /// The fired indicators, unless `clear_at` makes them read the previous run's.
    fired: Option<DataFrame>,
    /// `health`, when the fired indicators are known.
    health: Option<DataFrame>,
}

/// `from`, `from + every`, ... up to `to` at most.
pub(super) fn dates(from: &str, to: &str, every: u32) -> Result<Vec<AsOf>, InputError> {
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
