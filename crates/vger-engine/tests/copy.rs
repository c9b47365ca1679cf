//! `vger copy` at the engine level: snapshots move between two local
//! repositories with different passphrases and compression, restore from
//! the target gives the source's bytes, and a second run copies nothing.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::path::Path;
use std::sync::Arc;

use vger_crypto::KdfParams;
use vger_engine::backup::{backup, BackupOptions, BackupSource, ChangeDetection};
use vger_engine::copy::{copy, CopyOptions};
use vger_engine::progress::Progress;
use vger_engine::repository::{InitOptions, Repository};
use vger_engine::restore::{restore, RestoreOptions};
use vger_engine::snapshots;
use vger_format::compress::Codec;
use vger_fs::{WalkOptions, WalkRoot};
use vger_storage::LocalStorage;

fn repo(path: &Path, pass: &[u8], compression: Codec) -> Repository {
    let storage = Arc::new(LocalStorage::create(path).unwrap());
    let opts = InitOptions {
        kdf: KdfParams::insecure_fast(),
        chunker: vger_chunker::ChunkerParams { min_size: 16 << 10, avg_size: 64 << 10, max_size: 256 << 10 },
        compression,
        ..InitOptions::default()
    };
    Repository::init(storage, Some(pass.to_vec()), opts).unwrap()
}

fn random(seed: &str, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    blake3::Hasher::new().update(seed.as_bytes()).finalize_xof().fill(&mut data);
    data
}

fn files_under(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn copy_restores_equal_and_reruns_send_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let source_repo = repo(&dir.path().join("a"), b"first", Codec::Lz4);
    let target_repo = repo(&dir.path().join("b"), b"second", Codec::Zstd(3));
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    let shared = random("shared", 600_000);
    std::fs::write(src.join("one"), &shared).unwrap();
    std::fs::write(src.join("sub/two"), &shared).unwrap();
    std::fs::write(src.join("sub/deeper/three"), random("three", 900_000)).unwrap();
    std::fs::write(src.join("text"), "hello\n".repeat(50_000)).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    let source = BackupSource {
        label: "src".into(),
        roots: vec![WalkRoot { abs: src.clone(), rel: Vec::new() }],
        paths: vec![src.display().to_string()],
        walk: WalkOptions::default(),
        change_detection: ChangeDetection::Strict,
        dumps: Vec::new(),
    };
    let opts = BackupOptions { threads: 2, ..Default::default() };
    backup(&source_repo, &source, &opts, &Progress::default()).unwrap();
    std::fs::write(src.join("later"), random("later", 300_000)).unwrap();
    backup(&source_repo, &source, &opts, &Progress::default()).unwrap();
    let list = snapshots::list(&source_repo).unwrap();
    assert_eq!(list.len(), 2);

    let first = copy(&source_repo, &target_repo, &list, &CopyOptions::default(), &Progress::default()).unwrap();
    assert_eq!(first.copied.len(), 2, "{first:?}");
    assert!(first.chunks_sent > 0 && first.chunks_deduplicated > 0, "{first:?}");

    // Reopened with its own passphrase, the target restores the source's bytes.
    let target_repo =
        Repository::open(Arc::new(LocalStorage::open(&dir.path().join("b")).unwrap()), &|| Ok(b"second".to_vec()))
            .unwrap();
    for copied in &first.copied {
        let original = snapshots::load(&source_repo, copied.source_id).unwrap();
        let snap = snapshots::load(&target_repo, copied.target_id).unwrap();
        assert_eq!(snap.snapshot.copied_from, Some(copied.source_id));
        assert_eq!(
            (&snap.snapshot.time, &snap.snapshot.hostname, &snap.snapshot.source_label, &snap.snapshot.paths),
            (
                &original.snapshot.time,
                &original.snapshot.hostname,
                &original.snapshot.source_label,
                &original.snapshot.paths
            )
        );
        let from_source = dir.path().join(format!("r-src-{}", copied.source_id.short()));
        let from_target = dir.path().join(format!("r-dst-{}", copied.source_id.short()));
        let a =
            restore(&source_repo, &original, &from_source, &RestoreOptions::default(), &Progress::default()).unwrap();
        let b = restore(&target_repo, &snap, &from_target, &RestoreOptions::default(), &Progress::default()).unwrap();
        assert!(a.failures.is_empty() && b.failures.is_empty(), "{:?} {:?}", a.failures, b.failures);
        let restored = files_under(&from_target);
        assert!(restored.len() >= 5);
        assert_eq!(restored, files_under(&from_source));
    }

    let second = copy(&source_repo, &target_repo, &list, &CopyOptions::default(), &Progress::default()).unwrap();
    assert!(second.copied.is_empty(), "{second:?}");
    assert_eq!(second.already_copied.len(), 2);
    assert_eq!(second.chunks_sent, 0);
    assert_eq!(snapshots::list(&target_repo).unwrap().len(), 2);
}

