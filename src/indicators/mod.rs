//! Risk and opportunity indicators (SPEC 7): one row per fired indicator, with the
//! measured value, the threshold and a sentence a CSM can read without opening
//! anything else.
//!
//! Reads the scored frame (which carries the per-org figures of `inputs`, computed
//! in the metrics stage's passes) and the model; every threshold and window comes from
//! `model.indicators`. Pure expressions: no I/O.

use polars::prelude::*;

pub mod inputs;

use crate::deployment::{self, DEP};
use crate::metrics::product_in_use;
use crate::model::{Fires, Indicator, Model, CLEARABLE};
use crate::time::AsOf;
use inputs::IND;

/// A number as text for messages, rounded to `decimals`.
fn num(e: Expr, decimals: u32) -> Expr {
    e.cast(DataType::Float64)
        .round(decimals, RoundMode::HalfAwayFromZero)
        .cast(DataType::String)
}

fn int(e: Expr) -> Expr {
    e.cast(DataType::Float64)
        .round(0, RoundMode::HalfAwayFromZero)
        .cast(DataType::Int64)
        .cast(DataType::String)
}

fn fmt(template: &str, args: &[Expr]) -> Expr {
    format_str(template, args).expect("templates have as many {} as arguments")
}

/// One indicator's fired rows, in the `indicators` table's shape.
struct Fired<'a> {
    name: &'a str,
    ind: &'a Indicator,
    product: Option<&'a str>,
    fires: Expr,
    value: Expr,
    threshold: Expr,
    message: Expr,
    /// What must hold besides the value for the indicator to stand at all (e.g.
    /// `lost_insights`' minimum of insights started); `clear_at` keeps an indicator
    /// only while this holds too.
    eligible: Option<Expr>,
}

impl Fired<'_> {
    /// The fired rows. With a `clear_at` and the previous run's indicators, an org
    /// that fired last run keeps firing while its value is at or beyond `clear_at`
    /// (hysteresis: docs/RULES.md).
    /// `as_of` is the `as_of` column's value: a date literal, or a column for several
    /// dates' rows stacked.
    fn rows(self, frame: &LazyFrame, as_of: &Expr, previous: Option<&DataFrame>) -> LazyFrame {
        let product = match self.product {
            Some(p) => lit(p.to_string()),
            None => lit(NULL).cast(DataType::String),
        };
        let clearable = CLEARABLE.iter().find(|(n, _)| *n == self.name);
        let (frame, fires) = match (self.ind.clear_at, clearable, previous) {
            (Some(clear_at), Some((_, direction)), Some(previous)) => {
                let was_firing = previous
                    .clone()
                    .lazy()
                    .filter(
                        col("indicator")
                            .eq(lit(self.name.to_string()))
                            .and(crate::alerts::product_key().eq(lit(self.product.unwrap_or("")))),
                    )
                    .select([
                        col("org_id").cast(DataType::String),
                        lit(true).alias(WAS_FIRING),
                    ])
                    .unique(None, UniqueKeepStrategy::First);
                let beyond = match direction {
                    Fires::Above => self.value.clone().gt_eq(lit(clear_at)),
                    Fires::Below => self.value.clone().lt_eq(lit(clear_at)),
                };
                let holds = match self.eligible {
                    Some(eligible) => eligible.and(beyond),
                    None => beyond,
                };
                let frame = frame.clone().join(
                    was_firing,
                    [col("org_id")],
                    [col("org_id")],
                    JoinArgs::new(JoinType::Left),
                );
                let fires = self.fires.fill_null(lit(false)).or(col(WAS_FIRING)
                    .fill_null(lit(false))
                    .and(holds.fill_null(lit(false))));
                (frame, fires)
            }
            _ => (frame.clone(), self.fires),
        };
        frame.filter(fires.fill_null(lit(false))).select([
            col("org_id"),
            lit(self.name.to_string()).alias("indicator"),
            lit(self.ind.kind.as_str()).alias("kind"),
            product.alias("product"),
            self.value.cast(DataType::Float64).alias("value"),
            self.threshold.cast(DataType::Float64).alias("threshold"),
            self.message.alias("message"),
            as_of.clone().alias("as_of"),
        ])
    }
}

