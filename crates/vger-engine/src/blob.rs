//! Sealing and opening chunks: compress, then encrypt with the chunk ID as
//! identity; on the way back, decrypt, decompress under a cap and check
//! that the plaintext hashes to the ID it was stored under.

use vger_crypto::{ChunkIdKey, Envelope, ObjectType, ENVELOPE_HEADER_LEN, ENVELOPE_OVERHEAD};
use vger_format::compress::{compress_into, decompress, max_compressed_len, Codec};
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
