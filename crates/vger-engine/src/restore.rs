//! Restoring a snapshot (or some paths of it) into a target directory.
//!
//! The main thread walks the snapshot's tree (or the subtrees of the paths
//! asked for) and creates directories, links and special files itself; file contents are written by worker
//! threads, each file into a temporary name that is renamed into place when
//! complete. Adjacent chunks of a file that sit next to each other in one
//! pack are fetched with one ranged read, and small files whose chunks lie
//! close together in one pack (a folder's files, backed up together) go to
//! a worker as one batch, read from the pack with one ranged read. Hard links are made last, once
//! their targets exist, and directory metadata is applied at the very end.
//! All path safety (nothing is written outside the target) is enforced by
//! `vger_fs::RestoreTarget`.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::bounded;
use serde::Serialize;
use vger_crypto::ObjectType;
use vger_format::compress::decompress_ref;
use vger_format::entry::{Entry, EntryKind};
use vger_format::id::ChunkId;
use vger_format::FormatError;
use vger_fs::{ExistingFile, FileWriter, NewFile, RestoreTarget};

use crate::blob::BlobReader;
use crate::index::ChunkIndex;
use crate::parallel::lock;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshots::SnapshotInfo;
use crate::tree::{path_components, SnapshotTree, TreeStore, WalkItem};
use crate::{EngineError, Result};

mod compare;
mod delete;

use delete::RestoredDir;

/// Largest single ranged read when fetching adjacent chunks.
const MAX_READ: u64 = 16 << 20;

/// A file of at most this size whose chunks lie in one pack can be
/// restored in a batch with others of the same pack.
const SMALL_FILE: u64 = 1 << 20;

/// Largest ranged read of a batch of small files.
const BATCH_READ: u64 = 4 << 20;

/// Most files in one batch (a worker writes them one after the other).
const BATCH_FILES: usize = 512;

/// Bytes of a batch's read that no file of it needs, at most (beyond
/// as many as the files need): the gaps left by chunks stored before.
const BATCH_SLACK: u64 = 1 << 20;

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Only these paths (and what lies below them); everything when empty.
    pub paths: Vec<Vec<u8>>,
    /// Writer threads; 0 = one per CPU (at least 2).
    pub threads: usize,
    pub fs: vger_fs::RestoreOptions,
    /// What to do with a regular file already at an entry's path.
    pub overwrite: Overwrite,
    /// Read each written file back before it is put in place and check
    /// that every chunk's bytes hash to the chunk's ID.
    pub verify: bool,
    /// Write nothing: list in the report what would be created,
    /// changed and deleted.
    pub dry_run: bool,
    /// Remove what the target holds inside the restored paths that the
    /// snapshot does not have (see `restore/delete.rs`).
    pub delete: bool,
}

/// What a restore does with a regular file that is already in the target.
/// Anything else of the same name (a symlink, a special file) is replaced
/// whatever the mode; a directory is never replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overwrite {
    /// Replace it.
    Always,
    /// Replace it unless its size and modification time equal the
    /// snapshot's (a file restored before by vger matches both) or, when
    /// only the time differs, its content cut into chunks gives the
    /// snapshot's chunk IDs (then only its metadata is set).
    IfChanged,
    /// Replace it only when the snapshot's copy is newer.
    IfNewer,
    /// Keep it (the default: a restore never destroys a file it did not
    /// write; into an empty target this costs one `lstat` per file).
    #[default]
    Never,
}

