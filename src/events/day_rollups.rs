//! Per-member-day rollups kept on disk (issue 27): the events rolled up per org,
//! member (`distinct_id`), UTC day and event name, with the count and the first and
//! last instants; for page views also the URL path, kept only under the path
//! prefixes the model uses. One folder per day, `R/day=YYYY-MM-DD/`. The schema does
//! not depend on the scoring weights or bands, so a rollup serves any model with the
//! same page-view events and path prefixes, recorded in each file's metadata.
//!
//! `DayRollups` builds them from the pass's chunks (the same reading, uuid dedupe
//! and properties parsing as the events pass); `RollupRows::read` reads them back,
//! and `RollupRows::member_days` turns them into the pass's (member, day) rows, so a
//! run scores from rollups exactly as from the raw events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use polars_arrow::bitmap::Bitmap;
use rayon::prelude::*;

use super::member_index::MemberIndex;
use super::{url_path, Chunk, ChunkSink, Layout, Rollup, Skipped, Totals, NONE, NO_INSTANT};
use crate::error::InputError;
use crate::rollup_spec::{self, RollupSpec};
use crate::time::{iso_of_day, MICROS_PER_DAY};

/// The key of the rollup files' Parquet metadata.
pub const METADATA_KEY: &str = "account_health_rollup";
/// A day's folder name.
pub fn day_folder(day: i32) -> String {
    format!("day={}", iso_of_day(day))
}

/// What a rollup file records of how it was built.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RollupMeta {
    /// Page-view events whose URL path is kept.
    pub page_events: Vec<String>,
    /// Paths are kept when they start with one of these.
    pub path_prefixes: Vec<String>,
}

/// The page-view events and path prefixes a model's visits read.
pub fn needs(spec: &RollupSpec) -> (Vec<String>, Vec<String>) {
    let mut pages: Vec<String> = spec.visits.iter().flat_map(|v| v.pages.clone()).collect();
    pages.sort();
    pages.dedup();
    let mut prefixes: Vec<String> = spec.visits.iter().map(|v| v.path_prefix.clone()).collect();
    prefixes.sort();
    prefixes.dedup();
    (pages, prefixes)
}

/// Strings numbered in the order first met.
#[derive(Default)]
struct Interner {
    ids: PlHashMap<String, u32>,
    values: Vec<String>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.values.len() as u32;
        self.ids.insert(s.to_string(), id);
        self.values.push(s.to_string());
        id
    }
}

/// No path kept.
const NO_PATH: u32 = u32::MAX;

/// The ids of one rollup row's org, person, event and path (`NO_PATH`: none).
type RowKey = (u32, u32, u32, u32);

/// Count, first and last instant of one (org, person, event, path) on one day.
#[derive(Clone, Copy)]
struct Agg {
    count: i64,
    first: i64,
    last: i64,
}

/// The rollups being built from the pass's chunks: one map per day, so a
/// time-ordered export works in one day's entries at a time.
pub struct DayRollups {
    page_events: Vec<String>,
    prefixes: Vec<String>,
    orgs: Interner,
    people: Interner,
    events: Interner,
    paths: Interner,
    by_day: BTreeMap<i32, PlHashMap<RowKey, Agg>>,
    null_in_required: bool,
}

impl ChunkSink for DayRollups {
    fn add_chunk(&mut self, c: &Chunk) {
        if c.has_null_in_required() {
            self.null_in_required = true;
            return;
        }
        // Per key of the chunk's dictionaries, once: the ids, and the kept path.
        let orgs: Vec<u32> = (0..c.org.values.len())
            .map(|k| self.orgs.id(c.org.value(k)))
            .collect();
        let events: Vec<u32> = (0..c.event.values.len())
            .map(|k| self.events.id(c.event.value(k)))
            .collect();
        let page: Vec<bool> = (0..c.event.values.len())
            .map(|k| self.page_events.iter().any(|p| p == c.event.value(k)))
            .collect();
        let paths: Vec<u32> = c.url.as_ref().map_or_else(Vec::new, |u| {
            (0..u.values.len())
                .map(|k| {
                    let path = url_path(u.value(k));
                    if self.prefixes.iter().any(|p| path.starts_with(p.as_str())) {
                        self.paths.id(path)
                    } else {
                        NO_PATH
                    }
                })
                .collect()
        });
        let mut people: Vec<u32> = vec![NO_PATH; c.person.values.len()];
        let timestamps = c.timestamp.values();
        for (i, &t) in timestamps.iter().enumerate() {
            let day = t.div_euclid(MICROS_PER_DAY) as i32;
            let pk = c.person.key(i);
            if people[pk] == NO_PATH {
                people[pk] = self.people.id(c.person.value(pk));
            }
            let ek = c.event.key(i);
            let path = match &c.url {
                Some(u) if page[ek] && u.is_valid(i) => paths[u.key(i)],
                _ => NO_PATH,
            };
            let key = (orgs[c.org.key(i)], people[pk], events[ek], path);
            self.by_day
                .entry(day)
                .or_default()
                .entry(key)
                .and_modify(|a| {
                    a.count += 1;
                    a.first = a.first.min(t);
                    a.last = a.last.max(t);
                })
                .or_insert(Agg {
                    count: 1,
                    first: t,
                    last: t,
                });
        }
    }

