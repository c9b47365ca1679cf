//! Resuming an interrupted backup without reading again the files it had
//! finished: a journal of those files in the local state folder.
//!
//! While a backup runs, every file it reads goes into an append-only
//! journal (path, size, mtime, ctime, inode, chunk list), in walk order,
//! in frames sealed with the repository's key. The next backup of the same
//! source reads the journals left behind beside its walk (both are sorted
//! the same way, so memory stays one frame per journal) and takes a file's
//! chunk list from a journal instead of reading the file when the file's
//! metadata is unchanged and every chunk of it is in the index it loaded,
//! that is in a pack named by a stored index segment (a checkpoint).
//! Anything else (a chunk not in the index, a changed file, a frame that
//! does not open, a journal of another repository, source, host or paths
//! set) means the file is read again: a journal only saves work and is
//! never trusted for data. Journals are deleted once the snapshot is
//! committed. The byte layout is in docs/format.md, section 9.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::iter::Peekable;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use vger_crypto::{Envelope, ObjectType};
use vger_format::entry::{ChunkRef, Entry, EntryKind};
use vger_format::object::{open_object, seal_object};
use vger_format::FormatError;

use super::unchanged::{is_unchanged, Recorded};
use super::ChangeDetection;
use crate::index::ChunkIndex;
use crate::parallel::lock;

/// The first bytes of a journal file.
const MAGIC: &[u8; 8] = b"VGERJRNL";
const JOURNAL_VERSION: u32 = 1;
const RUN_ID_LEN: usize = 16;
/// A frame is written once its files take about this much ...
const FRAME_BYTES: usize = 1 << 20;
/// ... or this long after the previous one, so a kill loses at most about
/// this much of the journal.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Frames above this are refused unread (ours stay near `FRAME_BYTES`).
const MAX_FRAME: u32 = 64 << 20;
/// Journals of runs killed one after another are all read; past this many
/// the oldest are deleted.
const KEEP_JOURNALS: usize = 4;
/// A journal of any source untouched this long is deleted: its repository
/// may be gone or its source renamed, and nothing else would remove it.
const ABANDONED_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why a journal cannot be written or read. Never fatal to a backup: the
/// caller logs it and reads the files instead.
#[derive(Debug, Error)]
pub enum ResumeError {
    #[error("resume journal {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("resume journal {}: {source}", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
    #[error("resume journal {}: not a journal (bad magic)", path.display())]
    NotAJournal { path: PathBuf },
    #[error("resume journal {}: written for another repository, source, host or set of paths", path.display())]
    Foreign { path: PathBuf },
    #[error("resume journal {}: frame {frame} is {len} bytes, more than a journal writes", path.display())]
    FrameTooLarge { path: PathBuf, frame: u64, len: u32 },
    #[error("resume journal {}: ends inside frame {frame} (cut short by a crash)", path.display())]
    Truncated { path: PathBuf, frame: u64 },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ResumeError + '_ {
    move |source| ResumeError::Io { path: path.to_path_buf(), source }
}

fn format_err(path: &Path) -> impl FnOnce(FormatError) -> ResumeError + '_ {
    move |source| ResumeError::Format { path: path.to_path_buf(), source }
}

/// What a journal was written for. A journal is used only by a backup of
/// the same source (label and paths) from the same host into the same
/// repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The repository id, hex.
    pub repository: String,
    pub source_label: String,
    pub hostname: String,
    pub paths: Vec<String>,
}

impl Binding {
    /// The start of the file names of this binding's journals: a hash of
    /// all of it (the header inside is checked as well).
    fn file_prefix(&self) -> String {
        let mut h = blake3::Hasher::new();
        let parts = [&self.repository, &self.source_label, &self.hostname].into_iter().chain(&self.paths);
        for part in parts {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(&h.finalize().as_bytes()[..12])
    }

    fn is_journal_name(&self, name: &str) -> bool {
        name.strip_prefix(&self.file_prefix())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|rest| rest.ends_with(".journal"))
    }
}

/// Frame 0 of a journal.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    version: u32,
    binding: Binding,
    /// When the run started (RFC 3339), for messages.
    started: String,
}

/// One file the run finished reading.
#[derive(Debug, Serialize, Deserialize)]
struct DoneFile {
    /// Only `path`, `kind`, `size`, `mtime`, `ctime`, `ino` and `chunks`.
    entry: Entry,
    /// When reading it began (ns since the epoch).
    read_at: i64,
}

