//! Phase two of the events pass: the (member, day) slots of each member partition,
//! and writing them out as the rollup's columns.

use polars::prelude::*;

use super::memory::Pages;
use super::{Layout, MemberRow, NONE, NO_INSTANT, PARTITIONS};
use crate::sys::prefetch;
use crate::time::MICROS_PER_DAY;

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

/// One cache line of slot storage: slots start on a line, so a slot of up to 16 words
/// (the default model's is one) is one line and an event touches one line of the
/// table; a wider model's slots take more lines each.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Line([u32; WORDS_PER_LINE]);

const WORDS_PER_LINE: usize = 16;

/// The u32 words of consecutive lines.
fn words(lines: &[Line]) -> &[u32] {
    bytemuck::cast_slice(lines)
}

/// The u32 words of consecutive lines, writable.
fn words_mut(lines: &mut [Line]) -> &mut [u32] {
    bytemuck::cast_slice_mut(lines)
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
    /// Slots per block of `SlotLines` are `1 << block_shift`.
    block_shift: u32,
}

impl SlotShape {
    fn new(layout: &Layout) -> Self {
        let instants = 1 + layout.latest.len();
        let n_at = 2 * instants;
        let visit_row_at = n_at + 1 + layout.counts.len();
        let lines = (visit_row_at + 1).div_ceil(WORDS_PER_LINE);
        // A power of two of slots per block, so a slot's block is a shift away.
        let fits = Pages::<Line>::LEN / lines;
        SlotShape {
            instants,
            n_at,
            visit_row_at,
            lines,
            block_shift: fits.max(1).ilog2(),
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

/// The lines of a partition's slots, in 2 MB blocks (`Pages`) of a power of two of
/// slots each: the table grows by a block and never moves (a growing `Vec` of them
/// spent a tenth of the pass in page faults, copying and faulting in what it moved).
struct SlotLines {
    blocks: Vec<Pages<Line>>,
    shape: SlotShape,
}

impl SlotLines {
    fn slots_per_block(&self) -> usize {
        1 << self.shape.block_shift
    }

    /// Slot `slot`'s lines.
    fn get(&self, slot: usize) -> &[Line] {
        let block = &self.blocks[slot >> self.shape.block_shift];
        let at = (slot & (self.slots_per_block() - 1)) * self.shape.lines;
        &block[at..at + self.shape.lines]
    }

    fn get_mut(&mut self, slot: usize) -> &mut [Line] {
        let per_block = self.slots_per_block();
        let block = &mut self.blocks[slot >> self.shape.block_shift];
        let at = (slot & (per_block - 1)) * self.shape.lines;
        &mut block[at..at + self.shape.lines]
    }

    /// Puts `lines` in slot `slot`, the next slot, adding a block where it starts one.
    fn push(&mut self, slot: usize, lines: &[Line]) {
        if slot >> self.shape.block_shift == self.blocks.len() {
            self.blocks.push(Pages::new());
        }
        self.get_mut(slot).copy_from_slice(lines);
    }

    /// The blocks, in slot order, each with its first slot and the lines of its slots
    /// among the first `slots` (a block's slots in order, `shape.lines` lines each).
    /// By value, so a caller can free each block once it is done with it.
    fn into_blocks(self, slots: usize) -> impl Iterator<Item = (usize, Pages<Line>, usize)> {
        let per_block = self.slots_per_block();
        let lines = self.shape.lines;
        self.blocks.into_iter().enumerate().map(move |(b, block)| {
            let first = b * per_block;
            let here = slots.saturating_sub(first).min(per_block);
            (first, block, here * lines)
        })
    }
}

/// One member partition of the rollup: a slot per (member, day), stored row-major
/// (a slot's counts and instants side by side on its cache lines), and a visit row
/// per (member, day) with a visit (rare: most events are no visit, so the visit
/// counts stay out of the slots and out of the main rollup frame).
///
/// Finding a row's slot: the member's last slot if it is the same day; a new slot if
/// the day is after every day of the member so far (all a time-ordered export ever
/// needs, with no map); otherwise, the first time, the member's slots are put in
/// `slot_of` by walking its chain, and from then on its slots are found there. So any
/// order of rows works, and ordered ones cost no hashing.
pub(super) struct Partition {
    /// (member, day) → slot, for indexed members only.
    slot_of: PlHashMap<u64, u32>,
    /// Per member of the partition (member / PARTITIONS).
    state: Vec<MemberState>,
    member: Vec<u32>,
    day: Vec<i32>,
    /// Per slot: the member's slot opened before it, or `NONE`.
    previous: Vec<u32>,
    /// `shape.lines` lines per slot.
    lines: SlotLines,
    shape: SlotShape,
    empty_slot: Vec<Line>,
    /// Per visit row: its slot.
    visit_slot: Vec<u32>,
    /// Per visit row, `Layout::visits.len()` counts.
    visit_counts: Vec<u32>,
    visit_width: usize,
    /// A slot's `n` wrapped past 2^32-1 (its counts are subsets of `n`, so they
    /// wrap only if it does).
    too_many: bool,
}

impl Partition {
    pub(super) fn new(layout: &Layout, members: usize) -> Self {
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
            lines: SlotLines {
                blocks: Vec::new(),
                shape,
            },
            shape,
            empty_slot: shape.empty(),
            visit_slot: Vec::new(),
            visit_counts: Vec::new(),
            visit_width: layout.visits.len(),
            too_many: false,
        }
    }

    /// Some (member, day) reached more than 2^32-1 events.
    pub(super) fn too_many_events(&self) -> bool {
        self.too_many
    }

    /// Its (member, day) slots so far.
    pub(super) fn slots(&self) -> usize {
        self.member.len()
    }

    /// Its visit rows so far.
    pub(super) fn visit_rows(&self) -> usize {
        self.visit_slot.len()
    }

    fn key(member: u32, day: i32) -> u64 {
        (u64::from(member) << 32) | u64::from(day as u32)
    }

    /// A slot's words.
    #[cfg(test)]
    fn slot_words(&self, slot: usize) -> &[u32] {
        words(self.lines.get(slot))
    }

    /// Opens an empty slot for a (member, day) and links it into the member's chain.
    fn open(&mut self, member: u32, day: i32) -> u32 {
        let k = member as usize / PARTITIONS;
        let slot = self.member.len() as u32;
        self.member.push(member);
        self.day.push(day);
        self.previous.push(self.state[k].newest);
        self.state[k].newest = slot;
        self.lines.push(slot as usize, &self.empty_slot);
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

    /// Phase two: adds this partition's rows of a chunk, a block of rows at a time,
    /// in three steps a block apart, so that each memory load has a block's work to
    /// arrive in: prefetch the members' entries (block b + 2), find the slots and
    /// prefetch their lines (block b + 1), add the counts (block b). Slots are still
    /// found, and counts added, in row order, so nothing depends on the blocks.
    pub(super) fn add(&mut self, rows: &[MemberRow], layout: &Layout) {
        let block = |b: usize| {
            rows.get(b * SLOT_BLOCK..((b + 1) * SLOT_BLOCK).min(rows.len()))
                .filter(|block| !block.is_empty())
        };
        let mut slots = [[0usize; SLOT_BLOCK]; 2];
        for b in 0..2 {
            self.prefetch_members(block(b).unwrap_or_default());
        }
        self.find_slots(block(0).unwrap_or_default(), &mut slots[0]);
        let mut b = 0;
        while let Some(rows) = block(b) {
            self.prefetch_members(block(b + 2).unwrap_or_default());
            self.find_slots(block(b + 1).unwrap_or_default(), &mut slots[(b + 1) % 2]);
            self.add_counts(rows, &slots[b % 2], layout);
            b += 1;
        }
    }

    fn prefetch_members(&self, rows: &[MemberRow]) {
        for r in rows {
            prefetch(&self.state[r.member as usize / PARTITIONS]);
        }
    }

    /// The slots of a block of rows, opened where new, their lines prefetched.
    fn find_slots(&mut self, rows: &[MemberRow], slots: &mut [usize; SLOT_BLOCK]) {
        for (s, r) in slots.iter_mut().zip(rows) {
            *s = self.slot(r.member, r.t.div_euclid(MICROS_PER_DAY) as i32);
            for line in self.lines.get(*s) {
                prefetch(line);
            }
        }
    }

    /// Adds a block of rows to their slots (and visit rows).
    fn add_counts(&mut self, rows: &[MemberRow], slots: &[usize; SLOT_BLOCK], layout: &Layout) {
        let shape = self.shape;
        for (&s, r) in slots.iter().zip(rows) {
            let w = words_mut(self.lines.get_mut(s));
            let (n, wrapped) = w[shape.n_at].overflowing_add(r.weight);
            w[shape.n_at] = n;
            self.too_many |= wrapped;
            raise_instant(w, 0, r.t);
            if let Some(class) = layout.classes.get(r.class as usize) {
                for &c in &class.counts {
                    w[shape.n_at + 1 + c] += r.weight;
                }
                for &l in &class.latest {
                    raise_instant(w, 1 + l, r.t);
                }
            }
            if r.visits != 0 {
                let counts = visit_row(
                    w,
                    shape.visit_row_at,
                    s,
                    &mut self.visit_slot,
                    &mut self.visit_counts,
                    self.visit_width,
                );
                for &c in &layout.visit_sets[r.visits as usize] {
                    counts[c as usize] += r.weight;
                }
            }
        }
    }

    /// Adds finished (member, day) rows (a digest's, `digests`), each `(member,
    /// row)`: a row's events, counts and visits are added to its member's slot for
    /// its day and its instants raise the slot's, as the events it sums would have.
    pub(super) fn add_slots(&mut self, rows: &[(u32, u32)], values: &SlotValues) {
        let shape = self.shape;
        for &(member, r) in rows {
            let r = r as usize;
            let s = self.slot(member, values.day[r]);
            let w = words_mut(self.lines.get_mut(s));
            let (n, wrapped) = w[shape.n_at].overflowing_add(values.n[r]);
            w[shape.n_at] = n;
            self.too_many |= wrapped;
            raise_instant(w, 0, values.last[r]);
            // Counts are subsets of `n`: they wrap only if it does (an error then).
            for (c, column) in values.counts.iter().enumerate() {
                let at = shape.n_at + 1 + c;
                w[at] = w[at].wrapping_add(column[r]);
            }
            for (l, column) in values.latest.iter().enumerate() {
                raise_instant(w, 1 + l, column[r]);
            }
            if values.visits.iter().any(|column| column[r] != 0) {
                let counts = visit_row(
                    w,
                    shape.visit_row_at,
                    s,
                    &mut self.visit_slot,
                    &mut self.visit_counts,
                    self.visit_width,
                );
                for (c, column) in values.visits.iter().enumerate() {
                    counts[c] = counts[c].wrapping_add(column[r]);
                }
            }
        }
    }
}

/// The counts of the visit row of slot `s` (whose words are `w`, its visit row at
/// `at`), the row opened on the slot's first visit (`visit_slot`, `visit_counts` and
/// `width` are its partition's).
fn visit_row<'v>(
    w: &mut [u32],
    at: usize,
    s: usize,
    visit_slot: &mut Vec<u32>,
    visit_counts: &'v mut Vec<u32>,
    width: usize,
) -> &'v mut [u32] {
    if w[at] == NONE {
        w[at] = visit_slot.len() as u32;
        visit_slot.push(s as u32);
        visit_counts.resize(visit_counts.len() + width, 0);
    }
    let row = w[at] as usize;
    &mut visit_counts[row * width..][..width]
}

/// The columns of finished (member, day) rows (`Partition::add_slots`), in the
/// layout's order: `latest` is `NO_INSTANT` where a set has no instant, `visits` 0
/// where a row has no visit.
pub(super) struct SlotValues<'a> {
    pub(super) day: &'a [i32],
    pub(super) n: &'a [u32],
    pub(super) last: &'a [i64],
    pub(super) counts: Vec<&'a [u32]>,
    pub(super) latest: Vec<&'a [i64]>,
    pub(super) visits: Vec<&'a [u32]>,
}

