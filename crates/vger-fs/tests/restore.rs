//! Restoring a walked tree and comparing it with the original.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::fs::{self, File};
use std::os::unix::fs::{symlink, FileExt, MetadataExt, PermissionsExt};

use common::*;
use vger_format::entry::{Entry, EntryKind};
use vger_fs::{RestoreOptions, RestoreTarget, WalkOptions, TEMP_PREFIX};

const MIB: u64 = 1 << 20;

/// Builds a tree with every kind of entry and tricky metadata.
fn build_source(src: &std::path::Path) -> bool {
    write(src.join("empty"), b"");
    write(src.join("plain.txt"), b"hello world\n");
    write(src.join("setuid"), b"#!/bin/sh\n");
    fs::set_permissions(src.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    write(src.join("private"), b"secret");
    fs::set_permissions(src.join("private"), fs::Permissions::from_mode(0o600)).unwrap();
    write(src.join("closed/deep/file"), &vec![7u8; 3 * MIB as usize + 17]);
    fs::set_permissions(src.join("closed"), fs::Permissions::from_mode(0o700)).unwrap();
    write(src.join("readonly/file"), b"ro");
    symlink("plain.txt", src.join("link")).unwrap();
    symlink("/nonexistent/dangling", src.join("dangling")).unwrap();
    fs::hard_link(src.join("plain.txt"), src.join("closed/hard")).unwrap();
    fs::hard_link(src.join("plain.txt"), src.join("zz-hard")).unwrap();
    let sparse = File::create(src.join("sparse")).unwrap();
    sparse.set_len(64 * MIB).unwrap();
    sparse.write_all_at(&vec![0xabu8; MIB as usize], 32 * MIB).unwrap();
    drop(sparse);
    write(src.join(os(b"caf\xe9")).join(os(b"\xff")), b"bytes");
    mknod(&src.join("fifo"), libc::S_IFIFO | 0o644, 0);
    mknod(&src.join("null"), libc::S_IFCHR | 0o666, libc::makedev(1, 3));
    let xattrs = try_set_xattr(&src.join("plain.txt"), "user.test", b"v1")
        && try_set_xattr(&src.join("closed"), "user.dir", b"d");
    if !xattrs {
        eprintln!("note: no user xattrs on /tmp; the round trip does not check them");
    }
    lchown(&src.join("private"), 1234, 5678);
    lchown(&src.join("link"), 1234, 5678);
    lchown(&src.join("closed/deep"), 1234, 5678);
    lchown(&src.join("setuid"), 1234, 5678);
    fs::set_permissions(src.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    // Distinct, exact times, children before parents.
    let mut t = 1_500_000_000_123_456_789i64;
    for p in [
        "closed/deep/file",
        "closed/deep",
        "closed/hard",
        "closed",
        "link",
        "dangling",
        "fifo",
        "readonly/file",
        "sparse",
    ] {
        set_mtime(&src.join(p), t);
        t += 1_000_000_007;
    }
    fs::set_permissions(src.join("readonly"), fs::Permissions::from_mode(0o555)).unwrap();
    xattrs
}

/// The entry fields a restore must reproduce (not ino/dev/ctime).
fn restorable(e: &Entry) -> Entry {
    Entry { ino: 0, dev: 0, ctime: 0, ..e.clone() }
}

#[test]
fn round_trip_restores_everything() {
    if !is_root() {
        eprintln!("note: not root; skipping the full round trip");
        return;
    }
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let xattrs = build_source(&src);
    let opts = WalkOptions { xattrs: true, ..Default::default() };
    let (items, errors) = walk(vec![contents_root(&src)], opts.clone());
    assert!(errors.is_empty(), "{errors:?}");

    let dest = t.path().join("restored/here");
    let mut target = RestoreTarget::new(&dest, RestoreOptions::default()).unwrap();
    restore_items(&mut target, &items);
    let summary = target.finish().unwrap();
    assert_eq!(summary.xattrs_skipped, 0);

    let (back, errors) = walk(vec![contents_root(&dest)], opts);
    assert!(errors.is_empty(), "{errors:?}");
    let want: Vec<Entry> = items.iter().map(|i| restorable(&i.entry)).collect();
    let got: Vec<Entry> = back.iter().map(|i| restorable(&i.entry)).collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }

    // Spot checks of what the comparison above covers, to be explicit.
    for p in ["plain.txt", "closed/deep/file", "sparse", "setuid", "empty"] {
        assert_eq!(fs::read(src.join(p)).unwrap(), fs::read(dest.join(p)).unwrap(), "{p}");
    }
    assert_eq!(fs::read(dest.join(os(b"caf\xe9/\xff"))).unwrap(), b"bytes");
    let setuid = fs::metadata(dest.join("setuid")).unwrap();
    assert_eq!((setuid.mode() & 0o7777, setuid.uid(), setuid.gid()), (0o4755, 1234, 5678));
    assert_eq!(fs::symlink_metadata(dest.join("link")).unwrap().uid(), 1234);
    assert_eq!(fs::read_link(dest.join("dangling")).unwrap().as_os_str(), "/nonexistent/dangling");
    let plain = fs::metadata(dest.join("plain.txt")).unwrap();
    assert_eq!(plain.nlink(), 3);
    assert_eq!(fs::metadata(dest.join("closed/hard")).unwrap().ino(), plain.ino());
    assert_eq!(fs::metadata(dest.join("zz-hard")).unwrap().ino(), plain.ino());
    let sparse = fs::metadata(dest.join("sparse")).unwrap();
    assert_eq!(sparse.len(), 64 * MIB);
    assert!(sparse.blocks() * 512 <= 2 * MIB, "sparse file takes {} bytes", sparse.blocks() * 512);
    assert_eq!(fs::metadata(dest.join("null")).unwrap().rdev(), libc::makedev(1, 3));
    assert_eq!(fs::metadata(dest.join("readonly")).unwrap().mode() & 0o7777, 0o555);
    let closed = fs::metadata(dest.join("closed")).unwrap();
    assert_eq!(closed.mtime() * 1_000_000_000 + closed.mtime_nsec(), find(&items, b"closed").mtime);
    if xattrs {
        assert_eq!(xattr::get(dest.join("plain.txt"), "user.test").unwrap().as_deref(), Some(&b"v1"[..]));
        assert_eq!(xattr::get(dest.join("closed"), "user.dir").unwrap().as_deref(), Some(&b"d"[..]));
    }
    let leftovers: Vec<_> = list_all(&dest).into_iter().filter(|p| p.to_string_lossy().contains(TEMP_PREFIX)).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// As root, each option takes its part of the exact recreation away:
/// no owners, no setuid/setgid/sticky bits, no device nodes or FIFOs, no
/// xattrs (a `security.*` one included); everything else is as stored.
#[test]
fn a_narrowed_restore_leaves_out_owners_special_bits_devices_and_xattrs() {
    if !is_root() {
        eprintln!("note: not root; skipping the narrowed restore");
        return;
    }
    let t = tempdir();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let xattrs = build_source(&src);
    fs::create_dir(src.join("shared")).unwrap();
    fs::set_permissions(src.join("shared"), fs::Permissions::from_mode(0o3775)).unwrap();
    let security = try_set_xattr(&src.join("setuid"), "security.vger-test", b"label");
    let (items, errors) = walk(vec![contents_root(&src)], WalkOptions { xattrs: true, ..Default::default() });
    assert!(errors.is_empty(), "{errors:?}");

    let dest = t.path().join("narrowed");
    let opts = RestoreOptions { owners: false, xattrs: false, special_files: false, special_bits: false };
    let mut target = RestoreTarget::new(&dest, opts).unwrap();
    for item in &items {
        if matches!(item.entry.kind, EntryKind::Fifo | EntryKind::Char | EntryKind::Block) {
            let outcome = target.create_special(&item.entry).unwrap();
            assert!(matches!(outcome, vger_fs::SpecialOutcome::Skipped(_)), "{outcome:?}");
        } else {
            restore_items(&mut target, std::slice::from_ref(item));
        }
    }
    target.finish().unwrap();

    let setuid = fs::metadata(dest.join("setuid")).unwrap();
    assert_eq!((setuid.mode() & 0o7777, setuid.uid(), setuid.gid()), (0o755, 0, 0));
    assert_eq!(fs::metadata(dest.join("shared")).unwrap().mode() & 0o7777, 0o775);
    assert_eq!(fs::metadata(dest.join("private")).unwrap().uid(), 0);
    assert_eq!(fs::metadata(dest.join("private")).unwrap().mode() & 0o7777, 0o600, "plain bits stay");
    for skipped in ["null", "fifo"] {
        assert!(fs::symlink_metadata(dest.join(skipped)).is_err(), "{skipped} was created");
    }
    assert_eq!(fs::read(dest.join("plain.txt")).unwrap(), b"hello world\n");
    if xattrs {
        assert_eq!(xattr::get(dest.join("plain.txt"), "user.test").unwrap(), None);
    }
    if security {
        assert_eq!(xattr::get(dest.join("setuid"), "security.vger-test").unwrap(), None);
        // The default (exact) restore does set it.
        let exact = t.path().join("exact");
        let mut target = RestoreTarget::new(&exact, RestoreOptions::default()).unwrap();
        restore_items(&mut target, &items);
        target.finish().unwrap();
        assert_eq!(xattr::get(exact.join("setuid"), "security.vger-test").unwrap().as_deref(), Some(&b"label"[..]));
        assert_eq!(fs::metadata(exact.join("shared")).unwrap().mode() & 0o7777, 0o3775);
    } else {
        eprintln!("note: security.* xattrs cannot be set here; not checked");
    }
}

#[test]
fn restoring_twice_replaces_files_in_place() {
    let t = tempdir();
    let src = t.path().join("src");
    write(src.join("d/f"), b"new contents");
    symlink("f", src.join("d/l")).unwrap();
    fs::hard_link(src.join("d/f"), src.join("d/h")).unwrap();
    let (items, _) = walk(vec![contents_root(&src)], WalkOptions::default());
    let dest = t.path().join("dest");
    write(dest.join("d/f"), b"old, longer contents that must go");
    symlink("/etc/passwd", dest.join("d/l")).unwrap();
    write(dest.join("d/unrelated"), b"kept");
    for _ in 0..2 {
        let mut target = RestoreTarget::new(&dest, RestoreOptions::default()).unwrap();
        restore_items(&mut target, &items);
        target.finish().unwrap();
        assert_eq!(fs::read(dest.join("d/f")).unwrap(), b"new contents");
        assert_eq!(fs::read_link(dest.join("d/l")).unwrap().as_os_str(), "f");
        assert_eq!(fs::metadata(dest.join("d/h")).unwrap().ino(), fs::metadata(dest.join("d/f")).unwrap().ino());
        assert_eq!(fs::read(dest.join("d/unrelated")).unwrap(), b"kept");
    }
}

#[test]
fn directory_times_survive_children_written_later() {
    let t = tempdir();
    let dest = t.path().join("dest");
    let mut target = RestoreTarget::new(&dest, RestoreOptions::default()).unwrap();
    let mut dir = Entry::new(b"d".to_vec(), EntryKind::Dir);
    dir.mode = 0o750;
    dir.mtime = 1_234_567_890_987_654_321;
    target.create_dir(&dir).unwrap();
    let mut sub = Entry::new(b"d/sub".to_vec(), EntryKind::Dir);
    sub.mode = 0o500;
    sub.mtime = 1_000_000_000_000_000_001;
    target.create_dir(&sub).unwrap();
    // Files written from worker threads, finished after all directories
    // were created, as a parallel restore does.
    let mut writers = Vec::new();
    for i in 0..4 {
        let mut e = Entry::new(format!("d/sub/f{i}").into_bytes(), EntryKind::File);
        e.mode = 0o644;
        e.size = 5;
        e.mtime = -1_500_000_000; // before the epoch, with nanoseconds
        writers.push((target.begin_file(&e).unwrap(), e));
    }
    let handles: Vec<_> = writers
        .into_iter()
        .map(|(mut w, e)| {
            std::thread::spawn(move || {
                w.write_at(0, b"hello").unwrap();
                w.finish(&e).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    target.finish().unwrap();
    let md = fs::metadata(dest.join("d")).unwrap();
    assert_eq!(md.mtime() * 1_000_000_000 + md.mtime_nsec(), dir.mtime);
    assert_eq!(md.mode() & 0o7777, 0o750);
    let md = fs::metadata(dest.join("d/sub")).unwrap();
    assert_eq!(md.mtime() * 1_000_000_000 + md.mtime_nsec(), sub.mtime);
    assert_eq!(md.mode() & 0o7777, 0o500);
    let f = fs::metadata(dest.join("d/sub/f0")).unwrap();
    assert_eq!(f.mtime() * 1_000_000_000 + f.mtime_nsec(), -1_500_000_000);
    assert_eq!(fs::read(dest.join("d/sub/f3")).unwrap(), b"hello");
}

/// A target at `dest` in which the restore made folder `d` itself.
fn target_with_fresh_folder(dest: &std::path::Path) -> RestoreTarget {
    let mut target = RestoreTarget::new(dest, RestoreOptions::default()).unwrap();
    let mut dir = Entry::new(b"d".to_vec(), EntryKind::Dir);
    dir.mode = 0o755;
    target.create_dir(&dir).unwrap();
    target
}

/// In a folder the restore made itself nothing is looked up before
/// writing; what another program creates there meanwhile is still never
/// replaced: the file and the symlink are refused and it stays as it was.
#[test]
fn a_name_taken_meanwhile_in_a_fresh_folder_is_kept() {
    let t = tempdir();
    let dest = t.path().join("dest");
    let mut target = target_with_fresh_folder(&dest);
    let mut e = Entry::new(b"d/f".to_vec(), EntryKind::File);
    e.mode = 0o644;
    e.size = 3;
    let mut w = target.prepare_file(&e).unwrap().create().unwrap();
    w.write_at(0, b"new").unwrap();
    write(dest.join("d/f"), b"someone else's");
    write(dest.join("d/l"), b"also someone else's");
    let refused = w.finish(&e).unwrap_err().to_string();
    assert!(refused.contains("another program created this name"), "{refused}");
    let mut l = Entry::new(b"d/l".to_vec(), EntryKind::Symlink);
    l.target = Some(b"f".to_vec());
    let refused = target.create_symlink(&l).unwrap_err().to_string();
    assert!(refused.contains("another program created this name"), "{refused}");
    // A name still free is written as usual.
    let mut g = Entry::new(b"d/g".to_vec(), EntryKind::File);
    g.mode = 0o600;
    g.size = 2;
    let mut w = target.prepare_file(&g).unwrap().create().unwrap();
    w.write_at(0, b"ok").unwrap();
    w.finish(&g).unwrap();
    target.finish().unwrap();
    assert_eq!(fs::read(dest.join("d/f")).unwrap(), b"someone else's");
    assert_eq!(fs::read(dest.join("d/l")).unwrap(), b"also someone else's");
    assert_eq!(fs::read(dest.join("d/g")).unwrap(), b"ok");
    let names: Vec<_> = fs::read_dir(dest.join("d")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "no temporary file left: {names:?}");
}

/// A file made in a folder of the restore's own gets its owner, group and
/// mode as it is created when they come out right; they come out right
/// also where they would not (a folder under a setgid one, whose group a
/// new file takes; bits the umask takes away; setuid).
#[test]
fn owner_group_and_mode_are_exact_in_new_folders_under_a_setgid_one() {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let t = tempdir();
    let dest = t.path().join("dest");
    fs::create_dir(&dest).unwrap();
    if root {
        std::os::unix::fs::chown(&dest, None, Some(54321)).unwrap();
    }
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o2775)).unwrap();
    let mut target = RestoreTarget::new(&dest, RestoreOptions::default()).unwrap();
    let mut dir = Entry::new(b"d".to_vec(), EntryKind::Dir);
    dir.mode = 0o755;
    target.create_dir(&dir).unwrap();
    // SAFETY: getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let modes = [0o640, 0o666, 0o4755, 0o600];
    for (i, mode) in modes.iter().enumerate() {
        let mut e = Entry::new(format!("d/f{i}").into_bytes(), EntryKind::File);
        (e.mode, e.uid, e.gid, e.size) = (*mode, uid, gid, 1);
        let mut w = target.prepare_file(&e).unwrap().create().unwrap();
        w.write_at(0, b"x").unwrap();
        w.finish(&e).unwrap();
    }
    target.finish().unwrap();
    for (i, mode) in modes.iter().enumerate() {
        let md = fs::symlink_metadata(dest.join(format!("d/f{i}"))).unwrap();
        assert_eq!(md.mode() & 0o7777, *mode, "f{i}");
        if root {
            assert_eq!((md.uid(), md.gid()), (uid, gid), "f{i}");
        }
    }
}

/// A file being written in a folder the restore made is under no name
/// (or a temporary one, where the file system cannot make unnamed files)
/// until it is complete: one cut off there is never taken for a restored
/// file by the next restore.
#[test]
fn a_file_in_a_fresh_folder_has_its_name_only_once_complete() {
    let t = tempdir();
    let dest = t.path().join("dest");
    let mut target = target_with_fresh_folder(&dest);
    let mut e = Entry::new(b"d/f".to_vec(), EntryKind::File);
    (e.mode, e.size, e.mtime) = (0o644, 5, 1_600_000_000_000_000_000);
    let mut w = target.prepare_file(&e).unwrap().create().unwrap();
    w.write_at(0, b"whole").unwrap();
    assert!(fs::symlink_metadata(dest.join("d/f")).is_err(), "named before it was complete");
    w.finish(&e).unwrap();
    let md = fs::symlink_metadata(dest.join("d/f")).unwrap();
    assert_eq!((md.len(), md.mode() & 0o7777, md.mtime()), (5, 0o644, 1_600_000_000));
    let names: Vec<_> = fs::read_dir(dest.join("d")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["f"]);
    target.finish().unwrap();
}

#[test]
fn aborted_and_dropped_writers_leave_nothing() {
    let t = tempdir();
    let dest = t.path().join("dest");
    let mut target = RestoreTarget::new(&dest, RestoreOptions::default()).unwrap();
    let e = Entry::new(b"a/f".to_vec(), EntryKind::File);
    let mut w = target.begin_file(&e).unwrap();
    w.write_at(0, b"partial").unwrap();
    w.abort();
    let w = target.begin_file(&e).unwrap();
    drop(w);
    target.finish().unwrap();
    assert_eq!(list_all(&dest), [std::path::PathBuf::from("a")]);
}

#[test]
fn sockets_and_disabled_special_files_are_skipped() {
    let t = tempdir();
    let dest = t.path().join("dest");
    let opts = RestoreOptions { owners: false, xattrs: false, special_files: false, special_bits: true };
    let mut target = RestoreTarget::new(&dest, opts).unwrap();
    let sock = Entry::new(b"sock".to_vec(), EntryKind::Socket);
    assert!(matches!(target.create_special(&sock).unwrap(), vger_fs::SpecialOutcome::Skipped(_)));
    let fifo = Entry::new(b"fifo".to_vec(), EntryKind::Fifo);
    assert!(matches!(target.create_special(&fifo).unwrap(), vger_fs::SpecialOutcome::Skipped(_)));
    target.finish().unwrap();
    assert!(list_all(&dest).is_empty());
}
