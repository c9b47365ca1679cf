//! The cache gives the same index as a fresh load, and any damage,
//! foreign file or change in the repository makes it rebuilt, not trusted.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::path::Path;
use std::sync::Arc;

use vger_crypto::KdfParams;
use vger_format::id::{ChunkId, PackId, SegmentId};
use vger_format::index::{BlobEntry, PackEntry};
use vger_storage::{LocalStorage, Storage};

use super::*;
use crate::index::{write_merged_segment, write_segment};
use crate::repository::InitOptions;

fn chunk(n: u64) -> ChunkId {
    ChunkId(*blake3::hash(&n.to_le_bytes()).as_bytes())
}

fn pack(tag: u8, chunks: std::ops::Range<u64>) -> PackEntry {
    PackEntry {
        id: PackId([tag; 32]),
        size: 1 << 20,
        created: 7,
        blobs: chunks
            .enumerate()
            .map(|(i, n)| BlobEntry {
                id: chunk(n),
                blob_type: 1,
                offset: 16 + i as u64 * 100,
                length: 100,
                raw_length: 84,
            })
            .collect(),
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    storage: Arc<dyn Storage>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::create(&dir.path().join("repo")).unwrap());
        let opts = InitOptions { kdf: KdfParams::insecure_fast(), ..InitOptions::default() };
        Repository::init(storage.clone(), Some(b"pw".to_vec()), opts).unwrap();
        Self { dir, storage }
    }

    fn cache_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("cache")
    }

    /// The repository with the cache folder set.
    fn cached(&self) -> Repository {
        self.plain().with_index_cache(Some(self.cache_dir())).with_index_cache_always()
    }

    fn plain(&self) -> Repository {
        Repository::open(self.storage.clone(), &|| Ok(b"pw".to_vec())).unwrap()
    }

    fn segment(&self, packs: Vec<PackEntry>) -> SegmentId {
        let repo = self.plain();
        write_segment(&self.storage, repo.envelope(), packs).unwrap()
    }

    fn cache_file(&self) -> std::path::PathBuf {
        CacheFile::for_repository(&self.cached()).unwrap().path().to_path_buf()
    }

    /// Replaces a segment's bytes with garbage of the same size: a load
    /// that reads it fails, one served by the cache does not notice.
    fn spoil_segment(&self, id: SegmentId) {
        let path = self.dir.path().join("repo").join(id.storage_key());
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        std::fs::write(&path, vec![0xA5; len]).unwrap();
    }
}

/// Every chunk with its full location, sorted; and the live segments.
fn canonical(ix: &ChunkIndex) -> (Vec<(ChunkId, PackInfo, BlobLocationParts)>, Vec<SegmentId>) {
    let mut chunks: Vec<_> = ix
        .blobs()
        .map(|(id, _)| {
            let (pack, loc) = ix.get(id).unwrap();
            (*id, pack, (loc.offset, loc.length, loc.raw_length, loc.blob_type))
        })
        .collect();
    chunks.sort_by_key(|c| c.0);
    let mut segments = ix.segments().to_vec();
    segments.sort();
    (chunks, segments)
}

type BlobLocationParts = (u32, u32, u32, u8);

fn fresh(f: &Fixture) -> ChunkIndex {
    ChunkIndex::load(&f.plain()).unwrap()
}

#[test]
fn a_cached_load_equals_a_fresh_one_and_reads_only_new_segments() {
    let f = Fixture::new();
    let a = f.segment(vec![pack(1, 0..5000), pack(2, 5000..6000)]);
    let b = f.segment(vec![pack(3, 6000..9000)]);
    let built = ChunkIndex::load(&f.cached()).unwrap();
    assert!(f.cache_file().exists(), "the first load writes the cache");
    assert_eq!(canonical(&built), canonical(&fresh(&f)));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.cache_file()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // One new segment: read from the repository into the additions.
    let c = f.segment(vec![pack(4, 9000..9100), pack(2, 5000..5001)]);
    let expected = canonical(&fresh(&f));
    f.spoil_segment(a);
    f.spoil_segment(b);
    let (loaded, bad) = ChunkIndex::load_lenient(&f.cached()).unwrap();
    assert!(bad.is_empty(), "only the new segment was read: {bad:?}");
    assert_eq!(canonical(&loaded), expected);
    assert_eq!(loaded.len(), 9100);
    assert!(loaded.segments().contains(&c));
    // A few chunks are not worth rewriting the cache for: c is read again.
    let reread = CacheFile::for_repository(&f.cached()).unwrap().read().unwrap().unwrap();
    assert_eq!(reread.entries.len(), 9000);
    assert_eq!(canonical(&ChunkIndex::load(&f.cached()).unwrap()), expected);
}