impl Overwrite {
    /// Whether the snapshot's `entry` replaces the file found.
    pub fn replaces(self, entry: &Entry, found: &vger_fs::Existing) -> bool {
        if !found.regular_file {
            return true;
        }
        match self {
            Overwrite::Always => true,
            Overwrite::IfChanged => found.size != entry.size || found.mtime != entry.mtime,
            Overwrite::IfNewer => entry.mtime > found.mtime,
            Overwrite::Never => false,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    pub bytes: u64,
    /// Bytes of packs read from storage for file contents (tree and
    /// index reads not included).
    pub fetched_bytes: u64,
    /// Files read back and found equal to the snapshot (with `verify`).
    pub verified: u64,
    /// Regular files left as they were in the target (see [`Overwrite`]).
    pub skipped: u64,
    /// Bytes of the files skipped.
    pub skipped_bytes: u64,
    /// Of the files skipped, those kept by `if-changed` because their
    /// content equals the snapshot's though their time did not: their
    /// metadata was set (in a dry run: would be).
    pub metadata_only: u64,
    /// With `dry_run`: paths that would be created (directories
    /// included), and existing ones that would be replaced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_create: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_change: Vec<String>,
    /// With `delete`: paths removed from the target (deepest first), or
    /// with `dry_run` those that would be.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_delete: Vec<String>,
    /// Entries that could not be restored, one line each.
    pub failures: Vec<String>,
}

/// Decoded directories kept while restoring: only the walk's path needs
/// to stay, and each directory is read once.
const TREE_CACHE_BYTES: u64 = 8 << 20;

/// The requested paths, cleaned, in walk order, without those that lie
/// below another one (their subtree is restored with it).
fn top_paths(paths: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for p in paths {
        out.push(path_components(p)?.join(&b'/'));
    }
    out.sort_by(|a, b| vger_fs::cmp_paths(a, b));
    out.dedup();
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for p in out {
        let below_kept =
            kept.last().is_some_and(|k| k.is_empty() || (p.starts_with(k) && p.get(k.len()) == Some(&b'/')));
        if !below_kept {
            kept.push(p);
        }
    }
    Ok(kept)
}

pub fn restore(
    repo: &Repository,
    snap: &SnapshotInfo,
    dest: &Path,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreReport> {
    let _lock = crate::lock::RepoLock::shared(repo, "restore")?;
    let (index, unreadable) = ChunkIndex::load_lenient(repo)?;
    for (id, why) in &unreadable {
        progress.warn(crate::Notice::SegmentSkipped { segment: id.short(), why: why.to_string() });
    }
    let mut target =
        if opts.dry_run { RestoreTarget::probe(dest, opts.fs)? } else { Some(RestoreTarget::new(dest, opts.fs)?) };
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2),
        n => n,
    };
    let report = std::sync::Mutex::new(RestoreReport::default());
    let fetched = AtomicU64::new(0);
    let mut hardlinks = Vec::new();
    let mut compare_buffer = Vec::new();
    // The directories walked, which `delete` cleans.
    let mut walked_dirs: Vec<RestoredDir> = Vec::new();
    let top = top_paths(&opts.paths)?;
    let mut matched_any = opts.paths.is_empty();
    let index = std::sync::Arc::new(index);
    let tree = SnapshotTree::open(&TreeStore::new(repo, index.clone(), TREE_CACHE_BYTES), snap);
    let (tx, rx) = bounded::<Job>(threads * 4);
    let walk: Result<()> = std::thread::scope(|scope| {
        // A restore of the whole snapshot has its stats for totals (the
        // front end sets them); one of some paths counts them beside the
        // restore, from the selected subtrees' tree objects.
        // It reads through the restore's tree store: a directory decoded
        // by one walk is in the cache for the other.
        if !top.is_empty() {
            let (tree, top) = (tree.clone(), &top);
            scope.spawn(move || {
                if let Some((files, bytes)) = selected_totals(&tree, top, progress) {
                    progress.set_totals(files, bytes);
                }
            });
        }
        for _ in 0..threads {
            let rx = rx.clone();
            let (index, report, fetched) = (&*index, &report, &fetched);
            scope.spawn(move || {
                let mut buffers = Buffers::default();
                let worker = Worker { repo, index, progress, report, fetched, verify: opts.verify };
                for job in rx.iter() {
                    if progress.cancelled() {
                        continue; // Files queued when the front end cancelled are not written.
                    }
                    match job {
                        Job::One(job) => worker.one(*job, &mut buffers),
                        Job::Batch(batch) => worker.batch(batch, &mut buffers),
                    }
                }
            });
        }
        drop(rx);
        let send = |job: Job| tx.send(job).map_err(|_| EngineError::Other("restore workers stopped".into()));
        let mut batcher = Batcher::default();
        let mut restore_one = |entry: Entry| -> Result<()> {
            progress.stop_if_cancelled()?;
            if opts.dry_run {
                let mut report = lock(&report);
                if let (true, Some(target)) = (opts.delete, target.as_mut()) {
                    if let Err(e) = delete::clear_the_way(target, &entry, true, &mut report) {
                        report.failures.push(format!("{}: {e}", entry.display_path()));
                    }
                }
                plan_one(repo, target.as_mut(), &entry, opts.overwrite, &mut report, &mut compare_buffer);
                return Ok(());
            }
            let Some(target) = target.as_mut() else {
                return Err(EngineError::Other("restore target is not open".into()));
            };
            if opts.delete {
                let mut report = lock(&report);
                if let Err(e) = delete::clear_the_way(target, &entry, false, &mut report) {
                    progress.add_error();
                    report.failures.push(format!("{}: {e}", entry.display_path()));
                    return Ok(());
                }
            }
            let done = match entry.kind {
                EntryKind::Dir => target.create_dir(&entry).map(|()| lock(&report).dirs += 1),
                EntryKind::File => match target.existing(&entry) {
                    Ok(Some(found)) if !opts.overwrite.replaces(&entry, &found) => {
                        let mut r = lock(&report);
                        r.skipped += 1;
                        r.skipped_bytes += entry.size;
                        progress.add_files(1);
                        progress.add_bytes(entry.size);
                        return Ok(());
                    }
                    Err(e) => Err(e),
                    Ok(found) => match target.prepare_file(&entry) {
                        Ok(file) => {
                            // Only the time differs: the worker compares contents.
                            let existing = match found {
                                Some(f) if opts.overwrite == Overwrite::IfChanged && f.size == entry.size => {
                                    target.open_existing_file(&entry).ok().flatten()
                                }
                                _ => None,
                            };
                            let job = FileJob { file, entry, existing };
                            if job.existing.is_some() {
                                send(Job::One(Box::new(job)))?;
                            } else {
                                batcher.add(&index, job, &send)?;
                            }
                            return Ok(());
                        }
                        Err(e) => Err(e),
                    },
                },
                // Progress counts every entry but folders, as the snapshot's
                // stats that give its total do.
                EntryKind::Symlink => target.create_symlink(&entry).map(|()| {
                    lock(&report).links += 1;
                    progress.add_files(1);
                }),
                EntryKind::Hardlink => {
                    progress.add_files(1);
                    hardlinks.push(entry);
                    return Ok(());
                }
                _ => target.create_special(&entry).map(|_| progress.add_files(1)),
            };
            if let Err(e) = done {
                progress.add_error();
                lock(&report).failures.push(format!("{}: {e}", entry.display_path()));
            }
            Ok(())
        };
        let walk_below = |path: &[u8],
                          restore_one: &mut dyn FnMut(Entry) -> Result<()>,
                          dirs: &mut Vec<RestoredDir>|
         -> Result<()> {
            for item in tree.walk(path)? {
                match item {
                    Ok(WalkItem { path, entry }) => {
                        if let (true, Some(tree)) = (opts.delete, entry.tree) {
                            dirs.push(RestoredDir { path: path.clone(), tree });
                        }
                        restore_one(entry.with_path(path))?
                    }
                    // A directory below the one asked for that cannot be
                    // read fails alone; the rest is still restored (the one
                    // asked for failing fails `walk` itself).
                    Err(e @ EngineError::UnreadableDirectory { .. }) => {
                        progress.add_error();
                        lock(&report).failures.push(e.to_string());
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        };
        if opts.paths.is_empty() {
            walked_dirs.push(RestoredDir { path: Vec::new(), tree: *tree.root() });
            walk_below(b"", &mut restore_one, &mut walked_dirs)?;
        }
        let mut made: Vec<Vec<u8>> = Vec::new();
        for path in &top {
            if path.is_empty() {
                matched_any = true;
                walked_dirs.push(RestoredDir { path: Vec::new(), tree: *tree.root() });
                walk_below(b"", &mut restore_one, &mut walked_dirs)?;
                continue;
            }
            let Some(found) = tree.stat(path)? else { continue };
            matched_any = true;
            // Its parent directories first, each once, with their metadata.
            let parts: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
            for depth in 1..parts.len() {
                let parent = parts.get(..depth).unwrap_or_default().join(&b'/');
                if made.contains(&parent) {
                    continue;
                }
                if let Some(dir) = tree.stat(&parent)? {
                    restore_one(dir.with_path(parent.clone()))?;
                }
                made.push(parent);
            }
            let subtree = found.tree;
            restore_one(found.with_path(path.clone()))?;
            if let Some(tree) = subtree {
                walked_dirs.push(RestoredDir { path: path.clone(), tree });
                walk_below(path, &mut restore_one, &mut walked_dirs)?;
            }
        }
        if let Some(last) = batcher.take() {
            send(last)?;
        }
        drop(tx);
        Ok(())
    });
    walk?;
    // Files whose writers skipped them are not complete: no directory
    // metadata or hard links for a tree that is not all there.
    progress.stop_if_cancelled()?;
    if !matched_any {
        return Err(EngineError::PathsNotInSnapshot);
    }
    let mut report = report.into_inner().unwrap_or_else(|p| p.into_inner());
    report.fetched_bytes = fetched.into_inner();
    if let (true, Some(target)) = (opts.delete, target.as_mut()) {
        delete::delete_extras(target, tree.store(), &walked_dirs, opts.dry_run, &mut report);
    }
    let Some(mut target) = target.filter(|_| !opts.dry_run) else {
        return Ok(report);
    };
    for link in hardlinks {
        match target.create_hardlink(&link) {
            Ok(()) => report.links += 1,
            Err(e) => report.failures.push(format!("{}: {e}", link.display_path())),
        }
    }
    target.finish()?;
    Ok(report)
}

/// Files and bytes of the entries restoring the paths `top` of `tree`
/// restores (the paths themselves and all below them), counted as the
/// restore's progress counts them and the snapshot's stats count a whole
/// tree: every entry but a directory is a file, a regular file's size its
/// bytes. Reads the tree objects of the selected subtrees only. `None`
/// when cancelled or when a directory cannot be read (the restore then
/// reports it; its bar stays without totals).
fn selected_totals(tree: &SnapshotTree, top: &[Vec<u8>], progress: &Progress) -> Option<(u64, u64)> {
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut count = |kind: EntryKind, size: u64| {
        if kind != EntryKind::Dir {
            files += 1;
        }
        if kind == EntryKind::File {
            bytes += size;
        }
    };
    for path in top {
        if !path.is_empty() {
            let found = tree.stat(path).ok()?;
            let Some(found) = found else { continue };
            count(found.kind, found.size);
            if found.tree.is_none() {
                continue;
            }
        }
        for item in tree.walk(path).ok()? {
            if progress.cancelled() {
                return None;
            }
            let entry = item.ok()?.entry;
            count(entry.kind, entry.size);
        }
    }
    Some((files, bytes))
}

/// A regular file for a worker to write, and with `if-changed` the file
/// of the same size already there, to compare first.
struct FileJob {
    file: NewFile,
    entry: Entry,
    existing: Option<ExistingFile>,
}

/// What a worker is handed.
enum Job {
    One(Box<FileJob>),
    Batch(Batch),
}

/// Small files whose chunks all lie in `region` of one pack (none for
/// a batch of empty files only), each with its chunks' places there.
#[derive(Default)]
struct Batch {
    region: Option<Region>,
    files: Vec<(FileJob, Vec<(u64, u32)>)>,
    /// Sealed bytes the files' chunks take, as the slack rule counts them.
    needed: u64,
}

#[derive(Clone, Copy)]
struct Region {
    pack: vger_format::id::PackId,
    start: u64,
    end: u64,
}

impl Region {
    /// The smallest region holding both; `None` when in other packs.
    fn union(self, other: Region) -> Option<Region> {
        (self.pack == other.pack).then(|| Region {
            pack: self.pack,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        })
    }
}

/// Gathers small files, in walk order, into batches of one pack region.
#[derive(Default)]
struct Batcher {
    current: Batch,
}

impl Batcher {
    /// Adds `job` to the batch being gathered, or sends it alone when it
    /// is not small; sends the batch first when `job` does not fit in it.
    fn add(&mut self, index: &ChunkIndex, job: FileJob, send: &dyn Fn(Job) -> Result<()>) -> Result<()> {
        let Some((region, places)) = small_file_places(index, &job.entry) else {
            return send(Job::One(Box::new(job)));
        };
        let needed: u64 = places.iter().map(|(_, len)| u64::from(*len)).sum();
        let fits = |batch: &Batch| -> bool {
            if batch.files.len() >= BATCH_FILES {
                return false;
            }
            let (Some(have), Some(new)) = (batch.region, region) else { return true };
            have.union(new).is_some_and(|u| {
                let len = u.end - u.start;
                len <= BATCH_READ && len <= batch.needed + needed + BATCH_SLACK
            })
        };
        if !fits(&self.current) {
            if let Some(full) = self.take() {
                send(full)?;
            }
        }
        let batch = &mut self.current;
        batch.region = match (batch.region, region) {
            (Some(have), Some(new)) => have.union(new),
            (have, new) => have.or(new),
        };
        batch.needed += needed;
        batch.files.push((job, places));
        Ok(())
    }

    /// The batch gathered so far, if it holds any file.
    fn take(&mut self) -> Option<Job> {
        let batch = std::mem::take(&mut self.current);
        (!batch.files.is_empty()).then_some(Job::Batch(batch))
    }
}

/// Where a small file's chunks lie when they all are in one pack, close
/// together: the region holding them (`None` for an empty file) and each
/// chunk's offset and length. `None` for a file to restore alone (a big
/// one, one spread over packs or far apart in one, a chunk not in the
/// index: its own read reports that).
#[allow(clippy::type_complexity)]
fn small_file_places(index: &ChunkIndex, entry: &Entry) -> Option<(Option<Region>, Vec<(u64, u32)>)> {
    if entry.size > SMALL_FILE {
        return None;
    }
    let mut region: Option<Region> = None;
    let mut places = Vec::with_capacity(entry.chunks.len());
    let mut needed = 0u64;
    for chunk in &entry.chunks {
        let (pack, loc) = index.get(chunk.id())?;
        let (start, len) = (u64::from(loc.offset), loc.length);
        let here = Region { pack: pack.id, start, end: start + u64::from(len) };
        region = Some(match region {
            None => here,
            Some(r) => r.union(here)?,
        });
        needed += u64::from(len);
        places.push((start, len));
    }
    if let Some(r) = region {
        if r.end - r.start > needed + BATCH_SLACK {
            return None;
        }
    }
    Some((region, places))
}

/// One worker's view of the restore.
struct Worker<'a> {
    repo: &'a Repository,
    index: &'a ChunkIndex,
    progress: &'a Progress,
    report: &'a std::sync::Mutex<RestoreReport>,
    fetched: &'a AtomicU64,
    verify: bool,
}

impl Worker<'_> {
    /// Restores one file on its own (its chunks fetched by ranged reads of
    /// adjacent ones), comparing it first with the file there when asked.
    fn one(&self, FileJob { file, entry, existing }: FileJob, buffers: &mut Buffers) {
        let (report, progress) = (self.report, self.progress);
        if let Some(existing) = existing {
            match keep_if_same(self.repo, existing, &entry, &mut buffers.compare) {
                Ok(true) => {
                    let mut r = lock(report);
                    r.skipped += 1;
                    r.skipped_bytes += entry.size;
                    r.metadata_only += 1;
                    progress.add_files(1);
                    progress.add_bytes(entry.size);
                    return;
                }
                Ok(false) => {}
                Err(e) => return self.failed(&entry, e),
            }
        }
        let written = file.create().map_err(EngineError::from).and_then(|writer| {
            write_file(self.repo, self.index, writer, &entry, progress, buffers, self.fetched, self.verify)
        });
        match written {
            Ok(()) => self.written(&entry),
            Err(e) => self.failed(&entry, e),
        }
    }

    /// Restores a batch of small files: their pack region is read once, and
    /// each chunk in it opened (decrypted in place, checked) once.
    fn batch(&self, batch: Batch, buffers: &mut Buffers) {
        if let Some(r) = batch.region {
            let key = r.pack.storage_key();
            if self.repo.storage().get_range_into(&key, r.start, r.end - r.start, &mut buffers.read).is_err() {
                // Each file alone: each then fails with its own error, or
                // is written when only the larger read failed.
                for (job, _) in batch.files {
                    self.one(job, buffers);
                }
                return;
            }
            self.fetched.fetch_add(r.end - r.start, Ordering::Relaxed);
        }
        let start = batch.region.map_or(0, |r| r.start);
        let mut opened = Opened::default();
        for (FileJob { file, entry, .. }, places) in batch.files {
            if self.progress.cancelled() {
                return;
            }
            let written = file.create().map_err(EngineError::from).and_then(|mut writer| {
                let result =
                    self.write_from_batch(&mut writer, &entry, &places, start, buffers, &mut opened).and_then(|()| {
                        match self.verify {
                            true => verify_written(self.repo, &writer, &entry, &mut buffers.compare),
                            false => Ok(()),
                        }
                    });
                match result {
                    Ok(()) => Ok(writer.finish(&entry)?),
                    Err(e) => {
                        writer.abort();
                        Err(e)
                    }
                }
            });
            match written {
                Ok(()) => self.written(&entry),
                Err(e) => self.failed(&entry, e),
            }
        }
    }

    /// Writes `entry`'s chunks, found at `places` in the batch's read
    /// (which starts at pack offset `start`).
    fn write_from_batch(
        &self,
        writer: &mut FileWriter,
        entry: &Entry,
        places: &[(u64, u32)],
        start: u64,
        buffers: &mut Buffers,
        opened: &mut Opened,
    ) -> Result<()> {
        let declared: u64 = entry.chunks.iter().map(|c| u64::from(c.len())).sum();
        if declared != entry.size {
            return Err(size_mismatch(entry, declared));
        }
        let cap = BlobReader::new(self.repo, self.index).cap(ObjectType::DataChunk);
        let Buffers { read, scratch, .. } = buffers;
        let mut file_offset = 0u64;
        for (chunk, (offset, length)) in entry.chunks.iter().zip(places) {
            let payload = opened.payload(self.repo, chunk.id(), offset - start, *length, read)?;
            let data = check_chunk(self.repo, chunk.id(), payload, cap, scratch)?;
            writer
                .write_at(file_offset, data)
                .map_err(|e| EngineError::io(format!("writing {}", entry.display_path()), e))?;
            file_offset += data.len() as u64;
            self.progress.add_bytes(data.len() as u64);
        }
        // The chunks' lengths in the entry may lie: what they decrypted to counts.
        if file_offset != entry.size {
            return Err(size_mismatch(entry, file_offset));
        }
        Ok(())
    }

    fn written(&self, entry: &Entry) {
        let mut r = lock(self.report);
        r.verified += u64::from(self.verify);
        r.files += 1;
        r.bytes += entry.size;
        self.progress.add_files(1);
    }

    fn failed(&self, entry: &Entry, e: EngineError) {
        self.progress.add_error();
        lock(self.report).failures.push(format!("{}: {e}", entry.display_path()));
    }
}

/// The chunks of a batch's read already decrypted (in place), by their
/// offset in the read: a chunk that several files of the batch share
/// (or one file twice) is decrypted once.
#[derive(Default)]
struct Opened {
    by_offset: HashMap<u64, (ChunkId, Range<usize>)>,
}

impl Opened {
    /// The plaintext of chunk `id` at `at..at + length` of `read`.
    fn payload<'r>(
        &mut self,
        repo: &Repository,
        id: &ChunkId,
        at: u64,
        length: u32,
        read: &'r mut [u8],
    ) -> Result<&'r [u8]> {
        let range = match self.by_offset.get(&at) {
            Some((seen, range)) if seen == id => range.clone(),
            // Two chunks at one place: the index lies.
            Some(_) => {
                return Err(FormatError::corrupt(
                    format!("chunk {}", id.short()),
                    "the index puts another chunk at its place",
                )
                .into())
            }
            None => {
                let at = usize::try_from(at).map_err(|_| short_read())?;
                let end = at.checked_add(length as usize).ok_or_else(short_read)?;
                let base = read.as_ptr() as usize;
                let sealed = read.get_mut(at..end).ok_or_else(short_read)?;
                let payload = repo
                    .envelope()
                    .open_in_place(ObjectType::DataChunk, &id.0, sealed)
                    .map_err(|e| FormatError::crypto(format!("chunk {}", id.short()), e))?;
                let from = payload.as_ptr() as usize - base;
                let range = from..from + payload.len();
                self.by_offset.insert(at as u64, (*id, range.clone()));
                range
            }
        };
        read.get(range).ok_or_else(short_read)
    }
}

