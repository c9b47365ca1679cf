//! `vger check [--verify-data] [--max-percent N] [--repair [--yes]]`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Result};
use vger_app::events::{monitored, progress_for, Operation, Subject};
use vger_app::AppError;
use vger_config::{HookCommand, RepositoryConfig};
use vger_engine::check::CheckOptions;
use vger_engine::repair::{repair, DamagedSnapshot};

use crate::cli::CheckArgs;
use crate::context::Context;
use crate::frontend::Printer;
use crate::Outcome;

pub fn run(ctx: &Context, args: &CheckArgs) -> Result<Outcome> {
    let opts = CheckOptions {
        verify_data: args.verify_data,
        max_percent: args.max_percent,
        distrust_server: args.distrust_server,
    };
    let front = Printer::new(ctx.json, ctx.quiet);
    super::each_repository(ctx, |repo| {
        if args.repair {
            let describe = |e: &anyhow::Error| crate::one_line(e);
            let warn = |e: &AppError| eprintln!("vger: warning: {}", crate::wording::one_line_of(e));
            return ctx.app.with_hooks(repo, HookCommand::Check, false, &describe, &warn, |_| {
                repair_repository(ctx, repo, args, &opts, &front)
            });
        }
        ctx.app.check_with_hooks(repo, &opts, &front)?;
        Ok(Outcome::Ok)
    })
}

fn confirm_removal(damaged: &[DamagedSnapshot], yes: bool, json: bool) -> bool {
    if !json {
        println!("these snapshots reference data that is gone and cannot be fully restored:");
        println!("(if the files still exist, a backup re-uploads the missing chunks and heals these snapshots; remove them only if that data is gone for good)");
        for d in damaged {
            println!(
                "  {} {} {}: {}",
                d.id.get(..8).unwrap_or(&d.id),
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

/// `check --repair` of one repository (inside the check hooks).
fn repair_repository(
    ctx: &Context,
    repo_cfg: &RepositoryConfig,
    args: &CheckArgs,
    opts: &CheckOptions,
    front: &Printer,
) -> Result<Outcome> {
    let repo = ctx.app.open(repo_cfg)?;
    let progress = progress_for(front);
    let confirm = |damaged: &[DamagedSnapshot]| confirm_removal(damaged, args.yes, ctx.json);
    let subject = Subject { operation: Operation::Check, repository: repo_cfg.label(), source: None };
    let r = monitored(front, &progress, subject, || repair(&repo, opts, &progress, &confirm))?;
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
    Ok(Outcome::Ok)
}
