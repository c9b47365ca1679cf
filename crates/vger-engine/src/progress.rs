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

/// Shared, lock-free counters (the current path behind a mutex).
#[derive(Debug, Default)]
pub struct Progress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    /// Bytes of chunks the repository did not hold yet (backup).
    pub new_bytes: AtomicU64,
    pub errors: AtomicU64,
    /// Expected total bytes, when known (restore knows it up front); 0: unknown.
    pub total_bytes: AtomicU64,
    /// Expected total files, when known; 0: unknown.
    pub total_files: AtomicU64,
    current: Mutex<String>,
    warnings: Mutex<Vec<crate::Notice>>,
    cancel: CancelFlag,
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
