//! Retries transient failures (timeouts, resets, HTTP 5xx/429, broken SFTP
//! channels: whatever [`StorageError::is_transient`] says) with exponential
//! backoff and full jitter; anything else fails at once.
//!
//! Full jitter (a wait drawn uniformly from zero to the current bound)
//! spreads out clients that failed together, so a recovering server is not
//! hit by all of them in the same instant.

use std::sync::Arc;
use std::time::Duration;

use crate::random::random_up_to;
use crate::{
    ObjectInfo, PackService, PackVerification, RepackBlob, RepackResponse, RetryPolicy, Storage, StorageError,
};

/// Wraps a storage and retries its transient failures.
#[derive(Debug)]
pub struct RetryingStorage {
    inner: Arc<dyn Storage>,
    policy: RetryPolicy,
}

impl RetryingStorage {
    pub fn new(inner: Arc<dyn Storage>, policy: RetryPolicy) -> Self {
        RetryingStorage { inner, policy }
    }

    /// `what` and `key` name the request in the logs (`-vv` shows every
    /// request, `-v` every retry).
    fn run<T>(
        &self,
        what: &str,
        key: &str,
        mut op: impl FnMut(u32) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut attempt = 0;
        loop {
            let started = std::time::Instant::now();
            let result = op(attempt);
            tracing::debug!(
                "storage {what} {key}: {} in {:.1} ms",
                if result.is_ok() { "ok" } else { "failed" },
                started.elapsed().as_secs_f64() * 1000.0
            );
            match result {
                Err(e) if e.is_transient() && attempt < self.policy.max_retries => {
                    let wait = backoff(&self.policy, attempt);
                    tracing::info!(
                        "storage {what} {key}: transient error, retry {} of {} in {} ms: {e}",
                        attempt + 1,
                        self.policy.max_retries,
                        wait.as_millis()
                    );
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Err(StorageError::Transient { detail }) if attempt > 0 => {
                    return Err(StorageError::Transient {
                        detail: format!("{detail}; gave up after {attempt} retries"),
                    })
                }
                other => return other,
            }
        }
    }
}

/// The wait before retry number `attempt + 1`: uniform in
/// `0..=min(max_delay, delay * 2^attempt)`.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let bound = policy.delay.saturating_mul(2u32.saturating_pow(attempt.min(31))).min(policy.max_delay);
    let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(random_up_to(bound_ms))
}

impl Storage for RetryingStorage {
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        self.run("GET", key, |_| self.inner.get(key))
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        self.run("GET range", key, |_| self.inner.get_range(key, offset, len))
    }

    fn get_range_into(&self, key: &str, offset: u64, len: u64, buf: &mut Vec<u8>) -> Result<(), StorageError> {
        self.run("GET range", key, |_| self.inner.get_range_into(key, offset, len, buf))
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.run("PUT", key, |_| self.inner.put(key, data))
    }

    /// A retried `put_new` can meet its own earlier try: the request
    /// arrived but the answer was lost. `AlreadyExists` on a retry is
    /// therefore checked against the stored bytes; equal bytes mean this
    /// call won (vger's `put_new` payloads name their writer, so another
    /// writer's object never has the same bytes).
    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.run("PUT (create)", key, |attempt| match self.inner.put_new(key, data) {
            Err(StorageError::AlreadyExists { .. }) if attempt > 0 && self.inner.get(key)? == data => Ok(()),
            other => other,
        })
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.run("DELETE", key, |_| self.inner.delete(key))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        self.run("LIST", prefix, |_| self.inner.list(prefix))
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        self.run("HEAD", key, |_| self.inner.size(key))
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

    /// The inner service, its transient failures retried like any call.
    fn pack_service(&self) -> Option<&dyn PackService> {
        self.inner.pack_service().map(|_| self as &dyn PackService)
    }

    /// Local only, so no retries.
    fn remove_stale_temp_files(&self, older_than: Duration) -> Result<usize, StorageError> {
        self.inner.remove_stale_temp_files(older_than)
    }

    /// Local only (its errors are a full or failing disk, not transient),
    /// so no retries: the writer fails and the next run resumes.
    fn stage(&self, dir: &str) -> Result<Option<Box<dyn crate::StagedObject>>, StorageError> {
        self.inner.stage(dir)
    }
}

/// Both calls are idempotent: verifying reads only, and a repack stores a
/// pack named by its content, create-only (the same pack again is `Ok`).
impl PackService for RetryingStorage {
    fn verify_packs(&self, packs: Option<&[String]>) -> Result<Vec<PackVerification>, StorageError> {
        self.run("verify-packs", "packs/", |_| self.inner_pack_service()?.verify_packs(packs))
    }

    fn repack(&self, blobs: &[RepackBlob], trailer: &[u8]) -> Result<RepackResponse, StorageError> {
        self.run("repack", "packs/", |_| self.inner_pack_service()?.repack(blobs, trailer))
    }
}

impl RetryingStorage {
    fn inner_pack_service(&self) -> Result<&dyn PackService, StorageError> {
        self.inner.pack_service().ok_or_else(|| StorageError::Backend {
            detail: format!("{} does not offer server-side pack work", self.inner.describe()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let policy =
            RetryPolicy { max_retries: 10, delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        for attempt in 0..40 {
            let bound = Duration::from_millis(100 << attempt.min(20)).min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(backoff(&policy, attempt) <= bound, "attempt {attempt}");
            }
        }
        // Full jitter: waits spread over the whole range, not only near the bound.
        let waits: Vec<_> = (0..200).map(|_| backoff(&policy, 5)).collect();
        assert!(waits.iter().any(|w| *w < Duration::from_millis(300)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(700)));
    }
}
