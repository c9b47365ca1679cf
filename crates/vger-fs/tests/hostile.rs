//! Snapshots and targets built to make a restore write outside its target.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use common::*;
use vger_format::entry::{Entry, EntryKind};
use vger_fs::{FsError, RestoreOptions, RestoreTarget, TEMP_PREFIX};

struct Setup {
    _tmp: tempfile::TempDir,
    dest: PathBuf,
    outside: PathBuf,
    target: RestoreTarget,
}

fn setup() -> Setup {
    let tmp = tempdir();
    let dest = tmp.path().join("dest");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let target = RestoreTarget::new(&dest, RestoreOptions::default()).unwrap();
    Setup { _tmp: tmp, dest, outside, target }
}

fn entry(path: &[u8], kind: EntryKind, target: Option<&[u8]>) -> Entry {
    let mut e = Entry::new(path.to_vec(), kind);
    e.mode = 0o644;
    e.target = target.map(|t| t.to_vec());
    e
}

/// Tries every way of creating `path`; all must fail.
fn try_all(target: &mut RestoreTarget, path: &[u8]) -> Vec<FsError> {
    vec![
        target.create_dir(&entry(path, EntryKind::Dir, None)).unwrap_err(),
        target.begin_file(&entry(path, EntryKind::File, None)).err().unwrap(),
        target.create_symlink(&entry(path, EntryKind::Symlink, Some(b"/etc"))).unwrap_err(),
        target.create_special(&entry(path, EntryKind::Fifo, None)).unwrap_err(),
    ]
}

fn assert_empty(dir: &Path) {
    let found = list_all(dir);
    assert!(found.is_empty(), "written outside the target: {found:?}");
}

