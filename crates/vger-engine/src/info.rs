//! Repository statistics for `vger info`.

use std::collections::HashSet;

use serde::Serialize;

use crate::index::ChunkIndex;
use crate::repository::Repository;
use crate::snapshots;
use crate::Result;

#[derive(Debug, Clone, Serialize)]
pub struct RepositoryInfo {
    pub location: String,
    pub repository_id: String,
    pub encryption: String,
    pub tamper_proof: bool,
    pub compression: String,
    pub created: String,
    pub snapshots: usize,
    /// Sum of the file sizes of all snapshots.
    pub original_bytes: u64,
    /// Plaintext size of all unique chunks (after deduplication).
    pub deduplicated_bytes: u64,
    /// Size of all unique chunks as stored (compressed and encrypted).
    pub compressed_bytes: u64,
    /// Size of all packs (includes unreferenced chunks and pack framing).
    pub stored_bytes: u64,
    pub chunks: usize,
    pub packs: usize,
}

pub fn info(repo: &Repository) -> Result<RepositoryInfo> {
    let index = ChunkIndex::load(repo)?;
    let snaps = snapshots::list(repo)?;
    let mut dedup = 0u64;
    let mut compressed = 0u64;
    for (_, loc) in index.blobs() {
        dedup += u64::from(loc.raw_length);
        compressed += u64::from(loc.length);
    }
    let packs: HashSet<_> = index.packs().iter().map(|p| p.id).collect();
    let stored = index.packs().iter().map(|p| p.size).sum();
    let cfg = repo.config();
    Ok(RepositoryInfo {
        location: repo.location(),
        repository_id: hex::encode(repo.repository_id()),
        encryption: cfg.encryption.clone(),
        tamper_proof: cfg.encryption != "none",
        compression: cfg.compression.clone(),
        created: cfg.created.clone(),
        snapshots: snaps.len(),
        original_bytes: snaps.iter().map(|s| s.snapshot.stats.bytes).sum(),
        deduplicated_bytes: dedup,
        compressed_bytes: compressed,
        stored_bytes: stored,
        chunks: index.len(),
        packs: packs.len(),
    })
}
