//! Writing a run's tables (SPEC 9): Parquet and CSV, sorted, into a staging folder;
//! `publish` then makes them the current run in one atomic step. This is the only
//! stage that writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use polars::prelude::*;
use rayon::prelude::*;

use crate::publish;
use crate::time::AsOf;

/// The tables a run writes, by name: what `query` can read and `load postgres`
/// replaces.
pub const TABLE_NAMES: [&str; 8] = [
    "health",
    "metric_scores",
    "indicators",
    "metric_changes",
    "alerts",
    "users",
    "trends",
    "deployment",
];

/// Which file formats to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    pub parquet: bool,
    pub csv: bool,
}

/// One finished output table.
pub struct Table {
    pub name: &'static str,
    pub frame: DataFrame,
}

/// Reads the output table `<name>.parquet` of a run folder (or a history entry);
/// `None` when it is not there (a table an earlier version did not write).
pub fn read_table(dir: &Path, name: &str) -> Result<Option<DataFrame>, crate::InputError> {
    let path = dir.join(format!("{name}.parquet"));
    let Ok(file) = fs::File::open(&path) else {
        return Ok(None);
    };
    ParquetReader::new(file)
        .finish()
        .map(Some)
        .map_err(|e| crate::InputError::Unreadable {
            file: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// Writes a table as RFC 4180 CSV: header row, CRLF line ends, `.` decimals, ISO dates,
/// empty cell for null.
pub fn write_csv(df: &mut DataFrame, path: &Path) -> Result<()> {
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    write_csv_to(df, &mut w).with_context(|| format!("writing {}", path.display()))?;
    let file = w
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", path.display()))?;
    start_writeback(&file);
    Ok(())
}

/// The CSV dialect of every CSV this tool writes, to any writer: by `csv::write`,
/// or by polars for a column type it leaves to polars (the same bytes either way).
pub fn write_csv_to(df: &mut DataFrame, w: &mut impl std::io::Write) -> Result<()> {
    if crate::csv::write(df, w)? {
        return Ok(());
    }
    CsvWriter::new(w)
        .include_header(true)
        .with_separator(b',')
        .with_line_terminator("\r\n".into())
        .with_float_scientific(Some(false))
        .with_null_value("".into())
        .finish(df)?;
    Ok(())
}

/// Writes a table as Parquet, single-threaded so the bytes never depend on threads.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    let file = write_parquet_with(df, path, None)?;
    start_writeback(&file);
    Ok(())
}

/// The tool's Parquet (zstd, single-threaded) with key-value `metadata`; gives the
/// written file, for the caller to flush as it needs.
pub fn write_parquet_with(
    df: &mut DataFrame,
    path: &Path,
    metadata: Option<KeyValueMetadata>,
) -> Result<fs::File> {
    write_parquet_as(df, path, metadata, Encoded::TABLE)
}

/// How a Parquet file's pages are encoded and compressed.
#[derive(Clone, Copy, Debug)]
pub struct Encoded {
    pub compression: ParquetCompression,
    /// Integer columns written plain, never as a dictionary: a cache the tool reads
    /// back each night decodes faster plain (LZ4 still shrinks the runs of zeros;
    /// the run from rollups ~3% faster), at ~30% more room (docs/PERFORMANCE.md,
    /// session 27).
    pub plain_integers: bool,
}

impl Encoded {
    /// The output tables: zstd, and what polars' writer would choose.
    pub const TABLE: Encoded = Encoded {
        compression: ParquetCompression::Zstd(None),
        plain_integers: false,
    };
}

/// `write_parquet_with` encoded as `encoded` says (a cache the tool reads back often
/// may trade size for decoding time).
pub fn write_parquet_as(
    df: &mut DataFrame,
    path: &Path,
    metadata: Option<KeyValueMetadata>,
    encoded: Encoded,
) -> Result<fs::File> {
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    // Buffered: the writer issues a write per page header and footer field (some
    // 10,000 system calls for a run's three history tables unbuffered).
    let mut w = std::io::BufWriter::new(file);
    write_frame(df, &mut w, metadata, encoded)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("writing {}", path.display()))?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", path.display()))
}

/// What polars' `ParquetWriter` (zstd, single-threaded, its default statistics and
/// row groups) writes, byte for byte, less one wasted step: polars asks for a
/// dictionary for every primitive column, and for a float column first estimates its
/// distinct values (a HyperLogLog over every value), though a float dictionary is
/// never made and the column is always written plain. Here float columns are plain
/// from the start: the estimates were ~3% of backfill's time (53 dates of three
/// history tables, mostly float columns). Same bytes: tested against polars' writer.
fn write_frame<W: std::io::Write>(
    df: &mut DataFrame,
    w: W,
    metadata: Option<KeyValueMetadata>,
    encoded: Encoded,
) -> PolarsResult<()> {
    use polars_parquet::write::{
        array_to_columns, get_dtype_encoding, to_parquet_schema, Compressor, DynIter,
        DynStreamingIterator, Encoding, FallibleStreamingIterator, FileWriter, StatisticsOptions,
        Version, WriteOptions,
    };
    // polars' default row group size.
    let df = polars_core::frame::chunk_df_for_writing(df, 512 * 512)?;
    let schema = df.schema().to_arrow(CompatLevel::newest());
    let parquet_schema = to_parquet_schema(&schema)?;
    let encodings: Vec<Vec<Encoding>> = schema
        .iter_values()
        .map(|field| match field.dtype() {
            ArrowDataType::Float32 | ArrowDataType::Float64 => vec![Encoding::Plain],
            ArrowDataType::Int8
            | ArrowDataType::Int16
            | ArrowDataType::Int32
            | ArrowDataType::Int64
            | ArrowDataType::UInt8
            | ArrowDataType::UInt16
            | ArrowDataType::UInt32
            | ArrowDataType::UInt64
                if encoded.plain_integers =>
            {
                vec![Encoding::Plain]
            }
            dtype => get_dtype_encoding(dtype),
        })
        .collect();
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        compression: encoded.compression.into(),
        version: Version::V1,
        data_page_size: None,
    };
    let mut writer =
        FileWriter::new_with_parquet_schema(w, schema, parquet_schema.clone(), options);
    for batch in df.iter_chunks(CompatLevel::newest(), false) {
        if batch.is_empty() {
            continue;
        }
        let mut columns = Vec::new();
        for ((array, type_), encoding) in batch
            .columns()
            .iter()
            .zip(parquet_schema.fields())
            .zip(&encodings)
        {
            for pages in array_to_columns(array, type_.clone(), options, encoding)? {
                let pages = pages.map(|page| {
                    page.map_err(|e| {
                        polars_parquet::read::ParquetError::FeatureNotSupported(e.to_string())
                    })
                });
                let compressed = Compressor::new_from_vec(pages, options.compression, vec![])
                    .map_err(PolarsError::from);
                columns.push(Ok(DynStreamingIterator::new(compressed)));
            }
        }
        writer.write(batch.len() as u64, DynIter::new(columns.into_iter()))?;
    }
    let key_value_metadata = metadata
        .map(|meta| {
            let arrow_schema = polars_parquet::write::schema_to_metadata_key(writer.schema());
            let context = ParquetMetadataContext {
                arrow_schema: arrow_schema.value.as_ref().expect("the schema's text"),
            };
            let mut out = meta.collect(context)?;
            if !out.iter().any(|kv| kv.key == arrow_schema.key) {
                out.insert(0, arrow_schema);
            }
            PolarsResult::Ok(out)
        })
        .transpose()?;
    writer.end(key_value_metadata)?;
    Ok(())
}

