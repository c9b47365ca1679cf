//! Back up a real tree (the make-corpus corpus plus generated corner cases),
//! restore it, and check that every byte and every attribute vger promises
//! to keep came back: `diff -r` plus a metadata walk of both trees.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::{assert_diff_clean, compare_trees, make_corpus, os, random_bytes, walk, TestEnv};
use filetime::FileTime;

/// Device 1:3 (`/dev/null`).
const NULL_RDEV: u64 = (1 << 8) | 3;

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// What could be created here (some need root or filesystem support).
struct Extras {
    xattrs: bool,
    devices: bool,
}

/// The corner cases make-corpus does not make, under `root/extras`.
fn add_extras(root: &Path) -> Extras {
    let x = root.join("extras");
    fs::create_dir(&x).unwrap();

    // Names that are not UTF-8, a symlink with such a target.
    fs::write(x.join(os(b"caf\xe9")), b"latin-1 name\n").unwrap();
    fs::create_dir(x.join(os(b"dir-\xff\xfe"))).unwrap();
    fs::write(x.join(os(b"dir-\xff\xfe/inner-\x80.txt")), b"inside a non-UTF-8 folder\n").unwrap();
    std::os::unix::fs::symlink(os(b"caf\xe9"), x.join("link-to-latin1")).unwrap();

    // A hard link of a non-empty file, across folders.
    fs::write(x.join("linked.bin"), random_bytes(300_000, 7)).unwrap();
    fs::create_dir(x.join("sub")).unwrap();
    fs::hard_link(x.join("linked.bin"), x.join("sub/second-name.bin")).unwrap();

    // Extended attributes on a file and a folder.
    fs::write(x.join("with-xattr.txt"), b"has attributes\n").unwrap();
    fs::write(x.join("empty-with-xattr"), b"").unwrap();
    fs::create_dir(x.join("dir-with-xattr")).unwrap();
    let xattrs = match xattr::set(x.join("with-xattr.txt"), "user.vger", b"value \x00\xff binary") {
        Ok(()) => {
            xattr::set(x.join("with-xattr.txt"), "user.second", b"").unwrap();
            // An empty file is not opened: its xattrs are read by path.
            xattr::set(x.join("empty-with-xattr"), "user.vger", b"on an empty file").unwrap();
            xattr::set(x.join("dir-with-xattr"), "user.vger", b"on a folder").unwrap();
            true
        }
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            eprintln!("note: this filesystem has no user xattrs; the xattr part is skipped");
            false
        }
        Err(e) => panic!("setting an xattr: {e}"),
    };

    // Ownership (we are root), then special bits (chown clears setuid).
    let owned = x.join("owned-1234-5678");
    fs::write(&owned, b"owned by someone else\n").unwrap();
    std::os::unix::fs::chown(&owned, Some(1234), Some(5678)).unwrap();
    fs::create_dir(x.join("owned-dir")).unwrap();
    std::os::unix::fs::chown(x.join("owned-dir"), Some(1234), Some(5678)).unwrap();
    std::os::unix::fs::symlink("owned-1234-5678", x.join("owned-link")).unwrap();
    std::os::unix::fs::lchown(x.join("owned-link"), Some(1234), Some(5678)).unwrap();

    fs::write(x.join("setuid"), b"#!/bin/sh\n").unwrap();
    chmod(&x.join("setuid"), 0o4755);
    fs::write(x.join("setgid-owned"), b"#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(x.join("setgid-owned"), Some(1234), Some(5678)).unwrap();
    chmod(&x.join("setgid-owned"), 0o2750);
    fs::write(x.join("no-permissions"), b"mode 000\n").unwrap();
    chmod(&x.join("no-permissions"), 0o000);
    fs::create_dir(x.join("sticky")).unwrap();
    fs::write(x.join("sticky/inside"), b"in a sticky folder\n").unwrap();
    chmod(&x.join("sticky"), 0o1777);
    fs::create_dir(x.join("locked-dir")).unwrap();
    fs::write(x.join("locked-dir/inside"), b"in a read-only folder\n").unwrap();
    chmod(&x.join("locked-dir"), 0o555);

    // A FIFO and a character device (root only; a container may forbid it).
    // SAFETY: valid NUL-terminated paths.
    let rc = unsafe { libc::mkfifo(cpath(&x.join("pipe.fifo")).as_ptr(), 0o640) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
    // SAFETY: as above.
    let rc = unsafe { libc::mknod(cpath(&x.join("null.dev")).as_ptr(), libc::S_IFCHR | 0o620, NULL_RDEV) };
    let devices = rc == 0;
    if !devices {
        eprintln!("note: mknod failed ({}); the device part is skipped", std::io::Error::last_os_error());
    }

    // Odd nanosecond mtimes on everything, one before 1970; folders last,
    // deepest first, so setting children does not disturb them.
    let mut all = walk(&x);
    all.sort_by_key(|(p, md)| (md.is_dir(), std::cmp::Reverse(p.components().count())));
    for (i, (rel, _)) in all.iter().enumerate() {
        let t = FileTime::from_unix_time(1_600_000_000 + i as i64 * 3601, 123_456_789 + i as u32);
        filetime::set_symlink_file_times(x.join(rel), t, t).unwrap();
    }
    let old = FileTime::from_unix_time(-1_000_000, 7);
    filetime::set_symlink_file_times(x.join("owned-1234-5678"), old, old).unwrap();
    let t = FileTime::from_unix_time(1_700_000_000, 999_999_999);
    filetime::set_symlink_file_times(&x, t, t).unwrap();
    Extras { xattrs, devices }
}

/// Regular-file bytes (each inode once), non-directory entries and folders
/// below `root`: what `vger list` should report.
fn expected_counts(root: &Path) -> (u64, u64, u64) {
    let mut seen = std::collections::HashSet::new();
    let (mut bytes, mut files, mut dirs) = (0, 0, 0);
    for (_, md) in walk(root) {
        if md.is_dir() {
            dirs += 1;
            continue;
        }
        files += 1;
        if md.is_file() && seen.insert(md.ino()) {
            bytes += md.len();
        }
    }
    (bytes, files, dirs)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(rc, 0);
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[test]
fn round_trip_of_corpus_and_corner_cases() {
    let env = TestEnv::new();
    let src = env.path("src");
    make_corpus(&src, 32);
    let extras = add_extras(&src);
    env.config_with(&[("corpus", &src)], "");
    env.init();

    let started = chrono::Utc::now();
    let report = env.backup_json();
    let ended = chrono::Utc::now();
    assert_eq!(report["stats"]["errors"], 0, "{report}");

    // `vger list --json`: what scripts rely on.
    let list = env.list_json();
    assert_eq!(list.len(), 1, "{list:?}");
    let snap = &list[0];
    let id = snap["id"].as_str().unwrap();
    assert_eq!(id.len(), 64, "{snap}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{snap}");
    assert_eq!(report["id"], snap["id"]);
    let time = chrono::DateTime::parse_from_rfc3339(snap["time"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("time is not RFC 3339 ({e}): {snap}"));
    assert!(time >= started - chrono::Duration::seconds(1) && time <= ended, "time {time} outside the backup: {snap}");
    assert_eq!(snap["source_label"], "corpus");
    assert_eq!(snap["hostname"], hostname().as_str());
    assert_eq!(snap["paths"], serde_json::json!([src.display().to_string()]));
    let (bytes, files, dirs) = expected_counts(&src);
    assert_eq!(snap["size"], bytes, "sum of file sizes: {snap}");
    assert_eq!(snap["files"], files, "{snap}");
    assert_eq!(snap["dirs"], dirs, "{snap}");

    let dest = env.path("restored");
    env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str()]).ok();

    // Bytes: diff reports any two FIFOs or devices as different, so it
    // skips them; the metadata walk below covers them.
    assert_diff_clean(&src, &dest, &["*.fifo", "*.dev"]);
    let diffs = compare_trees(&src, &dest);
    assert!(diffs.is_empty(), "the restore differs from the source:\n{}", diffs.join("\n"));

    // The walk above compares whatever is there: make sure the corner
    // cases were really there to compare.
    let x = dest.join("extras");
    assert_eq!(fs::read(x.join(os(b"caf\xe9"))).unwrap(), b"latin-1 name\n");
    assert_eq!(fs::symlink_metadata(x.join("setuid")).unwrap().mode() & 0o7777, 0o4755);
    assert_eq!(fs::symlink_metadata(x.join("sticky")).unwrap().mode() & 0o7777, 0o1777);
    let owned = fs::symlink_metadata(x.join("owned-1234-5678")).unwrap();
    assert_eq!((owned.uid(), owned.gid(), owned.mtime(), owned.mtime_nsec()), (1234, 5678, -1_000_000, 7));
    let link = fs::symlink_metadata(x.join("owned-link")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!((link.uid(), link.gid()), (1234, 5678));
    assert!(fs::symlink_metadata(x.join("pipe.fifo")).unwrap().file_type().is_fifo());
    if extras.devices {
        let dev = fs::symlink_metadata(x.join("null.dev")).unwrap();
        assert!(dev.file_type().is_char_device());
        assert_eq!(dev.rdev(), NULL_RDEV);
    }
    if extras.xattrs {
        assert_eq!(xattr::get(x.join("with-xattr.txt"), "user.vger").unwrap().unwrap(), b"value \x00\xff binary");
        assert_eq!(xattr::get(x.join("dir-with-xattr"), "user.vger").unwrap().unwrap(), b"on a folder");
        assert_eq!(xattr::get(x.join("empty-with-xattr"), "user.vger").unwrap().unwrap(), b"on an empty file");
    }
    let (a, b) = (fs::metadata(x.join("linked.bin")).unwrap(), fs::metadata(x.join("sub/second-name.bin")).unwrap());
    assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "hard link restored as a copy");
    let odd = dest.join("odd");
    let (a, b) =
        (fs::metadata(odd.join("empty.txt")).unwrap(), fs::metadata(odd.join("hardlink-to-empty.txt")).unwrap());
    assert_eq!(a.ino(), b.ino(), "corpus hard link restored as a copy");
    assert_eq!(fs::read_link(odd.join("abs-link")).unwrap(), Path::new("/etc/hostname"));
    assert_eq!(fs::read_link(odd.join("dangling-link")).unwrap(), Path::new("does/not/exist"));
    let sparse = fs::metadata(odd.join("sparse.img")).unwrap();
    assert_eq!(sparse.len(), 256 << 20);
    // Holes stay holes; the zeros inside the chunk that holds the data
    // (up to the 8 MiB maximum chunk size) may be written.
    assert!(
        sparse.blocks() * 512 <= 16 << 20,
        "the sparse file lost its holes: {} bytes allocated",
        sparse.blocks() * 512
    );
    let deep: std::path::PathBuf = (0..40).map(|k| format!("level{k}")).collect();
    assert_eq!(fs::read(odd.join(deep).join("bottom.txt")).unwrap(), b"deep\n");
    // No temporary files left behind.
    let leftovers: Vec<_> = walk(&dest)
        .into_iter()
        .filter(|(p, _)| p.file_name().unwrap().as_bytes().starts_with(b".vger-restore"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Restoring a subtree or a single file restores that and nothing else.
#[test]
fn partial_restore_of_a_subtree_and_a_file() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("a/b/deep")).unwrap();
    fs::write(src.join("a/b/c.txt"), b"c\n").unwrap();
    fs::write(src.join("a/b/deep/x.bin"), random_bytes(100_000, 1)).unwrap();
    fs::write(src.join("a/d.txt"), b"d\n").unwrap();
    fs::write(src.join("a/b-sibling.txt"), b"not under a/b\n").unwrap();
    fs::write(src.join("e.txt"), b"e\n").unwrap();
    env.config_with(&[("small", &src)], "");
    env.init();
    env.backup_json();

    let d1 = env.path("subtree");
    env.run(["restore".as_ref(), "latest".as_ref(), d1.as_os_str(), "a/b".as_ref()]).ok();
    let got: Vec<String> = walk(&d1).iter().map(|(p, _)| p.display().to_string()).collect();
    assert_eq!(got, ["a", "a/b", "a/b/c.txt", "a/b/deep", "a/b/deep/x.bin"]);
    assert_eq!(fs::read(d1.join("a/b/deep/x.bin")).unwrap(), fs::read(src.join("a/b/deep/x.bin")).unwrap());
    assert!(compare_trees(&src.join("a/b"), &d1.join("a/b")).is_empty());

    let d2 = env.path("single");
    env.run(["restore".as_ref(), "latest".as_ref(), d2.as_os_str(), "/a/d.txt".as_ref()]).ok();
    let got: Vec<String> = walk(&d2).iter().map(|(p, _)| p.display().to_string()).collect();
    assert_eq!(got, ["a", "a/d.txt"]);
    assert_eq!(fs::read(d2.join("a/d.txt")).unwrap(), b"d\n");

    // A path that is not in the snapshot is an error, not an empty success.
    let d3 = env.path("nothing");
    env.run(["restore".as_ref(), "latest".as_ref(), d3.as_os_str(), "zzz".as_ref()])
        .one_line_error(&["none of the given paths"]);
}

/// A missing path under a folder that is in the snapshot is just as
/// missing: restore must say so rather than create the folder and succeed.
#[test]
fn partial_restore_of_a_missing_path_below_an_existing_folder() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("a")).unwrap();
    fs::write(src.join("a/d.txt"), b"d\n").unwrap();
    env.config_with(&[("small", &src)], "");
    env.init();
    env.backup_json();
    let dest = env.path("nothing");
    env.run(["restore".as_ref(), "latest".as_ref(), dest.as_os_str(), "a/missing".as_ref()])
        .one_line_error(&["none of the given paths"]);
    assert!(walk(&dest).is_empty(), "restore of a missing path created {:?}", walk(&dest));
}

