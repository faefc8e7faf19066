//! The per-org figures the indicators read (SPEC 7, 8): their names (`IND`), the
//! member-event and usage aggregates they ask of the metrics stage's passes, the
//! payment and role-change aggregates, and the columns built from them. The metrics
//! stage computes these beside its own (one pass over each table for both); the
//! rules that read them are in `indicators`.

use polars::prelude::*;

use crate::deployment;
use crate::input::Inputs;
use crate::member_aggregates::{EventAggregates, RowFilter};
use crate::metrics::{count, days_since, decrease, in_window_us, null_f64};
use crate::model::Model;
use crate::rollup_spec::{self, count_column, latest_column};
use crate::time::{AsOf, Window};
use crate::usage_sums::UsageSums;

/// Names of the per-org columns the indicators read (SPEC 7).
pub struct IndicatorColumns {
    pub mrr: &'static str,
    pub forecasted_mrr: &'static str,
    pub plan: &'static str,
    pub renewal_date: &'static str,
    pub days_to_renewal: &'static str,
    pub billing_visits: &'static str,
    pub queries_ok: &'static str,
    pub queries_failed: &'static str,
    pub weekday_volume_current: &'static str,
    pub weekday_volume_previous: &'static str,
    pub weekday_volume_drop: &'static str,
    pub days_since_insight_analyzed: &'static str,
    pub last_payment_status: &'static str,
    pub days_since_last_payment: &'static str,
    pub owners_removed: &'static str,
    pub owner_removed_who: &'static str,
    pub owners_added: &'static str,
    pub owner_added_who: &'static str,
    pub members_now: &'static str,
    pub inactive_window_events: &'static str,
    pub insights_started: &'static str,
    pub insights_saved: &'static str,
    pub days_since_last_seen: &'static str,
    pub addons: &'static str,
    pub autocapture_actions: &'static str,
    pub group_events: &'static str,
}

pub const IND: IndicatorColumns = IndicatorColumns {
    mrr: "_mrr",
    forecasted_mrr: "_forecasted_mrr",
    plan: "_plan",
    renewal_date: "_renewal_date",
    days_to_renewal: "_days_to_renewal",
    billing_visits: "_billing_visits",
    queries_ok: "_ind_queries_ok",
    queries_failed: "_ind_queries_failed",
    weekday_volume_current: "_weekday_volume_current",
    weekday_volume_previous: "_weekday_volume_previous",
    weekday_volume_drop: "weekday_event_volume_drop_7d",
    days_since_insight_analyzed: "_days_since_insight_analyzed",
    last_payment_status: "_last_payment_status",
    days_since_last_payment: "_days_since_last_payment",
    owners_removed: "_owners_removed",
    owner_removed_who: "_owner_removed_who",
    owners_added: "_owners_added",
    owner_added_who: "_owner_added_who",
    members_now: "_members_now_f",
    inactive_window_events: "_inactive_window_events",
    insights_started: "_insights_started",
    insights_saved: "_insights_saved",
    days_since_last_seen: "_days_since_last_seen",
    addons: "_addons",
    autocapture_actions: "_autocapture_actions",
    group_events: "_group_events",
};

/// The all-days volume decrease kept beside the weekday one for reference (SPEC 8).
pub const ALL_DAYS_VOLUME_DROP: &str = "event_volume_drop_7d";

/// Docs visits to a product's docs path in the product_interest window.
pub fn product_docs_column(product: &str) -> String {
    format!("_product_{product}__docs_visits")
}

/// The product windows the product indicators read, named for
/// `metrics::product_in_use`: in use recently and before (new_product_adoption), and
/// over the product_interest lookback.
pub fn product_windows(model: &Model, as_of: &AsOf) -> Vec<(&'static str, Window)> {
    let mut windows = Vec::new();
    if let Some(i) = model.indicators.get("new_product_adoption") {
        windows.push(("recent", as_of.last_n_days(i.window())));
        windows.push(("before", as_of.shifted_window(i.lookback(), i.window())));
    }
    if let Some(i) = model.indicators.get("product_interest") {
        windows.push(("interest", as_of.last_n_days(i.lookback())));
    }
    windows
}

fn indicator_window(model: &Model, name: &str, as_of: &AsOf) -> Window {
    let days = model.indicators.get(name).map_or(1, |i| i.window());
    as_of.last_n_days(days)
}