/// Writes the files (frame, path, is Parquet) on every thread, the largest first
/// (most cells; a table's Parquet before its CSV), and gives each one's outcome in file
/// order. Taken largest first, the last files written are small ones, so no thread is
/// left writing a large file alone at the end.
fn write_largest_first(files: Vec<(DataFrame, PathBuf, bool)>) -> Vec<Result<PathBuf>> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| {
        let (frame, _, parquet) = &files[i];
        std::cmp::Reverse((frame.height() * frame.width(), *parquet))
    });
    let next = AtomicUsize::new(0);
    // Each thread takes the next file until none is left, and keeps what it wrote.
    let taken: Vec<Vec<(usize, Result<PathBuf>)>> = rayon::broadcast(|_| {
        let mut mine = Vec::new();
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let (frame, path, parquet) = &files[i];
            let mut frame = frame.clone();
            let written = if *parquet {
                write_parquet(&mut frame, path)
            } else {
                write_csv(&mut frame, path)
            };
            mine.push((i, written.map(|()| path.clone())));
        }
        mine
    });
    let mut outcomes: Vec<(usize, Result<PathBuf>)> = taken.into_iter().flatten().collect();
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// Asks the kernel to start writing a finished file to disk, without waiting.
/// Renaming over an existing file makes ext4 write the new one out first, and the
/// renames into one folder take turns: files started here are written while the other
/// tables are still being made, not one after another at the end. Only a hint:
/// nothing depends on it.
fn start_writeback(file: &fs::File) {
    crate::sys::start_writeback(file);
}