/// A copy stopped halfway (cancelled between files, with a checkpoint
/// after every pack) leaves indexed packs; the rerun sends exactly the
/// chunks the target's index lacks, none twice, and the copy restores.
#[test]
fn interrupted_copy_resumes_without_sending_twice() {
    use std::sync::atomic::Ordering;
    use vger_engine::index::ChunkIndex;
    use vger_engine::progress::CancelFlag;

    let dir = tempfile::tempdir().unwrap();
    let source_repo = repo(&dir.path().join("a"), b"first", Codec::None);
    let storage = Arc::new(LocalStorage::create(&dir.path().join("b")).unwrap());
    let opts = InitOptions {
        kdf: KdfParams::insecure_fast(),
        chunker: vger_chunker::ChunkerParams { min_size: 16 << 10, avg_size: 64 << 10, max_size: 256 << 10 },
        compression: Codec::Lz4,
        pack_target_size: 1 << 20,
        ..InitOptions::default()
    };
    let target_repo = Repository::init(storage, Some(b"second".to_vec()), opts).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..40 {
        std::fs::write(src.join(format!("f{i:02}")), random(&format!("file {i}"), 200_000)).unwrap();
    }
    let source = BackupSource {
        label: "src".into(),
        roots: vec![WalkRoot { abs: src.clone(), rel: Vec::new() }],
        paths: vec![src.display().to_string()],
        walk: WalkOptions::default(),
        change_detection: ChangeDetection::Strict,
        dumps: Vec::new(),
    };
    backup(&source_repo, &source, &BackupOptions { threads: 2, ..Default::default() }, &Progress::default()).unwrap();
    let list = snapshots::list(&source_repo).unwrap();
    let copy_opts = CopyOptions { checkpoint_interval: Some(std::time::Duration::ZERO), ..Default::default() };

    let cancel = CancelFlag::default();
    let progress = Progress::with_cancel(cancel.clone());
    let stopped = std::thread::scope(|scope| {
        scope.spawn(|| {
            while progress.new_bytes.load(Ordering::Relaxed) < 3 << 20 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            cancel.cancel();
        });
        copy(&source_repo, &target_repo, &list, &copy_opts, &progress)
    });
    assert!(stopped.is_err(), "the copy was not stopped: {stopped:?}");
    assert!(snapshots::list(&target_repo).unwrap().is_empty(), "a stopped copy wrote a snapshot");
    let indexed = ChunkIndex::load(&target_repo).unwrap().len() as u64;
    assert!(indexed > 0, "nothing was indexed before the stop");

    let rerun = copy(&source_repo, &target_repo, &list, &copy_opts, &Progress::default()).unwrap();
    assert_eq!(rerun.copied.len(), 1);
    let total = ChunkIndex::load(&target_repo).unwrap().len() as u64;
    assert_eq!(rerun.chunks_sent, total - indexed, "indexed {indexed}, total {total}: {rerun:?}");
    assert!(rerun.chunks_sent > 0 && rerun.chunks_sent < total, "{rerun:?}");

    let snap = snapshots::load(&target_repo, rerun.copied[0].target_id).unwrap();
    let dest = dir.path().join("restored");
    let report = restore(&target_repo, &snap, &dest, &RestoreOptions::default(), &Progress::default()).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(files_under(&dest), files_under(&src));
}
