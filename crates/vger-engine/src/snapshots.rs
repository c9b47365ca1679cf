//! Listing, loading and finding snapshots by id prefix or `latest`.

use vger_crypto::ObjectType;
use vger_format::id::{SnapshotId, SNAPSHOTS_PREFIX};
use vger_format::object::{check_version, open_object};
use vger_format::snapshot::{Snapshot, SNAPSHOT_VERSION};

use crate::repository::Repository;
use crate::{EngineError, Result};

/// A snapshot and its id.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub id: SnapshotId,
    pub snapshot: Snapshot,
}

/// The ids of all snapshots (no decryption).
pub fn list_ids(repo: &Repository) -> Result<Vec<SnapshotId>> {
    Ok(repo
        .storage()
        .list(SNAPSHOTS_PREFIX)?
        .into_iter()
        .filter_map(|o| SnapshotId::from_storage_key(&o.key))
        .collect())
}

pub fn load(repo: &Repository, id: SnapshotId) -> Result<SnapshotInfo> {
    let key = id.storage_key();
    let bytes = repo.storage().get(&key)?;
    let snapshot: Snapshot = open_object(repo.envelope(), ObjectType::Snapshot, key.as_bytes(), "snapshot", bytes)?;
    check_version("snapshot", snapshot.version, SNAPSHOT_VERSION)?;
    Ok(SnapshotInfo { id, snapshot })
}

/// All snapshots, oldest first (by time, then id).
pub fn list(repo: &Repository) -> Result<Vec<SnapshotInfo>> {
    let ids = list_ids(repo)?;
    let mut all = crate::parallel::map(ids, 8, |id| load(repo, id))?;
    all.sort_by(|a, b| a.snapshot.time.cmp(&b.snapshot.time).then(a.id.cmp(&b.id)));
    Ok(all)
}

/// Resolves `latest` or a hex prefix (git style) to one snapshot.
pub fn find(repo: &Repository, spec: &str) -> Result<SnapshotInfo> {
    if spec == "latest" {
        return list(repo)?.pop().ok_or_else(|| EngineError::SnapshotNotFound(spec.to_string()));
    }
    let prefix = spec.to_ascii_lowercase();
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EngineError::SnapshotNotFound(spec.to_string()));
    }
    let matches: Vec<SnapshotId> = list_ids(repo)?.into_iter().filter(|id| id.to_hex().starts_with(&prefix)).collect();
    match matches.as_slice() {
        [] => Err(EngineError::SnapshotNotFound(spec.to_string())),
        [one] => load(repo, *one),
        many => Err(EngineError::AmbiguousSnapshot { prefix: spec.to_string(), count: many.len() }),
    }
}

/// The newest snapshot of a source label from this host: the parent for
/// change detection.
pub fn latest_for(repo: &Repository, label: &str, host: &str) -> Result<Option<SnapshotInfo>> {
    Ok(list(repo)?.into_iter().rfind(|s| s.snapshot.source_label == label && s.snapshot.hostname == host))
}

/// The shortest unique prefix length (at least 8) for displaying ids.
pub fn short_id(id: &SnapshotId) -> String {
    id.to_hex()[..8].to_string()
}