/// The columns of one rollup frame, at full length, before they become a frame.
pub(super) struct Columns {
    pub(super) member: Vec<u32>,
    pub(super) day: Vec<i32>,
    /// Events per row; empty in the visits frame, which has none.
    pub(super) n: Vec<i64>,
    pub(super) counts: Vec<Vec<u32>>,
    pub(super) instants: Vec<Vec<i64>>,
}

impl Columns {
    pub(super) fn new(lengths: &[usize], with_n: bool, counts: usize, instants: usize) -> Self {
        let rows: usize = lengths.iter().sum();
        // (Zeros allocated for each, not clones: fresh zeroed memory costs no writes.)
        Columns {
            member: vec![0; rows],
            day: vec![0; rows],
            n: if with_n { vec![0; rows] } else { Vec::new() },
            counts: (0..counts).map(|_| vec![0; rows]).collect(),
            instants: (0..instants).map(|_| vec![0; rows]).collect(),
        }
    }

    /// Each partition's stretch of every column (`n` only where the frame has one).
    pub(super) fn stretches(&mut self, lengths: &[usize]) -> Vec<Stretch<'_>> {
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
pub(super) struct Stretch<'a> {
    member: &'a mut [u32],
    day: &'a mut [i32],
    n: &'a mut [i64],
    counts: Vec<&'a mut [u32]>,
    instants: Vec<&'a mut [i64]>,
}

