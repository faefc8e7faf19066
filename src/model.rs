//! The scoring model: windows, event sets, products, metrics, bands, weights.
//!
//! Owns loading the embedded default config (`config/default.toml`), merging a
//! user's override file over it, and validating the result once. Everything
//! downstream receives a `&Model` and reads its numbers from there; this module
//! must not know about polars or files other than the config.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::InputError;

/// The default model, shipped in the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub points: Points,
    pub labels: Labels,
    pub event_sets: IndexMap<String, Vec<String>>,
    pub feature_use: FeatureUse,
    pub paths: Paths,
    /// Sets of visits (SPEC 3): named like event sets, counted from URL paths.
    pub url_sets: IndexMap<String, UrlSet>,
    pub tickets: Tickets,
    pub products: IndexMap<String, Product>,
    pub categories: IndexMap<String, Category>,
    pub adoption: Adoption,
    pub users: Users,
    pub trends: Trends,
    pub run: RunPolicy,
    pub deployment: Deployment,
    /// Where `load` sends a finished run beyond files (issue 23).
    pub sinks: Sinks,
    pub metrics: IndexMap<String, Metric>,
    pub indicators: IndexMap<String, Indicator>,
    /// Per-segment weights: for orgs whose `accounts.plan` is the key, these category
    /// weights replace the defaults (categories not named keep their default weight).
    #[serde(default)]
    pub plan_weights: IndexMap<String, IndexMap<String, f64>>,
    /// How the input tables are named and shaped at their source.
    pub input: InputNames,
}

/// How the sources name what the job reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputNames {
    /// The group type whose key in a PostHog event's `properties.$groups` is the
    /// organization.
    pub posthog_group_type: String,
    /// Per table, the source's name of a column the job expects (`usage.org_id =
    /// "organization_id"`). `input::check_column_names` checks the names.
    #[serde(default)]
    pub columns: IndexMap<String, IndexMap<String, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Risk,
    Opportunity,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Risk => "risk",
            Kind::Opportunity => "opportunity",
        }
    }
}

/// An indicator's parameters (SPEC 7). Which keys an indicator needs is checked by
/// `validate`; the rule itself lives in `indicators`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub kind: Kind,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub threshold: Option<f64>,
    pub window_days: Option<u32>,
    pub lookback_days: Option<u32>,
    pub counter: Option<String>,
    pub event_set: Option<String>,
    /// The set of successes a failure or loss rate is taken against.
    pub success_set: Option<String>,
    pub status: Option<String>,
    pub plan: Option<String>,
    pub role: Option<String>,
    pub min_count: Option<f64>,
    pub quiet_threshold: Option<f64>,
    pub quiet_days: Option<f64>,
    /// Event names counted in the `ingestion` table (the deployment checks), as a
    /// share of all the org's ingested events.
    pub ingested_events: Option<Vec<String>>,
    /// An add-on of `accounts.addons` (the deployment checks).
    pub addon: Option<String>,
    /// An ongoing indicator is alerted again once its last alert is more than this
    /// many days old (`alerts`); `DEFAULT_RENOTIFY_DAYS` when not set.
    pub renotify_days: Option<u32>,
    /// Hysteresis for the indicators in `CLEARABLE`: once fired, it keeps firing
    /// until its value passes this, on the far side of `threshold`.
    pub clear_at: Option<f64>,
}

/// Days before an ongoing indicator is alerted again, unless the config says.
pub const DEFAULT_RENOTIFY_DAYS: u32 = 7;

/// Which way an indicator's value must go past its threshold to fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fires {
    /// Fires above the threshold (`value > threshold`, or `>=` where SPEC 7 says).
    Above,
    /// Fires below it.
    Below,
}

/// The indicators that compare one value with `threshold`, and so may set
/// `clear_at`; and which way they fire.
pub const CLEARABLE: &[(&str, Fires)] = &[
    ("forecasted_mrr_decrease", Fires::Below),
    ("forecasted_mrr_growth", Fires::Above),
    ("billing_page_visits", Fires::Above),
    ("query_failure_rate_high", Fires::Above),
    ("event_volume_drop", Fires::Above),
    ("no_insights_analyzed", Fires::Above),
    ("lost_insights", Fires::Below),
    ("health_score_drop", Fires::Above),
];

fn yes() -> bool {
    true
}

/// The indicators SPEC 7 defines, and the parameters each one needs. Indicators are
/// rules in code (`indicators`): a config tunes them, it cannot add one.
pub const INDICATOR_PARAMS: &[(&str, &[&str])] = &[
    ("forecasted_mrr_decrease", &["threshold"]),
    ("forecasted_mrr_growth", &["threshold"]),
    (
        "billing_page_visits",
        &["window_days", "threshold", "event_set"],
    ),
    (
        "query_failure_rate_high",
        &["window_days", "threshold", "event_set", "success_set"],
    ),
    (
        "event_volume_drop",
        &["window_days", "counter", "threshold"],
    ),
    ("no_insights_analyzed", &["event_set", "threshold"]),
    ("payment_failed", &["window_days", "status"]),
    ("startup_credit_running_out", &["plan", "threshold"]),
    ("owner_removed", &["window_days", "role"]),
    ("owner_added", &["window_days", "role"]),
    ("inactive_org", &["window_days"]),
    (
        "lost_insights",
        &[
            "window_days",
            "min_count",
            "threshold",
            "event_set",
            "success_set",
        ],
    ),
    (
        "renewal_upcoming",
        &["threshold", "quiet_threshold", "quiet_days"],
    ),
    ("new_product_adoption", &["window_days", "lookback_days"]),
    (
        "product_interest",
        &["window_days", "lookback_days", "threshold"],
    ),
    ("health_score_drop", &["threshold"]),
    // The deployment checks (issue 26), read from the `ingestion` table.
    ("identify_overuse", &["ingested_events", "threshold"]),
    ("groupidentify_overuse", &["ingested_events", "threshold"]),
    ("autocapture_unused", &["ingested_events", "threshold"]),
    ("sdk_outdated", &["threshold"]),
    ("group_analytics_unused", &["addon", "counter"]),
];

