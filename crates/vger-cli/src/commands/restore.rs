//! `vger restore ID|latest DEST [PATH...]`.

use std::sync::Arc;

use anyhow::{bail, Result};
use vger_engine::progress::Progress;
use vger_engine::restore::{restore, RestoreOptions};
use vger_engine::snapshots;

use crate::cli::RestoreArgs;
use crate::context::Context;
use crate::output::bytes;
use crate::progress::ProgressDisplay;
use crate::Outcome;

pub fn run(ctx: &Context, args: &RestoreArgs) -> Result<Outcome> {
    if ctx.repositories()?.len() > 1 {
        bail!("restore reads from one repository: pick it with -R/--repo (labels: {})", labels(ctx)?);
    }
    super::each_repository(ctx, |repo_cfg| {
        let repo = ctx.open(repo_cfg)?;
        let snap = snapshots::find(&repo, &args.id)?;
        let is_root = unsafe_free_euid() == 0;
        let opts = RestoreOptions {
            paths: args.paths.iter().map(|p| p.trim_matches('/').as_bytes().to_vec()).collect(),
            threads: ctx.config.effective_limits(repo_cfg).threads.unwrap_or(0),
            fs: vger_fs::RestoreOptions { owners: is_root, xattrs: true, special_files: is_root },
        };
        let progress = Arc::new(Progress::default());
        if opts.paths.is_empty() {
            progress.total_bytes.store(snap.snapshot.stats.bytes, std::sync::atomic::Ordering::Relaxed);
        }
        let display = ProgressDisplay::start(progress.clone(), "restore", ctx.quiet);
        let result = restore(&repo, &snap, &args.dest, &opts, &progress);
        drop(display);
        for w in progress.take_warnings() {
            eprintln!("vger: warning: {w}");
        }
        let report = result?;
        for f in &report.failures {
            eprintln!("vger: error: could not restore {f}");
        }
        if ctx.json {
            crate::output::print_json(&serde_json::json!({
                "snapshot": snap.id.to_hex(),
                "dest": args.dest.display().to_string(),
                "report": report,
            }))?;
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

fn unsafe_free_euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
