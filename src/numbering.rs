//! Numbering values in order of first appearance: the coded tables
//! (`ingestion_rows`, `usage_sums::UsageRows`) number their orgs and groups once.

use polars::prelude::*;

/// Each value's number (0, 1, ... in order of first appearance), and the row where
/// each number first appears. Rows usually repeat the previous row's value (exports
/// come grouped by org), which needs no lookup.
pub fn numbered<K: std::hash::Hash + Eq + Copy>(
    values: impl Iterator<Item = K>,
) -> (Vec<u32>, Vec<IdxSize>) {
    let mut number: PlHashMap<K, u32> = PlHashMap::new();
    let mut firsts: Vec<IdxSize> = Vec::new();
    let mut previous: Option<(K, u32)> = None;
    let numbers = values
        .enumerate()
        .map(|(row, v)| {
            if let Some((_, n)) = previous.filter(|&(p, _)| p == v) {
                return n;
            }
            let n = *number.entry(v).or_insert_with(|| {
                firsts.push(row as IdxSize);
                firsts.len() as u32 - 1
            });
            previous = Some((v, n));
            n
        })
        .collect();
    (numbers, firsts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_order_of_first_appearance_with_each_first_row() {
        let (numbers, firsts) = numbered(["b", "b", "a", "b", "c", "a"].into_iter());
        assert_eq!(numbers, [0, 0, 1, 0, 2, 1]);
        assert_eq!(firsts, [0, 2, 4]);
        let (numbers, firsts) = numbered(std::iter::empty::<u8>());
        assert!(numbers.is_empty() && firsts.is_empty());
    }
}