/// Whether an org had this indicator in the previous run (a column joined in for
/// `clear_at`).
const WAS_FIRING: &str = "__was_firing";

/// Every fired indicator, sorted by org_id, indicator, product. `previous` is the
/// previous run's indicators (for `clear_at`), `has_previous` whether there was a
/// previous run at all (for `health_score_drop`).
pub fn compute(
    scored: LazyFrame,
    model: &Model,
    as_of: &AsOf,
    has_previous: bool,
    previous: Option<&DataFrame>,
) -> PolarsResult<LazyFrame> {
    let as_of = lit(as_of.day).cast(DataType::Date);
    sorted_fired(scored, model, &as_of, has_previous, previous, &[])
}

/// The fired indicators of several dates' scored rows stacked, each row's as_of day
/// in `metrics::AS_OF_DAY`, all with or all without a previous run, none read by `clear_at`
/// (which needs each date's previous indicators): sorted by as_of, then as
/// `compute` sorts one date's, so each date's rows are one stretch, as `compute`
/// gives them for that date alone.
pub fn compute_stacked(
    scored: LazyFrame,
    model: &Model,
    has_previous: bool,
) -> PolarsResult<LazyFrame> {
    let as_of = col(crate::metrics::AS_OF_DAY).cast(DataType::Date);
    sorted_fired(scored, model, &as_of, has_previous, None, &["as_of"])
}

/// Every fired indicator, sorted by `first_keys`, then org_id, indicator, product.
fn sorted_fired(
    scored: LazyFrame,
    model: &Model,
    as_of: &Expr,
    has_previous: bool,
    previous: Option<&DataFrame>,
    first_keys: &[&str],
) -> PolarsResult<LazyFrame> {
    let mut parts = Vec::new();
    for (name, ind) in model.indicators.iter().filter(|(_, i)| i.enabled) {
        for fired in rules(name, ind, model, has_previous) {
            parts.push(fired.rows(&scored, as_of, previous));
        }
    }
    if parts.is_empty() {
        return Ok(empty().lazy());
    }
    let mut keys = first_keys.to_vec();
    keys.extend(["org_id", "indicator", "product"]);
    Ok(concat(parts, UnionArgs::default())?
        .sort(keys, SortMultipleOptions::default().with_nulls_last(false)))
}

/// An empty `indicators` frame with the right types.
pub fn empty() -> DataFrame {
    DataFrame::new(
        0,
        vec![
            Column::new_empty("org_id".into(), &DataType::String),
            Column::new_empty("indicator".into(), &DataType::String),
            Column::new_empty("kind".into(), &DataType::String),
            Column::new_empty("product".into(), &DataType::String),
            Column::new_empty("value".into(), &DataType::Float64),
            Column::new_empty("threshold".into(), &DataType::Float64),
            Column::new_empty("message".into(), &DataType::String),
            Column::new_empty("as_of".into(), &DataType::Date),
        ],
    )
    .expect("valid empty frame")
}

/// An empty `indicators` frame with the lifecycle's columns (`alerts::follow`).
pub fn empty_with_lifecycle() -> DataFrame {
    let mut frame = empty();
    for (name, dtype) in [
        ("status", DataType::String),
        ("first_fired", DataType::Date),
        ("last_alerted", DataType::Date),
    ] {
        frame
            .with_column(Column::new_empty(name.into(), &dtype))
            .expect("a new column of an empty frame");
    }
    frame
}

