//! The tree read API against real backups: a directory of 200,000 entries
//! (listing, lookups at both ends and the middle, paging, reuse of an
//! unchanged tree, a one-file change, restore), and property tests over
//! random trees and edit scripts: `diff` equals a model diff, `find`
//! equals a brute-force filter of the walk, `read_dir` and `stat` equal
//! the source.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;
use common::{run_backup, store};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use proptest::prelude::*;
use vger_engine::diff::{diff, Change};
use vger_engine::find::{find, find_named, FindChange, FindVersion};
use vger_engine::progress::Progress;
use vger_engine::repository::Repository;
use vger_engine::restore::{restore, RestoreOptions};
use vger_engine::tree::{dir, SnapshotTree};
use vger_format::entry::EntryKind;

fn init(dir: &Path) -> Repository {
    common::init(&dir.join("repo"))
}

#[test]
fn a_directory_of_200000_entries() {
    const N: usize = 200_000;
    let tmp = tempfile::tempdir().unwrap();
    let repo = init(tmp.path());
    let src = tmp.path().join("src");
    let big = src.join("big");
    fs::create_dir_all(&big).unwrap();
    let name = |i: usize| format!("entry-{i:06}");
    for i in 0..N {
        fs::File::create(big.join(name(i))).unwrap();
    }
    fs::write(src.join("small.txt"), b"small").unwrap();
    let first = run_backup(&repo, &src, "2040-01-01T00:00:00Z");

    let store = store(&repo);
    let tree = SnapshotTree::open(&store, &first);
    let big_id = tree.stat(b"big").unwrap().unwrap().tree.unwrap();
    assert!(dir::object_ids(&store, &big_id).unwrap().len() > 10, "a huge directory must be split into pages");
    assert_eq!(dir::len(&store, &big_id).unwrap(), N as u64);
    let mut count = 0;
    for (i, e) in tree.read_dir(b"big").unwrap().enumerate() {
        assert_eq!(e.unwrap().name, name(i).as_bytes());
        count += 1;
    }
    assert_eq!(count, N);
    for i in [0, 1, N / 2, N - 2, N - 1] {
        let e = tree.stat(format!("big/{}", name(i)).as_bytes()).unwrap().unwrap();
        assert_eq!((e.name, e.kind, e.size), (name(i).into_bytes(), EntryKind::File, 0));
    }
    for absent in ["big/entry-", "big/entry-1000000", "big/a", "big/zzz", "nope/x"] {
        assert!(tree.stat(absent.as_bytes()).unwrap().is_none(), "{absent}");
    }
    let page: Vec<_> =
        tree.read_dir_after(b"big", name(N / 2).as_bytes()).unwrap().take(2).map(|e| e.unwrap().name.clone()).collect();
    assert_eq!(page, vec![name(N / 2 + 1).into_bytes(), name(N / 2 + 2).into_bytes()]);

    // Nothing changed: the whole tree is the parent's.
    let second = run_backup(&repo, &src, "2040-01-02T00:00:00Z");
    assert_eq!(second.snapshot.root, first.snapshot.root);
    assert_eq!(second.snapshot.stats.added_chunks, 0);

    // One file changed: its page, the index above it and the top are new.
    fs::write(big.join(name(123_456)), b"changed").unwrap();
    let third = run_backup(&repo, &src, "2040-01-03T00:00:00Z");
    assert!(third.snapshot.stats.added_chunks <= 6, "{} new objects", third.snapshot.stats.added_chunks);
    let store = self::store(&repo);
    let (t2, t3) = (SnapshotTree::open(&store, &second), SnapshotTree::open(&store, &third));
    let mut changes = Vec::new();
    diff(&t2, &t3, b"", |item| {
        changes.push((String::from_utf8_lossy(&item.path).into_owned(), item.change));
        Ok(())
    })
    .unwrap();
    assert_eq!(changes, vec![(format!("big/{}", name(123_456)), Change::Modified)]);

    let dest = tmp.path().join("dest");
    let report = restore(&repo, &third, &dest, &RestoreOptions::default(), &Progress::default()).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(fs::read_dir(dest.join("big")).unwrap().count(), N);
    assert_eq!(fs::read(dest.join("big").join(name(123_456))).unwrap(), b"changed");
    assert_eq!(fs::read(dest.join("small.txt")).unwrap(), b"small");
}

