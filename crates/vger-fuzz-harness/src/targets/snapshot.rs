//! Targets for what a snapshot is made of: the snapshot object, its tree
//! stream, and the lock objects beside them.

use vger_crypto::ObjectType;
use vger_engine::blob::seal_chunk;
use vger_engine::check::{check, CheckOptions};
use vger_engine::find::find_named;
use vger_engine::index::ChunkIndex;
use vger_engine::lock::{list_locks, RepoLock};
use vger_engine::progress::Progress;
use vger_engine::retention::{self, RetentionPolicy, Within};
use vger_engine::snapshots;
use vger_engine::tree::{SnapshotTree, TreeStore};
use vger_format::compress::Codec;
use vger_format::id::{ChunkId, SegmentId, SnapshotId};
use vger_format::index::{IndexSegment, INDEX_SEGMENT_VERSION};
use vger_format::pack::PackBuilder;
use vger_format::tree::{scan_node, Scanned, TreeNode};

use super::{refused, stored_or_sealed};
use crate::fixture::fixture;
use crate::Outcome;

/// Where the fuzzed snapshot is stored (after the fixture's in a listing).
const SNAPSHOT: SnapshotId = SnapshotId([0xf0; 32]);

/// The snapshot (stored, or its plaintext sealed here) beside the
/// fixture's two: loaded alone and in the listing, its tree walked
/// through the fixture's index, retention applied to all three, and
/// `check` run over the repository.
pub(crate) fn snapshot(data: &[u8]) -> Outcome {
    let f = fixture();
    let key = SNAPSHOT.storage_key();
    let bytes = stored_or_sealed(&f, data, ObjectType::Snapshot, key.as_bytes());
    let _planted = f.plant(&key, &bytes);
    let loaded = snapshots::load(&f.repo, SNAPSHOT);
    let (readable, unreadable) = snapshots::list_readable(&f.repo).map_err(refused)?;
    let report = check(&f.repo, &CheckOptions::default(), &Progress::default()).map_err(refused)?;
    let info = match loaded {
        Ok(info) => info,
        Err(e) => {
            assert!(unreadable.iter().any(|(id, _)| *id == SNAPSHOT), "listed as readable, not loaded: {e}");
            assert!(!report.is_ok(), "check passed a repository with an unreadable snapshot");
            return Err(refused(e));
        }
    };
    assert!(readable.iter().any(|s| s.id == SNAPSHOT));
    let policy = RetentionPolicy {
        keep_last: Some(1),
        keep_hourly: Some(2),
        keep_daily: Some(2),
        keep_weekly: Some(2),
        keep_monthly: Some(2),
        keep_yearly: Some(2),
        keep_within: Within::parse("3d"),
    };
    let decisions = retention::apply(&policy, &readable, chrono::Utc::now());
    assert_eq!(decisions.len(), readable.len());
    let _ = snapshots::find(&f.repo, "latest");
    let _ = snapshots::find(&f.repo, "f0f0");
    let store = TreeStore::new(&f.repo, f.index.clone(), 1 << 20);
    for item in SnapshotTree::open(&store, &info).walk(b"").map_err(refused)? {
        let item = item.map_err(refused)?;
        assert!(vger_format::tree::bad_name(&item.entry.entry().name).is_none(), "the walk handed out a bad name");
    }
    Ok(())
}

