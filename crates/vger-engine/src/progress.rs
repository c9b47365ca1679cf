//! Counters a long operation updates and a front end polls to draw
//! progress, and the flag a front end sets to stop the operation at its
//! next safe point ([`CancelFlag`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::{EngineError, Result};

/// A request to stop, shared by a front end and the operations it runs.
/// Operations check it only where stopping leaves the repository
/// consistent: a backup between files (what it stored is indexed, no
/// snapshot is written), a restore between files, a check between
/// objects, a compact before it deletes anything.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A total not known (yet): 0 is a real total (an empty tree).
const UNKNOWN: u64 = u64::MAX;

/// Shared, lock-free counters (the current path behind a mutex).
///
/// `files` and `bytes` count what is done; the totals, once an operation
/// knows them, what it will do in all (a restore from its snapshot's
/// stats, a backup first from its parent snapshot's, then from a scan of
/// its source). What a "file" is depends on the operation: a non-directory
/// entry for backup, restore and copy, a pack for check and compact.
#[derive(Debug)]
pub struct Progress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    /// Bytes of chunks the repository did not hold yet (backup, copy).
    pub new_bytes: AtomicU64,
    pub errors: AtomicU64,
    total_bytes: AtomicU64,
    total_files: AtomicU64,
    /// The totals are a guess (the parent snapshot's), not a count.
    totals_estimated: AtomicBool,
    current: Mutex<String>,
    warnings: Mutex<Vec<crate::Notice>>,
    cancel: CancelFlag,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            new_bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            total_bytes: AtomicU64::new(UNKNOWN),
            total_files: AtomicU64::new(UNKNOWN),
            totals_estimated: AtomicBool::new(false),
            current: Mutex::default(),
            warnings: Mutex::default(),
            cancel: CancelFlag::default(),
        }
    }
}

impl Progress {
    /// Counters whose operation stops once `cancel` is set.
    pub fn with_cancel(cancel: CancelFlag) -> Self {
        Progress { cancel, ..Progress::default() }
    }

    pub fn add_files(&self, n: u64) {
        self.files.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_new_bytes(&self, n: u64) {
        self.new_bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_current(&self, path: &str) {
        if let Ok(mut c) = self.current.try_lock() {
            c.clear();
            c.push_str(path);
        }
    }

    pub fn current(&self) -> String {
        self.current.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// A warning for the front end to show (not a failure).
    pub fn warn(&self, notice: crate::Notice) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(notice);
        }
    }

    /// Takes the warnings collected so far.
    pub fn take_warnings(&self) -> Vec<crate::Notice> {
        self.warnings.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default()
    }

    /// The total bytes, counted.
    pub fn set_total_bytes(&self, n: u64) {
        self.total_bytes.store(n.min(UNKNOWN - 1), Ordering::Relaxed);
        self.totals_estimated.store(false, Ordering::Relaxed);
    }

    /// The total files, counted.
    pub fn set_total_files(&self, n: u64) {
        self.total_files.store(n.min(UNKNOWN - 1), Ordering::Relaxed);
        self.totals_estimated.store(false, Ordering::Relaxed);
    }

    /// Both totals, counted.
    pub fn set_totals(&self, files: u64, bytes: u64) {
        self.set_total_files(files);
        self.set_total_bytes(bytes);
    }

    /// Both totals, guessed (to be replaced by a count).
    pub fn estimate_totals(&self, files: u64, bytes: u64) {
        self.set_totals(files, bytes);
        self.totals_estimated.store(true, Ordering::Relaxed);
    }

    /// The total bytes; `None` while not known.
    pub fn total_bytes(&self) -> Option<u64> {
        Some(self.total_bytes.load(Ordering::Relaxed)).filter(|n| *n != UNKNOWN)
    }

    /// The total files; `None` while not known.
    pub fn total_files(&self) -> Option<u64> {
        Some(self.total_files.load(Ordering::Relaxed)).filter(|n| *n != UNKNOWN)
    }

    /// Whether the totals are a guess rather than a count.
    pub fn totals_estimated(&self) -> bool {
        self.totals_estimated.load(Ordering::Relaxed)
    }

    pub fn get(&self, counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Whether the front end asked the operation to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// [`EngineError::Cancelled`] once the front end asked to stop: for an
    /// operation at one of its safe points.
    pub fn stop_if_cancelled(&self) -> Result<()> {
        if self.cancelled() {
            return Err(EngineError::Cancelled);
        }
        Ok(())
    }
}