/// The indicators that read the latest instant of their `event_set` (every other
/// indicator with an `event_set` counts its events).
pub const LATEST_INSTANT_INDICATORS: &[&str] = &["no_insights_analyzed"];

impl Indicator {
    fn has(&self, param: &str) -> bool {
        match param {
            "threshold" => self.threshold.is_some_and(f64::is_finite),
            "window_days" => self.window_days.is_some_and(|d| d > 0),
            "lookback_days" => self.lookback_days.is_some_and(|d| d > 0),
            "counter" => self.counter.is_some(),
            "event_set" => self.event_set.is_some(),
            "success_set" => self.success_set.is_some(),
            "status" => self.status.is_some(),
            "plan" => self.plan.is_some(),
            "role" => self.role.is_some(),
            "min_count" => self.min_count.is_some_and(f64::is_finite),
            "quiet_threshold" => self.quiet_threshold.is_some_and(f64::is_finite),
            "quiet_days" => self.quiet_days.is_some_and(f64::is_finite),
            "ingested_events" => self.ingested_events.as_ref().is_some_and(|e| !e.is_empty()),
            "addon" => self.addon.as_ref().is_some_and(|a| !a.is_empty()),
            _ => false,
        }
    }

    /// Parameter accessors; validation guarantees the ones an indicator uses are set.
    pub fn threshold(&self) -> f64 {
        self.threshold.unwrap_or(0.0)
    }
    pub fn window(&self) -> u32 {
        self.window_days.unwrap_or(1)
    }
    pub fn lookback(&self) -> u32 {
        self.lookback_days.unwrap_or(1)
    }
    pub fn renotify_days(&self) -> u32 {
        self.renotify_days.unwrap_or(DEFAULT_RENOTIFY_DAYS)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Points {
    pub healthy: f64,
    pub concerning: f64,
    pub poor: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    pub concerning_from: f64,
    pub healthy_from: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureUse {
    pub sets: Vec<String>,
}

/// What a URL path is read from (SPEC 3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    /// The event set whose events carry a page's URL: only they visit a path.
    pub pageviews: String,
}

/// A set of visits (SPEC 3): the page views whose URL path starts with `path_prefix`,
/// plus, with `also`, every event of that event set wherever it happens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlSet {
    pub path_prefix: String,
    pub also: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tickets {
    pub urgent_priority: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub counter: Option<String>,
    pub engagement: Option<String>,
    pub docs_prefix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub weight: f64,
    #[serde(default)]
    pub adoption_products: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    pub events_window_days: u32,
    pub signals_window_days: u32,
    /// The event sets of the four frustration-signal columns.
    pub insights_started_set: String,
    pub insights_saved_set: String,
    pub queries_failed_set: String,
    pub queries_completed_set: String,
}

impl Users {
    /// Each signal column of the `users` table with the event set it counts.
    pub fn signal_sets(&self) -> [(&'static str, &str); 4] {
        [
            ("insights_started_7d", self.insights_started_set.as_str()),
            ("insights_saved_7d", self.insights_saved_set.as_str()),
            ("queries_failed_7d", self.queries_failed_set.as_str()),
            ("queries_completed_7d", self.queries_completed_set.as_str()),
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trends {
    pub weeks: u32,
}

/// The nightly run beyond scoring: history and the feed check.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunPolicy {
    /// History entries are kept this many days before the latest as_of.
    pub history_days: u32,
    /// The feed check's days before as_of (`feed_check`); 0 turns it off.
    pub feed_check_days: u32,
    /// A checked day below this share of its weekday median stops the run.
    pub min_ratio: f64,
    /// A day whose weekday median is below this many rows is not judged.
    pub feed_check_min_rows: u64,
}

/// The deployment checks (issue 26): what the `ingestion` table is read over.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Ingestion rows (and the group-events usage counter) dated in this many days
    /// before as_of.
    pub window_days: u32,
}

/// The sinks `load` sends a run to (issue 23).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sinks {
    pub vitally: VitallySink,
}

/// What `load vitally` sends, and how patiently.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitallySink {
    /// The account traits: columns of `health`, or one of `VITALLY_SPECIAL_TRAITS`.
    pub traits: Vec<String>,
    /// Messages per request; Vitally takes at most 100.
    pub batch_size: usize,
    /// Tries per batch (429, 5xx, timeouts) before the load gives up.
    pub max_attempts: u32,
    /// The wait after the first 5xx or timeout, doubled each retry.
    pub backoff_seconds: f64,
    /// The longest wait between two tries, whatever the service asks.
    pub max_wait_seconds: f64,
    /// Per request, connecting included.
    pub timeout_seconds: f64,
}

/// Traits that are not a column of `health`: every category's score, the names of
/// the account's fired indicators, and the run's as_of.
pub const VITALLY_SPECIAL_TRAITS: [&str; 3] =
    ["category_scores", "indicators", "account_health_as_of"];

/// Vitally's limit on messages in one batch request.
pub const VITALLY_MAX_BATCH: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adoption {
    pub window_days: u32,
}

/// How a metric's value is computed (SPEC 5). The parameters live beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    DaysSinceLastEvent,
    ActiveMemberPct,
    ActiveMemberPctDecrease,
    MembersWithEvent,
    MembersWithEventPct,
    TicketsCreated,
    UrgentTicketsUnresolved,
    /// Events (or visits) of `event_set` by members in the window; `docs_visits` is
    /// its name before event sets were configurable.
    #[serde(alias = "docs_visits")]
    EventCount,
    QueryFailureRate,
    DaysSinceLastMeeting,
    DaysSinceLastTicket,
    ProductsInUse,
    UsageDecrease,
}

impl Measure {
    /// The optional input table a measure is built on, if any: when that table is
    /// absent the metric is null and unscored (SPEC 5).
    pub fn optional_table(self) -> Option<&'static str> {
        match self {
            Measure::TicketsCreated
            | Measure::UrgentTicketsUnresolved
            | Measure::DaysSinceLastTicket => Some("tickets"),
            Measure::DaysSinceLastMeeting => Some("meetings"),
            _ => None,
        }
    }

