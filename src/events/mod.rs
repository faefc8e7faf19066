//! The one pass over the events (SPEC 2, 3): the event export is read once, row group
//! by row group, and rolled up to one row per member and UTC day, with the counts and
//! latest instants a `RollupSpec` asks for (the pass's one contract with the model:
//! it knows no event, set or URL names of its own). Every metric,
//! indicator, user signal and trend is computed from this rollup: windows are whole
//! days (as_of is a midnight), counts are sums of the count columns, "days since" uses
//! `last_us`, so nothing needs the raw rows again.
//!
//! Each chunk of rows arrives with its string columns coded (`Coded`: a key per row
//! into the distinct values, from the file's Parquet dictionaries where `pages` can
//! read them, else one key per row from polars' normalising scan). What depends only
//! on a string is found once per key (`KeyFacts`: the member, by a lookup of (org_id,
//! distinct_id) in the member table; the event's class; the URL's path class), then
//! a hand-written kernel, not a polars `group_by` on the string keys, adds the rows to
//! (member, day) slots of plain column vectors. That keeps the pass close to the cost
//! of reading the columns. Events of people who are not members of their
//! org are only counted (SPEC 2).
//!
//! Here: the rollup's layout, the coded chunks, phase one (each row's member, weight,
//! class and URL class, sorted into member partitions), the pass over the files and
//! the finished frames. `pages` reads a file's row groups; `member_index` is the
//! member table; `slots` the (member, day) slots of phase two and their writing out
//! as columns; `memory` the 2 MB blocks the slots grow by (`crate::sys` has the
//! prefetch and huge-page hints). `day_rollups` builds the rollup files of `rollup`;
//! `rollup_files` reads them back into this pass as weighted rows (`run --rollups`).
//!
//! Also finds the nulls and unreadable pages of the events input that the per-file
//! schema checks could not see (`PassError`; `input` then names the file).

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::mpsc::sync_channel;

use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::bitmap::Bitmap;
use polars_buffer::Buffer;
use rayon::prelude::*;

use crate::input::{self, EventsScan};
use crate::progress::PassProgress;
use crate::rollup_spec::RollupSpec;
use crate::time::MICROS_PER_DAY;

pub mod day_rollups;
pub mod digests;
mod export;
mod member_index;
mod memory;
mod pages;
pub mod rollup_files;
mod slots;

pub use export::Skipped;

/// Builds the per-day rollup files (`account-health rollup`) from every events file:
/// the pass's reading, dedupe and properties parsing, into `DayRollups` (spilling
/// into `spill`); what the export reader skipped of the days kept is returned beside.
pub fn day_rollups(
    events: &EventsScan,
    spec: &RollupSpec,
    from: i32,
    to: i32,
    progress: &PassProgress,
    spill: std::path::PathBuf,
) -> Result<(day_rollups::DayRollups, Skipped), PassError> {
    // Rows outside the days are left out, their skips uncounted.
    let outside = if (from, to) == (i32::MIN, i32::MAX) {
        DaySet::default()
    } else {
        DaySet::outside(from, to)
    };
    let mut run = PagesRun::starting_at(events, 0, progress, &outside);
    let mut export = export::ExportReader::new(&events.group_type, &outside);
    let first = run.next(&mut export);
    let mut sink = day_rollups::DayRollups::new(spec, spill);
    each_chunk(
        events,
        progress,
        &mut export,
        run,
        first,
        &outside,
        &mut sink,
    )?;
    Ok((sink, export.skipped))
}

use crate::sys::prefetch;
use member_index::MemberIndex;
use slots::{Columns, Partition};

/// The member events, rolled up to one row per member and UTC day, plus what the pass
/// counted of all events.
pub struct Rollup {
    /// Exactly one row per (member, day) with an event. Columns: `member` (u32, the
    /// member's row in `members`), `day` (i32 days since the epoch), `n` (events),
    /// `last_us` (latest instant), then `RollupSpec::counts` (u32) and
    /// `RollupSpec::latest` (i64, null when none). Only members' events (SPEC 2), at
    /// any date.
    pub frame: DataFrame,
    /// One row per (member, day) with a visit (a subset of `frame`'s rows): `member`,
    /// `day` and `RollupSpec::visits` (u32). Kept apart because few rows have a visit.
    pub visits: DataFrame,
    /// The members: row i holds member number i's `org_id` and `distinct_id`, sorted.
    pub members: DataFrame,
    /// The member number of each row of the members table (in its order).
    pub member_of_row: Vec<u32>,
    /// Events read, of anyone.
    pub rows: u64,
    /// The latest event instant, of anyone, for the default as_of.
    pub latest_us: Option<i64>,
    /// The earliest event instant, of anyone (checked against the supported range).
    pub earliest_us: Option<i64>,
    /// Events of anyone per UTC day (for the data-quality count of late events).
    pub events_per_day: BTreeMap<i32, u64>,
    /// Events whose (org_id, distinct_id) is in no member row.
    pub unknown_member_events: u64,
    /// Rows of export-shaped files left out (repeated uuids, no organization...).
    pub skipped: Skipped,
    /// Of `rows`, the events that came from rollup files (`run --rollups`).
    pub from_rollups: u64,
    /// What the run did with the rollups' digests (`run --rollups`).
    pub digests: Option<digests::DigestsUsed>,
}

