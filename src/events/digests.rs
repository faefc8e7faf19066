//! Rollup digests (`run --rollups`, issue 27's nightly cost): a rollup file summed
//! the way this model's events pass sums it, one row per (org, person, day) with the
//! model's counts, latest instants and visits, kept beside the rollups in
//! `R/.account-health-digests/<layout>/` so that later runs read it instead of every
//! rollup row again. A digest holds every person of the file, member or not (the
//! members table changes from night to night; who is a member is decided when a
//! digest is added, as for rollup rows), so it depends only on the file and on the
//! model's `RollupSpec` (its layout key, a hash of the spec and this tool's version).
//!
//! A digest keeps each person as a keyed 128-bit fingerprint of (org, person)
//! (`PrintKey`), not as the two strings: a run finds the members of a digest's rows
//! by their fingerprints among its members' (`PrintIndex`) rather than hashing and
//! comparing 9M pairs of strings (docs/PERFORMANCE.md, session 27).
//!
//! A digest records the file it was built from: its path under the rollups folder,
//! size, modification and change times, inode and device; and its layout key
//! includes this build of the tool (`build`). A digest whose record differs from the file
//! as it is now (a day rolled again, a warehouse's file rewritten) is built again,
//! and one that cannot be read is too: a digest is never an error, only a saving.
//! Digests are written whole under a temporary name, flushed, then renamed; a
//! rollups folder that cannot be written is read as before, with a note.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_buffer::Buffer;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::member_index::MemberIndex;
use super::slots::{SlotValues, Stretch};
use super::{Accumulator, Chunk, ChunkSink, Layout, KEYS_PER_TASK, NONE, PARTITIONS};
use crate::rollup_spec::RollupSpec;

/// The folder of a rollups folder where digests are kept (its name starts with a
/// dot: the rollups' reader passes over it).
pub const FOLDER: &str = ".account-health-digests";

/// Bumped when a digest's columns or their meaning change: older ones are rebuilt.
/// (2: latest instants stored as `NO_INSTANT` rather than null; 3: people as
/// fingerprints.)
const FORMAT: u32 = 3;

/// The file of a layout's folder holding the key of its fingerprints.
const KEY: &str = ".key";

/// A digest's columns of its fingerprints' high and low halves.
const PRINT_HI: &str = "print_hi";
const PRINT_LO: &str = "print_lo";

/// The Parquet key-value metadata key of a digest's record (`Meta`).
const METADATA_KEY: &str = "account_health_digest";

/// How digests are written: LZ4 reads about as fast as no compression and takes 60%
/// of the room (zstd: a third slower to read); integers plain, not as dictionaries,
/// read back faster (docs/PERFORMANCE.md, sessions 26 and 27).
const DIGEST_ENCODED: crate::output::Encoded = crate::output::Encoded {
    compression: ParquetCompression::Lz4Raw,
    plain_integers: true,
};

/// The file whose modification time says when a run last used a layout's digests.
const USED: &str = ".used";

/// Days after which the digests of a layout no run has used are removed.
const UNUSED_DAYS: u64 = 30;

/// Visit columns are stored under this prefix (a visit column may share a name
/// with a count column: they are columns of two frames of `Rollup`).
const VISIT_PREFIX: &str = "visit:";

/// A rollup file as it is now: what a digest of it must record to be used. Beside
/// its size and modification time (which a copy may keep), its inode, device and
/// change time (which a rewrite, a copy or a move give anew; on Unix).
#[derive(Serialize, Deserialize, PartialEq, Eq, Clone, Debug)]
pub(super) struct Source {
    /// Its path under the rollups folder.
    pub(super) file: String,
    pub(super) bytes: u64,
    pub(super) modified_ns: u64,
    pub(super) changed_ns: i64,
    pub(super) inode: u64,
    pub(super) device: u64,
}

impl Source {
    /// The file at `path` (`file` its name under the rollups folder), from its metadata.
    pub(super) fn of(path: &Path, file: String) -> std::io::Result<Source> {
        let meta = std::fs::metadata(path)?;
        let modified_ns = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        #[cfg(unix)]
        let (changed_ns, inode, device) = {
            use std::os::unix::fs::MetadataExt;
            (
                meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
                meta.ino(),
                meta.dev(),
            )
        };
        #[cfg(not(unix))]
        let (changed_ns, inode, device) = (0, 0, 0);
        Ok(Source {
            file,
            bytes: meta.len(),
            modified_ns,
            changed_ns,
            inode,
            device,
        })
    }
}

/// A digest's record, stored in its Parquet metadata.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Meta {
    format: u32,
    layout: String,
    source: Source,
    /// The earliest instant of any row of the file (its `first_us`), which the
    /// digest's rows do not keep.
    earliest_us: Option<i64>,
    /// The fingerprints' key (`PrintKey::id`, not the key).
    key: String,
}

/// The key of a layout's fingerprints: a person's fingerprint is SipHash-1-3
/// (128-bit) of its org_id and distinct_id under it. Two different people share one
/// with probability ~2^-128 a pair, and since the key is random (kept in the
/// layout's folder, `KEY`), nobody sending events can choose a distinct_id that
/// shares another person's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct PrintKey(u64, u64);

impl PrintKey {
    fn random() -> PrintKey {
        PrintKey(rand::random(), rand::random())
    }

    /// The fingerprint of (org, person).
    pub(super) fn print(&self, org: &str, person: &str) -> u128 {
        use siphasher::sip128::Hasher128;
        use std::hash::Hasher;
        let mut h = siphasher::sip128::SipHasher13::new_with_keys(self.0, self.1);
        // The org's length first: ("ab", "c") and ("a", "bc") differ.
        h.write(&(org.len() as u64).to_le_bytes());
        h.write(org.as_bytes());
        h.write(person.as_bytes());
        let hash = h.finish128();
        (u128::from(hash.h1) << 64) | u128::from(hash.h2)
    }

