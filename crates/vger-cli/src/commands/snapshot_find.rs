//! `vger snapshot find`: paths matching a name, path, type, size or time
//! across snapshots, grouped by path with the history of each.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use globset::{Glob, GlobBuilder, GlobMatcher};
use vger_engine::find::{find_named, FindChange};
use vger_engine::index::ChunkIndex;
use vger_engine::snapshots::{self, SnapshotInfo};
use vger_engine::tree::{SnapshotTree, TreeStore, DEFAULT_CACHE_BYTES};
use vger_format::entry::EntryKind;
use vger_format::tree::TreeEntry;

use crate::cli::SnapshotFindArgs;
use crate::context::Context;
use crate::output::{bytes, short_time};
use crate::Outcome;

/// Everything an entry must satisfy.
struct Filter {
    name: Vec<GlobMatcher>,
    /// `--name` patterns without wildcards: the name itself (compared as
    /// bytes, without the glob engine, since it runs on every name).
    exact: Vec<Vec<u8>>,
    contains: Option<Vec<u8>>,
    path: Option<GlobMatcher>,
    kind: Option<EntryKind>,
    larger: Option<u64>,
    smaller: Option<u64>,
    newer: Option<i64>,
    older: Option<i64>,
}

fn glob(pattern: &str, ignore_case: bool) -> Result<GlobMatcher> {
    let glob = GlobBuilder::new(pattern)
        .case_insensitive(ignore_case)
        .literal_separator(true)
        .build()
        .with_context(|| format!("`{pattern}` is not a valid glob"))?;
    Ok(glob.compile_matcher())
}

/// `14d`-style periods back from now, or a date (`2026-01-31`, RFC 3339).
fn time_limit(text: &str) -> Result<i64> {
    let now = chrono::Utc::now();
    let at = if let Ok(p) = vger_config::parse_period(text) {
        let days = match p.unit {
            vger_config::PeriodUnit::Hours => {
                return Ok(now.timestamp_nanos_opt().unwrap_or(0) - i64::from(p.count) * 3_600_000_000_000)
            }
            vger_config::PeriodUnit::Days => i64::from(p.count),
            vger_config::PeriodUnit::Weeks => i64::from(p.count) * 7,
            vger_config::PeriodUnit::Months => i64::from(p.count) * 30,
            vger_config::PeriodUnit::Years => i64::from(p.count) * 365,
        };
        now - chrono::Duration::days(days)
    } else if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or(now)
    } else {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| anyhow::anyhow!("`{text}` is neither a period (14d, 2w, 6m) nor a date (2026-01-31)"))?
    };
    Ok(at.timestamp_nanos_opt().unwrap_or(0))
}

impl Filter {
    fn new(args: &SnapshotFindArgs) -> Result<Self> {
        let mut name = Vec::new();
        let mut contains = None;
        if let Some(p) = &args.pattern {
            if p.contains(['*', '?', '[']) {
                name.push(glob(p, false)?);
            } else {
                contains = Some(p.as_bytes().to_vec());
            }
        }
        let mut exact = Vec::new();
        if let Some(g) = &args.name {
            if g.contains(['*', '?', '[', ']', '{', '}', '\\']) {
                name.push(glob(g, false)?);
            } else {
                exact.push(g.as_bytes().to_vec());
            }
        }
        if let Some(g) = &args.iname {
            name.push(glob(g, true)?);
        }
        let kind = match args.kind.as_deref() {
            None => None,
            Some("f") => Some(EntryKind::File),
            Some("d") => Some(EntryKind::Dir),
            Some("l") => Some(EntryKind::Symlink),
            Some(other) => anyhow::bail!("--type {other}: use f (files), d (directories) or l (symlinks)"),
        };
        let size =
            |s: &Option<String>| s.as_deref().map(vger_config::parse_size).transpose().map_err(anyhow::Error::msg);
        Ok(Filter {
            name,
            exact,
            contains,
            path: args
                .path
                .as_deref()
                .map(|p| Glob::new(p.trim_start_matches('/')).map(|g| g.compile_matcher()))
                .transpose()?,
            kind,
            larger: size(&args.larger)?,
            smaller: size(&args.smaller)?,
            newer: args.newer.as_deref().map(time_limit).transpose()?,
            older: args.older.as_deref().map(time_limit).transpose()?,
        })
    }

