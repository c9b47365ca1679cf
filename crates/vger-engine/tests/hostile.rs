//! Snapshots no honest `vger backup` would write, built directly with the
//! format API: restore must never write (or link) outside its target,
//! whatever the tree says, and must refuse malformed trees (names that are
//! not plain names, unsorted or repeated entries, pages that lie about
//! their contents, objects that are not what their ID says) with an error
//! naming the tree object, never a panic, a hang or a huge allocation.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use std::cell::RefCell;
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
use vger_engine::Result;
use vger_format::compress::Codec;
use vger_format::entry::{ChunkRef, Entry, EntryKind};
use vger_format::id::{ChunkId, SnapshotId};
use vger_format::object::seal_object;
use vger_format::pack::PackBuilder;
use vger_format::snapshot::{Snapshot, SnapshotStats, SNAPSHOT_VERSION};
use vger_format::tree::{encode_entry, encode_node, encode_page_ref, PageRef, TreeEntry};
use vger_storage::LocalStorage;

/// A scratch directory with a repository, a restore target and a folder
/// outside the target that must stay untouched.
struct Scene {
    dir: tempfile::TempDir,
    repo: Repository,
    pack: RefCell<(PackBuilder, Vec<ChunkId>)>,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("vger-hostile-").tempdir().unwrap();
        let storage = Arc::new(LocalStorage::create(&dir.path().join("repo")).unwrap());
        let opts = InitOptions { kdf: KdfParams::insecure_fast(), ..InitOptions::default() };
        let repo = Repository::init(storage, Some(b"pw".to_vec()), opts).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/victim"), b"original\n").unwrap();
        Scene { dir, repo, pack: RefCell::new((PackBuilder::with_capacity(1 << 20), Vec::new())) }
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

    /// Stores `data` as a blob of type `ty` under `id` (which an honest
    /// writer makes the keyed hash of `data`).
    fn store_as(&self, id: ChunkId, ty: ObjectType, data: &[u8]) -> ChunkId {
        let mut pack = self.pack.borrow_mut();
        if !pack.1.contains(&id) {
            pack.1.push(id);
            let sealed = seal_chunk(self.repo.envelope(), Codec::None, ty, &id, data).unwrap();
            pack.0.add(id, ty, data.len() as u32, &sealed);
        }
        id
    }

    fn store(&self, ty: ObjectType, data: &[u8]) -> ChunkId {
        self.store_as(ChunkId(self.repo.chunk_id_key().chunk_id(data)), ty, data)
    }

    /// A file entry holding `content`.
    fn file(&self, name: &[u8], content: &[u8]) -> TreeEntry {
        let mut e = entry(name, EntryKind::File);
        e.mode = 0o644;
        e.size = content.len() as u64;
        e.chunks = vec![ChunkRef(self.store(ObjectType::DataChunk, content), content.len() as u32)];
        e
    }

    /// A directory object of `entries` exactly as given (any order, any names).
    fn dir_object(&self, entries: &[TreeEntry]) -> ChunkId {
        self.store(ObjectType::TreeChunk, &leaf_bytes(entries))
    }

    /// A directory entry named `name` holding `entries`.
    fn dir(&self, name: &[u8], entries: &[TreeEntry]) -> TreeEntry {
        let mut e = entry(name, EntryKind::Dir);
        e.mode = 0o755;
        e.tree = Some(self.dir_object(entries));
        e
    }

    /// Writes the pack and its index segment, then a snapshot of `root`.
    fn commit(&self, root: ChunkId) -> SnapshotInfo {
        self.commit_version(root, SNAPSHOT_VERSION)
    }

    fn commit_version(&self, root: ChunkId, version: u32) -> SnapshotInfo {
        let repo = &self.repo;
        let (pack, ids) = self.pack.replace((PackBuilder::with_capacity(1 << 20), Vec::new()));
        if !ids.is_empty() {
            let finished = pack.finish(repo.envelope()).unwrap();
            repo.storage().put(&finished.id.storage_key(), &finished.bytes).unwrap();
            write_segment(repo.storage(), repo.envelope(), vec![finished.entry]).unwrap();
        }
        let snapshot = Snapshot {
            version,
            time: "2026-01-02T03:04:05.000000006Z".into(),
            end_time: "2026-01-02T03:04:06Z".into(),
            hostname: "hostile".into(),
            username: "mallory".into(),
            source_label: "hostile".into(),
            paths: vec!["/nowhere".into()],
            root,
            stats: SnapshotStats::default(),
            parent: None,
            tags: Vec::new(),
            xattrs: false,
            copied_from: None,
        };
        let id = SnapshotId(vger_format::id::random_id().unwrap());
        let key = id.storage_key();
        let bytes = seal_object(repo.envelope(), ObjectType::Snapshot, key.as_bytes(), "snapshot", &snapshot).unwrap();
        repo.storage().put_new(&key, &bytes).unwrap();
        SnapshotInfo { id, snapshot, stored_at: None }
    }

