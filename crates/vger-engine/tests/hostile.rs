//! Snapshots no honest `vger backup` would write, built directly with the
//! engine's format API: restore must never write (or link) outside its
//! target, whatever the tree stream says, and must fail cleanly on
//! malformed trees and objects from a newer format version.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vger_crypto::{KdfParams, ObjectType};
use vger_engine::blob::seal_chunk;
use vger_engine::index::write_segment;
use vger_engine::progress::Progress;
use vger_engine::repository::{InitOptions, Repository};
use vger_engine::restore::{restore, RestoreOptions, RestoreReport};
use vger_engine::snapshots::{self, SnapshotInfo};
use vger_engine::tree::TreeWriter;
use vger_engine::Result;
use vger_format::compress::Codec;
use vger_format::entry::{ChunkRef, Entry, EntryKind};
use vger_format::id::{ChunkId, SnapshotId};
use vger_format::object::seal_object;
use vger_format::pack::PackBuilder;
use vger_format::snapshot::{Snapshot, SnapshotStats, SNAPSHOT_VERSION};
use vger_storage::LocalStorage;

/// A scratch directory with a repository, a restore target and a folder
/// outside the target that must stay untouched.
struct Scene {
    dir: tempfile::TempDir,
    repo: Repository,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("vger-hostile-").tempdir().unwrap();
        let storage = Arc::new(LocalStorage::create(&dir.path().join("repo")).unwrap());
        let opts = InitOptions { kdf: KdfParams::insecure_fast(), ..InitOptions::default() };
        let repo = Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/victim"), b"original\n").unwrap();
        Scene { dir, repo }
    }

    fn dest(&self) -> PathBuf {
        self.dir.path().join("dest")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// Everything in the scratch directory except the repository and the
    /// target, with contents: what restore must not change.
    fn outside_state(&self) -> Vec<(PathBuf, Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p == self.dir.path().join("repo") || p == self.dest() {
                    continue;
                }
                let md = fs::symlink_metadata(&p).unwrap();
                let content = if md.is_file() { fs::read(&p).unwrap() } else { Vec::new() };
                if md.is_dir() {
                    stack.push(p.clone());
                }
                out.push((p, content, md.nlink()));
            }
        }
        out.sort();
        out
    }

    /// Stores `entries` (file entries get `content` as their data) as the
    /// tree of a new snapshot, through the same objects a backup writes: a
    /// pack of sealed chunks, an index segment naming it, the snapshot.
    fn snapshot(&self, entries: Vec<Entry>, content: &[u8]) -> SnapshotInfo {
        let repo = &self.repo;
        let mut pack = PackBuilder::with_capacity(1 << 20);
        let mut seen = Vec::new();
        let mut store = |ty: ObjectType, data: &[u8]| -> Result<ChunkId> {
            let id = ChunkId(repo.chunk_id_key().chunk_id(data));
            if !seen.contains(&id) {
                seen.push(id);
                let sealed = seal_chunk(repo.envelope(), Codec::None, ty, &id, data)?;
                pack.add(id, ty, data.len() as u32, &sealed);
            }
            Ok(id)
        };
        let data_id = store(ObjectType::DataChunk, content).unwrap();
        let mut tree = TreeWriter::new(repo.tree_chunker_params()).unwrap();
        for mut e in entries {
            if e.kind == EntryKind::File {
                e.size = content.len() as u64;
                e.chunks = vec![ChunkRef(data_id, content.len() as u32)];
            }
            tree.add(&e, &mut |d| store(ObjectType::TreeChunk, d)).unwrap();
        }
        let tree_ids = tree.finish(&mut |d| store(ObjectType::TreeChunk, d)).unwrap();
        let finished = pack.finish(repo.envelope()).unwrap();
        repo.storage().put(&finished.id.storage_key(), &finished.bytes).unwrap();
        write_segment(repo.storage(), repo.envelope(), vec![finished.entry]).unwrap();
        self.store_snapshot(tree_ids, SNAPSHOT_VERSION)
    }

    fn store_snapshot(&self, tree: Vec<ChunkId>, version: u32) -> SnapshotInfo {
        let snapshot = Snapshot {
            version,
            time: "2026-01-02T03:04:05.000000006Z".into(),
            end_time: "2026-01-02T03:04:06Z".into(),
            hostname: "hostile".into(),
            username: "mallory".into(),
            source_label: "hostile".into(),
            paths: vec!["/nowhere".into()],
            tree,
            stats: SnapshotStats::default(),
            parent: None,
            tags: Vec::new(),
            xattrs: false,
        };
        let id = SnapshotId(vger_format::id::random_id().unwrap());
        let key = id.storage_key();
        let bytes =
            seal_object(self.repo.envelope(), ObjectType::Snapshot, key.as_bytes(), "snapshot", &snapshot).unwrap();
        self.repo.storage().put_new(&key, &bytes).unwrap();
        SnapshotInfo { id, snapshot, stored_at: None }
    }

    fn restore(&self, snap: &SnapshotInfo) -> Result<RestoreReport> {
        restore(&self.repo, snap, &self.dest(), &RestoreOptions::default(), &Progress::default())
    }

    /// Restores `entries` and asserts that restore refused (an error or a
    /// reported failure) and that nothing outside the target changed.
    #[track_caller]
    fn assert_contained(&self, entries: Vec<Entry>) {
        let before = self.outside_state();
        let snap = self.snapshot(entries, b"pwned\n");
        let result = self.restore(&snap);
        match &result {
            Err(e) => assert!(!e.to_string().is_empty()),
            Ok(report) => assert!(!report.failures.is_empty(), "hostile snapshot restored without complaint"),
        }
        assert_eq!(self.outside_state(), before, "restore changed something outside the target ({result:?})");
        assert_eq!(fs::read(self.outside().join("victim")).unwrap(), b"original\n");
    }
}

