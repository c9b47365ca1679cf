//! `vger snapshot diff A B [PATH]`: one line per changed path and a
//! summary; subtrees with the same tree ID in both are never read.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use vger_engine::diff::{diff, Change, DiffSummary};
use vger_engine::index::ChunkIndex;
use vger_engine::snapshots;
use vger_engine::tree::{SnapshotTree, TreeStore, DEFAULT_CACHE_BYTES};

use crate::cli::SnapshotDiffArgs;
use crate::context::Context;
use crate::output::bytes;
use crate::Outcome;

fn mark(c: Change) -> char {
    match c {
        Change::Added => '+',
        Change::Removed => '-',
        Change::Modified => 'M',
        Change::Metadata => 'T',
        Change::Type => '~',
    }
}

pub fn run(ctx: &Context, args: &SnapshotDiffArgs) -> Result<Outcome> {
    super::each_repository(ctx, |repo_cfg| {
        let repo = ctx.open(repo_cfg)?;
        let (a, b) = (snapshots::find(&repo, &args.a)?, snapshots::find(&repo, &args.b)?);
        let store = TreeStore::new(&repo, Arc::new(ChunkIndex::load_trees(&repo)?), DEFAULT_CACHE_BYTES);
        let (ta, tb) = (SnapshotTree::open(&store, &a), SnapshotTree::open(&store, &b));
        let path = args.path.as_deref().unwrap_or("");
        let mut out = std::io::BufWriter::new(std::io::stdout());
        let mut summary = DiffSummary::default();
        let mut first = true;
        let result = diff(&ta, &tb, path.as_bytes(), |item| {
            summary.count(&item);
            let shown = String::from_utf8_lossy(&item.path);
            let written = if ctx.json {
                let size = |e: &Option<vger_format::tree::TreeEntry>| e.as_ref().map(|e| e.size);
                let line = serde_json::json!({
                    "path": shown,
                    "change": item.change,
                    "size_before": size(&item.before),
                    "size_after": size(&item.after),
                });
                let sep = if first { "{\"changes\":[\n  " } else { ",\n  " };
                first = false;
                write!(out, "{sep}{line}")
            } else {
                writeln!(out, "{} {shown}", mark(item.change))
            };
            written.map_err(|e| vger_engine::EngineError::io("writing the diff", e))
        });
        if let Err(e) = result {
            if let vger_engine::EngineError::TreePathNotFound { .. } = e {
                anyhow::bail!(
                    "`{path}` is in neither snapshot {} nor {}; `vger snapshot list ID` shows their paths",
                    snapshots::short_id(&a.id),
                    snapshots::short_id(&b.id)
                );
            }
            return Err(e.into());
        }
        if ctx.json {
            let open = if first { "{\"changes\":[" } else { "\n" };
            writeln!(out, "{open}], \"summary\": {}}}", serde_json::to_string(&summary)?)?;
        } else {
            let s = &summary;
            writeln!(
                out,
                "{} added, {} removed, {} modified, {} metadata, {} type changed; {} added, {} removed",
                s.added,
                s.removed,
                s.modified,
                s.metadata,
                s.r#type,
                bytes(s.added_bytes),
                bytes(s.removed_bytes)
            )?;
        }
        out.flush()?;
        Ok(Outcome::Ok)
    })
}
