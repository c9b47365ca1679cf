//! Work on packs that needs no key: checking that a pack is intact
//! (its BLAKE3 is the id in its name, its framing is right) and building a
//! new pack from byte ranges of existing ones (server-side compaction).
//! Pack layout: `docs/format.md`, section 6.
//!
//! Both are bounded: a plan holds at most [`MAX_REPACK_BLOBS`] ranges that
//! may not overlap within a source pack (a real plan never copies a byte
//! twice), the new pack is at most [`MAX_REPACK_PACK_SIZE`], and both stop
//! when their request is cancelled ([`Cancel`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use axum::http::StatusCode;
use base64::Engine;
use vger_format::pack::{PACK_END_MAGIC, PACK_FOOTER_LEN, PACK_HEADER_LEN, PACK_MAGIC, PACK_VERSION};
use vger_protocol::{
    PackVerification, RepackBlob, RepackRequest, RepackResponse, MAX_REPACK_BLOBS, MAX_REPACK_PACK_SIZE,
    MAX_REPACK_TRAILER,
};
use vger_storage::local::durable::TempFile;

use crate::error::ApiError;
use crate::layout::is_id;
use crate::upload::{commit, Commit, Committed};
use crate::work::Cancel;
use crate::writer;

const COPY_CHUNK: usize = 1 << 20;

/// `packs/<xx>/<id>` for a 64-hex-digit id.
pub fn pack_key(id: &str) -> String {
    format!("packs/{}/{id}", id.get(..2).unwrap_or_default())
}

fn header_bytes() -> [u8; PACK_HEADER_LEN] {
    let mut header = [0u8; PACK_HEADER_LEN];
    let framing = PACK_MAGIC.iter().chain(std::iter::once(&PACK_VERSION));
    for (byte, value) in header.iter_mut().zip(framing) {
        *byte = *value;
    }
    header
}

/// Checks one pack by its key.
pub fn verify(repo_dir: &Path, key: &str, cancel: &Cancel) -> PackVerification {
    let mut result = PackVerification { key: key.to_owned(), size: None, ok: false, problem: None };
    match check_pack(repo_dir, key, &mut result.size, cancel) {
        Ok(()) => result.ok = true,
        Err(problem) => result.problem = Some(problem),
    }
    result
}