/// Frames 1 and on.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Batch {
    files: Vec<DoneFile>,
}

/// The AEAD identity of frame `n` of run `run`: no storage key looks like
/// it, so a frame can be neither taken for a repository object nor moved
/// to another journal or position.
fn frame_identity(run: &[u8; RUN_ID_LEN], n: u64) -> Vec<u8> {
    format!("resume-journal/{}/{n}", hex::encode(run)).into_bytes()
}

/// Nanoseconds since the epoch, now (0 if the clock is out of range, which
/// makes no file skippable).
pub(crate) fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

// ---------------------------------------------------------------- writing

/// The journal of the running backup. Appends come from the thread that
/// assembles the tree, flushes on time from a ticking thread.
pub struct JournalWriter {
    path: PathBuf,
    run: [u8; RUN_ID_LEN],
    envelope: Arc<Envelope>,
    state: Mutex<WriterState>,
}

struct WriterState {
    /// None once a write failed: the journal stops there (what was written
    /// stays usable).
    file: Option<File>,
    next_frame: u64,
    pending: Batch,
    pending_bytes: usize,
    last_flush: Instant,
}

impl JournalWriter {
    /// Creates a new journal (0600, in a 0700 folder) and writes its header.
    pub fn create(dir: &Path, binding: &Binding, envelope: Arc<Envelope>) -> Result<Self, ResumeError> {
        vger_fs::private::create_private_dir(dir).map_err(io_err(dir))?;
        let mut run = [0u8; RUN_ID_LEN];
        vger_crypto::random_bytes(&mut run)
            .map_err(|e| ResumeError::Format { path: dir.to_path_buf(), source: FormatError::crypto("run id", e) })?;
        let path = dir.join(format!("{}-{}.journal", binding.file_prefix(), hex::encode(run)));
        let mut file = vger_fs::private::create_private_file(&path).map_err(io_err(&path))?;
        let header =
            Header { version: JOURNAL_VERSION, binding: binding.clone(), started: crate::repository::now_rfc3339() };
        let sealed = seal_object(&envelope, ObjectType::Snapshot, &frame_identity(&run, 0), "resume journal", &header)
            .map_err(format_err(&path))?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + RUN_ID_LEN + 4 + sealed.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&run);
        push_frame(&mut bytes, &sealed);
        file.write_all(&bytes).map_err(io_err(&path))?;
        let state = WriterState {
            file: Some(file),
            next_frame: 1,
            pending: Batch::default(),
            pending_bytes: 0,
            last_flush: Instant::now(),
        };
        Ok(Self { path, run, envelope, state: Mutex::new(state) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a file whose chunk list is complete, read (or taken from an
    /// earlier journal) starting at `read_at`.
    pub fn append(&self, entry: &Entry, read_at: i64) {
        let mut kept = Entry::new(entry.path.clone(), EntryKind::File);
        kept.size = entry.size;
        kept.mtime = entry.mtime;
        kept.ctime = entry.ctime;
        kept.ino = entry.ino;
        kept.chunks = entry.chunks.clone();
        let mut state = lock(&self.state);
        if state.file.is_none() {
            return;
        }
        state.pending_bytes += 64 + kept.path.len() + 40 * kept.chunks.len();
        state.pending.files.push(DoneFile { entry: kept, read_at });
        if state.pending_bytes >= FRAME_BYTES {
            self.write_frame(&mut state);
        }
    }

    /// Writes the files recorded since the last frame if that was at least
    /// [`FLUSH_INTERVAL`] ago.
    pub fn flush_if_due(&self) {
        let mut state = lock(&self.state);
        if state.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.write_frame(&mut state);
        }
    }

    /// Writes what is pending and syncs the file to disk; false if the
    /// journal is incomplete (a write failed).
    pub fn flush_and_sync(&self) -> bool {
        let mut state = lock(&self.state);
        self.write_frame(&mut state);
        let synced = state.file.as_ref().map(File::sync_data);
        match synced {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                tracing::info!("resume journal {}: sync failed: {e}", self.path.display());
                false
            }
            None => false,
        }
    }

    fn write_frame(&self, state: &mut WriterState) {
        state.last_flush = Instant::now();
        if state.pending.files.is_empty() || state.file.is_none() {
            return;
        }
        let batch = std::mem::take(&mut state.pending);
        state.pending_bytes = 0;
        let identity = frame_identity(&self.run, state.next_frame);
        let result = seal_object(&self.envelope, ObjectType::Snapshot, &identity, "resume journal", &batch)
            .map_err(format_err(&self.path))
            .and_then(|sealed| {
                let mut bytes = Vec::with_capacity(4 + sealed.len());
                push_frame(&mut bytes, &sealed);
                match &mut state.file {
                    Some(f) => f.write_all(&bytes).map_err(io_err(&self.path)),
                    None => Ok(()),
                }
            });
        match result {
            Ok(()) => state.next_frame += 1,
            Err(e) => {
                tracing::info!("{e}; this backup stops journaling (an interrupted run reads more files again)");
                state.file = None;
            }
        }
    }

    /// Deletes the journal (the snapshot it served is committed).
    pub fn remove(self) {
        lock(&self.state).file = None;
        remove_journal(&self.path);
    }
}

impl Drop for JournalWriter {
    /// A backup that stops on an error keeps what it finished.
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        self.write_frame(&mut state);
    }
}

