//! The backup pipeline.
//!
//! ```text
//! main thread: walk -> read -> chunk -> hash -> dedup ---new chunks---> sealers (N threads)
//!      |                                                                  | compress + encrypt
//!      +-- entries -> directories, bottom-up -> tree objects -> dedup --->|
//!                                                                         v
//!                                              pack assembler -> uploaders -> index segments
//! ```
//!
//! The main thread only hashes; the expensive work (compression and
//! encryption) runs on `threads` sealer threads. Channels are bounded, so
//! memory is bounded by a few chunks per thread plus the packs in flight.
//! Unchanged files (same size, mtime, ctime and inode as in the parent
//! snapshot, or size and mtime in `mtime-size` mode) are not read again,
//! nor are the files an interrupted earlier run finished ([`resume`]).

use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use vger_chunker::OwnedChunkReader;
use vger_crypto::{ObjectType, ENVELOPE_HEADER_LEN, ENVELOPE_OVERHEAD};
use vger_format::compress::Codec;
use vger_format::entry::{ChunkRef, Entry, EntryKind};
use vger_format::id::{ChunkId, SnapshotId};
use vger_format::object::seal_object;
use vger_format::snapshot::{Snapshot, SnapshotStats, SNAPSHOT_VERSION};
use vger_fs::{WalkOptions, WalkRoot, Walker};

use crate::blob::SEAL_ROOM;
use crate::index::ChunkIndex;
use crate::lock::RepoLock;
use crate::pack_writer::{PackWriter, SealedBlob};
use crate::progress::Progress;
use crate::repository::{hostname, now_rfc3339, username, Repository};
use crate::snapshots::{latest_for, SnapshotInfo};
use crate::tree::{DirWriter, TreeStore};
use crate::{EngineError, Result};
use vger_format::tree::TreeEntry;

mod chunk_sink;
mod parent;
pub mod resume;
mod seal;
mod totals;
mod tree_builder;
mod unchanged;
mod walk_ahead;
use chunk_sink::{ChunkSink, Dedup, Job};
use parent::{ParentEntry, ParentTree};
use resume::{EarlierRuns, JournalWriter};
use seal::seal_job;
use totals::Totals;
use tree_builder::TreeBuilder;
use walk_ahead::WalkAhead;

pub use vger_format::change::ChangeDetection;

/// One source to back up into one snapshot.
pub struct BackupSource {
    pub label: String,
    pub roots: Vec<WalkRoot>,
    /// The paths as the user gave them, recorded in the snapshot.
    pub paths: Vec<String>,
    pub walk: WalkOptions,
    pub change_detection: ChangeDetection,
    /// Commands whose output is stored as `vger-dumps/NAME`.
    pub dumps: Vec<crate::dump::CommandDumpSpec>,
}

#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// Overrides the repository's default codec.
    pub compression: Option<Codec>,
    /// The snapshot's time (RFC 3339); now when `None`.
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// Sealer threads; 0 = one per CPU.
    pub threads: usize,
    pub tags: Vec<String>,
    /// Read every file even if the parent snapshot says it is unchanged.
    pub no_parent: bool,
    /// Write a resume point (index segment) at least this often; default 30 s.
    pub checkpoint_interval: Option<std::time::Duration>,
    /// Cap on the rate of reading source files, bytes per second.
    pub read_limit: Option<u64>,
    /// Where to keep the journal that lets an interrupted backup resume
    /// without reading its finished files again; none: no journal.
    pub resume_dir: Option<PathBuf>,
    /// Do not count the source beside the backup: progress then has no
    /// totals but the parent snapshot's.
    pub no_scan: bool,
}

/// What a backup did.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub snapshot_id: SnapshotId,
    pub snapshot: Snapshot,
    /// Files that could not be read (skipped), one line each.
    pub warnings: Vec<String>,
    pub packs_written: u64,
    /// Bytes read from source files (files skipped as unchanged or resumed
    /// are not read).
    pub read_bytes: u64,
    /// Files (and their bytes) whose chunk lists came from the journal of
    /// an interrupted earlier run instead of reading them.
    pub resumed_files: u64,
    pub resumed_bytes: u64,
}

/// A source's walk, started with [`start_walk`] before the backup that
/// takes it.
pub struct StartedWalk {
    walk: WalkAhead,
    roots: Vec<WalkRoot>,
}

