//! Writing a run's tables (SPEC 9): Parquet and CSV, sorted, replaced atomically.
//!
//! Every file is first written into a hidden staging folder inside `--out`; only when
//! every table is complete are they renamed into place, one `rename` each, the
//! manifest last, so a reader never sees a half-written file and a failed run leaves
//! the last good outputs as they were (a reader between two renames can still see
//! tables of two runs; the manifest names the run). Staging folders of killed runs
//! are removed by the next run. This is the only stage that writes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use polars::prelude::*;
use rayon::prelude::*;

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
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let handle = file
        .try_clone()
        .with_context(|| format!("creating {}", path.display()))?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .set_parallel(false)
        .finish(df)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("writing {}", path.display()))?;
    start_writeback(&handle);
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

/// Writes every table and the manifest into `out`, atomically per file and only once
/// all of them are complete.
pub fn write_all(
    out: &Path,
    tables: Vec<Table>,
    manifest_json: &str,
    formats: Formats,
) -> Result<()> {
    fs::create_dir_all(out).with_context(|| format!("creating output folder {}", out.display()))?;
    remove_abandoned_staging(out);
    let staging = out.join(format!("{STAGING_PREFIX}{}", std::process::id()));
    let result = stage_and_publish(out, &staging, tables, manifest_json, formats);
    // Whatever happened, leave no staging folder behind.
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Staging folders are `<prefix><pid>` inside `--out`.
const STAGING_PREFIX: &str = ".account-health-staging-";

/// Removes the staging folders of runs that were killed before they could clean up:
/// those whose process no longer exists. A folder of a live process (another run
/// writing into the same folder) is left alone. Best effort: a folder that cannot be
/// removed is tried again by the next run.
fn remove_abandoned_staging(out: &Path) {
    let Ok(entries) = fs::read_dir(out) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(STAGING_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_exists(pid) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether a process with this id exists (Linux: its /proc entry; elsewhere, assume
/// it does, so nothing of a live run is ever removed).
fn process_exists(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

fn stage_and_publish(
    out: &Path,
    staging: &Path,
    tables: Vec<Table>,
    manifest_json: &str,
    formats: Formats,
) -> Result<()> {
    if staging.exists() {
        fs::remove_dir_all(staging).with_context(|| format!("clearing {}", staging.display()))?;
    }
    fs::create_dir_all(staging).with_context(|| format!("creating {}", staging.display()))?;
    let mut not_written: Vec<PathBuf> = Vec::new();
    // (frame, file, is parquet) for every file to write; a frame clone shares its
    // columns, it copies nothing.
    let mut files: Vec<(DataFrame, PathBuf, bool)> = Vec::new();
    for t in tables {
        for (wanted, ext, parquet) in [
            (formats.parquet, "parquet", true),
            (formats.csv, "csv", false),
        ] {
            if wanted {
                let path = staging.join(format!("{}.{ext}", t.name));
                files.push((t.frame.clone(), path, parquet));
            } else {
                // A format not written this run would otherwise keep an older run's table.
                not_written.push(out.join(format!("{}.{ext}", t.name)));
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
    let move_into_place = |from: &PathBuf| -> Result<()> {
        let to = out.join(from.file_name().expect("staged files have names"));
        fs::rename(from, &to).with_context(|| format!("moving {} into place", to.display()))
    };
    // The tables side by side (a rename over last run's file frees that file, which
    // takes the file system ~2 ms a table), then the manifest, last: once it is in
    // place, every table is this run's. The first failure in file order is reported.
    let moved: Vec<Result<()>> = staged.par_iter().map(move_into_place).collect();
    moved.into_iter().collect::<Result<()>>()?;
    move_into_place(&manifest)?;
    for stale in not_written.iter().filter(|p| p.exists()) {
        fs::remove_file(stale)
            .with_context(|| format!("removing the stale {}", stale.display()))?;
    }
    Ok(())
}
