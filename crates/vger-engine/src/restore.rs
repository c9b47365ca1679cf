//! Restoring a snapshot (or some paths of it) into a target directory.
//!
//! The main thread reads the tree stream in order and creates directories,
//! links and special files itself; file contents are written by worker
//! threads, each file into a temporary name that is renamed into place when
//! complete. Adjacent chunks of a file that sit next to each other in one
//! pack are fetched with one ranged read. Hard links are made last, once
//! their targets exist, and directory metadata is applied at the very end.
//! All path safety (nothing is written outside the target) is enforced by
//! `vger_fs::RestoreTarget`.

use std::path::Path;

use crossbeam_channel::bounded;
use serde::Serialize;
use vger_crypto::ObjectType;
use vger_format::compress::decompress_ref;
use vger_format::entry::{Entry, EntryKind};
use vger_format::id::ChunkId;
use vger_format::FormatError;
use vger_fs::{FileWriter, RestoreTarget};

use crate::blob::BlobReader;
use crate::index::ChunkIndex;
use crate::parallel::lock;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshots::SnapshotInfo;
use crate::tree::TreeReader;
use crate::{EngineError, Result};

/// Largest single ranged read when fetching adjacent chunks.
const MAX_READ: u64 = 16 << 20;

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Only these paths (and what lies below them); everything when empty.
    pub paths: Vec<Vec<u8>>,
    /// Writer threads; 0 = one per CPU (at least 2).
    pub threads: usize,
    pub fs: vger_fs::RestoreOptions,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    pub bytes: u64,
    /// Entries that could not be restored, one line each.
    pub failures: Vec<String>,
}

/// Whether to restore `entry`: `Some(true)` when it is a requested path or
/// lies below one, `Some(false)` for a parent directory of one (restored
/// for its metadata, but not a match), `None` otherwise.
fn selected(entry: &Entry, filters: &[Vec<u8>]) -> Option<bool> {
    if filters.is_empty() {
        return Some(true);
    }
    let p = &entry.path;
    let mut parent = false;
    for f in filters {
        let under = p.len() > f.len() && p.starts_with(f) && p[f.len()] == b'/';
        if p == f || under {
            return Some(true);
        }
        parent |= f.len() > p.len() && f.starts_with(p) && f[p.len()] == b'/' && entry.kind == EntryKind::Dir;
    }
    parent.then_some(false)
}

/// Whether the tree stream, sorted as the walk emits it, can hold nothing
/// more for `filters` once it reached `path`: it lies after every filter
/// and outside its subtree. Command dumps are appended after the walk, out
/// of that order, so a filter naming them never stops the read early.
fn past_all(path: &[u8], filters: &[Vec<u8>]) -> bool {
    let dumps = crate::dump::DUMPS_DIR.as_bytes();
    !filters.is_empty()
        && filters.iter().all(|f| {
            let under = path.len() > f.len() && path.starts_with(f) && path[f.len()] == b'/';
            !f.starts_with(dumps) && !under && vger_fs::cmp_paths(path, f) == std::cmp::Ordering::Greater
        })
}

