//! Counters a long operation updates and a front end polls to draw progress.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Shared, lock-free counters (the current path behind a mutex).
#[derive(Debug, Default)]
pub struct Progress {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub new_bytes: AtomicU64,
    pub errors: AtomicU64,
    /// Expected total bytes, when known (restore knows it up front).
    pub total_bytes: AtomicU64,
    current: Mutex<String>,
    warnings: Mutex<Vec<String>>,
}

impl Progress {
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
    pub fn warn(&self, msg: String) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(msg);
        }
    }

    /// Takes the warnings collected so far.
    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default()
    }

    pub fn get(&self, counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