/// Starts walking `source` on a thread of its own. The walk needs neither
/// the repository nor its key, so a caller that starts it before opening
/// the repository lets it run while Argon2 derives the key (about 30 ms of
/// the 0.1-0.3 s an unchanged backup takes, in which the walk's system
/// calls are the longest path). It runs at most a bounded queue ahead:
/// a walk whose backup never comes costs that much, and stops on drop.
pub fn start_walk(source: &BackupSource) -> Result<StartedWalk> {
    // Files' xattrs are read by walk_and_store, which can take an
    // unchanged file's from the parent snapshot instead.
    let options = WalkOptions { file_xattrs_later: source.walk.xattrs, ..source.walk.clone() };
    let walk = WalkAhead::spawn(Walker::new(source.roots.clone(), options)?)
        .map_err(|e| EngineError::io("starting the walk thread", e))?;
    Ok(StartedWalk { walk, roots: source.roots.clone() })
}

/// Runs one backup and commits its snapshot.
pub fn backup(
    repo: &Repository,
    source: &BackupSource,
    opts: &BackupOptions,
    progress: &Progress,
) -> Result<BackupReport> {
    let lock = Arc::new(RepoLock::shared(repo, "backup")?);
    // The walk starts now, while the index and the parent load.
    backup_locked(repo, source, start_walk(source)?, lock, opts, progress)
}

/// [`backup`] with a walk of `source` that [`start_walk`] started earlier.
pub fn backup_with_walk(
    repo: &Repository,
    source: &BackupSource,
    walk: StartedWalk,
    opts: &BackupOptions,
    progress: &Progress,
) -> Result<BackupReport> {
    if walk.roots != source.roots {
        return Err(EngineError::Other(format!("the walk started for other paths than source `{}`", source.label)));
    }
    let lock = Arc::new(RepoLock::shared(repo, "backup")?);
    backup_locked(repo, source, walk, lock, opts, progress)
}

