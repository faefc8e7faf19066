//! Reading an events file's pages directly, with polars' own Parquet decoders, and
//! keeping each string column's Parquet dictionary: a row is its dictionary index,
//! and the string behind an index is looked at once per row group, not once per row.
//! (polars' scan expands every index into its string, and most event rows repeat an
//! org, a person, an event name and a URL already seen in their row group.)
//!
//! This path takes the files whose columns need no normalising beyond a time unit:
//! timestamps stored as INT64 datetimes, string columns stored as Parquet strings
//! (or hive folder values, or an absent `current_url`). Any other file is read
//! through its normalised polars scan instead (`input::EventsFile::frame`); both
//! give the same chunks (`Chunk`), and the same rollup.

use std::fs::File;
use std::io::Cursor;

use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::datatypes::{
    ArrowDataType, Field as ArrowField, IntegerType, DTYPE_CATEGORICAL_NEW,
};
use polars_buffer::Buffer;
use polars_parquet::parquet::compression::{Compression, DecompressionContext};
use polars_parquet::parquet::encoding::hybrid_rle::{HybridRleChunk, HybridRleDecoder};
use polars_parquet::parquet::page::{
    split_buffer, CompressedDataPage, CompressedPage, DataPage, DataPageHeader, FormatEncoding,
    Page,
};
use polars_parquet::parquet::read::decompress;
use polars_parquet::read::{
    column_iter_to_arrays, read_metadata, BasicDecompressor, ColumnChunkMetadata, FileMetadata,
    PageReader, PhysicalType, RowGroupMetadata,
};
use rayon::prelude::*;

use super::export::{ExportRows, PropertiesRead, Uuids};
use super::{Chunk, Coded};
use crate::input::{EventsFile, EventsShape};
use crate::time::micros;

/// Where one string column of the file comes from.
enum StrSource {
    /// A Parquet string column of the file.
    Stored,
    /// The file has no such column: a hive folder gives its one value.
    Constant(String),
    /// An optional column the file does not have: every row is null.
    Absent,
}

/// The string columns a file's row groups give.
enum Strings {
    /// A flat file: `event`, `distinct_id`, `org_id`, `current_url` (`FLAT_COLUMNS`).
    Flat([StrSource; 4]),
    /// An export-shaped file: `event`, `distinct_id`, `uuid`, `properties`
    /// (`EXPORT_COLUMNS`), each stored as Parquet strings.
    Export,
}

/// An events file whose pages the pass reads itself.
pub(super) struct PagesFile {
    path: std::path::PathBuf,
    metadata: FileMetadata,
    /// The stored unit of `timestamp` (an INT64 column).
    unit: TimeUnit,
    strings: Strings,
}

/// One decoded row group.
pub(super) enum Decoded {
    /// A flat file's rows, as the pass reads them.
    Flat(Chunk),
    /// An export-shaped file's rows, before the dedupe (`ExportReader::chunk_of`).
    Export(ExportRows),
}

/// A row group's columns after its timestamps, event and person, by shape.
enum Rest {
    /// An export-shaped file's uuids and properties, read.
    Export(PolarsResult<Uuids>, PolarsResult<PropertiesRead>),
    /// A flat file's organizations and URLs.
    Flat(PolarsResult<Option<Coded>>, PolarsResult<Option<Coded>>),
}

/// The string columns of a flat events file, in `Strings::Flat` order.
const FLAT_COLUMNS: [&str; 4] = ["event", "distinct_id", "org_id", "current_url"];

/// The string columns of an export-shaped events file, in `ExportRows` order.
const EXPORT_COLUMNS: [&str; 4] = ["event", "distinct_id", "uuid", "properties"];

/// Where an export-shaped file's string columns come from: all stored.
static EXPORT_SOURCES: [StrSource; 4] = [
    StrSource::Stored,
    StrSource::Stored,
    StrSource::Stored,
    StrSource::Stored,
];

