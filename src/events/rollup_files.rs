//! Rollup files read back (`run --rollups`, issue 27): each file is checked (its
//! columns, the metadata of what it was built for, its days), then its rows go into
//! the events pass as weighted rows (`Chunk::weight`): a rollup row is `count`
//! events of one (org, person, event, path) on one day, its `last_us` the row's
//! instant and its `first_us` the row's earliest. The pass adds a row's weight where
//! it adds one per event, and finds members, event classes and path classes once per
//! dictionary value as for raw events, so a run from rollups is the raw run, byte for
//! byte. Each file goes into the pass through its digest (`digests`): built from its
//! rows the first time, kept, and read instead of the rows by the next runs.
//!
//! Files stored as `rollup` writes them are read row group by row group by `pages`,
//! keeping the string dictionaries; any other valid file (a warehouse's) is read
//! whole through polars and normalised.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_arrow::array::{Array, PrimitiveArray};
use polars_arrow::datatypes::{ArrowDataType, Field as ArrowField};
use polars_buffer::Buffer;
use polars_parquet::parquet::statistics::Statistics;
use polars_parquet::read::{FileMetadata, PhysicalType};
use rayon::prelude::*;

use super::day_rollups::{needs, RollupMeta, METADATA_KEY};
use super::digests::{Added, Digest, DigestsUsed, PrintIndex, Source, Store, TooManyEvents};
use super::{coded_column, i64_column, pages, Accumulator, Chunk, ChunkSink, Coded, Layout};
use crate::error::InputError;
use crate::rollup_spec::RollupSpec;
use crate::time::{day_in_range, iso_of_day, MICROS_PER_DAY};

/// A rollups folder, checked: its files and the days each holds. Rows are read
/// when they are added to the pass (`add_to`), a row group at a time.
pub struct RollupFiles {
    pub files: Vec<RollupFile>,
    /// Every day held, sorted.
    pub days: Vec<i32>,
    /// The model's digests of the files (`digests`).
    store: Store,
}

/// One rollup file and its days.
pub struct RollupFile {
    path: PathBuf,
    /// The file as it is now, as its digest must record it.
    source: Source,
    days: Vec<i32>,
    /// Its footer when `pages` reads it; `None`: polars reads it whole.
    pages: Option<Arc<FileMetadata>>,
}

/// A rollup file's columns, decoded, before they are checked.
struct Columns {
    org: Coded,
    person: Coded,
    event: Coded,
    path: Coded,
    day: PrimitiveArray<i32>,
    count: PrimitiveArray<i64>,
    first: PrimitiveArray<i64>,
    last: PrimitiveArray<i64>,
}

/// Digests whose reads into the page cache are started ahead of their decoding:
/// digests read from disk (the nightly case, written on earlier nights) are then
/// read while the ones before are added, not on their turn.
const FILES_AHEAD: usize = 4;

/// What is read at a time: a row group of a file `pages` reads, or a whole file.
#[derive(Clone, Copy)]
struct Piece {
    file: usize,
    group: Option<usize>,
}

impl RollupFiles {
    /// Reads every rollup file under `dir`, checking each file's columns and that it
    /// was built for the page-view events and path prefixes `spec` needs (a file
    /// without the metadata, as a warehouse writes it, is taken as built for them).
    pub fn read(dir: &Path, spec: &RollupSpec) -> Result<RollupFiles, InputError> {
        if !dir.is_dir() {
            return Err(InputError::BadPath {
                path: dir.display().to_string(),
                problem: "rollups folder not found".into(),
            });
        }
        let needed = needs(spec);
        // Files are checked side by side (schema, metadata, days);
        // problems reported in file order.
        let files = parquet_files(dir)?
            .into_par_iter()
            .map(|path| check_file(dir, &path, &needed))
            .collect::<Result<Vec<_>, InputError>>()?;
        let mut days: Vec<i32> = files.iter().flat_map(|f| f.days.clone()).collect();
        days.par_sort_unstable();
        days.dedup();
        let store = Store::new(dir, spec);
        // The first files' digests are read into the page cache now, while the raw
        // events are read.
        for file in files.iter().take(FILES_AHEAD) {
            crate::sys::read_ahead(&store.path_of(&file.source.file));
        }
        Ok(RollupFiles { files, days, store })
    }

