//! Copying snapshots from one repository to another (`vger copy`).
//!
//! Every chunk of a snapshot is read from the source, decrypted and
//! verified, then hashed with the target's chunk-ID key: the target's own
//! ID decides whether it already holds the chunk (then nothing is sent).
//! A chunk it lacks is compressed with the target's codec, sealed with its
//! key and stored through the target's pack writer. When both use the same
//! chunker parameters, chunk boundaries are kept as they are (the chunker
//! is not keyed, see docs/format.md, "Copying between repositories");
//! otherwise each file's chunks are read in order and fed to the target's
//! chunker, so that the target's later backups deduplicate against the
//! copies. Trees are re-encoded with the new IDs, directory by directory,
//! bottom up.
//!
//! Resuming: the pack writer indexes what it stored every few packs; the
//! packs a killed copy stored after its last checkpoint are in the target
//! but in no index segment. A copy starts by listing the target's packs
//! and recovering those no segment names (see [`recover_unindexed`]), so
//! a rerun sends no chunk the killed run had stored. A copied snapshot
//! records the source snapshot's ID (`copied_from`); a rerun skips the
//! snapshots already copied.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use vger_chunker::{ChunkBuffer, ChunkerParams};
use vger_crypto::ObjectType;
use vger_format::compress::Codec;
use vger_format::entry::ChunkRef;
use vger_format::id::{ChunkId, PackId, SnapshotId};
use vger_format::object::seal_object;
use vger_format::snapshot::Snapshot;
use vger_format::tree::TreeEntry;

use crate::blob::{seal_chunk, BlobReader};
use crate::index::{write_segment, ChunkIndex};
use crate::lock::RepoLock;
use crate::pack_writer::{PackWriter, SealedBlob};
use crate::packs::{pack_entry, stored_packs};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshots::SnapshotInfo;
use crate::tree::{DirEntries, DirWriter, TreeStore};
use crate::{EngineError, Result};

/// Tree objects of the source kept in memory while copying.
const TREE_CACHE_BYTES: u64 = 32 << 20;

/// How a copy runs.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// The target's codec unless set.
    pub compression: Option<Codec>,
    /// Concurrent pack uploads (0: chosen by the target's kind).
    pub uploaders: usize,
    /// How often stored packs are indexed (the resume granularity).
    pub checkpoint_interval: Option<Duration>,
}

/// One snapshot copied.
#[derive(Debug, Clone)]
pub struct CopiedSnapshot {
    pub source_id: SnapshotId,
    pub target_id: SnapshotId,
}

/// What a copy did.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    pub copied: Vec<CopiedSnapshot>,
    /// Source snapshots the target already had a copy of.
    pub already_copied: Vec<SnapshotId>,
    /// Chunks (data and tree) sent to the target, and their plaintext bytes.
    pub chunks_sent: u64,
    pub bytes_sent: u64,
    /// Chunk references the target already held (or got earlier in this run).
    pub chunks_deduplicated: u64,
    /// Bytes stored in the target's new packs.
    pub stored_bytes: u64,
    /// Files cut again with the target's chunker (its parameters differ
    /// from the source's); 0 when chunks moved as they are.
    pub rechunked_files: u64,
    /// Packs found in the target that no index segment named (stored by
    /// an interrupted copy or backup), indexed from their trailers, and
    /// the chunks they hold: none of them was sent again.
    pub packs_recovered: u64,
    pub chunks_recovered: u64,
}

/// The source snapshot IDs the target already holds a copy of.
pub fn copied_origins(target: &Repository) -> Result<HashSet<SnapshotId>> {
    let (list, _) = crate::snapshots::list_readable(target)?;
    Ok(list.into_iter().filter_map(|s| s.snapshot.copied_from).collect())
}

