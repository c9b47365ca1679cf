//! Prune, compact, check, repair and locks on real local repositories.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vger_crypto::KdfParams;
use vger_engine::backup::{backup, BackupOptions, BackupSource, ChangeDetection};
use vger_engine::check::{check, CheckOptions};
use vger_engine::compact::{compact, CompactOptions};
use vger_engine::lock::RepoLock;
use vger_engine::progress::Progress;
use vger_engine::prune::{prune, PruneOptions};
use vger_engine::repair::repair;
use vger_engine::repository::{InitOptions, Repository};
use vger_engine::restore::{restore, RestoreOptions};
use vger_engine::retention::RetentionPolicy;
use vger_engine::snapshots;
use vger_fs::{WalkOptions, WalkRoot};
use vger_storage::{LocalStorage, Storage};

fn init(dir: &Path) -> Repository {
    let storage = Arc::new(LocalStorage::create(&dir.join("repo")).unwrap());
    let opts = InitOptions {
        kdf: KdfParams::insecure_fast(),
        // Small chunks and packs: many packs from little data.
        chunker: vger_chunker::ChunkerParams { min_size: 16 << 10, avg_size: 64 << 10, max_size: 256 << 10 },
        pack_target_size: 1 << 20,
        ..InitOptions::default()
    };
    Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap()
}

fn reopen(dir: &Path) -> Repository {
    let storage = Arc::new(LocalStorage::open(&dir.join("repo")).unwrap());
    Repository::open(storage, &|| Ok(b"pw".to_vec())).unwrap()
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn source(path: &Path, label: &str) -> BackupSource {
    BackupSource {
        label: label.into(),
        roots: vec![WalkRoot { abs: path.to_path_buf(), rel: Vec::new() }],
        paths: vec![path.display().to_string()],
        walk: WalkOptions::default(),
        change_detection: ChangeDetection::Strict,
        dumps: Vec::new(),
    }
}

fn run_backup(repo: &Repository, src: &Path, time: &str) -> vger_engine::backup::BackupReport {
    let opts = BackupOptions { time: Some(time.parse().unwrap()), threads: 2, ..Default::default() };
    backup(repo, &source(src, "data"), &opts, &Progress::default()).unwrap()
}

/// A repository holding one snapshot of one random file of `len` bytes.
fn one_backup(len: usize) -> (tempfile::TempDir, Repository, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.bin"), noise(len, 5)).unwrap();
    run_backup(&repo, &src, "2026-10-01T12:00:00Z");
    (dir, repo, src)
}

fn check_clean(repo: &Repository, verify: bool) {
    let r = check(repo, &CheckOptions { verify_data: verify, ..Default::default() }, &Progress::default()).unwrap();
    assert!(r.is_ok(), "check found problems: {:?}", r.errors);
}

fn restore_equals(repo: &Repository, spec: &str, expect: &Path, dest: &Path) {
    let snap = snapshots::find(repo, spec).unwrap();
    let report = restore(repo, &snap, dest, &RestoreOptions::default(), &Progress::default()).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let status = std::process::Command::new("diff").arg("-r").arg(expect).arg(dest).status().unwrap();
    assert!(status.success(), "restored tree differs from {}", expect.display());
}

fn repo_size(dir: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        let m = e.metadata().unwrap();
                        if m.is_dir() {
                            walk(&e.path())
                        } else {
                            m.len()
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&dir.join("repo"))
}

#[test]
fn prune_then_compact_frees_space_and_keeps_the_rest_restorable() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    // Three generations of a directory with mostly different content.
    let mut expected = Vec::new();
    for day in 1..=3u64 {
        std::fs::write(src.join("big.bin"), noise(3 << 20, day)).unwrap();
        std::fs::write(src.join("stable.txt"), b"always the same\n").unwrap();
        run_backup(&repo, &src, &format!("2026-10-0{day}T12:00:00Z"));
        let copy = dir.path().join(format!("expect{day}"));
        std::process::Command::new("cp").arg("-a").arg(&src).arg(&copy).status().unwrap();
        expected.push(copy);
    }
    let before = repo_size(dir.path());
    let policy = RetentionPolicy { keep_last: Some(1), ..Default::default() };
    let report = prune(&repo, &|_| Ok(policy.clone()), &PruneOptions::default()).unwrap();
    assert_eq!((report.deleted, report.kept), (2, 1));
    let c =
        compact(&repo, &CompactOptions { grace: Duration::ZERO, ..Default::default() }, &Progress::default()).unwrap();
    assert!(c.packs_deleted + c.packs_repacked > 0, "{c:?}");
    let after = repo_size(dir.path());
    assert!(after < before * 45 / 100, "compact freed too little: {before} -> {after}");
    check_clean(&repo, true);
    restore_equals(&repo, "latest", &expected[2], &dir.path().join("out"));
    // The next backup still works and deduplicates against what is left.
    let r = run_backup(&repo, &src, "2026-10-04T12:00:00Z");
    assert!(r.snapshot.stats.added_bytes < 100_000, "{:?}", r.snapshot.stats);
}