    /// The days they hold, as the raw events' days to leave out.
    pub fn held(&self) -> super::DaySet {
        super::DaySet::new(self.days.iter().copied())
    }

    /// Every rollup file into the pass, in file order: from its digest when one is
    /// kept for this model's layout and still describes the file, else from its rows
    /// (read and checked), its digest built from them and kept for the next run.
    /// Each step gets the next file's digest while the one before is added; built
    /// digests are written (and flushed) by a thread of their own, off the pass's
    /// path. Bad rows are bad input naming the file and column.
    pub(super) fn add_to(&self, acc: &mut Accumulator) -> Result<DigestsUsed, InputError> {
        let (keep, kept) = std::sync::mpsc::channel::<(Source, Digest)>();
        let mut used = std::thread::scope(|scope| {
            scope.spawn(move || {
                for (source, digest) in kept {
                    self.store.write(&source, &digest);
                }
            });
            let used = self.add_digests(acc, &keep);
            drop(keep);
            used
        })?;
        let names: Vec<&str> = self.files.iter().map(|f| f.source.file.as_str()).collect();
        self.store.prune(&names);
        used.not_kept = self.store.not_kept();
        Ok(used)
    }

    /// `add_to`'s steps; built digests are sent to `keep`.
    fn add_digests(
        &self,
        acc: &mut Accumulator,
        keep: &std::sync::mpsc::Sender<(Source, Digest)>,
    ) -> Result<DigestsUsed, InputError> {
        let layout = acc.layout;
        // A file whose days no other file holds: its digest's rows are whole rows.
        let mut holders = std::collections::HashMap::<i32, usize>::new();
        for file in &self.files {
            for &day in &file.days {
                *holders.entry(day).or_default() += 1;
            }
        }
        let alone: Vec<bool> = (self.files.iter())
            .map(|f| f.days.iter().all(|d| holders[d] == 1))
            .collect();
        let mut used = DigestsUsed {
            folder: self.store.dir().display().to_string(),
            ..DigestsUsed::default()
        };
        let mut ready = None;
        let mut prints: Option<PrintIndex> = None;
        for next in 0..=self.files.len() {
            if let Some(ahead) = self.files.get(next + FILES_AHEAD - 1) {
                crate::sys::read_ahead(&self.store.path_of(&ahead.source.file));
            }
            let current = ready.take();
            let (got, added) = rayon::join(
                || (next < self.files.len()).then(|| self.digest(next, layout, keep)),
                || -> Result<(), InputError> {
                    let Some(current) = current else {
                        // The members by fingerprint, while the first file is read.
                        let dir = self.store.dir().display().to_string();
                        let index = PrintIndex::new(acc.members, &self.store.key());
                        prints = Some(index.map_err(unreadable(&dir))?);
                        return Ok(());
                    };
                    let (digest, mut reused): (Digest, bool) = current?;
                    let file = &self.files[next - 1];
                    let name = file.path.display().to_string();
                    let prints = prints.as_ref().expect("made at the first step");
                    let added = acc.add_digest(&digest, prints, alone[next - 1]);
                    if added.map_err(unreadable(&name))? == Added::NotAsBuilt {
                        // A kept digest made by hand or damaged: built again.
                        let digest = self.build_digest(next - 1, layout, keep)?;
                        let added = acc.add_digest(&digest, prints, alone[next - 1]);
                        let added = added.map_err(unreadable(&name))?;
                        assert_eq!(added, Added::Yes, "a built digest is as built");
                        reused = false;
                    }
                    if acc.too_many_events() {
                        return Err(too_many_events(&name));
                    }
                    if reused {
                        used.reused += 1;
                    } else {
                        used.built += 1;
                    }
                    Ok(())
                },
            );
            added?;
            ready = got;
        }
        Ok(used)
    }