pub fn restore(
    repo: &Repository,
    snap: &SnapshotInfo,
    dest: &Path,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreReport> {
    let _lock = crate::lock::RepoLock::shared(repo, "restore")?;
    let (index, unreadable) = ChunkIndex::load_lenient(repo)?;
    for (id, why) in &unreadable {
        progress.warn(format!(
            "index segment {} is unreadable ({why}); continuing without it: run `vger check --repair`",
            id.short()
        ));
    }
    let mut target = RestoreTarget::new(dest, opts.fs)?;
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2),
        n => n,
    };
    let report = std::sync::Mutex::new(RestoreReport::default());
    let mut hardlinks = Vec::new();
    let mut matched_any = opts.paths.is_empty();
    let mut pending_parents: Vec<Entry> = Vec::new();
    let (tx, rx) = bounded::<(FileWriter, Entry)>(threads * 4);
    let walk: Result<()> = std::thread::scope(|scope| {
        for _ in 0..threads {
            let rx = rx.clone();
            let (index, report) = (&index, &report);
            scope.spawn(move || {
                let mut buffers = Buffers::default();
                for (writer, entry) in rx.iter() {
                    match write_file(repo, index, writer, &entry, progress, &mut buffers) {
                        Ok(()) => {
                            let mut r = lock(report);
                            r.files += 1;
                            r.bytes += entry.size;
                            progress.add_files(1);
                        }
                        Err(e) => {
                            progress.add_error();
                            lock(report).failures.push(format!("{}: {e}", entry.display_path()));
                        }
                    }
                }
            });
        }
        drop(rx);
        let entries = TreeReader::new(BlobReader::new(repo, &index), snap.snapshot.tree.clone());
        for entry in entries {
            let entry = entry?;
            if past_all(&entry.path, &opts.paths) {
                break; // Nothing later in the stream is selected: stop reading it.
            }
            match selected(&entry, &opts.paths) {
                None => continue,
                Some(false) => {
                    // A parent of a requested path: created only once
                    // something below it is restored.
                    pending_parents.push(entry);
                    continue;
                }
                Some(true) => matched_any = true,
            }
            for parent in pending_parents.drain(..).filter(|p| entry.path.starts_with(&p.path)) {
                if let Err(e) = target.create_dir(&parent) {
                    lock(&report).failures.push(format!("{}: {e}", parent.display_path()));
                }
            }
            let done = match entry.kind {
                EntryKind::Dir => target.create_dir(&entry).map(|()| lock(&report).dirs += 1),
                EntryKind::File => match target.begin_file(&entry) {
                    Ok(writer) => {
                        tx.send((writer, entry)).map_err(|_| EngineError::Other("restore workers stopped".into()))?;
                        continue;
                    }
                    Err(e) => Err(e),
                },
                EntryKind::Symlink => target.create_symlink(&entry).map(|()| lock(&report).links += 1),
                EntryKind::Hardlink => {
                    hardlinks.push(entry);
                    continue;
                }
                _ => target.create_special(&entry).map(|_| ()),
            };
            if let Err(e) = done {
                progress.add_error();
                lock(&report).failures.push(format!("{}: {e}", entry.display_path()));
            }
        }
        drop(tx);
        Ok(())
    });
    walk?;
    if !matched_any {
        return Err(EngineError::Other(
            "none of the given paths is in the snapshot; `vger snapshot list ID` shows its paths".into(),
        ));
    }
    let mut report = report.into_inner().unwrap_or_else(|p| p.into_inner());
    for link in hardlinks {
        match target.create_hardlink(&link) {
            Ok(()) => report.links += 1,
            Err(e) => report.failures.push(format!("{}: {e}", link.display_path())),
        }
    }
    target.finish()?;
    Ok(report)
}

/// A restore worker's buffers, reused from file to file so that reading
/// and decompressing allocate (and zero) nothing once they have grown.
#[derive(Default)]
struct Buffers {
    /// Sealed chunks as read from a pack, opened in place.
    read: Vec<u8>,
    /// Decompressed chunks; stored ones are written from `read`.
    scratch: Vec<u8>,
}

/// Fetches a file's chunks (adjacent ones in one read) and writes them.
fn write_file(
    repo: &Repository,
    index: &ChunkIndex,
    mut writer: FileWriter,
    entry: &Entry,
    progress: &Progress,
    buffers: &mut Buffers,
) -> Result<()> {
    let result = write_chunks(repo, index, &mut writer, entry, progress, buffers);
    match result {
        Ok(()) => Ok(writer.finish(entry)?),
        Err(e) => {
            writer.abort();
            Err(e)
        }
    }
}

