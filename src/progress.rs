//! Progress on stderr: one line per stage when stderr is a terminal, and a few
//! facts a scheduled run's log should keep (the as_of used), unless `--quiet`.

use std::io::IsTerminal;
use std::time::Instant;

pub struct Progress {
    quiet: bool,
    terminal: bool,
    started: Instant,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    /// A stage starting; shown only on a terminal.
    pub fn stage(&self, what: &str) {
        if !self.quiet && self.terminal {
            eprintln!("[{:>6.1}s] {what}", self.started.elapsed().as_secs_f64());
        }
    }

    /// A fact worth keeping in a log (e.g. the as_of used); shown unless quiet.
    pub fn note(&self, what: &str) {
        if !self.quiet {
            eprintln!("account-health: {what}");
        }
    }
}