fn short_read() -> EngineError {
    EngineError::Other("short read from pack".into())
}

/// Keeps `existing` when its content is the snapshot's, setting the
/// entry's metadata on it; `false` when it differs or cannot be read (then
/// it is rewritten).
fn keep_if_same(repo: &Repository, existing: ExistingFile, entry: &Entry, buf: &mut Vec<u8>) -> Result<bool> {
    if !compare::same_content(repo, existing.file(), entry, buf).unwrap_or(false) {
        return Ok(false);
    }
    existing.keep(entry)?;
    Ok(true)
}

/// Notes in `report` what restoring `entry` would do, for a dry run;
/// `target` is `None` when the destination does not exist yet.
fn plan_one(
    repo: &Repository,
    mut target: Option<&mut RestoreTarget>,
    entry: &Entry,
    overwrite: Overwrite,
    report: &mut RestoreReport,
    buf: &mut Vec<u8>,
) {
    let found = match target.as_deref_mut().map(|t| t.existing(entry)) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(found))) => Some(found),
        Some(Err(e)) => {
            report.failures.push(format!("{}: {e}", entry.display_path()));
            return;
        }
    };
    let path = entry.display_path();
    match (entry.kind, found) {
        (_, None) => report.would_create.push(path),
        (EntryKind::Dir, Some(_)) => {}
        (EntryKind::File, Some(found)) if !overwrite.replaces(entry, &found) => {
            report.skipped += 1;
            report.skipped_bytes += entry.size;
        }
        (EntryKind::File, Some(found))
            if overwrite == Overwrite::IfChanged
                && found.size == entry.size
                && target
                    .and_then(|t| t.open_existing_file(entry).ok().flatten())
                    .is_some_and(|f| compare::same_content(repo, f.file(), entry, buf).unwrap_or(false)) =>
        {
            report.skipped += 1;
            report.skipped_bytes += entry.size;
            report.metadata_only += 1;
        }
        (_, Some(_)) => report.would_change.push(path),
    }
}

