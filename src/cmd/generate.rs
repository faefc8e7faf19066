//! `account-health generate`: writes a synthetic input folder of any size, with the
//! situations the metrics and indicators exist to catch planted in chosen orgs.
//!
//! Deterministic: one ChaCha stream per seed, consumed in a fixed order, so the same
//! seed and arguments give the same files. Each org gets a profile (healthy, declining,
//! quiet, ...) plus a few independent flags (ticket storm, failed payment, ...). The
//! profile's name goes into an extra `accounts.scenario` column, so analysts can see
//! what was planted (the job ignores extra columns); the deployment checks' inputs
//! come from `generate_deployment`, with their case in `accounts.deployment_scenario`.

use std::fs;

use anyhow::{Context, Result};
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cli::GenerateArgs;
use crate::output::write_parquet;
use crate::time::{weekday_of_day, AsOf, MICROS_PER_DAY};

/// The main situation planted in an org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Healthy,
    Declining,
    Quiet,
    WeekendSpike,
    WeekdayDrop,
    QueryTrouble,
    LostInsights,
    NewProduct,
    DocsInterest,
    BillingWorries,
}

const PROFILES: [Profile; 10] = [
    Profile::Healthy,
    Profile::Declining,
    Profile::Quiet,
    Profile::WeekendSpike,
    Profile::WeekdayDrop,
    Profile::QueryTrouble,
    Profile::LostInsights,
    Profile::NewProduct,
    Profile::DocsInterest,
    Profile::BillingWorries,
];

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Healthy => "healthy",
            Profile::Declining => "declining",
            Profile::Quiet => "quiet",
            Profile::WeekendSpike => "weekend_spike",
            Profile::WeekdayDrop => "weekday_drop",
            Profile::QueryTrouble => "query_trouble",
            Profile::LostInsights => "lost_insights",
            Profile::NewProduct => "new_product",
            Profile::DocsInterest => "docs_interest",
            Profile::BillingWorries => "billing_worries",
        }
    }
}

/// Product engagement events the generator emits, per product.
const PRODUCT_EVENTS: [(&str, &[&str]); 5] = [
    (
        "product_analytics",
        &[
            "insight analyzed",
            "insight viewed",
            "dashboard analyzed",
            "viewed dashboard",
            "insight created",
            "insight saved",
            "dashboard updated",
        ],
    ),
    (
        "session_replay",
        &["recording viewed", "recording analyzed"],
    ),
    (
        "feature_flags",
        &["feature flag updated", "feature flag created"],
    ),
    (
        "experiments",
        &[
            "experiment viewed",
            "experiment created",
            "experiment launched",
        ],
    ),
    (
        "surveys",
        &["survey viewed", "survey created", "survey edited"],
    ),
];

const COUNTERS: [&str; 9] = [
    "event_count_in_period",
    "recording_count_in_period",
    "decide_requests_count_in_period",
    "survey_responses_count_in_period",
    "rows_synced_in_period",
    "exceptions_captured_in_period",
    "ai_event_count_in_period",
    "rows_exported_in_period",
    "cdp_billable_invocations_in_period",
];

const DOCS: [&str; 6] = [
    "/docs/product-analytics/insights",
    "/docs/session-replay",
    "/docs/feature-flags/creating-feature-flags",
    "/docs/surveys/creating-surveys",
    "/docs/data-warehouse/setup",
    "/docs/error-tracking/installation",
];

#[derive(Default)]
struct Events {
    timestamp: Vec<i64>,
    event: Vec<&'static str>,
    distinct_id: Vec<String>,
    org_id: Vec<String>,
    current_url: Vec<Option<String>>,
}

impl Events {
    fn push(&mut self, ts: i64, event: &'static str, who: &str, org: &str, url: Option<String>) {
        self.timestamp.push(ts);
        self.event.push(event);
        self.distinct_id.push(who.to_string());
        self.org_id.push(org.to_string());
        self.current_url.push(url);
    }
}

struct Member {
    distinct_id: String,
    email: String,
    role: &'static str,
    joined_at: i64,
    removed_at: Option<i64>,
    activity: f64,
}

