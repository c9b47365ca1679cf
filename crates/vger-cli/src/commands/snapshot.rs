//! `vger snapshot list|info|delete` (list lives in `snapshot_list`).

use anyhow::Result;
use vger_engine::snapshots;

use crate::cli::SnapshotCommand;
use crate::context::Context;
use crate::output::bytes;
use crate::Outcome;

pub fn run(ctx: &Context, cmd: &SnapshotCommand) -> Result<Outcome> {
    match cmd {
        SnapshotCommand::List(args) => super::snapshot_list::run(ctx, args),
        SnapshotCommand::Diff(args) => super::snapshot_diff::run(ctx, args),
        SnapshotCommand::Find(args) => super::snapshot_find::run(ctx, args),
        SnapshotCommand::Delete(args) => super::each_repository(ctx, |repo_cfg| {
            let repo = ctx.open(repo_cfg)?;
            let ids =
                args.ids.iter().map(|i| snapshots::find(&repo, i).map(|s| s.id)).collect::<Result<Vec<_>, _>>()?;
            vger_engine::prune::delete_snapshots(&repo, &ids)?;
            if ctx.json {
                crate::output::print_json(&ids.iter().map(|i| i.to_hex()).collect::<Vec<_>>())?;
            } else {
                for id in &ids {
                    println!("deleted snapshot {}", snapshots::short_id(id));
                }
                println!("run `vger compact` to free the space");
            }
            Ok(Outcome::Ok)
        }),
        SnapshotCommand::Info(arg) => super::each_repository(ctx, |repo_cfg| {
            let repo = ctx.open(repo_cfg)?;
            let s = snapshots::find(&repo, &arg.id)?;
            if ctx.json {
                crate::output::print_json(&super::list::snapshot_json(repo_cfg.label(), &s))?;
                return Ok(Outcome::Ok);
            }
            let snap = &s.snapshot;
            let st = &snap.stats;
            println!("snapshot     {}", s.id);
            println!("time         {} (finished {})", snap.time, snap.end_time);
            println!("source       {}", snap.source_label);
            println!("host / user  {} / {}", snap.hostname, snap.username);
            println!("paths        {}", snap.paths.join(", "));
            if !snap.tags.is_empty() {
                println!("tags         {}", snap.tags.join(", "));
            }
            println!("files        {} ({} dirs)", st.files, st.dirs);
            println!("size         {}", bytes(st.bytes));
            println!(
                "added        {} new data, {} stored, {} chunks",
                bytes(st.added_bytes),
                bytes(st.added_stored),
                st.added_chunks
            );
            if st.errors > 0 {
                println!("skipped      {} files", st.errors);
            }
            if let Some(p) = &snap.parent {
                println!("parent       {}", snapshots::short_id(p));
            }
            Ok(Outcome::Ok)
        }),
    }
}
