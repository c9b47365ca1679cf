//! Caps upload and download bandwidth with one budget per direction,
//! shared by every connection of the storage it wraps: four connections at
//! a 4 MiB/s cap move 4 MiB/s together, not 16. Each opened repository has
//! its own budgets (a library sets nothing process-wide); callers that
//! want one budget over several storages pass the same [`Bandwidth`].
//!
//! The budget is a token bucket kept as a "theoretical arrival time"
//! (GCRA): each transfer of `n` bytes moves the time at which the budget is
//! next free by `n / rate`, and its caller sleeps until that time, less a
//! small burst allowance. Uploads are paid before they are sent, downloads
//! after they arrive (only then is their size known for sure). Either way a caller returns only once its bytes are paid for,
//! so the rate averaged over a few objects is the cap, however many
//! threads share it. A single object still travels at link speed: the
//! layer sees whole objects, not packets, so the cap is an average over
//! the object size (32 MiB packs at 4 MiB/s: one pack every 8 s).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::{ObjectInfo, Storage, StorageError};

/// How far ahead of its budget a transfer may start, so that a caller
/// arriving after an idle moment does not wait for bytes nobody sent.
const BURST: Duration = Duration::from_millis(50);

/// A shared byte budget: `rate` bytes per second.
#[derive(Debug)]
pub struct Bandwidth {
    state: Mutex<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    bytes_per_sec: u64,
    /// When everything reserved so far is paid for.
    paid_until: Instant,
}

impl Bandwidth {
    /// A budget of `bytes_per_sec` (at least 1).
    pub fn new(bytes_per_sec: u64) -> Arc<Self> {
        Arc::new(Bandwidth {
            state: Mutex::new(BudgetState { bytes_per_sec: bytes_per_sec.max(1), paid_until: Instant::now() }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `bytes` and sleeps until they are paid for.
    pub fn pay(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let wake = {
            let mut state = self.lock();
            let now = Instant::now();
            let cost = Duration::from_secs_f64(bytes as f64 / state.bytes_per_sec as f64);
            state.paid_until = state.paid_until.max(now) + cost;
            state.paid_until.checked_sub(BURST).unwrap_or(now)
        };
        let now = Instant::now();
        if wake > now {
            std::thread::sleep(wake - now);
        }
    }
}

/// Wraps a storage and charges its transfers to shared budgets.
#[derive(Debug)]
pub struct ThrottledStorage {
    inner: Arc<dyn Storage>,
    upload: Option<Arc<Bandwidth>>,
    download: Option<Arc<Bandwidth>>,
}

impl ThrottledStorage {
    /// `None` leaves that direction unlimited.
    pub fn new(inner: Arc<dyn Storage>, upload: Option<Arc<Bandwidth>>, download: Option<Arc<Bandwidth>>) -> Self {
        ThrottledStorage { inner, upload, download }
    }

    fn pay_upload(&self, bytes: usize) {
        if let Some(budget) = &self.upload {
            budget.pay(bytes as u64);
        }
    }

    fn pay_download(&self, bytes: u64) {
        if let Some(budget) = &self.download {
            budget.pay(bytes);
        }
    }
}

impl Storage for ThrottledStorage {
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let data = self.inner.get(key)?;
        self.pay_download(data.len() as u64);
        Ok(data)
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let data = self.inner.get_range(key, offset, len)?;
        self.pay_download(data.len() as u64);
        Ok(data)
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.pay_upload(data.len());
        self.inner.put(key, data)
    }

    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.pay_upload(data.len());
        self.inner.put_new(key, data)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.inner.delete(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        self.inner.list(prefix)
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        self.inner.size(key)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn is_local(&self) -> bool {
        self.inner.is_local()
    }

    fn receipt_times_trusted(&self) -> bool {
        self.inner.receipt_times_trusted()
    }

    fn pack_service(&self) -> Option<&dyn crate::PackService> {
        self.inner.pack_service()
    }

    fn remove_stale_temp_files(&self, older_than: std::time::Duration) -> Result<usize, StorageError> {
        self.inner.remove_stale_temp_files(older_than)
    }

    /// Not forwarded: objects go through `put`, which pays the budget.
    fn stage(&self, _dir: &str) -> Result<Option<Box<dyn crate::StagedObject>>, StorageError> {
        Ok(None)
    }
}
