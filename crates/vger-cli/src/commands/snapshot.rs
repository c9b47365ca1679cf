//! `vger snapshot list|info`.

use anyhow::Result;
use vger_engine::blob::BlobReader;
use vger_engine::index::ChunkIndex;
use vger_engine::snapshots;
use vger_engine::tree::TreeReader;
use vger_format::entry::{Entry, EntryKind};

use crate::cli::{SnapshotCommand, SnapshotListArgs};
use crate::context::Context;
use crate::output::bytes;
use crate::Outcome;

pub fn run(ctx: &Context, cmd: &SnapshotCommand) -> Result<Outcome> {
    match cmd {
        SnapshotCommand::List(args) => list(ctx, args),
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

fn list(ctx: &Context, args: &SnapshotListArgs) -> Result<Outcome> {
    let filter = args.path.as_ref().map(|p| p.trim_matches('/').as_bytes().to_vec());
    super::each_repository(ctx, |repo_cfg| {
        let repo = ctx.open(repo_cfg)?;
        let s = snapshots::find(&repo, &args.id)?;
        let index = ChunkIndex::load(&repo)?;
        let mut out = Vec::new();
        for entry in TreeReader::new(BlobReader::new(&repo, &index), s.snapshot.tree.clone()) {
            let entry = entry?;
            if let Some(f) = &filter {
                let p = &entry.path;
                let under = p.len() > f.len() && p.starts_with(f) && p[f.len()] == b'/';
                if !(f.is_empty() || p == f || under) {
                    continue;
                }
            }
            if ctx.json {
                out.push(entry_json(&entry));
            } else if args.long {
                println!("{}", long_line(&entry));
            } else {
                println!("{}", entry.display_path());
            }
        }
        if ctx.json {
            crate::output::print_json(&out)?;
        }
        Ok(Outcome::Ok)
    })
}

fn kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Hardlink => "hardlink",
        EntryKind::Fifo => "fifo",
        EntryKind::Char => "char",
        EntryKind::Block => "block",
        EntryKind::Socket => "socket",
    }
}

fn entry_json(e: &Entry) -> serde_json::Value {
    serde_json::json!({
        "path": e.display_path(),
        "kind": kind_name(e.kind),
        "size": e.size,
        "mode": format!("{:o}", e.mode),
        "uid": e.uid,
        "gid": e.gid,
        "user": e.user,
        "group": e.group,
        "mtime_ns": e.mtime,
        "target": e.target.as_ref().map(|t| String::from_utf8_lossy(t).into_owned()),
    })
}

fn long_line(e: &Entry) -> String {
    let kind = match e.kind {
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Fifo => 'p',
        EntryKind::Char => 'c',
        EntryKind::Block => 'b',
        EntryKind::Socket => 's',
        EntryKind::File | EntryKind::Hardlink => '-',
    };
    let time = chrono::DateTime::from_timestamp_nanos(e.mtime).format("%Y-%m-%d %H:%M");
    let owner = e.user.clone().unwrap_or_else(|| e.uid.to_string());
    let group = e.group.clone().unwrap_or_else(|| e.gid.to_string());
    let mut line = format!("{kind}{:04o} {owner:>8} {group:>8} {:>12} {time} {}", e.mode, e.size, e.display_path());
    if let Some(t) = &e.target {
        let arrow = if e.kind == EntryKind::Hardlink { "=>" } else { "->" };
        line.push_str(&format!(" {arrow} {}", String::from_utf8_lossy(t)));
    }
    line
}
