//! A snapshot's file tree as a chunked stream of entries (docs/format.md,
//! section 8): [`TreeWriter`] encodes and cuts it, [`TreeReader`] reads it
//! back one entry at a time, fetching tree chunks as it goes.

use vger_chunker::{ChunkBuffer, ChunkerParams};
use vger_crypto::ObjectType;
use vger_format::entry::{encode_entry, split_entry, Entry};
use vger_format::id::ChunkId;

use crate::blob::BlobReader;
use crate::{EngineError, Result};

/// Encodes entries into the tree stream and hands each finished tree chunk
/// to `store`, which returns its ID (and deduplicates and stores it).
pub struct TreeWriter {
    buffer: ChunkBuffer,
    scratch: Vec<u8>,
    ids: Vec<ChunkId>,
}

impl TreeWriter {
    pub fn new(params: ChunkerParams) -> Result<Self> {
        let buffer = ChunkBuffer::new(params).map_err(|e| EngineError::InvalidSetting(e.to_string()))?;
        Ok(Self { buffer, scratch: Vec::new(), ids: Vec::new() })
    }

    pub fn add(&mut self, entry: &Entry, store: &mut dyn FnMut(&[u8]) -> Result<ChunkId>) -> Result<()> {
        self.scratch.clear();
        encode_entry(entry, &mut self.scratch)?;
        let ids = &mut self.ids;
        self.buffer.push(&self.scratch, |chunk| {
            ids.push(store(chunk)?);
            Ok(())
        })
    }

    /// Cuts the rest and returns the tree chunk IDs in order.
    pub fn finish(self, store: &mut dyn FnMut(&[u8]) -> Result<ChunkId>) -> Result<Vec<ChunkId>> {
        let Self { buffer, mut ids, .. } = self;
        buffer.finish(|chunk| {
            ids.push(store(chunk)?);
            Ok::<_, EngineError>(())
        })?;
        Ok(ids)
    }
}

/// Iterates the entries of a tree stream.
pub struct TreeReader<'a> {
    reader: BlobReader<'a>,
    ids: Vec<ChunkId>,
    next_chunk: usize,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<'a> TreeReader<'a> {
    pub fn new(reader: BlobReader<'a>, ids: Vec<ChunkId>) -> Self {
        Self { reader, ids, next_chunk: 0, buf: Vec::new(), pos: 0, done: false }
    }

    fn next_entry(&mut self) -> Result<Option<Entry>> {
        loop {
            if let Some((entry, used)) = split_entry(&self.buf[self.pos..])? {
                self.pos += used;
                entry.validate_path()?;
                return Ok(Some(entry));
            }
            let Some(id) = self.ids.get(self.next_chunk).copied() else {
                if self.pos < self.buf.len() {
                    return Err(
                        vger_format::FormatError::corrupt("snapshot tree", "stream ends inside an entry").into()
                    );
                }
                return Ok(None);
            };
            self.next_chunk += 1;
            let chunk = self.reader.read(&id, ObjectType::TreeChunk, &|| "the snapshot's file tree".to_string())?;
            self.buf.drain(..self.pos);
            self.pos = 0;
            self.buf.extend_from_slice(&chunk);
        }
    }
}

impl Iterator for TreeReader<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