/// The URL path (SPEC 3): scheme, host, query string and fragment removed. The same
/// as the regex `^(?:[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)?([^?#]*)`, byte by byte (the
/// delimiters are ASCII, so every cut is on a character boundary).
pub fn url_path(url: &str) -> &str {
    let b = url.as_bytes();
    let mut start = 0;
    if b.first().is_some_and(u8::is_ascii_alphabetic) {
        let scheme_end = b[1..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-')))
            .map_or(b.len(), |p| p + 1);
        if b[scheme_end..].starts_with(b"://") {
            let host = scheme_end + 3;
            start = b[host..]
                .iter()
                .position(|c| matches!(c, b'/' | b'?' | b'#'))
                .map_or(b.len(), |p| host + p);
        }
    }
    let rest = &url[start..];
    &rest[..rest.find(['?', '#']).unwrap_or(rest.len())]
}

/// What one event name adds to its (member, day) row beyond `n` and `last_us`.
struct EventClass {
    /// Count columns (indexes into `Layout::counts`) it adds one to.
    counts: Vec<usize>,
    /// Latest-instant columns (indexes into `Layout::latest`) it can raise.
    latest: Vec<usize>,
    /// Its row of `Layout::visit_of` (how it visits, by path class); 0 when it
    /// counts towards no visit column.
    visit_kind: usize,
}

/// The rollup's columns and how each event and URL adds to them, compiled once from
/// the `RollupSpec`.
///
/// Visits depend on the event and the URL path. Every path prefix that matches a path
/// is a prefix of the longest one that does, so the prefixes a path matches are known
/// from that longest one: its "path class" (0: none, or a null URL). Each event name
/// has a "visit kind" (the visit columns it visits as a page and those it counts
/// anywhere), and each (kind, path class) pair a visit set, the list of visit columns
/// a row adds one to, worked out here for every pair. A row then carries one small
/// number for its visits, whatever the number of visit columns.
struct Layout {
    /// Count column names of the (member, day) rows.
    counts: Vec<String>,
    /// Count column names of the visits frame.
    visits: Vec<String>,
    /// Latest-instant column names.
    latest: Vec<String>,
    /// The distinct path prefixes of the visit columns; path class `c > 0` is
    /// `prefixes[c - 1]` being the longest match.
    prefixes: Vec<String>,
    /// Event name → index into `classes`; names the model does not mention map to none.
    class_of: PlHashMap<String, usize>,
    classes: Vec<EventClass>,
    /// `visit_of[kind * (prefixes.len() + 1) + path class]`: an index into `visit_sets`.
    visit_of: Vec<u32>,
    /// Visit column lists (indexes into `visits`); the first is empty (no visit).
    visit_sets: Vec<Vec<u32>>,
}

impl Layout {
    fn new(spec: &RollupSpec) -> Layout {
        let counts: Vec<String> = spec.counts.iter().map(|c| c.column.clone()).collect();
        let latest: Vec<String> = spec.latest.iter().map(|c| c.column.clone()).collect();
        let visits: Vec<String> = spec.visits.iter().map(|v| v.column.clone()).collect();
        let mut prefixes: Vec<String> = spec.visits.iter().map(|v| v.path_prefix.clone()).collect();
        prefixes.sort();
        prefixes.dedup();

        let mut names: Vec<&String> = spec
            .counts
            .iter()
            .chain(&spec.latest)
            .flat_map(|c| &c.events)
            .chain(
                spec.visits
                    .iter()
                    .flat_map(|v| v.pages.iter().chain(&v.anywhere)),
            )
            .collect();
        names.sort();
        names.dedup();
        // A visit kind: per visit column, (visits it as a page, counts it anywhere).
        let mut kinds: Vec<Vec<(bool, bool)>> = vec![vec![(false, false); visits.len()]];
        let mut class_of = PlHashMap::new();
        let mut classes = Vec::with_capacity(names.len());
        for name in names {
            let kind: Vec<(bool, bool)> = spec
                .visits
                .iter()
                .map(|v| (v.pages.contains(name), v.anywhere.contains(name)))
                .collect();
            let visit_kind = intern(&mut kinds, kind);
            classes.push(EventClass {
                counts: (0..counts.len())
                    .filter(|&i| spec.counts[i].events.contains(name))
                    .collect(),
                latest: (0..latest.len())
                    .filter(|&i| spec.latest[i].events.contains(name))
                    .collect(),
                visit_kind,
            });
            class_of.insert(name.clone(), classes.len() - 1);
        }
        let mut visit_sets: Vec<Vec<u32>> = vec![Vec::new()];
        let mut visit_of = Vec::with_capacity(kinds.len() * (prefixes.len() + 1));
        for kind in &kinds {
            for path_class in 0..=prefixes.len() {
                let longest = path_class.checked_sub(1).map(|c| prefixes[c].as_str());
                let set: Vec<u32> = (0..visits.len())
                    .filter(|&u| {
                        let (page, anywhere) = kind[u];
                        let prefix = spec.visits[u].path_prefix.as_str();
                        anywhere || (page && longest.is_some_and(|l| l.starts_with(prefix)))
                    })
                    .map(|u| u as u32)
                    .collect();
                visit_of.push(intern(&mut visit_sets, set) as u32);
            }
        }
        Layout {
            counts,
            visits,
            latest,
            prefixes,
            class_of,
            classes,
            visit_of,
            visit_sets,
        }
    }

    /// The path class of a URL path: 1 + the index of the longest prefix it starts
    /// with, or 0 when it starts with none.
    fn path_class(&self, path: &str) -> u32 {
        let mut class = 0;
        let mut longest = 0;
        for (i, prefix) in self.prefixes.iter().enumerate() {
            if path.starts_with(prefix.as_str()) && (class == 0 || prefix.len() > longest) {
                class = i as u32 + 1;
                longest = prefix.len();
            }
        }
        class
    }

    /// The visit set of a row of an event class whose URL has this path class (0 for
    /// a null URL).
    fn visits(&self, class: &EventClass, path_class: u32) -> u32 {
        if class.visit_kind == 0 {
            return 0;
        }
        self.visit_of[class.visit_kind * (self.prefixes.len() + 1) + path_class as usize]
    }
}

/// The index of `item` in `list`, added at the end if it is not there.
fn intern<T: PartialEq>(list: &mut Vec<T>, item: T) -> usize {
    list.iter().position(|x| *x == item).unwrap_or_else(|| {
        list.push(item);
        list.len() - 1
    })
}

/// The distinct (org_id, distinct_id) pairs of the members table, sorted (bytewise,
/// org first, as polars sorts strings); a member's index in this frame is its number
/// in the rollup. Also each members row's member number, so that later stages pick a
/// member's rows without joining on the strings again. (Sorted here rather than by a
/// polars unique and sort: this runs before the pass can start.)
fn member_keys(members: &DataFrame) -> PolarsResult<(DataFrame, Vec<u32>)> {
    let orgs = members.column("org_id")?.str()?;
    let people = members.column("distinct_id")?.str()?;
    let rows = u32::try_from(members.height())
        .map_err(|_| polars_err!(ComputeError: "more than 4G member rows"))?;
    // Input checks reject nulls in both columns.
    let mut pairs: Vec<(&str, &str, u32)> = orgs
        .iter()
        .zip(people.iter())
        .zip(0..rows)
        .map(|((o, p), row)| (o.unwrap_or_default(), p.unwrap_or_default(), row))
        .collect();
    pairs.par_sort_unstable();
    let mut member_of_row = vec![0u32; pairs.len()];
    let (mut orgs, mut people): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for &(org, person, row) in &pairs {
        if orgs.last() != Some(&org) || people.last() != Some(&person) {
            orgs.push(org);
            people.push(person);
        }
        member_of_row[row as usize] = (orgs.len() - 1) as u32;
    }
    let keys = DataFrame::new_infer_height(vec![
        StringChunked::from_iter_values("org_id".into(), orgs.into_iter()).into_column(),
        StringChunked::from_iter_values("distinct_id".into(), people.into_iter()).into_column(),
    ])?;
    Ok((keys, member_of_row))
}

/// No latest instant yet (output as null).
const NO_INSTANT: i64 = i64::MIN;

/// Marks a row whose person is not a member of its org, or whose event name the model
/// does not mention.
const NONE: u32 = u32::MAX;

/// Member partitions of the rollup. Each is built by one task, on whatever threads
/// there are; fixed, so the rollup's row order does not depend on `--threads`.
const PARTITIONS: usize = 8;

/// What the first phase finds out about one member row, all the second phase needs.
/// Its day is `t`'s (worked out again in phase two: a 24-byte row).
#[derive(Clone, Copy)]
struct MemberRow {
    t: i64,
    /// The row's visit set (an index into `Layout::visit_sets`; 0: no visit).
    visits: u32,
    member: u32,
    /// The events the row stands for: 1 for an event, a rollup row's count.
    weight: u32,
    /// Index into `Layout::classes`, or `NONE` for a name the model does not mention.
    class: u32,
}

/// Counts over all rows, members or not.
#[derive(Default)]
struct Totals {
    rows: u64,
    latest_us: Option<i64>,
    earliest_us: Option<i64>,
    events_per_day: BTreeMap<i32, u64>,
    unknown_member_events: u64,
}

impl Totals {
    fn add_events_of_day(&mut self, day: i32, events: u64) {
        if events > 0 {
            *self.events_per_day.entry(day).or_insert(0) += events;
        }
    }

    fn merge(&mut self, other: Totals) {
        self.rows += other.rows;
        self.latest_us = self.latest_us.max(other.latest_us);
        self.earliest_us = self.earliest_us.into_iter().chain(other.earliest_us).min();
        for (day, n) in other.events_per_day {
            self.add_events_of_day(day, n);
        }
        self.unknown_member_events += other.unknown_member_events;
    }
}

/// A string column of one chunk, coded: row i holds `values[keys[i]]`, and rows with
/// equal keys hold equal strings, so what depends only on the string is worked out
/// once per key. Read from a Parquet dictionary, the keys are its indices; a column
/// polars decoded has one key per row.
pub(super) struct Coded {
    keys: Buffer<u32>,
    values: Utf8ViewArray,
    /// Null rows (unset bits); `None` when no row is null.
    validity: Option<Bitmap>,
}

impl Coded {
    fn from_dictionary(d: &DictionaryArray<u32>) -> PolarsResult<Coded> {
        let values = d
            .values()
            .as_any()
            .downcast_ref::<Utf8ViewArray>()
            .ok_or_else(|| polars_err!(ComputeError: "a dictionary of no strings"))?;
        Ok(Coded {
            keys: d.keys().values().clone(),
            values: values.clone(),
            validity: d.keys().validity().cloned(),
        })
    }

    fn from_strings(values: Utf8ViewArray) -> Coded {
        Coded {
            keys: (0..values.len() as u32).collect(),
            validity: values.validity().cloned(),
            values,
        }
    }

    /// `rows` rows of one value.
    fn constant(value: &str, rows: usize) -> Coded {
        Coded {
            keys: vec![0; rows].into(),
            values: Utf8ViewArray::from_slice_values([value]),
            validity: None,
        }
    }

    fn null_count(&self) -> usize {
        self.validity.as_ref().map_or(0, Bitmap::unset_bits)
    }

    fn is_valid(&self, row: usize) -> bool {
        self.validity.as_ref().is_none_or(|v| v.get_bit(row))
    }

    fn key(&self, row: usize) -> usize {
        self.keys[row] as usize
    }

    fn value(&self, key: usize) -> &str {
        self.values.value(key)
    }

    /// The rows `rows` (indices, in the order given).
    fn take(&self, rows: &[u32]) -> Coded {
        Coded {
            keys: rows.iter().map(|&r| self.keys[r as usize]).collect(),
            values: self.values.clone(),
            validity: self
                .validity
                .as_ref()
                .map(|v| rows.iter().map(|&r| v.get_bit(r as usize)).collect()),
        }
    }

    fn slice(&self, rows: std::ops::Range<usize>) -> Coded {
        Coded {
            keys: self.keys.clone().sliced(rows.clone()),
            values: self.values.clone(),
            validity: self
                .validity
                .clone()
                .map(|v| v.sliced(rows.start, rows.len())),
        }
    }
}

/// A string column of a frame of the normalised scan, a key per row; `None` when
/// the frame has no rows.
fn coded_column(frame: &DataFrame, name: &str) -> PolarsResult<Option<Coded>> {
    let column = frame.column(name)?.str()?.rechunk();
    let array = column.downcast_iter().next().cloned();
    Ok(array.map(Coded::from_strings))
}

/// An Int64 column of a frame (the normalised scan's `timestamp`, in microseconds,
/// or a rollup file's integers) as one array; `None` when the frame has no rows.
fn i64_column(frame: &DataFrame, name: &str) -> PolarsResult<Option<PrimitiveArray<i64>>> {
    let column = frame.column(name)?.i64()?.rechunk();
    let array = column.downcast_iter().next().cloned();
    Ok(array)
}

/// The event columns of one chunk of rows, as the pass reads them. A row is one
/// event, or a rollup row standing for `weight` events of one (org, person, event,
/// path) on one day (`rollup_files`: `timestamp` its last instant, `first` its
/// first).
pub(super) struct Chunk {
    /// Microseconds since the epoch, UTC.
    timestamp: PrimitiveArray<i64>,
    event: Coded,
    person: Coded,
    org: Coded,
    /// `None` when the file has no `current_url` (every row null). A rollup's
    /// `path` (a path is its own `url_path`).
    url: Option<Coded>,
    /// Events per row; `None`: one each.
    weight: Option<Buffer<u32>>,
    /// Each row's earliest instant; `None`: `timestamp`.
    first: Option<Buffer<i64>>,
}

impl Chunk {
    /// A chunk of the normalised polars scan; `None` when it has no rows.
    fn from_frame(frame: &DataFrame) -> PolarsResult<Option<Chunk>> {
        let (Some(timestamp), Some(event), Some(person), Some(org), Some(url)) = (
            i64_column(frame, "timestamp")?,
            coded_column(frame, "event")?,
            coded_column(frame, "distinct_id")?,
            coded_column(frame, "org_id")?,
            coded_column(frame, "current_url")?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Chunk {
            timestamp,
            event,
            person,
            org,
            url: Some(url),
            weight: None,
            first: None,
        }))
    }

    fn len(&self) -> usize {
        self.timestamp.len()
    }

    /// A required column (`timestamp`, `event`, `distinct_id`, `org_id`) holds a null.
    fn has_null_in_required(&self) -> bool {
        self.timestamp.null_count() > 0
            || [&self.event, &self.person, &self.org]
                .iter()
                .any(|c| c.null_count() > 0)
    }

    /// The rows `rows` (indices, in the order given).
    fn take(&self, rows: &[u32]) -> Chunk {
        let timestamps: Vec<i64> = rows
            .iter()
            .map(|&r| self.timestamp.value(r as usize))
            .collect();
        fn take<T: Copy>(values: &Buffer<T>, rows: &[u32]) -> Buffer<T> {
            rows.iter().map(|&r| values[r as usize]).collect()
        }
        Chunk {
            timestamp: PrimitiveArray::from_vec(timestamps),
            event: self.event.take(rows),
            person: self.person.take(rows),
            org: self.org.take(rows),
            url: self.url.as_ref().map(|u| u.take(rows)),
            weight: self.weight.as_ref().map(|w| take(w, rows)),
            first: self.first.as_ref().map(|f| take(f, rows)),
        }
    }

    fn slice(&self, rows: std::ops::Range<usize>) -> Chunk {
        Chunk {
            timestamp: self.timestamp.clone().sliced(rows.start, rows.len()),
            event: self.event.slice(rows.clone()),
            person: self.person.slice(rows.clone()),
            org: self.org.slice(rows.clone()),
            url: self.url.as_ref().map(|u| u.slice(rows.clone())),
            weight: self.weight.clone().map(|w| w.sliced(rows.clone())),
            first: self.first.clone().map(|f| f.sliced(rows)),
        }
    }
}