fn write_chunks(
    repo: &Repository,
    index: &ChunkIndex,
    writer: &mut FileWriter,
    entry: &Entry,
    progress: &Progress,
    buffers: &mut Buffers,
) -> Result<()> {
    let cap = BlobReader::new(repo, index).cap(ObjectType::DataChunk);
    let context = || entry.display_path();
    let write_err = |e| EngineError::io(format!("writing {}", context()), e);
    let mut file_offset = 0u64;
    let mut i = 0;
    let Buffers { read: bytes, scratch } = buffers;
    // The last chunk written, kept only when the next one is the same
    // (runs of identical chunks: holes, zeroed regions).
    let mut last: Option<(ChunkId, Vec<u8>)> = None;
    while i < entry.chunks.len() {
        // Group chunks that are contiguous in the same pack.
        let first = &entry.chunks[i];
        if let Some((id, data)) = &last {
            if id == first.id() {
                writer.write_at(file_offset, data).map_err(write_err)?;
                file_offset += data.len() as u64;
                progress.add_bytes(data.len() as u64);
                i += 1;
                continue;
            }
        }
        let (pack, loc) = index
            .get(first.id())
            .ok_or_else(|| EngineError::MissingChunk { chunk: first.id().short(), context: context() })?;
        let start = u64::from(loc.offset);
        let mut end = start + u64::from(loc.length);
        let mut group = vec![(*first.id(), start, loc.length)];
        let mut j = i + 1;
        while let Some(next) = entry.chunks.get(j) {
            match index.get(next.id()) {
                Some((p, l))
                    if p.id == pack.id
                        && u64::from(l.offset) == end
                        && end - start + u64::from(l.length) <= MAX_READ =>
                {
                    group.push((*next.id(), end, l.length));
                    end += u64::from(l.length);
                    j += 1;
                }
                _ => break,
            }
        }
        repo.storage().get_range_into(&pack.id.storage_key(), start, end - start, bytes)?;
        last = None;
        for (k, (id, offset, length)) in group.into_iter().enumerate() {
            let at = (offset - start) as usize;
            let sealed = bytes
                .get_mut(at..at + length as usize)
                .ok_or_else(|| EngineError::Other("short read from pack".into()))?;
            let data = open_chunk_in_place(repo, &id, sealed, cap, scratch)?;
            writer.write_at(file_offset, data).map_err(write_err)?;
            file_offset += data.len() as u64;
            progress.add_bytes(data.len() as u64);
            if entry.chunks.get(i + k + 1).is_some_and(|c| *c.id() == id) {
                last = Some((id, data.to_vec()));
            }
        }
        i = j;
    }
    Ok(())
}

/// Decrypts a chunk inside the buffer it was read into, decompresses it if
/// it was compressed, and checks that it hashes to its ID.
fn open_chunk_in_place<'a>(
    repo: &Repository,
    id: &ChunkId,
    sealed: &'a mut [u8],
    cap: usize,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8]> {
    let what = || format!("chunk {}", id.short());
    let payload = repo
        .envelope()
        .open_in_place(ObjectType::DataChunk, &id.0, sealed)
        .map_err(|e| FormatError::crypto(what(), e))?;
    let data = decompress_ref(payload, cap, scratch)?;
    if repo.chunk_id_key().chunk_id(data) != id.0 {
        return Err(FormatError::corrupt(what(), "its content does not hash to its id").into());
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::past_all;

    #[test]
    fn a_filtered_restore_stops_only_past_every_filter_and_its_subtree() {
        let filters = vec![b"b/c".to_vec(), b"d".to_vec()];
        assert!(!past_all(b"a", &filters));
        assert!(!past_all(b"b/c/x/y", &filters));
        assert!(!past_all(b"b/d", &filters), "after b/c but before d");
        assert!(!past_all(b"d/e", &filters));
        assert!(past_all(b"e", &filters));
        assert!(!past_all(b"e", &[]), "no filter: everything is restored");
        assert!(!past_all(b"zzz", &[b"vger-dumps/db".to_vec()]), "dumps come after the walk");
    }
}