fn backup_locked(
    repo: &Repository,
    source: &BackupSource,
    walk: StartedWalk,
    lock: Arc<RepoLock>,
    opts: &BackupOptions,
    progress: &Progress,
) -> Result<BackupReport> {
    let start_time = opts.time.unwrap_or_else(chrono::Utc::now);
    let walk = walk.walk;
    let (index, unreadable) = ChunkIndex::load_lenient(repo)?;
    for (id, why) in &unreadable {
        progress.warn(crate::Notice::SegmentSkipped { segment: id.short(), why: why.to_string() });
    }
    let index = Arc::new(index);
    let parent = if opts.no_parent { None } else { latest_for(repo, &source.label, &hostname())? };
    let totals = Totals::new(progress, parent.as_ref().map(|p| &p.snapshot.stats));

    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        n => n,
    };
    let codec = opts.compression.unwrap_or(repo.default_compression());
    // A local store takes a pack in milliseconds: one uploader keeps up and
    // holds one 32 MiB pack less in memory. Remote ones overlap two requests.
    let uploaders = if repo.storage().is_local() { 1 } else { 2 };
    let writer = PackWriter::start(
        repo.storage().clone(),
        repo.envelope().clone(),
        repo.pack_target_size(),
        uploaders,
        Some(lock.clone()),
        opts.checkpoint_interval.unwrap_or(crate::pack_writer::DEFAULT_CHECKPOINT_INTERVAL),
    );
    let blob_tx = writer.sender().ok_or_else(|| EngineError::Other("pack writer closed".into()))?;
    let (job_tx, job_rx) = bounded::<Vec<Job>>(threads);
    let dedup = Dedup::new(&index, progress);
    let seal_failure: Mutex<Option<EngineError>> = Mutex::new(None);
    let (mut earlier, journal) = open_journals(repo, source, opts);

    let result = std::thread::scope(|scope| {
        let totals = &totals;
        if !opts.no_scan {
            // One thread: it only lists and stats, far ahead of the backup,
            // which reads every file it lists (see `totals`).
            let roots = source.roots.clone();
            scope.spawn(move || totals.scan(roots, &source.walk));
        }
        // Writes the journal's pending files every second while the walk runs.
        let (_stop_ticks, ticks) = bounded::<()>(0);
        if let Some(journal) = &journal {
            scope.spawn(move || {
                while matches!(ticks.recv_timeout(resume::FLUSH_INTERVAL), Err(RecvTimeoutError::Timeout)) {
                    journal.flush_if_due();
                }
            });
        }
        for _ in 0..threads {
            let rx = job_rx.clone();
            let tx = blob_tx.clone();
            let (dedup, seal_failure) = (&dedup, &seal_failure);
            scope.spawn(move || {
                for batch in rx.iter() {
                    let mut blobs = Vec::with_capacity(batch.len());
                    for job in batch {
                        let (id, ty, raw_length) = (job.id, job.ty, job.bytes().len() as u32);
                        let sealed = match seal_job(repo, codec, job) {
                            Ok(s) => s,
                            Err(e) => {
                                // The chunk is claimed as seen: the backup must fail, or a
                                // snapshot could name a chunk that was never stored.
                                crate::parallel::lock(seal_failure).get_or_insert(e);
                                dedup.stop();
                                return;
                            }
                        };
                        // `job` (its plaintext) is gone: not held while the send below waits.
                        blobs.push(SealedBlob { id, ty, raw_length, bytes: sealed });
                    }
                    if tx.send_all(blobs).is_err() {
                        return; // The pack writer failed: `finish` reports why.
                    }
                }
            });
        }
        // Only the sealers receive: once they stop (the pack writer failed),
        // a thread queueing a chunk gets an error instead of waiting forever.
        drop(job_rx);
        drop(blob_tx);
        let read_limit = opts.read_limit.map(crate::throttle::RateLimiter::new);
        // Reading threads: each reads, chunks and hashes whole files, so
        // several files are in flight while the main thread walks ahead.
        let (file_tx, file_rx) = bounded::<FileJob>(threads);
        for _ in 0..threads {
            let rx = file_rx.clone();
            let mut sink =
                ChunkSink::new(&dedup, job_tx.clone(), repo.chunk_id_key(), read_limit.clone(), source.walk.xattrs);
            scope.spawn(move || {
                for job in rx.iter() {
                    let done = job
                        .files
                        .into_iter()
                        .map(|(abs, mut entry)| {
                            let result = if sink.stopped() {
                                Err(FileError::Fatal(EngineError::Other("the backup stopped".into())))
                            } else {
                                read_file(&abs, &mut entry, repo, &mut sink, progress)
                            };
                            FileDone { entry, result }
                        })
                        .collect();
                    let _ = job.done.send(done);
                }
            });
        }
        drop(file_rx);
        let mut sink = ChunkSink::new(&dedup, job_tx, repo.chunk_id_key(), read_limit, source.walk.xattrs);
        let ctx = WalkContext {
            repo,
            index: &index,
            source,
            progress,
            writer: &writer,
            files: file_tx,
            earlier: &mut earlier,
            journal: journal.as_ref(),
            totals,
        };
        let walked = walk_and_store(ctx, walk.items(), parent.as_ref(), &mut sink);
        totals.stop();
        if walked.is_err() {
            dedup.stop();
        }
        drop(sink); // With the readers' copies gone, sealers drain and exit.
        walked.map(|w| {
            let (bytes, chunks) = dedup.added();
            (w, bytes, chunks)
        })
    });
    earlier.close();
    if let Some(e) = crate::parallel::lock(&seal_failure).take() {
        // The pack writer may have stored some packs; they stay usable.
        let _ = writer.finish();
        return Err(e);
    }
    let (walked, added_bytes, added_chunks) = match result {
        Ok(r) => r,
        Err(e) => {
            // Still wait for the writer: what was stored stays usable. If
            // it failed (a full disk), that is the cause worth reporting.
            return Err(writer.finish().err().unwrap_or(e));
        }
    };
    // The walk is complete: this run's journal now holds every file the
    // earlier ones did that is still of use.
    if let Some(j) = &journal {
        if j.flush_and_sync() {
            earlier.files().iter().for_each(|p| resume::remove_journal(p));
        }
    }
    let written = writer.finish()?;
    // Every chunk this backup claimed as new must be in a stored, indexed
    // pack before a snapshot may name it.
    if written.blobs != added_chunks {
        return Err(EngineError::Other(format!(
            "the backup queued {added_chunks} new chunks but stored {}; no snapshot was written (a bug: please report it)",
            written.blobs
        )));
    }

    let mut stats = walked.stats;
    stats.added_bytes = added_bytes;
    stats.added_chunks = added_chunks;
    stats.added_stored = written.stored_bytes;
    stats.errors = walked.warnings.len() as u64;
    let snapshot = Snapshot {
        version: SNAPSHOT_VERSION,
        time: start_time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        end_time: now_rfc3339(),
        hostname: hostname(),
        username: username(),
        source_label: source.label.clone(),
        paths: source.paths.clone(),
        root: walked.root,
        stats,
        parent: parent.as_ref().map(|p| p.id),
        tags: opts.tags.clone(),
        xattrs: source.walk.xattrs,
        copied_from: None,
    };
    let id = SnapshotId(vger_format::id::random_id()?);
    let key = id.storage_key();
    let bytes = seal_object(repo.envelope(), ObjectType::Snapshot, key.as_bytes(), "snapshot", &snapshot)?;
    lock.check_alive()?;
    repo.storage().put_new(&key, &bytes)?;
    // The next backup loads the index from the local cache instead of
    // decoding this one's segments (the peak of an unchanged backup after a
    // large one); this one's index is dropped first, not held beside it.
    let read_bytes = dedup.read_bytes();
    drop(dedup);
    drop(index);
    crate::index_cache::refresh_after(repo, added_chunks);
    drop(lock);
    if let Some(j) = journal {
        j.remove();
    }
    earlier.files().iter().for_each(|p| resume::remove_journal(p));
    Ok(BackupReport {
        snapshot_id: id,
        snapshot,
        warnings: walked.warnings,
        packs_written: written.packs,
        read_bytes,
        resumed_files: walked.resumed_files,
        resumed_bytes: walked.resumed_bytes,
    })
}

