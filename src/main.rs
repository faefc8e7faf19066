//! The `account-health` binary: parse the command line, run the library, map the
//! result to an exit code (0 done, 2 bad input or usage, 1 internal failure).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = account_health::cli::Cli::parse();
    match account_health::cmd::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("account-health: error: {err:#}");
            ExitCode::from(account_health::exit_code(&err))
        }
    }
}