    fn restore(&self, snap: &SnapshotInfo) -> Result<RestoreReport> {
        restore(&self.repo, snap, &self.dest(), &RestoreOptions::default(), &Progress::default())
    }

    /// Restores a snapshot of `top` and asserts that restore refused (an
    /// error or a reported failure) and that nothing outside the target
    /// changed. Returns the error's message, if it failed.
    #[track_caller]
    fn assert_contained(&self, top: &[TreeEntry]) -> String {
        let before = self.outside_state();
        let root = self.dir_object(top);
        let snap = self.commit(root);
        let result = self.restore(&snap);
        let message = match &result {
            Err(e) => e.to_string(),
            Ok(report) => {
                assert!(!report.failures.is_empty(), "hostile snapshot restored without complaint");
                report.failures.join("\n")
            }
        };
        assert_eq!(self.outside_state(), before, "restore changed something outside the target ({result:?})");
        assert_eq!(fs::read(self.outside().join("victim")).unwrap(), b"original\n");
        message
    }

    /// Restores a snapshot of tree `root` and returns the error it must give.
    #[track_caller]
    fn refused(&self, root: ChunkId) -> String {
        let snap = self.commit(root);
        let before = self.outside_state();
        // Refused either whole (the top directory) or as a failed
        // directory in the report (one below it; the rest is restored).
        let err = match self.restore(&snap) {
            Err(e) => e.to_string(),
            Ok(report) => {
                assert!(!report.failures.is_empty(), "a malformed tree restored: {report:?}");
                report.failures.join("; ")
            }
        };
        assert_eq!(self.outside_state(), before);
        err
    }
}

fn entry(name: &[u8], kind: EntryKind) -> TreeEntry {
    let mut e = TreeEntry::from_entry(Entry::new(Vec::new(), kind), None);
    e.name = name.to_vec();
    e
}

fn leaf_bytes(entries: &[TreeEntry]) -> Vec<u8> {
    let (mut names, mut meta) = (Vec::new(), Vec::new());
    entries.iter().for_each(|e| encode_entry(e, &mut names, &mut meta).unwrap());
    encode_node(0, entries.len(), &names, &meta)
}

fn index_bytes(level: u8, pages: &[PageRef]) -> Vec<u8> {
    let mut items = Vec::new();
    pages.iter().for_each(|p| encode_page_ref(p, &mut items).unwrap());
    encode_node(level, pages.len(), &items, &[])
}

fn symlink(name: &[u8], target: &[u8]) -> TreeEntry {
    let mut e = entry(name, EntryKind::Symlink);
    e.mode = 0o777;
    e.target = Some(target.to_vec());
    e
}

fn hardlink(name: &[u8], target: &[u8]) -> TreeEntry {
    let mut e = entry(name, EntryKind::Hardlink);
    e.target = Some(target.to_vec());
    e
}

fn bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

#[track_caller]
fn names_an_object(message: &str, what: &str) {
    assert!(message.contains("tree object ") && message.contains(what), "{message}");
}

/// The control: the same helpers with honest entries restore them all, so
/// the refusals below come from the hostile parts, not a broken snapshot.
#[test]
fn honest_snapshot_built_by_the_helpers_restores() {
    let s = Scene::new();
    let d = s.dir(b"d", &[s.file(b"f.txt", b"honest\n"), hardlink(b"hl", b"d/f.txt"), symlink(b"link", b"f.txt")]);
    let root = s.dir_object(&[d, s.file(b"top", b"honest\n")]);
    let report = s.restore(&s.commit(root)).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let dest = s.dest();
    assert_eq!(fs::read(dest.join("d/f.txt")).unwrap(), b"honest\n");
    assert_eq!(fs::read(dest.join("top")).unwrap(), b"honest\n");
    assert_eq!(fs::read_link(dest.join("d/link")).unwrap(), Path::new("f.txt"));
    assert_eq!(fs::metadata(dest.join("d/hl")).unwrap().ino(), fs::metadata(dest.join("d/f.txt")).unwrap().ino());
}