/// A restore worker's buffers, reused from file to file so that reading
/// and decompressing allocate (and zero) nothing once they have grown.
#[derive(Default)]
struct Buffers {
    /// Sealed chunks as read from a pack, opened in place.
    read: Vec<u8>,
    /// Decompressed chunks; stored ones are written from `read`.
    scratch: Vec<u8>,
    /// Reading an existing file to compare it (`if-changed`).
    compare: Vec<u8>,
}

/// Fetches a file's chunks (adjacent ones in one read) and writes them.
#[allow(clippy::too_many_arguments)] // One worker's state, passed as it is used.
fn write_file(
    repo: &Repository,
    index: &ChunkIndex,
    mut writer: FileWriter,
    entry: &Entry,
    progress: &Progress,
    buffers: &mut Buffers,
    fetched: &AtomicU64,
    verify: bool,
) -> Result<()> {
    let declared: u64 = entry.chunks.iter().map(|c| u64::from(c.len())).sum();
    let result = if declared == entry.size {
        write_chunks(repo, index, &mut writer, entry, progress, buffers, fetched)
    } else {
        Err(size_mismatch(entry, declared))
    };
    let result = match result {
        Ok(()) if verify => verify_written(repo, &writer, entry, &mut buffers.read),
        other => other,
    };
    match result {
        Ok(()) => Ok(writer.finish(entry)?),
        Err(e) => {
            writer.abort();
            Err(e)
        }
    }
}

