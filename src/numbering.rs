//! Numbering values in order of first appearance: the coded tables
//! (`ingestion_rows`, `usage_sums::UsageRows`) number their orgs and groups once.

use polars::prelude::*;
use polars_arrow::array::{Array, Utf8ViewArray};

/// Each row's number (0, 1, ... in order of first appearance) of the strings of
/// `columns` taken together (nulls are values too), and the row where each number
/// first appears.
///
/// A row is first looked up by its strings' views (polars' 16-byte handles: a short
/// string's bytes, or a long one's length, prefix and place in its chunk's buffers)
/// in a small cache: within one chunk, equal views are equal strings, and a column
/// decoded from a Parquet dictionary gives every repeat of a value the same view. So
/// most rows (the same group as the row before, or one of a few event names) need
/// neither a hash nor a look at their bytes; the rest are looked up by their strings.
/// (Hashing every row's strings was a third of reading the 3.7M-row ingestion table
/// at 50M events: docs/PERFORMANCE.md, session 28.)
pub fn numbered_strings<const N: usize>(columns: [&StringChunked; N]) -> (Vec<u32>, Vec<IdxSize>) {
    let rows = columns.first().map_or(0, |c| c.len());
    assert!(
        columns.iter().all(|c| c.len() == rows),
        "columns of one length"
    );
    // Chunks taken together must line up; where they do not, one chunk each.
    let aligned = columns
        .iter()
        .all(|c| c.chunk_lengths().eq(columns[0].chunk_lengths()));
    let owned: Vec<StringChunked> = if aligned {
        Vec::new()
    } else {
        columns.iter().map(|c| c.rechunk().into_owned()).collect()
    };
    let columns: [&StringChunked; N] = if aligned {
        columns
    } else {
        std::array::from_fn(|k| &owned[k])
    };
    let mut number: PlHashMap<[Option<&str>; N], u32> = PlHashMap::new();
    let mut firsts: Vec<IdxSize> = Vec::new();
    let mut numbers: Vec<u32> = Vec::with_capacity(rows);
    let mut chunks: [_; N] = std::array::from_fn(|k| columns[k].downcast_iter());
    for _ in 0..columns.first().map_or(0, |c| c.chunks().len()) {
        let arrays: [&Utf8ViewArray; N] =
            std::array::from_fn(|k| chunks[k].next().expect("aligned chunks"));
        // Views are only comparable within one chunk: a fresh cache for each.
        let mut cache = [([0u128; N], NOT_CACHED); CACHE_SLOTS];
        for i in 0..arrays.first().map_or(0, |a| a.len()) {
            let views: [u128; N] = std::array::from_fn(|k| {
                let a = arrays[k];
                if a.is_valid(i) {
                    a.views()[i].as_u128()
                } else {
                    NULL_VIEW
                }
            });
            let slot = &mut cache[slot_of(&views)];
            if slot.1 != NOT_CACHED && slot.0 == views {
                numbers.push(slot.1);
                continue;
            }
            let row = numbers.len();
            let key: [Option<&str>; N] = std::array::from_fn(|k| arrays[k].get(i));
            let n = *number.entry(key).or_insert_with(|| {
                firsts.push(row as IdxSize);
                firsts.len() as u32 - 1
            });
            *slot = (views, n);
            numbers.push(n);
        }
    }
    (numbers, firsts)
}

/// Slots in `numbered_strings`' cache: room for a row's group and a handful of
/// values that alternate (an export's few event names).
const CACHE_SLOTS: usize = 64;
/// An empty cache slot.
const NOT_CACHED: u32 = u32::MAX;
/// A null's stand-in view: no string's view, as no string is 4 GB long.
const NULL_VIEW: u128 = u128::MAX;

