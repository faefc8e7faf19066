//! Publishing a run (issue 22): one atomic step, and a history that outlives it.
//!
//! A run's files are written into a staging folder, fsynced, and renamed into
//! `OUT/runs/<run id>/`; the run's history entry is put in `OUT/history/`; then one
//! symbolic link, `OUT/current`, is switched to the new run folder by a single atomic
//! `rename`. The paths users know, `OUT/<table>.<ext>` and `OUT/manifest.json`, are
//! links through `current`, so every one of them names the new run from that one
//! rename on. A crash or kill at any moment leaves `current` on a complete run: the
//! previous one before the rename, the new one after. (A reader who opens several
//! tables one after another and needs them to be of one run resolves `OUT/current`
//! once and reads inside the folder it names; the manifest there names the run.)
//!
//! Layout:
//! - `OUT/runs/<published at>-as_of=<date>-<pid>/`: a run's tables and manifest; the
//!   current run and the `KEEP_RUNS - 1` before it are kept, older ones removed.
//! - `OUT/current` -> `runs/<run id>`; `OUT/<file>` -> `current/<file>`.
//! - `OUT/history/as_of=<date>/`: `health`, `metric_scores` and `indicators` as
//!   Parquet, one folder per as_of (a re-run of the same as_of replaces it), kept for
//!   `run.history_days` before the latest as_of published.
//!
//! Leftovers of killed runs (staging folders, a history folder set aside while being
//! replaced) are cleaned up by the next run; a live run's are left alone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::time::AsOf;

/// Run folders kept: the current run and the ones before it, so that a reader still
/// inside the previous run's folder is not cut off at once.
pub const KEEP_RUNS: usize = 3;

/// The folder of run folders, under `OUT`.
pub const RUNS: &str = "runs";
/// The link to the current run, under `OUT`.
pub const CURRENT: &str = "current";
/// The folder of history entries, under `OUT`.
pub const HISTORY: &str = "history";
/// The tables kept in history.
pub const HISTORY_TABLES: [&str; 3] = ["health", "metric_scores", "indicators"];

/// Names of folders a run works in before they are published: `<prefix><pid>...`.
const STAGING: &str = ".staging-";
const REPLACED: &str = ".replaced-";
const PRUNED: &str = ".pruned-";
/// The report's staging folder in `OUT`: `<prefix><pid>`.
pub const REPORT_STAGING: &str = ".report-staging-";

/// The folder of the run `out` publishes, resolved once: a reader of several tables
/// reads them all from it, so a run published meanwhile cannot mix in. `out` itself
/// when it has no `current` (an output folder of an earlier version).
pub fn current_run(out: &Path) -> PathBuf {
    fs::canonicalize(out.join(CURRENT)).unwrap_or_else(|_| out.to_path_buf())
}

/// Whether history keeps the entry of `day` when the latest entry is `latest`:
/// entries more than `days` before the latest are pruned. The one rule for pruning,
/// for the repair of a killed run, and for `backfill`'s reading of history.
pub fn history_keeps(day: i32, latest: i32, days: u32) -> bool {
    i64::from(day) >= i64::from(latest) - i64::from(days)
}

/// A history entry's folder name.
pub fn history_folder(as_of: &AsOf) -> String {
    format!("as_of={}", as_of.iso())
}

/// The as_of dates in `OUT/history`, oldest first.
pub fn history_dates(out: &Path) -> Vec<AsOf> {
    let Ok(entries) = fs::read_dir(out.join(HISTORY)) else {
        return Vec::new();
    };
    let mut dates: Vec<AsOf> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let date = name.to_str()?.strip_prefix("as_of=")?.to_string();
            AsOf::parse(&date).ok()
        })
        .collect();
    dates.sort_by_key(|d| d.day);
    dates
}

/// The history entry of the latest as_of before `as_of`, if any.
pub fn history_before(out: &Path, as_of: &AsOf) -> Option<(AsOf, PathBuf)> {
    let latest = history_dates(out)
        .into_iter()
        .rfind(|d| d.day < as_of.day)?;
    let dir = out.join(HISTORY).join(history_folder(&latest));
    Some((latest, dir))
}

