//! `generate --shape posthog`: the events as PostHog's S3 batch export writes them
//! (see input::EventsShape): one file per monthly interval of `_inserted_at`, named
//! `{interval_start}-{interval_end}.parquet.zst`, the latest interval split in two
//! with its `_manifest.json`; the organization and URL inside `properties` JSON; a
//! `uuid` per event. Like a real export it has late arrivals (an event written in a
//! later interval than its day), re-exported events (the same uuid again in the next
//! interval) and events with no organization (anonymous page views): the job skips
//! the last two and counts them, so both shapes give the same tables.

use std::fs;
use std::path::Path;

use anyhow::Result;
use chrono::Datelike;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::output::write_parquet;
use crate::time::{AsOf, MICROS_PER_DAY};

/// The events of the flat generator; `order` lists them in time order (by index, so
/// nothing is copied: at 50M events the columns are gigabytes).
pub struct FlatEvents<'a> {
    pub order: &'a [usize],
    pub timestamp: &'a [i64],
    pub event: &'a [&'static str],
    pub distinct_id: &'a [String],
    pub org_id: &'a [String],
    pub current_url: &'a [Option<String>],
}

/// One row of the export: a flat event (`source`), or an anonymous page view with no
/// organization (`None`), with when it was ingested and whether it is a re-export.
struct Row {
    /// Index into the flat columns.
    source: Option<usize>,
    inserted_us: i64,
    uuid: u128,
}

/// Writes `events/` under `out` in the export's shape.
pub fn write(events: &FlatEvents, out: &Path, seed: u64, as_of: &AsOf) -> Result<()> {
    // A stream of its own, so the flat tables stay those of the same seed.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0005_EED0_F0E7_0117);
    // Nothing is ingested at or after as_of (the export has not run yet).
    let ingested = |t: i64, at: i64| at.min(as_of.us() - 1).max(t);
    let mut rows: Vec<Row> =
        Vec::with_capacity(events.timestamp.len() + events.timestamp.len() / 100);
    for &i in events.order {
        let t = events.timestamp[i];
        // Ingested within a minute, or (1 in 100) up to three days late.
        let delay = if rng.gen_ratio(1, 100) {
            rng.gen_range(3_600..259_200) * 1_000_000
        } else {
            rng.gen_range(1..60) * 1_000_000
        };
        let uuid = uuid_v7(t, &mut rng);
        // 1 in 300 exported again by a re-run, days later.
        if rng.gen_ratio(1, 300) {
            let later = rng.gen_range(1..20) * MICROS_PER_DAY;
            rows.push(Row {
                source: Some(i),
                inserted_us: ingested(t, t + delay + later),
                uuid,
            });
        }
        rows.push(Row {
            source: Some(i),
            inserted_us: ingested(t, t + delay),
            uuid,
        });
        // 1 in 500 followed by an anonymous page view (no organization yet).
        if rng.gen_ratio(1, 500) {
            rows.push(Row {
                source: None,
                inserted_us: ingested(t, t + delay + 1),
                uuid: uuid_v7(t + 1, &mut rng),
            });
        }
    }
    // Intervals: calendar months of `_inserted_at`, ending at as_of.
    let month_of = |us: i64| {
        let date = AsOf::from_day(us.div_euclid(MICROS_PER_DAY) as i32).date;
        (date.year() * 12 + date.month0() as i32) as u32
    };
    let month_of_row: Vec<u32> = rows.iter().map(|r| month_of(r.inserted_us)).collect();
    let mut months: Vec<u32> = month_of_row.clone();
    months.sort_unstable();
    months.dedup();
    let name = |m: u32| format!("{:04}-{:02}", m / 12, m % 12 + 1);
    let dir = out.join("events");
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    for (m, month) in months.iter().enumerate() {
        let mut mine: Vec<&Row> = rows
            .iter()
            .zip(&month_of_row)
            .filter(|(_, row_month)| *row_month == month)
            .map(|(r, _)| r)
            .collect();
        mine.sort_by_key(|r| r.inserted_us);
        let start = format!("{}-01T00:00:00+00:00", name(*month));
        let end = match months.get(m + 1) {
            Some(next) => format!("{}-01T00:00:00+00:00", name(*next)),
            None => format!("{}T00:00:00+00:00", as_of.iso()),
        };
        let interval = format!("{start}-{end}");
        if m + 1 < months.len() {
            write_file(events, &mine, &dir.join(format!("{interval}.parquet.zst")))?;
        } else {
            // The latest interval split in two, with the manifest the export writes.
            let half = mine.len() / 2;
            let names: Vec<String> = (0..2)
                .map(|n| format!("{interval}-{n}.parquet.zst"))
                .collect();
            write_file(events, &mine[..half], &dir.join(&names[0]))?;
            write_file(events, &mine[half..], &dir.join(&names[1]))?;
            let keys: Vec<String> = names
                .iter()
                .map(|n| format!("posthog-exports/events/{n}"))
                .collect();
            fs::write(
                dir.join(format!("{interval}_manifest.json")),
                serde_json::to_string(&serde_json::json!({ "files": keys }))?,
            )?;
        }
    }
    Ok(())
}

