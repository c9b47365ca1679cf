//! `check`: is every snapshot restorable?
//!
//! Structure (always): every index segment reads; every indexed pack exists
//! with the size the index says; every snapshot reads; every tree chunk
//! reads; every data chunk a snapshot references is in the index and in a
//! pack that exists. Pack contents are not downloaded for this, only the
//! small tree chunks. On vger-server the server also hashes every pack
//! against its id and checks its framing (`server_side`); with
//! `distrust_server` the client downloads each pack to do that itself.
//!
//! With `verify_data`: every pack (or `max_percent` of them) is downloaded
//! once, its hash checked against its id, its trailer compared with the
//! index, and every chunk decrypted, decompressed and re-hashed. Damaged
//! chunks are then reported with the snapshots and paths that use them.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use vger_format::id::{ChunkId, PackId, SegmentId};

use crate::blob::open_chunk;
use crate::chunk_table::{for_each_listed_within, list_segments, ChunkTable, TableBuilder, SEGMENT_BUDGET};
use crate::index::IdSet;
use crate::lock::RepoLock;
use crate::pack_stream::stream_pack;
use crate::packs::stored_packs;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::server_side::pack_problems;
use crate::snapshots::{self, SnapshotInfo};
use crate::tree::{dir, TreeStore, Walk};
use crate::{Notice, Result};

/// Problems reported per snapshot before the rest are summarised.
const MAX_PATHS_PER_SNAPSHOT: usize = 20;

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub verify_data: bool,
    /// Check only this share of packs and snapshots (randomly chosen).
    pub max_percent: Option<f64>,
    /// Check pack hashes and framing here instead of asking vger-server
    /// (downloads every pack; implied by `verify_data`).
    pub distrust_server: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub errors: Vec<crate::Notice>,
    pub warnings: Vec<crate::Notice>,
    pub segments: usize,
    pub packs: usize,
    pub packs_verified: usize,
    pub chunks_verified: u64,
    pub snapshots_checked: usize,
    /// Snapshots that cannot be fully restored, by id.
    pub damaged_snapshots: Vec<String>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    fn error(&mut self, text: String) {
        self.errors.push(Notice::Text(text));
    }
}

/// What a structural pass learned, reused by repair.
pub(crate) struct RepoState {
    pub all_segment_ids: Vec<SegmentId>,
    pub index: ChunkTable,
    /// Reads snapshots' trees through the tree objects of `index`.
    pub trees: TreeStore,
    /// Directories whose whole subtree was found intact: another snapshot
    /// (or name) that holds them is not walked again. Cleared whenever
    /// the state above changes.
    pub clean_dirs: std::sync::Mutex<HashSet<ChunkId>>,
    pub stored: HashMap<PackId, u64>,
    /// Packs the index names that are missing or of the wrong size.
    pub bad_packs: HashSet<PackId>,
    /// Chunks found damaged by data verification.
    pub bad_chunks: IdSet,
    /// Packs whose content does not match their id (data verification).
    pub damaged_packs: HashSet<PackId>,
}

pub fn check(repo: &Repository, opts: &CheckOptions, progress: &Progress) -> Result<CheckReport> {
    let _lock = RepoLock::shared(repo, "check")?;
    let mut report = CheckReport::default();
    let mut state = scan_structure(repo, &mut report)?;
    if opts.verify_data {
        verify_packs(repo, &mut state, opts.max_percent, &mut report, progress)?;
    } else {
        verify_pack_hashes(repo, &mut state, opts, &mut report, progress)?;
    }
    check_snapshots(repo, &state, opts.max_percent, &mut report, progress)?;
    Ok(report)
}