/// What one run publishes: its staged files (written and fsynced) and its history.
pub struct Publication<'a> {
    pub out: &'a Path,
    /// The staging folder holding every file of the run.
    pub staged: &'a Path,
    /// The file names in it, each linked as `OUT/<name>`.
    pub files: &'a [String],
    /// Names of files an earlier run may have left linked that this run does not
    /// write (a format not asked for): their links are removed.
    pub not_written: &'a [String],
    pub as_of: &'a AsOf,
    /// The history tables, named as in `HISTORY_TABLES`.
    pub history: Vec<(&'static str, DataFrame)>,
    pub history_days: u32,
}

/// The staging folder a run writes into, under `OUT/runs` (created empty; the run
/// cleaned up after killed ones with `tidy` when it took the lock).
pub fn prepare(out: &Path) -> Result<PathBuf> {
    let runs = out.join(RUNS);
    fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
    let staging = runs.join(format!("{STAGING}{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("clearing {}", staging.display()))?;
    }
    fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    Ok(staging)
}

/// Publishes a staged run (see the module's comment for the steps and why each is
/// safe to be killed in).
pub fn publish(p: Publication) -> Result<()> {
    let out = p.out;
    sync_dir(p.staged)?;
    failpoint("staged");
    let id = format!(
        "{}-as_of={}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        p.as_of.iso(),
        std::process::id()
    );
    let runs = out.join(RUNS);
    let run = runs.join(&id);
    fs::rename(p.staged, &run).with_context(|| format!("moving the run to {}", run.display()))?;
    sync_dir(&runs)?;
    failpoint("run_moved");

    // The history entry is staged and flushed now, and put in place only once the
    // run is published: a run killed before the switch leaves no entry. The run's
    // own Parquet tables are the entry's bytes: linked, not written again, when the
    // run wrote Parquet.
    let entry = if p
        .history
        .iter()
        .all(|(name, _)| run.join(format!("{name}.parquet")).is_file())
    {
        let names: Vec<&str> = p.history.iter().map(|(name, _)| *name).collect();
        stage_history_links(out, p.as_of, &run, &names)?
    } else {
        stage_history(out, p.as_of, p.history)?
    };
    flush_history(std::slice::from_ref(&entry))?;

    // The one step that publishes.
    link_atomically(&Path::new(RUNS).join(&id), &out.join(CURRENT))?;
    sync_dir(out)?;
    failpoint("current_switched");

    for name in p.files {
        let at = out.join(name);
        if fs::read_link(&at).ok().as_deref() != Some(&Path::new(CURRENT).join(name)) {
            link_atomically(&Path::new(CURRENT).join(name), &at)?;
        }
    }
    for name in p.not_written {
        let at = out.join(name);
        if at.symlink_metadata().is_ok() {
            fs::remove_file(&at).with_context(|| format!("removing the stale {}", at.display()))?;
        }
    }
    sync_dir(out)?;
    failpoint("linked");
    place_history(out, vec![entry], p.history_days)?;
    failpoint("history_written");
    remove_old_runs(&runs, &id);
    Ok(())
}

/// The lock file in `OUT`: one `run`, `backfill` or `report` writes into a folder
/// at a time.
pub const LOCK: &str = ".lock";

/// Takes `OUT/.lock` for the life of the returned file (an OS file lock: released
/// when the process ends, however it ends). Another process holding it is a usage
/// error naming the folder. With the lock held, leftovers of processes that are
/// gone are safe to clean up.
pub fn lock(out: &Path) -> Result<fs::File> {
    fs::create_dir_all(out).with_context(|| format!("creating output folder {}", out.display()))?;
    lock_file(
        &out.join(LOCK),
        format!(
            "another account-health run, backfill or report is writing into {}; try again once it has finished",
            out.display()
        ),
    )
}

/// Takes an OS lock on the file at `path` (created if missing) for the life of the
/// returned file; held by another process, a usage error saying `busy`.
pub fn lock_file(path: &Path, busy: String) -> Result<fs::File> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(crate::InputError::Usage { problem: busy }.into()),
        Err(fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::from(e).context(format!("locking {}", path.display())))
        }
    }
}