#[test]
fn names_that_are_not_plain_names_are_refused() {
    for name in [&b".."[..], b".", b"", b"a/b", b"../escape", b"a\0b"] {
        let s = Scene::new();
        let message = s.assert_contained(&[s.file(name, b"pwned\n")]);
        names_an_object(&message, "entry name");
        assert!(!s.dir.path().join("escape").exists());
    }
}

#[test]
fn unsorted_and_repeated_entries_are_refused() {
    let s = Scene::new();
    let message = s.assert_contained(&[s.file(b"b", b"x"), s.file(b"a", b"y")]);
    names_an_object(&message, "out of order");
    let s = Scene::new();
    let message = s.assert_contained(&[s.file(b"a", b"x"), s.dir(b"a", &[s.file(b"pwned", b"y")])]);
    names_an_object(&message, "repeated");
    // A symlink and a directory of the same name cannot both be written.
    let s = Scene::new();
    let outside = bytes(&s.outside());
    let message = s.assert_contained(&[s.dir(b"link", &[s.file(b"pwned", b"x")]), symlink(b"link", &outside)]);
    names_an_object(&message, "repeated");
    assert!(!s.outside().join("pwned").exists());
}

#[test]
fn symlink_already_in_the_target_is_not_followed() {
    let s = Scene::new();
    fs::create_dir(s.dest()).unwrap();
    std::os::unix::fs::symlink(s.outside(), s.dest().join("planted")).unwrap();
    let before = s.outside_state();
    let root = s.dir_object(&[s.dir(b"planted", &[s.file(b"pwned", b"x"), s.file(b"victim", b"y")])]);
    // Restoring may replace the planted link by the snapshot's directory
    // or refuse; it must never write through it.
    let _ = s.restore(&s.commit(root));
    assert_eq!(s.outside_state(), before);
    assert!(!s.outside().join("pwned").exists());
    assert_eq!(fs::read(s.outside().join("victim")).unwrap(), b"original\n");
}

#[test]
fn hardlink_to_a_file_outside_is_refused() {
    let s = Scene::new();
    s.assert_contained(&[s.file(b"real.txt", b"x"), hardlink(b"hl", b"../../outside/victim")]);
    let s = Scene::new();
    let victim = bytes(&s.outside().join("victim"));
    s.assert_contained(&[hardlink(b"hl2", &victim), s.file(b"real.txt", b"x")]);
    assert!(!s.dest().join("hl2").exists());
}

#[test]
fn hardlink_through_a_symlink_is_refused() {
    let s = Scene::new();
    let outside = bytes(&s.outside());
    // The link's target path runs through a symlink to the outside folder.
    s.assert_contained(&[hardlink(b"hl", b"link/victim"), symlink(b"link", &outside)]);
    assert!(!s.dest().join("hl").exists(), "a hard link to a file outside the target was made");
}

#[test]
fn garbage_tree_object_fails_cleanly() {
    let s = Scene::new();
    let id = s.store(ObjectType::TreeChunk, b"not msgpack at all, just noise");
    names_an_object(&s.refused(id), &id.short());
}

#[test]
fn tree_object_missing_from_the_index_fails_cleanly() {
    let s = Scene::new();
    let err = s.refused(ChunkId([7u8; 32]));
    assert!(err.contains("not in the index") && err.contains("07070707"), "{err}");
}

#[test]
fn a_directory_that_refers_to_itself_is_refused() {
    // An object's ID is the keyed hash of its content, so a directory can
    // only name itself (or an ancestor) under an ID it does not hash to.
    let s = Scene::new();
    let fake = ChunkId([5u8; 32]);
    let mut loop_entry = entry(b"loop", EntryKind::Dir);
    loop_entry.tree = Some(fake);
    s.store_as(fake, ObjectType::TreeChunk, &leaf_bytes(&[loop_entry.clone()]));
    let root = s.dir_object(&[loop_entry]);
    let err = s.refused(root);
    assert!(err.contains("05050505") && err.contains("does not hash to its id"), "{err}");
}

