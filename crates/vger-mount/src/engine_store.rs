//! [`SnapshotStore`] on the engine: snapshots are read through its tree
//! API (`vger_engine::tree::SnapshotTree`: one object per directory, a
//! lookup costs one object per path component, decoded directories shared
//! in a cache bounded in bytes) over the index of tree chunks only
//! (`ChunkIndex::load_trees`: its cost follows the number of directories,
//! not of chunks), files through its `FileReader` and one `ChunkCache`
//! shared by every request, and diffs with `vger_engine::diff` (subtrees
//! with the same ID are skipped unread). The whole chunk index, which
//! files need, is loaded on the first file read, not at start: browsing
//! alone never pays for it. This is the only file of the crate that knows
//! the engine's types.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use vger_engine::chunk_cache::ChunkCache;
use vger_engine::diff;
use vger_engine::file_reader::ChunkSource;
use vger_engine::index::ChunkIndex;
use vger_engine::repository::Repository;
use vger_engine::snapshots::{self, SnapshotInfo};
use vger_engine::tree::{SnapshotTree, TreeStore};
use vger_format::entry::{ChunkRef, EntryKind};
use vger_format::id::SnapshotId;
use vger_format::tree::TreeEntry;

use crate::store::{
    Change, ContentHandle, DiffLine, DiffResult, DirPage, FileContent, FindQuery, FindResult, Node, NodeKind,
    RestoreProgress, RestoreSummary, Result, SnapshotMeta, SnapshotStore, WalkStep,
};
use crate::MountError;

/// How long the snapshot list is trusted before the repository is listed again.
const SNAPSHOT_TTL: Duration = Duration::from_secs(10);
/// Decoded directories kept for all requests together.
const TREE_CACHE_BYTES: u64 = 64 << 20;
/// Decoded chunks kept for all readers together: about two of the largest
/// chunks for each of the streams the server runs at once.
const CHUNK_CACHE_BYTES: u64 = 64 << 20;

/// The repository, its chunk indexes and the caches around them.
pub struct EngineStore {
    repo: Arc<Repository>,
    /// Replaced whole when new snapshots bring chunks the loaded indexes lack.
    view: RwLock<Arc<View>>,
    chunks: Arc<ChunkCache>,
    snapshots: Mutex<SnapshotCache>,
}

/// The tree store over the index of tree chunks, and the whole index once
/// a file has been read.
struct View {
    trees: TreeStore,
    all: Mutex<Option<Arc<ChunkIndex>>>,
}

impl View {
    fn load(repo: &Repository) -> Result<Arc<Self>> {
        let index = Arc::new(ChunkIndex::load_trees(repo)?);
        Ok(Arc::new(View { trees: TreeStore::new(repo, index, TREE_CACHE_BYTES), all: Mutex::new(None) }))
    }
}

#[derive(Default)]
struct SnapshotCache {
    loaded_at: Option<Instant>,
    infos: HashMap<SnapshotId, Arc<SnapshotInfo>>,
    metas: Arc<Vec<SnapshotMeta>>,
}

/// A file's chunk list: what the engine's `FileReader` reads.
#[derive(Debug)]
struct FileChunks {
    chunks: Vec<ChunkRef>,
    size: u64,
}