fn push_frame(out: &mut Vec<u8>, sealed: &[u8]) {
    // Sealed frames stay far below 4 GiB (`FRAME_BYTES` of files, compressed).
    out.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    out.extend_from_slice(sealed);
}

pub(crate) fn remove_journal(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::debug!("resume journal {} removed", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::info!("resume journal {}: cannot remove it: {e}", path.display()),
    }
}

// ---------------------------------------------------------------- reading

/// The files of one journal, in walk order, a frame at a time.
struct JournalReader {
    path: PathBuf,
    file: BufReader<File>,
    run: [u8; RUN_ID_LEN],
    envelope: Arc<Envelope>,
    next_frame: u64,
    batch: std::vec::IntoIter<DoneFile>,
    done: bool,
}

impl JournalReader {
    /// Opens a journal and checks its header against `binding`.
    fn open(path: &Path, binding: &Binding, envelope: Arc<Envelope>) -> Result<(Self, String), ResumeError> {
        let file = vger_fs::private::open_private_file(path).map_err(io_err(path))?;
        let mut file = BufReader::with_capacity(256 << 10, file);
        let mut start = [0u8; MAGIC.len() + RUN_ID_LEN];
        file.read_exact(&mut start).map_err(|_| ResumeError::NotAJournal { path: path.to_path_buf() })?;
        if &start[..MAGIC.len()] != MAGIC {
            return Err(ResumeError::NotAJournal { path: path.to_path_buf() });
        }
        let mut run = [0u8; RUN_ID_LEN];
        run.copy_from_slice(&start[MAGIC.len()..]);
        let mut reader = Self {
            path: path.to_path_buf(),
            file,
            run,
            envelope,
            next_frame: 0,
            batch: Vec::new().into_iter(),
            done: false,
        };
        let header: Header =
            reader.read_frame()?.ok_or_else(|| ResumeError::Truncated { path: path.into(), frame: 0 })?;
        vger_format::object::check_version("resume journal", header.version, JOURNAL_VERSION)
            .map_err(format_err(path))?;
        if &header.binding != binding {
            return Err(ResumeError::Foreign { path: path.to_path_buf() });
        }
        Ok((reader, header.started))
    }

    /// The next frame, or None at a clean end of the file.
    fn read_frame<T: serde::de::DeserializeOwned>(&mut self) -> Result<Option<T>, ResumeError> {
        let frame = self.next_frame;
        if self.file.fill_buf().map_err(io_err(&self.path))?.is_empty() {
            return Ok(None);
        }
        let truncated = |path: &Path| ResumeError::Truncated { path: path.to_path_buf(), frame };
        let mut len = [0u8; 4];
        self.file.read_exact(&mut len).map_err(|_| truncated(&self.path))?;
        let len = u32::from_le_bytes(len);
        if len > MAX_FRAME {
            return Err(ResumeError::FrameTooLarge { path: self.path.clone(), frame, len });
        }
        let mut sealed = vec![0u8; len as usize];
        self.file.read_exact(&mut sealed).map_err(|_| truncated(&self.path))?;
        let identity = frame_identity(&self.run, frame);
        let value = open_object(&self.envelope, ObjectType::Snapshot, &identity, "resume journal frame", sealed)
            .map_err(format_err(&self.path))?;
        self.next_frame += 1;
        Ok(Some(value))
    }
}