    /// File `i`'s digest, and whether it was kept from an earlier run: else built
    /// from the file's rows (its row groups read side by side) and sent to `keep`.
    fn digest(
        &self,
        i: usize,
        layout: &Layout,
        keep: &std::sync::mpsc::Sender<(Source, Digest)>,
    ) -> Result<(Digest, bool), InputError> {
        let file = &self.files[i];
        if let Some(digest) = self.store.read(&file.source, &file.days, layout) {
            return Ok((digest, true));
        }
        Ok((self.build_digest(i, layout, keep)?, false))
    }

    /// File `i`'s digest built from its rows, and sent to `keep`.
    fn build_digest(
        &self,
        i: usize,
        layout: &Layout,
        keep: &std::sync::mpsc::Sender<(Source, Digest)>,
    ) -> Result<Digest, InputError> {
        let file = &self.files[i];
        let name = file.path.display().to_string();
        let chunks = self.chunks_of(i)?;
        let digest = Digest::build(&chunks, layout, &self.store.key())
            .map_err(unreadable(&name))?
            .map_err(|TooManyEvents| too_many_events(&name))?;
        // (The writer is gone only if it panicked; the scope reports that.)
        let _ = keep.send((file.source.clone(), digest.clone()));
        Ok(digest)
    }

    /// Every row of file `i`, checked, as weighted rows (its row groups read side by
    /// side).
    fn chunks_of(&self, i: usize) -> Result<Vec<Chunk>, InputError> {
        let groups = self.files[i].pages.as_ref().map(|f| f.row_groups.len());
        let pieces: Vec<Piece> = match groups {
            Some(n) => (0..n)
                .map(|g| Piece {
                    file: i,
                    group: Some(g),
                })
                .collect(),
            None => vec![Piece {
                file: i,
                group: None,
            }],
        };
        let chunks = pieces
            .into_par_iter()
            .map(|piece| self.chunk(piece))
            .collect::<Result<Vec<_>, InputError>>()?;
        Ok(chunks.into_iter().flatten().collect())
    }

    /// A piece's rows, checked, as weighted rows; `None` when it has none.
    fn chunk(&self, piece: Piece) -> Result<Option<Chunk>, InputError> {
        let file = &self.files[piece.file];
        let name = file.path.display().to_string();
        let columns = match (&file.pages, piece.group) {
            (Some(footer), Some(g)) => {
                read_group(&file.path, footer, g).map_err(unreadable(&name))?
            }
            _ => match columns_of(&read_file(&file.path)?).map_err(unreadable(&name))? {
                Some(columns) => columns,
                None => return Ok(None),
            },
        };
        checked(columns, &name, &file.days)
    }
}

/// Every row of the rollup file at `path` (under `dir`), checked, as the pass's
/// chunks (for tests of what is built from them).
#[cfg(test)]
pub(super) fn chunks_of_file(dir: &Path, path: &Path, spec: &RollupSpec) -> Vec<Chunk> {
    let file = check_file(dir, path, &needs(spec)).unwrap();
    let files = RollupFiles {
        files: vec![file],
        days: Vec::new(),
        store: Store::new(dir, spec),
    };
    files.chunks_of(0).unwrap()
}

/// A (member, day) of the rollups summed past a slot's 32-bit counts: bad input
/// naming the file that took it there.
fn too_many_events(file: &str) -> InputError {
    InputError::BadValue {
        file: file.to_string(),
        column: "count".into(),
        problem: "more than 2^32-1 events of one member on one day (with the rows before it)"
            .into(),
    }
}