/// The journals of interrupted earlier runs of this source (unused with
/// `no_parent`, which reads every file) and this run's new journal.
fn open_journals(
    repo: &Repository,
    source: &BackupSource,
    opts: &BackupOptions,
) -> (EarlierRuns, Option<JournalWriter>) {
    let Some(dir) = &opts.resume_dir else { return (EarlierRuns::default(), None) };
    let binding = resume::Binding {
        repository: hex::encode(repo.repository_id()),
        source_label: source.label.clone(),
        hostname: hostname(),
        paths: source.paths.clone(),
    };
    let mut earlier = EarlierRuns::open(dir, &binding, repo.envelope());
    if opts.no_parent {
        earlier.close();
    }
    let journal = match JournalWriter::create(dir, &binding, repo.envelope().clone()) {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::info!("{e}; backing up without a resume journal");
            None
        }
    };
    (earlier, journal)
}

struct Walked {
    root: ChunkId,
    stats: SnapshotStats,
    warnings: Vec<String>,
    resumed_files: u64,
    resumed_bytes: u64,
}

/// Files for a reading thread, in walk order; their results come back
/// together on `done`, in the same order. Small files go in batches: one
/// hand-over to a reading thread and back per file (and a thread woken up
/// each way) cost more than reading a file of a few KiB.
struct FileJob {
    files: Vec<(PathBuf, Entry)>,
    done: Sender<Vec<FileDone>>,
}

/// A batch is handed to a reading thread once it holds this many files...
const BATCH_FILES: usize = 64;
/// ... or this many bytes (by the walk's sizes), whichever comes first.
const BATCH_FILE_BYTES: u64 = 1 << 20;

/// The batch of files the walk is filling.
struct OpenBatch {
    files: Vec<(PathBuf, Entry)>,
    bytes: u64,
    done: Sender<Vec<FileDone>>,
}

impl OpenBatch {
    /// Adds a file; returns the receiver of the batch's results for its
    /// first file (the others find theirs after it).
    fn add(open: &mut Option<OpenBatch>, abs: PathBuf, entry: Entry) -> Option<Receiver<Vec<FileDone>>> {
        let mut rx = None;
        let batch = open.get_or_insert_with(|| {
            let (done, r) = bounded(1);
            rx = Some(r);
            OpenBatch { files: Vec::with_capacity(BATCH_FILES), bytes: 0, done }
        });
        batch.bytes += entry.size;
        batch.files.push((abs, entry));
        rx
    }

    fn is_full(open: &Option<OpenBatch>) -> bool {
        open.as_ref().is_some_and(|b| b.files.len() >= BATCH_FILES || b.bytes >= BATCH_FILE_BYTES)
    }

    /// Hands the batch (if any) to the reading threads.
    fn send(open: &mut Option<OpenBatch>, files: &Sender<FileJob>) -> Result<()> {
        match open.take() {
            Some(b) => files
                .send(FileJob { files: b.files, done: b.done })
                .map_err(|_| EngineError::Other("the file reading threads stopped".into())),
            None => Ok(()),
        }
    }
}

struct FileDone {
    entry: Entry,
    result: std::result::Result<(), FileError>,
}

/// Walk items waiting, in walk order, to go into the tree. Each carries
/// the parent snapshot's entry of the same path, if any.
enum Pending {
    /// Needs no reading (directories, links, unchanged files); the path
    /// is kept for a hard link that may have to be read after all.
    Ready(Box<Entry>, PathBuf, Option<ParentEntry>),
    /// A file whose chunk list an interrupted earlier run's journal gave;
    /// that run began reading it at the time given (ns).
    Resumed(Box<Entry>, PathBuf, i64, Option<ParentEntry>),
    /// A reading thread has it; it was handed over at the time given (ns).
    /// The first file of a batch holds the receiver of the batch's results.
    Reading(Option<Receiver<Vec<FileDone>>>, i64, Option<ParentEntry>),
    /// The walk could not list or stat something.
    Warning(String),
}

