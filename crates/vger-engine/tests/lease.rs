//! A writer whose lock heartbeat could not be written for most of its lease
//! (network down, laptop asleep) must stop before committing anything.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vger_crypto::KdfParams;
use vger_engine::lock::RepoLock;
use vger_engine::repository::{InitOptions, Repository};
use vger_storage::{LocalStorage, ObjectInfo, Storage, StorageError};

/// Local storage whose lock writes fail while `down` is set: a network
/// outage as the lock heartbeat sees it.
#[derive(Debug)]
struct Outage {
    inner: LocalStorage,
    down: Arc<AtomicBool>,
}

impl Storage for Outage {
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        self.inner.get(key)
    }
    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        self.inner.get_range(key, offset, len)
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        if self.down.load(Ordering::SeqCst) && key.starts_with("locks/") {
            return Err(StorageError::Transient { detail: "connection reset".into() });
        }
        self.inner.put(key, data)
    }
    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
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
}

#[test]
fn a_lapsed_lease_stops_the_holder_before_it_commits() {
    std::env::set_var("VGER_LOCK_LEASE_SECS", "2");
    let dir = tempfile::tempdir().unwrap();
    let down = Arc::new(AtomicBool::new(false));
    let storage =
        Arc::new(Outage { inner: LocalStorage::create(&dir.path().join("repo")).unwrap(), down: down.clone() });
    let opts = InitOptions { kdf: KdfParams::insecure_fast(), ..InitOptions::default() };
    let repo = Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
    let lock = RepoLock::shared(&repo, "backup").unwrap();
    lock.check_alive().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    lock.check_alive().expect("heartbeats were written: the lease is fresh");
    down.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2500));
    down.store(false, Ordering::SeqCst);
    let err = lock.check_alive().unwrap_err().to_string();
    assert!(err.contains("lapsed"), "{err}");
    // Even once the network is back, the holder must not resume.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(lock.check_alive().is_err(), "a lapsed lock came back to life");
}

/// Another client breaks our lock (`vger break-lock`, or maintenance that
/// judged it stale) while we hold it: the heartbeat must not write it back,
/// and the holder must refuse to commit, even if the object reappears.
#[test]
fn a_broken_lock_is_not_brought_back_by_the_heartbeat() {
    std::env::set_var("VGER_LOCK_LEASE_SECS", "2");
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::create(&dir.path().join("repo")).unwrap());
    let opts = InitOptions { kdf: KdfParams::insecure_fast(), ..InitOptions::default() };
    let repo = Repository::init(storage.clone(), Some(b"pw".to_vec()), opts).unwrap();
    let lock = RepoLock::shared(&repo, "backup").unwrap();
    let locks = || storage.list("locks/").unwrap();
    let ours = locks();
    assert_eq!(ours.len(), 1);
    let key = ours[0].key.clone();
    let bytes = storage.get(&key).unwrap();
    // The attacker (or an impatient user) breaks it.
    storage.delete(&key).unwrap();
    // Two heartbeats (every lease / 4 = 0.5 s) pass.
    std::thread::sleep(Duration::from_millis(1300));
    assert!(locks().is_empty(), "the heartbeat wrote a broken lock back: {:?}", locks());
    let err = lock.check_alive().unwrap_err().to_string();
    assert!(err.contains("removed") || err.contains("broke"), "{err}");
    // Even if the same object reappears (a late write in flight), the
    // holder stays stopped.
    storage.put(&key, &bytes).unwrap();
    assert!(lock.check_alive().is_err(), "a broken lock came back to life");
}
