//! Per-organization metrics (SPEC 3 to 5): one value per org and metric, null where
//! the rule says so.
//!
//! Every windowed aggregate the model's metrics ask for (and those of the indicators,
//! `indicators::inputs`) is requested up front: member-event aggregates are computed
//! together over the rollup (`member_aggregates`), usage sums in one pass over the
//! usage table (`usage_sums`), the small tables (tickets, meetings, accounts) by one
//! polars `group_by` each. The aggregates are joined onto the scored orgs and turned
//! into metric columns. Nothing here knows about bands or points.

use polars::prelude::*;

use crate::indicators::inputs::{self as indicator_inputs, IND};
use crate::input::Inputs;
use crate::member_aggregates::{EventAggregates, MemberEvents, RowFilter};
use crate::model::{Measure, Metric, Model};
use crate::rollup_spec::{self, count_column};
use crate::time::{AsOf, Window, MICROS_PER_DAY};
use crate::usage_sums::UsageSums;

/// The metrics of every scored org: `org_id`, one column per metric (in model order),
/// and one boolean `adopted__<product>` column per product (in use over the adoption
/// window), which the score stage uses for the product-category rules.
pub struct Metrics {
    pub frame: LazyFrame,
}

pub fn adopted_column(product: &str) -> String {
    format!("adopted__{product}")
}

/// `true` for rows whose instant column falls in the window.
pub fn in_window_us(column: &str, w: Window) -> Expr {
    col(column)
        .gt_eq(lit(w.start_us()))
        .and(col(column).lt(lit(w.end_us())))
}

/// "decrease" of SPEC 5: `100 * (previous - current) / previous`, null when previous is 0.
pub fn decrease(previous: Expr, current: Expr) -> Expr {
    when(previous.clone().neq(lit(0.0)))
        .then(lit(100.0) * (previous.clone() - current) / previous)
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// `100 * count / members`, null when there are no members.
pub fn pct_of_members(count: Expr, members: Expr) -> Expr {
    when(members.clone().gt(lit(0)))
        .then(lit(100.0) * count.cast(DataType::Float64) / members.cast(DataType::Float64))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// `numerator / denominator` rounded once, as IEEE division does. polars divides a
/// float column by a scalar as a multiplication by its reciprocal, which can land one
/// ulp off (1 day = 0.9999999999999999) and flip a band at its threshold; dividing by
/// a column of the same value keeps the division exact.
pub fn div_exact(numerator: Expr, denominator: f64) -> Expr {
    let n = numerator.cast(DataType::Float64);
    n.clone() / (n * lit(0.0) + lit(denominator))
}

/// Fractional days from an instant column to as_of (`as_of_us`: its instant, a
/// literal or, for several dates' rows stacked, a column), null where the instant is
/// null.
pub fn days_since(as_of_us: Expr, latest_us: Expr) -> Expr {
    div_exact(as_of_us - latest_us, MICROS_PER_DAY as f64)
}

/// The columns of stacked rows (several dates' in one frame, as `backfill` scores
/// them) holding each row's as_of: its instant, and its day.
pub const AS_OF_US: &str = "_as_of_us";
pub const AS_OF_DAY: &str = "_as_of_day";

/// as_of in a metrics plan: literals for one date, or for several dates' rows stacked
/// the columns `AS_OF_US` and `AS_OF_DAY` each row carries.
pub struct AsOfExprs {
    /// The instant (i64 microseconds).
    pub us: Expr,
    /// The day (i32 days since the epoch).
    pub day: Expr,
}

impl AsOfExprs {
    pub fn of(as_of: &AsOf) -> AsOfExprs {
        AsOfExprs {
            us: lit(as_of.us()),
            day: lit(as_of.day),
        }
    }

    pub fn stacked() -> AsOfExprs {
        AsOfExprs {
            us: col(AS_OF_US),
            day: col(AS_OF_DAY),
        }
    }

    /// The columns stacked rows of this date carry.
    pub fn columns_of(as_of: &AsOf) -> [Expr; 2] {
        [
            lit(as_of.us()).alias(AS_OF_US),
            lit(as_of.day).alias(AS_OF_DAY),
        ]
    }
}

/// The orgs scored: the union of org_ids in `accounts` and `members`, sorted
/// bytewise (as polars sorts strings). The members' distinct orgs come sorted with
/// the member keys, so only they and the accounts' are sorted here, not every member
/// row's org.
pub fn scored_orgs(events: &MemberEvents, inputs: &Inputs) -> PolarsResult<DataFrame> {
    let accounts = match &inputs.accounts {
        Some(a) => Some(a.column("org_id")?.str()?),
        None => None,
    };
    let member_orgs = events.orgs()?;
    let orgs = union_of_orgs(member_orgs.str()?, accounts);
    DataFrame::new_infer_height(vec![StringChunked::from_iter_values(
        "org_id".into(),
        orgs.into_iter(),
    )
    .into_column()])
}

/// The orgs of `distinct` (sorted, each once) and of `others`, each once, sorted.
/// Input checks reject null org_ids in both tables.
fn union_of_orgs<'a>(
    distinct: &'a StringChunked,
    others: Option<&'a StringChunked>,
) -> Vec<&'a str> {
    let mut orgs: Vec<&str> = distinct.iter().flatten().collect();
    if let Some(others) = others {
        orgs.extend(others.iter().flatten());
        orgs.sort_unstable();
        orgs.dedup();
    }
    orgs
}