pub fn run(args: GenerateArgs, quiet: bool) -> Result<()> {
    let as_of = AsOf::parse(&args.as_of)?;
    if args.days < 14 {
        return Err(crate::InputError::Usage {
            problem: "--days must be at least 14".into(),
        }
        .into());
    }
    let progress = crate::progress::Progress::new(quiet);
    progress.stage("generating");
    write(&args, &as_of)?;
    progress.note(&format!(
        "wrote {} orgs, {} days before {} into {}",
        args.orgs,
        args.days,
        as_of.iso(),
        args.out.display()
    ));
    Ok(())
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn write(args: &GenerateArgs, as_of: &AsOf) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let first_day = as_of.day - args.days as i32;
    let mut events = Events::default();
    let (mut m_org, mut m_id, mut m_email, mut m_role, mut m_joined, mut m_removed) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut usage_org = vec![];
    let mut usage_day = vec![];
    let mut usage: Vec<Vec<i64>> = vec![vec![]; COUNTERS.len()];
    // The deployment checks' inputs, from a stream of their own.
    let mut deployment = super::generate_deployment::Plan::new(args.orgs, args.seed);
    // Churn labels for `backtest`, from a stream of their own too: declining and
    // gone-quiet accounts mostly churn in the 90 days after the data ends, a few
    // others at random.
    let mut churn_rng = ChaCha8Rng::seed_from_u64(args.seed ^ 0xC4_0277);
    let mut a_churned: Vec<Option<i32>> = vec![];
    let mut group_events = vec![];
    let (
        mut a_org,
        mut a_name,
        mut a_csm,
        mut a_arr,
        mut a_mrr,
        mut a_fmrr,
        mut a_plan,
        mut a_renewal,
        mut a_scenario,
    ) = (
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
    );
    let (mut rc_org, mut rc_id, mut rc_at, mut rc_old, mut rc_new) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut t_org, mut t_id, mut t_created, mut t_priority, mut t_solved) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut mt_org, mut mt_at) = (vec![], vec![]);
    let (mut p_org, mut p_at, mut p_status) = (vec![], vec![], vec![]);
    let day_us = MICROS_PER_DAY;
    let at = |day: i32, frac: f64| day as i64 * day_us + (frac * day_us as f64) as i64;

    for o in 0..args.orgs {
        let org = format!("org_{o:05}");
        let profile = PROFILES[o % PROFILES.len()];
        // Independent flags, so that indicators overlap as in real books of business.
        let ticket_storm = rng.gen_bool(0.12);
        let payment_failed = rng.gen_bool(0.1);
        let owner_change = rng.gen_bool(0.12);
        let no_meetings = rng.gen_bool(0.15);
        // Products adopted (index into PRODUCT_EVENTS / usage counters).
        let adopted: Vec<bool> = (0..PRODUCT_EVENTS.len())
            .map(|i| i == 0 || rng.gen_bool(0.55))
            .collect();
        let extra_counters: Vec<bool> = (0..COUNTERS.len()).map(|_| rng.gen_bool(0.35)).collect();

        // Accounts.
        let plan = *pick(
            &mut rng,
            &["paid", "paid", "paid", "enterprise", "startup", "free"],
        );
        let mrr = match plan {
            "free" | "startup" => 0.0,
            _ => (rng.gen_range(100.0..8000.0f64) / 10.0).round() * 10.0,
        };
        let change = match rng.gen_range(0..5) {
            0 => rng.gen_range(-0.5..-0.11),
            1 => rng.gen_range(0.11..0.6),
            _ => rng.gen_range(-0.09..0.09),
        };
        // Startups mostly stay within their credits; some are about to pay.
        let fmrr = match plan {
            "free" => 0.0,
            "startup" if rng.gen_bool(0.7) => 0.0,
            "startup" => (rng.gen_range(50.0..500.0f64)).round(),
            _ => (mrr * (1.0 + change)).round(),
        };
        a_org.push(org.clone());
        a_name.push(format!(
            "{} {}",
            pick(
                &mut rng,
                &[
                    "Acme",
                    "Globex",
                    "Initech",
                    "Umbrella",
                    "Hooli",
                    "Stark",
                    "Wayne",
                    "Tyrell",
                    "Soylent",
                    "Cyberdyne"
                ]
            ),
            o
        ));
        a_csm.push(
            pick(
                &mut rng,
                &[
                    "ana@posthog.com",
                    "ben@posthog.com",
                    "cleo@posthog.com",
                    "dev@posthog.com",
                ],
            )
            .to_string(),
        );
        a_arr.push(mrr * 12.0);
        a_mrr.push(mrr);
        a_fmrr.push(fmrr);
        a_plan.push(plan.to_string());
        a_renewal.push(as_of.day + rng.gen_range(-20..300));
        let churn_chance = match profile {
            Profile::Declining | Profile::Quiet => 0.7,
            _ => 0.04,
        };
        a_churned.push(
            churn_rng
                .gen_bool(churn_chance)
                .then(|| as_of.day + churn_rng.gen_range(5..90)),
        );
        a_scenario.push(profile.name().to_string());

        // Members.
        let n_members = rng.gen_range(2..=30usize);
        let mut members = Vec::with_capacity(n_members);
        for i in 0..n_members {
            let joined_day = first_day - rng.gen_range(1..400);
            let removed_at = if i > 0 && rng.gen_bool(0.06) {
                Some(at(
                    as_of.day - rng.gen_range(1..(args.days as i32)),
                    rng.gen(),
                ))
            } else {
                None
            };
            let role = if i == 0 {
                "owner"
            } else if rng.gen_bool(0.2) {
                "admin"
            } else {
                "member"
            };
            members.push(Member {
                distinct_id: format!("{org}_u{i:03}"),
                email: format!("user{i}@{org}.example.com"),
                role,
                joined_at: at(joined_day, rng.gen()),
                removed_at,
                // About a third of seats are dormant: invited once, rarely back.
                activity: if rng.gen_bool(0.35) {
                    rng.gen_range(0.0..0.02)
                } else {
                    rng.gen_range(0.1..0.9)
                },
            });
        }
        // A recent joiner, and sometimes a duplicated member row (data quality).
        if rng.gen_bool(0.3) {
            members.push(Member {
                distinct_id: format!("{org}_u9{:02}", rng.gen_range(0..100)),
                email: format!("new@{org}.example.com"),
                role: "member",
                joined_at: at(as_of.day - rng.gen_range(1..20), rng.gen()),
                removed_at: None,
                activity: 0.5,
            });
        }
        for m in &members {
            m_org.push(org.clone());
            m_id.push(m.distinct_id.clone());
            m_email.push(Some(m.email.clone()));
            m_role.push(m.role.to_string());
            m_joined.push(m.joined_at);
            m_removed.push(m.removed_at);
        }
        if rng.gen_bool(0.05) {
            let m = &members[0];
            m_org.push(org.clone());
            m_id.push(m.distinct_id.clone());
            m_email.push(None);
            m_role.push(m.role.to_string());
            m_joined.push(m.joined_at);
            m_removed.push(m.removed_at);
        }

        // Events, day by day.
        let quiet_from = as_of.day - rng.gen_range(9..25);
        let new_product = 1 + rng.gen_range(0..PRODUCT_EVENTS.len() - 1);
        for day in first_day..as_of.day {
            let days_left = as_of.day - day;
            let weekend = weekday_of_day(day) >= 5;
            let mut intensity = if weekend { 0.25 } else { 1.0 };
            match profile {
                Profile::Declining if days_left <= 30 => intensity *= 0.35,
                Profile::Quiet if day >= quiet_from => intensity = 0.0,
                Profile::WeekdayDrop if days_left <= 7 && !weekend => intensity *= 0.3,
                _ => {}
            }
            for m in &members {
                let alive =
                    m.joined_at < at(day, 0.0) && m.removed_at.is_none_or(|r| r > at(day, 1.0));
                if !alive || !rng.gen_bool((m.activity * intensity).clamp(0.0, 1.0)) {
                    continue;
                }
                let n = 1 + rng.gen_range(0..(2.0 * args.events_per_member_day) as usize + 1);
                for _ in 0..n {
                    let ts = at(day, rng.gen_range(0.3..0.8));
                    let roll: f64 = rng.gen();
                    let (event, url): (&'static str, Option<String>) = if roll < 0.18 {
                        (
                            "$pageview",
                            Some(format!(
                                "https://us.posthog.com/project/{o}/insights?tab=all"
                            )),
                        )
                    } else if roll < 0.31 {
                        ("query completed", None)
                    } else if roll < 0.3155 {
                        ("query failed", None)
                    } else if roll < 0.33 {
                        (
                            "$pageview",
                            Some(format!("https://posthog.com{}", pick(&mut rng, &DOCS))),
                        )
                    } else {
                        let mut p = rng.gen_range(0..PRODUCT_EVENTS.len());
                        if !adopted[p]
                            || (profile == Profile::NewProduct && p == new_product && days_left > 7)
                        {
                            p = 0;
                        }
                        (*pick(&mut rng, PRODUCT_EVENTS[p].1), None)
                    };
                    events.push(ts, event, &m.distinct_id, &org, url);
                }
                // Planted recent situations.
                if days_left <= 7 {
                    match profile {
                        Profile::QueryTrouble => {
                            events.push(
                                at(day, rng.gen()),
                                "query failed",
                                &m.distinct_id,
                                &org,
                                None,
                            );
                        }
                        Profile::LostInsights => {
                            for _ in 0..6 {
                                events.push(
                                    at(day, rng.gen()),
                                    "insight created",
                                    &m.distinct_id,
                                    &org,
                                    None,
                                );
                            }
                        }
                        Profile::DocsInterest => {
                            for _ in 0..2 {
                                events.push(at(day, rng.gen()), "$pageview", &m.distinct_id, &org, Some("https://posthog.com/docs/surveys/creating-surveys?ref=app#top".into()));
                            }
                        }
                        Profile::BillingWorries => {
                            events.push(
                                at(day, rng.gen()),
                                "$pageview",
                                &m.distinct_id,
                                &org,
                                Some("https://us.posthog.com/organization/billing/overview".into()),
                            );
                            events.push(
                                at(day, rng.gen()),
                                "billing v2 shown",
                                &m.distinct_id,
                                &org,
                                None,
                            );
                        }
                        Profile::NewProduct => {
                            events.push(
                                at(day, rng.gen()),
                                PRODUCT_EVENTS[new_product].1[0],
                                &m.distinct_id,
                                &org,
                                None,
                            );
                        }
                        _ => {}
                    }
                }
            }
            // Events of people who are not members (ignored by every metric, counted in the manifest).
            if rng.gen_bool(0.05) {
                events.push(
                    at(day, rng.gen()),
                    "insight viewed",
                    &format!("{org}_anonymous"),
                    &org,
                    None,
                );
            }

            // Usage counters.
            usage_org.push(org.clone());
            usage_day.push(day);
            let base = 1000.0 * (1 + o % 17) as f64;
            let mut volume = base * if weekend { 0.4 } else { 1.0 } * rng.gen_range(0.9..1.1);
            match profile {
                Profile::Declining if days_left <= 30 => volume *= 0.5,
                Profile::Quiet if day >= quiet_from => volume *= 0.3,
                Profile::WeekdayDrop if days_left <= 7 && !weekend => volume *= 0.4,
                // A weekend spike in the previous week: all-days volume falls, weekdays don't.
                Profile::WeekendSpike if (8..=14).contains(&days_left) && weekend => volume *= 8.0,
                _ => {}
            }
            for (c, counter) in COUNTERS.iter().enumerate() {
                let used = match c {
                    0 => true,
                    1 => adopted[1],
                    2 => adopted[2],
                    3 => adopted[4],
                    _ => extra_counters[c],
                };
                let used = used
                    || (profile == Profile::NewProduct
                        && c == 1
                        && new_product == 1
                        && days_left <= 7);
                let scale = [1.0, 0.05, 3.0, 0.002, 0.5, 0.01, 0.02, 0.3, 0.1][c];
                let _ = counter;
                usage[c].push(if used {
                    (volume * scale).round() as i64
                } else {
                    0
                });
            }
            group_events.push(deployment.group_events(o, usage[0][usage[0].len() - 1]));
        }

        // Role changes.
        if owner_change {
            let who = &members[0].distinct_id;
            rc_org.push(org.clone());
            rc_id.push(who.clone());
            rc_at.push(at(as_of.day - rng.gen_range(1..14), rng.gen()));
            rc_old.push(Some("owner".to_string()));
            rc_new.push(Some("admin".to_string()));
            if members.len() > 1 {
                rc_org.push(org.clone());
                rc_id.push(members[1].distinct_id.clone());
                rc_at.push(at(as_of.day - rng.gen_range(1..14), rng.gen()));
                rc_old.push(Some("member".to_string()));
                rc_new.push(Some("owner".to_string()));
            }
        } else if rng.gen_bool(0.2) && members.len() > 1 {
            rc_org.push(org.clone());
            rc_id.push(members[1].distinct_id.clone());
            rc_at.push(at(as_of.day - rng.gen_range(20..100), rng.gen()));
            rc_old.push(Some("member".to_string()));
            rc_new.push(Some("admin".to_string()));
        }

        // Tickets.
        let n_tickets = if ticket_storm {
            rng.gen_range(8..20)
        } else {
            rng.gen_range(0..4)
        };
        for t in 0..n_tickets {
            let back = if ticket_storm {
                rng.gen_range(1..30)
            } else {
                rng.gen_range(1..args.days as i32)
            };
            let created = at(as_of.day - back, rng.gen());
            let priority = if ticket_storm && t < 3 {
                "urgent"
            } else {
                *pick(&mut rng, &["low", "normal", "normal", "high", "urgent"])
            };
            let solved = if rng.gen_bool(if ticket_storm { 0.3 } else { 0.8 }) {
                Some(created + rng.gen_range(1..5) * day_us)
            } else {
                None
            };
            t_org.push(org.clone());
            t_id.push(format!("{org}_t{t}"));
            t_created.push(created);
            t_priority.push(priority.to_string());
            t_solved.push(solved);
        }

        // Meetings.
        if !no_meetings {
            for _ in 0..rng.gen_range(1..4) {
                mt_org.push(org.clone());
                mt_at.push(at(as_of.day - rng.gen_range(1..150), rng.gen()));
            }
        }

        // Payments: monthly; the latest one failed when planted.
        if mrr > 0.0 {
            let mut day = as_of.day - rng.gen_range(1..28);
            let mut latest = true;
            while day > first_day {
                p_org.push(org.clone());
                p_at.push(at(day, rng.gen()));
                p_status.push(
                    if latest && payment_failed {
                        "failed"
                    } else {
                        "succeeded"
                    }
                    .to_string(),
                );
                latest = false;
                day -= 30;
            }
        }
    }

    let out = &args.out;
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let ts = |name: &str, v: Vec<i64>| -> Result<Column> {
        Ok(Column::new(name.into(), v).cast(&DataType::Datetime(TimeUnit::Microseconds, None))?)
    };
    let ts_opt = |name: &str, v: Vec<Option<i64>>| -> Result<Column> {
        Ok(Column::new(name.into(), v).cast(&DataType::Datetime(TimeUnit::Microseconds, None))?)
    };
    let date = |name: &str, v: Vec<i32>| -> Result<Column> {
        Ok(Column::new(name.into(), v).cast(&DataType::Date)?)
    };
    let date_opt = |name: &str, v: Vec<Option<i32>>| -> Result<Column> {
        Ok(Column::new(name.into(), v).cast(&DataType::Date)?)
    };

    if args.shape == crate::cli::EventsShapeArg::Posthog {
        // The flat shape's rows, in the flat files' order (time, org, person).
        let mut order: Vec<usize> = (0..events.timestamp.len()).collect();
        order.sort_by(|&a, &b| {
            (
                events.timestamp[a],
                &events.org_id[a],
                &events.distinct_id[a],
            )
                .cmp(&(
                    events.timestamp[b],
                    &events.org_id[b],
                    &events.distinct_id[b],
                ))
        });
        let flat = super::generate_posthog::FlatEvents {
            order: &order,
            timestamp: &events.timestamp,
            event: &events.event,
            distinct_id: &events.distinct_id,
            org_id: &events.org_id,
            current_url: &events.current_url,
        };
        super::generate_posthog::write(&flat, out, args.seed, as_of)?;
    } else {
        // Events: hive-partitioned by month, as an export pipeline would write them.
        let months: Vec<String> = events
            .timestamp
            .iter()
            .map(|t| crate::time::iso_of_day(t.div_euclid(day_us) as i32)[..7].to_string())
            .collect();
        let events_df = DataFrame::new_infer_height(vec![
            ts("timestamp", events.timestamp)?,
            Column::new("event".into(), events.event),
            Column::new("distinct_id".into(), events.distinct_id),
            Column::new("org_id".into(), events.org_id),
            Column::new("current_url".into(), events.current_url),
            Column::new("month".into(), months),
        ])?;
        let events_dir = out.join("events");
        if events_dir.exists() {
            fs::remove_dir_all(&events_dir)
                .with_context(|| format!("clearing {}", events_dir.display()))?;
        }
        let month_names: std::collections::BTreeSet<String> = months_seen(&events_df)?;
        let sorted = events_df.lazy().sort(
            ["timestamp", "org_id", "distinct_id"],
            SortMultipleOptions::default().with_maintain_order(true),
        );
        for month in month_names {
            let dir = events_dir.join(format!("month={month}"));
            fs::create_dir_all(&dir)?;
            let mut part = sorted
                .clone()
                .filter(col("month").eq(lit(month.clone())))
                .drop(cols(["month"]))
                .collect()?;
            write_parquet(&mut part, &dir.join("part-0.parquet"))?;
        }
    }

    let mut tables: Vec<(&str, DataFrame)> = vec![
        (
            "members",
            DataFrame::new_infer_height(vec![
                Column::new("org_id".into(), m_org),
                Column::new("distinct_id".into(), m_id),
                Column::new("email".into(), m_email),
                Column::new("role".into(), m_role),
                ts("joined_at", m_joined)?,
                ts_opt("removed_at", m_removed)?,
            ])?,
        ),
        ("accounts", {
            DataFrame::new_infer_height(vec![
                Column::new("org_id".into(), a_org),
                Column::new("name".into(), a_name),
                Column::new("csm".into(), a_csm),
                Column::new("arr".into(), a_arr),
                Column::new("mrr".into(), a_mrr),
                Column::new("forecasted_mrr".into(), a_fmrr),
                Column::new("plan".into(), a_plan),
                date("renewal_date", a_renewal)?,
                Column::new("addons".into(), deployment.addons()),
                Column::new(
                    "autocapture_actions".into(),
                    deployment.autocapture_actions(),
                ),
                Column::new("scenario".into(), a_scenario),
                Column::new("deployment_scenario".into(), deployment.scenarios()),
                date_opt("churned_at", a_churned)?,
            ])?
        }),
        (
            "role_changes",
            DataFrame::new_infer_height(vec![
                Column::new("org_id".into(), rc_org),
                Column::new("distinct_id".into(), rc_id),
                ts("changed_at", rc_at)?,
                Column::new("old_role".into(), rc_old),
                Column::new("new_role".into(), rc_new),
            ])?,
        ),
        (
            "tickets",
            DataFrame::new_infer_height(vec![
                Column::new("org_id".into(), t_org),
                Column::new("ticket_id".into(), t_id),
                ts("created_at", t_created)?,
                Column::new("priority".into(), t_priority),
                ts_opt("solved_at", t_solved)?,
            ])?,
        ),
        (
            "meetings",
            DataFrame::new_infer_height(vec![
                Column::new("org_id".into(), mt_org),
                ts("started_at", mt_at)?,
            ])?,
        ),
        (
            "payments",
            DataFrame::new_infer_height(vec![
                Column::new("org_id".into(), p_org),
                ts("occurred_at", p_at)?,
                Column::new("status".into(), p_status),
            ])?,
        ),
    ];
    let mut usage_cols = vec![
        Column::new("org_id".into(), usage_org),
        date("date", usage_day)?,
    ];
    for (c, values) in COUNTERS.iter().zip(usage) {
        usage_cols.push(Column::new((*c).into(), values));
    }
    usage_cols.push(Column::new(
        deployment.group_events_counter().into(),
        group_events,
    ));
    deployment.write(out, as_of)?;
    tables.push(("usage", DataFrame::new_infer_height(usage_cols)?));
    for (name, mut df) in tables {
        write_parquet(&mut df, &out.join(format!("{name}.parquet")))?;
    }
    Ok(())
}

fn months_seen(df: &DataFrame) -> Result<std::collections::BTreeSet<String>> {
    Ok(df
        .column("month")?
        .str()?
        .iter()
        .flatten()
        .map(str::to_string)
        .collect())
}