/// Repairs and removes what killed runs left in `out` (see `remove_abandoned`):
/// `run` and `backfill` call it first, before they read history.
pub fn tidy(out: &Path, history_days: u32) {
    remove_abandoned(out, history_days);
}

/// A history entry written to its staging folder, not yet on disk for sure nor in
/// place (`commit_history`).
pub struct StagedEntry {
    as_of: AsOf,
    dir: PathBuf,
    files: Vec<PathBuf>,
}

/// Writes a history entry's tables (Parquet) into a staging folder of its own under
/// `OUT/history`.
pub fn stage_history(
    out: &Path,
    as_of: &AsOf,
    tables: Vec<(&'static str, DataFrame)>,
) -> Result<StagedEntry> {
    let dir = history_staging(out, as_of)?;
    let mut files = Vec::new();
    for (name, mut frame) in tables {
        let path = dir.join(format!("{name}.parquet"));
        crate::output::write_parquet(&mut frame, &path)?;
        files.push(path);
    }
    Ok(StagedEntry {
        as_of: *as_of,
        dir,
        files,
    })
}

/// A history entry staged as hard links to a run folder's Parquet tables (a copy
/// where the file system cannot link).
fn stage_history_links(
    out: &Path,
    as_of: &AsOf,
    run: &Path,
    names: &[&str],
) -> Result<StagedEntry> {
    let dir = history_staging(out, as_of)?;
    let mut files = Vec::new();
    for name in names {
        let (from, to) = (
            run.join(format!("{name}.parquet")),
            dir.join(format!("{name}.parquet")),
        );
        if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
        }
        files.push(to);
    }
    Ok(StagedEntry {
        as_of: *as_of,
        dir,
        files,
    })
}

