//! The one pass over the events (SPEC 2, 3): the event export is read once, streaming,
//! and rolled up to one row per member and UTC day, with a count per event set and URL
//! class the model looks at and the latest instant. Every metric, indicator, user
//! signal and trend is computed from this rollup: windows are whole days (as_of is a
//! midnight), counts are sums of the count columns, "days since" uses `last_us`, so
//! nothing needs the raw rows again.
//!
//! The rollup is a hand-written kernel over the Arrow arrays of each streamed chunk,
//! not a polars `group_by` on the string keys: the member is found by two hash lookups,
//! the event's sets by one, and each (member, day) row is a slot of plain column
//! vectors. That keeps the pass close to the cost of reading the columns (issue 5).
//! Events of people who are not members of their org are only counted (SPEC 2).
//!
//! Also finds the nulls and unreadable pages of the events input that the per-file
//! schema checks could not see, and blames the file.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::mpsc::sync_channel;

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::InputError;
use crate::input::Inputs;
use crate::model::Model;
use crate::time::MICROS_PER_DAY;

/// The member events, rolled up to one row per member and UTC day, plus what the pass
/// counted of all events.
pub struct Rollup {
    /// Exactly one row per (member, day) with an event. Columns: `member` (u32, the
    /// member's row in `members`), `day` (i32 days since the epoch), `n` (events),
    /// `last_us` (latest instant), `n__<set>` for every counted event set (and
    /// `feature_use`), plus `last__<set>` for the sets whose latest instant an
    /// indicator reads. (Counted sets: see `counted_sets`.) Only members' events
    /// (SPEC 2), at any date.
    pub frame: DataFrame,
    /// One row per (member, day) with a docs or billing visit (a subset of `frame`'s
    /// rows): `member`, `day`, `n__docs_visit`, `n__billing_visit` and
    /// `n__docs__<product>` per product. Kept apart because few rows have a visit.
    pub visits: DataFrame,
    /// The members: row i holds member number i's `org_id` and `distinct_id`, sorted.
    pub members: DataFrame,
    /// Events read, of anyone.
    pub rows: u64,
    /// The latest event instant, of anyone, for the default as_of.
    pub latest_us: Option<i64>,
    /// Events of anyone per UTC day (for the data-quality count of late events).
    pub events_per_day: BTreeMap<i32, u64>,
    /// Events whose (org_id, distinct_id) is in no member row.
    pub unknown_member_events: u64,
}

pub const DOCS_VISITS: &str = "n__docs_visit";
pub const BILLING_VISITS: &str = "n__billing_visit";

/// The rollup column counting the events of a named set (or `feature_use`).
pub fn set_count(set: &str) -> String {
    format!("n__{set}")
}

/// The rollup column counting members' visits to a product's docs.
pub fn product_docs_visits(product: &str) -> String {
    format!("n__docs__{product}")
}

/// The rollup column holding the latest instant of an event set.
pub fn latest_of_set(set: &str) -> String {
    format!("last__{set}")
}

/// Sets the stages count by name (query failures, lost insights, the users table).
pub const SETS_COUNTED_BY_NAME: [&str; 4] = [
    "query_ok",
    "query_failed",
    "insight_started",
    "insight_saved",
];

/// Every set the rollup counts: those the metrics and products name, and those the
/// stages count by name. (Sets used only inside another column, like `pageview`, are
/// not counted alone.)
fn counted_sets(model: &Model) -> Vec<String> {
    let mut sets: Vec<String> = SETS_COUNTED_BY_NAME.iter().map(|s| s.to_string()).collect();
    sets.extend(model.metrics.values().filter_map(|m| m.event_set.clone()));
    sets.extend(model.products.values().filter_map(|p| p.engagement.clone()));
    first_of_each(sets)
}

/// The names in order of first appearance, each once.
fn first_of_each(names: Vec<String>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        if !seen.contains(&n) {
            seen.push(n);
        }
    }
    seen
}

/// The sets whose latest instant some indicator reads.
fn latest_sets(model: &Model) -> Vec<String> {
    let mut sets: Vec<String> = model
        .indicators
        .values()
        .filter_map(|i| i.event_set.clone())
        .collect();
    sets.sort();
    sets.dedup();
    sets
}