/// Files handed to the reading threads and queued ahead of the tree
/// before the walk waits for the oldest...
const MAX_PENDING_READS: usize = 256;
/// ... or items of any kind. Items that need no reading (unchanged files,
/// directories) are small, and the walk must not wait behind one large
/// changed file while the other reading threads run dry: after a 5% churn
/// of a tree with a few 50 MiB files, a window of 256 items of any kind
/// left one thread reading such a file and the rest of the backup idle.
const MAX_PENDING: usize = 4096;

/// Decoded directories of the parent snapshot kept while the walk passes
/// through them: the open path and a little around it.
const PARENT_CACHE_BYTES: u64 = 16 << 20;

struct WalkContext<'a> {
    repo: &'a Repository,
    index: &'a Arc<ChunkIndex>,
    source: &'a BackupSource,
    progress: &'a Progress,
    writer: &'a PackWriter,
    files: Sender<FileJob>,
    earlier: &'a mut EarlierRuns,
    journal: Option<&'a JournalWriter>,
    totals: &'a Totals<'a>,
}

/// Turns finished walk items into tree entries, in walk order.
struct TreeAssembler<'a> {
    repo: &'a Repository,
    progress: &'a Progress,
    tree: TreeBuilder,
    stats: SnapshotStats,
    warnings: Vec<String>,
    /// First names of hard-linked files that were skipped -> the name that
    /// now holds the data (None until a later name is read).
    lost_links: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Where each file read (or resumed) goes, for a later run to resume.
    journal: Option<&'a JournalWriter>,
    /// The command dumps' folder, which the walk must not also hold.
    dumps: bool,
    /// Results of the batch being added, for its files after the first.
    batch_results: std::collections::VecDeque<FileDone>,
}

impl TreeAssembler<'_> {
    fn add(&mut self, item: Pending, sink: &mut ChunkSink<'_>) -> Result<()> {
        // `read_at`: the file's chunk list is complete as of then (journaled).
        let (mut entry, abs, read, mut read_at, parent) = match item {
            Pending::Warning(w) => {
                self.warnings.push(w);
                self.progress.add_error();
                return Ok(());
            }
            Pending::Ready(entry, abs, parent) => (*entry, Some(abs), Ok(()), None, parent),
            Pending::Resumed(entry, abs, at, parent) => (*entry, Some(abs), Ok(()), Some(at), parent),
            Pending::Reading(rx, at, parent) => {
                let stopped = || EngineError::Other("a file reading thread stopped".into());
                if let Some(rx) = rx {
                    self.batch_results = rx.recv().map_err(|_| stopped())?.into();
                }
                let done = self.batch_results.pop_front().ok_or_else(stopped)?;
                (done.entry, None, done.result, Some(at), parent)
            }
        };
        if self.dumps && entry.path.split(|b| *b == b'/').next() == Some(crate::dump::DUMPS_DIR.as_bytes()) {
            if entry.path == crate::dump::DUMPS_DIR.as_bytes() {
                self.warnings
                    .push(format!("skipped {}: the command dumps are stored under that name", entry.display_path()));
                self.progress.add_error();
            }
            return Ok(());
        }
        // A further name of a file whose first name could not be read: store
        // this name as the file instead (and point later names at it).
        let mut read = read;
        if entry.kind == EntryKind::Hardlink {
            if let Some(target) = entry.target.as_ref().and_then(|t| self.lost_links.get(t)) {
                match target {
                    Some(replacement) => entry.target = Some(replacement.clone()),
                    None => {
                        let first = entry.target.clone().unwrap_or_default();
                        entry.kind = EntryKind::File;
                        entry.target = None;
                        self.lost_links.insert(first, Some(entry.path.clone()));
                        read_at = Some(resume::now_ns());
                        read = match &abs {
                            Some(abs) => read_file(abs, &mut entry, self.repo, sink, self.progress),
                            None => Err(FileError::Skip(format!("skipped {}: cannot locate it", entry.display_path()))),
                        };
                    }
                }
            }
        }
        match entry.kind {
            EntryKind::Dir => self.stats.dirs += 1,
            EntryKind::File => {
                match read {
                    Ok(()) => {}
                    Err(FileError::Skip(msg)) => {
                        self.lost_links.insert(entry.path.clone(), None);
                        self.warnings.push(msg);
                        self.progress.add_error();
                        return Ok(());
                    }
                    Err(FileError::Fatal(e)) => return Err(e),
                }
                self.stats.files += 1;
                self.stats.bytes += entry.size;
                self.progress.add_files(1);
                if let (Some(journal), Some(at)) = (self.journal, read_at) {
                    journal.append(&entry, at);
                }
            }
            _ => {
                self.stats.files += 1;
                self.progress.add_files(1);
            }
        }
        let warning = self.tree.add(entry, parent, &mut |data| sink.store(ObjectType::TreeChunk, data))?;
        if let Some(w) = warning {
            self.warnings.push(w);
            self.progress.add_error();
        }
        Ok(())
    }
}

