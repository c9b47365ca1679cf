//! Releasing a repository lock must be prompt: a command that takes a lock
//! (backup, restore) and finishes quickly must not wait for the heartbeat
//! thread's next tick before it can exit.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vger_crypto::KdfParams;
use vger_engine::lock::RepoLock;
use vger_engine::repository::{InitOptions, Repository};
use vger_storage::LocalStorage;

#[test]
fn releasing_a_lock_right_after_taking_it_is_prompt() {
    // A short lease makes the heartbeat tick every 2 s, so a release that
    // misses the wake-up costs 2 s here instead of 150 s by default.
    std::env::set_var("VGER_LOCK_LEASE_SECS", "8");
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalStorage::create(&dir.path().join("repo")).unwrap());
    let opts = InitOptions { kdf: KdfParams::insecure_fast(), ..InitOptions::default() };
    let repo = Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
    let mut slow = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        let lock = RepoLock::shared(&repo, "test").unwrap();
        drop(lock);
        let took = started.elapsed();
        if took > Duration::from_millis(1500) {
            slow.push((i, took));
        }
    }
    assert!(
        slow.is_empty(),
        "dropping a lock waited for the heartbeat's next tick (lost wake-up): {} of 5 releases were slow: {slow:?}",
        slow.len()
    );
    assert!(std::fs::read_dir(dir.path().join("repo/locks")).unwrap().next().is_none(), "a lock was left behind");
}