/// Reads every segment on its own (one bad segment does not hide the
/// others) and compares the index with the packs in storage.
pub(crate) fn scan_structure(repo: &Repository, report: &mut CheckReport) -> Result<RepoState> {
    // A few segments at a time: each is copied into the table and freed.
    let listed = list_segments(repo)?;
    let all_segment_ids: Vec<SegmentId> = listed.iter().map(|s| s.id).collect();
    let mut builder = TableBuilder::default();
    for_each_listed_within(repo, &listed, SEGMENT_BUDGET, |id, segment| {
        match segment {
            Ok(seg) => builder.add_segment(id, seg, |_| true),
            Err(e) => report.errors.push(Notice::SegmentUnreadable { segment: id.short(), why: e.to_string() }),
        }
        Ok(())
    })?;
    report.segments = all_segment_ids.len();
    let index = builder.finish();
    let stored: HashMap<PackId, u64> = stored_packs(repo)?.into_iter().collect();
    report.packs = stored.len();
    let mut bad_packs = HashSet::new();
    for p in index.packs() {
        match stored.get(&p.id) {
            None => {
                report.error(format!("pack {} is missing (the index lists it)", p.id.short()));
                bad_packs.insert(p.id);
            }
            Some(size) if *size != p.size => {
                report.error(format!(
                    "pack {} has {size} bytes, the index says {} (truncated or damaged)",
                    p.id.short(),
                    p.size
                ));
                bad_packs.insert(p.id);
            }
            Some(_) => {}
        }
    }
    let indexed: HashSet<PackId> = index.packs().iter().map(|p| p.id).collect();
    let orphans = stored.keys().filter(|id| !indexed.contains(id)).count();
    if orphans > 0 {
        report.warnings.push(Notice::UnindexedPacks { count: orphans });
    }
    Ok(RepoState {
        all_segment_ids,
        trees: tree_store(repo, &index),
        clean_dirs: Default::default(),
        index,
        stored,
        bad_packs,
        bad_chunks: IdSet::default(),
        damaged_packs: HashSet::new(),
    })
}

/// Picks `percent` of `items` at random (all when `None`).
fn sample<T>(mut items: Vec<T>, percent: Option<f64>) -> Vec<T> {
    let Some(p) = percent else { return items };
    let keep = ((items.len() as f64) * p.clamp(0.0, 100.0) / 100.0).ceil() as usize;
    let mut seed = [0u8; 8];
    let _ = vger_crypto::random_bytes(&mut seed);
    let mut x = u64::from_le_bytes(seed) | 1;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        items.swap(i, (x % (i as u64 + 1)) as usize);
    }
    items.truncate(keep);
    items
}

fn verify_packs(
    repo: &Repository,
    state: &mut RepoState,
    percent: Option<f64>,
    report: &mut CheckReport,
    progress: &Progress,
) -> Result<()> {
    // Positions grouped by pack (4 bytes a chunk), not lists of IDs.
    let order = state.index.positions_by_pack();
    let mut runs: Vec<Option<std::ops::Range<usize>>> = vec![None; state.index.packs().len()];
    let mut start = 0;
    for run in order.chunk_by(|a, b| pack_at(&state.index, *a) == pack_at(&state.index, *b)) {
        if let Some(r) = run.first().and_then(|p| pack_at(&state.index, *p)).and_then(|p| runs.get_mut(p as usize)) {
            *r = Some(start..start + run.len());
        }
        start += run.len();
    }
    let candidates: Vec<(usize, PackId)> = state
        .index
        .packs()
        .iter()
        .enumerate()
        .filter(|(_, p)| !state.bad_packs.contains(&p.id))
        .map(|(i, p)| (i, p.id))
        .collect();
    let chosen = sample(candidates, percent);
    let total: u64 = chosen.iter().filter_map(|(_, id)| state.stored.get(id)).sum();
    progress.set_totals(chosen.len() as u64, total);
    let cap = repo.max_blob_size();
    for (position, pack_id) in chosen {
        progress.stop_if_cancelled()?;
        progress.set_current(&pack_id.storage_key());
        let run = runs.get(position).cloned().flatten().and_then(|r| order.get(r)).unwrap_or_default();
        let rows = run.iter().filter_map(|p| state.index.row(*p as usize));
        let size = state.stored.get(&pack_id).copied().unwrap_or_default();
        let mut bad = Vec::new();
        let mut verified = 0;
        let streamed = stream_pack(
            repo,
            &pack_id,
            size,
            rows.clone(),
            |row, sealed| {
                let ok = sealed.is_some_and(|sealed| {
                    let (key, ty) = (repo.chunk_id_key(), row.object_type());
                    open_chunk(repo.envelope(), key, ty, &row.id, sealed.to_vec(), cap).is_ok()
                });
                verified += 1;
                if !ok {
                    bad.push(row.id);
                }
            },
            |n| progress.add_bytes(n),
        );
        progress.add_files(1);
        match streamed {
            Err(e) => {
                report.error(format!("pack {} cannot be read: {e}", pack_id.short()));
                state.bad_chunks.extend(rows.map(|r| r.id));
                continue;
            }
            Ok(Some(e)) => {
                report.error(format!("pack {} is damaged: {e}", pack_id.short()));
                state.damaged_packs.insert(pack_id);
            }
            Ok(None) => {}
        }
        report.packs_verified += 1;
        report.chunks_verified += verified;
        state.bad_chunks.extend(bad);
    }
    if !state.bad_chunks.is_empty() {
        report.error(format!(
            "{} chunk(s) are damaged (they fail decryption or do not match their id)",
            state.bad_chunks.len()
        ));
    }
    Ok(())
}

