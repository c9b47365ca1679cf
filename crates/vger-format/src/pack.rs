//! Pack files (docs/format.md, section 6): a header, sealed blobs, and an
//! encrypted trailer listing them so the index can be rebuilt from packs.

use serde::{Deserialize, Serialize};
use vger_crypto::{Envelope, ObjectType};

use crate::id::{ChunkId, PackId};
use crate::index::{BlobEntry, PackEntry};
use crate::object::{open_object, seal_object};
use crate::FormatError;

pub const PACK_MAGIC: &[u8; 8] = b"VGERPACK";
pub const PACK_END_MAGIC: &[u8; 8] = b"VGERPEND";
pub const PACK_VERSION: u8 = 1;
pub const PACK_HEADER_LEN: usize = 16;
/// Trailer length (u32) and the end magic.
pub const PACK_FOOTER_LEN: usize = 12;
const TRAILER_IDENTITY: &[u8] = b"pack-trailer";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PackTrailer {
    blobs: Vec<BlobEntry>,
}

/// The bookkeeping of a pack being written: blob offsets, the blob list and
/// the running BLAKE3 hash of its bytes (the pack's id). Where the bytes go
/// is the writer's business: memory ([`PackBuilder`]) or, on local storage,
/// straight into a file, so a pack never has to be held whole in memory.
#[derive(Debug)]
pub struct PackLayout {
    hasher: blake3::Hasher,
    len: u64,
    blobs: Vec<BlobEntry>,
}

impl PackLayout {
    /// Starts a pack; the returned header must be written first.
    pub fn start() -> (Self, [u8; PACK_HEADER_LEN]) {
        let mut header = [0u8; PACK_HEADER_LEN];
        header[..8].copy_from_slice(PACK_MAGIC);
        header[8] = PACK_VERSION;
        let mut hasher = blake3::Hasher::new();
        hasher.update(&header);
        (Self { hasher, len: PACK_HEADER_LEN as u64, blobs: Vec::new() }, header)
    }

    /// Records a sealed blob (an envelope of type data or tree chunk); the
    /// caller writes `sealed` next.
    pub fn add(&mut self, id: ChunkId, blob_type: ObjectType, raw_length: u32, sealed: &[u8]) {
        self.hasher.update(sealed);
        let offset = self.len;
        self.len += sealed.len() as u64;
        self.blobs.push(BlobEntry { id, blob_type: blob_type as u8, offset, length: sealed.len() as u32, raw_length });
    }

    /// Bytes so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// Seals the trailer. Returns the bytes to write last (trailer and
    /// footer), the pack's id and its index entry.
    pub fn finish(mut self, envelope: &Envelope) -> Result<(Vec<u8>, PackEntry), FormatError> {
        let trailer = PackTrailer { blobs: self.blobs };
        let mut tail = seal_object(envelope, ObjectType::PackTrailer, TRAILER_IDENTITY, "pack trailer", &trailer)?;
        let trailer_len = tail.len() as u32;
        tail.extend_from_slice(&trailer_len.to_le_bytes());
        tail.extend_from_slice(PACK_END_MAGIC);
        self.hasher.update(&tail);
        let id = PackId(*self.hasher.finalize().as_bytes());
        let size = self.len + tail.len() as u64;
        Ok((tail, PackEntry { id, size, blobs: trailer.blobs, created: 0 }))
    }
}

/// The most bytes an honest pack of `blobs` blobs holds beside them: the
/// header, the footer and a sealed trailer listing every blob. Maintenance
/// counts whatever a pack holds beyond its listed blobs and this bound as
/// unused, so bytes no index entry names (padding written by a hostile
/// client, say) are reclaimed with the pack.
///
/// Each blob's trailer entry is at most 89 bytes of MessagePack (a 32-byte
/// id and four integers under their field names; 96 here, with a margin);
/// zstd never grows its input by more than a few bytes per 128 KiB block,
/// and the envelope adds a fixed header and tag. `tests/format.rs` checks the bound against real
/// trailers with the largest values every field can take.
pub fn max_overhead(blobs: usize) -> u64 {
    const FIXED: u64 = 512;
    const PER_BLOB: u64 = 96;
    (PACK_HEADER_LEN + PACK_FOOTER_LEN) as u64 + FIXED + PER_BLOB.saturating_mul(blobs as u64)
}

/// Collects sealed blobs into one pack in memory.
#[derive(Debug)]
pub struct PackBuilder {
    buf: Vec<u8>,
    layout: PackLayout,
}

/// A finished pack, ready to store under `id.storage_key()`.
#[derive(Debug)]
pub struct FinishedPack {
    pub id: PackId,
    pub bytes: Vec<u8>,
    pub entry: PackEntry,
}

