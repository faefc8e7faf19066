//! `generate`'s deployment checks (issue 26): the `ingestion` and `sdk_releases`
//! tables, the accounts' `addons` and `autocapture_actions`, and the usage counter
//! of group events, with each check's case planted in some orgs. From a random
//! stream of its own, so the other tables are the same bytes with or without it.

use std::path::Path;

use anyhow::Result;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::output::write_parquet;
use crate::time::AsOf;

/// The SDKs the orgs run, each released every 30 days back from its latest.
const LIBS: [&str; 4] = ["web", "posthog-python", "posthog-node", "posthog-ios"];

/// Releases per lib (the oldest about 14 months before the latest).
const RELEASES: i32 = 15;

/// Days of ingestion rows before as_of (the checks read 30).
const INGESTION_DAYS: i32 = 35;

/// One org's deployment: what was planted, and what it is made of.
struct OrgDeployment {
    /// The planted case (`deployment_scenario` in accounts), or "fine".
    scenario: &'static str,
    main_lib: usize,
    /// Releases behind the latest (0: up to date).
    releases_behind: i32,
    /// A second, older lib sending fewer events.
    old_second_lib: bool,
    identify_share: f64,
    groupidentify_share: f64,
    autocapture_share: f64,
    autocapture_actions: f64,
    /// Pays for the group analytics add-on (another add-on beside it when `Some(true)`).
    group_addon: Option<bool>,
    sends_groups: bool,
}

/// The deployments of `orgs` orgs.
pub struct Plan {
    orgs: Vec<OrgDeployment>,
    rng: ChaCha8Rng,
    /// `group_analytics_unused`'s add-on and usage counter, as the default model names them.
    addon: String,
    counter: String,
}

