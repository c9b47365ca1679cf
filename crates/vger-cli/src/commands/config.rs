//! `vger config`: writes a commented starter file.

use std::io::Write;

use anyhow::{bail, Context, Result};

use crate::cli::ConfigArgs;
use crate::Outcome;

pub fn run(args: &ConfigArgs) -> Result<Outcome> {
    if args.output.exists() && !args.force {
        bail!("{} already exists; pass --force to replace it", args.output.display());
    }
    let mut f =
        std::fs::File::create(&args.output).with_context(|| format!("cannot write {}", args.output.display()))?;
    f.write_all(vger_config::starter_config().as_bytes())
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!("wrote {}; edit the repository url and sources, then run `vger init`", args.output.display());
    Ok(Outcome::Ok)
}
