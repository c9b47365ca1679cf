//! `vger compact`.

use anyhow::{anyhow, Result};
use vger_engine::compact::CompactOptions;

use crate::cli::CompactArgs;
use crate::context::Context;
use crate::frontend::Printer;
use crate::Outcome;

pub fn run(ctx: &Context, args: &CompactArgs) -> Result<Outcome> {
    let grace = parse_grace(&args.grace)
        .ok_or_else(|| anyhow!("--grace `{}`: write a number and s, m, h or d, e.g. 3h or 0s", args.grace))?;
    let max_repack_bytes = match &args.max_repack_size {
        Some(s) => Some(vger_config::parse_size(s).map_err(|e| anyhow!("--max-repack-size {s}: {e}"))?),
        None => None,
    };
    let opts = CompactOptions {
        threshold_pct: args.threshold,
        max_repack_bytes,
        dry_run: args.dry_run,
        grace,
        distrust_server: args.distrust_server,
    };
    let front = Printer::new(ctx.json, ctx.quiet);
    super::each_repository(ctx, |repo| {
        ctx.app.compact_with_hooks(repo, &opts, &front)?;
        Ok(Outcome::Ok)
    })
}

/// `0`, `90s`, `30m`, `3h`, `2d`.
fn parse_grace(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}