/// Packs whose every blob a snapshot needs are left alone, however small:
/// a pack's header and trailer are not "unused" (the tree pack of a small
/// backup, a kilobyte or two, was repacked into an equal pack every run).
#[test]
fn compact_leaves_small_packs_alone_when_every_blob_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..3 {
        std::fs::write(src.join(format!("note{i}.txt")), format!("note {i}\n")).unwrap();
    }
    run_backup(&repo, &src, "2026-10-01T12:00:00Z");
    let packs = |repo: &Repository| {
        let mut keys: Vec<String> = repo.storage().list("packs/").unwrap().into_iter().map(|o| o.key).collect();
        keys.sort();
        keys
    };
    let before = packs(&repo);
    assert!(!before.is_empty());
    let opts = CompactOptions { grace: Duration::ZERO, ..Default::default() };
    for run in 0..2 {
        let c = compact(&repo, &opts, &Progress::default()).unwrap();
        assert_eq!((c.packs_repacked, c.packs_deleted, c.packs_written), (0, 0, 0), "run {run}: {c:?}");
        assert_eq!(packs(&repo), before, "run {run} rewrote packs");
    }
    check_clean(&repo, true);
    restore_equals(&repo, "latest", &src, &dir.path().join("out"));
}

/// A stolen client's padding: a pack whose index entry lists only some of
/// the bytes it holds (here 400 KiB of junk sealed beside the real blobs)
/// counts those bytes as unused, so compact repacks it and frees them,
/// although every blob the index lists is still needed.
#[test]
fn compact_reclaims_bytes_no_index_entry_lists() {
    let (dir, repo, src) = one_backup(600 << 10);
    let segments = vger_engine::index::load_segments(&repo).unwrap();
    let mut packs: Vec<vger_format::index::PackEntry> =
        segments.iter().flat_map(|(_, s)| s.packs.iter().cloned()).collect();
    packs.sort_by_key(|p| std::cmp::Reverse(p.size));
    // The largest pack, rewritten with junk after its blobs; its index entry
    // names only the real blobs, at their old offsets.
    let honest = packs[0].clone();
    let bytes = repo.storage().get(&honest.id.storage_key()).unwrap();
    let mut padded = vger_format::pack::PackBuilder::with_capacity(bytes.len() + (400 << 10));
    for b in &honest.blobs {
        let sealed = &bytes[b.offset as usize..b.offset as usize + b.length as usize];
        let ty = vger_crypto::ObjectType::from_tag(b.blob_type).unwrap();
        padded.add(b.id, ty, b.raw_length, sealed);
    }
    let junk = noise(400 << 10, 9);
    padded.add(vger_format::id::ChunkId([7; 32]), vger_crypto::ObjectType::DataChunk, junk.len() as u32, &junk);
    let padded = padded.finish(repo.envelope()).unwrap();
    let mut entry = padded.entry.clone();
    entry.blobs.truncate(honest.blobs.len());
    assert_eq!(entry.blobs, honest.blobs);
    repo.storage().put(&padded.id.storage_key(), &padded.bytes).unwrap();
    packs[0] = entry;
    vger_engine::index::write_segment(repo.storage(), repo.envelope(), packs).unwrap();
    for (id, _) in &segments {
        repo.storage().delete(&id.storage_key()).unwrap();
    }
    repo.storage().delete(&honest.id.storage_key()).unwrap();
    let repo = reopen(dir.path());
    let before = repo_size(dir.path());

    let opts = CompactOptions { grace: Duration::ZERO, ..Default::default() };
    let c = compact(&repo, &opts, &Progress::default()).unwrap();
    assert_eq!((c.packs_repacked, c.packs_deleted), (1, 0), "{c:?}");
    let after = repo_size(dir.path());
    assert!(before - after >= 400_000, "freed only {} bytes: {c:?}", before - after);
    assert!(repo.storage().size(&padded.id.storage_key()).unwrap().is_none());
    check_clean(&repo, true);
    restore_equals(&repo, "latest", &src, &dir.path().join("out"));
}

