//! Which copy of each chunk compact keeps, and the evidence for it.
//!
//! The index is a set of claims, and whoever may append to the repository
//! (a stolen laptop with its `append` token and its key) can claim
//! anything: a pack whose trailer names chunks it does not hold, and a
//! segment listing it first, or superseding the real segments. Compact
//! acts on claims only where it loses nothing by them. Where it would drop
//! a location of a chunk a snapshot uses, from the index or from storage,
//! it first proves the location it keeps, by reading, decrypting and
//! hashing the chunk there:
//!
//! - a chunk with more than one claimed location keeps one proven in this
//!   run (tree chunks before the trees are read, data chunks once they are
//!   known to be used);
//! - before a pack is deleted or repacked, its own trailer is read (sealed
//!   by whoever wrote the pack, and part of the bytes its name hashes, so
//!   no later claim can change it): each chunk in use that it holds is
//!   either copied from this very place or has a proven copy elsewhere; a
//!   chunk in use that the index lost is indexed again from there.
//!
//! A location that fails the proof is left out of the new index and
//! reported. A chunk with no location that passes keeps every pack that
//! claims it. In a repository nobody tampered with, chunks stored twice
//! are rare (two backups storing the same new data at once), so the cost
//! is the trailers of the packs compact removes.

use std::collections::{HashMap, HashSet};

use vger_crypto::{ObjectType, ENVELOPE_OVERHEAD};
use vger_format::id::{ChunkId, PackId};
use vger_format::index::{BlobEntry, PackEntry};

use crate::blob::open_chunk;
use crate::chunk_table::{Bits, ChunkTable, Row};
use crate::packs::read_trailer;
use crate::repository::Repository;
use crate::{EngineError, Result};

/// Largest single ranged read when proving adjacent chunks.
const MAX_READ: u64 = 16 << 20;
/// Reads in flight at once.
const THREADS: usize = 4;

/// A chunk's location: pack position and offset.
type Location = (u32, u32);

fn location(row: &Row) -> Location {
    (row.pack, row.offset)
}

/// What makes two rows name the same bytes.
fn place(r: &Row) -> (ChunkId, u32, u32, u32) {
    (r.id, r.pack, r.offset, r.length())
}

fn same_place(a: &Row, b: &Row) -> bool {
    place(a) == place(b)
}

/// What compact learned about copies in one run.
pub(crate) struct Copies<'a> {
    repo: &'a Repository,
    /// Positions whose kept row was proven in this run.
    proven: Bits,
    /// Locations that failed the proof, with the chunk they claimed.
    bad: HashSet<(Location, ChunkId)>,
    /// Chunks in use none of whose copies passed: every location stays.
    unresolved: HashSet<ChunkId>,
    /// Packs never deleted or repacked in this run.
    pinned: HashSet<u32>,
    /// Locations to list in the new index that the segments do not list.
    added: HashMap<u32, Vec<BlobEntry>>,
    /// Packs whose trailer was read.
    inspected: HashSet<u32>,
    pub warnings: Vec<String>,
}

/// How the new index differs from what the segments list, by pack.
#[derive(Debug, Default)]
pub(crate) struct IndexFixes {
    dropped: HashMap<PackId, HashSet<(u64, ChunkId)>>,
    added: HashMap<PackId, Vec<BlobEntry>>,
}

impl IndexFixes {
    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty() && self.added.is_empty()
    }

    /// `entry` (as a segment lists it) as the new index lists it.
    pub fn apply(&self, mut entry: PackEntry) -> PackEntry {
        if let Some(dropped) = self.dropped.get(&entry.id) {
            entry.blobs.retain(|b| !dropped.contains(&(b.offset, b.id)));
        }
        if let Some(added) = self.added.get(&entry.id) {
            let mut listed: HashSet<(u64, ChunkId)> = entry.blobs.iter().map(|b| (b.offset, b.id)).collect();
            for b in added {
                if listed.insert((b.offset, b.id)) {
                    entry.blobs.push(*b);
                }
            }
            entry.blobs.sort_by_key(|b| b.offset);
        }
        entry
    }
}

impl<'a> Copies<'a> {
    pub fn new(repo: &'a Repository, table: &ChunkTable) -> Self {
        Copies {
            repo,
            proven: Bits::new(table.len()),
            bad: HashSet::new(),
            unresolved: HashSet::new(),
            pinned: HashSet::new(),
            added: HashMap::new(),
            inspected: HashSet::new(),
            warnings: Vec::new(),
        }
    }