    fn null_in_required(&self) -> bool {
        self.null_in_required
    }
}

impl DayRollups {
    /// Rollups for a model's visits (the pass gives only the days asked for).
    pub fn new(spec: &RollupSpec) -> DayRollups {
        let (page_events, prefixes) = needs(spec);
        DayRollups {
            page_events,
            prefixes,
            orgs: Interner::default(),
            people: Interner::default(),
            events: Interner::default(),
            paths: Interner::default(),
            by_day: BTreeMap::new(),
            null_in_required: false,
        }
    }

    /// The days that have rows, in order.
    pub fn days(&self) -> Vec<i32> {
        self.by_day.keys().copied().collect()
    }

    /// One day's rows, sorted by org, person, event and path (so the same events
    /// give the same bytes).
    pub fn frame(&self, day: i32, ranks: &Ranks) -> PolarsResult<DataFrame> {
        let Some(map) = self.by_day.get(&day) else {
            return empty_frame();
        };
        fn s(i: &Interner, id: u32) -> &str {
            i.values[id as usize].as_str()
        }
        // Sorted by the strings' ranks: the strings' order, compared as numbers.
        let rank = |k: &RowKey| {
            let path = if k.3 == NO_PATH {
                0
            } else {
                ranks.paths[k.3 as usize] + 1
            };
            (
                ranks.orgs[k.0 as usize],
                ranks.people[k.1 as usize],
                ranks.events[k.2 as usize],
                path,
            )
        };
        // The ranks looked up once per row, not once per comparison.
        let mut keyed: Vec<(RowKey, (&RowKey, &Agg))> =
            map.iter().map(|(k, a)| (rank(k), (k, a))).collect();
        keyed.sort_unstable_by_key(|(r, _)| *r);
        let rows: Vec<(&RowKey, &Agg)> = keyed.into_iter().map(|(_, row)| row).collect();
        let n = rows.len();
        df!(
            "org_id" => rows.iter().map(|(k, _)| s(&self.orgs, k.0)).collect::<Vec<_>>(),
            "distinct_id" => rows.iter().map(|(k, _)| s(&self.people, k.1)).collect::<Vec<_>>(),
            "day" => vec![day; n],
            "event" => rows.iter().map(|(k, _)| s(&self.events, k.2)).collect::<Vec<_>>(),
            "path" => rows.iter().map(|(k, _)| path_of(&self.paths, k.3)).collect::<Vec<_>>(),
            "count" => rows.iter().map(|(_, a)| a.count).collect::<Vec<_>>(),
            "first_us" => rows.iter().map(|(_, a)| a.first).collect::<Vec<_>>(),
            "last_us" => rows.iter().map(|(_, a)| a.last).collect::<Vec<_>>(),
        )?
        .lazy()
        .with_column(col("day").cast(DataType::Date))
        .collect()
    }

    /// Each interned string's rank in byte order, to sort rows by numbers.
    pub fn ranks(&self) -> Ranks {
        fn ranks_of(i: &Interner) -> Vec<u32> {
            let mut order: Vec<u32> = (0..i.values.len() as u32).collect();
            order.par_sort_unstable_by(|&a, &b| i.values[a as usize].cmp(&i.values[b as usize]));
            let mut rank = vec![0u32; order.len()];
            for (r, &id) in order.iter().enumerate() {
                rank[id as usize] = r as u32;
            }
            rank
        }
        Ranks {
            orgs: ranks_of(&self.orgs),
            people: ranks_of(&self.people),
            events: ranks_of(&self.events),
            paths: ranks_of(&self.paths),
        }
    }

    /// The metadata of this rollup's files.
    pub fn meta(&self) -> RollupMeta {
        RollupMeta {
            page_events: self.page_events.clone(),
            path_prefixes: self.prefixes.clone(),
        }
    }
}

/// Each interned string's rank in byte order (`DayRollups::ranks`).
pub struct Ranks {
    orgs: Vec<u32>,
    people: Vec<u32>,
    events: Vec<u32>,
    paths: Vec<u32>,
}

