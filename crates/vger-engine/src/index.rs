//! The chunk index: which chunk lives in which pack, built from the
//! repository's index segments (docs/format.md, section 7).
//!
//! Held in memory as one sorted array of fixed-size entries (52 bytes a
//! chunk: the 32-byte ID and its location) with a table of where each
//! 16-bit ID prefix starts, so a lookup is one table read and a short
//! walk from where the next 16 bits of the ID put it among the bucket's
//! `chunks / 65536` entries (`find_in_bucket`). A hash map of
//! the same entries costs twice that (hashbrown sizes its table to a power
//! of two above 8/7 of the entries: 111 MiB at one million chunks against
//! 50 MiB here). Chunks added after loading (repair, compaction) go to a
//! small hash map beside it. Chunk IDs are keyed hashes no client can
//! steer, so their leading bytes are uniform: the buckets stay even, the
//! walk is short, and the map hashes by the first 8 bytes. A built index is
//! also kept on local disk between runs ([`crate::index_cache`]).

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

/// One chunk of the sorted array.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) id: ChunkId,
    pub(crate) loc: BlobLocation,
}

/// Bits of ID prefix in the bucket table (65,536 buckets, 256 KiB).
const PREFIX_BITS: u32 = 16;

fn prefix(id: &ChunkId) -> usize {
    usize::from(u16::from_be_bytes([id.0[0], id.0[1]])) >> (16 - PREFIX_BITS)
}

#[derive(Debug, Default)]
pub struct ChunkIndex {
    packs: Vec<PackInfo>,
    pack_positions: HashMap<PackId, u32>,
    /// Sorted by ID, one entry per ID.
    sorted: Vec<Entry>,
    /// `starts[p]..starts[p + 1]` is the range of `sorted` whose IDs begin
    /// with prefix `p`; empty until the array is built.
    starts: Vec<u32>,
    /// Chunks added after the array was built; never an ID of `sorted`.
    extra: IdMap<BlobLocation>,
    segments: Vec<SegmentId>,
}

impl ChunkIndex {
    /// Reads every index segment of the repository, a batch at a time:
    /// each batch is copied into the array and freed before the next is
    /// read, so memory holds the array and one batch, not every decoded
    /// segment at once.
    ///
    /// With a cache folder set on the repository, the index comes from the
    /// local cache plus the segments added since (see [`crate::index_cache`]).
    pub fn load(repo: &Repository) -> Result<Self> {
        Ok(crate::index_cache::load(repo, false)?.0)
    }

    /// An index of the repository's tree chunks only: what reading
    /// snapshots' trees needs ([`crate::tree::TreeStore`]). With a cache
    /// folder set it reads a small local file of tree chunks plus the
    /// segments added since, so its cost follows the number of
    /// directories, not of chunks; else it loads the whole index and keeps
    /// the trees.
    pub fn load_trees(repo: &Repository) -> Result<Self> {
        crate::index_cache::load_trees(repo)
    }

    /// The chunks of this index that `contents` keeps, with all its packs.
    pub(crate) fn only(&self, contents: crate::index_cache::Contents) -> Self {
        let mut entries: Vec<Entry> =
            self.blobs().filter(|(_, loc)| contents.keeps(loc)).map(|(id, loc)| Entry { id: *id, loc: *loc }).collect();
        entries.sort_unstable_by_key(|e| e.id);
        Self::from_sorted(self.packs.clone(), entries, self.segments.clone())
    }

    /// Builds the index from loaded segments (superseded ones are skipped).
    pub fn from_segments(segments: &[(SegmentId, IndexSegment)]) -> Self {
        let mut builder = Builder::default();
        for (id, segment) in segments {
            builder.add_ref(*id, segment);
        }
        builder.finish()
    }

    /// Like [`from_segments`](Self::from_segments), freeing each segment as
    /// soon as its entries are copied.
    pub fn from_owned_segments(segments: Vec<(SegmentId, IndexSegment)>) -> Self {
        let mut builder = Builder::default();
        for (id, segment) in segments {
            builder.add(id, segment);
        }
        builder.finish()
    }

    /// Appends a pack's blobs to the unsorted array (while building).
    fn push_pack(&mut self, pack: &PackEntry) -> u32 {
        let pos = self.pack_position(pack);
        for b in &pack.blobs {
            // Packs are below 4 GiB (pack_target_size is capped at 1 GiB).
            let Ok(offset) = u32::try_from(b.offset) else { continue };
            let loc =
                BlobLocation { pack: pos, offset, length: b.length, raw_length: b.raw_length, blob_type: b.blob_type };
            self.sorted.push(Entry { id: b.id, loc });
        }
        pos
    }