/// What the rows of one chunk need of each key, worked out once per key.
struct KeyFacts {
    /// Per event key: its index into `Layout::classes`, or `NONE`.
    class: Vec<u32>,
    /// Per URL key: the path class of its path.
    path_class: Vec<u32>,
    /// Per person key: the org key of its first row (`NONE` when no row has it) and
    /// the member of (that org, the person) or `NONE`; side by side, as every row
    /// reads both.
    person: Vec<(u32, u32)>,
}

/// Keys per parallel task of `KeyFacts::new`.
const KEYS_PER_TASK: usize = 4096;

impl KeyFacts {
    fn new(c: &Chunk, layout: &Layout, members: &MemberIndex) -> KeyFacts {
        let class = (0..c.event.values.len())
            .into_par_iter()
            .with_min_len(KEYS_PER_TASK)
            .map(|k| {
                layout
                    .class_of
                    .get(c.event.value(k))
                    .map_or(NONE, |&class| class as u32)
            })
            .collect();
        let path_class = c.url.as_ref().map_or_else(Vec::new, |u| {
            (0..u.values.len())
                .into_par_iter()
                .with_min_len(KEYS_PER_TASK)
                .map(|k| layout.path_class(url_path(u.value(k))))
                .collect()
        });
        // Most people appear under one org: each is looked up once, under the org of
        // its first row; rows of another org are looked up on their own.
        // (first org, member) per person key; the members are filled in below.
        let mut person = vec![(NONE, NONE); c.person.values.len()];
        for (&p, &o) in c.person.keys.iter().zip(c.org.keys.iter()) {
            let (first, _) = &mut person[p as usize];
            if *first == NONE {
                *first = o;
            }
        }
        let people: Vec<u32> = (0..person.len() as u32)
            .filter(|&p| person[p as usize].0 != NONE)
            .collect();
        let found: Vec<Vec<u32>> = people
            .par_chunks(KEYS_PER_TASK)
            .map(|people| {
                let pairs: Vec<(&str, &str)> = people
                    .iter()
                    .map(|&p| {
                        let org = c.org.value(person[p as usize].0 as usize);
                        (org, c.person.value(p as usize))
                    })
                    .collect();
                let mut found = Vec::with_capacity(pairs.len());
                members.find_all(&pairs, &mut found);
                found
            })
            .collect();
        for (&p, m) in people.iter().zip(found.into_iter().flatten()) {
            person[p as usize].1 = m;
        }
        KeyFacts {
            class,
            path_class,
            person,
        }
    }
}

