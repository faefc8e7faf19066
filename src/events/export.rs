//! Rows of PostHog's batch export (`input::EventsShape::Posthog`), turned into the
//! pass's chunks: each `uuid` counted once across all files (the first row in file
//! order wins; re-runs and backfills export an event again), the organization and
//! URL read from `properties` (`crate::properties`), and the rows that cannot be
//! scored (properties that are not a JSON object, no organization) skipped and
//! counted for the data-quality section.

use polars::prelude::*;
use rayon::prelude::*;

use polars_arrow::array::{BinaryViewArray, MutableBinaryViewArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::datatypes::ArrowDataType;
use polars_buffer::Buffer;
use polars_parquet::read::RowGroupMetadata;

use super::pages::{self, PlainPages};
use super::{coded_column, i64_column, Chunk, Coded};
use crate::properties::{self, digit_bytes, each_byte, word, Found, Unreadable};

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

/// Rows whose properties are read on one task, at least.
const ROWS_PER_TASK: usize = 2048;

/// `0..n` cut into consecutive ranges for tasks on all threads: a few per thread (so
/// a slow thread does not hold the others at the end), of `ROWS_PER_TASK` at least.
fn task_ranges(n: usize) -> Vec<std::ops::Range<usize>> {
    let step = n
        .div_ceil(4 * rayon::current_num_threads())
        .max(ROWS_PER_TASK);
    (0..n).step_by(step).map(|s| s..(s + step).min(n)).collect()
}

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
    fn first_sight(&mut self, uuid: &str) -> PolarsResult<bool> {
        let column = Coded::from_strings(polars_arrow::array::Utf8ViewArray::from_slice_values([
            uuid,
        ]));
        Ok(self.first_sights(&Uuids::of_coded(&column)?)[0])
    }

    /// For each row, whether it is the first with its uuid (a null uuid always is).
    /// A uuid always falls in the same shard, and each shard takes its rows in row
    /// order, so the first in file order wins whatever the threads.
    fn first_sights(&mut self, uuids: &Uuids) -> Vec<bool> {
        let parsed = &uuids.parsed;
        let rows = parsed.len();
        let mut first = vec![true; rows];
        // Rows per bucket, in row order; each bucket's set taken out while its rows
        // are looked up.
        // An export is in ingestion order, so a row's bucket is nearly always the
        // row before's: looked up in the map only when it changes.
        let mut bucket_rows: Vec<(u64, Vec<u32>)> = Vec::new();
        let mut index_of: PlHashMap<u64, usize> = PlHashMap::default();
        let mut last = None;
        for (row, n) in parsed.iter().enumerate() {
            let Some(n) = n else { continue };
            let b = bucket_of(*n);
            let at = match last {
                Some((lb, at)) if lb == b => at,
                _ => *index_of.entry(b).or_insert_with(|| {
                    bucket_rows.push((b, Vec::new()));
                    bucket_rows.len() - 1
                }),
            };
            last = Some((b, at));
            bucket_rows[at].1.push(row as u32);
        }
        let mut work: Vec<(u64, PlHashSet<u128>, Vec<u32>)> = bucket_rows
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
        for (row, u) in &uuids.texts {
            if self.seen_text.contains(&**u) {
                first[*row as usize] = false;
            } else {
                self.seen_text.insert(u.to_string());
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
        let (uuid, properties) = rayon::join(
            || Uuids::of_coded(&uuid),
            || PropertiesRead::of_coded(&properties, &self.group_type),
        );
        self.chunk_of(ExportRows {
            timestamp,
            event,
            person,
            uuid: uuid?,
            properties: properties?,
        })
    }

    /// The chunk of an export file's rows in the flat columns the pass reads: the
    /// rows seen before dropped, and those whose properties name no organization;
    /// `None` when no row is left.
    pub(super) fn chunk_of(&mut self, rows: ExportRows) -> PolarsResult<Option<Chunk>> {
        let n = rows.timestamp.len();
        let first = self.first_sights(&rows.uuid);
        let held = &self.held;
        let rows_timestamp = rows.timestamp.values();
        let p = &rows.properties;
        // Row ranges sorted on all threads, then joined in row order.
        let parts: Vec<(Vec<u32>, Skipped)> = task_ranges(n)
            .into_par_iter()
            .map(|rows| {
                let mut keep = Vec::with_capacity(rows.len());
                let mut skipped = Skipped::default();
                for i in rows {
                    let counted =
                        held.is_empty()
                            || !held
                                .holds(rows_timestamp[i].div_euclid(crate::time::MICROS_PER_DAY)
                                    as i32);
                    if !first[i] {
                        skipped.duplicate_event_uuids += u64::from(counted);
                        continue;
                    }
                    match p.org[i] {
                        UNREADABLE => skipped.events_unreadable_properties += u64::from(counted),
                        NO_ORG => skipped.events_without_org += u64::from(counted),
                        _ => keep.push(i as u32),
                    }
                }
                (keep, skipped)
            })
            .collect();
        let mut keep: Vec<u32> = Vec::with_capacity(n);
        for (part, skipped) in parts {
            self.skipped.duplicate_event_uuids += skipped.duplicate_event_uuids;
            self.skipped.events_unreadable_properties += skipped.events_unreadable_properties;
            self.skipped.events_without_org += skipped.events_without_org;
            keep.extend(part);
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
        let (org, url) = rows.properties.kept(&keep);
        Ok(Some(Chunk {
            timestamp,
            event: take(rows.event),
            person: take(rows.person),
            org,
            url: Some(url),
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
    pub(super) uuid: Uuids,
    pub(super) properties: PropertiesRead,
}

/// Each row's uuid as read: a canonical uuid as a number; any other text whole.
pub(super) struct Uuids {
    /// Per row: the uuid, or `None` for a null or a text that is no canonical uuid.
    parsed: Vec<Option<u128>>,
    /// The rows whose uuid is a text that is no canonical uuid, in row order, with
    /// the text (rare).
    texts: Vec<(u32, Box<str>)>,
}

impl Uuids {
    /// Column `uuid` of a row group, read from its pages as they decompress when
    /// they are stored plainly (`pages::PlainPages`), else decoded whole first.
    pub(super) fn read(
        bytes: &Buffer<u8>,
        base: u64,
        rg: &RowGroupMetadata,
    ) -> PolarsResult<Uuids> {
        let Some(pages) = PlainPages::of(bytes, base, rg, "uuid")? else {
            return Uuids::of_coded(&pages::read_strings(bytes, base, rg, "uuid")?);
        };
        let parts = pages.read(
            |rows| Uuids {
                parsed: Vec::with_capacity(rows),
                texts: Vec::new(),
            },
            |part, value| part.push_bytes(value),
        )?;
        let mut all = Uuids {
            parsed: Vec::with_capacity(rg.num_rows()),
            texts: Vec::new(),
        };
        for part in parts {
            let offset = all.parsed.len() as u32;
            all.parsed.extend(part.parsed);
            all.texts
                .extend(part.texts.into_iter().map(|(r, t)| (r + offset, t)));
        }
        Ok(all)
    }

    /// The uuids of a decoded column.
    pub(super) fn of_coded(c: &Coded) -> PolarsResult<Uuids> {
        let mut all = Uuids {
            parsed: Vec::with_capacity(c.keys.len()),
            texts: Vec::new(),
        };
        for row in 0..c.keys.len() {
            all.push_bytes(c.is_valid(row).then(|| c.value(c.key(row)).as_bytes()))?;
        }
        Ok(all)
    }

    /// The next row's uuid, as bytes (of its page, or of a decoded string): only a
    /// text that is no canonical uuid is checked for UTF-8 (a canonical one is ASCII).
    fn push_bytes(&mut self, value: Option<&[u8]>) -> PolarsResult<()> {
        match value.map(|v| (v, parse_uuid(v))) {
            Some((v, None)) => {
                let text = simdutf8::basic::from_utf8(v)
                    .map_err(|_| polars_err!(ComputeError: "uuid: a value that is not UTF-8"))?;
                self.texts.push((self.parsed.len() as u32, text.into()));
                self.parsed.push(None);
            }
            Some((_, parsed)) => self.parsed.push(parsed),
            None => self.parsed.push(None),
        }
        Ok(())
    }
}

/// Each row's properties as read: the organization's key (or why it has none) and
/// the URL's key, into dictionaries of the distinct values. Read as the pages
/// decompress, each text is scanned (`crate::properties`) while it is in cache, and
/// its two values coded at once into a small dictionary of their own run of rows.
pub(super) struct PropertiesRead {
    /// Per row: the organization's key, or `UNREADABLE`, or `NO_ORG`.
    org: Vec<u32>,
    /// Per row: the URL's key, or `NULL_KEY` (none, or a row without organization).
    url: Vec<u32>,
    orgs: Utf8ViewArray,
    urls: Utf8ViewArray,
}

/// A row whose properties are null or not one JSON object.
const UNREADABLE: u32 = u32::MAX;
/// A row whose properties name no organization.
const NO_ORG: u32 = u32::MAX - 1;

impl PropertiesRead {
    /// Column `properties` of a row group, read from its pages as they decompress
    /// when they are stored plainly (`pages::PlainPages`), else decoded whole first.
    pub(super) fn read(
        bytes: &Buffer<u8>,
        base: u64,
        rg: &RowGroupMetadata,
        group_type: &str,
    ) -> PolarsResult<PropertiesRead> {
        let Some(pages) = PlainPages::of(bytes, base, rg, "properties")? else {
            let coded = pages::read_strings(bytes, base, rg, "properties")?;
            return PropertiesRead::of_coded(&coded, group_type);
        };
        let parts = pages.read(PropertiesPart::new, |part, value| {
            let found = value.map(|v| {
                properties::extract_bytes(v, group_type)
                    .map_err(|_| polars_err!(ComputeError: "properties: a value that is not UTF-8"))
            });
            part.push_found(found.transpose()?);
            Ok(())
        })?;
        PropertiesPart::merge(parts)
    }

    /// The properties of a decoded column: each distinct text read once.
    pub(super) fn of_coded(p: &Coded, group_type: &str) -> PolarsResult<PropertiesRead> {
        let parts: Vec<PropertiesPart> = task_ranges(p.values.len())
            .into_par_iter()
            .map(|keys| {
                let mut part = PropertiesPart::new(keys.len());
                for k in keys {
                    part.push(Some(p.value(k)), group_type);
                }
                part
            })
            .collect();
        let by_text = PropertiesPart::merge(parts)?;
        let rows = p.keys.len();
        let mut read = PropertiesRead {
            org: Vec::with_capacity(rows),
            url: Vec::with_capacity(rows),
            orgs: by_text.orgs,
            urls: by_text.urls,
        };
        for row in 0..rows {
            let (org, url) = match p.is_valid(row) {
                true => (by_text.org[p.key(row)], by_text.url[p.key(row)]),
                false => (UNREADABLE, NULL_KEY),
            };
            read.org.push(org);
            read.url.push(url);
        }
        Ok(read)
    }

    /// The organizations and URLs of rows `keep` (none of them without organization).
    fn kept(self, keep: &[u32]) -> (Coded, Coded) {
        let org: Vec<u32> = keep.iter().map(|&r| self.org[r as usize]).collect();
        let url: Vec<u32> = keep.iter().map(|&r| self.url[r as usize]).collect();
        let validity = url
            .contains(&NULL_KEY)
            .then(|| url.iter().map(|&k| k != NULL_KEY).collect());
        // A null row points at key 0, given a value if there is none.
        let url = url
            .into_iter()
            .map(|k| if k == NULL_KEY { 0 } else { k })
            .collect();
        let urls = if self.urls.len() == 0 {
            Utf8ViewArray::from_slice_values([""])
        } else {
            self.urls
        };
        (
            Coded {
                keys: org.into(),
                values: self.orgs,
                validity: None,
            },
            Coded {
                keys: url,
                values: urls,
                validity,
            },
        )
    }
}

/// The properties of one run of rows, read: as `PropertiesRead`, with dictionaries
/// of the run's own.
struct PropertiesPart {
    org: Vec<u32>,
    url: Vec<u32>,
    orgs: Interner,
    urls: Interner,
}

impl PropertiesPart {
    fn new(rows: usize) -> Self {
        PropertiesPart {
            org: Vec::with_capacity(rows),
            url: Vec::with_capacity(rows),
            orgs: Interner::default(),
            urls: Interner::default(),
        }
    }

    /// The next row's properties text (`None`: null).
    fn push(&mut self, text: Option<&str>, group_type: &str) {
        // A `str` is UTF-8: `extract_bytes` finds nothing to refuse.
        let found = text.map(|t| {
            properties::extract_bytes(t.as_bytes(), group_type).unwrap_or(Err(Unreadable))
        });
        self.push_found(found);
    }

    /// The next row's properties as `crate::properties` read them (`None`: null).
    fn push_found(&mut self, found: Option<Result<Found<[u8]>, Unreadable>>) {
        let (org, url) = match found {
            None | Some(Err(_)) => (UNREADABLE, NULL_KEY),
            Some(Ok(Found { org: None, .. })) => (NO_ORG, NULL_KEY),
            Some(Ok(Found {
                org: Some(org),
                url,
            })) => (
                self.orgs.intern(&org),
                url.map_or(NULL_KEY, |u| self.urls.intern(&u)),
            ),
        };
        self.org.push(org);
        self.url.push(url);
    }

    /// The parts' rows, in order, with one dictionary of each: each part's distinct
    /// values looked up once in the joined dictionaries, not each row's.
    fn merge(parts: Vec<PropertiesPart>) -> PolarsResult<PropertiesRead> {
        let rows = parts.iter().map(|p| p.org.len()).sum();
        let (mut orgs, mut urls) = (Interner::default(), Interner::default());
        let (mut org, mut url) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        for part in parts {
            let org_keys = orgs.absorb(&part.orgs);
            let url_keys = urls.absorb(&part.urls);
            org.extend(part.org.iter().map(|&k| match k {
                UNREADABLE | NO_ORG => k,
                k => org_keys[k as usize],
            }));
            url.extend(part.url.iter().map(|&k| match k {
                NULL_KEY => k,
                k => url_keys[k as usize],
            }));
        }
        Ok(PropertiesRead {
            org,
            url,
            orgs: orgs.into_array()?,
            urls: urls.into_array()?,
        })
    }
}

/// Strings coded as they come: equal strings get one key, in order of first sight.
///
/// Hand-written (an open-addressed table over one text of the values, with a hash
/// and a compare that read whole words): every event's organization goes through
/// here, and a `PlHashMap<Box<str>, u32>` cost 10% of the 10M export job's CPU
/// (perf, session 30: the hasher, then a `memcmp` call per lookup).
#[derive(Default)]
struct Interner {
    /// The values' bytes (UTF-8 text: `properties::extract_bytes`), one after another.
    text: Vec<u8>,
    /// Where each value starts in `text`, by key, and one past the last value's end.
    starts: Vec<usize>,
    /// Each value's hash (`hash_bytes`), by key.
    hashes: Vec<u64>,
    /// Per slot, 0 when empty, else the key + 1 in the low half and the high half of
    /// its value's hash in the high half (one load tells most misses from a hit); a
    /// power of two long, at most half full.
    slots: Vec<u64>,
}

const NULL_KEY: u32 = u32::MAX;

impl Interner {
    /// The key of `value`: its first sight's, or a new one.
    fn intern(&mut self, value: &[u8]) -> u32 {
        self.intern_hashed(value, hash_bytes(value))
    }

    #[inline]
    fn intern_hashed(&mut self, value: &[u8], hash: u64) -> u32 {
        if 2 * (self.len() + 1) > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let tag = hash & !0xFFFF_FFFF;
        let mut i = hash as usize & mask;
        loop {
            match self.slots[i] {
                0 => break,
                s if s & !0xFFFF_FFFF == tag => {
                    let k = (s as u32 - 1) as usize;
                    if same_bytes(self.value(k), value) {
                        return k as u32;
                    }
                }
                _ => {}
            }
            i = (i + 1) & mask;
        }
        let k = self.len();
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        self.text.extend_from_slice(value);
        self.starts.push(self.text.len());
        self.hashes.push(hash);
        self.slots[i] = tag | (k as u64 + 1);
        k as u32
    }

    /// Twice the slots (64 at first), every key placed again.
    fn grow(&mut self) {
        let len = (2 * self.slots.len()).max(64);
        self.slots = vec![0; len];
        let mask = len - 1;
        for (k, &hash) in self.hashes.iter().enumerate() {
            let mut i = hash as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = (hash & !0xFFFF_FFFF) | (k as u64 + 1);
        }
    }

    fn len(&self) -> usize {
        self.hashes.len()
    }

    #[inline]
    fn value(&self, key: usize) -> &[u8] {
        &self.text[self.starts[key]..self.starts[key + 1]]
    }

    /// `other`'s values coded here (each in order of its first sight there); their
    /// keys here, by their keys there.
    fn absorb(&mut self, other: &Interner) -> Vec<u32> {
        (0..other.len())
            .map(|k| self.intern_hashed(other.value(k), other.hashes[k]))
            .collect()
    }

    /// The values in key order, as text: checked for UTF-8 here, once per distinct
    /// value (they are; a value that were not would be an error, not a panic).
    fn into_array(self) -> PolarsResult<Utf8ViewArray> {
        let mut array = MutableBinaryViewArray::<[u8]>::with_capacity(self.len());
        for k in 0..self.len() {
            array.push_value(self.value(k));
        }
        BinaryViewArray::from(array).to_utf8view()
    }
}

/// A 64-bit hash of every byte, a word at a time (the last word overlapping the one
/// before when the length is no multiple of eight).
fn hash_bytes(b: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mix = |h: u64, w: u64| (h ^ w).wrapping_mul(K).rotate_left(31);
    let mut h = (b.len() as u64).wrapping_mul(K);
    if b.len() >= 8 {
        let mut words = b.chunks_exact(8);
        for w in &mut words {
            h = mix(h, word(w));
        }
        if !words.remainder().is_empty() {
            h = mix(h, word(&b[b.len() - 8..]));
        }
    } else if b.len() >= 4 {
        h = mix(h, half(&b[..4]) | half(&b[b.len() - 4..]) << 32);
    } else if !b.is_empty() {
        h = mix(
            h,
            u64::from(b[0]) | u64::from(b[b.len() / 2]) << 8 | u64::from(b[b.len() - 1]) << 16,
        );
    }
    let p = (h ^ (h >> 29)).wrapping_mul(K);
    // The product's high half is its best mixed: folded into the low half too,
    // which places a value in the table (its high half tells values apart there).
    p ^ (p >> 32)
}

/// Whether two byte strings are equal, compared a word at a time (inline; a call to
/// `memcmp` costs more than the compare for the short values coded here).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if n >= 8 {
        let whole = a
            .chunks_exact(8)
            .zip(b.chunks_exact(8))
            .all(|(x, y)| word(x) == word(y));
        whole && word(&a[n - 8..]) == word(&b[n - 8..])
    } else if n >= 4 {
        half(&a[..4]) == half(&b[..4]) && half(&a[n - 4..]) == half(&b[n - 4..])
    } else {
        a == b
    }
}

/// The first four bytes, as the low half of a word.
fn half(b: &[u8]) -> u64 {
    u64::from(u32::from_le_bytes(b[..4].try_into().expect("four bytes")))
}

/// A canonical uuid (`8-4-4-4-12` hex digits, either case) as a number.
///
/// Read eight digits at a time as one word (`hex8`): a digit at a time, this was
/// 6.8% of the 10M export job's CPU (perf, session 24).
fn parse_uuid(b: &[u8]) -> Option<u128> {
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let groups = [
        word(b),
        half(&b[9..]) | half(&b[14..]) << 32,
        half(&b[19..]) | half(&b[24..]) << 32,
        word(&b[28..]),
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
    let digit = digit_bytes(w);
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
        let a = parse_uuid(b"0191f0b2-7a3e-7c4d-9e1f-0123456789ab").unwrap();
        assert_eq!(parse_uuid(b"0191F0B2-7A3E-7C4D-9E1F-0123456789AB"), Some(a));
        assert_eq!(a >> 96, 0x0191f0b2);
        assert_eq!(parse_uuid(b"0191f0b27a3e7c4d9e1f0123456789ab"), None);
        assert_eq!(parse_uuid(b"0191f0b2-7a3e-7c4d-9e1f-0123456789ag"), None);
        let mut r = ExportReader::new("organization", &Default::default());
        assert!(r
            .first_sight("0191f0b2-7a3e-7c4d-9e1f-0123456789ab")
            .unwrap());
        assert!(!r
            .first_sight("0191F0B2-7A3E-7C4D-9E1F-0123456789AB")
            .unwrap());
        assert!(r.first_sight("not-a-uuid").unwrap());
        assert!(!r.first_sight("not-a-uuid").unwrap());
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
            assert_eq!(
                parse_uuid(text.as_bytes()),
                parse_uuid_by_digit(text),
                "{text}"
            );
            assert!(parse_uuid(text.as_bytes()).is_some(), "{text}");
            for place in 0..36 {
                for byte in 0..=255u8 {
                    let mut b = text.as_bytes().to_vec();
                    b[place] = byte;
                    // Bytes that make no UTF-8 text cannot reach the parse.
                    let Ok(t) = String::from_utf8(b) else {
                        continue;
                    };
                    assert_eq!(parse_uuid(t.as_bytes()), parse_uuid_by_digit(&t), "{t:?}");
                }
            }
        }
        // Every digit's value lands in its place.
        let n = parse_uuid(b"01234567-89ab-cdef-0123-456789ABCDEF").unwrap();
        assert_eq!(n, 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    }

    #[test]
    fn time_ordered_uuids_fall_in_hour_buckets_and_others_in_hashed_ones() {
        // 0x0191f0b27a3e = 1_726_320_114_238 ms (2024-09-14T13:21Z), hour 479_533.
        let v7 = parse_uuid(b"0191f0b2-7a3e-7c4d-9e1f-0123456789ab").unwrap();
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
        assert_eq!(
            r.first_sights(&Uuids::of_coded(&uuids).unwrap()),
            [true, true, false]
        );
        assert!(!r
            .first_sight("0191F0B2-7A3E-7C4D-9E1F-0123456789AB")
            .unwrap());
        assert!(!r.first_sight(random).unwrap());
    }

    #[test]
    fn the_interner_gives_equal_strings_one_key_whatever_their_length() {
        // Every length to 40, each string also with one byte changed at every place
        // (strings that share all words but one, or differ only in an overlapping
        // tail), interned twice, against a map; enough to grow the table many times.
        let mut strings = Vec::new();
        for len in 0..=40usize {
            let base: String = (0..len)
                .map(|j| (b'a' + (j * 7 % 26) as u8) as char)
                .collect();
            for at in 0..len {
                let mut b = base.clone().into_bytes();
                b[at] = b'Z';
                strings.push(String::from_utf8(b).unwrap());
            }
            strings.push(base);
        }
        let mut interner = Interner::default();
        let mut reference = std::collections::HashMap::new();
        for s in strings.iter().chain(strings.iter().rev()) {
            let next = reference.len() as u32;
            let want = *reference.entry(s.clone()).or_insert(next);
            assert_eq!(interner.intern(s.as_bytes()), want, "{s:?}");
        }
        assert_eq!(interner.len(), reference.len());
        for (s, &k) in &reference {
            assert_eq!(interner.value(k as usize), s.as_bytes());
        }
        // Another interner's values absorbed: known ones keep their keys, new ones
        // follow in order.
        let mut other = Interner::default();
        for s in ["new-1", strings[5].as_str(), "new-2", ""] {
            other.intern(s.as_bytes());
        }
        let n = interner.len() as u32;
        assert_eq!(
            interner.absorb(&other),
            [n, reference[&strings[5]], n + 1, reference[""]]
        );
        let array = interner.into_array().unwrap();
        assert_eq!(array.value(n as usize + 1), "new-2");
    }

    /// Row `i`'s organization (or why it has none) and URL, as strings.
    fn row(r: &PropertiesRead, i: usize) -> (String, Option<String>) {
        let org = match r.org[i] {
            UNREADABLE => "(unreadable)".to_string(),
            NO_ORG => "(no org)".to_string(),
            k => r.orgs.value(k as usize).to_string(),
        };
        let url = (r.url[i] != NULL_KEY).then(|| r.urls.value(r.url[i] as usize).to_string());
        (org, url)
    }

    #[test]
    fn pages_read_as_plain_give_what_the_decoded_columns_give() {
        // Written by pyarrow (tools/fixtures/make_export_pages.py): `uuid` and
        // `properties` stored plainly in many small pages, as data page versions 1
        // and 2, with scattered nulls and a long run of them.
        for name in ["export_pages_v1.parquet", "export_pages_v2.parquet"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name);
            let mut file = std::fs::File::open(&path).unwrap();
            let metadata = polars_parquet::read::read_metadata(&mut file).unwrap();
            let rg = &metadata.row_groups[0];
            let (bytes, base) = pages::read_row_group(&path, rg).unwrap();
            for column in ["uuid", "properties"] {
                let plain = PlainPages::of(&bytes, base, rg, column).unwrap();
                let n = plain.map(|p| p.pages());
                assert!(n.is_some_and(|n| n > 10), "{name}: {column}: {n:?}");
            }
            let read = PropertiesRead::read(&bytes, base, rg, "organization").unwrap();
            let coded = pages::read_strings(&bytes, base, rg, "properties").unwrap();
            let whole = PropertiesRead::of_coded(&coded, "organization").unwrap();
            assert_eq!(read.org.len(), 3000);
            for i in 0..3000 {
                assert_eq!(row(&read, i), row(&whole, i), "{name}: row {i}");
            }
            // By the fixture's rules: null (row 0 and rows 1200-1499), malformed
            // (17), no `$groups` (26), a URL on every third row.
            let rows = [0, 1, 3, 17, 26, 1300];
            let want = [
                ("(unreadable)", None),
                ("org-1", None),
                ("org-3", Some("https://example.com/docs/page-3?q=\u{e9}")),
                ("(unreadable)", None),
                ("(no org)", None),
                ("(unreadable)", None),
            ];
            for (&i, (org, url)) in rows.iter().zip(want) {
                assert_eq!(
                    row(&read, i),
                    (org.to_string(), url.map(str::to_string)),
                    "{i}"
                );
            }

            let uuids = Uuids::read(&bytes, base, rg).unwrap();
            let coded = pages::read_strings(&bytes, base, rg, "uuid").unwrap();
            let whole = Uuids::of_coded(&coded).unwrap();
            assert_eq!(uuids.parsed, whole.parsed, "{name}");
            assert_eq!(uuids.texts, whole.texts, "{name}");
            // Null (0, 2000-2299), not canonical (23), a repeat of the row before (29).
            assert_eq!(uuids.parsed[0], None);
            assert_eq!(uuids.parsed[2100], None);
            assert_eq!(uuids.texts[0], (23, "not-a-uuid-3".into()));
            assert_eq!(
                uuids.parsed[1],
                Some(0x0191f0b2_7a3e_7c4d_9e1f_000000000001)
            );
            assert_eq!(uuids.parsed[29], uuids.parsed[28]);
            let mut r = ExportReader::new("organization", &Default::default());
            let first = r.first_sights(&uuids);
            assert!(first[28] && !first[29] && first[30]);
        }
    }

    /// A properties text naming organization `org` and, when given, URL `url`.
    fn text(org: &str, url: Option<&str>) -> String {
        match url {
            Some(u) => format!(r#"{{"$groups":{{"organization":"{org}"}},"$current_url":"{u}"}}"#),
            None => format!(r#"{{"$groups":{{"organization":"{org}"}}}}"#),
        }
    }

    #[test]
    fn parts_merge_into_one_dictionary_in_row_order() {
        let (x, y, z) = (
            text("x", Some("/a")),
            text("y", None),
            text("z", Some("/b")),
        );
        let mut a = PropertiesPart::new(4);
        for t in [Some(x.as_str()), None, Some(y.as_str()), Some("{")] {
            a.push(t, "organization");
        }
        let mut b = PropertiesPart::new(4);
        for t in [
            y.as_str(),
            z.as_str(),
            r#"{"$current_url":"/a"}"#,
            x.as_str(),
        ] {
            b.push(Some(t), "organization");
        }
        let read = PropertiesPart::merge(vec![a, b]).unwrap();
        // Unreadable (null, malformed) and organization-less rows keep their marks.
        assert_eq!(read.org[1], UNREADABLE);
        assert_eq!(read.org[3], UNREADABLE);
        assert_eq!(read.org[6], NO_ORG);
        // One key per distinct string, in order of first sight across the parts.
        assert_eq!(read.orgs.len(), 3);
        assert_eq!(read.urls.len(), 2);
        let (org, url) = read.kept(&[0, 2, 4, 5, 7]);
        let rows: Vec<(&str, Option<&str>)> = (0..5)
            .map(|i| {
                (
                    org.value(org.key(i)),
                    url.is_valid(i).then(|| url.value(url.key(i))),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("x", Some("/a")),
                ("y", None),
                ("y", None),
                ("z", Some("/b")),
                ("x", Some("/a"))
            ]
        );
        assert_eq!(org.key(0), org.key(4));
        assert_eq!(url.key(0), url.key(4));
        assert_eq!(org.null_count(), 0);
        // No row with a URL: still a value for key 0, every row invalid.
        let mut n = PropertiesPart::new(2);
        n.push(Some(&y), "organization");
        n.push(Some(&y), "organization");
        let (_, url) = PropertiesPart::merge(vec![n]).unwrap().kept(&[0, 1]);
        assert_eq!(url.null_count(), 2);
        assert_eq!(url.values.len(), 1);
    }
}