/// The file, if its pages can be read directly; `None` when it needs polars'
/// normalising scan (integer ids, dates as timestamps, INT96, hive timestamps...).
pub(super) fn open(f: &EventsFile) -> PolarsResult<Option<PagesFile>> {
    // Renamed columns go through the normalising scan.
    if !f.renames.is_empty() {
        return Ok(None);
    }
    let mut file = File::open(&f.path)?;
    let metadata = read_metadata(&mut file)?;
    let physical = |name: &str| {
        let rg = metadata.row_groups.first()?;
        column_of(rg, name)
            .ok()
            .map(ColumnChunkMetadata::physical_type)
    };
    // With no row group there is nothing to read, whatever the types.
    let stored_as = |name: &str, want: PhysicalType| {
        metadata.row_groups.is_empty() || physical(name) == Some(want)
    };
    let unit = match f.schema.get("timestamp") {
        Some(DataType::Datetime(unit, _)) if stored_as("timestamp", PhysicalType::Int64) => *unit,
        _ => return Ok(None),
    };
    let stored_string = |name: &str| {
        matches!(
            f.schema.get(name),
            Some(DataType::String | DataType::Categorical(..) | DataType::Enum(..))
        ) && stored_as(name, PhysicalType::ByteArray)
    };
    let strings = match f.shape {
        EventsShape::Posthog => {
            if !EXPORT_COLUMNS.iter().all(|c| stored_string(c)) {
                return Ok(None);
            }
            Strings::Export
        }
        EventsShape::Flat => {
            let mut strings = [
                StrSource::Absent,
                StrSource::Absent,
                StrSource::Absent,
                StrSource::Absent,
            ];
            for (source, name) in strings.iter_mut().zip(FLAT_COLUMNS) {
                *source = if stored_string(name) {
                    StrSource::Stored
                } else if f.schema.contains(name) {
                    return Ok(None);
                } else {
                    match f.hive.iter().find(|(k, _)| k == name) {
                        Some((_, v)) => StrSource::Constant(v.clone()),
                        // Input checks let only `current_url` be missing.
                        None => StrSource::Absent,
                    }
                };
            }
            Strings::Flat(strings)
        }
    };
    Ok(Some(PagesFile {
        path: f.path.clone(),
        metadata,
        unit,
        strings,
    }))
}

impl PagesFile {
    pub(super) fn row_groups(&self) -> usize {
        self.metadata.row_groups.len()
    }

    /// The rows of row group `i`.
    pub(super) fn rows(&self, i: usize) -> u64 {
        self.metadata.row_groups[i].num_rows() as u64
    }

    /// The first and last UTC day of row group `i`'s timestamps, from its
    /// statistics; `None` when it has none, or when a timestamp may be null (a null
    /// must reach the pass: it is bad input).
    pub(super) fn days(&self, i: usize) -> Option<(i32, i32)> {
        let rg = &self.metadata.row_groups[i];
        let column = column_of(rg, "timestamp").ok()?;
        match column.statistics(&self.metadata.footer_buf)?.ok()? {
            polars_parquet::parquet::statistics::Statistics::Int64(s) => {
                if s.null_count.is_none_or(|n| n > 0) {
                    return None;
                }
                let day = |raw: i64| {
                    micros(raw, self.unit).div_euclid(crate::time::MICROS_PER_DAY) as i32
                };
                Some((day(s.min_value?), day(s.max_value?)))
            }
            _ => None,
        }
    }