/// Restores snapshot `snap` of `env` into a fresh folder `name` and returns
/// the xattrs of `rel` there.
fn restored_xattrs(env: &TestEnv, snap: &str, name: &str, rel: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let dest = env.path(name);
    env.run(["restore".as_ref(), snap.as_ref(), dest.as_os_str()]).ok();
    common::xattrs_of(&dest.join(rel))
}

/// An unchanged file's xattrs are taken from the parent snapshot instead of
/// being read again, but only where that cannot miss a change: a changed
/// xattr (which moves the ctime) is read, and so is every xattr when the
/// parent was made with xattrs off or in mtime-size mode.
#[test]
fn xattrs_of_unchanged_files_follow_their_changes() {
    let env = TestEnv::new();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("kept.txt"), b"the same bytes throughout\n").unwrap();
    fs::write(src.join("later.txt"), b"gets an xattr while xattrs are off\n").unwrap();
    match xattr::set(src.join("kept.txt"), "user.v", b"one") {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {
            eprintln!("note: this filesystem has no user xattrs; skipped");
            return;
        }
        Err(e) => panic!("setting an xattr: {e}"),
    }
    // Older than the parent's start by more than the 1 s margin, so the
    // parent's xattrs may stand in for reading them.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let config = |source_extra: &str, top_extra: &str| {
        env.write_config(&format!(
            "repositories:\n  - label: local\n    url: \"{}\"\nsources:\n  - label: src\n    path: \"{}\"\n{source_extra}{top_extra}",
            env.repo().display(),
            src.display()
        ))
    };
    config("", "xattrs: { enabled: false }\n");
    env.init();
    env.run(["backup"]).ok();
    xattr::set(src.join("later.txt"), "user.w", b"set while off").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // Parent made with xattrs off: its empty lists prove nothing.
    config("", "");
    env.run(["backup"]).ok();
    assert_eq!(
        restored_xattrs(&env, "latest", "r1", "later.txt"),
        vec![(b"user.w".to_vec(), b"set while off".to_vec())]
    );
    assert_eq!(restored_xattrs(&env, "latest", "r1b", "kept.txt"), vec![(b"user.v".to_vec(), b"one".to_vec())]);
    // Nothing changed: taken from the parent, and still right.
    env.run(["backup"]).ok();
    assert_eq!(restored_xattrs(&env, "latest", "r2", "kept.txt"), vec![(b"user.v".to_vec(), b"one".to_vec())]);
    // A changed value, content and mtime untouched: the ctime moved.
    let mtime = fs::metadata(src.join("kept.txt")).unwrap().modified().unwrap();
    xattr::set(src.join("kept.txt"), "user.v", b"two").unwrap();
    xattr::set(src.join("kept.txt"), "user.x", b"added").unwrap();
    assert_eq!(fs::metadata(src.join("kept.txt")).unwrap().modified().unwrap(), mtime);
    // (Old enough that the next backup could trust this one's xattrs.)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.run(["backup"]).ok();
    assert_eq!(
        restored_xattrs(&env, "latest", "r3", "kept.txt"),
        vec![(b"user.v".to_vec(), b"two".to_vec()), (b"user.x".to_vec(), b"added".to_vec())]
    );
    // mtime-size mode never trusts the parent's xattrs: ctime is not compared.
    xattr::remove(src.join("kept.txt"), "user.x").unwrap();
    config("    change_detection: mtime-size\n", "");
    env.run(["backup"]).ok();
    assert_eq!(restored_xattrs(&env, "latest", "r4", "kept.txt"), vec![(b"user.v".to_vec(), b"two".to_vec())]);
}
