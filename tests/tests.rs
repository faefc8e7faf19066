//! One integration-test binary: every module runs the real `account-health` binary
//! on tiny hand-built Parquet inputs in a temporary folder.

// Workdir, Parquet builders and readers of a run's outputs.
mod util;
// Each metric of SPEC 5 on a hand-built org, values worked out by hand.
mod metrics;
// Category scores, the adoption rule, absent optional tables, the health score.
mod scores;
// Bad input: exit code 2, a message naming file and column, outputs untouched.
mod bad_input;
// Same inputs, same bytes: repeated runs and different --threads.
mod determinism;
// Input layouts: folders, hive partitions, time units, dictionary strings.
mod layouts;
// Every indicator of SPEC 7: fires on one side of its threshold, not on the other.
mod indicators;
// The scoring model as data: thresholds, per-plan weights, history.
mod model;
// The users and trends tables.
mod outputs;
// Golden files: the sample data's health and indicators, normalised.
mod golden;
// `generate` and the committed sample data.
mod generate;
// PostHog's batch-export shape of the events.
mod posthog;
// Publishing a run: one atomic switch, kill tests, history.
mod publish;
// Indicators over time: status, first_fired, alerts, clear_at.
mod alerts;
// Why a score moved: metric_changes.
mod changes;
// History for past dates from one read: backfill.
mod backfill;
// The CSMs' morning brief: report.
mod report;
// Does the score foretell churn: backtest.
mod backtest;
// A throwaway PostgreSQL server for the sinks' tests.
mod pg_server;
// Loading a run into PostgreSQL and Vitally.
mod sinks;
// Per-day rollups and runs from them.
mod rollups;