/// Copies `snapshots` (of `source`) into `target`, skipping those the
/// target already has a copy of.
pub fn copy(
    source: &Repository,
    target: &Repository,
    snapshots: &[SnapshotInfo],
    opts: &CopyOptions,
    progress: &Progress,
) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let done = copied_origins(target)?;
    let todo: Vec<&SnapshotInfo> = snapshots
        .iter()
        .filter(|s| {
            let skip = done.contains(&s.id);
            if skip {
                report.already_copied.push(s.id);
            }
            !skip
        })
        .collect();
    if todo.is_empty() {
        return Ok(report);
    }
    progress.set_totals(
        todo.iter().map(|s| s.snapshot.stats.files).sum(),
        todo.iter().map(|s| s.snapshot.stats.bytes).sum(),
    );
    let lock = Arc::new(RepoLock::shared(target, "copy")?);
    let source_index = Arc::new(ChunkIndex::load(source)?);
    let mut target_index = ChunkIndex::load(target)?;
    let (packs, chunks) = recover_unindexed(target, &mut target_index, &lock, progress)?;
    report.packs_recovered = packs;
    report.chunks_recovered = chunks;
    let uploaders = match opts.uploaders {
        0 if target.storage().describe().contains("://") => 2,
        0 => 1,
        n => n,
    };
    let writer = PackWriter::start(
        target.storage().clone(),
        target.envelope().clone(),
        target.pack_target_size(),
        uploaders,
        Some(lock.clone()),
        opts.checkpoint_interval.unwrap_or(crate::pack_writer::DEFAULT_CHECKPOINT_INTERVAL),
    );
    let tx = writer.sender().ok_or_else(|| EngineError::Other("pack writer closed".into()))?;
    let mut copier = Copier {
        source,
        target,
        reader: BlobReader::new(source, &source_index),
        trees: TreeStore::new(source, source_index.clone(), TREE_CACHE_BYTES),
        target_index: &target_index,
        codec: opts.compression.unwrap_or(target.default_compression()),
        tx,
        mapped: HashMap::new(),
        rechunk: (target.chunker_params() != source.chunker_params()).then(|| target.chunker_params()),
        files: HashMap::new(),
        below: HashMap::new(),
        path: Vec::new(),
        progress,
        report: &mut report,
    };
    let mut prepared = Vec::new();
    let walked: Result<()> = todo.iter().try_for_each(|s| {
        let root = copier.copy_dir(&s.snapshot.root)?;
        prepared.push((s.id, root, &s.snapshot));
        Ok(())
    });
    drop(copier);
    if let Err(e) = walked {
        // What was stored stays usable (and indexed) for the rerun.
        return Err(writer.finish().err().unwrap_or(e));
    }
    let written = writer.finish()?;
    report.stored_bytes = written.stored_bytes;
    if written.blobs != report.chunks_sent {
        return Err(EngineError::Other(format!(
            "the copy queued {} chunks but stored {}; no snapshot was written (a bug: please report it)",
            report.chunks_sent, written.blobs
        )));
    }
    // Every chunk is stored and indexed: the snapshots may now name them.
    for (source_id, root, original) in prepared {
        let snapshot = Snapshot { root, parent: None, copied_from: Some(source_id), ..original.clone() };
        let id = SnapshotId(vger_format::id::random_id()?);
        let key = id.storage_key();
        let bytes = seal_object(target.envelope(), ObjectType::Snapshot, key.as_bytes(), "snapshot", &snapshot)?;
        lock.check_alive()?;
        target.storage().put_new(&key, &bytes)?;
        report.copied.push(CopiedSnapshot { source_id, target_id: id });
    }
    Ok(report)
}

