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
    pub tickets: Tickets,
    pub products: IndexMap<String, Product>,
    pub categories: IndexMap<String, Category>,
    pub adoption: Adoption,
    pub users: Users,
    pub trends: Trends,
    pub metrics: IndexMap<String, Metric>,
    pub indicators: IndexMap<String, Indicator>,
    /// Per-segment weights: for orgs whose `accounts.plan` is the key, these category
    /// weights replace the defaults (categories not named keep their default weight).
    #[serde(default)]
    pub plan_weights: IndexMap<String, IndexMap<String, f64>>,
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
    pub status: Option<String>,
    pub plan: Option<String>,
    pub role: Option<String>,
    pub min_count: Option<f64>,
    pub quiet_threshold: Option<f64>,
    pub quiet_days: Option<f64>,
}

fn yes() -> bool {
    true
}

/// The indicators SPEC 7 defines, and the parameters each one needs.
pub const INDICATOR_PARAMS: &[(&str, &[&str])] = &[
    ("forecasted_mrr_decrease", &["threshold"]),
    ("forecasted_mrr_growth", &["threshold"]),
    ("billing_page_visits", &["window_days", "threshold"]),
    ("query_failure_rate_high", &["window_days", "threshold"]),
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
    ("lost_insights", &["window_days", "min_count", "threshold"]),
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
];