fn file(path: &[u8]) -> Entry {
    let mut e = Entry::new(path.to_vec(), EntryKind::File);
    e.mode = 0o644;
    e
}

fn dir(path: &[u8]) -> Entry {
    let mut e = Entry::new(path.to_vec(), EntryKind::Dir);
    e.mode = 0o755;
    e
}

fn symlink(path: &[u8], target: &[u8]) -> Entry {
    let mut e = Entry::new(path.to_vec(), EntryKind::Symlink);
    e.mode = 0o777;
    e.target = Some(target.to_vec());
    e
}

fn hardlink(path: &[u8], target: &[u8]) -> Entry {
    let mut e = Entry::new(path.to_vec(), EntryKind::Hardlink);
    e.target = Some(target.to_vec());
    e
}

fn bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

/// The control: the same helper with honest entries restores them all, so
/// the refusals below come from the paths, not from a broken snapshot.
#[test]
fn honest_snapshot_built_by_the_helper_restores() {
    let s = Scene::new();
    let snap = s.snapshot(
        vec![dir(b"d"), file(b"d/f.txt"), symlink(b"d/link", b"f.txt"), hardlink(b"d/hl", b"d/f.txt"), file(b"top")],
        b"honest\n",
    );
    let report = s.restore(&snap).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let dest = s.dest();
    assert_eq!(fs::read(dest.join("d/f.txt")).unwrap(), b"honest\n");
    assert_eq!(fs::read(dest.join("top")).unwrap(), b"honest\n");
    assert_eq!(fs::read_link(dest.join("d/link")).unwrap(), Path::new("f.txt"));
    assert_eq!(fs::metadata(dest.join("d/hl")).unwrap().ino(), fs::metadata(dest.join("d/f.txt")).unwrap().ino());
}

#[test]
fn parent_dir_component_is_refused() {
    let s = Scene::new();
    s.assert_contained(vec![file(b"../escape")]);
    assert!(!s.dir.path().join("escape").exists());
}

#[test]
fn absolute_path_is_refused() {
    let s = Scene::new();
    let evil = s.outside().join("abs-evil");
    s.assert_contained(vec![file(&bytes(&evil))]);
    assert!(!evil.exists());
}

#[test]
fn dot_dot_in_the_middle_is_refused() {
    let s = Scene::new();
    s.assert_contained(vec![dir(b"a"), file(b"a/../../x")]);
    assert!(!s.dir.path().join("x").exists());
}