fn write_chunks(
    repo: &Repository,
    index: &ChunkIndex,
    writer: &mut FileWriter,
    entry: &Entry,
    progress: &Progress,
    buffers: &mut Buffers,
    fetched: &AtomicU64,
) -> Result<()> {
    let cap = BlobReader::new(repo, index).cap(ObjectType::DataChunk);
    let context = || entry.display_path();
    let write_err = |e| EngineError::io(format!("writing {}", context()), e);
    let mut file_offset = 0u64;
    let mut i = 0;
    let Buffers { read: bytes, scratch, .. } = buffers;
    // The last chunk written, kept only when the next one is the same
    // (runs of identical chunks: holes, zeroed regions).
    let mut last: Option<(ChunkId, Vec<u8>)> = None;
    while i < entry.chunks.len() {
        // Group chunks that are contiguous in the same pack.
        let first = &entry.chunks[i];
        if let Some((id, data)) = &last {
            if id == first.id() {
                writer.write_at(file_offset, data).map_err(write_err)?;
                file_offset += data.len() as u64;
                progress.add_bytes(data.len() as u64);
                i += 1;
                continue;
            }
        }
        let (pack, loc) = index
            .get(first.id())
            .ok_or_else(|| EngineError::MissingChunk { chunk: first.id().short(), context: context() })?;
        let start = u64::from(loc.offset);
        let mut end = start + u64::from(loc.length);
        let mut group = vec![(*first.id(), start, loc.length)];
        let mut j = i + 1;
        while let Some(next) = entry.chunks.get(j) {
            match index.get(next.id()) {
                Some((p, l))
                    if p.id == pack.id
                        && u64::from(l.offset) == end
                        && end - start + u64::from(l.length) <= MAX_READ =>
                {
                    group.push((*next.id(), end, l.length));
                    end += u64::from(l.length);
                    j += 1;
                }
                _ => break,
            }
        }
        repo.storage().get_range_into(&pack.id.storage_key(), start, end - start, bytes)?;
        fetched.fetch_add(end - start, Ordering::Relaxed);
        last = None;
        for (k, (id, offset, length)) in group.into_iter().enumerate() {
            let at = (offset - start) as usize;
            let sealed = bytes
                .get_mut(at..at + length as usize)
                .ok_or_else(|| EngineError::Other("short read from pack".into()))?;
            let data = open_chunk_in_place(repo, &id, sealed, cap, scratch)?;
            writer.write_at(file_offset, data).map_err(write_err)?;
            file_offset += data.len() as u64;
            progress.add_bytes(data.len() as u64);
            if entry.chunks.get(i + k + 1).is_some_and(|c| *c.id() == id) {
                last = Some((id, data.to_vec()));
            }
        }
        i = j;
    }
    // The chunks' lengths in the entry may lie: what they decrypted to counts.
    if file_offset != entry.size {
        return Err(size_mismatch(entry, file_offset));
    }
    Ok(())
}