fn path_of(paths: &Interner, id: u32) -> Option<&str> {
    (id != NO_PATH).then(|| paths.values[id as usize].as_str())
}

fn empty_frame() -> PolarsResult<DataFrame> {
    df!(
        "org_id" => Vec::<String>::new(),
        "distinct_id" => Vec::<String>::new(),
        "day" => Vec::<i32>::new(),
        "event" => Vec::<String>::new(),
        "path" => Vec::<Option<String>>::new(),
        "count" => Vec::<i64>::new(),
        "first_us" => Vec::<i64>::new(),
        "last_us" => Vec::<i64>::new(),
    )?
    .lazy()
    .with_column(col("day").cast(DataType::Date))
    .collect()
}

/// Writes a day's rows as `path` (Parquet, zstd) with the rollup's metadata.
pub fn write_day(frame: &mut DataFrame, path: &Path, meta: &RollupMeta) -> Result<()> {
    let metadata = KeyValueMetadata::from_static(vec![(
        METADATA_KEY.to_string(),
        serde_json::to_string(meta)?,
    )]);
    crate::output::write_parquet_with(frame, path, Some(metadata))?
        .sync_all()
        .with_context(|| format!("flushing {}", path.display()))
}

/// A rollups folder, checked: its files and the days each holds. The rows are read
/// file by file when they are turned into (member, day) rows (`member_days`), so
/// only a few files' rows are in memory at once.
pub struct RollupRows {
    pub files: Vec<RollupFile>,
    /// Every day held, sorted.
    pub days: Vec<i32>,
}

/// One rollup file and its days.
pub struct RollupFile {
    path: PathBuf,
    days: Vec<i32>,
}

/// The Parquet files under `dir`, sorted; folders starting with `.` (a rollup being
/// written) are passed over.
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| InputError::BadPath {
            path: d.display().to_string(),
            problem: format!("cannot read the rollups folder: {e}"),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".parquet") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The columns of a rollup file and what each must be.
const COLUMNS: [(&str, &str); 8] = [
    ("org_id", "string"),
    ("distinct_id", "string"),
    ("day", "date"),
    ("event", "string"),
    ("path", "string (null when no path is kept)"),
    ("count", "integer"),
    ("first_us", "integer (microseconds since the epoch, UTC)"),
    ("last_us", "integer (microseconds since the epoch, UTC)"),
];

impl RollupRows {
    /// Reads every rollup file under `dir`, checking each file's columns and that it
    /// was built for the page-view events and path prefixes `spec` needs (a file
    /// without the metadata, as a warehouse writes it, is taken as built for them).
    pub fn read(dir: &Path, spec: &RollupSpec) -> Result<RollupRows, InputError> {
        if !dir.is_dir() {
            return Err(InputError::BadPath {
                path: dir.display().to_string(),
                problem: "rollups folder not found".into(),
            });
        }
        let needed = needs(spec);
        // Files are checked side by side (schema, metadata, the `day` column only);
        // problems reported in file order.
        let files = parquet_files(dir)?
            .into_par_iter()
            .map(|path| {
                let days = file_days(&path, &needed)?;
                Ok(RollupFile { path, days })
            })
            .collect::<Result<Vec<_>, InputError>>()?;
        let mut days: Vec<i32> = files.iter().flat_map(|f| f.days.clone()).collect();
        days.par_sort_unstable();
        days.dedup();
        Ok(RollupRows { files, days })
    }