    pub fn is_pinned(&self, pack: u32) -> bool {
        self.pinned.contains(&pack)
    }

    pub fn was_inspected(&self, pack: u32) -> bool {
        self.inspected.contains(&pack)
    }

    /// Proves the kept copy of every tree chunk with several claimed
    /// locations, so that the trees of the snapshots are read from proven
    /// copies.
    pub fn prove_tree_duplicates(&mut self, table: &mut ChunkTable) -> Result<()> {
        if !table.has_alternates() {
            return Ok(());
        }
        let wanted = (0..table.len())
            .filter(|p| table.row(*p).is_some_and(|r| r.object_type() == ObjectType::TreeChunk))
            .filter(|p| !table.alternates(*p).is_empty())
            .map(|p| (p, table.alternates(p).to_vec()))
            .collect();
        self.resolve(table, wanted).map(|_| ())
    }

    /// Proves the kept copy of every chunk in use with several claimed
    /// locations.
    pub fn prove_duplicates(&mut self, table: &mut ChunkTable, live: &Bits) -> Result<()> {
        if !table.has_alternates() {
            return Ok(());
        }
        let wanted = (0..table.len())
            .filter(|p| live.get(*p) && !table.alternates(*p).is_empty())
            .map(|p| (p, table.alternates(p).to_vec()))
            .collect();
        self.resolve(table, wanted).map(|_| ())
    }

    /// Reads the trailers of `doomed` packs (to be deleted or repacked)
    /// and proves the kept copy of every chunk in use they hold, as the
    /// module docs describe. Returns whether a kept location changed or a
    /// pack was pinned, so that the plan must be made again.
    pub fn inspect(
        &mut self,
        table: &mut ChunkTable,
        live: &Bits,
        unindexed: &HashSet<ChunkId>,
        doomed: &[u32],
    ) -> Result<bool> {
        let packs: Vec<(u32, PackId, u64)> =
            doomed.iter().filter_map(|p| table.packs().get(*p as usize).map(|info| (*p, info.id, info.size))).collect();
        let repo = self.repo;
        let trailers = crate::parallel::map(packs, THREADS, |(pos, id, size)| {
            Ok((pos, id, read_trailer(repo, &id, size).map_err(|e| e.to_string())))
        })?;
        let mut changed = false;
        let mut wanted: Vec<(usize, Vec<Row>)> = Vec::new();
        let mut lost: Vec<(u32, BlobEntry, Row)> = Vec::new();
        // The chunks in use the index places in each doomed pack.
        let doomed: HashSet<u32> = doomed.iter().copied().collect();
        let mut placed: HashMap<u32, Vec<usize>> = HashMap::new();
        for (p, row) in table.rows().iter().enumerate() {
            if live.get(p) && doomed.contains(&row.pack) {
                placed.entry(row.pack).or_default().push(p);
            }
        }
        for (pos, id, trailer) in trailers {
            self.inspected.insert(pos);
            let blobs = match trailer {
                Ok(blobs) => blobs,
                Err(e) => {
                    self.warnings.push(format!(
                        "pack {} cannot be removed: its trailer is unreadable ({e}); left alone, run `vger check`",
                        id.short()
                    ));
                    changed |= self.pinned.insert(pos);
                    continue;
                }
            };
            let mut held = HashSet::new();
            for b in &blobs {
                let Some(here) = Row::from_blob(pos, b) else { continue };
                held.insert(place(&here));
                match table.get(&b.id) {
                    Some((p, _)) if !live.get(p) => {}
                    // Copied from this very place when the pack is repacked.
                    Some((_, kept)) if same_place(kept, &here) => {}
                    Some((p, _)) => wanted.push((p, candidates(table, p, here))),
                    None if unindexed.contains(&b.id) => lost.push((pos, *b, here)),
                    None => {}
                }
            }
            // Chunks in use the index places in this pack where its
            // trailer has nothing: a repack would copy whatever is there.
            for p in placed.remove(&pos).unwrap_or_default() {
                let Some(row) = table.row(p) else { continue };
                if !held.contains(&place(row)) {
                    wanted.push((p, table.alternates(p).to_vec()));
                }
            }
        }
        // In use, lost from the index, and here: keep it here.
        let rows: Vec<Row> = lost.iter().map(|(_, _, r)| *r).collect();
        for ((pos, blob, _), ok) in lost.into_iter().zip(self.verify(table, &rows)?) {
            changed |= self.pinned.insert(pos);
            if ok {
                self.added.entry(pos).or_default().push(blob);
            }
        }
        changed |= self.resolve(table, wanted)?;
        Ok(changed)
    }