/// Stores the command dumps under their folder: its entry, for the top
/// directory. They run before the walk, so their folder can take its
/// place by name in the tree written bottom-up.
fn store_dumps(
    repo: &Repository,
    source: &BackupSource,
    sink: &mut ChunkSink<'_>,
    stats: &mut SnapshotStats,
    totals: &Totals<'_>,
) -> Result<Option<TreeEntry>> {
    let progress = totals.progress();
    if source.dumps.is_empty() {
        return Ok(None);
    }
    let mut dumps = Vec::new();
    for spec in &source.dumps {
        progress.stop_if_cancelled()?;
        let entry = crate::dump::run_dump(
            spec,
            repo.chunker_params(),
            &mut |data| sink.store(ObjectType::DataChunk, data),
            progress,
        )?;
        stats.files += 1;
        stats.bytes += entry.size;
        progress.add_files(1);
        totals.dump_stored(entry.size);
        dumps.push(TreeEntry::from_entry(entry, None));
    }
    dumps.sort_by(|a, b| a.name.cmp(&b.name));
    let mut dir = DirWriter::new();
    for entry in &dumps {
        dir.add(entry, &mut |data| sink.store(ObjectType::TreeChunk, data))?;
    }
    let (id, _, digest) = dir.finish(&mut |data| sink.store(ObjectType::TreeChunk, data))?;
    stats.dirs += 1;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let mut entry = TreeEntry::from_entry(crate::dump::dumps_dir_entry(now), Some(id));
    entry.names_digest = Some(digest);
    Ok(Some(entry))
}

