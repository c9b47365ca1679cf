//! The chunk index: which chunk lives in which pack, built from the
//! repository's index segments (docs/format.md, section 7).
//!
//! Held in memory as one hash map keyed by chunk ID with compact values
//! (about 60 bytes a chunk with the map's overhead). Chunk IDs are keyed
//! hashes no client can steer, so the map hashes by their first 8 bytes.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use vger_crypto::ObjectType;
use vger_format::id::{ChunkId, PackId, SegmentId, INDEX_PREFIX};
use vger_format::index::{BlobEntry, IndexSegment, PackEntry, INDEX_SEGMENT_VERSION};
use vger_format::object::{check_version, open_object, seal_object};
use vger_storage::Storage;

use crate::repository::Repository;
use crate::Result;

/// Hashes a chunk ID by its first eight bytes (they are already uniform).
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // ChunkId hashes as its 32-byte array: take the first 8 bytes.
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(b);
    }

    fn write_usize(&mut self, _: usize) {
        // The array length prefix carries no information.
    }
}

pub type IdMap<V> = HashMap<ChunkId, V, BuildHasherDefault<IdHasher>>;
pub type IdSet = HashSet<ChunkId, BuildHasherDefault<IdHasher>>;

/// Where a blob is: its pack (as a position in [`ChunkIndex::packs`]) and
/// the envelope's place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: u32,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
    pub blob_type: u8,
}

/// Everything the index knows about one pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackInfo {
    pub id: PackId,
    pub size: u64,
    /// Unix seconds when stored; 0 when unknown.
    pub created: u64,
}

#[derive(Debug, Default)]
pub struct ChunkIndex {
    packs: Vec<PackInfo>,
    pack_positions: HashMap<PackId, u32>,
    blobs: IdMap<BlobLocation>,
    segments: Vec<SegmentId>,
}

impl ChunkIndex {
    /// Reads every index segment of the repository.
    pub fn load(repo: &Repository) -> Result<Self> {
        let segments = load_segments(repo)?;
        Ok(Self::from_segments(&segments))
    }

    /// Builds the index from loaded segments (superseded ones are skipped).
    pub fn from_segments(segments: &[(SegmentId, IndexSegment)]) -> Self {
        let mut index = ChunkIndex::default();
        let superseded: HashSet<SegmentId> = segments.iter().flat_map(|(_, s)| s.supersedes.iter().copied()).collect();
        // One allocation of the right size: growing by doubling would hold
        // the old and the new table at once.
        let live = segments.iter().filter(|(id, _)| !superseded.contains(id));
        index.blobs.reserve(live.flat_map(|(_, s)| &s.packs).map(|p| p.blobs.len()).sum());
        for (id, segment) in segments {
            if superseded.contains(id) {
                continue;
            }
            index.segments.push(*id);
            for pack in &segment.packs {
                index.add_pack(pack);
            }
        }
        index
    }

    /// Adds (or re-adds) a pack's blobs. A chunk already known keeps its
    /// first location.
    pub fn add_pack(&mut self, pack: &PackEntry) {
        let pos = match self.pack_positions.get(&pack.id) {
            Some(p) => *p,
            None => {
                let p = self.packs.len() as u32;
                self.packs.push(PackInfo { id: pack.id, size: pack.size, created: pack.created });
                self.pack_positions.insert(pack.id, p);
                p
            }
        };
        self.blobs.reserve(pack.blobs.len());
        for b in &pack.blobs {
            // Packs are below 4 GiB (pack_target_size is capped at 1 GiB).
            let Ok(offset) = u32::try_from(b.offset) else { continue };
            self.blobs.entry(b.id).or_insert(BlobLocation {
                pack: pos,
                offset,
                length: b.length,
                raw_length: b.raw_length,
                blob_type: b.blob_type,
            });
        }
    }

    pub fn contains(&self, id: &ChunkId) -> bool {
        self.blobs.contains_key(id)
    }

    pub fn get(&self, id: &ChunkId) -> Option<(PackInfo, BlobLocation)> {
        let loc = self.blobs.get(id)?;
        let pack = self.packs.get(loc.pack as usize)?;
        Some((*pack, *loc))
    }

    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    pub fn segments(&self) -> &[SegmentId] {
        &self.segments
    }