/// The URL path (SPEC 3): scheme, host, query string and fragment removed. The same
/// as the regex `^(?:[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)?([^?#]*)`, byte by byte (the
/// delimiters are ASCII, so every cut is on a character boundary).
pub fn url_path(url: &str) -> &str {
    let b = url.as_bytes();
    let mut start = 0;
    if b.first().is_some_and(u8::is_ascii_alphabetic) {
        let scheme_end = b[1..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-')))
            .map_or(b.len(), |p| p + 1);
        if b[scheme_end..].starts_with(b"://") {
            let host = scheme_end + 3;
            start = b[host..]
                .iter()
                .position(|c| matches!(c, b'/' | b'?' | b'#'))
                .map_or(b.len(), |p| host + p);
        }
    }
    let rest = &url[start..];
    &rest[..rest.find(['?', '#']).unwrap_or(rest.len())]
}

/// What one event name adds to its (member, day) row beyond `n` and `last_us`.
struct EventClass {
    /// Count columns (indexes into `Layout::counts`) it adds one to.
    counts: Vec<usize>,
    /// Latest-instant columns (indexes into `Layout::latest`) it can raise.
    latest: Vec<usize>,
    pageview: bool,
    billing_shown: bool,
}

/// Visit bits of `MemberRow::visits`.
const VISIT_DOCS: usize = 0;
const VISIT_BILLING: usize = 1;
const VISIT_PRODUCTS: usize = 2;

/// The most products the visit bits hold (model validation enforces it).
pub const MAX_PRODUCTS: usize = 64 - VISIT_PRODUCTS;

/// The rollup's columns, decided once from the model.
struct Layout {
    /// Count column names of the (member, day) rows: one per counted set.
    counts: Vec<String>,
    /// Count column names of the visits frame, in visit-bit order: docs visits,
    /// billing visits, then one per product's docs (`VISIT_PRODUCTS + j`).
    visits: Vec<String>,
    /// Each product's docs path prefix, in visit-bit order.
    product_docs: Vec<String>,
    docs_prefix: String,
    billing_prefix: String,
    /// Latest-instant column names.
    latest: Vec<String>,
    /// Event name → index into `classes`; names the model does not mention map to none.
    class_of: PlHashMap<String, usize>,
    classes: Vec<EventClass>,
}

impl Layout {
    fn new(model: &Model) -> Layout {
        let sets = counted_sets(model);
        let counts: Vec<String> = sets.iter().map(|s| set_count(s)).collect();
        let mut visits = vec![DOCS_VISITS.to_string(), BILLING_VISITS.to_string()];
        let mut product_docs = Vec::new();
        for (name, p) in &model.products {
            product_docs.push(p.docs_prefix.clone());
            visits.push(product_docs_visits(name));
        }
        let latest_sets = latest_sets(model);
        let latest = latest_sets.iter().map(|s| latest_of_set(s)).collect();

        let mut names: Vec<String> = sets
            .iter()
            .chain(&latest_sets)
            .chain(&["pageview".to_string(), "billing_shown".to_string()])
            .flat_map(|s| model.events_of(s))
            .collect();
        names.sort();
        names.dedup();
        let mut class_of = PlHashMap::new();
        let mut classes = Vec::with_capacity(names.len());
        for name in names {
            let in_set = |set: &str| model.events_of(set).contains(&name);
            classes.push(EventClass {
                counts: (0..sets.len()).filter(|&i| in_set(&sets[i])).collect(),
                latest: (0..latest_sets.len())
                    .filter(|&i| in_set(&latest_sets[i]))
                    .collect(),
                pageview: in_set("pageview"),
                billing_shown: in_set("billing_shown"),
            });
            class_of.insert(name, classes.len() - 1);
        }
        Layout {
            counts,
            visits,
            product_docs,
            docs_prefix: model.paths.docs_prefix.clone(),
            billing_prefix: model.paths.billing_prefix.clone(),
            latest,
            class_of,
            classes,
        }
    }
}

/// The distinct (org_id, distinct_id) pairs of the members table, sorted; a member's
/// index in this frame is its number in the rollup.
fn member_keys(inputs: &Inputs) -> PolarsResult<DataFrame> {
    inputs
        .members
        .clone()
        .lazy()
        .select([col("org_id"), col("distinct_id")])
        .unique(None, UniqueKeepStrategy::Any)
        .sort(["org_id", "distinct_id"], Default::default())
        .collect()
}

/// Finds a member's number from its org_id and distinct_id. One open-addressing table
/// of 8-byte entries (a 32-bit tag from the hash, and where the member's key starts),
/// each match checked against the member's key bytes, which also hold its number: a
/// lookup touches two cache lines (the entry and the key), and the pass prefetches
/// the entries of a block of rows before probing them, so the memory waits overlap.
/// (Per-org maps of `String`s cost four dependent cache misses per row; with 50M
/// events most rows miss every cache, so the table is kept small.)
struct MemberIndex {
    hasher: PlRandomState,
    /// Power-of-two table, linear probing; `EMPTY` marks an empty entry, any other
    /// entry is `tag << 32 | key`.
    table: Vec<u64>,
    mask: usize,
    /// Each member's key, at its entry's `key`: the member's number, org_id length and
    /// distinct_id length (u32, little-endian), then the bytes of both.
    keys: Vec<u8>,
    members: usize,
}

const EMPTY: u64 = u64::MAX;
/// Bytes before a key's strings: member number and the two lengths.
const KEY_HEADER: usize = 12;

/// The tag of a hash: its high half (the low bits choose the entry).
fn tag(hash: u64) -> u64 {
    hash >> 32
}

/// Rows whose table entries are prefetched together.
const LOOKUP_BLOCK: usize = 16;
/// How many rows ahead the URL of a row is prefetched.
const URL_AHEAD: usize = 16;

impl MemberIndex {
    fn new(keys: &DataFrame) -> PolarsResult<MemberIndex> {
        let orgs = keys.column("org_id")?.str()?;
        let people = keys.column("distinct_id")?.str()?;
        let size = (keys.height() * 2).next_power_of_two().max(16);
        let mut index = MemberIndex {
            hasher: PlRandomState::default(),
            table: {
                let mut table = with_huge_pages(size);
                table.resize(size, EMPTY);
                table
            },
            mask: size - 1,
            keys: with_huge_pages(
                KEY_HEADER * keys.height()
                    + orgs.iter().map(|o| o.map_or(0, str::len)).sum::<usize>()
                    + people.iter().map(|p| p.map_or(0, str::len)).sum::<usize>(),
            ),
            members: keys.height(),
        };
        for (i, (org, person)) in orgs.iter().zip(people.iter()).enumerate() {
            let (org, person) = (org.unwrap_or_default(), person.unwrap_or_default());
            let key = u32::try_from(index.keys.len())
                .ok()
                .filter(|&k| k != u32::MAX)
                .ok_or_else(|| polars_err!(ComputeError: "more than 4 GB of member keys"))?;
            for n in [i, org.len(), person.len()] {
                index.keys.extend_from_slice(&(n as u32).to_le_bytes());
            }
            index.keys.extend_from_slice(org.as_bytes());
            index.keys.extend_from_slice(person.as_bytes());
            let hash = index.hash(org, person);
            let mut pos = hash as usize & index.mask;
            while index.table[pos] != EMPTY {
                pos = (pos + 1) & index.mask;
            }
            index.table[pos] = tag(hash) << 32 | u64::from(key);
        }
        Ok(index)
    }

    fn count(&self) -> usize {
        self.members
    }

    fn hash(&self, org: &str, person: &str) -> u64 {
        self.hasher.hash_one((org, person))
    }

    /// The member whose key starts at `key`, if the key is (org, person).
    fn member_if(&self, key: u32, org: &str, person: &str) -> Option<u32> {
        let k = &self.keys[key as usize..];
        let word = |at: usize| u32::from_le_bytes([k[at], k[at + 1], k[at + 2], k[at + 3]]);
        let (org_len, person_len) = (word(4) as usize, word(8) as usize);
        let strings = &k[KEY_HEADER..];
        (org_len == org.len()
            && person_len == person.len()
            && &strings[..org_len] == org.as_bytes()
            && &strings[org_len..org_len + person_len] == person.as_bytes())
        .then(|| word(0))
    }

    /// The member of (org, person), or `NONE`, probing from entry `pos` on.
    fn find_from(&self, mut pos: usize, hash: u64, org: &str, person: &str) -> u32 {
        loop {
            let e = self.table[pos];
            if e == EMPTY {
                return NONE;
            }
            if e >> 32 == tag(hash) {
                if let Some(member) = self.member_if(e as u32, org, person) {
                    return member;
                }
            }
            pos = (pos + 1) & self.mask;
        }
    }

    fn find_hashed(&self, hash: u64, org: &str, person: &str) -> u32 {
        self.find_from(hash as usize & self.mask, hash, org, person)
    }

    /// The member (or `NONE`) of each row in `rows`, appended to `out`. A block of
    /// rows at a time, in three steps whose memory loads overlap across the block:
    /// hash and prefetch the table entry, read the entry and prefetch the member's
    /// key, compare keys (and probe further on a collision). The next block's id
    /// strings are prefetched before this block is hashed.
    fn find_rows(&self, a: &ChunkArrays, rows: std::ops::Range<usize>, out: &mut Vec<u32>) {
        let mut hashes = [0u64; LOOKUP_BLOCK];
        // Each row's ids, found in its view once for hashing and comparing both.
        let mut ids = [("", ""); LOOKUP_BLOCK];
        for start in rows.clone().step_by(LOOKUP_BLOCK) {
            let block = start..(start + LOOKUP_BLOCK).min(rows.end);
            // The next block's strings, for hashing them then.
            for i in block.end..(block.end + LOOKUP_BLOCK).min(rows.end) {
                prefetch_str(a.org, i);
                prefetch_str(a.person, i);
            }
            for ((h, id), i) in hashes.iter_mut().zip(ids.iter_mut()).zip(block.clone()) {
                *id = (a.org.value(i), a.person.value(i));
                *h = self.hash(id.0, id.1);
                prefetch(&self.table[*h as usize & self.mask]);
            }
            for h in hashes.iter().take(block.len()) {
                let e = self.table[*h as usize & self.mask];
                if e != EMPTY && e >> 32 == tag(*h) {
                    // A key of up to 64 bytes may straddle two cache lines.
                    let key = e as u32 as usize;
                    prefetch(&self.keys[key]);
                    prefetch(&self.keys[(key + 63).min(self.keys.len() - 1)]);
                }
            }
            for (h, &(org, person)) in hashes.iter().zip(&ids).take(block.len()) {
                out.push(self.find_hashed(*h, org, person));
            }
        }
    }
}

/// An empty vector with room for `capacity` items, in memory the kernel is asked to
/// back with 2 MB pages (Linux, where transparent huge pages are allowed on request):
/// the pass reads these tables at random, and with 4 KB pages nearly every read of a
/// large table also misses the TLB. The advice must come before the memory is
/// touched.
fn with_huge_pages<T>(capacity: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(capacity);
    #[cfg(target_os = "linux")]
    // SAFETY: advice only, over memory this vector owns; the kernel ignores it
    // where it does not apply.
    unsafe {
        // madvise wants a page-aligned start; the advice covers whole pages.
        const PAGE: usize = 4096;
        let start = v.as_ptr() as usize;
        let aligned = start.next_multiple_of(PAGE);
        let end = start + capacity * std::mem::size_of::<T>();
        if end > aligned {
            libc::madvise(
                aligned as *mut libc::c_void,
                end - aligned,
                libc::MADV_HUGEPAGE,
            );
        }
    }
    v
}

/// Asks the CPU to start loading the bytes of row `i`'s string, where they are not
/// inline in its view (strings over 12 bytes).
#[inline(always)]
fn prefetch_str(strings: &StrArray, i: usize) {
    let view = strings.views()[i];
    if view.length > 12 {
        if let Some(b) = strings.data_buffers().get(view.buffer_idx as usize) {
            if let Some(byte) = b.get(view.offset as usize) {
                prefetch(byte);
            }
        }
    }
}

/// Asks the CPU to start loading `value`'s cache line; a hint, never a fault.
#[inline(always)]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching reads nothing observable and `value` is a valid reference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// No latest instant yet (output as null).
const NO_INSTANT: i64 = i64::MIN;

/// Marks a row whose person is not a member of its org, or whose event name the model
/// does not mention.
const NONE: u32 = u32::MAX;

/// Member partitions of the rollup. Each is built by one task, on whatever threads
/// there are; fixed, so the rollup's row order does not depend on `--threads`.
const PARTITIONS: usize = 8;

/// What the first phase finds out about one member event, all the second phase needs.
#[derive(Clone, Copy)]
struct MemberRow {
    t: i64,
    /// Bits of the URL classes counted for this row (`Layout::visits`).
    visits: u64,
    member: u32,
    day: i32,
    /// Index into `Layout::classes`, or `NONE` for a name the model does not mention.
    class: u32,
}

/// Counts over all rows, members or not.
#[derive(Default)]
struct Totals {
    rows: u64,
    latest_us: Option<i64>,
    events_per_day: BTreeMap<i32, u64>,
    unknown_member_events: u64,
}

impl Totals {
    fn add_events_of_day(&mut self, day: i32, events: u64) {
        if events > 0 {
            *self.events_per_day.entry(day).or_insert(0) += events;
        }
    }

    fn merge(&mut self, other: Totals) {
        self.rows += other.rows;
        self.latest_us = self.latest_us.max(other.latest_us);
        for (day, n) in other.events_per_day {
            self.add_events_of_day(day, n);
        }
        self.unknown_member_events += other.unknown_member_events;
    }
}

/// polars' string array (Arrow's Utf8View).
type StrArray = <StringType as PolarsDataType>::Array;

/// The columns of one streamed chunk that the pass reads, as Arrow arrays.
struct ChunkArrays<'c> {
    timestamp: &'c [i64],
    event: &'c StrArray,
    person: &'c StrArray,
    org: &'c StrArray,
    url: &'c StrArray,
}