fn walk_and_store(
    ctx: WalkContext<'_>,
    walker: impl Iterator<Item = walk_ahead::Walked>,
    parent: Option<&SnapshotInfo>,
    sink: &mut ChunkSink<'_>,
) -> Result<Walked> {
    let WalkContext { repo, index, source, progress, writer, files, earlier, journal, totals } = ctx;
    let mut stats = SnapshotStats::default();
    let dumps = store_dumps(repo, source, sink, &mut stats, totals)?;
    // Only the directories on the walk's path are read from the parent,
    // and both sides of the walk share this cache.
    let store = TreeStore::new(repo, index.clone(), PARENT_CACHE_BYTES);
    let mut parent_entries = parent.map(|p| ParentTree::new(store.clone(), p));
    let mut out = TreeAssembler {
        repo,
        progress,
        tree: TreeBuilder::new(parent_entries.as_ref().map(|p| (store.clone(), p.root())), dumps.clone()),
        stats,
        warnings: Vec::new(),
        lost_links: Default::default(),
        journal,
        dumps: dumps.is_some(),
        batch_results: Default::default(),
    };
    let mut batch: Option<OpenBatch> = None;
    let (mut resumed_files, mut resumed_bytes) = (0u64, 0u64);
    let mut pending = std::collections::VecDeque::new();
    // How many of `pending` are files being read.
    let mut reads = 0usize;
    let want_xattrs = source.walk.xattrs;

    for item in walker {
        if writer.failed() {
            break; // The writer's error is reported by finish().
        }
        // Between files: what was stored so far is indexed when the
        // writer finishes, and no snapshot is written.
        progress.stop_if_cancelled()?;
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                pending.push_back(Pending::Warning(e.to_string()));
                continue;
            }
        };
        let mut entry = item.entry;
        let then = parent_entries.as_mut().and_then(|p| p.find(&entry.path));
        let next = if entry.kind == EntryKind::File {
            let mut reused = match (&parent_entries, &then) {
                (Some(p), Some(then)) => p.unchanged(then, &entry, source.change_detection, index),
                _ => None,
            };
            let resumed = match reused {
                Some(_) => None,
                None => earlier.lookup(&entry, source.change_detection, index),
            };
            if want_xattrs {
                match reused.as_mut().and_then(|u| u.xattrs.take()) {
                    Some(xattrs) => entry.xattrs = xattrs,
                    None if reused.is_some() || resumed.is_some() => entry.xattrs = vger_fs::read_xattrs(&item.abs),
                    // A file to read: the reading thread lists them
                    // through the open file (see `read_file`).
                    None => {}
                }
            }
            match (reused, resumed) {
                (Some(unchanged), _) => {
                    entry.chunks = unchanged.chunks;
                    progress.add_bytes(entry.size);
                    Pending::Ready(Box::new(entry), item.abs, then)
                }
                (None, Some(resumed)) => {
                    entry.chunks = resumed.chunks;
                    progress.add_bytes(entry.size);
                    resumed_files += 1;
                    resumed_bytes += entry.size;
                    Pending::Resumed(Box::new(entry), item.abs, resumed.read_at, then)
                }
                (None, None) => {
                    // Taken before the read starts: an mtime from after it
                    // cannot look older than the read.
                    let read_at = resume::now_ns();
                    let rx = OpenBatch::add(&mut batch, item.abs, entry);
                    if OpenBatch::is_full(&batch) {
                        OpenBatch::send(&mut batch, &files)?;
                    }
                    Pending::Reading(rx, read_at, then)
                }
            }
        } else {
            if want_xattrs && entry.kind == EntryKind::Hardlink {
                entry.xattrs = vger_fs::read_xattrs(&item.abs);
            }
            Pending::Ready(Box::new(entry), item.abs, then)
        };
        reads += usize::from(matches!(next, Pending::Reading(..)));
        pending.push_back(next);
        // Hand finished items to the tree; wait for the oldest when too many queue up.
        while let Some(front) = pending.front() {
            let ready = match front {
                Pending::Reading(Some(rx), ..) => !rx.is_empty(),
                Pending::Reading(None, ..) => !out.batch_results.is_empty(),
                Pending::Ready(..) | Pending::Resumed(..) | Pending::Warning(_) => true,
            };
            if !ready && pending.len() < MAX_PENDING && reads < MAX_PENDING_READS {
                break;
            }
            if !ready {
                // About to wait for the oldest file: its batch may still be open.
                OpenBatch::send(&mut batch, &files)?;
            }
            if let Some(front) = pending.pop_front() {
                reads -= usize::from(matches!(front, Pending::Reading(..)));
                out.add(front, sink)?;
            }
        }
    }
    OpenBatch::send(&mut batch, &files)?;
    drop(files);
    while let Some(front) = pending.pop_front() {
        out.add(front, sink)?;
    }
    let TreeAssembler { tree, stats, warnings, .. } = out;
    let (root, written, reused) = tree.finish(&mut |data| sink.store(ObjectType::TreeChunk, data))?;
    tracing::debug!("tree: {written} directories written, {reused} reused from the parent");
    Ok(Walked { root, stats, warnings, resumed_files, resumed_bytes })
}

enum FileError {
    /// The file vanished or cannot be read: skip it, warn, go on.
    Skip(String),
    /// The repository side failed: stop.
    Fatal(EngineError),
}

fn read_file(
    abs: &std::path::Path,
    entry: &mut Entry,
    repo: &Repository,
    sink: &mut ChunkSink<'_>,
    progress: &Progress,
) -> std::result::Result<(), FileError> {
    let skip = |what: &str, e: std::io::Error| {
        let why = if e.kind() == ErrorKind::NotFound { "it vanished".to_string() } else { e.to_string() };
        FileError::Skip(format!("skipped {}: {what}: {why}", abs.display()))
    };
    progress.set_current(&entry.display_path());
    if entry.size == 0 {
        // Empty when the walk saw it: no chunks, and no need to open it.
        entry.chunks = Vec::new();
        if sink.xattrs.as_ref().is_some_and(|x| !x.unsupported(entry.dev)) {
            entry.xattrs = vger_fs::read_xattrs(abs);
        }
        return Ok(());
    }
    let (file, len) = vger_fs::open_for_backup(abs).map_err(|e| skip("cannot open", e))?;
    if let Some(xattrs) = sink.xattrs.as_mut() {
        entry.xattrs = xattrs.read(&file, entry.dev);
    }
    // Read up to the size the open file has now: a small file is read
    // whole by one read (no second read to find its end), and a file
    // that keeps growing is stored as it was when opened.
    use std::io::Read as _;
    let chunker = vger_chunker::Chunker::new(repo.chunker_params())
        .map_err(|e| FileError::Fatal(EngineError::InvalidSetting(e.to_string())))?;
    // No larger than the smallest chunk: the file is one chunk, read into a
    // buffer of its own that goes to the sealers as it is (most files of a
    // typical tree are this small).
    let small = len <= u64::from(repo.chunker_params().min_size);
    let limit = sink.read_limit.clone();
    if small {
        let data = match limit {
            None => vger_fs::read_whole(&file, len as usize),
            Some(limit) => {
                let mut data = Vec::with_capacity(len as usize);
                crate::throttle::ThrottledRead::new(file, limit).take(len).read_to_end(&mut data).map(|_| data)
            }
        };
        return store_small(data.map_err(|e| skip("read failed", e))?, entry, &chunker, sink, progress);
    }
    // Each chunk is read into a buffer of its own, which goes to the
    // sealers as it is (see `OwnedChunkReader`).
    let (room, tag) = (SEAL_ROOM, ENVELOPE_OVERHEAD - ENVELOPE_HEADER_LEN);
    let spare = sink.spare_chunk.take();
    let skip_read = |e| skip("read failed", e);
    match limit {
        None => {
            // Up to the size the file had when opened (see above).
            let read = move |buf: &mut Vec<u8>, n: usize| vger_fs::append_from(&file, buf, n);
            let reader = OwnedChunkReader::new(read, chunker, room, tag, spare).with_limit(len);
            store_chunks(reader, entry, sink, progress, &skip_read)
        }
        Some(limit) => {
            let source = crate::throttle::ThrottledRead::new(file, limit);
            let reader =
                OwnedChunkReader::new(vger_chunker::append_with(source), chunker, room, tag, spare).with_limit(len);
            store_chunks(reader, entry, sink, progress, &skip_read)
        }
    }
}

