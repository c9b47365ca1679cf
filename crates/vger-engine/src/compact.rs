//! `compact`: frees the space of chunks no snapshot uses.
//!
//! Under an exclusive lock: packs not named by any index segment (left by
//! an interrupted backup) are first adopted into the index with today's
//! date; then packs whose chunks are all unused are deleted, and packs
//! whose unused share passes the threshold are repacked by copying their
//! live chunks as they are stored (encrypted pass-through, no decryption).
//! Packs younger than the grace period are never touched. When the storage
//! offers server-side pack work (vger-server), the server copies the
//! chunks from a plan (`server_side`) and nothing is downloaded; the
//! order of writes is the same. Order of writes:
//! new packs, a merged index segment that supersedes all current segments,
//! then deletion of old packs and old segments, so a crash at any point
//! leaves every live chunk indexed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use vger_crypto::ObjectType;
use vger_format::id::{PackId, SegmentId};
use vger_format::index::PackEntry;
use vger_format::pack::PackBuilder;

use crate::index::{load_segments, write_merged_segment, ChunkIndex};
use crate::live::live_chunks;
use crate::lock::{unix_now, RepoLock};
use crate::packs::{pack_entry, stored_packs};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::server_side::{pack_problems, ServerRepacker};
use crate::{snapshots, EngineError, Result};

/// Temporary files younger than this are never removed, whatever the grace
/// period: a writer updates its file's mtime with every write.
pub const TEMP_FILE_MIN_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Repack a pack once this percentage of it is unused.
    pub threshold_pct: u8,
    /// Stop repacking after this many bytes of packs were rewritten.
    pub max_repack_bytes: Option<u64>,
    pub dry_run: bool,
    /// Packs younger than this are left alone.
    pub grace: Duration,
    /// Repack here even when the storage could do it (vger-server).
    pub distrust_server: bool,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            threshold_pct: 10,
            max_repack_bytes: None,
            dry_run: false,
            grace: Duration::from_secs(3 * 3600),
            distrust_server: false,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    pub packs_before: usize,
    pub packs_deleted: usize,
    pub packs_repacked: usize,
    pub packs_written: usize,
    pub packs_adopted: usize,
    pub packs_too_young: usize,
    /// Bytes of packs removed (deleted or repacked).
    pub bytes_removed: u64,
    /// Bytes of new packs written by repacking.
    pub bytes_written: u64,
    pub dry_run: bool,
    pub warnings: Vec<String>,
    /// Temporary files of crashed writers removed (local storage).
    pub temp_files_removed: usize,
}

impl CompactReport {
    pub fn bytes_freed(&self) -> u64 {
        self.bytes_removed.saturating_sub(self.bytes_written)
    }
}

enum Plan {
    Keep,
    Delete,
    /// Copy these blobs (by position in the pack's blob list).
    Repack(Vec<usize>),
}