/// `100 * (forecasted_mrr - mrr) / mrr`, null unless mrr > 0.
fn mrr_change() -> Expr {
    when(col(IND.mrr).gt(lit(0.0)))
        .then(lit(100.0) * (col(IND.forecasted_mrr) - col(IND.mrr)) / col(IND.mrr))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

/// Whether `accounts.addons` (comma-separated) holds `addon`, spaces around names
/// ignored; false without the column.
fn has_addon(addon: &str) -> Expr {
    col(IND.addons)
        .str()
        .split(lit(","))
        .list()
        .eval(col("").str().strip_chars(lit(NULL)))
        .list()
        .contains(lit(addon.to_string()), false)
        .fill_null(lit(false))
}

/// The rule of each indicator of SPEC 7.
fn rules<'a>(
    name: &'a str,
    ind: &'a Indicator,
    model: &'a Model,
    has_previous: bool,
) -> Vec<Fired<'a>> {
    let t = ind.threshold();
    let one = |fires: Expr, value: Expr, message: Expr| {
        vec![Fired {
            name,
            ind,
            eligible: None,
            product: None,
            fires,
            value,
            threshold: lit(t),
            message,
        }]
    };
    match name {
        "forecasted_mrr_decrease" => one(
            mrr_change().lt(lit(t)),
            mrr_change(),
            fmt(
                "Forecasted MRR {} is {}% below current MRR {} (threshold {}%).",
                &[num(col(IND.forecasted_mrr), 2), num(-mrr_change(), 1), num(col(IND.mrr), 2), num(lit(t), 1)],
            ),
        ),
        "forecasted_mrr_growth" => one(
            mrr_change().gt(lit(t)),
            mrr_change(),
            fmt(
                "Forecasted MRR {} is {}% above current MRR {} (threshold {}%).",
                &[num(col(IND.forecasted_mrr), 2), num(mrr_change(), 1), num(col(IND.mrr), 2), num(lit(t), 1)],
            ),
        ),
        "billing_page_visits" => one(
            col(IND.billing_visits).gt(lit(t)),
            col(IND.billing_visits),
            fmt(
                "{} billing page visits by members in the last {} days (threshold: more than {}).",
                &[int(col(IND.billing_visits)), lit(ind.window()), num(lit(t), 1)],
            ),
        ),
        "query_failure_rate_high" => {
            let total = col(IND.queries_ok) + col(IND.queries_failed);
            let rate = when(total.clone().gt(lit(0.0)))
                .then(lit(100.0) * col(IND.queries_failed) / total.clone())
                .otherwise(lit(NULL).cast(DataType::Float64));
            one(
                rate.clone().gt(lit(t)),
                rate.clone(),
                fmt(
                    "Query failure rate {}% over the last {} days (threshold {}%): {} of {} queries failed.",
                    &[num(rate, 1), lit(ind.window()), num(lit(t), 1), int(col(IND.queries_failed)), int(total)],
                ),
            )
        }
        "event_volume_drop" => one(
            col(IND.weekday_volume_drop).gt(lit(t)),
            col(IND.weekday_volume_drop),
            fmt(
                "Weekday event volume fell {}% in the last {} days ({} vs {} on the 5 weekdays before; threshold {}%).",
                &[
                    num(col(IND.weekday_volume_drop), 1),
                    lit(ind.window()),
                    int(col(IND.weekday_volume_current)),
                    int(col(IND.weekday_volume_previous)),
                    num(lit(t), 1),
                ],
            ),
        ),
        "no_insights_analyzed" => one(
            col(IND.days_since_insight_analyzed).gt(lit(t)),
            col(IND.days_since_insight_analyzed),
            fmt(
                "No insight analyzed for {} days (threshold {} days).",
                &[num(col(IND.days_since_insight_analyzed), 1), num(lit(t), 1)],
            ),
        ),
        "payment_failed" => {
            let days = col(IND.days_since_last_payment);
            let window = ind.window() as f64;
            vec![Fired {
                name,
                ind,
                eligible: None,
                product: None,
                fires: col(IND.last_payment_status)
                    .eq(lit(ind.status.clone().unwrap_or_default()))
                    .and(days.clone().lt_eq(lit(window))),
                value: days.clone(),
                // The value is the failed payment's age; the threshold, the window it must fall in.
                threshold: lit(window),
                message: fmt(
                    "The latest payment failed {} days ago; nothing has succeeded since.",
                    &[num(days, 1)],
                ),
            }]
        }
        "startup_credit_running_out" => one(
            col(IND.plan)
                .eq(lit(ind.plan.clone().unwrap_or_default()))
                .and(col(IND.forecasted_mrr).gt(lit(t))),
            col(IND.forecasted_mrr),
            fmt(
                "On the {} plan with forecasted MRR {}: startup credit will run out this billing cycle.",
                &[col(IND.plan), num(col(IND.forecasted_mrr), 2)],
            ),
        ),
        "owner_removed" => one(
            col(IND.owners_removed).gt(lit(0.0)),
            col(IND.owners_removed),
            fmt(
                "Owner role removed from {} in the last {} days ({} change(s)): a champion may be gone.",
                &[col(IND.owner_removed_who), lit(ind.window()), int(col(IND.owners_removed))],
            ),
        ),
        "owner_added" => one(
            col(IND.owners_added).gt(lit(0.0)),
            col(IND.owners_added),
            fmt(
                "Owner role given to {} in the last {} days ({} change(s)): a potential new champion.",
                &[col(IND.owner_added_who), lit(ind.window()), int(col(IND.owners_added))],
            ),
        ),
        "inactive_org" => one(
            col(IND.members_now)
                .gt(lit(0.0))
                .and(col(IND.inactive_window_events).eq(lit(0.0))),
            col(IND.inactive_window_events),
            fmt(
                "No member activity in the last {} days ({} members).",
                &[lit(ind.window()), int(col(IND.members_now))],
            ),
        ),
        "lost_insights" => {
            let started = col(IND.insights_started);
            let ratio = when(started.clone().gt(lit(0.0)))
                .then(lit(100.0) * col(IND.insights_saved) / started.clone())
                .otherwise(lit(NULL).cast(DataType::Float64));
            let enough = started.clone().gt_eq(lit(ind.min_count.unwrap_or(0.0)));
            vec![Fired {
                name,
                ind,
                eligible: Some(enough.clone()),
                product: None,
                fires: enough.and(ratio.clone().lt(lit(t))),
                value: ratio.clone(),
                threshold: lit(t),
                message: fmt(
                    "Only {} of {} insights started in the last {} days were saved ({}%, threshold {}%).",
                    &[int(col(IND.insights_saved)), int(started), lit(ind.window()), num(ratio, 1), num(lit(t), 1)],
                ),
            }]
        }
        "renewal_upcoming" => {
            let days = col(IND.days_to_renewal);
            let quiet = col(IND.days_since_last_seen)
                .gt(lit(ind.quiet_days.unwrap_or(0.0)))
                .or(col(IND.days_since_last_seen).is_null());
            let limit = when(quiet).then(lit(ind.quiet_threshold.unwrap_or(t))).otherwise(lit(t));
            vec![Fired {
                name,
                ind,
                eligible: None,
                product: None,
                fires: days.clone().gt_eq(lit(0.0)).and(days.clone().lt_eq(limit.clone())),
                // The threshold is the limit that applied: 90 days for a quiet account.
                threshold: limit,
                value: days.clone(),
                message:
                fmt(
                    "Renewal on {} in {} days; {}.",
                    &[
                        col(IND.renewal_date).cast(DataType::String),
                        int(days),
                        when(col(IND.days_since_last_seen).is_null())
                            .then(lit("no member activity seen yet"))
                            .otherwise(fmt("last seen {} days ago", &[num(col(IND.days_since_last_seen), 1)])),
                    ],
                ),
            }]
        }
        "new_product_adoption" => model
            .products
            .keys()
            .map(|p| {
                let fires = product_in_use(model, p, "recent").and(product_in_use(model, p, "before").not());
                Fired {
                    name,
                    ind,
                    eligible: None,
                    product: Some(p),
                    fires,
                    value: lit(1.0),
                    threshold: lit(t),
                    message: lit(format!(
                        "Started using {p} in the last {} days, after none in the {} days before: a cross-sell conversation.",
                        ind.window(),
                        ind.lookback()
                    )),
                }
            })
            .collect(),
        "product_interest" => model
            .products
            .keys()
            .map(|p| {
                let visits = col(inputs::product_docs_column(p));
                let fires = product_in_use(model, p, "interest").not().and(visits.clone().gt_eq(lit(t)));
                Fired {
                    name,
                    ind,
                    eligible: None,
                    product: Some(p),
                    fires,
                    value: visits.clone(),
                    threshold: lit(t),
                    // The product name is an argument, never part of the template: a
                    // configured name may hold braces.
                    message: fmt(
                        "{} visits to the {} docs in the last {} days, without using {} in the last {} days.",
                        &[
                            int(visits),
                            lit(p.to_string()),
                            lit(ind.window()),
                            lit(p.to_string()),
                            lit(ind.lookback()),
                        ],
                    ),
                }
            })
            .collect(),
        _ if deployment::share_check(name).is_some() => {
            let check = deployment::share_check(name).expect("a share check");
            let share = col(deployment::share_column(name));
            let mut fires = share.clone().gt(lit(t));
            if name == "autocapture_unused" {
                // Only when no action is defined on autocapture (unknown: not fired).
                fires = fires.and(col(IND.autocapture_actions).eq(lit(0.0)));
            }
            let events = ind.ingested_events.clone().unwrap_or_default().join(", ");
            one(
                fires,
                share.clone(),
                fmt(
                    "{}% of the events ingested in the last {} days are {} ({} of {}; threshold {}%): {}.",
                    &[
                        num(share, 1),
                        lit(model.deployment.window_days),
                        lit(events),
                        int(col(deployment::share_events_column(name))),
                        int(col(DEP.events)),
                        num(lit(t), 1),
                        lit(check.advice),
                    ],
                ),
            )
        }
        "sdk_outdated" => one(
            col(DEP.days_behind).gt(lit(t)),
            col(DEP.days_behind),
            fmt(
                "The main SDK, {} {}, was released {} days before {}'s latest release of {} (threshold {} days): update the SDKs monthly.",
                &[
                    col(DEP.main_lib),
                    col(DEP.main_lib_version),
                    int(col(DEP.days_behind)),
                    col(DEP.main_lib),
                    col(DEP.latest_release).cast(DataType::String),
                    num(lit(t), 1),
                ],
            ),
        ),
        "group_analytics_unused" => {
            let addon = ind.addon.clone().unwrap_or_default();
            vec![Fired {
                name,
                ind,
                eligible: None,
                product: None,
                fires: has_addon(&addon).and(col(IND.group_events).eq(lit(0.0))),
                value: col(IND.group_events),
                // Fires on no group events at all: the threshold is that zero.
                threshold: lit(0.0),
                message: fmt(
                    "Pays for the {} add-on but sent no group events in the last {} days: remove the add-on or start sending groups.",
                    &[lit(addon.clone()), lit(model.deployment.window_days)],
                ),
            }]
        }
        "health_score_drop" if has_previous => {
            let drop = col("previous_health_score") - col("health_score");
            one(
                drop.clone().gt_eq(lit(t)),
                drop.clone(),
                fmt(
                    "Health score fell {} points since the previous run, from {} to {} (threshold {}).",
                    &[num(drop, 2), num(col("previous_health_score"), 2), num(col("health_score"), 2), num(lit(t), 1)],
                ),
            )
        }
        _ => vec![],
    }
}
