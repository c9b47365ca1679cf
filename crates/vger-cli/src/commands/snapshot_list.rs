//! `vger snapshot list ID [PATH] [--recursive] [--long]`: one directory of
//! a snapshot (or its whole subtree), read through the engine's tree API,
//! so the cost is that of the directories shown, not of the snapshot.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use vger_engine::index::ChunkIndex;
use vger_engine::repository::Repository;
use vger_engine::snapshots::{self, SnapshotInfo};
use vger_engine::tree::{SnapshotTree, TreeStore, DEFAULT_CACHE_BYTES};
use vger_format::entry::EntryKind;
use vger_format::tree::TreeEntry;

use crate::cli::SnapshotListArgs;
use crate::context::Context;
use crate::Outcome;

pub fn run(ctx: &Context, args: &SnapshotListArgs) -> Result<Outcome> {
    let path = args.path_arg.as_deref().or(args.path.as_deref()).unwrap_or("");
    super::each_repository(ctx, |repo_cfg| {
        let repo = ctx.open(repo_cfg)?;
        let snap = snapshots::find(&repo, &args.id)?;
        let tree = open_tree(&repo, &snap)?;
        let path = vger_engine::tree::path_components(path.as_bytes())?.join(&b'/');
        let Some(top) = tree.stat(&path)? else {
            anyhow::bail!(
                "`{}` is not in snapshot {}; `vger snapshot list {}` shows its top directory",
                String::from_utf8_lossy(&path),
                snapshots::short_id(&snap.id),
                snapshots::short_id(&snap.id)
            );
        };
        let mut out = Printer::new(ctx.json, args.long);
        if top.tree.is_none() {
            out.print(&path, &top)?;
        } else if args.recursive {
            for item in tree.walk(&path)? {
                let item = item?;
                out.print(&item.path, &item.entry)?;
            }
        } else {
            for entry in tree.read_dir(&path)? {
                let entry = entry?;
                out.print(&vger_format::tree::join_path(&path, &entry.name), &entry)?;
            }
        }
        out.finish()?;
        Ok(Outcome::Ok)
    })
}

/// The snapshot's tree, read through an index of the repository.
pub fn open_tree(repo: &Repository, snap: &SnapshotInfo) -> Result<SnapshotTree> {
    let index = Arc::new(ChunkIndex::load_trees(repo)?);
    Ok(SnapshotTree::open(&TreeStore::new(repo, index, DEFAULT_CACHE_BYTES), snap))
}

/// Prints entries as they come: lines, `--long` lines, or one JSON array
/// written an object at a time (a huge directory is never held).
struct Printer {
    json: bool,
    long: bool,
    out: std::io::BufWriter<std::io::Stdout>,
    first: bool,
}

impl Printer {
    fn new(json: bool, long: bool) -> Self {
        Self { json, long, out: std::io::BufWriter::new(std::io::stdout()), first: true }
    }

    fn print(&mut self, path: &[u8], e: &TreeEntry) -> Result<()> {
        if self.json {
            let sep = if self.first { "[\n  " } else { ",\n  " };
            self.first = false;
            write!(self.out, "{sep}{}", serde_json::to_string(&entry_json(path, e))?)?;
        } else if self.long {
            writeln!(self.out, "{}", long_line(path, e))?;
        } else {
            writeln!(self.out, "{}", String::from_utf8_lossy(path))?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        if self.json {
            writeln!(self.out, "{}", if self.first { "[]" } else { "\n]" })?;
        }
        self.out.flush()?;
        Ok(())
    }
}

pub fn kind_name(k: EntryKind) -> &'static str {
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

fn entry_json(path: &[u8], e: &TreeEntry) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": String::from_utf8_lossy(&e.name),
        "path": String::from_utf8_lossy(path),
        "type": kind_name(e.kind),
        "size": e.size,
        "mode": format!("{:o}", e.mode),
        "mtime": chrono::DateTime::from_timestamp_nanos(e.mtime).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "mtime_ns": e.mtime,
        "uid": e.uid,
        "gid": e.gid,
        "user": e.user,
        "group": e.group,
    });
    if e.kind == EntryKind::File {
        v["chunks"] = e.chunks.len().into();
    }
    if let Some(t) = &e.target {
        v["target"] = String::from_utf8_lossy(t).into_owned().into();
    }
    v
}

fn long_line(path: &[u8], e: &TreeEntry) -> String {
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
    let shown = String::from_utf8_lossy(path);
    let mut line = format!("{kind}{:04o} {owner:>8} {group:>8} {:>12} {time} {shown}", e.mode, e.size);
    if let Some(t) = &e.target {
        let arrow = if e.kind == EntryKind::Hardlink { "=>" } else { "->" };
        line.push_str(&format!(" {arrow} {}", String::from_utf8_lossy(t)));
    }
    line
}