/// A walk started before the repository is open (as `vger backup` does)
/// backs up the source as `backup` does; a walk of other paths is refused.
#[test]
fn a_walk_started_early_makes_the_same_snapshot() {
    let (dir, repo, src) = one_backup(100 << 10);
    std::fs::write(src.join("b.txt"), b"later\n").unwrap();
    let walk = vger_engine::backup::start_walk(&source(&src, "data")).unwrap();
    let opts = BackupOptions { time: Some("2026-10-02T12:00:00Z".parse().unwrap()), threads: 2, ..Default::default() };
    let r =
        vger_engine::backup::backup_with_walk(&repo, &source(&src, "data"), walk, &opts, &Progress::default()).unwrap();
    assert_eq!(r.snapshot.stats.files, 2, "{:?}", r.snapshot.stats);
    restore_equals(&repo, "latest", &src, &dir.path().join("out"));
    // A backup that starts its own walk, of the same unchanged source,
    // makes the same tree.
    let again = run_backup(&repo, &src, "2026-10-03T12:00:00Z");
    assert_eq!(again.snapshot.root, r.snapshot.root);

    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let walk = vger_engine::backup::start_walk(&source(&other, "data")).unwrap();
    let err = vger_engine::backup::backup_with_walk(&repo, &source(&src, "data"), walk, &opts, &Progress::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("other paths"), "{err}");
}

#[test]
fn compact_respects_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.bin"), noise(2 << 20, 1)).unwrap();
    let r = run_backup(&repo, &src, "2026-10-01T12:00:00Z");
    vger_engine::prune::delete_snapshots(&repo, &[r.snapshot_id]).unwrap();
    let c = compact(&repo, &CompactOptions::default(), &Progress::default()).unwrap();
    assert_eq!(c.packs_deleted, 0, "a pack younger than the grace period was deleted");
    assert!(c.packs_too_young > 0);
    let c =
        compact(&repo, &CompactOptions { grace: Duration::ZERO, ..Default::default() }, &Progress::default()).unwrap();
    assert!(c.packs_deleted > 0);
}

#[test]
fn maintenance_refuses_while_a_backup_holds_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path());
    let held = RepoLock::shared(&repo, "backup").unwrap();
    let other = reopen(dir.path());
    let err = compact(&other, &CompactOptions::default(), &Progress::default()).unwrap_err().to_string();
    assert!(err.contains("locked") && err.contains("backup"), "{err}");
    let err =
        prune(&other, &|_| Ok(RetentionPolicy { keep_last: Some(1), ..Default::default() }), &PruneOptions::default())
            .unwrap_err()
            .to_string();
    assert!(err.contains("locked"), "{err}");
    drop(held);
    // Maintenance holds it now: a backup fails clearly, naming the holder.
    let held = RepoLock::exclusive(&repo, "compact").unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let err =
        backup(&other, &source(&src, "x"), &BackupOptions::default(), &Progress::default()).unwrap_err().to_string();
    assert!(err.contains("maintenance is running") && err.contains("compact"), "{err}");
    drop(held);
    backup(&other, &source(&src, "x"), &BackupOptions::default(), &Progress::default()).unwrap();
}

