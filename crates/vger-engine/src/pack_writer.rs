//! Assembles sealed chunks into packs, stores them on several threads and
//! records them in index segments: every few packs as a checkpoint (so an
//! interrupted backup resumes from there) and once more at the end.
//!
//! Order of writes (docs/format.md, section 9): a pack is stored before any
//! segment names it, and a segment is stored before any snapshot uses it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use vger_crypto::{Envelope, ObjectType};
use vger_format::id::ChunkId;
use vger_format::id::PACKS_PREFIX;
use vger_format::index::PackEntry;
use vger_format::pack::{FinishedPack, PackBuilder, PackLayout};
use vger_storage::{StagedObject, Storage};

use crate::index::write_segment;
use crate::lock::RepoLock;
use crate::parallel::lock;
use crate::{EngineError, Result};

/// Packs stored before a checkpoint segment is written.
const CHECKPOINT_PACKS: usize = 8;
/// ... or this long since the last checkpoint, whichever comes first.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);
/// How often the assembler looks at the clock while no blob arrives.
const CHECKPOINT_TICK: Duration = Duration::from_millis(250);
/// A pack being filled is closed early for a checkpoint at most this often
/// (so `--checkpoint 0` does not make a pack per chunk).
const MIN_EARLY_CLOSE: Duration = Duration::from_secs(1);

/// A chunk ready to go into a pack.
#[derive(Debug)]
pub struct SealedBlob {
    pub id: ChunkId,
    pub ty: ObjectType,
    pub raw_length: u32,
    pub bytes: Vec<u8>,
}

/// Where sealed blobs go: one at a time, or several in one hand-over (a
/// backup of many small files seals many small chunks, and one hand-over
/// per chunk, each waking the assembler, cost more than sealing them).
#[derive(Clone)]
pub struct BlobSender(Sender<Vec<SealedBlob>>);

/// The pack writer stopped after an error, which [`PackWriter::finish`] reports.
#[derive(Debug)]
pub struct WriterStopped;

impl BlobSender {
    pub fn send(&self, blob: SealedBlob) -> std::result::Result<(), WriterStopped> {
        self.send_all(vec![blob])
    }

    pub fn send_all(&self, blobs: Vec<SealedBlob>) -> std::result::Result<(), WriterStopped> {
        self.0.send(blobs).map_err(|_| WriterStopped)
    }
}

/// What the writer stored.
#[derive(Debug, Default, Clone)]
pub struct PackWriterStats {
    pub packs: u64,
    pub stored_bytes: u64,
    /// Blobs in the packs stored (and, once `finish` returned, indexed):
    /// the backup compares it with the chunks it queued.
    pub blobs: u64,
    pub segments: u64,
}

struct Shared {
    storage: Arc<dyn Storage>,
    /// Checked before every segment: never index packs after our lock lapsed.
    lock: Option<Arc<RepoLock>>,
    envelope: Arc<Envelope>,
    unindexed: Mutex<(Vec<PackEntry>, Instant)>,
    /// A stored pack's buffer, for the next pack: fresh pages cost page
    /// faults (measured: 0.4 s of system time per GiB backed up). Only
    /// buffers no longer in use wait here, so peak memory is unchanged.
    spare_buffer: Mutex<Option<Vec<u8>>>,
    checkpoint_interval: Duration,
    error: Mutex<Option<EngineError>>,
    failed: AtomicBool,
    packs: AtomicU64,
    stored: AtomicU64,
    blobs: AtomicU64,
    segments: AtomicU64,
}

impl Shared {
    fn fail(&self, e: EngineError) {
        lock(&self.error).get_or_insert(e);
        self.failed.store(true, Ordering::SeqCst);
    }

    fn check_lock(&self) -> Result<()> {
        match &self.lock {
            Some(l) => l.check_alive(),
            None => Ok(()),
        }
    }

    /// Records a stored pack; writes a checkpoint segment when due.
    fn stored(&self, entry: PackEntry) -> Result<()> {
        let due = {
            let mut guard = lock(&self.unindexed);
            guard.0.push(entry);
            if guard.0.len() >= CHECKPOINT_PACKS || guard.1.elapsed() >= self.checkpoint_interval {
                guard.1 = Instant::now();
                std::mem::take(&mut guard.0)
            } else {
                Vec::new()
            }
        };
        self.write_checkpoint(due)
    }

