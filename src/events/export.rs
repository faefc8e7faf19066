//! Rows of PostHog's batch export (`input::EventsShape::Posthog`), turned into the
//! pass's chunks: each `uuid` counted once across all files (the first row in file
//! order wins; re-runs and backfills export an event again), the organization and
//! URL read from `properties` (`crate::properties`), and the rows that cannot be
//! scored (properties that are not a JSON object, no organization) skipped and
//! counted for the data-quality section.

use polars::prelude::*;
use rayon::prelude::*;

use polars_arrow::array::{MutableBinaryViewArray, PrimitiveArray};
use polars_arrow::datatypes::ArrowDataType;

use super::{coded_column, i64_column, Chunk, Coded};
use crate::properties::{self, each_byte, Found};

/// What the pass left out of export-shaped files, and why.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    /// Rows whose `uuid` an earlier row (in file order) already had.
    pub duplicate_event_uuids: u64,
    /// Rows whose `properties` are null or not one JSON object.
    pub events_unreadable_properties: u64,
    /// Rows whose properties name no organization.
    pub events_without_org: u64,
}

impl Skipped {
    pub fn total(&self) -> u64 {
        self.duplicate_event_uuids + self.events_unreadable_properties + self.events_without_org
    }
}

/// The uuids seen so far, and what was skipped.
pub(super) struct ExportReader {
    group_type: String,
    /// Canonical uuids (8-4-4-4-12 hex digits), as numbers, in one set per bucket
    /// (`bucket_of`): PostHog's event uuids begin with their millisecond (UUIDv7, and
    /// the older UUIDT), and an export is written in ingestion order, so a chunk's
    /// uuids fall in a few hours whose sets are small enough to stay in cache, where
    /// one set of every uuid would cost a cache miss per row. Buckets are worked on
    /// in parallel.
    seen: PlHashMap<u64, PlHashSet<u128>>,
    /// Any other uuid text, whole.
    seen_text: PlHashSet<String>,
    pub(super) skipped: Skipped,
    /// Days whose rows come from elsewhere (rollups): their rows are left out, and
    /// what is skipped of them is not counted (the run's data-quality counts cover
    /// the raw days it reads).
    held: super::DaySet,
}

/// Rows whose properties are read on one task.
const ROWS_PER_TASK: usize = 2048;

/// The uuids of one bucket: those made within the same hour.
const MILLIS_PER_BUCKET: u64 = 3_600_000;

/// Milliseconds a uuid's first 48 bits may hold to be taken for its time: 2010 to
/// 2100. (Only 1% of random uuids fall here by chance.)
const PLAUSIBLE_MILLIS: std::ops::Range<u64> = 1_262_304_000_000..4_102_444_800_000;

/// Buckets of the uuids that carry no time, by a hash of the uuid.
const HASHED_BUCKETS: u64 = 64;

/// A uuid's bucket: its hour when its first bits read as a plausible millisecond,
/// else one of `HASHED_BUCKETS` by a multiplicative hash of both halves (a
/// version-4 uuid is random throughout; a version-1's last bits are a node). Depends
/// on the uuid alone, so every row of one uuid meets the same set.
fn bucket_of(uuid: u128) -> u64 {
    let millis = (uuid >> 80) as u64;
    if PLAUSIBLE_MILLIS.contains(&millis) {
        return millis / MILLIS_PER_BUCKET;
    }
    let folded = (uuid as u64) ^ ((uuid >> 64) as u64);
    // Past every hour bucket (4_102_444_800_000 / MILLIS_PER_BUCKET < 2^21).
    (1 << 32) + (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) % HASHED_BUCKETS
}

impl ExportReader {
    pub(super) fn new(group_type: &str, held: &super::DaySet) -> Self {
        ExportReader {
            group_type: group_type.to_string(),
            seen: PlHashMap::default(),
            seen_text: PlHashSet::default(),
            skipped: Skipped::default(),
            held: held.clone(),
        }
    }

    /// Whether this is the first row with this uuid (one at a time; tests).
    #[cfg(test)]
    fn first_sight(&mut self, uuid: &str) -> bool {
        let column = Coded::from_strings(polars_arrow::array::Utf8ViewArray::from_slice_values([
            uuid,
        ]));
        self.first_sights(&column)[0]
    }