    /// The (member, day) rows of the events pass from these rollups, for the members
    /// `keys` (the pass's member numbering: row i is member i), with the totals the
    /// pass keeps. Each rollup row adds its count where the pass adds one per event,
    /// and its last instant where the pass raises a latest instant, through the same
    /// `Layout` (event classes, path classes, visit sets) and member index; rows are
    /// in (member, day) order (row order changes nothing computed from a rollup).
    pub fn member_days(&self, keys: &DataFrame, spec: &RollupSpec) -> Result<Rollup> {
        let layout = Layout::new(spec);
        let members = MemberIndex::new(keys)?;
        // A (member, day) must be one row: a file whose days are all its own is
        // aggregated alone, as soon as it is read; files sharing a day, together.
        let mut owners: BTreeMap<i32, usize> = BTreeMap::new();
        for file in &self.files {
            for &d in &file.days {
                *owners.entry(d).or_insert(0) += 1;
            }
        }
        let per_file = self
            .files
            .par_iter()
            .map(|file| -> Result<(FileFacts, Option<MemberDays>)> {
                let frame = read_file(&file.path)?;
                let mut facts = facts_of(&frame, &layout, &members, &file.path)?;
                drop(frame);
                if file.days.iter().all(|d| owners[d] == 1) {
                    let out = aggregate(&mut std::mem::take(&mut facts.facts), &layout);
                    Ok((facts, Some(out)))
                } else {
                    Ok((facts, None))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        // What files sharing a day left unaggregated, and every file's totals.
        let mut pooled = FileFacts::default();
        let mut outs = Vec::new();
        for (facts, out) in per_file {
            pooled.merge(facts);
            outs.extend(out);
        }
        if !pooled.facts.is_empty() {
            outs.push(aggregate(&mut pooled.facts, &layout));
        }
        let mut out = MemberDays::new(&layout);
        for o in outs {
            out.append(o);
        }
        let (frame, visits) = out.frames(&layout)?;
        Ok(Rollup {
            frame,
            visits,
            members: keys.clone(),
            member_of_row: Vec::new(),
            rows: pooled.totals.rows,
            latest_us: pooled.totals.latest_us,
            earliest_us: pooled.totals.earliest_us,
            events_per_day: pooled.totals.events_per_day,
            unknown_member_events: pooled.totals.unknown_member_events,
            skipped: Skipped::default(),
        })
    }
}

/// A rollup file's member rows as facts keyed by (member, day), and the totals over
/// all its rows.
#[derive(Default)]
struct FileFacts {
    facts: Vec<(u64, Fact)>,
    /// The pass's counts over every row, members or not.
    totals: Totals,
}

impl FileFacts {
    fn merge(&mut self, other: FileFacts) {
        self.facts.extend(other.facts);
        self.totals.merge(other.totals);
    }
}

/// (member, day) as one sort key, in (member, day) order.
fn sort_key(member: u32, day: i32) -> u64 {
    (u64::from(member) << 32) | u64::from(day as u32 ^ 0x8000_0000)
}

fn from_sort_key(key: u64) -> (u32, i32) {
    ((key >> 32) as u32, ((key as u32) ^ 0x8000_0000) as i32)
}

/// Each rollup row's member, event class and visit set, through the pass's `Layout`
/// and member index.
fn facts_of(
    f: &DataFrame,
    layout: &Layout,
    members: &MemberIndex,
    file: &Path,
) -> Result<FileFacts> {
    let bad = |column: &str, problem: String| InputError::BadValue {
        file: file.display().to_string(),
        column: column.to_string(),
        problem,
    };
    let (orgs, people, events, paths) = (
        f.column("org_id")?.str()?,
        f.column("distinct_id")?.str()?,
        f.column("event")?.str()?,
        f.column("path")?.str()?,
    );
    let (days, counts, firsts, lasts) = (
        f.column("day")?.i32()?,
        f.column("count")?.i64()?,
        f.column("first_us")?.i64()?,
        f.column("last_us")?.i64()?,
    );
    let mut out = FileFacts {
        facts: Vec::with_capacity(f.height()),
        ..FileFacts::default()
    };
    let mut classes: PlHashMap<&str, u32> = PlHashMap::new();
    let mut last_pair: Option<(&str, &str, u32)> = None;
    let columns = orgs
        .iter()
        .zip(people.iter())
        .zip(events.iter())
        .zip(paths.iter())
        .zip(days.iter())
        .zip(counts.iter())
        .zip(firsts.iter().zip(lasts.iter()));
    for ((((((org, person), event), path), day), count), (first, last)) in columns {
        // `normalise` refused nulls in every column but `path`.
        let (org, person, event) = (org.unwrap_or(""), person.unwrap_or(""), event.unwrap_or(""));
        let (day, count) = (day.unwrap_or(0), count.unwrap_or(0));
        let (first, last) = (first.unwrap_or(0), last.unwrap_or(0));
        // A row a warehouse (or a hand) wrote wrong is bad input, not a wrong score.
        if !(1..=i64::from(u32::MAX)).contains(&count) {
            return Err(bad(
                "count",
                format!("{count} events in one row; expected 1 to {}", u32::MAX),
            )
            .into());
        }
        if !(crate::time::instant_in_range(first) && crate::time::instant_in_range(last)) {
            return Err(bad("first_us", "an instant outside the supported range".into()).into());
        }
        let day_of = |us: i64| us.div_euclid(MICROS_PER_DAY) as i32;
        if first > last || day_of(first) != day || day_of(last) != day {
            return Err(bad(
                "first_us",
                format!(
                    "first_us {first} and last_us {last} must be in order and on the row's day {}",
                    iso_of_day(day)
                ),
            )
            .into());
        }
        let totals = &mut out.totals;
        totals.rows += count as u64;
        totals.latest_us = totals.latest_us.max(Some(last));
        totals.earliest_us = Some(totals.earliest_us.map_or(first, |e| e.min(first)));
        totals.add_events_of_day(day, count as u64);
        // A day's rows are sorted by org and person: one lookup per pair and day.
        let member = match last_pair {
            Some((o, p, m)) if o == org && p == person => m,
            _ => {
                let m = members.find(org, person);
                last_pair = Some((org, person, m));
                m
            }
        };
        if member == NONE {
            out.totals.unknown_member_events += count as u64;
            continue;
        }
        let class = *classes
            .entry(event)
            .or_insert_with(|| layout.class_of.get(event).map_or(NONE, |&c| c as u32));
        let visits = layout.classes.get(class as usize).map_or(0, |c| {
            layout.visits(c, path.map_or(0, |p| layout.path_class(p)))
        });
        out.facts.push((
            sort_key(member, day),
            Fact {
                count: count as u32,
                last,
                class,
                visits,
            },
        ));
    }
    Ok(out)
}

/// One (member, day) row per run of facts with the same key, after sorting them.
fn aggregate(facts: &mut [(u64, Fact)], layout: &Layout) -> MemberDays {
    facts.par_sort_unstable_by_key(|(key, _)| *key);
    let (nc, nl, nv) = (
        layout.counts.len(),
        layout.latest.len(),
        layout.visits.len(),
    );
    let mut out = MemberDays::new(layout);
    let mut start = 0;
    while start < facts.len() {
        let key = facts[start].0;
        let end = start + facts[start..].iter().take_while(|(k, _)| *k == key).count();
        let run = &facts[start..end];
        let (member, day) = from_sort_key(key);
        out.member.push(member);
        out.day.push(day);
        out.n
            .push(run.iter().map(|(_, f)| i64::from(f.count)).sum());
        out.last
            .push(run.iter().map(|(_, f)| f.last).max().unwrap_or(NO_INSTANT));
        let mut counts = vec![0u32; nc];
        let mut latest = vec![NO_INSTANT; nl];
        let mut visits = vec![0u32; nv];
        for (_, fact) in run {
            if let Some(class) = layout.classes.get(fact.class as usize) {
                for &c in &class.counts {
                    counts[c] += fact.count;
                }
                for &l in &class.latest {
                    latest[l] = latest[l].max(fact.last);
                }
            }
            for &v in &layout.visit_sets[fact.visits as usize] {
                visits[v as usize] += fact.count;
            }
        }
        for (column, value) in out.counts.iter_mut().zip(counts) {
            column.push(value);
        }
        for (column, value) in out.latest.iter_mut().zip(latest) {
            column.push(value);
        }
        if visits.iter().any(|&v| v > 0) {
            out.visit_member.push(member);
            out.visit_day.push(day);
            for (column, value) in out.visit_counts.iter_mut().zip(visits) {
                column.push(value);
            }
        }
        start = end;
    }
    out
}

/// What one rollup row of a member adds to its (member, day).
#[derive(Clone, Copy)]
struct Fact {
    count: u32,
    last: i64,
    /// Index into `Layout::classes`, or `NONE`.
    class: u32,
    /// Index into `Layout::visit_sets` (0: no visit).
    visits: u32,
}

/// The (member, day) rows of `Rollup`, column by column: built here from rollup
/// files, and by the events pass (`Accumulator::finish`); `frames` is the one home of
/// the rollup frames' columns, names and types.
pub(super) struct MemberDays {
    pub(super) member: Vec<u32>,
    pub(super) day: Vec<i32>,
    pub(super) n: Vec<i64>,
    pub(super) last: Vec<i64>,
    pub(super) counts: Vec<Vec<u32>>,
    /// `NO_INSTANT` where a set has no latest instant (a null in the frame).
    pub(super) latest: Vec<Vec<i64>>,
    pub(super) visit_member: Vec<u32>,
    pub(super) visit_day: Vec<i32>,
    pub(super) visit_counts: Vec<Vec<u32>>,
}

impl MemberDays {
    fn new(layout: &Layout) -> MemberDays {
        MemberDays {
            member: Vec::new(),
            day: Vec::new(),
            n: Vec::new(),
            last: Vec::new(),
            counts: vec![Vec::new(); layout.counts.len()],
            latest: vec![Vec::new(); layout.latest.len()],
            visit_member: Vec::new(),
            visit_day: Vec::new(),
            visit_counts: vec![Vec::new(); layout.visits.len()],
        }
    }

    fn append(&mut self, other: MemberDays) {
        self.member.extend(other.member);
        self.day.extend(other.day);
        self.n.extend(other.n);
        self.last.extend(other.last);
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            a.extend(b);
        }
        for (a, b) in self.latest.iter_mut().zip(other.latest) {
            a.extend(b);
        }
        self.visit_member.extend(other.visit_member);
        self.visit_day.extend(other.visit_day);
        for (a, b) in self.visit_counts.iter_mut().zip(other.visit_counts) {
            a.extend(b);
        }
    }

    /// The frames of `Rollup`: the (member, day) rows and the visit rows.
    pub(super) fn frames(self, layout: &Layout) -> PolarsResult<(DataFrame, DataFrame)> {
        let mut frame = vec![
            UInt32Chunked::from_vec("member".into(), self.member).into_column(),
            Int32Chunked::from_vec("day".into(), self.day).into_column(),
            Int64Chunked::from_vec(rollup_spec::EVENTS.into(), self.n).into_column(),
            Int64Chunked::from_vec(rollup_spec::LAST_INSTANT.into(), self.last).into_column(),
        ];
        for (name, values) in layout.counts.iter().zip(self.counts) {
            frame.push(UInt32Chunked::from_vec(name.into(), values).into_column());
        }
        // Each latest-instant column keeps its values; `NO_INSTANT` becomes a null bit.
        let latest: Vec<Column> = layout
            .latest
            .par_iter()
            .zip(self.latest)
            .map(|(name, values)| {
                let validity = values
                    .contains(&NO_INSTANT)
                    .then(|| values.iter().map(|&t| t != NO_INSTANT).collect::<Bitmap>());
                Int64Chunked::from_vec_validity(name.into(), values, validity).into_column()
            })
            .collect();
        frame.extend(latest);
        let mut visits = vec![
            UInt32Chunked::from_vec("member".into(), self.visit_member).into_column(),
            Int32Chunked::from_vec("day".into(), self.visit_day).into_column(),
        ];
        for (name, values) in layout.visits.iter().zip(self.visit_counts) {
            visits.push(UInt32Chunked::from_vec(name.into(), values).into_column());
        }
        Ok((
            DataFrame::new_infer_height(frame)?,
            DataFrame::new_infer_height(visits)?,
        ))
    }
}

/// A rollup file's metadata checked against the model's needs (page events, path
/// prefixes), its columns checked, and the days it holds (its `day` column alone).
fn file_days(path: &Path, needed: &(Vec<String>, Vec<String>)) -> Result<Vec<i32>, InputError> {
    let file_name = path.display().to_string();
    let unreadable = |e: PolarsError| InputError::Unreadable {
        file: file_name.clone(),
        reason: e.to_string(),
    };
    let open = || {
        std::fs::File::open(path).map_err(|e| InputError::BadPath {
            path: file_name.clone(),
            problem: format!("cannot open: {e}"),
        })
    };
    let mut reader = ParquetReader::new(open()?);
    let meta = reader
        .get_metadata()
        .map_err(unreadable)?
        .key_value_metadata()
        .as_ref()
        .and_then(|kv| kv.iter().find(|k| k.key == METADATA_KEY))
        .and_then(|k| k.value.clone());
    if let Some(text) = meta {
        let meta: RollupMeta = serde_json::from_str(&text).map_err(|e| InputError::BadValue {
            file: file_name.clone(),
            column: METADATA_KEY.into(),
            problem: format!("unreadable rollup metadata: {e}"),
        })?;
        check_built_for(&meta, &needed.0, &needed.1, &file_name)?;
    }
    // The columns and their types, from no rows.
    let empty = reader
        .with_slice(Some((0, 0)))
        .finish()
        .map_err(unreadable)?;
    normalise(empty, &file_name)?;
    let days = ParquetReader::new(open()?)
        .with_columns(Some(vec!["day".into()]))
        .finish()
        .map_err(unreadable)?;
    let days = days.column("day").map_err(unreadable)?;
    if days.null_count() > 0 {
        return Err(InputError::NullInRequired {
            file: file_name.clone(),
            column: "day".into(),
            count: days.null_count() as u64,
        });
    }
    let mut days: Vec<i32> = days
        .cast(&DataType::Int32)
        .map_err(unreadable)?
        .i32()
        .map_err(unreadable)?
        .iter()
        .flatten()
        .collect();
    days.sort_unstable();
    days.dedup();
    Ok(days)
}

/// A rollup file's rows, normalised (its metadata and columns were checked by
/// `file_days`).
fn read_file(path: &Path) -> Result<DataFrame, InputError> {
    let file_name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| InputError::BadPath {
        path: file_name.clone(),
        problem: format!("cannot open: {e}"),
    })?;
    let frame = ParquetReader::new(file)
        .finish()
        .map_err(|e| InputError::Unreadable {
            file: file_name.clone(),
            reason: e.to_string(),
        })?;
    normalise(frame, &file_name)
}

/// A model's page events and prefixes against what a rollup file was built for:
/// each page event must have been kept, and each prefix must lie under one the file
/// kept (a path under it was then kept whole).
fn check_built_for(
    meta: &RollupMeta,
    pages: &[String],
    prefixes: &[String],
    file: &str,
) -> Result<(), InputError> {
    let pages_ok = pages.iter().all(|p| meta.page_events.contains(p));
    let prefixes_ok = prefixes.iter().all(|p| {
        meta.path_prefixes
            .iter()
            .any(|kept| p.starts_with(kept.as_str()))
    });
    if pages_ok && prefixes_ok {
        return Ok(());
    }
    Err(InputError::BadValue {
        file: file.to_string(),
        column: METADATA_KEY.into(),
        problem: format!(
            "rolled up keeping paths of {:?} under {:?}; this model needs paths of {:?} under {:?}. \
             Roll these days up again with this model (account-health rollup --config ...)",
            meta.page_events, meta.path_prefixes, pages, prefixes
        ),
    })
}

/// A rollup file's columns checked and cast to the types the rest reads.
fn normalise(frame: DataFrame, file: &str) -> Result<DataFrame, InputError> {
    let schema = frame.schema();
    for (name, expected) in COLUMNS {
        let Some(dtype) = schema.get(name) else {
            return Err(InputError::MissingColumn {
                file: file.to_string(),
                column: name.to_string(),
                expected: expected.to_string(),
            });
        };
        let ok = match name {
            "day" => matches!(dtype, DataType::Date),
            "count" | "first_us" | "last_us" => dtype.is_integer(),
            _ => matches!(
                dtype,
                DataType::String | DataType::Categorical(..) | DataType::Null
            ),
        };
        if !ok {
            return Err(InputError::WrongType {
                file: file.to_string(),
                column: name.to_string(),
                found: dtype.to_string(),
                expected: expected.to_string(),
            });
        }
    }
    let cast = |name: &str, to: DataType| col(name).cast(to);
    let frame = frame
        .lazy()
        .select([
            cast("org_id", DataType::String),
            cast("distinct_id", DataType::String),
            cast("day", DataType::Int32),
            cast("event", DataType::String),
            cast("path", DataType::String),
            cast("count", DataType::Int64),
            cast("first_us", DataType::Int64),
            cast("last_us", DataType::Int64),
        ])
        .collect()
        .map_err(|e| InputError::Unreadable {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
    let nulls = [
        "org_id",
        "distinct_id",
        "day",
        "event",
        "count",
        "first_us",
        "last_us",
    ]
    .into_iter()
    .find_map(|c| {
        let n = frame.column(c).map(|c| c.null_count()).unwrap_or(0);
        (n > 0).then_some((c, n))
    });
    if let Some((column, count)) = nulls {
        return Err(InputError::NullInRequired {
            file: file.to_string(),
            column: column.to_string(),
            count: count as u64,
        });
    }
    Ok(frame)
}

/// SQL string literals, comma-separated.
fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| sql_string(s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A SQL string literal (ClickHouse): quotes and backslashes escaped.
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// One ClickHouse SELECT that builds this module's rollup rows (with their `day`)
/// from PostHog's batch-export columns, read from `events` (a table name or a table
/// function): each uuid once (case-insensitive), the organization from
/// `properties.$groups.<group_type>` (a string, or a number's text), page views'
/// `$current_url` cut to its path by the same rule as `url_path` and kept under the
/// model's prefixes, rows whose properties are not one JSON object or name no
/// organization left out. Run where the events live; its rows are a valid `--rollups`
/// folder's file.
pub fn clickhouse_sql(
    spec: &RollupSpec,
    group_type: &str,
    events: &str,
    days: Option<(i32, i32)>,
) -> String {
    let (pages, prefixes) = needs(spec);
    // Only the days asked for: files of overlapping days would be added together.
    let day_filter = days.map_or(String::new(), |(from, to)| {
        format!(
            "\n    AND toDate(toDateTime64(timestamp, 6, 'UTC'), 'UTC') BETWEEN '{}' AND '{}'",
            iso_of_day(from),
            iso_of_day(to)
        )
    });
    // A model without page views or prefixes keeps no path (and `IN ()` is no SQL).
    let is_page = if pages.is_empty() {
        "false".to_string()
    } else {
        format!("event IN ({})", list(&pages))
    };
    let under_prefix = if prefixes.is_empty() {
        "false".to_string()
    } else {
        format!(
            "arrayExists(prefix -> startsWith(page_path, prefix), [{}])",
            list(&prefixes)
        )
    };
    let g = sql_string(group_type);
    // The URL path rule of `url_path`, as a regular expression (RE2).
    let path_rule = sql_string(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)?([^?#]*)[\s\S]*$");
    format!(
        "-- account-health rollup rows (issue 27) from PostHog's batch-export columns.
-- Page-view events whose path is kept: {pages_text}; path prefixes: {prefixes_text}.
-- Write the result as Parquet (any file name) into the folder given to
-- `account-health run --rollups`; a `day=YYYY-MM-DD` folder per day is optional.
SELECT
    org_id,
    distinct_id,
    day,
    event,
    path,
    count() AS count,
    min(us) AS first_us,
    max(us) AS last_us
FROM
(
    SELECT
        toUnixTimestamp64Micro(toDateTime64(timestamp, 6, 'UTC')) AS us,
        toDate(toDateTime64(timestamp, 6, 'UTC'), 'UTC') AS day,
        event,
        distinct_id,
        multiIf(
            JSONType(properties, '$groups', {g}) = 'String',
            JSONExtractString(properties, '$groups', {g}),
            JSONType(properties, '$groups', {g}) IN ('Int64', 'UInt64', 'Double'),
            JSONExtractRaw(properties, '$groups', {g}),
            NULL) AS org_id,
        if({is_page} AND JSONType(properties, '$current_url') = 'String',
            replaceRegexpOne(JSONExtractString(properties, '$current_url'), {path_rule}, '\\\\1'),
            NULL) AS page_path,
        if({under_prefix}, page_path, NULL) AS path
    FROM
    (
        -- Each event once: re-runs and backfills export an event again.
        SELECT timestamp, event, distinct_id, properties
        FROM {events}
        LIMIT 1 BY ifNull(lower(toString(uuid)), toString(generateUUIDv4()))
    )
    WHERE timestamp IS NOT NULL AND event IS NOT NULL AND distinct_id IS NOT NULL
        AND isValidJSON(properties) AND JSONType(properties) = 'Object'{day_filter}
)
WHERE org_id IS NOT NULL
GROUP BY org_id, distinct_id, day, event, path
SETTINGS session_timezone = 'UTC'
",
        pages_text = pages.join(", "),
        prefixes_text = prefixes.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_group_is_passed_over_only_when_every_day_it_spans_is_held() {
        let held = crate::events::DaySet::new([10, 11, 12, 14]);
        assert!(held.holds_all(10, 12));
        assert!(held.holds_all(14, 14));
        assert!(!held.holds_all(12, 14), "day 13 is not held");
        assert!(!held.holds_all(9, 10));
        assert!(!crate::events::DaySet::default().holds_all(10, 10));
        let range = crate::events::DaySet::outside(100, 200);
        assert!(range.holds_all(10, 99) && range.holds_all(201, 300));
        assert!(!range.holds_all(99, 100) && !range.holds_all(150, 150));
    }

    #[test]
    fn sql_strings_are_escaped() {
        assert_eq!(sql_string("/docs"), "'/docs'");
        assert_eq!(sql_string(r"it's a \ path"), r"'it\'s a \\ path'");
    }

    #[test]
    fn the_clickhouse_query_names_the_model_s_pages_prefixes_and_source() {
        let model = crate::model::Model::default_model();
        let spec = RollupSpec::of(&model);
        let sql = clickhouse_sql(&spec, "organization", "file('x.parquet', 'Parquet')", None);
        assert!(sql.contains("event IN ('$pageview')"), "{sql}");
        assert!(sql.contains("'/docs', '/docs/cdp'"), "{sql}");
        assert!(sql.contains("'/organization/billing'"), "{sql}");
        assert!(sql.contains("FROM file('x.parquet', 'Parquet')"), "{sql}");
        assert!(sql.contains("JSONExtractString(properties, '$groups', 'organization')"));
        assert!(!sql.contains("BETWEEN"));
        let days = clickhouse_sql(&spec, "organization", "events", Some((20410, 20412)));
        assert!(
            days.contains("BETWEEN '2025-11-18' AND '2025-11-20'"),
            "{days}"
        );
    }

    #[test]
    fn a_model_needs_its_page_events_and_prefixes_kept() {
        let meta = RollupMeta {
            page_events: vec!["$pageview".into()],
            path_prefixes: vec!["/docs".into()],
        };
        let ok = |pages: &[&str], prefixes: &[&str]| {
            let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
            check_built_for(&meta, &s(pages), &s(prefixes), "f").is_ok()
        };
        assert!(ok(&["$pageview"], &["/docs"]));
        assert!(
            ok(&["$pageview"], &["/docs/surveys"]),
            "under a kept prefix"
        );
        assert!(ok(&[], &[]));
        assert!(!ok(&["$pageview"], &["/pricing"]));
        assert!(!ok(&["$pageview"], &["/doc"]), "wider than what was kept");
        assert!(!ok(&["$screen"], &["/docs"]));
    }
}
