//! `vger list`: the snapshots of each repository.

use anyhow::Result;
use vger_engine::snapshots::{self, SnapshotInfo};

use crate::cli::ListArgs;
use crate::context::Context;
use crate::output::{bytes, short_time};
use crate::Outcome;

pub fn snapshot_json(repo: &str, s: &SnapshotInfo) -> serde_json::Value {
    serde_json::json!({
        "repository": repo,
        "id": s.id.to_hex(),
        "short_id": snapshots::short_id(&s.id),
        "time": s.snapshot.time,
        "end_time": s.snapshot.end_time,
        "source_label": s.snapshot.source_label,
        "hostname": s.snapshot.hostname,
        "username": s.snapshot.username,
        "paths": s.snapshot.paths,
        "tags": s.snapshot.tags,
        "files": s.snapshot.stats.files,
        "dirs": s.snapshot.stats.dirs,
        "size": s.snapshot.stats.bytes,
        "added_bytes": s.snapshot.stats.added_bytes,
        "added_stored": s.snapshot.stats.added_stored,
        "errors": s.snapshot.stats.errors,
        "stats": s.snapshot.stats,
        "copied_from": s.snapshot.copied_from.map(|id| id.to_hex()),
    })
}

pub fn run(ctx: &Context, args: &ListArgs) -> Result<Outcome> {
    let mut all = Vec::new();
    let outcome = super::each_repository(ctx, |repo_cfg| {
        let repo = ctx.open(repo_cfg)?;
        let mut snaps: Vec<SnapshotInfo> = snapshots::list(&repo)?
            .into_iter()
            .filter(|s| args.source.as_ref().is_none_or(|l| &s.snapshot.source_label == l))
            .collect();
        if let Some(n) = args.last {
            let skip = snaps.len().saturating_sub(n);
            snaps.drain(..skip);
        }
        if ctx.json {
            all.extend(snaps.iter().map(|s| snapshot_json(repo_cfg.label(), s)));
            return Ok(Outcome::Ok);
        }
        if snaps.is_empty() {
            println!("no snapshots");
            return Ok(Outcome::Ok);
        }
        println!("{:<10} {:<19}  {:<16} {:<16} {:>10} {:>7}  paths", "id", "time", "source", "host", "size", "files");
        for s in &snaps {
            let snap = &s.snapshot;
            println!(
                "{:<10} {:<19}  {:<16} {:<16} {:>10} {:>7}  {}",
                snapshots::short_id(&s.id),
                short_time(&snap.time),
                snap.source_label,
                snap.hostname,
                bytes(snap.stats.bytes),
                snap.stats.files,
                snap.paths.join(", ")
            );
            if let Some(origin) = &snap.copied_from {
                println!("{:<10} copied from snapshot {}", "", snapshots::short_id(origin));
            }
        }
        Ok(Outcome::Ok)
    });
    if ctx.json {
        crate::output::print_json(&all)?;
    }
    outcome
}
