//! The seed corpus, made from real objects: [`write_fixture`] makes the
//! fixture repository with the engine (a key slot for the fixed master
//! key, two real backups of a small tree), and [`seeds`] turns each object
//! of it, the resume journal and index cache a run leaves, and lock
//! objects into inputs of every target, in both modes (as stored, and
//! their plaintext with the compression taken off, so the fuzzer sees the
//! msgpack). `vger-fuzz-seeds` writes both into `fuzz/`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vger_crypto::{wrap_master_key, Envelope, KdfParams, ObjectType};
use vger_engine::backup::resume::JournalWriter;
use vger_engine::backup::{backup, roots_for_paths, BackupOptions, BackupSource, ChangeDetection};
use vger_engine::blob::BlobReader;
use vger_engine::index::ChunkIndex;
use vger_engine::lock::{write_lock_for_tests, LockKind, LockRecord};
use vger_engine::progress::Progress;
use vger_engine::repository::Repository;
use vger_engine::snapshots;
use vger_format::compress::{decompress, CODEC_HEADER_LEN};
use vger_format::id::{KeySlotId, PackId, SegmentId, SnapshotId};
use vger_format::key_slot::KeySlot;
use vger_format::object::METADATA_CAP;
use vger_format::pack::{trailer_range, PACK_FOOTER_LEN};
use vger_format::repo_config::{ChunkerSizes, RepoConfig};
use vger_format::tree::{
    encode_digest, encode_entry, encode_leaf, encode_leaf_v2, encode_node, NamesHasher, TreeEntry, TreeNode,
};
use vger_storage::{LocalStorage, Storage};

use crate::fixture::{
    binding, envelope, journal_frame_identity, master_key, snapshot_entries, CHUNKER, HOSTNAME, PASSPHRASE,
    SOURCE_LABEL, SOURCE_PATH,
};