/// A file that failed to read or decode, as bad input naming it.
fn unreadable(file: &str) -> impl Fn(PolarsError) -> InputError + Copy + '_ {
    move |e| InputError::Unreadable {
        file: file.to_string(),
        reason: e.to_string(),
    }
}

/// An integer array decoded by `pages`, as the primitive array it is.
fn primitive<T: polars_arrow::types::NativeType>(
    array: Box<dyn Array>,
    name: &str,
) -> PolarsResult<PrimitiveArray<T>> {
    array
        .as_any()
        .downcast_ref::<PrimitiveArray<T>>()
        .cloned()
        .ok_or_else(|| polars_err!(ComputeError: "{name} did not decode as its integer type"))
}

/// Row group `g` of a file `pages` reads, each column decoded on its own thread.
fn read_group(path: &Path, footer: &FileMetadata, g: usize) -> PolarsResult<Columns> {
    let rg = &footer.row_groups[g];
    let (bytes, base) = pages::read_row_group(path, rg)?;
    let strings = |name: &str| pages::read_strings(&bytes, base, rg, name);
    let numbers = |name: &str, dtype: ArrowDataType| {
        let field = ArrowField::new(name.into(), dtype, true);
        pages::decode(&bytes, base, pages::column_of(rg, name)?, field)
    };
    let i64s = |name: &str| primitive::<i64>(numbers(name, ArrowDataType::Int64)?, name);
    let day = || primitive::<i32>(numbers("day", ArrowDataType::Int32)?, "day");
    let (((org, person), (event, path)), ((day, count), (first, last))) = rayon::join(
        || {
            rayon::join(
                || rayon::join(|| strings("org_id"), || strings("distinct_id")),
                || rayon::join(|| strings("event"), || strings("path")),
            )
        },
        || {
            rayon::join(
                || rayon::join(day, || i64s("count")),
                || rayon::join(|| i64s("first_us"), || i64s("last_us")),
            )
        },
    );
    Ok(Columns {
        org: org?,
        person: person?,
        event: event?,
        path: path?,
        day: day?,
        count: count?,
        first: first?,
        last: last?,
    })
}

/// The columns of a normalised frame (`read_file`); `None` when it has no rows.
fn columns_of(frame: &DataFrame) -> PolarsResult<Option<Columns>> {
    if frame.height() == 0 {
        return Ok(None);
    }
    let no_rows = |name: &str| polars_err!(ComputeError: "{name} has no rows");
    let strings = |name: &str| coded_column(frame, name)?.ok_or_else(|| no_rows(name));
    let i64s = |name: &str| i64_column(frame, name)?.ok_or_else(|| no_rows(name));
    let day = frame.column("day")?.i32()?.rechunk();
    let day = day.downcast_iter().next().cloned();
    Ok(Some(Columns {
        org: strings("org_id")?,
        person: strings("distinct_id")?,
        event: strings("event")?,
        path: strings("path")?,
        day: day.ok_or_else(|| no_rows("day"))?,
        count: i64s("count")?,
        first: i64s("first_us")?,
        last: i64s("last_us")?,
    }))
}

