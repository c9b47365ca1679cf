//! Finding paths across snapshots, with the history of each match.
//!
//! Each directory is read once per (path, tree ID): what matched in it and
//! which subdirectories it has are remembered from one snapshot to the
//! next, so a directory the next snapshot shares (the usual case) costs a
//! lookup, not a read, and searching many snapshots costs little more than
//! searching one.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::Serialize;
use vger_format::entry::EntryKind;
use vger_format::id::ChunkId;
use vger_format::tree::{join_path, TreeEntry};

use crate::tree::dir::scan;
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

/// One directory, read once: the entries in it that match, and its
/// subdirectories.
struct DirResult {
    hits: Vec<(Vec<u8>, Summary)>,
    subdirs: Vec<(Vec<u8>, ChunkId)>,
}

/// Searches `trees` (oldest first) for entries `matches` accepts (given
/// the entry's path and the entry) and returns every matching path, in
/// path order, with its versions.
///
/// Each snapshot is walked one depth at a time: the directories of a
/// depth that the snapshot before did not have are read together on
/// several threads (a directory costs a fetch, a decryption and a decode,
/// and on remote storage a round trip), the others come from what was
/// read for the snapshot before. Only the directories of the last two
/// snapshots are remembered, so memory follows the size of one
/// snapshot's tree, not the length of the history.
pub fn find(trees: &[SnapshotTree], matches: &(dyn Fn(&[u8], &TreeEntry) -> bool + Sync)) -> Result<Vec<Found>> {
    find_named(trees, &|_| true, matches)
}

/// [`find`] for a search that asks something of the name: `may_match`
/// sees each entry's name first, and only the entries it accepts are
/// decoded whole and given to `matches` (a leaf of format 3 keeps its
/// names apart from the rest, so most entries cost a name comparison).
pub fn find_named(
    trees: &[SnapshotTree],
    may_match: &(dyn Fn(&[u8]) -> bool + Sync),
    matches: &(dyn Fn(&[u8], &TreeEntry) -> bool + Sync),
) -> Result<Vec<Found>> {
    // Decoding a directory is CPU work: one reader per core on local
    // storage; on remote storage more, to hide the round trips.
    let local = trees.first().is_none_or(|t| t.store().is_local());
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = if local { cores } else { cores.max(crate::parallel::READERS_FOR_REMOTE) };
    let mut previous: HashMap<(Vec<u8>, ChunkId), Arc<DirResult>> = HashMap::new();
    // Per path: its versions so far and the summary in the last snapshot
    // it matched in.
    let mut history: BTreeMap<Vec<u8>, (Vec<FindVersion>, usize, Summary)> = BTreeMap::new();
    for (n, tree) in trees.iter().enumerate() {
        let mut current: HashMap<(Vec<u8>, ChunkId), Arc<DirResult>> = HashMap::new();
        let mut level = vec![(Vec::new(), *tree.root())];
        while !level.is_empty() {
            let mut unread = Vec::new();
            for key in &level {
                match previous.get(key) {
                    Some(r) => {
                        current.insert(key.clone(), r.clone());
                    }
                    None => unread.push(key.clone()),
                }
            }
            let read = crate::parallel::map(unread, threads, |(path, id)| {
                let r = read_dir(tree, &path, &id, may_match, matches)?;
                Ok(((path, id), Arc::new(r)))
            })?;
            current.extend(read);
            let mut next = Vec::new();
            for key in &level {
                let Some(result) = current.get(key) else { continue };
                next.extend(result.subdirs.iter().cloned());
                for (path, now) in &result.hits {
                    let before = history.get(path).filter(|(_, last, _)| *last + 1 == n).map(|(_, _, s)| *s);
                    let change = match before {
                        None => FindChange::Added,
                        Some(p) if p.content != now.content => FindChange::Modified,
                        Some(p) if p.metadata != now.metadata => FindChange::Metadata,
                        Some(_) => FindChange::Unchanged,
                    };
                    let version = FindVersion { snapshot: n, change, kind: now.kind, size: now.size, mtime: now.mtime };
                    let slot = history.entry(path.clone()).or_insert_with(|| (Vec::new(), n, *now));
                    slot.0.push(version);
                    slot.1 = n;
                    slot.2 = *now;
                }
            }
            level = next;
        }
        previous = current;
        // Paths that matched in the snapshot before and not in this one.
        for (versions, last, summary) in history.values_mut() {
            if *last + 1 == n {
                versions.push(FindVersion {
                    snapshot: n,
                    change: FindChange::Removed,
                    kind: summary.kind,
                    size: summary.size,
                    mtime: summary.mtime,
                });
            }
        }
    }
    let mut out: Vec<Found> = history.into_iter().map(|(path, (versions, _, _))| Found { path, versions }).collect();
    out.sort_by(|a, b| vger_fs::cmp_paths(&a.path, &b.path));
    Ok(out)
}

fn read_dir(
    tree: &SnapshotTree,
    path: &[u8],
    id: &ChunkId,
    may_match: &(dyn Fn(&[u8]) -> bool + Sync),
    matches: &(dyn Fn(&[u8], &TreeEntry) -> bool + Sync),
) -> Result<DirResult> {
    let mut result = DirResult { hits: Vec::new(), subdirs: Vec::new() };
    scan(tree.store(), id, &mut |item| {
        let wanted = may_match(item.name());
        let subdir = item.tree();
        if !wanted && subdir.is_none() {
            return Ok(());
        }
        let full = join_path(path, item.name());
        if wanted {
            let entry = item.entry(id)?;
            if matches(&full, &entry) {
                result.hits.push((full.clone(), Summary::of(&entry)));
            }
        }
        if let Some(t) = subdir {
            result.subdirs.push((full, t));
        }
        Ok(())
    })?;
    Ok(result)
}