/// Stores the chunks `reader` reads of the file of `entry`, and records
/// them and the size read in it. A read error skips the file (`skip_read`);
/// the repository's errors and a cancel stop the backup.
fn store_chunks<F: FnMut(&mut Vec<u8>, usize) -> std::io::Result<usize>>(
    mut reader: OwnedChunkReader<F>,
    entry: &mut Entry,
    sink: &mut ChunkSink<'_>,
    progress: &Progress,
    skip_read: &dyn Fn(std::io::Error) -> FileError,
) -> std::result::Result<(), FileError> {
    let mut chunks = Vec::new();
    let mut size = 0u64;
    while let Some(buf) = reader.next_chunk().map_err(skip_read)? {
        if progress.cancelled() {
            // A large file is left between two chunks: they are stored and
            // indexed, and no snapshot refers to them.
            return Err(FileError::Fatal(EngineError::Cancelled));
        }
        let n = buf.len() - SEAL_ROOM;
        let (id, unused) = sink.store_in(ObjectType::DataChunk, buf).map_err(FileError::Fatal)?;
        if let Some(buf) = unused {
            reader.recycle(buf);
        }
        sink.count_read(n as u64);
        size += n as u64;
        progress.add_bytes(n as u64);
        chunks.push(ChunkRef(id, n as u32));
    }
    sink.spare_chunk = reader.into_spare();
    // The file may have shrunk since it was opened (or grown since it was
    // listed): record what was read, which is consistent with the chunks.
    entry.size = size;
    entry.chunks = chunks;
    Ok(())
}

/// Stores a file read whole into `data` (see `read_file`).
fn store_small(
    data: Vec<u8>,
    entry: &mut Entry,
    chunker: &vger_chunker::Chunker,
    sink: &mut ChunkSink<'_>,
    progress: &Progress,
) -> std::result::Result<(), FileError> {
    let size = data.len();
    entry.chunks = match chunker.next_cut(&data, true) {
        None => Vec::new(),
        Some(cut) if cut == size => {
            let id = sink.store_owned(ObjectType::DataChunk, data).map_err(FileError::Fatal)?;
            vec![ChunkRef(id, size as u32)]
        }
        // Not for FastCDC, which never cuts below its minimum size.
        Some(_) => {
            let mut chunks = Vec::new();
            let mut at = 0;
            for n in chunker.chunk_lengths(&data) {
                let id = sink.store(ObjectType::DataChunk, &data[at..at + n]).map_err(FileError::Fatal)?;
                chunks.push(ChunkRef(id, n as u32));
                at += n;
            }
            chunks
        }
    };
    sink.count_read(size as u64);
    progress.add_bytes(size as u64);
    entry.size = size as u64;
    Ok(())
}

/// Helper used by callers that build sources from plain paths.
pub fn roots_for_paths(paths: &[PathBuf]) -> Vec<WalkRoot> {
    if let [single] = paths {
        return vec![WalkRoot { abs: single.clone(), rel: Vec::new() }];
    }
    paths
        .iter()
        .map(|p| {
            use std::os::unix::ffi::OsStrExt;
            let rel = p.as_os_str().as_bytes();
            let rel = rel.strip_prefix(b"/").unwrap_or(rel).to_vec();
            WalkRoot { abs: p.clone(), rel }
        })
        .collect()
}