/// The URL classes of a row (SPEC 3): docs and product-docs visits are pageviews
/// under their path prefix; a billing visit is `billing v2 shown` or a pageview under
/// the billing path. A null URL is no visit.
fn visits(layout: &Layout, class: &EventClass, url: Option<&str>) -> u64 {
    let path = url.filter(|_| class.pageview).map(url_path);
    let mut bits = 0;
    if let Some(path) = path {
        if path.starts_with(&layout.docs_prefix) {
            bits |= 1 << VISIT_DOCS;
        }
        if path.starts_with(&layout.billing_prefix) {
            bits |= 1 << VISIT_BILLING;
        }
        for (j, prefix) in layout.product_docs.iter().enumerate() {
            if path.starts_with(prefix.as_str()) {
                bits |= 1 << (VISIT_PRODUCTS + j);
            }
        }
    }
    if class.billing_shown {
        bits |= 1 << VISIT_BILLING;
    }
    bits
}

/// Phase one, over a range of rows: each member event's facts, sorted into the
/// member partitions in row order, and the totals over every row.
fn member_rows(
    a: &ChunkArrays,
    rows: std::ops::Range<usize>,
    layout: &Layout,
    members: &MemberIndex,
) -> (Vec<Vec<MemberRow>>, Totals) {
    let mut parts: Vec<Vec<MemberRow>> = (0..PARTITIONS)
        .map(|_| Vec::with_capacity(rows.len() / PARTITIONS + 16))
        .collect();
    let mut totals = Totals {
        rows: rows.len() as u64,
        latest_us: a.timestamp[rows.clone()].iter().copied().max(),
        ..Totals::default()
    };
    let mut member_of_row = Vec::with_capacity(rows.len());
    members.find_rows(a, rows.clone(), &mut member_of_row);
    // The class of each event name's view, so each distinct name is hashed and
    // compared once per range, not once per row. (Equal views in one array are
    // equal strings, and dictionary-encoded columns repeat them.)
    let mut class_of_view: PlHashMap<u128, u32> = PlHashMap::new();
    let event_views = a.event.views();
    // Events per day, counted in runs: a time-ordered export changes day rarely.
    let mut run = (i32::MIN, 0u64);
    let end = rows.end;
    for (i, member) in rows.zip(member_of_row) {
        // A later row's URL, so that it has arrived when that row is classified.
        if i + URL_AHEAD < end {
            prefetch_str(a.url, i + URL_AHEAD);
        }
        let t = a.timestamp[i];
        let day = t.div_euclid(MICROS_PER_DAY) as i32;
        if day != run.0 {
            totals.add_events_of_day(run.0, run.1);
            run = (day, 0);
        }
        run.1 += 1;
        if member == NONE {
            totals.unknown_member_events += 1;
            continue;
        }
        let class = *class_of_view
            .entry(event_views[i].as_u128())
            .or_insert_with(|| {
                layout
                    .class_of
                    .get(a.event.value(i))
                    .map_or(NONE, |&c| c as u32)
            });
        let visits = layout
            .classes
            .get(class as usize)
            .map_or(0, |c| visits(layout, c, a.url.get(i)));
        parts[member as usize % PARTITIONS].push(MemberRow {
            t,
            visits,
            member,
            day,
            class,
        });
    }
    totals.add_events_of_day(run.0, run.1);
    (parts, totals)
}

