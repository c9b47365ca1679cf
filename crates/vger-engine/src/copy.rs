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
//! Reading and writing overlap: the walk asks worker threads for the
//! chunks of a directory's files ahead of it (a window of at most
//! [`WINDOW_CHUNKS`] chunks and [`WINDOW_BYTES`] bytes per directory); a
//! worker reads a chunk from the source, checks it, and (chunks moved as
//! they are) hashes, compresses and seals it for the target, or (cut
//! again) hands its plaintext back to the walk, which cuts the file in
//! order and has the new pieces sealed by the workers. The pack writer
//! uploads with as many connections as the target allows. Memory stays
//! bounded: the window, one chunk per worker, and the pack writer's packs.
//!
//! Resuming: the pack writer indexes what it stored every few packs; the
//! packs a killed copy stored after its last checkpoint are in the target
//! but in no index segment. A copy starts by listing the target's packs
//! and recovering those no segment names (see [`recover_unindexed`]), so
//! a rerun sends no chunk the killed run had stored. A copied snapshot
//! records the source snapshot's ID (`copied_from`); a rerun skips the
//! snapshots already copied.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use vger_chunker::{ChunkBuffer, ChunkerParams};
use vger_crypto::ObjectType;
use vger_format::compress::Codec;
use vger_format::entry::{ChunkRef, EntryKind};
use vger_format::id::{ChunkId, PackId, SnapshotId};
use vger_format::object::seal_object;
use vger_format::snapshot::Snapshot;
use vger_format::tree::{NamesDigest, TreeEntry};

use crate::blob::{seal_chunk, BlobReader};
use crate::index::{write_segment, ChunkIndex, IdSet};
use crate::lock::RepoLock;
use crate::pack_writer::{BlobSender, PackWriter, SealedBlob};
use crate::packs::{pack_entry, stored_packs};
use crate::parallel::{lock as lock_mutex, READERS_FOR_REMOTE};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshots::SnapshotInfo;
use crate::tree::{DirEntries, DirWriter, TreeStore};
use crate::{EngineError, Result};

/// Tree objects of the source kept in memory while copying.
const TREE_CACHE_BYTES: u64 = 32 << 20;
/// Chunks of one directory asked of the workers ahead of the walk ...
const WINDOW_CHUNKS: usize = 256;
/// ... and their bytes, at most (plaintext read ahead of the chunker, when
/// files are cut again).
const WINDOW_BYTES: u64 = 16 << 20;

