//! The deployment checks (issue 26; seed 001, section 10, "Checking the health of a
//! customer's deployment"): how the customer's own PostHog is set up, from the
//! optional `ingestion` table (the org's ingested events per day, event and SDK) and
//! `sdk_releases`. Per org, over the `deployment.window_days` before as_of:
//! - the share of its ingested events that are each share indicator's
//!   `ingested_events` (identify, group identify, autocapture);
//! - its main SDK: the `lib` with the most ingested events (ties: the first by
//!   name), and that lib's version with the most events (ties: the first by name);
//! - how far behind that version is: the days from its release to the lib's latest
//!   release before as_of, both from `sdk_releases` (null when the version is not
//!   listed: never fired, counted in data quality).
//!
//! The rules that fire on these figures are in `indicators`; pure frames, no I/O.

use polars::prelude::*;

use crate::indicators::inputs::IND;
use crate::ingestion_rows::IngestionRows;
use crate::model::Model;
use crate::time::AsOf;

/// An indicator that fires on a share of the org's ingested events.
pub struct ShareCheck {
    pub indicator: &'static str,
    /// The share's column in the `deployment` table.
    pub column: &'static str,
    /// What to tell the customer (seed 001, section 10).
    pub advice: &'static str,
}

/// The share checks; `autocapture_unused` also needs no actions on autocapture.
pub const SHARE_INDICATORS: [ShareCheck; 3] = [
    ShareCheck {
        indicator: "identify_overuse",
        column: "identify_pct",
        advice: "call identify once per session (on login or signup), not on every page",
    },
    ShareCheck {
        indicator: "groupidentify_overuse",
        column: "groupidentify_pct",
        advice: "call group identify once per group per session, not on every page",
    },
    ShareCheck {
        indicator: "autocapture_unused",
        column: "autocapture_pct",
        advice: "define actions on autocapture events, or turn autocapture down",
    },
];

/// The share check of an indicator, if it is one.
pub fn share_check(indicator: &str) -> Option<&'static ShareCheck> {
    SHARE_INDICATORS.iter().find(|c| c.indicator == indicator)
}

/// The per-org columns of the deployment figures (in the scored frame).
pub struct DeploymentColumns {
    pub events: &'static str,
    pub main_lib: &'static str,
    pub main_lib_version: &'static str,
    pub version_released: &'static str,
    pub latest_release: &'static str,
    pub days_behind: &'static str,
}

pub const DEP: DeploymentColumns = DeploymentColumns {
    events: "_dep_events",
    main_lib: "_dep_main_lib",
    main_lib_version: "_dep_main_lib_version",
    version_released: "_dep_version_released",
    latest_release: "_dep_latest_release",
    days_behind: "_dep_days_behind",
};

/// The column of an indicator's share of ingested events (%, null without events).
pub fn share_column(indicator: &str) -> String {
    format!("_dep_share__{indicator}")
}

/// The column of the events counted in an indicator's share.
pub fn share_events_column(indicator: &str) -> String {
    format!("_dep_share_events__{indicator}")
}

/// The share indicators present in the model, with their event names.
fn shares(model: &Model) -> Vec<(&'static str, Vec<String>)> {
    SHARE_INDICATORS
        .iter()
        .filter_map(|c| {
            let events = model.indicators.get(c.indicator)?.ingested_events.clone()?;
            Some((c.indicator, events))
        })
        .collect()
}