    /// Proves, for each `(position, candidates)`, the kept row or else the
    /// first candidate that passes, which then becomes the kept row. A
    /// chunk none of whose copies passes pins every pack claiming one.
    /// Returns whether any kept row changed or any pack was pinned.
    fn resolve(&mut self, table: &mut ChunkTable, wanted: Vec<(usize, Vec<Row>)>) -> Result<bool> {
        let mut changed = false;
        // The row being tried and the candidates left, last tried first.
        let mut round: Vec<(usize, Row, Vec<Row>)> = wanted
            .into_iter()
            .filter(|(p, _)| !self.proven.get(*p))
            .filter_map(|(p, mut rest)| {
                rest.reverse();
                Some((p, *table.row(p)?, rest))
            })
            .collect();
        round.sort_by_key(|(p, _, _)| *p);
        round.dedup_by_key(|(p, _, _)| *p);
        while !round.is_empty() {
            let rows: Vec<Row> = round.iter().map(|(_, r, _)| *r).collect();
            let passed = self.verify(table, &rows)?;
            let mut next = Vec::new();
            for ((p, row, mut rest), ok) in round.into_iter().zip(passed) {
                if ok {
                    if !table.row(p).is_some_and(|kept| same_place(kept, &row)) {
                        table.relocate(p, row);
                        changed = true;
                        self.list_if_unlisted(table, row);
                    }
                    self.proven.set(p);
                    continue;
                }
                self.bad.insert((location(&row), row.id));
                match std::iter::from_fn(|| rest.pop()).find(|c| !self.bad.contains(&(location(c), c.id))) {
                    Some(candidate) => next.push((p, candidate, rest)),
                    None => changed |= self.keep_every_copy(table, p),
                }
            }
            round = next;
        }
        Ok(changed)
    }

    /// Pins every pack that claims a copy of the chunk at `position`.
    fn keep_every_copy(&mut self, table: &ChunkTable, position: usize) -> bool {
        let Some(row) = table.row(position) else { return false };
        self.warnings.push(format!(
            "chunk {} is in use but none of its copies reads back intact; every pack holding one is kept, run `vger check`",
            row.id.short()
        ));
        self.unresolved.insert(row.id);
        let mut changed = false;
        for r in std::iter::once(row).chain(table.alternates(position)) {
            changed |= self.pinned.insert(r.pack);
        }
        changed
    }

    /// A kept row found in a pack's trailer may be missing from the
    /// pack's index entry: list it.
    fn list_if_unlisted(&mut self, table: &ChunkTable, row: Row) {
        let p = table.position(&row.id);
        let listed = p.is_some_and(|p| table.alternates(p).iter().any(|a| same_place(a, &row)));
        if !listed {
            self.added.entry(row.pack).or_default().push(row.blob_entry());
        }
    }

