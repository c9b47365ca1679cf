//! Compact drops a location of a chunk in use only after proving the copy
//! it keeps: here the first-listed copy of every chunk has rotted on disk,
//! and a second copy sits in a pack no segment names yet.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::sync::Arc;
use std::time::Duration;

use vger_crypto::{KdfParams, ObjectType};
use vger_engine::backup::{backup, BackupOptions, BackupSource, ChangeDetection};
use vger_engine::compact::{compact, CompactOptions};
use vger_engine::index::ChunkIndex;
use vger_engine::progress::Progress;
use vger_engine::repository::{InitOptions, Repository};
use vger_engine::restore::{restore, RestoreOptions};
use vger_engine::snapshots;
use vger_format::pack::PackBuilder;
use vger_fs::{WalkOptions, WalkRoot};
use vger_storage::{LocalStorage, Storage};

#[test]
fn compact_keeps_the_copy_that_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalStorage::create(&dir.path().join("repo")).unwrap());
    let opts = InitOptions {
        kdf: KdfParams::insecure_fast(),
        chunker: vger_chunker::ChunkerParams { min_size: 16 << 10, avg_size: 64 << 10, max_size: 256 << 10 },
        ..InitOptions::default()
    };
    let repo = Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut data = vec![0u8; 700_000];
    blake3::Hasher::new().update(b"rot").finalize_xof().fill(&mut data);
    std::fs::write(src.join("file"), &data).unwrap();
    let source = BackupSource {
        label: "src".into(),
        roots: vec![WalkRoot { abs: src.clone(), rel: Vec::new() }],
        paths: vec![src.display().to_string()],
        walk: WalkOptions::default(),
        change_detection: ChangeDetection::Strict,
        dumps: Vec::new(),
    };
    backup(&repo, &source, &BackupOptions { threads: 2, ..Default::default() }, &Progress::default()).unwrap();

    // A second pack holding a sound copy of every data chunk (as a backup
    // that crashed before writing its segment leaves), not yet indexed.
    let index = ChunkIndex::load(&repo).unwrap();
    let mut copy = PackBuilder::with_capacity(4 << 20);
    let mut rotted = 0;
    for (id, loc) in index.blobs().filter(|(_, l)| l.blob_type == ObjectType::DataChunk as u8) {
        let pack = index.packs()[loc.pack as usize].id;
        let key = pack.storage_key();
        let sealed = repo.storage().get_range(&key, loc.offset.into(), loc.length.into()).unwrap();
        copy.add(*id, ObjectType::DataChunk, loc.raw_length, &sealed);
        // Then the indexed copy rots: one byte flipped inside it.
        let path = dir.path().join("repo").join(&key);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[loc.offset as usize + 40] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
        rotted += 1;
    }
    assert!(rotted >= 5, "{rotted} chunks");
    let copy = copy.finish(repo.envelope()).unwrap();
    repo.storage().put(&copy.id.storage_key(), &copy.bytes).unwrap();

    let report = compact(
        &repo,
        &CompactOptions { grace: Duration::ZERO, ..Default::default() },
        &vger_engine::progress::Progress::default(),
    )
    .unwrap();
    assert_eq!(report.copies_refused, rotted, "{report:?}");
    assert_eq!(report.packs_adopted, 1, "{report:?}");

    let snap = snapshots::find(&repo, "latest").unwrap();
    let dest = dir.path().join("restored");
    let restored = restore(&repo, &snap, &dest, &RestoreOptions::default(), &Progress::default()).unwrap();
    assert!(restored.failures.is_empty(), "{:?}", restored.failures);
    assert_eq!(std::fs::read(dest.join("file")).unwrap(), data);
}
