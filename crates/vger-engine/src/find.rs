//! Finding paths across snapshots, with the history of each match.
//!
//! Each snapshot's tree is read alongside the one before it, as remembered
//! in memory: a subdirectory with the same tree ID at the same path as in
//! the snapshot before holds the same subtree, so it is taken whole (with
//! the matches under it) and not read or walked again. Only directories
//! that changed are read, and a leaf is read for its names: an entry's
//! metadata is decoded when its name may match. Searching many snapshots
//! thus costs little more than searching one when most directories are
//! shared, and memory follows one snapshot's tree (the matches and
//! subdirectories of each directory), not the length of the history.
//!
//! Most changes modify files and leave a directory's names as they were,
//! yet give it (and every directory above it) a new tree ID. A parent
//! records each subdirectory's **names digest** (docs/format.md, section
//! 8): a hash of the kinds and names of its entries. A directory read that
//! holds no subdirectory and no name the search may match is remembered by
//! its digest as *barren*; a directory met later (in any snapshot, at any
//! path) whose digest is a barren one holds the same names, so it has no
//! match and nothing below it, and is not read at all. This holds because
//! whether an entry may match depends on its name alone (`may_match` of
//! [`find_named`]); a search that looks at paths or metadata accepts
//! every name there ([`find`]) and so never finds a directory barren but
//! an empty one.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::Serialize;
use vger_format::entry::EntryKind;
use vger_format::id::ChunkId;
use vger_format::tree::{join_path, NamesDigest, NamesHasher, TreeEntry};

use crate::tree::dir::scan_with;
use crate::tree::SnapshotTree;
use crate::Result;

/// What a match looked like in one snapshot against the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindChange {
    /// Matches here, not in the snapshot before.
    Added,
    /// Its content (data, link target) differs from the snapshot before.
    Modified,
    /// Only its metadata (mode, owner, mtime, xattrs) differs.
    Metadata,
    Unchanged,
    /// Matched in the snapshot before, not here.
    Removed,
}

/// One snapshot's version of a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindVersion {
    /// Position of the snapshot in the list searched.
    pub snapshot: usize,
    pub change: FindChange,
    /// The entry as it is in that snapshot (the one before, for `Removed`).
    pub kind: EntryKind,
    pub size: u64,
    pub mtime: i64,
}

/// How much of the snapshots' trees a search read (for tests and for
/// measuring: the reuse of shared subtrees and of barren names digests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FindStats {
    /// Directories fetched and read.
    pub dirs_read: u64,
    /// Directories with a new tree ID not read: their names digest was
    /// known to hold no subdirectory and no name that may match.
    pub dirs_skipped: u64,
}

/// A matching path and its versions, oldest snapshot first.
#[derive(Debug, Clone)]
pub struct Found {
    pub path: Vec<u8>,
    pub versions: Vec<FindVersion>,
}

/// What is kept of a matching entry to tell its versions apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Summary {
    kind: EntryKind,
    size: u64,
    mtime: i64,
    content: u64,
    metadata: u64,
}

fn digest(parts: impl FnOnce(&mut std::collections::hash_map::DefaultHasher)) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts(&mut h);
    h.finish()
}

impl Summary {
    fn of(e: &TreeEntry) -> Self {
        let content = digest(|h| {
            e.kind.hash(h);
            e.size.hash(h);
            e.chunks.iter().for_each(|c| (c.id().0, c.len()).hash(h));
            e.target.hash(h);
            e.rdev.hash(h);
        });
        let metadata = digest(|h| {
            (e.mode, e.uid, e.gid, &e.user, &e.group, e.mtime).hash(h);
            e.xattrs.iter().for_each(|x| (&x.0, &x.1).hash(h));
        });
        Summary { kind: e.kind, size: e.size, mtime: e.mtime, content, metadata }
    }
}

/// One directory of a snapshot as remembered: the matches in it and its
/// subdirectories, each remembered the same way, so that a subtree the
/// next snapshot shares is taken as it is.
struct DirNode {
    id: ChunkId,
    /// Subdirectories by name, in name order.
    subdirs: Vec<(Vec<u8>, Arc<DirNode>)>,
    /// The slots of every match in the subtree (this directory's included).
    under: Vec<usize>,
}

impl DirNode {
    fn subdir(&self, name: &[u8]) -> Option<&Arc<DirNode>> {
        let i = self.subdirs.binary_search_by(|(n, _)| n.as_slice().cmp(name)).ok()?;
        self.subdirs.get(i).map(|(_, d)| d)
    }
}

