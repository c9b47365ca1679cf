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
//!
//! The index is not taken on trust where trusting it could lose data: a
//! location of a chunk in use is dropped only once the copy kept is proven
//! ([`copies`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use vger_crypto::ObjectType;
use vger_format::id::{PackId, SegmentId};
use vger_format::index::PackEntry;
use vger_format::pack::{max_overhead, PackBuilder};

mod copies;

use crate::chunk_table::{
    for_each_listed_within, list_segments, read_segment, Bits, ChunkTable, Row, TableBuilder, SEGMENT_BUDGET,
};
use crate::index::write_merged_segment;
use crate::live::live_positions;
use crate::lock::{unix_now, RepoLock};
use crate::packs::{pack_entry, stored_packs};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::server_side::{pack_problems, ServerRepacker};
use crate::{snapshots, EngineError, Result};
use copies::Copies;

/// Temporary files younger than this are never removed, whatever the grace
/// period: a writer updates its file's mtime with every write.
pub const TEMP_FILE_MIN_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Repack a pack once this percentage of it is held by blobs that no
    /// snapshot needs (its header and trailer do not count).
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
    pub warnings: Vec<crate::Notice>,
    /// Temporary files of crashed writers removed (local storage).
    pub temp_files_removed: usize,
    /// Claimed locations of chunks that did not hold them (forged or
    /// damaged), left out of the new index.
    pub copies_refused: usize,
}

impl CompactReport {
    pub fn bytes_freed(&self) -> u64 {
        self.bytes_removed.saturating_sub(self.bytes_written)
    }
}

enum Plan {
    Keep,
    Delete,
    /// Copy the live chunks whose location is this pack.
    Repack,
}

