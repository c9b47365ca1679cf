//! A stolen client plays its hand against a real vger-server: it holds the
//! repository's passphrase and an `append` token, so it can read the
//! repository and add objects, but not delete or overwrite any. It stores
//! a forged pack whose trailer claims every data chunk of the repository
//! (the bytes are garbage sealed under the real key), and an index segment
//! that lists that pack, claims it is old, and supersedes every real
//! segment; in the second game the segment also names the real packs as
//! old and empty. The administrator then runs prune and compact with a
//! `full` token, as any day. Every snapshot made before the theft must
//! still restore byte for byte, and `check --verify-data` must pass.
//!
//! Without compact's proofs (`vger-engine/src/compact/copies.rs`) the
//! first game ends with an index that sends restores to the garbage, and
//! the second with the real packs deleted.

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{Server, APPEND, FULL};
use vger_crypto::{KdfParams, ObjectType};
use vger_engine::backup::{backup, BackupOptions, BackupSource, ChangeDetection};
use vger_engine::check::{check, CheckOptions};
use vger_engine::compact::{compact, CompactOptions};
use vger_engine::index::ChunkIndex;
use vger_engine::progress::Progress;
use vger_engine::prune::{prune, PruneOptions};
use vger_engine::repository::{InitOptions, Repository};
use vger_engine::restore::{restore, RestoreOptions};
use vger_engine::retention::RetentionPolicy;
use vger_engine::snapshots;
use vger_format::compress::Codec;
use vger_format::id::{ChunkId, SegmentId, INDEX_PREFIX};
use vger_format::index::{IndexSegment, PackEntry, INDEX_SEGMENT_VERSION};
use vger_format::object::seal_object;
use vger_format::pack::PackBuilder;
use vger_fs::{WalkOptions, WalkRoot};
use vger_storage::Storage;

const PASSPHRASE: &[u8] = b"the owner's passphrase";
const REPO: &str = "laptop";

/// `len` bytes that do not compress, different for each `seed`.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new().update(&seed.to_le_bytes()).finalize_xof().fill(&mut out);
    out
}

fn open(server: &Server, token: &str) -> Repository {
    Repository::open(Arc::new(server.client(REPO, token)), &|| Ok(PASSPHRASE.to_vec())).unwrap()
}

fn source(src: &Path) -> BackupSource {
    BackupSource {
        label: "home".into(),
        roots: vec![WalkRoot { abs: src.to_path_buf(), rel: Vec::new() }],
        paths: vec![src.display().to_string()],
        walk: WalkOptions::default(),
        change_detection: ChangeDetection::Strict,
        dumps: Vec::new(),
    }
}