/// A directory of the snapshot being searched that the snapshot before
/// did not have at its path (or had with another tree ID).
struct Job {
    /// Its place among the directories read (a parent comes first).
    at: usize,
    path: Vec<u8>,
    id: ChunkId,
    /// Its names digest as its parent records it, if it does.
    claimed: Option<NamesDigest>,
    /// The directory at the same path in the snapshot before, if any.
    before: Option<Arc<DirNode>>,
}

/// What reading a [`Job`]'s directory found.
struct DirRead {
    hits: Vec<(Vec<u8>, Summary)>,
    /// Subdirectories: name, tree ID, names digest if recorded.
    subdirs: Vec<(Vec<u8>, ChunkId, Option<NamesDigest>)>,
    /// The names digest of the directory, computed from what was read.
    digest: NamesDigest,
    /// Whether any name passed `may_match`.
    candidates: bool,
}

/// A subdirectory of a directory read: shared with the snapshot before,
/// or read too (its position among the directories read).
enum Child {
    Shared(Arc<DirNode>),
    Read(usize),
}

/// A match: the slot of its path and its summary.
type Hit = (usize, Summary);

/// A directory read: its ID, what it holds, and its subdirectories.
type Read = (ChunkId, DirRead, Vec<(Vec<u8>, Child)>);

/// One matching path across the snapshots searched so far.
struct Slot {
    path: Vec<u8>,
    versions: Vec<FindVersion>,
    /// The last snapshot it matched in, and its summary there.
    last: usize,
    summary: Summary,
}

/// Searches `trees` (oldest first) for entries `matches` accepts (given
/// the entry's path and the entry) and returns every matching path, in
/// path order, with its versions.
pub fn find(trees: &[SnapshotTree], matches: &(dyn Fn(&[u8], &TreeEntry) -> bool + Sync)) -> Result<Vec<Found>> {
    find_named(trees, &|_| true, matches)
}

/// [`find`] for a search that asks something of the name: `may_match`
/// sees each entry's name first, and only the entries it accepts are
/// decoded whole and given to `matches` (a leaf of format 3 keeps its
/// names apart from the rest, so most entries cost a name comparison).
///
/// The directories of a snapshot that changed are read one depth at a
/// time, those of a depth together on several threads (a directory costs
/// a fetch, a decryption and a decode, and on remote storage a round trip).
///
/// `may_match` must depend on the name alone: a directory whose names
/// were seen before with none accepted (and no subdirectory) is not read
/// again (see the module doc).
pub fn find_named(
    trees: &[SnapshotTree],
    may_match: &(dyn Fn(&[u8]) -> bool + Sync),
    matches: &(dyn Fn(&[u8], &TreeEntry) -> bool + Sync),
) -> Result<Vec<Found>> {
    find_named_stats(trees, may_match, matches).map(|(found, _)| found)
}

/// [`find_named`], also saying how many directories it read and skipped.
pub fn find_named_stats(
    trees: &[SnapshotTree],
    may_match: &(dyn Fn(&[u8]) -> bool + Sync),
    matches: &(dyn Fn(&[u8], &TreeEntry) -> bool + Sync),
) -> Result<(Vec<Found>, FindStats)> {
    // Decoding a directory is CPU work: one reader per core on local
    // storage; on remote storage more, to hide the round trips.
    let local = trees.first().is_none_or(|t| t.store().is_local());
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = if local { cores } else { cores.max(crate::parallel::READERS_FOR_REMOTE) };
    let mut slots: Vec<Slot> = Vec::new();
    let mut slot_of: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut before: Option<Arc<DirNode>> = None;
    let mut barren: HashSet<NamesDigest> = HashSet::new();
    let mut stats = FindStats::default();
    for (n, tree) in trees.iter().enumerate() {
        let (root, new_hits) = match before.as_ref().filter(|b| b.id == *tree.root()) {
            Some(same) => (same.clone(), Vec::new()),
            None => {
                let search = Search { threads, local, may_match, matches };
                let memory =
                    Memory { slot_of: &mut slot_of, slots: &mut slots, barren: &mut barren, stats: &mut stats };
                read_changed(tree, before.clone(), &search, memory)?
            }
        };
        // Matches in the directories read: compared with the snapshot before.
        for (slot, now) in &new_hits {
            if let Some(s) = slots.get_mut(*slot) {
                let change = match (s.last + 1 == n && !s.versions.is_empty()).then_some(s.summary) {
                    None => FindChange::Added,
                    Some(p) if p.content != now.content => FindChange::Modified,
                    Some(p) if p.metadata != now.metadata => FindChange::Metadata,
                    Some(_) => FindChange::Unchanged,
                };
                s.versions.push(FindVersion { snapshot: n, change, kind: now.kind, size: now.size, mtime: now.mtime });
                (s.last, s.summary) = (n, *now);
            }
        }
        // Matches in subtrees shared with the snapshot before: unchanged.
        for slot in &root.under {
            if let Some(s) = slots.get_mut(*slot).filter(|s| s.versions.last().is_none_or(|v| v.snapshot != n)) {
                let change = if s.last + 1 == n { FindChange::Unchanged } else { FindChange::Added };
                let now = s.summary;
                s.versions.push(FindVersion { snapshot: n, change, kind: now.kind, size: now.size, mtime: now.mtime });
                s.last = n;
            }
        }
        // Paths that matched in the snapshot before and not in this one.
        if n > 0 {
            for s in slots.iter_mut().filter(|s| s.last + 1 == n) {
                let was = s.summary;
                s.versions.push(FindVersion {
                    snapshot: n,
                    change: FindChange::Removed,
                    kind: was.kind,
                    size: was.size,
                    mtime: was.mtime,
                });
            }
        }
        before = Some(root);
    }
    let mut out: Vec<Found> = slots.into_iter().map(|s| Found { path: s.path, versions: s.versions }).collect();
    out.sort_by(|a, b| vger_fs::cmp_paths(&a.path, &b.path));
    Ok((out, stats))
}

