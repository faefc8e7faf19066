//! Aggregates of member events per member and per org, computed straight from the
//! rollup's columns: the metrics, indicators and users table ask for ~60 windowed
//! sums, member counts and maxima, and a polars `group_by` with a filter inside each
//! aggregation (or masked columns in a two-stage group_by) spent seconds re-filtering
//! 10M rows per aggregate. Here the rows each distinct filter selects are found once,
//! every aggregate then fills a dense per-member array from plain slices of the
//! rollup in one tight loop over its filter's rows, and the per-org values are
//! reduced over each org's members, which are contiguous (members are numbered in
//! (org_id, distinct_id) order).

use polars::prelude::*;
use rayon::prelude::*;

use crate::events::Rollup;
use crate::time::{AsOf, DayRuns, Window};

/// Which rollup rows an aggregate reads: the rows whose day is in `days` (and a
/// weekday, with `weekdays_only`) and, with `set_count`, that hold at least one event
/// of the set (its count column is above zero).
#[derive(Clone, PartialEq)]
pub struct RowFilter {
    days: Window,
    weekdays_only: bool,
    set_count: Option<String>,
}

impl RowFilter {
    /// The rows of the days of a window.
    pub fn days(days: Window) -> Self {
        RowFilter {
            days,
            weekdays_only: false,
            set_count: None,
        }
    }

    /// Only the rows of Monday to Friday.
    pub fn weekdays_only(mut self) -> Self {
        self.weekdays_only = true;
        self
    }

    /// Only rows with an event counted in `count_column` (`rollup_spec::count_column`).
    pub fn with_events_in(mut self, count_column: String) -> Self {
        self.set_count = Some(count_column);
        self
    }
}

enum Kind {
    /// The sum of a count column.
    Sum(String),
    /// The number of members with a matching row (per org), or whether the member
    /// has one (per member).
    Members,
    /// Whether any row matches.
    Any,
    /// The number of matching rows: one per member and day.
    Rows,
    /// The maximum of an instant column, nulls ignored, over all member events.
    Max(String),
}

struct Aggregate {
    alias: String,
    kind: Kind,
    filter: Option<RowFilter>,
}

/// The aggregates a stage asks for, computed together by `per_member` or `per_org`.
#[derive(Default)]
pub struct EventAggregates {
    aggregates: Vec<Aggregate>,
}

impl EventAggregates {
    /// The sum of a count column over the matching rows, in the column's type.
    pub fn sum(&mut self, alias: &str, column: &str, filter: RowFilter) {
        self.push(alias, Kind::Sum(column.into()), Some(filter));
    }

    /// Members with a matching row (UInt32); per member, whether it has one.
    pub fn members(&mut self, alias: &str, filter: RowFilter) {
        self.push(alias, Kind::Members, Some(filter));
    }

    /// Whether any row matches (Boolean).
    pub fn any(&mut self, alias: &str, filter: RowFilter) {
        self.push(alias, Kind::Any, Some(filter));
    }

    /// The number of matching rows (UInt32): each is one member on one day.
    pub fn rows(&mut self, alias: &str, filter: RowFilter) {
        self.push(alias, Kind::Rows, Some(filter));
    }

    /// The latest instant of an instant column (Int64, null when there is none).
    pub fn max(&mut self, alias: &str, column: &str) {
        self.push(alias, Kind::Max(column.into()), None);
    }

    fn push(&mut self, alias: &str, kind: Kind, filter: Option<RowFilter>) {
        self.aggregates.push(Aggregate {
            alias: alias.into(),
            kind,
            filter,
        });
    }

    /// One row per member, in member order (sorted by `org_id`, `distinct_id`):
    /// `org_id`, `distinct_id` and each aggregate under its alias (a member without
    /// events before as_of has sums of 0 and null maxima).
    pub fn per_member(&self, events: &MemberEvents) -> PolarsResult<DataFrame> {
        let values = self.values(events, Per::Member)?;
        let mut columns = vec![
            events.keys.column("org_id")?.clone(),
            events.keys.column("distinct_id")?.clone(),
        ];
        for (a, v) in self.aggregates.iter().zip(values) {
            columns.push(v.into_column(&a.alias, events.rollup_dtype(&a.kind)?)?);
        }
        DataFrame::new_infer_height(columns)
    }

    /// One row per org with a member event before as_of, in org order: `org_id` and
    /// each aggregate under its alias.
    pub fn per_org(&self, events: &MemberEvents) -> PolarsResult<DataFrame> {
        // Orgs by their index in `org_members`; those with a row before as_of kept.
        let kept: Vec<usize> = (0..events.org_members.len())
            .filter(|&o| {
                events.has_rows[events.org_members[o].clone()]
                    .iter()
                    .any(|&h| h)
            })
            .collect();
        let mut columns = vec![events.org_ids(kept.iter().map(|&o| &events.org_members[o]))?];
        // Summed straight into each org (no per-member vector per aggregate: at one
        // as_of a date those were most of `backfill`'s fresh memory).
        let values = self.values(events, Per::Org)?;
        for (a, v) in self.aggregates.iter().zip(values) {
            let per_org = v.select(&kept);
            columns.push(per_org.into_column(&a.alias, events.rollup_dtype(&a.kind)?)?);
        }
        DataFrame::new_infer_height(columns)
    }

