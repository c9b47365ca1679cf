//! Deduplication for the backup's threads: each thread hashes its chunks
//! and queues only those that neither the index nor this backup already
//! holds for sealing. The set of chunks seen in this backup is shared, so
//! two threads meeting the same chunk store it once.
//!
//! New chunks go to the sealer threads in batches of about
//! [`BATCH_BYTES`]: a tree of small files makes one small chunk per file,
//! and one channel hand-over (and a sealer woken up) per chunk cost more
//! than sealing it. A batch waits in its thread's sink until it is full or
//! the sink is flushed (when the thread's work ends); a chunk is claimed as
//! seen when it is batched, so the backup must flush every sink before it
//! finishes (it does: each sink is dropped, which flushes, before the pack
//! writer finishes, and the counts of chunks queued and stored are compared
//! before a snapshot is written).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use vger_crypto::{ChunkIdKey, ObjectType, ENVELOPE_HEADER_LEN, ENVELOPE_OVERHEAD};
use vger_format::id::ChunkId;

use crate::blob::SEAL_ROOM;
use crate::index::{ChunkIndex, IdSet};
use crate::parallel::lock;
use crate::progress::Progress;
use crate::throttle::RateLimiter;
use crate::{EngineError, Result};

/// A new chunk on its way to a sealer thread.
pub(crate) struct Job {
    pub id: ChunkId,
    pub ty: ObjectType,
    /// The chunk's bytes from `start` on.
    pub data: Vec<u8>,
    /// 0, or [`SEAL_ROOM`]: the chunk was read into its own buffer behind
    /// room to seal it in place (see [`ChunkSink::store_in`]).
    pub start: usize,
}

impl Job {
    /// A job that takes `data` as it is.
    pub fn owned(id: ChunkId, ty: ObjectType, data: Vec<u8>) -> Self {
        Job { id, ty, data, start: 0 }
    }

    /// The chunk's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.data.get(self.start..).unwrap_or_default()
    }
}

/// A batch is sent once its chunks hold this many bytes; a chunk at least
/// this large goes alone.
pub(crate) const BATCH_BYTES: usize = 1 << 20;

/// What all threads of one backup share.
pub(crate) struct Dedup<'a> {
    index: &'a ChunkIndex,
    seen: Mutex<IdSet>,
    added_bytes: AtomicU64,
    added_chunks: AtomicU64,
    /// Bytes read from source files (not counting files skipped as unchanged).
    read_bytes: AtomicU64,
    /// Set when the backup stops early: reading threads skip queued files.
    stop: AtomicBool,
    /// The front end's counters (new bytes).
    progress: &'a Progress,
}

