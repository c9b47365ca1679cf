//! The fixture repositories of every format version (`fixtures/repos/v*`,
//! made by `fixtures/make-repo.py`) open and restore exactly what their
//! manifest lists: a later change cannot silently stop reading them.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use vger_engine::find::find_named;
use vger_engine::index::ChunkIndex;
use vger_engine::progress::Progress;
use vger_engine::repository::Repository;
use vger_engine::restore::{restore, RestoreOptions};
use vger_engine::snapshots;
use vger_engine::tree::{dir, SnapshotTree, TreeStore};
use vger_format::entry::EntryKind;
use vger_storage::LocalStorage;

const PASSPHRASE: &[u8] = b"fixture";

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/repos");
    let mut found: Vec<PathBuf> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    found.sort();
    found
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Printable ASCII as is (but backslash), every other byte as `\xNN`.
fn escape(raw: &[u8]) -> String {
    raw.iter()
        .map(|b| if *b > 0x20 && *b < 0x7f && *b != b'\\' { (*b as char).to_string() } else { format!("\\x{b:02x}") })
        .collect()
}

/// The manifest lines of a restored tree, as make-repo.py writes them.
fn manifest(top: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut first_of_inode = std::collections::HashMap::new();
    let mut todo = vec![top.to_path_buf()];
    let mut paths = Vec::new();
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                todo.push(p.clone());
            }
            paths.push(p);
        }
    }
    // Hard-link groups are named by their first path in the order make-repo.py walks (sorted).
    paths.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    for p in paths {
        let rel = p.strip_prefix(top).unwrap().as_os_str().as_bytes().to_vec();
        let md = fs::symlink_metadata(&p).unwrap();
        let mode = format!("{:04o}", md.permissions().mode() & 0o7777);
        let mut mtime = md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128;
        let mut xattrs = String::new();
        let ft = md.file_type();
        if ft.is_file() || ft.is_dir() {
            let mut names: Vec<_> = xattr::list(&p).unwrap().filter(|n| n.as_bytes().starts_with(b"user.")).collect();
            names.sort();
            xattrs = names
                .iter()
                .map(|n| format!("{}={}", n.to_string_lossy(), hex::encode(xattr::get(&p, n).unwrap().unwrap())))
                .collect::<Vec<_>>()
                .join(",");
        }
        let (kind, size, content) = if ft.is_dir() {
            ("dir", 0, String::new())
        } else if ft.is_symlink() {
            mtime = i128::MIN;
            ("symlink", 0, escape(fs::read_link(&p).unwrap().as_os_str().as_bytes()))
        } else if ft.is_fifo() {
            ("fifo", 0, String::new())
        } else {
            let mut content = hex::encode(Sha256::digest(fs::read(&p).unwrap()));
            if md.nlink() > 1 {
                let first = first_of_inode.entry((md.dev(), md.ino())).or_insert_with(|| rel.clone());
                content.push_str(&format!(" link:{}", escape(first)));
            }
            ("file", md.len(), content)
        };
        let mtime = if mtime == i128::MIN { String::new() } else { mtime.to_string() };
        lines.push([escape(&rel), kind.into(), mode, size.to_string(), mtime, content, xattrs].join("\t"));
    }
    lines.sort();
    lines
}

#[test]
fn every_fixture_repository_restores_exactly() {
    let all = fixtures();
    assert!(!all.is_empty(), "no fixture repositories found");
    for fixture in all {
        let scratch = tempfile::Builder::new().prefix("vger-fixture-").tempdir().unwrap();
        // Restoring takes a lock: work on a copy, never on the committed files.
        copy_tree(&fixture.join("repo"), &scratch.path().join("repo"));
        let storage = Arc::new(LocalStorage::open(&scratch.path().join("repo")).unwrap());
        let repo = Repository::open(storage, &|| Ok(PASSPHRASE.to_vec())).unwrap();
        let want: Vec<String> =
            fs::read_to_string(fixture.join("manifest")).unwrap().lines().map(str::to_string).collect();
        let snaps = snapshots::list(&repo).unwrap();
        assert_eq!(snaps.len(), 1, "{}", fixture.display());
        let dest = scratch.path().join("restored");
        let report = restore(&repo, &snaps[0], &dest, &RestoreOptions::default(), &Progress::default()).unwrap();
        assert!(report.failures.is_empty(), "{}: {:?}", fixture.display(), report.failures);
        assert_eq!(manifest(&dest), want, "{} restores differently", fixture.display());
        let sparse = fs::metadata(dest.join("sparse.img")).unwrap();
        assert!(sparse.blocks() * 512 < sparse.len() / 4, "the sparse file was restored dense");
        // The large directory is split into pages under an index node.
        let store = TreeStore::new(&repo, Arc::new(ChunkIndex::load(&repo).unwrap()), 1 << 20);
        let tree = SnapshotTree::open(&store, &snaps[0]);
        let many = tree.stat(b"many").unwrap().unwrap().tree.unwrap();
        assert!(dir::object_ids(&store, &many).unwrap().len() > 2, "`many` is not split into pages");
        // The snapshot is of the fixture's version, and a search by name
        // finds what its manifest holds (in a leaf, and in a page).
        let version = fixture.file_name().unwrap().to_string_lossy().trim_start_matches('v').parse::<u32>().unwrap();
        assert_eq!(snaps[0].snapshot.version, version, "{}", fixture.display());
        let found = |name: &'static [u8]| -> Vec<String> {
            let trees = [tree.clone()];
            let found = find_named(&trees, &|n| n.starts_with(name), &|_, e| e.kind != EntryKind::Dir).unwrap();
            found.iter().map(|f| String::from_utf8_lossy(&f.path).into_owned()).collect()
        };
        assert_eq!(found(b"readme"), ["docs/readme.txt", "links/readme-hardlink.txt", "links/readme-symlink"]);
        assert_eq!(found(b"file-0199"), (1990..2000).map(|i| format!("many/file-{i:05}")).collect::<Vec<_>>());
    }
}