fn no_temp_files(dir: &Path) {
    let left: Vec<_> = list_all(dir).into_iter().filter(|p| p.to_string_lossy().contains(TEMP_PREFIX)).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn invalid_paths_are_refused() {
    let mut s = setup();
    let escape = format!("{}/x", s.outside.display());
    let paths: Vec<&[u8]> =
        vec![b"../x", b"/abs", b"a/../../x", escape.as_bytes(), b"", b".", b"a//b", b"a/./b", b"a/", b"nul\0x"];
    for p in paths {
        for e in try_all(&mut s.target, p) {
            assert!(matches!(e, FsError::InvalidPath(_)), "{:?}: {e}", String::from_utf8_lossy(p));
        }
    }
    s.target.finish().unwrap();
    assert_empty(&s.outside);
    assert!(list_all(&s.dest).is_empty());
}

#[test]
fn a_symlink_from_the_snapshot_is_never_a_parent() {
    let mut s = setup();
    let out = s.outside.as_os_str().as_encoded_bytes().to_vec();
    s.target.create_symlink(&entry(b"evil", EntryKind::Symlink, Some(&out))).unwrap();
    s.target.create_dir(&entry(b"a", EntryKind::Dir, None)).unwrap();
    s.target.create_symlink(&entry(b"a/up", EntryKind::Symlink, Some(b"../.."))).unwrap();
    for p in [&b"evil/pwned"[..], b"evil/sub/deeper", b"a/up/pwned"] {
        for e in try_all(&mut s.target, p) {
            let msg = e.to_string();
            assert!(matches!(e, FsError::Refused { .. }), "{msg}");
            assert!(msg.contains("is a symlink (it would write outside the target)"), "{msg}");
        }
        let link = entry(p, EntryKind::Hardlink, Some(b"a"));
        assert!(s.target.create_hardlink(&link).is_err());
    }
    let e = s.target.begin_file(&entry(b"evil/pwned", EntryKind::File, None)).err().unwrap();
    assert_eq!(
        e.to_string(),
        "refusing to restore evil/pwned: parent evil is a symlink (it would write outside the target)"
    );
    let e = s.target.create_dir(&entry(b"a/up/x/y", EntryKind::Dir, None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "refusing to restore a/up/x/y: parent a/up is a symlink (it would write outside the target)"
    );
    s.target.finish().unwrap();
    assert_empty(&s.outside);
    no_temp_files(&s.dest);
}

#[test]
fn a_symlink_already_in_the_target_is_never_a_parent() {
    let mut s = setup();
    symlink(&s.outside, s.dest.join("pre")).unwrap();
    fs::create_dir_all(s.dest.join("x/y")).unwrap();
    symlink(&s.outside, s.dest.join("x/y/z")).unwrap();
    for p in [&b"pre/file"[..], b"x/y/z/file", b"x/y/z/a/b"] {
        for e in try_all(&mut s.target, p) {
            assert!(e.to_string().contains("is a symlink"), "{e}");
        }
    }
    s.target.finish().unwrap();
    assert_empty(&s.outside);
}

#[test]
fn a_file_in_a_parent_position_is_refused() {
    let mut s = setup();
    write(s.dest.join("plain"), b"p");
    let e = s.target.begin_file(&entry(b"plain/child", EntryKind::File, None)).err().unwrap();
    assert_eq!(e.to_string(), "refusing to restore plain/child: parent plain is not a directory");
    assert_eq!(fs::read(s.dest.join("plain")).unwrap(), b"p");
}

#[test]
fn hard_links_must_point_at_regular_files_inside() {
    let mut s = setup();
    write(s.outside.join("secret"), b"s");
    let out = s.outside.as_os_str().as_encoded_bytes().to_vec();
    let mut out_secret = out.clone();
    out_secret.extend_from_slice(b"/secret");
    s.target.create_symlink(&entry(b"evil", EntryKind::Symlink, Some(&out))).unwrap();
    s.target.create_symlink(&entry(b"evil-file", EntryKind::Symlink, Some(&out_secret))).unwrap();
    s.target.create_dir(&entry(b"d", EntryKind::Dir, None)).unwrap();
    let cases: [(&[u8], &str); 6] = [
        (b"../../etc/passwd", "refusing to restore: "),
        (b"/etc/passwd", "refusing to restore: "),
        (b"evil/secret", "parent evil is a symlink"),
        (b"evil-file", "is not a regular file"),
        (b"d", "is not a regular file"),
        (b"missing", "was not restored"),
    ];
    for (t, want) in cases {
        let e = s.target.create_hardlink(&entry(b"link", EntryKind::Hardlink, Some(t))).unwrap_err();
        assert!(e.to_string().contains(want), "{:?}: {e}", String::from_utf8_lossy(t));
    }
    s.target.finish().unwrap();
    assert!(!s.dest.join("link").exists());
    assert_eq!(fs::metadata(s.outside.join("secret")).unwrap().nlink(), 1);
    assert_eq!(list_all(&s.outside), [PathBuf::from("secret")]);
    no_temp_files(&s.dest);
}

#[test]
fn an_existing_symlink_at_the_name_is_replaced_not_followed() {
    let mut s = setup();
    write(s.outside.join("victim"), b"original");
    symlink(s.outside.join("victim"), s.dest.join("f")).unwrap();
    symlink(s.outside.join("victim"), s.dest.join("l")).unwrap();
    let e = entry(b"f", EntryKind::File, None);
    let mut w = s.target.begin_file(&e).unwrap();
    w.write_at(0, b"pwned").unwrap();
    w.finish(&Entry { size: 5, ..e }).unwrap();
    s.target.create_symlink(&entry(b"l", EntryKind::Symlink, Some(b"f"))).unwrap();
    s.target.finish().unwrap();
    assert_eq!(fs::read(s.outside.join("victim")).unwrap(), b"original");
    assert_eq!(fs::read(s.dest.join("f")).unwrap(), b"pwned");
    assert!(fs::symlink_metadata(s.dest.join("f")).unwrap().is_file());
    assert_eq!(fs::read_link(s.dest.join("l")).unwrap(), PathBuf::from("f"));
}

#[test]
fn an_existing_directory_is_never_replaced() {
    let mut s = setup();
    write(s.dest.join("dir/keep"), b"k");
    assert!(s.target.begin_file(&entry(b"dir", EntryKind::File, None)).is_err());
    let e = s.target.create_symlink(&entry(b"dir", EntryKind::Symlink, Some(b"/"))).unwrap_err();
    assert!(e.to_string().contains("a directory of that name"), "{e}");
    // A directory created after begin_file is still not replaced by finish.
    let f = entry(b"late", EntryKind::File, None);
    let w = s.target.begin_file(&f).unwrap();
    fs::create_dir(s.dest.join("late")).unwrap();
    assert!(w.finish(&f).is_err());
    s.target.finish().unwrap();
    assert_eq!(fs::read(s.dest.join("dir/keep")).unwrap(), b"k");
    no_temp_files(&s.dest);
}

#[test]
fn going_down_from_the_last_parent_checks_every_new_component() {
    let mut s = setup();
    let out = s.outside.as_os_str().as_encoded_bytes().to_vec();
    s.target.create_dir(&entry(b"a", EntryKind::Dir, None)).unwrap();
    s.target.create_dir(&entry(b"a/b", EntryKind::Dir, None)).unwrap();
    let f = entry(b"a/b/f", EntryKind::File, None);
    s.target.begin_file(&f).unwrap().finish(&f).unwrap();
    s.target.create_symlink(&entry(b"a/b/s", EntryKind::Symlink, Some(&out))).unwrap();
    let e = s.target.begin_file(&entry(b"a/b/s/x/y", EntryKind::File, None)).err().unwrap();
    assert_eq!(
        e.to_string(),
        "refusing to restore a/b/s/x/y: parent a/b/s is a symlink (it would write outside the target)"
    );
    let g = entry(b"a/b/c/d/g", EntryKind::File, None);
    s.target.begin_file(&g).unwrap().finish(&g).unwrap();
    s.target.finish().unwrap();
    assert!(s.dest.join("a/b/c/d/g").is_file());
    assert_empty(&s.outside);
}