/// A directory object (docs/format.md, section 8; the mode byte picks
/// the codec it is stored with): decoded alone, then stored as a tree
/// chunk beside the fixture's and walked from as a snapshot's root, which
/// reaches the fixture's own directories through the names it holds.
pub(crate) fn tree(data: &[u8]) -> Outcome {
    let f = fixture();
    let Some((mode, object)) = data.split_first() else { return Err("empty".into()) };
    let codec = [Codec::None, Codec::Lz4, Codec::Zstd(1)][usize::from(mode % 3)];
    let id = ChunkId(f.repo.chunk_id_key().chunk_id(object));
    let decoded = TreeNode::decode(&id, object);
    names_agree(&id, object, &decoded);
    let sealed = seal_chunk(f.repo.envelope(), codec, ObjectType::TreeChunk, &id, object).map_err(refused)?;
    let mut pack = PackBuilder::with_capacity(sealed.len() + 4096);
    pack.add(id, ObjectType::TreeChunk, object.len() as u32, &sealed);
    let finished = pack.finish(f.repo.envelope()).map_err(refused)?;
    let _planted = f.plant(&finished.id.storage_key(), &finished.bytes);
    let mut segments = f.segments.clone();
    let segment = IndexSegment { version: INDEX_SEGMENT_VERSION, packs: vec![finished.entry], supersedes: Vec::new() };
    segments.push((SegmentId([0xf0; 32]), segment));
    let index = std::sync::Arc::new(ChunkIndex::from_owned_segments(segments));
    let store = TreeStore::new(&f.repo, index, 1 << 20);
    let tree = SnapshotTree::new(store, id);
    let walked: Result<usize, _> = tree.walk(b"").map_err(refused).and_then(|walk| {
        let mut n = 0;
        for item in walk {
            let item = item.map_err(refused)?;
            assert!(vger_format::tree::bad_name(&item.entry.entry().name).is_none(), "the walk handed out a bad name");
            n += 1;
        }
        Ok(n)
    });
    let _ = tree.stat(b"docs/readme.txt");
    // A search by name (which reads leaves for their names) finds what the
    // walk saw, or fails where the walk failed.
    let starts_with_r = |name: &[u8]| name.first() == Some(&b'r');
    let found = find_named(std::slice::from_ref(&tree), &starts_with_r, &|_, _| true);
    if let (Ok(found), Ok(_)) = (&found, &walked) {
        let mut seen: Vec<Vec<u8>> = Vec::new();
        if let Ok(walk) = tree.walk(b"") {
            for item in walk.flatten() {
                if item.path.rsplit(|b| *b == b'/').next().is_some_and(starts_with_r) {
                    seen.push(item.path);
                }
            }
        }
        let mut got: Vec<Vec<u8>> = found.iter().map(|f| f.path.clone()).collect();
        got.sort();
        seen.sort();
        assert_eq!(got, seen, "find and the walk disagree");
    }
    match (decoded, walked) {
        (Ok(_), Ok(_)) => Ok(()),
        (Err(e), Ok(_)) => panic!("the walk took a directory object the decoder refuses: {e}"),
        (_, Err(e)) => Err(e),
    }
}

/// Reading a directory object for its names must agree with decoding it
/// whole: the same entries, or a refusal of one of them.
fn names_agree(id: &ChunkId, object: &[u8], decoded: &Result<TreeNode, vger_format::FormatError>) {
    match (decoded, scan_node(id, object)) {
        (Ok(TreeNode::Leaf(entries)), Ok(Scanned::Names(items))) => {
            assert_eq!(entries.len(), items.len(), "names and the decoded leaf differ in length");
            for (e, item) in entries.iter().zip(&items) {
                assert_eq!(
                    (item.name, item.kind, item.tree, item.digest),
                    (e.name.as_slice(), e.kind, e.tree, e.names_digest)
                );
                assert_eq!(item.entry().as_ref(), Ok(e), "an entry decodes differently alone");
            }
        }
        (Ok(node), Ok(Scanned::Node(same))) => assert_eq!(node, &same, "the names read decoded another node"),
        (Ok(_), Ok(Scanned::Names(_))) => panic!("an index node was read as a leaf of names"),
        (Err(_), Ok(Scanned::Names(items))) => {
            assert!(items.iter().any(|i| i.entry().is_err()), "the decoder refused a leaf whose every entry reads")
        }
        (Ok(_), Err(e)) => panic!("reading for names refused what the decoder took: {e}"),
        (Err(_), Ok(Scanned::Node(_))) => panic!("reading for names took a node the decoder refused"),
        (Err(_), Err(_)) => {}
    }
}

/// A lock object (stored, or its plaintext sealed here) in `locks/`: listed
/// and described, then a shared lock is taken beside it, as every backup
/// does (a stale one is removed, an exclusive one refuses).
pub(crate) fn lock(data: &[u8]) -> Outcome {
    let f = fixture();
    let key = format!("locks/{}", hex::encode([0xf0u8; 32]));
    let bytes = stored_or_sealed(&f, data, ObjectType::Lock, key.as_bytes());
    let _planted = f.plant(&key, &bytes);
    let locks = list_locks(&f.repo).map_err(refused)?;
    let record = locks.into_iter().find(|(k, _)| *k == key).and_then(|(_, r)| r);
    if let Some(r) = &record {
        let _ = r.describe();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let _ = r.is_stale(now);
    }
    match RepoLock::shared(&f.repo, "fuzz") {
        Ok(lock) => lock.release(),
        // An unreadable lock counts as held: that refusal is the point.
        Err(e) => assert!(record.is_some() || !e.to_string().is_empty()),
    }
    record.map(|_| ()).ok_or_else(|| "unreadable lock".into())
}