/// Member-event aggregates of the indicators (SPEC 7), added to the metrics' pass.
pub fn event_aggregates(model: &Model, as_of: &AsOf, aggs: &mut EventAggregates) {
    let w = |name: &str| RowFilter::days(indicator_window(model, name, as_of));
    // The count column of an indicator's `event_set` (or `success_set`).
    let set_of = |name: &str, success: bool| {
        let ind = model.indicators.get(name);
        let set = ind.and_then(|i| {
            if success {
                i.success_set.as_ref()
            } else {
                i.event_set.as_ref()
            }
        });
        count_column(set.map_or("", String::as_str))
    };
    let mut count = |column: &str, window: &str, alias: &str| {
        aggs.sum(alias, column, w(window));
    };
    count(
        &set_of("billing_page_visits", false),
        "billing_page_visits",
        IND.billing_visits,
    );
    count(
        &set_of("query_failure_rate_high", true),
        "query_failure_rate_high",
        IND.queries_ok,
    );
    count(
        &set_of("query_failure_rate_high", false),
        "query_failure_rate_high",
        IND.queries_failed,
    );
    count(
        rollup_spec::EVENTS,
        "inactive_org",
        IND.inactive_window_events,
    );
    count(
        &set_of("lost_insights", false),
        "lost_insights",
        IND.insights_started,
    );
    count(
        &set_of("lost_insights", true),
        "lost_insights",
        IND.insights_saved,
    );
    for pname in model.products.keys() {
        count(
            &rollup_spec::product_docs_column(pname),
            "product_interest",
            &product_docs_column(pname),
        );
    }
    if let Some(set) = model
        .indicators
        .get("no_insights_analyzed")
        .and_then(|i| i.event_set.as_ref())
    {
        aggs.max("_last_insight_analyzed_us", &latest_column(set));
    }
}

/// Usage aggregates of the weekday-only volume comparison (SPEC 8).
pub fn usage_aggregates(model: &Model, as_of: &AsOf, sums: &mut UsageSums) {
    if let Some(counter) = group_events_counter(model) {
        let window = as_of.last_n_days(model.deployment.window_days);
        sums.add(IND.group_events, counter, window, false);
    }
    let Some(ind) = model.indicators.get("event_volume_drop") else {
        return;
    };
    let counter = ind.counter.as_deref().unwrap_or_default();
    let current = as_of.last_n_days(ind.window());
    let previous = as_of.previous_n_days(ind.window());
    sums.add(IND.weekday_volume_current, counter, current, true);
    sums.add(IND.weekday_volume_previous, counter, previous, true);
    sums.add("_all_days_volume_current", counter, current, false);
    sums.add("_all_days_volume_previous", counter, previous, false);
}