/// Members with an event in the last `n` days.
fn active_column(n: u32) -> String {
    format!("_active_{n}d")
}

/// Members with an event in the `n` days before those.
fn active_prev_column(n: u32) -> String {
    format!("_active_prev_{n}d")
}

/// Members counted at as_of - `n` days.
fn members_prev_column(n: u32) -> String {
    format!("_members_at_minus_{n}d")
}

/// Private aggregate column names, one per (metric, part).
fn part(metric: &str, what: &str) -> String {
    format!("_{metric}__{what}")
}

fn product_part(product: &str, what: &str) -> String {
    format!("_product_{product}__{what}")
}

/// The product window name of a `products_in_use` metric's window.
fn count_window(days: u32) -> String {
    format!("count_{days}d")
}

/// `events` are the member events of the rollup.
pub fn compute(
    events: &MemberEvents,
    inputs: &Inputs,
    model: &Model,
    as_of: &AsOf,
) -> PolarsResult<Metrics> {
    let aggregates = aggregates(events, inputs, model, as_of)?;
    Ok(values(aggregates, inputs, model, &AsOfExprs::of(as_of)))
}

/// Per scored org, every aggregate at this as_of that the metrics and the indicators
/// read: member-event and usage sums, members counted, tickets, meetings and the
/// indicators' own tables, joined. The aggregates are computed here; the joins are
/// left lazy.
pub fn aggregates(
    events: &MemberEvents,
    inputs: &Inputs,
    model: &Model,
    as_of: &AsOf,
) -> PolarsResult<LazyFrame> {
    let product_windows = product_windows(model, as_of);

    // One pass over member events: every event aggregate of every metric.
    let mut event_aggs = EventAggregates::default();
    event_aggs.max("_last_seen_us", rollup_spec::LAST_INSTANT);
    // Members counted at as_of and at the start of each active window (SPEC 2).
    let mut members_at = vec![("_members_now".to_string(), as_of.us())];
    let mut usage_sums = UsageSums::default();
    // Active members per window, once per distinct window however many metrics read it.
    let mut active_windows: Vec<u32> = model
        .metrics
        .values()
        .filter(|m| {
            matches!(
                m.measure,
                Measure::ActiveMemberPct | Measure::ActiveMemberPctDecrease
            )
        })
        .map(Metric::window)
        .collect();
    active_windows.sort_unstable();
    active_windows.dedup();
    for &n in &active_windows {
        let days = |w: Window| RowFilter::days(w);
        event_aggs.members(&active_column(n), days(as_of.last_n_days(n)));
        event_aggs.members(&active_prev_column(n), days(as_of.previous_n_days(n)));
        members_at.push((members_prev_column(n), as_of.minus_days_us(n)));
    }
    for (name, m) in &model.metrics {
        let w = as_of.last_n_days(m.window());
        match m.measure {
            Measure::MembersWithEvent | Measure::MembersWithEventPct => {
                let set = m.event_set.as_deref().unwrap_or_default();
                event_aggs.members(
                    &part(name, "members"),
                    RowFilter::days(w).with_events_in(count_column(set)),
                );
            }
            Measure::EventCount => {
                let set = m.event_set.as_deref().unwrap_or_default();
                event_aggs.sum(
                    &part(name, "events"),
                    &count_column(set),
                    RowFilter::days(w),
                )
            }
            Measure::QueryFailureRate => {
                for (what, set) in [("ok", &m.success_set), ("failed", &m.event_set)] {
                    let set = set.as_deref().unwrap_or_default();
                    event_aggs.sum(&part(name, what), &count_column(set), RowFilter::days(w));
                }
            }
            Measure::UsageDecrease => {
                let counter = m.counter.as_deref().unwrap_or_default();
                let prev = as_of.previous_n_days(m.window());
                usage_sums.add(&part(name, "current"), counter, w, false);
                usage_sums.add(&part(name, "previous"), counter, prev, false);
            }
            _ => {}
        }
    }
    // Products in use (SPEC 4): counter > 0 or an engagement event, over the
    // product-count window and over the adoption window.
    for (pname, p) in &model.products {
        for (what, w) in &product_windows {
            let w = *w;
            if let Some(set) = &p.engagement {
                event_aggs.any(
                    &product_part(pname, &format!("{what}_engaged")),
                    RowFilter::days(w).with_events_in(count_column(set)),
                );
            }
            if let Some(counter) = &p.counter {
                let alias = product_part(pname, &format!("{what}_usage"));
                usage_sums.add(&alias, counter, w, false);
            }
        }
    }
    indicator_inputs::event_aggregates(model, as_of, &mut event_aggs);
    indicator_inputs::usage_aggregates(model, as_of, &mut usage_sums);

    // The two passes read different tables: side by side.
    let (event_sums, usage_sums) = rayon::join(
        || event_aggs.per_org(events),
        || {
            (!usage_sums.is_empty())
                .then(|| usage_sums.per_org(&inputs.usage, &inputs.usage_rows, as_of.day))
                .transpose()
        },
    );
    let (event_sums, usage_sums) = (event_sums?, usage_sums?);
    let members_at = events.members_at(&inputs.members, &members_at)?;
    let left = || JoinArgs::new(JoinType::Left);
    let mut frame = scored_orgs(events, inputs)?
        .lazy()
        .join(event_sums.lazy(), [col("org_id")], [col("org_id")], left())
        .join(members_at.lazy(), [col("org_id")], [col("org_id")], left());
    if let Some(usage_sums) = usage_sums {
        frame = frame.join(usage_sums.lazy(), [col("org_id")], [col("org_id")], left());
    }
    if let Some(t) = &inputs.tickets {
        frame = frame.join(
            ticket_aggregates(t, model, as_of),
            [col("org_id")],
            [col("org_id")],
            left(),
        );
    }
    if let Some(mt) = &inputs.meetings {
        let meetings = mt
            .clone()
            .lazy()
            .filter(col("started_at").lt(lit(as_of.us())))
            .group_by([col("org_id")])
            .agg([col("started_at").max().alias("_last_meeting_us")]);
        frame = frame.join(meetings, [col("org_id")], [col("org_id")], left());
    }

    indicator_inputs::join_tables(frame, inputs, model, as_of)
}

