//! Salvaging damaged packs: every chunk of a truncated or corrupt pack
//! that still decrypts and hashes to its id is copied (sealed, as stored)
//! into a new pack; the damaged pack is then deleted by repair once a
//! segment without it is stored. So no damaged pack stays in the
//! repository: a later repair cannot re-index a damaged chunk from its
//! trailer, and `check --verify-data` is clean again.

use std::collections::{HashMap, HashSet};

use vger_crypto::ObjectType;
use vger_format::id::PackId;
use vger_format::index::{BlobEntry, PackEntry};
use vger_format::pack::{open_trailer, trailer_range, PackBuilder, PACK_FOOTER_LEN};

use crate::blob::open_chunk;
use crate::check::RepoState;
use crate::index::IdSet;
use crate::lock::{unix_now, RepoLock};
use crate::repository::Repository;
use crate::Result;

/// What salvaging wrote and what it replaces.
#[derive(Default)]
pub(super) struct Salvage {
    /// New packs holding the intact chunks of the damaged ones.
    pub new_packs: Vec<PackEntry>,
    /// Damaged packs whose intact chunks are now in `new_packs`: dropped
    /// from the index, deleted after the new segment is stored.
    pub replaced: HashSet<PackId>,
    /// Packs verification could not read: their chunks found bad stay out
    /// of the rebuilt index (other packs keep their copies of those ids).
    pub unverified: HashSet<PackId>,
    pub chunks_rescued: u64,
    pub chunks_lost: u64,
}

/// Packs to salvage: stored packs of the wrong size, packs that data
/// verification found damaged, and (with `verify_data`) unindexed packs
/// whose content does not match their id.
pub(super) fn damaged_packs(repo: &Repository, state: &RepoState, verify_data: bool) -> Result<Vec<(PackId, u64)>> {
    let mut out: Vec<(PackId, u64)> = state
        .bad_packs
        .iter()
        .chain(&state.damaged_packs)
        .filter_map(|id| state.stored.get(id).map(|size| (*id, *size)))
        .collect();
    if verify_data {
        // Unindexed packs were not verified with the index: their trailer
        // is about to be trusted, so check the pack first.
        let indexed: HashSet<PackId> = state.index.packs().iter().map(|p| p.id).collect();
        for (id, size) in &state.stored {
            if indexed.contains(id) {
                continue;
            }
            let bytes = repo.storage().get(&id.storage_key())?;
            if blake3::hash(&bytes).as_bytes() != &id.0 {
                out.push((*id, *size));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Copies the intact chunks of `packs` into new packs. A pack that cannot
/// be downloaded is left as it is (a transient error must not cost data).
pub(super) fn salvage(
    repo: &Repository,
    lock: &RepoLock,
    state: &mut RepoState,
    packs: &[(PackId, u64)],
    unreadable: &mut Vec<String>,
) -> Result<Salvage> {
    let mut out = Salvage::default();
    for row in state.index.rows() {
        if state.bad_chunks.contains(&row.id) {
            out.unverified.extend(state.index.pack_of(row).map(|p| p.id));
        }
    }
    if packs.is_empty() {
        return Ok(out);
    }
    let mut listed = indexed_blobs(state, packs);
    let cap = repo.max_blob_size();
    let target = repo.pack_target_size() as usize;
    let mut builder = PackBuilder::with_capacity(target + (1 << 20));
    let mut placed = IdSet::default();
    for (id, _) in packs {
        let bytes = match repo.storage().get(&id.storage_key()) {
            Ok(b) => b,
            Err(e) => {
                unreadable.push(format!("pack {}: {e}; left as it is", id.short()));
                continue;
            }
        };
        let mut blobs = listed.remove(id).unwrap_or_default();
        if blobs.is_empty() {
            // Not indexed: the trailer in the bytes is the only list.
            match trailer_of(repo, &bytes) {
                Ok(list) => blobs = list,
                Err(e) => {
                    // Nothing says where its chunks are: keep it for a
                    // human rather than delete what cannot be read.
                    unreadable.push(format!("pack {}: no index entry and {e}; left as it is", id.short()));
                    continue;
                }
            }
        }
        for b in blobs {
            if placed.contains(&b.id) {
                continue;
            }
            match intact_blob(repo, &bytes, &b, cap) {
                Some(sealed) => {
                    let ty = ObjectType::from_tag(b.blob_type).unwrap_or(ObjectType::DataChunk);
                    builder.add(b.id, ty, b.raw_length, sealed);
                    placed.insert(b.id);
                    out.chunks_rescued += 1;
                }
                None => {
                    state.bad_chunks.insert(b.id);
                    out.chunks_lost += 1;
                }
            }
            if builder.len() >= target {
                let full = std::mem::replace(&mut builder, PackBuilder::with_capacity(target + (1 << 20)));
                out.new_packs.push(store(repo, lock, full)?);
            }
        }
        out.replaced.insert(*id);
    }
    if !builder.is_empty() {
        out.new_packs.push(store(repo, lock, builder)?);
    }
    Ok(out)
}

/// The index's blob lists of `packs`, by pack.
fn indexed_blobs(state: &RepoState, packs: &[(PackId, u64)]) -> HashMap<PackId, Vec<BlobEntry>> {
    let wanted: HashSet<PackId> = packs.iter().map(|p| p.0).collect();
    let mut out: HashMap<PackId, Vec<BlobEntry>> = HashMap::new();
    for row in state.index.rows() {
        let Some(pack) = state.index.pack_of(row) else { continue };
        if wanted.contains(&pack.id) {
            out.entry(pack.id).or_default().push(row.blob_entry());
        }
    }
    out
}

/// The blob list from the trailer inside a pack's bytes.
fn trailer_of(repo: &Repository, bytes: &[u8]) -> Result<Vec<BlobEntry>> {
    let size = bytes.len() as u64;
    let footer = bytes.get(bytes.len().saturating_sub(PACK_FOOTER_LEN)..).unwrap_or_default();
    let (offset, len) = trailer_range(footer, size)?;
    let sealed = usize::try_from(offset)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(o, l)| bytes.get(o..o.checked_add(l)?))
        .unwrap_or_default();
    Ok(open_trailer(repo.envelope(), sealed.to_vec(), offset)?)
}

/// The sealed bytes of `b` if they are in `bytes` and decrypt to content
/// that hashes to the blob's id.
fn intact_blob<'a>(repo: &Repository, bytes: &'a [u8], b: &BlobEntry, cap: usize) -> Option<&'a [u8]> {
    let start = usize::try_from(b.offset).ok()?;
    let sealed = bytes.get(start..start.checked_add(b.length as usize)?)?;
    let ty = ObjectType::from_tag(b.blob_type)?;
    open_chunk(repo.envelope(), repo.chunk_id_key(), ty, &b.id, sealed.to_vec(), cap).ok()?;
    Some(sealed)
}

fn store(repo: &Repository, lock: &RepoLock, builder: PackBuilder) -> Result<PackEntry> {
    let pack = builder.finish(repo.envelope())?;
    lock.check_alive()?;
    repo.storage().put(&pack.id.storage_key(), &pack.bytes)?;
    let mut entry = pack.entry;
    entry.created = unix_now();
    Ok(entry)
}