#[test]
fn a_claimed_size_of_2_pow_40_entries_is_refused() {
    let s = Scene::new();
    let page = s.dir_object(&[s.file(b"a", b"x")]);
    let root =
        s.store(ObjectType::TreeChunk, &index_bytes(1, &[PageRef { first: b"a".to_vec(), id: page, count: 1 << 40 }]));
    names_an_object(&s.refused(root), "claim");
}

#[test]
fn pages_that_lie_about_their_contents_are_refused() {
    let refs = |s: &Scene, pages: &[(&[u8], ChunkId, u64)]| {
        let pages: Vec<PageRef> =
            pages.iter().map(|(first, id, count)| PageRef { first: first.to_vec(), id: *id, count: *count }).collect();
        s.store(ObjectType::TreeChunk, &index_bytes(1, &pages))
    };
    // Out of order: the first page holds a name past the second page's first.
    let s = Scene::new();
    let p1 = s.dir_object(&[s.file(b"a", b"x"), s.file(b"z", b"y")]);
    let p2 = s.dir_object(&[s.file(b"m", b"x")]);
    names_an_object(&s.refused(refs(&s, &[(b"a", p1, 2), (b"m", p2, 1)])), "out of order");
    // A count that is not the page's.
    let s = Scene::new();
    let p1 = s.dir_object(&[s.file(b"a", b"x")]);
    names_an_object(&s.refused(refs(&s, &[(b"a", p1, 3)])), "entry count");
    // A first name that is not the page's.
    let s = Scene::new();
    let p1 = s.dir_object(&[s.file(b"b", b"x")]);
    names_an_object(&s.refused(refs(&s, &[(b"a", p1, 1)])), "first name");
    // An index node under an index node of the same level (a loop of
    // levels is impossible: each step goes one level down).
    let s = Scene::new();
    let p1 = s.dir_object(&[s.file(b"a", b"x")]);
    let inner = refs(&s, &[(b"a", p1, 1)]);
    names_an_object(&s.refused(refs(&s, &[(b"a", inner, 1)])), "level");
}

#[test]
fn snapshots_of_a_newer_or_older_format_are_refused() {
    let s = Scene::new();
    let root = s.dir_object(&[]);
    let snap = s.commit_version(root, SNAPSHOT_VERSION + 1);
    let msg = snapshots::load(&s.repo, snap.id).expect_err("a snapshot of a newer format was read").to_string();
    assert!(msg.contains("newer") && msg.contains("upgrade"), "{msg}");
    let snap = s.commit_version(root, 1);
    let msg = snapshots::load(&s.repo, snap.id).expect_err("a snapshot of the old tree format was read").to_string();
    assert!(msg.contains("no longer reads"), "{msg}");
}

/// Stores `payload` (a codec header and body, however hostile) as the
/// sealed data chunk `id` in a pack of its own, indexed; returns the
/// sealed blob.
fn store_raw_chunk(s: &Scene, id: ChunkId, payload: &[u8]) -> Vec<u8> {
    let repo = &s.repo;
    let sealed = repo.envelope().seal(ObjectType::DataChunk, &id.0, payload).unwrap();
    let mut pack = PackBuilder::with_capacity(sealed.len() + 4096);
    pack.add(id, ObjectType::DataChunk, 1, &sealed);
    let finished = pack.finish(repo.envelope()).unwrap();
    repo.storage().put(&finished.id.storage_key(), &finished.bytes).unwrap();
    write_segment(repo.storage(), repo.envelope(), vec![finished.entry]).unwrap();
    sealed
}

/// Decompression bombs: 64 MiB of zeros compressed to a few KiB, whose
/// header claims the chunk cap (8 MiB) or 4 GiB. Restore fails on the
/// file with an error; the decompressor is given the capped buffer only.
#[test]
fn decompression_bombs_are_refused() {
    let zeros = vec![0u8; 64 << 20];
    let cap = 8u32 << 20;
    for (claimed, codec) in [(cap, Codec::Zstd(3)), (u32::MAX, Codec::Zstd(3)), (cap, Codec::Lz4)] {
        let s = Scene::new();
        let mut payload = vger_format::compress::compress(codec, &zeros);
        assert!(payload.len() < 512 << 10, "the {codec} bomb is {} bytes", payload.len());
        payload[1..5].copy_from_slice(&claimed.to_le_bytes());
        let id = ChunkId([0xb0; 32]);
        let sealed = store_raw_chunk(&s, id, &payload);
        let mut bomb = entry(b"bomb", EntryKind::File);
        bomb.mode = 0o644;
        bomb.size = u64::from(claimed);
        bomb.chunks = vec![ChunkRef(id, claimed)];
        s.assert_contained(&[bomb]);
        assert!(!s.dest().join("bomb").exists());
        let (env, key) = (s.repo.envelope(), s.repo.chunk_id_key());
        let err = vger_engine::blob::open_chunk(env, key, ObjectType::DataChunk, &id, sealed, cap as usize)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exceeds the limit") || err.contains("payload"), "{claimed}: {err}");
    }
}