    /// For each row, whether it is the first with its uuid (a null uuid always is).
    /// A uuid always falls in the same shard, and each shard takes its rows in row
    /// order, so the first in file order wins whatever the threads.
    fn first_sights(&mut self, uuids: &Coded) -> Vec<bool> {
        let rows = uuids.keys.len();
        let parsed: Vec<Option<u128>> = (0..rows)
            .into_par_iter()
            .with_min_len(ROWS_PER_TASK)
            .map(|i| {
                uuids
                    .is_valid(i)
                    .then(|| parse_uuid(uuids.value(uuids.key(i))))
                    .flatten()
            })
            .collect();
        let mut first = vec![true; rows];
        // Rows per bucket, in row order; each bucket's set taken out while its rows
        // are looked up.
        let mut by_bucket: PlHashMap<u64, Vec<u32>> = PlHashMap::default();
        for (row, n) in parsed.iter().enumerate() {
            if let Some(n) = n {
                by_bucket.entry(bucket_of(*n)).or_default().push(row as u32);
            }
        }
        let mut work: Vec<(u64, PlHashSet<u128>, Vec<u32>)> = by_bucket
            .into_iter()
            .map(|(b, rows)| (b, self.seen.remove(&b).unwrap_or_default(), rows))
            .collect();
        // The largest first, so no thread is left with a big bucket at the end.
        work.sort_unstable_by_key(|(b, _, rows)| (std::cmp::Reverse(rows.len()), *b));
        let repeats: Vec<Vec<u32>> = work
            .par_iter_mut()
            .map(|(_, seen, rows)| {
                // Room for them all at once: a set grown by doubling moves each uuid
                // about once more (1% of the 1M export job's instructions).
                seen.reserve(rows.len());
                rows.iter()
                    .copied()
                    .filter(|&row| !seen.insert(parsed[row as usize].unwrap_or_default()))
                    .collect()
            })
            .collect();
        self.seen
            .extend(work.into_iter().map(|(b, seen, _)| (b, seen)));
        for row in repeats.into_iter().flatten() {
            first[row as usize] = false;
        }
        // Any other uuid text, whole, in row order (rare).
        for (row, n) in parsed.iter().enumerate() {
            if n.is_none() && uuids.is_valid(row) {
                let u = uuids.value(uuids.key(row));
                if self.seen_text.contains(u) {
                    first[row] = false;
                } else {
                    self.seen_text.insert(u.to_string());
                }
            }
        }
        first
    }

    /// The chunk of a frame of the normalised export columns (`timestamp`, `event`,
    /// `distinct_id`, `properties`, `uuid`); `None` when no row is left.
    pub(super) fn chunk(&mut self, frame: &DataFrame) -> PolarsResult<Option<Chunk>> {
        let (Some(timestamp), Some(event), Some(person), Some(uuid), Some(properties)) = (
            i64_column(frame, "timestamp")?,
            coded_column(frame, "event")?,
            coded_column(frame, "distinct_id")?,
            coded_column(frame, "uuid")?,
            coded_column(frame, "properties")?,
        ) else {
            return Ok(None);
        };
        self.chunk_of(ExportRows {
            timestamp,
            event,
            person,
            uuid,
            properties,
        })
    }

