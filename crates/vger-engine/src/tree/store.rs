//! Fetching tree objects: through the index to a ranged read of the pack,
//! opened, checked against the ID it was asked for, decoded and checked
//! again ([`TreeNode::decode`]), and kept in a cache bounded in bytes that
//! every reader of the repository shares.

use std::sync::Arc;

use vger_crypto::{ChunkIdKey, Envelope, ObjectType};
use vger_format::id::ChunkId;
use vger_format::tree::{TreeNode, MAX_TREE_OBJECT};
use vger_storage::Storage;

use crate::blob::open_chunk;
use crate::index::ChunkIndex;
use crate::repository::Repository;
use crate::{EngineError, Result};

/// Decoded directories kept by default: enough for the path being walked
/// and the directories around it, small beside a backup's other buffers.
pub const DEFAULT_CACHE_BYTES: u64 = 32 << 20;

#[derive(Clone)]
struct Cached {
    node: Arc<TreeNode>,
    weight: u64,
}

#[derive(Clone)]
struct ByWeight;

impl quick_cache::Weighter<ChunkId, Cached> for ByWeight {
    fn weight(&self, _: &ChunkId, value: &Cached) -> u64 {
        value.weight
    }
}

struct Inner {
    storage: Arc<dyn Storage>,
    envelope: Arc<Envelope>,
    id_key: ChunkIdKey,
    index: Arc<ChunkIndex>,
    cache: quick_cache::sync::Cache<ChunkId, Cached, ByWeight>,
}

/// Reads tree objects of one repository. Cheap to clone (all clones share
/// one cache), `Send + Sync`: a server can keep it across requests.
#[derive(Clone)]
pub struct TreeStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TreeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TreeStore({})", self.inner.storage.describe())
    }
}

impl TreeStore {
    /// A store reading through `index` (which must name the tree objects;
    /// data chunks are not needed) with a cache of `cache_bytes` of
    /// decoded directories.
    pub fn new(repo: &Repository, index: Arc<ChunkIndex>, cache_bytes: u64) -> Self {
        // About 2 KiB per small directory: the estimate only sizes tables.
        let items = (cache_bytes / 2048).clamp(16, 1 << 20) as usize;
        let inner = Inner {
            storage: repo.storage().clone(),
            envelope: repo.envelope().clone(),
            id_key: repo.chunk_id_key().clone(),
            index,
            cache: quick_cache::sync::Cache::with_weighter(items, cache_bytes.max(1), ByWeight),
        };
        Self { inner: Arc::new(inner) }
    }

    pub fn index(&self) -> &Arc<ChunkIndex> {
        &self.inner.index
    }

    /// Whether the objects are read from this machine's file system (see
    /// [`Storage::is_local`]): readers in parallel then need no more
    /// threads than cores.
    pub fn is_local(&self) -> bool {
        self.inner.storage.is_local()
    }

    /// Tree object `id`, decoded and checked.
    pub fn node(&self, id: &ChunkId) -> Result<Arc<TreeNode>> {
        if let Some(hit) = self.inner.cache.get(id) {
            return Ok(hit.node);
        }
        let node = Arc::new(self.fetch(id)?);
        let weight = node.weight() as u64;
        self.inner.cache.insert(*id, Cached { node: node.clone(), weight });
        Ok(node)
    }

    /// Puts `node` in the cache under `id`, whatever it hashes to: tests
    /// build trees no honest writer can (a directory that is its own
    /// ancestor) to exercise the guards against them.
    #[cfg(test)]
    pub(crate) fn plant(&self, id: ChunkId, node: TreeNode) {
        let weight = node.weight() as u64;
        self.inner.cache.insert(id, Cached { node: Arc::new(node), weight });
    }

    /// The decoded node `id` if the cache holds it.
    pub fn cached(&self, id: &ChunkId) -> Option<Arc<TreeNode>> {
        self.inner.cache.get(id).map(|hit| hit.node)
    }

    /// The plaintext of tree object `id`, checked against its ID but not
    /// decoded (for [`vger_format::tree::scan_node`]) and not cached.
    pub fn plaintext(&self, id: &ChunkId) -> Result<Vec<u8>> {
        let inner = &self.inner;
        let (pack, loc) = inner.index.get(id).ok_or_else(|| EngineError::MissingChunk {
            chunk: id.short(),
            context: format!("tree object {} of a snapshot's file tree", id.short()),
        })?;
        let sealed = inner.storage.get_range(&pack.id.storage_key(), loc.offset.into(), loc.length.into())?;
        open_chunk(&inner.envelope, &inner.id_key, ObjectType::TreeChunk, id, sealed, MAX_TREE_OBJECT)
    }

    /// Where tree object `id` is: its pack's position in the index and its
    /// offset there (objects read together are best sorted by this).
    pub fn location(&self, id: &ChunkId) -> Option<(u32, u32)> {
        self.inner.index.get(id).map(|(_, l)| (l.pack, l.offset))
    }

    /// The plaintexts of tree objects `ids`, as [`TreeStore::plaintext`]
    /// gives them, in order. Objects that lie close together in one pack
    /// (as the directories a backup wrote do) are fetched with one ranged
    /// read: a request saved per object, a round trip on remote storage
    /// (locally only objects that touch are read together).
    pub fn plaintexts(&self, ids: &[ChunkId]) -> Result<Vec<Vec<u8>>> {
        let inner = &self.inner;
        // Bytes between two objects that are read rather than requested
        // apart, and bytes one read may span: on remote storage a request
        // saved is a round trip; on a local disk only a system call, and
        // reading the bytes between (data chunks, mostly) costs more.
        let (gap, span): (u64, u64) = if inner.storage.is_local() { (0, 1 << 20) } else { (16 << 10, 4 << 20) };
        let mut located = Vec::with_capacity(ids.len());
        for id in ids {
            let (pack, loc) = inner.index.get(id).ok_or_else(|| EngineError::MissingChunk {
                chunk: id.short(),
                context: format!("tree object {} of a snapshot's file tree", id.short()),
            })?;
            located.push((id, pack, u64::from(loc.offset), u64::from(loc.length)));
        }
        let mut out = Vec::with_capacity(ids.len());
        let mut rest = located.as_slice();
        while let Some(&(_, pack, start, len)) = rest.first() {
            let mut end = start + len;
            let mut take = 1;
            for &(_, p, offset, len) in rest.iter().skip(1) {
                if p.id != pack.id || offset < end || offset - end > gap || offset + len - start > span {
                    break;
                }
                end = offset + len;
                take += 1;
            }
            let (run, later) = rest.split_at(take);
            rest = later;
            let bytes = inner.storage.get_range(&pack.id.storage_key(), start, end - start)?;
            for &(id, _, offset, len) in run {
                let at = (offset - start) as usize;
                let sealed = bytes.get(at..at + len as usize).ok_or_else(|| EngineError::MissingChunk {
                    chunk: id.short(),
                    context: format!("tree object {} (its pack is shorter than the index says)", id.short()),
                })?;
                out.push(open_chunk(
                    &inner.envelope,
                    &inner.id_key,
                    ObjectType::TreeChunk,
                    id,
                    sealed.to_vec(),
                    MAX_TREE_OBJECT,
                )?);
            }
        }
        Ok(out)
    }

    fn fetch(&self, id: &ChunkId) -> Result<TreeNode> {
        Ok(TreeNode::decode(id, &self.plaintext(id)?)?)
    }
}
