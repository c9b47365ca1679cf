//! A local copy of the built chunk index, so that opening a repository
//! costs one listing of `index/` and the segments added since, not a
//! download of every segment (docs/architecture.md, "The index cache").
//!
//! One file per repository, `<dir>/<repository id>.index`, holding the
//! sorted entry array, the pack table and the segments it was built from
//! (every segment read, with its size, and which were superseded). Beside
//! it, `<dir>/<repository id>.trees` holds the same for the tree chunks
//! only: browsing a snapshot needs nothing else, and reading a few
//! thousand entries keeps a lookup in a repository of a million chunks as
//! cheap as in a small one ([`load_trees`]). Each file is
//! written whole under a temporary name, fsynced and renamed into place,
//! mode 0600 in a 0700 folder (`vger_fs::private`). The last 32 bytes are a BLAKE3 keyed hash of everything
//! before them, with a key derived from the master key and the repository
//! id; a file that fails it, or is truncated, from another repository or
//! of another version, is ignored and rebuilt, never trusted. The layout
//! is in docs/format.md, section 11.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;
use vger_format::id::{ChunkId, PackId, SegmentId};

use crate::index::{for_each_listed, list_segments, BlobLocation, ChunkIndex, Entry, PackInfo, UnreadableSegments};
use crate::repository::Repository;
use crate::Result;

/// What a cache file holds: every chunk of the index, or its tree chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contents {
    All,
    Trees,
}

impl Contents {
    /// Part of the authenticated header: one kind is never read as the other.
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Contents::All => b"VGERIDXC",
            Contents::Trees => b"VGERIDXT",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Contents::All => "index",
            Contents::Trees => "trees",
        }
    }

    pub(crate) fn keeps(self, loc: &BlobLocation) -> bool {
        self == Contents::All || loc.blob_type == vger_crypto::ObjectType::TreeChunk as u8
    }
}

const VERSION: u32 = 1;
/// Magic, version, reserved, repository id, four counts.
const HEADER_LEN: u64 = 8 + 4 + 4 + 32 + 4 * 8;
const SEGMENT_LEN: u64 = 32 + 8;
const PACK_LEN: u64 = 32 + 8 + 8;
pub(crate) const ENTRY_LEN: u64 = 32 + 4 * 4 + 4;
const MAC_LEN: u64 = 32;
/// Domain of the cache key; never a msgpack map, so never a config body
/// (the same keyed hash authenticates `config`).
const KEY_DOMAIN: &[u8] = b"vger local index cache v1";
/// Entries read or written per block.
const BLOCK_ENTRIES: usize = 4096;

/// Why a cache file was not used.
#[derive(Debug, Error)]
pub enum CacheError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(&'static str),
}

/// A segment the cached index was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeenSegment {
    pub id: SegmentId,
    pub size: u64,
}

/// What a cache file holds.
#[derive(Debug, Default)]
pub(crate) struct CachedIndex {
    /// Every segment read into the index, superseded ones included.
    pub seen: Vec<SeenSegment>,
    /// Every segment that a seen segment supersedes.
    pub superseded: Vec<SegmentId>,
    pub packs: Vec<PackInfo>,
    /// Sorted by ID, one entry per ID, each naming a pack of `packs`.
    pub entries: Vec<Entry>,
}

/// Where a repository's cache lives and the key that authenticates it.
pub(crate) struct CacheFile {
    path: PathBuf,
    key: [u8; 32],
    repository_id: [u8; 32],
    threshold: CacheThreshold,
    contents: Contents,
}

impl CacheFile {
    /// The repository's cache file, if the repository was given a cache
    /// folder.
    pub fn for_repository(repo: &Repository) -> Option<Self> {
        Self::of(repo, Contents::All)
    }

