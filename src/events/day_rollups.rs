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

use super::{url_path, Chunk, ChunkSink, Rollup, Skipped};
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
    /// Days kept, inclusive; rows of other days are left out.
    days: (i32, i32),
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
            if day < self.days.0 || day > self.days.1 {
                continue;
            }
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
    /// Rollups of the days `from..=to` (days since the epoch) for a model's visits.
    pub fn new(spec: &RollupSpec, from: i32, to: i32) -> DayRollups {
        let (page_events, prefixes) = needs(spec);
        DayRollups {
            page_events,
            prefixes,
            days: (from, to),
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
    pub fn frame(&self, day: i32) -> PolarsResult<DataFrame> {
        let Some(map) = self.by_day.get(&day) else {
            return empty_frame();
        };
        fn s(i: &Interner, id: u32) -> &str {
            i.values[id as usize].as_str()
        }
        let mut rows: Vec<(&RowKey, &Agg)> = map.iter().collect();
        rows.sort_unstable_by(|(a, _), (b, _)| {
            (
                s(&self.orgs, a.0),
                s(&self.people, a.1),
                s(&self.events, a.2),
            )
                .cmp(&(
                    s(&self.orgs, b.0),
                    s(&self.people, b.1),
                    s(&self.events, b.2),
                ))
                .then_with(|| path_of(&self.paths, a.3).cmp(&path_of(&self.paths, b.3)))
        });
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

    /// The metadata of this rollup's files.
    pub fn meta(&self) -> RollupMeta {
        RollupMeta {
            page_events: self.page_events.clone(),
            path_prefixes: self.prefixes.clone(),
        }
    }
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
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let meta = serde_json::to_string(meta)?;
    ParquetWriter::new(&mut w)
        .with_compression(ParquetCompression::Zstd(None))
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![(
            METADATA_KEY.to_string(),
            meta,
        )])))
        .set_parallel(false)
        .finish(frame)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("writing {}", path.display()))?;
    let file = w
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("flushing {}", path.display()))
}