/// The metrics frame from `aggregates`: the account fields joined (they do not depend
/// on as_of), each metric's value, each product's adoption and the indicators'
/// figures added. Row by row and by org only, so the aggregates of several dates can
/// be stacked and turned into metrics at once (`AsOfExprs::stacked`).
pub fn values(aggregates: LazyFrame, inputs: &Inputs, model: &Model, as_of: &AsOfExprs) -> Metrics {
    let aggregates = join_accounts(aggregates, inputs, &as_of.day);
    let as_of_us = &as_of.us;
    let mut columns = Vec::new();
    for (name, m) in &model.metrics {
        columns.push(metric_expr(name, m, inputs, model, as_of_us).alias(name.as_str()));
    }
    for pname in model.products.keys() {
        columns.push(product_in_use(model, pname, "adoption").alias(adopted_column(pname)));
    }
    columns.extend(indicator_inputs::columns(inputs, model, as_of_us));
    Metrics {
        frame: aggregates.with_columns(columns),
    }
}

/// The windows over which "product in use" is computed: the adoption window, each
/// distinct window of a `products_in_use` metric, and the windows of the product
/// indicators.
fn product_windows(model: &Model, as_of: &AsOf) -> Vec<(String, Window)> {
    let mut windows = vec![(
        "adoption".to_string(),
        as_of.last_n_days(model.adoption.window_days),
    )];
    for m in model.metrics.values() {
        let name = count_window(m.window());
        if m.measure == Measure::ProductsInUse && !windows.iter().any(|(w, _)| *w == name) {
            windows.push((name, as_of.last_n_days(m.window())));
        }
    }
    let indicators = indicator_inputs::product_windows(model, as_of);
    windows.extend(
        indicators
            .into_iter()
            .map(|(w, days)| (w.to_string(), days)),
    );
    windows
}