/// One seed: the target it feeds, a name, the bytes.
pub struct Seed {
    pub target: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn sizes(p: vger_chunker::ChunkerParams) -> ChunkerSizes {
    ChunkerSizes { min_size: p.min_size, avg_size: p.avg_size, max_size: p.max_size }
}

/// The fixture's repository id.
const REPOSITORY_ID: [u8; 32] = [0x42; 32];

/// The fixture's config, MAC'd with the fixed key.
fn fixture_config(encryption: &str) -> RepoConfig {
    RepoConfig {
        version: vger_format::FORMAT_VERSION,
        id: REPOSITORY_ID.to_vec(),
        created: "2026-01-01T00:00:00.000000000Z".into(),
        encryption: encryption.into(),
        chunker: sizes(CHUNKER),
        compression: "lz4".into(),
        pack_target_size: 1 << 20,
    }
}

/// Deterministic bytes (xorshift), for files that do not compress.
fn noise(len: usize, mut x: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write_source(src: &Path) -> io::Result<()> {
    fs::create_dir_all(src.join("docs/notes"))?;
    fs::create_dir_all(src.join("data"))?;
    fs::write(src.join("docs/readme.txt"), "a line of text that compresses well\n".repeat(800))?;
    fs::write(src.join("docs/empty"), b"")?;
    for i in 0..24 {
        fs::write(src.join(format!("docs/notes/note-{i:02}.txt")), format!("note {i}\n").repeat(i + 1))?;
    }
    fs::write(src.join("data/noise.bin"), noise(8 << 10, 7))?;
    fs::write(src.join("data/zeros.bin"), vec![0u8; 20 << 10])?;
    fs::hard_link(src.join("data/noise.bin"), src.join("data/noise-link.bin"))?;
    std::os::unix::fs::symlink("docs/readme.txt", src.join("readme"))?;
    Ok(())
}

fn run_backup(repo: &Repository, src: &Path) -> io::Result<()> {
    let source = BackupSource {
        label: SOURCE_LABEL.into(),
        roots: roots_for_paths(&[src.to_path_buf()]),
        paths: vec![SOURCE_PATH.into()],
        walk: Default::default(),
        change_detection: ChangeDetection::Strict,
        dumps: Vec::new(),
    };
    let opts = BackupOptions { threads: 1, ..Default::default() };
    backup(repo, &source, &opts, &Progress::default()).map_err(other)?;
    Ok(())
}

fn open(storage: Arc<dyn Storage>) -> io::Result<Repository> {
    Repository::open(storage, &|| Ok(PASSPHRASE.to_vec())).map_err(other)
}

/// Writes the fixture repository into `dir` (replacing it): the config and
/// a key slot for the fixed master key, then two backups of a small tree
/// (the second after a change, so it has a parent).
pub fn write_fixture(dir: &Path) -> io::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    let storage = Arc::new(LocalStorage::create(dir).map_err(other)?);
    let key = master_key();
    let config = fixture_config("aes256gcm").encode(|b| key.config_mac(b)).map_err(other)?;
    let wrapped = wrap_master_key(&key, PASSPHRASE, &REPOSITORY_ID, KdfParams::insecure_fast()).map_err(other)?;
    let slot =
        KeySlot::from_wrapped(&wrapped, "2026-01-01T00:00:00Z".into(), HOSTNAME.into(), "fuzz".into(), "".into());
    storage.put_new(&KeySlotId([0x11; 32]).storage_key(), &slot.encode().map_err(other)?).map_err(other)?;
    storage.put_new(vger_format::id::CONFIG_KEY, &config).map_err(other)?;
    let repo = open(storage)?;
    let src = tempfile::tempdir()?;
    write_source(src.path())?;
    run_backup(&repo, src.path())?;
    fs::write(src.path().join("docs/readme.txt"), "a changed line\n".repeat(900))?;
    fs::write(src.path().join("data/added.bin"), noise(4 << 10, 9))?;
    run_backup(&repo, src.path())
}

/// A metadata payload (codec header and compressed body) with the
/// compression taken off, so the fuzzer mutates the msgpack itself.
fn uncompressed(payload: &[u8]) -> io::Result<Vec<u8>> {
    let raw = decompress(payload, METADATA_CAP).map_err(other)?;
    let mut out = Vec::with_capacity(CODEC_HEADER_LEN + raw.len());
    out.push(0);
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&raw);
    Ok(out)
}

fn with_mode(mode: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend_from_slice(bytes);
    out
}

