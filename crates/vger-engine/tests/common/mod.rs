//! Helpers shared by the engine's tree tests: a repository with a fast
//! KDF, a backup of one folder at a given time, and a tree store.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use vger_crypto::KdfParams;
use vger_engine::backup::{backup, BackupOptions, BackupSource, ChangeDetection};
use vger_engine::index::ChunkIndex;
use vger_engine::progress::Progress;
use vger_engine::repository::{InitOptions, Repository};
use vger_engine::snapshots::SnapshotInfo;
use vger_engine::tree::TreeStore;
use vger_fs::{WalkOptions, WalkRoot};
use vger_storage::LocalStorage;

/// A new repository at `dir` (passphrase `pw`).
pub fn init(dir: &Path) -> Repository {
    let storage = Arc::new(LocalStorage::create(dir).unwrap());
    let opts = InitOptions { kdf: KdfParams::insecure_fast(), ..InitOptions::default() };
    Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap()
}

/// Backs up `src` as of `time` (far after every mtime, so unchanged files
/// are recognised as such).
pub fn run_backup(repo: &Repository, src: &Path, time: &str) -> SnapshotInfo {
    let source = BackupSource {
        label: "t".into(),
        roots: vec![WalkRoot { abs: src.to_path_buf(), rel: Vec::new() }],
        paths: vec![src.display().to_string()],
        walk: WalkOptions::default(),
        change_detection: ChangeDetection::Strict,
        dumps: Vec::new(),
    };
    let opts = BackupOptions { time: Some(time.parse().unwrap()), threads: 2, ..Default::default() };
    let report = backup(repo, &source, &opts, &Progress::default()).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    SnapshotInfo { id: report.snapshot_id, snapshot: report.snapshot, stored_at: None }
}

/// A tree store over the repository's whole index, 4 MiB of cache.
pub fn store(repo: &Repository) -> TreeStore {
    TreeStore::new(repo, Arc::new(ChunkIndex::load(repo).unwrap()), 4 << 20)
}