/// Compacts `repo`. Once `progress` is cancelled, compact stops at its
/// next safe point: while it plans, before anything is written; while it
/// repacks, between packs, and then commits what it copied (a segment
/// that indexes the new packs) and deletes only the packs fully replaced.
pub fn compact(repo: &Repository, opts: &CompactOptions, progress: &Progress) -> Result<CompactReport> {
    let lock = RepoLock::exclusive(repo, "compact")?;
    let temp_files_removed = if opts.dry_run {
        0
    } else {
        // No backup holds a live lock now, but one whose lease lapsed may
        // still be writing: only files untouched for long are taken.
        repo.storage().remove_stale_temp_files(opts.grace.max(TEMP_FILE_MIN_AGE))?
    };
    let mut report = CompactReport { dry_run: opts.dry_run, temp_files_removed, ..Default::default() };

    // The chunk table of the stored packs, one segment at a time; packs no
    // live segment names are adopted from their trailers, listed last.
    let stored: HashMap<PackId, u64> = stored_packs(repo)?.into_iter().collect();
    let listed = list_segments(repo)?;
    let all_segment_ids: Vec<SegmentId> = listed.iter().map(|s| s.id).collect();
    let mut builder = TableBuilder::default();
    builder.keep_hidden_rows();
    for_each_listed_within(repo, &listed, SEGMENT_BUDGET, |id, segment| {
        builder.add_segment(id, segment?, |p| stored.contains_key(&p.id));
        Ok(())
    })?;
    let known = builder.named_packs();
    let now = unix_now();
    let mut adopted: Vec<PackEntry> = Vec::new();
    for (id, size) in &stored {
        if known.contains(id) {
            continue;
        }
        match pack_entry(repo, *id, *size, now) {
            Ok(e) => {
                report.packs_adopted += 1;
                builder.add_pack(&e);
                adopted.push(e);
            }
            Err(e) => report.warnings.push(crate::Notice::Text(format!(
                "pack {} is not in the index and its trailer is unreadable ({e}); left alone",
                id.short()
            ))),
        }
    }
    drop(known);
    let mut table = builder.finish();
    report.packs_before = table.packs().len();

    // Each chunk has one row, in the first pack listed that holds it: the
    // pack it is kept in. Copies in later packs count as unused there,
    // once the kept one is proven (see `copies`).
    let mut copies = Copies::new(repo, &table);
    copies.prove_tree_duplicates(&mut table)?;
    let mut unindexed = HashSet::new();
    let live = live_positions(repo, &table, &snapshots::list(repo)?, &mut unindexed)?;
    copies.prove_duplicates(&mut table, &live)?;
    let mut plans = plan(&table, &live, &copies, opts, now, &mut report);
    loop {
        let doomed: Vec<u32> = (0..plans.len() as u32)
            .filter(|p| !matches!(plans.get(*p as usize), Some(Plan::Keep)) && !copies.was_inspected(*p))
            .collect();
        if doomed.is_empty() || !copies.inspect(&mut table, &live, &unindexed, &doomed)? {
            break;
        }
        plans = plan(&table, &live, &copies, opts, now, &mut report);
    }
    let fixes = copies.index_fixes(&table);
    report.copies_refused = copies.refused();
    report.warnings.extend(copies.warnings.drain(..).map(crate::Notice::Text));
    drop(copies);
    let nothing_to_do =
        report.packs_deleted == 0 && report.packs_repacked == 0 && report.packs_adopted == 0 && fixes.is_empty();
    if opts.dry_run || nothing_to_do {
        return Ok(report);
    }
    progress.stop_if_cancelled()?;

    // What to copy, by pack and offset; the table is freed before packs
    // are read and written.
    let mut copy: Vec<Row> = table
        .rows()
        .iter()
        .enumerate()
        .filter(|(pos, row)| live.get(*pos) && matches!(plans.get(row.pack as usize), Some(Plan::Repack)))
        .map(|(_, row)| *row)
        .collect();
    copy.sort_unstable_by_key(|row| (row.pack, row.offset));
    let packs = table.packs().to_vec();
    let live_segments = table.segments().to_vec();
    drop(live);
    drop(table);

    // Copy live chunks of the packs to repack into new packs, whose index
    // entries are written as segments fill (they supersede nothing yet).
    let mut segments = SegmentWriter::new(repo, &lock, all_segment_ids.clone());
    let mut rescued: HashSet<PackId> = HashSet::new();
    let mut builder = PackBuilder::with_capacity(repo.pack_target_size() as usize + (1 << 20));
    let service = repo.storage().pack_service().filter(|_| !opts.distrust_server);
    let mut server = service.map(|s| ServerRepacker::new(repo, &lock, s));
    let sources: Vec<(PackId, u64)> =
        packs.iter().zip(&plans).filter(|(_, p)| matches!(p, Plan::Repack)).map(|(e, _)| (e.id, e.size)).collect();
    progress.set_totals(sources.len() as u64, sources.iter().map(|(_, size)| size).sum());
    let damaged: HashSet<PackId> = match service {
        Some(s) => {
            pack_problems(repo, Some(s), &sources, &Progress::default())?.into_iter().map(|(id, _)| id).collect()
        }
        None => HashSet::new(),
    };
    let mut stopped_early = false;
    for group in copy.chunk_by(|a, b| a.pack == b.pack) {
        let Some(e) = group.first().and_then(|row| packs.get(row.pack as usize)) else { continue };
        if progress.cancelled() {
            // Kept as it is: its chunks were not copied.
            stopped_early = true;
            rescued.insert(e.id);
            continue;
        }
        progress.set_current(&e.id.storage_key());
        progress.add_files(1);
        progress.add_bytes(e.size);
        let blobs = group.iter().map(Row::blob_entry);
        // Never spread damage: leave a corrupt pack for `check` to report.
        let leave_damaged = |report: &mut CompactReport| {
            report.warnings.push(crate::Notice::DamagedPackLeft { pack: e.id.short() });
        };
        if let Some(server) = &mut server {
            if damaged.contains(&e.id) {
                leave_damaged(&mut report);
                rescued.insert(e.id);
                continue;
            }
            for b in blobs {
                if let Some(pack) = server.add(&e.id, &b)? {
                    report.bytes_written += pack.size;
                    report.packs_written += 1;
                    segments.push(pack)?;
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
        for b in blobs {
            let start = b.offset as usize;
            let sealed = bytes
                .get(start..start + b.length as usize)
                .ok_or_else(|| EngineError::PackTooShort { pack: e.id.short() })?;
            let ty = ObjectType::from_tag(b.blob_type).unwrap_or(ObjectType::DataChunk);
            builder.add(b.id, ty, b.raw_length, sealed);
            if builder.len() as u64 >= repo.pack_target_size() {
                let full =
                    std::mem::replace(&mut builder, PackBuilder::with_capacity(repo.pack_target_size() as usize));
                segments.push(store_pack(repo, &lock, full, &mut report)?)?;
            }
        }
    }
    drop(copy);
    if !builder.is_empty() {
        segments.push(store_pack(repo, &lock, builder, &mut report)?)?;
    }
    if let Some(pack) = server.map(ServerRepacker::finish).transpose()?.flatten() {
        report.bytes_written += pack.size;
        report.packs_written += 1;
        segments.push(pack)?;
    }

    // Then the kept packs' entries as the live segments list them (read
    // again, one at a time) and the adopted ones.
    let gone = |plan: &Plan, id: &PackId| !matches!(plan, Plan::Keep) && !rescued.contains(id);
    let doomed: Vec<PackId> =
        packs.iter().zip(&plans).filter(|(p, plan)| gone(plan, &p.id)).map(|(p, _)| p.id).collect();
    // Each kept pack with the age the plan judged it by (the youngest any
    // segment claims), which the new index keeps for the next run.
    let mut kept: HashMap<PackId, u64> =
        packs.iter().zip(&plans).filter(|(p, plan)| !gone(plan, &p.id)).map(|(p, _)| (p.id, p.created)).collect();
    drop(packs);
    for id in live_segments {
        for pack in read_segment(repo, id)?.packs {
            // A pack named twice keeps its first entry, as in the table.
            if let Some(created) = kept.remove(&pack.id) {
                segments.push(PackEntry { created, ..fixes.apply(pack) })?;
            }
        }
    }
    for pack in adopted {
        if let Some(created) = kept.remove(&pack.id) {
            segments.push(PackEntry { created, ..fixes.apply(pack) })?;
        }
    }
    segments.finish()?;
    for id in doomed {
        lock.check_alive()?;
        repo.storage().delete(&id.storage_key())?;
    }
    for id in all_segment_ids {
        repo.storage().delete(&id.storage_key())?;
    }
    if stopped_early {
        return Err(EngineError::Cancelled);
    }
    Ok(report)
}

/// What to do with each pack of `table`, filling the counts of `report`.
/// Packs younger than the grace period and packs `copies` pinned are kept.
fn plan(
    table: &ChunkTable,
    live: &Bits,
    copies: &Copies<'_>,
    opts: &CompactOptions,
    now: u64,
    report: &mut CompactReport,
) -> Vec<Plan> {
    // Per pack: bytes of blobs a snapshot needs, and unused bytes: blobs
    // none needs, plus whatever the pack holds beyond its listed blobs and
    // the most an honest header, trailer and footer take (`max_overhead`):
    // padding a hostile client wrote, or copies of chunks the index finds
    // elsewhere. The honest overhead itself is not unused, or a pack of a
    // kilobyte or two (the trees of a small backup) would count as 15-20%
    // unused with every blob live and be repacked on every run.
    let mut live_bytes = vec![0u64; table.packs().len()];
    let mut dead_bytes = vec![0u64; table.packs().len()];
    let mut listed = vec![0usize; table.packs().len()];
    for (pos, row) in table.rows().iter().enumerate() {
        let sums = if live.get(pos) { &mut live_bytes } else { &mut dead_bytes };
        if let Some(b) = sums.get_mut(row.pack as usize) {
            *b += u64::from(row.length());
        }
        if let Some(n) = listed.get_mut(row.pack as usize) {
            *n += 1;
        }
    }
    for (((p, live), dead), n) in table.packs().iter().zip(&live_bytes).zip(&mut dead_bytes).zip(listed) {
        *dead += p.size.saturating_sub(live + *dead + max_overhead(n));
    }
    (report.packs_deleted, report.packs_repacked, report.packs_too_young, report.bytes_removed) = (0, 0, 0, 0);
    let grace = opts.grace.as_secs();
    let mut repack_budget = opts.max_repack_bytes.unwrap_or(u64::MAX);
    let mut plans = Vec::with_capacity(table.packs().len());
    for (i, ((p, live_bytes), dead_bytes)) in table.packs().iter().zip(live_bytes).zip(dead_bytes).enumerate() {
        let young = now.saturating_sub(p.created) < grace;
        let unused_pct = dead_bytes.saturating_mul(100) / p.size.max(1);
        let plan = if young {
            if dead_bytes > 0 {
                report.packs_too_young += 1;
            }
            Plan::Keep
        } else if copies.is_pinned(i as u32) {
            Plan::Keep
        } else if live_bytes == 0 {
            report.packs_deleted += 1;
            report.bytes_removed += p.size;
            Plan::Delete
        } else if unused_pct >= u64::from(opts.threshold_pct) && p.size <= repack_budget {
            repack_budget -= p.size;
            report.packs_repacked += 1;
            report.bytes_removed += p.size;
            Plan::Repack
        } else {
            Plan::Keep
        };
        plans.push(plan);
    }
    plans
}

/// Blobs per segment written by maintenance, so that no single segment
/// (and its encoding in memory) grows with the repository.
const SEGMENT_MAX_BLOBS: usize = 100_000;

/// Writes `packs` as segments of at most [`SEGMENT_MAX_BLOBS`] blobs; the
/// last one written supersedes `old`. Returns the new segments' ids.
pub(crate) fn write_replacement_segments(
    repo: &Repository,
    lock: &RepoLock,
    packs: Vec<PackEntry>,
    old: Vec<SegmentId>,
) -> Result<Vec<SegmentId>> {
    let mut writer = SegmentWriter::new(repo, lock, old);
    for p in packs {
        writer.push(p)?;
    }
    writer.finish()
}

/// Writes a replacement index as packs come, in segments of at most
/// [`SEGMENT_MAX_BLOBS`] blobs, each stored as soon as it is full; the
/// last one (written by `finish`) supersedes the old segments. A crash
/// before it leaves the old segments in force beside the new ones
/// (duplicate entries are valid), so no chunk is ever unindexed.
pub(crate) struct SegmentWriter<'a> {
    repo: &'a Repository,
    lock: &'a RepoLock,
    old: Vec<SegmentId>,
    group: Vec<PackEntry>,
    blobs: usize,
    written: Vec<SegmentId>,
}

impl<'a> SegmentWriter<'a> {
    pub fn new(repo: &'a Repository, lock: &'a RepoLock, old: Vec<SegmentId>) -> Self {
        SegmentWriter { repo, lock, old, group: Vec::new(), blobs: 0, written: Vec::new() }
    }

    pub fn push(&mut self, pack: PackEntry) -> Result<()> {
        if self.blobs > 0 && self.blobs + pack.blobs.len() > SEGMENT_MAX_BLOBS {
            let group = std::mem::take(&mut self.group);
            self.write(group, Vec::new())?;
            self.blobs = 0;
        }
        self.blobs += pack.blobs.len();
        self.group.push(pack);
        Ok(())
    }

    fn write(&mut self, group: Vec<PackEntry>, supersedes: Vec<SegmentId>) -> Result<()> {
        self.lock.check_alive()?;
        self.written.push(write_merged_segment(self.repo.storage(), self.repo.envelope(), group, supersedes)?);
        Ok(())
    }

    /// Writes the last segment, which supersedes the old ones; returns the
    /// ids of all segments written.
    pub fn finish(mut self) -> Result<Vec<SegmentId>> {
        let group = std::mem::take(&mut self.group);
        let old = std::mem::take(&mut self.old);
        self.write(group, old)?;
        Ok(self.written)
    }
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
    report.packs_written += 1;
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
