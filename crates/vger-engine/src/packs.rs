//! Reading packs back: their trailers (to rebuild or adopt index entries)
//! and their whole content (to verify or repack).

use vger_format::id::PackId;
use vger_format::index::{BlobEntry, PackEntry};
use vger_format::pack::{open_trailer, trailer_range, PACK_FOOTER_LEN};

use crate::repository::Repository;
use crate::Result;

/// Reads a pack's blob list from its trailer with two ranged reads.
pub fn read_trailer(repo: &Repository, id: &PackId, size: u64) -> Result<Vec<BlobEntry>> {
    let key = id.storage_key();
    let footer_len = PACK_FOOTER_LEN as u64;
    if size < footer_len {
        return Err(vger_format::FormatError::corrupt(format!("pack {}", id.short()), "too short").into());
    }
    let footer = repo.storage().get_range(&key, size - footer_len, footer_len)?;
    let (offset, len) = trailer_range(&footer, size)?;
    let sealed = repo.storage().get_range(&key, offset, len)?;
    Ok(open_trailer(repo.envelope(), sealed, offset)?)
}

/// Every pack object in storage, with its size.
pub fn stored_packs(repo: &Repository) -> Result<Vec<(PackId, u64)>> {
    Ok(repo
        .storage()
        .list(vger_format::id::PACKS_PREFIX)?
        .into_iter()
        .filter_map(|o| PackId::from_storage_key(&o.key).map(|id| (id, o.size)))
        .collect())
}

/// An index entry for a pack, read from its trailer.
pub fn pack_entry(repo: &Repository, id: PackId, size: u64, created: u64) -> Result<PackEntry> {
    Ok(PackEntry { id, size, blobs: read_trailer(repo, &id, size)?, created })
}
