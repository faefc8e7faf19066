//! Per-member-day rollups kept on disk (issue 27): the events rolled up per org,
//! member (`distinct_id`), UTC day and event name, with the count and the first and
//! last instants; for page views also the URL path, kept only under the path
//! prefixes the model uses. One folder per day, `R/day=YYYY-MM-DD/`. The schema does
//! not depend on the scoring weights or bands, so a rollup serves any model with the
//! same page-view events and path prefixes, recorded in each file's metadata.
//!
//! `DayRollups` builds them from the pass's chunks (the same reading, uuid dedupe
//! and properties parsing as the events pass); `rollup_files` reads them back into
//! the pass, so a run scores from rollups exactly as from the raw events.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use rayon::prelude::*;

use super::{url_path, Chunk, ChunkSink};
use crate::rollup_spec::RollupSpec;
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

/// Person shards of the rollup being built: a person's rows all go to the shard of
/// its `distinct_id`'s hash, so the shards fill side by side, each on one thread.
/// (The files are sorted by the strings, so they do not depend on the sharding or on
/// `--threads`.)
const SHARDS: usize = 16;

/// One shard: its people, and per day the rows of its people.
#[derive(Default)]
struct Shard {
    /// A person's id is `local * SHARDS + shard`, its local number here.
    people: Interner,
    /// Per day, in the order first met: the rows of that day (`day_index`) since the
    /// last spill.
    days: Vec<PlHashMap<RowKey, Agg>>,
    day_index: BTreeMap<i32, usize>,
    /// Days with rows in a spill file.
    spilled: std::collections::BTreeSet<i32>,
}

/// A rollup row as a spill file holds it (the ids of this run's interners).
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Spilled {
    key: [u32; 4],
    count: i64,
    first: i64,
    last: i64,
}