    /// The chunk of an export file's rows in the flat columns the pass reads: the
    /// rows seen before dropped, the organization and URL read from the properties
    /// (each distinct properties text once) and coded; `None` when no row is left.
    pub(super) fn chunk_of(&mut self, rows: ExportRows) -> PolarsResult<Option<Chunk>> {
        let n = rows.timestamp.len();
        let first = self.first_sights(&rows.uuid);
        let group_type = self.group_type.as_str();
        let held = &self.held;
        let rows_timestamp = rows.timestamp.values();
        let p = &rows.properties;
        let found: Vec<Option<Found>> = (0..p.values.len())
            .into_par_iter()
            .with_min_len(ROWS_PER_TASK)
            .map(|k| properties::extract(p.value(k), group_type).ok())
            .collect();
        // Row ranges sorted on all threads, each coding its own strings; then
        // merged in row order.
        let step = n
            .div_ceil(4 * rayon::current_num_threads())
            .max(ROWS_PER_TASK);
        let parts: Vec<Sorted> = (0..n)
            .step_by(step)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|start| {
                let rows = start..(start + step).min(n);
                let mut part = Sorted::new(rows.len());
                for i in rows {
                    let counted =
                        held.is_empty()
                            || !held
                                .holds(rows_timestamp[i].div_euclid(crate::time::MICROS_PER_DAY)
                                    as i32);
                    if !first[i] {
                        part.skipped.duplicate_event_uuids += u64::from(counted);
                        continue;
                    }
                    match p.is_valid(i).then(|| found[p.key(i)].as_ref()).flatten() {
                        None => part.skipped.events_unreadable_properties += u64::from(counted),
                        Some(Found { org: None, .. }) => {
                            part.skipped.events_without_org += u64::from(counted)
                        }
                        Some(Found {
                            org: Some(org),
                            url,
                        }) => {
                            part.keep.push(i as u32);
                            part.orgs.push(Some(org));
                            part.urls.push(url.as_deref());
                        }
                    }
                }
                part
            })
            .collect();
        let mut keep: Vec<u32> = Vec::with_capacity(n);
        let (mut orgs, mut urls) = (Vec::new(), Vec::new());
        for part in parts {
            self.skipped.duplicate_event_uuids += part.skipped.duplicate_event_uuids;
            self.skipped.events_unreadable_properties += part.skipped.events_unreadable_properties;
            self.skipped.events_without_org += part.skipped.events_without_org;
            keep.extend(part.keep);
            orgs.push(part.orgs);
            urls.push(part.urls);
        }
        if keep.is_empty() {
            return Ok(None);
        }
        let all = keep.len() == n;
        let take = |c: Coded| if all { c } else { c.take(&keep) };
        let timestamp = if all {
            rows.timestamp
        } else {
            let values: Vec<i64> = keep
                .iter()
                .map(|&r| rows.timestamp.value(r as usize))
                .collect();
            let validity = rows
                .timestamp
                .validity()
                .map(|v| keep.iter().map(|&r| v.get_bit(r as usize)).collect());
            PrimitiveArray::new(ArrowDataType::Int64, values.into(), validity)
        };
        Ok(Some(Chunk {
            timestamp,
            event: take(rows.event),
            person: take(rows.person),
            org: Interner::merge(orgs),
            url: Some(Interner::merge(urls)),
            weight: None,
            first: None,
        }))
    }
}

/// An export file's rows as read, before the dedupe.
pub(super) struct ExportRows {
    /// Microseconds since the epoch, UTC.
    pub(super) timestamp: PrimitiveArray<i64>,
    pub(super) event: Coded,
    pub(super) person: Coded,
    pub(super) uuid: Coded,
    pub(super) properties: Coded,
}

/// One row range's rows kept, their organizations and URLs coded, and its skips.
struct Sorted<'a> {
    keep: Vec<u32>,
    orgs: Interner<'a>,
    urls: Interner<'a>,
    skipped: Skipped,
}

impl Sorted<'_> {
    fn new(rows: usize) -> Self {
        Sorted {
            keep: Vec::with_capacity(rows),
            orgs: Interner::new(rows),
            urls: Interner::new(rows),
            skipped: Skipped::default(),
        }
    }
}

/// Strings coded as they come: equal strings get one key, in order of first sight.
struct Interner<'a> {
    key_of: PlHashMap<&'a str, u32>,
    values: Vec<&'a str>,
    /// A key per row, `NULL_KEY` for a null.
    keys: Vec<u32>,
    has_null: bool,
}

const NULL_KEY: u32 = u32::MAX;

impl<'a> Interner<'a> {
    fn new(rows: usize) -> Self {
        Interner {
            key_of: PlHashMap::default(),
            values: Vec::new(),
            keys: Vec::with_capacity(rows),
            has_null: false,
        }
    }

    fn push(&mut self, value: Option<&'a str>) {
        let Some(value) = value else {
            self.has_null = true;
            self.keys.push(NULL_KEY);
            return;
        };
        let key = self.intern(value);
        self.keys.push(key);
    }

    /// The key of `value`: its first sight's, or a new one.
    fn intern(&mut self, value: &'a str) -> u32 {
        let values = &mut self.values;
        *self.key_of.entry(value).or_insert_with(|| {
            values.push(value);
            (values.len() - 1) as u32
        })
    }