pub fn compact(repo: &Repository, opts: &CompactOptions) -> Result<CompactReport> {
    let lock = RepoLock::exclusive(repo, "compact")?;
    let temp_files_removed = if opts.dry_run {
        0
    } else {
        // No backup holds a live lock now, but one whose lease lapsed may
        // still be writing: only files untouched for long are taken.
        repo.storage().remove_stale_temp_files(opts.grace.max(TEMP_FILE_MIN_AGE))?
    };
    let segments = load_segments(repo)?;
    let all_segment_ids: Vec<SegmentId> = segments.iter().map(|(id, _)| *id).collect();
    let mut report = CompactReport { dry_run: opts.dry_run, temp_files_removed, ..Default::default() };

    // The segments' pack lists are moved into the plan as they are; only the
    // tree chunks (a small share) go into an index, to read the snapshots.
    // A full chunk index beside the pack lists would double the memory.
    let stored: HashMap<PackId, u64> = stored_packs(repo)?.into_iter().collect();
    let superseded: HashSet<SegmentId> = segments.iter().flat_map(|(_, s)| s.supersedes.iter().copied()).collect();
    let mut known: HashSet<PackId> = HashSet::new();
    let mut entries: Vec<PackEntry> = Vec::new();
    let mut trees = ChunkIndex::default();
    for (id, segment) in segments {
        if superseded.contains(&id) {
            continue;
        }
        for pack in segment.packs {
            // A pack named twice keeps its first entry, as in the index.
            if !known.insert(pack.id) || !stored.contains_key(&pack.id) {
                continue;
            }
            let tree_blobs = pack.blobs.iter().filter(|b| b.blob_type == ObjectType::TreeChunk as u8).copied();
            trees.add_pack(&PackEntry { blobs: tree_blobs.collect(), ..pack });
            entries.push(pack);
        }
    }
    let now = unix_now();
    for (id, size) in &stored {
        if known.contains(id) {
            continue;
        }
        match pack_entry(repo, *id, *size, now) {
            Ok(e) => {
                report.packs_adopted += 1;
                entries.push(e);
            }
            Err(e) => report.warnings.push(format!(
                "pack {} is not in the index and its trailer is unreadable ({e}); left alone",
                id.short()
            )),
        }
    }
    report.packs_before = entries.len();

    let snaps = snapshots::list(repo)?;
    let mut live = live_chunks(repo, &trees, &snaps)?;
    drop(trees);
    let grace = opts.grace.as_secs();
    let mut repack_budget = opts.max_repack_bytes.unwrap_or(u64::MAX);
    let mut plans = Vec::with_capacity(entries.len());
    // Each live chunk is kept in exactly one pack, the first one the plan
    // meets: placing it removes it from `live` (one set instead of two).
    for e in &entries {
        let live_bytes: u64 = e.blobs.iter().filter(|b| live.contains(&b.id)).map(|b| u64::from(b.length)).sum();
        let young = now.saturating_sub(e.created) < grace;
        let unused_pct = 100u64.saturating_sub(live_bytes.saturating_mul(100) / e.size.max(1));
        let plan = if young {
            if live_bytes < e.size {
                report.packs_too_young += 1;
            }
            Plan::Keep
        } else if live_bytes == 0 {
            Plan::Delete
        } else if unused_pct >= u64::from(opts.threshold_pct) && e.size <= repack_budget {
            repack_budget -= e.size;
            let copy = (0..e.blobs.len()).filter(|i| live.contains(&e.blobs[*i].id)).collect();
            Plan::Repack(copy)
        } else {
            Plan::Keep
        };
        if !matches!(plan, Plan::Delete) {
            for b in &e.blobs {
                live.remove(&b.id);
            }
        }
        plans.push(plan);
    }
    for (e, plan) in entries.iter().zip(&plans) {
        match plan {
            Plan::Keep => {}
            Plan::Delete => {
                report.packs_deleted += 1;
                report.bytes_removed += e.size;
            }
            Plan::Repack(_) => {
                report.packs_repacked += 1;
                report.bytes_removed += e.size;
            }
        }
    }
    let nothing_to_do = report.packs_deleted == 0 && report.packs_repacked == 0 && report.packs_adopted == 0;
    if opts.dry_run || nothing_to_do {
        return Ok(report);
    }

    drop(live);

    // Copy live chunks of the packs to repack into new packs.
    let mut new_packs: Vec<PackEntry> = Vec::new();
    let mut rescued: HashSet<PackId> = HashSet::new();
    let mut builder = PackBuilder::with_capacity(repo.pack_target_size() as usize + (1 << 20));
    let service = repo.storage().pack_service().filter(|_| !opts.distrust_server);
    let mut server = service.map(|s| ServerRepacker::new(repo, &lock, s));
    let sources: Vec<(PackId, u64)> =
        entries.iter().zip(&plans).filter(|(_, p)| matches!(p, Plan::Repack(_))).map(|(e, _)| (e.id, e.size)).collect();
    let damaged: HashSet<PackId> = match service {
        Some(s) => {
            pack_problems(repo, Some(s), &sources, &Progress::default())?.into_iter().map(|(id, _)| id).collect()
        }
        None => HashSet::new(),
    };
    for (e, plan) in entries.iter().zip(&plans) {
        match plan {
            Plan::Keep | Plan::Delete => {}
            Plan::Repack(copy) => {
                // Never spread damage: leave a corrupt pack for `check` to report.
                let leave_damaged = |report: &mut CompactReport| {
                    report.warnings.push(format!(
                        "pack {} is damaged (content does not match its id); not repacked, run `vger check`",
                        e.id.short()
                    ));
                };
                if let Some(server) = &mut server {
                    if damaged.contains(&e.id) {
                        leave_damaged(&mut report);
                        rescued.insert(e.id);
                        continue;
                    }
                    for b in copy.iter().filter_map(|i| e.blobs.get(*i)) {
                        if let Some(pack) = server.add(&e.id, b)? {
                            report.bytes_written += pack.size;
                            new_packs.push(pack);
                        }
                    }
                    continue;
                }
                let bytes = repo.storage().get(&e.id.storage_key())?;
                if blake3::hash(&bytes).as_bytes() != &e.id.0 {
                    leave_damaged(&mut report);
                    rescued.insert(e.id);
                    continue;
                }
                for b in copy.iter().filter_map(|i| e.blobs.get(*i)) {
                    let start = b.offset as usize;
                    let sealed = bytes.get(start..start + b.length as usize).ok_or_else(|| {
                        EngineError::Other(format!(
                            "pack {} is shorter than its index says; run `vger check`",
                            e.id.short()
                        ))
                    })?;
                    let ty = ObjectType::from_tag(b.blob_type).unwrap_or(ObjectType::DataChunk);
                    builder.add(b.id, ty, b.raw_length, sealed);
                    if builder.len() as u64 >= repo.pack_target_size() {
                        let full = std::mem::replace(
                            &mut builder,
                            PackBuilder::with_capacity(repo.pack_target_size() as usize),
                        );
                        new_packs.push(store_pack(repo, &lock, full, &mut report)?);
                    }
                }
            }
        }
    }
    if !builder.is_empty() {
        new_packs.push(store_pack(repo, &lock, builder, &mut report)?);
    }
    if let Some(pack) = server.map(ServerRepacker::finish).transpose()?.flatten() {
        report.bytes_written += pack.size;
        new_packs.push(pack);
    }
    report.packs_written = new_packs.len();

    let gone = |e: &PackEntry, plan: &Plan| !matches!(plan, Plan::Keep) && !rescued.contains(&e.id);
    let doomed: Vec<PackId> = entries.iter().zip(&plans).filter(|(e, p)| gone(e, p)).map(|(e, _)| e.id).collect();
    // Moved, not copied: the blob lists of a large index are its bulk.
    let mut kept: Vec<PackEntry> =
        entries.into_iter().zip(&plans).filter(|(e, p)| !gone(e, p)).map(|(e, _)| e).collect();
    kept.extend(new_packs);
    write_replacement_segments(repo, &lock, kept, all_segment_ids.clone())?;
    for id in doomed {
        lock.check_alive()?;
        repo.storage().delete(&id.storage_key())?;
    }
    for id in all_segment_ids {
        repo.storage().delete(&id.storage_key())?;
    }
    Ok(report)
}