    fn pack_position(&mut self, pack: &PackEntry) -> u32 {
        match self.pack_positions.get(&pack.id) {
            Some(p) => *p,
            None => {
                let p = self.packs.len() as u32;
                self.packs.push(PackInfo { id: pack.id, size: pack.size, created: pack.created });
                self.pack_positions.insert(pack.id, p);
                p
            }
        }
    }

    /// Sorts the array in place (an unstable sort needs no scratch memory;
    /// a stable one would take half the array again at the peak), drops
    /// repeated IDs and fills the prefix table. Of several locations of one
    /// chunk the one in the pack listed first stays (pack positions follow
    /// listing order), then the lowest offset: a deterministic choice.
    fn build(&mut self) {
        self.sorted.sort_unstable_by(|a, b| {
            a.id.cmp(&b.id).then(a.loc.pack.cmp(&b.loc.pack)).then(a.loc.offset.cmp(&b.loc.offset))
        });
        self.sorted.dedup_by(|later, earlier| later.id == earlier.id);
        if self.sorted.len() + self.sorted.len() / 8 < self.sorted.capacity() {
            self.sorted.shrink_to_fit();
        }
        self.fill_prefix_table();
    }

    fn fill_prefix_table(&mut self) {
        let buckets = 1usize << PREFIX_BITS;
        let mut starts = vec![0u32; buckets + 1];
        for e in &self.sorted {
            starts[prefix(&e.id) + 1] += 1;
        }
        for p in 0..buckets {
            starts[p + 1] += starts[p];
        }
        self.starts = starts;
    }

    fn find_sorted(&self, id: &ChunkId) -> Option<&BlobLocation> {
        if self.starts.is_empty() {
            return None;
        }
        let p = prefix(id);
        let (lo, hi) = (self.starts[p] as usize, self.starts[p + 1] as usize);
        let bucket = self.sorted.get(lo..hi)?;
        find_in_bucket(bucket, id).map(|e| &e.loc)
    }

    fn location(&self, id: &ChunkId) -> Option<&BlobLocation> {
        self.find_sorted(id).or_else(|| self.extra.get(id))
    }

    /// Adds (or re-adds) a pack's blobs. A chunk already known keeps its
    /// first location.
    pub fn add_pack(&mut self, pack: &PackEntry) {
        let pos = self.pack_position(pack);
        for b in &pack.blobs {
            // Packs are below 4 GiB (pack_target_size is capped at 1 GiB).
            let Ok(offset) = u32::try_from(b.offset) else { continue };
            if self.find_sorted(&b.id).is_some() {
                continue;
            }
            self.extra.entry(b.id).or_insert(BlobLocation {
                pack: pos,
                offset,
                length: b.length,
                raw_length: b.raw_length,
                blob_type: b.blob_type,
            });
        }
    }

    pub fn contains(&self, id: &ChunkId) -> bool {
        self.location(id).is_some()
    }

    pub fn get(&self, id: &ChunkId) -> Option<(PackInfo, BlobLocation)> {
        let loc = self.location(id)?;
        let pack = self.packs.get(loc.pack as usize)?;
        Some((*pack, *loc))
    }

