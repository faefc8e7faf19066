//! The `account-health` binary: parse the command line, run the library, map the
//! result to an exit code (0 done, 2 bad input or usage, 1 internal failure).

#![deny(clippy::undocumented_unsafe_blocks)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = account_health::cli::Cli::parse();
    if let Some(n) = cli.threads().filter(|&n| n > 0) {
        // Polars reads its thread count once, from the environment; set here, before
        // any thread exists (`set_var` is unsound once one does).
        // SAFETY: the process is still single-threaded.
        unsafe { std::env::set_var("POLARS_MAX_THREADS", n.to_string()) };
    }
    match account_health::cmd::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("account-health: error: {err:#}");
            ExitCode::from(account_health::exit_code(&err))
        }
    }
}