/// Blobs per segment written by maintenance, so that no single segment
/// (and its encoding in memory) grows with the repository.
const SEGMENT_MAX_BLOBS: usize = 100_000;

/// Writes `packs` as segments of at most [`SEGMENT_MAX_BLOBS`] blobs; the
/// last one written supersedes `old`. A crash before it leaves the old
/// segments in force beside the new ones (duplicate entries are valid),
/// so no chunk is ever unindexed. Returns the new segments' ids.
pub(crate) fn write_replacement_segments(
    repo: &Repository,
    lock: &RepoLock,
    packs: Vec<PackEntry>,
    old: Vec<SegmentId>,
) -> Result<Vec<SegmentId>> {
    let mut groups: Vec<Vec<PackEntry>> = vec![Vec::new()];
    let mut blobs = 0;
    for p in packs {
        if blobs > 0 && blobs + p.blobs.len() > SEGMENT_MAX_BLOBS {
            groups.push(Vec::new());
            blobs = 0;
        }
        blobs += p.blobs.len();
        if let Some(g) = groups.last_mut() {
            g.push(p);
        }
    }
    let last = groups.len() - 1;
    let mut old = Some(old);
    let mut ids = Vec::with_capacity(groups.len());
    for (i, group) in groups.into_iter().enumerate() {
        lock.check_alive()?;
        let supersedes = if i == last { old.take().unwrap_or_default() } else { Vec::new() };
        ids.push(write_merged_segment(repo.storage(), repo.envelope(), group, supersedes)?);
    }
    Ok(ids)
}