#[test]
fn many_new_segments_are_merged_into_the_rewritten_cache() {
    let f = Fixture::new();
    f.segment(vec![pack(1, 0..100)]);
    ChunkIndex::load(&f.cached()).unwrap();
    let before = std::fs::metadata(f.cache_file()).unwrap().len();
    for i in 0..40u8 {
        let first = 1000 + u64::from(i) * 50;
        f.segment(vec![pack(10 + i, first..first + 50)]);
    }
    // Chunks already named by another new segment: one location stays,
    // the first-listed pack's, as in a fresh load.
    f.segment(vec![pack(60, 1000..1010)]);
    let loaded = ChunkIndex::load(&f.cached()).unwrap();
    assert_eq!(loaded.additions(), 0, "merged into the sorted array");
    assert_eq!(loaded.len(), 2100);
    assert_eq!(canonical(&loaded), canonical(&fresh(&f)));
    assert!(std::fs::metadata(f.cache_file()).unwrap().len() > before + 2000 * ENTRY_LEN);
    let cached = CacheFile::for_repository(&f.cached()).unwrap().read().unwrap().unwrap();
    assert_eq!(cached.entries.len(), 2100);
    assert_eq!(cached.seen.len(), 42);
}

/// Damages the cache with `damage`, then checks that the next load ignores
/// it (the result equals a fresh load even though a segment the damaged
/// cache would have served was spoilt in a way only a full read notices)
/// and rewrites it.
fn ignored_after(damage: impl FnOnce(&Fixture, &Path)) {
    let f = Fixture::new();
    f.segment(vec![pack(1, 0..3000)]);
    f.segment(vec![pack(2, 3000..3500)]);
    ChunkIndex::load(&f.cached()).unwrap();
    let expected = canonical(&fresh(&f));
    let path = f.cache_file();
    damage(&f, &path);
    let loaded = ChunkIndex::load(&f.cached()).unwrap();
    assert_eq!(canonical(&loaded), expected);
    // Rewritten: valid again.
    assert!(CacheFile::for_repository(&f.cached()).unwrap().read().unwrap().is_some());
}