/// Rollup rows read back, and the days they hold.
pub struct RollupRows {
    /// `org_id`, `distinct_id`, `day` (i32 days), `event`, `path`, `count`,
    /// `first_us`, `last_us` (i64).
    pub frame: DataFrame,
    pub days: Vec<i32>,
    /// The files read.
    pub files: usize,
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
        let (pages, prefixes) = needs(spec);
        let mut frames = Vec::new();
        let files = parquet_files(dir)?;
        for path in &files {
            let file_name = path.display().to_string();
            let unreadable = |e: PolarsError| InputError::Unreadable {
                file: file_name.clone(),
                reason: e.to_string(),
            };
            let file = std::fs::File::open(path).map_err(|e| InputError::BadPath {
                path: file_name.clone(),
                problem: format!("cannot open: {e}"),
            })?;
            let mut reader = ParquetReader::new(file);
            let meta = reader
                .get_metadata()
                .map_err(unreadable)?
                .key_value_metadata()
                .as_ref()
                .and_then(|kv| kv.iter().find(|k| k.key == METADATA_KEY))
                .and_then(|k| k.value.clone());
            if let Some(text) = meta {
                let meta: RollupMeta =
                    serde_json::from_str(&text).map_err(|e| InputError::BadValue {
                        file: file_name.clone(),
                        column: METADATA_KEY.into(),
                        problem: format!("unreadable rollup metadata: {e}"),
                    })?;
                check_built_for(&meta, &pages, &prefixes, &file_name)?;
            }
            let frame = reader.finish().map_err(unreadable)?;
            frames.push(normalise(frame, &file_name)?);
        }
        let frame = if frames.is_empty() {
            normalise(empty_frame().expect("an empty frame"), "")?
        } else {
            concat_frames(frames).map_err(|e| InputError::Unreadable {
                file: dir.display().to_string(),
                reason: e.to_string(),
            })?
        };
        let mut days: Vec<i32> = frame
            .column("day")
            .and_then(|c| c.i32().map(|d| d.iter().flatten().collect()))
            .unwrap_or_default();
        days.sort_unstable();
        days.dedup();
        Ok(RollupRows {
            frame,
            days,
            files: files.len(),
        })
    }

    /// The (member, day) rows of the events pass from these rollups, for the members
    /// `keys` (the pass's member numbering: row i is member i), with the totals the
    /// pass keeps. Grouped by polars and sorted by (member, day): row order does not
    /// change what is computed from a rollup.
    pub fn member_days(&self, keys: &DataFrame, spec: &RollupSpec) -> PolarsResult<Rollup> {
        let rows = self.frame.clone().lazy();
        let members = keys
            .clone()
            .lazy()
            .with_row_index("member", None)
            .with_column(col("member").cast(DataType::UInt32));
        let joined = rows
            .join(
                members,
                [col("org_id"), col("distinct_id")],
                [col("org_id"), col("distinct_id")],
                JoinArgs::new(JoinType::Left),
            )
            .collect()?;
        let totals = joined
            .clone()
            .lazy()
            .select([
                col("count").sum().alias("rows"),
                col("last_us").max().alias("latest"),
                col("first_us").min().alias("earliest"),
                col("count")
                    .filter(col("member").is_null())
                    .sum()
                    .alias("unknown"),
            ])
            .collect()?;
        let total = |name: &str| -> PolarsResult<Option<i64>> {
            Ok(totals.column(name)?.cast(&DataType::Int64)?.i64()?.get(0))
        };
        let per_day = joined
            .clone()
            .lazy()
            .group_by([col("day")])
            .agg([col("count").sum()])
            .collect()?;
        let mut events_per_day = BTreeMap::new();
        for (day, n) in per_day
            .column("day")?
            .i32()?
            .iter()
            .zip(per_day.column("count")?.i64()?.iter())
        {
            if let (Some(day), Some(n)) = (day, n) {
                if n > 0 {
                    events_per_day.insert(day, n as u64);
                }
            }
        }

        let is_in = |events: &[String]| {
            col("event").is_in(
                lit(Series::new("".into(), events.to_vec())).implode(false),
                false,
            )
        };
        let member_rows = joined.lazy().filter(col("member").is_not_null());
        let mut aggs = vec![
            col("count")
                .sum()
                .cast(DataType::Int64)
                .alias(rollup_spec::EVENTS),
            col("last_us").max().alias(rollup_spec::LAST_INSTANT),
        ];
        for c in &spec.counts {
            aggs.push(
                col("count")
                    .filter(is_in(&c.events))
                    .sum()
                    .cast(DataType::UInt32)
                    .alias(c.column.as_str()),
            );
        }
        for c in &spec.latest {
            aggs.push(
                col("last_us")
                    .filter(is_in(&c.events))
                    .max()
                    .alias(c.column.as_str()),
            );
        }
        let frame = member_rows
            .clone()
            .group_by([col("member"), col("day")])
            .agg(aggs)
            .sort(["member", "day"], Default::default())
            .collect()?;

        let visit = |v: &rollup_spec::VisitColumn| {
            (is_in(&v.pages).and(
                col("path")
                    .str()
                    .starts_with(lit(v.path_prefix.clone()))
                    .fill_null(false),
            ))
            .or(is_in(&v.anywhere))
        };
        let visit_aggs: Vec<Expr> = spec
            .visits
            .iter()
            .map(|v| {
                col("count")
                    .filter(visit(v))
                    .sum()
                    .cast(DataType::UInt32)
                    .alias(v.column.as_str())
            })
            .collect();
        let any_visit = spec
            .visits
            .iter()
            .map(|v| col(v.column.as_str()).gt(lit(0u32)))
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false));
        let visits = if spec.visits.is_empty() {
            df!("member" => Vec::<u32>::new(), "day" => Vec::<i32>::new())?
        } else {
            member_rows
                .group_by([col("member"), col("day")])
                .agg(visit_aggs)
                .filter(any_visit)
                .sort(["member", "day"], Default::default())
                .collect()?
        };
        Ok(Rollup {
            frame,
            visits,
            members: keys.clone(),
            member_of_row: Vec::new(),
            rows: total("rows")?.unwrap_or(0) as u64,
            latest_us: total("latest")?,
            earliest_us: total("earliest")?,
            events_per_day,
            unknown_member_events: total("unknown")?.unwrap_or(0) as u64,
            skipped: Skipped::default(),
        })
    }
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

fn concat_frames(frames: Vec<DataFrame>) -> PolarsResult<DataFrame> {
    let mut iter = frames.into_iter();
    let mut all = iter.next().expect("at least one frame");
    for f in iter {
        all.vstack_mut_owned(f)?;
    }
    all.rechunk_mut();
    Ok(all)
}
