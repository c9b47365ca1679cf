//! Quotas: how many bytes each repository holds, and reservations for
//! uploads in flight, so that concurrent uploads together cannot pass a
//! quota. A repository's size is measured by walking it the first time a
//! quota applies to it, then kept up to date by every write and delete.
//!
//! Every object is charged at least [`MIN_OBJECT_CHARGE`] bytes (what a
//! file costs the disk: a block and an inode), so a quota also bounds the
//! number of objects: empty objects cannot fill the inodes for free.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use vger_storage::local::walk;

use crate::error::ApiError;

/// The least an object counts against a quota, whatever its size.
pub const MIN_OBJECT_CHARGE: u64 = 4096;

/// What an object of `size` bytes counts against a quota.
pub fn charge(size: u64) -> u64 {
    size.max(MIN_OBJECT_CHARGE)
}

/// Charged bytes of all objects of the repository at `root`.
pub fn charged_size(root: &Path) -> Result<u64, vger_storage::StorageError> {
    let mut total = 0u64;
    walk::for_each_object(root, "", &mut |found| {
        total = total.saturating_add(charge(found.size));
        true
    })?;
    Ok(total)
}

#[derive(Debug, Default)]
pub struct Usage {
    repos: Mutex<HashMap<String, Arc<RepoUsage>>>,
}

#[derive(Debug, Default)]
pub struct RepoUsage {
    /// `None` until measured.
    state: Mutex<Option<Counts>>,
    /// Held while measuring, so concurrent first writes walk only once.
    measuring: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    used: u64,
    reserved: u64,
}

impl Usage {
    pub fn repo(&self, repo: &str) -> Arc<RepoUsage> {
        let mut repos = self.repos.lock().unwrap_or_else(PoisonError::into_inner);
        repos.entry(repo.to_owned()).or_default().clone()
    }

    /// An object of `added` bytes was stored and one of `removed` bytes
    /// went (0: none), in a measured repository.
    pub fn adjust(&self, repo: &str, added: Option<u64>, removed: Option<u64>) {
        self.repo(repo).adjust(added.map_or(0, charge), removed.map_or(0, charge));
    }
}

impl RepoUsage {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Counts>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Walks the repository once to learn its size.
    pub async fn measure(&self, dir: &Path) -> Result<(), ApiError> {
        if self.lock().is_some() {
            return Ok(());
        }
        let _measuring = self.measuring.lock().await;
        if self.lock().is_some() {
            return Ok(());
        }
        let dir = dir.to_path_buf();
        let used = tokio::task::spawn_blocking(move || charged_size(&dir))
            .await
            .map_err(|e| ApiError::internal(format!("measuring the repository: {e}")))?
            .map_err(|e| ApiError::internal(format!("measuring the repository: {e}")))?;
        let mut state = self.lock();
        if state.is_none() {
            *state = Some(Counts { used, reserved: 0 });
        }
        Ok(())
    }

    fn adjust(&self, added: u64, removed: u64) {
        if let Some(counts) = self.lock().as_mut() {
            counts.used = counts.used.saturating_add(added).saturating_sub(removed);
        }
    }

    /// Reserves `bytes` more under `quota`; `false` if that would pass it.
    fn try_reserve(&self, bytes: u64, quota: u64) -> bool {
        let mut state = self.lock();
        let counts = state.get_or_insert_with(Counts::default);
        let total = counts.used.saturating_add(counts.reserved).saturating_add(bytes);
        if total > quota {
            return false;
        }
        counts.reserved += bytes;
        true
    }

    fn release(&self, reserved: u64, committed: u64, removed: u64) {
        if let Some(counts) = self.lock().as_mut() {
            counts.reserved = counts.reserved.saturating_sub(reserved);
            counts.used = counts.used.saturating_add(committed).saturating_sub(removed);
        }
    }

    fn used(&self) -> u64 {
        self.lock().map(|c| c.used + c.reserved).unwrap_or(0)
    }
}

/// Bytes held back for one upload; released on drop unless committed.
#[derive(Debug)]
pub struct Reservation {
    repo: String,
    usage: Option<Arc<RepoUsage>>,
    quota: Option<u64>,
    bytes: u64,
    /// Bytes of the object this upload replaces: they are freed when it lands.
    credit: u64,
}

impl Reservation {
    /// A reservation under `quota` (none: unlimited, nothing tracked).
    pub async fn start(usage: &Usage, repo: &str, dir: &Path, quota: Option<u64>) -> Result<Self, ApiError> {
        let repo_usage = match quota {
            Some(_) => {
                let repo_usage = usage.repo(repo);
                repo_usage.measure(dir).await?;
                Some(repo_usage)
            }
            None => None,
        };
        Ok(Reservation { repo: repo.to_owned(), usage: repo_usage, quota, bytes: 0, credit: 0 })
    }

    /// The upload replaces an object of `bytes`: they count as free.
    pub fn replacing(mut self, bytes: Option<u64>) -> Self {
        self.credit = bytes.map_or(0, charge);
        self
    }

    /// Makes sure an object of `size` bytes fits; 507 if the quota is passed.
    pub fn grow_to(&mut self, size: u64) -> Result<(), ApiError> {
        let (Some(usage), Some(quota)) = (&self.usage, self.quota) else {
            return Ok(());
        };
        let total = charge(size);
        if total <= self.bytes {
            return Ok(());
        }
        if !usage.try_reserve(total - self.bytes, quota.saturating_add(self.credit)) {
            return Err(ApiError::quota(format!(
                "repository `{}` would exceed its quota of {} (it holds {}; this upload needs {} more)",
                self.repo,
                human(quota),
                human(usage.used()),
                human(total - self.bytes),
            )));
        }
        self.bytes = total;
        Ok(())
    }

    /// The upload is stored: an object of `stored` bytes added, one of
    /// `replaced` bytes gone.
    pub fn commit(mut self, usage: &Usage, stored: u64, replaced: Option<u64>) {
        match self.usage.take() {
            Some(repo_usage) => repo_usage.release(self.bytes, charge(stored), replaced.map_or(0, charge)),
            // Not measured for a quota; keep a measured count right anyway.
            None => usage.adjust(&self.repo, Some(stored), replaced),
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(usage) = self.usage.take() {
            usage.release(self.bytes, 0, 0);
        }
    }
}

/// `1.5 GiB` and the like, for messages.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("B")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_quota() {
        let usage = Usage::default();
        let repo = usage.repo("r");
        assert!(repo.try_reserve(60, 100));
        assert!(!repo.try_reserve(50, 100));
        repo.release(60, 60, 0);
        assert_eq!(repo.used(), 60);
        assert!(repo.try_reserve(40, 100));
        repo.release(40, 0, 0);
        usage.adjust("r", None, Some(60));
        assert_eq!(repo.used(), 0);
        assert_eq!(charge(0), MIN_OBJECT_CHARGE);
        assert_eq!(charge(1 << 20), 1 << 20);
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(10), "10 B");
    }
}