fn framed(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Collects seeds; names are unique per target.
#[derive(Default)]
struct Seeds(Vec<Seed>);

impl Seeds {
    fn add(&mut self, target: &'static str, name: impl Into<String>, bytes: Vec<u8>) {
        self.0.push(Seed { target, name: name.into(), bytes });
    }

    /// A sealed metadata object of type `ty` as the target `target` plants
    /// it at `target_key`: re-sealed there as stored (mode 0), its payload
    /// as stored (mode 1) and uncompressed (mode 3).
    fn object(&mut self, target: &'static str, name: &str, payload: &[u8], ty: ObjectType, target_key: &str) {
        let env = envelope();
        if let Ok(sealed) = env.seal(ty, target_key.as_bytes(), payload) {
            self.add(target, format!("{name}-stored"), with_mode(0, &sealed));
        }
        self.add(target, format!("{name}-payload"), with_mode(1, payload));
        if let Ok(plain) = uncompressed(payload) {
            self.add(target, format!("{name}-msgpack"), with_mode(3, &plain));
        }
    }
}

/// Every seed, from the fixture repository in `dir` (written by
/// [`write_fixture`]).
pub fn seeds(dir: &Path) -> io::Result<Vec<Seed>> {
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::open(dir).map_err(other)?);
    let repo = open(storage.clone())?;
    let env = envelope();
    let mut out = Seeds::default();
    let objects = storage.list("").map_err(other)?;
    for o in &objects {
        out.add("storage_key", o.key.replace('/', "_"), o.key.clone().into_bytes());
    }
    for key in ["locks/abc", "packs/zz/00", "snapshots/ABCDEF"] {
        out.add("storage_key", format!("hand-{}", out.0.len()), key.as_bytes().to_vec());
    }
    for key in ["index/", "a/../b", "keys/.tmp-1", "packs//x"] {
        out.add("storage_key", format!("refused-{}", out.0.len()), key.as_bytes().to_vec());
    }
    server_seeds(&mut out, &objects);
    config_seeds(&mut out, &storage)?;
    tree_seeds(&mut out, &repo)?;
    let fuzz_snapshot = SnapshotId([0xf0; 32]).storage_key();
    let fuzz_segment = SegmentId([0xf0; 32]).storage_key();
    for o in &objects {
        let bytes = storage.get(&o.key).map_err(other)?;
        let short = o.key.rsplit('/').next().unwrap_or_default().get(..8).unwrap_or_default().to_owned();
        if SnapshotId::from_storage_key(&o.key).is_some() {
            let payload = env.open(ObjectType::Snapshot, o.key.as_bytes(), bytes.clone()).map_err(other)?;
            out.object("snapshot", &format!("snapshot-{short}"), &payload, ObjectType::Snapshot, &fuzz_snapshot);
            envelope_seed(&mut out, ObjectType::Snapshot, o.key.as_bytes(), &bytes);
        } else if SegmentId::from_storage_key(&o.key).is_some() {
            let payload = env.open(ObjectType::IndexSegment, o.key.as_bytes(), bytes.clone()).map_err(other)?;
            out.object("index_segment", &format!("segment-{short}"), &payload, ObjectType::IndexSegment, &fuzz_segment);
            envelope_seed(&mut out, ObjectType::IndexSegment, o.key.as_bytes(), &bytes);
            compressed_seed(&mut out, 3, &format!("segment-{short}"), &payload);
        } else if let Some(id) = PackId::from_storage_key(&o.key) {
            pack_seeds(&mut out, &env, &id, &bytes)?;
        } else if KeySlotId::from_storage_key(&o.key).is_some() {
            out.add("key_slot", format!("slot-{short}"), bytes);
        }
    }
    let key = master_key();
    let strong = wrap_master_key(&key, PASSPHRASE, &REPOSITORY_ID, KdfParams::default()).map_err(other)?;
    let slot = KeySlot::from_wrapped(&strong, "2026-01-02T00:00:00Z".into(), "h".into(), "u".into(), "l".into());
    out.add("key_slot", "slot-default-cost", slot.encode().map_err(other)?);
    lock_seeds(&mut out, &repo)?;
    journal_and_cache_seeds(&mut out, dir)?;
    Ok(out.0)
}

/// Request targets for the fixture's keys and the other routes, and the
/// tokens file of docs/server.md.
fn server_seeds(out: &mut Seeds, objects: &[vger_storage::ObjectInfo]) {
    for o in objects {
        out.add("server_route", o.key.replace('/', "_"), format!("/laptop/{}", o.key).into_bytes());
    }
    let routes = ["/health", "/metrics", "/?stats", "/laptop/?list&prefix=packs%2Fab", "/laptop/?stats"];
    for (i, route) in routes.iter().chain(&["/laptop/?verify-packs", "/laptop/?repack", "/laptop/config"]).enumerate() {
        out.add("server_route", format!("route-{i}"), route.as_bytes().to_vec());
    }
    let tokens = "- name: laptop\n  token_sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\n  \
                  permissions: append\n  repos: [laptop]\n  quota: 500GiB\n- name: maintenance\n  \
                  token: \"a-plain-token-of-at-least-16-characters\"\n  permissions: full\n  \
                  repos: [laptop, desktop]\n- name: ops\n  \
                  token_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n  permissions: admin\n";
    out.add("server_tokens", "docs-example", tokens.as_bytes().to_vec());
    out.add("server_tokens", "one-full", b"- token: 0123456789abcdef0123\n  permissions: full\n".to_vec());
}