fn pack_at(index: &ChunkTable, position: u32) -> Option<u32> {
    index.row(position as usize).map(|r| r.pack)
}

/// Pack hashes and framing without decrypting chunks: by the server when
/// it offers it, here with `distrust_server`, not at all on plain storage.
fn verify_pack_hashes(
    repo: &Repository,
    state: &mut RepoState,
    opts: &CheckOptions,
    report: &mut CheckReport,
    progress: &Progress,
) -> Result<()> {
    let service = repo.storage().pack_service().filter(|_| !opts.distrust_server);
    if service.is_none() && !opts.distrust_server {
        return Ok(());
    }
    let candidates: Vec<(PackId, u64)> =
        state.index.packs().iter().filter(|p| !state.bad_packs.contains(&p.id)).map(|p| (p.id, p.size)).collect();
    let packs = sample(candidates, opts.max_percent);
    progress.set_totals(packs.len() as u64, packs.iter().map(|p| p.1).sum());
    for (id, problem) in pack_problems(repo, service, &packs, progress)? {
        report.error(format!("pack {} is damaged: {problem}", id.short()));
        state.bad_packs.insert(id);
    }
    report.packs_verified += packs.len();
    Ok(())
}

/// Data verification of every pack, for repair (which then drops damaged
/// chunks from the rebuilt index).
pub(crate) fn verify_packs_for_repair(
    repo: &Repository,
    state: &mut RepoState,
    report: &mut CheckReport,
    progress: &Progress,
) -> Result<()> {
    verify_packs(repo, state, None, report, progress)
}

fn check_snapshots(
    repo: &Repository,
    state: &RepoState,
    percent: Option<f64>,
    report: &mut CheckReport,
    progress: &Progress,
) -> Result<()> {
    let ids = sample(snapshots::list_ids(repo)?, percent);
    for id in ids {
        progress.stop_if_cancelled()?;
        let snap = match snapshots::load(repo, id) {
            Ok(s) => s,
            Err(e) => {
                report.error(format!("snapshot {} is unreadable: {e}", snapshots::short_id(&id)));
                report.damaged_snapshots.push(id.to_hex());
                continue;
            }
        };
        report.snapshots_checked += 1;
        let problems = snapshot_problems(state, &snap);
        if !problems.is_empty() {
            report.damaged_snapshots.push(id.to_hex());
            let label = format!(
                "snapshot {} ({}, {})",
                snapshots::short_id(&id),
                snap.snapshot.source_label,
                snap.snapshot.time
            );
            for p in problems.iter().take(MAX_PATHS_PER_SNAPSHOT) {
                report.error(format!("{label}: {p}"));
            }
            if problems.len() > MAX_PATHS_PER_SNAPSHOT {
                report
                    .error(format!("{label}: ... and {} more damaged paths", problems.len() - MAX_PATHS_PER_SNAPSHOT));
            }
        }
    }
    Ok(())
}

