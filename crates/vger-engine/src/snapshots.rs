//! Listing, loading and finding snapshots by id prefix or `latest`.

use vger_crypto::ObjectType;
use vger_format::id::{SnapshotId, SNAPSHOTS_PREFIX};
use vger_format::object::{check_version_range, open_object};
use vger_format::snapshot::{Snapshot, SNAPSHOT_VERSION};

use crate::repository::Repository;
use crate::{EngineError, Result};

/// A snapshot and its id.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub id: SnapshotId,
    pub snapshot: Snapshot,
    /// When the storage received it (unix seconds), if the storage says.
    pub stored_at: Option<u64>,
}

/// The ids of all snapshots (no decryption).
pub fn list_ids(repo: &Repository) -> Result<Vec<SnapshotId>> {
    Ok(list_stored(repo)?.into_iter().map(|(id, _)| id).collect())
}

/// Snapshot ids with the time the storage received each, when known.
fn list_stored(repo: &Repository) -> Result<Vec<(SnapshotId, Option<u64>)>> {
    Ok(repo
        .storage()
        .list(SNAPSHOTS_PREFIX)?
        .into_iter()
        .filter_map(|o| SnapshotId::from_storage_key(&o.key).map(|id| (id, o.modified)))
        .collect())
}

pub fn load(repo: &Repository, id: SnapshotId) -> Result<SnapshotInfo> {
    let key = id.storage_key();
    let what = format!("snapshot {}", short_id(&id));
    let bytes = repo.storage().get(&key)?;
    let raw = open_object::<vger_format::snapshot::VersionOnly>(
        repo.envelope(),
        ObjectType::Snapshot,
        key.as_bytes(),
        &what,
        bytes.clone(),
    )?;
    // Version 1 held the tree as one stream; no release wrote it.
    check_version_range(&what, raw.version, 2, SNAPSHOT_VERSION)?;
    let snapshot: Snapshot = open_object(repo.envelope(), ObjectType::Snapshot, key.as_bytes(), &what, bytes)?;
    Ok(SnapshotInfo { id, snapshot, stored_at: None })
}

/// All snapshots, oldest first (by time, then id). Fails if any snapshot
/// cannot be read: callers that decide what to delete need all of them.
pub fn list(repo: &Repository) -> Result<Vec<SnapshotInfo>> {
    let (all, mut errors) = list_readable(repo)?;
    match errors.pop() {
        Some((_, e)) => Err(e),
        None => Ok(all),
    }
}

/// A snapshot that could not be read, and why.
pub type Unreadable = (SnapshotId, EngineError);

/// The snapshots that can be read, oldest first, and the errors of those
/// that cannot (listing and parent lookup go on without them).
pub fn list_readable(repo: &Repository) -> Result<(Vec<SnapshotInfo>, Vec<Unreadable>)> {
    let ids = list_stored(repo)?;
    let results = crate::parallel::map(ids, 8, |(id, stored_at)| {
        Ok((id, load(repo, id).map(|s| SnapshotInfo { stored_at, ..s })))
    })?;
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for (id, r) in results {
        match r {
            Ok(s) => ok.push(s),
            Err(e) => errors.push((id, e)),
        }
    }
    ok.sort_by(|a, b| a.snapshot.time.cmp(&b.snapshot.time).then(a.id.cmp(&b.id)));
    Ok((ok, errors))
}

/// Resolves `latest` or a hex prefix (git style) to one snapshot.
pub fn find(repo: &Repository, spec: &str) -> Result<SnapshotInfo> {
    if spec == "latest" {
        // Strict: with an unreadable snapshot we cannot know which is the
        // latest, and silently restoring an older one would mislead.
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
    // A damaged snapshot must not stop new backups: `check` reports it.
    Ok(list_readable(repo)?.0.into_iter().rfind(|s| s.snapshot.source_label == label && s.snapshot.hostname == host))
}

/// The shortest unique prefix length (at least 8) for displaying ids.
pub fn short_id(id: &SnapshotId) -> String {
    id.to_hex()[..8].to_string()
}
