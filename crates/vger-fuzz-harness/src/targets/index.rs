//! Targets for the chunk index: an index segment among the fixture's
//! own, and the local index cache file.

use std::os::unix::fs::DirBuilderExt;

use vger_crypto::ObjectType;
use vger_engine::check::{check, CheckOptions};
use vger_engine::index::{load_segments, ChunkIndex};
use vger_engine::progress::Progress;
use vger_format::id::SegmentId;

use super::{refused, stored_or_sealed, Input};
use crate::fixture::{fixture, master_key};
use crate::Outcome;

/// Where the fuzzed segment is stored: a listing puts it after the
/// fixture's (ids sort by hex).
const SEGMENT: SegmentId = SegmentId([0xf0; 32]);

/// The segment (stored, or its plaintext sealed here) joins the fixture's
/// segments: every segment is loaded and the index built from them must
/// find each chunk a live segment names; then `check` reads the
/// repository with it (its own table of chunks, snapshots, trees).
pub(crate) fn index_segment(data: &[u8]) -> Outcome {
    let f = fixture();
    let key = SEGMENT.storage_key();
    let bytes = stored_or_sealed(&f, data, ObjectType::IndexSegment, key.as_bytes());
    let _planted = f.plant(&key, &bytes);
    let (lenient, unreadable) = ChunkIndex::load_lenient(&f.repo).map_err(refused)?;
    let strict = load_segments(&f.repo);
    let report = check(&f.repo, &CheckOptions::default(), &Progress::default()).map_err(refused)?;
    let segments = match strict {
        Ok(segments) => segments,
        Err(e) => {
            assert!(unreadable.iter().any(|(id, _)| *id == SEGMENT), "strict load refused, lenient did not: {e}");
            assert!(!report.is_ok(), "check passed a repository with an unreadable segment");
            return Err(refused(e));
        }
    };
    assert!(unreadable.is_empty());
    let index = ChunkIndex::from_segments(&segments);
    assert_eq!(index.len(), lenient.len(), "two ways to build the index disagree");
    let superseded: Vec<SegmentId> = segments.iter().flat_map(|(_, s)| s.supersedes.iter().copied()).collect();
    for (id, segment) in &segments {
        if superseded.contains(id) {
            continue;
        }
        for blob in segment.packs.iter().flat_map(|p| &p.blobs) {
            if u32::try_from(blob.offset).is_ok() {
                assert!(index.contains(&blob.id), "a chunk of a live segment is not in the index");
                assert!(lenient.get(&blob.id).is_some());
            }
        }
    }
    let _ = index.pack_entries();
    Ok(())
}

/// The index cache file (stored: as is, so its tag must hold; plaintext:
/// a body the target tags with the fixture's cache key). Loading the index
/// must give what the segments give whenever the file is not authentic,
/// and never panic on what an authentic file holds. `Ok` when the cache
/// was used, `Err` when it was rebuilt.
pub(crate) fn index_cache(data: &[u8]) -> Outcome {
    let f = fixture();
    let (bytes, authentic) = match Input::read(data) {
        Input::Stored(bytes) => (bytes.to_vec(), false),
        Input::Plaintext(body) => {
            let mut input = b"vger local index cache v1".to_vec();
            input.extend_from_slice(f.repo.repository_id());
            let key = master_key().config_mac(&input);
            let mut bytes = body.to_vec();
            bytes.extend_from_slice(blake3::keyed_hash(&key, body).as_bytes());
            (bytes, true)
        }
    };
    let path = f.cache_dir.join(&f.cache_name);
    let result = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&f.cache_dir)
        .and_then(|()| std::fs::write(&path, &bytes))
        .map_err(refused)
        .and_then(|()| ChunkIndex::load(&f.cached_repo).map_err(refused))
        .map(|index| (index, std::fs::read(&path).ok()));
    let _ = std::fs::remove_dir_all(&f.cache_dir);
    let (index, after) = result?;
    // Where a chunk is, not the position of its pack in the pack table
    // (which depends on the order the index was built in).
    let place = |i: &ChunkIndex, id| i.get(id).map(|(p, l)| (p.id, l.offset, l.length, l.raw_length, l.blob_type));
    for (id, _) in f.index.blobs() {
        if !authentic {
            assert_eq!(place(&index, id), place(&f.index, id), "an index cache without a valid tag changed a lookup");
        }
    }
    if !authentic {
        assert_eq!(index.len(), f.index.len(), "an index cache without a valid tag changed the index");
    }
    if after.as_deref() == Some(&bytes[..]) {
        Ok(())
    } else {
        Err("the cache was rebuilt".into())
    }
}