/// The cache slot of a row's views.
fn slot_of<const N: usize>(views: &[u128; N]) -> usize {
    let mut h = 0u64;
    for v in views {
        h = (h ^ (*v as u64) ^ ((*v >> 64) as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    (h >> 58) as usize % CACHE_SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[Option<&str>]) -> StringChunked {
        StringChunked::from_iter_options("s".into(), values.iter().copied())
    }

    /// The numbering by the strings alone, for comparison: a map and nothing else.
    fn by_strings<const N: usize>(columns: [&StringChunked; N]) -> (Vec<u32>, Vec<IdxSize>) {
        let mut number: PlHashMap<Vec<Option<&str>>, u32> = PlHashMap::new();
        let mut firsts = Vec::new();
        let mut numbers = Vec::new();
        for row in 0..columns[0].len() {
            let key: Vec<Option<&str>> = columns.iter().map(|c| c.get(row)).collect();
            let n = *number.entry(key).or_insert_with(|| {
                firsts.push(row as IdxSize);
                firsts.len() as u32 - 1
            });
            numbers.push(n);
        }
        (numbers, firsts)
    }

    #[test]
    fn numbers_in_order_of_first_appearance_with_each_first_row() {
        let (numbers, firsts) = numbered_strings([&strings(&[
            Some("b"),
            Some("b"),
            Some("a"),
            Some("b"),
            Some("c"),
            Some("a"),
        ])]);
        assert_eq!(numbers, [0, 0, 1, 0, 2, 1]);
        assert_eq!(firsts, [0, 2, 4]);
        let (numbers, firsts) = numbered_strings([&strings(&[])]);
        assert!(numbers.is_empty() && firsts.is_empty());
    }

    #[test]
    fn pairs_and_nulls_are_values_together() {
        let a = strings(&[Some("x"), Some("x"), None, None, Some("x"), Some("y")]);
        let b = strings(&[Some("1"), None, None, Some("1"), Some("1"), None]);
        let (numbers, firsts) = numbered_strings([&a, &b]);
        // (x,1) (x,null) (null,null) (null,1) (x,1) (y,null)
        assert_eq!(numbers, [0, 1, 2, 3, 0, 4]);
        assert_eq!(firsts, [0, 1, 2, 3, 5]);
    }

    /// Long strings (kept in buffers, not in their views) at different places of
    /// different chunks, columns chunked differently, and more distinct values than
    /// the cache holds: the numbers of a plain map of the strings.
    #[test]
    fn long_strings_across_chunks_number_as_their_strings_do() {
        let long = |i: usize| format!("a string longer than twelve bytes #{}", i % 97);
        let values: Vec<String> = (0..2000).map(|i| long((i * 7919) % 301)).collect();
        let mut a = strings(
            &values[..700]
                .iter()
                .map(|s| Some(s.as_str()))
                .collect::<Vec<_>>(),
        );
        a.append(&strings(
            &values[700..]
                .iter()
                .map(|s| Some(s.as_str()))
                .collect::<Vec<_>>(),
        ))
        .unwrap();
        let b = strings(
            &(0..2000)
                .map(|i| {
                    (i % 5 != 0).then_some(if i % 3 == 0 {
                        "short"
                    } else {
                        "another string, long"
                    })
                })
                .collect::<Vec<_>>(),
        );
        assert_eq!(a.chunks().len(), 2);
        assert_eq!(numbered_strings([&a, &b]), by_strings([&a, &b]));
        assert_eq!(numbered_strings([&a]), by_strings([&a]));
        // The same column twice in one chunk: repeats of a value at other offsets.
        let whole = a.rechunk().into_owned();
        assert_eq!(numbered_strings([&whole, &b]), by_strings([&whole, &b]));
    }

    /// Columns read back from a Parquet file, as the input tables are: a chunk per row
    /// group, the chunks of the columns aligned, and a long value's repeats sharing its
    /// dictionary view (so the cache hits on long strings, not only on short ones).
    #[test]
    fn dictionary_decoded_row_groups_number_as_their_strings_do() {
        let long = [
            "a value longer than twelve bytes",
            "another value, longer than twelve",
        ];
        let n = 3000;
        let a: Vec<Option<&str>> = (0..n)
            .map(|i| (i % 11 != 0).then_some(long[(i / 7) % 2]))
            .collect();
        let b: Vec<&str> = (0..n)
            .map(|i| ["x", "yy", long[i % 2]][(i / 5) % 3])
            .collect();
        let mut frame = df!("a" => a, "b" => b).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .with_row_group_size(Some(700))
            .finish(&mut frame)
            .unwrap();
        let path = PlRefPath::new(path.to_string_lossy().to_string());
        let read = LazyFrame::scan_parquet(path, ScanArgsParquet::default())
            .unwrap()
            .collect()
            .unwrap();
        let (a, b) = (
            read.column("a").unwrap().str().unwrap(),
            read.column("b").unwrap().str().unwrap(),
        );
        assert!(a.chunks().len() > 1);
        assert!(a.chunk_lengths().eq(b.chunk_lengths()));
        // Rows 1 and 2 hold the same long value: one view in their chunk.
        let first = a.downcast_iter().next().unwrap();
        assert_eq!(first.views()[1].as_u128(), first.views()[2].as_u128());
        assert_eq!(numbered_strings([a, b]), by_strings([a, b]));
        assert_eq!(numbered_strings([b]), by_strings([b]));
    }
}