/// Phase one, over a range of rows: each member event's facts, sorted into the
/// member partitions in row order (into `parts`, one per partition, emptied first),
/// and the totals over every row.
fn member_rows(
    c: &Chunk,
    facts: &KeyFacts,
    rows: std::ops::Range<usize>,
    layout: &Layout,
    members: &MemberIndex,
    parts: &mut [Vec<MemberRow>],
) -> Totals {
    for part in parts.iter_mut() {
        part.clear();
    }
    let timestamps = c.timestamp.values();
    let firsts = c.first.as_deref().unwrap_or(timestamps);
    let weight = |i: usize| c.weight.as_ref().map_or(1, |w| w[i]);
    let mut totals = Totals {
        rows: match &c.weight {
            None => rows.len() as u64,
            Some(w) => w[rows.clone()].iter().map(|&w| u64::from(w)).sum(),
        },
        latest_us: timestamps[rows.clone()].iter().copied().max(),
        earliest_us: firsts[rows.clone()].iter().copied().min(),
        ..Totals::default()
    };
    // Events per day, counted in runs: a time-ordered export changes day rarely.
    let mut run = (i32::MIN, 0u64);
    let end = rows.end;
    for i in rows {
        // The person facts of a row a little ahead: read at random, they are the
        // load this loop waits on most.
        if i + FACTS_AHEAD < end {
            prefetch(&facts.person[c.person.key(i + FACTS_AHEAD)]);
        }
        let t = timestamps[i];
        let day = t.div_euclid(MICROS_PER_DAY) as i32;
        if day != run.0 {
            totals.add_events_of_day(run.0, run.1);
            run = (day, 0);
        }
        let weight = weight(i);
        run.1 += u64::from(weight);
        let (person, org) = (c.person.key(i), c.org.key(i));
        let (first_org, member) = facts.person[person];
        let member = if first_org as usize == org {
            member
        } else {
            members.find(c.org.value(org), c.person.value(person))
        };
        if member == NONE {
            totals.unknown_member_events += u64::from(weight);
            continue;
        }
        let class = facts.class[c.event.key(i)];
        let visits = layout.classes.get(class as usize).map_or(0, |class| {
            let url = c.url.as_ref().filter(|u| u.is_valid(i));
            layout.visits(class, url.map_or(0, |u| facts.path_class[u.key(i)]))
        });
        parts[member as usize % PARTITIONS].push(MemberRow {
            t,
            visits,
            member,
            weight,
            class,
        });
    }
    totals.add_events_of_day(run.0, run.1);
    totals
}

/// Rows ahead of phase one whose person facts are prefetched.
const FACTS_AHEAD: usize = 16;

/// Phase-one row ranges per thread and chunk: a few, so that a slow thread does not
/// hold the others at the end of the phase.
const RANGES_PER_THREAD: usize = 4;

/// The rollup being built.
struct Accumulator<'a> {
    layout: &'a Layout,
    members: &'a MemberIndex,
    partitions: Vec<Partition>,
    /// Phase one's rows of a chunk: per row range, one vector per partition. Kept
    /// from chunk to chunk, so each chunk's rows go to memory already mapped and
    /// likely cached, not to fresh allocations.
    phase_one: Vec<Vec<Vec<MemberRow>>>,
    totals: Totals,
    /// A required column held a null.
    null_in_required: bool,
    /// Digests' rows kept as they are (`add_digest`), written out before the slots'.
    finished: Vec<digests::FinishedRows>,
}

