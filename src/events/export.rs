//! Rows of PostHog's batch export (`input::EventsShape::Posthog`), turned into the
//! pass's chunks: each `uuid` counted once across all files (the first row in file
//! order wins; re-runs and backfills export an event again), the organization and
//! URL read from `properties` (`crate::properties`), and the rows that cannot be
//! scored (properties that are not a JSON object, no organization) skipped and
//! counted for the data-quality section.

use polars::prelude::*;
use rayon::prelude::*;

use super::Chunk;
use crate::properties::{self, Found};

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
    /// Canonical uuids (8-4-4-4-12 hex digits), as numbers, in `SHARDS` sets by a
    /// hash of the uuid: each set is small enough to stay in cache while a chunk's
    /// rows of that shard are looked up, and the shards are worked on in parallel.
    seen: Vec<PlHashSet<u128>>,
    /// Any other uuid text, whole.
    seen_text: PlHashSet<String>,
    pub(super) skipped: Skipped,
}

/// Rows whose properties are read on one task.
const ROWS_PER_TASK: usize = 2048;

/// Shards of the uuid sets.
const SHARDS: usize = 64;

/// The shard of a uuid: a multiplicative hash of both halves (a version-7 uuid's
/// first bits are a time, a version-1's last bits a node: neither spreads alone).
fn shard_of(uuid: u128) -> usize {
    let folded = (uuid as u64) ^ ((uuid >> 64) as u64);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
}

impl ExportReader {
    pub(super) fn new(group_type: &str) -> Self {
        ExportReader {
            group_type: group_type.to_string(),
            seen: (0..SHARDS).map(|_| PlHashSet::default()).collect(),
            seen_text: PlHashSet::default(),
            skipped: Skipped::default(),
        }
    }

    /// Whether this is the first row with this uuid (one at a time; tests).
    #[cfg(test)]
    fn first_sight(&mut self, uuid: &str) -> bool {
        let column = StringChunked::from_iter_values("uuid".into(), [uuid].into_iter());
        self.first_sights(&column)[0]
    }

    /// For each row, whether it is the first with its uuid (a null uuid always is).
    /// A uuid always falls in the same shard, and each shard takes its rows in row
    /// order, so the first in file order wins whatever the threads.
    fn first_sights(&mut self, uuids: &StringChunked) -> Vec<bool> {
        let rows = uuids.len();
        let uuids = uuids.rechunk();
        let Some(array) = uuids.downcast_iter().next() else {
            return Vec::new();
        };
        let parsed: Vec<Option<u128>> = (0..rows)
            .into_par_iter()
            .with_min_len(ROWS_PER_TASK)
            .map(|i| array.get(i).and_then(parse_uuid))
            .collect();
        let mut first = vec![true; rows];
        // Rows per shard, in row order.
        let mut by_shard: Vec<Vec<u32>> = vec![Vec::new(); SHARDS];
        for (row, n) in parsed.iter().enumerate() {
            if let Some(n) = n {
                by_shard[shard_of(*n)].push(row as u32);
            }
        }
        let repeats: Vec<Vec<u32>> = self
            .seen
            .par_iter_mut()
            .zip(by_shard)
            .map(|(seen, rows)| {
                rows.into_iter()
                    .filter(|&row| !seen.insert(parsed[row as usize].unwrap_or_default()))
                    .collect()
            })
            .collect();
        for row in repeats.into_iter().flatten() {
            first[row as usize] = false;
        }
        // Any other uuid text, whole, in row order (rare).
        for (row, (u, n)) in array.iter().zip(&parsed).enumerate() {
            if let (Some(u), None) = (u, n) {
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
    /// `distinct_id`, `properties`, `uuid`) in the flat columns the pass reads;
    /// `None` when no row is left.
    pub(super) fn chunk(&mut self, frame: &DataFrame) -> PolarsResult<Option<Chunk>> {
        let rows = frame.height();
        let first = self.first_sights(frame.column("uuid")?.str()?);
        let properties = frame.column("properties")?.str()?.rechunk();
        let Some(properties) = properties.downcast_iter().next() else {
            return Ok(None);
        };
        let group_type = self.group_type.as_str();
        let found: Vec<Option<Option<Found>>> = (0..rows)
            .into_par_iter()
            .with_min_len(ROWS_PER_TASK)
            .map(|i| {
                if !first[i] {
                    return None;
                }
                let json = properties.get(i);
                Some(json.and_then(|j| properties::extract(j, group_type).ok()))
            })
            .collect();
        let mut keep: Vec<IdxSize> = Vec::with_capacity(rows);
        // Built from the decoded values, mostly borrowed from the properties column.
        let mut orgs = StringChunkedBuilder::new("org_id".into(), rows);
        let mut urls = StringChunkedBuilder::new("current_url".into(), rows);
        for (i, f) in found.iter().enumerate() {
            match f {
                None => self.skipped.duplicate_event_uuids += 1,
                Some(None) => self.skipped.events_unreadable_properties += 1,
                Some(Some(Found { org: None, .. })) => self.skipped.events_without_org += 1,
                Some(Some(Found {
                    org: Some(org),
                    url,
                })) => {
                    keep.push(i as IdxSize);
                    orgs.append_value(org);
                    urls.append_option(url.as_deref());
                }
            }
        }
        if keep.is_empty() {
            return Ok(None);
        }
        let columns = frame.select(["timestamp", "event", "distinct_id"])?;
        let mut kept = if keep.len() == rows {
            columns
        } else {
            // Views are gathered, not the strings they point to.
            columns.take(&IdxCa::from_vec("keep".into(), keep))?
        };
        kept.with_column(orgs.finish().into_column())?;
        kept.with_column(urls.finish().into_column())?;
        Chunk::from_frame(&kept)
    }
}

/// A canonical uuid (`8-4-4-4-12` hex digits, either case) as a number.
fn parse_uuid(text: &str) -> Option<u128> {
    let b = text.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut n: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        n = (n << 4) | (c as char).to_digit(16)? as u128;
    }
    Some(n)
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
        let mut r = ExportReader::new("organization");
        assert!(r.first_sight("0191f0b2-7a3e-7c4d-9e1f-0123456789ab"));
        assert!(!r.first_sight("0191F0B2-7A3E-7C4D-9E1F-0123456789AB"));
        assert!(r.first_sight("not-a-uuid"));
        assert!(!r.first_sight("not-a-uuid"));
    }
}