/// How a copy runs.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// The target's codec unless set.
    pub compression: Option<Codec>,
    /// Concurrent pack uploads (0: one for a local target, the default
    /// connection count for a remote one).
    pub uploaders: usize,
    /// Threads that read, check and seal chunks (0: one per CPU, at least
    /// two; at least [`READERS_FOR_REMOTE`] for a remote source).
    pub threads: usize,
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
    let remote = |r: &Repository| !r.storage().is_local();
    // Uploads as many at once as the target takes connections; reads and
    // seals on every core (more readers for a remote source, whose
    // ranged reads wait on the network).
    let uploaders = match opts.uploaders {
        0 if remote(target) => vger_storage::BackendOptions::default().connections,
        0 => 1,
        n => n,
    };
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2),
        n => n,
    };
    let threads = if remote(source) { threads.max(READERS_FOR_REMOTE) } else { threads };
    let writer = PackWriter::start(
        target.storage().clone(),
        target.envelope().clone(),
        target.pack_target_size(),
        uploaders,
        Some(lock.clone()),
        opts.checkpoint_interval.unwrap_or(crate::pack_writer::DEFAULT_CHECKPOINT_INTERVAL),
    );
    let sink = Sink {
        target,
        target_index: &target_index,
        codec: opts.compression.unwrap_or(target.default_compression()),
        tx: writer.sender().ok_or_else(|| EngineError::Other("pack writer closed".into()))?,
        sent: Mutex::new(IdSet::default()),
        chunks_sent: AtomicU64::new(0),
        bytes_sent: AtomicU64::new(0),
        deduplicated: AtomicU64::new(0),
        progress,
        failed: Mutex::new(None),
        stop: AtomicBool::new(false),
    };
    let reader = BlobReader::new(source, &source_index);
    let context = || format!("a snapshot of {}", source.location());
    let context: &(dyn Fn() -> String + Sync) = &context;
    let mut prepared = Vec::new();
    let mut rechunked_files = 0;
    std::thread::scope(|scope| {
        // Few jobs wait: the walk keeps its own window of chunks asked for.
        let (jobs, queue) = bounded::<Job>(threads * 2);
        for _ in 0..threads {
            let (sink, reader, queue) = (&sink, &reader, queue.clone());
            scope.spawn(move || work(sink, reader, context, queue));
        }
        let mut copier = Copier {
            reader: &reader,
            context,
            trees: TreeStore::new(source, source_index.clone(), TREE_CACHE_BYTES),
            sink: &sink,
            jobs,
            mapped: HashMap::new(),
            digests: HashMap::new(),
            asked: HashSet::new(),
            rechunk: (target.chunker_params() != source.chunker_params()).then(|| target.chunker_params()),
            files: HashMap::new(),
            below: HashMap::new(),
            path: Vec::new(),
            progress,
            rechunked_files: 0,
        };
        let walked = todo.iter().try_for_each(|s| {
            let (root, _) = copier.copy_dir(&s.snapshot.root)?;
            prepared.push((s.id, root, &s.snapshot));
            Ok(())
        });
        rechunked_files = copier.rechunked_files;
        // Dropping the copier closes the jobs queue: the workers finish
        // what was asked (or skip it, after an error) and end.
        drop(copier);
        if let Err(e) = walked {
            sink.fail(e);
        }
    });
    report.chunks_sent = sink.chunks_sent.load(Ordering::Relaxed);
    report.bytes_sent = sink.bytes_sent.load(Ordering::Relaxed);
    report.chunks_deduplicated = sink.deduplicated.load(Ordering::Relaxed);
    report.rechunked_files = rechunked_files;
    let failed = lock_mutex(&sink.failed).take();
    drop(sink);
    if let Some(e) = failed {
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
        let snapshot = Snapshot {
            version: vger_format::snapshot::SNAPSHOT_VERSION,
            root,
            parent: None,
            copied_from: Some(source_id),
            ..original.clone()
        };
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
    let threads = if target.storage().is_local() { 2 } else { READERS_FOR_REMOTE };
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

/// Work for the copy's worker threads.
enum Job {
    /// Read a source chunk and store it in the target as it is; the reply
    /// is its ID in the target.
    Move { id: ChunkId, ty: ObjectType, reply: Sender<Result<ChunkId>> },
    /// Read a source data chunk, to cut again; the reply is its plaintext.
    Read { id: ChunkId, reply: Sender<Result<Vec<u8>>> },
    /// Seal a new chunk of the target and queue it for its packs.
    Seal { id: ChunkId, ty: ObjectType, data: Vec<u8> },
}

/// The target's side, shared by the walk and the workers.
struct Sink<'a> {
    target: &'a Repository,
    target_index: &'a ChunkIndex,
    codec: Codec,
    tx: BlobSender,
    /// Target IDs queued in this run: each is sent once.
    sent: Mutex<IdSet>,
    chunks_sent: AtomicU64,
    bytes_sent: AtomicU64,
    deduplicated: AtomicU64,
    progress: &'a Progress,
    /// The first error, which makes the workers skip what is left.
    failed: Mutex<Option<EngineError>>,
    stop: AtomicBool,
}

