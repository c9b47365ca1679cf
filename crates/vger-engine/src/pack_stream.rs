//! Reading a whole pack a window at a time, for `check --verify-data`: the
//! pack's hash, header and trailer are checked as `parse_pack` does, and
//! each chunk is handed over as soon as its bytes are in, so memory holds
//! one window and one chunk rather than the whole pack (32 MiB).

use vger_format::id::PackId;
use vger_format::pack::{check_pack_header, PACK_HEADER_LEN};
use vger_format::FormatError;

use crate::chunk_table::Row;
use crate::packs::read_trailer;
use crate::repository::Repository;
use crate::{EngineError, Result};

/// Bytes fetched per ranged read.
const WINDOW: u64 = 4 << 20;

/// Streams pack `id` of `size` bytes. `rows` (sorted by offset) are handed
/// to `chunk` with their sealed bytes, or `None` when they lie outside the
/// pack. An error is a pack that could not be read; `Ok(Some(problem))` a
/// pack whose content does not match its id or whose framing or trailer is
/// damaged; `read` is told each window's length.
pub(crate) fn stream_pack<'r>(
    repo: &Repository,
    id: &PackId,
    size: u64,
    rows: impl Iterator<Item = &'r Row>,
    mut chunk: impl FnMut(&Row, Option<&[u8]>),
    mut read: impl FnMut(u64),
) -> Result<Option<FormatError>> {
    let key = id.storage_key();
    let mut rows = rows.peekable();
    let mut hasher = blake3::Hasher::new();
    let mut header = Vec::new();
    // `buf` holds the pack's bytes from `buf_start` on.
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_start = 0u64;
    let mut at = 0u64;
    while at < size {
        let len = WINDOW.min(size - at);
        let window = repo.storage().get_range(&key, at, len)?;
        read(window.len() as u64);
        hasher.update(&window);
        if header.len() < PACK_HEADER_LEN {
            header.extend(window.iter().take(PACK_HEADER_LEN - header.len()));
        }
        at += len;
        buf.extend_from_slice(&window);
        drop(window);
        while let Some(row) = rows.peek() {
            let (start, end) = (u64::from(row.offset), u64::from(row.offset) + u64::from(row.length()));
            if end > at {
                break;
            }
            let sealed = usize::try_from(start.saturating_sub(buf_start))
                .ok()
                .zip(usize::try_from(end.saturating_sub(buf_start)).ok())
                .filter(|_| start >= buf_start)
                .and_then(|(s, e)| buf.get(s..e));
            chunk(row, sealed);
            rows.next();
        }
        // Keep only what the next chunk still needs.
        let keep_from = rows.peek().map_or(at, |r| u64::from(r.offset).clamp(buf_start, at));
        let drained = usize::try_from(keep_from - buf_start).unwrap_or(buf.len()).min(buf.len());
        buf.drain(..drained);
        buf_start += drained as u64;
    }
    drop(buf);
    for row in rows {
        chunk(row, None);
    }
    if hasher.finalize().as_bytes() != &id.0 {
        return Ok(Some(FormatError::corrupt(format!("pack {}", id.short()), "its content does not match its id")));
    }
    if let Err(e) = check_pack_header(&header) {
        return Ok(Some(e));
    }
    match read_trailer(repo, id, size) {
        Ok(_) => Ok(None),
        Err(EngineError::Format(e)) => Ok(Some(e)),
        Err(e) => Err(e),
    }
}