/// Reads a written file back chunk by chunk and checks that each chunk's
/// bytes hash to its ID (holes read back as the zeros they stand for).
fn verify_written(repo: &Repository, writer: &FileWriter, entry: &Entry, buf: &mut Vec<u8>) -> Result<()> {
    let read_err = |e| EngineError::io(format!("reading back {}", entry.display_path()), e);
    writer.set_len(entry.size).map_err(read_err)?;
    let mut offset = 0u64;
    for chunk in &entry.chunks {
        buf.resize(chunk.len() as usize, 0);
        writer.read_at(offset, buf).map_err(read_err)?;
        if repo.chunk_id_key().chunk_id(buf) != chunk.id().0 {
            return Err(EngineError::VerifyFailed { path: entry.display_path(), offset });
        }
        offset += u64::from(chunk.len());
    }
    Ok(())
}

/// A file entry whose chunks do not add up to its size (every honest
/// backup records the bytes it read): refused rather than cut or padded
/// to a size the snapshot claims, which may be petabytes.
fn size_mismatch(entry: &Entry, chunks: u64) -> EngineError {
    FormatError::corrupt(
        format!("snapshot entry {}", entry.display_path()),
        format!("its chunks hold {chunks} bytes but its size says {}", entry.size),
    )
    .into()
}