    /// Every aggregate over every member. Aggregates with equal filters share one
    /// selection of rows (the rows before as_of that pass the filter, in order); each
    /// aggregate is then one tight loop over its selection, the selections in
    /// parallel. Each aggregate is computed on its own from the same rows in the same
    /// order, so the threads change nothing.
    fn values(&self, events: &MemberEvents, per: Per) -> PolarsResult<Vec<Values>> {
        let prepared = self
            .aggregates
            .iter()
            .map(|a| events.prepare(a))
            .collect::<PolarsResult<Vec<_>>>()?;
        let mut by_filter: Vec<(Option<&RowFilter>, Table, Vec<usize>)> = Vec::new();
        for (i, p) in prepared.iter().enumerate() {
            match by_filter
                .iter_mut()
                .find(|(f, t, _)| *f == p.filter && *t == p.table)
            {
                Some((_, _, members)) => members.push(i),
                None => by_filter.push((p.filter, p.table, vec![i])),
            }
        }
        // The filters are many (~40 for the metrics) and each small: they run side by
        // side, rather than one after another with two short parallel steps each.
        let computed: Vec<Vec<Values>> = by_filter
            .par_iter()
            .map(|(filter, table, aggregates)| {
                let rows = events.selection(*filter, prepared[aggregates[0]].set, *table)?;
                aggregates
                    .iter()
                    .map(|&i| {
                        let (read, kind) = (&prepared[i].read, &self.aggregates[i].kind);
                        events.aggregate(read, kind, &rows, *table, per)
                    })
                    .collect::<PolarsResult<Vec<Values>>>()
            })
            .collect::<PolarsResult<_>>()?;
        let mut values: Vec<Option<Values>> = prepared.iter().map(|_| None).collect();
        for ((_, _, aggregates), computed) in by_filter.into_iter().zip(computed) {
            for (i, v) in aggregates.into_iter().zip(computed) {
                values[i] = Some(v);
            }
        }
        values
            .into_iter()
            .map(|v| v.ok_or_else(|| polars_err!(ComputeError: "an aggregate was not computed")))
            .collect()
    }
}

/// Whom an aggregate's values are for.
#[derive(Clone, Copy, PartialEq)]
enum Per {
    Member,
    /// Each org of `org_members`, by its index there.
    Org,
}

/// Dense values of one aggregate, per member or per org.
enum Values {
    Sum(Vec<u64>),
    Flag(Vec<bool>),
    Max(Vec<Option<i64>>),
}

impl Values {
    /// The values at these indices, in their order.
    fn select(self, kept: &[usize]) -> Values {
        fn pick<T: Copy>(v: Vec<T>, kept: &[usize]) -> Vec<T> {
            kept.iter().map(|&i| v[i]).collect()
        }
        match self {
            Values::Sum(v) => Values::Sum(pick(v, kept)),
            Values::Flag(v) => Values::Flag(pick(v, kept)),
            Values::Max(v) => Values::Max(pick(v, kept)),
        }
    }

    fn into_column(self, name: &str, dtype: DataType) -> PolarsResult<Column> {
        let column = match self {
            Values::Sum(v) => Column::new(name.into(), v),
            Values::Flag(v) => Column::new(name.into(), v),
            Values::Max(v) => Column::new(name.into(), v),
        };
        column.cast(&dtype)
    }
}

/// Which rollup frame an aggregate reads: the (member, day) rows, or the visit rows
/// (a sum of a visit count column).
#[derive(Clone, Copy, PartialEq)]
enum Table {
    Days,
    Visits,
}

/// The member events before as_of (SPEC 2): the rollup, read through plain slices,
/// with the member keys. Rows of days at or after as_of stay in the frames (no copy of
/// 10M rows); every aggregate skips them.
#[derive(Clone)]
pub struct MemberEvents {
    /// The rollup rows, one chunk per column.
    frame: DataFrame,
    /// The rollup's visit rows, one chunk per column.
    visits: DataFrame,
    /// Rows of days before this one are member events.
    as_of_day: i32,
    /// Member number → `org_id`, `distinct_id` (sorted).
    keys: DataFrame,
    /// Row of the members table → member number.
    member_of_row: Vec<u32>,
    /// The members of each org: a range of member numbers, in org order.
    org_members: Vec<std::ops::Range<usize>>,
    /// Per member: its org's index in `org_members`.
    org_of_member: Vec<u32>,
    /// Per member: has a rollup row before as_of.
    has_rows: Vec<bool>,
    /// Per member: the day of its first rollup row (`i32::MAX` without rows).
    first_day: Vec<i32>,
    /// The day order of `frame`'s rows.
    frame_runs: DayRuns,
    /// The day order of `visits`' rows.
    visit_runs: DayRuns,
    /// The first and last day of `frame`'s rows, and of `visits`' (`(0, -1)` for
    /// none): every row's day lies within them, so a `Selection` need only cover them.
    frame_days: (i32, i32),
    visit_days: (i32, i32),
}

/// More day runs than this and a frame's rows are read whole (a binary search and a
/// task per run would cost more than they save).
const MAX_DAY_RUNS: usize = 256;

impl MemberEvents {
    pub fn new(rollup: &Rollup, as_of: &AsOf) -> PolarsResult<MemberEvents> {
        let mut frame = rollup.frame.clone();
        frame.rechunk_mut();
        let mut visits = rollup.visits.clone();
        visits.rechunk_mut();
        let keys = rollup.members.clone();
        let mut org_members = Vec::new();
        let orgs = keys.column("org_id")?.str()?;
        let mut start = 0;
        let mut previous: Option<&str> = None;
        for (i, org) in orgs.iter().enumerate() {
            if i > 0 && org != previous {
                org_members.push(start..i);
                start = i;
            }
            previous = org;
        }
        if keys.height() > 0 {
            org_members.push(start..keys.height());
        }
        let mut first_day = vec![i32::MAX; keys.height()];
        let day = frame.column("day")?.i32()?.cont_slice()?;
        for (&m, &d) in slice_u32(&frame, "member")?.iter().zip(day) {
            let first = &mut first_day[m as usize];
            *first = (*first).min(d);
        }
        let has_rows = has_rows_before(&first_day, as_of);
        let frame_runs = DayRuns::of(day, MAX_DAY_RUNS);
        let visit_runs = DayRuns::of(visits.column("day")?.i32()?.cont_slice()?, MAX_DAY_RUNS);
        let day_range = |frame: &DataFrame| -> PolarsResult<(i32, i32)> {
            let day = frame.column("day")?.i32()?;
            Ok((day.min().unwrap_or(0), day.max().unwrap_or(-1)))
        };
        let (frame_days, visit_days) = (day_range(&frame)?, day_range(&visits)?);
        Ok(MemberEvents {
            frame,
            visits,
            as_of_day: as_of.day,
            keys,
            member_of_row: rollup.member_of_row.clone(),
            org_of_member: org_members
                .iter()
                .enumerate()
                .flat_map(|(o, r)| std::iter::repeat_n(o as u32, r.len()))
                .collect(),
            org_members,
            has_rows,
            first_day,
            frame_runs,
            visit_runs,
            frame_days,
            visit_days,
        })
    }

