//! Every object of a small repository (the fuzz fixture: a config, a key
//! slot, two packs, two index segments, two snapshots) cut at every byte
//! boundary, each cut read back by what reads that object: refused with an
//! error every time, never a panic, and a pack cut short still gives the
//! chunks that lie wholly before the cut (that is what repair salvages).

#![allow(clippy::unwrap_used, clippy::panic)] // Tests fail by panicking.

use vger_crypto::ObjectType;
use vger_engine::blob::BlobReader;
use vger_engine::index::{BlobLocation, ChunkIndex};
use vger_engine::repository::Repository;
use vger_engine::snapshots;
use vger_format::id::{ChunkId, PackId, SnapshotId, CONFIG_KEY, INDEX_PREFIX, KEYS_PREFIX};
use vger_format::index::IndexSegment;
use vger_format::object::open_object;
use vger_fuzz_harness::fixture::{fixture, PASSPHRASE};

#[test]
fn every_object_cut_at_every_byte_is_refused() {
    let f = fixture();
    let objects = f.storage.all();
    let mut cuts = 0;
    for (key, bytes) in &objects {
        for cut in 0..bytes.len() {
            let _planted = f.plant(key, &bytes[..cut]);
            let what = format!("{key} cut to {cut} of {} bytes", bytes.len());
            if key == CONFIG_KEY || key.starts_with(KEYS_PREFIX) {
                let opened = Repository::open(f.storage.clone(), &|| Ok(PASSPHRASE.to_vec()));
                assert!(opened.is_err(), "{what} opened");
            } else if key.starts_with(INDEX_PREFIX) {
                let decoded: Result<IndexSegment, _> = open_object(
                    f.repo.envelope(),
                    ObjectType::IndexSegment,
                    key.as_bytes(),
                    "segment",
                    bytes[..cut].to_vec(),
                );
                assert!(decoded.is_err(), "{what} decoded");
                // The whole load (8 segments at a time, on threads) on a sample.
                if cut.is_multiple_of(97) {
                    assert!(ChunkIndex::load(&f.repo).is_err(), "{what} loaded");
                    let (_, unreadable) = ChunkIndex::load_lenient(&f.repo).unwrap();
                    assert_eq!(unreadable.len(), 1, "{what}");
                }
            } else if let Some(id) = SnapshotId::from_storage_key(key) {
                assert!(snapshots::load(&f.repo, id).is_err(), "{what} loaded");
            } else if let Some(id) = PackId::from_storage_key(key) {
                truncated_pack(&f, id, cut, &what);
            } else {
                panic!("the fixture holds an object of no known kind: {key}");
            }
            cuts += 1;
        }
    }
    assert!(cuts > 1000, "only {cuts} cuts: the fixture is missing objects");
}

/// The trailer of a cut pack is gone at every cut. Its chunks, read
/// through the index, come back while they lie before the cut and fail
/// after: checked at the cuts next to a chunk's end and at every 97th
/// (reading them all at every byte took a minute for nothing more).
fn truncated_pack(f: &vger_fuzz_harness::fixture::Fixture, id: PackId, cut: usize, what: &str) {
    assert!(vger_engine::packs::pack_entry(&f.repo, id, cut as u64, 0).is_err(), "{what}: trailer read");
    let cut = cut as u64;
    let end = |l: &BlobLocation| u64::from(l.offset) + u64::from(l.length);
    let in_pack = |c: &ChunkId| f.index.get(c).is_some_and(|(p, _)| p.id == id);
    if !cut.is_multiple_of(97) && !f.index.blobs().any(|(c, l)| end(l).abs_diff(cut) <= 1 && in_pack(c)) {
        return;
    }
    let reader = BlobReader::new(&f.repo, &f.index);
    for (chunk, loc) in f.index.blobs().filter(|(c, _)| in_pack(c)) {
        let ty = ObjectType::from_tag(loc.blob_type).unwrap();
        let read = reader.read(chunk, ty, &|| what.to_owned());
        assert_eq!(read.is_ok(), end(loc) <= cut, "{what}: chunk at {} +{}: {:?}", loc.offset, loc.length, read.err());
    }
}