    /// The cache file of `contents` of the repository, if the repository
    /// was given a cache folder.
    pub fn of(repo: &Repository, contents: Contents) -> Option<Self> {
        let dir = repo.index_cache_dir()?;
        let repository_id = *repo.repository_id();
        let mut input = KEY_DOMAIN.to_vec();
        input.extend_from_slice(&repository_id);
        let key = match repo.master_key() {
            // A PRF of the config MAC key: a key no one without the
            // master key can compute.
            Some(master) => master.config_mac(&input),
            // Without encryption there is no secret: a checksum only.
            None => blake3::derive_key("vger local index cache v1 (no encryption)", &repository_id),
        };
        let path = dir.join(format!("{}.{}", hex::encode(repository_id), contents.extension()));
        Some(Self { path, key, repository_id, threshold: repo.index_cache_threshold(), contents })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and authenticates the cache; `Ok(None)` when there is none.
    pub fn read(&self) -> Result<Option<CachedIndex>, CacheError> {
        let file = match vger_fs::private::open_private_file(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata()?.len();
        let mut r = MacReader { inner: BufReader::with_capacity(1 << 20, file), mac: self.hasher() };
        let mut header = [0u8; HEADER_LEN as usize];
        r.read_exact(&mut header).map_err(|_| CacheError::Invalid("shorter than its header"))?;
        let (magic, rest) = header.split_at(8);
        let (version, rest) = rest.split_at(4);
        let (_reserved, rest) = rest.split_at(4);
        let (repository_id, counts) = rest.split_at(32);
        if magic != self.contents.magic() {
            return Err(CacheError::Invalid("not an index cache file"));
        }
        if u32_at(version, 0) != VERSION {
            return Err(CacheError::Invalid("written by another vger version"));
        }
        if repository_id != self.repository_id {
            return Err(CacheError::Invalid("made for another repository"));
        }
        let [seen, superseded, packs, entries] = [0, 1, 2, 3].map(|i| u64_at(counts, i * 8));
        // The counts must account for the file's length exactly before
        // anything is allocated from them.
        let expected = [(seen, SEGMENT_LEN), (superseded, 32), (packs, PACK_LEN), (entries, ENTRY_LEN)]
            .iter()
            .try_fold(HEADER_LEN + MAC_LEN, |sum, (n, size)| n.checked_mul(*size).and_then(|b| sum.checked_add(b)));
        if expected != Some(len) {
            return Err(CacheError::Invalid("truncated, or its counts do not match its length"));
        }
        let mut out = CachedIndex::default();
        for _ in 0..seen {
            let mut b = [0u8; SEGMENT_LEN as usize];
            r.read_exact(&mut b)?;
            out.seen.push(SeenSegment { id: SegmentId(id_at(&b)), size: u64_at(&b, 32) });
        }
        for _ in 0..superseded {
            let mut b = [0u8; 32];
            r.read_exact(&mut b)?;
            out.superseded.push(SegmentId(b));
        }
        for _ in 0..packs {
            let mut b = [0u8; PACK_LEN as usize];
            r.read_exact(&mut b)?;
            out.packs.push(PackInfo { id: PackId(id_at(&b)), size: u64_at(&b, 32), created: u64_at(&b, 40) });
        }
        let entries = usize::try_from(entries).map_err(|_| CacheError::Invalid("too many entries"))?;
        out.entries.reserve_exact(entries);
        let mut block = vec![0u8; BLOCK_ENTRIES * ENTRY_LEN as usize];
        while out.entries.len() < entries {
            let n = (entries - out.entries.len()).min(BLOCK_ENTRIES);
            let bytes = block.get_mut(..n * ENTRY_LEN as usize).ok_or(CacheError::Invalid("block"))?;
            r.read_exact(bytes)?;
            out.entries.extend(bytes.chunks_exact(ENTRY_LEN as usize).map(decode_entry));
        }
        let computed = r.mac.finalize();
        let mut stored = [0u8; 32];
        r.inner.read_exact(&mut stored)?;
        // blake3::Hash compares in constant time.
        if computed != blake3::Hash::from(stored) {
            return Err(CacheError::Invalid("its authentication tag does not match (corrupt or altered)"));
        }
        // Authentic, but lookups also rely on these; a check is cheap.
        let pack_count = out.packs.len();
        if out.entries.iter().any(|e| e.loc.pack as usize >= pack_count) {
            return Err(CacheError::Invalid("an entry names a pack it does not list"));
        }
        if out.entries.windows(2).any(|w| w.first().map(|e| e.id) >= w.get(1).map(|e| e.id)) {
            return Err(CacheError::Invalid("its entries are not sorted"));
        }
        if !out.entries.iter().all(|e| self.contents.keeps(&e.loc)) {
            return Err(CacheError::Invalid("a cache of tree chunks lists another kind"));
        }
        Ok(Some(out))
    }

    /// Writes the cache atomically: a temporary file in the same folder,
    /// fsynced, then renamed over the old one (mode 0600).
    pub fn write(&self, cached: &CachedIndexRef<'_>) -> Result<(), CacheError> {
        let (tmp, file) = vger_fs::private::create_private_temp(&self.path)?;
        match self.write_to(file, cached) {
            Ok(file) => Ok(vger_fs::private::replace_with(&tmp, file, &self.path)?),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Writes the whole cache into `file` and hands it back to be synced.
    fn write_to(&self, file: File, c: &CachedIndexRef<'_>) -> Result<File, CacheError> {
        let mut w = MacWriter { inner: BufWriter::with_capacity(1 << 20, file), mac: self.hasher() };
        w.write_all(self.contents.magic())?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(&[0u8; 4])?;
        w.write_all(&self.repository_id)?;
        for n in [c.seen.len(), c.superseded.len(), c.packs.len(), c.entries.len()] {
            w.write_all(&(n as u64).to_le_bytes())?;
        }
        for s in c.seen {
            w.write_all(&s.id.0)?;
            w.write_all(&s.size.to_le_bytes())?;
        }
        for s in c.superseded {
            w.write_all(&s.0)?;
        }
        for p in c.packs {
            w.write_all(&p.id.0)?;
            w.write_all(&p.size.to_le_bytes())?;
            w.write_all(&p.created.to_le_bytes())?;
        }
        let mut block = Vec::with_capacity(BLOCK_ENTRIES * ENTRY_LEN as usize);
        for entries in c.entries.chunks(BLOCK_ENTRIES) {
            block.clear();
            for e in entries {
                encode_entry(e, &mut block);
            }
            w.write_all(&block)?;
        }
        let mac = w.mac.finalize();
        let mut inner = w.inner;
        inner.write_all(mac.as_bytes())?;
        Ok(inner.into_inner().map_err(|e| e.into_error())?)
    }

    fn hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.key)
    }
}

/// What [`CacheFile::write`] writes, borrowed from the built index.
pub(crate) struct CachedIndexRef<'a> {
    pub seen: &'a [SeenSegment],
    pub superseded: &'a [SegmentId],
    pub packs: &'a [PackInfo],
    pub entries: &'a [Entry],
}

/// 52 bytes: ID, pack position, offset, length, raw length (u32 each,
/// little-endian), blob type, three zero bytes.
fn encode_entry(e: &Entry, out: &mut Vec<u8>) {
    out.extend_from_slice(&e.id.0);
    for v in [e.loc.pack, e.loc.offset, e.loc.length, e.loc.raw_length] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&[e.loc.blob_type, 0, 0, 0]);
}