impl Indicator {
    fn has(&self, param: &str) -> bool {
        match param {
            "threshold" => self.threshold.is_some_and(f64::is_finite),
            "window_days" => self.window_days.is_some_and(|d| d > 0),
            "lookback_days" => self.lookback_days.is_some_and(|d| d > 0),
            "counter" => self.counter.is_some(),
            "event_set" => self.event_set.is_some(),
            "status" => self.status.is_some(),
            "plan" => self.plan.is_some(),
            "role" => self.role.is_some(),
            "min_count" => self.min_count.is_some_and(f64::is_finite),
            "quiet_threshold" => self.quiet_threshold.is_some_and(f64::is_finite),
            "quiet_days" => self.quiet_days.is_some_and(f64::is_finite),
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paths {
    pub billing_prefix: String,
    pub docs_prefix: String,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trends {
    pub weeks: u32,
}

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
    DocsVisits,
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

    fn needs_window(self) -> bool {
        !matches!(
            self,
            Measure::DaysSinceLastEvent
                | Measure::UrgentTicketsUnresolved
                | Measure::DaysSinceLastMeeting
                | Measure::DaysSinceLastTicket
        )
    }

    fn needs_event_set(self) -> bool {
        matches!(
            self,
            Measure::MembersWithEvent | Measure::MembersWithEventPct
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub category: String,
    pub measure: Measure,
    pub window_days: Option<u32>,
    pub event_set: Option<String>,
    pub counter: Option<String>,
    pub product: Option<String>,
    pub healthy: Condition,
    pub poor: Condition,
    #[serde(default)]
    pub null_is_poor: bool,
}

impl Metric {
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

impl Condition {
    pub fn holds(&self, v: f64) -> bool {
        match self.op {
            Op::Lt => v < self.value,
            Op::Le => v <= self.value,
            Op::Gt => v > self.value,
            Op::Ge => v >= self.value,
        }
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

    /// The event names of a named set; `feature_use` is the union of its sets.
    pub fn events_of(&self, set: &str) -> Vec<String> {
        if set == "feature_use" {
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
        let mut seen: Vec<String> = Vec::new();
        for c in products.chain(metrics).chain(indicators) {
            if !seen.contains(c) {
                seen.push(c.clone());
            }
        }
        seen
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

    fn has_event_set(&self, name: &str) -> bool {
        name == "feature_use" || self.event_sets.contains_key(name)
    }
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
        reject_unknown_names(&merged, &user).map_err(|(k, p)| bad(&k, p))?;
        merge(&mut merged, user);
    }
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

/// Metrics and categories are a fixed vocabulary: a config may tune them, not invent
/// them (SPEC 10). Event sets and products may be added.
fn reject_unknown_names(
    defaults: &toml::Value,
    user: &toml::Value,
) -> Result<(), (String, String)> {
    if let Some(plans) = user.get("plan_weights").and_then(|v| v.as_table()) {
        for (plan, weights) in plans {
            if !weights.is_table() {
                return Err((
                    format!("plan_weights.{plan}"),
                    "expected a table of category = weight".into(),
                ));
            }
        }
    }
    for table in ["metrics", "categories", "indicators"] {
        let (Some(known), Some(given)) = (
            defaults.get(table).and_then(|v| v.as_table()),
            user.get(table).and_then(|v| v.as_table()),
        ) else {
            continue;
        };
        for name in given.keys() {
            if !known.contains_key(name) {
                let what = match table {
                    "metrics" => "metric",
                    "categories" => "category",
                    _ => "indicator",
                };
                return Err((
                    format!("{table}.{name}"),
                    format!(
                        "unknown {what} {name:?}; known: {}",
                        known.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
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
    for (name, sets) in [("feature_use.sets", &m.feature_use.sets)] {
        for s in sets {
            if !m.event_sets.contains_key(s) {
                return err(name.into(), format!("unknown event set {s:?}"));
            }
        }
    }
    if m.products.len() > crate::events::MAX_PRODUCTS {
        return err(
            "products".into(),
            format!(
                "{} products; the events pass counts docs visits for at most {}",
                m.products.len(),
                crate::events::MAX_PRODUCTS
            ),
        );
    }
    for (name, p) in &m.products {
        if let Some(e) = &p.engagement {
            if !m.has_event_set(e) {
                return err(
                    format!("products.{name}.engagement"),
                    format!("unknown event set {e:?}"),
                );
            }
        }
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
    if weight_sum <= 0.0 {
        return err(
            "categories".into(),
            "all category weights are zero; at least one must be positive".into(),
        );
    }
    if m.adoption.window_days == 0 {
        return err("adoption.window_days".into(), "must be at least 1".into());
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
    for (name, metric) in &m.metrics {
        let key = |k: &str| format!("metrics.{name}.{k}");
        if !m.categories.contains_key(&metric.category) {
            return err(
                key("category"),
                format!("unknown category {:?}", metric.category),
            );
        }
        if metric.measure.needs_window() && metric.window_days.unwrap_or(0) == 0 {
            return err(
                key("window_days"),
                "this measure needs a window of at least 1 day".into(),
            );
        }
        if metric.measure.needs_event_set() {
            match &metric.event_set {
                Some(s) if m.has_event_set(s) => {}
                Some(s) => return err(key("event_set"), format!("unknown event set {s:?}")),
                None => return err(key("event_set"), "this measure needs an event set".into()),
            }
        }
        if metric.measure == Measure::UsageDecrease && metric.counter.is_none() {
            return err(
                key("counter"),
                "usage_decrease needs a usage counter".into(),
            );
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
        if let Some(s) = &ind.event_set {
            if !m.has_event_set(s) {
                return err(
                    format!("indicators.{name}.event_set"),
                    format!("unknown event set {s:?}"),
                );
            }
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
    fn conditions_parse_and_hold_at_the_edges() {
        let c: Condition = "<= 5".parse().unwrap();
        assert!(c.holds(5.0) && !c.holds(5.000001));
        let c: Condition = ">6".parse().unwrap();
        assert!(c.holds(6.5) && !c.holds(6.0));
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

    #[test]
    fn unknown_metric_and_category_are_rejected() {
        let e = load_from_str(Some("[metrics.nope]\nhealthy = \"< 1\"\n"), "t.toml").unwrap_err();
        assert!(matches!(e, InputError::Config { ref key, .. } if key == "metrics.nope"));
        let e = load_from_str(Some("[categories.nope]\nweight = 1.0\n"), "t.toml").unwrap_err();
        assert!(matches!(e, InputError::Config { ref key, .. } if key == "categories.nope"));
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
    fn products_beyond_what_the_events_pass_counts_are_rejected() {
        // The default 10 products plus enough to pass the limit by one.
        let extra = crate::events::MAX_PRODUCTS - 10 + 1;
        let config: String = (0..extra)
            .map(|i| format!("[products.extra_{i}]\ndocs_prefix = \"/docs/extra-{i}\"\n"))
            .collect();
        let e = load_from_str(Some(&config), "t").unwrap_err();
        assert!(matches!(e, InputError::Config { ref key, .. } if key == "products"));
        // At the limit, it loads.
        let at_limit: String = config.split_inclusive('\n').skip(2).collect();
        load_from_str(Some(&at_limit), "t").unwrap();
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
            ("[indicators.made_up]\nkind = \"risk\"\n", "indicators.made_up"),
            ("[indicators.lost_insights]\nwindow_days = 0\n", "indicators.lost_insights.window_days"),
            ("[metrics.active_user_pct]\nwindow = 3\n", ""),
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