/// Directories of one depth that a search on local storage reads on its
/// own thread rather than on several (about half a millisecond of work).
const SMALL_LEVEL: usize = 32;

/// What a search looks for, and with how many threads.
struct Search<'a> {
    threads: usize,
    /// Whether the storage is local (a read costs CPU, not a round trip).
    local: bool,
    may_match: &'a (dyn Fn(&[u8]) -> bool + Sync),
    matches: &'a (dyn Fn(&[u8], &TreeEntry) -> bool + Sync),
}

/// What a search keeps from one snapshot to the next.
struct Memory<'a> {
    slot_of: &'a mut HashMap<Vec<u8>, usize>,
    slots: &'a mut Vec<Slot>,
    /// Names digests of directories read with no subdirectory and no
    /// name that may match.
    barren: &'a mut HashSet<NamesDigest>,
    stats: &'a mut FindStats,
}

/// Reads the directories of `tree` that differ from `before` (the tree of
/// the snapshot before, as remembered) and returns the new tree's root and
/// matches in the directories read. Each path that matches gets a slot.
fn read_changed(
    tree: &SnapshotTree,
    before: Option<Arc<DirNode>>,
    search: &Search<'_>,
    memory: Memory<'_>,
) -> Result<(Arc<DirNode>, Vec<Hit>)> {
    let Search { threads, local, may_match, matches } = *search;
    let Memory { slot_of, slots, barren, stats } = memory;
    // Top down, one depth at a time: what each directory read holds.
    let mut read: Vec<Option<Read>> = Vec::new();
    let mut level = vec![Job { at: 0, path: Vec::new(), id: *tree.root(), claimed: None, before }];
    while !level.is_empty() {
        let first = read.len() + level.len();
        read.resize_with(first, || None);
        // In pack order, in batches of neighbours fetched together: a few
        // batches per thread, so that the threads stay busy to the end.
        level.sort_by_key(|job| tree.store().location(&job.id));
        let per_batch = level.len().div_ceil(threads * 4).clamp(1, 64);
        let mut batches = Vec::new();
        while !level.is_empty() {
            let rest = level.split_off(per_batch.min(level.len()));
            batches.push(std::mem::replace(&mut level, rest));
        }
        // A few directories on local storage take less time to read than
        // threads take to start and to be scheduled (with churn in few
        // folders, a snapshot's changed directories are mostly a handful
        // per depth): read them here.
        let workers = if local && batches.iter().map(Vec::len).sum::<usize>() <= SMALL_LEVEL { 1 } else { threads };
        let done = crate::parallel::map(batches, workers, |batch| {
            let ids: Vec<ChunkId> = batch.iter().map(|job| job.id).collect();
            let plains = tree.store().plaintexts(&ids)?;
            batch
                .into_iter()
                .zip(plains)
                .map(|(job, plain)| Ok((read_dir(tree, &job.path, &job.id, Some(plain), may_match, matches)?, job)))
                .collect::<Result<Vec<_>>>()
        })?;
        let done: Vec<(DirRead, Job)> = done.into_iter().flatten().collect();
        stats.dirs_read += done.len() as u64;
        for (found, job) in &done {
            if job.claimed.is_some_and(|c| c != found.digest) {
                return Err(vger_format::FormatError::corrupt(
                    format!("tree object {}", job.id.short()),
                    format!(
                        "its names do not match the names digest its parent records of {:?}",
                        String::from_utf8_lossy(&job.path)
                    ),
                )
                .into());
            }
            if found.subdirs.is_empty() && !found.candidates {
                barren.insert(found.digest);
            }
        }
        let mut next = Vec::new();
        for (found, job) in done {
            let mut children = Vec::with_capacity(found.subdirs.len());
            for (name, id, digest) in &found.subdirs {
                let was = job.before.as_ref().and_then(|b| b.subdir(name));
                match was {
                    Some(same) if same.id == *id => children.push((name.clone(), Child::Shared(same.clone()))),
                    _ if digest.is_some_and(|d| barren.contains(&d)) => {
                        // The same names as a directory read before with
                        // nothing to find and nothing below: not read.
                        stats.dirs_skipped += 1;
                        let empty = DirNode { id: *id, subdirs: Vec::new(), under: Vec::new() };
                        children.push((name.clone(), Child::Shared(Arc::new(empty))));
                    }
                    _ => {
                        children.push((name.clone(), Child::Read(first + next.len())));
                        let path = join_path(&job.path, name);
                        let at = first + next.len();
                        next.push(Job { at, path, id: *id, claimed: *digest, before: was.cloned() });
                    }
                }
            }
            if let Some(place) = read.get_mut(job.at) {
                *place = Some((job.id, found, children));
            }
        }
        level = next;
    }
    // Bottom up (children come after their parent): each directory read
    // becomes a node once its subdirectories are.
    let mut built: Vec<Option<Arc<DirNode>>> = (0..read.len()).map(|_| None).collect();
    let mut new_hits = Vec::new();
    for (i, dir) in read.into_iter().enumerate().rev() {
        let Some((id, found, children)) = dir else {
            return Err(crate::EngineError::Other(format!("find: directory {i} was not read (a bug)")));
        };
        let mut hits = Vec::with_capacity(found.hits.len());
        for (path, summary) in found.hits {
            let slot = *slot_of.entry(path).or_insert_with_key(|path| {
                slots.push(Slot { path: path.clone(), versions: Vec::new(), last: 0, summary });
                slots.len() - 1
            });
            hits.push((slot, summary));
        }
        new_hits.extend_from_slice(&hits);
        let mut under: Vec<usize> = hits.iter().map(|(slot, _)| *slot).collect();
        let mut subdirs = Vec::with_capacity(children.len());
        for (name, child) in children {
            let node = match child {
                Child::Shared(node) => node,
                Child::Read(at) => built.get_mut(at).and_then(Option::take).ok_or_else(|| {
                    crate::EngineError::Other(format!("find: directory {at} was not built before its parent (a bug)"))
                })?,
            };
            under.extend_from_slice(&node.under);
            subdirs.push((name, node));
        }
        if let Some(place) = built.get_mut(i) {
            *place = Some(Arc::new(DirNode { id, subdirs, under }));
        }
    }
    let root = built.first().cloned().flatten();
    let root = root.ok_or_else(|| crate::EngineError::Other("find: no root was built (a bug)".into()))?;
    Ok((root, new_hits))
}
fn read_dir(
    tree: &SnapshotTree,
    path: &[u8],
    id: &ChunkId,
    plain: Option<Vec<u8>>,
    may_match: &(dyn Fn(&[u8]) -> bool + Sync),
    matches: &(dyn Fn(&[u8], &TreeEntry) -> bool + Sync),
) -> Result<DirRead> {
    let mut result = DirRead { hits: Vec::new(), subdirs: Vec::new(), digest: NamesDigest([0; 32]), candidates: false };
    let mut names = NamesHasher::new();
    scan_with(tree.store(), id, plain, &mut |item| {
        names.add(item.kind(), item.name());
        if may_match(item.name()) {
            result.candidates = true;
            let full = join_path(path, item.name());
            let entry = item.entry(id)?;
            if matches(&full, &entry) {
                result.hits.push((full, Summary::of(&entry)));
            }
        }
        if let Some(t) = item.tree() {
            result.subdirs.push((item.name().to_vec(), t, item.names_digest()));
        }
        Ok(())
    })?;
    result.digest = names.finish();
    Ok(result)
}