    /// The part of [`Filter::matches`] that looks at the name only.
    fn name_matches(&self, raw: &[u8]) -> bool {
        self.exact.iter().all(|n| n.as_slice() == raw)
            && self.contains.as_ref().is_none_or(|c| raw.windows(c.len()).any(|w| w == c.as_slice()))
            && (self.name.is_empty() || {
                let name = String::from_utf8_lossy(raw);
                self.name.iter().all(|g| g.is_match(name.as_ref()))
            })
    }

    fn matches(&self, path: &[u8], e: &TreeEntry) -> bool {
        let kind = match e.kind {
            EntryKind::Hardlink => EntryKind::File,
            k => k,
        };
        self.name_matches(&e.name)
            && self.path.as_ref().is_none_or(|g| g.is_match(String::from_utf8_lossy(path).as_ref()))
            && self.kind.is_none_or(|k| k == kind)
            && self.larger.is_none_or(|n| e.size > n)
            && self.smaller.is_none_or(|n| e.size < n)
            && self.newer.is_none_or(|t| e.mtime >= t)
            && self.older.is_none_or(|t| e.mtime < t)
    }
}

fn change_name(c: FindChange) -> &'static str {
    match c {
        FindChange::Added => "added",
        FindChange::Modified => "modified",
        FindChange::Metadata => "metadata",
        FindChange::Unchanged => "unchanged",
        FindChange::Removed => "removed",
    }
}

/// The snapshots to search, oldest first.
fn selected(repo: &vger_engine::repository::Repository, args: &SnapshotFindArgs) -> Result<Vec<SnapshotInfo>> {
    let mut list = if args.ids.is_empty() {
        snapshots::list(repo)?
    } else {
        let mut l = args.ids.iter().map(|i| snapshots::find(repo, i)).collect::<Result<Vec<_>, _>>()?;
        l.sort_by(|a, b| a.snapshot.time.cmp(&b.snapshot.time).then(a.id.cmp(&b.id)));
        l
    };
    if let Some(label) = &args.source {
        list.retain(|s| &s.snapshot.source_label == label);
    }
    if let Some(n) = args.last {
        let skip = list.len().saturating_sub(n);
        list.drain(..skip);
    }
    Ok(list)
}

pub fn run(ctx: &Context, args: &SnapshotFindArgs) -> Result<Outcome> {
    let filter = Filter::new(args)?;
    super::each_repository(ctx, |repo_cfg| {
        let repo = ctx.open(repo_cfg)?;
        let snaps = selected(&repo, args)?;
        let store = TreeStore::new(&repo, Arc::new(ChunkIndex::load_trees(&repo)?), DEFAULT_CACHE_BYTES);
        let trees: Vec<SnapshotTree> = snaps.iter().map(|s| SnapshotTree::open(&store, s)).collect();
        let found = find_named(&trees, &|name| filter.name_matches(name), &|path, e| filter.matches(path, e))?;
        if ctx.json {
            let matches: Vec<serde_json::Value> = found
                .iter()
                .map(|f| {
                    let versions: Vec<serde_json::Value> = f
                        .versions
                        .iter()
                        .filter_map(|v| {
                            let s = snaps.get(v.snapshot)?;
                            Some(serde_json::json!({
                                "snapshot": s.id.to_hex(),
                                "time": s.snapshot.time,
                                "size": v.size,
                                "mtime": chrono::DateTime::from_timestamp_nanos(v.mtime)
                                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                                "change": change_name(v.change),
                            }))
                        })
                        .collect();
                    serde_json::json!({ "path": String::from_utf8_lossy(&f.path), "versions": versions })
                })
                .collect();
            crate::output::print_json(&serde_json::json!({ "matches": matches }))?;
        } else {
            for f in &found {
                println!("{}", String::from_utf8_lossy(&f.path));
                let mut unchanged = 0;
                for v in &f.versions {
                    let Some(s) = snaps.get(v.snapshot) else { continue };
                    if v.change == FindChange::Unchanged {
                        unchanged += 1;
                        continue;
                    }
                    let size = if v.change == FindChange::Removed { String::new() } else { bytes(v.size) };
                    println!(
                        "  {}  {}  {:<9} {size}",
                        short_time(&s.snapshot.time),
                        snapshots::short_id(&s.id),
                        change_name(v.change)
                    );
                }
                if unchanged > 0 {
                    println!("  (unchanged in {unchanged} more)");
                }
            }
        }
        if found.is_empty() {
            anyhow::bail!("no path matches in the {} snapshot(s) searched", snaps.len());
        }
        Ok(Outcome::Ok)
    })
}
