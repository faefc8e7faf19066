//! account-health: per-organization health scores from PostHog usage exports.
//!
//! Data flows one way: `input` (find, check, normalise) → `events` (one streaming
//! pass over the event export, rolled up per org, person, day and event) → `quality`
//! (data-quality counts, default as_of) → `metrics` → `score` → `indicators` (plus the `users` and
//! `trends` tables) → `tables` (assemble output frames) → `output` (write atomically; `csv` the CSV dialect). `model` is the scoring model every stage reads;
//! `cmd` holds the thin subcommands that compose the stages.

pub mod cli;
pub mod cmd;
pub mod csv;
pub mod error;
pub mod events;
pub mod indicators;
pub mod input;
pub mod member_aggregates;
pub mod metrics;
pub mod model;
pub mod output;
pub mod progress;
pub mod quality;
pub mod score;
pub mod tables;
pub mod time;
pub mod trends;
pub mod usage_sums;
pub mod users;

pub use error::InputError;

/// The exit code for an error: 2 for bad input or usage, 1 for anything else.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|e| e.downcast_ref::<InputError>().is_some())
    {
        2
    } else {
        1
    }
}