    fn write_checkpoint(&self, packs: Vec<PackEntry>) -> Result<()> {
        if !packs.is_empty() {
            self.check_lock()?;
            write_segment(&self.storage, &self.envelope, packs)?;
            self.segments.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether the checkpoint interval has passed since the last one.
    fn checkpoint_due(&self) -> bool {
        lock(&self.unindexed).1.elapsed() >= self.checkpoint_interval
    }

    /// Indexes the stored packs now if the interval passed without a new
    /// pack being stored (a backup that finds little new data).
    fn checkpoint_if_due(&self) -> Result<()> {
        let due = {
            let mut guard = lock(&self.unindexed);
            if guard.0.is_empty() || guard.1.elapsed() < self.checkpoint_interval {
                return Ok(());
            }
            guard.1 = Instant::now();
            std::mem::take(&mut guard.0)
        };
        self.write_checkpoint(due)
    }
}

/// Takes sealed blobs on [`PackWriter::sender`], returns once everything is
/// stored and indexed by [`PackWriter::finish`].
pub struct PackWriter {
    tx: Option<Sender<Vec<SealedBlob>>>,
    threads: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl PackWriter {
    /// `uploaders` threads store finished packs concurrently.
    pub fn start(
        storage: Arc<dyn Storage>,
        envelope: Arc<Envelope>,
        target_size: u64,
        uploaders: usize,
        lock: Option<Arc<RepoLock>>,
        checkpoint_interval: Duration,
    ) -> Self {
        let shared = Arc::new(Shared {
            storage,
            lock,
            checkpoint_interval,
            envelope,
            unindexed: Mutex::new((Vec::new(), Instant::now())),
            spare_buffer: Mutex::new(None),
            error: Mutex::new(None),
            failed: AtomicBool::new(false),
            packs: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            blobs: AtomicU64::new(0),
            segments: AtomicU64::new(0),
        });
        // Bounded by count with batches of a few MiB at most (a backup's
        // sealers send about 1 MiB of chunks, or one chunk of up to 8 MiB):
        // a few tens of MiB in flight. Two: the sealers' output waits here
        // while a pack is handed on.
        let (tx, rx) = bounded::<Vec<SealedBlob>>(2);
        // Rendezvous: at most one pack waits while the uploaders hold theirs.
        let (pack_tx, pack_rx) = bounded::<ReadyPack>(0);
        let mut threads = Vec::new();
        {
            let shared = shared.clone();
            threads.push(std::thread::spawn(move || assemble(&shared, rx, pack_tx, target_size as usize)));
        }
        for _ in 0..uploaders.max(1) {
            let shared = shared.clone();
            let rx = pack_rx.clone();
            threads.push(std::thread::spawn(move || upload(&shared, rx)));
        }
        Self { tx: Some(tx), threads, shared }
    }

    /// Where to send sealed blobs. Sending fails only after an error, which
    /// [`PackWriter::finish`] then reports.
    pub fn sender(&self) -> Option<BlobSender> {
        self.tx.clone().map(BlobSender)
    }

    /// True once a pack or segment failed to store.
    pub fn failed(&self) -> bool {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Stores what is left, writes the last segment and reports.
    pub fn finish(mut self) -> Result<PackWriterStats> {
        self.tx = None;
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                self.shared.fail(EngineError::Other("a pack writer thread panicked".into()));
            }
        }
        if let Some(e) = lock(&self.shared.error).take() {
            return Err(e);
        }
        let rest = std::mem::take(&mut lock(&self.shared.unindexed).0);
        if !rest.is_empty() {
            self.shared.check_lock()?;
            write_segment(&self.shared.storage, &self.shared.envelope, rest)?;
            self.shared.segments.fetch_add(1, Ordering::Relaxed);
        }
        Ok(PackWriterStats {
            packs: self.shared.packs.load(Ordering::Relaxed),
            stored_bytes: self.shared.stored.load(Ordering::Relaxed),
            blobs: self.shared.blobs.load(Ordering::Relaxed),
            segments: self.shared.segments.load(Ordering::Relaxed),
        })
    }
}

impl Drop for PackWriter {
    fn drop(&mut self) {
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A pack being filled: in memory, or (on storage that stages objects, the
/// local one) written blob by blob straight into its file, which keeps two
/// 32 MiB packs out of the backup's memory and saves copying every byte
/// into a buffer.
enum OpenPack {
    Memory(PackBuilder),
    Staged { layout: PackLayout, object: Box<dyn StagedObject> },
}

impl OpenPack {
    fn open(shared: &Shared, target: usize) -> Result<Self> {
        if let Some(mut object) = shared.storage.stage(PACKS_PREFIX)? {
            let (layout, header) = PackLayout::start();
            object.write(&header)?;
            return Ok(OpenPack::Staged { layout, object });
        }
        let spare = lock(&shared.spare_buffer).take().unwrap_or_default();
        Ok(OpenPack::Memory(PackBuilder::with_buffer(spare, target + (1 << 20))))
    }

    fn add(&mut self, blob: &SealedBlob) -> Result<()> {
        match self {
            OpenPack::Memory(b) => b.add(blob.id, blob.ty, blob.raw_length, &blob.bytes),
            OpenPack::Staged { layout, object } => {
                layout.add(blob.id, blob.ty, blob.raw_length, &blob.bytes);
                object.write(&blob.bytes)?;
            }
        }
        Ok(())
    }

    fn len(&self) -> usize {
        match self {
            OpenPack::Memory(b) => b.len(),
            OpenPack::Staged { layout, .. } => layout.len() as usize,
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            OpenPack::Memory(b) => b.is_empty(),
            OpenPack::Staged { layout, .. } => layout.is_empty(),
        }
    }

    fn finish(self, envelope: &Envelope) -> Result<ReadyPack> {
        Ok(match self {
            OpenPack::Memory(b) => ReadyPack::Memory(b.finish(envelope)?),
            OpenPack::Staged { layout, mut object } => {
                let (tail, entry) = layout.finish(envelope)?;
                object.write(&tail)?;
                ReadyPack::Staged { entry, object }
            }
        })
    }
}

/// A complete pack for an uploader to store (or, staged, to commit).
enum ReadyPack {
    Memory(FinishedPack),
    Staged { entry: PackEntry, object: Box<dyn StagedObject> },
}

/// Tree objects and data chunks go into separate packs, so a lost or
/// damaged data pack leaves every directory readable (only the files with
/// data in it fail), and reading trees touches only the small tree packs.
fn kind_slot(ty: ObjectType) -> usize {
    usize::from(ty == ObjectType::TreeChunk)
}

fn assemble(shared: &Shared, rx: Receiver<Vec<SealedBlob>>, out: Sender<ReadyPack>, target: usize) {
    // One open pack per kind (data, trees).
    let mut builders: [Option<OpenPack>; 2] = [None, None];
    let close = |b: OpenPack| -> bool {
        match b.finish(&shared.envelope) {
            Ok(pack) => out.send(pack).is_ok(),
            Err(e) => {
                shared.fail(e);
                false
            }
        }
    };
    // A checkpoint must fire on time even when packs fill slowly: a pack
    // open for a whole interval is closed early (its store then writes the
    // segment), and stored packs are indexed when no new pack comes.
    let mut opened = Instant::now();
    loop {
        let blobs = match rx.recv_timeout(CHECKPOINT_TICK) {
            Ok(blobs) => blobs,
            Err(RecvTimeoutError::Timeout) => Vec::new(),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if shared.failed.load(Ordering::SeqCst) {
            return; // Dropping `rx` makes the producers' sends fail.
        }
        let open_long = opened.elapsed() >= shared.checkpoint_interval.max(MIN_EARLY_CLOSE);
        if open_long && shared.checkpoint_due() {
            let partial: Vec<OpenPack> =
                builders.iter_mut().filter_map(Option::take).filter(|b| !b.is_empty()).collect();
            if partial.is_empty() {
                if let Err(e) = shared.checkpoint_if_due() {
                    shared.fail(e);
                    return;
                }
            } else {
                opened = Instant::now();
                for p in partial {
                    if !close(p) {
                        return;
                    }
                }
            }
        }
        for blob in blobs {
            let slot = kind_slot(blob.ty);
            let Some(builder) = builders.get_mut(slot) else { continue };
            if builder.is_none() {
                if builders.iter().all(Option::is_none) {
                    opened = Instant::now();
                }
                match OpenPack::open(shared, target) {
                    Ok(b) => builders[slot] = Some(b),
                    Err(e) => {
                        shared.fail(e);
                        return;
                    }
                }
            }
            let Some(b) = builders.get_mut(slot).and_then(Option::as_mut) else { continue };
            if let Err(e) = b.add(&blob) {
                shared.fail(e);
                return;
            }
            drop(blob); // Not held while a full pack waits for an uploader.
            if b.len() >= target {
                if let Some(full) = builders.get_mut(slot).and_then(Option::take) {
                    if !close(full) {
                        return;
                    }
                }
            }
        }
    }
    for last in builders.into_iter().flatten() {
        if !last.is_empty() && !close(last) {
            return;
        }
    }
}

fn upload(shared: &Shared, rx: Receiver<ReadyPack>) {
    for pack in rx.iter() {
        if shared.failed.load(Ordering::SeqCst) {
            return;
        }
        let (stored, mut entry) = match pack {
            ReadyPack::Memory(pack) => {
                let stored = shared.storage.put(&pack.id.storage_key(), &pack.bytes);
                if stored.is_ok() {
                    lock(&shared.spare_buffer).get_or_insert(pack.bytes);
                }
                (stored, pack.entry)
            }
            ReadyPack::Staged { entry, object } => (object.commit(&entry.id.storage_key()), entry),
        };
        let size = entry.size;
        let blobs = entry.blobs.len() as u64;
        let result = stored.map_err(EngineError::from).and_then(|()| {
            entry.created = crate::lock::unix_now();
            shared.stored(entry)
        });
        match result {
            Ok(()) => {
                shared.packs.fetch_add(1, Ordering::Relaxed);
                shared.stored.fetch_add(size, Ordering::Relaxed);
                shared.blobs.fetch_add(blobs, Ordering::Relaxed);
            }
            Err(e) => {
                shared.fail(e);
                return;
            }
        }
    }
}