/// A piece's columns checked, as the pass's weighted rows: no nulls but in `path`;
/// 1 to 2^32-1 events a row (a pass's slot counts are 32-bit); both instants in the
/// supported range, in order and on the row's day; the day one of `days` (the file's
/// days as `check_file` found them: from statistics, they are trusted only this
/// far, or its raw events would count too). A row a warehouse (or a hand) wrote
/// wrong is bad input, not a wrong score.
fn checked(c: Columns, file: &str, days: &[i32]) -> Result<Option<Chunk>, InputError> {
    if c.day.is_empty() {
        return Ok(None);
    }
    let nulls = [
        ("org_id", c.org.null_count()),
        ("distinct_id", c.person.null_count()),
        ("day", c.day.null_count()),
        ("event", c.event.null_count()),
        ("count", c.count.null_count()),
        ("first_us", c.first.null_count()),
        ("last_us", c.last.null_count()),
    ];
    if let Some(&(column, count)) = nulls.iter().find(|(_, n)| *n > 0) {
        return Err(InputError::NullInRequired {
            file: file.to_string(),
            column: column.to_string(),
            count: count as u64,
        });
    }
    let bad = |column: &str, problem: String| InputError::BadValue {
        file: file.to_string(),
        column: column.to_string(),
        problem,
    };
    let day_of = |us: i64| us.div_euclid(MICROS_PER_DAY);
    // Both instants on the row's day: in range when the day is (a date's range).
    let mut last_day_checked = None;
    let rows = c
        .day
        .values()
        .iter()
        .zip(c.count.values().iter())
        .zip(c.first.values().iter().zip(c.last.values().iter()));
    for ((&day, &count), (&first, &last)) in rows {
        if !(1..=i64::from(u32::MAX)).contains(&count) {
            return Err(bad(
                "count",
                format!("{count} events in one row; expected 1 to {}", u32::MAX),
            ));
        }
        let day = i64::from(day);
        if last_day_checked != Some(day) {
            if !day_in_range(day) {
                return Err(bad(
                    "first_us",
                    "an instant outside the supported range".into(),
                ));
            }
            if days.binary_search(&(day as i32)).is_err() {
                return Err(bad(
                    "day",
                    format!(
                        "{} is not among the days the file's statistics give",
                        iso_of_day(day as i32)
                    ),
                ));
            }
            last_day_checked = Some(day);
        }
        if first > last || day_of(first) != day || day_of(last) != day {
            return Err(bad(
                "first_us",
                format!(
                    "first_us {first} and last_us {last} must be in order and on the row's day {}",
                    iso_of_day(day as i32)
                ),
            ));
        }
    }
    let weight: Buffer<u32> = c.count.values().iter().map(|&n| n as u32).collect();
    Ok(Some(Chunk {
        timestamp: c.last,
        event: c.event,
        person: c.person,
        org: c.org,
        url: Some(c.path),
        weight: Some(weight),
        first: Some(c.first.values().clone()),
    }))
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

/// A rollup file checked: its metadata against the model's needs (page events, path
/// prefixes), its columns, the days it holds (from the `day` column's statistics when
/// each row group holds one day, else from the column), and whether `pages` can read
/// it.
fn check_file(
    dir: &Path,
    path: &Path,
    needed: &(Vec<String>, Vec<String>),
) -> Result<RollupFile, InputError> {
    let file_name = path.display().to_string();
    let under = path.strip_prefix(dir).unwrap_or(path);
    let source = Source::of(path, under.to_string_lossy().into_owned()).map_err(|e| {
        InputError::BadPath {
            path: file_name.clone(),
            problem: format!("cannot read: {e}"),
        }
    })?;
    let unreadable = unreadable(&file_name);
    let open = || {
        std::fs::File::open(path).map_err(|e| InputError::BadPath {
            path: file_name.clone(),
            problem: format!("cannot open: {e}"),
        })
    };
    let mut reader = ParquetReader::new(open()?);
    let footer = reader.get_metadata().map_err(unreadable)?.clone();
    let meta = footer
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
    let schema = empty.schema().clone();
    normalise(empty, &file_name)?;
    let days = match days_of_statistics(&footer) {
        Some(days) => days,
        None => {
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
            days
        }
    };
    let pages = stored_as_written(&footer, &schema).then_some(footer);
    Ok(RollupFile {
        path: path.to_path_buf(),
        source,
        days,
        pages,
    })
}

/// The days of a file whose every row group's `day` statistics name one day and no
/// null (as `rollup` writes them: a file per day); `None` when some do not.
fn days_of_statistics(footer: &FileMetadata) -> Option<Vec<i32>> {
    let mut days = Vec::new();
    for rg in footer.row_groups.iter().filter(|rg| rg.num_rows() > 0) {
        let column = pages::column_of(rg, "day").ok()?;
        match column.statistics(&footer.footer_buf)?.ok()? {
            Statistics::Int32(s) if s.null_count == Some(0) && s.min_value == s.max_value => {
                days.push(s.min_value?);
            }
            _ => return None,
        }
    }
    days.sort_unstable();
    days.dedup();
    Some(days)
}

/// Whether a file's columns are stored as `rollup` writes them, so that `pages` can
/// read them (strings as Parquet strings, `day` a DATE in INT32, the integers INT64);
/// any other file (a warehouse's unsigned counts...) is read through polars.
fn stored_as_written(footer: &FileMetadata, schema: &Schema) -> bool {
    let Some(rg) = footer.row_groups.first() else {
        return false;
    };
    let physical = |name: &str| pages::column_of(rg, name).ok().map(|c| c.physical_type());
    let typed = |name: &str, dtype: &DataType, stored: PhysicalType| {
        schema.get(name) == Some(dtype) && physical(name) == Some(stored)
    };
    ["org_id", "distinct_id", "event", "path"]
        .iter()
        .all(|c| typed(c, &DataType::String, PhysicalType::ByteArray))
        && typed("day", &DataType::Date, PhysicalType::Int32)
        && ["count", "first_us", "last_us"]
            .iter()
            .all(|c| typed(c, &DataType::Int64, PhysicalType::Int64))
}

/// A rollup file's rows, normalised (its metadata and columns were checked by
/// `check_file`).
fn read_file(path: &Path) -> Result<DataFrame, InputError> {
    let file_name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| InputError::BadPath {
        path: file_name.clone(),
        problem: format!("cannot open: {e}"),
    })?;
    let frame = ParquetReader::new(file)
        .finish()
        .map_err(unreadable(&file_name))?;
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

/// A rollup file's columns checked and cast to the types the rest reads (their
/// nulls are `checked`'s, for both readers).
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
    frame
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
        .map_err(unreadable(file))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A rollup file of two rows on `day`, written by polars, `count` cast to `count_type`.
    fn written(dir: &Path, name: &str, days: [i32; 2], count_type: DataType) -> PathBuf {
        let at = |d: i32, us: i64| i64::from(d) * MICROS_PER_DAY + us;
        let mut frame = df!(
            "org_id" => ["o1", "o1"],
            "distinct_id" => ["p1", "p2"],
            "day" => days,
            "event" => ["$pageview", "insight saved"],
            "path" => [Some("/docs/a"), None],
            "count" => [3i64, 1],
            "first_us" => [at(days[0], 5), at(days[1], 9)],
            "last_us" => [at(days[0], 7), at(days[1], 9)],
        )
        .unwrap()
        .lazy()
        .with_columns([
            col("day").cast(DataType::Date),
            col("count").cast(count_type),
        ])
        .collect()
        .unwrap();
        let path = dir.join(name);
        crate::output::write_parquet_with(&mut frame, &path, None).unwrap();
        path
    }

    fn no_needs() -> (Vec<String>, Vec<String>) {
        (Vec::new(), Vec::new())
    }

    #[test]
    fn files_as_rollup_writes_them_are_read_by_pages_others_by_polars_with_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let ours = check_file(
            dir.path(),
            &written(dir.path(), "a.parquet", [20000; 2], DataType::Int64),
            &no_needs(),
        )
        .unwrap();
        let theirs = check_file(
            dir.path(),
            &written(dir.path(), "b.parquet", [20000; 2], DataType::UInt32),
            &no_needs(),
        )
        .unwrap();
        assert!(ours.pages.is_some() && theirs.pages.is_none());
        // One day per row group: the days come from the statistics.
        assert_eq!(ours.days, vec![20000]);
        assert_eq!(
            days_of_statistics(ours.pages.as_ref().unwrap()),
            Some(vec![20000])
        );
        let files = RollupFiles {
            files: vec![ours, theirs],
            days: vec![20000],
            store: Store::new(
                dir.path(),
                &crate::rollup_spec::RollupSpec::of(&crate::model::Model::default_model()),
            ),
        };
        let by_pages = files
            .chunk(Piece {
                file: 0,
                group: Some(0),
            })
            .unwrap()
            .unwrap();
        let by_polars = files
            .chunk(Piece {
                file: 1,
                group: None,
            })
            .unwrap()
            .unwrap();
        for c in [&by_pages, &by_polars] {
            let strings = |k: &Coded| {
                (0..2)
                    .map(|i| k.is_valid(i).then(|| k.value(k.key(i)).to_string()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                strings(&c.org),
                [Some("o1".to_string()), Some("o1".to_string())]
            );
            assert_eq!(
                strings(&c.person),
                [Some("p1".to_string()), Some("p2".to_string())]
            );
            assert_eq!(
                strings(c.url.as_ref().unwrap()),
                [Some("/docs/a".to_string()), None]
            );
            // The row's instant is its last; its weight the count; its earliest the first.
            let day = 20000 * MICROS_PER_DAY;
            assert_eq!(c.timestamp.values().as_slice(), [day + 7, day + 9]);
            assert_eq!(c.weight.as_deref(), Some(&[3u32, 1][..]));
            assert_eq!(c.first.as_deref(), Some(&[day + 5, day + 9][..]));
        }
    }

    #[test]
    fn a_file_of_several_days_per_row_group_has_its_days_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = check_file(
            dir.path(),
            &written(dir.path(), "a.parquet", [20000, 20002], DataType::Int64),
            &no_needs(),
        )
        .unwrap();
        assert_eq!(days_of_statistics(file.pages.as_ref().unwrap()), None);
        assert_eq!(file.days, vec![20000, 20002], "day 20001 is not held");
    }

    #[test]
    fn rows_are_checked_at_the_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path(), "a.parquet", [20000; 2], DataType::Int64);
        let file = check_file(dir.path(), &path, &no_needs()).unwrap();
        let footer = file.pages.clone().unwrap();
        let day = 20000 * MICROS_PER_DAY;
        // (count, first, last) of the first row, and whether it is accepted.
        let cases = [
            ((1, day, day), true),
            ((i64::from(u32::MAX), day, day + MICROS_PER_DAY - 1), true),
            ((0, day, day), false),
            ((i64::from(u32::MAX) + 1, day, day), false),
            ((-1, day, day), false),
            ((1, day - 1, day), false),
            ((1, day, day + MICROS_PER_DAY), false),
            ((1, day + 2, day + 1), false),
        ];
        for ((count, first, last), accepted) in cases {
            let mut c = read_group(&path, &footer, 0).unwrap();
            let set = |a: &PrimitiveArray<i64>, v: i64| {
                let mut values = a.values().as_slice().to_vec();
                values[0] = v;
                PrimitiveArray::from_vec(values)
            };
            c.count = set(&c.count, count);
            c.first = set(&c.first, first);
            c.last = set(&c.last, last);
            let column = match checked(c, "f.parquet", &[20000]) {
                Ok(_) => None,
                Err(InputError::BadValue { column, .. }) => Some(column),
                Err(e) => panic!("{e}"),
            };
            assert_eq!(column.is_none(), accepted, "{count} {first} {last}");
            // A row whose day the file's statistics did not give: its raw events
            // would count too.
            if accepted {
                let c = read_group(&path, &footer, 0).unwrap();
                match checked(c, "f.parquet", &[20001]) {
                    Err(InputError::BadValue { column, .. }) => assert_eq!(column, "day"),
                    other => panic!("{:?}", other.map(|c| c.is_some())),
                }
            }
            if !accepted {
                let expected = if count == 1 { "first_us" } else { "count" };
                assert_eq!(column.as_deref(), Some(expected));
            }
        }
    }
}