/// Account fields: the first row per org in file order (an export may repeat an org).
fn join_accounts(frame: LazyFrame, inputs: &Inputs, as_of_day: &Expr) -> LazyFrame {
    let fields = [
        ("name", "name"),
        ("csm", "csm"),
        ("mrr", IND.mrr),
        ("forecasted_mrr", IND.forecasted_mrr),
        ("plan", IND.plan),
        ("renewal_date", "_renewal_day"),
        ("addons", IND.addons),
        ("autocapture_actions", IND.autocapture_actions),
    ];
    let Some(a) = &inputs.accounts else {
        let mut nulls: Vec<Expr> = vec![
            lit(NULL).cast(DataType::String).alias("name"),
            lit(NULL).cast(DataType::String).alias("csm"),
            lit(NULL).cast(DataType::Float64).alias(IND.mrr),
            lit(NULL).cast(DataType::Float64).alias(IND.forecasted_mrr),
            lit(NULL).cast(DataType::String).alias(IND.plan),
            lit(NULL).cast(DataType::Int32).alias("_renewal_day"),
            lit(NULL).cast(DataType::String).alias(IND.addons),
            lit(NULL)
                .cast(DataType::Float64)
                .alias(IND.autocapture_actions),
        ];
        nulls.push(lit(NULL).cast(DataType::Float64).alias(IND.days_to_renewal));
        nulls.push(lit(NULL).cast(DataType::Date).alias(IND.renewal_date));
        return frame.with_columns(nulls);
    };
    let firsts: Vec<Expr> = fields
        .iter()
        .map(|(c, alias)| col(*c).first().alias(*alias))
        .collect();
    let accounts = a
        .clone()
        .lazy()
        .with_row_index("_row", None)
        .sort(["_row"], Default::default())
        .group_by([col("org_id")])
        .agg(firsts);
    // The rows keep their order: `backfill` splits its stacked dates by it.
    let keep_order = JoinArgs {
        maintain_order: MaintainOrderJoin::Left,
        ..JoinArgs::new(JoinType::Left)
    };
    frame
        .join(accounts, [col("org_id")], [col("org_id")], keep_order)
        .with_columns([
            (col("_renewal_day") - as_of_day.clone())
                .cast(DataType::Float64)
                .alias(IND.days_to_renewal),
            col("_renewal_day")
                .cast(DataType::Date)
                .alias(IND.renewal_date),
        ])
}

/// Per-org ticket aggregates: created in each metric's window, urgent unresolved, last created.
fn ticket_aggregates(tickets: &DataFrame, model: &Model, as_of: &AsOf) -> LazyFrame {
    let before = col("created_at").lt(lit(as_of.us()));
    // Nulls where not before as_of, not a filter inside the group-by (one per group).
    let mut aggs = vec![when(before.clone())
        .then(col("created_at"))
        .otherwise(lit(NULL).cast(DataType::Int64))
        .max()
        .alias("_last_ticket_us")];
    for (name, m) in &model.metrics {
        match m.measure {
            Measure::TicketsCreated => aggs.push(
                in_window_us("created_at", as_of.last_n_days(m.window()))
                    .sum()
                    .alias(part(name, "created")),
            ),
            Measure::UrgentTicketsUnresolved => {
                let unresolved = col("solved_at")
                    .is_null()
                    .or(col("solved_at").gt_eq(lit(as_of.us())));
                aggs.push(
                    before
                        .clone()
                        .and(col("priority").eq(lit(model.tickets.urgent_priority.clone())))
                        .and(unresolved)
                        .sum()
                        .alias(part(name, "urgent")),
                )
            }
            _ => {}
        }
    }
    tickets.clone().lazy().group_by([col("org_id")]).agg(aggs)
}

/// Whether a product was in use over a window, from the aggregates (`what` names a
/// window of `product_windows`: `adoption`, `count`, or an indicator's).
pub fn product_in_use(model: &Model, product: &str, what: &str) -> Expr {
    let p = &model.products[product];
    let mut used = lit(false);
    if p.engagement.is_some() {
        used =
            used.or(col(product_part(product, &format!("{what}_engaged"))).fill_null(lit(false)));
    }
    if p.counter.is_some() {
        used = used.or(col(product_part(product, &format!("{what}_usage")))
            .fill_null(lit(0.0))
            .gt(lit(0.0)));
    }
    used
}

