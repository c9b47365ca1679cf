//! At most N requests in flight: a counting semaphore around every call,
//! so a backup with many threads does not open more connections than the
//! repository's `limits.connections`.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::{ObjectInfo, Storage, StorageError};

/// Wraps a storage so that at most `connections` calls run at once.
#[derive(Debug)]
pub struct ConnectionLimit {
    inner: Arc<dyn Storage>,
    in_use: Mutex<usize>,
    freed: Condvar,
    connections: usize,
}

/// One slot, given back on drop (also when the call panics).
struct Permit<'a>(&'a ConnectionLimit);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut in_use = self.0.in_use.lock().unwrap_or_else(PoisonError::into_inner);
        *in_use = in_use.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

impl ConnectionLimit {
    /// `connections` of 0 is taken as 1.
    pub fn new(inner: Arc<dyn Storage>, connections: usize) -> Self {
        ConnectionLimit { inner, in_use: Mutex::new(0), freed: Condvar::new(), connections: connections.max(1) }
    }

    fn acquire(&self) -> Permit<'_> {
        let mut in_use = self.in_use.lock().unwrap_or_else(PoisonError::into_inner);
        while *in_use >= self.connections {
            in_use = self.freed.wait(in_use).unwrap_or_else(PoisonError::into_inner);
        }
        *in_use += 1;
        Permit(self)
    }
}

impl Storage for ConnectionLimit {
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let _permit = self.acquire();
        self.inner.get(key)
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let _permit = self.acquire();
        self.inner.get_range(key, offset, len)
    }

    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<(), StorageError> {
        let _permit = self.acquire();
        self.inner.get_range_into(key, offset, len, buf)
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let _permit = self.acquire();
        self.inner.put(key, data)
    }

    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let _permit = self.acquire();
        self.inner.put_new(key, data)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let _permit = self.acquire();
        self.inner.delete(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let _permit = self.acquire();
        self.inner.list(prefix)
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        let _permit = self.acquire();
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

    /// Only local storage stages objects: there is no connection to hold.
    fn stage(&self, dir: &str) -> Result<Option<Box<dyn crate::StagedObject>>, StorageError> {
        self.inner.stage(dir)
    }
}
