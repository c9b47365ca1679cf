//! `vger compact`.

use anyhow::{anyhow, Result};
use vger_engine::compact::{compact, CompactOptions};

use crate::cli::CompactArgs;
use crate::context::Context;
use crate::output::bytes;
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
    super::each_repository(ctx, |repo_cfg| {
        super::with_hooks(ctx, repo_cfg, vger_config::HookCommand::Compact, false, |_| {
            compact_repository(ctx, repo_cfg, &opts)
        })
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

/// One repository, without hooks (the default run adds them).
pub fn compact_repository(
    ctx: &Context,
    repo_cfg: &vger_config::RepositoryConfig,
    opts: &CompactOptions,
) -> Result<Outcome> {
    let repo = ctx.open(repo_cfg)?;
    let r = compact(&repo, opts)?;
    for w in &r.warnings {
        eprintln!("vger: warning: {w}");
    }
    if ctx.json {
        crate::output::print_json(&serde_json::json!({ "report": r, "bytes_freed": r.bytes_freed() }))?;
        return Ok(Outcome::Ok);
    }
    let verb = if r.dry_run { "would free" } else { "freed" };
    println!(
        "{verb} {}: {} of {} packs deleted, {} repacked into {}, {} adopted into the index{}",
        bytes(r.bytes_freed()),
        r.packs_deleted,
        r.packs_before,
        r.packs_repacked,
        r.packs_written,
        r.packs_adopted,
        if r.packs_too_young > 0 {
            format!(", {} younger than the grace period left alone", r.packs_too_young)
        } else {
            String::new()
        }
    );
    if r.temp_files_removed > 0 {
        println!("removed {} temporary files left by interrupted writers", r.temp_files_removed);
    }
    Ok(Outcome::Ok)
}