impl ContentHandle for FileChunks {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn poisoned() -> MountError {
    MountError::Other("an internal lock was poisoned by a failed request; restart `vger mount`".into())
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn meta(i: &SnapshotInfo) -> SnapshotMeta {
    let s = &i.snapshot;
    SnapshotMeta {
        id: i.id,
        time: chrono::DateTime::parse_from_rfc3339(&s.time).map(|t| t.to_utc()).unwrap_or_default(),
        source: s.source_label.clone(),
        hostname: s.hostname.clone(),
        username: s.username.clone(),
        paths: s.paths.clone(),
        tags: s.tags.clone(),
        files: s.stats.files,
        dirs: s.stats.dirs,
        bytes: s.stats.bytes,
    }
}

/// The same for the same content, whatever the snapshot: a BLAKE3 of a
/// file's chunk IDs, or a directory's tree ID, cut to 16 bytes.
fn tag_of(ids: impl Iterator<Item = [u8; 32]>) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    for id in ids {
        h.update(&id);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

impl EngineStore {
    /// Wraps an open repository; loads the index of its tree chunks.
    pub fn new(repo: Repository) -> Result<Self> {
        let view = View::load(&repo)?;
        Ok(Self {
            repo: Arc::new(repo),
            view: RwLock::new(view),
            chunks: Arc::new(ChunkCache::new(CHUNK_CACHE_BYTES)),
            snapshots: Mutex::new(SnapshotCache::default()),
        })
    }

    fn view(&self) -> Result<Arc<View>> {
        self.view.read().map(|v| v.clone()).map_err(|_| poisoned())
    }

    /// The whole chunk index (loaded by the first caller; the others wait).
    fn all_chunks(&self) -> Result<Arc<ChunkIndex>> {
        let view = self.view()?;
        let mut all = view.all.lock().map_err(|_| poisoned())?;
        if let Some(index) = all.as_ref() {
            return Ok(index.clone());
        }
        let index = Arc::new(ChunkIndex::load(&self.repo)?);
        *all = Some(index.clone());
        Ok(index)
    }

    fn info(&self, snap: &SnapshotId) -> Result<Arc<SnapshotInfo>> {
        self.snapshots()?;
        let cache = self.snapshots.lock().map_err(|_| poisoned())?;
        cache.infos.get(snap).cloned().ok_or_else(|| MountError::NoSnapshot(snap.to_hex()))
    }

    fn tree(&self, snap: &SnapshotId) -> Result<SnapshotTree> {
        let info = self.info(snap)?;
        Ok(SnapshotTree::open(&self.view()?.trees, &info))
    }

    /// A node from a tree entry; a hard link becomes the file it names.
    fn node(&self, tree: &SnapshotTree, e: &TreeEntry) -> Result<Node> {
        let (kind, chunks) = match e.kind {
            EntryKind::Dir => (NodeKind::Dir, None),
            EntryKind::File => (NodeKind::File, Some(e.chunks.clone())),
            EntryKind::Symlink => (NodeKind::Symlink, None),
            EntryKind::Hardlink => {
                let target = e.target.clone().unwrap_or_default();
                match tree.stat(&target)? {
                    Some(first) if first.kind == EntryKind::File => (NodeKind::File, Some(first.chunks.clone())),
                    _ => {
                        return Err(MountError::Other(format!(
                            "hard link {} names {}, which is not a file of its snapshot: run `vger check`",
                            lossy(&e.name),
                            lossy(&target)
                        )))
                    }
                }
            }
            _ => (NodeKind::Special, None),
        };
        let size = chunks.as_ref().map_or(e.size, |c| c.iter().map(|c| u64::from(c.len())).sum());
        let content_tag = match (&chunks, &e.tree) {
            (Some(c), _) => Some(tag_of(c.iter().map(|c| c.id().0))),
            (None, Some(dir)) => Some(tag_of(std::iter::once(dir.0))),
            (None, None) => None,
        };
        Ok(Node {
            name: e.name.clone(),
            kind,
            size,
            mode: e.mode,
            mtime_ns: e.mtime,
            uid: e.uid,
            gid: e.gid,
            user: e.user.clone(),
            group: e.group.clone(),
            link_target: if e.kind == EntryKind::Symlink { e.target.clone() } else { None },
            content_tag,
            content: chunks.map(|chunks| Arc::new(FileChunks { chunks, size }) as Arc<dyn ContentHandle>),
        })
    }

    fn reload_snapshots(&self, cache: &mut SnapshotCache) -> Result<()> {
        let ids = snapshots::list_ids(&self.repo)?;
        let mut infos = HashMap::with_capacity(ids.len());
        let mut grew = false;
        for id in ids {
            match cache.infos.remove(&id) {
                Some(info) => {
                    infos.insert(id, info);
                }
                None => match snapshots::load(&self.repo, id) {
                    Ok(info) => {
                        grew = true;
                        infos.insert(id, Arc::new(info));
                    }
                    // An unreadable snapshot is left out; `vger check` reports it.
                    Err(e) => tracing::warn!("snapshot {} is unreadable: {e}", id.short()),
                },
            }
        }
        if grew && cache.loaded_at.is_some() {
            // New snapshots bring chunks the loaded indexes may not hold.
            let view = View::load(&self.repo)?;
            *self.view.write().map_err(|_| poisoned())? = view;
        }
        let mut metas: Vec<SnapshotMeta> = infos.values().map(|i| meta(i)).collect();
        metas.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        cache.infos = infos;
        cache.metas = Arc::new(metas);
        cache.loaded_at = Some(Instant::now());
        Ok(())
    }
}

impl SnapshotStore for EngineStore {
    fn describe(&self) -> String {
        self.repo.location()
    }

    fn snapshots(&self) -> Result<Arc<Vec<SnapshotMeta>>> {
        let mut cache = self.snapshots.lock().map_err(|_| poisoned())?;
        if cache.loaded_at.is_none_or(|t| t.elapsed() > SNAPSHOT_TTL) {
            self.reload_snapshots(&mut cache)?;
        }
        Ok(cache.metas.clone())
    }

    fn stat(&self, snap: &SnapshotId, path: &[u8]) -> Result<Option<Node>> {
        let tree = self.tree(snap)?;
        let Some(entry) = tree.stat(path)? else { return Ok(None) };
        let mut node = self.node(&tree, &entry)?;
        if path.is_empty() {
            // The top has no entry of its own: it takes the snapshot's time.
            let time = self.info(snap).map(|i| meta(&i).time).unwrap_or_default();
            node.mtime_ns = time.timestamp_nanos_opt().unwrap_or(0);
            node.mode = 0o755;
        }
        Ok(Some(node))
    }

    fn read_dir(&self, snap: &SnapshotId, dir: &[u8], after: Option<&[u8]>, limit: usize) -> Result<DirPage> {
        let tree = self.tree(snap)?;
        let entries = match after {
            Some(a) => tree.read_dir_after(dir, a),
            None => tree.read_dir(dir),
        }?;
        let mut page = DirPage::default();
        for e in entries {
            let e = e?;
            if page.entries.len() == limit {
                page.next = page.entries.last().map(|n| n.name.clone());
                break;
            }
            page.entries.push(self.node(&tree, &e)?);
        }
        Ok(page)
    }

    fn walk(
        &self,
        snap: &SnapshotId,
        dir: &[u8],
        visit: &mut dyn FnMut(&[u8], &Node) -> Result<WalkStep>,
    ) -> Result<()> {
        let tree = self.tree(snap)?;
        let mut walk = tree.walk(dir)?;
        while let Some(item) = walk.next() {
            let item = item?;
            let node = self.node(&tree, &item.entry)?;
            match visit(&item.path, &node)? {
                WalkStep::Continue => {}
                WalkStep::SkipChildren => walk.skip_subtree(),
                WalkStep::Stop => break,
            }
        }
        Ok(())
    }

    fn open(&self, node: &Node) -> Result<Box<dyn FileContent>> {
        let chunks = node
            .content
            .as_ref()
            .and_then(|c| c.as_any().downcast_ref::<FileChunks>())
            .ok_or_else(|| MountError::Other(format!("{} is not a file", node.name_lossy())))?;
        let source = ChunkSource::new(self.repo.clone(), self.all_chunks()?, self.chunks.clone());
        Ok(Box::new(source.open(chunks.chunks.clone(), chunks.size)?))
    }

    fn find(&self, snapshots: &[SnapshotId], query: &FindQuery) -> Result<FindResult> {
        crate::search::find_by_walk(self, snapshots, query)
    }

    fn diff(&self, a: &SnapshotId, b: &SnapshotId, dir: &[u8], limit: usize) -> Result<DiffResult> {
        let (ta, tb) = (self.tree(a)?, self.tree(b)?);
        let mut out = DiffResult::default();
        let mut summary = diff::DiffSummary::default();
        diff::diff(&ta, &tb, dir, |item| {
            summary.count(&item);
            if out.lines.len() >= limit {
                out.truncated = true;
                return Ok(());
            }
            let file_size = |e: &Option<TreeEntry>| e.as_ref().filter(|e| e.kind != EntryKind::Dir).map(|e| e.size);
            let is_dir = item.after.as_ref().or(item.before.as_ref()).is_some_and(|e| e.kind == EntryKind::Dir);
            out.lines.push(DiffLine {
                change: match item.change {
                    diff::Change::Added => Change::Added,
                    diff::Change::Removed => Change::Removed,
                    diff::Change::Modified => Change::Modified,
                    diff::Change::Metadata => Change::Metadata,
                    diff::Change::Type => Change::Type,
                },
                size_before: file_size(&item.before),
                size_after: file_size(&item.after),
                is_dir,
                path: item.path,
            });
            Ok(())
        })?;
        out.summary = crate::store::DiffSummary {
            added: summary.added,
            removed: summary.removed,
            modified: summary.modified,
            metadata: summary.metadata,
            type_changed: summary.r#type,
            bytes_added: summary.added_bytes,
            bytes_removed: summary.removed_bytes,
        };
        Ok(out)
    }

    fn restore(
        &self,
        snap: &SnapshotId,
        paths: &[Vec<u8>],
        target: &Path,
        progress: &RestoreProgress,
    ) -> Result<RestoreSummary> {
        let info = self.info(snap)?;
        let opts = vger_engine::restore::RestoreOptions {
            paths: paths.to_vec(),
            threads: 0,
            fs: vger_fs::RestoreOptions::default(),
            // As before overwrite modes existed: the web UI restores into
            // the folder the user picked and replaces what is there.
            overwrite: vger_engine::restore::Overwrite::Always,
            verify: false,
            dry_run: false,
            delete: false,
        };
        if paths.is_empty() {
            progress.set_total_bytes(info.snapshot.stats.bytes);
        }
        let report = vger_engine::restore::restore(&self.repo, &info, target, &opts, progress)?;
        Ok(RestoreSummary {
            files: report.files,
            dirs: report.dirs,
            links: report.links,
            bytes: report.bytes,
            failures: report.failures,
        })
    }
}