fn decode_entry(b: &[u8]) -> Entry {
    let loc = BlobLocation {
        pack: u32_at(b, 32),
        offset: u32_at(b, 36),
        length: u32_at(b, 40),
        raw_length: u32_at(b, 44),
        blob_type: b.get(48).copied().unwrap_or(0),
    };
    Entry { id: ChunkId(id_at(b)), loc }
}

fn id_at(b: &[u8]) -> [u8; 32] {
    let mut id = [0u8; 32];
    if let Some(s) = b.get(..32) {
        id.copy_from_slice(s);
    }
    id
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

/// Feeds every byte read into the MAC.
struct MacReader<R> {
    inner: R,
    mac: blake3::Hasher,
}

impl<R: Read> MacReader<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact(buf)?;
        self.mac.update(buf);
        Ok(())
    }
}

/// Feeds every byte written into the MAC.
struct MacWriter<W> {
    inner: W,
    mac: blake3::Hasher,
}

impl<W: Write> MacWriter<W> {
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.mac.update(buf);
        self.inner.write_all(buf)
    }
}

/// New segments past which a load that used the cache rewrites it (each
/// later open would otherwise fetch them again).
const REWRITE_AFTER_SEGMENTS: usize = 32;

/// Below both sizes a repository keeps no cache: its index is one batch of
/// segment reads and a few thousand entries, which load about as fast as
/// the cache would be read, and with nothing cached every open notices a
/// damaged segment (and warns) as it always has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheThreshold {
    pub segments: usize,
    pub chunks: usize,
}