fn store_pack(
    repo: &Repository,
    lock: &RepoLock,
    builder: PackBuilder,
    report: &mut CompactReport,
) -> Result<PackEntry> {
    let pack = builder.finish(repo.envelope())?;
    lock.check_alive()?;
    repo.storage().put(&pack.id.storage_key(), &pack.bytes)?;
    report.bytes_written += pack.bytes.len() as u64;
    let mut entry = pack.entry;
    entry.created = unix_now();
    Ok(entry)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use vger_format::id::{ChunkId, PackId, INDEX_PREFIX};
    use vger_format::index::{BlobEntry, PackEntry};

    use super::{write_replacement_segments, SEGMENT_MAX_BLOBS};
    use crate::index::{write_segment, ChunkIndex};
    use crate::lock::RepoLock;
    use crate::repository::{InitOptions, Repository};

    fn id(n: u64, salt: u8) -> [u8; 32] {
        let mut b = [salt; 32];
        b[..8].copy_from_slice(&n.to_le_bytes());
        b
    }

    /// A large index is written as several bounded segments; the last one
    /// supersedes the old segments and every chunk stays indexed.
    #[test]
    fn replacement_segments_are_bounded_and_supersede_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(vger_storage::LocalStorage::create(dir.path()).unwrap());
        let opts = InitOptions { kdf: vger_crypto::KdfParams::insecure_fast(), ..InitOptions::default() };
        let repo = Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
        let per_pack = 1000u64;
        let packs: Vec<PackEntry> = (0..250u64)
            .map(|p| PackEntry {
                id: PackId(id(p, 1)),
                size: per_pack * 100,
                created: 1,
                blobs: (0..per_pack)
                    .map(|i| BlobEntry {
                        id: ChunkId(id(p * per_pack + i, 2)),
                        blob_type: 1,
                        offset: i * 100,
                        length: 100,
                        raw_length: 60,
                    })
                    .collect(),
            })
            .collect();
        let old = write_segment(repo.storage(), repo.envelope(), packs[..3].to_vec()).unwrap();
        let lock = RepoLock::exclusive(&repo, "test").unwrap();
        let new = write_replacement_segments(&repo, &lock, packs, vec![old]).unwrap();
        let blobs = 250 * per_pack as usize;
        assert_eq!(new.len(), blobs.div_ceil(SEGMENT_MAX_BLOBS), "segments: {new:?}");
        assert_eq!(repo.storage().list(INDEX_PREFIX).unwrap().len(), new.len() + 1);
        let index = ChunkIndex::load(&repo).unwrap();
        assert_eq!(index.len(), blobs);
        assert!(!index.segments().contains(&old), "the old segment is superseded");
        assert_eq!(index.segments().len(), new.len());
    }
}