impl Stretch<'_> {
    /// Writes finished (member, day) rows (`digests::FinishedRows`) into this
    /// stretch: row k is row `rows[k]` of `values` (whose `visits` are not read), of
    /// member `members[k]`. Column by column, as the columns are stored.
    pub(super) fn write_rows(self, members: &[u32], rows: &[u32], values: &SlotValues) {
        fn gather<T: Copy, U>(to: &mut [U], from: &[T], rows: &[u32], f: impl Fn(T) -> U) {
            for (to, &r) in to.iter_mut().zip(rows) {
                *to = f(from[r as usize]);
            }
        }
        self.member.copy_from_slice(members);
        gather(self.day, values.day, rows, |d| d);
        gather(self.n, values.n, rows, i64::from);
        let mut instants = self.instants.into_iter();
        if let Some(last) = instants.next() {
            gather(last, values.last, rows, |t| t);
        }
        for (to, from) in instants.zip(&values.latest) {
            gather(to, from, rows, |t| t);
        }
        for (to, from) in self.counts.into_iter().zip(&values.counts) {
            gather(to, from, rows, |c| c);
        }
    }

    /// Writes visit rows into this stretch of the visit columns: row v is the v-th
    /// of `rows`' (member, day)s, its counts `counts[v * width..][..width]` (a
    /// partition's, or a digest's finished rows').
    pub(super) fn write_visits(self, rows: impl Iterator<Item = (u32, i32)>, counts: &[u32]) {
        let width = self.counts.len();
        let Stretch {
            member,
            day,
            counts: mut columns,
            ..
        } = self;
        for (v, (m, d)) in rows.enumerate() {
            member[v] = m;
            day[v] = d;
            for (column, &value) in columns.iter_mut().zip(&counts[v * width..][..width]) {
                column[v] = value;
            }
        }
    }
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
    pub(super) fn write_into(self, days: Stretch, visits: Stretch) {
        let shape = self.shape;
        days.member.copy_from_slice(&self.member);
        days.day.copy_from_slice(&self.day);
        let Stretch {
            n,
            mut counts,
            mut instants,
            ..
        } = days;
        for (first, block, used) in self.lines.into_blocks(self.member.len()) {
            for (k, lines) in block[..used].chunks_exact(shape.lines).enumerate() {
                let s = first + k;
                let w = words(lines);
                n[s] = i64::from(w[shape.n_at]);
                for (c, column) in counts.iter_mut().enumerate() {
                    column[s] = w[shape.n_at + 1 + c];
                }
                for (i, column) in instants.iter_mut().enumerate() {
                    column[s] = instant(w, i);
                }
            }
            // Each block is freed as soon as it is copied, not with the partition:
            // the columns' next pages are then likely this block's, still backed by
            // the host, and fresh memory is what this copy mostly waits on.
            drop(block);
        }
        let rows =
            (self.visit_slot.iter()).map(|&s| (self.member[s as usize], self.day[s as usize]));
        visits.write_visits(rows, &self.visit_counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The visit set of these visit columns, added to the layout if it has none.
    fn visit_set(layout: &mut Layout, columns: &[u32]) -> u32 {
        let at = layout.visit_sets.iter().position(|s| s == columns);
        at.unwrap_or_else(|| {
            layout.visit_sets.push(columns.to_vec());
            layout.visit_sets.len() - 1
        }) as u32
    }

    /// Visit columns 0 and 1 of the default layout.
    const DOCS: u32 = 0;
    const BILLING: u32 = 1;

    /// An instant `us` microseconds into `day`.
    fn at(day: i32, us: i64) -> i64 {
        i64::from(day) * MICROS_PER_DAY + us
    }

    #[test]
    fn a_member_day_seen_again_after_other_days_adds_to_its_first_slot() {
        let layout = Layout::of_default_model();
        let mut part = Partition::new(&layout, 8);
        let row = |day, us| MemberRow {
            t: at(day, us),
            visits: 0,
            member: 0,
            weight: 1,
            class: NONE,
        };
        // Day 5, then day 3, then day 5 again (found through the map, not the
        // member's latest slot), then day 3 again.
        part.add(&[row(5, 50), row(3, 30), row(5, 55), row(3, 31)], &layout);
        assert_eq!(part.member, vec![0, 0]);
        assert_eq!(part.day, vec![5, 3]);
        let n = |slot: usize| part.slot_words(slot)[part.shape.n_at];
        let last = |slot: usize| instant(part.slot_words(slot), 0);
        assert_eq!((n(0), last(0)), (2, at(5, 55)));
        assert_eq!((n(1), last(1)), (2, at(3, 31)));
    }

    #[test]
    fn rows_in_any_order_find_their_member_day() {
        let layout = Layout::of_default_model();
        let mut part = Partition::new(&layout, 16);
        // Members 0 and 8 share partition 0.
        let row = |member, day| MemberRow {
            t: at(day, 0),
            visits: 0,
            member,
            weight: 1,
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
    fn rows_added_in_blocks_are_added_as_one_at_a_time() {
        // Phase two looks a block and two blocks ahead: rows over many blocks (and a
        // last, partial block), members coming back on earlier days and with visits,
        // give the slots and visit rows that adding each row alone gives.
        let mut layout = Layout::of_default_model();
        let docs = visit_set(&mut layout, &[DOCS]);
        let class = |i: u32| {
            if i.is_multiple_of(3) {
                NONE
            } else {
                i % layout.classes.len() as u32
            }
        };
        let rows: Vec<MemberRow> = (0..5 * SLOT_BLOCK as u32 + 7)
            .map(|i| MemberRow {
                t: at(
                    10 + (i * 11 % 4) as i32,
                    i64::from(i) * 1000 + i64::from(i % 7),
                ),
                visits: if i.is_multiple_of(5) { docs } else { 0 },
                member: (i * 7 % 13) * PARTITIONS as u32,
                weight: 1 + i % 3,
                class: class(i),
            })
            .collect();
        let mut together = Partition::new(&layout, 13 * PARTITIONS);
        together.add(&rows, &layout);
        let mut alone = Partition::new(&layout, 13 * PARTITIONS);
        for r in &rows {
            alone.add(std::slice::from_ref(r), &layout);
        }
        assert_eq!(together.slots(), alone.slots());
        assert!(together.slots() > 13, "members come back on other days");
        assert_eq!(
            (&together.member, &together.day),
            (&alone.member, &alone.day)
        );
        for slot in 0..together.slots() {
            assert_eq!(together.slot_words(slot), alone.slot_words(slot));
        }
        assert_eq!(together.visit_slot, alone.visit_slot);
        assert_eq!(together.visit_counts, alone.visit_counts);
    }

    #[test]
    fn an_empty_slot_has_no_instants_and_no_visit_row() {
        let layout = Layout::of_default_model();
        let shape = SlotShape::new(&layout);
        let empty = shape.empty();
        assert_eq!(empty.len(), shape.lines);
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
    fn slot_lines_cross_blocks_in_slot_order() {
        // 1, 2 and 3 lines per slot: 32768, 16384 and 8192 slots per 2 MB block. A
        // slot is 4 words (`last_us`, `n`, visit row) and one per count.
        for (counts, per_block) in [(0, 32768), (13, 16384), (30, 8192)] {
            let mut layout = Layout::of_default_model();
            layout.latest.clear();
            layout.counts = (0..counts).map(|i| format!("n__extra{i}")).collect();
            let shape = SlotShape::new(&layout);
            let mut lines = SlotLines {
                blocks: Vec::new(),
                shape,
            };
            assert_eq!(lines.slots_per_block(), per_block);
            let slots = 2 * per_block + 3;
            for s in 0..slots {
                let mut slot = vec![Line([0; WORDS_PER_LINE]); shape.lines];
                let w = words_mut(&mut slot);
                w[0] = s as u32;
                *w.last_mut().unwrap() = !(s as u32);
                lines.push(s, &slot);
            }
            assert_eq!(lines.blocks.len(), 3);
            for s in [0, per_block - 1, per_block, slots - 1] {
                let w = words(lines.get(s));
                assert_eq!((w[0], w[w.len() - 1]), (s as u32, !(s as u32)));
            }
            let mut seen = Vec::new();
            for (first, block, used) in lines.into_blocks(slots) {
                assert_eq!(first, seen.len());
                seen.extend(block[..used].chunks_exact(shape.lines).map(|l| words(l)[0]));
            }
            assert_eq!(seen, (0..slots as u32).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_slot_wider_than_a_line_keeps_every_count() {
        let mut layout = Layout::of_default_model();
        // A line's worth of counted sets more than the default: the slot takes two
        // lines or more and the visit row's word sits past the first.
        for i in 0..WORDS_PER_LINE {
            layout.counts.push(format!("n__extra{i}"));
        }
        let shape = SlotShape::new(&layout);
        assert!(shape.lines >= 2);
        assert!(shape.visit_row_at >= WORDS_PER_LINE);
        let (docs, billing) = (
            visit_set(&mut layout, &[DOCS]),
            visit_set(&mut layout, &[BILLING]),
        );
        let mut part = Partition::new(&layout, 16);
        let saved = layout.class_of["insight saved"] as u32;
        let row = |member, day, us, visits| MemberRow {
            t: at(day, us),
            visits,
            member,
            weight: 1,
            class: saved,
        };
        let rows = [
            row(0, 1, 10, 0),
            row(8, 1, 11, docs),
            row(0, 1, 12, billing),
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
        assert_eq!(days.instants[0], vec![at(1, 12), at(1, 11)]);
        let saved_column = layout
            .counts
            .iter()
            .position(|c| c == &crate::rollup_spec::count_column("insight_saved"))
            .unwrap();
        assert_eq!(days.counts[saved_column], vec![2, 1]);
        assert!(days.counts[layout.counts.len() - 1].iter().all(|&c| c == 0));
        // Visit rows in order of first visit: member 8's docs, then member 0's billing.
        assert_eq!(visits.member, vec![8, 0]);
        assert_eq!(visits.counts[DOCS as usize], vec![1, 0]);
        assert_eq!(visits.counts[BILLING as usize], vec![0, 1]);
    }

    #[test]
    fn visits_get_a_row_per_member_day_with_one() {
        let mut layout = Layout::of_default_model();
        let docs = visit_set(&mut layout, &[DOCS]);
        let billing = visit_set(&mut layout, &[BILLING]);
        let both = visit_set(&mut layout, &[DOCS, BILLING]);
        let mut part = Partition::new(&layout, 8);
        let pageview = layout.class_of["$pageview"] as u32;
        let row = |day, visits| MemberRow {
            t: at(day, 0),
            visits,
            member: 0,
            weight: 1,
            class: pageview,
        };
        // Day 1: no visit; day 2: docs twice and billing once (one row); day 1 again
        // with a billing visit: its row opens after day 2's.
        part.add(
            &[row(1, 0), row(2, docs), row(2, both), row(1, billing)],
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
    fn a_weighted_row_adds_its_weight_where_an_event_adds_one() {
        // A rollup row of 3 events counts as 3 rows of one: in `n`, the event's
        // counted sets and its visits; its instant is raised once.
        let mut layout = Layout::of_default_model();
        let docs = visit_set(&mut layout, &[DOCS]);
        let pageview = layout.class_of["$pageview"] as u32;
        let row = |us, weight| MemberRow {
            t: at(4, us),
            visits: docs,
            member: 0,
            weight,
            class: pageview,
        };
        let mut weighted = Partition::new(&layout, 8);
        weighted.add(&[row(7, 3), row(9, 2)], &layout);
        let mut single = Partition::new(&layout, 8);
        single.add(
            &[row(5, 1), row(7, 1), row(6, 1), row(9, 1), row(8, 1)],
            &layout,
        );
        assert_eq!(weighted.slot_words(0)[weighted.shape.n_at], 5);
        assert_eq!(instant(weighted.slot_words(0), 0), at(4, 9));
        assert_eq!(weighted.slot_words(0), single.slot_words(0));
        assert_eq!(weighted.visit_counts, single.visit_counts);
        assert_eq!(weighted.visit_counts[DOCS as usize], 5);
    }
}
