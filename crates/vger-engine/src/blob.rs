//! Sealing and opening chunks: compress, then encrypt with the chunk ID as
//! identity; on the way back, decrypt, decompress under a cap and check
//! that the plaintext hashes to the ID it was stored under.

use vger_crypto::{ChunkIdKey, Envelope, ObjectType, ENVELOPE_HEADER_LEN, ENVELOPE_OVERHEAD};
use vger_format::compress::{
    compress_into, decompress, max_compressed_len, plain_header, stores_plain, Codec, CODEC_HEADER_LEN,
};
use vger_format::id::ChunkId;
use vger_format::FormatError;

use crate::Result;

/// Compresses `data` straight into an envelope buffer and seals it.
/// `codec` is the one for file data; a tree object takes
/// [`Codec::for_trees`] of it, so every writer of trees (backup, copy)
/// stores them alike.
pub fn seal_chunk(envelope: &Envelope, codec: Codec, ty: ObjectType, id: &ChunkId, data: &[u8]) -> Result<Vec<u8>> {
    let codec = if ty == ObjectType::TreeChunk { codec.for_trees() } else { codec };
    // Room for the worst case: growing the buffer mid-way would copy it.
    let mut buf = Vec::with_capacity(ENVELOPE_OVERHEAD + max_compressed_len(codec, data.len()));
    buf.resize(ENVELOPE_HEADER_LEN, 0);
    compress_into(codec, data, &mut buf);
    envelope.seal_buffer(ty, &id.0, &mut buf).map_err(|e| FormatError::crypto(format!("chunk {}", id.short()), e))?;
    Ok(buf)
}

/// The room before a chunk's bytes in a buffer given to [`seal_chunk_in`]:
/// the envelope header and the codec header.
pub const SEAL_ROOM: usize = ENVELOPE_HEADER_LEN + CODEC_HEADER_LEN;

/// Like [`seal_chunk`], for a chunk at `buf[SEAL_ROOM..]` of a buffer the
/// caller gives up. A chunk stored as it is (incompressible, or no codec)
/// is sealed inside that buffer instead of being copied into a new one;
/// the buffer should have room for the tag too (capacity
/// `ENVELOPE_OVERHEAD + CODEC_HEADER_LEN` beyond the chunk), or the tag's
/// append moves it.
pub fn seal_chunk_in(
    envelope: &Envelope,
    codec: Codec,
    ty: ObjectType,
    id: &ChunkId,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>> {
    let codec = if ty == ObjectType::TreeChunk { codec.for_trees() } else { codec };
    let Some(data) = buf.get(SEAL_ROOM..) else {
        return Err(crate::EngineError::Other(format!("chunk {}: no room to seal it in place", id.short())));
    };
    if !stores_plain(codec, data) {
        return seal_chunk(envelope, codec, ty, id, data);
    }
    let header = plain_header(data.len());
    buf[ENVELOPE_HEADER_LEN..SEAL_ROOM].copy_from_slice(&header);
    envelope.seal_buffer(ty, &id.0, &mut buf).map_err(|e| FormatError::crypto(format!("chunk {}", id.short()), e))?;
    Ok(buf)
}

/// Opens a sealed chunk and verifies its content against `id`.
pub fn open_chunk(
    envelope: &Envelope,
    id_key: &ChunkIdKey,
    ty: ObjectType,
    id: &ChunkId,
    sealed: Vec<u8>,
    cap: usize,
) -> Result<Vec<u8>> {
    let what = || format!("chunk {}", id.short());
    let payload = envelope.open(ty, &id.0, sealed).map_err(|e| FormatError::crypto(what(), e))?;
    let data = decompress(&payload, cap)?;
    if id_key.chunk_id(&data) != id.0 {
        return Err(FormatError::corrupt(what(), "its content does not hash to its id").into());
    }
    Ok(data)
}

/// Reads single chunks from packs through the index.
pub struct BlobReader<'a> {
    repo: &'a crate::repository::Repository,
    index: &'a crate::index::ChunkIndex,
}

impl<'a> BlobReader<'a> {
    pub fn new(repo: &'a crate::repository::Repository, index: &'a crate::index::ChunkIndex) -> Self {
        Self { repo, index }
    }

    /// The plaintext of chunk `id`; `context` names who needs it, for errors.
    pub fn read(&self, id: &ChunkId, ty: ObjectType, context: &dyn Fn() -> String) -> Result<Vec<u8>> {
        let (pack, loc) = self
            .index
            .get(id)
            .ok_or_else(|| crate::EngineError::MissingChunk { chunk: id.short(), context: context() })?;
        let sealed = self.repo.storage().get_range(&pack.id.storage_key(), loc.offset.into(), loc.length.into())?;
        let cap = self.cap(ty);
        open_chunk(self.repo.envelope(), self.repo.chunk_id_key(), ty, id, sealed, cap)
    }

    pub fn cap(&self, ty: ObjectType) -> usize {
        self.repo.blob_cap(ty)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Tests fail by panicking.

    use vger_crypto::{Algorithm, ChunkIdKey, Envelope, MasterKey, ObjectType, ENVELOPE_HEADER_LEN, ENVELOPE_OVERHEAD};
    use vger_format::compress::Codec;
    use vger_format::id::ChunkId;

    use super::{open_chunk, seal_chunk_in, SEAL_ROOM};

    /// `data` behind the room [`seal_chunk_in`] needs, with room for the tag.
    fn with_room(data: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(SEAL_ROOM + data.len() + ENVELOPE_OVERHEAD - ENVELOPE_HEADER_LEN);
        buf.resize(SEAL_ROOM, 0);
        buf.extend_from_slice(data);
        buf
    }

    /// Incompressible data is sealed inside the buffer it came in (no new
    /// buffer, no copy); compressible data is compressed into a new one.
    /// Both open to the chunk they were.
    #[test]
    fn incompressible_chunks_are_sealed_where_they_lie() {
        let envelope = Envelope::new(Algorithm::Aes256Gcm, &MasterKey::generate().unwrap()).unwrap();
        let key = ChunkIdKey::new([9u8; 32]);
        let mut noise = vec![0u8; 1 << 20];
        blake3::Hasher::new().update(b"noise").finalize_xof().fill(&mut noise);
        let text: Vec<u8> = (0..40_000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        for (data, in_place) in [(&noise, true), (&text, false)] {
            let id = ChunkId(key.chunk_id(data));
            let buf = with_room(data);
            let at = buf.as_ptr();
            let sealed = seal_chunk_in(&envelope, Codec::Lz4, ObjectType::DataChunk, &id, buf).unwrap();
            assert_eq!(sealed.as_ptr() == at, in_place, "sealed in place: {in_place}");
            assert_eq!(sealed.len() < data.len(), !in_place);
            let opened = open_chunk(&envelope, &key, ObjectType::DataChunk, &id, sealed, 1 << 21).unwrap();
            assert_eq!(&opened, data);
        }
        let short = seal_chunk_in(&envelope, Codec::Lz4, ObjectType::DataChunk, &ChunkId([0; 32]), vec![0; 3]);
        assert!(short.is_err(), "a buffer without room is refused, not indexed past its end");
    }
}