    /// Row group `i`'s event columns: its bytes read at once (on a handle of its
    /// own, so that row groups decode in parallel), then each column decoded on its
    /// own thread. An export-shaped file's `uuid` and `properties` are read as they
    /// decode (`export::Uuids`, `export::PropertiesRead`; `group_type` names the
    /// organization's group).
    pub(super) fn decode(&self, i: usize, group_type: &str) -> PolarsResult<Decoded> {
        let rg = &self.metadata.row_groups[i];
        let (bytes, base) = read_row_group(&self.path, rg)?;
        let rows = rg.num_rows();
        let (sources, names) = match &self.strings {
            Strings::Flat(sources) => (sources, FLAT_COLUMNS),
            Strings::Export => (&EXPORT_SOURCES, EXPORT_COLUMNS),
        };
        let read_strings = |k: usize| -> PolarsResult<Option<Coded>> {
            Ok(match &sources[k] {
                StrSource::Stored => Some(read_strings(&bytes, base, rg, names[k])?),
                StrSource::Constant(v) => Some(Coded::constant(v, rows)),
                StrSource::Absent => None,
            })
        };
        let required = |c: PolarsResult<Option<Coded>>, k: usize| {
            c?.ok_or_else(|| polars_err!(ColumnNotFound: "{}", names[k]))
        };
        let ((timestamp, first), (second, rest)) = rayon::join(
            || {
                rayon::join(
                    || self.read_timestamps(&bytes, base, rg),
                    || read_strings(0),
                )
            },
            || {
                rayon::join(
                    || read_strings(1),
                    || match self.strings {
                        Strings::Export => {
                            let (u, p) = rayon::join(
                                || Uuids::read(&bytes, base, rg),
                                || PropertiesRead::read(&bytes, base, rg, group_type),
                            );
                            Rest::Export(u, p)
                        }
                        Strings::Flat(_) => {
                            let (c, d) = rayon::join(|| read_strings(2), || read_strings(3));
                            Rest::Flat(c, d)
                        }
                    },
                )
            },
        );
        let (timestamp, event, person) = (timestamp?, required(first, 0)?, required(second, 1)?);
        Ok(match rest {
            Rest::Flat(org, url) => Decoded::Flat(Chunk {
                timestamp,
                event,
                person,
                org: required(org, 2)?,
                url: url?,
                weight: None,
                first: None,
            }),
            Rest::Export(uuid, properties) => Decoded::Export(ExportRows {
                timestamp,
                event,
                person,
                uuid: uuid?,
                properties: properties?,
            }),
        })
    }

    /// The timestamps in microseconds since the epoch, by `time::micros` (the stored
    /// value is UTC whatever the zone label).
    fn read_timestamps(
        &self,
        bytes: &Buffer<u8>,
        base: u64,
        rg: &RowGroupMetadata,
    ) -> PolarsResult<PrimitiveArray<i64>> {
        let column = column_of(rg, "timestamp")?;
        let field = ArrowField::new("timestamp".into(), ArrowDataType::Int64, true);
        let array = decode(bytes, base, column, field)?;
        let raw = array
            .as_any()
            .downcast_ref::<PrimitiveArray<i64>>()
            .ok_or_else(|| polars_err!(ComputeError: "timestamp did not decode as INT64"))?;
        if self.unit == TimeUnit::Microseconds {
            return Ok(raw.clone());
        }
        let unit = self.unit;
        let us: Vec<i64> = raw.values().iter().map(|&t| micros(t, unit)).collect();
        Ok(PrimitiveArray::new(
            ArrowDataType::Int64,
            us.into(),
            raw.validity().cloned(),
        ))
    }
}

/// A row group's bytes, mapped from the file (`sys::map_file`: read in place, not
/// copied into fresh memory) on a handle of its own, so that row groups decode in
/// parallel; and where they start in the file. The map goes when the last slice of it
/// does (once the row group's columns are decoded).
pub(super) fn read_row_group(
    path: &std::path::Path,
    rg: &RowGroupMetadata,
) -> PolarsResult<(Buffer<u8>, u64)> {
    let range = rg.full_byte_range();
    let len = (range.end - range.start) as usize;
    let file = File::open(path)?;
    if file.metadata()?.len() < range.end {
        polars_bail!(ComputeError: "a row group ends past the end of its file");
    }
    if len == 0 {
        return Ok((Buffer::default(), range.start));
    }
    let map = crate::sys::map_file(&file, range.start, len)?;
    Ok((Buffer::from_owner(map), range.start))
}