/// One row per org with an ingestion row in the window: the figures above.
pub fn per_org(
    ingestion: &IngestionRows,
    releases: Option<&DataFrame>,
    model: &Model,
    as_of: &AsOf,
) -> PolarsResult<LazyFrame> {
    let window = as_of.last_n_days(model.deployment.window_days);
    // One pass over the window's rows: per org, lib and version, the events (nulls
    // count 0) and each share's events; everything after reads this small frame.
    let sets: Vec<(String, Vec<String>)> = shares(model)
        .into_iter()
        .map(|(name, events)| (share_events_column(name), events))
        .collect();
    let per_version = ingestion.sums(window, "_n", &sets)?.lazy();
    let mut sums = vec![col("_n").sum().alias(DEP.events)];
    sums.extend(shares(model).into_iter().map(|(name, _)| {
        let c = share_events_column(name);
        col(c.as_str()).sum().alias(c)
    }));
    let with_shares = shares(model).into_iter().map(|(name, _)| {
        when(col(DEP.events).gt(lit(0.0)))
            .then(lit(100.0) * col(share_events_column(name)) / col(DEP.events))
            .otherwise(lit(NULL).cast(DataType::Float64))
            .alias(share_column(name))
    });
    let totals = per_version
        .clone()
        .group_by([col("org_id")])
        .agg(sums)
        .with_columns(with_shares.collect::<Vec<_>>());

    // The main lib, then its main version: most events first, ties by name (chosen
    // inside the aggregation, not by an order a plan could lose).
    let most = |frame: LazyFrame, key: &str, alias: &str| {
        frame
            .filter(col(key).is_not_null())
            .group_by([col("org_id"), col(key)])
            .agg([col("_n").sum()])
            .group_by([col("org_id")])
            .agg([col(key)
                .sort_by(
                    [col("_n"), col(key)],
                    SortMultipleOptions::default().with_order_descending_multi([true, false]),
                )
                .first()
                .alias(alias)])
    };
    let main_lib = most(per_version.clone(), "lib", DEP.main_lib);
    let main_version = most(
        per_version.join(
            main_lib.clone(),
            [col("org_id"), col("lib")],
            [col("org_id"), col(DEP.main_lib)],
            JoinArgs::new(JoinType::Inner),
        ),
        "lib_version",
        DEP.main_lib_version,
    );
    let left = || JoinArgs::new(JoinType::Left);
    let mut frame = totals
        .join(main_lib, [col("org_id")], [col("org_id")], left())
        .join(main_version, [col("org_id")], [col("org_id")], left());
    frame = match releases {
        Some(r) => {
            // Releases known at as_of: a backtest must not see later ones.
            let known = r
                .clone()
                .lazy()
                .filter(col("released_at").cast(DataType::Int32).lt(lit(as_of.day)));
            let released = known
                .clone()
                .group_by([col("lib"), col("version")])
                .agg([col("released_at")
                    .min()
                    .cast(DataType::Date)
                    .alias(DEP.version_released)]);
            let latest = known.group_by([col("lib")]).agg([col("released_at")
                .max()
                .cast(DataType::Date)
                .alias(DEP.latest_release)]);
            frame
                .join(
                    released,
                    [col(DEP.main_lib), col(DEP.main_lib_version)],
                    [col("lib"), col("version")],
                    left(),
                )
                .join(latest, [col(DEP.main_lib)], [col("lib")], left())
        }
        None => frame.with_columns([
            lit(NULL).cast(DataType::Date).alias(DEP.version_released),
            lit(NULL).cast(DataType::Date).alias(DEP.latest_release),
        ]),
    };
    Ok(frame.with_column(
        (col(DEP.latest_release).cast(DataType::Int32)
            - col(DEP.version_released).cast(DataType::Int32))
        .cast(DataType::Float64)
        .alias(DEP.days_behind),
    ))
}

/// The deployment columns as nulls, for runs without an `ingestion` table.
pub fn null_columns(model: &Model) -> Vec<Expr> {
    let mut cols = vec![
        lit(NULL).cast(DataType::Float64).alias(DEP.events),
        lit(NULL).cast(DataType::String).alias(DEP.main_lib),
        lit(NULL).cast(DataType::String).alias(DEP.main_lib_version),
        lit(NULL).cast(DataType::Date).alias(DEP.version_released),
        lit(NULL).cast(DataType::Date).alias(DEP.latest_release),
        lit(NULL).cast(DataType::Float64).alias(DEP.days_behind),
    ];
    for (name, _) in shares(model) {
        cols.push(
            lit(NULL)
                .cast(DataType::Float64)
                .alias(share_events_column(name)),
        );
        cols.push(lit(NULL).cast(DataType::Float64).alias(share_column(name)));
    }
    cols
}