/// Phase-one row ranges per thread and chunk (about 2-3% faster than one per thread,
/// measured interleaved at 10M and 50M).
const RANGES_PER_THREAD: usize = 4;

/// Rows whose slots are prefetched together in phase two.
const SLOT_BLOCK: usize = 16;

/// Where a member of a partition stands: the slot it used last, its latest day, and
/// the chain of its slots (newest first, through `Partition::previous`).
#[derive(Clone, Copy)]
struct MemberState {
    recent_day: i32,
    recent_slot: u32,
    latest_day: i32,
    /// Its newest slot, or `NONE`.
    newest: u32,
    /// Its slots are in `Partition::slot_of` (after its first day out of order).
    indexed: bool,
}

/// One cache line of slot storage: slots start on a line, so with the default model a
/// slot is exactly one line and an event touches one line of the table.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u32; WORDS_PER_LINE]);

const WORDS_PER_LINE: usize = 16;

/// The u32 words of consecutive lines.
fn words(lines: &[Line]) -> &[u32] {
    // SAFETY: `Line` is `repr(C)` around `[u32; 16]` with no padding (64 bytes, the
    // alignment), so `lines` is `16 * len` initialised, aligned u32s.
    unsafe { std::slice::from_raw_parts(lines.as_ptr().cast(), lines.len() * WORDS_PER_LINE) }
}

/// The u32 words of consecutive lines, writable.
fn words_mut(lines: &mut [Line]) -> &mut [u32] {
    // SAFETY: as in `words`; the borrow of `lines` is exclusive.
    unsafe {
        std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast(), lines.len() * WORDS_PER_LINE)
    }
}

/// Where a slot keeps what, in u32 words from its first line: the instants (each two
/// words, low then high: `last_us`, then `Layout::latest`), `n`, the counts of
/// `Layout::counts`, and its row in the partition's visit rows (`NONE` until the
/// (member, day) has a visit).
#[derive(Clone, Copy)]
struct SlotShape {
    instants: usize,
    n_at: usize,
    visit_row_at: usize,
    /// Lines per slot.
    lines: usize,
}

impl SlotShape {
    fn new(layout: &Layout) -> Self {
        let instants = 1 + layout.latest.len();
        let n_at = 2 * instants;
        let visit_row_at = n_at + 1 + layout.counts.len();
        SlotShape {
            instants,
            n_at,
            visit_row_at,
            lines: (visit_row_at + 1).div_ceil(WORDS_PER_LINE),
        }
    }

    /// A slot with no event yet.
    fn empty(&self) -> Vec<Line> {
        let mut lines = vec![Line([0; WORDS_PER_LINE]); self.lines];
        let w = words_mut(&mut lines);
        for i in 0..self.instants {
            set_instant(w, i, NO_INSTANT);
        }
        w[self.visit_row_at] = NONE;
        lines
    }
}

fn instant(w: &[u32], i: usize) -> i64 {
    ((u64::from(w[2 * i + 1]) << 32) | u64::from(w[2 * i])) as i64
}

fn set_instant(w: &mut [u32], i: usize, t: i64) {
    w[2 * i] = t as u64 as u32;
    w[2 * i + 1] = ((t as u64) >> 32) as u32;
}

fn raise_instant(w: &mut [u32], i: usize, t: i64) {
    if t > instant(w, i) {
        set_instant(w, i, t);
    }
}

/// One member partition of the rollup: a slot per (member, day), stored row-major
/// (a slot's counts and instants side by side on one cache line), and a visit row per
/// (member, day) with a docs or billing visit (rare: most events are no visit, so
/// the visit counts stay out of the slots and out of the main rollup frame).
///
/// Finding a row's slot: the member's last slot if it is the same day; a new slot if
/// the day is after every day of the member so far (all a time-ordered export ever
/// needs, with no map); otherwise, the first time, the member's slots are put in
/// `slot_of` by walking its chain, and from then on its slots are found there. So any
/// order of rows works, and ordered ones cost no hashing.
struct Partition {
    /// (member, day) → slot, for indexed members only.
    slot_of: PlHashMap<u64, u32>,
    /// Per member of the partition (member / PARTITIONS).
    state: Vec<MemberState>,
    member: Vec<u32>,
    day: Vec<i32>,
    /// Per slot: the member's slot opened before it, or `NONE`.
    previous: Vec<u32>,
    /// `shape.lines` lines per slot.
    lines: Vec<Line>,
    shape: SlotShape,
    empty_slot: Vec<Line>,
    /// Per visit row: its slot.
    visit_slot: Vec<u32>,
    /// Per visit row, `Layout::visits.len()` counts.
    visit_counts: Vec<u32>,
    visit_width: usize,
}