/// A node of a model tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File { content: Vec<u8>, mode: u32, mtime: i64 },
    Dir { mode: u32, mtime: i64 },
    Link { target: Vec<u8> },
}

type Model = BTreeMap<Vec<u8>, Node>;

fn parent(path: &[u8]) -> &[u8] {
    vger_fs::split_last(path).0
}

/// Creates the model under `root`; mtimes are set last, deepest first.
fn materialize(model: &Model, root: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let at = |p: &[u8]| root.join(std::ffi::OsStr::from_bytes(p));
    fs::create_dir_all(root).unwrap();
    for (path, node) in model {
        match node {
            Node::Dir { .. } => fs::create_dir(at(path)).unwrap(),
            Node::File { content, .. } => fs::write(at(path), content).unwrap(),
            Node::Link { target } => std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), at(path)).unwrap(),
        }
    }
    for (path, node) in model.iter().rev() {
        let (mode, mtime) = match node {
            Node::Dir { mode, mtime } | Node::File { mode, mtime, .. } => (*mode, *mtime),
            Node::Link { .. } => {
                // Links get one fixed time: the model leaves it out.
                let t = filetime::FileTime::from_unix_time(1_000_000, 0);
                filetime::set_symlink_file_times(at(path), t, t).unwrap();
                continue;
            }
        };
        fs::set_permissions(at(path), fs::Permissions::from_mode(mode)).unwrap();
        let t = filetime::FileTime::from_unix_time(mtime, 0);
        filetime::set_file_mtime(at(path), t).unwrap();
    }
}

/// The changes a diff must report between two models.
fn model_diff(a: &Model, b: &Model) -> BTreeSet<(Vec<u8>, Change)> {
    let mut out = BTreeSet::new();
    for path in a.keys().chain(b.keys()) {
        let change = match (a.get(path), b.get(path)) {
            (Some(_), None) => Some(Change::Removed),
            (None, Some(_)) => Some(Change::Added),
            (Some(x), Some(y)) => match (x, y) {
                (Node::File { content: c1, mode: m1, mtime: t1 }, Node::File { content: c2, mode: m2, mtime: t2 }) => {
                    if c1 != c2 {
                        Some(Change::Modified)
                    } else if (m1, t1) != (m2, t2) {
                        Some(Change::Metadata)
                    } else {
                        None
                    }
                }
                (Node::Dir { mode: m1, mtime: t1 }, Node::Dir { mode: m2, mtime: t2 }) => {
                    ((m1, t1) != (m2, t2)).then_some(Change::Metadata)
                }
                (Node::Link { target: t1 }, Node::Link { target: t2 }) => (t1 != t2).then_some(Change::Modified),
                _ => Some(Change::Type),
            },
            (None, None) => None,
        };
        if let Some(c) = change {
            out.insert((path.clone(), c));
        }
    }
    out
}

fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![&b"a"[..], b"b", b"ab", b"a.txt", b"b-c", b"caf\xe9", b"z"]).prop_map(|s| s.to_vec()),
        "[a-d]{1,3}".prop_map(|s| s.into_bytes()),
    ]
}

fn node_strategy() -> impl Strategy<Value = Node> {
    prop_oneof![
        (
            prop::collection::vec(any::<u8>(), 0..40),
            prop::sample::select(vec![0o644u32, 0o600, 0o755]),
            1_000_000i64..1_000_100
        )
            .prop_map(|(content, mode, mtime)| Node::File { content, mode, mtime }),
        (prop::sample::select(vec![0o755u32, 0o700]), 1_000_000i64..1_000_100)
            .prop_map(|(mode, mtime)| Node::Dir { mode, mtime }),
        name_strategy().prop_map(|target| Node::Link { target }),
    ]
}