    /// The keys a measure reads, besides those every metric has (`category`,
    /// `healthy`, `poor`, `product`, `null_is_poor`); each is required, and any other
    /// of `window_days`, `event_set`, `success_set`, `counter` is an error.
    pub fn keys(self) -> &'static [&'static str] {
        use Measure as M;
        match self {
            M::DaysSinceLastEvent
            | M::UrgentTicketsUnresolved
            | M::DaysSinceLastMeeting
            | M::DaysSinceLastTicket => &[],
            M::ActiveMemberPct
            | M::ActiveMemberPctDecrease
            | M::TicketsCreated
            | M::ProductsInUse => &["window_days"],
            M::MembersWithEvent | M::MembersWithEventPct | M::EventCount => {
                &["window_days", "event_set"]
            }
            M::QueryFailureRate => &["window_days", "event_set", "success_set"],
            M::UsageDecrease => &["window_days", "counter"],
        }
    }
}

/// The longest window a model may ask for (100 years): far beyond any export, and
/// far from the day counts' limits.
const MAX_WINDOW_DAYS: u32 = 36_525;

/// Output column names of `health` that no metric or category may take.
const RESERVED_COLUMNS: &[&str] = &[
    "org_id",
    "name",
    "csm",
    "as_of",
    "health_score",
    "health_label",
    "previous_health_score",
    "health_score_change",
    "risk_count",
    "opportunity_count",
    "weekday_event_volume_drop_7d",
    "event_volume_drop_7d",
];

/// The Vitally sink's settings: which traits (their form; whether a name is a column
/// of `health` is checked against the table by `load vitally`) and its retry bounds.
fn validate_vitally(v: &VitallySink) -> Result<(), (String, String)> {
    let key = |k: &str| format!("sinks.vitally.{k}");
    if v.traits.is_empty() {
        return Err((key("traits"), "name at least one trait".into()));
    }
    for (i, t) in v.traits.iter().enumerate() {
        check_name(key("traits"), t)?;
        if v.traits[..i].contains(t) {
            return Err((key("traits"), format!("{t:?} is named twice")));
        }
    }
    if !(1..=VITALLY_MAX_BATCH).contains(&v.batch_size) {
        return Err((
            key("batch_size"),
            format!("1 to {VITALLY_MAX_BATCH} messages (Vitally's limit)"),
        ));
    }
    if !(1..=100).contains(&v.max_attempts) {
        return Err((key("max_attempts"), "1 to 100 tries".into()));
    }
    for (k, value) in [
        ("backoff_seconds", v.backoff_seconds),
        ("max_wait_seconds", v.max_wait_seconds),
        ("timeout_seconds", v.timeout_seconds),
    ] {
        if !(0.0..=3600.0).contains(&value) {
            return Err((key(k), "0 to 3600 seconds".into()));
        }
    }
    if v.timeout_seconds == 0.0 {
        return Err((key("timeout_seconds"), "more than 0 seconds".into()));
    }
    Ok(())
}

/// A name that becomes part of output and internal column names: a letter, then
/// letters, digits and single underscores (internal columns use `__` and a leading
/// `_`, so such a name could collide with them).
fn check_name(key: String, name: &str) -> Result<(), (String, String)> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.contains("__");
    if ok {
        Ok(())
    } else {
        Err((
            key,
            format!("{name:?}: a name must be a letter followed by letters, digits and single underscores"),
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub category: String,
    pub measure: Measure,
    pub window_days: Option<u32>,
    pub event_set: Option<String>,
    /// `query_failure_rate`: the successes the failures of `event_set` are taken against.
    pub success_set: Option<String>,
    pub counter: Option<String>,
    pub product: Option<String>,
    pub healthy: Condition,
    pub poor: Condition,
    #[serde(default)]
    pub null_is_poor: bool,
}

impl Metric {
    /// Whether a lower value is healthier (healthy is an upper bound, `<= 5`).
    pub fn lower_is_better(&self) -> bool {
        self.healthy.op.is_upper_bound()
    }

    /// The metric's window in days; validation guarantees it is set where needed.
    pub fn window(&self) -> u32 {
        self.window_days.unwrap_or(0)
    }
}

/// A comparison against a threshold, written in the config as `"<= 5"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub op: Op,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    fn is_upper_bound(self) -> bool {
        matches!(self, Op::Lt | Op::Le)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.value)
    }
}