impl Plan {
    pub fn new(orgs: usize, seed: u64) -> Plan {
        let model = crate::model::Model::default_model();
        let groups = &model.indicators["group_analytics_unused"];
        let (addon, counter) = (
            groups.addon.clone().unwrap_or_default(),
            groups.counter.clone().unwrap_or_default(),
        );
        // A stream apart from the other tables' (any constant other than 0 would do).
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_DE91_0E00);
        let orgs = (0..orgs)
            .map(|_| {
                let case = rng.gen_range(0..10);
                let mut d = OrgDeployment {
                    scenario: "fine",
                    main_lib: rng.gen_range(0..LIBS.len()),
                    releases_behind: rng.gen_range(0..=2),
                    old_second_lib: rng.gen_bool(0.3),
                    identify_share: rng.gen_range(0.005..0.03),
                    groupidentify_share: rng.gen_range(0.0..0.02),
                    autocapture_share: rng.gen_range(0.15..0.4),
                    autocapture_actions: rng.gen_range(0..20) as f64,
                    group_addon: None,
                    sends_groups: true,
                };
                match case {
                    0 => {
                        d.scenario = "identify_overuse";
                        d.identify_share = rng.gen_range(0.08..0.2);
                    }
                    1 => {
                        d.scenario = "groupidentify_overuse";
                        d.groupidentify_share = rng.gen_range(0.07..0.15);
                    }
                    2 => {
                        d.scenario = "autocapture_unused";
                        d.autocapture_share = rng.gen_range(0.55..0.75);
                        d.autocapture_actions = 0.0;
                    }
                    3 => {
                        d.scenario = "sdk_outdated";
                        d.releases_behind = rng.gen_range(5..10);
                    }
                    4 => {
                        d.scenario = "group_analytics_unused";
                        d.group_addon = Some(false);
                        d.sends_groups = false;
                    }
                    5 => d.group_addon = Some(true),
                    _ => {}
                }
                d
            })
            .collect();
        Plan {
            orgs,
            rng,
            addon,
            counter,
        }
    }

    /// `accounts.addons` per org.
    pub fn addons(&self) -> Vec<Option<String>> {
        self.orgs
            .iter()
            .map(|o| match o.group_addon {
                None => None,
                Some(false) => Some(self.addon.clone()),
                Some(true) => Some(format!("{}, data_pipelines", self.addon)),
            })
            .collect()
    }

    /// The usage counter of group events.
    pub fn group_events_counter(&self) -> &str {
        &self.counter
    }

    /// `accounts.autocapture_actions` per org.
    pub fn autocapture_actions(&self) -> Vec<f64> {
        self.orgs.iter().map(|o| o.autocapture_actions).collect()
    }

    /// What was planted per org (`accounts.deployment_scenario`).
    pub fn scenarios(&self) -> Vec<&'static str> {
        self.orgs.iter().map(|o| o.scenario).collect()
    }

    /// The group-events counter of a usage row of org `org` with `events` events.
    pub fn group_events(&mut self, org: usize, events: i64) -> i64 {
        let d = &self.orgs[org];
        if d.group_addon.is_some() && d.sends_groups {
            // At least one a day: a sender never reads as "none sent".
            ((events as f64 * self.rng.gen_range(0.2..0.6)) as i64).max(1)
        } else {
            0
        }
    }

    /// Writes `ingestion.parquet` (the last `INGESTION_DAYS` days) and
    /// `sdk_releases.parquet` into `out`.
    pub fn write(&mut self, out: &Path, as_of: &AsOf) -> Result<()> {
        let latest_day = as_of.day - 10;
        let version = |releases_behind: i32| format!("1.{}.0", RELEASES - 1 - releases_behind);
        let (mut lib, mut ver, mut released) = (vec![], vec![], vec![]);
        for l in LIBS {
            for r in 0..RELEASES {
                lib.push(l);
                ver.push(version(r));
                released.push(latest_day - 30 * r);
            }
        }
        let mut releases = DataFrame::new_infer_height(vec![
            Column::new("lib".into(), lib),
            Column::new("version".into(), ver),
            Column::new("released_at".into(), released).cast(&DataType::Date)?,
        ])?;
        write_parquet(&mut releases, &out.join("sdk_releases.parquet"))?;

        let (mut org_id, mut date, mut event, mut lib, mut lib_version, mut count) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for (o, d) in self.orgs.iter().enumerate() {
            let org = format!("org_{o:05}");
            let volume = 200.0 * (1 + o % 13) as f64;
            for day in as_of.day - INGESTION_DAYS..as_of.day {
                let total = volume * self.rng.gen_range(0.8..1.2);
                let shares = [
                    ("$identify", d.identify_share * 0.6),
                    ("$set", d.identify_share * 0.4),
                    ("$groupidentify", d.groupidentify_share),
                    ("$autocapture", d.autocapture_share),
                ];
                let rest = 1.0 - shares.iter().map(|(_, s)| s).sum::<f64>();
                let mut rows: Vec<(&str, usize, i32, f64)> = shares
                    .iter()
                    .map(|&(e, s)| (e, d.main_lib, d.releases_behind, s))
                    .collect();
                if d.old_second_lib {
                    // A quarter of the rest from another lib, far behind: not the main one.
                    let other = (d.main_lib + 1) % LIBS.len();
                    rows.push(("$pageview", other, 8, rest * 0.25));
                    rows.push(("$pageview", d.main_lib, d.releases_behind, rest * 0.75));
                } else {
                    rows.push(("$pageview", d.main_lib, d.releases_behind, rest));
                }
                for (e, l, behind, share) in rows {
                    let n = (total * share).round();
                    if n <= 0.0 {
                        continue;
                    }
                    org_id.push(org.clone());
                    date.push(day);
                    event.push(e);
                    lib.push(LIBS[l]);
                    lib_version.push(version(behind));
                    count.push(n);
                }
            }
        }
        let mut ingestion = DataFrame::new_infer_height(vec![
            Column::new("org_id".into(), org_id),
            Column::new("date".into(), date).cast(&DataType::Date)?,
            Column::new("event".into(), event),
            Column::new("lib".into(), lib),
            Column::new("lib_version".into(), lib_version),
            Column::new("count".into(), count),
        ])?;
        write_parquet(&mut ingestion, &out.join("ingestion.parquet"))?;
        Ok(())
    }
}