impl Sink<'_> {
    /// Whether `id` is neither in the target nor queued in this run; then
    /// the caller must send it.
    fn claim(&self, id: &ChunkId) -> bool {
        let new = !self.target_index.contains(id) && lock_mutex(&self.sent).insert(*id);
        if !new {
            self.deduplicated.fetch_add(1, Ordering::Relaxed);
        }
        new
    }

    /// Seals `data` with the target's key and codec and queues it.
    fn send(&self, id: ChunkId, ty: ObjectType, data: &[u8]) -> Result<()> {
        let bytes = seal_chunk(self.target.envelope(), self.codec, ty, &id, data)?;
        let raw_length = chunk_len(&id, data)?;
        self.tx
            .send(SealedBlob { id, ty, raw_length, bytes })
            .map_err(|_| EngineError::Other("the target's pack writer stopped".into()))?;
        self.chunks_sent.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(data.len() as u64, Ordering::Relaxed);
        self.progress.add_new_bytes(data.len() as u64);
        Ok(())
    }

    /// Stores `data` in the target unless it holds it already; returns its
    /// ID there.
    fn store(&self, ty: ObjectType, data: &[u8]) -> Result<ChunkId> {
        let id = ChunkId(self.target.chunk_id_key().chunk_id(data));
        if self.claim(&id) {
            self.send(id, ty, data)?;
        }
        Ok(id)
    }

    fn fail(&self, e: EngineError) {
        lock_mutex(&self.failed).get_or_insert(e);
        self.stop.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A worker: reads (and checks) source chunks, seals target chunks.
fn work(sink: &Sink<'_>, reader: &BlobReader<'_>, context: &(dyn Fn() -> String + Sync), queue: Receiver<Job>) {
    let skipped = || EngineError::Other("skipped after an earlier error".into());
    for job in queue.iter() {
        // A reply nobody waits for any more (the walk failed) is dropped.
        match job {
            Job::Move { id, ty, reply } => {
                let moved = if sink.stopped() {
                    Err(skipped())
                } else {
                    reader.read(&id, ty, context).and_then(|d| sink.store(ty, &d))
                };
                let _ = reply.send(moved);
            }
            Job::Read { id, reply } => {
                let read =
                    if sink.stopped() { Err(skipped()) } else { reader.read(&id, ObjectType::DataChunk, context) };
                let _ = reply.send(read);
            }
            Job::Seal { id, ty, data } => {
                if !sink.stopped() {
                    if let Err(e) = sink.send(id, ty, &data) {
                        sink.fail(e);
                    }
                }
            }
        }
    }
}

/// A chunk of a file waiting for the workers.
enum Slot {
    /// Its target ID is known.
    Known(ChunkId),
    /// A `Move` job's reply.
    Moving(ChunkId, Receiver<Result<ChunkId>>),
    /// A chunk asked for earlier in this directory: its target ID is in
    /// `mapped` once that is resolved.
    Again(ChunkId),
    /// A `Read` job's reply (cutting again).
    Reading(Receiver<Result<Vec<u8>>>),
}

/// What becomes of a file's chunks once they are in.
enum Outcome {
    /// Nothing to wait for.
    Ready,
    /// Chunks moved as they are: `entry.chunks[..done]` hold target IDs.
    Moved { done: usize },
    /// Cut again: the source's plaintext goes through the target's chunker.
    Cut { buffer: ChunkBuffer, out: Vec<ChunkRef>, key: [u8; 32] },
    /// A file with the chunk list of one cut earlier in this directory
    /// (key): its result is in `files` once that one is done.
    SameAs([u8; 32]),
}

/// An entry of the directory being copied, waiting for its chunks.
struct Waiting {
    entry: TreeEntry,
    /// Its files and bytes, counted by progress when it is done.
    files: u64,
    bytes: u64,
    /// The next of the source chunks to ask for.
    next: usize,
    slots: VecDeque<(Slot, u64)>,
    outcome: Outcome,
}

/// The entries of one directory on their way, in order: workers fetch
/// chunks ahead (at most [`WINDOW_CHUNKS`] and [`WINDOW_BYTES`]) while the
/// oldest entries are completed and written.
#[derive(Default)]
struct Window {
    entries: VecDeque<Waiting>,
    /// `entries[..submit]` have asked for all their chunks.
    submit: usize,
    chunks: usize,
    bytes: u64,
}

struct Copier<'a> {
    reader: &'a BlobReader<'a>,
    context: &'a dyn Fn() -> String,
    trees: TreeStore,
    sink: &'a Sink<'a>,
    jobs: Sender<Job>,
    /// Source ID -> target ID of every chunk and directory handled so far
    /// (a chunk shared by many files is read once).
    mapped: HashMap<ChunkId, ChunkId>,
    /// Source ID -> names digest of every directory copied (the same in
    /// the target: names do not change; computed anew where the source
    /// did not record it).
    digests: HashMap<ChunkId, NamesDigest>,
    /// Source chunks asked of the workers and not resolved yet.
    asked: HashSet<ChunkId>,
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
    rechunked_files: u64,
}