impl CacheThreshold {
    pub const DEFAULT: Self = Self { segments: 8, chunks: 100_000 };

    fn reached(&self, segments: usize, chunks: usize) -> bool {
        segments >= self.segments || chunks >= self.chunks
    }
}

/// Loads the chunk index: from the cache plus the segments added since
/// when the repository has a cache folder and its cache is still valid,
/// else from every segment (and then rewrites the cache).
pub(crate) fn load(repo: &Repository, lenient: bool) -> Result<(ChunkIndex, UnreadableSegments)> {
    load_and_maybe_rewrite(repo, lenient, false)
}

/// [`load`]; with `rewrite`, a valid cache is rewritten whenever there
/// are new segments, however few chunks they add.
fn load_and_maybe_rewrite(repo: &Repository, lenient: bool, rewrite: bool) -> Result<(ChunkIndex, UnreadableSegments)> {
    let listed = list_segments(repo)?;
    let all: Vec<SegmentId> = listed.iter().map(|s| s.id).collect();
    let Some(cache) = CacheFile::for_repository(repo) else {
        let (index, bad, _) = ChunkIndex::load_listed(repo, &all, lenient)?;
        return Ok((index, bad));
    };
    let path = cache.path().display();
    let started = std::time::Instant::now();
    match cache.read() {
        Ok(Some(cached)) => match extend(repo, &cache, cached, &listed, lenient, rewrite, started)? {
            Ok(loaded) => return Ok(loaded),
            Err(why) => tracing::info!("index cache {path}: {why}; rebuilding it from the repository"),
        },
        Ok(None) => tracing::info!("no index cache at {path} yet; building it from the repository"),
        Err(e) => tracing::info!("index cache {path} ignored ({e}); rebuilding it from the repository"),
    }
    let (index, bad, provenance) = ChunkIndex::load_listed(repo, &all, lenient)?;
    if !cache.threshold.reached(listed.len(), index.len()) {
        // Caches left from when the repository was larger are stale.
        for stale in [Some(cache), CacheFile::of(repo, Contents::Trees)].into_iter().flatten() {
            let path = stale.path().display();
            match std::fs::remove_file(stale.path()) {
                Ok(()) => tracing::debug!("removed the index cache {path}: the repository is small again"),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => tracing::info!("could not remove the stale index cache {path}: {e}"),
            }
        }
        return Ok((index, bad));
    }
    let sizes: HashMap<SegmentId, u64> = listed.iter().map(|s| (s.id, s.size)).collect();
    let seen: Vec<SeenSegment> = provenance
        .read
        .iter()
        .filter_map(|id| sizes.get(id).map(|size| SeenSegment { id: *id, size: *size }))
        .collect();
    save(&cache, &index, &seen, &provenance.superseded);
    if let Some(trees) = CacheFile::of(repo, Contents::Trees) {
        save(&trees, &index, &seen, &provenance.superseded);
    }
    Ok((index, bad))
}