    pub fn len(&self) -> usize {
        self.sorted.len() + self.extra.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    pub fn segments(&self) -> &[SegmentId] {
        &self.segments
    }

    /// Every chunk: the sorted ones in ID order, then those added since.
    pub fn blobs(&self) -> impl Iterator<Item = (&ChunkId, &BlobLocation)> {
        self.sorted.iter().map(|e| (&e.id, &e.loc)).chain(self.extra.iter())
    }

    /// The index as one list of packs with their blobs (for merged segments).
    pub fn pack_entries(&self) -> Vec<PackEntry> {
        let mut out: Vec<PackEntry> = self
            .packs
            .iter()
            .map(|p| PackEntry { id: p.id, size: p.size, blobs: Vec::new(), created: p.created })
            .collect();
        for (id, loc) in self.blobs() {
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

/// Finds `id` in a bucket of the array. IDs are uniform, so the next 16
/// bits of the ID say where in the bucket it should be: the search starts
/// there and walks, usually a step or two over neighbouring entries (one
/// cache miss), where a binary search touches five distant ones at a few
/// dozen entries a bucket. Measured on 1.9M entries in random order: 240-390
/// ns a lookup against 620-1010 for the binary search. A walk longer than
/// 16 steps (IDs that are not uniform) falls back to a binary search.
fn find_in_bucket<'a>(bucket: &'a [Entry], id: &ChunkId) -> Option<&'a Entry> {
    let fraction = usize::from(u16::from_be_bytes([id.0[2], id.0[3]]));
    let mut i = (fraction * bucket.len()) >> 16;
    let mut here = bucket.get(i)?;
    for _ in 0..16 {
        let step = match here.id.cmp(id) {
            std::cmp::Ordering::Equal => return Some(here),
            std::cmp::Ordering::Less => i.checked_add(1),
            std::cmp::Ordering::Greater => i.checked_sub(1),
        };
        let next = step.and_then(|n| bucket.get(n).map(|e| (n, e)))?;
        // Stepped past where it would be: absent.
        if (here.id < *id) != (next.1.id <= *id) && next.1.id != *id {
            return None;
        }
        (i, here) = next;
    }
    bucket.binary_search_by(|e| e.id.cmp(id)).ok().and_then(|i| bucket.get(i))
}

/// Collects segments in listing order into the unsorted array, then drops
/// what superseded segments brought and sorts (see [`ChunkIndex::load`]).
#[derive(Default)]
struct Builder {
    index: ChunkIndex,
    spans: Vec<Span>,
}

/// What one segment brought: its ID, the range of the array it filled,
/// the pack positions it named and the segments it supersedes.
struct Span {
    id: SegmentId,
    entries: std::ops::Range<usize>,
    packs: Vec<u32>,
    supersedes: Vec<SegmentId>,
}

impl Builder {
    fn add(&mut self, id: SegmentId, segment: IndexSegment) {
        self.add_ref(id, &segment);
    }

    fn add_ref(&mut self, id: SegmentId, segment: &IndexSegment) {
        let start = self.index.sorted.len();
        let packs = segment.packs.iter().map(|p| self.index.push_pack(p)).collect();
        let end = self.index.sorted.len();
        self.spans.push(Span { id, entries: start..end, packs, supersedes: segment.supersedes.clone() });
    }

    fn finish(self) -> ChunkIndex {
        self.finish_with_provenance().0
    }

    fn finish_with_provenance(mut self) -> (ChunkIndex, Provenance) {
        let superseded: HashSet<SegmentId> = self.spans.iter().flat_map(|s| s.supersedes.iter().copied()).collect();
        let live: Vec<bool> = self.spans.iter().map(|s| !superseded.contains(&s.id)).collect();
        if live.iter().any(|l| !l) {
            // Drop the entries of superseded segments.
            let mut span = 0;
            let mut i = 0;
            let spans = &self.spans;
            self.index.sorted.retain(|_| {
                while span < spans.len() && i >= spans[span].entries.end {
                    span += 1;
                }
                i += 1;
                live.get(span).copied().unwrap_or(true)
            });
            // Forget packs that only superseded segments named.
            let mut named = vec![false; self.index.packs.len()];
            for (span, _) in self.spans.iter().zip(&live).filter(|(_, l)| **l) {
                for p in &span.packs {
                    if let Some(n) = named.get_mut(*p as usize) {
                        *n = true;
                    }
                }
            }
            if named.iter().any(|n| !n) {
                let mut remap = vec![u32::MAX; named.len()];
                let old = std::mem::take(&mut self.index.packs);
                self.index.pack_positions.clear();
                for (pos, info) in old.into_iter().enumerate() {
                    if named[pos] {
                        remap[pos] = self.index.packs.len() as u32;
                        self.index.pack_positions.insert(info.id, remap[pos]);
                        self.index.packs.push(info);
                    }
                }
                for e in &mut self.index.sorted {
                    e.loc.pack = remap[e.loc.pack as usize];
                }
            }
        }
        self.index.segments = self.spans.iter().zip(&live).filter(|(_, l)| **l).map(|(s, _)| s.id).collect();
        self.index.build();
        let mut superseded: Vec<SegmentId> = superseded.into_iter().collect();
        superseded.sort_unstable();
        let provenance = Provenance { read: self.spans.iter().map(|s| s.id).collect(), superseded };
        (self.index, provenance)
    }
}

/// The repository's index segments with their sizes, in listing order.
pub(crate) fn list_segments(repo: &Repository) -> Result<Vec<crate::index_cache::SeenSegment>> {
    Ok(repo
        .storage()
        .list(INDEX_PREFIX)?
        .into_iter()
        .filter_map(|o| {
            SegmentId::from_storage_key(&o.key).map(|id| crate::index_cache::SeenSegment { id, size: o.size })
        })
        .collect())
}

/// Reads and decrypts the segments `ids` eight at a time and hands each
/// to `f` in listing order (a segment that cannot be read as its error).
pub(crate) fn for_each_listed(
    repo: &Repository,
    ids: &[SegmentId],
    mut f: impl FnMut(SegmentId, Result<IndexSegment>) -> Result<()>,
) -> Result<()> {
    for batch in ids.chunks(8) {
        read_batch(repo, batch.to_vec(), &mut f)?;
    }
    Ok(())
}

/// Reads the segments `ids` in parallel and hands each to `f`, in order.
fn read_batch(
    repo: &Repository,
    ids: Vec<SegmentId>,
    f: &mut impl FnMut(SegmentId, Result<IndexSegment>) -> Result<()>,
) -> Result<()> {
    for (id, segment) in crate::parallel::map(ids, 8, |id| Ok((id, read_segment(repo, id))))? {
        f(id, segment)?;
    }
    Ok(())
}

/// The segments `listed`, in batches fetched in parallel (one round
/// trip's wait on a remote store) of at most eight segments whose stored
/// sizes add up to at most `budget` bytes; a larger segment comes alone.
/// Every segment of a batch is held decoded until the batch is handed
/// over, so check and compact, which keep nothing else that large, use a
/// small budget: reading all six segments (3-4 MiB each) of a 545k-chunk
/// repository at once raised check's peak RSS from 89 to 115 MiB, while a
/// repository of many small segments (one per backup) still reads them
/// eight at a time.
pub(crate) fn for_each_listed_within(
    repo: &Repository,
    listed: &[crate::index_cache::SeenSegment],
    budget: u64,
    mut f: impl FnMut(SegmentId, Result<IndexSegment>) -> Result<()>,
) -> Result<()> {
    let mut start = 0;
    while start < listed.len() {
        let mut end = start + 1;
        let mut bytes = listed[start].size;
        while end < listed.len() && end - start < 8 && bytes.saturating_add(listed[end].size) <= budget {
            bytes += listed[end].size;
            end += 1;
        }
        read_batch(repo, listed[start..end].iter().map(|s| s.id).collect(), &mut f)?;
        start = end;
    }
    Ok(())
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
        crate::index_cache::load(repo, true)
    }

    /// Reads the listed segments (strictly, or skipping and returning the
    /// unreadable ones when `lenient`) and builds the index; also returns
    /// the segments it read, superseded ones included, and what they
    /// supersede.
    pub(crate) fn load_listed(
        repo: &Repository,
        listed: &[SegmentId],
        lenient: bool,
    ) -> Result<(Self, UnreadableSegments, Provenance)> {
        let mut builder = Builder::default();
        let mut bad = Vec::new();
        for_each_listed(repo, listed, |id, segment| {
            match segment {
                Ok(segment) => builder.add(id, segment),
                Err(e) if lenient => bad.push((id, e.to_string())),
                Err(e) => return Err(e),
            }
            Ok(())
        })?;
        let (index, provenance) = builder.finish_with_provenance();
        Ok((index, bad, provenance))
    }

    /// An index from an array already sorted by ID with one entry per ID
    /// (from the local cache), and the live segments it holds.
    pub(crate) fn from_sorted(packs: Vec<PackInfo>, sorted: Vec<Entry>, segments: Vec<SegmentId>) -> Self {
        let pack_positions = packs.iter().enumerate().map(|(i, p)| (p.id, i as u32)).collect();
        let mut index = ChunkIndex { packs, pack_positions, sorted, segments, ..Default::default() };
        index.fill_prefix_table();
        index
    }

    /// Notes a live segment whose packs were added with [`add_pack`](Self::add_pack).
    pub(crate) fn push_segment(&mut self, id: SegmentId) {
        self.segments.push(id);
    }

    /// Chunks added since the array was built.
    #[cfg(test)]
    pub(crate) fn additions(&self) -> usize {
        self.extra.len()
    }

    /// Appends to `tail` the chunks of `pack` that the array does not hold
    /// (52 bytes each: a backup after a large one may bring a million).
    pub(crate) fn collect_new(&mut self, pack: &PackEntry, tail: &mut Vec<Entry>) {
        let pos = self.pack_position(pack);
        for b in &pack.blobs {
            // Packs are below 4 GiB (pack_target_size is capped at 1 GiB).
            let Ok(offset) = u32::try_from(b.offset) else { continue };
            if self.find_sorted(&b.id).is_none() {
                let loc = BlobLocation {
                    pack: pos,
                    offset,
                    length: b.length,
                    raw_length: b.raw_length,
                    blob_type: b.blob_type,
                };
                tail.push(Entry { id: b.id, loc });
            }
        }
    }

    /// Adds what [`collect_new`](Self::collect_new) gathered: merged into
    /// the sorted array when `merge`, else into the small map beside it.
    /// Of several locations of one chunk the first-listed pack's stays, as
    /// in a fresh build.
    pub(crate) fn add_collected(&mut self, mut tail: Vec<Entry>, merge: bool) {
        tail.sort_unstable_by(|a, b| {
            a.id.cmp(&b.id).then(a.loc.pack.cmp(&b.loc.pack)).then(a.loc.offset.cmp(&b.loc.offset))
        });
        tail.dedup_by(|later, earlier| later.id == earlier.id);
        if !merge {
            self.extra.reserve(tail.len());
            for e in tail {
                self.extra.entry(e.id).or_insert(e.loc);
            }
            return;
        }
        let mut add = tail;
        // Anything in the map joins the merge too (the array then holds all).
        if !self.extra.is_empty() {
            add.extend(self.extra.drain().map(|(id, loc)| Entry { id, loc }));
            add.sort_unstable_by_key(|e| e.id);
            add.dedup_by(|later, earlier| later.id == earlier.id);
        }
        self.merge_sorted(add);
    }

    /// Merges `add` (sorted, no ID of the array) into the array from the
    /// back, so the array grows by only its length (no second copy).
    fn merge_sorted(&mut self, add: Vec<Entry>) {
        let old = self.sorted.len();
        let Some(filler) = add.first().copied() else { return };
        self.sorted.resize(old + add.len(), filler);
        let (mut i, mut j, mut w) = (old, add.len(), old + add.len());
        while j > 0 {
            w -= 1;
            if i > 0 && self.sorted[i - 1].id > add[j - 1].id {
                self.sorted[w] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[w] = add[j - 1];
                j -= 1;
            }
        }
        self.fill_prefix_table();
    }

    /// The sorted array, for the local cache (additions not included).
    pub(crate) fn sorted_entries(&self) -> &[Entry] {
        &self.sorted
    }
}

/// The segments an index was built from: every one read (superseded ones
/// included) and every segment they supersede.
#[derive(Debug, Default)]
pub(crate) struct Provenance {
    pub read: Vec<SegmentId>,
    pub superseded: Vec<SegmentId>,
}

pub(crate) fn read_segment(repo: &Repository, id: SegmentId) -> Result<IndexSegment> {
    let key = id.storage_key();
    let what = format!("index segment {}", id.short());
    let bytes = repo.storage().get(&key)?;
    let segment: IndexSegment = open_object(repo.envelope(), ObjectType::IndexSegment, key.as_bytes(), &what, bytes)?;
    check_version(&what, segment.version, INDEX_SEGMENT_VERSION)?;
    Ok(segment)
}

/// Fetches and decrypts all segments, several at a time (the fuzz
/// harness compares this strict load with the lenient one of backups).
pub fn load_segments(repo: &Repository) -> Result<Vec<(SegmentId, IndexSegment)>> {
    let mut segments = Vec::new();
    let ids: Vec<SegmentId> = list_segments(repo)?.into_iter().map(|s| s.id).collect();
    for_each_listed(repo, &ids, |id, segment| {
        segments.push((id, segment?));
        Ok(())
    })?;
    Ok(segments)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail by panicking.
mod tests {
    use super::*;

    fn id(n: u64) -> ChunkId {
        // Spread over the prefixes like real keyed hashes.
        ChunkId(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    fn pack(tag: u8, ids: &[u64]) -> PackEntry {
        PackEntry {
            id: PackId([tag; 32]),
            size: 1000,
            created: 0,
            blobs: ids
                .iter()
                .enumerate()
                .map(|(i, n)| BlobEntry { id: id(*n), blob_type: 1, offset: i as u64 * 10, length: 10, raw_length: 9 })
                .collect(),
        }
    }

    fn segment(packs: Vec<PackEntry>, supersedes: Vec<SegmentId>) -> IndexSegment {
        IndexSegment { version: INDEX_SEGMENT_VERSION, packs, supersedes }
    }

    #[test]
    fn lookups_in_the_sorted_array_and_the_additions() {
        let many: Vec<u64> = (0..200_000).collect();
        let segments = vec![
            (SegmentId([1; 32]), segment(vec![pack(1, &many[..100_000]), pack(2, &[5, 7])], vec![])),
            // Superseded: neither its chunks nor its pack may appear.
            (SegmentId([3; 32]), segment(vec![pack(9, &[1_000_000, 1_000_001]), pack(1, &[2_000_000])], vec![])),
            (SegmentId([2; 32]), segment(vec![pack(3, &many[100_000..])], vec![])),
            (SegmentId([4; 32]), segment(vec![], vec![SegmentId([3; 32])])),
        ];
        let borrowed = ChunkIndex::from_segments(&segments);
        let index = ChunkIndex::from_owned_segments(segments);
        for ix in [&borrowed, &index] {
            assert_eq!(ix.len(), 200_000);
            assert_eq!(ix.segments().len(), 3);
            for n in (0..200_000).step_by(997) {
                assert!(ix.contains(&id(n)), "{n}");
            }
            assert!(!ix.contains(&id(1_000_000)), "a superseded segment's chunk");
            assert!(!ix.contains(&id(2_000_000)), "a superseded segment's chunk in a live pack");
            assert_eq!(ix.packs().len(), 3, "pack 9 was named only by the superseded segment");
            assert!(ix.packs().iter().all(|p| p.id != PackId([9; 32])));
            assert_eq!(ix.get(&id(150_000)).unwrap().0.id, PackId([3; 32]));
            assert_eq!(ix.get(&id(99_999)).unwrap().0.id, PackId([1; 32]));
            assert_eq!(ix.segments(), [SegmentId([1; 32]), SegmentId([2; 32]), SegmentId([4; 32])]);
            assert!(!ix.contains(&id(5_000_000)));
            // Chunk 5 is in pack 1 first, then pack 2: the first location stays.
            let (p, loc) = ix.get(&id(5)).unwrap();
            assert_eq!((p.id, loc.offset), (PackId([1; 32]), 50));
        }
        let mut index = index;
        index.add_pack(&pack(4, &[7, 300_000, 300_001]));
        assert_eq!(index.len(), 200_002);
        assert_eq!(index.get(&id(7)).unwrap().0.id, PackId([1; 32]), "known chunks keep their place");
        assert_eq!(index.get(&id(300_001)).unwrap().0.id, PackId([4; 32]));
        assert_eq!(index.blobs().count(), 200_002);
        let entries = index.pack_entries();
        assert_eq!(entries.iter().map(|p| p.blobs.len()).sum::<usize>(), 200_002);
        assert!(ChunkIndex::default().get(&id(1)).is_none());
    }

    #[test]
    fn the_bucket_search_finds_what_a_binary_search_finds() {
        let present: Vec<u64> = (0..50_000).map(|n| n * 2).collect();
        let index = ChunkIndex::from_segments(&[(SegmentId([1; 32]), segment(vec![pack(1, &present)], vec![]))]);
        for n in 0..100_000u64 {
            assert_eq!(index.contains(&id(n)), n % 2 == 0, "{n}");
        }
        // IDs that are not uniform: one bucket, ordered against the guess.
        let mut entries: Vec<Entry> = (0..300u32)
            .map(|n| {
                let mut raw = [0u8; 32];
                raw[2..6].copy_from_slice(&(n * 3).to_be_bytes());
                raw[2] = 0xff;
                let loc = BlobLocation { pack: 0, offset: n, length: 1, raw_length: 1, blob_type: 1 };
                Entry { id: ChunkId(raw), loc }
            })
            .collect();
        entries.sort_unstable_by_key(|e| e.id);
        let bucket = entries.clone();
        for e in &bucket {
            assert_eq!(find_in_bucket(&bucket, &e.id).map(|f| f.loc), Some(e.loc));
            let mut absent = e.id;
            absent.0[31] = 1;
            assert!(find_in_bucket(&bucket, &absent).is_none());
        }
        let mut low = ChunkId([0; 32]);
        low.0[2] = 0xff;
        assert!(find_in_bucket(&bucket, &ChunkId([0; 32])).is_none());
        assert!(find_in_bucket(&bucket, &ChunkId([0xff; 32])).is_none());
        assert!(find_in_bucket(&[], &low).is_none());
    }
}
