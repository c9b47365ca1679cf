//! `vger delete`: removes a whole repository.

use vger_format::id::{CONFIG_KEY, INDEX_PREFIX, KEYS_PREFIX, LOCKS_PREFIX, PACKS_PREFIX, SNAPSHOTS_PREFIX};

use crate::lock::RepoLock;
use crate::repository::Repository;
use crate::Result;

/// Deletes every object: snapshots first (so an interrupted delete leaves
/// no snapshot pointing at deleted data), then the index, packs, keys and
/// the config last (so the command can be run again to finish).
pub fn delete_repository(repo: &Repository) -> Result<u64> {
    let lock = RepoLock::exclusive(repo, "delete")?;
    let storage = repo.storage();
    let mut n = 0;
    for prefix in [SNAPSHOTS_PREFIX, INDEX_PREFIX, PACKS_PREFIX, KEYS_PREFIX] {
        for obj in storage.list(prefix)? {
            storage.delete(&obj.key)?;
            n += 1;
        }
    }
    drop(lock);
    for obj in storage.list(LOCKS_PREFIX)? {
        storage.delete(&obj.key)?;
    }
    storage.delete(CONFIG_KEY)?;
    Ok(n + 1)
}