    /// The same member events at another as_of: the rollup's keys, orgs and day runs
    /// are found once for every date `backfill` and `backtest` score, not per date.
    pub fn at(&self, as_of: &AsOf) -> MemberEvents {
        // Only these two fields depend on as_of.
        MemberEvents {
            as_of_day: as_of.day,
            has_rows: has_rows_before(&self.first_day, as_of),
            ..self.clone()
        }
    }

    /// Member number → `org_id`, `distinct_id`, sorted.
    pub fn keys(&self) -> &DataFrame {
        &self.keys
    }

    /// Row of the members table → member number.
    pub fn member_of_row(&self) -> &[u32] {
        &self.member_of_row
    }

    /// Per org of the members table (in org order): `org_id` and, for each
    /// `(alias, instant)`, the members counted at that instant (SPEC 2: joined before
    /// it, not removed before it), by the member number of each `members` row: a
    /// member with several rows counts once if any of them is counted.
    pub fn members_at(
        &self,
        members: &DataFrame,
        instants: &[(String, i64)],
    ) -> PolarsResult<DataFrame> {
        let joined = members.column("joined_at")?.i64()?;
        let removed = members.column("removed_at")?.i64()?;
        let mut columns = vec![self.orgs()?];
        for (alias, t) in instants {
            let mut counted = vec![false; self.keys.height()];
            for ((&m, joined), removed) in self
                .member_of_row
                .iter()
                .zip(joined.iter())
                .zip(removed.iter())
            {
                if joined.is_some_and(|j| j < *t) && removed.is_none_or(|r| r >= *t) {
                    counted[m as usize] = true;
                }
            }
            let per_org: Vec<IdxSize> = self
                .org_members
                .iter()
                .map(|r| counted[r.clone()].iter().filter(|&&c| c).count() as IdxSize)
                .collect();
            columns.push(IdxCa::from_vec(alias.into(), per_org).into_column());
        }
        DataFrame::new_infer_height(columns)
    }

    /// The distinct `org_id`s of the members, sorted.
    pub fn orgs(&self) -> PolarsResult<Column> {
        self.org_ids(self.org_members.iter())
    }