impl Copier<'_> {
    /// Copies directory `dir` (its files' chunks and its subdirectories)
    /// and returns its tree ID in the target and its names digest.
    fn copy_dir(&mut self, dir: &ChunkId) -> Result<(ChunkId, NamesDigest)> {
        if let (Some(id), Some(digest)) = (self.mapped.get(dir), self.digests.get(dir)) {
            if let Some((files, bytes)) = self.below.get(dir) {
                self.progress.add_files(*files);
                self.progress.add_bytes(*bytes);
            }
            return Ok((*id, *digest));
        }
        // Progress counts files (not directories) and their bytes, as the
        // snapshots' stats that give its totals do.
        let done = |p: &Progress| (p.get(&p.files), p.get(&p.bytes));
        let before = done(self.progress);
        let mut writer = DirWriter::new();
        let mut window = Window::default();
        let entries = DirEntries::new(&self.trees, dir)?;
        for entry in entries {
            self.progress.stop_if_cancelled()?;
            let mut entry: TreeEntry = entry?.entry().clone();
            let depth = self.path.len();
            if !self.path.is_empty() {
                self.path.push(b'/');
            }
            self.path.extend_from_slice(&entry.name);
            let files = u64::from(entry.kind != EntryKind::Dir);
            let bytes: u64 = entry.chunks.iter().map(|c| u64::from(c.1)).sum();
            let outcome = if let Some(sub) = entry.tree {
                // What this directory holds in memory goes first.
                if self.rechunk.is_some() {
                    self.pump(&mut window, &mut writer, true)?;
                }
                let (id, digest) = self.copy_dir(&sub)?;
                (entry.tree, entry.names_digest) = (Some(id), Some(digest));
                Outcome::Ready
            } else {
                self.progress.set_current(&String::from_utf8_lossy(&self.path));
                self.outcome_of(&mut entry, &window)?
            };
            self.path.truncate(depth);
            window.entries.push_back(Waiting { entry, files, bytes, next: 0, slots: VecDeque::new(), outcome });
            self.pump(&mut window, &mut writer, false)?;
        }
        self.pump(&mut window, &mut writer, true)?;
        let (id, _, digest) = writer.finish(&mut |data| self.sink.store(ObjectType::TreeChunk, data))?;
        self.mapped.insert(*dir, id);
        self.digests.insert(*dir, digest);
        let after = done(self.progress);
        self.below.insert(*dir, (after.0.saturating_sub(before.0), after.1.saturating_sub(before.1)));
        Ok((id, digest))
    }

    /// How a file's chunks are handled.
    fn outcome_of(&mut self, entry: &mut TreeEntry, window: &Window) -> Result<Outcome> {
        if entry.chunks.is_empty() {
            return Ok(Outcome::Ready);
        }
        let Some(params) = self.rechunk else { return Ok(Outcome::Moved { done: 0 }) };
        let mut key = blake3::Hasher::new();
        for c in &entry.chunks {
            key.update(&c.id().0);
        }
        let key = *key.finalize().as_bytes();
        if let Some(done) = self.files.get(&key) {
            self.sink.deduplicated.fetch_add(done.len() as u64, Ordering::Relaxed);
            entry.chunks = done.clone();
            return Ok(Outcome::Ready);
        }
        let cut_here = |w: &Waiting| matches!(&w.outcome, Outcome::Cut { key: k, .. } if *k == key);
        if window.entries.iter().any(cut_here) {
            return Ok(Outcome::SameAs(key));
        }
        let buffer = ChunkBuffer::new(params).map_err(|e| EngineError::InvalidSetting(e.to_string()))?;
        Ok(Outcome::Cut { buffer, out: Vec::new(), key })
    }

    /// Asks the workers for chunks while the window has room, and writes
    /// the entries at its front that are complete; with `all`, until the
    /// window is empty.
    fn pump(&mut self, window: &mut Window, writer: &mut DirWriter, all: bool) -> Result<()> {
        loop {
            self.submit(window)?;
            let Some(front) = window.entries.front_mut() else { return Ok(()) };
            if let Outcome::SameAs(key) = front.outcome {
                // The file with the same chunks, earlier in the window, was
                // completed before this one reached the front (a failure
                // there ended the copy).
                let done = self
                    .files
                    .get(&key)
                    .ok_or_else(|| EngineError::Other("copy: a file's twin was not cut (a bug in vger)".into()))?;
                self.sink.deduplicated.fetch_add(done.len() as u64, Ordering::Relaxed);
                front.entry.chunks = done.clone();
                front.outcome = Outcome::Ready;
                continue;
            }
            let asked_all = front.next >= front.entry.chunks.len() || matches!(front.outcome, Outcome::Ready);
            if asked_all && front.slots.is_empty() {
                if let Some(done) = window.entries.pop_front() {
                    window.submit = window.submit.saturating_sub(1);
                    self.complete(done, writer)?;
                }
                continue;
            }
            let full = window.chunks >= WINDOW_CHUNKS || window.bytes >= WINDOW_BYTES;
            if !(all || full) {
                return Ok(());
            }
            if front.slots.is_empty() {
                // Asked for nothing yet but the window is full of later
                // entries' chunks: it cannot happen (the front asks first).
                return Err(EngineError::Other("copy window stalled (a bug in vger)".into()));
            }
            self.resolve_one(window)?;
        }
    }

    /// Asks for the chunks of the entries in order while the window has room.
    fn submit(&mut self, window: &mut Window) -> Result<()> {
        while window.chunks < WINDOW_CHUNKS && window.bytes < WINDOW_BYTES {
            let Some(w) = window.entries.get_mut(window.submit) else { return Ok(()) };
            let moving = matches!(w.outcome, Outcome::Moved { .. });
            let cutting = matches!(w.outcome, Outcome::Cut { .. });
            let Some(chunk) = w.entry.chunks.get(w.next).filter(|_| moving || cutting) else {
                window.submit += 1;
                continue;
            };
            let (id, len) = (*chunk.id(), u64::from(chunk.1));
            w.next += 1;
            let slot = if moving {
                if let Some(t) = self.mapped.get(&id) {
                    self.sink.deduplicated.fetch_add(1, Ordering::Relaxed);
                    Slot::Known(*t)
                } else if self.asked.contains(&id) {
                    Slot::Again(id)
                } else {
                    let (reply, answer) = bounded(1);
                    self.ask(Job::Move { id, ty: ObjectType::DataChunk, reply })?;
                    self.asked.insert(id);
                    Slot::Moving(id, answer)
                }
            } else {
                let (reply, answer) = bounded(1);
                self.ask(Job::Read { id, reply })?;
                Slot::Reading(answer)
            };
            // Only what a worker is asked for takes room in the window.
            let asked = matches!(slot, Slot::Moving(..) | Slot::Reading(_));
            let held = if asked { len } else { 0 };
            window.chunks += usize::from(asked);
            window.bytes += held;
            w.slots.push_back((slot, held));
        }
        Ok(())
    }

    fn ask(&self, job: Job) -> Result<()> {
        self.jobs.send(job).map_err(|_| EngineError::Other("the copy's workers stopped".into()))
    }

    /// Waits for the oldest chunk asked for by the window's front entry.
    fn resolve_one(&mut self, window: &mut Window) -> Result<()> {
        // A large file is many chunks: stop between them when cancelled.
        self.progress.stop_if_cancelled()?;
        let Some(front) = window.entries.front_mut() else { return Ok(()) };
        let Some((slot, held)) = front.slots.pop_front() else { return Ok(()) };
        let stopped = || EngineError::Other("the copy's workers stopped".into());
        if matches!(slot, Slot::Moving(..) | Slot::Reading(_)) {
            window.chunks = window.chunks.saturating_sub(1);
            window.bytes = window.bytes.saturating_sub(held);
        }
        match (slot, &mut front.outcome) {
            (Slot::Reading(answer), Outcome::Cut { buffer, out, .. }) => {
                let data = answer.recv().map_err(|_| stopped())??;
                let (sink, jobs) = (self.sink, &self.jobs);
                buffer.push(&data, |piece| cut_piece(sink, jobs, out, piece))?;
            }
            (slot, Outcome::Moved { done }) => {
                let id = match slot {
                    Slot::Known(id) => id,
                    Slot::Moving(source, answer) => {
                        let id = answer.recv().map_err(|_| stopped())??;
                        self.asked.remove(&source);
                        self.mapped.insert(source, id);
                        id
                    }
                    Slot::Again(source) => match self.mapped.get(&source) {
                        Some(id) => {
                            self.sink.deduplicated.fetch_add(1, Ordering::Relaxed);
                            *id
                        }
                        // Asked for by a directory above, still on its way:
                        // read here.
                        None => {
                            let data = self.reader.read(&source, ObjectType::DataChunk, self.context)?;
                            let id = self.sink.store(ObjectType::DataChunk, &data)?;
                            self.mapped.insert(source, id);
                            id
                        }
                    },
                    Slot::Reading(_) => {
                        return Err(EngineError::Other("copy: a read for a moved chunk (a bug)".into()))
                    }
                };
                if let Some(c) = front.entry.chunks.get_mut(*done) {
                    c.0 = id;
                }
                *done += 1;
            }
            _ => return Err(EngineError::Other("copy: a chunk of the wrong kind (a bug in vger)".into())),
        }
        Ok(())
    }

    /// Writes a complete entry into its directory.
    fn complete(&mut self, mut done: Waiting, writer: &mut DirWriter) -> Result<()> {
        if let Outcome::Cut { buffer, mut out, key } = done.outcome {
            let (sink, jobs) = (self.sink, &self.jobs);
            buffer.finish(|piece| cut_piece(sink, jobs, &mut out, piece))?;
            self.rechunked_files += 1;
            self.files.insert(key, out.clone());
            done.entry.chunks = out;
        }
        self.progress.add_bytes(done.bytes);
        self.progress.add_files(done.files);
        let sink = self.sink;
        writer.add(&done.entry, &mut |data| sink.store(ObjectType::TreeChunk, data))
    }
}

/// A piece cut by the target's chunker: its ID is computed here (the tree
/// needs it in order); a new one is sealed by a worker.
fn cut_piece(sink: &Sink<'_>, jobs: &Sender<Job>, out: &mut Vec<ChunkRef>, piece: &[u8]) -> Result<()> {
    let id = ChunkId(sink.target.chunk_id_key().chunk_id(piece));
    let len = chunk_len(&id, piece)?;
    if sink.claim(&id) {
        jobs.send(Job::Seal { id, ty: ObjectType::DataChunk, data: piece.to_vec() })
            .map_err(|_| EngineError::Other("the copy's workers stopped".into()))?;
    }
    out.push(ChunkRef(id, len));
    Ok(())
}

/// A chunk's length as the pack index records it.
fn chunk_len(id: &ChunkId, data: &[u8]) -> Result<u32> {
    u32::try_from(data.len()).map_err(|_| EngineError::Other(format!("chunk {} is larger than 4 GiB", id.short())))
}
