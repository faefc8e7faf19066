//! account-health: per-organization health scores from PostHog usage exports.
//!
//! Data flows one way: `model` (the scoring model every stage reads) → `rollup_spec`
//! (what the events pass counts) → `input` (find, check, normalise) → `events` (one
//! streaming pass over the event export, rolled up per member and day) → `quality`
//! (data-quality counts, default as_of) → `member_aggregates`, `usage_sums` →
//! `metrics` (with `indicators::inputs`) → `score` → `indicators`, `users`, `trends`
//! → `tables` (assemble output frames) → `output` (write; `csv` the CSV dialect) →
//! `publish` (one atomic switch to the new run, and its history entry). `cmd` holds the thin subcommands that compose the stages; `sys` the
//! library's only unsafe code. docs/DESIGN.md is the map.

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod alerts;
pub mod backtest;
pub mod changes;
pub mod cli;
pub mod cmd;
pub mod csv;
pub mod deployment;
pub mod error;
pub mod events;
pub mod feed_check;
pub mod indicators;
pub mod ingestion_rows;
pub mod input;
pub mod member_aggregates;
pub mod metrics;
pub mod model;
pub mod numbering;
pub mod output;
pub mod progress;
pub mod properties;
pub mod publish;
pub mod quality;
pub mod report;
pub mod rollup_spec;
pub mod score;
pub mod sinks;
pub mod stats;
pub mod sys;
pub mod tables;
pub mod time;
pub mod trends;
pub mod usage_sums;
pub mod users;

pub use error::InputError;

/// The exit code for an error: 2 for bad input or usage, 3 for an input feed that
/// looks incomplete (`feed_check`), 1 for anything else.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|e| e.downcast_ref::<error::IncompleteFeed>().is_some())
    {
        3
    } else if err
        .chain()
        .any(|e| e.downcast_ref::<InputError>().is_some())
    {
        2
    } else {
        1
    }
}