    /// Whether each row's chunk is intact where the row says: read,
    /// decrypted and hashed to its id. A range the pack does not have
    /// fails; other storage errors stop compact.
    fn verify(&self, table: &ChunkTable, rows: &[Row]) -> Result<Vec<bool>> {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|i| rows.get(*i).map(|r| (r.pack, r.offset)));
        // Runs of adjacent chunks in one pack, each one ranged read.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut end: Option<(u32, u64)> = None;
        for i in order {
            let Some(r) = rows.get(i) else { continue };
            let start = (r.pack, u64::from(r.offset));
            let joins = groups.last().zip(end).is_some_and(|(g, e)| {
                e == start && g.first().and_then(|f| rows.get(*f)).is_some_and(|f| e.1 - u64::from(f.offset) < MAX_READ)
            });
            if !joins {
                groups.push(Vec::new());
            }
            if let Some(g) = groups.last_mut() {
                g.push(i);
            }
            end = Some((r.pack, u64::from(r.offset) + u64::from(r.length())));
        }
        let results = crate::parallel::map(groups, THREADS, |group| self.verify_run(table, rows, group))?;
        let mut passed = vec![false; rows.len()];
        for (i, ok) in results.into_iter().flatten() {
            if let Some(slot) = passed.get_mut(i) {
                *slot = ok;
            }
        }
        Ok(passed)
    }

    /// One ranged read for rows `group` (adjacent, in one pack).
    fn verify_run(&self, table: &ChunkTable, rows: &[Row], group: Vec<usize>) -> Result<Vec<(usize, bool)>> {
        let picked: Vec<(usize, Row)> = group.iter().filter_map(|i| Some((*i, *rows.get(*i)?))).collect();
        let (Some((_, first)), Some((_, last))) = (picked.first(), picked.last()) else { return Ok(Vec::new()) };
        let fail_all = || picked.iter().map(|(i, _)| (*i, false)).collect();
        let Some(pack) = table.pack_of(first) else { return Ok(fail_all()) };
        // A claimed envelope larger than any chunk is false on its face.
        let cap = |r: &Row| self.repo.blob_cap(r.object_type()) as u64;
        if picked.iter().any(|(_, r)| u64::from(r.length()) > cap(r) + ENVELOPE_OVERHEAD as u64 + 64) {
            return Ok(fail_all());
        }
        let start = u64::from(first.offset);
        let len = u64::from(last.offset) + u64::from(last.length()) - start;
        let bytes = match self.repo.storage().get_range(&pack.id.storage_key(), start, len) {
            Ok(b) => b,
            Err(e) if matches!(e, vger_storage::StorageError::RangeOutOfBounds { .. }) || e.is_not_found() => {
                return Ok(fail_all());
            }
            Err(e) => return Err(EngineError::from(e)),
        };
        Ok(picked
            .iter()
            .map(|(i, r)| {
                let at = (u64::from(r.offset) - start) as usize;
                let sealed = bytes.get(at..at + r.length() as usize).map(<[u8]>::to_vec);
                let ok = sealed.is_some_and(|s| {
                    let (repo, ty) = (self.repo, r.object_type());
                    open_chunk(repo.envelope(), repo.chunk_id_key(), ty, &r.id, s, cap(r) as usize).is_ok()
                });
                (*i, ok)
            })
            .collect())
    }

    /// The changes to the index this run decided, by pack id: proven
    /// chunks lose their other locations, failed locations are dropped,
    /// locations found in trailers are added. Chunks none of whose copies
    /// passed keep them all.
    pub fn index_fixes(&self, table: &ChunkTable) -> IndexFixes {
        let mut fixes = IndexFixes::default();
        let mut drop = |loc: Location, id: ChunkId| {
            if let Some(pack) = table.packs().get(loc.0 as usize) {
                fixes.dropped.entry(pack.id).or_default().insert((u64::from(loc.1), id));
            }
        };
        for (p, kept) in table.rows().iter().enumerate() {
            if self.proven.get(p) {
                for a in table.alternates(p).iter().filter(|a| !same_place(a, kept)) {
                    drop(location(a), a.id);
                }
            }
        }
        for (loc, id) in &self.bad {
            if !self.unresolved.contains(id) {
                drop(*loc, *id);
            }
        }
        // Rows only superseded segments list: listed again, unless a
        // proven copy elsewhere replaces them or they failed the proof.
        for r in table.hidden_rows() {
            let Some((p, kept)) = table.get(&r.id) else { continue };
            let replaced = self.proven.get(p) && !same_place(kept, r);
            let failed = self.bad.contains(&(location(r), r.id)) && !self.unresolved.contains(&r.id);
            if !replaced && !failed {
                if let Some(info) = table.packs().get(r.pack as usize) {
                    fixes.added.entry(info.id).or_default().push(r.blob_entry());
                }
            }
        }
        for (pack, blobs) in &self.added {
            if let Some(info) = table.packs().get(*pack as usize) {
                fixes.added.entry(info.id).or_default().extend(blobs.iter().copied());
            }
        }
        fixes
    }

    /// How many locations failed the proof.
    pub fn refused(&self) -> usize {
        self.bad.len()
    }
}

/// The candidates for the chunk at `position` besides its kept row: the
/// other claimed locations, then `found` (from a pack's own trailer).
fn candidates(table: &ChunkTable, position: usize, found: Row) -> Vec<Row> {
    let mut c = table.alternates(position).to_vec();
    if !c.contains(&found) {
        c.push(found);
    }
    c
}