/// Brings the cache up to date after a command stored `added` chunks
/// (a backup, once its snapshot is committed), so that the next command
/// reads the cache instead of decoding the new segments. That decoding
/// is what costs: a backup of a million small files writes one segment
/// of a million entries, held at once as sealed bytes, plain bytes and
/// decoded entries beside the array built from them (the first backup
/// after it peaked at 145 MiB; with the cache brought up to date here,
/// 89 MiB). Only when `added` reaches the cache's chunk threshold (a
/// smaller addition costs the next open little), and never an error: a
/// cache that cannot be written is rebuilt by the next open.
pub(crate) fn refresh_after(repo: &Repository, added: u64) {
    let Some(cache) = CacheFile::for_repository(repo) else { return };
    if added < cache.threshold.chunks as u64 {
        return;
    }
    let started = std::time::Instant::now();
    match load_and_maybe_rewrite(repo, true, true) {
        Ok(_) => tracing::debug!(
            "index cache {} brought up to date in {:.0} ms",
            cache.path().display(),
            started.elapsed().as_secs_f64() * 1000.0
        ),
        Err(e) => tracing::info!("could not bring the index cache {} up to date: {e}", cache.path().display()),
    }
}

/// An index of the tree chunks only, all that reading snapshots' trees
/// needs: from the trees cache plus the segments added since when there
/// is a valid one; else made from the whole index's cache (and written
/// for next time) when that one is valid; else from the whole index
/// (loaded as [`load`] does, which writes both caches when the repository
/// is large enough).
pub(crate) fn load_trees(repo: &Repository) -> Result<ChunkIndex> {
    if let Some(cache) = CacheFile::of(repo, Contents::Trees) {
        let started = std::time::Instant::now();
        let path = cache.path().display();
        let cached = match cache.read() {
            Ok(Some(cached)) => Some(cached),
            Ok(None) => None,
            Err(e) => {
                tracing::info!("tree index cache {path} ignored ({e})");
                None
            }
        };
        // Derived from the whole index's cache, then written.
        let cached = cached.or_else(|| {
            let mut all = CacheFile::for_repository(repo)?.read().ok()??;
            all.entries.retain(|e| Contents::Trees.keeps(&e.loc));
            let view = CachedIndexRef {
                seen: &all.seen,
                superseded: &all.superseded,
                packs: &all.packs,
                entries: &all.entries,
            };
            if let Err(e) = cache.write(&view) {
                tracing::info!("could not write the tree index cache {path}: {e}");
            }
            Some(all)
        });
        if let Some(cached) = cached {
            let listed = list_segments(repo)?;
            match extend(repo, &cache, cached, &listed, false, false, started)? {
                Ok((index, _)) => return Ok(index),
                Err(why) => tracing::info!("tree index cache {path}: {why}; loading the whole index"),
            }
        }
    }
    let (index, _) = load(repo, false)?;
    Ok(index.only(Contents::Trees))
}