/// A count column as f64, 0 where an org had no rows.
pub fn count(c: String) -> Expr {
    col(c).fill_null(lit(0)).cast(DataType::Float64)
}

pub fn null_f64() -> Expr {
    lit(NULL).cast(DataType::Float64)
}

/// The value of one metric, from the joined aggregates.
fn metric_expr(name: &str, m: &Metric, inputs: &Inputs, model: &Model, as_of_us: &Expr) -> Expr {
    let members_now = || col("_members_now").fill_null(lit(0));
    match m.measure {
        Measure::DaysSinceLastEvent => days_since(as_of_us.clone(), col("_last_seen_us")),
        Measure::ActiveMemberPct => pct_of_members(count(active_column(m.window())), members_now()),
        Measure::ActiveMemberPctDecrease => {
            let current = pct_of_members(count(active_column(m.window())), members_now());
            let previous = pct_of_members(
                count(active_prev_column(m.window())),
                col(members_prev_column(m.window())).fill_null(lit(0)),
            );
            decrease(previous, current)
        }
        Measure::MembersWithEvent => count(part(name, "members")),
        Measure::MembersWithEventPct => pct_of_members(count(part(name, "members")), members_now()),
        Measure::EventCount => count(part(name, "events")),
        Measure::QueryFailureRate => {
            let ok = count(part(name, "ok"));
            let failed = count(part(name, "failed"));
            let total = ok + failed.clone();
            when(total.clone().gt(lit(0.0)))
                .then(lit(100.0) * failed / total)
                .otherwise(null_f64())
        }
        Measure::TicketsCreated if inputs.tickets.is_some() => count(part(name, "created")),
        Measure::UrgentTicketsUnresolved if inputs.tickets.is_some() => count(part(name, "urgent")),
        Measure::DaysSinceLastTicket if inputs.tickets.is_some() => {
            days_since(as_of_us.clone(), col("_last_ticket_us"))
        }
        Measure::DaysSinceLastMeeting if inputs.meetings.is_some() => {
            days_since(as_of_us.clone(), col("_last_meeting_us"))
        }
        Measure::TicketsCreated
        | Measure::UrgentTicketsUnresolved
        | Measure::DaysSinceLastTicket
        | Measure::DaysSinceLastMeeting => null_f64(),
        Measure::ProductsInUse => model
            .products
            .keys()
            .map(|p| product_in_use(model, p, &count_window(m.window())).cast(DataType::Float64))
            .reduce(|a, b| a + b)
            .unwrap_or(lit(0.0)),
        Measure::UsageDecrease => decrease(
            col(part(name, "previous")).fill_null(lit(0.0)),
            col(part(name, "current")).fill_null(lit(0.0)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scored_orgs_are_the_sorted_union_of_member_and_account_orgs() {
        // The members' distinct orgs, sorted (`MemberEvents::orgs`).
        let members =
            StringChunked::from_iter_values("org_id".into(), ["B", "a", "ab"].into_iter());
        // Accounts in file order, one repeated, one shared with members, "é" and
        // "A" in accounts only.
        let accounts =
            StringChunked::from_iter_values("org_id".into(), ["é", "a", "A", "é"].into_iter());
        // Bytewise: "A" < "B" < "a" < "ab" < "é".
        assert_eq!(
            union_of_orgs(&members, Some(&accounts)),
            ["A", "B", "a", "ab", "é"]
        );
        assert_eq!(union_of_orgs(&members, None), ["B", "a", "ab"]);
    }

    #[test]
    fn division_by_a_constant_is_exact() {
        // 5097 / 5 = 1019.4, but 5097 * (1/5) = 1019.4000000000001.
        let df = df!("n" => [5097.0f64, 86_400_000_000.0, 3.0]).unwrap();
        let out = df
            .lazy()
            .select([
                div_exact(col("n"), 5.0).alias("a"),
                div_exact(col("n"), MICROS_PER_DAY as f64).alias("b"),
            ])
            .collect()
            .unwrap();
        let a: Vec<Option<f64>> = out.column("a").unwrap().f64().unwrap().iter().collect();
        let b: Vec<Option<f64>> = out.column("b").unwrap().f64().unwrap().iter().collect();
        assert_eq!(
            a,
            vec![
                Some(5097.0 / 5.0),
                Some(86_400_000_000.0 / 5.0),
                Some(3.0 / 5.0)
            ]
        );
        assert_eq!(b[1], Some(1.0));
        assert_eq!(b[2], Some(3.0 / MICROS_PER_DAY as f64));
    }
}