impl Partition {
    fn new(layout: &Layout, members: usize) -> Self {
        let start = MemberState {
            recent_day: i32::MIN,
            recent_slot: NONE,
            latest_day: i32::MIN,
            newest: NONE,
            indexed: false,
        };
        let shape = SlotShape::new(layout);
        Partition {
            slot_of: PlHashMap::new(),
            state: vec![start; members.div_ceil(PARTITIONS)],
            member: Vec::new(),
            day: Vec::new(),
            previous: Vec::new(),
            lines: Vec::new(),
            shape,
            empty_slot: shape.empty(),
            visit_slot: Vec::new(),
            visit_counts: Vec::new(),
            visit_width: layout.visits.len(),
        }
    }

    fn key(member: u32, day: i32) -> u64 {
        (u64::from(member) << 32) | u64::from(day as u32)
    }

    /// A slot's words.
    #[cfg(test)]
    fn slot_words(&self, slot: usize) -> &[u32] {
        words(&self.lines[slot * self.shape.lines..][..self.shape.lines])
    }

    /// Opens an empty slot for a (member, day) and links it into the member's chain.
    fn open(&mut self, member: u32, day: i32) -> u32 {
        let k = member as usize / PARTITIONS;
        let slot = self.member.len() as u32;
        self.member.push(member);
        self.day.push(day);
        self.previous.push(self.state[k].newest);
        self.state[k].newest = slot;
        self.lines.extend_from_slice(&self.empty_slot);
        if self.state[k].indexed {
            self.slot_of.insert(Self::key(member, day), slot);
        }
        slot
    }

    /// The slot of a (member, day), opened empty on first sight.
    fn slot(&mut self, member: u32, day: i32) -> usize {
        let k = member as usize / PARTITIONS;
        let state = self.state[k];
        if state.recent_day == day {
            return state.recent_slot as usize;
        }
        let slot = if !state.indexed && day > state.latest_day {
            self.open(member, day)
        } else {
            if !state.indexed {
                let mut s = state.newest;
                while s != NONE {
                    self.slot_of
                        .insert(Self::key(member, self.day[s as usize]), s);
                    s = self.previous[s as usize];
                }
                self.state[k].indexed = true;
            }
            match self.slot_of.get(&Self::key(member, day)) {
                Some(&s) => s,
                None => self.open(member, day),
            }
        };
        let state = &mut self.state[k];
        state.latest_day = state.latest_day.max(day);
        state.recent_day = day;
        state.recent_slot = slot;
        slot as usize
    }

    /// Phase two: adds this partition's rows of a chunk, a block at a time: the
    /// block's member entries are prefetched, then its slots found and their lines
    /// prefetched, then the counts added, so the cache misses of a block overlap.
    fn add(&mut self, rows: &[MemberRow], layout: &Layout) {
        let shape = self.shape;
        let mut slots = [0usize; SLOT_BLOCK];
        for block in rows.chunks(SLOT_BLOCK) {
            for r in block {
                prefetch(&self.state[r.member as usize / PARTITIONS]);
            }
            for (s, r) in slots.iter_mut().zip(block) {
                *s = self.slot(r.member, r.day);
                for line in &self.lines[*s * shape.lines..][..shape.lines] {
                    prefetch(line);
                }
            }
            for (&s, r) in slots.iter().zip(block) {
                let w = words_mut(&mut self.lines[s * shape.lines..][..shape.lines]);
                w[shape.n_at] += 1;
                raise_instant(w, 0, r.t);
                if let Some(class) = layout.classes.get(r.class as usize) {
                    for &c in &class.counts {
                        w[shape.n_at + 1 + c] += 1;
                    }
                    for &l in &class.latest {
                        raise_instant(w, 1 + l, r.t);
                    }
                }
                if r.visits != 0 {
                    if w[shape.visit_row_at] == NONE {
                        w[shape.visit_row_at] = self.visit_slot.len() as u32;
                        self.visit_slot.push(s as u32);
                        let len = self.visit_counts.len();
                        self.visit_counts.resize(len + self.visit_width, 0);
                    }
                    let row = w[shape.visit_row_at] as usize;
                    let counts = &mut self.visit_counts[row * self.visit_width..];
                    let mut bits = r.visits;
                    while bits != 0 {
                        counts[bits.trailing_zeros() as usize] += 1;
                        bits &= bits - 1;
                    }
                }
            }
        }
    }
}

/// The rollup being built.
struct Accumulator<'a> {
    layout: &'a Layout,
    members: &'a MemberIndex,
    partitions: Vec<Partition>,
    totals: Totals,
    /// A required column held a null.
    null_in_required: bool,
}

impl<'a> Accumulator<'a> {
    fn new(layout: &'a Layout, members: &'a MemberIndex) -> Self {
        Accumulator {
            layout,
            members,
            partitions: (0..PARTITIONS)
                .map(|_| Partition::new(layout, members.count()))
                .collect(),
            totals: Totals::default(),
            null_in_required: false,
        }
    }

    /// Adds one streamed chunk of normalised event rows: phase one over row ranges,
    /// then phase two over member partitions, each on all threads.
    fn add(&mut self, chunk: &DataFrame) -> PolarsResult<()> {
        let required = ["timestamp", "event", "distinct_id", "org_id"];
        if required
            .iter()
            .any(|c| chunk.column(c).map_or(true, |c| c.null_count() > 0))
        {
            self.null_in_required = true;
            return Ok(());
        }
        let timestamp = chunk.column("timestamp")?.i64()?.rechunk();
        let event = chunk.column("event")?.str()?.rechunk();
        let person = chunk.column("distinct_id")?.str()?.rechunk();
        let org = chunk.column("org_id")?.str()?.rechunk();
        let url = chunk.column("current_url")?.str()?.rechunk();
        let (Some(timestamp), Some(event), Some(person), Some(org), Some(url)) = (
            timestamp.downcast_iter().next(),
            event.downcast_iter().next(),
            person.downcast_iter().next(),
            org.downcast_iter().next(),
            url.downcast_iter().next(),
        ) else {
            return Ok(()); // an empty chunk
        };
        let a = ChunkArrays {
            timestamp: timestamp.values(),
            event,
            person,
            org,
            url,
        };
        let (layout, members) = (self.layout, self.members);
        // Phase one: a few ranges per thread, so that a thread that polars' decoding
        // slows down does not hold the others at the end of the phase; each partition
        // then takes its rows range by range, in row order, so the cut changes nothing.
        let len = a.timestamp.len();
        let step = len
            .div_ceil(RANGES_PER_THREAD * rayon::current_num_threads())
            .max(1);
        let ranges: Vec<_> = (0..len)
            .step_by(step)
            .map(|s| s..(s + step).min(len))
            .collect();
        let found: Vec<(Vec<Vec<MemberRow>>, Totals)> = ranges
            .into_par_iter()
            .map(|r| member_rows(&a, r, layout, members))
            .collect();
        let mut by_partition: Vec<Vec<Vec<MemberRow>>> = vec![Vec::new(); PARTITIONS];
        for (parts, totals) in found {
            for (p, rows) in parts.into_iter().enumerate() {
                by_partition[p].push(rows);
            }
            self.totals.merge(totals);
        }
        // Phase two: partitions are disjoint sets of members, so they fill in parallel.
        self.partitions
            .par_iter_mut()
            .zip(by_partition)
            .for_each(|(part, ranges)| {
                for rows in &ranges {
                    part.add(rows, layout);
                }
            });
        Ok(())
    }

