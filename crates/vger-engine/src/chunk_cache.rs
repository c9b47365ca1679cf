//! Decoded data chunks kept in memory, bounded in bytes and shared by every
//! [`FileReader`](crate::file_reader::FileReader) of one repository.
//!
//! A file manager reads a file's first bytes for a preview and then the
//! whole file; a browser asks for ranges; several clients read the same
//! file; a sparse file repeats one zero chunk thousands of times. Each of
//! those decodes (fetches, decrypts, decompresses and verifies) a chunk
//! once while it stays in the cache, and the cache never holds more than
//! its byte budget whatever the size of the files or the number of readers.
//!
//! Built on `quick_cache` (a concurrent cache with weights and
//! CLOCK-Pro eviction), whose placeholders also make two readers that want
//! the same missing chunk at once wait for one decode instead of doing two.

use std::sync::Arc;

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, Weighter};
use vger_format::id::ChunkId;

use crate::Result;

/// A decoded chunk, shared without copying between the cache and readers.
pub type ChunkData = Arc<Vec<u8>>;

/// Bytes a cached chunk is charged beyond its data (the entry, the `Arc`).
const ENTRY_OVERHEAD: u64 = 96;

#[derive(Clone)]
struct ByCapacity;

impl Weighter<ChunkId, ChunkData> for ByCapacity {
    fn weight(&self, _: &ChunkId, data: &ChunkData) -> u64 {
        data.capacity() as u64 + ENTRY_OVERHEAD
    }
}

/// A byte-bounded cache of decoded chunks (see the module doc).
pub struct ChunkCache {
    chunks: Cache<ChunkId, ChunkData, ByCapacity>,
    max_bytes: u64,
}

impl std::fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkCache({} of {} bytes)", self.bytes(), self.max_bytes)
    }
}

impl ChunkCache {
    /// 64 MiB: eight maximum-size chunks, or about 32 average ones.
    pub const DEFAULT_BYTES: u64 = 64 << 20;

    /// A cache holding at most `max_bytes` of chunks (0: hold nothing, but
    /// still share one decode between readers asking at the same moment).
    pub fn new(max_bytes: u64) -> Self {
        // Chunks are large (0.5-8 MiB), so the cache holds few of them;
        // one or two shards keep a whole chunk of the largest size from
        // exceeding a shard's share of the budget.
        let options = OptionsBuilder::new()
            .estimated_items_capacity((max_bytes / (512 << 10)).max(1) as usize)
            .weight_capacity(max_bytes)
            .shards(if max_bytes >= 256 << 20 { 2 } else { 1 })
            .build();
        let chunks = match options {
            Ok(o) => Cache::with_options(o, ByCapacity, DefaultHashBuilder::default(), DefaultLifecycle::default()),
            // Unreachable with the options above; a tiny default keeps it total.
            Err(_) => Cache::with_weighter(1, 0, ByCapacity),
        };
        Self { chunks, max_bytes }
    }

    /// The chunk `id` from the cache, or from `load` (then kept).
    pub fn get_or_load(&self, id: &ChunkId, load: impl FnOnce() -> Result<ChunkData>) -> Result<ChunkData> {
        self.chunks.get_or_insert_with(id, load)
    }

    /// Bytes held now (data plus per-entry overhead).
    pub fn bytes(&self) -> u64 {
        self.chunks.weight()
    }

    /// The byte budget given at creation.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

impl Default for ChunkCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BYTES)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn id(n: u8) -> ChunkId {
        ChunkId([n; 32])
    }

    #[test]
    fn holds_no_more_than_its_budget() {
        let cache = ChunkCache::new(10 << 20);
        for n in 0..40u8 {
            cache.get_or_load(&id(n), || Ok(Arc::new(vec![n; 1 << 20]))).unwrap();
            assert!(cache.bytes() <= 10 << 20, "{} bytes after {n}", cache.bytes());
        }
        assert!(cache.bytes() >= 5 << 20, "the cache keeps what fits: {}", cache.bytes());
    }

    #[test]
    fn a_cached_chunk_is_not_loaded_again_and_errors_are_not_cached() {
        let cache = ChunkCache::new(8 << 20);
        let mut loads = 0;
        for _ in 0..3 {
            let got = cache
                .get_or_load(&id(1), || {
                    loads += 1;
                    Ok(Arc::new(vec![7; 1000]))
                })
                .unwrap();
            assert_eq!(got.len(), 1000);
        }
        assert_eq!(loads, 1);
        let failed = cache.get_or_load(&id(2), || Err(crate::EngineError::Other("boom".into())));
        assert!(failed.is_err());
        let again = cache.get_or_load(&id(2), || Ok(Arc::new(vec![1; 10]))).unwrap();
        assert_eq!(again.len(), 10, "a failed load leaves no entry behind");
    }

    #[test]
    fn a_chunk_of_the_largest_size_fits_the_default_budget() {
        let cache = ChunkCache::default();
        cache.get_or_load(&id(3), || Ok(Arc::new(vec![0; 8 << 20]))).unwrap();
        assert!(cache.bytes() >= 8 << 20);
    }
}
