//! The walker on real trees.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::process::Command;
use std::sync::Arc;

use common::*;
use vger_format::entry::EntryKind;
use vger_fs::{cmp_paths, entry_from_metadata, FsError, OwnerNames, WalkOptions, WalkRoot, Walker};

#[test]
fn order_is_component_wise_and_dirs_come_first() {
    let t = tempdir();
    let d = t.path();
    for f in ["a-b", "a.b", "a/b/c", "a/a", "b", "A", "a/b-c", "z/y/x/w"] {
        write(d.join(f), f.as_bytes());
    }
    fs::create_dir(d.join("empty")).unwrap();
    let (items, errors) = walk(vec![contents_root(d)], WalkOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    let got = paths(&items);
    let want = ["A", "a", "a/a", "a/b", "a/b/c", "a/b-c", "a-b", "a.b", "b", "empty", "z", "z/y", "z/y/x", "z/y/x/w"];
    assert_eq!(got, want);
    let mut sorted: Vec<&[u8]> = items.iter().map(|i| &i.entry.path[..]).collect();
    sorted.sort_by(|x, y| cmp_paths(x, y));
    assert!(sorted.iter().zip(&items).all(|(s, i)| *s == &i.entry.path[..]));
    let a = find(&items, b"a");
    assert_eq!(a.kind, EntryKind::Dir);
    let c = find(&items, b"a/b/c");
    assert_eq!((c.kind, c.size), (EntryKind::File, 5));
    let md = fs::metadata(d.join("a/b/c")).unwrap();
    assert_eq!(c.mtime, md.mtime() * 1_000_000_000 + md.mtime_nsec());
    assert_eq!((c.ino, c.dev, c.mode), (md.ino(), md.dev(), md.mode() & 0o7777));
    assert!(c.chunks.is_empty());
    assert_eq!(items.iter().find(|i| i.entry.path == b"a/b/c").unwrap().abs, d.join("a/b/c"));
}

#[test]
fn several_roots_share_ancestors() {
    let t = tempdir();
    let home = t.path().join("home");
    write(home.join("me/docs/report.txt"), b"r");
    write(home.join("me/pics/cat.jpg"), b"c");
    write(home.join("me/music/not-backed-up"), b"m");
    write(home.join("other/x"), b"x");
    let roots = ["me/pics", "other", "me/docs"]
        .iter()
        .map(|r| {
            let abs = home.join(r);
            WalkRoot { rel: rel_of(&abs), abs }
        })
        .collect();
    let (items, errors) = walk(roots, WalkOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    let base = String::from_utf8(rel_of(t.path())).unwrap();
    let mut want = Vec::new();
    let mut prefix = String::new();
    for comp in base.split('/') {
        prefix = if prefix.is_empty() { comp.to_string() } else { format!("{prefix}/{comp}") };
        want.push(prefix.clone());
    }
    for p in [
        "home",
        "home/me",
        "home/me/docs",
        "home/me/docs/report.txt",
        "home/me/pics",
        "home/me/pics/cat.jpg",
        "home/other",
        "home/other/x",
    ] {
        want.push(format!("{base}/{p}"));
    }
    assert_eq!(paths(&items), want);
    // Ancestors carry the metadata of the real directories.
    let me = find(&items, format!("{base}/home/me").as_bytes());
    let md = fs::metadata(home.join("me")).unwrap();
    assert_eq!((me.kind, me.ino, me.mtime), (EntryKind::Dir, md.ino(), md.mtime() * 1_000_000_000 + md.mtime_nsec()));
    let tmp = find(&items, b"tmp");
    assert_eq!(tmp.ino, fs::metadata("/tmp").unwrap().ino());
}

#[test]
fn contents_roots_merge_at_the_top() {
    let t = tempdir();
    write(t.path().join("one/a"), b"1");
    write(t.path().join("one/c/1"), b"1");
    write(t.path().join("two/b"), b"2");
    write(t.path().join("two/c/2"), b"2");
    let (items, errors) =
        walk(vec![contents_root(&t.path().join("two")), contents_root(&t.path().join("one"))], WalkOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(paths(&items), ["a", "b", "c", "c/1", "c/2"]);
}

#[test]
fn overlapping_roots_are_walked_once() {
    let t = tempdir();
    let a = t.path().join("a");
    write(a.join("b/c/file"), b"f");
    write(a.join("b/d"), b"d");
    let roots =
        vec![WalkRoot { abs: a.join("b/c"), rel: b"a/b/c".to_vec() }, WalkRoot { abs: a.clone(), rel: b"a".to_vec() }];
    let (items, errors) = walk(roots, WalkOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(paths(&items), ["a", "a/b", "a/b/c", "a/b/c/file", "a/b/d"]);
}

#[test]
fn file_root_is_one_entry_named_by_its_file_name() {
    let t = tempdir();
    write(t.path().join("notes.txt"), b"hello");
    symlink("notes.txt", t.path().join("link")).unwrap();
    let (items, _) = walk(
        vec![contents_root(&t.path().join("notes.txt")), contents_root(&t.path().join("link"))],
        WalkOptions::default(),
    );
    assert_eq!(paths(&items), ["link", "notes.txt"]);
    assert_eq!(items[1].entry.size, 5);
    assert_eq!(items[0].entry.kind, EntryKind::Symlink);
}

#[test]
fn missing_root_is_a_clear_error() {
    let err =
        Walker::new(vec![contents_root("/nonexistent-vger-path/x".as_ref())], WalkOptions::default()).err().unwrap();
    assert!(matches!(err, FsError::SourceMissing(_)));
    assert_eq!(err.to_string(), "source path /nonexistent-vger-path/x does not exist");
}

#[test]
fn a_file_vanishing_during_the_walk_is_reported_and_the_walk_goes_on() {
    let t = tempdir();
    for i in 0..50 {
        write(t.path().join(format!("f{i:02}")), b"x");
    }
    let mut walker = Walker::new(vec![contents_root(t.path())], WalkOptions::default()).unwrap();
    let first = walker.next().unwrap().unwrap();
    assert_eq!(first.entry.path, b"f00");
    fs::remove_file(t.path().join("f25")).unwrap();
    let rest: Vec<_> = walker.collect();
    let errors: Vec<_> = rest.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, t.path().join("f25"));
    assert_eq!(errors[0].kind, std::io::ErrorKind::NotFound);
    assert_eq!(rest.iter().filter(|r| r.is_ok()).count(), 48);
}

/// A directory deleted after its entry was read (and the directory opened)
/// is reported as not found, once, and the walk goes on.
#[test]
fn a_directory_vanishing_during_the_walk_is_reported() {
    let t = tempdir();
    write(t.path().join("a/b/x"), b"x");
    write(t.path().join("c/y"), b"y");
    let mut walker = Walker::new(vec![contents_root(t.path())], WalkOptions::default()).unwrap();
    assert_eq!(walker.next().unwrap().unwrap().entry.path, b"a");
    assert_eq!(walker.next().unwrap().unwrap().entry.path, b"a/b");
    fs::remove_dir_all(t.path().join("a/b")).unwrap();
    let rest: Vec<_> = walker.collect();
    let errors: Vec<_> = rest.iter().filter_map(|r| r.as_ref().err()).map(|e| (e.path.clone(), e.kind)).collect();
    assert_eq!(errors, [(t.path().join("a/b"), std::io::ErrorKind::NotFound)], "{rest:?}");
    let ok: Vec<_> = rest.iter().filter_map(|r| r.as_ref().ok()).map(|i| i.entry.display_path()).collect();
    assert_eq!(ok, ["c", "c/y"]);
}

/// Every level reads through the right directory: a symlink's target
/// relative to its own directory (the same name elsewhere is a symlink to
/// another target, or a file), a directory's xattrs from itself (its
/// parent has other values), a file's by path; and all as the path-based
/// `entry_from_metadata` reads them.
#[test]
fn nested_directories_xattrs_and_link_targets_are_read() {
    let t = tempdir();
    let d = t.path();
    write(d.join("a/b/c/f"), b"deep");
    write(d.join("a/b/c/link"), b"a file named like the symlinks");
    write(d.join("a/b/f"), b"f");
    symlink("../link-b", d.join("a/b/link")).unwrap();
    symlink("target-a", d.join("a/link")).unwrap();
    symlink("target-top", d.join("link")).unwrap();
    let have_xattrs = try_set_xattr(&d.join("a/b"), "user.dir", b"b");
    if have_xattrs {
        assert!(try_set_xattr(&d.join("a"), "user.dir", b"a"));
        assert!(try_set_xattr(&d.join("a/b/c/f"), "user.file", b"f\0bin"));
    } else {
        eprintln!("note: /tmp does not support user xattrs; checking paths and targets only");
    }
    type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;
    let user_xattrs = |e: &vger_format::entry::Entry| -> Xattrs {
        e.xattrs.iter().filter(|x| x.0.starts_with(b"user.")).map(|x| (x.0.clone(), x.1.clone())).collect()
    };
    let xa = |name: &[u8], value: &[u8]| if have_xattrs { vec![(name.to_vec(), value.to_vec())] } else { vec![] };

    use EntryKind::{Dir, File, Symlink};
    let want: Vec<(&str, EntryKind, Option<&[u8]>, Xattrs)> = vec![
        ("a", Dir, None, xa(b"user.dir", b"a")),
        ("a/b", Dir, None, xa(b"user.dir", b"b")),
        ("a/b/c", Dir, None, vec![]),
        ("a/b/c/f", File, None, xa(b"user.file", b"f\0bin")),
        ("a/b/c/link", File, None, vec![]),
        ("a/b/f", File, None, vec![]),
        ("a/b/link", Symlink, Some(b"../link-b"), vec![]),
        ("a/link", Symlink, Some(b"target-a"), vec![]),
        ("link", Symlink, Some(b"target-top"), vec![]),
    ];
    let opts = WalkOptions { xattrs: true, file_xattrs_later: false, ..Default::default() };
    let (items, errors) = walk(vec![contents_root(d)], opts);
    assert!(errors.is_empty(), "{errors:?}");
    let got: Vec<_> = items
        .iter()
        .map(|i| (i.entry.display_path(), i.entry.kind, i.entry.target.as_deref(), user_xattrs(&i.entry)))
        .collect();
    let want_owned: Vec<_> = want.iter().map(|(p, k, t, x)| (p.to_string(), *k, *t, x.clone())).collect();
    assert_eq!(got, want_owned);
    let mut owners = OwnerNames::new();
    for i in &items {
        assert_eq!(i.abs, d.join(i.entry.display_path()));
        let md = fs::symlink_metadata(&i.abs).unwrap();
        let by_path = entry_from_metadata(i.entry.path.clone(), &i.abs, &md, &mut owners, true).unwrap();
        assert_eq!(i.entry, by_path, "{}", i.entry.display_path());
    }

    // With the files' xattrs left for later, the directories' are still read.
    let opts = WalkOptions { xattrs: true, file_xattrs_later: true, ..Default::default() };
    let (later, errors) = walk(vec![contents_root(d)], opts);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(paths(&later), paths(&items));
    for (l, i) in later.iter().zip(&items) {
        let want = if l.entry.kind == File { vec![] } else { user_xattrs(&i.entry) };
        assert_eq!(user_xattrs(&l.entry), want, "{}", l.entry.display_path());
        assert_eq!(l.entry.target, i.entry.target);
    }
}

#[test]
fn hard_links_name_their_first_path() {
    let t = tempdir();
    write(t.path().join("a/f"), b"data");
    fs::hard_link(t.path().join("a/f"), t.path().join("a/g")).unwrap();
    fs::hard_link(t.path().join("a/f"), t.path().join("b")).unwrap();
    write(t.path().join("single"), b"s");
    let (items, _) = walk(vec![contents_root(t.path())], WalkOptions::default());
    let f = find(&items, b"a/f");
    assert_eq!((f.kind, f.size, f.target.as_deref()), (EntryKind::File, 4, None));
    for p in [&b"a/g"[..], b"b"] {
        let e = find(&items, p);
        assert_eq!(e.kind, EntryKind::Hardlink);
        assert_eq!(e.target.as_deref(), Some(&b"a/f"[..]));
        assert_eq!(e.size, 0);
    }
    assert_eq!(find(&items, b"single").kind, EntryKind::File);
}

#[test]
fn symlinks_are_kept_verbatim_and_not_followed() {
    let t = tempdir();
    write(t.path().join("dir/inner"), b"i");
    symlink("nowhere/../x", t.path().join("dangling")).unwrap();
    symlink("/etc/passwd", t.path().join("absolute")).unwrap();
    symlink("dir", t.path().join("to-dir")).unwrap();
    let (items, errors) = walk(vec![contents_root(t.path())], WalkOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(paths(&items), ["absolute", "dangling", "dir", "dir/inner", "to-dir"]);
    assert_eq!(find(&items, b"dangling").target.as_deref(), Some(&b"nowhere/../x"[..]));
    assert_eq!(find(&items, b"absolute").target.as_deref(), Some(&b"/etc/passwd"[..]));
    assert_eq!(find(&items, b"to-dir").kind, EntryKind::Symlink);
}

#[test]
fn non_utf8_names() {
    let t = tempdir();
    write(t.path().join(os(b"caf\xe9")).join(os(b"\xff\xfe")), b"x");
    let (items, _) = walk(vec![contents_root(t.path())], WalkOptions::default());
    let got: Vec<&[u8]> = items.iter().map(|i| &i.entry.path[..]).collect();
    assert_eq!(got, [&b"caf\xe9"[..], b"caf\xe9/\xff\xfe"]);
}

#[test]
fn xattrs_are_read_sorted_when_asked() {
    let t = tempdir();
    let f = t.path().join("f");
    write(&f, b"x");
    if !try_set_xattr(&f, "user.zeta", b"z") {
        eprintln!("note: /tmp does not support user xattrs; skipping");
        return;
    }
    try_set_xattr(&f, "user.test", b"value\0bin");
    let (items, _) = walk(vec![contents_root(t.path())], WalkOptions { xattrs: true, ..Default::default() });
    let x: Vec<(&[u8], &[u8])> =
        items[0].entry.xattrs.iter().filter(|x| x.0.starts_with(b"user.")).map(|x| (&x.0[..], &x.1[..])).collect();
    assert_eq!(x, [(&b"user.test"[..], &b"value\0bin"[..]), (&b"user.zeta"[..], &b"z"[..])]);
    let (items, _) = walk(vec![contents_root(t.path())], WalkOptions::default());
    assert!(items[0].entry.xattrs.is_empty());
}

#[test]
fn fifo_and_char_device() {
    if !is_root() {
        eprintln!("note: not root; skipping device test");
        return;
    }
    let t = tempdir();
    mknod(&t.path().join("fifo"), libc::S_IFIFO | 0o640, 0);
    let null = libc::makedev(1, 3);
    mknod(&t.path().join("null"), libc::S_IFCHR | 0o666, null);
    let (items, _) = walk(vec![contents_root(t.path())], WalkOptions::default());
    let fifo = find(&items, b"fifo");
    assert_eq!((fifo.kind, fifo.mode, fifo.rdev), (EntryKind::Fifo, 0o640, 0));
    let dev = find(&items, b"null");
    assert_eq!((dev.kind, dev.rdev), (EntryKind::Char, null));
}

#[test]
fn exclude_skips_paths_and_does_not_enter_directories() {
    let t = tempdir();
    write(t.path().join("keep/a.txt"), b"a");
    write(t.path().join("keep/b.tmp"), b"b");
    write(t.path().join("cache/big"), b"c");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let exclude = Arc::new(move |rel: &[u8], is_dir: bool| {
        seen2.lock().unwrap().push((rel.to_vec(), is_dir));
        rel.ends_with(b".tmp") || (is_dir && rel == b"cache")
    });
    let (items, _) = walk(vec![contents_root(t.path())], WalkOptions { exclude: Some(exclude), ..Default::default() });
    assert_eq!(paths(&items), ["keep", "keep/a.txt"]);
    let seen = seen.lock().unwrap();
    assert!(seen.contains(&(b"cache".to_vec(), true)));
    assert!(seen.contains(&(b"keep/b.tmp".to_vec(), false)));
    assert!(!seen.iter().any(|(p, _)| p == b"cache/big"));
}

#[test]
fn one_file_system_stops_at_mount_points() {
    let t = tempdir();
    write(t.path().join("before"), b"x");
    let mnt = t.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "none"]).arg(&mnt).status().is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("note: cannot mount a tmpfs here; skipping one_file_system test");
        return;
    }
    write(mnt.join("inside"), b"i");
    let (on_one, _) = walk(vec![contents_root(t.path())], WalkOptions { one_file_system: true, ..Default::default() });
    let (all, _) = walk(vec![contents_root(t.path())], WalkOptions::default());
    let _ = Command::new("umount").arg(&mnt).status();
    assert_eq!(paths(&on_one), ["before", "mnt"]);
    assert_eq!(paths(&all), ["before", "mnt", "mnt/inside"]);
}
