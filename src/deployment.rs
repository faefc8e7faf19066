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
use crate::model::Model;
use crate::time::AsOf;

/// The indicators that fire on a share of ingested events, and the name of that
/// share's column in the `deployment` table.
pub const SHARE_INDICATORS: [(&str, &str); 3] = [
    ("identify_overuse", "identify_pct"),
    ("groupidentify_overuse", "groupidentify_pct"),
    ("autocapture_unused", "autocapture_pct"),
];

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
        .filter_map(|(name, _)| {
            let events = model.indicators.get(*name)?.ingested_events.clone()?;
            Some((*name, events))
        })
        .collect()
}

/// One row per org with an ingestion row in the window: the figures above.
pub fn per_org(
    ingestion: &DataFrame,
    releases: Option<&DataFrame>,
    model: &Model,
    as_of: &AsOf,
) -> LazyFrame {
    let window = as_of.last_n_days(model.deployment.window_days);
    let day = col("date").cast(DataType::Int32);
    let rows = ingestion.clone().lazy().filter(
        day.clone()
            .gt_eq(lit(window.start_day))
            .and(day.lt(lit(window.end_day))),
    );
    let count = || col("count").fill_null(lit(0.0));
    let mut aggs = vec![count().sum().alias(DEP.events)];
    for (name, events) in shares(model) {
        let names = Series::new("".into(), events);
        aggs.push(
            when(col("event").is_in(lit(names).implode(true), false))
                .then(count())
                .otherwise(lit(0.0))
                .sum()
                .alias(share_events_column(name)),
        );
    }
    let totals = rows.clone().group_by([col("org_id")]).agg(aggs);
    let with_shares = shares(model).into_iter().map(|(name, _)| {
        when(col(DEP.events).gt(lit(0.0)))
            .then(lit(100.0) * col(share_events_column(name)) / col(DEP.events))
            .otherwise(lit(NULL).cast(DataType::Float64))
            .alias(share_column(name))
    });
    let totals = totals.with_columns(with_shares.collect::<Vec<_>>());

    // The main lib, then its main version: most events first, ties by name.
    let most = |keys: Vec<Expr>, name: &str| {
        rows.clone()
            .filter(col(name).is_not_null())
            .group_by(keys.clone())
            .agg([count().sum().alias("_n")])
            .sort_by_exprs(
                [col("org_id"), col("_n"), col(name)],
                SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
            )
            .group_by([col("org_id")])
            .agg([col(name).first()])
    };
    let main_lib = most(vec![col("org_id"), col("lib")], "lib")
        .select([col("org_id"), col("lib").alias(DEP.main_lib)]);
    let main_version = rows
        .clone()
        .join(
            main_lib.clone(),
            [col("org_id"), col("lib")],
            [col("org_id"), col(DEP.main_lib)],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("lib_version").is_not_null())
        .group_by([col("org_id"), col("lib_version")])
        .agg([count().sum().alias("_n")])
        .sort_by_exprs(
            [col("org_id"), col("_n"), col("lib_version")],
            SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
        )
        .group_by([col("org_id")])
        .agg([col("lib_version").first().alias(DEP.main_lib_version)]);
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
    frame.with_column(
        (col(DEP.latest_release).cast(DataType::Int32)
            - col(DEP.version_released).cast(DataType::Int32))
        .cast(DataType::Float64)
        .alias(DEP.days_behind),
    )
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
/// by org_id. A share whose indicator is not in the model is null.
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
    let present = shares(model);
    for (name, column) in SHARE_INDICATORS {
        columns.push(if present.iter().any(|(n, _)| *n == name) {
            col(share_column(name)).alias(column)
        } else {
            lit(NULL).cast(DataType::Float64).alias(column)
        });
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

/// Orgs whose main SDK version is not in `sdk_releases` (their `sdk_outdated` cannot
/// be judged), for data quality.
pub fn unknown_versions(deployment: &DataFrame) -> PolarsResult<u64> {
    let version = deployment.column("main_lib_version")?;
    let released = deployment.column("version_released")?;
    let unknown = version.is_not_null() & released.is_null();
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
        let version = str_at("main_lib_version")?.unwrap_or_else(|| "?".into());
        line += &format!("; main SDK {lib} {version}");
        line += &match f64_at("days_behind_latest")? {
            Some(days) => format!(", {days:.0} days behind {lib}'s latest release"),
            None => " (not in sdk_releases)".into(),
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
