//! `vger restore ID|latest DEST [PATH...]`.

use anyhow::{bail, Result};
use clap::ValueEnum;
use vger_engine::restore::{Overwrite, RestoreOptions};
use vger_engine::snapshots;

use crate::cli::{OverwriteArg, RestoreArgs};
use crate::context::Context;
use crate::frontend::Printer;
use crate::output::bytes;
use crate::Outcome;

pub fn run(ctx: &Context, args: &RestoreArgs) -> Result<Outcome> {
    if ctx.repositories()?.len() > 1 {
        bail!("restore reads from one repository: pick it with -R/--repo (labels: {})", labels(ctx)?);
    }
    super::each_repository(ctx, |repo_cfg| {
        let repo = ctx.open(repo_cfg)?;
        let snap = snapshots::find(&repo, &args.id)?;
        // Exact recreation by default (owners and device nodes as root);
        // each flag takes one part away.
        let exact = vger_fs::RestoreOptions::default();
        let opts = RestoreOptions {
            paths: args.paths.iter().map(|p| p.trim_matches('/').as_bytes().to_vec()).collect(),
            threads: ctx.app.config.effective_limits(repo_cfg).threads.unwrap_or(0),
            fs: vger_fs::RestoreOptions {
                owners: exact.owners && !args.no_owner,
                xattrs: exact.xattrs && !args.no_xattrs,
                special_files: exact.special_files && !args.no_special,
                special_bits: exact.special_bits && !args.no_special,
            },
            verify: args.verify,
            dry_run: args.dry_run,
            delete: args.delete,
            overwrite: match args.overwrite {
                OverwriteArg::Always => Overwrite::Always,
                OverwriteArg::IfChanged => Overwrite::IfChanged,
                OverwriteArg::IfNewer => Overwrite::IfNewer,
                OverwriteArg::Never => Overwrite::Never,
            },
        };
        let front = Printer::new(ctx.json, ctx.quiet);
        let report = vger_app::restore::restore_snapshot(&repo, repo_cfg.label(), &snap, &args.dest, &opts, &front)?;
        for f in &report.failures {
            eprintln!("vger: error: could not restore {f}");
        }
        if ctx.json {
            crate::output::print_json(&serde_json::json!({
                "snapshot": snap.id.to_hex(),
                "dest": args.dest.display().to_string(),
                "report": report,
            }))?;
        } else if args.dry_run {
            for path in &report.would_create {
                println!("create {path}");
            }
            for path in &report.would_change {
                println!("change {path}");
            }
            for path in &report.would_delete {
                println!("delete {path}");
            }
            println!(
                "dry run of snapshot {} into {}: {} to create, {} to change, {} to delete, {} existing files kept; nothing was written",
                snapshots::short_id(&snap.id),
                args.dest.display(),
                report.would_create.len(),
                report.would_change.len(),
                report.would_delete.len(),
                report.skipped
            );
        } else {
            println!(
                "restored snapshot {} into {}: {} files, {} dirs, {} links, {}",
                snapshots::short_id(&snap.id),
                args.dest.display(),
                report.files,
                report.dirs,
                report.links,
                bytes(report.bytes)
            );
            if args.delete {
                println!("deleted {} entries the snapshot does not have", report.deleted.len());
            }
            if args.verify {
                println!("{} files verified against the snapshot's chunk ids", report.verified);
            }
            if report.skipped > 0 {
                println!(
                    "kept {} existing files ({}) as they were (--overwrite {})",
                    report.skipped,
                    bytes(report.skipped_bytes),
                    args.overwrite.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default()
                );
            }
            if report.metadata_only > 0 {
                println!(
                    "{} of them had the snapshot's content but not its times: only their metadata was set",
                    report.metadata_only
                );
            }
        }
        if !report.failures.is_empty() {
            bail!("{} entries could not be restored (listed above); run `vger check`", report.failures.len());
        }
        Ok(Outcome::Ok)
    })
}

fn labels(ctx: &Context) -> Result<String> {
    Ok(ctx.repositories()?.iter().map(|r| r.label().to_string()).collect::<Vec<_>>().join(", "))
}
