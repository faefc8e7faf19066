//! What the report reads of a run: its tables (through `OUT/current`, resolved once),
//! its manifest and its history, gathered per account.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use polars::prelude::*;

use crate::error::InputError;
use crate::output::read_table;
use crate::publish;

/// Lost insights (started minus saved, 7 days) from which a user is frustrated.
const LOST_INSIGHTS: f64 = 3.0;
/// Failed queries (7 days) from which a user is frustrated.
const FAILED_QUERIES: f64 = 3.0;
/// Frustrated users shown per account.
const FRUSTRATED_SHOWN: usize = 5;

pub struct Report {
    pub as_of: String,
    pub accounts: Vec<Account>,
    /// Why the run's data is doubtful, one sentence each (shown as a banner).
    pub warnings: Vec<String>,
}

pub struct Indicator {
    pub kind: String,
    pub message: String,
}

pub struct Alert {
    pub kind: String,
    pub status: String,
    pub message: String,
}

pub struct User {
    pub email: String,
    pub started: i64,
    pub saved: i64,
    pub failed: i64,
    pub completed: i64,
}

pub struct Account {
    pub org_id: String,
    pub name: Option<String>,
    pub csm: Option<String>,
    pub score: Option<f64>,
    pub change: Option<f64>,
    pub label: Option<String>,
    pub mrr: Option<f64>,
    pub renewal_date: Option<String>,
    pub days_to_renewal: Option<i64>,
    pub urgent_tickets: f64,
    /// (category, score) in the model's order.
    pub categories: Vec<(String, Option<f64>)>,
    pub indicators: Vec<Indicator>,
    pub alerts: Vec<Alert>,
    /// One sentence: what moved the score since the previous run, or what costs it
    /// the most points.
    pub why: String,
    /// (as_of, score) of every history entry, oldest first.
    pub history: Vec<(String, f64)>,
    /// (week_start, weekday mean of events, of active members).
    pub trends: Vec<(String, Option<f64>, Option<f64>)>,
    pub frustrated: Vec<User>,
    /// The deployment checks' figures in one sentence, when the run has them.
    pub deployment: Option<String>,
}

impl Account {
    pub fn csm_name(&self) -> String {
        self.csm
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| "(no CSM)".into())
    }
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.org_id.clone())
    }
    /// ARR as 12 x MRR (the outputs carry MRR).
    pub fn arr(&self) -> Option<f64> {
        self.mrr.map(|m| 12.0 * m)
    }
    /// An unresolved urgent ticket: no upbeat nudge (seed 003).
    pub fn escalated(&self) -> bool {
        self.urgent_tickets > 0.0
    }
    pub fn has_open_risk(&self) -> bool {
        self.indicators.iter().any(|i| i.kind == "risk")
    }
}

fn strings(df: &DataFrame, c: &str) -> Vec<Option<String>> {
    match df.column(c).and_then(|c| c.cast(&DataType::String)) {
        Ok(col) => col
            .str()
            .map(|s| s.iter().map(|v| v.map(str::to_string)).collect())
            .unwrap_or_else(|_| vec![None; df.height()]),
        Err(_) => vec![None; df.height()],
    }
}

fn numbers(df: &DataFrame, c: &str) -> Vec<Option<f64>> {
    match df.column(c).and_then(|c| c.cast(&DataType::Float64)) {
        Ok(col) => col
            .f64()
            .map(|s| s.iter().collect())
            .unwrap_or_else(|_| vec![None; df.height()]),
        Err(_) => vec![None; df.height()],
    }
}

/// Rows of `df` grouped by `org_id`, in row order.
fn by_org(df: &DataFrame) -> BTreeMap<String, Vec<usize>> {
    let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, o) in strings(df, "org_id").into_iter().enumerate() {
        if let Some(o) = o {
            m.entry(o).or_default().push(i);
        }
    }
    m
}