fn check_pack(repo_dir: &Path, key: &str, size_out: &mut Option<u64>, cancel: &Cancel) -> Result<(), String> {
    let id = match key.strip_prefix("packs/").and_then(|rest| rest.split_once('/')) {
        Some((dir, id)) if is_id(id) && id.get(..2) == Some(dir) => id,
        _ => return Err("the name is not packs/<xx>/<64 hex digits>".into()),
    };
    let mut file = match File::open(repo_dir.join(key)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err("missing".into()),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let size = file.metadata().map_err(|e| format!("cannot stat: {e}"))?.len();
    *size_out = Some(size);
    let min = (PACK_HEADER_LEN + PACK_FOOTER_LEN) as u64;
    if size < min {
        return Err(format!("only {size} bytes, shorter than a pack's header and footer"));
    }
    let mut header = [0u8; PACK_HEADER_LEN];
    file.read_exact_at(&mut header, 0).map_err(|e| format!("cannot read: {e}"))?;
    if header != header_bytes() {
        return Err("the header is not VGERPACK version 1".into());
    }
    let mut footer = [0u8; PACK_FOOTER_LEN];
    file.read_exact_at(&mut footer, size - PACK_FOOTER_LEN as u64).map_err(|e| format!("cannot read: {e}"))?;
    let (length, magic) = footer.split_at(4);
    if magic != PACK_END_MAGIC {
        return Err("the pack does not end with VGERPEND".into());
    }
    let trailer_len = u32::from_le_bytes(length.try_into().unwrap_or_default());
    if u64::from(trailer_len) > size - min {
        return Err(format!("the trailer length {trailer_len} is larger than the pack"));
    }
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; COPY_CHUNK];
    loop {
        if cancel.cancelled() {
            return Err("not checked: the request was cancelled".into());
        }
        let n = file.read(&mut buffer).map_err(|e| format!("cannot read: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(buffer.get(..n).unwrap_or_default());
    }
    let actual = hasher.finalize().to_hex();
    if actual.as_str() != id {
        return Err(format!("its BLAKE3 is {actual}, not the id in its name (the pack is damaged)"));
    }
    Ok(())
}

/// Checks the plan before any byte is copied; returns the trailer bytes
/// and the size of the pack to build.
pub fn validate(request: &RepackRequest) -> Result<(Vec<u8>, u64), ApiError> {
    if request.blobs.is_empty() {
        return Err(ApiError::bad_request("a repack plan needs at least one blob"));
    }
    if request.blobs.len() > MAX_REPACK_BLOBS {
        return Err(ApiError::bad_request(format!(
            "a repack plan may copy at most {MAX_REPACK_BLOBS} blobs; this one has {}",
            request.blobs.len()
        )));
    }
    let trailer = base64::engine::general_purpose::STANDARD
        .decode(request.trailer.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("the trailer is not base64: {e}")))?;
    if trailer.is_empty() || trailer.len() > MAX_REPACK_TRAILER {
        return Err(ApiError::bad_request(format!("the trailer must be 1 to {MAX_REPACK_TRAILER} bytes")));
    }
    let mut size = (PACK_HEADER_LEN + PACK_FOOTER_LEN + trailer.len()) as u64;
    for blob in &request.blobs {
        if !is_id(&blob.pack) {
            return Err(ApiError::bad_request(format!("`{}` is not a pack id (64 lowercase hex digits)", blob.pack)));
        }
        if blob.length == 0 {
            return Err(ApiError::bad_request("a blob of length 0"));
        }
        size = size.saturating_add(blob.length);
    }
    if size > MAX_REPACK_PACK_SIZE {
        return Err(ApiError::bad_request(format!(
            "the plan builds a pack of {size} bytes; at most {MAX_REPACK_PACK_SIZE} are allowed"
        )));
    }
    refuse_overlaps(&request.blobs)?;
    Ok((trailer, size))
}

/// A range of a source pack copied twice (or two overlapping ranges) is
/// no plan a client makes: each blob of a pack is copied at most once.
fn refuse_overlaps(blobs: &[RepackBlob]) -> Result<(), ApiError> {
    let mut by_pack: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    for blob in blobs {
        by_pack.entry(&blob.pack).or_default().push((blob.offset, blob.offset.saturating_add(blob.length)));
    }
    for (pack, mut ranges) in by_pack {
        ranges.sort_unstable();
        if let Some(pair) = ranges.windows(2).find(|pair| matches!(pair, [a, b] if b.0 < a.1)) {
            let offset = pair.get(1).map_or(0, |r| r.0);
            return Err(ApiError::bad_request(format!(
                "the plan copies bytes of pack {pack} twice (the range at offset {offset} overlaps another)"
            )));
        }
    }
    Ok(())
}

/// The source pack being read: plans name blobs pack by pack, so one open
/// file at a time keeps a plan of many packs within the file limit.
struct Source {
    pack: String,
    key: String,
    file: File,
    size: u64,
}

impl Source {
    fn open(repo_dir: &Path, pack: &str) -> Result<Source, ApiError> {
        let key = pack_key(pack);
        let file = File::open(repo_dir.join(&key)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ApiError::new(StatusCode::NOT_FOUND, format!("source pack `{key}` not found")),
            _ => ApiError::io("open", &key, &e),
        })?;
        let size = file.metadata().map_err(|e| ApiError::io("stat", &key, &e))?.len();
        Ok(Source { pack: pack.to_owned(), key, file, size })
    }
}

