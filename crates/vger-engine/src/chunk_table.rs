//! The chunk table of maintenance (`check`, `compact`, `check --repair`):
//! every chunk the index segments name, as one array of 48-byte rows sorted
//! by ID, built one segment at a time.
//!
//! Unlike [`ChunkIndex`](crate::index::ChunkIndex), which serves lookups
//! during backup and restore, the table gives each chunk a position
//! (`0..len`), so that what maintenance learns per chunk (referenced,
//! damaged) is one bit in a [`Bits`] instead of a 32-byte ID in a set, and
//! the chunks of one pack are a sorted list of `u32` positions
//! ([`ChunkTable::positions_by_pack`]) instead of a list of IDs. Lookups are
//! a binary search within the run of rows sharing the ID's 16-bit prefix.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use vger_crypto::ObjectType;
use vger_format::id::{ChunkId, PackId, SegmentId};
use vger_format::index::{BlobEntry, IndexSegment, PackEntry};

pub(crate) use crate::index::{for_each_listed_within, list_segments, read_segment};
use crate::index::{ChunkIndex, PackInfo};

/// Stored bytes of index segments check and compact fetch at once (see
/// `for_each_listed_within`): a segment of 100,000 blobs is about 4 MiB.
pub(crate) const SEGMENT_BUDGET: u64 = 2 << 20;

/// The top bit of [`Row::length_and_kind`]: the blob is a tree chunk.
const TREE_BIT: u32 = 1 << 31;

/// One chunk: its ID and where its envelope is. 48 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub id: ChunkId,
    /// Position of the pack in [`ChunkTable::packs`].
    pub pack: u32,
    pub offset: u32,
    /// Envelope length, with [`TREE_BIT`] set for tree chunks (envelopes
    /// are far below 2 GiB: chunks are at most 16 MiB).
    length_and_kind: u32,
    pub raw_length: u32,
}

impl Row {
    pub fn length(&self) -> u32 {
        self.length_and_kind & !TREE_BIT
    }

    pub fn object_type(&self) -> ObjectType {
        if self.length_and_kind & TREE_BIT != 0 {
            ObjectType::TreeChunk
        } else {
            ObjectType::DataChunk
        }
    }

    /// The row for blob `b` of the pack at position `pack`; `None` for a
    /// blob no pack can hold (an offset past 4 GiB, an envelope of 2 GiB).
    pub fn from_blob(pack: u32, b: &BlobEntry) -> Option<Row> {
        let (Ok(offset), true) = (u32::try_from(b.offset), b.length < TREE_BIT) else { return None };
        let kind = if b.blob_type == ObjectType::TreeChunk as u8 { TREE_BIT } else { 0 };
        Some(Row { id: b.id, pack, offset, length_and_kind: b.length | kind, raw_length: b.raw_length })
    }

    pub fn blob_entry(&self) -> BlobEntry {
        BlobEntry {
            id: self.id,
            blob_type: self.object_type() as u8,
            offset: self.offset.into(),
            length: self.length(),
            raw_length: self.raw_length,
        }
    }
}