    /// The rows of `parts`, in order, as one coded column: each part's values
    /// looked up once in the merged dictionary, not each row's.
    fn merge(parts: Vec<Interner<'a>>) -> Coded {
        let rows = parts.iter().map(|p| p.keys.len()).sum();
        let mut all = Interner::new(0);
        let mut keys: Vec<u32> = Vec::with_capacity(rows);
        let has_null = parts.iter().any(|p| p.has_null);
        for part in &parts {
            let merged: Vec<u32> = part.values.iter().map(|&v| all.intern(v)).collect();
            // A null row points at key 0, given a value below if there is none.
            keys.extend(part.keys.iter().map(|&k| match k {
                NULL_KEY => 0,
                k => merged[k as usize],
            }));
        }
        let validity = has_null.then(|| {
            parts
                .iter()
                .flat_map(|p| p.keys.iter().map(|&k| k != NULL_KEY))
                .collect()
        });
        let mut values = MutableBinaryViewArray::<str>::with_capacity(all.values.len().max(1));
        for v in &all.values {
            values.push_value(*v);
        }
        if all.values.is_empty() {
            values.push_value("");
        }
        Coded {
            keys: keys.into(),
            values: values.freeze(),
            validity,
        }
    }
}

/// A canonical uuid (`8-4-4-4-12` hex digits, either case) as a number.
///
/// Read eight digits at a time as one word (`hex8`): a digit at a time, this was
/// 6.8% of the 10M export job's CPU (perf, session 24).
fn parse_uuid(text: &str) -> Option<u128> {
    let b = text.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as u64;
    let groups = [
        word(0),
        half(9) | half(14) << 32,
        half(19) | half(24) << 32,
        word(28),
    ];
    let mut n = 0u128;
    for g in groups {
        n = (n << 32) | hex8(g)? as u128;
    }
    Some(n)
}