impl<'a> Accumulator<'a> {
    fn new(layout: &'a Layout, members: &'a MemberIndex) -> Self {
        Accumulator {
            layout,
            members,
            partitions: (0..PARTITIONS)
                .map(|_| Partition::new(layout, members.count()))
                .collect(),
            phase_one: Vec::new(),
            totals: Totals::default(),
            null_in_required: false,
            finished: Vec::new(),
        }
    }

    /// Adds one chunk of event rows: the facts of its keys, then phase one over row
    /// ranges and phase two over member partitions, each on all threads.
    fn add(&mut self, chunk: &Chunk) {
        if chunk.has_null_in_required() {
            self.null_in_required = true;
            return;
        }
        let (layout, members) = (self.layout, self.members);
        let facts = KeyFacts::new(chunk, layout, members);
        // Phase one: a few ranges per thread, so that a slow thread does not hold the
        // others at the end of the phase; each partition then takes its rows range by
        // range, in row order, so the cut changes nothing.
        let len = chunk.len();
        let step = len
            .div_ceil(RANGES_PER_THREAD * rayon::current_num_threads())
            .max(1);
        let ranges: Vec<_> = (0..len)
            .step_by(step)
            .map(|s| s..(s + step).min(len))
            .collect();
        self.phase_one
            .resize_with(ranges.len(), || vec![Vec::new(); PARTITIONS]);
        let totals: Vec<Totals> = ranges
            .into_par_iter()
            .zip(self.phase_one.par_iter_mut())
            .map(|(r, parts)| member_rows(chunk, &facts, r, layout, members, parts))
            .collect();
        for t in totals {
            self.totals.merge(t);
        }
        // Phase two: partitions are disjoint sets of members, so they fill in parallel.
        let phase_one = &self.phase_one;
        self.partitions
            .par_iter_mut()
            .enumerate()
            .for_each(|(p, part)| {
                for parts in phase_one {
                    part.add(&parts[p], layout);
                }
            });
    }

    /// Adds a chunk in pieces of `chunk_rows()` rows when that is set (outputs do
    /// not depend on where chunks are cut).
    fn add_in_pieces(&mut self, chunk: &Chunk) {
        let len = chunk.len();
        match chunk_rows() {
            Some(n) if n.get() < len => {
                for start in (0..len).step_by(n.get()) {
                    self.add(&chunk.slice(start..(start + n.get()).min(len)));
                }
            }
            _ => self.add(chunk),
        }
    }

    /// The (member, day) rows: the digests' finished rows in the order they were
    /// added, then the partitions in order, each in the order its (member, day) rows
    /// were first seen (visit rows likewise, a partition's in the order of their
    /// first visit). Every column is allocated once at its full length and each
    /// digest and partition writes its own rows' stretch of it, in parallel. With the
    /// totals over every row.
    fn member_days(self) -> (MemberDays, Totals) {
        let layout = self.layout;
        let lengths: Vec<usize> = (self.finished.iter().map(digests::FinishedRows::len))
            .chain(self.partitions.iter().map(Partition::slots))
            .collect();
        let visit_lengths: Vec<usize> = (self.finished.iter())
            .map(digests::FinishedRows::visit_rows)
            .chain(self.partitions.iter().map(Partition::visit_rows))
            .collect();
        let mut days = Columns::new(&lengths, true, layout.counts.len(), 1 + layout.latest.len());
        let mut visits = Columns::new(&visit_lengths, false, layout.visits.len(), 0);
        let mut stretches = days
            .stretches(&lengths)
            .into_iter()
            .zip(visits.stretches(&visit_lengths));
        let finished: Vec<_> = stretches.by_ref().take(self.finished.len()).collect();
        let partitions: Vec<_> = stretches.collect();
        rayon::join(
            || {
                // Each digest's rows are freed once written (as the slot blocks are).
                self.finished
                    .into_par_iter()
                    .zip(finished)
                    .for_each(|(f, (days, visits))| f.write_into(days, visits))
            },
            || {
                self.partitions
                    .into_par_iter()
                    .zip(partitions)
                    .for_each(|(p, (days, visits))| p.write_into(days, visits))
            },
        );

        let mut instants = days.instants.into_iter();
        let columns = MemberDays {
            member: days.member,
            day: days.day,
            n: days.n,
            last: instants.next().unwrap_or_default(),
            counts: days.counts,
            latest: instants.collect(),
            visit_member: visits.member,
            visit_day: visits.day,
            visit_counts: visits.counts,
        };
        (columns, self.totals)
    }

    /// The rollup: its frames (`member_days`), the members and the totals.
    fn finish(self, keys: DataFrame, member_of_row: Vec<u32>) -> PolarsResult<Rollup> {
        let layout = self.layout;
        let (columns, totals) = self.member_days();
        let (frame, visits) = columns.frames(layout)?;
        Ok(Rollup {
            frame,
            visits,
            members: keys,
            member_of_row,
            rows: totals.rows,
            latest_us: totals.latest_us,
            earliest_us: totals.earliest_us,
            events_per_day: totals.events_per_day,
            unknown_member_events: totals.unknown_member_events,
            skipped: Skipped::default(),
            from_rollups: 0,
            digests: None,
        })
    }
}

/// The (member, day) rows of `Rollup`, column by column, as the partitions wrote them
/// (`Accumulator::finish`); `frames` makes them the rollup's frames.
struct MemberDays {
    member: Vec<u32>,
    day: Vec<i32>,
    n: Vec<i64>,
    last: Vec<i64>,
    counts: Vec<Vec<u32>>,
    /// `NO_INSTANT` where a set has no latest instant (a null in the frame).
    latest: Vec<Vec<i64>>,
    visit_member: Vec<u32>,
    visit_day: Vec<i32>,
    visit_counts: Vec<Vec<u32>>,
}

