//! Typed errors for bad input: the caller picks exit code 2 by type, and tests assert
//! the variant rather than the wording. Every message names the file, the column and
//! what was expected (SPEC 2).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum InputError {
    #[error("{dir}: required table `{table}` not found (expected {table}.parquet or a folder {table}/ of .parquet files)")]
    MissingTable { dir: String, table: String },

    #[error("{file}: table `{table}` has no .parquet files")]
    EmptyTableFolder { file: String, table: String },

    #[error("{file}: required column `{column}` is missing (expected {expected})")]
    MissingColumn {
        file: String,
        column: String,
        expected: String,
    },

    #[error("{file}: column `{column}` has type {found}, expected {expected}")]
    WrongType {
        file: String,
        column: String,
        found: String,
        expected: String,
    },

    #[error("{file}: required column `{column}` has {count} null value(s); expected none")]
    NullInRequired {
        file: String,
        column: String,
        count: u64,
    },

    #[error("{file}: column `{column}`: {problem}")]
    BadValue {
        file: String,
        column: String,
        problem: String,
    },

    #[error("{file}: cannot read as Parquet: {reason}")]
    Unreadable { file: String, reason: String },

    #[error("--as-of: {value:?} is not a date; expected YYYY-MM-DD")]
    BadAsOf { value: String },

    #[error("{file}: column `timestamp` has no rows, so as_of cannot be derived; pass --as-of YYYY-MM-DD")]
    NoEvents { file: String },

    #[error("config {file}: {key}{}{problem}", if key.is_empty() { "" } else { ": " })]
    Config {
        file: String,
        key: String,
        problem: String,
    },

    #[error("{path}: {problem}")]
    BadPath { path: String, problem: String },

    #[error("{problem}")]
    Usage { problem: String },

    #[error("query {source_name} failed: {reason}\n--- query text ---\n{text}")]
    Query {
        source_name: String,
        text: String,
        reason: String,
    },
}

/// The event export or the usage report looks cut short (`feed_check`): exit 3,
/// nothing published.
#[derive(Debug, Error)]
#[error("the input feed looks incomplete, nothing published: {details} (below run.min_ratio {min_ratio}). Check the export; `--allow-incomplete` publishes anyway")]
pub struct IncompleteFeed {
    pub details: String,
    pub min_ratio: f64,
}