/// An empty staging folder for the history entry of `as_of`.
fn history_staging(out: &Path, as_of: &AsOf) -> Result<PathBuf> {
    let root = out.join(HISTORY);
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let dir = root.join(format!(
        "{STAGING}{}-{}",
        std::process::id(),
        history_folder(as_of)
    ));
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Puts staged history entries in place (`flush_history`, then `place_history`).
pub fn commit_history(out: &Path, entries: Vec<StagedEntry>, days: u32) -> Result<()> {
    flush_history(&entries)?;
    place_history(out, entries, days)
}

/// Flushes staged entries' files and folders to disk, all side by side (one flush at
/// a time costs a disk round trip each).
fn flush_history(entries: &[StagedEntry]) -> Result<()> {
    use rayon::prelude::*;
    entries
        .par_iter()
        .flat_map(|e| e.files.par_iter())
        .map(|f| sync_file(f))
        .collect::<Result<Vec<()>>>()?;
    entries
        .par_iter()
        .map(|e| sync_dir(&e.dir))
        .collect::<Result<Vec<()>>>()?;
    Ok(())
}

/// Moves flushed entries into place, each swapped in for an earlier entry of the same
/// as_of; then removes entries older than `days` before the latest as_of.
fn place_history(out: &Path, entries: Vec<StagedEntry>, days: u32) -> Result<()> {
    let root = out.join(HISTORY);
    for entry in &entries {
        put_in_place(&root, &entry.dir, &history_folder(&entry.as_of))?;
    }
    sync_dir(&root)?;
    // Kept: `days` before the latest as_of in history (a re-run of an older date
    // does not prune what a later run keeps). An entry is renamed out of the way
    // before it is deleted, so a kill never leaves half an entry under its name.
    let dates = history_dates(out);
    let newest = entries.iter().map(|e| e.as_of.day).max();
    let latest = dates.last().map(|d| d.day).max(newest);
    if let Some(latest) = latest {
        let pid = std::process::id();
        for d in dates.iter().filter(|d| !history_keeps(d.day, latest, days)) {
            let folder = history_folder(d);
            let doomed = root.join(format!("{PRUNED}{pid}-{folder}"));
            if fs::rename(root.join(&folder), &doomed).is_ok() {
                let _ = fs::remove_dir_all(&doomed);
            }
        }
    }
    Ok(())
}

/// Replaces the file at `path` in one step: `write` writes a staging file beside it
/// (`.<name>.tmp-<pid>`), which is then renamed over it, so a reader sees the old
/// file or the new one, never half of one.
pub fn replace_file(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let staging = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    write(&staging).with_context(|| format!("writing {}", staging.display()))?;
    fs::rename(&staging, path).with_context(|| format!("writing {}", path.display()))
}

/// Cleans up after a killed `report` (`clean_leftovers` of `OUT`): its staging
/// folder, and `OUT/report` set aside while being replaced (put back when nothing
/// replaced it).
pub fn tidy_swaps(out: &Path) {
    clean_leftovers(out);
}

/// Replaces `out/<folder>` by the folder `from` (the report's pages): the old one set
/// aside first and removed after.
pub fn replace_folder(out: &Path, from: &Path, folder: &str) -> Result<()> {
    put_in_place(out, from, folder)
}

/// Moves the folder `from` to `root/<folder>`, an existing entry set aside first and
/// removed after (a kill in between leaves it to `repair`).
fn put_in_place(root: &Path, from: &Path, folder: &str) -> Result<()> {
    let dest = root.join(folder);
    if dest.exists() {
        let aside = root.join(format!("{REPLACED}{}-{folder}", std::process::id()));
        fs::rename(&dest, &aside).with_context(|| format!("setting aside {}", dest.display()))?;
        failpoint("history_set_aside");
        fs::rename(from, &dest)
            .with_context(|| format!("moving history into {}", dest.display()))?;
        let _ = fs::remove_dir_all(&aside);
    } else {
        fs::rename(from, &dest)
            .with_context(|| format!("moving history into {}", dest.display()))?;
    }
    Ok(())
}

/// Repairs and removes what killed runs left. First the current run's history
/// entry: a run killed after its switch but before its entry was in place left it
/// staged (`.staging-<pid>-as_of=<date>`, moved in) or not at all (linked from the
/// run folder). Then `clean_leftovers` in `OUT`, `runs/` and `history/`, and run
/// folders never published (newer than `current`). Called with `OUT/.lock` held.
fn remove_abandoned(out: &Path, history_days: u32) {
    let root = out.join(HISTORY);
    // The current run's entry.
    let current = fs::read_link(out.join(CURRENT)).ok().map(|r| out.join(r));
    let current_as_of = current.as_ref().and_then(|dir| run_as_of(dir));
    // (Not when history_days had it pruned: older than that before the latest.)
    let latest = history_dates(out).last().map_or(i32::MIN, |d| d.day);
    if let (Some(run), Some(as_of)) = (&current, &current_as_of) {
        let folder = history_folder(as_of);
        if history_keeps(as_of.day, latest, history_days) && !root.join(&folder).exists() {
            let staged = names_in(&root)
                .into_iter()
                .find(|n| left_by_gone(n, STAGING) && n.ends_with(&format!("-{folder}")));
            let _ = match staged {
                Some(n) => {
                    fs::rename(root.join(n), root.join(&folder)).map_err(anyhow::Error::from)
                }
                None => stage_history_links(out, as_of, run, &HISTORY_TABLES)
                    .and_then(|e| commit_history(out, vec![e], u32::MAX)),
            };
        }
    }
    for dir in [out.to_path_buf(), out.join(RUNS), root] {
        clean_leftovers(&dir);
    }
    // Run folders moved into `runs/` but never made current (newer than it) by a
    // process that is gone.
    if let Some(current) = current
        .as_ref()
        .and_then(|c| c.file_name())
        .map(|n| n.to_string_lossy().to_string())
    {
        for name in names_in(&out.join(RUNS)) {
            let pid = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
            if !name.starts_with('.') && name > current && pid.is_some_and(gone) {
                let _ = fs::remove_dir_all(out.join(RUNS).join(&name));
            }
        }
    }
}

/// Whether the process `pid` is gone. This process's own id counts as gone: the
/// callers hold `OUT/.lock` and have made nothing yet, so a leftover with it is an
/// earlier process's (in a container the job may be process 1 every night).
fn gone(pid: u32) -> bool {
    pid == std::process::id() || !process_exists(pid)
}

/// Whether `name` is `<prefix><pid>...` of a process that is gone.
fn left_by_gone(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.split(['-', '.']).next())
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(gone)
}

