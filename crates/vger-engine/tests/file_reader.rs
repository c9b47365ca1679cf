//! Reading files of a snapshot through `FileReader` (Read + Seek) equals
//! the source bytes, at any offset, from several threads at once, within
//! the cache's budget; damaged chunk lists are refused.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use vger_crypto::KdfParams;
use vger_engine::backup::{backup, BackupOptions, BackupSource, ChangeDetection};
use vger_engine::chunk_cache::ChunkCache;
use vger_engine::file_reader::ChunkSource;
use vger_engine::index::ChunkIndex;
use vger_engine::progress::Progress;
use vger_engine::repository::{InitOptions, Repository};
use vger_engine::snapshots;
use vger_engine::tree::{SnapshotTree, TreeStore};
use vger_format::entry::ChunkRef;

struct Entry {
    chunks: Vec<ChunkRef>,
    size: u64,
}
use vger_fs::{WalkOptions, WalkRoot};
use vger_storage::LocalStorage;

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

struct Fixture {
    _dir: tempfile::TempDir,
    source: ChunkSource,
    entries: Vec<(Vec<u8>, Vec<ChunkRef>, u64)>,
    files: Vec<(String, Vec<u8>)>,
}

/// A repository with small chunks (16/64/256 KiB) holding one snapshot of
/// a random file, a compressible one, one with a zero run, and an empty one.
fn fixture(cache_bytes: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalStorage::create(&dir.path().join("repo")).unwrap());
    let opts = InitOptions {
        kdf: KdfParams::insecure_fast(),
        chunker: vger_chunker::ChunkerParams { min_size: 16 << 10, avg_size: 64 << 10, max_size: 256 << 10 },
        pack_target_size: 1 << 20,
        ..InitOptions::default()
    };
    let repo = Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut zeros = noise(300 << 10, 2);
    zeros.extend(vec![0u8; 2 << 20]);
    zeros.extend(noise(100 << 10, 3));
    let text: Vec<u8> = (0..200_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
    let files = vec![
        ("random.bin".to_string(), noise(3 << 20, 1)),
        ("text.txt".to_string(), text),
        ("zeros.bin".to_string(), zeros),
        ("empty".to_string(), Vec::new()),
    ];
    for (name, data) in &files {
        std::fs::write(src.join(name), data).unwrap();
    }
    let source = BackupSource {
        label: "data".into(),
        roots: vec![WalkRoot { abs: src.clone(), rel: Vec::new() }],
        paths: vec![src.display().to_string()],
        walk: WalkOptions::default(),
        change_detection: ChangeDetection::Strict,
        dumps: Vec::new(),
    };
    backup(&repo, &source, &BackupOptions { threads: 2, ..Default::default() }, &Progress::default()).unwrap();
    let index = ChunkIndex::load(&repo).unwrap();
    let snap = snapshots::find(&repo, "latest").unwrap();
    let index = Arc::new(index);
    let store = TreeStore::new(&repo, index.clone(), 1 << 20);
    let entries = SnapshotTree::open(&store, &snap)
        .walk(b"")
        .unwrap()
        .map(|item| {
            let item = item.unwrap();
            (item.path, item.entry.chunks.clone(), item.entry.size)
        })
        .collect();
    let source = ChunkSource::new(Arc::new(repo), index, Arc::new(ChunkCache::new(cache_bytes)));
    Fixture { _dir: dir, source, entries, files }
}

impl Fixture {
    fn entry(&self, name: &str) -> Entry {
        let (_, chunks, size) = self.entries.iter().find(|e| e.0 == name.as_bytes()).unwrap();
        Entry { chunks: chunks.clone(), size: *size }
    }

    fn open(&self, name: &str) -> vger_engine::file_reader::FileReader {
        let e = self.entry(name);
        self.source.open(e.chunks.clone(), e.size).unwrap()
    }
}

