//! `account-health query SQL_OR_FILE`: one polars SQL query over the input tables and
//! a run's output tables, for analysts' ad-hoc questions. The result goes to stdout as
//! CSV (pipe it to `column -s, -t` for a table); errors carry the query's source and text.
//!
//! polars SQL is not full SQL (window functions have returned wrong results across
//! versions): the job's own logic never goes through here.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use polars::prelude::*;
use polars::sql::SQLContext;

use crate::cli::QueryArgs;
use crate::error::InputError;
use crate::input;
use crate::model::Model;
use crate::output::write_csv_to;

/// SQL text and where it came from: a file, a name in queries/, or the argument itself.
fn resolve_sql(arg: &str) -> Result<(String, String), InputError> {
    let candidates = [
        PathBuf::from(arg),
        Path::new("queries").join(arg),
        Path::new("queries").join(format!("{arg}.sql")),
    ];
    for path in candidates {
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| InputError::BadPath {
                path: path.display().to_string(),
                problem: format!("cannot read: {e}"),
            })?;
            return Ok((path.display().to_string(), text));
        }
    }
    if arg.ends_with(".sql") {
        return Err(InputError::BadPath {
            path: arg.to_string(),
            problem: "query file not found (looked here and in queries/)".into(),
        });
    }
    Ok(("(command line)".to_string(), arg.to_string()))
}

pub fn run(args: QueryArgs) -> Result<()> {
    let (source_name, text) = resolve_sql(&args.sql)?;
    let mut ctx = SQLContext::new();
    if args.input.is_dir() {
        let inputs = input::load(&args.input, &Model::default_model())?;
        for (name, lf) in input::for_sql(&inputs) {
            ctx.register(name, lf);
        }
    }
    // The run's tables from one run folder, resolved once.
    let run = crate::publish::current_run(&args.out);
    for name in crate::output::TABLE_NAMES {
        let path = run.join(format!("{name}.parquet"));
        if path.is_file() {
            let lf = LazyFrame::scan_parquet(
                PlRefPath::new(path.to_string_lossy().to_string()),
                Default::default(),
            )
            .map_err(|e| InputError::Unreadable {
                file: path.display().to_string(),
                reason: e.to_string(),
            })?;
            ctx.register(name, lf);
        }
    }
    // Every history entry of a table, stacked: `<table>_history` (each row carries
    // its as_of).
    for name in crate::publish::HISTORY_TABLES {
        let entries: Vec<LazyFrame> = crate::publish::history_dates(&args.out)
            .iter()
            .map(|d| {
                args.out
                    .join(crate::publish::HISTORY)
                    .join(crate::publish::history_folder(d))
                    .join(format!("{name}.parquet"))
            })
            .filter(|p| p.is_file())
            .map(|p| {
                LazyFrame::scan_parquet(
                    PlRefPath::new(p.to_string_lossy().to_string()),
                    Default::default(),
                )
                .map_err(|e| InputError::Unreadable {
                    file: p.display().to_string(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        if !entries.is_empty() {
            // Entries of different versions may differ in columns: missing ones are null.
            let union = UnionArgs {
                diagonal: true,
                to_supertypes: true,
                ..Default::default()
            };
            let stacked = concat(entries, union).map_err(|e| InputError::Unreadable {
                file: args.out.join(crate::publish::HISTORY).display().to_string(),
                reason: e.to_string(),
            })?;
            ctx.register(&format!("{name}_history"), stacked);
        }
    }
    let failed = |e: PolarsError| InputError::Query {
        source_name: source_name.clone(),
        text: text.trim().to_string(),
        reason: e.to_string(),
    };
    let mut result = ctx
        .execute(&text)
        .and_then(|lf| lf.collect())
        .map_err(failed)?;
    let mut stdout = std::io::stdout().lock();
    write_csv_to(&mut result, &mut stdout)?;
    stdout.flush()?;
    Ok(())
}
