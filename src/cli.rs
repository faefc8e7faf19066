//! The command line, in two stages (as ripgrep and just do): clap derives the raw
//! arguments here; each command turns them once into checked settings (paths, as_of,
//! model) before any work starts. Nothing downstream sees raw arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "account-health",
    version,
    about = "Which customer accounts need a human today, and why.",
    long_about = "Computes PostHog Customer Success health scores, bands and metrics per \
organization from Parquet exports (events, members, usage, accounts, tickets, meetings, \
payments), and writes Parquet and CSV tables for Vitally and Metabase.\n\n\
Example (the nightly job on the committed sample data):\n  \
account-health run --input sample_data --out out\n\n\
Exit status: 0 done, 2 bad input or usage (nothing written), 3 an input feed that looks \
incomplete (nothing published; see `run --allow-incomplete`), 1 internal failure."
)]
pub struct Cli {
    /// No progress lines on stderr.
    #[arg(long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The `--threads` of the command, if it takes one and it was given.
    pub fn threads(&self) -> Option<usize> {
        match &self.command {
            Command::Run(args) => args.threads,
            Command::Backfill(args) => args.threads,
            Command::Backtest(args) => args.threads,
            _ => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The nightly job: read the inputs, write every output table.
    Run(RunArgs),
    /// Check the inputs and print data-quality counts; writes nothing.
    Validate(ValidateArgs),
    /// Write a synthetic input folder with planted situations, deterministic per seed.
    Generate(GenerateArgs),
    /// Fill the score history for past dates from one read of the inputs.
    Backfill(BackfillArgs),
    /// Does the score foretell churn: AUC, lift, precision and recall per past as_of.
    Backtest(BacktestArgs),
    /// Why an account scores as it does: categories, metrics, bands, indicators.
    Explain(ExplainArgs),
    /// The CSMs' morning brief: HTML pages and a Slack digest from a run's outputs.
    Report(ReportArgs),
    /// Print the effective scoring model (the defaults with --config merged over them).
    Config(ConfigArgs),
    /// Run one SQL query (polars SQL) over the input tables and a run's outputs; CSV on stdout.
    Query(QueryArgs),
    /// Load a finished run elsewhere: PostgreSQL (for Metabase) or Vitally.
    Load(LoadArgs),
    /// Roll the events up per org, member, day and event into per-day folders, for
    /// `run --rollups`.
    Rollup(RollupArgs),
    /// Print one SQL query that builds the same rollup rows where the events live.
    RollupSql(RollupSqlArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Dialect {
    Clickhouse,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example (PostHog's events in ClickHouse, written as Parquet for run --rollups):\n  \
account-health rollup-sql --dialect clickhouse --events \"s3('https://bucket/exports/*.parquet', 'Parquet')\""
)]
pub struct RollupSqlArgs {
    /// The SQL dialect.
    #[arg(long, value_enum)]
    pub dialect: Dialect,
    /// The source of PostHog's batch-export columns: a table or a table function.
    #[arg(long, default_value = "events")]
    pub events: String,
    /// The first day to roll up, YYYY-MM-DD (with --to): the rows of one run of the
    /// query must not overlap another file's days, or they are added together.
    #[arg(long)]
    pub from: Option<String>,
    /// The last day to roll up, YYYY-MM-DD (with --from).
    #[arg(long)]
    pub to: Option<String>,
    /// A TOML file overriding the model: its URL sets decide which paths are kept.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Each day is written to OUT/day=YYYY-MM-DD/ (replaced whole when rolled again).\n\n\
Example (nightly, re-rolling the last 3 days for late events):\n  \
account-health rollup --input exports/latest --out rollups --from 2026-11-20 --to 2026-11-22"
)]
pub struct RollupArgs {
    /// Folder holding the events (and the rest of the input tables).
    #[arg(long, default_value = "sample_data")]
    pub input: PathBuf,
    /// The rollups folder.
    #[arg(long, default_value = "rollups")]
    pub out: PathBuf,
    /// The first day to roll up, YYYY-MM-DD (default: the first day with events).
    #[arg(long)]
    pub from: Option<String>,
    /// The last day to roll up, YYYY-MM-DD (default: the last day with events).
    #[arg(long)]
    pub to: Option<String>,
    /// A TOML file overriding the model: its URL sets decide which paths are kept.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(subcommand)]
    pub sink: Sink,
}

#[derive(Debug, Subcommand)]
pub enum Sink {
    /// The run's tables into PostgreSQL in one transaction: current tables replaced,
    /// history tables (health_history, metric_scores_history, indicators_history)
    /// gaining the run's history entries by as_of. Prints rows loaded per table.
    Postgres(LoadPostgresArgs),
    /// The run's accounts into Vitally as account traits ([sinks.vitally] in the
    /// config), through the Analytics API (key in VITALLY_API_KEY) or as a CSV upload.
    Vitally(LoadVitallyArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "The URL's password is never printed. Prefer DATABASE_URL to --url: a flag shows in `ps`.\n\
TLS: add ?sslmode=require (the server's certificate is checked against the system's roots).\n\n\
Example (nightly, after the run):\n  DATABASE_URL=postgres://metabase@db:5432/analytics account-health load postgres --out out"
)]
pub struct LoadPostgresArgs {
    /// The PostgreSQL URL, postgres://user:password@host:port/database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub url: String,
    /// The output folder of the run to load.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// The schema the tables go in (created if missing).
    #[arg(long, default_value = "account_health")]
    pub schema: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The API key comes from VITALLY_API_KEY only. Delivered batches are recorded in \
OUT/sinks/vitally-delivered.tsv: a re-run sends only what was not delivered.\n\n\
Examples:\n  VITALLY_API_KEY=... account-health load vitally --out out\n  \
account-health load vitally --out out --csv vitally.csv"
)]
pub struct LoadVitallyArgs {
    /// The output folder of the run to load.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Vitally's API address; the batch endpoint is BASE/analytics/v1/batch.
    #[arg(long, default_value = crate::sinks::vitally::DEFAULT_BASE_URL)]
    pub base_url: String,
    /// Print the batches that would be sent (JSON, one per line); send nothing.
    #[arg(long, conflicts_with = "csv")]
    pub dry_run: bool,
    /// Write Vitally's CSV upload (every account) to this file instead of calling the API.
    #[arg(long, conflicts_with = "base_url")]
    pub csv: Option<PathBuf>,
    /// A TOML file whose [sinks.vitally] replaces the run's (default: the settings of
    /// the model the run was made with); the categories stay the run's.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Tables: events, members, usage, accounts, role_changes, tickets, meetings, \
payments, ingestion, sdk_releases, churns (inputs) and health, metric_scores, indicators, \
metric_changes, alerts, users, trends, deployment (outputs).\n\n\
Examples:\n  account-health query at_risk_accounts            # queries/at_risk_accounts.sql\n  \
account-health query \"SELECT csm, count(*) AS n FROM health GROUP BY csm ORDER BY csm\""
)]
pub struct QueryArgs {
    /// SQL text, a .sql file, or the name of a file in queries/ (with or without .sql).
    pub sql: String,
    /// Folder holding the input tables.
    #[arg(long, default_value = "sample_data")]
    pub input: PathBuf,
    /// Output folder of a run, whose tables are queryable too.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  account-health config --config tuned.toml > effective.toml")]
pub struct ConfigArgs {
    /// A TOML file overriding any part of the scoring model.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  account-health explain org_00042 --out out")]
pub struct ExplainArgs {
    /// The organization to explain.
    pub org_id: String,
    /// The output folder of the run to read.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Also say what moved the score since this day (YYYY-MM-DD): against the run's
    /// history entry of that day, or the latest one before it.
    #[arg(long)]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  account-health run --input exports/2026-11-23 --out out --as-of 2026-11-23"
)]
pub struct RunArgs {
    /// Folder holding the input tables (NAME.parquet or NAME/ folders).
    #[arg(long, default_value = "sample_data")]
    pub input: PathBuf,
    /// Folder the output tables are written to (created if missing).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// The day the run describes, YYYY-MM-DD (UTC, exclusive). Default: the day after the latest event.
    #[arg(long)]
    pub as_of: Option<String>,
    /// A TOML file overriding any part of the scoring model.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// An earlier run's output folder, for previous_health_score and health_score_change.
    #[arg(long)]
    pub previous: Option<PathBuf>,
    /// Output formats, comma-separated: parquet, csv.
    #[arg(long, default_value = "parquet,csv")]
    pub format: String,
    /// Worker threads (default: all cores). Outputs are identical whatever the number.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Publish even when the last days' events or usage rows fall below run.min_ratio
    /// of their weekday median (otherwise exit 3, nothing published); the manifest
    /// records the warning.
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Per-day rollups (`account-health rollup`, or the warehouse's): the days they
    /// hold are scored from them, only the other days from the raw events. Each
    /// file's digest for the model is kept in ROLLUPS/.account-health-digests and
    /// read by later runs instead of its rows (safe to delete).
    #[arg(long)]
    pub rollups: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  account-health report --out out --csm ana@posthog.com")]
pub struct ReportArgs {
    /// The output folder of the run to read; the pages go to OUT/report/.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Only this CSM's page and digest.
    #[arg(long)]
    pub csm: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example (a year of weekly history before the first nightly run):\n  account-health backfill --input exports/latest --out out --from 2025-11-24 --to 2026-11-16 --every 7"
)]
pub struct BackfillArgs {
    /// Folder holding the input tables (NAME.parquet or NAME/ folders).
    #[arg(long, default_value = "sample_data")]
    pub input: PathBuf,
    /// The output folder whose history (OUT/history/as_of=DATE/) is filled.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// The first as_of, YYYY-MM-DD.
    #[arg(long)]
    pub from: String,
    /// The last as_of at most, YYYY-MM-DD.
    #[arg(long)]
    pub to: String,
    /// Days between two as_of dates.
    #[arg(long, default_value_t = 7)]
    pub every: u32,
    /// A TOML file overriding any part of the scoring model.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Write a date's history even when its feed check finds the input incomplete.
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Per-day rollups (`account-health rollup`): the days they hold are taken from
    /// them (through their digests, as `run --rollups`), only the other days from
    /// the raw events.
    #[arg(long)]
    pub rollups: Option<PathBuf>,
    /// Worker threads (default: all cores). History is identical whatever the number.
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Churn labels: a churned_at date column in accounts, or a churns table (org_id, churned_at).\n\n\
Example (weekly over a year, churn within 90 days):\n  account-health backtest --input exports/latest --from 2025-11-24 --to 2026-08-24 --every 7 --horizon 90"
)]
pub struct BacktestArgs {
    /// Folder holding the input tables, with churn labels.
    #[arg(long, default_value = "sample_data")]
    pub input: PathBuf,
    /// Where backtest.parquet and backtest.csv are written.
    #[arg(long, default_value = "backtest")]
    pub out: PathBuf,
    /// The first as_of, YYYY-MM-DD.
    #[arg(long)]
    pub from: String,
    /// The last as_of at most, YYYY-MM-DD.
    #[arg(long)]
    pub to: String,
    /// Days between two as_of dates.
    #[arg(long, default_value_t = 7)]
    pub every: u32,
    /// An account churns "soon" when it churns within this many days after as_of.
    #[arg(long)]
    pub horizon: u32,
    /// Propose category weights that raise the AUC on the earlier half of the dates,
    /// check them on the later half, and write them to OUT/fitted_weights.toml.
    #[arg(long)]
    pub fit_weights: bool,
    /// A TOML file overriding any part of the scoring model.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Per-day rollups (`account-health rollup`): the days they hold are taken from
    /// them (through their digests, as `run --rollups`), only the other days from
    /// the raw events.
    #[arg(long)]
    pub rollups: Option<PathBuf>,
    /// Worker threads (default: all cores). Results are identical whatever the number.
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  account-health validate --input exports/2026-11-23")]
pub struct ValidateArgs {
    /// Folder holding the input tables.
    #[arg(long, default_value = "sample_data")]
    pub input: PathBuf,
    /// The day the checks describe, YYYY-MM-DD. Default: the day after the latest event.
    #[arg(long)]
    pub as_of: Option<String>,
    /// A TOML file overriding any part of the scoring model.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  account-health generate --out sample_data --orgs 100 --days 120 --seed 7"
)]
pub struct GenerateArgs {
    /// Folder to write the synthetic input tables into.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of organizations.
    #[arg(long, default_value_t = 100)]
    pub orgs: usize,
    /// Days of history before as_of.
    #[arg(long, default_value_t = 120)]
    pub days: u32,
    /// Random seed; the same seed gives the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The as_of the data is planted for (its last day is the day before). YYYY-MM-DD.
    #[arg(long, default_value = "2026-11-23")]
    pub as_of: String,
    /// Events per member per active day, on average (scales the events table).
    #[arg(long, default_value_t = 6.0)]
    pub events_per_member_day: f64,
    /// The events' shape: `posthog`, as PostHog's S3 batch export writes them
    /// (properties JSON, uuids, late and re-exported events), or `flat` (org_id and
    /// current_url columns, hive folders by month). Both give the same tables.
    #[arg(long, value_enum, default_value_t = EventsShapeArg::Posthog)]
    pub shape: EventsShapeArg,
}

/// `generate --shape`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsShapeArg {
    Posthog,
    Flat,
}