/// The number written by eight hex digits (either case), the first digit in the
/// word's lowest byte (as loaded little-endian), or `None` if any byte is no hex
/// digit. Each byte's range checks are additions whose high bit says "at least":
/// with every byte below 0x80 no addition carries into the next byte.
fn hex8(w: u64) -> Option<u32> {
    const HIGH: u64 = each_byte(0x80);
    if w & HIGH != 0 {
        return None;
    }
    // '0'..='9': at least 0x30 and not at least 0x3A.
    let digit = (w + each_byte(0x80 - b'0')) & !(w + each_byte(0x80 - b'9' - 1)) & HIGH;
    // 'a'..='f' after lowering the case ('A' | 0x20 = 'a').
    let lower = w | each_byte(0x20);
    let letter = (lower + each_byte(0x80 - b'a')) & !(lower + each_byte(0x80 - b'f' - 1)) & HIGH;
    if digit | letter != HIGH {
        return None;
    }
    // A digit's low four bits are its value; a letter's are 1 to 6, its value less 9.
    let values = (w & each_byte(0x0F)) + (letter >> 7) * 9;
    // The first digit the most significant: pairs of bytes, then of halves, fold
    // into one nibble each.
    let v = values.swap_bytes();
    let v = ((v >> 4) | v) & 0x00FF_00FF_00FF_00FF;
    let v = ((v >> 8) | v) & 0x0000_FFFF_0000_FFFF;
    Some((((v >> 16) | v) & 0xFFFF_FFFF) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_parse_in_either_case_and_only_when_canonical() {
        let a = parse_uuid("0191f0b2-7a3e-7c4d-9e1f-0123456789ab").unwrap();
        assert_eq!(parse_uuid("0191F0B2-7A3E-7C4D-9E1F-0123456789AB"), Some(a));
        assert_eq!(a >> 96, 0x0191f0b2);
        assert_eq!(parse_uuid("0191f0b27a3e7c4d9e1f0123456789ab"), None);
        assert_eq!(parse_uuid("0191f0b2-7a3e-7c4d-9e1f-0123456789ag"), None);
        let mut r = ExportReader::new("organization", &Default::default());
        assert!(r.first_sight("0191f0b2-7a3e-7c4d-9e1f-0123456789ab"));
        assert!(!r.first_sight("0191F0B2-7A3E-7C4D-9E1F-0123456789AB"));
        assert!(r.first_sight("not-a-uuid"));
        assert!(!r.first_sight("not-a-uuid"));
    }

    /// The digit-at-a-time reading `parse_uuid` replaced: the reference.
    fn parse_uuid_by_digit(text: &str) -> Option<u128> {
        let b = text.as_bytes();
        if b.len() != 36 {
            return None;
        }
        let mut n = 0u128;
        for (i, &c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            n = (n << 4) | (c as char).to_digit(16)? as u128;
        }
        Some(n)
    }

    #[test]
    fn uuids_parse_as_digit_by_digit_whatever_byte_is_at_any_place() {
        let valid = [
            "0191f0b2-7a3e-7c4d-9e1f-0123456789ab",
            "ABCDEF01-2345-6789-abcd-ef0123456789",
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-FFFF-ffffffffffff",
        ];
        for text in valid {
            assert_eq!(parse_uuid(text), parse_uuid_by_digit(text), "{text}");
            assert!(parse_uuid(text).is_some(), "{text}");
            for place in 0..36 {
                for byte in 0..=255u8 {
                    let mut b = text.as_bytes().to_vec();
                    b[place] = byte;
                    // Bytes that make no UTF-8 text cannot reach the parse.
                    let Ok(t) = String::from_utf8(b) else {
                        continue;
                    };
                    assert_eq!(parse_uuid(&t), parse_uuid_by_digit(&t), "{t:?}");
                }
            }
        }
        // Every digit's value lands in its place.
        let n = parse_uuid("01234567-89ab-cdef-0123-456789ABCDEF").unwrap();
        assert_eq!(n, 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    }

    #[test]
    fn time_ordered_uuids_fall_in_hour_buckets_and_others_in_hashed_ones() {
        // 0x0191f0b27a3e = 1_726_320_114_238 ms (2024-09-14T13:21Z), hour 479_533.
        let v7 = parse_uuid("0191f0b2-7a3e-7c4d-9e1f-0123456789ab").unwrap();
        assert_eq!(bucket_of(v7), 479_533);
        // The same hour's last millisecond, and the next hour's first.
        let at = |ms: u64| (ms as u128) << 80;
        assert_eq!(bucket_of(at(479_271 * 3_600_000 + 3_599_999)), 479_271);
        assert_eq!(bucket_of(at(479_272 * 3_600_000)), 479_272);
        // Before 2010 or from 2100 on, a uuid is taken for random: a hashed bucket.
        for ms in [1_262_303_999_999u64, 4_102_444_800_000, 0xFFFF_FFFF_FFFF] {
            let b = bucket_of(at(ms) | 12345);
            assert!(
                (1 << 32..(1 << 32) + HASHED_BUCKETS).contains(&b),
                "{ms}: {b}"
            );
        }
        assert_eq!(
            bucket_of(at(1_262_304_000_000)),
            1_262_304_000_000 / 3_600_000
        );
        // A repeat is found whichever bucket, across calls and within one.
        let mut r = ExportReader::new("organization", &Default::default());
        let random = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
        let uuids = Coded::from_strings(polars_arrow::array::Utf8ViewArray::from_slice_values([
            "0191f0b2-7a3e-7c4d-9e1f-0123456789ab",
            random,
            random,
        ]));
        assert_eq!(r.first_sights(&uuids), [true, true, false]);
        assert!(!r.first_sight("0191F0B2-7A3E-7C4D-9E1F-0123456789AB"));
        assert!(!r.first_sight(random));
    }

    #[test]
    fn coded_parts_merge_into_one_dictionary_in_row_order() {
        let mut a = Interner::new(3);
        a.push(Some("x"));
        a.push(None);
        a.push(Some("y"));
        let mut b = Interner::new(3);
        b.push(Some("y"));
        b.push(Some("z"));
        b.push(Some("x"));
        let c = Interner::merge(vec![a, b]);
        let rows: Vec<Option<&str>> = (0..6)
            .map(|i| c.is_valid(i).then(|| c.value(c.key(i))))
            .collect();
        assert_eq!(
            rows,
            [Some("x"), None, Some("y"), Some("y"), Some("z"), Some("x")]
        );
        // One key per distinct string.
        assert_eq!(c.values.len(), 3);
        assert_eq!(c.key(0), c.key(5));
        // Every row null: still a value for key 0, every row invalid.
        let mut n = Interner::new(2);
        n.push(None);
        n.push(None);
        let c = Interner::merge(vec![n]);
        assert_eq!(c.null_count(), 2);
        assert_eq!(c.values.len(), 1);
    }
}