fn config_seeds(out: &mut Seeds, storage: &Arc<dyn Storage>) -> io::Result<()> {
    let config = storage.get(vger_format::id::CONFIG_KEY).map_err(other)?;
    out.add("repo_config", "fixture-stored", with_mode(0, &config));
    out.add("repo_config", "fixture-body", with_mode(1, config.get(40..).unwrap_or_default()));
    let none = fixture_config("none");
    let checksum = |b: &[u8]| *blake3::keyed_hash(&[0u8; 32], b).as_bytes();
    out.add("repo_config", "unencrypted-stored", with_mode(0, &none.encode(checksum).map_err(other)?));
    let body = vger_format::object::to_msgpack("config", &none).map_err(other)?;
    out.add("repo_config", "unencrypted-body", with_mode(1, &body));
    Ok(())
}

/// `[selector][identity length][identity][envelope]` for the envelope target.
fn envelope_seed(out: &mut Seeds, ty: ObjectType, identity: &[u8], sealed: &[u8]) {
    let mut bytes = vec![(ty as u8) - 1, identity.len() as u8];
    bytes.extend_from_slice(identity);
    bytes.extend_from_slice(sealed);
    out.add("envelope", format!("type-{}-{}", ty as u8, out.0.len()), bytes);
    // The same object in a repository without encryption.
    let unencrypted =
        envelope().open(ty, identity, sealed.to_vec()).and_then(|p| Envelope::plaintext().seal(ty, identity, &p));
    if let Ok(unencrypted) = unencrypted {
        let mut bytes = vec![(ty as u8) - 1 + 12, identity.len() as u8];
        bytes.extend_from_slice(identity);
        bytes.extend_from_slice(&unencrypted);
        out.add("envelope", format!("unencrypted-type-{}-{}", ty as u8, out.0.len()), bytes);
    }
}

fn compressed_seed(out: &mut Seeds, selector: u8, name: &str, payload: &[u8]) {
    out.add("compressed_payload", name.to_owned(), with_mode(selector, payload));
}

/// Every directory object of the fixture, stored with each codec.
fn tree_seeds(out: &mut Seeds, repo: &Repository) -> io::Result<()> {
    let index = ChunkIndex::load(repo).map_err(other)?;
    let reader = BlobReader::new(repo, &index);
    for (id, loc) in index.blobs().filter(|(_, l)| l.blob_type == ObjectType::TreeChunk as u8) {
        let object = reader.read(id, ObjectType::TreeChunk, &String::new).map_err(other)?;
        for (mode, codec) in [(0u8, "none"), (1, "lz4"), (2, "zstd")] {
            out.add("tree", format!("dir-{}-{codec}-{}", id.short(), loc.length), with_mode(mode, &object));
        }
        // Each leaf also in the other format (2: named-field entries; 3:
        // names apart from metadata), whichever the fixture was written in.
        if let Ok(TreeNode::Leaf(entries)) = TreeNode::decode(id, &object) {
            let (mut names, mut meta) = (Vec::new(), Vec::new());
            for e in &entries {
                encode_entry(e, &mut names, &mut meta).map_err(other)?;
            }
            let v3 = encode_node(0, entries.len(), &names, &meta);
            let v2 = encode_leaf_v2(&entries).map_err(other)?;
            for (format, leaf) in [(2, v2), (3, v3)] {
                if leaf != object {
                    out.add("tree", format!("leaf{format}-{}", id.short()), with_mode(0, &leaf));
                }
            }
            // With its subdirectories' names digests (the optional digests
            // block), and with a block of the wrong length (refused).
            if entries.iter().any(|e| e.tree.is_some()) {
                let mut digests = Vec::new();
                for e in &entries {
                    let mut e = e.clone();
                    if let Some(tree) = e.tree {
                        e.names_digest = names_digest(&reader, &tree);
                    }
                    encode_digest(&e, &mut digests);
                }
                let with = encode_leaf(&names, &meta, &digests);
                out.add("tree", format!("leaf3d-{}", id.short()), with_mode(0, &with));
                let short = encode_leaf(&names, &meta, digests.get(1..).unwrap_or_default());
                out.add("tree", format!("refused-digests-{}", id.short()), with_mode(0, &short));
            }
        }
    }
    Ok(())
}

