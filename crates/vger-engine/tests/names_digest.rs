//! The names digest a parent records of each subdirectory (docs/format.md,
//! section 8): right after a backup, kept with a subtree reused from the
//! parent snapshot, made by copy (also from a tree that had none), and
//! used by find to skip directories whose names it has seen with nothing
//! to find, with results equal to a brute-force search.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;
use common::{init, run_backup, store};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vger_engine::copy::{copy, CopyOptions};
use vger_engine::find::{find, find_named_stats, FindChange, FindVersion, Found};
use vger_engine::progress::Progress;
use vger_engine::repository::Repository;
use vger_engine::snapshots;
use vger_engine::tree::{DirEntries, SnapshotTree, TreeStore};
use vger_format::entry::EntryKind;
use vger_format::id::ChunkId;
use vger_format::tree::{NamesDigest, NamesHasher, TreeEntry};
use vger_storage::LocalStorage;

/// The digest of directory `dir` computed from its entries.
fn digest_of(store: &TreeStore, dir: &ChunkId) -> NamesDigest {
    let mut h = NamesHasher::new();
    for e in DirEntries::new(store, dir).unwrap() {
        let e = e.unwrap();
        h.add(e.kind, &e.name);
    }
    h.finish()
}

/// Checks every directory entry below `dir`: its digest is known and is
/// that of the directory's entries. Returns each directory's path, tree ID
/// and digest.
fn check_digests(store: &TreeStore, dir: &ChunkId, path: &str, out: &mut BTreeMap<String, (ChunkId, NamesDigest)>) {
    for e in DirEntries::new(store, dir).unwrap() {
        let e = e.unwrap();
        let Some(tree) = e.tree else { continue };
        let sub = format!("{path}/{}", e.display_name());
        let recorded = e.names_digest.unwrap_or_else(|| panic!("{sub}: no names digest recorded"));
        assert_eq!(recorded, digest_of(store, &tree), "{sub}: the recorded digest is not that of its names");
        out.insert(sub.clone(), (tree, recorded));
        check_digests(store, &tree, &sub, out);
    }
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

#[test]
fn backup_records_digests_and_keeps_them_with_a_reused_subtree_and_copy_makes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init(&tmp.path().join("repo"));
    let src = tmp.path().join("src");
    for d in ["a", "a/x", "a/x/y", "b", "b/empty", "c"] {
        fs::create_dir_all(src.join(d)).unwrap();
    }
    write(&src.join("a/one"), "1");
    write(&src.join("a/x/two"), "2");
    write(&src.join("a/x/y/three"), "3");
    write(&src.join("b/four"), "4");
    write(&src.join("c/five"), "5");
    std::os::unix::fs::symlink("one", src.join("a/link")).unwrap();
    let first = run_backup(&repo, &src, "2040-01-01T00:00:00Z");
    // Only `c` changes (a file added): `a` and `b` are reused.
    write(&src.join("c/six"), "6");
    let second = run_backup(&repo, &src, "2040-01-02T00:00:00Z");
    let s = store(&repo);
    let (mut one, mut two) = (BTreeMap::new(), BTreeMap::new());
    check_digests(&s, &first.snapshot.root, "", &mut one);
    check_digests(&s, &second.snapshot.root, "", &mut two);
    assert_eq!(one.len(), 6);
    for d in ["/a", "/a/x", "/a/x/y", "/b", "/b/empty"] {
        assert_eq!(one[d], two[d], "{d}: reused with its tree ID and digest");
    }
    assert_ne!(one["/c"], two["/c"]);
    // The empty directory's digest is that of no names.
    assert_eq!(two["/b/empty"].1 .0, *blake3::hash(b"").as_bytes());

    // A copy writes the same digests (names do not change), with the
    // target's tree IDs.
    let target = init(&tmp.path().join("target"));
    let list = snapshots::list(&repo).unwrap();
    copy(&repo, &target, &list, &CopyOptions::default(), &Progress::default()).unwrap();
    let ts = store(&target);
    for (snap, want) in snapshots::list(&target).unwrap().iter().zip([&one, &two]) {
        let mut got = BTreeMap::new();
        check_digests(&ts, &snap.snapshot.root, "", &mut got);
        let digests = |m: &BTreeMap<String, (ChunkId, NamesDigest)>| -> Vec<(String, NamesDigest)> {
            m.iter().map(|(p, (_, d))| (p.clone(), *d)).collect()
        };
        assert_eq!(digests(&got), digests(want));
    }
}