impl MemberDays {
    /// The frames of `Rollup`: the (member, day) rows and the visit rows.
    fn frames(self, layout: &Layout) -> PolarsResult<(DataFrame, DataFrame)> {
        let mut frame = vec![
            UInt32Chunked::from_vec("member".into(), self.member).into_column(),
            Int32Chunked::from_vec("day".into(), self.day).into_column(),
            Int64Chunked::from_vec(crate::rollup_spec::EVENTS.into(), self.n).into_column(),
            Int64Chunked::from_vec(crate::rollup_spec::LAST_INSTANT.into(), self.last)
                .into_column(),
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

/// Rows per streamed chunk; `ACCOUNT_HEALTH_EVENTS_CHUNK_ROWS` overrides polars'
/// default (outputs do not depend on it: a test runs with tiny chunks).
fn chunk_rows() -> Option<NonZeroUsize> {
    std::env::var("ACCOUNT_HEALTH_EVENTS_CHUNK_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
}

/// Whether the pass reads the pages of the files that allow it (`pages::open`);
/// `ACCOUNT_HEALTH_EVENTS_READER=polars` reads every file through polars' scan
/// instead, to compare the two (outputs do not depend on it: a test runs both).
fn read_pages() -> bool {
    std::env::var("ACCOUNT_HEALTH_EVENTS_READER").map_or(true, |v| v != "polars")
}

/// Streams one events file through `add`, chunk by chunk in file order, while polars
/// reads and decodes the next chunks on its own threads.
fn stream_events(
    events: LazyFrame,
    mut add: impl FnMut(&DataFrame) -> PolarsResult<bool>,
) -> PolarsResult<()> {
    let (send, receive) = sync_channel::<DataFrame>(2);
    let sink = events.sink_batches(
        // Stop reading (return true) once the receiver has gone away.
        PlanCallback::new(move |chunk| Ok(send.send(chunk).is_err())),
        true,
        chunk_rows(),
    )?;
    let reader = std::thread::spawn(move || sink.collect_with_engine(Engine::Streaming));
    let mut outcome = Ok(());
    for chunk in receive.iter() {
        match add(&chunk) {
            Ok(true) => {}
            stop => {
                outcome = stop.map(|_| ());
                break;
            }
        }
    }
    drop(receive);
    let read = reader
        .join()
        .unwrap_or_else(|_| Err(polars_err!(ComputeError: "the events reader panicked")));
    read.map(|_| ())?;
    outcome
}

/// The row groups of a run of consecutive events files that the pass reads itself
/// (`pages::open`), in file order: the run ends at the first file left to polars'
/// scan, or at the last file. Files are opened as the run reaches them, so a problem
/// in a later file is met in file order.
struct PagesRun<'a> {
    files: &'a [input::EventsFile],
    /// The organization's group type in export-shaped files' properties.
    group_type: &'a str,
    progress: &'a PassProgress,
    /// Row groups whose timestamps all fall on these days are not read.
    skip: &'a DaySet,
    /// The next file to open.
    next_file: usize,
    open: Option<pages::PagesFile>,
    next_group: usize,
    /// Row groups decoded ahead (with their rows), in file order.
    decoded: VecDeque<(u64, PolarsResult<pages::Decoded>)>,
    /// The run has met its end: a file left to polars, or no file left.
    ended: bool,
}

/// Row groups decoded at once, each on its own threads: a column's pages decompress
/// on one thread, so one row group alone leaves threads idle while its largest
/// column (an export's properties) decodes.
const GROUPS_AHEAD: usize = 2;

impl<'a> PagesRun<'a> {
    fn starting_at(
        events: &'a EventsScan,
        file: usize,
        progress: &'a PassProgress,
        skip: &'a DaySet,
    ) -> Self {
        PagesRun {
            files: &events.files,
            group_type: &events.group_type,
            progress,
            skip,
            next_file: file,
            open: None,
            next_group: 0,
            decoded: VecDeque::new(),
            ended: false,
        }
    }

    /// The next row group of the run that leaves rows, or `None` at its end
    /// (`next_file` is then the file left to polars, or the number of files). An
    /// export-shaped file's rows go through `export` in file order, while the run's
    /// next row groups (the next file's too) decode beside them: the two steps took
    /// turns on the critical path otherwise, with a core often idle in each.
    fn next(&mut self, export: &mut export::ExportReader) -> Option<PolarsResult<Chunk>> {
        loop {
            if self.decoded.is_empty() && !self.decode_ahead() {
                return None;
            }
            let (rows, decoded) = self.decoded.pop_front()?;
            self.progress.rows(rows);
            match decoded {
                Ok(pages::Decoded::Flat(chunk)) => return Some(Ok(chunk)),
                Ok(pages::Decoded::Export(rows)) => {
                    let (chunk, _) = rayon::join(
                        || export.chunk_of(rows),
                        || self.decoded.is_empty() && self.decode_ahead(),
                    );
                    match chunk {
                        Ok(Some(chunk)) => return Some(Ok(chunk)),
                        Ok(None) => continue,
                        Err(e) => return Some(Err(e)),
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Decodes the run's next `GROUPS_AHEAD` row groups that are not wholly on held
    /// days into `decoded`, side by side, opening the next file when the open one
    /// has none left (a file that fails to open is an error in its place); false,
    /// adding nothing, at the run's end.
    fn decode_ahead(&mut self) -> bool {
        loop {
            if let Some(file) = self.open.as_ref() {
                let mut groups = Vec::with_capacity(GROUPS_AHEAD);
                while self.next_group < file.row_groups() && groups.len() < GROUPS_AHEAD {
                    let g = self.next_group;
                    self.next_group += 1;
                    // Wholly on held days (rollups): its rows would all be left out.
                    // (Statistics read only when some day is held.)
                    let held = !self.skip.is_empty()
                        && file.days(g).is_some_and(|(a, b)| self.skip.holds_all(a, b));
                    if held {
                        self.progress.rows(file.rows(g));
                    } else {
                        groups.push(g);
                    }
                }
                if !groups.is_empty() {
                    let decoded: Vec<_> = groups
                        .into_par_iter()
                        .map(|g| (file.rows(g), file.decode(g, self.group_type)))
                        .collect();
                    self.decoded.extend(decoded);
                    return true;
                }
                // Every group left was held: the file is done.
                self.open = None;
                file_read(self.progress, &self.files[self.next_file - 1]);
            }
            if self.ended {
                return false;
            }
            let Some(file) = self.files.get(self.next_file) else {
                self.ended = true;
                return false;
            };
            if !read_pages() {
                self.ended = true;
                return false;
            }
            match pages::open(file) {
                Ok(Some(opened)) => {
                    self.open = Some(opened);
                    self.next_group = 0;
                    self.next_file += 1;
                }
                Ok(None) => {
                    self.ended = true;
                    return false;
                }
                Err(e) => {
                    self.decoded.push_back((0, Err(e)));
                    return true;
                }
            }
        }
    }
}

/// What stopped the events pass. Either may be bad input that the per-file schema
/// checks could not see; `EventsScan::blame` finds the file, or calls it internal.
#[derive(Debug)]
pub enum PassError {
    /// A required column (`timestamp`, `event`, `distinct_id`, `org_id`) held a null.
    NullInRequired,
    /// Reading or decoding failed.
    Failed(PolarsError),
    /// A rollup file (`run --rollups`) is bad input, named.
    BadRollup(crate::error::InputError),
}

impl PassError {
    /// The error to report: a bad rollup file as it is; otherwise the events file
    /// that reads badly alone (`EventsScan::blame`).
    pub fn into_error(self, events: &EventsScan) -> anyhow::Error {
        match self {
            PassError::Failed(e) => events.blame(Some(e)),
            PassError::NullInRequired => events.blame(None),
            PassError::BadRollup(e) => e.into(),
        }
    }
}

/// Tells the progress a file was read whole.
fn file_read(progress: &PassProgress, file: &input::EventsFile) {
    progress.file_done(&file.path, file.bytes);
}

/// The events pass over every events file, with the members; `progress` is told of
/// rows and files as they are read. With `rollups` (`run --rollups`), the events of
/// the days they hold are left out entirely and the rollups' rows added instead.
pub fn rollup(
    events: &EventsScan,
    members: &DataFrame,
    spec: &RollupSpec,
    progress: &PassProgress,
    rollups: Option<&rollup_files::RollupFiles>,
) -> Result<Rollup, PassError> {
    let blame = PassError::Failed;
    let layout = Layout::new(spec);
    let skip = &rollups.map_or_else(DaySet::default, rollup_files::RollupFiles::held);
    let mut run = PagesRun::starting_at(events, 0, progress, skip);
    let mut export = export::ExportReader::new(&events.group_type, skip);
    let index = || -> PolarsResult<_> {
        let (keys, member_of_row) = member_keys(members)?;
        let members = MemberIndex::new(&keys)?;
        Ok((keys, member_of_row, members))
    };
    // The member index is built while the first row group is read; with rollups, the
    // first row group (of the raw days, found among row groups of held days) is read
    // while the rollups are added instead.
    let mut first = None;
    let index = match rollups {
        None => {
            let (index, read) = rayon::join(index, || run.next(&mut export));
            first = read;
            index
        }
        Some(_) => index(),
    };
    let (keys, member_of_row, members) = index.map_err(blame)?;
    let mut acc = Accumulator::new(&layout, &members);
    // The rollups first: they hold the older days, and a member's days met in order
    // need no map (`slots::Partition::slot`).
    let mut from_rollups = 0;
    let mut digests = None;
    if let Some(rollups) = rollups {
        let (added, read) = rayon::join(|| rollups.add_to(&mut acc), || run.next(&mut export));
        digests = Some(added.map_err(PassError::BadRollup)?);
        from_rollups = acc.totals.rows;
        first = read;
    }
    each_chunk(events, progress, &mut export, run, first, skip, &mut acc)?;
    let mut rollup = acc.finish(keys, member_of_row).map_err(blame)?;
    rollup.from_rollups = from_rollups;
    rollup.digests = digests;
    rollup.rows += export.skipped.total();
    rollup.skipped = export.skipped;
    Ok(rollup)
}

/// What takes the pass's chunks: the (member, day) accumulator of `rollup`, or the
/// per-day rollup files of `day_rollups`.
trait ChunkSink: Send {
    fn add_chunk(&mut self, chunk: &Chunk);
    /// A required column held a null: stop.
    fn null_in_required(&self) -> bool;
    /// A (member, day) reached more than 2^32-1 events (only rollup rows' counts
    /// can): its counts would wrap, so stop.
    fn too_many_events(&self) -> bool {
        false
    }
}

impl ChunkSink for Accumulator<'_> {
    fn add_chunk(&mut self, chunk: &Chunk) {
        self.add_in_pieces(chunk);
    }
    fn null_in_required(&self) -> bool {
        self.null_in_required
    }
    fn too_many_events(&self) -> bool {
        self.partitions.iter().any(Partition::too_many_events)
    }
}

/// Days whose rows a pass leaves out: listed days, or every day outside a range.
#[derive(Debug, Default, Clone)]
pub struct DaySet {
    days: std::collections::BTreeSet<i32>,
    /// Every day outside `from..=to` is held too.
    outside: Option<(i32, i32)>,
}

impl DaySet {
    pub fn new(days: impl IntoIterator<Item = i32>) -> DaySet {
        DaySet {
            days: days.into_iter().collect(),
            outside: None,
        }
    }

    /// Every day but `from..=to`.
    pub fn outside(from: i32, to: i32) -> DaySet {
        DaySet {
            days: Default::default(),
            outside: Some((from, to)),
        }
    }

    pub fn holds(&self, day: i32) -> bool {
        self.days.contains(&day) || self.outside.is_some_and(|(a, b)| day < a || day > b)
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty() && self.outside.is_none()
    }

    /// Every day of `first..=last` is held (a row group whose timestamps all fall on
    /// held days need not be read).
    fn holds_all(&self, first: i32, last: i32) -> bool {
        if self.is_empty() || first > last {
            return false;
        }
        if self.outside.is_some_and(|(a, b)| last < a || first > b) {
            return true;
        }
        // Longer spans than a year are read (a file not ordered by time).
        last - first <= 366 && (first..=last).all(|d| self.holds(d))
    }

    /// The chunk without the rows of these days; `None` when no row is left.
    fn without(&self, chunk: Chunk) -> Option<Chunk> {
        // A chunk with a null timestamp goes on whole: the sink reports it.
        if self.is_empty() || chunk.has_null_in_required() {
            return Some(chunk);
        }
        let keep: Vec<u32> = chunk
            .timestamp
            .values()
            .iter()
            .enumerate()
            .filter(|(_, &t)| !self.holds(t.div_euclid(MICROS_PER_DAY) as i32))
            .map(|(i, _)| i as u32)
            .collect();
        match keep.len() {
            0 => None,
            n if n == chunk.len() => Some(chunk),
            _ => Some(chunk.take(&keep)),
        }
    }
}

/// Every chunk of the events files, in file order, into `sink`; `first` is the first
/// chunk of `run` (read already). Each row group is read while the one before it is
/// added, the first of a file while the last of the file before it is, so the
/// threads one stage leaves idle work on the other.
fn each_chunk<'a>(
    events: &'a EventsScan,
    progress: &'a PassProgress,
    export: &mut export::ExportReader,
    mut run: PagesRun<'a>,
    first: Option<PolarsResult<Chunk>>,
    skip: &'a DaySet,
    sink: &mut impl ChunkSink,
) -> Result<(), PassError> {
    let blame = PassError::Failed;
    let files = &events.files;
    let mut next = first;
    let mut file = 0;
    loop {
        while let Some(chunk) = next.take() {
            let chunk = chunk.map_err(blame)?;
            let (read, ()) = rayon::join(
                || run.next(export),
                || {
                    if let Some(chunk) = skip.without(chunk) {
                        sink.add_chunk(&chunk);
                    }
                },
            );
            if sink.null_in_required() {
                return Err(PassError::NullInRequired);
            }
            next = read;
        }
        file = file.max(run.next_file);
        let Some(left_to_polars) = files.get(file) else {
            return Ok(());
        };
        let shape = left_to_polars.shape;
        stream_events(left_to_polars.frame.clone(), |frame| {
            progress.rows(frame.height() as u64);
            let chunk = match shape {
                input::EventsShape::Flat => Chunk::from_frame(frame)?,
                input::EventsShape::Posthog => export.chunk(frame)?,
            };
            if let Some(chunk) = chunk.and_then(|c| skip.without(c)) {
                sink.add_chunk(&chunk);
            }
            Ok(!sink.null_in_required())
        })
        .map_err(blame)?;
        if sink.null_in_required() {
            return Err(PassError::NullInRequired);
        }
        file_read(progress, left_to_polars);
        file += 1;
        run = PagesRun::starting_at(events, file, progress, skip);
        next = run.next(export);
    }
}

#[cfg(test)]
impl Layout {
    /// The layout of the default model.
    pub(super) fn of_default_model() -> Layout {
        Layout::new(&RollupSpec::of(&crate::model::Model::default_model()))
    }
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
    fn member_keys_are_the_distinct_pairs_in_polars_order() {
        let members = df!(
            "org_id" => ["b", "a", "a", "B", "a", "ab", "é"],
            "distinct_id" => ["x", "y", "x", "z", "x", "", "a"],
            "role" => ["m"; 7],
        )
        .unwrap();
        let (keys, member_of_row) = member_keys(&members).unwrap();
        // Bytewise, org first: "B" < "a" < "ab" < "b" < "é"; the repeated (a, x) once.
        let expected = df!(
            "org_id" => ["B", "a", "a", "ab", "b", "é"],
            "distinct_id" => ["z", "x", "y", "", "x", "a"],
        )
        .unwrap();
        assert!(keys.equals(&expected), "{keys}");
        // Rows b/x, a/y, a/x, B/z, a/x, ab/"", é/a: both a/x rows are member 1.
        assert_eq!(member_of_row, [4, 2, 1, 0, 1, 3, 5]);
        // The same as polars' own unique and sort.
        let by_polars = members
            .lazy()
            .select([col("org_id"), col("distinct_id")])
            .unique(None, UniqueKeepStrategy::Any)
            .sort(["org_id", "distinct_id"], Default::default())
            .collect()
            .unwrap();
        assert!(keys.equals(&by_polars));
    }

    /// The visit columns a row adds one to, by name, from its event and URL.
    fn visit_columns(layout: &Layout, event: &str, url: Option<&str>) -> Vec<String> {
        let class = &layout.classes[layout.class_of[event]];
        let path_class = url.map_or(0, |u| layout.path_class(url_path(u)));
        let set = &layout.visit_sets[layout.visits(class, path_class) as usize];
        set.iter()
            .map(|&c| layout.visits[c as usize].clone())
            .collect()
    }

    #[test]
    fn visits_follow_the_event_and_the_path() {
        let layout = Layout::of_default_model();
        let of = |event: &str, url: Option<&str>| visit_columns(&layout, event, url);
        assert_eq!(
            of(
                "$pageview",
                Some("https://posthog.com/docs/surveys/intro?x=1")
            ),
            ["n__docs_visit", "docs_of__surveys"]
        );
        // Nested prefixes: /docs, /docs/cdp and /docs/cdp/batch-exports all match.
        assert_eq!(
            of("$pageview", Some("/docs/cdp/batch-exports/s3")),
            ["n__docs_visit", "docs_of__cdp", "docs_of__batch_exports"]
        );
        assert_eq!(
            of("$pageview", Some("/docs/cdpx")),
            ["n__docs_visit", "docs_of__cdp"]
        );
        assert_eq!(
            of("$pageview", Some("/organization/billing")),
            ["n__billing_visit"]
        );
        // The path is what counts: "/docs" in the query string is no docs visit.
        assert!(of("$pageview", Some("/home?next=/docs")).is_empty());
        assert!(of("$pageview", None).is_empty());
        // Only pageviews visit a path; `billing v2 shown` is a billing visit anywhere.
        assert_eq!(of("billing v2 shown", Some("/docs")), ["n__billing_visit"]);
        assert_eq!(of("billing v2 shown", None), ["n__billing_visit"]);
        assert!(of("insight saved", Some("/docs")).is_empty());
    }

    /// Any number of visit columns and prefixes, nested or not, each counted where
    /// its own prefix matches: 100 products, an empty prefix, and a set counted
    /// anywhere that also has a prefix.
    #[test]
    fn many_visit_columns_each_follow_their_own_prefix() {
        let column = |u: usize| format!("v{u}");
        let mut visits: Vec<crate::rollup_spec::VisitColumn> = (0..100)
            .map(|u| crate::rollup_spec::VisitColumn {
                column: column(u),
                pages: vec!["page".into()],
                path_prefix: format!("/p/{}", "x".repeat(u % 7) + &(u / 7).to_string()),
                anywhere: vec![],
            })
            .collect();
        visits.push(crate::rollup_spec::VisitColumn {
            column: "all".into(),
            pages: vec!["page".into()],
            path_prefix: String::new(),
            anywhere: vec!["shown".into()],
        });
        let spec = RollupSpec {
            counts: vec![],
            latest: vec![],
            visits: visits.clone(),
        };
        let layout = Layout::new(&spec);
        for path in [
            "/p/xx3",
            "/p/xx31",
            "/p/1",
            "/p/x",
            "/q",
            "",
            "/p/xxxxxx14/a",
        ] {
            let mut expected: Vec<String> = visits
                .iter()
                .filter(|v| path.starts_with(v.path_prefix.as_str()))
                .map(|v| v.column.clone())
                .collect();
            assert_eq!(
                visit_columns(&layout, "page", Some(path)),
                expected,
                "{path}"
            );
            expected.retain(|c| c == "all");
            assert_eq!(
                visit_columns(&layout, "shown", Some(path)),
                expected,
                "{path}"
            );
        }
        assert!(visit_columns(&layout, "page", None).is_empty());
    }

    /// The kernel's path against the regex the SPEC's rule was first written as.
    #[test]
    fn url_path_matches_the_regex() {
        let urls = [
            "https://app.posthog.com/docs/feature-flags?x=1#top",
            "http://localhost:8000/organization/billing",
            "/docs/surveys#intro",
            "/docs?q",
            "https://host",
            "https://host?x=/docs",
            "mailto:someone@example.com",
            "1http://host/docs",
            "svn+ssh://host/path",
            "a.b-c://h/x",
            "://host/docs",
            "",
            "#/docs",
            "https://hôst.example/dôcs/é?q",
            "docs/relative",
        ];
        let df = df!("u" => urls).unwrap();
        let expected = df
            .lazy()
            .select([col("u")
                .str()
                .extract(lit(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)?([^?#]*)"), 1)])
            .collect()
            .unwrap();
        let expected = expected.column("u").unwrap().str().unwrap();
        for (url, want) in urls.iter().zip(expected.iter()) {
            assert_eq!(Some(url_path(url)), want, "{url}");
        }
    }
}