/// The names digest of the single-leaf directory `tree`, if it reads.
fn names_digest(reader: &BlobReader<'_>, tree: &vger_format::id::ChunkId) -> Option<vger_format::tree::NamesDigest> {
    let object = reader.read(tree, ObjectType::TreeChunk, &String::new).ok()?;
    let TreeNode::Leaf(entries) = TreeNode::decode(tree, &object).ok()? else { return None };
    let mut h = NamesHasher::new();
    entries.iter().for_each(|e: &TreeEntry| h.add(e.kind, &e.name));
    Some(h.finish())
}

fn pack_seeds(out: &mut Seeds, env: &Envelope, id: &PackId, pack: &[u8]) -> io::Result<()> {
    let name = format!("pack-{}", id.short());
    out.add("pack", format!("{name}-stored"), with_mode(0, pack));
    out.add("pack_trailer", format!("{name}-stored"), with_mode(0, pack));
    let footer = pack.get(pack.len().saturating_sub(PACK_FOOTER_LEN)..).unwrap_or_default();
    let (offset, len) = trailer_range(footer, pack.len() as u64).map_err(other)?;
    let (start, end) = (offset as usize, (offset + len) as usize);
    let sealed = pack.get(start..end).unwrap_or_default().to_vec();
    let payload = env.open(ObjectType::PackTrailer, b"pack-trailer", sealed.clone()).map_err(other)?;
    let plain = uncompressed(&payload)?;
    let body = pack.get(..start).unwrap_or_default();
    let mut bytes = (plain.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&plain);
    bytes.extend_from_slice(body);
    out.add("pack", format!("{name}-msgpack"), with_mode(1, &bytes));
    let mut trailer = (offset as u32).to_le_bytes().to_vec();
    trailer.extend_from_slice(&plain);
    out.add("pack_trailer", format!("{name}-msgpack"), with_mode(1, &trailer));
    envelope_seed(out, ObjectType::PackTrailer, b"pack-trailer", &sealed);
    compressed_seed(out, 3, &format!("{name}-trailer"), &payload);
    // Its first blob: an envelope, and a chunk's compressed payload.
    let index = vger_format::pack::parse_pack(env, id, pack).map_err(other)?;
    for b in index.iter().take(2) {
        let blob = pack.get(b.offset as usize..(b.offset + u64::from(b.length)) as usize).unwrap_or_default();
        let ty = ObjectType::from_tag(b.blob_type).unwrap_or(ObjectType::DataChunk);
        envelope_seed(out, ty, &b.id.0, blob);
        if let Ok(payload) = env.open(ty, &b.id.0, blob.to_vec()) {
            let selector = if ty == ObjectType::TreeChunk { 1 } else { 2 };
            compressed_seed(out, selector, &format!("{name}-chunk-{}", b.id.short()), &payload);
        }
    }
    Ok(())
}

fn lock_seeds(out: &mut Seeds, repo: &Repository) -> io::Result<()> {
    let key = format!("locks/{}", hex::encode([0xf0u8; 32]));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    for (name, kind, heartbeat) in [
        ("shared-fresh", LockKind::Shared, now + 100 * 365 * 86400),
        ("exclusive-fresh", LockKind::Exclusive, now + 100 * 365 * 86400),
        ("exclusive-stale", LockKind::Exclusive, 1),
    ] {
        let record = LockRecord {
            version: 1,
            kind,
            hostname: HOSTNAME.into(),
            pid: 1,
            command: "backup".into(),
            created: 1,
            heartbeat,
            lease_secs: 300,
        };
        write_lock_for_tests(repo, &key, &record).map_err(other)?;
        let sealed = repo.storage().get(&key).map_err(other)?;
        repo.storage().delete(&key).map_err(other)?;
        let payload = envelope().open(ObjectType::Lock, key.as_bytes(), sealed.clone()).map_err(other)?;
        out.object("lock", name, &payload, ObjectType::Lock, &key);
        if name == "shared-fresh" {
            envelope_seed(out, ObjectType::Lock, key.as_bytes(), &sealed);
        }
    }
    Ok(())
}