pub(super) fn column_of<'a>(
    rg: &'a RowGroupMetadata,
    name: &str,
) -> PolarsResult<&'a ColumnChunkMetadata> {
    rg.columns_under_root_iter(name)
        .and_then(|mut c| c.next())
        .ok_or_else(|| polars_err!(ColumnNotFound: "{name}"))
}

/// The pages of one column chunk of a row group whose bytes start at `base` in the
/// file, still compressed (slices of `bytes`, not copies).
fn page_reader(bytes: &Buffer<u8>, base: u64, column: &ColumnChunkMetadata) -> PageReader {
    let range = column.byte_range();
    let start = (range.start - base) as usize;
    let end = (range.end - base) as usize;
    PageReader::new(
        Cursor::new(bytes.clone().sliced(start..end)),
        column,
        vec![],
        usize::MAX,
    )
}

/// One column chunk of a row group whose bytes start at `base` in the file, decoded
/// into one array of `field`'s type.
pub(super) fn decode(
    bytes: &Buffer<u8>,
    base: u64,
    column: &ColumnChunkMetadata,
    field: ArrowField,
) -> PolarsResult<Box<dyn Array>> {
    let pages = BasicDecompressor::new(page_reader(bytes, base, column), vec![]);
    let (mut arrays, _) = column_iter_to_arrays(
        vec![pages],
        vec![&column.descriptor().descriptor.primitive_type],
        field,
        None,
    )?;
    match arrays.len() {
        1 => Ok(arrays.pop().unwrap_or_else(|| unreachable!())),
        n => polars_bail!(ComputeError: "a column chunk decoded into {n} arrays"),
    }
}

/// A string column of a row group, with its dictionary indices when every page of it
/// is dictionary-encoded (the usual case), else one index per row.
pub(super) fn read_strings(
    bytes: &Buffer<u8>,
    base: u64,
    rg: &RowGroupMetadata,
    name: &str,
) -> PolarsResult<Coded> {
    let column = column_of(rg, name)?;
    if rg.num_rows() > 0 && column.dictionary_page_offset().is_some() {
        // polars decodes a dictionary-encoded column into its indices only for a
        // field marked as a polars categorical; a page that is not dictionary-encoded
        // (a writer's fallback when the dictionary grew too big) fails, and the
        // column is then read as plain strings.
        let metadata = [(DTYPE_CATEGORICAL_NEW.into(), PlSmallStr::EMPTY)]
            .into_iter()
            .collect();
        let field = ArrowField::new(
            name.into(),
            ArrowDataType::Dictionary(
                IntegerType::UInt32,
                Box::new(ArrowDataType::Utf8View),
                false,
            ),
            true,
        )
        .with_metadata(metadata);
        if let Ok(array) = decode(bytes, base, column, field) {
            if let Some(dict) = array.as_any().downcast_ref::<DictionaryArray<u32>>() {
                return Coded::from_dictionary(dict);
            }
        }
    }
    let field = ArrowField::new(name.into(), ArrowDataType::Utf8View, true);
    let array = decode(bytes, base, column, field)?;
    let strings = array
        .as_any()
        .downcast_ref::<Utf8ViewArray>()
        .ok_or_else(|| polars_err!(ComputeError: "{name} did not decode as strings"))?;
    Ok(Coded::from_strings(strings.clone()))
}

/// A string column chunk whose data pages are all PLAIN-encoded (no dictionary), read
/// page by page straight from the decompressed bytes on all threads: no array of
/// its strings is built. An export's `properties` and `uuid` are unique per row,
/// so writers store them plainly, and building their strings into arrays only to
/// scan them once cost a copy of every byte and fresh memory for each row group.
pub(super) struct PlainPages {
    /// The data pages, compressed, in order, with each one's rows.
    pages: Vec<(CompressedDataPage, usize)>,
    /// Whether a row may be null (the column's pages carry definition levels).
    nullable: bool,
    name: String,
}