#[test]
fn write_through_a_symlink_from_the_snapshot_is_refused() {
    let s = Scene::new();
    let outside = bytes(&s.outside());
    s.assert_contained(vec![symlink(b"link", &outside), file(b"link/pwned")]);
    assert!(!s.outside().join("pwned").exists());
}

#[test]
fn relative_symlink_escape_is_refused() {
    let s = Scene::new();
    s.assert_contained(vec![symlink(b"up", b"../outside"), file(b"up/pwned"), dir(b"up/newdir")]);
    assert!(!s.outside().join("pwned").exists());
    assert!(!s.outside().join("newdir").exists());
}

#[test]
fn directory_through_a_symlink_is_refused() {
    let s = Scene::new();
    let outside = bytes(&s.outside());
    s.assert_contained(vec![symlink(b"link", &outside), dir(b"link/sub"), file(b"link/sub/pwned")]);
    assert!(!s.outside().join("sub").exists());
}

#[test]
fn symlink_already_in_the_target_is_not_followed() {
    let s = Scene::new();
    fs::create_dir(s.dest()).unwrap();
    std::os::unix::fs::symlink(s.outside(), s.dest().join("planted")).unwrap();
    s.assert_contained(vec![file(b"planted/pwned"), file(b"planted/victim")]);
    assert!(!s.outside().join("pwned").exists());
}

#[test]
fn hardlink_to_a_file_outside_is_refused() {
    let s = Scene::new();
    s.assert_contained(vec![file(b"real.txt"), hardlink(b"hl", b"../../outside/victim")]);
    let s = Scene::new();
    let victim = bytes(&s.outside().join("victim"));
    s.assert_contained(vec![file(b"real.txt"), hardlink(b"hl2", &victim)]);
    assert!(!s.dest().join("hl2").exists());
}

#[test]
fn hardlink_through_a_symlink_is_refused() {
    let s = Scene::new();
    let outside = bytes(&s.outside());
    // The link's target path runs through a symlink to the outside folder.
    s.assert_contained(vec![symlink(b"link", &outside), hardlink(b"hl", b"link/victim")]);
    assert!(!s.dest().join("hl").exists(), "a hard link to a file outside the target was made");
}

#[test]
fn garbage_tree_chunk_fails_cleanly() {
    let s = Scene::new();
    let repo = &s.repo;
    let garbage = b"\x10\x00\x00\x00not msgpack at all, just noise".to_vec();
    let id = ChunkId(repo.chunk_id_key().chunk_id(&garbage));
    let sealed = seal_chunk(repo.envelope(), Codec::None, ObjectType::TreeChunk, &id, &garbage).unwrap();
    let mut pack = PackBuilder::with_capacity(4096);
    pack.add(id, ObjectType::TreeChunk, garbage.len() as u32, &sealed);
    let finished = pack.finish(repo.envelope()).unwrap();
    repo.storage().put(&finished.id.storage_key(), &finished.bytes).unwrap();
    write_segment(repo.storage(), repo.envelope(), vec![finished.entry]).unwrap();
    let snap = s.store_snapshot(vec![id], SNAPSHOT_VERSION);
    let err = s.restore(&snap).expect_err("a tree of garbage restored");
    assert!(err.to_string().contains("corrupt") || err.to_string().contains("tree"), "{err}");
}

#[test]
fn tree_chunk_missing_from_the_index_fails_cleanly() {
    let s = Scene::new();
    let snap = s.store_snapshot(vec![ChunkId([7u8; 32])], SNAPSHOT_VERSION);
    let err = s.restore(&snap).expect_err("a tree with a missing chunk restored");
    assert!(err.to_string().contains("not in the index"), "{err}");
}

#[test]
fn snapshot_from_a_newer_format_is_refused() {
    let s = Scene::new();
    let snap = s.store_snapshot(Vec::new(), SNAPSHOT_VERSION + 1);
    let err = snapshots::load(&s.repo, snap.id).expect_err("a snapshot of a newer format was read");
    let msg = err.to_string();
    assert!(msg.contains("newer") && msg.contains("upgrade"), "{msg}");
}