impl Iterator for JournalReader {
    type Item = DoneFile;

    fn next(&mut self) -> Option<DoneFile> {
        loop {
            if let Some(f) = self.batch.next() {
                return Some(f);
            }
            if self.done {
                return None;
            }
            match self.read_frame::<Batch>() {
                Ok(Some(batch)) => self.batch = batch.files.into_iter(),
                Ok(None) => self.done = true,
                Err(e) => {
                    tracing::info!("{e}; using the {} frames before it", self.next_frame.saturating_sub(1));
                    self.done = true;
                }
            }
        }
    }
}

/// A file's chunk list taken from an earlier run's journal.
pub struct Resumed {
    pub chunks: Vec<ChunkRef>,
    /// When that run began reading the file.
    pub read_at: i64,
}

/// The journals earlier, interrupted runs of this backup left behind,
/// read in step with the walk.
#[derive(Default)]
pub struct EarlierRuns {
    readers: Vec<Peekable<JournalReader>>,
    /// Every journal file of this binding found (usable or not), to delete
    /// once this run has superseded them.
    files: Vec<PathBuf>,
}

impl EarlierRuns {
    /// Finds this binding's journals in `dir`. Unusable ones are logged
    /// (-v) and skipped; beyond the newest [`KEEP_JOURNALS`] they are
    /// deleted.
    pub fn open(dir: &Path, binding: &Binding, envelope: &Arc<Envelope>) -> Self {
        let Ok(listing) = std::fs::read_dir(dir) else { return Self::default() };
        let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for e in listing.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else { continue };
            let modified = e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
            if binding.is_journal_name(&name) {
                found.push((modified, e.path()));
            } else if name.ends_with(".journal") && modified.elapsed().is_ok_and(|age| age > ABANDONED_AFTER) {
                tracing::info!("resume journal {}: untouched for 30 days; deleting it", e.path().display());
                remove_journal(&e.path());
            }
        }
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        let mut out = Self::default();
        for (i, (_, path)) in found.into_iter().enumerate() {
            if i >= KEEP_JOURNALS {
                tracing::info!(
                    "resume journal {}: more than {KEEP_JOURNALS} left behind; deleting the oldest",
                    path.display()
                );
                remove_journal(&path);
                continue;
            }
            match JournalReader::open(&path, binding, envelope.clone()) {
                Ok((reader, started)) => {
                    tracing::info!(
                        "resume journal {}: the run started at {started} was interrupted; its finished files are not read again",
                        path.display()
                    );
                    out.readers.push(reader.peekable());
                }
                Err(e) => tracing::info!("{e}; ignoring it"),
            }
            out.files.push(path);
        }
        out
    }

    /// The journal files found (to delete once superseded).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Stops using the journals (their files stay until [`Self::files`] are
    /// deleted).
    pub fn close(&mut self) {
        self.readers.clear();
    }

    /// The chunk list of `entry` from a journal if the file is unchanged
    /// since that run read it and all its chunks are in `index`. Calls must
    /// come in walk order.
    pub fn lookup(&mut self, entry: &Entry, mode: ChangeDetection, index: &ChunkIndex) -> Option<Resumed> {
        let mut found = None;
        for reader in &mut self.readers {
            // Skip files of the journal that are no longer in the tree.
            while reader.next_if(|d| vger_fs::cmp_paths(&d.entry.path, &entry.path) == Ordering::Less).is_some() {}
            let Some(done) = reader.next_if(|d| d.entry.path == entry.path) else { continue };
            if found.is_none() && usable(&done, entry, mode, index) {
                found = Some(Resumed { chunks: done.entry.chunks, read_at: done.read_at });
            }
        }
        found
    }
}

/// Whether a journal's record of a file can stand for reading it now.
fn usable(done: &DoneFile, now: &Entry, mode: ChangeDetection, index: &ChunkIndex) -> bool {
    let then = &done.entry;
    let recorded = Recorded {
        kind: then.kind,
        size: then.size,
        mtime: then.mtime,
        ctime: then.ctime,
        ino: then.ino,
        chunks: &then.chunks,
        read_at: done.read_at,
    };
    is_unchanged(&recorded, now, mode, index)
}

#[cfg(test)]
#[path = "resume_tests.rs"]
mod tests;