impl<'a> Dedup<'a> {
    pub fn new(index: &'a ChunkIndex, progress: &'a Progress) -> Self {
        Self {
            index,
            progress,
            seen: Mutex::new(IdSet::default()),
            added_bytes: AtomicU64::new(0),
            added_chunks: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// New bytes and chunks queued so far.
    pub fn added(&self) -> (u64, u64) {
        (self.added_bytes.load(Ordering::Relaxed), self.added_chunks.load(Ordering::Relaxed))
    }

    /// Bytes read from source files so far.
    pub fn read_bytes(&self) -> u64 {
        self.read_bytes.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// True if `id` is new to the repository and to this backup (and is
    /// now counted as seen).
    fn claim(&self, id: ChunkId) -> bool {
        !self.index.contains(&id) && lock(&self.seen).insert(id)
    }
}

/// One thread's way into [`Dedup`], with the buffers it reuses.
pub(crate) struct ChunkSink<'a> {
    dedup: &'a Dedup<'a>,
    jobs: Sender<Vec<Job>>,
    /// New chunks not yet sent, and their bytes.
    batch: Vec<Job>,
    batch_bytes: usize,
    key: &'a ChunkIdKey,
    pub read_limit: Option<Arc<RateLimiter>>,
    /// A chunk buffer the last file's reader left, for the next one's.
    pub spare_chunk: Option<Vec<u8>>,
    /// With extended attributes asked for: which devices have none (the
    /// reading threads list files' attributes through the open file).
    pub xattrs: Option<vger_fs::XattrSupport>,
    /// IDs of all-zero chunks by length (sparse files and zeroed regions
    /// are common; hashing them again is wasted work).
    zero_ids: HashMap<usize, ChunkId>,
}

impl<'a> ChunkSink<'a> {
    pub fn new(
        dedup: &'a Dedup<'a>,
        jobs: Sender<Vec<Job>>,
        key: &'a ChunkIdKey,
        read_limit: Option<Arc<RateLimiter>>,
        xattrs: bool,
    ) -> Self {
        Self {
            dedup,
            jobs,
            batch: Vec::new(),
            batch_bytes: 0,
            key,
            read_limit,
            spare_chunk: None,
            xattrs: xattrs.then(vger_fs::XattrSupport::default),
            zero_ids: HashMap::new(),
        }
    }

    fn chunk_id(&mut self, ty: ObjectType, data: &[u8]) -> ChunkId {
        if ty == ObjectType::DataChunk && data.len() >= 64 << 10 && vger_fs::is_all_zero(data) {
            let key = self.key;
            return *self.zero_ids.entry(data.len()).or_insert_with(|| ChunkId(key.chunk_id(data)));
        }
        ChunkId(self.key.chunk_id(data))
    }

    /// Hashes `data` and queues a copy of it for sealing if it is new.
    pub fn store(&mut self, ty: ObjectType, data: &[u8]) -> Result<ChunkId> {
        let id = self.chunk_id(ty, data);
        if self.claim(id, data.len()) {
            self.queue(Job::owned(id, ty, data.to_vec()))?;
        }
        Ok(id)
    }

    /// Like [`ChunkSink::store`], for a chunk read into its own buffer at
    /// `buf[SEAL_ROOM..]` (with room for the tag after it): queued without a
    /// copy if it is new, else handed back for the next chunk.
    pub fn store_in(&mut self, ty: ObjectType, mut buf: Vec<u8>) -> Result<(ChunkId, Option<Vec<u8>>)> {
        let data = buf.get(SEAL_ROOM..).unwrap_or_default();
        let id = self.chunk_id(ty, data);
        if !self.claim(id, data.len()) {
            return Ok((id, Some(buf)));
        }
        // The buffer was reserved for the largest chunk: give the rest back
        // (shrinking does not move it) so that chunks in flight hold only
        // their own size.
        buf.shrink_to(buf.len() + ENVELOPE_OVERHEAD - ENVELOPE_HEADER_LEN);
        self.queue(Job { id, ty, data: buf, start: SEAL_ROOM })?;
        Ok((id, None))
    }

    /// Like [`ChunkSink::store`], but takes the chunk's own buffer: a small
    /// file read whole is queued without a copy.
    pub fn store_owned(&mut self, ty: ObjectType, data: Vec<u8>) -> Result<ChunkId> {
        let id = self.chunk_id(ty, &data);
        if self.claim(id, data.len()) {
            self.queue(Job::owned(id, ty, data))?;
        }
        Ok(id)
    }

    /// Claims `id` for this backup and counts its bytes if it is new.
    fn claim(&self, id: ChunkId, len: usize) -> bool {
        if !self.dedup.claim(id) {
            return false;
        }
        self.dedup.added_bytes.fetch_add(len as u64, Ordering::Relaxed);
        self.dedup.progress.add_new_bytes(len as u64);
        self.dedup.added_chunks.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn queue(&mut self, job: Job) -> Result<()> {
        self.batch_bytes += job.bytes().len();
        self.batch.push(job);
        if self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the chunks batched so far to the sealers.
    pub fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.batch_bytes = 0;
        let batch = std::mem::take(&mut self.batch);
        self.jobs.send(batch).map_err(|_| EngineError::Other("the pack writer stopped".into()))
    }

    pub fn stopped(&self) -> bool {
        self.dedup.stopped()
    }

    /// Counts `n` bytes read from a source file.
    pub fn count_read(&self, n: u64) {
        self.dedup.read_bytes.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for ChunkSink<'_> {
    /// Sends what is still batched. When that fails the pack writer has
    /// stopped, and the backup reports its error: it fails either way.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