/// Rows the day maps hold (all shards) before they are written to the spill files
/// and emptied: about 130 bytes a row in the maps, so the maps stay near 2 GB
/// whatever the history. `ACCOUNT_HEALTH_ROLLUP_SPILL_ROWS` overrides it (the
/// files do not depend on it: a test spills every few rows).
fn spill_rows() -> usize {
    std::env::var("ACCOUNT_HEALTH_ROLLUP_SPILL_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16 << 20)
}

/// A shard's spill file of a day.
fn spill_file(dir: &Path, shard: usize, day: i32) -> std::path::PathBuf {
    dir.join(format!("s{shard}-d{day}.bin"))
}

impl Shard {
    /// Rows held in its day maps.
    fn held(&self) -> usize {
        self.days.iter().map(PlHashMap::len).sum()
    }

    /// Appends every day map's rows to the day's spill file, and empties the maps
    /// (each as soon as it is written, so a failure leaves no row in both).
    fn spill(&mut self, dir: &Path, shard: usize) -> std::io::Result<()> {
        use std::io::Write;
        for (&day, &i) in &self.day_index {
            let map = std::mem::take(&mut self.days[i]);
            let rows: Vec<Spilled> = map
                .iter()
                .map(|(k, a)| Spilled {
                    key: [k.0, k.1, k.2, k.3],
                    count: a.count,
                    first: a.first,
                    last: a.last,
                })
                .collect();
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(spill_file(dir, shard, day))?;
            file.write_all(bytemuck::cast_slice(&rows))?;
            self.spilled.insert(day);
        }
        self.days.clear();
        self.day_index.clear();
        Ok(())
    }

    /// Its rows of a day: spilled, then held (a key may come several times).
    fn day_rows(&self, dir: &Path, shard: usize, day: i32) -> std::io::Result<Vec<(RowKey, Agg)>> {
        let mut rows = Vec::new();
        if self.spilled.contains(&day) {
            let bytes = std::fs::read(spill_file(dir, shard, day))?;
            let spilled: Vec<Spilled> = bytemuck::pod_collect_to_vec(&bytes);
            rows.extend(spilled.iter().map(|s| {
                let [o, p, e, u] = s.key;
                (
                    (o, p, e, u),
                    Agg {
                        count: s.count,
                        first: s.first,
                        last: s.last,
                    },
                )
            }));
        }
        if let Some(&i) = self.day_index.get(&day) {
            rows.extend(self.days[i].iter().map(|(k, a)| (*k, *a)));
        }
        Ok(rows)
    }

    /// Adds one chunk's rows of this shard, in row order.
    fn add(&mut self, rows: &[Staged]) {
        let mut recent: Option<(i32, usize)> = None;
        for r in rows {
            let index = match recent {
                Some((day, index)) if day == r.day => index,
                _ => {
                    let next = self.days.len();
                    let index = *self.day_index.entry(r.day).or_insert(next);
                    if index == next {
                        self.days.push(PlHashMap::default());
                    }
                    recent = Some((r.day, index));
                    index
                }
            };
            self.days[index]
                .entry(r.key)
                .and_modify(|a| {
                    a.count += 1;
                    a.first = a.first.min(r.t);
                    a.last = a.last.max(r.t);
                })
                .or_insert(Agg {
                    count: 1,
                    first: r.t,
                    last: r.t,
                });
        }
    }
}

/// One event of a chunk, as its shard adds it.
#[derive(Clone, Copy)]
struct Staged {
    key: RowKey,
    day: i32,
    t: i64,
}

/// Rows per parallel task of the staging step.
const ROWS_PER_TASK: usize = 16 * 1024;

/// The rollups being built from the pass's chunks: the rows of each shard's people,
/// one map per day, so a time-ordered export works in one day's entries at a time.
pub struct DayRollups {
    page_events: Vec<String>,
    prefixes: Vec<String>,
    orgs: Interner,
    events: Interner,
    paths: Interner,
    shards: Vec<Shard>,
    /// Per row range of a chunk, per shard: its events; kept from chunk to chunk.
    staged: Vec<Vec<Vec<Staged>>>,
    /// Where the day maps are spilled when they hold more than `spill_at` rows.
    spill: std::path::PathBuf,
    spill_at: usize,
    /// The first spill that failed; the rollup fails with it.
    spill_error: Option<std::io::Error>,
    null_in_required: bool,
}

impl ChunkSink for DayRollups {
    fn add_chunk(&mut self, c: &Chunk) {
        // Built from events, never from rollups' weighted rows.
        assert!(c.weight.is_none(), "rollups are built from events");
        // After a failed spill the rollup fails: nothing more to add.
        if self.spill_error.is_some() {
            return;
        }
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
        let people = self.person_ids(&c.person);
        // Each row's event staged for its person's shard (row ranges side by side),
        // then each shard adds its rows, range by range in row order.
        let timestamps = c.timestamp.values();
        let ranges: Vec<std::ops::Range<usize>> = (0..timestamps.len())
            .step_by(ROWS_PER_TASK)
            .map(|s| s..(s + ROWS_PER_TASK).min(timestamps.len()))
            .collect();
        self.staged
            .resize_with(ranges.len(), || vec![Vec::new(); SHARDS]);
        ranges
            .into_par_iter()
            .zip(self.staged.par_iter_mut())
            .for_each(|(range, staged)| {
                for shard in staged.iter_mut() {
                    shard.clear();
                }
                for i in range {
                    let t = timestamps[i];
                    let pk = c.person.key(i);
                    let ek = c.event.key(i);
                    let path = match &c.url {
                        Some(u) if page[ek] && u.is_valid(i) => paths[u.key(i)],
                        _ => NO_PATH,
                    };
                    let person = people[pk];
                    staged[person as usize % SHARDS].push(Staged {
                        key: (orgs[c.org.key(i)], person, events[ek], path),
                        day: t.div_euclid(MICROS_PER_DAY) as i32,
                        t,
                    });
                }
            });
        let staged = &self.staged;
        self.shards
            .par_iter_mut()
            .enumerate()
            .for_each(|(s, shard)| {
                for range in staged {
                    shard.add(&range[s]);
                }
            });
        let held: usize = self.shards.iter().map(Shard::held).sum();
        if held > self.spill_at {
            let dir = &self.spill;
            let failed = self
                .shards
                .par_iter_mut()
                .enumerate()
                .map(|(s, shard)| shard.spill(dir, s))
                .find_any(Result::is_err);
            if let Some(Err(e)) = failed {
                self.spill_error.get_or_insert(e);
            }
        }
    }

    fn null_in_required(&self) -> bool {
        self.null_in_required
    }
}

impl DayRollups {
    /// Rollups for a model's visits (the pass gives only the days asked for), their
    /// rows spilled into `spill` (an empty folder) past `spill_rows()`.
    pub fn new(spec: &RollupSpec, spill: std::path::PathBuf) -> DayRollups {
        let (page_events, prefixes) = needs(spec);
        DayRollups {
            page_events,
            prefixes,
            orgs: Interner::default(),
            events: Interner::default(),
            paths: Interner::default(),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            staged: Vec::new(),
            spill,
            spill_at: spill_rows(),
            spill_error: None,
            null_in_required: false,
        }
    }

    /// A spill that failed while the events were added.
    pub fn spill_error(&mut self) -> Option<std::io::Error> {
        self.spill_error.take()
    }

    /// The id of each person key of a chunk: each key's shard from its string's
    /// hash, then every shard numbers its keys side by side.
    fn person_ids(&mut self, people: &super::Coded) -> Vec<u32> {
        let hasher = PlFixedStateQuality::default();
        let shard_of: Vec<u8> = (0..people.values.len())
            .into_par_iter()
            .with_min_len(4096)
            .map(|k| (hasher.hash_one(people.value(k)) % SHARDS as u64) as u8)
            .collect();
        let mut keys: Vec<Vec<u32>> = vec![Vec::new(); SHARDS];
        for (k, &s) in shard_of.iter().enumerate() {
            keys[s as usize].push(k as u32);
        }
        let numbered: Vec<Vec<u32>> = self
            .shards
            .par_iter_mut()
            .zip(&keys)
            .enumerate()
            .map(|(s, (shard, keys))| {
                keys.iter()
                    .map(|&k| shard.people.id(people.value(k as usize)) * SHARDS as u32 + s as u32)
                    .collect()
            })
            .collect();
        let mut ids = vec![0u32; people.values.len()];
        for (keys, numbered) in keys.iter().zip(numbered) {
            for (&k, id) in keys.iter().zip(numbered) {
                ids[k as usize] = id;
            }
        }
        ids
    }

    /// The days that have rows, in order.
    pub fn days(&self) -> Vec<i32> {
        let mut days: Vec<i32> = self
            .shards
            .iter()
            .flat_map(|s| s.day_index.keys().chain(&s.spilled).copied())
            .collect();
        days.sort_unstable();
        days.dedup();
        days
    }

    /// A person's `distinct_id`.
    fn person(&self, id: u32) -> &str {
        let shard = &self.shards[id as usize % SHARDS];
        shard.people.values[id as usize / SHARDS].as_str()
    }

    /// One day's rows, sorted by org, person, event and path (so the same events
    /// give the same bytes); a key spilled more than once is one row.
    pub fn frame(&self, day: i32, ranks: &Ranks) -> Result<DataFrame> {
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
        let mut keyed: Vec<(RowKey, (RowKey, Agg))> = Vec::new();
        for (s, shard) in self.shards.iter().enumerate() {
            let rows = shard
                .day_rows(&self.spill, s, day)
                .with_context(|| format!("reading back the spilled rows of {}", iso_of_day(day)))?;
            keyed.extend(rows.into_iter().map(|(k, a)| (rank(&k), (k, a))));
        }
        if keyed.is_empty() {
            return Ok(empty_frame()?);
        }
        keyed.sort_unstable_by_key(|(r, _)| *r);
        // Equal ranks are equal keys: a key spilled at several times adds up.
        let mut rows: Vec<(RowKey, Agg)> = Vec::with_capacity(keyed.len());
        for (_, (k, a)) in keyed {
            match rows.last_mut() {
                Some((last, b)) if *last == k => {
                    b.count += a.count;
                    b.first = b.first.min(a.first);
                    b.last = b.last.max(a.last);
                }
                _ => rows.push((k, a)),
            }
        }
        let n = rows.len();
        Ok(df!(
            "org_id" => rows.iter().map(|(k, _)| s(&self.orgs, k.0)).collect::<Vec<_>>(),
            "distinct_id" => rows.iter().map(|(k, _)| self.person(k.1)).collect::<Vec<_>>(),
            "day" => vec![day; n],
            "event" => rows.iter().map(|(k, _)| s(&self.events, k.2)).collect::<Vec<_>>(),
            "path" => rows.iter().map(|(k, _)| path_of(&self.paths, k.3)).collect::<Vec<_>>(),
            "count" => rows.iter().map(|(_, a)| a.count).collect::<Vec<_>>(),
            "first_us" => rows.iter().map(|(_, a)| a.first).collect::<Vec<_>>(),
            "last_us" => rows.iter().map(|(_, a)| a.last).collect::<Vec<_>>(),
        )?
        .lazy()
        .with_column(col("day").cast(DataType::Date))
        .collect()?)
    }

    /// Each interned string's rank in byte order, to sort rows by numbers.
    pub fn ranks(&self) -> Ranks {
        fn ranks_of<'a>(strings: &[(u32, &'a str)], ids: usize) -> Vec<u32> {
            let mut order: Vec<(u32, &'a str)> = strings.to_vec();
            order.par_sort_unstable_by(|a, b| a.1.cmp(b.1));
            let mut rank = vec![0u32; ids];
            for (r, &(id, _)) in order.iter().enumerate() {
                rank[id as usize] = r as u32;
            }
            rank
        }
        fn numbered(i: &Interner) -> Vec<(u32, &str)> {
            i.values
                .iter()
                .enumerate()
                .map(|(id, v)| (id as u32, v.as_str()))
                .collect()
        }
        let people: Vec<(u32, &str)> = self
            .shards
            .iter()
            .enumerate()
            .flat_map(|(s, shard)| {
                shard
                    .people
                    .values
                    .iter()
                    .enumerate()
                    .map(move |(local, v)| ((local * SHARDS + s) as u32, v.as_str()))
            })
            .collect();
        let person_ids = people
            .iter()
            .map(|&(id, _)| id as usize + 1)
            .max()
            .unwrap_or(0);
        Ranks {
            orgs: ranks_of(&numbered(&self.orgs), self.orgs.values.len()),
            people: ranks_of(&people, person_ids),
            events: ranks_of(&numbered(&self.events), self.events.values.len()),
            paths: ranks_of(&numbered(&self.paths), self.paths.values.len()),
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
    fn a_key_spilled_at_several_times_and_still_held_is_one_row() {
        // Three chunks of the same (org, person, event) on one day: the first two
        // spilled (at a threshold of 0), the third held. The day's row adds them up:
        // 2 + 1 + 1 events, the first instant of all, the last of all.
        let dir = tempfile::tempdir().unwrap();
        let spec = RollupSpec::of(&crate::model::Model::default_model());
        let mut rollups = DayRollups::new(&spec, dir.path().to_path_buf());
        let day = 20_000;
        let at = |us: i64| i64::from(day) * MICROS_PER_DAY + us;
        let chunk = |instants: &[i64]| {
            let n = instants.len();
            let frame = df!(
                "timestamp" => instants.iter().map(|&us| at(us)).collect::<Vec<_>>(),
                "event" => vec!["insight saved"; n],
                "distinct_id" => vec!["p1"; n],
                "org_id" => vec!["o1"; n],
                "current_url" => vec![None::<&str>; n],
            )
            .unwrap();
            Chunk::from_frame(&frame).unwrap().unwrap()
        };
        rollups.spill_at = 0;
        rollups.add_chunk(&chunk(&[50, 20]));
        rollups.add_chunk(&chunk(&[90]));
        let spilled = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(spilled >= 1, "the maps were spilled");
        rollups.spill_at = usize::MAX;
        rollups.add_chunk(&chunk(&[10]));
        assert!(rollups.spill_error().is_none());
        assert_eq!(rollups.days(), vec![day]);
        let frame = rollups.frame(day, &rollups.ranks()).unwrap();
        assert_eq!(frame.height(), 1);
        let value = |c: &str| frame.column(c).unwrap().i64().unwrap().get(0);
        assert_eq!(value("count"), Some(4));
        assert_eq!(value("first_us"), Some(at(10)));
        assert_eq!(value("last_us"), Some(at(90)));
    }
}