#[test]
fn a_lock_of_a_dead_process_on_this_host_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path());
    // A child process that takes the lock and is killed with SIGKILL would
    // need a separate binary; instead rewrite our own lock as if held by a
    // PID that cannot exist.
    let lock = RepoLock::exclusive(&repo, "prune").unwrap();
    let locks = vger_engine::lock::list_locks(&repo).unwrap();
    assert_eq!(locks.len(), 1);
    std::mem::forget(lock); // As if the holder died without releasing it.
    let (key, record) = locks.into_iter().next().unwrap();
    let mut record = record.unwrap();
    record.pid = i32::MAX as u32 - 7;
    vger_engine::lock::write_lock_for_tests(&repo, &key, &record).unwrap();
    let other = reopen(dir.path());
    let c = compact(&other, &CompactOptions::default(), &Progress::default());
    assert!(c.is_ok(), "a dead holder's lock blocked maintenance: {:?}", c.err());
}

#[test]
fn concurrent_backups_all_commit() {
    let dir = tempfile::tempdir().unwrap();
    let _ = init(dir.path());
    let mut handles = Vec::new();
    for i in 0..4u64 {
        let base = dir.path().to_path_buf();
        handles.push(std::thread::spawn(move || {
            let repo = reopen(&base);
            let src = base.join(format!("src{i}"));
            std::fs::create_dir(&src).unwrap();
            std::fs::write(src.join("shared.bin"), noise(1 << 20, 99)).unwrap();
            std::fs::write(src.join("own.bin"), noise(2 << 20, i)).unwrap();
            backup(&repo, &source(&src, &format!("s{i}")), &BackupOptions::default(), &Progress::default()).unwrap()
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let repo = reopen(dir.path());
    assert_eq!(snapshots::list(&repo).unwrap().len(), 4);
    check_clean(&repo, true);
    for i in 0..4u64 {
        let snap =
            snapshots::list(&repo).unwrap().into_iter().find(|s| s.snapshot.source_label == format!("s{i}")).unwrap();
        restore_equals(
            &repo,
            &snap.id.to_hex(),
            &dir.path().join(format!("src{i}")),
            &dir.path().join(format!("out{i}")),
        );
    }
}

#[test]
fn repair_rebuilds_a_lost_index() {
    let (dir, repo, src) = one_backup(3 << 20);
    for e in std::fs::read_dir(dir.path().join("repo/index")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let r = check(&repo, &CheckOptions::default(), &Progress::default()).unwrap();
    assert!(!r.is_ok(), "check missed a lost index");
    let fixed = repair(&repo, &CheckOptions::default(), &Progress::default(), &|_| false).unwrap();
    assert!(fixed.index_rebuilt && fixed.damaged.is_empty(), "{fixed:?}");
    check_clean(&repo, true);
    restore_equals(&repo, "latest", &src, &dir.path().join("out"));
}

/// A checkpoint fires on time although no pack fills: the pack being
/// assembled is closed early and indexed, so a backup that finds new data
/// slowly still leaves a resume point every interval.
#[test]
fn checkpoint_fires_on_time_when_packs_fill_slowly() {
    use vger_crypto::ObjectType;
    use vger_engine::blob::seal_chunk;
    use vger_engine::pack_writer::{PackWriter, SealedBlob};

    let dir = tempfile::tempdir().unwrap();
    let repo = init(dir.path());
    let interval = Duration::from_secs(1);
    // Packs of 32 MiB: one small chunk never fills one.
    let writer = PackWriter::start(repo.storage().clone(), repo.envelope().clone(), 32 << 20, 1, None, interval);
    let tx = writer.sender().unwrap();
    let data = noise(100 << 10, 9);
    let id = vger_format::id::ChunkId(repo.chunk_id_key().chunk_id(&data));
    let bytes = seal_chunk(repo.envelope(), repo.default_compression(), ObjectType::DataChunk, &id, &data).unwrap();
    tx.send(SealedBlob { id, ty: ObjectType::DataChunk, raw_length: data.len() as u32, bytes }).unwrap();
    let count = |prefix: &str| repo.storage().list(prefix).unwrap().len();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count("index/") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(count("index/"), 1, "no checkpoint segment within 10 s of a 1 s interval");
    assert_eq!(count("packs/"), 1);
    // The writer is still open: the chunk is indexed for a resumed backup.
    let index = vger_engine::index::ChunkIndex::load(&repo).unwrap();
    assert!(index.contains(&id));
    drop(tx);
    let stats = writer.finish().unwrap();
    assert_eq!((stats.packs, stats.segments), (1, 1), "{stats:?}");
}

/// `.tmp-*` files of killed writers are removed by compact once they are
/// old; a fresh one (a writer may still be at work) stays.
#[test]
fn compact_removes_old_temp_files_of_crashed_writers() {
    let (dir, repo, src) = one_backup(2 << 20);
    let pack_dir = std::fs::read_dir(dir.path().join("repo/packs")).unwrap().next().unwrap().unwrap().path();
    let old = pack_dir.join(".tmp-killedwriter0001");
    let old_index = dir.path().join("repo/index/.tmp-killedwriter0002");
    let fresh = pack_dir.join(".tmp-runningwriter");
    for p in [&old, &old_index, &fresh] {
        std::fs::write(p, noise(4096, 1)).unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    for p in [&old, &old_index] {
        std::fs::File::options().write(true).open(p).unwrap().set_modified(two_hours_ago).unwrap();
    }
    // A dry run touches nothing.
    let dry = compact(
        &repo,
        &CompactOptions { dry_run: true, grace: Duration::ZERO, ..Default::default() },
        &Progress::default(),
    )
    .unwrap();
    assert_eq!(dry.temp_files_removed, 0);
    assert!(old.exists());
    // Grace 0 s does not make a live writer's file fair game: the floor is an hour.
    let r =
        compact(&repo, &CompactOptions { grace: Duration::ZERO, ..Default::default() }, &Progress::default()).unwrap();
    assert_eq!(r.temp_files_removed, 2, "{r:?}");
    assert!(!old.exists() && !old_index.exists(), "old temp files are still there");
    assert!(fresh.exists(), "a fresh temp file (a running writer's) was removed");
    check_clean(&repo, true);
    restore_equals(&repo, "latest", &src, &dir.path().join("out"));
}

/// Local storage that counts the bytes read from `packs/`.
#[derive(Debug)]
struct CountingStorage {
    inner: LocalStorage,
    pack_bytes_read: std::sync::atomic::AtomicU64,
}

impl CountingStorage {
    fn count(&self, key: &str, n: usize) {
        if key.starts_with("packs/") {
            self.pack_bytes_read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Storage for CountingStorage {
    fn get(&self, key: &str) -> Result<Vec<u8>, vger_storage::StorageError> {
        let data = self.inner.get(key)?;
        self.count(key, data.len());
        Ok(data)
    }
    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, vger_storage::StorageError> {
        let data = self.inner.get_range(key, offset, len)?;
        self.count(key, data.len());
        Ok(data)
    }
    fn put(&self, key: &str, data: &[u8]) -> Result<(), vger_storage::StorageError> {
        self.inner.put(key, data)
    }
    fn put_new(&self, key: &str, data: &[u8]) -> Result<(), vger_storage::StorageError> {
        self.inner.put_new(key, data)
    }
    fn delete(&self, key: &str) -> Result<(), vger_storage::StorageError> {
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<vger_storage::ObjectInfo>, vger_storage::StorageError> {
        self.inner.list(prefix)
    }
    fn size(&self, key: &str) -> Result<Option<u64>, vger_storage::StorageError> {
        self.inner.size(key)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// `check` without `--verify-data` reads the index, the snapshots and the
/// small tree chunks, never the packs' data; `--verify-data` reads them all.
#[test]
fn check_without_verify_data_does_not_read_pack_contents() {
    let (dir, _, _) = one_backup(8 << 20);
    let packs_total: u64 = LocalStorage::open(&dir.path().join("repo"))
        .unwrap()
        .list("packs/")
        .map(|l| l.iter().map(|o| o.size).sum())
        .unwrap();
    let storage = Arc::new(CountingStorage {
        inner: LocalStorage::open(&dir.path().join("repo")).unwrap(),
        pack_bytes_read: Default::default(),
    });
    let repo = Repository::open(storage.clone(), &|| Ok(b"pw".to_vec())).unwrap();
    let read = || storage.pack_bytes_read.swap(0, std::sync::atomic::Ordering::Relaxed);
    check_clean(&repo, false);
    let structure = read();
    assert!(structure * 100 < packs_total, "check read {structure} of {packs_total} pack bytes");
    check_clean(&repo, true);
    assert!(read() >= packs_total, "verify-data reads every pack");
}

/// A cut pack that neither the index nor its own trailer describes cannot
/// be salvaged: repair reports it and leaves it, it never deletes it.
#[test]
fn repair_leaves_a_pack_it_cannot_read_at_all() {
    let (dir, repo, _) = one_backup(3 << 20);
    for e in std::fs::read_dir(dir.path().join("repo/index")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let (key, size) = repo.storage().list("packs/").unwrap().into_iter().map(|o| (o.key, o.size)).next().unwrap();
    let path = dir.path().join("repo").join(&key);
    std::fs::File::options().write(true).open(&path).unwrap().set_len(size / 3).unwrap();
    let opts = CheckOptions { verify_data: true, ..Default::default() };
    let r = repair(&repo, &opts, &Progress::default(), &|_| true).unwrap();
    assert!(r.packs_unreadable.iter().any(|p| p.contains("left as it is")), "{r:?}");
    assert_eq!(r.packs_salvaged, 0, "{r:?}");
    assert!(path.exists(), "repair deleted a pack it could not read");
}

/// `--verify-data` reads a pack a window at a time: in a pack several
/// windows long, with chunks across the windows' edges, every chunk is
/// verified, and one flipped byte damages exactly the chunk holding it.
#[test]
fn verify_data_streams_large_packs_chunk_by_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalStorage::create(&dir.path().join("repo")).unwrap());
    let opts = InitOptions {
        kdf: KdfParams::insecure_fast(),
        chunker: vger_chunker::ChunkerParams { min_size: 256 << 10, avg_size: 1 << 20, max_size: 4 << 20 },
        pack_target_size: 32 << 20,
        ..InitOptions::default()
    };
    let repo = Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.bin"), noise(13 << 20, 9)).unwrap();
    run_backup(&repo, &src, "2026-10-01T12:00:00Z");
    let mut packs = repo.storage().list("packs/").unwrap();
    // One data pack of several windows, and the pack of tree objects.
    assert_eq!(packs.len(), 2, "one data pack and one tree pack");
    packs.sort_by_key(|p| std::cmp::Reverse(p.size));
    let chunks = vger_engine::index::ChunkIndex::load(&repo).unwrap().len() as u64;
    let verify = CheckOptions { verify_data: true, ..Default::default() };
    let r = check(&repo, &verify, &Progress::default()).unwrap();
    assert!(r.is_ok(), "{:?}", r.errors);
    assert_eq!((r.packs_verified, r.chunks_verified), (2, chunks));

    let path = dir.path().join("repo").join(&packs[0].key);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(8 << 20) + 3] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let r = check(&repo, &verify, &Progress::default()).unwrap();
    assert!(r.errors.iter().any(|e| e.to_string().contains("does not match its id")), "{:?}", r.errors);
    assert!(r.errors.iter().any(|e| e.to_string().starts_with("1 chunk(s) are damaged")), "{:?}", r.errors);
    assert_eq!(r.chunks_verified, chunks);
}
