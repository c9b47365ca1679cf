//! `vger check [--verify-data] [--max-percent N] [--repair [--yes]]`.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use anyhow::{bail, Result};
use vger_engine::check::{check, CheckOptions};
use vger_engine::progress::Progress;
use vger_engine::repair::{repair, DamagedSnapshot};

use crate::cli::CheckArgs;
use crate::context::Context;
use crate::progress::ProgressDisplay;
use crate::Outcome;

pub fn run(ctx: &Context, args: &CheckArgs) -> Result<Outcome> {
    super::each_repository(ctx, |repo_cfg| {
        super::with_hooks(ctx, repo_cfg, vger_config::HookCommand::Check, false, |_| {
            check_repository(ctx, repo_cfg, args)
        })
    })
}

fn confirm_removal(damaged: &[DamagedSnapshot], yes: bool, json: bool) -> bool {
    if !json {
        println!("these snapshots reference data that is gone and cannot be fully restored:");
        println!("(if the files still exist, a backup re-uploads the missing chunks and heals these snapshots; remove them only if that data is gone for good)");
        for d in damaged {
            println!(
                "  {} {} {}: {}",
                &d.id[..8],
                d.source_label,
                d.time,
                d.problems.first().cloned().unwrap_or_default()
            );
        }
    }
    if yes {
        return true;
    }
    if !std::io::stdin().is_terminal() {
        return false;
    }
    print!("remove them? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}

/// One repository, without hooks (the default run adds them).
pub fn check_repository(ctx: &Context, repo_cfg: &vger_config::RepositoryConfig, args: &CheckArgs) -> Result<Outcome> {
    let opts = CheckOptions {
        verify_data: args.verify_data,
        max_percent: args.max_percent,
        distrust_server: args.distrust_server,
    };
    let repo = ctx.open(repo_cfg)?;
    let progress = Arc::new(Progress::default());
    let display = ProgressDisplay::start(progress.clone(), "check", ctx.quiet);
    if args.repair {
        let confirm = |damaged: &[DamagedSnapshot]| confirm_removal(damaged, args.yes, ctx.json);
        let r = repair(&repo, &opts, &progress, &confirm);
        drop(display);
        let r = r?;
        if ctx.json {
            crate::output::print_json(&r)?;
        } else {
            if r.packs_salvaged > 0 {
                println!(
                    "salvaged {} damaged pack(s): {} intact chunks copied into new packs, {} lost; the damaged packs were deleted",
                    r.packs_salvaged, r.chunks_rescued, r.chunks_lost
                );
            }
            if r.index_rebuilt {
                println!("index rebuilt from {} packs", r.packs_indexed);
            }
            for p in &r.packs_unreadable {
                println!("unreadable pack left out of the index: {p}");
            }
            println!("removed {} damaged snapshots", r.removed.len());
        }
        if r.removed.len() < r.damaged.len() {
            bail!("{} damaged snapshots were kept; rerun with --yes to remove them", r.damaged.len() - r.removed.len());
        }
        return Ok(Outcome::Ok);
    }
    let r = check(&repo, &opts, &progress);
    drop(display);
    let r = r?;
    if ctx.json {
        crate::output::print_json(&r)?;
    } else {
        for w in &r.warnings {
            println!("warning: {w}");
        }
        for e in &r.errors {
            println!("error: {e}");
        }
        println!(
            "checked {} snapshots, {} index segments, {} packs{}",
            r.snapshots_checked,
            r.segments,
            r.packs,
            if args.verify_data {
                format!(", verified {} chunks in {} packs", r.chunks_verified, r.packs_verified)
            } else if r.packs_verified > 0 {
                let by = if args.distrust_server { "here" } else { "by the server" };
                format!(", hashes of {} packs verified {by}", r.packs_verified)
            } else {
                String::new()
            }
        );
    }
    if !r.is_ok() {
        bail!(
            "the repository has {} problem(s) affecting {} snapshot(s); `vger check --repair` rebuilds the index and removes what cannot be restored",
            r.errors.len(),
            r.damaged_snapshots.len()
        );
    }
    if !ctx.json {
        println!("no problems found");
    }
    Ok(Outcome::Ok)
}