/// A random tree: each new node goes under a random existing directory.
fn model_strategy() -> impl Strategy<Value = Model> {
    prop::collection::vec((any::<prop::sample::Index>(), name_strategy(), node_strategy()), 0..25).prop_map(|items| {
        let mut model = Model::new();
        for (at, name, node) in items {
            let dirs: Vec<Vec<u8>> = std::iter::once(Vec::new())
                .chain(model.iter().filter(|(_, n)| matches!(n, Node::Dir { .. })).map(|(p, _)| p.clone()))
                .collect();
            let dir = at.get(&dirs).clone();
            let path = vger_format::tree::join_path(&dir, &name);
            model.entry(path).or_insert(node);
        }
        model
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Add(prop::sample::Index, Vec<u8>, Node),
    Remove(prop::sample::Index),
    Rename(prop::sample::Index, Vec<u8>),
    Modify(prop::sample::Index, Vec<u8>),
    Chmod(prop::sample::Index),
    Touch(prop::sample::Index, i64),
    FileToDir(prop::sample::Index),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), name_strategy(), node_strategy()).prop_map(|(i, n, node)| Edit::Add(i, n, node)),
        any::<prop::sample::Index>().prop_map(Edit::Remove),
        (any::<prop::sample::Index>(), name_strategy()).prop_map(|(i, n)| Edit::Rename(i, n)),
        (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..30)).prop_map(|(i, c)| Edit::Modify(i, c)),
        any::<prop::sample::Index>().prop_map(Edit::Chmod),
        (any::<prop::sample::Index>(), 2_000_000i64..2_000_100).prop_map(|(i, t)| Edit::Touch(i, t)),
        any::<prop::sample::Index>().prop_map(Edit::FileToDir),
    ]
}

/// Removes `path` and everything below it.
fn remove_subtree(model: &mut Model, path: &[u8]) -> Vec<(Vec<u8>, Node)> {
    let below: Vec<Vec<u8>> = model
        .keys()
        .filter(|p| *p == path || (p.starts_with(path) && p.get(path.len()) == Some(&b'/')))
        .cloned()
        .collect();
    below
        .into_iter()
        .map(|p| {
            let n = model.remove(&p).unwrap();
            (p, n)
        })
        .collect()
}

fn apply(model: &mut Model, edit: &Edit) {
    let paths: Vec<Vec<u8>> = model.keys().cloned().collect();
    let pick = |i: &prop::sample::Index| (!paths.is_empty()).then(|| i.get(&paths).clone());
    match edit {
        Edit::Add(i, name, node) => {
            let dirs: Vec<Vec<u8>> = std::iter::once(Vec::new())
                .chain(model.iter().filter(|(_, n)| matches!(n, Node::Dir { .. })).map(|(p, _)| p.clone()))
                .collect();
            let dir: &Vec<u8> = i.get(&dirs);
            let path = vger_format::tree::join_path(dir, name);
            model.entry(path).or_insert(node.clone());
        }
        Edit::Remove(i) => {
            if let Some(p) = pick(i) {
                remove_subtree(model, &p);
            }
        }
        Edit::Rename(i, name) => {
            if let Some(p) = pick(i) {
                let to = vger_format::tree::join_path(parent(&p), name);
                if !model.contains_key(&to) {
                    for (old, node) in remove_subtree(model, &p) {
                        let mut new = to.clone();
                        new.extend_from_slice(&old[p.len()..]);
                        model.insert(new, node);
                    }
                }
            }
        }
        Edit::Modify(i, content) => {
            if let Some(Node::File { content: c, .. }) = pick(i).and_then(|p| model.get_mut(&p)) {
                *c = content.clone();
            }
        }
        Edit::Chmod(i) => match pick(i).and_then(|p| model.get_mut(&p)) {
            Some(Node::File { mode, .. }) => *mode = if *mode == 0o600 { 0o644 } else { 0o600 },
            Some(Node::Dir { mode, .. }) => *mode = if *mode == 0o700 { 0o755 } else { 0o700 },
            _ => {}
        },
        Edit::Touch(i, t) => match pick(i).and_then(|p| model.get_mut(&p)) {
            Some(Node::File { mtime, .. }) | Some(Node::Dir { mtime, .. }) => *mtime = *t,
            _ => {}
        },
        Edit::FileToDir(i) => {
            if let Some(p) = pick(i) {
                if let Some(n @ Node::File { .. }) = model.get_mut(&p) {
                    *n = Node::Dir { mode: 0o755, mtime: 1_500_000 };
                    model.insert(
                        vger_format::tree::join_path(&p, b"inner"),
                        Node::File { content: b"in".to_vec(), mode: 0o644, mtime: 1_500_000 },
                    );
                }
            }
        }
    }
}