    pub fn blobs(&self) -> impl Iterator<Item = (&ChunkId, &BlobLocation)> {
        self.blobs.iter()
    }

    /// The index as one list of packs with their blobs (for merged segments).
    pub fn pack_entries(&self) -> Vec<PackEntry> {
        let mut out: Vec<PackEntry> = self
            .packs
            .iter()
            .map(|p| PackEntry { id: p.id, size: p.size, blobs: Vec::new(), created: p.created })
            .collect();
        for (id, loc) in &self.blobs {
            if let Some(p) = out.get_mut(loc.pack as usize) {
                p.blobs.push(BlobEntry {
                    id: *id,
                    blob_type: loc.blob_type,
                    offset: loc.offset.into(),
                    length: loc.length,
                    raw_length: loc.raw_length,
                });
            }
        }
        for p in &mut out {
            p.blobs.sort_by_key(|b| b.offset);
        }
        out
    }
}

/// Segments that could not be read, with the reason.
pub type UnreadableSegments = Vec<(SegmentId, String)>;

impl ChunkIndex {
    /// Like [`ChunkIndex::load`], but skips segments that cannot be read
    /// and returns them: reading snapshots and backing up stay possible
    /// with a damaged segment (a backup re-uploads what it cannot find;
    /// a restore fails only for files whose chunks were in it). Maintenance
    /// uses the strict `load`.
    pub fn load_lenient(repo: &Repository) -> Result<(Self, UnreadableSegments)> {
        let ids: Vec<SegmentId> = repo
            .storage()
            .list(INDEX_PREFIX)?
            .into_iter()
            .filter_map(|o| SegmentId::from_storage_key(&o.key))
            .collect();
        let results = crate::parallel::map(ids, 8, |id| Ok((id, read_segment(repo, id))))?;
        let mut segments = Vec::new();
        let mut bad = Vec::new();
        for (id, r) in results {
            match r {
                Ok(seg) => segments.push((id, seg)),
                Err(e) => bad.push((id, e.to_string())),
            }
        }
        Ok((Self::from_segments(&segments), bad))
    }
}

fn read_segment(repo: &Repository, id: SegmentId) -> Result<IndexSegment> {
    let key = id.storage_key();
    let what = format!("index segment {}", id.short());
    let bytes = repo.storage().get(&key)?;
    let segment: IndexSegment = open_object(repo.envelope(), ObjectType::IndexSegment, key.as_bytes(), &what, bytes)?;
    check_version(&what, segment.version, INDEX_SEGMENT_VERSION)?;
    Ok(segment)
}

/// Fetches and decrypts all segments, several at a time.
pub fn load_segments(repo: &Repository) -> Result<Vec<(SegmentId, IndexSegment)>> {
    let keys: Vec<SegmentId> =
        repo.storage().list(INDEX_PREFIX)?.into_iter().filter_map(|o| SegmentId::from_storage_key(&o.key)).collect();
    let storage = repo.storage().clone();
    let envelope = repo.envelope().clone();
    crate::parallel::map(keys, 8, move |id| {
        let key = id.storage_key();
        let bytes = storage.get(&key)?;
        let segment: IndexSegment =
            open_object(&envelope, ObjectType::IndexSegment, key.as_bytes(), "index segment", bytes)?;
        check_version("index segment", segment.version, INDEX_SEGMENT_VERSION)?;
        Ok((id, segment))
    })
}

/// Writes a new index segment naming `packs`.
pub fn write_segment(
    storage: &Arc<dyn Storage>,
    envelope: &vger_crypto::Envelope,
    packs: Vec<PackEntry>,
) -> Result<SegmentId> {
    write_merged_segment(storage, envelope, packs, Vec::new())
}

/// Writes a segment that replaces the segments in `supersedes`.
pub fn write_merged_segment(
    storage: &Arc<dyn Storage>,
    envelope: &vger_crypto::Envelope,
    packs: Vec<PackEntry>,
    supersedes: Vec<SegmentId>,
) -> Result<SegmentId> {
    let id = SegmentId(vger_format::id::random_id()?);
    let key = id.storage_key();
    let segment = IndexSegment { version: INDEX_SEGMENT_VERSION, packs, supersedes };
    let bytes = seal_object(envelope, ObjectType::IndexSegment, key.as_bytes(), "index segment", &segment)?;
    storage.put_new(&key, &bytes)?;
    Ok(id)
}