    /// The `org_id` of each of these orgs (ranges of `org_members`).
    fn org_ids<'a>(
        &self,
        orgs: impl Iterator<Item = &'a std::ops::Range<usize>>,
    ) -> PolarsResult<Column> {
        let first: Vec<IdxSize> = orgs.map(|r| r.start as IdxSize).collect();
        self.keys
            .column("org_id")?
            .take(&IdxCa::from_vec("first".into(), first))
    }

    /// The frame an aggregate reads: `visits` when it sums a visit count or counts
    /// the members with a visit, else `frame`. (A filter on a set of one frame and a
    /// sum of the other's column is no aggregate any stage asks for.)
    fn table_of(&self, kind: &Kind, filter: Option<&RowFilter>) -> Table {
        let column = match kind {
            Kind::Sum(c) => Some(c),
            _ => filter.and_then(|f| f.set_count.as_ref()),
        };
        match column {
            Some(c) if self.visits.schema().contains(c) => Table::Visits,
            _ => Table::Days,
        }
    }

    fn frame_of(&self, table: Table) -> &DataFrame {
        match table {
            Table::Days => &self.frame,
            Table::Visits => &self.visits,
        }
    }

    /// The output type of an aggregate: a sum keeps its column's type.
    fn rollup_dtype(&self, kind: &Kind) -> PolarsResult<DataType> {
        Ok(match kind {
            Kind::Sum(c) => self
                .frame_of(self.table_of(kind, None))
                .column(c)?
                .dtype()
                .clone(),
            Kind::Members | Kind::Rows => IDX_DTYPE,
            Kind::Any => DataType::Boolean,
            Kind::Max(_) => DataType::Int64,
        })
    }

    /// An aggregate's columns, as slices.
    fn prepare<'a>(&'a self, a: &'a Aggregate) -> PolarsResult<Prepared<'a>> {
        let table = self.table_of(&a.kind, a.filter.as_ref());
        let frame = self.frame_of(table);
        let read = match &a.kind {
            Kind::Sum(c) => {
                let column = frame.column(c)?;
                match column.dtype() {
                    DataType::Int64 => Read::SumI64(column.i64()?.cont_slice()?),
                    _ => Read::SumU32(slice_u32(frame, c)?),
                }
            }
            Kind::Members | Kind::Any => Read::Flag,
            Kind::Rows => Read::Rows,
            Kind::Max(c) => {
                let column = frame.column(c)?.i64()?;
                let array = column
                    .downcast_iter()
                    .next()
                    .ok_or_else(|| polars_err!(ComputeError: "empty column {c}"))?;
                Read::Max(array)
            }
        };
        let set = match a.filter.as_ref().and_then(|f| f.set_count.as_deref()) {
            Some(c) => Some(slice_u32(frame, c)?),
            None => None,
        };
        Ok(Prepared {
            table,
            filter: a.filter.as_ref(),
            set,
            read,
        })
    }

    /// The rows an aggregate with this filter reads (`Selection`): the rows before
    /// as_of, in the filter's days (weekdays only if asked), with an event of the
    /// filter's set if it names one. Where the rows are in day order (`DayRuns`), only
    /// the stretches of the filter's days are read.
    fn selection<'a>(
        &'a self,
        filter: Option<&RowFilter>,
        set: Option<&'a [u32]>,
        table: Table,
    ) -> PolarsResult<Selection<'a>> {
        let day = self.frame_of(table).column("day")?.i32()?.cont_slice()?;
        let window = match filter {
            Some(f) => f.days.before(self.as_of_day),
            None => Window {
                start_day: i32::MIN,
                end_day: self.as_of_day,
            },
        };
        let (runs, (first, last)) = match table {
            Table::Days => (&self.frame_runs, self.frame_days),
            Table::Visits => (&self.visit_runs, self.visit_days),
        };
        // The selected days: the frame's days in the window (every row's day is
        // within the frame's first and last), then, for weekdays only, a mark per day
        // (weekday windows are at most `MAX_WINDOW_DAYS` long; an unbounded window
        // may span whatever old days the frame holds, so gets no table).
        debug_assert!(day.iter().all(|d| (first..=last).contains(d)));
        let first = first.max(window.start_day);
        let last = last.min(window.end_day - 1);
        let weekdays_only = filter.is_some_and(|f| f.weekdays_only);
        Ok(Selection {
            day,
            spans: runs.spans(day, window.start_day, window.end_day),
            first_day: first,
            len: if first <= last {
                (last - first) as usize + 1
            } else {
                0
            },
            weekdays: if weekdays_only {
                (first..=last).map(|d| window.holds_day(d, true)).collect()
            } else {
                Vec::new()
            },
            set,
        })
    }

    /// The selected rows as a list, in row order.
    #[cfg(test)]
    fn selected_rows(
        &self,
        filter: Option<&RowFilter>,
        set: Option<&[u32]>,
        table: Table,
    ) -> PolarsResult<Vec<u32>> {
        let mut rows = Vec::new();
        self.selection(filter, set, table)?
            .for_each(|i| rows.push(i as u32));
        Ok(rows)
    }

    /// One aggregate over the selected rows, per member or straight into each org
    /// (sums of whole numbers and maxima: the same in any order). Per org, `Members`
    /// counts each member once (a flag per member marks those already counted).
    fn aggregate(
        &self,
        read: &Read,
        kind: &Kind,
        rows: &Selection,
        table: Table,
        per: Per,
    ) -> PolarsResult<Values> {
        let member = slice_u32(self.frame_of(table), "member")?;
        // Monomorphised per slot rule: the loops below run once per row of the
        // selection's stretches.
        Ok(match per {
            Per::Member => self.fill(read, kind, rows, member, |m| m, self.keys.height(), per),
            Per::Org => {
                let org = &self.org_of_member;
                let orgs = self.org_members.len();
                self.fill(read, kind, rows, member, |m| org[m] as usize, orgs, per)
            }
        })
    }

    /// `aggregate` into `slots` values, a row's slot being `slot` of its member.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        read: &Read,
        kind: &Kind,
        rows: &Selection,
        member: &[u32],
        slot: impl Fn(usize) -> usize + Copy,
        slots: usize,
        per: Per,
    ) -> Values {
        let members = self.keys.height();
        // Every row of the stretches is visited and added under a mask (0 or all
        // ones) of whether it is selected: whether a row holds an event of the set is
        // unpredictable, and a branch on it cost more than the masked adds.
        match read {
            Read::SumI64(c) => sum_per_slot(slots, member, rows, slot, |i| c[i] as u64),
            Read::SumU32(c) => sum_per_slot(slots, member, rows, slot, |i| u64::from(c[i])),
            Read::Rows => sum_per_slot(slots, member, rows, slot, |_| 1),
            Read::Flag if per == Per::Org && matches!(kind, Kind::Members) => {
                let mut counted = vec![false; members];
                let mut counts = vec![0u64; slots];
                rows.for_each_marked(|i, selected| {
                    let m = member[i] as usize;
                    counts[slot(m)] += u64::from(selected & !counted[m]);
                    counted[m] |= selected;
                });
                Values::Sum(counts)
            }
            Read::Flag => {
                let mut flags = vec![false; slots];
                rows.for_each_marked(|i, selected| flags[slot(member[i] as usize)] |= selected);
                Values::Flag(flags)
            }
            Read::Max(c) => {
                // i64::MIN stands for "none yet" while reading; `seen` tells a real
                // i64::MIN instant from it.
                let mut latest = vec![i64::MIN; slots];
                let mut seen = vec![false; slots];
                let values = c.values().as_slice();
                let mut add = |i: usize, selected: bool| {
                    let s = slot(member[i] as usize);
                    let t = values[i];
                    let t = if selected { t } else { i64::MIN };
                    latest[s] = latest[s].max(t);
                    seen[s] |= selected;
                };
                match c.validity() {
                    Some(valid) => {
                        rows.for_each_marked(|i, selected| add(i, selected & valid.get_bit(i)))
                    }
                    None => rows.for_each_marked(add),
                }
                Values::Max(
                    latest
                        .into_iter()
                        .zip(seen)
                        .map(|(t, seen)| seen.then_some(t))
                        .collect(),
                )
            }
        }
    }
}

/// An aggregate ready for a pass: its filter and the slices it reads.
struct Prepared<'a> {
    table: Table,
    filter: Option<&'a RowFilter>,
    set: Option<&'a [u32]>,
    read: Read<'a>,
}