/// Writes every table and the manifest as one run, and publishes it in one atomic
/// step with its history entry (`publish`).
pub fn write_all(
    out: &Path,
    tables: Vec<Table>,
    manifest_json: &str,
    formats: Formats,
    as_of: &AsOf,
    history_days: u32,
) -> Result<()> {
    fs::create_dir_all(out).with_context(|| format!("creating output folder {}", out.display()))?;
    let staging = publish::prepare(out)?;
    let result = stage_and_publish(
        out,
        &staging,
        tables,
        manifest_json,
        formats,
        as_of,
        history_days,
    );
    // Whatever happened, leave no staging folder behind (once published, it is gone).
    let _ = fs::remove_dir_all(&staging);
    result
}

/// The staging folders of earlier versions, `<prefix><pid>` in `OUT` itself; still
/// cleaned up after killed runs.
pub const OLD_STAGING_PREFIX: &str = ".account-health-staging-";

fn stage_and_publish(
    out: &Path,
    staging: &Path,
    tables: Vec<Table>,
    manifest_json: &str,
    formats: Formats,
    as_of: &AsOf,
    history_days: u32,
) -> Result<()> {
    let mut not_written: Vec<String> = Vec::new();
    // (frame, file, is parquet) for every file to write; a frame clone shares its
    // columns, it copies nothing.
    let mut files: Vec<(DataFrame, PathBuf, bool)> = Vec::new();
    let mut history = Vec::new();
    for t in tables {
        if let Some(name) = publish::HISTORY_TABLES.iter().find(|&&n| n == t.name) {
            history.push((*name, t.frame.clone()));
        }
        for (wanted, ext, parquet) in [
            (formats.parquet, "parquet", true),
            (formats.csv, "csv", false),
        ] {
            let name = format!("{}.{ext}", t.name);
            if wanted {
                files.push((t.frame.clone(), staging.join(&name), parquet));
            } else {
                // A format not written this run would otherwise keep an older run's table.
                not_written.push(name);
            }
        }
    }
    // The files are independent, so they are written in parallel; each one's bytes
    // do not depend on the threads, and the first failure in file order is reported.
    let written = write_largest_first(files);
    let staged = written.into_iter().collect::<Result<Vec<PathBuf>>>()?;
    let manifest = staging.join("manifest.json");
    fs::write(&manifest, manifest_json)
        .with_context(|| format!("writing {}", manifest.display()))?;
    // Every file on disk before the run is published.
    staged
        .par_iter()
        .chain([manifest.clone()].par_iter())
        .map(|p| publish::sync_file(p))
        .collect::<Result<Vec<()>>>()?;
    let names: Vec<String> = staged
        .iter()
        .chain([&manifest])
        .map(|p| {
            p.file_name()
                .expect("staged files have names")
                .to_string_lossy()
                .to_string()
        })
        .collect();
    publish::publish(publish::Publication {
        out,
        staged: staging,
        files: &names,
        not_written: &not_written,
        as_of,
        history,
        history_days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// polars' own writer with the settings `write_frame` stands for.
    fn polars_bytes(df: &mut DataFrame, metadata: Option<KeyValueMetadata>) -> Vec<u8> {
        let mut out = Vec::new();
        ParquetWriter::new(&mut out)
            .with_compression(ParquetCompression::Zstd(None))
            .with_key_value_metadata(metadata)
            .set_parallel(false)
            .finish(df)
            .unwrap();
        out
    }

    fn our_bytes(df: &mut DataFrame, metadata: Option<KeyValueMetadata>) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(df, &mut out, metadata, Encoded::TABLE).unwrap();
        out
    }

    #[test]
    fn write_frame_writes_what_polars_writes() {
        // Floats of few and of many values (a few would tempt a dictionary), strings
        // of few and many, integers, dates, booleans, nulls, and more rows than one
        // page holds.
        // More rows than one row group (512 * 512) holds.
        let n = 600_000;
        let mut df = df!(
            "few_floats" => (0..n).map(|i| (i % 3) as f64).collect::<Vec<_>>(),
            "many_floats" => (0..n).map(|i| if i % 7 == 0 { None } else { Some(i as f64 / 3.0) }).collect::<Vec<_>>(),
            "few_strings" => (0..n).map(|i| ["poor", "healthy", "concerning"][i % 3]).collect::<Vec<_>>(),
            "many_strings" => (0..n).map(|i| if i % 5 == 0 { None } else { Some(format!("org-{i}")) }).collect::<Vec<_>>(),
            "ints" => (0..n).map(|i| (i % 100) as i32).collect::<Vec<_>>(),
            "flags" => (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>(),
            "counts" => (0..n).map(|i| (i % 9) as u32).collect::<Vec<_>>(),
            "micros" => (0..n).map(|i| i as i64 * 1_000_003).collect::<Vec<_>>(),
            "small_floats" => (0..n).map(|i| (i % 4) as f32 / 2.0).collect::<Vec<_>>(),
        )
        .unwrap()
        .lazy()
        .with_columns([
            col("ints").cast(DataType::Date).alias("day"),
            col("micros")
                .cast(DataType::Datetime(TimeUnit::Microseconds, None))
                .alias("at"),
        ])
        .collect()
        .unwrap();
        assert_eq!(our_bytes(&mut df, None), polars_bytes(&mut df, None));
        let metadata = || {
            Some(KeyValueMetadata::from_static(vec![(
                "k".to_string(),
                "v".to_string(),
            )]))
        };
        assert_eq!(
            our_bytes(&mut df, metadata()),
            polars_bytes(&mut df, metadata())
        );
        // Metadata that names the Arrow schema's own key.
        let own_key = || {
            Some(KeyValueMetadata::from_static(vec![(
                "ARROW:schema".to_string(),
                "mine".to_string(),
            )]))
        };
        assert_eq!(
            our_bytes(&mut df, own_key()),
            polars_bytes(&mut df, own_key())
        );
        // No rows at all.
        let mut empty = df.head(Some(0));
        assert_eq!(our_bytes(&mut empty, None), polars_bytes(&mut empty, None));
    }

    #[test]
    fn plain_integers_are_never_dictionaries_and_read_back_the_same() {
        // Few distinct values: polars' writer makes a dictionary of each column.
        let n = 10_000;
        let df = df!(
            "counts" => (0..n).map(|i| (i % 3) as u32).collect::<Vec<_>>(),
            "day" => (0..n).map(|_| 20_400i32).collect::<Vec<_>>(),
            "latest" => (0..n).map(|i| (i % 2) as i64 * 1_000_000).collect::<Vec<_>>(),
            "org" => (0..n).map(|i| ["a", "b"][i % 2]).collect::<Vec<_>>(),
        )
        .unwrap();
        let dictionaries = |encoded: Encoded| {
            let mut bytes = Vec::new();
            write_frame(&mut df.clone(), &mut bytes, None, encoded).unwrap();
            let metadata =
                polars_parquet::read::read_metadata(&mut std::io::Cursor::new(&bytes)).unwrap();
            let read = ParquetReader::new(std::io::Cursor::new(&bytes))
                .finish()
                .unwrap();
            assert!(read.equals(&df));
            let group = &metadata.row_groups[0];
            (df.get_column_names().into_iter())
                .filter(|name| {
                    group
                        .columns_under_root_iter(name)
                        .unwrap()
                        .any(|c| c.dictionary_page_offset().is_some())
                })
                .map(|name| name.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            dictionaries(Encoded::TABLE),
            ["counts", "day", "latest", "org"]
        );
        let plain = Encoded {
            compression: ParquetCompression::Lz4Raw,
            plain_integers: true,
        };
        // The strings keep theirs.
        assert_eq!(dictionaries(plain), ["org"]);
    }
}
