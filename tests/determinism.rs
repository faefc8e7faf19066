use crate::metrics::rich_fixture;
use crate::util::*;

/// Every output file's bytes; the manifest without its timings and memory peaks
/// (measurements of the run, by nature).
fn outputs(w: &Workdir) -> Vec<(String, Vec<u8>)> {
    // The published files (links into the current run), not the folders.
    let mut files: Vec<_> = std::fs::read_dir(w.out())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.is_dir() && p.file_name().is_some_and(|n| n != ".lock"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let mut bytes = std::fs::read(&p).unwrap();
            if name == "manifest.json" {
                let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let fields = v.as_object_mut().unwrap();
                fields.remove("timings_seconds");
                fields.remove("peak_memory_mib");
                bytes = serde_json::to_vec(&v).unwrap();
            }
            (name, bytes)
        })
        .collect()
}

#[test]
fn same_inputs_give_the_same_bytes_at_any_thread_count() {
    let w = Workdir::new();
    rich_fixture(&w);
    w.run(&["--threads", "1"]);
    let one = outputs(&w);
    w.run(&["--threads", "2"]);
    let two = outputs(&w);
    w.run(&[]);
    let default = outputs(&w);
    assert_eq!(
        one.len(),
        17,
        "eight tables in two formats, and the manifest"
    );
    assert!(one == two, "1 vs 2 threads differ");
    assert!(one == default, "repeated run differs");
}

#[test]
fn generated_data_gives_the_same_bytes_at_any_thread_count() {
    let w = Workdir::new();
    w.generate(30, 70, 3);
    w.run(&["--threads", "1"]);
    let one = outputs(&w);
    w.run(&["--threads", "2"]);
    assert!(
        one == outputs(&w),
        "1 vs 2 threads differ on generated data"
    );
}

#[test]
fn events_read_in_tiny_chunks_give_the_same_bytes() {
    let w = Workdir::new();
    w.generate(30, 70, 4);
    w.run(&[]);
    let whole = outputs(&w);
    // Chunks of 1000 rows, cutting days and files anywhere: the rollup carries its
    // (member, day) rows across chunks, and nothing may change.
    run_with_env(&w, &[("ACCOUNT_HEALTH_EVENTS_CHUNK_ROWS", "1000")]);
    assert!(whole == outputs(&w), "chunked reading changed the outputs");
}