/// Decrypts a chunk inside the buffer it was read into, decompresses it if
/// it was compressed, and checks that it hashes to its ID.
fn open_chunk_in_place<'a>(
    repo: &Repository,
    id: &ChunkId,
    sealed: &'a mut [u8],
    cap: usize,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8]> {
    let what = || format!("chunk {}", id.short());
    let payload = repo
        .envelope()
        .open_in_place(ObjectType::DataChunk, &id.0, sealed)
        .map_err(|e| FormatError::crypto(what(), e))?;
    check_chunk(repo, id, payload, cap, scratch)
}

/// Decompresses a chunk's decrypted payload if it was compressed and
/// checks that it hashes to its ID.
fn check_chunk<'a>(
    repo: &Repository,
    id: &ChunkId,
    payload: &'a [u8],
    cap: usize,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8]> {
    let data = decompress_ref(payload, cap, scratch)?;
    if repo.chunk_id_key().chunk_id(data) != id.0 {
        return Err(FormatError::corrupt(format!("chunk {}", id.short()), "its content does not hash to its id").into());
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use std::sync::Arc;

    use vger_format::entry::{ChunkRef, Entry, EntryKind};
    use vger_format::id::ChunkId;

    use super::{top_paths, verify_written};
    use crate::repository::{InitOptions, Repository};
    use crate::EngineError;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8).collect()
    }

    /// `--verify` is the last check between a file's bytes on disk and the
    /// snapshot: what was written is read back and a chunk whose bytes do
    /// not hash to its ID is reported where it starts. (Through the CLI
    /// nothing can alter a file between write and read-back, so the check
    /// is driven here with bytes that differ from what the entry names.)
    #[test]
    fn verify_finds_a_written_chunk_that_differs_from_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(vger_storage::LocalStorage::create(&dir.path().join("repo")).unwrap());
        let opts = InitOptions { kdf: vger_crypto::KdfParams::insecure_fast(), ..InitOptions::default() };
        let repo = Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
        let (one, two) = (bytes(70_000, 1), bytes(50_000, 2));
        let mut entry = Entry::new(b"f".to_vec(), EntryKind::File);
        entry.size = (one.len() + two.len()) as u64;
        entry.mode = 0o644;
        for part in [&one, &two] {
            entry.chunks.push(ChunkRef(ChunkId(repo.chunk_id_key().chunk_id(part)), part.len() as u32));
        }
        let mut target =
            vger_fs::RestoreTarget::new(&dir.path().join("dest"), vger_fs::RestoreOptions::default()).unwrap();
        let mut buf = Vec::new();

        let mut writer = target.begin_file(&entry).unwrap();
        writer.write_at(0, &one).unwrap();
        writer.write_at(one.len() as u64, &two).unwrap();
        verify_written(&repo, &writer, &entry, &mut buf).unwrap();

        let mut altered = two.clone();
        altered[123] ^= 0x40;
        let mut writer = target.begin_file(&entry).unwrap();
        writer.write_at(0, &one).unwrap();
        writer.write_at(one.len() as u64, &altered).unwrap();
        match verify_written(&repo, &writer, &entry, &mut buf) {
            Err(EngineError::VerifyFailed { path, offset }) => {
                assert_eq!((path.as_str(), offset), ("f", one.len() as u64));
            }
            other => panic!("a changed byte passed verification: {other:?}"),
        }

        // A short write reads back as zeros where bytes are missing.
        let mut writer = target.begin_file(&entry).unwrap();
        writer.write_at(0, &one).unwrap();
        assert!(matches!(
            verify_written(&repo, &writer, &entry, &mut buf),
            Err(EngineError::VerifyFailed { offset, .. }) if offset == one.len() as u64
        ));
    }

    #[test]
    fn requested_paths_are_cleaned_sorted_and_not_nested() {
        let paths: Vec<Vec<u8>> =
            ["/b/c/", "a-b", "b", "a/x", "b/c/d", "a//x"].iter().map(|p| p.as_bytes().to_vec()).collect();
        let want: Vec<Vec<u8>> = ["a/x", "a-b", "b"].iter().map(|p| p.as_bytes().to_vec()).collect();
        assert_eq!(top_paths(&paths).unwrap(), want);
        assert!(top_paths(&[b"a/../b".to_vec()]).is_err());
    }
}