/// Indexes the packs stored in `target` that no index segment names: the
/// packs a killed copy (or backup) stored after its last checkpoint. Each
/// one's trailer is read (two ranged reads) and opened with the target's
/// key, which authenticates it, and its blobs are checked to lie inside the
/// pack; the packs are then named in one new segment and added to `index`.
/// A pack whose trailer cannot be read is left alone (its chunks are sent
/// again), with a warning. Returns the packs and chunks recovered.
///
/// A pack that a backup running at the same time has stored but not yet
/// indexed may be recovered too: its segment then names it a second time,
/// which the index and compact tolerate (the first location is kept).
fn recover_unindexed(
    target: &Repository,
    index: &mut ChunkIndex,
    lock: &RepoLock,
    progress: &Progress,
) -> Result<(u64, u64)> {
    let known: HashSet<PackId> = index.packs().iter().map(|p| p.id).collect();
    let orphans: Vec<(PackId, u64)> = stored_packs(target)?.into_iter().filter(|(id, _)| !known.contains(id)).collect();
    drop(known);
    if orphans.is_empty() {
        return Ok((0, 0));
    }
    let threads = if target.storage().describe().contains("://") { 8 } else { 2 };
    let now = crate::lock::unix_now();
    let read = crate::parallel::map(orphans, threads, |(id, size)| Ok((id, pack_entry(target, id, size, now))))?;
    let mut entries = Vec::new();
    for (id, entry) in read {
        match entry {
            Ok(e) => entries.push(e),
            Err(e) => progress.warn(crate::Notice::Text(format!(
                "pack {} is in no index segment and its trailer is unreadable ({e}); its chunks are sent again (`vger check` tells more)",
                id.short()
            ))),
        }
    }
    if entries.is_empty() {
        return Ok((0, 0));
    }
    let chunks = entries.iter().map(|e| e.blobs.len() as u64).sum();
    for e in &entries {
        index.add_pack(e);
    }
    let packs = entries.len() as u64;
    lock.check_alive()?;
    write_segment(target.storage(), target.envelope(), entries)?;
    Ok((packs, chunks))
}

struct Copier<'a> {
    source: &'a Repository,
    target: &'a Repository,
    reader: BlobReader<'a>,
    trees: TreeStore,
    target_index: &'a ChunkIndex,
    codec: Codec,
    tx: Sender<SealedBlob>,
    /// Source ID -> target ID of every chunk and directory handled so far
    /// (a chunk shared by many files is read once).
    mapped: HashMap<ChunkId, ChunkId>,
    /// The target's chunker parameters when they differ from the source's.
    rechunk: Option<ChunkerParams>,
    /// With `rechunk`: a file's source chunk list (hashed) -> its chunks in
    /// the target, so that a file met again (in another directory or
    /// snapshot) is not read and cut again.
    files: HashMap<[u8; 32], Vec<ChunkRef>>,
    /// Files and bytes below each directory copied in this run: progress
    /// counts them again when a later snapshot shares the directory.
    below: HashMap<ChunkId, (u64, u64)>,
    /// The path of the entry being copied, for progress.
    path: Vec<u8>,
    progress: &'a Progress,
    report: &'a mut CopyReport,
}