/// The `deployment` table: one row per org with ingestion rows in the window, sorted
/// by org_id.
pub fn table(scored: &DataFrame, model: &Model, as_of: &AsOf) -> PolarsResult<DataFrame> {
    let mut columns = vec![
        col("org_id"),
        lit(as_of.day).cast(DataType::Date).alias("as_of"),
        col(DEP.events).alias("ingested_events"),
        col(DEP.main_lib).alias("main_lib"),
        col(DEP.main_lib_version).alias("main_lib_version"),
        col(DEP.version_released).alias("version_released"),
        col(DEP.latest_release).alias("latest_release"),
        col(DEP.days_behind).alias("days_behind_latest"),
    ];
    // Every share check is in the model (`model::INDICATOR_PARAMS`).
    for (name, _) in shares(model) {
        let column = share_check(name).map_or(name, |c| c.column);
        columns.push(col(share_column(name)).alias(column));
    }
    columns.push(col(IND.group_events).alias("group_events"));
    scored
        .clone()
        .lazy()
        .filter(col(DEP.events).is_not_null())
        .select(columns)
        .sort(["org_id"], Default::default())
        .collect()
}

/// Orgs with a main SDK whose version has no release in `sdk_releases` (no version
/// in their rows, or one not listed): their `sdk_outdated` cannot be judged. For
/// data quality, when there is an `sdk_releases` table at all.
pub fn unknown_versions(deployment: &DataFrame) -> PolarsResult<u64> {
    let lib = deployment.column("main_lib")?;
    let released = deployment.column("version_released")?;
    let unknown = lib.is_not_null() & released.is_null();
    Ok(unknown.sum().unwrap_or(0) as u64)
}

/// One sentence of row `row` of a `deployment` table, for a CSM (`explain`, the
/// report); `window_days` as the run's model had it, when known.
pub fn sentence(d: &DataFrame, row: usize, window_days: Option<u32>) -> PolarsResult<String> {
    let f64_at = |c: &str| -> PolarsResult<Option<f64>> {
        Ok(d.column(c)?.cast(&DataType::Float64)?.f64()?.get(row))
    };
    let str_at = |c: &str| -> PolarsResult<Option<String>> {
        Ok(d.column(c)?.str()?.get(row).map(str::to_string))
    };
    let pct = |c: &str| -> PolarsResult<String> {
        Ok(f64_at(c)?.map_or("-".into(), |v| format!("{v:.1}%")))
    };
    let window = window_days.map_or(String::new(), |d| format!(", last {d} days"));
    let events = f64_at("ingested_events")?.map_or("-".into(), |n| format!("{n:.0}"));
    let mut line = format!("Deployment{window}: {events} events ingested");
    if let Some(lib) = str_at("main_lib")? {
        line += &match str_at("main_lib_version")? {
            None => format!("; main SDK {lib} (no version in the ingestion rows)"),
            Some(version) => match f64_at("days_behind_latest")? {
                Some(days) => format!(
                    "; main SDK {lib} {version}, {days:.0} days behind {lib}'s latest release"
                ),
                None => format!("; main SDK {lib} {version} (not in sdk_releases)"),
            },
        };
    }
    line += &format!(
        "; identify {}, group identify {}, autocapture {} of events",
        pct("identify_pct")?,
        pct("groupidentify_pct")?,
        pct("autocapture_pct")?
    );
    if let Some(groups) = f64_at("group_events")? {
        line += &format!("; {groups:.0} group events");
    }
    Ok(line + ".")
}