/// A repository written before digests (fixtures/repos/v3) has none; a
/// copy of it records them all, right.
#[test]
fn a_copy_of_a_tree_without_digests_records_them() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/repos/v3/repo");
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture, &tmp.path().join("v3"));
    let source =
        Repository::open(Arc::new(LocalStorage::open(&tmp.path().join("v3")).unwrap()), &|| Ok(b"fixture".to_vec()))
            .unwrap();
    let list = snapshots::list(&source).unwrap();
    let ss = store(&source);
    let mut unknown = 0;
    for snap in &list {
        for item in SnapshotTree::open(&ss, snap).walk(b"").unwrap() {
            let item = item.unwrap();
            unknown += usize::from(item.entry.kind == EntryKind::Dir && item.entry.names_digest.is_none());
        }
    }
    assert!(unknown > 0, "the fixture has directories without digests");
    let target = init(&tmp.path().join("target"));
    copy(&source, &target, &list, &CopyOptions::default(), &Progress::default()).unwrap();
    let ts = store(&target);
    for snap in snapshots::list(&target).unwrap() {
        let mut got = BTreeMap::new();
        check_digests(&ts, &snap.snapshot.root, "", &mut got);
        assert!(!got.is_empty());
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Mode, uid, gid, user, group, mtime and xattrs of an entry.
type Metadata = (u32, u32, u32, Option<String>, Option<String>, i64, Vec<(Vec<u8>, Vec<u8>)>);

/// What brute force keeps of a matching entry to tell versions apart.
#[derive(Clone, PartialEq)]
struct Seen {
    kind: EntryKind,
    size: u64,
    mtime: i64,
    content: (u64, Vec<ChunkId>, Option<Vec<u8>>, u64),
    metadata: Metadata,
}

impl Seen {
    fn of(e: &TreeEntry) -> Self {
        Seen {
            kind: e.kind,
            size: e.size,
            mtime: e.mtime,
            content: (e.size, e.chunks.iter().map(|c| *c.id()).collect(), e.target.clone(), e.rdev),
            metadata: (
                e.mode,
                e.uid,
                e.gid,
                e.user.clone(),
                e.group.clone(),
                e.mtime,
                e.xattrs.iter().map(|x| (x.0.clone(), x.1.clone())).collect(),
            ),
        }
    }
}

/// The history of every path whose name `pred` accepts, from a walk of
/// each snapshot: what find must say.
fn brute_force(trees: &[SnapshotTree], pred: &dyn Fn(&[u8]) -> bool) -> Vec<(Vec<u8>, Vec<FindVersion>)> {
    let per: Vec<BTreeMap<Vec<u8>, Seen>> = trees
        .iter()
        .map(|t| {
            t.walk(b"")
                .unwrap()
                .map(Result::unwrap)
                .filter(|i| pred(&i.entry.name))
                .map(|i| (i.path.clone(), Seen::of(&i.entry)))
                .collect()
        })
        .collect();
    let paths: BTreeSet<Vec<u8>> = per.iter().flat_map(|m| m.keys().cloned()).collect();
    let mut out = Vec::new();
    for p in paths {
        let mut versions = Vec::new();
        for (n, m) in per.iter().enumerate() {
            let prev = n.checked_sub(1).and_then(|b| per[b].get(&p));
            let v = |change, s: &Seen| FindVersion { snapshot: n, change, kind: s.kind, size: s.size, mtime: s.mtime };
            match (prev, m.get(&p)) {
                (None, Some(now)) => versions.push(v(FindChange::Added, now)),
                (Some(was), Some(now)) if was.content != now.content => versions.push(v(FindChange::Modified, now)),
                (Some(was), Some(now)) if was.metadata != now.metadata => versions.push(v(FindChange::Metadata, now)),
                (Some(_), Some(now)) => versions.push(v(FindChange::Unchanged, now)),
                (Some(was), None) => versions.push(v(FindChange::Removed, was)),
                (None, None) => {}
            }
        }
        out.push((p, versions));
    }
    out.sort_by(|a, b| vger_fs::cmp_paths(&a.0, &b.0));
    out
}

fn histories(found: &[Found]) -> Vec<(Vec<u8>, Vec<FindVersion>)> {
    found.iter().map(|f| (f.path.clone(), f.versions.clone())).collect()
}

/// Builds the source: `top/d{i}` of files `f{j}.txt` (all with the same
/// names), a nested `deep/x/y` of the same names, and `hits/` with a file
/// that matches.
fn source_tree(src: &Path, round: usize, dirs: usize) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for i in 0..dirs {
        all.push(src.join(format!("top/d{i}")));
    }
    all.push(src.join("deep/x/y"));
    all.push(src.join("deep/x"));
    all.push(src.join("hits"));
    for d in &all {
        for j in 0..4 {
            // Each round modifies one file of every directory (the names stay).
            let content = if j == round % 4 { "x".repeat(round + 2) } else { format!("{j}") };
            write(&d.join(format!("f{j}.txt")), &content);
        }
    }
    write(&src.join("hits/keep.log"), &"k".repeat(round % 2 + 1));
    all
}