/// Two snapshots of a changing folder; returns a copy of the folder as
/// each snapshot saw it, by snapshot id.
fn owner_backs_up(server: &Server, work: &Path) -> Vec<(String, PathBuf)> {
    let storage = Arc::new(server.client(REPO, FULL));
    let opts = InitOptions {
        kdf: KdfParams::insecure_fast(),
        chunker: vger_chunker::ChunkerParams { min_size: 16 << 10, avg_size: 64 << 10, max_size: 256 << 10 },
        pack_target_size: 1 << 20,
        ..InitOptions::default()
    };
    let repo = Repository::init(storage, Some(PASSPHRASE.to_vec()), opts).unwrap();
    let src = work.join("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    let mut states = Vec::new();
    for round in 0..2u64 {
        for i in 0..6 {
            std::fs::write(src.join(format!("docs/file{i}")), noise(150_000 + i as usize * 7_000, round * 10 + i))
                .unwrap();
        }
        std::fs::write(src.join("notes.txt"), format!("round {round}\n")).unwrap();
        let opts = BackupOptions { threads: 2, ..Default::default() };
        let report = backup(&repo, &source(&src), &opts, &Progress::default()).unwrap();
        let copy = work.join(format!("expected-{round}"));
        copy_tree(&src, &copy);
        states.push((report.snapshot_id.to_hex(), copy));
    }
    states
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The thief's forgery, with the key and an append token: a segment that
/// supersedes every real one and lists the forged pack (so the real packs
/// look unindexed, and compact adopts them after it); with `hide_real` it
/// also names the real packs as old and empty.
fn thief_forges(server: &Server, hide_real: bool) -> vger_format::id::PackId {
    let thief = open(server, APPEND);
    let index = ChunkIndex::load(&thief).unwrap();
    let data_chunks: Vec<ChunkId> =
        index.blobs().filter(|(_, loc)| loc.blob_type == ObjectType::DataChunk as u8).map(|(id, _)| *id).collect();
    assert!(data_chunks.len() > 10, "a test repository with some data: {}", data_chunks.len());
    // Garbage under every real chunk id, sealed with the real key: it
    // decrypts, but does not hash to its id.
    let mut forged = PackBuilder::with_capacity(4 << 20);
    for (n, id) in data_chunks.iter().enumerate() {
        let garbage = noise(1000, 9_000 + n as u64);
        let sealed =
            vger_engine::blob::seal_chunk(thief.envelope(), Codec::None, ObjectType::DataChunk, id, &garbage).unwrap();
        forged.add(*id, ObjectType::DataChunk, garbage.len() as u32, &sealed);
    }
    let forged = forged.finish(thief.envelope()).unwrap();
    thief.storage().put_new(&forged.id.storage_key(), &forged.bytes).unwrap();
    let mut packs = vec![PackEntry { created: 0, ..forged.entry.clone() }];
    if hide_real {
        packs.extend(index.pack_entries().into_iter().map(|p| PackEntry { blobs: Vec::new(), created: 0, ..p }));
    }
    let supersedes: Vec<SegmentId> = thief
        .storage()
        .list(INDEX_PREFIX)
        .unwrap()
        .iter()
        .filter_map(|o| SegmentId::from_storage_key(&o.key))
        .collect();
    let segment = IndexSegment { version: INDEX_SEGMENT_VERSION, packs, supersedes };
    // Readers take the first claim they meet, so the thief wants its
    // segment listed first; the server's listing order is its own, so the
    // thief writes copies under new names until one comes first.
    let mut ours = std::collections::HashSet::new();
    for n in 0..256u32 {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&n.to_le_bytes());
        let key = SegmentId(id).storage_key();
        let sealed =
            seal_object(thief.envelope(), ObjectType::IndexSegment, key.as_bytes(), "index segment", &segment).unwrap();
        thief.storage().put_new(&key, &sealed).unwrap();
        ours.insert(key.clone());
        // The append token may not undo anything.
        assert!(thief.storage().delete(&key).is_err(), "an append token deleted a segment");
        if thief.storage().list(INDEX_PREFIX).unwrap().first().is_some_and(|o| ours.contains(&o.key)) {
            break;
        }
    }
    forged.id
}

/// The owner's routine maintenance with a full token, as if days after
/// the backups: no grace period, so every pack counts as old, whatever
/// the segments claim of its age; the real packs must be saved by
/// compact's proofs, not by being young. Packs are repacked once half
/// unused: the games are about which packs survive, not how tightly the
/// rest is packed.
fn owner_maintains(server: &Server) -> vger_engine::compact::CompactReport {
    let repo = open(server, FULL);
    let policy = RetentionPolicy { keep_last: Some(10), ..RetentionPolicy::default() };
    let pruned = prune(&repo, &|_| Ok(policy.clone()), &PruneOptions::default()).unwrap();
    assert_eq!(pruned.deleted, 0, "{pruned:?}");
    let opts = CompactOptions { grace: std::time::Duration::ZERO, threshold_pct: 50, ..CompactOptions::default() };
    compact(&repo, &opts, &vger_engine::progress::Progress::default()).unwrap()
}

fn every_snapshot_restores(server: &Server, work: &Path, states: &[(String, PathBuf)]) {
    let repo = open(server, FULL);
    for (id, expected) in states {
        let snap = snapshots::find(&repo, id).unwrap();
        let dest = work.join(format!("restored-{}", &id[..8]));
        let report = restore(&repo, &snap, &dest, &RestoreOptions::default(), &Progress::default()).unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        let status = std::process::Command::new("diff").arg("-r").arg(expected).arg(&dest).status().unwrap();
        assert!(status.success(), "snapshot {id} does not restore as it was backed up");
    }
    let checked = check(&repo, &CheckOptions { verify_data: true, ..Default::default() }, &Progress::default());
    let checked = checked.unwrap();
    assert!(checked.is_ok(), "check after the theft and maintenance: {:?}", checked.errors);
}

fn play(hide_real: bool) {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let states = owner_backs_up(&server, work.path());
    let forged = thief_forges(&server, hide_real);
    let report = owner_maintains(&server);
    let storage = server.client(REPO, FULL);
    assert_eq!(storage.size(&forged.storage_key()).unwrap(), None, "the forged pack is gone: {report:?}");
    every_snapshot_restores(&server, work.path(), &states);
    // A second maintenance run finds nothing more to do and loses nothing.
    let again = owner_maintains(&server);
    assert_eq!((again.packs_deleted, again.copies_refused, again.packs_repacked), (0, 0, 0), "{again:?}");
    every_snapshot_restores(&server, work.path(), &states);
}

#[test]
fn a_forged_index_that_supersedes_the_real_one_costs_no_snapshot() {
    play(false);
}

#[test]
fn a_forged_index_that_also_names_the_real_packs_empty_costs_no_snapshot() {
    play(true);
}