/// `run` at AS_OF with extra environment variables; panics unless it succeeds.
fn run_with_env(w: &Workdir, env: &[(&str, &str)]) {
    let out = w.try_run_env(&["--quiet", "--as-of", AS_OF], env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn both_event_readers_give_the_same_bytes() {
    let w = Workdir::new();
    w.generate_flat(30, 70, 5);
    w.run(&[]);
    let pages = outputs(&w);
    run_with_env(&w, &[("ACCOUNT_HEALTH_EVENTS_READER", "polars")]);
    assert!(
        pages == outputs(&w),
        "the polars reader changed the outputs"
    );
    run_with_env(
        &w,
        &[
            ("ACCOUNT_HEALTH_EVENTS_READER", "polars"),
            ("ACCOUNT_HEALTH_EVENTS_CHUNK_ROWS", "777"),
        ],
    );
    assert!(
        pages == outputs(&w),
        "polars' reader in small chunks changed the outputs"
    );
}

#[test]
fn both_event_readers_give_the_same_bytes_on_posthog_exports() {
    // Export-shaped files (uuid dedupe, properties JSON) through the pages reader,
    // two row groups decoded at once, and through polars' scan in small chunks.
    let w = Workdir::new();
    w.generate(30, 70, 8);
    w.run(&[]);
    let pages = outputs(&w);
    run_with_env(
        &w,
        &[
            ("ACCOUNT_HEALTH_EVENTS_READER", "polars"),
            ("ACCOUNT_HEALTH_EVENTS_CHUNK_ROWS", "777"),
        ],
    );
    assert!(
        pages == outputs(&w),
        "the polars reader changed the outputs of an export"
    );
}

#[test]
fn files_read_directly_and_files_left_to_polars_interleave_in_file_order() {
    use polars::prelude::*;
    let w = Workdir::new();
    w.generate_flat(12, 40, 6);
    let folder = w.input().join("events");
    let all = all_events(&folder);
    std::fs::remove_dir_all(&folder).unwrap();
    // Five slices of the rows, in order: the second and fourth with the timestamp
    // stored as a date (a file the pass leaves to polars' normalising scan), the
    // third empty. The pass reads runs of files itself, each run's next row group
    // (the first of its next file too) while adding the one before, and hands the
    // files between runs to polars: every row must be read once.
    let n = all.height();
    let cuts = [0, n / 5, 2 * n / 5, 2 * n / 5, 4 * n / 5, n];
    for (i, bounds) in cuts.windows(2).enumerate() {
        let mut part = all.slice(bounds[0] as i64, bounds[1] - bounds[0]);
        if i == 1 || i == 3 {
            part = part
                .lazy()
                .with_column(col("timestamp").cast(DataType::Date))
                .collect()
                .unwrap();
        }
        write_parquet(&folder.join(format!("part-{i}.parquet")), &part);
    }
    w.run(&[]);
    let mixed = tables(&w);
    run_with_env(&w, &[("ACCOUNT_HEALTH_EVENTS_READER", "polars")]);
    assert!(
        mixed == tables(&w),
        "files read directly and by polars, interleaved, differ from polars alone"
    );
}

#[test]
fn plain_encoded_and_hive_event_columns_read_like_dictionary_ones() {
    use polars::prelude::*;
    let w = Workdir::new();
    w.generate_flat(12, 40, 6);
    w.run(&[]);
    let dictionary = tables(&w);
    // Every URL made unique by a query string (the path, all the rules read, is
    // unchanged), so the writer stores current_url plainly, not as a dictionary; and
    // org_id moved from the rows to hive folders (`org_id=...`), one file per org.
    let folder = w.input().join("events");
    let all = all_events(&folder);
    let n = all.height() as u32;
    let all = all
        .lazy()
        .with_column(
            concat_str(
                [
                    col("current_url"),
                    lit("?row="),
                    lit(Series::new("row".into(), (0..n).collect::<Vec<u32>>()))
                        .cast(DataType::String),
                ],
                "",
                false,
            )
            .alias("current_url"),
        )
        .collect()
        .unwrap();
    std::fs::remove_dir_all(&folder).unwrap();
    for (org, rows) in all
        .partition_by_stable(["org_id"], true)
        .unwrap()
        .into_iter()
        .map(|df| {
            let org = df
                .column("org_id")
                .unwrap()
                .str()
                .unwrap()
                .get(0)
                .unwrap()
                .to_string();
            (org, df.drop("org_id").unwrap())
        })
    {
        write_parquet(
            &folder.join(format!("org_id={org}")).join("part.parquet"),
            &rows,
        );
    }
    w.run(&[]);
    assert!(
        dictionary == tables(&w),
        "plain URLs and hive org ids changed the tables"
    );
    run_with_env(&w, &[("ACCOUNT_HEALTH_EVENTS_READER", "polars")]);
    assert!(
        dictionary == tables(&w),
        "the polars reader differs on them"
    );
}

/// The output tables' bytes, without the manifest (which lists the input files).
fn tables(w: &Workdir) -> Vec<(String, Vec<u8>)> {
    outputs(w)
        .into_iter()
        .filter(|(name, _)| name != "manifest.json")
        .collect()
}

/// Every events file under `folder`, stacked in file order.
fn all_events(folder: &std::path::Path) -> polars::prelude::DataFrame {
    let mut all = polars::prelude::DataFrame::empty();
    for f in parquet_files(folder) {
        let part = read_parquet(&f);
        all = if all.width() == 0 {
            part
        } else {
            all.vstack(&part).unwrap()
        };
    }
    all
}

/// Every `*.parquet` file under `dir`, at any depth.
fn parquet_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            files.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|x| x == "parquet") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn events_in_any_row_order_give_the_same_tables() {
    use polars::prelude::*;
    let w = Workdir::new();
    w.generate_flat(30, 70, 4);
    w.run(&[]);
    // The manifest lists the input files, which change below; the tables may not.
    let time_ordered = tables(&w);
    // One file, ordered by person and event name: every member-day is revisited
    // after other days, the slow path of the events pass.
    let folder = w.input().join("events");
    let all = all_events(&folder);
    let shuffled = all
        .sort(["distinct_id", "event"], SortMultipleOptions::default())
        .unwrap();
    std::fs::remove_dir_all(&folder).unwrap();
    w.write("events", &shuffled);
    w.run(&[]);
    assert!(
        time_ordered == tables(&w),
        "the order of the event rows changed the outputs"
    );
}