/// The names in a folder (none when it cannot be read).
fn names_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|e| {
            e.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the leftovers of processes that are gone in `dir`: staging folders (of
/// runs, history entries, the report, earlier versions), entries being pruned,
/// temporary links; and a folder set aside while being replaced
/// (`.replaced-<pid>-<name>`) is put back when nothing took its place, else removed.
fn clean_leftovers(dir: &Path) {
    for name in names_in(dir) {
        let path = dir.join(&name);
        if [
            STAGING,
            PRUNED,
            REPORT_STAGING,
            crate::output::OLD_STAGING_PREFIX,
        ]
        .iter()
        .any(|p| left_by_gone(&name, p))
        {
            let _ = fs::remove_dir_all(&path);
        } else if left_by_gone(&name, LINK_PREFIX) {
            let _ = fs::remove_file(&path);
        } else if left_by_gone(&name, REPLACED) {
            let folder = name.splitn(3, '-').nth(2).unwrap_or_default();
            if !folder.is_empty() && !dir.join(folder).exists() {
                let _ = fs::rename(&path, dir.join(folder));
            } else {
                let _ = fs::remove_dir_all(&path);
            }
        }
    }
}

/// A run folder's as_of, from its manifest.
fn run_as_of(dir: &Path) -> Option<AsOf> {
    let text = fs::read_to_string(dir.join("manifest.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    AsOf::parse(v.get("as_of")?.as_str()?).ok()
}

/// Removes run folders beyond the newest `KEEP_RUNS` (by name: publication time
/// first), never the current one. Best effort: what cannot be removed now is tried
/// again by the next run.
fn remove_old_runs(runs: &Path, current: &str) {
    let Ok(entries) = fs::read_dir(runs) else {
        return;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let old = names.len().saturating_sub(KEEP_RUNS);
    for name in &names[..old] {
        if name != current {
            let _ = fs::remove_dir_all(runs.join(name));
        }
    }
}

/// Temporary links are `.link-<pid>-<name>` beside the link they replace.
const LINK_PREFIX: &str = ".link-";

/// Makes `at` a symbolic link to `target`, replacing what is there in one rename.
fn link_atomically(target: &Path, at: &Path) -> Result<()> {
    let name = at.file_name().map(|n| n.to_string_lossy().to_string());
    let tmp = at.with_file_name(format!(
        "{LINK_PREFIX}{}-{}",
        std::process::id(),
        name.unwrap_or_default()
    ));
    let _ = fs::remove_file(&tmp);
    symlink(target, &tmp).with_context(|| format!("creating the link {}", tmp.display()))?;
    fs::rename(&tmp, at).with_context(|| format!("switching {}", at.display()))
}

#[cfg(unix)]
fn symlink(target: &Path, at: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _at: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "publishing a run needs symbolic links (Unix)",
    ))
}

/// Flushes a written file to disk.
pub fn sync_file(path: &Path) -> Result<()> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("flushing {} to disk", path.display()))
}

/// Flushes a folder's entries (names created or renamed in it) to disk.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("flushing {} to disk", dir.display()))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Whether a process with this id exists (Linux: its /proc entry; elsewhere, assume
/// it does, so nothing of a live run is ever removed).
fn process_exists(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// A test hook: when `ACCOUNT_HEALTH_FAIL_AT` names this point, the process aborts
/// here at once, as a kill would stop it (no cleanup, no unwinding). The kill tests
/// stop a run at every point of publishing and check what a reader then sees.
fn failpoint(point: &str) {
    if std::env::var("ACCOUNT_HEALTH_FAIL_AT").is_ok_and(|p| p == point) {
        std::process::abort();
    }
}
