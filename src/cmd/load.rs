//! `account-health load postgres|vitally`: a finished run loaded where its readers
//! are (issue 23). The sinks themselves are `src/sinks/`; this file turns the
//! arguments into their settings and prints what was loaded.

use anyhow::Result;

use crate::cli::{LoadArgs, LoadPostgresArgs, LoadVitallyArgs, Sink};
use crate::error::InputError;
use crate::model::{Sinks, VitallySink};
use crate::sinks::{self, postgres, vitally};

/// The environment variable holding Vitally's API key (never a flag: flags show in
/// `ps` and shell history).
pub const VITALLY_API_KEY: &str = "VITALLY_API_KEY";

pub fn run(args: LoadArgs, quiet: bool) -> Result<()> {
    match args.sink {
        Sink::Postgres(a) => load_postgres(a),
        Sink::Vitally(a) => load_vitally(a, quiet),
    }
}

fn load_postgres(args: LoadPostgresArgs) -> Result<()> {
    let target = postgres::Target::parse(&args.url)?;
    let loaded = postgres::load(&target, &args.out, &args.schema)?;
    println!(
        "loaded into {} (schema {}), {} history entries:",
        target.described,
        args.schema,
        loaded.history_entries.len()
    );
    for (table, rows) in &loaded.tables {
        println!("  {table}: {rows} rows");
    }
    Ok(())
}

fn load_vitally(args: LoadVitallyArgs, quiet: bool) -> Result<()> {
    let run = sinks::open(&args.out)?;
    let (sink, categories, config_name) = settings(&run, args.config.as_deref())?;
    let (names, messages) = vitally::messages(&run, &sink, &categories, &config_name)?;
    if let Some(path) = &args.csv {
        let mut frame = vitally::csv_frame(&names, &messages)?;
        crate::publish::replace_file(path, |p| crate::output::write_csv(&mut frame, p))?;
        println!("wrote {} accounts to {}", messages.len(), path.display());
        return Ok(());
    }
    let base_url = vitally::base_url(&args.base_url)?;
    let ledger = vitally::Ledger::open(&args.out, &run.as_of.iso(), &base_url)?;
    if args.dry_run {
        let pending = ledger.pending(&messages);
        for batch in pending.chunks(sink.batch_size) {
            let bodies: Vec<&serde_json::Value> = batch.iter().map(|m| &m.body).collect();
            println!("{}", serde_json::to_string(&bodies)?);
        }
        eprintln!(
            "dry run: would POST {} accounts in {} batches to {base_url}{} ({} of {} already delivered)",
            pending.len(),
            pending.len().div_ceil(sink.batch_size),
            vitally::BATCH_PATH,
            messages.len() - pending.len(),
            messages.len()
        );
        return Ok(());
    }
    let key = std::env::var(VITALLY_API_KEY).unwrap_or_default();
    if key.trim().is_empty() {
        return Err(InputError::Usage {
            problem: format!(
                "{VITALLY_API_KEY} is not set: the Vitally API key comes from the environment only"
            ),
        }
        .into());
    }
    let _lock = ledger.lock()?;
    // Read again under the lock: a load that finished meanwhile has recorded more.
    let mut ledger = vitally::Ledger::open(&args.out, &run.as_of.iso(), &base_url)?;
    ledger.prune()?;
    let d = vitally::deliver(&messages, key.trim(), &base_url, &sink, &mut ledger, quiet)?;
    println!(
        "delivered {} accounts to {base_url} ({} already delivered by an earlier load, {} in all)",
        d.sent, d.already, d.total
    );
    Ok(())
}

/// The Vitally settings and the run's categories. The categories always come from
/// the run's manifest (the model the run was scored with, so `category_scores`
/// names its columns); the settings from `[sinks.vitally]` of `--config` when given
/// (the file merged over the defaults and checked as `run` checks it), else from
/// the manifest (the defaults' for a run from before sinks existed).
fn settings(
    run: &sinks::FinishedRun,
    config: Option<&std::path::Path>,
) -> Result<(VitallySink, Vec<String>, String), InputError> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        config: RunModel,
    }
    #[derive(serde::Deserialize)]
    struct RunModel {
        categories: indexmap::IndexMap<String, serde::de::IgnoredAny>,
        sinks: Option<Sinks>,
    }
    let path = run.dir.join("manifest.json");
    let bad = |problem: String| InputError::BadPath {
        path: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| bad(format!("no usable `config`: {e}")))?;
    let categories = manifest.config.categories.into_keys().collect();
    if let Some(file) = config {
        let loaded = crate::model::load(Some(file))?;
        return Ok((
            loaded.model.sinks.vitally,
            categories,
            file.display().to_string(),
        ));
    }
    let sink = match manifest.config.sinks {
        Some(s) => s.vitally,
        None => crate::model::Model::default_model().sinks.vitally,
    };
    Ok((
        sink,
        categories,
        format!("the run's model ({})", path.display()),
    ))
}
