//! `vger prune`: applies the retention rules.

use anyhow::Result;
use vger_engine::prune::PruneOptions;

use crate::cli::PruneArgs;
use crate::context::Context;
use crate::frontend::Printer;
use crate::Outcome;

pub fn run(ctx: &Context, args: &PruneArgs) -> Result<Outcome> {
    let front = Printer::new(ctx.json, ctx.quiet);
    let opts = PruneOptions { dry_run: args.dry_run, source: args.source.clone(), force: args.force };
    super::each_repository(ctx, |repo| {
        ctx.app.prune_with_hooks(repo, &opts, &front)?;
        Ok(Outcome::Ok)
    })
}