fn flip(path: &Path, at: impl Fn(usize) -> usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = at(bytes.len());
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_flipped_byte_anywhere_is_ignored() {
    // Header count, segment list, an entry's pack position, the tag.
    for at in [56usize, 90, 0, 7] {
        ignored_after(|_, p| flip(p, |len| if at < 8 { len - 1 - at } else { at }));
    }
    ignored_after(|_, p| flip(p, |len| len / 2));
    ignored_after(|_, p| flip(p, |len| len - 40));
}

#[test]
fn a_truncated_or_extended_cache_is_ignored() {
    ignored_after(|_, p| {
        let bytes = std::fs::read(p).unwrap();
        std::fs::write(p, &bytes[..bytes.len() - 52]).unwrap();
    });
    ignored_after(|_, p| std::fs::write(p, b"").unwrap());
    ignored_after(|_, p| {
        let mut bytes = std::fs::read(p).unwrap();
        bytes.extend_from_slice(&[0; 52]);
        std::fs::write(p, bytes).unwrap();
    });
}

#[test]
fn a_cache_of_another_repository_or_key_is_ignored() {
    // Another repository's valid cache under this one's name.
    ignored_after(|f, p| {
        let other = Fixture::new();
        other.segment(vec![pack(9, 100_000..100_010)]);
        let repo = other.cached().with_index_cache(Some(f.cache_dir().join("other")));
        ChunkIndex::load(&repo).unwrap();
        let theirs = CacheFile::for_repository(&repo).unwrap();
        std::fs::copy(theirs.path(), p).unwrap();
    });
    // This repository's id and layout, but a MAC under another key.
    ignored_after(|f, p| {
        let ours = CacheFile::for_repository(&f.cached()).unwrap();
        let cached = ours.read().unwrap().unwrap();
        let forged = CacheFile {
            path: p.to_path_buf(),
            key: [7; 32],
            repository_id: ours.repository_id,
            threshold: ours.threshold,
            contents: ours.contents,
        };
        let mut entries = cached.entries.clone();
        entries.truncate(10);
        let view = CachedIndexRef {
            seen: &cached.seen,
            superseded: &cached.superseded,
            packs: &cached.packs,
            entries: &entries,
        };
        forged.write(&view).unwrap();
    });
}

#[test]
fn a_cache_built_before_compact_is_not_used() {
    for delete_old in [false, true] {
        let f = Fixture::new();
        let a = f.segment(vec![pack(1, 0..100)]);
        let b = f.segment(vec![pack(2, 100..200)]);
        ChunkIndex::load(&f.cached()).unwrap();
        // As compact does: a merged segment without pack 1 (all its
        // chunks dead, the pack deleted) supersedes both; then the old
        // segments may be deleted.
        let repo = f.plain();
        let merged = write_merged_segment(&f.storage, repo.envelope(), vec![pack(2, 100..200)], vec![a, b]).unwrap();
        if delete_old {
            f.storage.delete(&a.storage_key()).unwrap();
            f.storage.delete(&b.storage_key()).unwrap();
        }
        let loaded = ChunkIndex::load(&f.cached()).unwrap();
        assert!(!loaded.contains(&chunk(5)), "a chunk of the deleted pack (delete_old {delete_old})");
        assert!(loaded.packs().iter().all(|p| p.id != PackId([1; 32])));
        assert_eq!(canonical(&loaded), canonical(&fresh(&f)));
        assert_eq!(loaded.segments(), [merged]);
        // The rebuilt cache knows a and b as superseded: still used after
        // they are deleted and a new segment arrives.
        f.storage.delete(&a.storage_key()).ok();
        f.storage.delete(&b.storage_key()).ok();
        f.segment(vec![pack(3, 500..510)]);
        f.spoil_segment(merged);
        let (loaded, bad) = ChunkIndex::load_lenient(&f.cached()).unwrap();
        assert!(bad.is_empty(), "served from the cache: {bad:?}");
        assert_eq!(loaded.len(), 110);
    }
}

#[test]
fn a_segment_gone_from_the_repository_invalidates_the_cache() {
    let f = Fixture::new();
    f.segment(vec![pack(1, 0..100)]);
    let b = f.segment(vec![pack(2, 100..200)]);
    ChunkIndex::load(&f.cached()).unwrap();
    f.storage.delete(&b.storage_key()).unwrap();
    let loaded = ChunkIndex::load(&f.cached()).unwrap();
    assert!(!loaded.contains(&chunk(150)));
    assert_eq!(canonical(&loaded), canonical(&fresh(&f)));
}

#[test]
fn an_unreadable_new_segment_is_reported_and_retried_next_time() {
    let f = Fixture::new();
    f.segment(vec![pack(1, 0..100)]);
    ChunkIndex::load(&f.cached()).unwrap();
    let bad_id = f.segment(vec![pack(2, 100..200)]);
    f.spoil_segment(bad_id);
    assert!(ChunkIndex::load(&f.cached()).is_err(), "the strict load fails on it");
    let (loaded, bad) = ChunkIndex::load_lenient(&f.cached()).unwrap();
    assert_eq!(bad.len(), 1);
    assert_eq!(loaded.len(), 100);
    let (_, bad) = ChunkIndex::load_lenient(&f.cached()).unwrap();
    assert_eq!(bad.len(), 1, "not recorded as read");
}

#[test]
fn a_small_repository_keeps_no_cache() {
    let f = Fixture::new();
    f.segment(vec![pack(1, 0..100)]);
    let b = f.segment(vec![pack(2, 100..200)]);
    let small = || f.plain().with_index_cache(Some(f.cache_dir()));
    ChunkIndex::load(&small()).unwrap();
    assert!(!f.cache_file().exists());
    // One left from when it was larger is removed once stale.
    ChunkIndex::load(&f.cached()).unwrap();
    assert!(f.cache_file().exists());
    f.storage.delete(&b.storage_key()).unwrap();
    assert_eq!(ChunkIndex::load(&small()).unwrap().len(), 100);
    assert!(!f.cache_file().exists());
}

/// `pack` with every `every`-th blob a tree chunk.
fn mixed_pack(tag: u8, chunks: std::ops::Range<u64>, every: u64) -> PackEntry {
    let mut p = pack(tag, chunks.clone());
    for (b, n) in p.blobs.iter_mut().zip(chunks) {
        if n % every == 0 {
            b.blob_type = vger_crypto::ObjectType::TreeChunk as u8;
        }
    }
    p
}

fn trees_of(ix: &ChunkIndex) -> Vec<(ChunkId, PackInfo, BlobLocationParts)> {
    let tree = vger_crypto::ObjectType::TreeChunk as u8;
    canonical(ix).0.into_iter().filter(|c| c.2 .3 == tree).collect()
}

#[test]
fn the_trees_cache_holds_the_tree_chunks_and_follows_new_segments() {
    let f = Fixture::new();
    let a = f.segment(vec![mixed_pack(1, 0..5000, 50), mixed_pack(2, 5000..6000, 10)]);
    let full = ChunkIndex::load(&f.cached()).unwrap();
    let trees_path = CacheFile::of(&f.cached(), Contents::Trees).unwrap().path().to_path_buf();
    assert!(trees_path.exists(), "loading the whole index writes the trees cache too");
    let expected = trees_of(&full);
    assert_eq!(expected.len(), 100 + 100);

    // Served by the trees file alone: the segment it was built from is
    // not read again (spoiled, it would fail the load).
    f.spoil_segment(a);
    let trees = ChunkIndex::load_trees(&f.cached()).unwrap();
    assert_eq!(canonical(&trees).0, expected);
    assert_eq!(trees.len(), 200, "data chunks are left out");

    // A new segment is read and only its tree chunks join.
    f.segment(vec![mixed_pack(3, 6000..7000, 5)]);
    let trees = ChunkIndex::load_trees(&f.cached()).unwrap();
    assert_eq!(trees.len(), 200 + 200);
    assert!(trees.get(&chunk(6005)).is_some() && trees.get(&chunk(6001)).is_none());

    // A trees file is never taken for the whole index, nor the reverse.
    let all_path = f.cache_file();
    let whole = std::fs::read(&all_path).unwrap();
    std::fs::copy(&trees_path, &all_path).unwrap();
    assert!(CacheFile::for_repository(&f.cached()).unwrap().read().is_err());
    std::fs::write(&trees_path, &whole).unwrap();
    assert!(CacheFile::of(&f.cached(), Contents::Trees).unwrap().read().is_err());
}

#[test]
fn without_a_valid_trees_cache_the_tree_index_comes_from_the_whole_index() {
    let f = Fixture::new();
    f.segment(vec![mixed_pack(1, 0..3000, 30)]);
    let plain = ChunkIndex::load_trees(&f.plain()).unwrap();
    assert_eq!(plain.len(), 100);
    let cached = f.cached();
    let trees_path = CacheFile::of(&cached, Contents::Trees).unwrap().path().to_path_buf();
    ChunkIndex::load(&cached).unwrap();
    flip(&trees_path, |len| len / 2);
    assert_eq!(canonical(&ChunkIndex::load_trees(&cached).unwrap()).0, canonical(&plain).0);
}

#[test]
fn a_trees_cache_is_derived_from_a_valid_whole_cache_without_reading_segments() {
    let f = Fixture::new();
    let a = f.segment(vec![mixed_pack(1, 0..4000, 40)]);
    let full = ChunkIndex::load(&f.cached()).unwrap();
    let trees_path = CacheFile::of(&f.cached(), Contents::Trees).unwrap().path().to_path_buf();
    // A cache from before the trees file existed.
    std::fs::remove_file(&trees_path).unwrap();
    f.spoil_segment(a);
    let trees = ChunkIndex::load_trees(&f.cached()).unwrap();
    assert_eq!(canonical(&trees).0, trees_of(&full));
    assert!(trees_path.exists(), "written for the next open");
    assert_eq!(CacheFile::of(&f.cached(), Contents::Trees).unwrap().read().unwrap().unwrap().entries.len(), 100);
}

#[test]
fn a_refresh_after_a_large_addition_spares_the_next_load_the_new_segment() {
    let f = Fixture::new();
    f.segment(vec![pack(1, 0..5000)]);
    ChunkIndex::load(&f.cached()).unwrap();
    // Too few chunks for a load to rewrite the cache (see the first test).
    let b = f.segment(vec![pack(2, 5000..5010)]);
    let expected = canonical(&fresh(&f));

    // Below the threshold of a repository with the default one: nothing.
    let default_threshold = f.plain().with_index_cache(Some(f.cache_dir()));
    refresh_after(&default_threshold, 10);
    let unchanged = CacheFile::for_repository(&f.cached()).unwrap().read().unwrap().unwrap();
    assert_eq!(unchanged.entries.len(), 5000, "a small addition leaves the cache alone");

    refresh_after(&f.cached(), 10);
    let reread = CacheFile::for_repository(&f.cached()).unwrap().read().unwrap().unwrap();
    assert_eq!(reread.entries.len(), 5010);
    assert!(reread.seen.iter().any(|s| s.id == b));
    // The next load reads no segment: a spoiled one goes unnoticed.
    f.spoil_segment(b);
    let (loaded, bad) = ChunkIndex::load_lenient(&f.cached()).unwrap();
    assert!(bad.is_empty(), "the new segment was read again: {bad:?}");
    assert_eq!(canonical(&loaded), expected);
}