    /// What a digest records of the key it was made with: a hash of it.
    fn id(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let hash = Sha256::digest(self.text().as_bytes());
        hash[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn text(&self) -> String {
        format!("{:016x}{:016x}", self.0, self.1)
    }

    fn parse(text: &str) -> Option<PrintKey> {
        let text = text.trim();
        (text.len() == 32 && text.is_ascii()).then_some(())?;
        Some(PrintKey(
            u64::from_str_radix(&text[..16], 16).ok()?,
            u64::from_str_radix(&text[16..], 16).ok()?,
        ))
    }
}

/// A run's members by fingerprint under one key: in member order (`by_member`, for
/// a digest's rows, which come in member order), and in fingerprint order with the
/// start of each bucket of fingerprints (their top bits), where a fingerprint is
/// found among the few of its bucket. (Fingerprints are uniform, so buckets are even; a
/// merge of sorted lists would ask the digests' rows to come in fingerprint order,
/// not in member order as the metrics read them.)
pub(super) struct PrintIndex {
    key: PrintKey,
    /// Bits of a fingerprint that choose its bucket.
    bits: u32,
    starts: Vec<u32>,
    /// Each fingerprint beside its member: a lookup reads one place.
    entries: Vec<(u128, u32)>,
    /// Each member's fingerprint, in member order (empty where members are not numbered
    /// 0..n): a digest's rows come in member order, so the member of a row is
    /// usually a few past the one before, and a walk over this finds it in memory
    /// read in order, where a lookup in `entries` waits on a cache miss.
    by_member: Vec<u128>,
}

/// Members from the last one found that `PrintIndex::find` compares before a
/// lookup: a day's rows hold about a third of the members, in member order.
const WALK: usize = 32;

impl PrintIndex {
    pub(super) fn new(members: &MemberIndex, key: &PrintKey) -> PolarsResult<PrintIndex> {
        let keys: Vec<(u32, &str, &str)> = members.keys().collect();
        let mut pairs: Vec<(u128, u32)> = keys
            .par_iter()
            .map(|&(m, org, person)| (key.print(org, person), m))
            .collect();
        pairs.par_sort_unstable();
        // (~2^-128 a pair: a new key, from deleting the key file, ends it.)
        polars_ensure!(pairs.windows(2).all(|w| w[0].0 != w[1].0),
            ComputeError: "two members share a rollup digest fingerprint; delete the digests' {KEY} file to draw a new key");
        let bits = pairs
            .len()
            .max(1)
            .next_power_of_two()
            .trailing_zeros()
            .max(1);
        let mut starts = vec![0u32; (1 << bits) + 1];
        for &(p, _) in &pairs {
            starts[bucket_of(p, bits) + 1] += 1;
        }
        for b in 1..starts.len() {
            starts[b] += starts[b - 1];
        }
        let mut by_member = vec![0u128; pairs.len()];
        for &(p, m) in &pairs {
            match by_member.get_mut(m as usize) {
                Some(slot) => *slot = p,
                None => {
                    // (Member numbers are distinct, so n of them below n cover 0..n.)
                    by_member = Vec::new();
                    break;
                }
            }
        }
        Ok(PrintIndex {
            key: *key,
            bits,
            starts,
            entries: pairs,
            by_member,
        })
    }

    /// The member (or `NONE`) of each of `n` fingerprints, `print(r)` the r-th:
    /// first among the `WALK` members from the last one found, then in `entries`.
    fn find(&self, n: usize, print: impl Fn(usize) -> u128 + Sync) -> Vec<u32> {
        let chunks: Vec<usize> = (0..n).step_by(KEYS_PER_TASK).collect();
        chunks
            .par_iter()
            .flat_map_iter(|&from| {
                let rows = from..(from + KEYS_PER_TASK).min(n);
                let mut found = Vec::with_capacity(rows.len());
                // From the last member found: a digest of several days has each
                // member's days in a row.
                let mut last = 0;
                for r in rows {
                    let p = print(r);
                    let near = self
                        .by_member
                        .get(last..(last + WALK).min(self.by_member.len()));
                    let m = match near.and_then(|near| near.iter().position(|&q| q == p)) {
                        Some(k) => (last + k) as u32,
                        None => self.lookup(p),
                    };
                    if m != NONE {
                        last = m as usize;
                    }
                    found.push(m);
                }
                found
            })
            .collect()
    }

    /// The member of a fingerprint (or `NONE`), from its bucket of `entries`.
    fn lookup(&self, print: u128) -> u32 {
        let b = bucket_of(print, self.bits);
        let bucket = &self.entries[self.starts[b] as usize..self.starts[b + 1] as usize];
        bucket.iter().find(|e| e.0 == print).map_or(NONE, |e| e.1)
    }
}

/// The bucket of a fingerprint: its top `bits` bits.
fn bucket_of(print: u128, bits: u32) -> usize {
    (print >> (128 - bits)) as usize
}

/// A rollup file's digest: `frame` has `print_hi` and `print_lo` (the person's
/// fingerprint's two halves, as i64), `day` (i32 days since the epoch), `n` (u32),
/// `last_us` (i64), the layout's count columns (u32), its latest-instant columns
/// (i64, `NO_INSTANT` when none) and its visit columns (u32, under `VISIT_PREFIX`, 0
/// when none), sorted by (org, person, day), as the run's members are numbered.
#[derive(Clone)]
pub(super) struct Digest {
    frame: DataFrame,
    earliest_us: Option<i64>,
    /// The key of its fingerprints.
    key: PrintKey,
}

/// Where one layout's digests are kept, and what became of them this run.
pub(super) struct Store {
    /// `R/FOLDER/<layout key>`.
    dir: PathBuf,
    layout: String,
    /// Why digests cannot be written here (the first failure); none are tried after.
    not_kept: std::sync::Mutex<Option<String>>,
    /// The fingerprints' key (`key`), read or made when first needed.
    key: std::sync::OnceLock<PrintKey>,
}

/// What a run did with digests (the manifest's `rollups.digests`).
#[derive(Debug, Default, Clone, Serialize)]
pub struct DigestsUsed {
    pub folder: String,
    /// Rollup files read from their digest.
    pub reused: usize,
    /// Rollup files read whole (no digest, or a stale one), their digest built.
    pub built: usize,
    /// Why built digests could not be kept, if so.
    pub not_kept: Option<String>,
}

impl Store {
    /// The digests of `spec`'s layout under the rollups folder `rollups`.
    pub(super) fn new(rollups: &Path, spec: &RollupSpec) -> Store {
        let layout = layout_key(spec);
        Store {
            dir: rollups.join(FOLDER).join(&layout),
            layout,
            not_kept: std::sync::Mutex::new(None),
            key: std::sync::OnceLock::new(),
        }
    }

    /// The key of this layout's fingerprints, kept in its folder: made whole by the
    /// first run that needs it (written aside, then linked in only where none is, so
    /// a key another run made first stays; a damaged one is replaced). A key that
    /// cannot be read for another reason (permissions, an I/O error), or a folder
    /// that cannot be written, gives a key of this run's own: its digests are not
    /// read, and the kept key is left as it is.
    pub(super) fn key(&self) -> PrintKey {
        *self.key.get_or_init(|| {
            let path = self.dir.join(KEY);
            let read = || std::fs::read_to_string(&path).map(|t| PrintKey::parse(&t));
            // The folder is marked used now, not only at the end: another run's
            // pruning must not take it, key and all, while this run uses it.
            let mark = || std::fs::File::create(self.dir.join(USED)).map(drop);
            let key = PrintKey::random();
            match read() {
                Ok(Some(kept)) => {
                    let _ = mark();
                    return kept;
                }
                Ok(None) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => return key,
            }
            let temporary = self
                .dir
                .join(format!(".key.{:016x}.tmp", rand::random::<u64>()));
            let _ = (|| -> std::io::Result<()> {
                std::fs::create_dir_all(&self.dir)?;
                mark()?;
                let mut file = std::fs::File::create(&temporary)?;
                std::io::Write::write_all(&mut file, key.text().as_bytes())?;
                file.sync_all()?;
                if std::fs::hard_link(&temporary, &path).is_err() && matches!(read(), Ok(None)) {
                    std::fs::rename(&temporary, &path)?;
                }
                Ok(())
            })();
            let _ = std::fs::remove_file(&temporary);
            read().ok().flatten().unwrap_or(key)
        })
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the digest of the rollup file named `file` (under the rollups folder,
    /// a `.parquet` name) is kept: its name with each `/` as `+` (a digest records
    /// its file's name, so two names that map to one place only rebuild each other).
    pub(super) fn path_of(&self, file: &str) -> PathBuf {
        self.dir.join(digest_name(file))
    }

    /// The digest of `source` (holding `days`, sorted) if one is kept and still
    /// describes it; `None` when there is none, or it is stale or unreadable (it is
    /// then built again).
    pub(super) fn read(&self, source: &Source, days: &[i32], layout: &Layout) -> Option<Digest> {
        let path = self.path_of(&source.file);
        let file = std::fs::File::open(&path).ok()?;
        let mut reader = ParquetReader::new(file);
        let meta: Meta = reader
            .get_metadata()
            .ok()?
            .key_value_metadata()
            .as_ref()?
            .iter()
            .find(|k| k.key == METADATA_KEY)
            .and_then(|k| serde_json::from_str(k.value.as_deref()?).ok())?;
        let expected = Meta {
            format: FORMAT,
            layout: self.layout.clone(),
            source: source.clone(),
            earliest_us: meta.earliest_us,
            key: self.key().id(),
        };
        if meta != expected {
            return None;
        }
        let mut frame = reader.finish().ok()?;
        frame.rechunk_mut_par();
        let digest = Digest {
            frame,
            earliest_us: meta.earliest_us,
            key: self.key(),
        };
        // Its columns as this layout's, its rows on the file's days (a digest written
        // by hand, or damaged where its footer is not). Whether its members' rows come
        // one per (member, day) in order is seen when it is added (`add_digest`),
        // which then has it built again.
        let values = digest.values(layout).ok()?;
        let on_days = values.day.iter().all(|d| days.binary_search(d).is_ok());
        // A person's rows are together, their days rising (members' rows are checked
        // whole when added; this catches a repeated row of anyone next to its twin).
        let key = |r: usize| (values.print(r), values.day[r]);
        let rising = (1..values.day.len()).all(|r| {
            let ((before, day_before), (print, day)) = (key(r - 1), key(r));
            before != print || day_before < day
        });
        (on_days && rising).then_some(())?;
        Some(digest)
    }

    /// Keeps `digest` as `source`'s: written under a temporary name, flushed, then
    /// renamed over the old one. A failure is remembered (`not_kept`) and no further
    /// digest is tried: the run goes on.
    pub(super) fn write(&self, source: &Source, digest: &Digest) {
        let mut not_kept = self.not_kept.lock().unwrap_or_else(|e| e.into_inner());
        if not_kept.is_some() {
            return;
        }
        let path = self.path_of(&source.file);
        // A name no other writer uses (runs in containers may share a pid).
        let temporary = self.dir.join(format!(
            ".{}.{:016x}.tmp",
            path.file_name().unwrap_or_default().to_string_lossy(),
            rand::random::<u64>()
        ));
        let meta = Meta {
            format: FORMAT,
            layout: self.layout.clone(),
            source: source.clone(),
            earliest_us: digest.earliest_us,
            key: digest.key.id(),
        };
        let written = (|| -> anyhow::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let metadata = KeyValueMetadata::from_static(vec![(
                METADATA_KEY.to_string(),
                serde_json::to_string(&meta)?,
            )]);
            let mut frame = digest.frame.clone();
            crate::output::write_parquet_as(
                &mut frame,
                &temporary,
                Some(metadata),
                DIGEST_ENCODED,
            )?
            .sync_all()?;
            std::fs::rename(&temporary, &path)?;
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            *not_kept = Some(format!("{}: {e:#}", self.dir.display()));
        }
    }

    /// Removes the digests of rollup files no longer there (`files`: the names of
    /// those there are), of every layout, so that a folder rolled for months does
    /// not keep a digest of every day it ever held; the folder of a layout no run
    /// has used for `UNUSED_DAYS` goes whole (an old model's, or an older
    /// version's: their digests would otherwise stay as long as their files). This
    /// layout's folder is marked used.
    /// Failures are ignored: the next run tries again.
    pub(super) fn prune(&self, files: &[&str]) {
        let _ = std::fs::File::create(self.dir.join(USED));
        let keep: std::collections::HashSet<String> =
            files.iter().map(|f| digest_name(f)).collect();
        let Some(all) = self.dir.parent() else {
            return;
        };
        let older_than = |path: &Path, days: u64| {
            std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > days * 24 * 3600)
        };
        for layout in std::fs::read_dir(all).into_iter().flatten().flatten() {
            let dir = layout.path();
            // (A folder without the mark: by its own time.)
            let used = dir.join(USED);
            let mark = if used.exists() { used } else { dir.clone() };
            if dir != self.dir && older_than(&mark, UNUSED_DAYS) {
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let gone =
                    !name.starts_with('.') && name.ends_with(".parquet") && !keep.contains(&name);
                // A temporary file a day old is a run's that stopped while writing.
                let abandoned =
                    name.starts_with('.') && name.ends_with(".tmp") && older_than(&entry.path(), 1);
                if gone || abandoned {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }

    /// Why built digests could not be kept, if so.
    pub(super) fn not_kept(&self) -> Option<String> {
        self.not_kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The name of the digest of the rollup file named `file` (see `Store::path_of`).
fn digest_name(file: &str) -> String {
    file.replace(['/', '\\'], "+")
}

/// The key of a layout: a digest built for one model is read only by models whose
/// events pass counts the same (the `RollupSpec`), by this version of the tool.
fn layout_key(spec: &RollupSpec) -> String {
    use sha2::{Digest as _, Sha256};
    let text = format!(
        "{FORMAT}|{}|{}|{spec:?}",
        env!("CARGO_PKG_VERSION"),
        build()
    );
    let hash = Sha256::digest(text.as_bytes());
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// This build of the tool: its executable's size and modification time. What a
/// digest holds depends on code beyond this module (how the pass classes events and
/// paths, which rows it checks), and the version is not bumped for every change, so
/// each new build keeps digests of its own (its first run builds them). When the
/// executable cannot be found, a key no other run shares: nothing is reused.
fn build() -> String {
    let stamp = std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| Ok((m.len(), m.modified()?)));
    match stamp {
        Ok((bytes, modified)) => format!("{bytes}|{modified:?}"),
        Err(_) => format!("unknown {}", rand::random::<u64>()),
    }
}

/// A digest was not built: a (person, day) of the file sums to more than 2^32-1
/// events (a slot's counts are 32-bit).
pub(super) struct TooManyEvents;

impl Digest {
    /// The digest of a rollup file's rows (`chunks`, checked): every person of the
    /// file is made a member of a members table of its own, and the rows go through
    /// the events pass's phases as they would in a run, so a digest's row is what
    /// the run's slot for that (member, day) would have summed from this file.
    pub(super) fn build(
        chunks: &[Chunk],
        layout: &Layout,
        key: &PrintKey,
    ) -> PolarsResult<Result<Digest, TooManyEvents>> {
        // The file's (org, person) pairs, sorted: a person's member number is its
        // place among them.
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for c in chunks {
            let mut keys: Vec<u64> = c
                .org
                .keys
                .iter()
                .zip(c.person.keys.iter())
                .map(|(&o, &p)| (u64::from(o) << 32) | u64::from(p))
                .collect();
            keys.par_sort_unstable();
            keys.dedup();
            pairs.extend(keys.iter().map(|&k| {
                let (o, p) = ((k >> 32) as usize, k as u32 as usize);
                (c.org.value(o), c.person.value(p))
            }));
        }
        pairs.par_sort_unstable();
        pairs.dedup();
        let keys = DataFrame::new_infer_height(vec![
            StringChunked::from_iter_values("org_id".into(), pairs.iter().map(|p| p.0))
                .into_column(),
            StringChunked::from_iter_values("distinct_id".into(), pairs.iter().map(|p| p.1))
                .into_column(),
        ])?;
        let members = MemberIndex::new(&keys)?;
        let mut acc = Accumulator::new(layout, &members);
        for c in chunks {
            acc.add(c);
            if acc.too_many_events() {
                return Ok(Err(TooManyEvents));
            }
        }
        let (days, totals) = acc.member_days();

        // Rows in (member, day) order, so by (org, person, day).
        let prints: Vec<u128> = pairs.par_iter().map(|&(o, p)| key.print(o, p)).collect();
        let mut order: Vec<u32> = (0..days.member.len() as u32).collect();
        order.par_sort_unstable_by_key(|&r| (days.member[r as usize], days.day[r as usize]));
        fn take<T: Copy>(order: &[u32], values: &[T]) -> Vec<T> {
            order.iter().map(|&r| values[r as usize]).collect()
        }
        let print = |r: &u32| prints[days.member[*r as usize] as usize];
        // The halves' bits as i64 (Parquet has no unsigned 64-bit type of its own).
        let (print_hi, print_lo) = order
            .iter()
            .map(print)
            .map(|p| ((p >> 64) as u64 as i64, p as u64 as i64))
            .unzip();
        // A slot's `n` is 32-bit: its sum fitted (checked above).
        let n = take(&order, &days.n)
            .into_iter()
            .map(|n| n as u32)
            .collect();
        let mut columns = vec![
            Int64Chunked::from_vec(PRINT_HI.into(), print_hi).into_column(),
            Int64Chunked::from_vec(PRINT_LO.into(), print_lo).into_column(),
            Int32Chunked::from_vec("day".into(), take(&order, &days.day)).into_column(),
            UInt32Chunked::from_vec(crate::rollup_spec::EVENTS.into(), n).into_column(),
            Int64Chunked::from_vec(
                crate::rollup_spec::LAST_INSTANT.into(),
                take(&order, &days.last),
            )
            .into_column(),
        ];
        for (name, values) in layout.counts.iter().zip(&days.counts) {
            columns.push(UInt32Chunked::from_vec(name.into(), take(&order, values)).into_column());
        }
        // `NO_INSTANT` (i64::MIN) where a set has none: read back as it is.
        for (name, values) in layout.latest.iter().zip(&days.latest) {
            columns.push(Int64Chunked::from_vec(name.into(), take(&order, values)).into_column());
        }
        // Each visit row's (member, day) slot row, and the visit counts there.
        let slot_row: polars::prelude::PlHashMap<(u32, i32), u32> = order
            .iter()
            .enumerate()
            .map(|(i, &r)| ((days.member[r as usize], days.day[r as usize]), i as u32))
            .collect();
        for (name, values) in layout.visits.iter().zip(&days.visit_counts) {
            let mut column = vec![0u32; order.len()];
            for (v, &count) in values.iter().enumerate() {
                let row = slot_row[&(days.visit_member[v], days.visit_day[v])];
                column[row as usize] = count;
            }
            columns.push(
                UInt32Chunked::from_vec(format!("{VISIT_PREFIX}{name}").into(), column)
                    .into_column(),
            );
        }
        Ok(Ok(Digest {
            frame: DataFrame::new_infer_height(columns)?,
            earliest_us: totals.earliest_us,
            key: *key,
        }))
    }

    /// Its columns as `layout`'s, checked (names and types, no nulls where none
    /// may be); the buffers are shared with the frame, not copied.
    fn values(&self, layout: &Layout) -> PolarsResult<DigestValues> {
        let f = &self.frame;
        fn buffer<T: PolarsNumericType>(
            column: &ChunkedArray<T>,
            name: &str,
        ) -> PolarsResult<Buffer<T::Native>> {
            polars_ensure!(column.null_count() == 0 && column.chunks().len() <= 1,
                ComputeError: "{name}: nulls or chunks");
            Ok(column
                .downcast_iter()
                .next()
                .map(|a| a.values().clone())
                .unwrap_or_default())
        }
        let u32s = |name: &str| buffer(f.column(name)?.u32()?, name);
        let i64s = |name: &str| buffer(f.column(name)?.i64()?, name);
        let latest = (layout.latest.iter())
            .map(|name| i64s(name))
            .collect::<PolarsResult<Vec<_>>>()?;
        Ok(DigestValues {
            print_hi: i64s(PRINT_HI)?,
            print_lo: i64s(PRINT_LO)?,
            day: buffer(f.column("day")?.i32()?, "day")?,
            n: u32s(crate::rollup_spec::EVENTS)?,
            last: i64s(crate::rollup_spec::LAST_INSTANT)?,
            counts: layout
                .counts
                .iter()
                .map(|name| u32s(name))
                .collect::<PolarsResult<_>>()?,
            latest,
            visits: layout
                .visits
                .iter()
                .map(|name| u32s(&format!("{VISIT_PREFIX}{name}")))
                .collect::<PolarsResult<_>>()?,
        })
    }
}

/// A digest's columns, ready to add.
struct DigestValues {
    print_hi: Buffer<i64>,
    print_lo: Buffer<i64>,
    day: Buffer<i32>,
    n: Buffer<u32>,
    last: Buffer<i64>,
    counts: Vec<Buffer<u32>>,
    latest: Vec<Buffer<i64>>,
    visits: Vec<Buffer<u32>>,
}

impl DigestValues {
    /// Row `r`'s fingerprint.
    fn print(&self, r: usize) -> u128 {
        (u128::from(self.print_hi[r] as u64) << 64) | u128::from(self.print_lo[r] as u64)
    }

    fn slot_values(&self) -> SlotValues<'_> {
        SlotValues {
            day: &self.day,
            n: &self.n,
            last: &self.last,
            counts: self.counts.iter().map(|c| &c[..]).collect(),
            latest: self.latest.iter().map(|c| &c[..]).collect(),
            visits: self.visits.iter().map(|c| &c[..]).collect(),
        }
    }

    /// Whether row `r` has a visit.
    fn visited(&self, r: usize) -> bool {
        self.visits.iter().any(|column| column[r] != 0)
    }
}

/// A digest's rows of members, kept as they are until the pass's columns are
/// written (`Accumulator::member_days`): its (member, day)s are added to by no other
/// file and no raw event, so each row is already its (member, day)'s whole row.
pub(super) struct FinishedRows {
    /// The digest's columns but the fingerprints and the visits.
    values: DigestValues,
    /// The rows of members, in digest order, and their member numbers.
    rows: Vec<u32>,
    members: Vec<u32>,
    /// The (member, day) of each of those rows with a visit, and its visit counts
    /// (row-major): few rows have one.
    visits: Vec<(u32, i32)>,
    visit_counts: Vec<u32>,
}

impl FinishedRows {
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(super) fn visit_rows(&self) -> usize {
        self.visits.len()
    }

    /// Writes the rows into their stretch of the (member, day) columns, and their
    /// visit rows into their stretch of the visit columns.
    pub(super) fn write_into(self, days: Stretch, visits: Stretch) {
        days.write_rows(&self.members, &self.rows, &self.values.slot_values());
        visits.write_visits(self.visits.iter().copied(), &self.visit_counts);
    }
}

/// Whether `add_digest` added a digest.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Added {
    Yes,
    /// Its members' rows are not one per (member, day) in order: nothing was added,
    /// and the file's digest must be built again.
    NotAsBuilt,
}

impl Accumulator<'_> {
    /// Adds a digest's rows: each person's member found in the run's members table
    /// (a person who is not a member only counted, as a rollup row's would be); the
    /// totals as the file's rows make them. When the digest's days are its own
    /// (`alone`: no other rollup file holds them, and raw events of held days are
    /// left out) its members' rows are kept as they are (`FinishedRows`); else each
    /// is added to its member's slot for the day as phase two adds rows, in parallel
    /// over the member partitions.
    pub(super) fn add_digest(
        &mut self,
        digest: &Digest,
        prints: &PrintIndex,
        alone: bool,
    ) -> PolarsResult<Added> {
        polars_ensure!(digest.key == prints.key,
            ComputeError: "a digest's fingerprints are under another key");
        let mut v = digest.values(self.layout)?;
        let member = prints.find(v.day.len(), |r| v.print(r));
        // Its members' rows come one per (member, day) in order, as a build writes
        // them (members are numbered in (org, person) order); else it was made by
        // hand or damaged, and nothing of it is added.
        let as_built = {
            let mut rows = (0..member.len()).filter(|&r| member[r] != NONE);
            let key = |r: usize| (member[r], v.day[r]);
            let first = rows.next();
            first.is_none_or(|first| {
                rows.try_fold(key(first), |last, r| (last < key(r)).then(|| key(r)))
                    .is_some()
            })
        };
        if !as_built {
            return Ok(Added::NotAsBuilt);
        }

        let mut parts: Vec<Vec<(u32, u32)>> = vec![Vec::new(); PARTITIONS];
        let mut kept = (Vec::new(), Vec::new());
        let totals = &mut self.totals;
        let mut run = (i32::MIN, 0u64);
        for (r, &m) in member.iter().enumerate() {
            let events = u64::from(v.n[r]);
            totals.rows += events;
            if v.day[r] != run.0 {
                totals.add_events_of_day(run.0, run.1);
                run = (v.day[r], 0);
            }
            run.1 += events;
            if m == NONE {
                totals.unknown_member_events += events;
            } else if alone {
                kept.0.push(r as u32);
                kept.1.push(m);
            } else {
                parts[m as usize % PARTITIONS].push((m, r as u32));
            }
        }
        totals.add_events_of_day(run.0, run.1);
        totals.latest_us = totals.latest_us.max(v.last.iter().copied().max());
        totals.earliest_us = totals
            .earliest_us
            .into_iter()
            .chain(digest.earliest_us)
            .min();

        if alone {
            let (rows, members) = kept;
            let (mut visits, mut visit_counts) = (Vec::new(), Vec::new());
            for (&r, &m) in rows.iter().zip(&members) {
                let r = r as usize;
                if v.visited(r) {
                    visits.push((m, v.day[r]));
                    visit_counts.extend(v.visits.iter().map(|column| column[r]));
                }
            }
            // Only the rows' own columns are kept.
            v.print_hi = Buffer::default();
            v.print_lo = Buffer::default();
            v.visits.clear();
            self.finished.push(FinishedRows {
                values: v,
                rows,
                members,
                visits,
                visit_counts,
            });
            return Ok(Added::Yes);
        }
        let values = v.slot_values();
        self.partitions
            .par_iter_mut()
            .zip(parts)
            .for_each(|(p, rows)| p.add_slots(&rows, &values));
        Ok(Added::Yes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::NO_INSTANT;
    use super::*;
    use crate::model::Model;

    /// A rollup row: (org, person, event, path, count, first_us, last_us).
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        i64,
        i64,
        i64,
    );

    /// The fingerprints' key of the tests' digests.
    const KEY_OF_TESTS: PrintKey = PrintKey(1, 2);

    /// Day 20400 of the epoch, and an instant `us` into it.
    const DAY: i32 = 20400;
    fn at(us: i64) -> i64 {
        i64::from(DAY) * crate::time::MICROS_PER_DAY + us
    }

    /// A rollup file (as `rollup` writes its columns) of these rows: (org, person,
    /// event, path, count, first_us, last_us), all on `DAY`; its chunks.
    fn rollup_chunks(dir: &Path, rows: &[Row]) -> Vec<Chunk> {
        let column = |f: fn(&Row) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
        let mut frame = df!(
            "org_id" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "distinct_id" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "day" => vec![DAY; rows.len()],
            "event" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "path" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "count" => column(|r| r.4),
            "first_us" => column(|r| r.5),
            "last_us" => column(|r| r.6),
        )
        .unwrap()
        .lazy()
        .with_column(col("day").cast(DataType::Date))
        .collect()
        .unwrap();
        let path = dir.join("part-0.parquet");
        crate::output::write_parquet_with(&mut frame, &path, None).unwrap();
        let spec = RollupSpec::of(&Model::default_model());
        super::super::rollup_files::chunks_of_file(dir, &path, &spec)
    }

    const ROWS: [Row; 5] = [
        ("o1", "p1", "insight analyzed", None, 2, 10, 20),
        (
            "o1",
            "p1",
            "$pageview",
            Some("/docs/product-analytics/trends"),
            3,
            5,
            30,
        ),
        ("o1", "p2", "insight saved", None, 1, 7, 7),
        ("o2", "p1", "something else", None, 4, 1, 2),
        ("o1", "p1", "billing v2 shown", None, 1, 12, 12),
    ];

    /// The digest of `chunks`, which must build.
    fn built(chunks: &[Chunk], layout: &Layout, key: &PrintKey) -> Digest {
        Digest::build(chunks, layout, key).unwrap().ok().unwrap()
    }

    /// `digest` with its first row once more, first (`before`) or last: as a damaged
    /// digest might have it.
    fn first_row_twice(digest: &Digest, before: bool) -> Digest {
        let row = digest.frame.slice(0, 1);
        let mut frame = match before {
            true => row.vstack(&digest.frame),
            false => digest.frame.vstack(&row),
        }
        .unwrap();
        frame.rechunk_mut_par();
        Digest {
            frame,
            ..digest.clone()
        }
    }

    /// The default model's layout, a rollup file of `rows_with_instants` (in a folder
    /// kept as long as the first value) as chunks, and their digest.
    fn sample_digest() -> (tempfile::TempDir, Layout, Vec<Chunk>, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::of_default_model();
        let chunks = rollup_chunks(dir.path(), &rows_with_instants());
        let digest = built(&chunks, &layout, &KEY_OF_TESTS);
        (dir, layout, chunks, digest)
    }

    fn rows_with_instants() -> Vec<Row> {
        ROWS.iter()
            .map(|&(o, p, e, path, n, first, last)| (o, p, e, path, n, at(first), at(last)))
            .collect()
    }

    #[test]
    fn a_digest_sums_each_persons_day_as_the_model_counts_it() {
        let (_dir, layout, _, digest) = sample_digest();
        let f = &digest.frame;
        let u32s = |name: &str| -> Vec<u32> {
            f.column(name)
                .unwrap()
                .u32()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        let i64s = |name: &str| -> Vec<Option<i64>> {
            f.column(name).unwrap().i64().unwrap().iter().collect()
        };
        // Sorted by (org, person, day); every person of the file, member or not,
        // as its fingerprint.
        let values = digest.values(&layout).unwrap();
        let prints: Vec<u128> = (0..f.height()).map(|r| values.print(r)).collect();
        let print = |o, p| KEY_OF_TESTS.print(o, p);
        assert_eq!(
            prints,
            [print("o1", "p1"), print("o1", "p2"), print("o2", "p1")]
        );
        assert_eq!(
            f.column("day")
                .unwrap()
                .i32()
                .unwrap()
                .into_no_null_iter()
                .collect::<Vec<_>>(),
            [DAY; 3]
        );
        // o1/p1: 2 + 3 + 1 events, the latest at 30; o1/p2: 1 at 7; o2/p1: 4 at 2.
        assert_eq!(u32s("n"), [6, 1, 4]);
        assert_eq!(i64s("last_us"), [Some(at(30)), Some(at(7)), Some(at(2))]);
        // "insight analyzed" and "insight saved" are insight analysis; only the
        // saved one is `insight_saved`.
        assert_eq!(u32s("n__insight_analysis"), [2, 1, 0]);
        assert_eq!(u32s("n__insight_saved"), [0, 1, 0]);
        // The latest "insight analyzed": o1/p1's at 20, none for the others.
        let none = Some(NO_INSTANT);
        assert_eq!(i64s("last__insight_analyzed"), [Some(at(20)), none, none]);
        // Three page views under /docs/product-analytics: docs and that product's
        // docs; "billing v2 shown" is a billing visit wherever it happens.
        assert_eq!(u32s("visit:n__docs_visit"), [3, 0, 0]);
        assert_eq!(u32s("visit:docs_of__product_analytics"), [3, 0, 0]);
        assert_eq!(u32s("visit:n__billing_visit"), [1, 0, 0]);
        assert_eq!(u32s("visit:docs_of__session_replay"), [0, 0, 0]);
        // The earliest instant of any row (o2/p1's first) is kept beside the rows.
        assert_eq!(digest.earliest_us, Some(at(1)));
    }

    /// A members table of these (org, person) pairs, its index, and its index by
    /// fingerprint.
    fn members(pairs: &[(&str, &str)]) -> (MemberIndex, PrintIndex) {
        let frame = df!(
            "org_id" => pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
            "distinct_id" => pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
        )
        .unwrap();
        let (keys, _) = super::super::member_keys(&frame).unwrap();
        let index = MemberIndex::new(&keys).unwrap();
        let prints = PrintIndex::new(&index, &KEY_OF_TESTS).unwrap();
        (index, prints)
    }

    #[test]
    fn adding_a_digest_is_adding_its_rows() {
        let (_dir, layout, chunks, digest) = sample_digest();
        // o1/p2 is no member: its event is only counted, either way.
        let (index, prints) = members(&[("o1", "p1"), ("o2", "p1"), ("o3", "p9")]);
        // Into the slots (a day other files hold too), or kept as they are.
        for alone in [false, true] {
            let mut by_rows = Accumulator::new(&layout, &index);
            for c in &chunks {
                by_rows.add(c);
            }
            let mut by_digest = Accumulator::new(&layout, &index);
            assert_eq!(
                by_digest.add_digest(&digest, &prints, alone).unwrap(),
                Added::Yes
            );
            assert_eq!(by_digest.finished.len(), usize::from(alone));
            let (a, ta) = by_rows.member_days();
            let (b, tb) = by_digest.member_days();
            assert_eq!(
                (a.member.clone(), a.day.clone()),
                (vec![0, 1], vec![DAY, DAY])
            );
            assert_eq!(
                (a.member, a.day, a.n, a.last),
                (b.member, b.day, b.n, b.last)
            );
            assert_eq!((a.counts, a.latest), (b.counts, b.latest));
            assert_eq!(
                (a.visit_member, a.visit_day, a.visit_counts),
                (b.visit_member, b.visit_day, b.visit_counts)
            );
            assert_eq!((ta.rows, tb.rows), (11, 11));
            assert_eq!((ta.unknown_member_events, tb.unknown_member_events), (1, 1));
            assert_eq!(
                (ta.latest_us, ta.earliest_us),
                (tb.latest_us, tb.earliest_us)
            );
            assert_eq!(ta.events_per_day, tb.events_per_day);
        }
    }

    #[test]
    fn two_digests_of_one_day_add_up_in_one_slot_and_past_2_to_the_32_is_too_many() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::of_default_model();
        let half = |rows: &[Row], n: i64| {
            let rows: Vec<_> = rows
                .iter()
                .map(|r| (r.0, r.1, r.2, r.3, n, r.5, r.6))
                .collect();
            let sub = tempfile::tempdir_in(dir.path()).unwrap();
            let chunks = rollup_chunks(sub.path(), &rows);
            built(&chunks, &layout, &KEY_OF_TESTS)
        };
        let row = [("o1", "p1", "insight saved", None, 0, at(3), at(4))];
        let (index, prints) = members(&[("o1", "p1")]);
        let mut acc = Accumulator::new(&layout, &index);
        // A day split over two files (a warehouse's): one slot, the events summed.
        acc.add_digest(&half(&row, 5), &prints, false).unwrap();
        acc.add_digest(&half(&row, 7), &prints, false).unwrap();
        assert!(!acc.too_many_events());
        let top = i64::from(u32::MAX) - 12;
        acc.add_digest(&half(&row, top), &prints, false).unwrap();
        assert!(!acc.too_many_events(), "2^32-1 fits");
        acc.add_digest(&half(&row, 1), &prints, false).unwrap();
        assert!(acc.too_many_events(), "2^32 does not");
        let mut acc = Accumulator::new(&layout, &index);
        acc.add_digest(&half(&row, 5), &prints, false).unwrap();
        acc.add_digest(&half(&row, 7), &prints, false).unwrap();
        let (days, _) = acc.member_days();
        assert_eq!((days.member, days.n), (vec![0], vec![12]));
        assert_eq!(
            days.counts[layout
                .counts
                .iter()
                .position(|c| c == "n__insight_saved")
                .unwrap()],
            [12]
        );
    }

    #[test]
    fn pruning_removes_digests_of_files_gone_and_layouts_unused_for_a_month() {
        let dir = tempfile::tempdir().unwrap();
        let rollups = dir.path();
        let spec = RollupSpec::of(&Model::default_model());
        let store = Store::new(rollups, &spec);
        let folder = rollups.join(FOLDER);
        let put = |path: &Path, days_old: u64| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let file = std::fs::File::create(path).unwrap();
            let then = std::time::SystemTime::now()
                - std::time::Duration::from_secs(days_old * 24 * 3600 + 60);
            file.set_modified(then).unwrap();
        };
        // This layout: a digest of a file there, one of a file gone, an abandoned
        // temporary file and a fresh one (a run writing now).
        put(&store.path_of("day=a/part-0.parquet"), 0);
        put(&store.path_of("day=b/part-0.parquet"), 0);
        put(&store.dir().join(".day=a+part-0.parquet.1.tmp"), 2);
        put(&store.dir().join(".day=a+part-0.parquet.2.tmp"), 0);
        // Another layout used 10 days ago, and one used 40 days ago.
        put(&folder.join("recent").join(USED), 10);
        put(&folder.join("recent/day=a+part-0.parquet"), 10);
        put(&folder.join("recent/day=b+part-0.parquet"), 10);
        put(&folder.join("old").join(USED), 40);
        put(&folder.join("old/day=a+part-0.parquet"), 40);
        store.prune(&["day=a/part-0.parquet"]);
        let mut left: Vec<String> = Vec::new();
        for layout in std::fs::read_dir(&folder).unwrap().flatten() {
            for entry in std::fs::read_dir(layout.path()).unwrap().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                left.push(format!("{}/{name}", layout.file_name().to_string_lossy()));
            }
        }
        left.sort();
        let this = store
            .dir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut expected = vec![
            "recent/.used".to_string(),
            "recent/day=a+part-0.parquet".into(),
            format!("{this}/.day=a+part-0.parquet.2.tmp"),
            format!("{this}/.used"),
            format!("{this}/day=a+part-0.parquet"),
        ];
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn a_digest_is_read_only_for_its_file_as_it_was_and_its_layout() {
        let dir = tempfile::tempdir().unwrap();
        let rollups = dir.path().join("r");
        std::fs::create_dir_all(rollups.join("day=x")).unwrap();
        let layout = Layout::of_default_model();
        let chunks = rollup_chunks(&rollups.join("day=x"), &rows_with_instants());
        let file = rollups.join("day=x/part-0.parquet");
        let source = Source::of(&file, "day=x/part-0.parquet".into()).unwrap();
        let spec = RollupSpec::of(&Model::default_model());
        let store = Store::new(&rollups, &spec);
        // A digest under another key than the folder's is not read.
        let theirs = built(&chunks, &layout, &KEY_OF_TESTS);
        store.write(&source, &theirs);
        assert!(store.read(&source, &[DAY], &layout).is_none());
        let digest = built(&chunks, &layout, &store.key());
        assert!(
            store.read(&source, &[DAY], &layout).is_none(),
            "none kept yet"
        );
        store.write(&source, &digest);
        assert_eq!(store.not_kept(), None);
        let read = store.read(&source, &[DAY], &layout).unwrap();
        assert!(read.frame.equals_missing(&digest.frame));
        assert_eq!(read.earliest_us, digest.earliest_us);
        assert!(store
            .path_of("day=x/part-0.parquet")
            .ends_with("day=x+part-0.parquet"));
        // The file changed (any of size, times, inode, device): stale.
        for changed in [
            Source {
                bytes: source.bytes + 1,
                ..source.clone()
            },
            Source {
                modified_ns: source.modified_ns + 1,
                ..source.clone()
            },
            Source {
                changed_ns: source.changed_ns + 1,
                ..source.clone()
            },
            Source {
                inode: source.inode + 1,
                ..source.clone()
            },
            Source {
                device: source.device + 1,
                ..source.clone()
            },
        ] {
            assert!(
                store.read(&changed, &[DAY], &layout).is_none(),
                "{changed:?}"
            );
        }
        // Rows on a day the file does not hold, or a person's day twice in a row (a
        // damaged digest): not used.
        assert!(store.read(&source, &[DAY + 1], &layout).is_none());
        let twice = first_row_twice(&digest, true);
        store.write(&source, &twice);
        assert!(store.read(&source, &[DAY], &layout).is_none());
        store.write(&source, &digest);
        assert!(store.read(&source, &[DAY], &layout).is_some());
        // The key is kept in the layout's folder: another store of it reads the
        // digest; a damaged key is replaced, and the digests under the old one are
        // then stale.
        let again = Store::new(&rollups, &spec);
        assert_eq!(again.key(), store.key());
        assert!(again.read(&source, &[DAY], &layout).is_some());
        std::fs::write(store.dir().join(KEY), "damaged").unwrap();
        let anew = Store::new(&rollups, &spec);
        assert_ne!(anew.key(), store.key());
        assert_eq!(Store::new(&rollups, &spec).key(), anew.key());
        assert!(anew.read(&source, &[DAY], &layout).is_none());
        // Another model's layout has its own folder, without this digest.
        let mut other = spec.clone();
        other.counts.pop();
        let theirs = Store::new(&rollups, &other);
        assert_ne!(theirs.dir(), store.dir());
        assert!(theirs.read(&source, &[DAY], &Layout::new(&other)).is_none());
    }

    #[test]
    fn fingerprints_tell_people_apart_and_find_the_members() {
        let k = KEY_OF_TESTS;
        // The org's length is hashed first: a pair split elsewhere differs.
        assert_ne!(k.print("ab", "c"), k.print("a", "bc"));
        assert_ne!(k.print("o1", "p1"), PrintKey(1, 3).print("o1", "p1"));
        assert_eq!(k.print("o1", "p1"), k.print("o1", "p1"));
        assert_eq!(PrintKey::parse(&k.text()), Some(k));
        assert_eq!(PrintKey::parse("damaged"), None);
        // Members numbered in (org, person) order: (o1, p1) 0, (o1, p2) 1, (o2, p1) 2.
        let (_, prints) = members(&[("o2", "p1"), ("o1", "p2"), ("o1", "p1")]);
        let asked = [
            k.print("o2", "p1"),
            k.print("o9", "p1"),
            k.print("o1", "p1"),
            k.print("o1", "p2"),
            PrintKey(1, 3).print("o1", "p1"),
        ];
        assert_eq!(
            prints.find(asked.len(), |r| asked[r]),
            [2, NONE, 0, 1, NONE]
        );
        // More members than one bucket each: all found.
        let people: Vec<String> = (0..1000).map(|i| format!("p{i}")).collect();
        let pairs: Vec<(&str, &str)> = people.iter().map(|p| ("o", p.as_str())).collect();
        let (_, prints) = members(&pairs);
        let mut sorted = people.clone();
        sorted.sort();
        let found = prints.find(sorted.len(), |r| k.print("o", &sorted[r]));
        assert_eq!(found, (0..1000).collect::<Vec<u32>>());
        // Rows in member order, as a digest's are, walk the members from the last
        // found (a member twice: a digest of two days); a gap past the walk, a
        // stranger, a step back and the last members are looked up: every row its
        // member either way.
        let members = [
            0u32,
            1,
            2,
            5,
            5 + WALK as u32 + 3,
            5 + WALK as u32 + 3,
            41,
            u32::MAX,
            42,
            3,
            100,
            999,
            998,
        ];
        let asked: Vec<u128> = members
            .iter()
            .map(|&m| match sorted.get(m as usize) {
                Some(person) => k.print("o", person),
                None => k.print("o", "stranger"),
            })
            .collect();
        let expected: Vec<u32> = members
            .iter()
            .map(|&m| if m == u32::MAX { NONE } else { m })
            .collect();
        assert_eq!(prints.find(asked.len(), |r| asked[r]), expected);
        assert_eq!(
            asked.iter().map(|&p| prints.lookup(p)).collect::<Vec<_>>(),
            expected
        );
    }

    #[test]
    fn a_digest_whose_members_rows_repeat_is_not_added() {
        let (_dir, layout, _, digest) = sample_digest();
        // Its first row (o1/p1: 6 events) twice, as a damaged digest might have it.
        let twice = first_row_twice(&digest, false);
        let (index, prints) = members(&[("o1", "p1"), ("o2", "p1")]);
        for alone in [true, false] {
            let mut acc = Accumulator::new(&layout, &index);
            let added = acc.add_digest(&twice, &prints, alone).unwrap();
            assert_eq!(added, Added::NotAsBuilt);
            assert!(acc.finished.is_empty(), "nothing added");
            assert_eq!(acc.totals.rows, 0, "nothing counted");
            let (days, _) = acc.member_days();
            assert!(days.member.is_empty());
        }
        // In order, the same digest is added (and kept as it is).
        let mut acc = Accumulator::new(&layout, &index);
        assert_eq!(acc.add_digest(&digest, &prints, true).unwrap(), Added::Yes);
        assert_eq!(acc.finished.len(), 1);
    }
}