/// Reads the run published in `out`.
pub fn run(out: &Path) -> Result<Report> {
    let dir = publish::current_run(out);
    let manifest_path = dir.join("manifest.json");
    let manifest: serde_json::Value = std::fs::read_to_string(&manifest_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| InputError::BadPath {
            path: manifest_path.display().to_string(),
            problem: "no run here; run `account-health run --out DIR` first".into(),
        })?;
    let health = read_table(&dir, "health")?.ok_or_else(|| InputError::BadPath {
        path: dir.join("health.parquet").display().to_string(),
        problem: "not found; the report reads a run's Parquet outputs".into(),
    })?;
    let as_of = manifest["as_of"].as_str().unwrap_or_default().to_string();
    // The model's categories, in the order of their columns in `health` (the
    // manifest's JSON object does not keep the model's order).
    let named: Vec<String> = manifest["config"]["categories"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut categories: Vec<(usize, String)> = named
        .into_iter()
        .filter_map(|c| {
            let at = health
                .get_column_names()
                .iter()
                .position(|n| n.as_str() == crate::score::category_column(&c))?;
            Some((at, c))
        })
        .collect();
    categories.sort();
    let categories: Vec<String> = categories.into_iter().map(|(_, c)| c).collect();
    let healthy = manifest["config"]["points"]["healthy"]
        .as_f64()
        .unwrap_or(10.0);

    let mut warnings = Vec::new();
    let unknown = manifest["data_quality"]["events_of_unknown_members"]
        .as_u64()
        .unwrap_or(0);
    if unknown > 0 {
        warnings.push(format!(
            "{unknown} events were of people who are not members of their organization: check the members export."
        ));
    }
    if manifest["feed_check"]["allowed"].as_bool() == Some(true) {
        warnings.push(
            "This run was published with an incomplete input feed (--allow-incomplete): volumes may look lower than they are."
                .into(),
        );
    }
    let absent: Vec<String> = manifest["absent_tables"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !absent.is_empty() {
        warnings.push(format!(
            "No {} in this run's inputs: the metrics built on them are empty.",
            absent.join(", ")
        ));
    }

    let empty = DataFrame::empty();
    let indicators = read_table(&dir, "indicators")?.unwrap_or_else(|| empty.clone());
    let alerts = read_table(&dir, "alerts")?.unwrap_or_else(|| empty.clone());
    let changes = read_table(&dir, "metric_changes")?.unwrap_or_else(|| empty.clone());
    let scores = read_table(&dir, "metric_scores")?.unwrap_or_else(|| empty.clone());
    let users = read_table(&dir, "users")?.unwrap_or_else(|| empty.clone());
    let trends = read_table(&dir, "trends")?.unwrap_or_else(|| empty.clone());
    // The deployment checks' figures (runs before them have no such table).
    let deployment = read_table(&dir, "deployment")?.unwrap_or_else(|| empty.clone());
    let deployment_row: BTreeMap<String, usize> = strings(&deployment, "org_id")
        .into_iter()
        .enumerate()
        .filter_map(|(r, o)| Some((o?, r)))
        .collect();
    let window_days = manifest["config"]["deployment"]["window_days"]
        .as_u64()
        .map(|d| d as u32);

    // Score history: every entry's health scores.
    let mut history: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    let as_of_day = crate::time::AsOf::parse(&as_of).map(|a| a.day).ok();
    // Entries up to this run's as_of (a re-run of an older date has later ones).
    for d in publish::history_dates(out)
        .into_iter()
        .filter(|d| as_of_day.is_none_or(|a| d.day <= a))
    {
        let entry = out.join(publish::HISTORY).join(publish::history_folder(&d));
        if let Some(h) = read_table(&entry, "health")? {
            for (o, s) in strings(&h, "org_id")
                .into_iter()
                .zip(numbers(&h, "health_score"))
            {
                if let (Some(o), Some(s)) = (o, s) {
                    history.entry(o).or_default().push((d.iso(), s));
                }
            }
        }
    }

    let lost = lost_points(&health, &scores, &categories, healthy)?;
    let (ind_rows, alert_rows, change_rows, user_rows, trend_rows) = (
        by_org(&indicators),
        by_org(&alerts),
        by_org(&changes),
        by_org(&users),
        by_org(&trends),
    );
    let col = |df: &DataFrame, c: &str| strings(df, c);
    let (i_kind, i_msg) = (col(&indicators, "kind"), col(&indicators, "message"));
    let (a_kind, a_status, a_msg) = (
        col(&alerts, "kind"),
        col(&alerts, "status"),
        col(&alerts, "message"),
    );
    let (c_metric, c_band, c_prev_band, c_contrib) = (
        col(&changes, "metric"),
        col(&changes, "band"),
        col(&changes, "previous_band"),
        numbers(&changes, "contribution"),
    );
    let (u_email, u_started, u_saved, u_failed, u_completed) = (
        col(&users, "email"),
        numbers(&users, "insights_started_7d"),
        numbers(&users, "insights_saved_7d"),
        numbers(&users, "queries_failed_7d"),
        numbers(&users, "queries_completed_7d"),
    );
    let (t_week, t_events, t_members) = (
        col(&trends, "week_start"),
        numbers(&trends, "event_count_in_period_weekday_mean"),
        numbers(&trends, "active_members_weekday_mean"),
    );
    // (`renewal_date` is in `health` since issue 24; an earlier run has none.)
    let renewal_days = if health.schema().contains("renewal_date") {
        numbers(
            &health
                .clone()
                .lazy()
                .select([col_date_days("renewal_date")])
                .collect()?,
            "renewal_date",
        )
    } else {
        vec![None; health.height()]
    };
    let cat_scores: Vec<Vec<Option<f64>>> = categories
        .iter()
        .map(|c| numbers(&health, &crate::score::category_column(c)))
        .collect();

    let orgs = strings(&health, "org_id");
    let (names, csms, labels) = (
        col(&health, "name"),
        col(&health, "csm"),
        col(&health, "health_label"),
    );
    let (score, change, mrr, urgent) = (
        numbers(&health, "health_score"),
        numbers(&health, "health_score_change"),
        numbers(&health, "mrr"),
        numbers(&health, "urgent_tickets_unresolved"),
    );
    let renewal = col(&health, "renewal_date");
    let mut accounts = Vec::new();
    for (i, org) in orgs.iter().enumerate() {
        let Some(org) = org.clone() else { continue };
        let rows = |m: &BTreeMap<String, Vec<usize>>| m.get(&org).cloned().unwrap_or_default();
        let indicators = rows(&ind_rows)
            .into_iter()
            .map(|r| Indicator {
                kind: i_kind[r].clone().unwrap_or_default(),
                message: i_msg[r].clone().unwrap_or_default(),
            })
            .collect();
        let alerts = rows(&alert_rows)
            .into_iter()
            .map(|r| Alert {
                kind: a_kind[r].clone().unwrap_or_default(),
                status: a_status[r].clone().unwrap_or_default(),
                message: a_msg[r].clone().unwrap_or_default(),
            })
            .collect();
        // Why: what fell since the previous run, else what costs the most points.
        let mut fell: Vec<(f64, String)> = rows(&change_rows)
            .into_iter()
            .filter_map(|r| {
                let c = c_contrib[r]?;
                (c < 0.0).then(|| {
                    (
                        c,
                        format!(
                            "{} {} -> {} ({c:+.2})",
                            c_metric[r].clone().unwrap_or_default(),
                            c_prev_band[r].clone().unwrap_or_else(|| "unscored".into()),
                            c_band[r].clone().unwrap_or_else(|| "unscored".into())
                        ),
                    )
                })
            })
            .collect();
        fell.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let why = if !fell.is_empty() {
            format!(
                "Since the previous run: {}.",
                fell.iter()
                    .take(2)
                    .map(|f| f.1.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        } else {
            let costs = lost.get(&org).cloned().unwrap_or_default();
            if costs.is_empty() {
                String::new()
            } else {
                format!(
                    "Costing the most points: {}.",
                    costs
                        .iter()
                        .take(2)
                        .map(|c| c.1.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        };
        let mut frustrated: Vec<(i64, User)> = rows(&user_rows)
            .into_iter()
            .filter_map(|r| {
                let (s, v, f, c) = (
                    u_started[r].unwrap_or(0.0),
                    u_saved[r].unwrap_or(0.0),
                    u_failed[r].unwrap_or(0.0),
                    u_completed[r].unwrap_or(0.0),
                );
                let lost = (s - v).max(0.0);
                (lost >= LOST_INSIGHTS || f >= FAILED_QUERIES).then(|| {
                    (
                        -((lost + f) as i64),
                        User {
                            email: u_email[r].clone().unwrap_or_default(),
                            started: s as i64,
                            saved: v as i64,
                            failed: f as i64,
                            completed: c as i64,
                        },
                    )
                })
            })
            .collect();
        frustrated.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.email.cmp(&b.1.email)));
        accounts.push(Account {
            org_id: org.clone(),
            name: names[i].clone(),
            csm: csms[i].clone(),
            score: score[i],
            change: change[i],
            label: labels[i].clone(),
            mrr: mrr[i],
            renewal_date: renewal[i].clone(),
            days_to_renewal: match (renewal_days[i], as_of_day) {
                (Some(r), Some(a)) => Some(r as i64 - a as i64),
                _ => None,
            },
            urgent_tickets: urgent[i].unwrap_or(0.0),
            categories: categories
                .iter()
                .zip(&cat_scores)
                .map(|(c, s)| (c.clone(), s[i]))
                .collect(),
            indicators,
            alerts,
            why,
            history: history.get(&org).cloned().unwrap_or_default(),
            trends: rows(&trend_rows)
                .into_iter()
                .map(|r| {
                    (
                        t_week[r].clone().unwrap_or_default(),
                        t_events[r],
                        t_members[r],
                    )
                })
                .collect(),
            frustrated: frustrated
                .into_iter()
                .take(FRUSTRATED_SHOWN)
                .map(|(_, u)| u)
                .collect(),
            deployment: match deployment_row.get(&org) {
                Some(&r) => Some(crate::deployment::sentence(&deployment, r, window_days)?),
                None => None,
            },
        });
    }
    Ok(Report {
        as_of,
        accounts,
        warnings,
    })
}

/// A date column as days since the epoch (null when absent).
fn col_date_days(c: &str) -> Expr {
    col(c).cast(DataType::Int32).alias(c)
}

/// Per org, the metrics that cost it points, most first: (lost, "metric is band
/// (-x.x points)"), by the same shares as `metric_changes`.
fn lost_points(
    health: &DataFrame,
    scores: &DataFrame,
    categories: &[String],
    healthy: f64,
) -> Result<BTreeMap<String, Vec<(f64, String)>>> {
    let mut out: BTreeMap<String, Vec<(f64, String)>> = BTreeMap::new();
    if scores.height() == 0 {
        return Ok(out);
    }
    let cats: Vec<(String, f64)> = categories.iter().map(|c| (c.clone(), 0.0)).collect();
    let shares = crate::changes::shares(
        &crate::changes::RunTables {
            health,
            metric_scores: scores,
        },
        &cats,
    )?
    .collect()?;
    let (org, metric, band) = (
        strings(&shares, "org_id"),
        strings(&shares, "metric"),
        strings(&shares, "band"),
    );
    let (weight, points) = (numbers(&shares, "weight"), numbers(&shares, "points"));
    for i in 0..shares.height() {
        let (Some(o), Some(m), Some(w), Some(p)) = (&org[i], &metric[i], weight[i], points[i])
        else {
            continue;
        };
        let lost = w * (healthy - p);
        if lost > 0.0 {
            out.entry(o.clone()).or_default().push((
                lost,
                format!(
                    "{m} is {} (-{lost:.1} points)",
                    band[i].clone().unwrap_or_default()
                ),
            ));
        }
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    }
    Ok(out)
}