    /// The rollup frames: the partitions in order, each in the order its (member, day)
    /// rows were first seen (its visit rows in the order of their first visit). Every
    /// column is allocated once at its full length and each partition writes its own
    /// rows' stretch of it, in parallel.
    fn finish(self, keys: &DataFrame) -> PolarsResult<Rollup> {
        let layout = self.layout;
        let lengths: Vec<usize> = self.partitions.iter().map(|p| p.member.len()).collect();
        let visit_lengths: Vec<usize> =
            self.partitions.iter().map(|p| p.visit_slot.len()).collect();
        let mut days = Columns::new(&lengths, true, layout.counts.len(), 1 + layout.latest.len());
        let mut visits = Columns::new(&visit_lengths, false, layout.visits.len(), 0);
        let stretches = days.stretches(&lengths);
        let visit_stretches = visits.stretches(&visit_lengths);
        self.partitions
            .into_par_iter()
            .zip(stretches.into_par_iter().zip(visit_stretches))
            .for_each(|(p, (days, visits))| p.write_into(days, visits));

        let mut instants = days.instants.into_iter();
        let mut frame = vec![
            UInt32Chunked::from_vec("member".into(), days.member).into_column(),
            Int32Chunked::from_vec("day".into(), days.day).into_column(),
            Int64Chunked::from_vec("n".into(), days.n).into_column(),
            Int64Chunked::from_vec("last_us".into(), instants.next().unwrap_or_default())
                .into_column(),
        ];
        for (name, values) in layout.counts.iter().zip(days.counts) {
            frame.push(UInt32Chunked::from_vec(name.into(), values).into_column());
        }
        for (name, values) in layout.latest.iter().zip(instants) {
            let instants: Int64Chunked = values
                .into_iter()
                .map(|t| (t != NO_INSTANT).then_some(t))
                .collect();
            frame.push(instants.with_name(name.into()).into_column());
        }
        let mut visit_frame = vec![
            UInt32Chunked::from_vec("member".into(), visits.member).into_column(),
            Int32Chunked::from_vec("day".into(), visits.day).into_column(),
        ];
        for (name, values) in layout.visits.iter().zip(visits.counts) {
            visit_frame.push(UInt32Chunked::from_vec(name.into(), values).into_column());
        }
        Ok(Rollup {
            frame: DataFrame::new_infer_height(frame)?,
            visits: DataFrame::new_infer_height(visit_frame)?,
            members: keys.clone(),
            rows: self.totals.rows,
            latest_us: self.totals.latest_us,
            events_per_day: self.totals.events_per_day,
            unknown_member_events: self.totals.unknown_member_events,
        })
    }
}

/// The columns of one rollup frame, at full length, before they become a frame.
struct Columns {
    member: Vec<u32>,
    day: Vec<i32>,
    /// Events per row; empty in the visits frame, which has none.
    n: Vec<i64>,
    counts: Vec<Vec<u32>>,
    instants: Vec<Vec<i64>>,
}

impl Columns {
    fn new(lengths: &[usize], with_n: bool, counts: usize, instants: usize) -> Self {
        let rows: usize = lengths.iter().sum();
        // (One `vec![0; rows]` each, not clones: zeroed memory comes free from the OS.)
        Columns {
            member: vec![0; rows],
            day: vec![0; rows],
            n: if with_n { vec![0; rows] } else { Vec::new() },
            counts: (0..counts).map(|_| vec![0; rows]).collect(),
            instants: (0..instants).map(|_| vec![0; rows]).collect(),
        }
    }

    /// Each partition's stretch of every column (`n` only where the frame has one).
    fn stretches(&mut self, lengths: &[usize]) -> Vec<Stretch<'_>> {
        let with_n = self.n.len() == self.member.len();
        let mut stretches: Vec<Stretch> = lengths.iter().map(|_| Stretch::default()).collect();
        split_into(&mut self.member, lengths, &mut stretches, |s, x| {
            s.member = x
        });
        split_into(&mut self.day, lengths, &mut stretches, |s, x| s.day = x);
        if with_n {
            split_into(&mut self.n, lengths, &mut stretches, |s, x| s.n = x);
        }
        for column in self.counts.iter_mut() {
            split_into(column, lengths, &mut stretches, |s, x| s.counts.push(x));
        }
        for column in self.instants.iter_mut() {
            split_into(column, lengths, &mut stretches, |s, x| s.instants.push(x));
        }
        stretches
    }
}

/// One partition's stretch of every column of a frame.
#[derive(Default)]
struct Stretch<'a> {
    member: &'a mut [u32],
    day: &'a mut [i32],
    n: &'a mut [i64],
    counts: Vec<&'a mut [u32]>,
    instants: Vec<&'a mut [i64]>,
}

/// Cuts `column` into consecutive stretches of `lengths` and hands each to its
/// partition's `Stretch`.
fn split_into<'a, T>(
    mut column: &'a mut [T],
    lengths: &[usize],
    stretches: &mut [Stretch<'a>],
    mut put: impl FnMut(&mut Stretch<'a>, &'a mut [T]),
) {
    for (stretch, &len) in stretches.iter_mut().zip(lengths) {
        let (mine, rest) = column.split_at_mut(len);
        put(stretch, mine);
        column = rest;
    }
}