/// The latest payment before as_of: its status and age. On a tie in time, `succeeded`
/// sorts after `failed` and wins (a retried payment that went through).
fn payment_aggregates(payments: &DataFrame, as_of: &AsOf) -> LazyFrame {
    // Sorted once by time then status, so each org's last row is its latest payment
    // (`succeeded` after `failed` on a tie): a sort of every org's rows inside the
    // group-by took most of this step.
    payments
        .clone()
        .lazy()
        .filter(col("occurred_at").lt(lit(as_of.us())))
        .sort_by_exprs(
            [col("occurred_at"), col("status")],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .group_by([col("org_id")])
        .agg([
            col("status").last().alias(IND.last_payment_status),
            col("occurred_at").max().alias("_last_payment_us"),
        ])
}

/// Owner role removed from / given to someone in the indicator windows (SPEC 7).
fn role_change_aggregates(role_changes: &DataFrame, model: &Model, as_of: &AsOf) -> LazyFrame {
    let mut aggs = Vec::new();
    for (name, count, who, removed) in [
        (
            "owner_removed",
            IND.owners_removed,
            IND.owner_removed_who,
            true,
        ),
        ("owner_added", IND.owners_added, IND.owner_added_who, false),
    ] {
        let Some(ind) = model.indicators.get(name) else {
            continue;
        };
        let role = lit(ind.role.clone().unwrap_or_default());
        let (from, to) = if removed {
            ("old_role", "new_role")
        } else {
            ("new_role", "old_role")
        };
        // From the role to anything else (or to null), or to the role from anything else.
        let change = col(from)
            .eq(role.clone())
            .and(col(to).is_null().or(col(to).neq(role)))
            .and(in_window_us("changed_at", as_of.last_n_days(ind.window())));
        aggs.push(change.clone().sum().alias(count));
        aggs.push(col("distinct_id").filter(change).min().alias(who));
    }
    role_changes
        .clone()
        .lazy()
        .group_by([col("org_id")])
        .agg(aggs)
}

/// The usage counter of group events `group_analytics_unused` sums.
fn group_events_counter(model: &Model) -> Option<&str> {
    model
        .indicators
        .get("group_analytics_unused")?
        .counter
        .as_deref()
}

/// The per-org figures the indicators read, from the joined aggregates.
/// `as_of_us` as in `metrics::values`.
pub fn columns(inputs: &Inputs, model: &Model, as_of_us: &Expr) -> Vec<Expr> {
    let mut cols = vec![
        count(IND.billing_visits.into()).alias(IND.billing_visits),
        count(IND.queries_ok.into()).alias(IND.queries_ok),
        count(IND.queries_failed.into()).alias(IND.queries_failed),
        count(IND.inactive_window_events.into()).alias(IND.inactive_window_events),
        count(IND.insights_started.into()).alias(IND.insights_started),
        count(IND.insights_saved.into()).alias(IND.insights_saved),
        count("_members_now".into()).alias(IND.members_now),
        // The metrics stage's latest member event (whatever the model's metrics are).
        days_since(as_of_us.clone(), col("_last_seen_us")).alias(IND.days_since_last_seen),
        days_since(as_of_us.clone(), col("_last_insight_analyzed_us"))
            .alias(IND.days_since_insight_analyzed),
        col(IND.weekday_volume_current).fill_null(lit(0.0)),
        col(IND.weekday_volume_previous).fill_null(lit(0.0)),
        decrease(
            col(IND.weekday_volume_previous).fill_null(lit(0.0)),
            col(IND.weekday_volume_current).fill_null(lit(0.0)),
        )
        .alias(IND.weekday_volume_drop),
        decrease(
            col("_all_days_volume_previous").fill_null(lit(0.0)),
            col("_all_days_volume_current").fill_null(lit(0.0)),
        )
        .alias(ALL_DAYS_VOLUME_DROP),
    ];
    for pname in model.products.keys() {
        cols.push(count(product_docs_column(pname)).alias(product_docs_column(pname)));
    }
    if inputs.payments.is_some() {
        cols.push(
            days_since(as_of_us.clone(), col("_last_payment_us"))
                .alias(IND.days_since_last_payment),
        );
    } else {
        cols.push(
            lit(NULL)
                .cast(DataType::String)
                .alias(IND.last_payment_status),
        );
        cols.push(null_f64().alias(IND.days_since_last_payment));
    }
    // Group events are known only where the usage export has the counter at all (a
    // counter absent from every file reads as zeros, which would say "none sent").
    if let Some(counter) = group_events_counter(model) {
        if !inputs.usage_counters_present.iter().any(|c| c == counter) {
            cols.push(null_f64().alias(IND.group_events));
        }
    }
    if inputs.role_changes.is_some() {
        cols.push(count(IND.owners_removed.into()).alias(IND.owners_removed));
        cols.push(count(IND.owners_added.into()).alias(IND.owners_added));
    } else {
        for c in [IND.owners_removed, IND.owners_added] {
            cols.push(null_f64().alias(c));
        }
        for c in [IND.owner_removed_who, IND.owner_added_who] {
            cols.push(lit(NULL).cast(DataType::String).alias(c));
        }
    }
    cols
}

/// Joins the indicators' own tables (payments, role changes, the deployment
/// figures) onto the per-org frame.
pub fn join_tables(
    mut frame: LazyFrame,
    inputs: &Inputs,
    model: &Model,
    as_of: &AsOf,
) -> PolarsResult<LazyFrame> {
    let left = || JoinArgs::new(JoinType::Left);
    if let Some(p) = &inputs.payments {
        frame = frame.join(
            payment_aggregates(p, as_of),
            [col("org_id")],
            [col("org_id")],
            left(),
        );
    }
    if let Some(rc) = &inputs.role_changes {
        frame = frame.join(
            role_change_aggregates(rc, model, as_of),
            [col("org_id")],
            [col("org_id")],
            left(),
        );
    }
    Ok(match &inputs.ingestion_rows {
        Some(ingestion) => frame.join(
            deployment::per_org(ingestion, inputs.sdk_releases.as_ref(), model, as_of)?,
            [col("org_id")],
            [col("org_id")],
            left(),
        ),
        None => frame.with_columns(deployment::null_columns(model)),
    })
}
