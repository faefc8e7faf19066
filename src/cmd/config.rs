//! `account-health config`: prints the effective scoring model as TOML, with its
//! sha256 (the one a run's manifest records), so a tuned model can be reviewed.

use anyhow::Result;

use crate::cli::ConfigArgs;

pub fn run(args: ConfigArgs) -> Result<()> {
    let loaded = super::load_model(args.config.as_deref())?;
    let source = loaded.source.as_deref().unwrap_or("built-in default");
    println!("# effective account-health model ({source})");
    println!("# sha256 {}", loaded.hash);
    print!("{}", toml::to_string_pretty(&loaded.model)?);
    Ok(())
}