/// What an aggregate reads from each matching row.
enum Read<'a> {
    SumI64(&'a [i64]),
    SumU32(&'a [u32]),
    Rows,
    Flag,
    /// An instant column (nullable).
    Max(&'a <Int64Type as PolarsDataType>::Array),
}

/// Each slot's sum of `value(row)` over the rows (`slot` of the row's member).
fn sum_per_slot(
    slots: usize,
    member: &[u32],
    rows: &Selection,
    slot: impl Fn(usize) -> usize,
    value: impl Fn(usize) -> u64,
) -> Values {
    let mut sums = vec![0u64; slots];
    rows.for_each_marked(|i, selected| {
        sums[slot(member[i] as usize)] += value(i) & u64::from(selected).wrapping_neg();
    });
    Values::Sum(sums)
}

/// The rows an aggregate reads (`MemberEvents::selection`), found as they are read:
/// each aggregate of a filter tests the rows of the filter's stretches itself (a
/// list of the selected rows, written then read by each aggregate, cost more).
struct Selection<'a> {
    day: &'a [i32],
    /// The stretches of rows that can hold the window's days, in row order.
    spans: Vec<std::ops::Range<usize>>,
    /// The selected days are `len` days from `first_day` (the frame's days in the
    /// window) and, for weekdays only, those marked in `weekdays` (one per day of
    /// them): a compare, or one load, a row rather than the window and weekday
    /// arithmetic, which had been most of a row's instructions.
    first_day: i32,
    len: usize,
    weekdays: Vec<bool>,
    /// The filter's event set count per row, if it names one.
    set: Option<&'a [u32]>,
}

impl Selection<'_> {
    /// `f` of each selected row, in row order.
    #[cfg(test)]
    fn for_each(&self, mut f: impl FnMut(usize)) {
        self.for_each_marked(|i, selected| {
            if selected {
                f(i)
            }
        });
    }

    /// `f(row, selected)` of every row of the stretches, in row order: the caller
    /// adds the row only where `selected` (masked, not branched on).
    #[inline]
    fn for_each_marked(&self, f: impl FnMut(usize, bool)) {
        // A day outside the `len` days is outside the window (only an unsorted
        // frame's stretches hold such rows); a day before `first_day` wraps to a
        // number past any length. Each test is its own loop: a compare, or one load.
        let first = self.first_day;
        let at = move |d: i32| d.wrapping_sub(first) as u32 as usize;
        if self.weekdays.is_empty() {
            let len = self.len;
            self.for_each_tested(move |d| at(d) < len, f)
        } else {
            let weekdays = &self.weekdays;
            self.for_each_tested(|d| weekdays.get(at(d)).copied().unwrap_or(false), f)
        }
    }

    /// `for_each_marked` with `selected` the test of a row's day.
    #[inline]
    fn for_each_tested(&self, selected: impl Fn(i32) -> bool, mut f: impl FnMut(usize, bool)) {
        for span in &self.spans {
            let days = &self.day[span.clone()];
            match self.set {
                Some(set) => {
                    let set = &set[span.clone()];
                    for (k, (&d, &n)) in days.iter().zip(set).enumerate() {
                        f(span.start + k, (n > 0) & selected(d));
                    }
                }
                None => {
                    for (k, &d) in days.iter().enumerate() {
                        f(span.start + k, selected(d));
                    }
                }
            }
        }
    }
}

/// Per member: whether its first rollup row is before as_of.
fn has_rows_before(first_day: &[i32], as_of: &AsOf) -> Vec<bool> {
    first_day.iter().map(|&d| d < as_of.day).collect()
}