/// The cached index plus the segments listed since it was written; `Err`
/// (inside `Ok`) says why the cache cannot be used: a segment it was
/// built from is gone, changed or superseded by a new one. The cache is
/// rewritten when the new segments add many chunks, or any with
/// `force_rewrite`.
fn extend(
    repo: &Repository,
    cache: &CacheFile,
    cached: CachedIndex,
    listed: &[SeenSegment],
    lenient: bool,
    force_rewrite: bool,
    started: std::time::Instant,
) -> Result<Result<(ChunkIndex, UnreadableSegments), String>> {
    let CachedIndex { mut seen, superseded, packs, entries } = cached;
    let sizes: HashMap<SegmentId, u64> = listed.iter().map(|s| (s.id, s.size)).collect();
    let superseded_set: HashSet<SegmentId> = superseded.iter().copied().collect();
    for s in &seen {
        match sizes.get(&s.id) {
            Some(size) if *size != s.size => {
                return Ok(Err(format!("segment {} changed size", s.id.short())));
            }
            // A superseded segment deleted by compact changes nothing.
            None if !superseded_set.contains(&s.id) => {
                return Ok(Err(format!("segment {} is gone (compact or repair ran)", s.id.short())));
            }
            _ => {}
        }
    }
    let seen_set: HashSet<SegmentId> = seen.iter().map(|s| s.id).collect();
    let live: Vec<SegmentId> = seen.iter().map(|s| s.id).filter(|id| !superseded_set.contains(id)).collect();
    let live_set: HashSet<SegmentId> = live.iter().copied().collect();
    let new: Vec<SegmentId> =
        listed.iter().map(|s| s.id).filter(|id| !seen_set.contains(id) && !superseded_set.contains(id)).collect();
    let cached_chunks = entries.len();
    let mut index = ChunkIndex::from_sorted(packs, entries, live);
    let mut bad = Vec::new();
    let mut added = Vec::new();
    let mut new_supersedes = Vec::new();
    let mut tail = Vec::new();
    let mut stale = None;
    for batch in new.chunks(8) {
        for_each_listed(repo, batch, |id, segment| {
            let segment = match segment {
                Ok(s) => s,
                Err(e) if lenient => {
                    bad.push((id, e.to_string()));
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            if let Some(old) = segment.supersedes.iter().find(|s| live_set.contains(s)) {
                stale = Some(format!(
                    "new segment {} supersedes segment {} (compact or repair ran)",
                    id.short(),
                    old.short()
                ));
                return Ok(());
            }
            for pack in &segment.packs {
                index.collect_new(pack, &mut tail);
            }
            index.push_segment(id);
            added.push(SeenSegment { id, size: sizes.get(&id).copied().unwrap_or(0) });
            new_supersedes.extend(segment.supersedes.iter().copied());
            Ok(())
        })?;
        if let Some(why) = stale {
            return Ok(Err(why));
        }
    }
    if added.iter().any(|s| new_supersedes.contains(&s.id)) {
        return Ok(Err("new segments supersede one another".into()));
    }
    tail.retain(|e| cache.contents.keeps(&e.loc));
    let new_chunks = tail.len();
    let rewrite = new_chunks > 0
        && (force_rewrite || added.len() >= REWRITE_AFTER_SEGMENTS || new_chunks >= (cached_chunks / 16).max(1));
    index.add_collected(tail, rewrite);
    tracing::debug!(
        "index: {cached_chunks} chunks from the cache {} in {:.0} ms, {new_chunks} from {} new segments{}",
        cache.path().display(),
        started.elapsed().as_secs_f64() * 1000.0,
        added.len(),
        if rewrite { "; rewriting the cache" } else { "" }
    );
    if rewrite {
        seen.extend(added);
        let mut superseded = superseded;
        superseded.extend(new_supersedes);
        superseded.sort_unstable();
        superseded.dedup();
        save(cache, &index, &seen, &superseded);
        if cache.contents == Contents::All {
            if let Some(trees) = CacheFile::of(repo, Contents::Trees) {
                save(&trees, &index, &seen, &superseded);
            }
        }
    }
    Ok(Ok((index, bad)))
}

/// Writes the cache (of what `cache` holds, taken from `index`, whose
/// entries must all be in its sorted array); a failure is logged, never
/// fatal (the next open rebuilds it).
fn save(cache: &CacheFile, index: &ChunkIndex, seen: &[SeenSegment], superseded: &[SegmentId]) {
    let started = std::time::Instant::now();
    let kept: Vec<Entry>;
    let entries = match cache.contents {
        Contents::All => index.sorted_entries(),
        Contents::Trees => {
            kept = index.sorted_entries().iter().filter(|e| cache.contents.keeps(&e.loc)).copied().collect();
            &kept
        }
    };
    let view = CachedIndexRef { seen, superseded, packs: index.packs(), entries };
    match cache.write(&view) {
        Ok(()) => tracing::debug!(
            "wrote the index cache {} ({} chunks) in {:.0} ms",
            cache.path().display(),
            entries.len(),
            started.elapsed().as_secs_f64() * 1000.0
        ),
        Err(e) => tracing::info!("could not write the index cache {}: {e}", cache.path().display()),
    }
}

#[cfg(test)]
mod tests;