impl Partition {
    /// Writes this partition's slots, row-major, into its stretch of the (member,
    /// day) columns, and its visit rows into its stretch of the visit columns.
    fn write_into(self, days: Stretch, visits: Stretch) {
        let shape = self.shape;
        days.member.copy_from_slice(&self.member);
        days.day.copy_from_slice(&self.day);
        let Stretch {
            n,
            mut counts,
            mut instants,
            ..
        } = days;
        for (s, lines) in self.lines.chunks_exact(shape.lines).enumerate() {
            let w = words(lines);
            n[s] = i64::from(w[shape.n_at]);
            for (c, column) in counts.iter_mut().enumerate() {
                column[s] = w[shape.n_at + 1 + c];
            }
            for (i, column) in instants.iter_mut().enumerate() {
                column[s] = instant(w, i);
            }
        }
        let Stretch {
            member,
            day,
            mut counts,
            ..
        } = visits;
        for (v, &slot) in self.visit_slot.iter().enumerate() {
            member[v] = self.member[slot as usize];
            day[v] = self.day[slot as usize];
            let row = &self.visit_counts[v * self.visit_width..][..self.visit_width];
            for (column, &value) in counts.iter_mut().zip(row) {
                column[v] = value;
            }
        }
    }
}

/// Rows per streamed chunk; `ACCOUNT_HEALTH_EVENTS_CHUNK_ROWS` overrides polars'
/// default (outputs do not depend on it: a test runs with tiny chunks).
fn chunk_rows() -> Option<NonZeroUsize> {
    std::env::var("ACCOUNT_HEALTH_EVENTS_CHUNK_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
}

/// Streams the event export through `add`, chunk by chunk in file order, while polars
/// reads and decodes the next chunks on its own threads.
fn stream_events(
    events: LazyFrame,
    mut add: impl FnMut(&DataFrame) -> PolarsResult<bool>,
) -> PolarsResult<()> {
    let (send, receive) = sync_channel::<DataFrame>(2);
    let sink = events.sink_batches(
        // Stop reading (return true) once the receiver has gone away.
        PlanCallback::new(move |chunk| Ok(send.send(chunk).is_err())),
        true,
        chunk_rows(),
    )?;
    let reader = std::thread::spawn(move || sink.collect_with_engine(Engine::Streaming));
    let mut outcome = Ok(());
    for chunk in receive.iter() {
        match add(&chunk) {
            Ok(true) => {}
            stop => {
                outcome = stop.map(|_| ());
                break;
            }
        }
    }
    drop(receive);
    let read = reader
        .join()
        .unwrap_or_else(|_| Err(polars_err!(ComputeError: "the events reader panicked")));
    read.map(|_| ())?;
    outcome
}

pub fn rollup(inputs: &Inputs, model: &Model) -> Result<Rollup, InputError> {
    let blame = |e: PolarsError| inputs.events.blame(Some(e));
    let layout = Layout::new(model);
    let keys = member_keys(inputs).map_err(blame)?;
    let members = MemberIndex::new(&keys).map_err(blame)?;
    let mut acc = Accumulator::new(&layout, &members);
    stream_events(inputs.events.frame.clone(), |chunk| {
        acc.add(chunk)?;
        Ok(!acc.null_in_required)
    })
    .map_err(blame)?;
    if acc.null_in_required {
        // A null key or event is a null in a required column of some file: name it.
        return Err(inputs.events.blame(None));
    }
    acc.finish(&keys).map_err(blame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_layout() -> Layout {
        Layout::new(&Model::default_model())
    }

    #[test]
    fn a_member_day_seen_again_after_other_days_adds_to_its_first_slot() {
        let layout = default_layout();
        let mut part = Partition::new(&layout, 8);
        let row = |day, t| MemberRow {
            t,
            visits: 0,
            member: 0,
            day,
            class: NONE,
        };
        // Day 5, then day 3, then day 5 again (found through the map, not the
        // member's latest slot), then day 3 again.
        part.add(&[row(5, 50), row(3, 30), row(5, 55), row(3, 31)], &layout);
        assert_eq!(part.member, vec![0, 0]);
        assert_eq!(part.day, vec![5, 3]);
        let n = |slot: usize| part.slot_words(slot)[part.shape.n_at];
        let last = |slot: usize| instant(part.slot_words(slot), 0);
        assert_eq!((n(0), last(0)), (2, 55));
        assert_eq!((n(1), last(1)), (2, 31));
    }

    #[test]
    fn rows_in_any_order_find_their_member_day() {
        let layout = default_layout();
        let mut part = Partition::new(&layout, 16);
        // Members 0 and 8 share partition 0.
        let row = |member, day| MemberRow {
            t: i64::from(day),
            visits: 0,
            member,
            day,
            class: NONE,
        };
        let rows = [
            row(0, 1),
            row(8, 1),
            row(0, 2),
            row(8, 3),
            row(0, 1), // out of order: member 0's slots get indexed, day 1 found
            row(0, 3), // indexed member, new day
            row(8, 2), // out of order for member 8, a day it never had
            row(0, 2),
        ];
        part.add(&rows, &layout);
        let slots: Vec<(u32, i32, u32)> = (0..part.member.len())
            .map(|s| {
                (
                    part.member[s],
                    part.day[s],
                    part.slot_words(s)[part.shape.n_at],
                )
            })
            .collect();
        assert_eq!(
            slots,
            [
                (0, 1, 2),
                (8, 1, 1),
                (0, 2, 2),
                (8, 3, 1),
                (0, 3, 1),
                (8, 2, 1)
            ]
        );
    }

    #[test]
    fn the_default_slot_is_one_cache_line() {
        let layout = default_layout();
        let shape = SlotShape::new(&layout);
        assert_eq!(shape.lines, 1);
        let empty = shape.empty();
        assert_eq!(std::mem::align_of_val(&empty[0]), 64);
        let w = words(&empty);
        assert_eq!(instant(w, 0), NO_INSTANT);
        assert_eq!(w[shape.n_at], 0);
        assert_eq!(w[shape.visit_row_at], NONE);
        let mut w = [0u32; 2];
        for t in [0, -1, 1 << 40, i64::MIN, i64::MAX, -(7 << 33) + 5] {
            set_instant(&mut w, 0, t);
            assert_eq!(instant(&w, 0), t);
        }
    }

    #[test]
    fn a_slot_wider_than_a_line_keeps_every_count() {
        let mut layout = default_layout();
        // Seven more counted sets than the default: the slot takes two lines and the
        // visit row's word sits on the second.
        for i in 0..7 {
            layout.counts.push(format!("n__extra{i}"));
        }
        let shape = SlotShape::new(&layout);
        assert_eq!(shape.lines, 2);
        assert!(shape.visit_row_at >= WORDS_PER_LINE);
        let mut part = Partition::new(&layout, 16);
        let saved = layout.class_of["insight saved"] as u32;
        let row = |member, day, t, visits| MemberRow {
            t,
            visits,
            member,
            day,
            class: saved,
        };
        let rows = [
            row(0, 1, 10, 0),
            row(8, 1, 11, 1 << VISIT_DOCS),
            row(0, 1, 12, 1 << VISIT_BILLING),
        ];
        part.add(&rows, &layout);
        let lengths = [part.member.len()];
        let visit_lengths = [part.visit_slot.len()];
        let mut days = Columns::new(&lengths, true, layout.counts.len(), 1 + layout.latest.len());
        let mut visits = Columns::new(&visit_lengths, false, layout.visits.len(), 0);
        let day_stretch = days.stretches(&lengths).pop().unwrap();
        let visit_stretch = visits.stretches(&visit_lengths).pop().unwrap();
        part.write_into(day_stretch, visit_stretch);
        assert_eq!(days.member, vec![0, 8]);
        assert_eq!(days.n, vec![2, 1]);
        assert_eq!(days.instants[0], vec![12, 11]);
        let saved_column = layout
            .counts
            .iter()
            .position(|c| c == &set_count("insight_saved"))
            .unwrap();
        assert_eq!(days.counts[saved_column], vec![2, 1]);
        assert!(days.counts[layout.counts.len() - 1].iter().all(|&c| c == 0));
        // Visit rows in order of first visit: member 8's docs, then member 0's billing.
        assert_eq!(visits.member, vec![8, 0]);
        assert_eq!(visits.counts[VISIT_DOCS], vec![1, 0]);
        assert_eq!(visits.counts[VISIT_BILLING], vec![0, 1]);
    }

    #[test]
    fn visits_get_a_row_per_member_day_with_one() {
        let layout = default_layout();
        let mut part = Partition::new(&layout, 8);
        let pageview = layout.class_of["$pageview"] as u32;
        let row = |day, visits| MemberRow {
            t: i64::from(day),
            visits,
            member: 0,
            day,
            class: pageview,
        };
        let docs = 1 << VISIT_DOCS;
        let billing = 1 << VISIT_BILLING;
        // Day 1: no visit; day 2: docs twice and billing once (one row); day 1 again
        // with a billing visit: its row opens after day 2's.
        part.add(
            &[
                row(1, 0),
                row(2, docs),
                row(2, docs | billing),
                row(1, billing),
            ],
            &layout,
        );
        assert_eq!(part.visit_slot, vec![1, 0]);
        let counts = |v: usize| part.visit_counts[v * part.visit_width..][..2].to_vec();
        assert_eq!(counts(0), vec![2, 1]);
        assert_eq!(counts(1), vec![0, 1]);
        assert_eq!(part.slot_words(0)[part.shape.n_at], 2);
        assert_eq!(part.slot_words(1)[part.shape.n_at], 2);
    }

    #[test]
    fn members_are_found_by_both_keys_exactly() {
        let keys = df!(
            "org_id" => ["a", "a", "ax", "b"],
            "distinct_id" => ["x", "y", "", "x"],
        )
        .unwrap();
        let index = MemberIndex::new(&keys).unwrap();
        let find =
            |org: &str, person: &str| index.find_hashed(index.hash(org, person), org, person);
        assert_eq!(find("a", "x"), 0);
        assert_eq!(find("a", "y"), 1);
        assert_eq!(find("ax", ""), 2);
        assert_eq!(find("b", "x"), 3);
        // The same person in another org, or the same bytes cut elsewhere, is no one.
        assert_eq!(find("c", "x"), NONE);
        assert_eq!(find("a", "xy"), NONE);
        assert_eq!(find("", "ax"), NONE);
        assert_eq!(index.count(), 4);
    }

    #[test]
    fn every_member_is_found_through_probe_chains() {
        // 3000 members in 8192 entries: runs of occupied entries, so many lookups
        // probe past entries of other members (tags and keys both checked).
        let orgs: Vec<String> = (0..3000).map(|i| format!("org{}", i % 37)).collect();
        let people: Vec<String> = (0..3000).map(|i| format!("person-{i}")).collect();
        let keys = df!("org_id" => &orgs, "distinct_id" => &people).unwrap();
        let index = MemberIndex::new(&keys).unwrap();
        let find =
            |org: &str, person: &str| index.find_hashed(index.hash(org, person), org, person);
        for (i, (org, person)) in orgs.iter().zip(&people).enumerate() {
            assert_eq!(find(org, person), i as u32);
            // The same person under the next org is no member.
            let other = format!("org{}", (i + 1) % 37);
            assert_eq!(find(&other, person), NONE);
        }
    }

    #[test]
    fn visit_bits_follow_the_event_and_the_path() {
        let layout = default_layout();
        let class = |event: &str| &layout.classes[layout.class_of[event]];
        let bit = |b: usize| 1u64 << b;
        let surveys = layout
            .product_docs
            .iter()
            .position(|prefix| prefix == "/docs/surveys")
            .unwrap();
        let pageview = class("$pageview");
        assert_eq!(
            visits(
                &layout,
                pageview,
                Some("https://posthog.com/docs/surveys/intro?x=1")
            ),
            bit(VISIT_DOCS) | bit(VISIT_PRODUCTS + surveys)
        );
        assert_eq!(
            visits(&layout, pageview, Some("/organization/billing")),
            bit(VISIT_BILLING)
        );
        // The path is what counts: "/docs" in the query string is no docs visit.
        assert_eq!(visits(&layout, pageview, Some("/home?next=/docs")), 0);
        assert_eq!(visits(&layout, pageview, None), 0);
        // Only pageviews visit a path; `billing v2 shown` is a billing visit anywhere.
        let shown = class("billing v2 shown");
        assert_eq!(visits(&layout, shown, Some("/docs")), bit(VISIT_BILLING));
        assert_eq!(visits(&layout, class("insight saved"), Some("/docs")), 0);
    }

    /// The kernel's path against the regex the SPEC's rule was first written as.
    #[test]
    fn url_path_matches_the_regex() {
        let urls = [
            "https://app.posthog.com/docs/feature-flags?x=1#top",
            "http://localhost:8000/organization/billing",
            "/docs/surveys#intro",
            "/docs?q",
            "https://host",
            "https://host?x=/docs",
            "mailto:someone@example.com",
            "1http://host/docs",
            "svn+ssh://host/path",
            "a.b-c://h/x",
            "://host/docs",
            "",
            "#/docs",
            "https://hôst.example/dôcs/é?q",
            "docs/relative",
        ];
        let df = df!("u" => urls).unwrap();
        let expected = df
            .lazy()
            .select([col("u")
                .str()
                .extract(lit(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)?([^?#]*)"), 1)])
            .collect()
            .unwrap();
        let expected = expected.column("u").unwrap().str().unwrap();
        for (url, want) in urls.iter().zip(expected.iter()) {
            assert_eq!(Some(url_path(url)), want, "{url}");
        }
    }
}