#[test]
fn sequential_reads_equal_the_source() {
    let f = fixture(ChunkCache::DEFAULT_BYTES);
    assert!(f.entry("random.bin").chunks.len() > 10, "the test needs a file of many chunks");
    for (name, data) in &f.files {
        let mut reader = f.open(name);
        assert_eq!(reader.len(), data.len() as u64);
        let mut got = Vec::new();
        // Odd-sized reads cross chunk boundaries at every alignment.
        let mut buf = vec![0u8; 7919];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == *data, "{name} differs");
        assert_eq!(reader.read(&mut buf).unwrap(), 0, "a read at the end returns 0");
    }
}

#[test]
fn random_offsets_and_seeks_read_the_right_bytes() {
    let f = fixture(ChunkCache::DEFAULT_BYTES);
    let (_, data) = &f.files[0];
    let mut reader = f.open("random.bin");
    let mut x = 12345u64;
    for _ in 0..500 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let offset = (x >> 20) % (data.len() as u64 + 100);
        let len = ((x >> 8) % 300_000) as usize;
        let mut buf = vec![0u8; len];
        reader.seek(SeekFrom::Start(offset)).unwrap();
        let mut filled = 0;
        while filled < len {
            let n = reader.read(&mut buf[filled..]).unwrap();
            if n == 0 {
                break;
            }
            filled += n;
        }
        let start = (offset as usize).min(data.len());
        let end = (offset as usize + len).min(data.len());
        assert_eq!(filled, end - start, "at {offset}+{len}");
        assert!(buf[..filled] == data[start..end], "bytes at {offset}+{len}");
    }
    assert_eq!(reader.seek(SeekFrom::End(-10)).unwrap(), data.len() as u64 - 10);
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, data[data.len() - 10..]);
    assert!(reader.seek(SeekFrom::Current(-(data.len() as i64) - 1)).is_err(), "before the start");
    let mut buf = [0u8; 4];
    assert_eq!(reader.read_at(5, &mut buf).unwrap(), 4);
    assert_eq!(buf, data[5..9]);
}

#[test]
fn concurrent_readers_share_one_cache_within_its_budget() {
    let budget = 1 << 20;
    let f = Arc::new(fixture(budget));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let f = f.clone();
            std::thread::spawn(move || {
                let (name, data) = &f.files[t % 3];
                let mut reader = f.open(name);
                let mut got = Vec::new();
                reader.read_to_end(&mut got).unwrap();
                assert!(got == *data, "thread {t}: {name} differs");
                assert!(f.source.cache().bytes() <= budget, "cache over budget");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(f.source.cache().bytes() <= budget);
}

#[test]
fn chunk_lists_that_do_not_match_the_size_are_refused() {
    let f = fixture(ChunkCache::DEFAULT_BYTES);
    let e = f.entry("random.bin");
    let err = f.source.open(e.chunks.clone(), e.size + 1).unwrap_err();
    assert!(err.to_string().contains("add up to"), "{err}");
    let zero = vec![ChunkRef(*e.chunks[0].id(), 0)];
    assert!(f.source.open(zero, 0).is_err(), "a chunk of length 0");
    // A chunk listed with the wrong length opens, but reading it fails.
    let mut wrong = e.chunks.clone();
    wrong.truncate(1);
    let claimed = wrong[0].len() + 5;
    wrong[0] = ChunkRef(*wrong[0].id(), claimed);
    let mut reader = f.source.open(wrong, u64::from(claimed)).unwrap();
    let err = reader.read(&mut [0u8; 16]).unwrap_err();
    assert!(err.to_string().contains("holds"), "{err}");
    // A chunk the index does not have.
    let missing = vec![ChunkRef(vger_format::id::ChunkId([9; 32]), 10)];
    let mut reader = f.source.open(missing, 10).unwrap();
    let err = reader.read(&mut [0u8; 16]).unwrap_err();
    assert!(err.to_string().contains("not in the index"), "{err}");
}
