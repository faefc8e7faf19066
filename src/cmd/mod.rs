//! The subcommands, each a thin composition of the stages, one file each.

pub mod config;
pub mod explain;
pub mod generate;
pub mod query;
pub mod run;
pub mod validate;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::error::InputError;
use crate::time::AsOf;

pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args, cli.quiet),
        Command::Validate(args) => validate::run(args, cli.quiet),
        Command::Generate(args) => generate::run(args, cli.quiet),
        Command::Explain(args) => explain::run(args),
        Command::Config(args) => config::run(args),
        Command::Query(args) => query::run(args),
    }
}

/// `--as-of`, parsed, or `None` to derive it from the events.
fn parse_as_of(raw: Option<&str>) -> Result<Option<AsOf>, InputError> {
    raw.map(AsOf::parse).transpose()
}

/// Caps the worker threads of polars and rayon. Must run before the first polars call.
fn set_threads(threads: Option<usize>) -> Result<(), InputError> {
    let Some(n) = threads else { return Ok(()) };
    if n == 0 {
        return Err(InputError::Usage {
            problem: "--threads must be at least 1".into(),
        });
    }
    // SAFETY: called once at start-up, before any other thread exists.
    unsafe { std::env::set_var("POLARS_MAX_THREADS", n.to_string()) };
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
    Ok(())
}
