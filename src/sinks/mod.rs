//! Sinks (issue 23): a finished run loaded where its readers are. PostgreSQL for
//! Metabase (`postgres`), Vitally's Analytics API or CSV upload (`vitally`).
//!
//! A sink reads a published run's files, as `explain` and `query` do, never the job's
//! memory: the run folder is resolved once (`publish::current_run`), so a run
//! published meanwhile cannot mix in.

pub mod postgres;
pub mod vitally;

use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;

use crate::error::InputError;
use crate::time::AsOf;

/// A published run, as a sink reads it.
pub struct FinishedRun {
    /// The run folder (`OUT/runs/<id>`, or `OUT` itself for an output folder made
    /// before runs were published atomically).
    pub dir: PathBuf,
    /// The run folder's name: which run was loaded.
    pub id: String,
    pub as_of: AsOf,
}

/// The current run of `out`.
pub fn open(out: &Path) -> Result<FinishedRun, InputError> {
    let dir = crate::publish::current_run(out);
    let path = dir.join("manifest.json");
    let bad = |problem: String| InputError::BadPath {
        path: out.join("manifest.json").display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        bad(format!(
            "no finished run here ({e}); run `account-health run --out {}` first",
            out.display()
        ))
    })?;
    #[derive(serde::Deserialize)]
    struct Manifest {
        as_of: String,
    }
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a run's manifest: {e}")))?;
    let as_of = AsOf::parse(&manifest.as_of)
        .map_err(|_| bad(format!("as_of {:?} is not a date", manifest.as_of)))?;
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(FinishedRun { dir, id, as_of })
}

impl FinishedRun {
    /// A table of the run; `None` when the run has no such file.
    pub fn table(&self, name: &str) -> Result<Option<DataFrame>, InputError> {
        crate::output::read_table(&self.dir, name)
    }

    /// A table the sink cannot do without.
    pub fn required(&self, name: &str) -> Result<DataFrame, InputError> {
        required_table(&self.dir, name)
    }
}

/// A table of a run folder or a history entry, which must be there.
pub fn required_table(dir: &Path, name: &str) -> Result<DataFrame, InputError> {
    crate::output::read_table(dir, name)?.ok_or_else(|| InputError::BadPath {
        path: dir.join(format!("{name}.parquet")).display().to_string(),
        problem: "not found; the sinks read Parquet (a run written with --format csv only \
                  cannot be loaded)"
            .into(),
    })
}

/// `text` with every occurrence of `secret` replaced: a last guard on messages that
/// carry a library's wording, so a password or an API key never reaches a terminal
/// or a log even if a library were to quote it.
pub fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_string()
    } else {
        text.replace(secret, "[redacted]")
    }
}

/// An error and its sources on one line ("db error: FATAL: ..."), as anyhow's
/// alternate form writes them: a library's top message often leaves the useful
/// part (the server's words) to its source.
pub fn error_chain(e: impl std::error::Error + Send + Sync + 'static) -> String {
    format!("{:#}", anyhow::Error::new(e))
}
#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_replaces_every_occurrence_and_ignores_an_empty_secret() {
        assert_eq!(
            redact("a s3cr3t b s3cr3t", "s3cr3t"),
            "a [redacted] b [redacted]"
        );
        assert_eq!(redact("no secret", ""), "no secret");
    }
}