impl PackBuilder {
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_buffer(Vec::new(), capacity)
    }

    /// Builds into `buf` (the bytes of a pack already stored, say), so a
    /// writer can reuse its memory instead of faulting in fresh pages.
    pub fn with_buffer(mut buf: Vec<u8>, capacity: usize) -> Self {
        let (layout, header) = PackLayout::start();
        buf.clear();
        buf.reserve(capacity);
        buf.extend_from_slice(&header);
        Self { buf, layout }
    }

    /// Appends a sealed blob (an envelope of type data or tree chunk).
    pub fn add(&mut self, id: ChunkId, blob_type: ObjectType, raw_length: u32, sealed: &[u8]) {
        self.layout.add(id, blob_type, raw_length, sealed);
        self.buf.extend_from_slice(sealed);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layout.is_empty()
    }

    pub fn blob_count(&self) -> usize {
        self.layout.blob_count()
    }

    /// Appends the trailer and computes the pack id.
    pub fn finish(mut self, envelope: &Envelope) -> Result<FinishedPack, FormatError> {
        let (tail, entry) = self.layout.finish(envelope)?;
        self.buf.extend_from_slice(&tail);
        Ok(FinishedPack { id: entry.id, bytes: self.buf, entry })
    }
}

/// The sealed trailer listing `blobs`, for a pack assembled elsewhere (by
/// vger-server from ranges of other packs): the caller frames it with the
/// header and footer exactly as [`PackBuilder::finish`] does.
pub fn seal_trailer(envelope: &Envelope, blobs: Vec<BlobEntry>) -> Result<Vec<u8>, FormatError> {
    seal_object(envelope, ObjectType::PackTrailer, TRAILER_IDENTITY, "pack trailer", &PackTrailer { blobs })
}

/// Checks the pack header (the first 16 bytes).
pub fn check_pack_header(header: &[u8]) -> Result<(), FormatError> {
    if header.len() < PACK_HEADER_LEN || &header[..8] != PACK_MAGIC {
        return Err(FormatError::corrupt("pack", "missing pack magic"));
    }
    if header[8] > PACK_VERSION {
        return Err(FormatError::NewerVersion {
            what: "pack".into(),
            found: header[8].into(),
            supported: PACK_VERSION.into(),
        });
    }
    Ok(())
}

/// From the last [`PACK_FOOTER_LEN`] bytes of a pack of `pack_size` bytes,
/// the byte range of the sealed trailer.
pub fn trailer_range(footer: &[u8], pack_size: u64) -> Result<(u64, u64), FormatError> {
    if footer.len() != PACK_FOOTER_LEN || &footer[4..] != PACK_END_MAGIC {
        return Err(FormatError::corrupt("pack", "missing end magic (truncated?)"));
    }
    let len = u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]]) as u64;
    let min = (PACK_HEADER_LEN + PACK_FOOTER_LEN) as u64;
    if len + min > pack_size {
        return Err(FormatError::corrupt("pack", format!("trailer length {len} does not fit in {pack_size} bytes")));
    }
    Ok((pack_size - PACK_FOOTER_LEN as u64 - len, len))
}

/// Decrypts a trailer and checks that its blobs lie inside the pack.
pub fn open_trailer(envelope: &Envelope, sealed: Vec<u8>, trailer_offset: u64) -> Result<Vec<BlobEntry>, FormatError> {
    let trailer: PackTrailer =
        open_object(envelope, ObjectType::PackTrailer, TRAILER_IDENTITY, "pack trailer", sealed)?;
    for b in &trailer.blobs {
        // Checked: an offset near 2^64 would wrap past the test otherwise.
        let end = b.offset.checked_add(u64::from(b.length));
        if b.offset < PACK_HEADER_LEN as u64 || end.is_none_or(|end| end > trailer_offset) {
            return Err(FormatError::corrupt(
                "pack trailer",
                format!("blob at {} +{} lies outside the pack", b.offset, b.length),
            ));
        }
    }
    Ok(trailer.blobs)
}

/// Reads the blob list of a whole pack held in memory, checking its id.
pub fn parse_pack(envelope: &Envelope, expected: &PackId, bytes: &[u8]) -> Result<Vec<BlobEntry>, FormatError> {
    if blake3::hash(bytes).as_bytes() != &expected.0 {
        return Err(FormatError::corrupt(format!("pack {}", expected.short()), "its content does not match its id"));
    }
    check_pack_header(bytes)?;
    let footer_at =
        bytes.len().checked_sub(PACK_FOOTER_LEN).ok_or_else(|| FormatError::corrupt("pack", "too short"))?;
    let (offset, len) = trailer_range(&bytes[footer_at..], bytes.len() as u64)?;
    let sealed = bytes[offset as usize..(offset + len) as usize].to_vec();
    open_trailer(envelope, sealed, offset)
}
