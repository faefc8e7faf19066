//! `account-health validate`: checks the inputs against SPEC 2 and prints the
//! data-quality counts on stdout. Writes nothing.

use anyhow::Result;

use crate::cli::ValidateArgs;
use crate::quality;

pub fn run(args: ValidateArgs, quiet: bool) -> Result<()> {
    let progress = crate::progress::Progress::new(quiet);
    let as_of = super::parse_as_of(args.as_of.as_deref())?;
    let model = super::load_model(args.config.as_deref())?;
    progress.stage("reading inputs and the events");
    let (inputs, rollup, _) = super::read_inputs(&args.input, &model.model, &progress, None)?;
    let as_of = match as_of {
        Some(a) => a,
        None => quality::default_as_of(&rollup)?,
    };
    let dq = quality::measure(&inputs, &rollup, &as_of)?;
    println!("inputs: {} (as_of {})", args.input.display(), as_of.iso());
    for t in &inputs.tables {
        if t.present {
            println!(
                "  {:<14} {:>10} rows in {} file(s)",
                t.name, t.rows, t.files
            );
        } else {
            println!("  {:<14} absent (its metrics are null)", t.name);
        }
    }
    println!("events files:");
    for f in &inputs.events.files {
        let name = f.path.strip_prefix(&args.input).unwrap_or(&f.path);
        println!("  {}: {}", name.display(), f.shape.as_str());
    }
    let skipped = rollup.skipped;
    if skipped.total() > 0 {
        println!(
            "export rows skipped: {} repeating an earlier row's uuid, {} with properties that are not a JSON object, {} with no organization in properties.$groups",
            skipped.duplicate_event_uuids,
            skipped.events_unreadable_properties,
            skipped.events_without_org
        );
    }
    println!("data quality:");
    for (k, v) in &dq {
        println!("  {k:<36} {v:>10}");
    }
    println!("ok");
    Ok(())
}
