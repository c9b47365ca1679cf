//! Long blocking work (walking a repository, hashing packs, repacking):
//! how much may run at once, and stopping it when its client goes away.
//!
//! Each repository may run at most [`PER_REPO`] such jobs and the server
//! [`TOTAL`]; a job waits for both permits (first come, first served)
//! without holding a thread. So one tenant cannot take every thread of
//! the blocking pool that file reads and writes of all tenants need.
//!
//! A job gets a [`Cancel`]: the request's future holds its other half,
//! and when hyper drops that future (the client disconnected, or a
//! timeout closed the connection) the job sees `cancelled()` at its next
//! check and stops. Its permits are released only when it has stopped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Blocking jobs one repository may run at once.
pub const PER_REPO: usize = 4;
/// Blocking jobs the server runs at once (tokio's blocking pool has 512
/// threads, which file reads and writes also use).
pub const TOTAL: usize = 32;
/// Memory for JSON request bodies held at once, in MiB: requests wait for
/// their share, so many large plans cannot exhaust the server's memory.
pub const JSON_BUDGET_MIB: u32 = 128;

#[derive(Debug)]
pub struct WorkLimits {
    total: Arc<Semaphore>,
    repos: Mutex<HashMap<String, Arc<Semaphore>>>,
    json_budget: Arc<Semaphore>,
}

impl Default for WorkLimits {
    fn default() -> Self {
        WorkLimits {
            total: Arc::new(Semaphore::new(TOTAL)),
            repos: Mutex::new(HashMap::new()),
            json_budget: Arc::new(Semaphore::new(JSON_BUDGET_MIB as usize)),
        }
    }
}

/// Both permits of one job; dropped when the job ends.
#[derive(Debug)]
pub struct Permits {
    _repo: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

/// Tells a blocking job that its request is gone.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Cancels on drop: held by the request's future.
#[derive(Debug)]
pub struct CancelOnDrop(Cancel);

impl CancelOnDrop {
    pub fn new() -> (Self, Cancel) {
        let cancel = Cancel::default();
        (CancelOnDrop(cancel.clone()), cancel)
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0 .0.store(true, Ordering::Relaxed);
    }
}

impl WorkLimits {
    /// Waits for a slot of `repo` and of the server.
    pub async fn permits(&self, repo: &str) -> Result<Permits, ApiError> {
        let repo_semaphore = {
            let mut repos = self.repos.lock().unwrap_or_else(PoisonError::into_inner);
            if repos.len() > 4096 {
                // Forget idle repositories (only the map holds their semaphore).
                repos.retain(|_, s| Arc::strong_count(s) > 1);
            }
            repos.entry(repo.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(PER_REPO))).clone()
        };
        let closed = |_| ApiError::internal("the server is shutting down");
        let repo_permit = repo_semaphore.acquire_owned().await.map_err(closed)?;
        let total_permit = self.total.clone().acquire_owned().await.map_err(closed)?;
        Ok(Permits { _repo: repo_permit, _total: total_permit })
    }

    /// Waits until a JSON body of `bytes` fits in the memory budget; the
    /// share is returned when the permit is dropped.
    pub async fn json_memory(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let mib = u32::try_from(bytes.div_ceil(1 << 20)).unwrap_or(u32::MAX).clamp(1, JSON_BUDGET_MIB);
        let budget = self.json_budget.clone();
        budget.acquire_many_owned(mib).await.map_err(|_| ApiError::internal("the server is shutting down"))
    }

    /// Runs `job` on the blocking pool once permits are free; the job is
    /// told to stop if this future is dropped.
    pub async fn run<T: Send + 'static>(
        &self,
        repo: &str,
        job: impl FnOnce(&Cancel) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permits = self.permits(repo).await?;
        let (_guard, cancel) = CancelOnDrop::new();
        tokio::task::spawn_blocking(move || {
            let _permits = permits;
            job(&cancel)
        })
        .await
        .map_err(|e| ApiError::internal(format!("a server task failed: {e}")))?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_busy_repository_does_not_hold_up_another() {
        let limits = Arc::new(WorkLimits::default());
        let mut busy = Vec::new();
        for _ in 0..PER_REPO {
            busy.push(limits.permits("greedy").await.unwrap());
        }
        let blocked = tokio::time::timeout(Duration::from_millis(50), limits.permits("greedy")).await;
        assert!(blocked.is_err(), "a fifth job of one repository ran");
        let other = tokio::time::timeout(Duration::from_secs(5), limits.run("other", |_| Ok(7))).await;
        assert_eq!(other.unwrap().unwrap(), 7);
    }

    #[tokio::test]
    async fn a_dropped_request_cancels_its_job() {
        let limits = Arc::new(WorkLimits::default());
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let request = limits.run("r", move |cancel| {
            let started = std::time::Instant::now();
            while !cancel.cancelled() && started.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = seen_tx.send(cancel.cancelled());
            Ok(())
        });
        let _ = tokio::time::timeout(Duration::from_millis(100), request).await;
        let cancelled =
            tokio::task::spawn_blocking(move || seen_rx.recv_timeout(Duration::from_secs(10))).await.unwrap().unwrap();
        assert!(cancelled, "the job ran on after its request was dropped");
    }
}