fn slice_u32<'a>(frame: &'a DataFrame, column: &str) -> PolarsResult<&'a [u32]> {
    frame.column(column)?.u32()?.cont_slice()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::time::MICROS_PER_DAY;

    /// Four members: a/p1 (0), a/p2 (1), b/q1 (2), c/r1 (3, no events); as_of is day
    /// 100 (1970-04-11, a Saturday). Visits (`n__v`) on three of the member days.
    fn events() -> MemberEvents {
        events_at("1970-04-11")
    }

    /// `events()` at another as_of.
    fn events_at(as_of: &str) -> MemberEvents {
        let at = |day: i64, s: i64| day * MICROS_PER_DAY + s;
        let frame = df!(
            "member" => [0u32, 0, 1, 2, 2],
            "day" => [93i32, 99, 92, 100, 96],
            "n" => [2i64, 1, 4, 3, 1],
            "n__x" => [1u32, 0, 2, 3, 0],
            "last_us" => [at(93, 5), at(99, 7), at(92, 1), at(100, 1), at(96, 9)],
        )
        .unwrap();
        let members = df!(
            "org_id" => ["a", "a", "b", "c"],
            "distinct_id" => ["p1", "p2", "q1", "r1"],
        )
        .unwrap();
        let visits = df!(
            "member" => [0u32, 1, 2],
            "day" => [93i32, 92, 100],
            "n__v" => [2u32, 5, 1],
        )
        .unwrap();
        let rollup = Rollup {
            frame,
            visits,
            members,
            member_of_row: vec![0, 1, 2, 3],
            rows: 11,
            latest_us: None,
            earliest_us: None,
            skipped: Default::default(),
            events_per_day: BTreeMap::new(),
            unknown_member_events: 0,
            from_rollups: 0,
            digests: None,
        };
        MemberEvents::new(&rollup, &AsOf::parse(as_of).unwrap()).unwrap()
    }

    #[test]
    fn members_at_counts_members_joined_before_and_not_removed_before_each_instant() {
        // Members a/p1 (0), a/p2 (1), b/q1 (2), c/r1 (3); a/p1 has two rows, a/p2
        // left at 50 and rejoined at 60.
        let members = df!(
            "org_id" => ["a", "a", "a", "b", "c", "a"],
            "distinct_id" => ["p1", "p2", "p2", "q1", "r1", "p1"],
            "joined_at" => [10i64, 10, 60, 100, 5, 20],
            "removed_at" => [None, Some(50i64), None, None, Some(100), None],
        )
        .unwrap();
        let rollup = Rollup {
            frame: df!(
                "member" => Vec::<u32>::new(),
                "day" => Vec::<i32>::new(),
                "n" => Vec::<i64>::new(),
                "last_us" => Vec::<i64>::new(),
            )
            .unwrap(),
            visits: df!("member" => Vec::<u32>::new(), "day" => Vec::<i32>::new()).unwrap(),
            members: df!(
                "org_id" => ["a", "a", "b", "c"],
                "distinct_id" => ["p1", "p2", "q1", "r1"],
            )
            .unwrap(),
            member_of_row: vec![0, 1, 1, 2, 3, 0],
            rows: 0,
            latest_us: None,
            earliest_us: None,
            skipped: Default::default(),
            events_per_day: BTreeMap::new(),
            unknown_member_events: 0,
            from_rollups: 0,
            digests: None,
        };
        let events = MemberEvents::new(&rollup, &AsOf::parse("1970-04-11").unwrap()).unwrap();
        let at = |t: i64| (format!("at_{t}"), t);
        let counts = events
            .members_at(&members, &[at(55), at(100), at(101)])
            .unwrap();
        let column = |name: &str| -> Vec<IdxSize> {
            let c = counts.column(name).unwrap().idx().unwrap();
            c.into_no_null_iter().collect()
        };
        assert_eq!(
            counts
                .column("org_id")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            [Some("a"), Some("b"), Some("c")]
        );
        // At 55: a/p1 (a/p2 left at 50, back at 60); c/r1. p1's two rows count once.
        assert_eq!(column("at_55"), [1, 0, 1]);
        // At 100: b/q1 joins exactly then (not before it); c/r1 leaves exactly then
        // (not before it), so it still counts.
        assert_eq!(column("at_100"), [2, 0, 1]);
        assert_eq!(column("at_101"), [2, 1, 0]);
    }

    /// One member's rows of these days, with `x` as the counts of set `n__x`.
    fn one_member_events(day: &[i32], x: &[u32]) -> MemberEvents {
        let rows = day.len();
        let frame = df!(
            "member" => vec![0u32; rows],
            "day" => day,
            "n" => vec![1i64; rows],
            "n__x" => x,
            "last_us" => vec![0i64; rows],
        )
        .unwrap();
        let rollup = Rollup {
            frame,
            visits: df!("member" => Vec::<u32>::new(), "day" => Vec::<i32>::new()).unwrap(),
            members: df!("org_id" => ["a"], "distinct_id" => ["p"]).unwrap(),
            member_of_row: vec![0],
            rows: rows as u64,
            latest_us: None,
            earliest_us: None,
            skipped: Default::default(),
            events_per_day: BTreeMap::new(),
            unknown_member_events: 0,
            from_rollups: 0,
            digests: None,
        };
        MemberEvents::new(&rollup, &AsOf::parse("1970-04-11").unwrap()).unwrap()
    }

    /// The rows a filter keeps, row by row (as_of is day 100).
    fn kept_one_by_one(day: &[i32], x: &[u32], filter: &RowFilter) -> Vec<u32> {
        (0..day.len() as u32)
            .filter(|&i| {
                let d = day[i as usize];
                filter.days.before(100).holds_day(d, filter.weekdays_only)
                    && (filter.set_count.is_none() || x[i as usize] > 0)
            })
            .collect()
    }

    #[test]
    fn rows_are_selected_across_stretches_in_row_order() {
        // 20,000 rows in no day order (one run, read whole), the last selected near
        // its end.
        let rows = 20_000usize;
        let day: Vec<i32> = (0..rows).map(|i| 80 + (i * 7 % 25) as i32).collect();
        let x: Vec<u32> = (0..rows).map(|i| u32::from(i.is_multiple_of(3))).collect();
        let events = one_member_events(&day, &x);
        assert!(!events.frame_runs.is_sorted());
        let filter = last_days(10).weekdays_only().with_events_in("n__x".into());
        let selected: Vec<u32> = events
            .selected_rows(Some(&filter), Some(&x), Table::Days)
            .unwrap();
        // Days 90..100 before as_of (day 100), weekdays only, with an x event.
        let expected = kept_one_by_one(&day, &x, &filter);
        assert!(expected.len() > 1000 && expected.last() > Some(&19_000));
        assert_eq!(selected, expected);
    }

    #[test]
    fn rows_in_day_runs_are_selected_as_row_by_row() {
        // Three runs in day order, as a time-ordered export's partitions are: one of
        // 12,000 rows, one that ends before as_of, one of five rows.
        let mut day: Vec<i32> = (0..12_000).map(|i| 60 + i / 300).collect();
        day.extend((0..9_000).map(|i| 70 + i / 400));
        day.extend([91, 95, 99, 100, 104]);
        let x: Vec<u32> = (0..day.len()).map(|i| u32::from(i % 5 == 1)).collect();
        let events = one_member_events(&day, &x);
        assert!(events.frame_runs.is_sorted());
        assert_eq!(events.frame_runs.len(), 3);
        let window = |start_day, end_day| RowFilter::days(Window { start_day, end_day });
        for filter in [
            last_days(10).weekdays_only().with_events_in("n__x".into()),
            last_days(7),
            // Beyond as_of: cut at day 100.
            window(95, 120),
            // Before every row, and inside the second run only.
            window(10, 50),
            window(80, 90).with_events_in("n__x".into()),
        ] {
            let set = filter.set_count.as_ref().map(|_| x.as_slice());
            let selected = events
                .selected_rows(Some(&filter), set, Table::Days)
                .unwrap();
            let expected = kept_one_by_one(&day, &x, &filter);
            assert!(
                selected == expected,
                "{} rows, not {}",
                selected.len(),
                expected.len()
            );
        }
        // No filter: every row before as_of, all but the last two (days 100, 104).
        let all = events.selected_rows(None, None, Table::Days).unwrap();
        assert!(all == (0..day.len() as u32 - 2).collect::<Vec<_>>());
    }

    #[test]
    fn days_far_apart_are_selected_without_a_table_of_every_day_between() {
        // A day ~2,700 years before the others (unsorted: the old one in the middle),
        // as_of day 100: an unbounded window selects every row before as_of, by the
        // days' range alone; a weekday window marks only its own days.
        let day = [95, 99, -1_000_000, 100, 97];
        let x = [1u32; 5];
        let events = one_member_events(&day, &x);
        let all = events.selection(None, None, Table::Days).unwrap();
        assert!(all.weekdays.is_empty());
        assert_eq!(all.len, 1_000_100);
        assert_eq!(
            events.selected_rows(None, None, Table::Days).unwrap(),
            [0, 1, 2, 4]
        );
        let filter = last_days(7).weekdays_only();
        let week = events.selection(Some(&filter), None, Table::Days).unwrap();
        assert_eq!(week.weekdays.len(), 7);
        // Days 93-99: 95 (Monday), 97 (Wednesday) and 99 (Friday) are weekdays; the
        // old day is outside.
        let selected = events
            .selected_rows(Some(&filter), None, Table::Days)
            .unwrap();
        assert_eq!(selected, [0, 1, 4]);
        assert_eq!(selected, kept_one_by_one(&day, &x, &filter));
    }

    fn last_days(n: i32) -> RowFilter {
        RowFilter::days(Window {
            start_day: 100 - n,
            end_day: 100,
        })
    }

    #[test]
    fn per_org_aggregates_worked_by_hand() {
        let mut aggs = EventAggregates::default();
        // [93, 100): a = 2 + 1 (day 92 is out), b = 1 (day 100 is as_of: out).
        aggs.sum("events_7d", "n", last_days(7));
        // With an x event in [93, 100): only a/p1 (day 93); b's x is on day 100.
        aggs.members("x_members_7d", last_days(7).with_events_in("n__x".into()));
        // [92, 100) reaches a/p2's day 92.
        aggs.any("x_any_8d", last_days(8).with_events_in("n__x".into()));
        aggs.max("last_us", "last_us");
        // Weekdays of [93, 100): 93 and 94 are a weekend; a has day 99, b day 96.
        aggs.rows("weekday_rows_7d", last_days(7).weekdays_only());
        let df = aggs.per_org(&events()).unwrap();
        let expected = df!(
            "org_id" => ["a", "b"],
            "events_7d" => [3i64, 1],
            "x_members_7d" => [1 as IdxSize, 0],
            "x_any_8d" => [true, false],
            "last_us" => [99 * MICROS_PER_DAY + 7, 96 * MICROS_PER_DAY + 9],
            "weekday_rows_7d" => [1 as IdxSize, 1],
        )
        .unwrap();
        assert!(df.equals_missing(&expected), "{df}\n{expected}");
    }

    #[test]
    fn per_org_counts_a_member_with_many_rows_once() {
        // [93, 100): a/p1 has days 93 and 99 (one member, two rows; a/p2's day 92 is
        // out), b/q1 day 96. Over [92, 100) a/p2 counts too.
        let mut aggs = EventAggregates::default();
        aggs.members("members_7d", last_days(7));
        aggs.members("members_8d", last_days(8));
        aggs.rows("rows_7d", last_days(7));
        let df = aggs.per_org(&events()).unwrap();
        let expected = df!(
            "org_id" => ["a", "b"],
            "members_7d" => [1 as IdxSize, 1],
            "members_8d" => [2 as IdxSize, 1],
            "rows_7d" => [2 as IdxSize, 1],
        )
        .unwrap();
        assert!(df.equals_missing(&expected), "{df}\n{expected}");
    }

    #[test]
    fn per_org_before_every_row_is_empty_with_the_aggregates_types() {
        // as_of day 92 (1970-04-03): no row is before it, so no org has member events.
        let mut aggs = EventAggregates::default();
        aggs.sum("events_8d", "n", last_days(8));
        aggs.members("members_8d", last_days(8));
        aggs.any("x_any_8d", last_days(8).with_events_in("n__x".into()));
        aggs.max("last_us", "last_us");
        let df = aggs.per_org(&events_at("1970-04-03")).unwrap();
        assert_eq!(df.height(), 0);
        assert_eq!(
            df.dtypes(),
            [
                DataType::String,
                DataType::Int64,
                IDX_DTYPE,
                DataType::Boolean,
                DataType::Int64
            ]
        );
        // A day later (as_of day 93) a/p2's day 92 is in ([92, 93)): org a alone.
        let df = aggs.per_org(&events_at("1970-04-04")).unwrap();
        let expected = df!(
            "org_id" => ["a"],
            "events_8d" => [4i64],
            "members_8d" => [1 as IdxSize],
            "x_any_8d" => [true],
            "last_us" => [92 * MICROS_PER_DAY + 1],
        )
        .unwrap();
        assert!(df.equals_missing(&expected), "{df}\n{expected}");
    }

    #[test]
    fn events_moved_to_another_as_of_aggregate_as_events_made_at_it() {
        // Made at day 100 (1970-04-11), moved to days 92 (before every row), 93
        // (a/p2's day 92 only), 97 and 101 (b/q1's day 100 too): the same orgs and
        // values as events made at each day.
        let mut aggs = EventAggregates::default();
        aggs.sum("events_8d", "n", last_days(8));
        aggs.members("members_8d", last_days(8));
        aggs.any("x_any_8d", last_days(8).with_events_in("n__x".into()));
        aggs.max("last_us", "last_us");
        aggs.sum("visits_8d", "n__v", last_days(8));
        let moved_from = events();
        for as_of in ["1970-04-03", "1970-04-04", "1970-04-08", "1970-04-12"] {
            let moved = moved_from.at(&AsOf::parse(as_of).unwrap());
            let (a, b) = (
                aggs.per_org(&moved).unwrap(),
                aggs.per_org(&events_at(as_of)).unwrap(),
            );
            assert!(a.equals_missing(&b), "{as_of}: {a}\n{b}");
            let (a, b) = (
                aggs.per_member(&moved).unwrap(),
                aggs.per_member(&events_at(as_of)).unwrap(),
            );
            assert!(a.equals_missing(&b), "{as_of}: {a}\n{b}");
        }
        // The org kept at day 93 is a alone, at 101 a and b (c never has rows).
        let orgs = |as_of: &str| -> Vec<String> {
            let df = aggs
                .per_org(&moved_from.at(&AsOf::parse(as_of).unwrap()))
                .unwrap();
            let ids = df.column("org_id").unwrap().str().unwrap().clone();
            ids.iter().flatten().map(str::to_string).collect()
        };
        assert_eq!(orgs("1970-04-04"), ["a"]);
        assert_eq!(orgs("1970-04-12"), ["a", "b"]);
    }

    #[test]
    fn aggregates_of_one_window_with_different_filters_each_read_their_own_rows() {
        // Rows before as_of: a/p1 day 93 (n 2, x 1), a/p1 day 99 (n 1), a/p2 day 92
        // (n 4, x 2), b/q1 day 96 (n 1). Days 93 is a Saturday, 99 a Friday, 96 a
        // Tuesday. Equal filters share one selection of rows; the others must not.
        let mut aggs = EventAggregates::default();
        aggs.sum("n_7d", "n", last_days(7));
        aggs.sum("n_7d_weekdays", "n", last_days(7).weekdays_only());
        aggs.sum("n_8d", "n", last_days(8));
        aggs.sum(
            "n_7d_with_x",
            "n",
            last_days(7).with_events_in("n__x".into()),
        );
        aggs.sum("n_7d_again", "n", last_days(7));
        let df = aggs.per_org(&events()).unwrap();
        let expected = df!(
            "org_id" => ["a", "b"],
            "n_7d" => [3i64, 1],
            "n_7d_weekdays" => [1i64, 1],
            "n_8d" => [7i64, 1],
            "n_7d_with_x" => [2i64, 0],
            "n_7d_again" => [3i64, 1],
        )
        .unwrap();
        assert!(df.equals_missing(&expected), "{df}\n{expected}");
    }

    #[test]
    fn visit_sums_read_the_visit_rows_and_cover_the_same_orgs() {
        let mut aggs = EventAggregates::default();
        aggs.sum("n_7d", "n", last_days(7));
        // [93, 100): a/p1's 2 on day 93; a/p2's day 92 and b/q1's day 100 are out.
        aggs.sum("v_7d", "n__v", last_days(7));
        aggs.sum("v_8d", "n__v", last_days(8));
        let df = aggs.per_org(&events()).unwrap();
        // b has member events before as_of but no visit in them: 0, not missing.
        let expected = df!(
            "org_id" => ["a", "b"],
            "n_7d" => [3i64, 1],
            "v_7d" => [2u32, 0],
            "v_8d" => [7u32, 0],
        )
        .unwrap();
        assert!(df.equals_missing(&expected), "{df}\n{expected}");
    }

    #[test]
    fn max_skips_nulls_and_rows_at_or_after_as_of() {
        // A latest-instant column with nulls: a/p1 has an instant on day 93 and a
        // null on day 99; a/p2's only row (day 92) is null; b/q1's instant is on day
        // 100 (as_of: not read) and its day 96 is null.
        let at = |day: i64, s: i64| day * MICROS_PER_DAY + s;
        let mut events = events();
        let column = Series::new(
            "last_x_us".into(),
            [Some(at(93, 3)), None, None, Some(at(100, 5)), None],
        );
        events.frame.with_column(column.into()).unwrap();
        let mut aggs = EventAggregates::default();
        aggs.max("last_x_us", "last_x_us");
        let df = aggs.per_member(&events).unwrap();
        let expected = df!(
            "org_id" => ["a", "a", "b", "c"],
            "distinct_id" => ["p1", "p2", "q1", "r1"],
            "last_x_us" => [Some(at(93, 3)), None, None, None],
        )
        .unwrap();
        assert!(df.equals_missing(&expected), "{df}\n{expected}");
        let df = aggs.per_org(&events).unwrap();
        let expected = df!(
            "org_id" => ["a", "b"],
            "last_x_us" => [Some(at(93, 3)), None],
        )
        .unwrap();
        assert!(df.equals_missing(&expected), "{df}\n{expected}");
    }

    #[test]
    fn per_member_has_every_member_in_member_order() {
        let mut aggs = EventAggregates::default();
        aggs.sum("x_7d", "n__x", last_days(7));
        aggs.max("last_us", "last_us");
        let df = aggs.per_member(&events()).unwrap();
        // b/q1's day 100 is as_of: not read. c/r1 has no rows at all.
        let expected = df!(
            "org_id" => ["a", "a", "b", "c"],
            "distinct_id" => ["p1", "p2", "q1", "r1"],
            "x_7d" => [1u32, 0, 0, 0],
            "last_us" => [
                Some(99 * MICROS_PER_DAY + 7),
                Some(92 * MICROS_PER_DAY + 1),
                Some(96 * MICROS_PER_DAY + 9),
                None,
            ],
        )
        .unwrap();
        assert!(df.equals_missing(&expected), "{df}\n{expected}");
    }
}