/// Groups of consecutive pages per thread read side by side by `PlainPages::read`:
/// a few, so a slow thread does not hold the others at the end.
const PAGE_GROUPS_PER_THREAD: usize = 4;

thread_local! {
    /// Each thread's buffer that `PlainPages::read` decompresses pages into, kept from
    /// one run of pages to the next (as large as the largest page the thread has
    /// read): a page then lands in memory already mapped, not in a fresh allocation
    /// whose every 4 KB is a page fault.
    static PAGE_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl PlainPages {
    /// The pages of string column `name` of a row group, or `None` when a page is
    /// not PLAIN-encoded (a dictionary, or another encoding) or the column is nested:
    /// the caller then decodes it whole (`read_strings`).
    pub(super) fn of(
        bytes: &Buffer<u8>,
        base: u64,
        rg: &RowGroupMetadata,
        name: &str,
    ) -> PolarsResult<Option<PlainPages>> {
        let column = column_of(rg, name)?;
        let descriptor = &column.descriptor().descriptor;
        if descriptor.max_rep_level > 0 || descriptor.max_def_level > 1 {
            return Ok(None);
        }
        let mut pages = Vec::new();
        let mut rows = 0;
        for page in page_reader(bytes, base, column) {
            let CompressedPage::Data(page) = page? else {
                return Ok(None);
            };
            let plain = match page.header() {
                DataPageHeader::V1(h) => {
                    h.encoding == FormatEncoding::PLAIN
                        && h.definition_level_encoding == FormatEncoding::RLE
                }
                DataPageHeader::V2(h) => h.encoding == FormatEncoding::PLAIN,
            };
            if !plain {
                return Ok(None);
            }
            let n = page.num_values();
            rows += n;
            pages.push((page, n));
        }
        if rows != rg.num_rows() {
            polars_bail!(ComputeError: "{name}: its pages hold {rows} values for {} rows", rg.num_rows());
        }
        Ok(Some(PlainPages {
            pages,
            nullable: descriptor.max_def_level == 1,
            name: name.to_string(),
        }))
    }

    /// The data pages.
    #[cfg(test)]
    pub(super) fn pages(&self) -> usize {
        self.pages.len()
    }

    /// Every row's value (`None` for a null), in row order, through `read`: the pages
    /// are cut into runs of consecutive pages, each run read on one thread into a
    /// state of its own (`start(rows)`, `rows` the run's row count); the states
    /// come back in row order.
    pub(super) fn read<S: Send>(
        self,
        start: impl Fn(usize) -> S + Sync,
        read: impl Fn(&mut S, Option<&[u8]>) -> PolarsResult<()> + Sync,
    ) -> PolarsResult<Vec<S>> {
        let groups = (PAGE_GROUPS_PER_THREAD * rayon::current_num_threads()).max(1);
        let per_group = self.pages.len().div_ceil(groups).max(1);
        let mut runs: Vec<Vec<(CompressedDataPage, usize)>> = Vec::new();
        let mut pages = self.pages.into_iter().peekable();
        while pages.peek().is_some() {
            runs.push(pages.by_ref().take(per_group).collect());
        }
        let (nullable, name) = (self.nullable, self.name.as_str());
        runs.into_par_iter()
            .map(|run| {
                let mut state = start(run.iter().map(|(_, n)| n).sum());
                let mut buffer = PAGE_BUFFER.take();
                // Emptied, so the run's first page starts from zeros as it did with a
                // fresh buffer: snappy and LZ4 may write less than a malformed page
                // declares, and what is left must not be another run's bytes.
                buffer.clear();
                let mut context = DecompressionContext::Unset;
                for (page, rows) in run {
                    let compressed = page.compression() != Compression::Uncompressed;
                    let Page::Data(mut page) =
                        decompress(CompressedPage::Data(page), &mut buffer, &mut context)?
                    else {
                        unreachable!("a data page decompresses into a data page")
                    };
                    read_plain_page(&page, rows, nullable, name, |v| read(&mut state, v))?;
                    if compressed {
                        // The next page decompresses into the same memory.
                        buffer = std::mem::take(page.buffer_mut());
                    }
                }
                PAGE_BUFFER.set(buffer);
                Ok(state)
            })
            .collect()
    }
}

/// The `rows` values of one decompressed PLAIN page of a flat string column, in
/// order, through `each` (`None` where the definition level says null).
fn read_plain_page(
    page: &DataPage,
    rows: usize,
    nullable: bool,
    name: &str,
    mut each: impl FnMut(Option<&[u8]>) -> PolarsResult<()>,
) -> PolarsResult<()> {
    let bad = || polars_err!(ComputeError: "{name}: a malformed PLAIN page");
    let split = split_buffer(page)?;
    let mut values = split.values;
    let mut value = || -> PolarsResult<&[u8]> {
        let len = values.get(..4).ok_or_else(bad)?;
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let v = values.get(4..4 + len).ok_or_else(bad)?;
        values = &values[4 + len..];
        Ok(v)
    };
    if !nullable {
        for _ in 0..rows {
            each(Some(value()?))?;
        }
        return Ok(());
    }
    let mut seen = 0;
    let mut bits = Vec::new();
    for chunk in HybridRleDecoder::new(split.def, 1, rows).into_chunk_iter() {
        match chunk? {
            HybridRleChunk::Rle(level, n) => {
                for _ in 0..n {
                    each(if level == 1 { Some(value()?) } else { None })?;
                }
                seen += n;
            }
            HybridRleChunk::Bitpacked(levels) => {
                bits.clear();
                levels.collect_into(&mut bits);
                for &level in &bits {
                    each(if level == 1 { Some(value()?) } else { None })?;
                }
                seen += bits.len();
            }
        }
    }
    if seen != rows {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An events file of `frame` in a temporary folder, as `input` describes it.
    fn events_file(dir: &std::path::Path, frame: &mut DataFrame) -> EventsFile {
        let path = dir.join("events.parquet");
        ParquetWriter::new(File::create(&path).unwrap())
            .finish(frame)
            .unwrap();
        events_file_at(path)
    }

    /// The Parquet file at `path`, as `input` describes an events file.
    fn events_file_at(path: std::path::PathBuf) -> EventsFile {
        let scan = LazyFrame::scan_parquet(
            PlRefPath::new(path.to_string_lossy().to_string()),
            Default::default(),
        )
        .unwrap();
        EventsFile {
            schema: scan.clone().collect_schema().unwrap(),
            path,
            shape: crate::input::EventsShape::Flat,
            renames: Default::default(),
            hive: vec![],
            frame: scan,
            bytes: 0,
        }
    }

    fn strings(c: &Coded, rows: usize) -> Vec<Option<&str>> {
        (0..rows)
            .map(|i| c.is_valid(i).then(|| c.value(c.key(i))))
            .collect()
    }

    #[test]
    fn dictionary_and_plain_pages_give_the_rows_strings() {
        // 300 rows: three event names (a dictionary), 300 distinct URLs with every
        // tenth null (stored plainly: too many distinct values for a dictionary).
        let rows = 300;
        let events: Vec<&str> = (0..rows).map(|i| ["a", "b", "c"][i % 3]).collect();
        let urls: Vec<Option<String>> = (0..rows)
            .map(|i| (i % 10 != 0).then(|| format!("/page/{i}")))
            .collect();
        let ms: Vec<i64> = (0..rows as i64).map(|i| i * 1500 - 2).collect();
        let mut frame = df!(
            "timestamp" => ms,
            "event" => &events,
            "distinct_id" => vec!["p"; rows],
            "org_id" => vec!["o"; rows],
            "current_url" => &urls,
        )
        .unwrap()
        .lazy()
        .with_column(col("timestamp").cast(DataType::Datetime(TimeUnit::Milliseconds, None)))
        .collect()
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = events_file(dir.path(), &mut frame);
        let pages = open(&file).unwrap().expect("a file the pages path reads");
        assert_eq!(pages.row_groups(), 1);
        let Decoded::Flat(chunk) = pages.decode(0, "organization").unwrap() else {
            panic!("a flat file decodes into a chunk")
        };
        assert_eq!(chunk.len(), rows);
        // Dictionary-coded: three strings, a key per row.
        assert_eq!(chunk.event.values.len(), 3);
        assert_eq!(
            strings(&chunk.event, rows),
            events.iter().map(|e| Some(*e)).collect::<Vec<_>>()
        );
        // Plain: one key per row, nulls where the URL is null.
        let url = chunk.url.as_ref().unwrap();
        assert_eq!(url.values.len(), rows);
        assert_eq!(url.null_count(), 30);
        assert_eq!(
            strings(url, rows),
            urls.iter().map(|u| u.as_deref()).collect::<Vec<_>>()
        );
        // Milliseconds become microseconds; the first instant is before the epoch.
        assert_eq!(chunk.timestamp.value(0), -2000);
        assert_eq!(chunk.timestamp.value(2), 2998 * 1000);
    }

    #[test]
    fn a_dictionary_that_falls_back_to_plain_pages_is_read_as_plain_strings() {
        // Written by pyarrow (tools/fixtures/make_mixed_encoding.py): each string
        // column's first pages use its dictionary, the later ones are plain.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/events_dictionary_then_plain.parquet");
        let file = events_file_at(path);
        let rows = 2000;
        let pages = open(&file).unwrap().expect("a file the pages path reads");
        let Decoded::Flat(chunk) = pages.decode(0, "organization").unwrap() else {
            panic!("a flat file decodes into a chunk")
        };
        // The person column could not stay coded by its dictionary: a key per row.
        assert_eq!(chunk.person.values.len(), rows);
        let people: Vec<String> = (0..rows)
            .map(|i| format!("person-{:04}", i * 7919 % 500))
            .collect();
        assert_eq!(
            strings(&chunk.person, rows),
            people.iter().map(|p| Some(p.as_str())).collect::<Vec<_>>()
        );
        let urls: Vec<Option<String>> = (0..rows)
            .map(|i| (i % 5 != 0).then(|| format!("/docs/page-{}", i % 13)))
            .collect();
        let url = chunk.url.as_ref().unwrap();
        assert_eq!(
            strings(url, rows),
            urls.iter().map(|u| u.as_deref()).collect::<Vec<_>>()
        );
        // 2026-11-01T00:00Z plus one minute a row.
        assert_eq!(
            chunk.timestamp.value(3),
            1_793_491_200_000_000 + 180_000_000
        );
    }

    #[test]
    fn files_needing_normalising_are_left_to_polars() {
        let dir = tempfile::tempdir().unwrap();
        // Integer person ids are cast to strings by the normalised scan.
        let mut frame = df!(
            "timestamp" => [1i64],
            "event" => ["a"],
            "distinct_id" => [7i64],
            "org_id" => ["o"],
        )
        .unwrap()
        .lazy()
        .with_column(col("timestamp").cast(DataType::Datetime(TimeUnit::Microseconds, None)))
        .collect()
        .unwrap();
        let file = events_file(dir.path(), &mut frame);
        assert!(open(&file).unwrap().is_none());
        // So are timestamps stored as dates.
        let mut frame = df!(
            "timestamp" => [1i32],
            "event" => ["a"],
            "distinct_id" => ["p"],
            "org_id" => ["o"],
        )
        .unwrap()
        .lazy()
        .with_column(col("timestamp").cast(DataType::Date))
        .collect()
        .unwrap();
        let file = events_file(dir.path(), &mut frame);
        assert!(open(&file).unwrap().is_none());
    }
}
