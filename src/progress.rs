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

    /// The events pass's progress over `files` files of `bytes` bytes.
    pub fn pass(&self, files: usize, bytes: u64) -> PassProgress {
        PassProgress::new(self, files, bytes)
    }

    /// A fact worth keeping in a log (e.g. the as_of used); shown unless quiet.
    pub fn note(&self, what: &str) {
        if !self.quiet {
            eprintln!("account-health: {what}");
        }
    }
}

/// Progress of the events pass: a bar on a terminal (bytes of the events files read,
/// rows, rows per second, time left), a plain line per file read when stderr is not a
/// terminal (a scheduled run's log), nothing when quiet. Counts only: it changes
/// nothing the pass computes.
pub struct PassProgress {
    bar: Option<indicatif::ProgressBar>,
    /// Plain lines per file (stderr is no terminal).
    plain: bool,
    files: usize,
    files_done: std::sync::atomic::AtomicUsize,
    rows: std::sync::atomic::AtomicU64,
    started: Instant,
}

impl PassProgress {
    /// For `files` events files of `bytes` bytes in all.
    pub fn new(progress: &Progress, files: usize, bytes: u64) -> PassProgress {
        let bar = (!progress.quiet && progress.terminal).then(|| {
            let bar = indicatif::ProgressBar::new(bytes);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "events {bar:30} {bytes}/{total_bytes} {msg} (about {eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        PassProgress {
            bar,
            plain: !progress.quiet && !progress.terminal,
            files,
            files_done: Default::default(),
            rows: Default::default(),
            started: Instant::now(),
        }
    }

    /// Shows nothing (library callers, tests, benchmarks).
    pub fn hidden() -> PassProgress {
        PassProgress {
            bar: None,
            plain: false,
            files: 0,
            files_done: Default::default(),
            rows: Default::default(),
            started: Instant::now(),
        }
    }

    fn rows_per_second(&self, rows: u64) -> f64 {
        rows as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// `n` more event rows read.
    pub fn rows(&self, n: u64) {
        use std::sync::atomic::Ordering;
        let rows = self.rows.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{rows} rows, {:.0} rows/s",
                self.rows_per_second(rows)
            ));
        }
    }

    /// A file of `bytes` bytes read whole.
    pub fn file_done(&self, path: &std::path::Path, bytes: u64) {
        use std::sync::atomic::Ordering;
        let done = self.files_done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
        if self.plain {
            let rows = self.rows.load(Ordering::Relaxed);
            eprintln!(
                "account-health: events file {done}/{} read ({}), {rows} rows so far, {:.0} rows/s",
                self.files,
                path.file_name().unwrap_or_default().to_string_lossy(),
                self.rows_per_second(rows)
            );
        }
    }

    /// The pass is over: the bar is cleared.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
