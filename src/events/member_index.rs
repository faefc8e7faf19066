//! Finding each event row's member: the member table of the events pass.

use std::hash::BuildHasher;

use polars::prelude::*;

use super::NONE;
use crate::sys::{prefetch, vec_in_huge_pages as with_huge_pages};

/// Finds a member's number from its org_id and distinct_id. One open-addressing table
/// of 8-byte entries (a 32-bit tag from the hash, and where the member's key starts),
/// each match checked against the member's key bytes, which also hold its number: a
/// lookup touches two cache lines (the entry and the key), both prefetched a few
/// dozen lookups ahead, so the memory waits overlap.
/// (Per-org maps of `String`s cost four dependent cache misses per row; with 50M
/// events most rows miss every cache, so the table is kept small.)
pub(super) struct MemberIndex {
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

/// Lookups ahead of the current one whose table entry is prefetched.
const ENTRY_AHEAD: usize = 64;
/// Lookups ahead of the current one whose member key is prefetched (their entries
/// were prefetched `ENTRY_AHEAD - KEY_AHEAD` lookups before).
const KEY_AHEAD: usize = 32;

impl MemberIndex {
    pub(super) fn new(keys: &DataFrame) -> PolarsResult<MemberIndex> {
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

    pub(super) fn count(&self) -> usize {
        self.members
    }

    /// Each member's number, org_id and distinct_id, in member order.
    pub(super) fn keys(&self) -> impl Iterator<Item = (u32, &str, &str)> {
        let mut at = 0;
        std::iter::from_fn(move || {
            (at < self.keys.len()).then_some(())?;
            let (member, org, person) = self.key_at(at);
            at += KEY_HEADER + org.len() + person.len();
            // (The bytes were copied from `str`s.)
            let text = |bytes| std::str::from_utf8(bytes).unwrap_or_default();
            Some((member, text(org), text(person)))
        })
    }

    /// The key starting at `at`: its member's number, org_id and distinct_id bytes.
    fn key_at(&self, at: usize) -> (u32, &[u8], &[u8]) {
        let k = &self.keys[at..];
        let word = |i: usize| u32::from_le_bytes([k[i], k[i + 1], k[i + 2], k[i + 3]]);
        let (org_len, person_len) = (word(4) as usize, word(8) as usize);
        let strings = &k[KEY_HEADER..];
        (
            word(0),
            &strings[..org_len],
            &strings[org_len..org_len + person_len],
        )
    }

    fn hash(&self, org: &str, person: &str) -> u64 {
        self.hasher.hash_one((org, person))
    }

    /// The member whose key starts at `key`, if the key is (org, person).
    fn member_if(&self, key: u32, org: &str, person: &str) -> Option<u32> {
        let (member, o, p) = self.key_at(key as usize);
        (o == org.as_bytes() && p == person.as_bytes()).then_some(member)
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

    /// The member (or `NONE`) of one (org, person) pair.
    pub(super) fn find(&self, org: &str, person: &str) -> u32 {
        self.find_hashed(self.hash(org, person), org, person)
    }

    /// The member (or `NONE`) of each (org, person) pair, appended to `out`, as a
    /// pipeline whose memory loads overlap: all hashes first, then for pair i the
    /// table entry of pair i + `ENTRY_AHEAD` is prefetched, the entry of pair i +
    /// `KEY_AHEAD` (prefetched earlier) is read and its member's key prefetched, and
    /// pair i's keys are compared (probing further on a collision). The distances
    /// give each load time to arrive (docs/PERFORMANCE.md, session 12).
    pub(super) fn find_all(&self, pairs: &[(&str, &str)], out: &mut Vec<u32>) {
        let hashes: Vec<u64> = pairs.iter().map(|&(o, p)| self.hash(o, p)).collect();
        let entry = |h: u64| &self.table[h as usize & self.mask];
        for &h in hashes.iter().take(ENTRY_AHEAD) {
            prefetch(entry(h));
        }
        for &h in hashes.iter().take(KEY_AHEAD) {
            self.prefetch_key(h);
        }
        for (i, (&h, &(org, person))) in hashes.iter().zip(pairs).enumerate() {
            if let Some(&ahead) = hashes.get(i + ENTRY_AHEAD) {
                prefetch(entry(ahead));
            }
            if let Some(&ahead) = hashes.get(i + KEY_AHEAD) {
                self.prefetch_key(ahead);
            }
            out.push(self.find_hashed(h, org, person));
        }
    }

    /// Prefetches the key of the member at a hash's first entry, if its tag matches.
    fn prefetch_key(&self, hash: u64) {
        let e = self.table[hash as usize & self.mask];
        if e != EMPTY && e >> 32 == tag(hash) {
            // A key of up to 64 bytes may straddle two cache lines.
            let key = e as u32 as usize;
            prefetch(&self.keys[key]);
            prefetch(&self.keys[(key + 63).min(self.keys.len() - 1)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_by_both_keys_exactly() {
        let keys = df!(
            "org_id" => ["a", "a", "ax", "b"],
            "distinct_id" => ["x", "y", "", "x"],
        )
        .unwrap();
        let index = MemberIndex::new(&keys).unwrap();
        let find = |org: &str, person: &str| index.find(org, person);
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
        let find = |org: &str, person: &str| index.find(org, person);
        for (i, (org, person)) in orgs.iter().zip(&people).enumerate() {
            assert_eq!(find(org, person), i as u32);
            // The same person under the next org is no member.
            let other = format!("org{}", (i + 1) % 37);
            assert_eq!(find(&other, person), NONE);
        }
    }

    #[test]
    fn a_batch_finds_what_single_lookups_find() {
        // Members and strangers interleaved, over more than one lookup block.
        let orgs: Vec<String> = (0..100).map(|i| format!("org{}", i % 7)).collect();
        let people: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
        let keys = df!("org_id" => &orgs, "distinct_id" => &people).unwrap();
        let index = MemberIndex::new(&keys).unwrap();
        let strangers: Vec<String> = (0..100).map(|i| format!("q{i}")).collect();
        let pairs: Vec<(&str, &str)> = (0..100)
            .flat_map(|i| {
                [
                    (orgs[i].as_str(), people[i].as_str()),
                    (orgs[i].as_str(), strangers[i].as_str()),
                ]
            })
            .collect();
        let mut found = Vec::new();
        index.find_all(&pairs, &mut found);
        let expected: Vec<u32> = (0..100u32).flat_map(|i| [i, NONE]).collect();
        assert_eq!(found, expected);
    }
}