/// A fixed-size set of positions, one bit each.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub fn new(len: usize) -> Self {
        Bits(vec![0; len.div_ceil(64)])
    }

    pub fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn clear(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct ChunkTable {
    packs: Vec<PackInfo>,
    /// Sorted by ID, one row per ID.
    rows: Vec<Row>,
    /// `starts[p]..starts[p + 1]`: the rows whose ID begins with the 16-bit
    /// prefix `p` (IDs are keyed hashes, so about `len / 65536` each): a
    /// lookup searches one such run, not the whole array, which costs a
    /// cache miss per step at a million rows.
    starts: Vec<u32>,
    /// The segments the table was built from, superseded ones excluded.
    segments: Vec<SegmentId>,
    /// The other locations the index claims for chunks of `rows` (a
    /// chunk stored twice, or claimed by a forged segment), sorted by ID;
    /// usually empty. Compact verifies a chunk's kept copy before it
    /// drops any of these.
    alternates: Vec<Row>,
    /// Rows that only superseded segments list (kept by
    /// [`TableBuilder::keep_hidden_rows`]): a new index must list them again.
    hidden: Vec<Row>,
}

impl ChunkTable {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn segments(&self) -> &[SegmentId] {
        &self.segments
    }

    pub fn position(&self, id: &ChunkId) -> Option<usize> {
        let p = prefix16(id);
        let lo = *self.starts.get(p)? as usize;
        let hi = *self.starts.get(p + 1)? as usize;
        Some(lo + self.rows.get(lo..hi)?.binary_search_by(|r| r.id.cmp(id)).ok()?)
    }

    pub fn row(&self, position: usize) -> Option<&Row> {
        self.rows.get(position)
    }

    /// The other locations claimed for the chunk at `position`, in the
    /// order the index lists them.
    pub fn alternates(&self, position: usize) -> &[Row] {
        let Some(id) = self.rows.get(position).map(|r| r.id) else { return &[] };
        let start = self.alternates.partition_point(|r| r.id < id);
        let end = start + self.alternates.get(start..).map_or(0, |rest| rest.partition_point(|r| r.id == id));
        self.alternates.get(start..end).unwrap_or_default()
    }

    /// Rows that no live segment lists; see [`TableBuilder::keep_hidden_rows`].
    pub fn hidden_rows(&self) -> &[Row] {
        &self.hidden
    }

    /// Whether any chunk has more than one claimed location.
    pub fn has_alternates(&self) -> bool {
        !self.alternates.is_empty()
    }

    /// Makes `row` (a location of the same chunk) the one kept for `position`.
    pub fn relocate(&mut self, position: usize, row: Row) {
        if let Some(r) = self.rows.get_mut(position).filter(|r| r.id == row.id) {
            *r = row;
        }
    }

    pub fn pack_of(&self, row: &Row) -> Option<&PackInfo> {
        self.packs.get(row.pack as usize)
    }

    /// Where chunk `id` is: its position and row.
    pub fn get(&self, id: &ChunkId) -> Option<(usize, &Row)> {
        let p = self.position(id)?;
        Some((p, self.rows.get(p)?))
    }

    pub fn contains(&self, id: &ChunkId) -> bool {
        self.position(id).is_some()
    }

    /// Every position, ordered by pack and then by offset in the pack: the
    /// chunks of one pack are one run (4 bytes a chunk).
    pub fn positions_by_pack(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.rows.len() as u32).collect();
        order.sort_unstable_by_key(|p| self.rows.get(*p as usize).map(|r| (r.pack, r.offset)));
        order
    }

    /// An index of the tree chunks only, to read snapshots' trees with
    /// [`crate::live::for_each_entry`] (tree chunks are a small share).
    pub fn tree_index(&self) -> ChunkIndex {
        let mut trees: Vec<&Row> = self.rows.iter().filter(|r| r.object_type() == ObjectType::TreeChunk).collect();
        trees.sort_unstable_by_key(|r| r.pack);
        let mut index = ChunkIndex::default();
        for group in trees.chunk_by(|a, b| a.pack == b.pack) {
            let Some(pack) = group.first().and_then(|r| self.pack_of(r)) else { continue };
            let blobs = group.iter().map(|r| r.blob_entry()).collect();
            index.add_pack(&PackEntry { id: pack.id, size: pack.size, created: pack.created, blobs });
        }
        index
    }
}

fn prefix16(id: &ChunkId) -> usize {
    usize::from(u16::from_be_bytes([id.0[0], id.0[1]]))
}

/// What one segment brought: the rows it filled, the packs it named and
/// the segments it supersedes.
struct Span {
    id: SegmentId,
    rows: Range<usize>,
    packs: Vec<u32>,
    supersedes: Vec<SegmentId>,
}

/// Fills a [`ChunkTable`] segment by segment; each segment can be freed
/// as soon as it is added.
#[derive(Default)]
pub(crate) struct TableBuilder {
    table: ChunkTable,
    pack_positions: HashMap<PackId, u32>,
    spans: Vec<Span>,
    /// Packs added outside any segment (adopted or rebuilt from trailers).
    unsegmented: Vec<u32>,
    /// See [`TableBuilder::keep_hidden_rows`].
    keep_hidden: bool,
}

impl TableBuilder {
    /// Adds a segment's packs, skipping those `keep` refuses (packs that
    /// are not in storage, for compact).
    pub fn add_segment(&mut self, id: SegmentId, segment: IndexSegment, keep: impl Fn(&PackEntry) -> bool) {
        let start = self.table.rows.len();
        let packs = segment.packs.iter().filter(|p| keep(p)).map(|p| self.push_pack(p)).collect();
        let end = self.table.rows.len();
        self.spans.push(Span { id, rows: start..end, packs, supersedes: segment.supersedes });
    }