/// A journal of the newest snapshot's files (as if its backup were cut
/// short) and the index cache a load writes.
fn journal_and_cache_seeds(out: &mut Seeds, dir: &Path) -> io::Result<()> {
    let scratch = tempfile::tempdir()?;
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::open(dir).map_err(other)?);
    let cache_dir = scratch.path().join("cache");
    let repo = open(storage)?.with_index_cache(Some(cache_dir.clone())).with_index_cache_always();
    let index = ChunkIndex::load(&repo).map_err(other)?;
    let cache_file = cache_dir.join(format!("{}.index", hex::encode(REPOSITORY_ID)));
    let cache = fs::read(&cache_file)?;
    out.add("index_cache", "fixture-stored", with_mode(0, &cache));
    out.add(
        "index_cache",
        "fixture-body",
        with_mode(1, cache.get(..cache.len().saturating_sub(32)).unwrap_or_default()),
    );
    let newest = snapshots::list(&repo).map_err(other)?.pop().ok_or_else(|| other("no snapshot"))?;
    let entries = snapshot_entries(&repo, &Arc::new(index), &newest).map_err(other)?;
    let journal_dir = scratch.path().join("resume");
    let writer =
        JournalWriter::create(&journal_dir, &binding(&REPOSITORY_ID), repo.envelope().clone()).map_err(other)?;
    for e in entries.iter().filter(|e| e.kind == vger_format::entry::EntryKind::File) {
        writer.append(e, e.mtime + 2_000_000_000);
    }
    writer.flush_and_sync();
    let journal = fs::read(writer.path())?;
    drop(writer);
    out.add("resume_journal", "fixture-stored", with_mode(0, &journal));
    let run = journal.get(8..24).unwrap_or_default();
    let mut rest = journal.get(24..).unwrap_or_default();
    let mut plaintexts = Vec::new();
    let mut n = 0;
    while let Some((len, after)) = rest.split_at_checked(4) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (sealed, after) = after.split_at(len.min(after.len()));
        let payload =
            envelope().open(ObjectType::Snapshot, &journal_frame_identity(run, n), sealed.to_vec()).map_err(other)?;
        plaintexts.push(uncompressed(&payload)?);
        (rest, n) = (after, n + 1);
    }
    let parts: Vec<&[u8]> = plaintexts.iter().map(Vec::as_slice).collect();
    out.add("resume_journal", "fixture-msgpack", with_mode(1, &framed(&parts)));
    Ok(())
}

/// Writes the fixture into `fuzz/fixture/repo` and the seeds into
/// `fuzz/corpus/<target>/seed-<name>` (replacing earlier seeds; other
/// files there, such as regression inputs, stay). Returns the seed count.
pub fn write_all(fuzz_dir: &Path) -> io::Result<usize> {
    let repo_dir = fuzz_dir.join("fixture/repo");
    write_fixture(&repo_dir)?;
    let seeds = seeds(&repo_dir)?;
    for target in crate::TARGETS {
        let dir = fuzz_dir.join("corpus").join(target.name);
        fs::create_dir_all(&dir)?;
        for e in fs::read_dir(&dir)? {
            let path: PathBuf = e?.path();
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("seed-")) {
                fs::remove_file(path)?;
            }
        }
    }
    for s in &seeds {
        fs::write(fuzz_dir.join("corpus").join(s.target).join(format!("seed-{}", s.name)), &s.bytes)?;
    }
    Ok(seeds.len())
}