impl std::str::FromStr for Condition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (op, rest) = if let Some(r) = s.strip_prefix("<=") {
            (Op::Le, r)
        } else if let Some(r) = s.strip_prefix(">=") {
            (Op::Ge, r)
        } else if let Some(r) = s.strip_prefix('<') {
            (Op::Lt, r)
        } else if let Some(r) = s.strip_prefix('>') {
            (Op::Gt, r)
        } else {
            return Err(format!(
                "expected a condition such as \"<= 5\" or \"> 20\", got {s:?}"
            ));
        };
        let value: f64 = rest
            .trim()
            .parse()
            .map_err(|_| format!("expected a number after {:?}, got {s:?}", op.as_str()))?;
        if !value.is_finite() {
            return Err(format!("threshold must be finite, got {s:?}"));
        }
        Ok(Condition { op, value })
    }
}

impl Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A model plus the text it was built from, for the manifest.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    pub model: Model,
    /// Where the overrides came from, if any.
    pub source: Option<String>,
    /// sha256 of the effective model, serialised as JSON.
    pub hash: String,
}

impl Model {
    /// The default model alone.
    pub fn default_model() -> Model {
        load_from_str(None, "built-in default")
            .expect("the embedded default config is valid (tested)")
            .model
    }

    /// The event names of a named set; `feature_use` is the union of its sets. A URL
    /// set has no names of its own (see `url_sets`).
    pub fn events_of(&self, set: &str) -> Vec<String> {
        if set == FEATURE_USE {
            let mut all = BTreeSet::new();
            for s in &self.feature_use.sets {
                all.extend(self.event_sets.get(s).cloned().unwrap_or_default());
            }
            return all.into_iter().collect();
        }
        self.event_sets.get(set).cloned().unwrap_or_default()
    }

    /// Every usage counter the model names, in product order, without repeats.
    pub fn counters(&self) -> Vec<String> {
        let products = self.products.values().filter_map(|p| p.counter.as_ref());
        let metrics = self.metrics.values().filter_map(|m| m.counter.as_ref());
        let indicators = self.indicators.values().filter_map(|i| i.counter.as_ref());
        first_of_each(products.chain(metrics).chain(indicators).cloned())
    }

    /// Category weights in category order, for a plan (`None`: the defaults).
    pub fn weights_for(&self, plan: Option<&str>) -> Vec<f64> {
        let overrides = plan.and_then(|p| self.plan_weights.get(p));
        self.categories
            .iter()
            .map(|(cat, c)| {
                overrides
                    .and_then(|o| o.get(cat))
                    .copied()
                    .unwrap_or(c.weight)
            })
            .collect()
    }

    /// Every set whose events some stage counts per member and day: the users
    /// table's, the metrics', the products' engagement sets and the counting
    /// indicators', in that order, each once (URL sets included).
    pub fn counted_sets(&self) -> Vec<String> {
        let users = self.users.signal_sets().map(|(_, s)| s.to_string());
        let metrics = self
            .metrics
            .values()
            .flat_map(|m| [m.event_set.clone(), m.success_set.clone()]);
        let products = self.products.values().map(|p| p.engagement.clone());
        let indicators = self
            .indicators
            .iter()
            .filter(|(name, _)| !LATEST_INSTANT_INDICATORS.contains(&name.as_str()))
            .flat_map(|(_, i)| [i.event_set.clone(), i.success_set.clone()]);
        first_of_each(
            users
                .into_iter()
                .chain(metrics.chain(products).chain(indicators).flatten()),
        )
    }

    /// The sets whose latest instant some indicator reads, sorted.
    pub fn latest_sets(&self) -> Vec<String> {
        let mut sets: Vec<String> = LATEST_INSTANT_INDICATORS
            .iter()
            .filter_map(|name| self.indicators.get(*name)?.event_set.clone())
            .collect();
        sets.sort();
        sets.dedup();
        sets
    }

    /// A set of event names (or `feature_use`), not of visits.
    fn has_named_set(&self, name: &str) -> bool {
        name == FEATURE_USE || self.event_sets.contains_key(name)
    }

    /// An event set or a URL set.
    fn has_event_set(&self, name: &str) -> bool {
        self.has_named_set(name) || self.url_sets.contains_key(name)
    }
}

/// The event set that is the union of `feature_use.sets` (SPEC 3).
pub const FEATURE_USE: &str = "feature_use";

/// The names in order of first appearance, each once.
fn first_of_each(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for n in names {
        if !seen.contains(&n) {
            seen.push(n);
        }
    }
    seen
}

/// Loads the default model, with `overrides` (a TOML text) merged over it.
pub fn load_from_str(overrides: Option<&str>, source: &str) -> Result<LoadedModel, InputError> {
    let bad = |key: &str, problem: String| InputError::Config {
        file: source.to_string(),
        key: key.to_string(),
        problem,
    };
    let mut merged: toml::Value = DEFAULT_CONFIG
        .parse()
        .map_err(|e: toml::de::Error| bad("", e.to_string()))?;
    if let Some(text) = overrides {
        let user: toml::Value = text
            .parse()
            .map_err(|e: toml::de::Error| bad("", e.message().to_string()))?;
        check_override_shape(&merged, &user).map_err(|(k, p)| bad(&k, p))?;
        merge(&mut merged, user);
    }
    check_entries(&merged).map_err(|(k, p)| bad(&k, p))?;
    let model: Model = merged
        .try_into()
        .map_err(|e: toml::de::Error| bad("", e.message().to_string()))?;
    validate(&model).map_err(|(k, p)| bad(&k, p))?;
    let json = serde_json::to_vec(&model).expect("model serialises");
    let hash = format!("{:x}", Sha256::digest(&json));
    Ok(LoadedModel {
        model,
        source: overrides.map(|_| source.to_string()),
        hash,
    })
}

