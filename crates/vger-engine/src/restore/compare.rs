//! `--overwrite if-changed`: whether a file already in the target holds
//! the snapshot's content, found without fetching anything. The file is
//! cut with the repository's chunker and each piece hashed with its
//! chunk-ID key; equal content gives the snapshot's chunk list exactly.
//! A file whose time changed but not its content (a `touch`, a copy that
//! lost times) is then kept and only its metadata set.

use std::fs::File;
use std::io;

use vger_chunker::{ChunkReader, Chunker};
use vger_format::entry::Entry;

use crate::repository::Repository;

/// Whether `file` holds exactly the chunks of `entry`; stops at the first
/// difference. `buf` is the read buffer, reused from file to file.
pub(super) fn same_content(repo: &Repository, file: &File, entry: &Entry, buf: &mut Vec<u8>) -> io::Result<bool> {
    let chunker = Chunker::new(repo.chunker_params()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut reader = ChunkReader::with_buffer(file, chunker, std::mem::take(buf), 0);
    let mut expected = entry.chunks.iter();
    let same = loop {
        let chunk = match reader.next_chunk() {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break expected.next().is_none(),
            Err(e) => {
                *buf = reader.into_buffer();
                return Err(e);
            }
        };
        let Some(want) = expected.next() else { break false };
        if want.len() as usize != chunk.len() || repo.chunk_id_key().chunk_id(chunk) != want.id().0 {
            break false;
        }
    };
    *buf = reader.into_buffer();
    Ok(same)
}