/// A file entry claiming a size its chunks do not hold (a petabyte, or
/// less than its data) is refused, not created as a huge sparse file or
/// cut short.
#[test]
fn file_whose_size_disagrees_with_its_chunks_is_refused() {
    for size in [1u64 << 50, 3] {
        let s = Scene::new();
        let mut claims = s.file(b"claims", b"pwned\n");
        claims.size = size;
        s.assert_contained(&[claims, s.file(b"honest", b"pwned\n")]);
        assert!(fs::symlink_metadata(s.dest().join("claims")).is_err(), "size {size} restored");
        assert_eq!(fs::read(s.dest().join("honest")).unwrap(), b"pwned\n");
    }
}

/// `payload` of a metadata object: codec `none` and the msgpack bytes.
fn stored_plain(msgpack: &[u8]) -> Vec<u8> {
    let mut payload = vec![0u8];
    payload.extend_from_slice(&(msgpack.len() as u32).to_le_bytes());
    payload.extend_from_slice(msgpack);
    payload
}

/// A msgpack map `{"version": version, field: array32 of 2^32 - 1}` that
/// ends there: a count no object can hold, in a few bytes.
fn claims_four_billion(version: u32, field: &str) -> Vec<u8> {
    let mut m = vec![0x82, 0xa7];
    m.extend_from_slice(b"version");
    m.push(u8::try_from(version).unwrap());
    m.push(0xa0 | field.len() as u8);
    m.extend_from_slice(field.as_bytes());
    m.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
    stored_plain(&m)
}

/// Counts no object can hold: an index segment and a snapshot whose
/// msgpack arrays claim 2^32 - 1 elements fail to decode at once instead
/// of reserving memory for the claim.
#[test]
fn arrays_claiming_four_billion_elements_are_refused() {
    let s = Scene::new();
    let repo = &s.repo;
    let id = vger_format::id::SegmentId([0xee; 32]);
    let key = id.storage_key();
    let payload = claims_four_billion(1, "packs");
    let sealed = repo.envelope().seal(ObjectType::IndexSegment, key.as_bytes(), &payload).unwrap();
    repo.storage().put(&key, &sealed).unwrap();
    let err = vger_engine::index::ChunkIndex::load(repo).unwrap_err().to_string();
    assert!(err.contains("corrupt"), "{err}");
    let (_, unreadable) = vger_engine::index::ChunkIndex::load_lenient(repo).unwrap();
    assert_eq!(unreadable.len(), 1);
    repo.storage().delete(&key).unwrap();

    let snap = s.commit(s.dir_object(&[]));
    let key = snap.id.storage_key();
    let payload = claims_four_billion(SNAPSHOT_VERSION, "paths");
    let sealed = repo.envelope().seal(ObjectType::Snapshot, key.as_bytes(), &payload).unwrap();
    repo.storage().put(&key, &sealed).unwrap();
    let err = snapshots::load(repo, snap.id).unwrap_err().to_string();
    assert!(err.contains("corrupt"), "{err}");
}

/// Duplicate IDs: a segment listing one pack twice (and so every chunk
/// twice) beside the segment that named it. The index holds each chunk
/// once and the snapshot restores exactly.
#[test]
fn a_pack_and_its_chunks_listed_twice_do_no_harm() {
    let s = Scene::new();
    let snap = s.commit(s.dir_object(&[s.file(b"twice", b"data\n")]));
    let segments = vger_engine::index::load_segments(&s.repo).unwrap();
    let pack = segments[0].1.packs[0].clone();
    let blobs = pack.blobs.len();
    write_segment(s.repo.storage(), s.repo.envelope(), vec![pack.clone(), pack]).unwrap();
    let index = vger_engine::index::ChunkIndex::load(&s.repo).unwrap();
    assert_eq!(index.len(), blobs);
    let report = s.restore(&snap).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(fs::read(s.dest().join("twice")).unwrap(), b"data\n");
}