    /// The packs that segments not superseded by another name, so far.
    pub fn named_packs(&self) -> HashSet<PackId> {
        let superseded: HashSet<SegmentId> = self.spans.iter().flat_map(|s| s.supersedes.iter().copied()).collect();
        let live = self.spans.iter().filter(|s| !superseded.contains(&s.id));
        live.flat_map(|s| s.packs.iter()).filter_map(|p| self.table.packs.get(*p as usize)).map(|p| p.id).collect()
    }

    /// Keeps the rows of superseded segments that no live segment lists
    /// again (the same chunk in the same pack), instead of dropping them:
    /// a segment that supersedes others may then remove only what is
    /// listed elsewhere, never hide where a chunk is. For compact, which
    /// adds only packs still stored: an append-only client can write a
    /// segment that supersedes every other one.
    pub fn keep_hidden_rows(&mut self) {
        self.keep_hidden = true;
    }

    /// Adds a pack that no segment names.
    pub fn add_pack(&mut self, pack: &PackEntry) {
        let pos = self.push_pack(pack);
        self.unsegmented.push(pos);
    }

    fn push_pack(&mut self, pack: &PackEntry) -> u32 {
        let pos = *self.pack_positions.entry(pack.id).or_insert_with(|| {
            self.table.packs.push(PackInfo { id: pack.id, size: pack.size, created: pack.created });
            self.table.packs.len() as u32 - 1
        });
        // Named more than once (superseded segments included): the
        // youngest claim counts, whatever the listing order. Compact's
        // grace period then never takes a pack for old because one claim,
        // perhaps an append-only client's, says so.
        if let Some(info) = self.table.packs.get_mut(pos as usize) {
            info.created = info.created.max(pack.created);
        }
        // Packs stay below 4 GiB and envelopes below 2 GiB.
        self.table.rows.extend(pack.blobs.iter().filter_map(|b| Row::from_blob(pos, b)));
        pos
    }

    /// Drops what superseded segments brought, sorts the rows and keeps one
    /// per ID: of several locations, the pack listed first (then the lowest
    /// offset), as the chunk index does; the others are kept aside as
    /// [`ChunkTable::alternates`].
    pub fn finish(self) -> ChunkTable {
        let TableBuilder { mut table, spans, unsegmented, keep_hidden, .. } = self;
        let superseded: HashSet<SegmentId> = spans.iter().flat_map(|s| s.supersedes.iter().copied()).collect();
        let live: Vec<bool> = spans.iter().map(|s| !superseded.contains(&s.id)).collect();
        if live.iter().any(|l| !l) {
            let mut drop = Bits::new(table.rows.len());
            for (span, _) in spans.iter().zip(&live).filter(|(_, l)| !**l) {
                span.rows.clone().for_each(|i| drop.set(i));
            }
            let mut revived_packs = Vec::new();
            let mut revived = Bits::new(table.rows.len());
            if keep_hidden {
                let mut listed: Vec<(ChunkId, u32)> =
                    table.rows.iter().enumerate().filter(|(i, _)| !drop.get(*i)).map(|(_, r)| (r.id, r.pack)).collect();
                listed.sort_unstable();
                for (i, r) in table.rows.iter().enumerate() {
                    if drop.get(i) && listed.binary_search(&(r.id, r.pack)).is_err() {
                        drop.clear(i);
                        revived.set(i);
                        revived_packs.push(r.pack);
                    }
                }
            }
            let mut i = 0;
            let hidden = &mut table.hidden;
            table.rows.retain(|r| {
                i += 1;
                if revived.get(i - 1) {
                    hidden.push(*r);
                }
                !drop.get(i - 1)
            });
            // Forget packs that only superseded segments named.
            let mut named = vec![false; table.packs.len()];
            let live_packs = spans.iter().zip(&live).filter(|(_, l)| **l).flat_map(|(s, _)| s.packs.iter());
            for p in live_packs.chain(&unsegmented).chain(&revived_packs) {
                if let Some(n) = named.get_mut(*p as usize) {
                    *n = true;
                }
            }
            let mut remap = vec![u32::MAX; named.len()];
            let old = std::mem::take(&mut table.packs);
            for (pos, info) in old.into_iter().enumerate() {
                if named.get(pos).copied().unwrap_or(false) {
                    remap[pos] = table.packs.len() as u32;
                    table.packs.push(info);
                }
            }
            for r in table.rows.iter_mut().chain(table.hidden.iter_mut()) {
                r.pack = remap.get(r.pack as usize).copied().unwrap_or(u32::MAX);
            }
        }
        table.rows.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.pack.cmp(&b.pack)).then(a.offset.cmp(&b.offset)));
        // The same place named twice (a pack adopted and named by a hidden
        // row) is one location.
        table.rows.dedup_by(|later, earlier| {
            (later.id, later.pack, later.offset) == (earlier.id, earlier.pack, earlier.offset)
        });
        let alternates = &mut table.alternates;
        table.rows.dedup_by(|later, earlier| {
            let again = later.id == earlier.id;
            if again {
                alternates.push(*later);
            }
            again
        });
        table.rows.shrink_to_fit();
        table.alternates.shrink_to_fit();
        let mut starts = vec![0u32; (1 << 16) + 1];
        for r in &table.rows {
            if let Some(n) = starts.get_mut(prefix16(&r.id) + 1) {
                *n += 1;
            }
        }
        for p in 1..starts.len() {
            starts[p] += starts[p - 1];
        }
        table.starts = starts;
        table.segments = spans.iter().zip(&live).filter(|(_, l)| **l).map(|(s, _)| s.id).collect();
        table
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail by panicking.
mod tests {
    use vger_format::index::INDEX_SEGMENT_VERSION;