impl Copier<'_> {
    /// Copies directory `dir` (its files' chunks and its subdirectories)
    /// and returns its tree ID in the target.
    fn copy_dir(&mut self, dir: &ChunkId) -> Result<ChunkId> {
        if let Some(id) = self.mapped.get(dir) {
            if let Some((files, bytes)) = self.below.get(dir) {
                self.progress.add_files(*files);
                self.progress.add_bytes(*bytes);
            }
            return Ok(*id);
        }
        // Progress counts files (not directories) and their bytes, as the
        // snapshots' stats that give its totals do; one thread copies.
        let done = |p: &Progress| (p.get(&p.files), p.get(&p.bytes));
        let before = done(self.progress);
        let mut writer = DirWriter::new();
        let entries = DirEntries::new(&self.trees, dir)?;
        for entry in entries {
            self.progress.stop_if_cancelled()?;
            let mut entry: TreeEntry = entry?.entry().clone();
            let depth = self.path.len();
            if !self.path.is_empty() {
                self.path.push(b'/');
            }
            self.path.extend_from_slice(&entry.name);
            if let Some(sub) = entry.tree {
                entry.tree = Some(self.copy_dir(&sub)?);
            } else {
                self.progress.set_current(&String::from_utf8_lossy(&self.path));
            }
            let file_bytes: u64 = entry.chunks.iter().map(|c| u64::from(c.1)).sum();
            if self.rechunk.is_some() {
                if !entry.chunks.is_empty() {
                    entry.chunks = self.rechunk_file(&entry.chunks)?;
                }
            } else {
                for chunk in entry.chunks.iter_mut() {
                    chunk.0 = self.copy_chunk(&chunk.0, ObjectType::DataChunk)?;
                }
            }
            self.progress.add_bytes(file_bytes);
            if entry.kind != vger_format::entry::EntryKind::Dir {
                self.progress.add_files(1);
            }
            self.path.truncate(depth);
            writer.add(&entry, &mut |data| self.store(ObjectType::TreeChunk, data))?;
        }
        let (id, _) = writer.finish(&mut |data| self.store(ObjectType::TreeChunk, data))?;
        self.mapped.insert(*dir, id);
        let after = done(self.progress);
        self.below.insert(*dir, (after.0.saturating_sub(before.0), after.1.saturating_sub(before.1)));
        Ok(id)
    }

    fn copy_chunk(&mut self, id: &ChunkId, ty: ObjectType) -> Result<ChunkId> {
        if let Some(mapped) = self.mapped.get(id) {
            self.report.chunks_deduplicated += 1;
            return Ok(*mapped);
        }
        let data = self.reader.read(id, ty, &|| format!("a snapshot of {}", self.source.location()))?;
        let new = self.store(ty, &data)?;
        self.mapped.insert(*id, new);
        Ok(new)
    }

    /// Reads a file's chunks from the source in order and cuts the stream
    /// with the target's chunker, storing the new chunks.
    fn rechunk_file(&mut self, chunks: &[ChunkRef]) -> Result<Vec<ChunkRef>> {
        let mut key = blake3::Hasher::new();
        for c in chunks {
            key.update(&c.id().0);
        }
        let key = *key.finalize().as_bytes();
        if let Some(done) = self.files.get(&key) {
            self.report.chunks_deduplicated += done.len() as u64;
            return Ok(done.clone());
        }
        let params = self.rechunk.unwrap_or(self.target.chunker_params());
        let mut buffer = ChunkBuffer::new(params).map_err(|e| EngineError::InvalidSetting(e.to_string()))?;
        let mut out = Vec::new();
        let mut emit = |copier: &mut Self, piece: &[u8]| -> Result<()> {
            let id = copier.store(ObjectType::DataChunk, piece)?;
            let len = u32::try_from(piece.len())
                .map_err(|_| EngineError::Other(format!("chunk {} is larger than 4 GiB", id.short())))?;
            out.push(ChunkRef(id, len));
            Ok(())
        };
        for chunk in chunks {
            self.progress.stop_if_cancelled()?;
            let data = self
                .reader
                .read(chunk.id(), ObjectType::DataChunk, &|| format!("a snapshot of {}", self.source.location()))?;
            buffer.push(&data, |piece| emit(self, piece))?;
        }
        buffer.finish(|piece| emit(self, piece))?;
        self.report.rechunked_files += 1;
        self.files.insert(key, out.clone());
        Ok(out)
    }

    /// Stores `data` in the target unless it holds it already.
    fn store(&mut self, ty: ObjectType, data: &[u8]) -> Result<ChunkId> {
        let id = ChunkId(self.target.chunk_id_key().chunk_id(data));
        // `mapped` also holds the target IDs sent in this run (mapped to
        // themselves), so a chunk is queued once.
        if self.target_index.contains(&id) || self.mapped.get(&id) == Some(&id) {
            self.report.chunks_deduplicated += 1;
            return Ok(id);
        }
        let bytes = seal_chunk(self.target.envelope(), self.codec, ty, &id, data)?;
        let raw_length = u32::try_from(data.len())
            .map_err(|_| EngineError::Other(format!("chunk {} is larger than 4 GiB", id.short())))?;
        self.tx
            .send(SealedBlob { id, ty, raw_length, bytes })
            .map_err(|_| EngineError::Other("the target's pack writer stopped".into()))?;
        self.mapped.insert(id, id);
        self.report.chunks_sent += 1;
        self.report.bytes_sent += data.len() as u64;
        self.progress.add_new_bytes(data.len() as u64);
        Ok(id)
    }
}