/// A version-7 uuid: the event's millisecond first, then random bits.
fn uuid_v7(us: i64, rng: &mut ChaCha8Rng) -> u128 {
    let ms = (us.div_euclid(1000)) as u128 & 0xFFFF_FFFF_FFFF;
    let (a, b, c): (u16, u16, u64) = (rng.gen(), rng.gen(), rng.gen());
    (ms << 80)
        | ((0x7000 | (a as u128 & 0xFFF)) << 64)
        | ((0x8000 | (b as u128 & 0x3FFF)) << 48)
        | (c as u128 & 0xFFFF_FFFF_FFFF)
}

/// A uuid's text, 8-4-4-4-12 lowercase hex digits.
fn uuid_text(n: u128) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        n >> 96,
        (n >> 80) & 0xFFFF,
        (n >> 64) & 0xFFFF,
        (n >> 48) & 0xFFFF,
        n & 0xFFFF_FFFF_FFFF
    )
}

/// A JSON string literal.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Rows per written batch (one Parquet row group each): a file is built and written
/// a batch at a time, so a month of 50M events is never all in memory as strings.
const ROWS_PER_BATCH: usize = 1 << 18;

fn write_file(events: &FlatEvents, rows: &[&Row], path: &Path) -> Result<()> {
    let file = fs::File::create(path)?;
    let mut writer = None;
    for (b, batch) in rows.chunks(ROWS_PER_BATCH).enumerate() {
        let df = batch_frame(events, batch, b * ROWS_PER_BATCH)?;
        let writer = match &mut writer {
            Some(w) => w,
            None => writer.insert(
                ParquetWriter::new(file.try_clone()?)
                    .with_compression(ParquetCompression::Zstd(None))
                    .set_parallel(false)
                    .batched(df.schema())?,
            ),
        };
        writer.write_batch(&df)?;
    }
    match writer {
        Some(w) => {
            w.finish()?;
        }
        // No rows: a file with the columns and no row group.
        None => write_parquet(&mut batch_frame(events, &[], 0)?, path)?,
    }
    Ok(())
}

/// The export's columns for `rows`, the first of which is row `first` of its file.
fn batch_frame(events: &FlatEvents, rows: &[&Row], first: usize) -> Result<DataFrame> {
    let n = rows.len();
    let (mut uuid, mut event, mut properties, mut distinct_id, mut person_id) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut timestamp, mut inserted) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (k, r) in rows.iter().enumerate() {
        let k = first + k;
        uuid.push(uuid_text(r.uuid));
        inserted.push(r.inserted_us);
        // Every event's properties differ, as real ones do (an insert id and a time
        // each): no Parquet dictionary can code them.
        let unique = format!(
            "\"$insert_id\":\"{:016x}\",\"$time\":{}.{:06}",
            (r.uuid as u64).rotate_left(17),
            r.inserted_us.div_euclid(1_000_000),
            r.inserted_us.rem_euclid(1_000_000)
        );
        match r.source {
            Some(i) => {
                let org = &events.org_id[i];
                let who = &events.distinct_id[i];
                // Keys in two orders, some values with escapes, as real properties are.
                let url = events.current_url[i]
                    .as_ref()
                    .map(|u| format!(",\"$current_url\":{}", quoted(u)))
                    .unwrap_or_default();
                let groups = format!(
                    "\"$groups\":{{\"project\":{},\"organization\":{}}}",
                    quoted(&format!("{org}-web")),
                    quoted(org)
                );
                let json = if k.is_multiple_of(2) {
                    format!(
                        "{{\"$lib\":\"web\",{groups}{url},\"$title\":\"Say \\\"hi\\\" \\u00e9\",{unique}}}"
                    )
                } else {
                    format!(
                        "{{{unique},\"$session_id\":\"s{}\"{url},{groups},\"$lib\":\"posthog-python\"}}",
                        k % 97
                    )
                };
                event.push(events.event[i]);
                properties.push(json);
                distinct_id.push(who.clone());
                person_id.push(format!("p-{who}"));
                timestamp.push(events.timestamp[i]);
            }
            None => {
                event.push("$pageview");
                properties.push(format!(
                    "{{\"$lib\":\"web\",\"$current_url\":\"https://posthog.com/pricing\",{unique}}}"
                ));
                distinct_id.push(format!("anon-{}", uuid_text(r.uuid)));
                person_id.push(format!("p-anon-{}", uuid_text(r.uuid)));
                timestamp.push(r.inserted_us - 1);
            }
        }
    }
    let utc = |name: &str, v: Vec<i64>| -> Result<polars::prelude::Column> {
        Ok(
            polars::prelude::Column::new(name.into(), v).cast(&DataType::Datetime(
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            ))?,
        )
    };
    let elements: Vec<Option<&str>> = vec![None; n];
    Ok(DataFrame::new_infer_height(vec![
        polars::prelude::Column::new("uuid".into(), uuid),
        polars::prelude::Column::new("event".into(), event),
        polars::prelude::Column::new("properties".into(), properties),
        polars::prelude::Column::new("distinct_id".into(), distinct_id),
        polars::prelude::Column::new("person_id".into(), person_id),
        utc("timestamp", timestamp)?,
        utc("created_at", inserted.clone())?,
        utc("_inserted_at", inserted)?,
        polars::prelude::Column::new("elements_chain".into(), elements),
    ])?)
}