/// Builds the pack in a temporary file under `packs/` of repository `repo`
/// (recorded as written by `writer_name`), names it by its BLAKE3 and
/// stores it create-only.
/// `Ok((response, created))`.
pub fn repack(
    data_dir: &Path,
    repo: &str,
    blobs: &[RepackBlob],
    trailer: &[u8],
    writer_name: &str,
    cancel: &Cancel,
) -> Result<(RepackResponse, bool), ApiError> {
    let io_error = |op: &str, e: io::Error| ApiError::io(op, "packs/", &e);
    let repo_dir = data_dir.join(repo);
    let repo_dir = repo_dir.as_path();
    let (temp, file) =
        TempFile::create_for(data_dir, &format!("{repo}/packs/x")).map_err(|e| io_error("create temporary file", e))?;
    writer::record(&file, writer_name).map_err(|e| io_error("record the writer of", e))?;
    let mut out =
        HashingWriter { inner: BufWriter::with_capacity(COPY_CHUNK, file), hasher: blake3::Hasher::new(), written: 0 };
    out.write_all(&header_bytes()).map_err(|e| io_error("write", e))?;
    let mut source: Option<Source> = None;
    let mut buffer = vec![0u8; COPY_CHUNK];
    for blob in blobs {
        let current = match source.take() {
            Some(open) if open.pack == blob.pack => open,
            _ => Source::open(repo_dir, &blob.pack)?,
        };
        let Source { key, file, size, .. } = &current;
        let inside = blob.offset >= PACK_HEADER_LEN as u64
            && blob
                .offset
                .checked_add(blob.length)
                .is_some_and(|end| end <= size.saturating_sub(PACK_FOOTER_LEN as u64));
        if !inside {
            return Err(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("bytes {}+{} are not inside the blobs of `{key}` ({size} bytes)", blob.offset, blob.length),
            ));
        }
        let mut offset = blob.offset;
        let end = blob.offset + blob.length;
        while offset < end {
            if cancel.cancelled() {
                return Err(ApiError::internal("repack cancelled: the client went away"));
            }
            let n = usize::try_from(end - offset).unwrap_or(COPY_CHUNK).min(COPY_CHUNK);
            let chunk = buffer.get_mut(..n).unwrap_or_default();
            file.read_exact_at(chunk, offset).map_err(|e| ApiError::io("read", key, &e))?;
            out.write_all(chunk).map_err(|e| io_error("write", e))?;
            offset += n as u64;
        }
        source = Some(current);
    }
    let trailer_len = u32::try_from(trailer.len()).map_err(|_| ApiError::bad_request("trailer too large"))?;
    out.write_all(trailer).map_err(|e| io_error("write", e))?;
    out.write_all(&trailer_len.to_le_bytes()).map_err(|e| io_error("write", e))?;
    out.write_all(PACK_END_MAGIC).map_err(|e| io_error("write", e))?;
    let size = out.written;
    let id = out.hasher.finalize().to_hex().to_string();
    let file = out.inner.into_inner().map_err(|e| io_error("write", e.into_error()))?;
    file.sync_all().map_err(|e| io_error("fsync", e))?;
    drop(file);
    let key = pack_key(&id);
    let dest = repo_dir.join(&key);
    vger_storage::local::durable::create_parent_dirs(data_dir, &format!("{repo}/{key}"))
        .map_err(|e| ApiError::io("create directory for", &key, &e))?;
    // The same bytes under the same name may exist already: nothing to do.
    let outcome = commit(temp, &dest, Commit::CreateNew).map_err(|e| ApiError::io("store", &key, &e))?;
    let created = !matches!(outcome, Committed::Exists);
    Ok((RepackResponse { id, size }, created))
}

struct HashingWriter {
    inner: BufWriter<File>,
    hasher: blake3::Hasher,
    written: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn plan(blobs: &[(&str, u64, u64)]) -> RepackRequest {
        RepackRequest {
            blobs: blobs
                .iter()
                .map(|(pack, offset, length)| RepackBlob { pack: pack.repeat(64), offset: *offset, length: *length })
                .collect(),
            trailer: base64::engine::general_purpose::STANDARD.encode(b"trailer"),
        }
    }

    #[test]
    fn plans_that_copy_a_byte_twice_or_too_much_are_refused() {
        assert!(validate(&plan(&[("a", 16, 10), ("b", 16, 10), ("a", 26, 10)])).is_ok());
        for bad in [
            plan(&[("a", 16, 10), ("a", 16, 10)]),
            plan(&[("a", 16, 10), ("b", 16, 4), ("a", 20, 10)]),
            plan(&[("a", 16, MAX_REPACK_PACK_SIZE)]),
            plan(&[("a", 16, u64::MAX), ("b", 16, u64::MAX)]),
            plan(&[]),
        ] {
            assert!(validate(&bad).is_err(), "{:?}", bad.blobs);
        }
        let many: Vec<(&str, u64, u64)> = (0..=MAX_REPACK_BLOBS as u64).map(|i| ("a", 16 + i, 1)).collect();
        let err = validate(&plan(&many)).unwrap_err();
        assert!(err.message.contains("at most"), "{}", err.message);
    }
}