/// Loads the default model, with the file at `path` merged over it.
pub fn load(path: Option<&Path>) -> Result<LoadedModel, InputError> {
    match path {
        None => load_from_str(None, "built-in default"),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| InputError::Config {
                file: p.display().to_string(),
                key: String::new(),
                problem: format!("cannot read the file: {e}"),
            })?;
            load_from_str(Some(&text), &p.display().to_string())
        }
    }
}

/// A config may add event sets, URL sets, products, categories and metrics (SPEC 10),
/// each a table; indicators are rules in code, so it may only tune the known ones.
fn check_override_shape(
    defaults: &toml::Value,
    user: &toml::Value,
) -> Result<(), (String, String)> {
    for table in [
        "plan_weights",
        "metrics",
        "categories",
        "products",
        "url_sets",
    ] {
        for (name, entry) in user
            .get(table)
            .and_then(|v| v.as_table())
            .into_iter()
            .flatten()
        {
            if !entry.is_table() {
                return Err((
                    format!("{table}.{name}"),
                    "expected a table of keys and values".into(),
                ));
            }
        }
    }
    let (Some(known), Some(given)) = (
        defaults.get("indicators").and_then(|v| v.as_table()),
        user.get("indicators").and_then(|v| v.as_table()),
    ) else {
        return Ok(());
    };
    if let Some(name) = given.keys().find(|n| !known.contains_key(*n)) {
        return Err((
            format!("indicators.{name}"),
            format!(
                "unknown indicator {name:?} (a config tunes the built-in indicators; it cannot add one); known: {}",
                known.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(())
}

/// Reads each entry of the named tables on its own, so that a missing or unknown key
/// is reported with its path (`metrics.x.poor`), which a whole-model error cannot
/// give. Overrides of existing entries were merged over complete defaults, so a
/// missing key can only be one a new entry left out.
fn check_entries(merged: &toml::Value) -> Result<(), (String, String)> {
    fn each<T: serde::de::DeserializeOwned>(
        merged: &toml::Value,
        table: &str,
    ) -> Result<(), (String, String)> {
        let entries = merged.get(table).and_then(|v| v.as_table());
        for (name, entry) in entries.into_iter().flatten() {
            if let Err(e) = entry.clone().try_into::<T>() {
                let message = e.message().to_string();
                let field = ["missing field `", "unknown field `"]
                    .iter()
                    .find_map(|start| message.strip_prefix(start)?.split('`').next());
                let key = match field {
                    Some(f) => format!("{table}.{name}.{f}"),
                    None => format!("{table}.{name}"),
                };
                let problem = if message.starts_with("missing field") {
                    format!("{message}: a new entry must give every required key")
                } else {
                    message
                };
                return Err((key, problem));
            }
        }
        Ok(())
    }
    each::<Metric>(merged, "metrics")?;
    each::<Category>(merged, "categories")?;
    each::<Product>(merged, "products")?;
    each::<UrlSet>(merged, "url_sets")?;
    each::<Indicator>(merged, "indicators")?;
    each::<Vec<String>>(merged, "event_sets")
}

/// Tables merge key by key; any other value (lists included) replaces the default.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Checks the cross-references and bands of a model once, so the stages can trust it.
pub fn validate(m: &Model) -> Result<(), (String, String)> {
    let err = |k: String, p: String| Err((k, p));
    let named_set = |key: String, s: &str| -> Result<(), (String, String)> {
        if m.has_named_set(s) {
            Ok(())
        } else if m.url_sets.contains_key(s) {
            err(
                key,
                format!("{s:?} is a URL set; this key needs a set of event names"),
            )
        } else {
            err(key, format!("unknown event set {s:?}"))
        }
    };
    let any_set = |key: String, s: &str| -> Result<(), (String, String)> {
        if m.has_event_set(s) {
            Ok(())
        } else {
            err(key, format!("unknown event set {s:?}"))
        }
    };
    for s in &m.feature_use.sets {
        if !m.event_sets.contains_key(s) {
            return err(
                "feature_use.sets".into(),
                format!("unknown event set {s:?}"),
            );
        }
    }
    if m.event_sets.contains_key(FEATURE_USE) || m.url_sets.contains_key(FEATURE_USE) {
        return err(
            format!("event_sets.{FEATURE_USE}"),
            "this name is the union of feature_use.sets; pick another".into(),
        );
    }
    for name in m.url_sets.keys() {
        if m.event_sets.contains_key(name) {
            return err(
                format!("url_sets.{name}"),
                "an event set has this name too; a set name must say which it is".into(),
            );
        }
    }
    named_set("paths.pageviews".into(), &m.paths.pageviews)?;
    for (name, u) in &m.url_sets {
        if let Some(also) = &u.also {
            named_set(format!("url_sets.{name}.also"), also)?;
        }
    }
    for (name, p) in &m.products {
        if let Some(e) = &p.engagement {
            any_set(format!("products.{name}.engagement"), e)?;
        }
    }
    for (key, s) in [
        ("insights_started_set", &m.users.insights_started_set),
        ("insights_saved_set", &m.users.insights_saved_set),
        ("queries_failed_set", &m.users.queries_failed_set),
        ("queries_completed_set", &m.users.queries_completed_set),
    ] {
        any_set(format!("users.{key}"), s)?;
    }
    let mut weight_sum = 0.0;
    for (name, c) in &m.categories {
        if !(c.weight.is_finite() && c.weight >= 0.0) {
            return err(
                format!("categories.{name}.weight"),
                format!("weight must be a finite number >= 0, got {}", c.weight),
            );
        }
        weight_sum += c.weight;
        for p in &c.adoption_products {
            if !m.products.contains_key(p) {
                return err(
                    format!("categories.{name}.adoption_products"),
                    format!("unknown product {p:?}"),
                );
            }
        }
    }
    for name in m.categories.keys() {
        if !m.metrics.values().any(|metric| &metric.category == name) {
            return err(
                format!("categories.{name}"),
                "no metric belongs to this category, so it could never be scored".into(),
            );
        }
    }
    if weight_sum <= 0.0 {
        return err(
            "categories".into(),
            "all category weights are zero; at least one must be positive".into(),
        );
    }
    if m.labels.concerning_from > m.labels.healthy_from || !m.labels.healthy_from.is_finite() {
        return err(
            "labels".into(),
            "concerning_from must not be above healthy_from".into(),
        );
    }
    for (plan, weights) in &m.plan_weights {
        for (cat, w) in weights {
            if !m.categories.contains_key(cat) {
                return err(
                    format!("plan_weights.{plan}.{cat}"),
                    format!("unknown category {cat:?}"),
                );
            }
            if !(w.is_finite() && *w >= 0.0) {
                return err(
                    format!("plan_weights.{plan}.{cat}"),
                    format!("weight must be a finite number >= 0, got {w}"),
                );
            }
        }
        if m.weights_for(Some(plan)).iter().sum::<f64>() <= 0.0 {
            return err(
                format!("plan_weights.{plan}"),
                "all category weights are zero for this plan".into(),
            );
        }
    }
    for name in m.products.keys() {
        check_name(format!("products.{name}"), name)?;
    }
    for name in m.categories.keys() {
        check_name(format!("categories.{name}"), name)?;
        for column in [format!("{name}_score"), format!("{name}_weight")] {
            if RESERVED_COLUMNS.contains(&column.as_str()) || m.metrics.contains_key(&column) {
                return err(
                    format!("categories.{name}"),
                    format!(
                        "its column {column:?} would take the name of another column of `health`"
                    ),
                );
            }
        }
    }
    for name in m.metrics.keys() {
        check_name(format!("metrics.{name}"), name)?;
        if RESERVED_COLUMNS.contains(&name.as_str()) {
            return err(
                format!("metrics.{name}"),
                "this is the name of another column of `health`".into(),
            );
        }
    }
    let windows = [
        ("adoption.window_days".to_string(), m.adoption.window_days),
        ("deployment.window_days".into(), m.deployment.window_days),
        (
            "users.events_window_days".into(),
            m.users.events_window_days,
        ),
        (
            "users.signals_window_days".into(),
            m.users.signals_window_days,
        ),
    ]
    .into_iter()
    .chain(m.indicators.iter().flat_map(|(name, i)| {
        [
            (format!("indicators.{name}.window_days"), i.window_days),
            (format!("indicators.{name}.lookback_days"), i.lookback_days),
        ]
        .into_iter()
        .filter_map(|(k, d)| Some((k, d?)))
    }));
    for (key, days) in windows {
        if !(1..=MAX_WINDOW_DAYS).contains(&days) {
            return err(key, format!("a window of 1 to {MAX_WINDOW_DAYS} days"));
        }
    }
    if !(1..=MAX_WINDOW_DAYS).contains(&m.run.history_days) {
        return err(
            "run.history_days".into(),
            format!("must be 1 to {MAX_WINDOW_DAYS} days"),
        );
    }
    if m.run.feed_check_days > 28 {
        return err(
            "run.feed_check_days".into(),
            "must be 0 (no check) to 28 days".into(),
        );
    }
    validate_vitally(&m.sinks.vitally)?;
    if !(0.0..=1.0).contains(&m.run.min_ratio) {
        return err("run.min_ratio".into(), "must be 0 to 1".into());
    }
    if !(1..=MAX_WINDOW_DAYS / 7).contains(&m.trends.weeks) {
        return err(
            "trends.weeks".into(),
            format!("1 to {} weeks", MAX_WINDOW_DAYS / 7),
        );
    }
    for (name, metric) in &m.metrics {
        let key = |k: &str| format!("metrics.{name}.{k}");
        if !m.categories.contains_key(&metric.category) {
            return err(
                key("category"),
                format!("unknown category {:?}", metric.category),
            );
        }
        // Each optional key: set exactly when the measure reads it, and valid.
        let reads = metric.measure.keys();
        let window = metric.window_days.map(|d| d.to_string());
        for (k, value) in [
            ("window_days", &window),
            ("event_set", &metric.event_set),
            ("success_set", &metric.success_set),
            ("counter", &metric.counter),
        ] {
            match (reads.contains(&k), value) {
                (false, None) => {}
                (false, Some(_)) => {
                    return err(
                        key(k),
                        format!("measure {:?} does not read this key", metric.measure),
                    )
                }
                (true, None) => {
                    return err(
                        key(k),
                        format!("measure {:?} needs this key", metric.measure),
                    )
                }
                (true, Some(v)) => match k {
                    "event_set" | "success_set" => any_set(key(k), v)?,
                    "window_days" if !(1..=MAX_WINDOW_DAYS).contains(&metric.window()) => {
                        return err(
                            key(k),
                            format!("this measure needs a window of 1 to {MAX_WINDOW_DAYS} days"),
                        )
                    }
                    _ => {}
                },
            }
        }
        if let Some(p) = &metric.product {
            if !m.products.contains_key(p) {
                return err(key("product"), format!("unknown product {p:?}"));
            }
        }
        check_bands(metric).map_err(|p| (format!("metrics.{name}"), p))?;
    }
    for (name, params) in INDICATOR_PARAMS {
        let Some(ind) = m.indicators.get(*name) else {
            return err(
                format!("indicators.{name}"),
                "missing from the model".into(),
            );
        };
        for p in *params {
            if !ind.has(p) {
                return err(
                    format!("indicators.{name}.{p}"),
                    "needed by this indicator (a finite number, a window of at least 1 day, or a name)".into(),
                );
            }
        }
        for (what, set) in [
            ("event_set", &ind.event_set),
            ("success_set", &ind.success_set),
        ] {
            let Some(s) = set else { continue };
            let key = format!("indicators.{name}.{what}");
            if LATEST_INSTANT_INDICATORS.contains(name) {
                // The latest instant is kept per (member, day) for event names only.
                named_set(key, s)?;
            } else {
                any_set(key, s)?;
            }
        }
    }
    for (name, ind) in &m.indicators {
        if let Some(days) = ind.renotify_days {
            if days > MAX_WINDOW_DAYS {
                return err(
                    format!("indicators.{name}.renotify_days"),
                    format!("must be 0 to {MAX_WINDOW_DAYS} days"),
                );
            }
        }
        let Some(clear_at) = ind.clear_at else {
            continue;
        };
        let key = format!("indicators.{name}.clear_at");
        let Some((_, fires)) = CLEARABLE.iter().find(|(n, _)| n == name) else {
            return err(
                key,
                "this indicator does not compare one value with a threshold".into(),
            );
        };
        let t = ind.threshold();
        let far_side = match fires {
            Fires::Above => clear_at <= t,
            Fires::Below => clear_at >= t,
        };
        if !clear_at.is_finite() || !far_side {
            return err(
                key,
                format!(
                    "must be a number on the side of threshold {t} where the indicator does not fire ({} it)",
                    if *fires == Fires::Above { "at most" } else { "at least" }
                ),
            );
        }
    }
    for name in m.indicators.keys() {
        if !INDICATOR_PARAMS.iter().any(|(n, _)| n == name) {
            return err(
                format!("indicators.{name}"),
                format!("unknown indicator {name:?}"),
            );
        }
    }
    Ok(())
}

/// `healthy` and `poor` must point in opposite directions and never both hold.
fn check_bands(metric: &Metric) -> Result<(), String> {
    let (h, p) = (metric.healthy, metric.poor);
    if h.op.is_upper_bound() == p.op.is_upper_bound() {
        return Err(format!(
            "healthy ({h}) and poor ({p}) point the same way; one must be an upper bound and the other a lower bound"
        ));
    }
    // Lower is better when healthy is an upper bound (`<= 5`) and poor a lower bound (`> 20`).
    let overlap = if h.op.is_upper_bound() {
        h.value > p.value || (h.value == p.value && h.op == Op::Le && p.op == Op::Ge)
    } else {
        h.value < p.value || (h.value == p.value && h.op == Op::Ge && p.op == Op::Le)
    };
    if overlap {
        return Err(format!(
            "bands overlap: a value can be both healthy ({h}) and poor ({p})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_model_loads_and_validates() {
        let m = Model::default_model();
        assert_eq!(m.metrics.len(), 20);
        assert_eq!(m.categories.len(), 7);
        assert_eq!(m.metrics.get_index(0).unwrap().0, "days_since_last_seen");
    }

    #[test]
    fn feature_use_is_the_union_of_five_sets() {
        let m = Model::default_model();
        let f = m.events_of("feature_use");
        assert_eq!(f.len(), 8 + 2 + 2 + 3 + 3);
        assert!(f.contains(&"survey edited".to_string()));
    }

    #[test]
    fn conditions_parse() {
        let c: Condition = "<= 5".parse().unwrap();
        assert_eq!((c.op, c.value), (Op::Le, 5.0));
        let c: Condition = ">6".parse().unwrap();
        assert_eq!((c.op, c.value), (Op::Gt, 6.0));
        assert!("= 5".parse::<Condition>().is_err());
        assert!("< x".parse::<Condition>().is_err());
    }

    #[test]
    fn overlapping_bands_are_rejected() {
        let e = load_from_str(
            Some("[metrics.active_user_pct]\nhealthy = \">= 20\"\npoor = \"< 40\"\n"),
            "t.toml",
        )
        .unwrap_err();
        assert!(
            matches!(e, InputError::Config { ref key, .. } if key == "metrics.active_user_pct")
        );
    }

    fn key_of(config: &str) -> String {
        match load_from_str(Some(config), "t.toml") {
            Err(InputError::Config { key, .. }) => key,
            other => panic!("{config}: expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn new_entries_must_be_complete() {
        let metric =
            "[metrics.viewers]\ncategory = \"user_engagement\"\nmeasure = \"members_with_event\"\n\
                      event_set = \"insight_analysis\"\nwindow_days = 14\nhealthy = \">= 5\"\n";
        assert_eq!(key_of(metric), "metrics.viewers.poor");
        assert_eq!(
            key_of("[metrics.nope]\nhealthy = \"< 1\"\n"),
            "metrics.nope.category"
        );
        assert_eq!(
            key_of("[categories.support]\nadoption_products = []\n"),
            "categories.support.weight"
        );
        assert_eq!(
            key_of("[products.warehouse2]\ncounter = \"x\"\n"),
            "products.warehouse2.docs_prefix"
        );
        assert_eq!(
            key_of("[url_sets.pricing]\nalso = \"pageview\"\n"),
            "url_sets.pricing.path_prefix"
        );
        // Unknown keys stay errors, in new and existing entries alike.
        assert_eq!(
            key_of(&format!("{metric}poor = \"< 1\"\nwindow = 3\n")),
            "metrics.viewers.window"
        );
        assert_eq!(
            key_of("[metrics.active_user_pct]\nwindow = 3\n"),
            "metrics.active_user_pct.window"
        );
        // Measure-specific keys are named too.
        assert_eq!(
            key_of(
                "[metrics.x]\ncategory = \"user_engagement\"\nmeasure = \"members_with_event\"\n\
                    window_days = 7\nhealthy = \">= 5\"\npoor = \"< 1\"\n"
            ),
            "metrics.x.event_set"
        );
        // Indicators are rules in code: none can be added.
        assert_eq!(
            key_of("[indicators.made_up]\nkind = \"risk\"\n"),
            "indicators.made_up"
        );
    }

    #[test]
    fn a_config_adds_an_event_set_a_metric_and_a_category() {
        let l = load_from_str(
            Some(
                "[event_sets]\ninsight_viewing = [\"insight viewed\"]\n\
                 [categories.insight_reading]\nweight = 10.0\n\
                 [metrics.insight_viewers_pct]\ncategory = \"insight_reading\"\n\
                 measure = \"members_with_event_pct\"\nevent_set = \"insight_viewing\"\n\
                 window_days = 14\nhealthy = \">= 30\"\npoor = \"< 10\"\n",
            ),
            "t",
        )
        .unwrap();
        let m = &l.model;
        assert_eq!(m.metrics.len(), 21);
        assert_eq!(m.metrics.get_index(20).unwrap().0, "insight_viewers_pct");
        assert_eq!(m.categories.get_index(7).unwrap().0, "insight_reading");
        assert!(m.counted_sets().contains(&"insight_viewing".to_string()));
        assert_eq!(m.events_of("insight_viewing"), ["insight viewed"]);
    }

    #[test]
    fn sets_counted_and_latest_come_from_every_stage_of_the_model() {
        let m = Model::default_model();
        assert_eq!(
            m.counted_sets(),
            [
                "insight_started",
                "insight_saved",
                "query_failed",
                "query_ok",
                "feature_use",
                "docs_visit",
                "insight_analysis",
                "replay_watching",
                "flag_editing",
                "experimenting",
                "survey_viewing",
                "billing_visit",
            ]
        );
        assert_eq!(m.latest_sets(), ["insight_analyzed"]);
    }

    #[test]
    fn url_sets_are_not_event_names() {
        assert_eq!(
            key_of("[indicators.no_insights_analyzed]\nevent_set = \"docs_visit\"\n"),
            "indicators.no_insights_analyzed.event_set"
        );
        assert_eq!(
            key_of("[url_sets.pageview]\npath_prefix = \"/\"\n"),
            "url_sets.pageview"
        );
        assert_eq!(
            key_of("[url_sets.x]\npath_prefix = \"/\"\nalso = \"nope\"\n"),
            "url_sets.x.also"
        );
    }

    #[test]
    fn plan_weights_override_named_categories_only() {
        let l = load_from_str(
            Some("[plan_weights.enterprise]\nproduct_experience = 15.0\n"),
            "t",
        )
        .unwrap();
        let w = l.model.weights_for(Some("enterprise"));
        assert_eq!(w, vec![15.0, 15.0, 5.0, 33.0, 20.0, 17.0, 5.0]);
        assert_eq!(l.model.weights_for(Some("free")), l.model.weights_for(None));
        let e = load_from_str(Some("[plan_weights.enterprise]\nnope = 1.0\n"), "t").unwrap_err();
        assert!(
            matches!(e, InputError::Config { ref key, .. } if key == "plan_weights.enterprise.nope")
        );
        let e = load_from_str(
            Some("[plan_weights.enterprise]\nsession_replay = -1.0\n"),
            "t",
        )
        .unwrap_err();
        assert!(
            matches!(e, InputError::Config { ref key, .. } if key == "plan_weights.enterprise.session_replay")
        );
    }

    #[test]
    fn invalid_models_name_the_key() {
        let cases = [
            ("[categories.session_replay]\nweight = -2.0\n", "categories.session_replay.weight"),
            (
                "[categories.user_engagement]\nweight = 0.0\n[categories.product_experience]\nweight = 0.0\n\
                 [categories.company_engagement]\nweight = 0.0\n[categories.product_analytics]\nweight = 0.0\n\
                 [categories.session_replay]\nweight = 0.0\n[categories.feature_flags_experiments]\nweight = 0.0\n\
                 [categories.surveys_data_warehouse]\nweight = 0.0\n",
                "categories",
            ),
            ("[metrics.docs_visits_7d]\nhealthy = \">= 20\"\n", "metrics.docs_visits_7d"),
            ("[metrics.docs_visits_7d]\nevent_set = \"nope\"\nmeasure = \"members_with_event\"\n", "metrics.docs_visits_7d.event_set"),
            ("[indicators.lost_insights]\nwindow_days = 0\n", "indicators.lost_insights.window_days"),
        ];
        for (text, key) in cases {
            match load_from_str(Some(text), "t.toml") {
                Err(InputError::Config { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let l = load_from_str(
            Some("[metrics.active_user_pct]\nhealthy = \">= 50\"\n"),
            "t",
        )
        .unwrap();
        let m = &l.model.metrics["active_user_pct"];
        assert_eq!(m.healthy.value, 50.0);
        assert_eq!(m.poor.value, 20.0);
        assert_eq!(m.window_days, Some(30));
        assert_ne!(l.hash, load_from_str(None, "d").unwrap().hash);
    }
}