    use super::*;

    fn id(n: u64) -> ChunkId {
        ChunkId(*blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    #[test]
    fn lookups_find_every_row_and_nothing_else() {
        let mut b = TableBuilder::default();
        b.add_segment(SegmentId([1; 32]), segment(vec![pack(1, &(0..200_000).collect::<Vec<_>>())], vec![]), |_| true);
        let t = b.finish();
        for n in (0..200_000).step_by(7) {
            let (pos, row) = t.get(&id(n)).unwrap();
            assert_eq!((t.row(pos).unwrap().id, row.id), (id(n), id(n)));
        }
        assert!(!t.contains(&id(200_000)));
        assert!(!ChunkTable::default().contains(&id(1)));
    }

    fn pack(tag: u8, ids: &[u64]) -> PackEntry {
        PackEntry {
            id: PackId([tag; 32]),
            size: 1000,
            created: 0,
            blobs: ids
                .iter()
                .enumerate()
                .map(|(i, n)| BlobEntry {
                    id: id(*n),
                    blob_type: if *n == 7 { 2 } else { 1 },
                    offset: 16 + i as u64 * 10,
                    length: 10,
                    raw_length: 9,
                })
                .collect(),
        }
    }

    fn segment(packs: Vec<PackEntry>, supersedes: Vec<SegmentId>) -> IndexSegment {
        IndexSegment { version: INDEX_SEGMENT_VERSION, packs, supersedes }
    }

    #[test]
    fn rows_are_sorted_once_per_id_without_superseded_segments() {
        let mut b = TableBuilder::default();
        b.add_segment(SegmentId([1; 32]), segment(vec![pack(1, &[1, 2, 3]), pack(2, &[3, 7])], vec![]), |_| true);
        // Superseded: neither its chunks nor its pack may appear.
        b.add_segment(SegmentId([3; 32]), segment(vec![pack(9, &[100]), pack(1, &[200])], vec![]), |_| true);
        b.add_segment(SegmentId([2; 32]), segment(vec![pack(3, &[4]), pack(8, &[5])], vec![]), |p| p.id.0[0] != 8);
        b.add_segment(SegmentId([4; 32]), segment(vec![], vec![SegmentId([3; 32])]), |_| true);
        b.add_pack(&pack(5, &[6, 1]));
        let t = b.finish();
        assert_eq!(t.len(), 6, "1, 2, 3, 4, 6, 7");
        assert!(t.rows().windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(t.segments(), [SegmentId([1; 32]), SegmentId([2; 32]), SegmentId([4; 32])]);
        let packs: Vec<PackId> = t.packs().iter().map(|p| p.id).collect();
        assert_eq!(packs, [PackId([1; 32]), PackId([2; 32]), PackId([3; 32]), PackId([5; 32])]);
        for gone in [100, 200, 5] {
            assert!(!t.contains(&id(gone)), "{gone}");
        }
        // Chunk 3 is in pack 1 first, then pack 2; chunk 1 in pack 1, then the adopted pack 5.
        let (p3, r3) = t.get(&id(3)).unwrap();
        assert_eq!(t.pack_of(r3).unwrap().id, PackId([1; 32]));
        let others: Vec<PackId> = t.alternates(p3).iter().map(|r| t.pack_of(r).unwrap().id).collect();
        assert_eq!(others, [PackId([2; 32])], "chunk 3's other copy");
        assert!(t.alternates(t.position(&id(2)).unwrap()).is_empty());
        let (_, r1) = t.get(&id(1)).unwrap();
        assert_eq!((t.pack_of(r1).unwrap().id, r1.offset), (PackId([1; 32]), 16));
        let (_, r7) = t.get(&id(7)).unwrap();
        assert_eq!((r7.object_type(), r7.length(), r7.blob_entry().blob_type), (ObjectType::TreeChunk, 10, 2));
        let by_pack: Vec<(u32, u32)> =
            t.positions_by_pack().iter().map(|p| t.row(*p as usize).unwrap()).map(|r| (r.pack, r.offset)).collect();
        assert!(by_pack.windows(2).all(|w| w[0] < w[1]), "{by_pack:?}");
        let trees = t.tree_index();
        assert_eq!(trees.len(), 1);
        assert_eq!(trees.get(&id(7)).unwrap().0.id, PackId([2; 32]));
        let mut bits = Bits::new(t.len());
        bits.set(5);
        bits.set(700);
        assert!(bits.get(5) && !bits.get(4) && !bits.get(700));
        bits.clear(5);
        assert!(!bits.get(5));
    }

    /// A segment that supersedes another cannot hide a chunk's location
    /// from compact: what it does not list again stays.
    #[test]
    fn a_superseding_segment_cannot_hide_rows_from_compact() {
        let mut b = TableBuilder::default();
        b.keep_hidden_rows();
        b.add_segment(SegmentId([1; 32]), segment(vec![pack(1, &[1, 2]), pack(2, &[3])], vec![]), |_| true);
        // Lists chunk 1 in pack 1 again, claims chunk 2 in a pack 9 and
        // names pack 2 with nothing in it.
        let hiding = segment(vec![pack(1, &[1]), pack(9, &[2]), pack(2, &[])], vec![SegmentId([1; 32])]);
        b.add_segment(SegmentId([0; 32]), hiding, |_| true);
        let t = b.finish();
        assert_eq!(t.len(), 3);
        let (p2, r2) = t.get(&id(2)).unwrap();
        let mut places: Vec<PackId> = t.alternates(p2).iter().map(|r| t.pack_of(r).unwrap().id).collect();
        places.push(t.pack_of(r2).unwrap().id);
        places.sort();
        assert_eq!(places, [PackId([1; 32]), PackId([9; 32])], "chunk 2 keeps its real place beside the claim");
        assert_eq!(t.pack_of(t.get(&id(3)).unwrap().1).unwrap().id, PackId([2; 32]));
        assert!(t.alternates(t.position(&id(1)).unwrap()).is_empty(), "listed again: no second row");
        let mut hidden: Vec<(ChunkId, PackId)> =
            t.hidden_rows().iter().map(|r| (r.id, t.pack_of(r).unwrap().id)).collect();
        hidden.sort();
        let mut want = vec![(id(2), PackId([1; 32])), (id(3), PackId([2; 32]))];
        want.sort();
        assert_eq!(hidden, want, "what a new index must list again");
    }

    /// A pack named by several segments is as young as the youngest claim,
    /// whichever segment is listed first and whether or not it is
    /// superseded: a claim that it is old cannot make compact's grace
    /// period pass it over.
    #[test]
    fn a_pack_named_twice_is_as_young_as_its_youngest_claim() {
        for old_first in [true, false] {
            let mut b = TableBuilder::default();
            b.keep_hidden_rows();
            let real = segment(vec![PackEntry { created: 1_000, ..pack(1, &[1, 2]) }], vec![]);
            let claim = segment(vec![PackEntry { created: 0, ..pack(1, &[]) }], vec![SegmentId([1; 32])]);
            let (first, second) = if old_first {
                ((SegmentId([0; 32]), claim), (SegmentId([1; 32]), real))
            } else {
                ((SegmentId([1; 32]), real), (SegmentId([0; 32]), claim))
            };
            b.add_segment(first.0, first.1, |_| true);
            b.add_segment(second.0, second.1, |_| true);
            let t = b.finish();
            let created: Vec<u64> = t.packs().iter().map(|p| p.created).collect();
            assert_eq!(created, [1_000], "the old claim listed first: {old_first}");
        }
    }
}