fn kind_of(node: &Node) -> EntryKind {
    match node {
        Node::File { .. } => EntryKind::File,
        Node::Dir { .. } => EntryKind::Dir,
        Node::Link { .. } => EntryKind::Symlink,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn diff_find_read_dir_and_stat_follow_the_source(
        before in model_strategy(),
        edits in prop::collection::vec(edit_strategy(), 0..8),
        needle in prop::sample::select(vec![&b"a"[..], b"b", b"c", b"."]),
    ) {
        let mut after = before.clone();
        edits.iter().for_each(|e| apply(&mut after, e));
        let tmp = tempfile::tempdir().unwrap();
        let repo = init(tmp.path());
        materialize(&before, &tmp.path().join("one"));
        let a = run_backup(&repo, &tmp.path().join("one"), "2040-01-01T00:00:00Z");
        materialize(&after, &tmp.path().join("two"));
        let b = run_backup(&repo, &tmp.path().join("two"), "2040-01-02T00:00:00Z");
        let store = store(&repo);
        let (ta, tb) = (SnapshotTree::open(&store, &a), SnapshotTree::open(&store, &b));

        let mut got = BTreeSet::new();
        diff(&ta, &tb, b"", |item| { got.insert((item.path, item.change)); Ok(()) }).unwrap();
        prop_assert_eq!(got, model_diff(&before, &after));

        // read_dir and stat equal the source.
        let dirs = std::iter::once(Vec::new()).chain(after.iter().filter(|(_, n)| matches!(n, Node::Dir { .. })).map(|(p, _)| p.clone()));
        for d in dirs {
            let listed: Vec<Vec<u8>> = tb.read_dir(&d).unwrap().map(|e| e.unwrap().name.clone()).collect();
            let want: Vec<Vec<u8>> = after.keys().filter(|p| parent(p) == d.as_slice()).map(|p| vger_fs::split_last(p).1.to_vec()).collect();
            prop_assert_eq!(listed, want);
        }
        for (path, node) in &after {
            let e = tb.stat(path).unwrap().unwrap();
            prop_assert_eq!(e.kind, kind_of(node));
            match node {
                Node::File { content, mode, mtime } => {
                    prop_assert_eq!((e.size, e.mode, e.mtime), (content.len() as u64, *mode, mtime * 1_000_000_000));
                }
                Node::Dir { mode, mtime } => prop_assert_eq!((e.mode, e.mtime), (*mode, mtime * 1_000_000_000)),
                Node::Link { target } => prop_assert_eq!(e.target.as_ref(), Some(target)),
            }
        }

        // find equals a brute-force filter of the walk of each snapshot,
        // over a history that goes back to the first tree (its directories
        // that the second changed are read again, the others carried).
        let matches = |_: &[u8], e: &vger_format::tree::TreeEntry| e.name.windows(needle.len()).any(|w| w == needle);
        let history = [ta.clone(), tb.clone(), ta.clone()];
        let found = find(&history, &matches).unwrap();
        let mut got = BTreeSet::new();
        let mut removed = BTreeSet::new();
        let mut added = BTreeSet::new();
        for f in &found {
            for v in &f.versions {
                if v.change == FindChange::Removed {
                    removed.insert((v.snapshot, f.path.clone()));
                } else {
                    got.insert((v.snapshot, f.path.clone()));
                }
                if v.change == FindChange::Added {
                    added.insert((v.snapshot, f.path.clone()));
                }
            }
        }
        // Deciding on the name first finds the same, version by version.
        let named = find_named(&history, &|name| name.windows(needle.len()).any(|w| w == needle), &matches).unwrap();
        let versions = |f: &[vger_engine::find::Found]| -> Vec<(Vec<u8>, Vec<FindVersion>)> {
            f.iter().map(|f| (f.path.clone(), f.versions.clone())).collect()
        };
        prop_assert_eq!(versions(&named), versions(&found));
        let mut want = BTreeSet::new();
        for (n, t) in history.iter().enumerate() {
            for item in t.walk(b"").unwrap() {
                let item = item.unwrap();
                if matches(&item.path, &item.entry) {
                    want.insert((n, item.path));
                }
            }
        }
        let want_removed: BTreeSet<(usize, Vec<u8>)> = want
            .iter()
            .filter(|(n, p)| *n + 1 < history.len() && !want.contains(&(n + 1, p.clone())))
            .map(|(n, p)| (n + 1, p.clone()))
            .collect();
        // Added where it did not match in the snapshot before.
        let want_added: BTreeSet<(usize, Vec<u8>)> =
            want.iter().filter(|(n, p)| *n == 0 || !want.contains(&(n - 1, p.clone()))).cloned().collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(removed, want_removed);
        prop_assert_eq!(added, want_added);
    }
}