#[test]
fn find_skips_directories_whose_names_did_not_change_and_equals_brute_force() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init(&tmp.path().join("repo"));
    let src = tmp.path().join("src");
    let dirs = 6;
    let mut snaps = Vec::new();
    for round in 0..7 {
        source_tree(&src, round, dirs);
        // A matching file in d3, a directory otherwise like the others:
        // added in round 2, modified in 3, unchanged in 4, removed in 5,
        // back in 6.
        let log = src.join("top/d3/new.log");
        match round {
            2 | 6 => write(&log, "a"),
            3 => write(&log, "bb"),
            5 => fs::remove_file(&log).unwrap(),
            _ => {}
        }
        snaps.push(run_backup(&repo, &src, &format!("2040-01-0{}T00:00:00Z", round + 1)));
    }
    let s = store(&repo);
    let trees: Vec<SnapshotTree> = snaps.iter().map(|i| SnapshotTree::open(&s, i)).collect();
    let is_log = |name: &[u8]| name.ends_with(b".log");
    let (found, stats) = find_named_stats(&trees, &is_log, &|_, e| is_log(&e.name)).unwrap();
    let want = brute_force(&trees, &is_log);
    assert_eq!(histories(&found), want);
    // The history of d3/new.log as it happened.
    let log = want.iter().find(|(p, _)| p == b"top/d3/new.log").unwrap();
    let changes: Vec<(usize, FindChange)> = log.1.iter().map(|v| (v.snapshot, v.change)).collect();
    use FindChange::*;
    assert_eq!(changes, [(2, Added), (3, Modified), (4, Unchanged), (5, Removed), (6, Added)]);
    assert_eq!(want.iter().find(|(p, _)| p == b"hits/keep.log").unwrap().1.len(), 7);

    // Every directory changes every round; those of the same names as one
    // read before with nothing to find are skipped. Per snapshot after
    // the first: `top/d*` but d3 (when it holds new.log) and `deep/x/y`.
    assert!(stats.dirs_skipped >= 6 * (dirs as u64 - 1), "{stats:?}");
    // Without the skip: every directory of every snapshot (root, top,
    // dirs, deep, deep/x, deep/x/y, hits).
    let every = 7 * (dirs as u64 + 6);
    assert_eq!(stats.dirs_read + stats.dirs_skipped, every, "{stats:?}");

    // A search that looks at paths or metadata accepts every name: no
    // directory is skipped, and it finds the same.
    let (by_path, stats) = find_named_stats(&trees, &|_| true, &|p, _| p.ends_with(b".log")).unwrap();
    assert_eq!(stats.dirs_skipped, 0);
    assert_eq!(histories(&by_path), want);
    assert_eq!(histories(&find(&trees, &|_, e| is_log(&e.name)).unwrap()), want);

    // A pattern that matches nothing: every directory but the ones with
    // subdirectories is skipped after the first snapshot.
    let none = |name: &[u8]| name == b"nothing";
    let (found, stats) = find_named_stats(&trees, &none, &|_, e| none(&e.name)).unwrap();
    assert!(found.is_empty());
    let with_subdirs = 4; // root, top, deep, deep/x
    assert!(stats.dirs_read <= dirs as u64 + 6 + 6 * (with_subdirs + 1), "{stats:?}");
}

/// A directory whose names change back and forth, matching files added,
/// removed and modified beside unchanged names, in many directories of
/// equal names: find equals brute force, snapshot by snapshot, whatever
/// the order the snapshots are searched in.
#[test]
fn find_with_churn_in_names_equals_brute_force() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = init(&tmp.path().join("repo"));
    let src = tmp.path().join("src");
    let mut snaps = Vec::new();
    for round in 0..6usize {
        let dirs = source_tree(&src, round, 4);
        for (k, d) in dirs.iter().enumerate() {
            // A matching file in directory k appears in rounds where
            // (round + k) % 3 == 0, and its content changes every round.
            let f = d.join("m.log");
            if (round + k) % 3 == 0 {
                write(&f, &"m".repeat(round + 1));
            } else if f.exists() {
                fs::remove_file(&f).unwrap();
            }
        }
        snaps.push(run_backup(&repo, &src, &format!("2040-02-0{}T00:00:00Z", round + 1)));
    }
    let s = store(&repo);
    let trees: Vec<SnapshotTree> = snaps.iter().map(|i| SnapshotTree::open(&s, i)).collect();
    let is_log = |name: &[u8]| name.ends_with(b".log");
    for order in [vec![0, 1, 2, 3, 4, 5], vec![5, 4, 3, 2, 1, 0], vec![0, 2, 4, 1, 3, 5, 0]] {
        let t: Vec<SnapshotTree> = order.iter().map(|i| trees[*i].clone()).collect();
        let (found, stats) = find_named_stats(&t, &is_log, &|_, e| is_log(&e.name)).unwrap();
        assert_eq!(histories(&found), brute_force(&t, &is_log), "order {order:?}");
        assert!(stats.dirs_skipped > 0, "order {order:?}: {stats:?}");
    }
}
