//! Reading one file of a snapshot at any offset, without restoring it.
//!
//! [`ChunkSource`] is an owned, shareable handle on a repository's data
//! chunks (`Send + Sync`, cheap to clone): a server keeps one across
//! requests. [`FileReader`] is `Read + Seek` over one file's chunk list: a
//! seek costs a binary search over the chunks' end offsets, and a read
//! decodes only the chunk that holds the position (fetch, decrypt,
//! decompress, check that it hashes to its ID: the same verification as a
//! restore). Decoded chunks go through the repository's shared
//! [`ChunkCache`], so memory is bounded by that cache's budget plus two
//! chunks per reader, whatever the size of the file.
//!
//! Reading straight through, a reader fetches the next chunks on a
//! background thread while the caller consumes the current one, so a
//! sequential read overlaps decoding with whatever the caller does with
//! the bytes (send them to a socket, write them out).

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::thread::JoinHandle;

use vger_crypto::ObjectType;
use vger_format::entry::ChunkRef;
use vger_format::id::ChunkId;
use vger_format::FormatError;

use crate::blob::BlobReader;
use crate::chunk_cache::{ChunkCache, ChunkData};
use crate::index::ChunkIndex;
use crate::repository::Repository;
use crate::Result;

/// How far a sequential reader fetches ahead: at most this many chunks...
const PREFETCH_CHUNKS: usize = 2;
/// ... and at most this many bytes (two chunks of the largest size).
const PREFETCH_BYTES: u64 = 16 << 20;

/// A repository's data chunks, decoded on demand through a shared cache.
#[derive(Clone, Debug)]
pub struct ChunkSource {
    repo: Arc<Repository>,
    index: Arc<ChunkIndex>,
    cache: Arc<ChunkCache>,
}

impl ChunkSource {
    pub fn new(repo: Arc<Repository>, index: Arc<ChunkIndex>, cache: Arc<ChunkCache>) -> Self {
        Self { repo, index, cache }
    }

    pub fn repository(&self) -> &Arc<Repository> {
        &self.repo
    }

    pub fn index(&self) -> &Arc<ChunkIndex> {
        &self.index
    }

    pub fn cache(&self) -> &Arc<ChunkCache> {
        &self.cache
    }

    /// The plaintext of data chunk `id`, verified against its ID.
    pub fn chunk(&self, id: &ChunkId) -> Result<ChunkData> {
        self.cache.get_or_load(id, || {
            let reader = BlobReader::new(&self.repo, &self.index);
            let data = reader.read(id, ObjectType::DataChunk, &|| "a file being read".to_string())?;
            Ok(Arc::new(data))
        })
    }

    /// A reader over a file of `size` bytes made of `chunks` (an entry's
    /// `size` and `chunks`). Fails if the chunk lengths do not add up to
    /// the size, which only a damaged or hostile snapshot can cause.
    pub fn open(&self, chunks: Vec<ChunkRef>, size: u64) -> Result<FileReader> {
        let mut ends = Vec::with_capacity(chunks.len());
        let mut end = 0u64;
        for c in &chunks {
            if c.is_empty() {
                return Err(FormatError::corrupt("file entry", "it lists a chunk of length 0").into());
            }
            end = end
                .checked_add(u64::from(c.len()))
                .ok_or_else(|| FormatError::corrupt("file entry", "its chunk lengths overflow"))?;
            ends.push(end);
        }
        if end != size {
            return Err(FormatError::corrupt(
                "file entry",
                format!("its chunks add up to {end} bytes but its size is {size}"),
            )
            .into());
        }
        Ok(FileReader {
            source: self.clone(),
            chunks: chunks.into(),
            ends: ends.into(),
            pos: 0,
            current: None,
            prefetch: None,
        })
    }
}

/// `Read + Seek` over one file's chunks (see the module doc).
pub struct FileReader {
    source: ChunkSource,
    chunks: Arc<[ChunkRef]>,
    /// `ends[i]` is the file offset just past chunk `i`.
    ends: Arc<[u64]>,
    pos: u64,
    /// The chunk the last read used, by position in `chunks`.
    current: Option<(usize, ChunkData)>,
    /// The background fetch of the chunks after `current`, if running.
    prefetch: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileReader({} chunks, {} bytes, at {})", self.chunks.len(), self.len(), self.pos)
    }
}

impl FileReader {
    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current position.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Reads into `buf` at `offset` (a seek and a read); returns the bytes
    /// read, 0 at or past the end.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.pos = offset;
        self.read_some(buf)
    }

    /// The chunk holding `pos`, by position in `chunks`.
    fn chunk_at(&self, pos: u64) -> Option<usize> {
        let i = self.ends.partition_point(|end| *end <= pos);
        (i < self.chunks.len()).then_some(i)
    }

    fn start_of(&self, i: usize) -> u64 {
        if i == 0 {
            0
        } else {
            self.ends[i - 1]
        }
    }

    fn load(&mut self, i: usize) -> Result<ChunkData> {
        let want = self.chunks[i];
        let data = self.source.chunk(want.id())?;
        if data.len() != want.len() as usize {
            return Err(FormatError::corrupt(
                format!("chunk {}", want.id().short()),
                format!("it holds {} bytes where the file lists {}", data.len(), want.len()),
            )
            .into());
        }
        let sequential = match &self.current {
            Some((prev, _)) => *prev + 1 == i,
            None => i == 0,
        };
        if sequential {
            self.fetch_ahead(i + 1);
        }
        Ok(data)
    }

    /// Starts decoding the chunks from `first` on a background thread,
    /// unless the previous fetch still runs. What it decodes lands in the
    /// shared cache; a read that needs a chunk it is decoding waits for it
    /// there instead of decoding it again. Its errors are dropped: the
    /// read that needs the chunk meets them itself.
    fn fetch_ahead(&mut self, first: usize) {
        if self.prefetch.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        if self.source.cache.max_bytes() < PREFETCH_BYTES {
            return; // The fetched chunks could be evicted before use.
        }
        let mut ids = Vec::new();
        let mut bytes = 0u64;
        for c in self.chunks.iter().skip(first).take(PREFETCH_CHUNKS) {
            bytes += u64::from(c.len());
            if bytes > PREFETCH_BYTES && !ids.is_empty() {
                break;
            }
            if !ids.contains(c.id()) {
                ids.push(*c.id());
            }
        }
        if ids.is_empty() {
            return;
        }
        let source = self.source.clone();
        let spawned = std::thread::Builder::new().name("vger-read-ahead".into()).spawn(move || {
            for id in ids {
                if source.chunk(&id).is_err() {
                    return;
                }
            }
        });
        // No thread (the system is out of them): reads just do not overlap.
        self.prefetch = spawned.ok();
    }

    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let Some(i) = self.chunk_at(self.pos) else { return Ok(0) };
        let data = match &self.current {
            Some((at, data)) if *at == i => data.clone(),
            _ => {
                let data = self.load(i)?;
                self.current = Some((i, data.clone()));
                data
            }
        };
        let offset = (self.pos - self.start_of(i)) as usize;
        let available = data.get(offset..).unwrap_or_default();
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_some(buf).map_err(io::Error::other)
    }
}

impl Seek for FileReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek to a negative or overflowing position"))?;
        self.pos = target;
        Ok(target)
    }
}