/// Decoded directories kept while snapshots are checked.
const TREE_CACHE_BYTES: u64 = 32 << 20;

/// A store reading the tree objects `index` names.
pub(crate) fn tree_store(repo: &Repository, index: &ChunkTable) -> TreeStore {
    TreeStore::new(repo, std::sync::Arc::new(index.tree_index()), TREE_CACHE_BYTES)
}

/// Paths of one snapshot whose data is missing or damaged. A directory
/// found intact before (in this snapshot or another) is not walked again.
pub(crate) fn snapshot_problems(state: &RepoState, snap: &SnapshotInfo) -> Vec<String> {
    let mut problems = Vec::new();
    let chunk_state = |id: &ChunkId| -> Option<&'static str> {
        match state.index.get(id).map(|(_, row)| state.index.pack_of(row)) {
            None => Some("missing from the index"),
            Some(Some(p)) if state.bad_packs.contains(&p.id) => Some("in a missing or damaged pack"),
            Some(_) if state.bad_chunks.contains(id) => Some("damaged"),
            Some(_) => None,
        }
    };
    // Whether directory `id` and its pages can be read; a problem if not.
    let readable = |id: &ChunkId, path: &[u8], problems: &mut Vec<String>| -> bool {
        let shown = if path.is_empty() { "the top directory".to_string() } else { lossy(path) };
        let objects = match chunk_state(id) {
            Some(why) => Err(format!("tree object {} is {why}", id.short())),
            None => dir::object_ids(&state.trees, id).map_err(|e| e.to_string()),
        };
        let bad = objects.and_then(|ids| match ids.iter().find_map(|o| chunk_state(o).map(|why| (o, why))) {
            Some((o, why)) => Err(format!("tree object {} is {why}", o.short())),
            None => Ok(()),
        });
        match bad {
            Ok(()) => true,
            Err(why) => {
                problems.push(format!("{shown}: cannot be read ({why})"));
                false
            }
        }
    };
    let mut clean = crate::parallel::lock(&state.clean_dirs);
    let root = snap.snapshot.root;
    if clean.contains(&root) || !readable(&root, b"", &mut problems) {
        return problems;
    }
    // Directories being walked: path, tree ID, problems before entering.
    let mut open: Vec<OpenDir> = vec![OpenDir { path: Vec::new(), id: root, before: 0 }];
    let mut walk = Walk::new(state.trees.clone(), Vec::new(), root);
    while let Some(item) = walk.next() {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                problems.push(format!("its file tree is unreadable: {e}"));
                // Nothing open may count as intact now.
                open.iter_mut().for_each(|o| o.before = usize::MAX);
                continue;
            }
        };
        close_dirs(Some(&item.path), &mut open, problems.len(), &mut clean);
        if let Some(why) = item.entry.chunks.iter().find_map(|c| chunk_state(c.id())) {
            problems.push(format!("{}: data {why}", lossy(&item.path)));
        }
        if let Some(tree) = item.entry.tree {
            if clean.contains(&tree) || !readable(&tree, &item.path, &mut problems) {
                walk.skip_subtree();
            } else {
                open.push(OpenDir { path: item.path.clone(), id: tree, before: problems.len() });
            }
        }
    }
    close_dirs(None, &mut open, problems.len(), &mut clean);
    problems
}

/// A directory being checked, and the number of problems before it.
struct OpenDir {
    path: Vec<u8>,
    id: ChunkId,
    before: usize,
}

/// Closes the open directories `path` is not inside (all of them for
/// `None`); one that added no problem is intact.
fn close_dirs(path: Option<&[u8]>, open: &mut Vec<OpenDir>, problems: usize, clean: &mut HashSet<ChunkId>) {
    while let Some(dir) = open.last() {
        let inside = path
            .is_some_and(|p| dir.path.is_empty() || (p.starts_with(&dir.path) && p.get(dir.path.len()) == Some(&b'/')));
        if inside {
            break;
        }
        if problems == dir.before {
            clean.insert(dir.id);
        }
        open.pop();
    }
}

fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}
